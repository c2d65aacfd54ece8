"""The paper's whole chain from `examples/paper/empspeech.toml`: EmpSpeech CSVs -> fine-tuning -> report.

The data imitate EmpSpeech in everything but size: three long videos (a real face
clip from examples/data looped, with a track of real speech clips), 60 segments
over 3 dialogs in the published column layout, split over train.csv / val.csv /
test.csv (every dialog in every split, as published). The six base models are tiny
random models of the paper's architectures (RoBERTa, DeBERTa-v2, HuBERT, wav2vec2,
VideoMAE, TimeSformer) saved where the example config expects them, the VAD
checkpoint is written by the model card's own class, and OpenFace is the fake
binary. The example config runs with the paper's recipe; the test only shrinks the
annotation sample (17 per quadrant cannot be drawn from 60 segments) and reports on
every split (10 test segments leave quadrants empty).
"""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from ambiguity.cli import main

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "extractors"))
import tiny_models  # noqa: E402  (tiny random models of the real architectures, saved by path)

EXAMPLE = ROOT / "examples" / "paper" / "empspeech.toml"
DATA = ROOT / "examples" / "data"
FAKE_OPENFACE = ROOT / "tests" / "fake_openface" / "FeatureExtraction"
HEADER = ["dialog_id", "start_time", "end_time", "filename", "transcript", "label"]  # EmpSpeech, verbatim
DIALOGS, PER_DIALOG, SEG_S = 3, 20, 1.0
VIDEO_S = PER_DIALOG * SEG_S + 0.5

# The paper's tables and figures, as the report names them (examples/paper/empspeech.toml lists them).
TABLES = ["table1_performance", "table2_disagreement", "table3_audio_significant", "table4_au_significant",
          "table5_kappa", "table6_red_vs_green", "table7_audio_full", "table8_au_full"]
FIGURES = ["figure2_quadrants", "figure3", "figure5", "figure6"]


def long_video(path: Path, seed: int) -> None:
    """A real face clip looped to VIDEO_S seconds (160x90, 15 fps, 1 s GOP) over real speech (AAC, 16 kHz)."""
    import av

    from ambiguity.media import decode_audio, resample

    src = av.open(str(DATA / "faces" / "single_face.mp4"))
    frames = [f.to_ndarray(format="rgb24", width=160, height=90) for f in src.decode(video=0)][::2]
    src.close()
    rng = np.random.default_rng(seed)
    clips, n = [], 0
    while n < VIDEO_S * 16000:
        x, rate, _ = decode_audio(str(DATA / "speech-emotion" / f"{int(rng.integers(0, 16)):02d}.wav"))
        x = resample(x, rate, 16000)
        clips.append(x)
        n += len(x)
    audio = np.concatenate(clips)[: int(VIDEO_S * 16000)].astype(np.float32)
    out = av.open(str(path), "w")
    vs = out.add_stream("libx264", rate=15)
    vs.width, vs.height, vs.pix_fmt = 160, 90, "yuv420p"
    vs.options = {"g": "15", "preset": "ultrafast"}
    as_ = out.add_stream("aac", rate=16000, layout="mono")
    for i in range(int(VIDEO_S * 15)):
        frame = av.VideoFrame.from_ndarray(frames[i % len(frames)], format="rgb24")
        for pkt in vs.encode(frame):
            out.mux(pkt)
    for pkt in vs.encode():
        out.mux(pkt)
    step = 1024
    for s in range(0, len(audio), step):
        chunk = audio[s : s + step]
        if len(chunk) < step:
            chunk = np.pad(chunk, (0, step - len(chunk)))
        af = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="flt", layout="mono")
        af.sample_rate, af.pts = 16000, s
        for pkt in as_.encode(af):
            out.mux(pkt)
    for pkt in as_.encode():
        out.mux(pkt)
    out.close()


