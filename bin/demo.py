#!/usr/bin/env python
"""The main job (`make demo`): a stitched demo set from the real media in examples/data, the whole
pipeline through `ambiguity run`, and the report's path.

No openly licensed clip has a face, speech and an empathy label together, so the demo
stitches them (and says so in its output and in the report):
- text and label: essays of the empathic-reactions corpus, label = empathy_bin;
- audio: the speech-emotion clips (and turns cut from the three-speaker recording),
  chosen by the label: empathetic essays get a high-arousal clip, neutral ones a
  low-arousal clip or a conversational turn;
- video: 0.5 s windows of the face clips, chosen by the label: empathetic essays get a
  distressed face (the crying woman, 0-2.5 s), neutral ones a smiling face (the man, or the woman at 16.5-19 s).
For PLANTED_SHARE of the segments the audio (or, for as many others, the face) is
chosen from the *other* pool: a planted cross-modal conflict. The report then shows
which share of planted segments lands in a disagreement quadrant (red or green)
against the share of the others.

The clips partition into N_GROUPS clip groups (metadata column ``clip_group``): each
group has its own face windows (one distressed, one or two smiling; windows of one
source never overlap, so no frame is in two groups) and its own speech clips (every
fifth clip of each arousal pool, every fifth conversational turn), and every segment
draws its face and its speech from its own group only. The models are cross-fitted
by that group (5 folds x 3 repeats, ``group_by = "clip_group"``): the model that
predicts a segment never saw any of its clips. What this guarantees: no media or
audio file, and no video frame, is shared between a held-out fold and the data its
model was fitted on (the leakage report and ``leakage.fold_leakage`` count it). What
it does not: the clips of different groups still come from the same few sources (one
crying woman, one smiling man and the same woman smiling; one speech-emotion corpus),
so a model can still learn "this person crying" from other windows of the same video.
The fixed split (train 80 / val 10 / test 10, random) shares clips between train and
test on purpose, and the demo prints it beside the grouped scheme, on its test split.

Everything is written under demo-out/; a second run reuses every stage that is current.
"""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "examples" / "data"
OUT = ROOT / "demo-out"
N_PER_CLASS = 250
PLANTED_SHARE = 0.10  # of segments with a conflicting audio clip; as many again with a conflicting face
SEED = 0
N_GROUPS = 5  # clip groups: each has its own face windows and speech clips
WINDOW = 0.5  # seconds per face window

STITCHED = (
    "NOTE: this demo stitches modalities from different open datasets (essays for text and label, "
    "speech clips for audio, face clips for video), chosen by label, with planted conflicts; no open "
    "clip has a face, speech and an empathy label together. The analysis is real; the data are a construction."
)


def speech_pools(folder: Path) -> tuple[list[list[str]], list[list[str]]]:
    """Per clip group: its high-arousal clips (empathetic pool) and its low-arousal clips plus conversational turns
    (neutral pool); every clip in exactly one group (every N_GROUPS-th clip of each pool, by arousal)."""
    from ambiguity.media import decode_audio

    speech = DATA / "speech-emotion"
    arousal = {f: float(s) for f, s in (r for r in csv.reader((speech / "arousal.csv").open()) if len(r) == 2)}
    clips = sorted(arousal, key=arousal.get)
    half = len(clips) // 2
    low = [str(speech / f) for f in clips[:half]]
    high = [str(speech / f) for f in clips[half:]]
    folder.mkdir(parents=True, exist_ok=True)
    turns = []
    for line in (speech / "diarization-3speakers.segments").read_text().splitlines():
        if line.strip():
            a, b, _ = map(str.strip, line.split("\t"))
            target = folder / f"turn_{float(a):05.1f}-{float(b):05.1f}.wav"
            if not target.exists():
                x, rate, first = decode_audio(str(speech / "diarization-3speakers.wav"), float(a), float(b))
                _write_wav(target, x[int(float(a) * rate) - first : int(float(b) * rate) - first], rate)
            turns.append(str(target))
    return ([high[g::N_GROUPS] for g in range(N_GROUPS)],
            [low[g::N_GROUPS] + turns[g::N_GROUPS] for g in range(N_GROUPS)])


