"""Figure 3: one panel per class, every segment drawn once in its quadrant's colour, PNG + SVG."""

from __future__ import annotations

import matplotlib.image
import numpy as np
import polars as pl
import pytest
from matplotlib.colors import to_hex

from ambiguity.constants import QUADRANT_COLOURS
from ambiguity.errors import StatsError
from ambiguity.report.fig_boundary import figure3, write_figure3
from ambiguity.stats.boundary_tests import boundary_arrays


def _frame(n=120, seed=0):
    rng = np.random.default_rng(seed)
    quad = rng.choice(["red", "green", "blue", "yellow", None], n).tolist()
    return pl.DataFrame(
        {"segment_id": [f"s{i}" for i in range(n)], "label": rng.choice(["empathetic", "neutral"], n).tolist(),
         "quadrant": quad, "umap_x": rng.normal(size=n), "umap_y": rng.normal(size=n)},
        schema_overrides={"quadrant": pl.String},
    )


def test_one_panel_per_label_and_points_coloured_by_quadrant():
    df = _frame()
    fig = figure3(df)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == [
        f"label {lab} (n = {df.filter(pl.col('label') == lab).height})" for lab in ("empathetic", "neutral")
    ]
    for ax, lab in zip(axes, ("empathetic", "neutral"), strict=True):
        part = df.filter(pl.col("label") == lab)
        drawn = {}
        for coll in ax.collections:
            colour = to_hex(coll.get_facecolor()[0])
            drawn[colour] = drawn.get(colour, 0) + len(coll.get_offsets())
        for quad, colour in QUADRANT_COLOURS.items():
            assert drawn.get(colour, 0) == part.filter(pl.col("quadrant") == quad).height
        assert sum(drawn.values()) == part.height


def test_writes_png_and_svg(tmp_path):
    paths = write_figure3(_frame(), tmp_path, title="text embeddings")
    assert [p.name for p in paths] == ["figure3_boundary.png", "figure3_boundary.svg"]
    img = matplotlib.image.imread(paths[0])
    assert img.ndim == 3 and img.shape[0] > 300
    svg = paths[1].read_text()
    assert svg.startswith("<?xml") and "label neutral" in svg and "text embeddings" in svg


def test_from_a_boundary_result(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 4))
    res = boundary_arrays(x, ["a", "b"] * 20, k=3, n_permutations=0)
    xy = rng.normal(size=(40, 2))
    seg = res.segments.with_columns(pl.Series("umap_x", xy[:, 0]), pl.Series("umap_y", xy[:, 1]))
    assert len(figure3(seg).axes) == 2
    with pytest.raises(StatsError, match="umap=True"):
        figure3(res)


def test_nothing_to_draw():
    df = _frame().with_columns(pl.lit(None, pl.Float64).alias("umap_x"))
    with pytest.raises(StatsError, match="no segment"):
        figure3(df)


@pytest.mark.slow  # UMAP's numba compile (~15 s)
def test_report_section_samples_query_segments_above_its_size_and_says_so(store, tmp_path, monkeypatch):
    from types import SimpleNamespace

    import pyarrow as pa

    from ambiguity.report.html import Section
    from ambiguity.report.sections import boundary as section
    from ambiguity.stats.stability import SchemeUsed

    rng = np.random.default_rng(3)
    n = 400
    ids = [f"seg{i:03d}" for i in range(n)]
    lab = rng.choice(["empathetic", "neutral"], n)
    x = (rng.normal(size=(n, 8)) + np.where(lab == "neutral", 1.0, 0.0)[:, None]).astype(np.float32)
    store.upsert_segments(pa.table({"segment_id": ids, "media": [None] * n, "audio": [None] * n, "start_s": [0.0] * n,
                                    "end_s": [1.0] * n, "transcript": [None] * n, "label": lab.tolist(),
                                    "split": ["test"] * n, "metadata": [None] * n}))
    vec = pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), 8)
    tbl = pa.table({"segment_id": ids, "status": ["ok"] * n, "error": [None] * n, "vector": vec})
    store.write_features("emb", tbl, tbl.schema, {"extractor": "fake", "extractor_version": "1", "params": {}, "config_key": "k"})
    quads = pl.DataFrame({"segment_id": ids, "quadrant": rng.choice(["red", "green", "blue", "yellow"], n).tolist()})
    monkeypatch.setattr(section, "SAMPLE_ABOVE", 100)
    monkeypatch.setattr(section, "QUERY_SAMPLE", 20)
    monkeypatch.setattr(section, "UMAP_MIN", 50)
    captions: dict[str, str] = {}
    rep = SimpleNamespace(
        store=store, out=tmp_path, s=SimpleNamespace(text_model="text", text_group="emb", permutations=200),
        pick=lambda explicit, modality: explicit, summary=lambda: {}, quadrants=lambda model: quads,
        quadrant_result=lambda model: SimpleNamespace(scheme=SchemeUsed("fixed", ("test",))),
        table=lambda stem, df, caption: captions.update({stem: caption}) or [],
    )
    sec = Section("figure3", "Figure 3")
    section.build(rep, sec)
    assert "seeded sample of at most 20 segments per quadrant (80 in all), searched among all 400 segments" in captions["boundary_tests"]
    assert "summary and tests are of the sample" in sec.markdown
    assert [p.suffix for p in sec.files] == [".png", ".svg"]
    assert "of a seeded sample of at most 20 segments per quadrant (80 of 400" in sec.files[1].read_text()


def test_a_long_title_is_wrapped_inside_the_figure():
    # the sampled caption of a 10^6-segment report (report/sections/boundary.py) was cut off at both edges
    title = ("minilm: UMAP (cosine) of a seeded sample of at most 1,000 segments per quadrant (4,000 of 1,000,000; "
             "neighbours searched among all), coloured by quadrant")
    fig = figure3(_frame(), title=title)
    fig.canvas.draw()
    text = fig._suptitle
    box, page = text.get_window_extent(), fig.bbox
    assert "\n" in text.get_text() and text.get_text().replace("\n", " ") == title
    assert box.x0 >= page.x0 and box.x1 <= page.x1
