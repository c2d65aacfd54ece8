"""The Ray engine with 2 workers vs 1 on a single-threaded CPU extractor (openSMILE; Praat is multi-threaded), same local cluster, same run."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import SPEECH, Row, emit, timed  # noqa: E402


def main(copies: int = 3) -> list[Row]:
    import ray

    from ambiguity import open_store
    from ambiguity.engines.ray import run
    from ambiguity.extractors.opensmile import OpenSmile
    from ambiguity.segments import load_manifest

    tmp = Path(tempfile.mkdtemp())
    clips = sorted(SPEECH.glob("[0-9][0-9].wav"))
    man = tmp / "m.csv"
    man.write_text("segment_id,media\n" + "".join(f"c{k}_{p.stem},{p}\n" for k in range(copies) for p in clips))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    times = {}
    warm = open_store(tmp / "warm")
    warm.upsert_segments(load_manifest(man))
    run(warm, OpenSmile(), limit=8, workers=2)  # start worker processes once, outside the timing
    for c in (1, 2):
        store = open_store(tmp / f"s{c}")
        store.upsert_segments(load_manifest(man))
        times[c], rep = timed(run, store, OpenSmile(), workers=c, batch_size=4)
        assert rep.ok == copies * len(clips)
    ray.shutdown()
    return [Row("ray", f"opensmile on {copies * len(clips)} clips: 2 Ray workers vs 1", times[2], times[1],
                times[1] / times[2], ">= 1.6")]


if __name__ == "__main__":
    emit("ray", main())