def face_pools(folder: Path) -> tuple[list[list[str]], list[list[str]]]:
    """Per clip group: its distressed and its smiling face windows (WINDOW s each, cut into files of their own;
    windows of one source never overlap, so no frame is in two groups)."""
    faces = DATA / "faces"
    woman, man = faces / "WolfgangLanger_Pexels.mp4", faces / "single_face.mp4"
    folder.mkdir(parents=True, exist_ok=True)
    # the woman cries in 0-2.5 s and smiles in 16.5-19 s; the man (2.4 s) smiles throughout
    distressed = [[_cut_video(woman, WINDOW * g, folder)] for g in range(N_GROUPS)]
    smiling = [[_cut_video(woman, 16.5 + WINDOW * g, folder)] + ([_cut_video(man, 0.6 * g, folder)] if 0.6 * g + WINDOW <= 2.4 else [])
               for g in range(N_GROUPS)]
    return distressed, smiling


def _cut_video(src: Path, start: float, folder: Path, seconds: float = WINDOW) -> str:
    import av

    from ambiguity.media import sample_frames

    target = folder / f"{src.stem}_{start:04.1f}_{seconds:.1f}s.mp4"
    if not target.exists():
        frames = sample_frames(str(src), start, start + seconds, fps=25)
        h, w = frames[0][1].shape[:2]
        with av.open(str(target), "w") as c:
            st = c.add_stream("mpeg4", rate=25)
            st.width, st.height, st.pix_fmt = w - w % 2, h - h % 2, "yuv420p"
            st.bit_rate = 2_000_000
            for _, img in frames:
                for pkt in st.encode(av.VideoFrame.from_ndarray(img[: st.height, : st.width], format="rgb24")):
                    c.mux(pkt)
            for pkt in st.encode():
                c.mux(pkt)
    return str(target)


def build_manifest(path: Path) -> Path:
    import polars as pl

    rng = np.random.default_rng(SEED)
    essays = pl.read_csv(DATA / "empathic-reactions" / "messages.csv", infer_schema=False)
    rows = []
    high, low = speech_pools(path.parent / "audio")
    distressed, smiling = face_pools(path.parent / "video")
    picked = []
    for label in ("1", "0"):
        sub = essays.filter(pl.col("empathy_bin") == label)
        idx = rng.choice(sub.height, N_PER_CLASS, replace=False)
        picked += [sub.row(int(i), named=True) for i in idx]
    n = len(picked)
    order = rng.permutation(n)
    n_plant = int(round(PLANTED_SHARE * n))
    planted = {int(i): "audio" for i in order[:n_plant]} | {int(i): "video" for i in order[n_plant : 2 * n_plant]}
    group = rng.permutation(n) % N_GROUPS  # 100 segments per clip group
    for i, e in enumerate(picked):
        positive = e["empathy_bin"] == "1"
        flip = planted.get(i, "")
        g = int(group[i])
        a_pool = (high if positive != (flip == "audio") else low)[g]
        v_pool = (distressed if positive != (flip == "video") else smiling)[g]
        a = a_pool[rng.integers(len(a_pool))]
        v = v_pool[rng.integers(len(v_pool))]
        rows.append({
            "segment_id": e["message_id"], "media": v, "audio": a,
            "transcript": e["essay"], "label": "empathetic" if positive else "neutral",
            "planted": flip, "empathy": e["empathy"], "clip_group": f"g{g}",
        })
    # 80/10/10 splits stratified by label and by planted kind, so that the test and val
    # splits (where quadrants are read) hold their share of planted conflicts.
    from ambiguity.segments import assign_splits

    for r, split in zip(rows, assign_splits([f"{r['label']}|{r['planted']}" for r in rows], SEED + 1), strict=True):
        r["split"] = split
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def _write_wav(path: Path, x: np.ndarray, rate: int) -> None:
    import wave

    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())


CONFIG = """\
title = "ambiguity demo: stitched empathy set with planted cross-modal conflicts"
store = "store"
manifest = "manifest.csv"
report = "report"

[ingest]
seed = 0

[[extract]]
extractor = "text.minilm"

[[extract]]
extractor = "prosody"

[[extract]]
extractor = "opensmile"

[[extract]]
extractor = "landmarks"
params = { fps = 5.0 }

[train]
groups = ["text.minilm", "opensmile.egemaps", "landmarks"]
unimodal_arch = "logistic"
fusion_name = "fusion"
epochs = 15
seed = 0
folds = 5
repeats = 3
group_by = "clip_group"
also_fixed = true

[report_settings]
scheme = "crossfit"
audio_model = "opensmile.egemaps"
audio_groups = ["prosody"]
video_model = "landmarks"
au_groups = ["landmarks"]
text_model = "text.minilm"
flag = "planted"
permutations = 2000
human_store = "crema-d"
"""


