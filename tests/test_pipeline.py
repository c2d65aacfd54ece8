"""`ambiguity run`: all stages on the first run, none when nothing changed, only the affected ones
when one extractor parameter changes."""

from __future__ import annotations

import csv

import pytest
from click.testing import CliRunner

from ambiguity.cli import main

CONFIG = """
store = "store"
manifest = "manifest.csv"
report = "report"
workers = 2

[[extract]]
extractor = "prosody"
params = {{ pitch_floor = {floor} }}

[[extract]]
extractor = "opensmile"

[train]
groups = ["prosody", "opensmile.egemaps"]
epochs = 2
seed = 0

[report_settings]
splits = ["train", "val", "test"]
audio_model = "prosody"
audio_groups = ["prosody"]
permutations = 100
"""


@pytest.fixture
def project(tmp_path, speech_dir):
    arousal = dict(r for r in csv.reader((speech_dir / "arousal.csv").open()) if len(r) == 2)
    med = sorted(float(v) for v in arousal.values())[len(arousal) // 2]
    with (tmp_path / "manifest.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["segment_id", "media", "label"])
        for f, v in sorted(arousal.items()):
            w.writerow([f.removesuffix(".wav"), speech_dir / f, "high" if float(v) >= med else "low"])
    (tmp_path / "pipeline.toml").write_text(CONFIG.format(floor=75))
    return tmp_path


def run(project):
    r = CliRunner().invoke(main, ["run", str(project / "pipeline.toml")], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    ran = [line.split()[1] for line in r.output.splitlines() if line.startswith("[run]")]
    skipped = [line.split()[1].rstrip(":") for line in r.output.splitlines() if line.startswith("[skip]")]
    return ran, skipped


def test_stages_rerun_only_when_their_inputs_change(project):
    ran, skipped = run(project)
    assert ran == ["ingest", "extract:prosody", "extract:opensmile.egemaps", "train", "report"] and not skipped
    assert (project / "report" / "index.html").exists()

    ran, skipped = run(project)
    assert ran == [] and len(skipped) == 5

    (project / "pipeline.toml").write_text(CONFIG.format(floor=90))
    ran, skipped = run(project)
    assert ran == ["extract:prosody", "train", "report"]
    assert skipped == ["ingest", "extract:opensmile.egemaps"]
    from ambiguity import open_store

    assert open_store(project / "store").groups()["prosody"]["params"]["pitch_floor"] == 90


def test_config_errors_are_one_line(tmp_path):
    (tmp_path / "bad.toml").write_text('manifest = "m.csv"\nbogus = 1\n')
    r = CliRunner().invoke(main, ["run", str(tmp_path / "bad.toml")])
    assert r.exit_code == 2 and "unknown key(s) bogus" in r.output and len(r.output.strip().splitlines()) == 1


FINETUNE_CONFIG = """
store = "store"
manifest = "texts.csv"
report = "report"

[[finetune]]
name = "text.rob"
modality = "text"
model = "base"
params = {{ epochs = 1, max_length = 64, device = "cpu" }}
extract = {{ max_length = 64, device = "cpu" }}
{extra}
"""


@pytest.mark.slow  # ~2 min on the shared 2-core machine: four runs with a report each
def test_finetune_stage_reruns_when_the_base_weights_change(tmp_path):
    """The finetune fingerprint holds the base model's weights: new files at the same path rerun it."""
    import sys
    from pathlib import Path

    import polars as pl

    sys.path.insert(0, str(Path(__file__).parent / "extractors"))
    import tiny_models

    essays = pl.read_csv(Path(__file__).parents[1] / "examples" / "data" / "empathic-reactions" / "messages.csv",
                         infer_schema=False, n_rows=20)
    split = ["train"] * 12 + ["val"] * 4 + ["test"] * 4
    essays.select(pl.col("message_id").alias("segment_id"), pl.col("essay").str.slice(0, 200).alias("transcript"),
                  pl.col("empathy_bin").alias("label"), pl.Series("split", split)).write_csv(tmp_path / "texts.csv")
    tiny_models.text_model("roberta", tmp_path / "base")
    (tmp_path / "pipeline.toml").write_text(FINETUNE_CONFIG.format(extra=""))
    ran, _ = run(tmp_path)
    assert ran == ["ingest", "finetune:text.rob", "extract:text.rob", "report"]
    assert run(tmp_path)[0] == []

    tiny_models._seeded(7)  # the same architecture with other weights, saved over the base model
    from transformers import AutoConfig, AutoModel

    AutoModel.from_config(AutoConfig.from_pretrained(tmp_path / "base")).save_pretrained(tmp_path / "base")
    assert run(tmp_path)[0] == ["finetune:text.rob", "extract:text.rob", "report"]

    # Probes on a fine-tuned group would overwrite the fine-tuned classifier of the same name: refused.
    (tmp_path / "pipeline.toml").write_text(FINETUNE_CONFIG.format(extra='[train]\ngroups = ["best:text"]\nfusion = false'))
    r = CliRunner().invoke(main, ["run", str(tmp_path / "pipeline.toml")])
    assert r.exit_code == 2 and "set unimodal = false" in r.output.strip().splitlines()[-1]
