"""Prosody and openSMILE through `ambiguity` vs plain sequential loops; long-file decoding cost.

Audio: >= 10 minutes made of the real speech clips, as two long files cut into
2-6 s segments (the shape of diarized datasets). Baselines run in the same process:
- a sequential loop that reads each segment with soundfile and calls parselmouth /
  opensmile directly;
- one decode of each long file, against decoding its N segments the way the runner does.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import Row, cut, emit, long_wav, timed  # noqa: E402


def _read(path: str, a: float, b: float):
    import soundfile as sf

    return sf.read(path, start=int(round(a * 16000)), stop=int(round(b * 16000)), dtype="float32")[0]


def _prosody_one(seg) -> float:
    from ambiguity.extractors.prosody import ProsodyParams, measure_prosody

    return measure_prosody(_read(*seg[1:]), 16000, ProsodyParams())["pitch_mean"]


_SMILE = None


def _opensmile_one(seg) -> float:
    global _SMILE
    import opensmile

    if _SMILE is None:
        _SMILE = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02, feature_level=opensmile.FeatureLevel.Functionals)
    return float(_SMILE.process_signal(_read(*seg[1:]), 16000).iloc[0, 0])


def ceiling(fn, segs, workers: int = 2) -> float:
    """The same work in a warm multiprocessing.Pool with no store and no decoding of ours:
    what this machine's cores can give for this workload at best."""
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(workers) as pool:
        pool.map(fn, segs[: 2 * workers])  # start and warm the workers outside the timing
        t, _ = timed(pool.map, fn, segs, 4)
    return t


def main(minutes: float = 10.0, rounds: int = 3) -> list[Row]:
    import csv
    import statistics

    import soundfile as sf

    from ambiguity import open_store
    from ambiguity.extractors.opensmile import OpenSmile
    from ambiguity.extractors.prosody import Prosody, ProsodyParams, measure_prosody
    from ambiguity.extractors.runner import run, segment_inputs
    from ambiguity.media import AudioBatch, decode_audio
    from ambiguity.segments import load_manifest

    tmp = Path(tempfile.mkdtemp())
    files = [long_wav(tmp / f"long{i}.wav", minutes / 2, seed=i) for i in range(2)]
    segs = []
    for f in files:
        dur = sf.info(f).duration
        segs += [(f"{f.stem}_{k:04d}", str(f), a, b) for k, (a, b) in enumerate(cut(dur))]
    man = tmp / "m.csv"
    with man.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["segment_id", "media", "start_s", "end_s"])
        w.writerows(segs)
    total_audio = sum(b - a for _, _, a, b in segs)
    print(f"{len(segs)} segments, {total_audio / 60:.1f} min of audio from {len(files)} long files")

    def read(path, a, b):
        return sf.read(path, start=int(round(a * 16000)), stop=int(round(b * 16000)), dtype="float32")[0]

    def seq_prosody():
        p = ProsodyParams()
        return [measure_prosody(read(f, a, b), 16000, p) for _, f, a, b in segs]

    def seq_opensmile():
        import opensmile

        smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02, feature_level=opensmile.FeatureLevel.Functionals)
        return [smile.process_signal(read(f, a, b), 16000) for _, f, a, b in segs]

    rows = []
    for name, ex, base, one in (("prosody", Prosody(), seq_prosody, _prosody_one),
                                ("opensmile", OpenSmile(), seq_opensmile, _opensmile_one)):
        # Rounds alternate the order of loop, runner and ceiling (others share this machine); medians count.
        got: dict[str, list[float]] = {"loop": [], "ours": [], "ceiling": []}

        def ours(name=name, ex=ex):
            store = open_store(tempfile.mkdtemp(dir=tmp, prefix=f"store-{name}-"))
            store.upsert_segments(load_manifest(man))
            t, rep = timed(run, store, ex, workers=2, progress=False)
            assert rep.ok == len(segs), rep.summary()
            return t

        steps = {"loop": lambda base=base: timed(base)[0], "ours": ours, "ceiling": lambda one=one: ceiling(one, segs)}
        for r in range(rounds):
            for k in list(steps) if r % 2 == 0 else list(steps)[::-1]:
                got[k].append(steps[k]())
        print(f"  {name}: " + ", ".join(f"{k} {[round(x, 2) for x in v]}" for k, v in got.items()), flush=True)
        t_base, t_ours, t_ceil = (statistics.median(got[k]) for k in ("loop", "ours", "ceiling"))
        peer = "sequential loop of the bare calls (parselmouth / opensmile.process_signal)"
        rows.append(Row("extract_audio", f"{name}: throughput, 2 workers vs sequential loop", t_ours, t_base,
                        t_base / t_ours, ">= 1.7", peer=peer, ceiling=t_base / t_ceil))
        rows.append(Row("extract_audio", f"{name}: machine ceiling, warm Pool(2) of the bare calls vs sequential", t_ceil,
                        t_base, t_base / t_ceil, ">= 1.7", peer=peer))

    # Decoding N segments of a long file in runner-sized batches vs one decode of the file.
    f = files[0]
    inputs = segment_inputs([{"segment_id": s, "media": m, "start_s": a, "end_s": b} for s, m, a, b in segs if m == str(f)])

    def batched():
        for i in range(0, len(inputs), 8):
            b = inputs[i : i + 8]
            loader = AudioBatch(b)
            for s in b:
                loader(s, 16000)

    t_one, _ = min((timed(decode_audio, str(f)) for _ in range(3)), key=lambda x: x[0])
    t_n, _ = min((timed(batched) for _ in range(3)), key=lambda x: x[0])
    rows.append(Row("extract_audio", f"decode {len(inputs)} segments of a long file vs one decode", t_n, t_one, t_n / t_one, "<= 1.2"))
    return rows


if __name__ == "__main__":
    emit("extract_audio", main(float(sys.argv[1]) if len(sys.argv) > 1 else 10.0))