def speech_check() -> None:
    """A sanity check on real speech alone: mean pitch against rated arousal (Spearman about 0.66)."""
    import json

    from scipy.stats import spearmanr

    from ambiguity.extractors.opensmile import OpenSmile
    from ambiguity.extractors.prosody import Prosody
    from ambiguity.extractors.runner import run
    from ambiguity.segments import load_manifest
    from ambiguity.stores.lance import open_store

    speech = DATA / "speech-emotion"
    folder = OUT / "speech"
    folder.mkdir(parents=True, exist_ok=True)
    arousal = dict(r for r in csv.reader((speech / "arousal.csv").open()) if len(r) == 2)
    manifest = folder / "manifest.csv"
    with manifest.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["segment_id", "media", "arousal"])
        w.writerows([f.removesuffix(".wav"), speech / f, a] for f, a in sorted(arousal.items()))
    store = open_store(folder / "store")
    store.upsert_segments(load_manifest(manifest))
    for ex in (Prosody(), OpenSmile()):
        rep = run(store, ex, progress=False)
        print(f"  {rep.summary()}")
    pitch = store.features("prosody", ["pitch_mean"]).join(store.segments(["segment_id", "metadata"]), on="segment_id")
    pairs = [(r["pitch_mean"], float(json.loads(r["metadata"])["arousal"])) for r in pitch.iter_rows(named=True)]
    rho, p = spearmanr(*zip(*pairs, strict=True), nan_policy="omit")
    n_ok = {g: int(store.status().filter(store.status()["group"] == g)["ok"][0]) for g in ("prosody", "opensmile.egemaps")}
    print(f"  ok rows: {n_ok}; Spearman correlation of mean pitch with rated arousal over {len(pairs)} "
          f"real clips: rho = {rho:.3f} (p = {p:.1g})\n")


