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
