"""The CLI shows a library error's parameters as the flags of the command that ran (issue 27): the library's
message names ``columns``, ``split``, ``unlabelled``; the user of ``ambiguity ingest`` reads ``--map``, ``--split``,
``--unlabelled``."""

from __future__ import annotations

import click
from click.testing import CliRunner

from ambiguity.cli import main
from ambiguity.cli.app import as_flags
from ambiguity.errors import ConfigError, ManifestError


def test_a_parameter_becomes_the_flag_whose_destination_it_is():
    @click.command()
    @click.option("--map", "columns", multiple=True)
    @click.option("--unlabelled", is_flag=True)
    def cmd(columns, unlabelled):  # pragma: no cover - only its options are read
        pass

    err = ManifestError("m.csv", ["no 'label' column: ingest with columns Label=label, or pass unlabelled"],
                        param=("columns", "unlabelled"))
    assert as_flags(err, cmd) == "m.csv: no 'label' column: ingest with --map Label=label, or pass --unlabelled"
    # without a command, or an option of that name: the name with dashes
    assert as_flags(ConfigError("group_by 'x': no such column", param="group_by")) == "--group-by 'x': no such column"
    # only where a clause starts with the name: the word inside a sentence stays
    err = ConfigError("split 'x': unknown split; use split train", param="split")
    assert as_flags(err) == "--split 'x': unknown split; use --split train"
    assert as_flags(ConfigError("folds 1: too few")) == "folds 1: too few"  # no param: as written


def test_ingest_names_its_flags_where_the_library_names_parameters(tmp_path, monkeypatch):
    monkeypatch.delenv("AMBIGUITY_STORE", raising=False)
    man = tmp_path / "m.csv"
    man.write_text("segment_id,transcript,Label\ns1,a,x\n")
    store = str(tmp_path / "store")
    r = CliRunner().invoke(main, ["--store", store, "ingest", str(man)])
    assert r.exit_code == 2
    assert r.output.strip() == (f"error: {man}: no 'label' column, but 'Label' looks like one: ingest with "
                                "--map Label=label, or pass --unlabelled to ingest the set without labels on purpose")
    r = CliRunner().invoke(main, ["--store", store, "ingest", str(man), "--split", "nonsense"])
    assert r.exit_code == 2 and r.output.strip().startswith(f"error: {man}: --split 'nonsense': unknown split"), r.output
    r = CliRunner().invoke(main, ["--store", store, "ingest", str(man), "--map", "Label=segment_id"])
    assert r.exit_code == 2 and "error: " in r.output and f"{man}: --map Label=segment_id: the manifest already has" in r.output
    man.write_text("segment_id,transcript,label,label3\ns1,a,x,y\n")
    r = CliRunner().invoke(main, ["--store", store, "ingest", str(man), "--map", "label3=label"])
    assert r.exit_code == 2 and "rename it too (--map label=label_orig, --map label3=label)" in r.output, r.output
