"""Landmark frames per second: the runner's process pool vs a plain sequential loop.

Workload: the real face clips of examples/data/faces (WolfgangLanger_Pexels.mp4 cut
into 2 s segments, repeated, plus single_face.mp4 and face_noface.mov), sampled at
10 fps. Baseline, in this process: a sequential loop that samples each segment's
frames and runs dlib's detector, the 68-point predictor and the cue geometry on each
frame. Ours: ``ambiguity.extractors.runner.run`` with a spawn pool of ``--workers``
processes, including pool start-up and the writes to the store.

    .venv/bin/python bench/landmarks.py [--repeat 3] [--workers 2] [--fps 10]
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import ROOT, Row, emit, machine, timed  # noqa: E402

FACES = ROOT / "examples" / "data" / "faces"


def segments(repeat: int) -> list[tuple[str, str, float, float]]:
    from ambiguity.media import probe

    wl = FACES / "WolfgangLanger_Pexels.mp4"
    dur = probe(str(wl)).duration
    out = []
    for r in range(repeat):
        t, k = 0.0, 0
        while t < dur - 0.5:
            out.append((f"wl{r}_{k:02d}", str(wl), round(t, 3), round(min(t + 2.0, dur), 3)))
            t += 2.0
            k += 1
        for name in ("single_face.mp4", "face_noface.mov"):
            f = FACES / name
            out.append((f"{f.stem}{r}", str(f), 0.0, round(probe(str(f)).duration, 3)))
    return out


def main(repeat: int = 3, workers: int = 2, fps: float = 10.0) -> list[Row]:
    from ambiguity import open_store
    from ambiguity.extractors.landmarks import Landmarks, frame_cues
    from ambiguity.extractors.runner import run
    from ambiguity.media import sample_frames
    from ambiguity.segments import load_manifest

    load0 = f"{os.getloadavg()[0]:.2f}"  # other work on the machine skews the ratio: report it
    segs = segments(repeat)
    tmp = Path(tempfile.mkdtemp())
    man = tmp / "m.csv"
    with man.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["segment_id", "media", "start_s", "end_s"])
        w.writerows(segs)

    def sequential() -> int:
        ex = Landmarks(fps=fps)
        ex.setup()
        n = 0
        for _sid, media, a, b in segs:
            for _t, img in sample_frames(media, a, b, fps=fps):
                pts = ex.landmarks(img)
                if pts is not None:
                    frame_cues(pts, img.shape[1], img.shape[0])
                n += 1
        return n

    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t_base, frames = timed(sequential)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    store = open_store(tmp / "store")
    store.upsert_segments(load_manifest(man))
    kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t_ours, rep = timed(run, store, Landmarks(fps=fps), workers=workers, progress=False)
    cpu2 = resource.getrusage(resource.RUSAGE_SELF)
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_base = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    cpu_pool = (kids1.ru_utime + kids1.ru_stime) - (kids0.ru_utime + kids0.ru_stime)
    cpu_pool += (cpu2.ru_utime + cpu2.ru_stime) - (cpu1.ru_utime + cpu1.ru_stime)
    if rep.failed:
        raise SystemExit(f"landmarks run failed: {rep.failures[:3]}")
    done = int(store.features("landmarks", status=None)["frames_total"].fill_null(0).sum())
    if done != frames:
        raise SystemExit(f"the pool sampled {done} frames, the loop {frames}")
    print(f"{machine()}; load average before: {load0}, after: {os.getloadavg()[0]:.2f}\n"
          f"{len(segs)} segments, {frames} frames at {fps:g} fps; "
          f"sequential {frames / t_base:.1f} frames/s, pool of {workers} {frames / t_ours:.1f} frames/s\n"
          f"CPU time per frame: sequential {1000 * cpu_base / frames:.1f} ms, pool {1000 * cpu_pool / frames:.1f} ms "
          f"(workers' start-up and store writes included); CPU busy in the pool run: {cpu_pool / t_ours:.2f} cores")
    rows = [
        Row("landmarks", f"frames/s, pool of {workers} vs sequential loop (incl. start-up)", frames / t_ours,
            frames / t_base, t_base / t_ours, ">= 1.7", unit="f/s",
            peer="plain dlib loop (sample_frames, detector, 68-point predictor)"),
    ]
    return rows


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--fps", type=float, default=10.0)
    a = ap.parse_args()
    emit("landmarks", main(a.repeat, a.workers, a.fps))