def schemes_side_by_side() -> dict[str, str]:
    """Coverage, red+green per model, planted share with its interval, adjusted p-values, on the clip-grouped
    crossfit scheme and on the fixed split's test segments; returns the figures for summary.json."""
    import json

    import polars as pl

    from ambiguity.stats.comparisons import compare_quadrants
    from ambiguity.stats.quadrant_tables import quadrants
    from ambiguity.stats.stability import wilson_interval
    from ambiguity.stores.lance import open_store

    fig: dict[str, str] = {}
    store = open_store(OUT / "store")
    segs = store.segments(["segment_id", "label", "metadata"])
    planted = {r["segment_id"]: json.loads(r["metadata"] or "{}").get("planted") or "" for r in segs.iter_rows(named=True)}
    print(f"\nCross-fitted by clip group (5 folds x 3 repeats; no clip in a held-out fold was trained on) vs the fixed "
          f"split (its test segments; its random split shares clips between train and test); {segs.height} segments.")
    print("red+green: crossfit counts each segment once by its modal quadrant; rates with 95% Wilson intervals; "
          "planted: segments whose planted modality is the model's:")
    kind = {"opensmile.egemaps": "audio", "landmarks": "video", "text.minilm": None}
    for model in ("text.minilm", "opensmile.egemaps", "landmarks"):
        line = []
        for scheme, splits in (("crossfit", None), ("fixed", ("test",))):
            q = quadrants(store, model, "fusion", splits, scheme=scheme).frame
            q = q.with_columns(pl.col("segment_id").replace_strict(planted, default="").alias("planted"))
            rg = int(q["quadrant"].is_in(["red", "green"]).sum())
            lo, hi = wilson_interval(rg, q.height)
            what = f"{q.height} placed, red+green {rg} (rate {rg / q.height:.3f} [{float(lo):.3f}, {float(hi):.3f}])"
            if kind[model]:
                for label, sub in (("planted", q.filter(pl.col("planted") == kind[model])), ("unplanted", q.filter(pl.col("planted") == ""))):
                    k = int(sub["quadrant"].is_in(["red", "green"]).sum())
                    lo, hi = wilson_interval(k, sub.height)
                    fig[f"{scheme}.{kind[model]}.{label}"] = (f"{k} of {sub.height} ({k / max(sub.height, 1):.2f}, "
                                                             f"95% Wilson interval [{float(lo):.2f}, {float(hi):.2f}])")
                    what += f", {label} in red/green {fig[f'{scheme}.{kind[model]}.{label}']}"
            line.append(f"{scheme}: {what}")
        print(f"  {model}: " + "; ".join(line))
    print("Out-of-fold accuracy (clip-grouped crossfit, mean over repeats) vs fixed-split test accuracy:")
    from ambiguity.models.predictions import read_predictions

    cf = read_predictions(store, scheme="crossfit")
    fx = read_predictions(store, splits=["test"])
    for model in ("text.minilm", "opensmile.egemaps", "landmarks", "fusion"):
        acc = cf.filter(pl.col("model") == model).group_by("repeat").agg((pl.col("predicted") == pl.col("label")).mean())
        t = fx.filter(pl.col("model") == model)
        fig[f"accuracy.crossfit.{model}"] = f"{float(acc['predicted'].mean()):.2f}"
        fig[f"accuracy.fixed.{model}"] = f"{float((t['predicted'] == t['label']).mean()):.2f}"
        print(f"  {model}: {fig[f'accuracy.crossfit.{model}']} vs {fig[f'accuracy.fixed.{model}']}")
    print("Adjusted p-values (Holm) of the audio comparisons (opensmile.egemaps quadrants, prosody features), smallest per pair:")
    for scheme, splits in (("crossfit", None), ("fixed", ("test",))):
        qc = compare_quadrants(store, "opensmile.egemaps", "fusion", ["prosody"], splits=splits, scheme=scheme)
        parts = []
        mins = []
        for c in qc.comparisons:
            padj = c.table["p_adj"].drop_nulls().drop_nans()
            n_sig = int((padj <= 0.05).sum())
            if padj.len():
                mins.append(float(padj.min()))
            parts.append(f"{c.a} vs {c.b}: min {padj.min():.3g}, {n_sig} of {c.table.height} <= 0.05" if padj.len() else f"{c.a} vs {c.b}: n/a")
        fig[f"compare.{scheme}.min_p_adj"] = f"{min(mins):.3g}" if mins else "n/a"
        print(f"  {scheme}: " + "; ".join(parts))
    return fig


def attribution_figures() -> dict[str, str]:
    """The report's attribution_flagged table (crossfit: each segment by its fold models, mean over repeats)."""
    import polars as pl

    path = OUT / "report" / "tables" / "attribution_flagged.csv"
    if not path.exists():
        return {}
    fig = {}
    for r in pl.read_csv(path).iter_rows(named=True):
        v = r["planted"]
        fig[f"attribution.{v}"] = (f"AUC {r['auc']:.2f} (one-sided Mann-Whitney p = {r['p_one_sided']:.1e}, "
                                   f"{r['n_flagged']} vs {r['n_other']} segments)")
    return fig


def conflict_figures() -> dict[str, str]:
    """The report's conflict_summary table (out-of-fold predictions, mean over repeats), by planted kind."""
    import polars as pl

    path = OUT / "report" / "tables" / "conflict_summary.csv"
    if not path.exists():
        return {}
    fig = {}
    for r in pl.read_csv(path).iter_rows(named=True):
        v = r.get("planted") or "(none)"
        v = "unplanted" if v in ("", "(none)") else v
        fig[f"conflict.{v}"] = (f"mean jsd {r['mean_jsd']:.2f}, {r['in_conflict_set']} of {r['n']} in the conflict set "
                                "(margin >= 0.8)")
    return fig


def write_summary(figures: dict[str, str]) -> Path:
    """demo-out/summary.json: every demo figure the README and docs quote (tests/test_docs.py checks them)."""
    import json

    path = OUT / "summary.json"
    settings = {"segments": str(2 * N_PER_CLASS), "folds": "5", "repeats": "3", "clip_groups": str(N_GROUPS),
                "planted_share_pct": f"{round(100 * PLANTED_SHARE)}"}
    path.write_text(json.dumps({"settings": settings, "figures": figures}, indent=2, sort_keys=True) + "\n")
    return path