def empspeech_files(project: Path) -> None:
    """train/val/test.csv exactly as EmpSpeech publishes them; texts and labels from real essays."""
    essays = pl.read_csv(DATA / "empathic-reactions" / "messages.csv", infer_schema=False, n_rows=DIALOGS * PER_DIALOG)
    rows = []
    for k in range(DIALOGS * PER_DIALOG):
        d, j = divmod(k, PER_DIALOG)
        label = "empathetic" if essays["empathy_bin"][k] == "1" else "neutral"
        rows.append([f"dlg{d}", f"{j * SEG_S:.2f}", f"{(j + 1) * SEG_S:.2f}", f"dlg{d}_{j:03d}.wav",
                     essays["essay"][k][:300], label])
    rng = np.random.default_rng(0)
    split = np.array(["train"] * len(rows))
    for lab in ("empathetic", "neutral"):  # 80/10/10 within each label, as the paper split at random
        idx = rng.permutation([i for i, r in enumerate(rows) if r[5] == lab])
        n = max(1, round(len(idx) / 6))
        split[idx[:n]], split[idx[n : 2 * n]] = "val", "test"
    for name in ("train", "val", "test"):
        with (project / f"{name}.csv").open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(HEADER)
            w.writerows(r for r, s in zip(rows, split, strict=True) if s == name)


@pytest.fixture(scope="module")
def paper(tmp_path_factory) -> Path:
    project = tmp_path_factory.mktemp("paper")
    (project / "videos").mkdir()
    for d in range(DIALOGS):
        long_video(project / "videos" / f"dlg{d}.mp4", d)
    empspeech_files(project)
    m = project / "models"
    tiny_models.text_model("roberta", m / "roberta-base")
    tiny_models.text_model("deberta-v2", m / "deberta-v3-base")
    tiny_models.audio_model("hubert", m / "hubert-base-ls960")
    tiny_models.audio_model("wav2vec2", m / "wav2vec2-base")
    tiny_models.video_model("videomae", m / "videomae-base")
    tiny_models.video_model("timesformer", m / "timesformer-base-finetuned-k400")
    tiny_models.vad_model(m / "wav2vec2-large-robust-12-ft-emotion-msp-dim")
    text = EXAMPLE.read_text()
    for old, new in (("per_quadrant = 17", "per_quadrant = 2"),
                     ('unimodal = ["best:text", "best:audio", "best:video"]\nsplits = ["test"]',
                      'unimodal = ["best:text", "best:audio", "best:video"]\nsplits = ["train", "val", "test"]\npermutations = 200')):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    (project / "empspeech.toml").write_text(text)
    return project


