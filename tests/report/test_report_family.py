"""The report's family="report": the audio and AU comparisons are corrected as one family (issue 25)."""

from __future__ import annotations

import numpy as np
import polars as pl
from numpy.testing import assert_allclose

from ambiguity.errors import MissingGroupError
from ambiguity.report.build import Report, ReportSettings
from ambiguity.stats.comparisons import compare_quadrant_frame


def _qc(seed):
    rng = np.random.default_rng(seed)
    n = 200
    ids = [f"s{i}" for i in range(n)]
    quad = rng.choice(["red", "green", "blue"], n)
    feats = pl.DataFrame({"segment_id": ids, "a": rng.normal(size=n) + (quad == "red"), "b": rng.normal(size=n)})
    quads = pl.DataFrame({"segment_id": ids, "quadrant": quad, "label": rng.integers(0, 2, n).astype(str)})
    return compare_quadrant_frame(feats, quads)


def _holm(p):  # Holm's step-down definition
    o = np.argsort(p)
    adj, running = np.empty(len(p)), 0.0
    for i, j in enumerate(o):
        running = max(running, min(1.0, (len(p) - i) * p[j]))
        adj[j] = running
    return adj


def test_family_report_corrects_audio_and_au_tables_together(tmp_path, monkeypatch):
    rep = Report(store=None, out=tmp_path, settings=ReportSettings(family="report"))  # type: ignore[arg-type]
    made = {"audio": _qc(1), "video": _qc(2)}
    monkeypatch.setattr(rep, "_compare", lambda model, modality, groups, columns: (modality, groups, made[modality]))
    _, _, audio = rep.audio_comparison()
    _, _, au = rep.au_comparison()
    p = np.concatenate([c.table["p"].to_numpy() for qc in (audio, au) for c in qc.comparisons])
    got = np.concatenate([c.table["p_adj"].to_numpy() for qc in (audio, au) for c in qc.comparisons])
    assert_allclose(got, _holm(p), rtol=1e-12)
    assert "every comparison of the report" in audio.describe() and "every comparison of the report" in au.describe()


def test_family_report_with_a_missing_section_keeps_the_other(tmp_path, monkeypatch):
    rep = Report(store=None, out=tmp_path, settings=ReportSettings(family="report"))  # type: ignore[arg-type]

    def compare(model, modality, groups, columns):
        if modality == "video":
            raise MissingGroupError("no openface")
        return modality, groups, _qc(3)

    monkeypatch.setattr(rep, "_compare", compare)
    _, _, audio = rep.audio_comparison()
    assert audio.comparisons[0].family == "report"
    try:
        rep.au_comparison()
    except MissingGroupError as exc:
        assert "no openface" in str(exc)
    else:
        raise AssertionError("the missing AU groups must surface in their own section")
