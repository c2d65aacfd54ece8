"""The worker pool: no process of a run outlives it (also when cancelled); coalesced writes keep every result."""

from __future__ import annotations

import psutil

from ambiguity.extractors.opensmile import OpenSmile
from ambiguity.extractors.prosody import Prosody
from ambiguity.extractors.runner import run
from ambiguity.segments import load_manifest
from ambiguity.stores import schema as S


def _ingest(store, tmp_path, speech_dir, n):
    man = tmp_path / "m.csv"
    man.write_text("segment_id,media\n" + "".join(f"c{i:02d},{speech_dir / f'{i:02d}.wav'}\n" for i in range(n)))
    store.upsert_segments(load_manifest(man))


def _run_processes() -> list[str]:
    """Children of this process that belong to a pool: its workers (not the resource tracker)."""
    out = []
    for p in psutil.Process().children(recursive=True):
        try:
            cmd = " ".join(p.cmdline())
        except psutil.NoSuchProcess:
            continue
        if "resource_tracker" not in cmd:
            out.append(cmd)
    return out


def test_no_worker_outlives_the_run(store, tmp_path, speech_dir):
    _ingest(store, tmp_path, speech_dir, 6)
    assert _run_processes() == []
    rep = run(store, Prosody(), workers=2, batch_size=2, progress=False)
    assert rep.ok == 6
    assert _run_processes() == []  # joined before run() returned, not a moment later


def test_coalesced_writes_keep_every_result_in_fewer_commits(store, tmp_path, speech_dir, monkeypatch):
    import ambiguity.extractors.runner as R

    _ingest(store, tmp_path, speech_dir, 8)
    monkeypatch.setattr(R, "WRITE_EVERY_S", 3600.0)  # after the first commit, everything else waits for the end
    rep = run(store, OpenSmile(), workers=2, batch_size=1, progress=False)
    assert rep.ok == 8 and rep.writes == 2  # the first batch at once (it creates the group), the rest together
    st = store.group_status("opensmile.egemaps")
    assert st.height == 8 and (st["status"] == "ok").all()
    assert store.version(S.table_name("opensmile.egemaps")) <= 3


class Slow(Prosody):
    name = "slow"

    def process(self, batch):
        import time

        time.sleep(30)  # a stuck worker: cancelling must not wait for it
        return super().process(batch)


def test_a_cancelled_pool_terminates_its_workers(store, tmp_path, speech_dir):
    import time

    from ambiguity.extractors.pool import Pool, work

    _ingest(store, tmp_path, speech_dir, 2)
    pool = Pool(Slow(), 2)
    futures = [pool.submit(work, [r]) for r in store.segments().to_dicts()]
    time.sleep(3)  # both workers are inside process()
    t = time.monotonic()
    pool.close(cancel=True)
    assert time.monotonic() - t < 10 and _run_processes() == []
    assert all(f.done() for f in futures)