# -- human judgments (issue 26): the CREMA-D vote counts, no media ---------------------------------------------
def human_judgments() -> None:
    """Import CREMA-D's real vote counts (60 actors, 3 conditions) into demo-out/crema-d and print the human analysis:
    accuracy per condition against the published rates, Fleiss' kappa, the human quadrants, the agreement change."""
    from ambiguity.annotate.human import CREMA_PUBLISHED as CREMA
    from ambiguity.annotate.human import analyse_store
    from ambiguity.annotate.judgments import read_judgments_file, save_judgments
    from ambiguity.stores.lance import open_store

    t0 = time.perf_counter()
    store = open_store(OUT / "crema-d")
    j = read_judgments_file(DATA / "crema-d" / "tabulatedVotes.csv", layout="counts", preset="crema-d")
    save_judgments(store, j)
    res = analyse_store(store, n_boot=1000)
    print(f"\nHuman judgments (CREMA-D, Cao et al. 2014, ODbL; {j.summary()}):")
    for r in res.accuracy.join(res.agreement.select("condition", "kappa", "kappa_low", "kappa_high"), on="condition").iter_rows(named=True):
        pub = f" (published, 91 actors: {100 * CREMA[r['condition']]:.1f}%)" if r["condition"] in CREMA else ""
        print(f"  {r['condition']:<12} per-vote accuracy {100 * r['vote_accuracy']:.1f}% [{100 * r['vote_low']:.1f}, "
              f"{100 * r['vote_high']:.1f}]{pub}, plurality {100 * r['plurality_accuracy']:.1f}%, Fleiss' kappa "
              f"{r['kappa']:.3f} [{r['kappa_low']:.3f}, {r['kappa_high']:.3f}]")
    print("  human quadrants (unimodal vs audio-visual; a tie is wrong): " + "; ".join(
        f"{m}: " + ", ".join(f"{q['quadrant']} {q['items']}" for q in g.iter_rows(named=True))
        for (m,), g in res.quadrant_counts.group_by(["modality"], maintain_order=True)))
    print("  kappa change unimodal -> audio-visual per quadrant: " + "; ".join(
        f"{r['modality']} {r['quadrant']} {r['change']:+.3f} [{r['change_low']:+.3f}, {r['change_high']:+.3f}]"
        for r in res.agreement_change.iter_rows(named=True)))
    print(f"  ({time.perf_counter() - t0:.1f} s; the report's section 'People as predictors' has every table)")


def main() -> int:
    from ambiguity.pipeline import run_pipeline

    t0 = time.perf_counter()
    OUT.mkdir(exist_ok=True)
    print("Sanity check on the 47 real speech clips (prosody and openSMILE):")
    speech_check()
    print(STITCHED + "\n")
    manifest = OUT / "manifest.csv"
    if not manifest.exists():
        build_manifest(manifest)
    from ambiguity.config import init_project

    init_project(OUT)  # an ambiguity.toml, so that `cd demo-out && ambiguity status` works
    config = OUT / "pipeline.toml"
    if not config.exists() or config.read_text() != CONFIG:
        config.write_text(CONFIG)
    human_judgments()  # before the pipeline: its report reads demo-out/crema-d (human_store)
    out = run_pipeline(config)
    flagged = OUT / "report" / "tables" / "flagged_disagreement.md"
    if flagged.exists():
        print("\nPlanted conflicts vs the rest (share in red or green):")
        print(flagged.read_text())
    tables = OUT / "report" / "tables"
    for stem, head in (("attribution_flagged", "Shapley value of the planted modality: planted vs unplanted segments "
                        "(AUC = P(planted phi < unplanted phi)):"),
                       ("attribution_dominant", "Which modality dominated the fusion model, per quadrant:")):
        if (tables / f"{stem}.md").exists():
            print(f"\n{head}")
            print((tables / f"{stem}.md").read_text())
    figures = schemes_side_by_side() | attribution_figures() | conflict_figures()
    print(f"\nthe demo's figures: {write_summary(figures)}")
    print(f"\n{len(out['ran'])} stage(s) ran, {len(out['skipped'])} reused, {time.perf_counter() - t0:.0f} s")
    print(STITCHED)
    print(f"explore it: cd {OUT.relative_to(Path.cwd()) if OUT.is_relative_to(Path.cwd()) else OUT} && ambiguity status "
          "(or .venv/bin/ambiguity from the repository root)")
    print(f"report: {OUT / 'report' / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