@pytest.fixture
def env(monkeypatch, paper, tmp_path):
    monkeypatch.setenv("OPENFACE_BIN", str(FAKE_OPENFACE))
    monkeypatch.setenv("FAKE_OPENFACE_DURATION", str(VIDEO_S))
    py = tmp_path / "py"  # the fake's `#!/usr/bin/env python3` finds this interpreter first
    py.mkdir()
    (py / "python3").symlink_to(sys.executable)
    monkeypatch.setenv("PATH", f"{py}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.chdir(paper)
    return paper


def run(project: Path) -> tuple[list[str], list[str], str]:
    r = CliRunner().invoke(main, ["run", str(project / "empspeech.toml")], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    ran = [line.split()[1] for line in r.output.splitlines() if line.startswith("[run]")]
    skipped = [line.split()[1].rstrip(":") for line in r.output.splitlines() if line.startswith("[skip]")]
    return ran, skipped, r.output


FINETUNED = ["text.roberta", "text.deberta", "audio.hubert", "audio.wav2vec2", "video.videomae", "video.timesformer"]


def test_the_paper_in_one_command(env):
    from ambiguity import open_store
    from ambiguity.models.predictions import model_summary, read_predictions

    project = env
    ran, skipped, out = run(project)
    assert ran == ["ingest", *[f"finetune:{n}" for n in FINETUNED], *[f"extract:{n}" for n in FINETUNED],
                   "extract:prosody", "extract:vad", "extract:openface", "train", "sample", "report"], out
    # The published layout shares every dialog between the splits; the report says so.
    assert "leakage: dialog_id: 3 of 3 test groups also occur in train or val" in out
    # Fusion on fine-tuned embeddings of the train split is stacked in sample: said once.
    assert out.count("stacked in sample") == 1, out

    store = open_store(project / "store")
    summary = {r["model"]: r for r in model_summary(store).iter_rows(named=True)}
    assert {m for m, r in summary.items() if r["kind"] == "finetuned"} == set(FINETUNED)
    assert summary["fusion"]["kind"] == "fusion"
    # The best model per modality is the one with the highest validation accuracy (ties: first listed).
    best = {}
    for n in FINETUNED:
        val = read_predictions(store, [n], ["val"])
        acc = float((val["predicted"] == val["label"]).mean())
        mod = n.split(".")[0]
        if mod not in best or acc > best[mod][0]:
            best[mod] = (acc, n)
    assert summary["fusion"]["groups"] == [best[m][1] for m in ("text", "audio", "video")]
    assert f"text {best['text'][1]}" in out
    # Every segment of every split has a prediction of each fine-tuned classifier.
    assert all(summary[n]["rows"] == DIALOGS * PER_DIALOG for n in FINETUNED)
    # The embeddings come from the fine-tuned encoders, not the base models.
    prov = store.groups()["text.roberta"]
    assert prov["model_path"] == str((project / "finetuned" / "text.roberta").resolve())

    # Annotations for the sampled task: two annotators, both rounds; then Table 5 appears.
    from ambiguity.annotate.tasks import load_task

    task = load_task(store, "study")
    rng = np.random.default_rng(1)
    with (project / "answers.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["annotator", "item", "round", "judgment"])
        for item in task.items["item"].to_list():
            for who in ("author", "external"):
                for rnd in ("unimodal", "multimodal"):
                    w.writerow([who, item, rnd, rng.choice(["empathetic", "neutral"])])
    r = CliRunner().invoke(main, ["--store", str(project / "store"), "annotations", "import", "answers.csv", "--task", "study"])
    assert r.exit_code == 0, r.output
    ran, _, out = run(project)
    assert ran == ["report"], out

    report = project / "report"
    for t in TABLES:
        assert (report / "tables" / f"{t}.md").is_file(), t
    for f in FIGURES:
        assert list((report / "figures").glob(f"{f}*.png")), f
    assert not (report / "errors.log").exists()

    ran, skipped, _ = run(project)
    assert ran == [] and len(skipped) == 1 + 2 * len(FINETUNED) + 3 + 3

    # One fine-tuning parameter of one model: that model's finetune, its embeddings, the fusion
    # model (the best of the modality may change) and the report; nothing else.
    cfg = project / "empspeech.toml"
    text = cfg.read_text()
    old = 'model = "models/wav2vec2-base"\nparams = { epochs = 15, lr = 5e-6'
    assert text.count(old) == 1
    cfg.write_text(text.replace(old, 'model = "models/wav2vec2-base"\nparams = { epochs = 15, lr = 1e-5'))
    ran, _, out = run(project)
    assert ran == ["finetune:audio.wav2vec2", "extract:audio.wav2vec2", "train", "report"], out
    assert "task 'study' has annotations: kept" in out


def test_crossfit_on_finetuned_embeddings_is_refused_and_fixed_warns(env):
    project = env
    if not (project / "store").exists():
        run(project)
    store = str(project / "store")
    groups = ["text.roberta", "audio.hubert", "video.videomae"]
    # cross-fitting on fine-tuned embeddings: one line saying why and what to do, nothing written
    from ambiguity import open_store

    before = open_store(store).has_table("fits")
    r = CliRunner().invoke(main, ["--store", store, "train", *groups, "--folds", "2", "--epochs", "1"])
    assert r.exit_code != 0 and len(r.output.strip().splitlines()) == 1, r.output
    assert "cannot cross-fit on text.roberta, audio.hubert, video.videomae: its encoder was fine-tuned" in r.output
    assert "frozen (not fine-tuned) embeddings" in r.output
    assert open_store(store).has_table("fits") == before
    # the paper chain with [train] folds refuses the same way
    cfg = project / "empspeech.toml"
    text = cfg.read_text()
    assert text.count("[train]\n") == 1
    try:
        cfg.write_text(text.replace("[train]\n", "[train]\nfolds = 2\n"))
        r = CliRunner().invoke(main, ["run", str(cfg)])
        assert r.exit_code != 0 and "cannot cross-fit on" in r.output, r.output
    finally:
        cfg.write_text(text)
    # the fixed scheme trains, and warns once that fusion on these embeddings is stacked in sample
    r = CliRunner().invoke(main, ["--store", store, "train", *groups, "--no-unimodal", "--epochs", "1", "--fusion-name", "fusion_ft_check"])
    assert r.exit_code == 0, r.output
    assert r.output.count("stacked in sample") == 1
