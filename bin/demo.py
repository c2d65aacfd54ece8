#!/usr/bin/env python
"""The main job: ingest the real speech clips shipped in examples/data, extract prosody and
openSMILE features into a Lance store, and print a short summary.

Run it with `make demo`; it writes everything under demo-out/ and reuses what is there.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEECH = ROOT / "examples" / "data" / "speech-emotion"
OUT = ROOT / "demo-out"


def speech_manifest(path: Path) -> Path:
    """47 clips (whole files) plus the three-speaker recording cut at its diarization turns."""
    # `file,score` rows without a header.
    arousal = dict(r for r in csv.reader((SPEECH / "arousal.csv").open()) if len(r) == 2)
    valence = dict(r for r in csv.reader((SPEECH / "valence.csv").open()) if len(r) == 2)
    rows = []
    for wav in sorted(SPEECH.glob("[0-9][0-9].wav")):
        rows.append({"segment_id": f"clip{wav.stem}", "media": str(wav), "start_s": "", "end_s": "",
                     "arousal": arousal.get(wav.name, ""), "valence": valence.get(wav.name, "")})
    for i, line in enumerate((SPEECH / "diarization-3speakers.segments").read_text().split("\n")):
        if line.strip():
            start, end, speaker = line.split("\t")
            rows.append({"segment_id": f"dia{i:02d}", "media": str(SPEECH / "diarization-3speakers.wav"),
                         "start_s": start, "end_s": end, "speaker": speaker})
    keys = ["segment_id", "media", "start_s", "end_s", "arousal", "valence", "speaker"]
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, keys)
        w.writeheader()
        w.writerows(rows)
    return path


def main() -> int:
    import json

    from scipy.stats import spearmanr

    from ambiguity.config import init_project
    from ambiguity.extractors.opensmile import OpenSmile
    from ambiguity.extractors.prosody import Prosody
    from ambiguity.extractors.runner import run
    from ambiguity.segments import load_manifest
    from ambiguity.stores.lance import open_store

    proj = init_project(OUT)
    store = open_store(proj.store)
    manifest = speech_manifest(OUT / "speech-manifest.csv")
    store.upsert_segments(load_manifest(manifest))
    print(f"ingested {store.segments(['segment_id']).height} speech segments from {manifest}")
    for ex in (Prosody(), OpenSmile()):
        print(run(store, ex, progress=False).summary())
    print()
    print(store.status())

    segs = store.segments(["segment_id", "metadata"])
    pros = store.features("prosody", ["pitch_mean"]).join(segs, on="segment_id")
    pairs = [(r["pitch_mean"], float(json.loads(r["metadata"])["arousal"])) for r in pros.iter_rows(named=True)
             if json.loads(r["metadata"]).get("arousal")]
    rho, p = spearmanr(*zip(*pairs, strict=True), nan_policy="omit")
    print(f"\nSpearman correlation of mean pitch with rated arousal over {len(pairs)} clips: "
          f"rho = {rho:.3f} (p = {p:.2g})")
    print(f"store: {proj.store}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
