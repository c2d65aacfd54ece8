"""The inference engine: offline model resolution, buckets, provenance keys, and the runner's model path
(prefetch in a thread or in processes, length buckets, per-segment failures, Ctrl-C, resume)."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from toy_model import Toy

from ambiguity.cli import main
from ambiguity.errors import ExtractorError, ModelNotFoundError
from ambiguity.extractors.inference import (
    exact_buckets,
    length_buckets,
    pick_dtype,
    resolve_model,
    weights_sha256,
)
from ambiguity.extractors.runner import run
from ambiguity.extractors.text import TextEmbedder
from ambiguity.inputs import SegmentInput


@pytest.fixture
def empty_hub_cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache, offline: nothing can be found, nothing is fetched."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("AMBIGUITY_ALLOW_DOWNLOAD", raising=False)
    resolve_model.cache_clear()
    yield
    resolve_model.cache_clear()


def test_hub_id_not_available_offline_is_one_clear_line(empty_hub_cache, store):
    with pytest.raises(ModelNotFoundError) as err:
        resolve_model("FacebookAI/roberta-base")
    msg = str(err.value)
    assert "\n" not in msg and "not in the Hugging Face cache" in msg and "pass model DIR" in msg and err.value.param == "model"

    store.upsert_segments(_one_text_segment())
    r = CliRunner().invoke(main, ["--store", store.uri, "extract", "--extractor", "text", "--model", "FacebookAI/roberta-base"])
    assert r.exit_code == 2
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --model 'FacebookAI/roberta-base'") and "pass --model DIR" in lines[0]


def test_hub_id_in_the_local_cache_loads_offline(empty_hub_cache, tmp_path, roberta_dir):
    """A model in the Hugging Face cache layout (models--org--name/snapshots/<commit>) resolves by hub id."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--someorg--tiny-roberta"
    shutil.copytree(roberta_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    src = resolve_model("someorg/tiny-roberta")
    assert src.revision == commit and src.path.name == commit
    ex = TextEmbedder(model="someorg/tiny-roberta", device="cpu")
    assert ex.default_group() == "text.tiny-roberta"
    assert ex.extra_provenance()["revision"] == commit
    assert ex.process([SegmentInput(segment_id="a", media=None, transcript_value="hi")])[0]["vector"].shape == (32,)


def _one_text_segment() -> pa.Table:
    from ambiguity.stores.schema import SEGMENTS_SCHEMA

    row = {f.name: [None] for f in SEGMENTS_SCHEMA}
    row.update(segment_id=["a"], transcript=["hi"], split=["train"], metadata=["{}"])
    return pa.table(row, schema=SEGMENTS_SCHEMA)


def test_local_paths(tmp_path, roberta_dir):
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        resolve_model(str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="no such directory"):
        resolve_model(str(tmp_path / "missing" / "model"))
    assert resolve_model(str(roberta_dir)).path == roberta_dir.resolve()


def _identity(files: dict[str, bytes]) -> str:
    """The definition, independently: sha256 over "name NUL sha256(bytes) LF", files by name."""
    lines = "".join(f"{n}\0{hashlib.sha256(b).hexdigest()}\n" for n, b in sorted(files.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def test_weights_hash_follows_the_bytes(tmp_path, roberta_dir, monkeypatch):
    monkeypatch.setenv("AMBIGUITY_CACHE_DIR", str(tmp_path / "cache"))
    copy = tmp_path / "copy"
    shutil.copytree(roberta_dir, copy)
    assert weights_sha256(copy) == weights_sha256(roberta_dir)
    want = _identity({"model.safetensors": (copy / "model.safetensors").read_bytes()})
    assert weights_sha256(copy) == want
    raw = bytearray((copy / "model.safetensors").read_bytes())
    raw[-1] ^= 1
    (copy / "model.safetensors").write_bytes(bytes(raw))
    assert weights_sha256(copy) != want
    assert weights_sha256(copy) == _identity({"model.safetensors": bytes(raw)})


def test_weights_are_not_rehashed(tmp_path, roberta_dir, monkeypatch):
    """A hub snapshot's identity comes from its blob names, a folder's from the cache (by path, size, mtime)."""
    from ambiguity.extractors import diskcache

    monkeypatch.setenv("AMBIGUITY_CACHE_DIR", str(tmp_path / "cache"))
    data = (roberta_dir / "model.safetensors").read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    # huggingface_hub's layout: snapshots/<commit>/<file> -> ../../blobs/<sha256 of the file>
    repo = tmp_path / "hub" / "models--x--y"
    (repo / "blobs").mkdir(parents=True)
    (repo / "blobs" / digest).write_bytes(data)
    snap = repo / "snapshots" / ("c" * 40)
    snap.mkdir(parents=True)
    (snap / "model.safetensors").symlink_to(f"../../blobs/{digest}")
    opened = []
    real_open = open
    monkeypatch.setattr("builtins.open", lambda f, *a, **k: opened.append(str(f)) or real_open(f, *a, **k))
    assert weights_sha256(snap) == _identity({"model.safetensors": data})
    assert not [f for f in opened if digest in f]  # the blob was never read
    # A plain folder: read once, then found in the cache file, also by a new process.
    copy = tmp_path / "copy"
    shutil.copytree(roberta_dir, copy)
    assert weights_sha256(copy) == _identity({"model.safetensors": data})
    opened.clear()
    diskcache.forget_loaded()  # as a fresh process: only the cache file is left
    assert weights_sha256(copy) == _identity({"model.safetensors": data})
    assert not [f for f in opened if f.endswith("model.safetensors")]


def test_runtime_params_are_not_part_of_the_configuration(roberta_dir):
    a = TextEmbedder(model=str(roberta_dir), device="cpu", threads=1)
    b = TextEmbedder(model=str(roberta_dir), device="auto")
    c = TextEmbedder(model=str(roberta_dir), pooling="cls")
    assert a.config_key() == b.config_key() != c.config_key()


def test_dtype_choice():
    import torch

    cpu = torch.device("cpu")
    assert pick_dtype("auto", cpu) == "float32"
    with pytest.raises(ExtractorError, match="float16 needs a CUDA device"):
        pick_dtype("float16", cpu)


@given(st.lists(st.integers(1, 50), max_size=40), st.integers(1, 9))
def test_buckets_partition(lengths, size):
    for buckets in (length_buckets(lengths, size), exact_buckets(lengths, size)):
        flat = sorted(i for b in buckets for i in b)
        assert flat == list(range(len(lengths))) and all(1 <= len(b) <= size for b in buckets)
    assert all(len({lengths[i] for i in b}) == 1 for b in exact_buckets(lengths, size))


@given(st.integers(1, 9).flatmap(lambda k: st.tuples(st.just(k), st.lists(st.integers(1, 50), min_size=k, max_size=5 * k))))
def test_sorted_buckets_pad_least(case):
    size, lengths = case
    lengths = lengths[: len(lengths) // size * size]  # whole batches: sorting is then optimal
    def padded(buckets):
        return sum(max(lengths[i] for i in b) * len(b) for b in buckets)

    in_order = [list(range(i, i + size)) for i in range(0, len(lengths), size)]
    shuffled = [list(range(len(lengths)))[::-1][i : i + size] for i in range(0, len(lengths), size)]
    assert padded(length_buckets(lengths, size)) <= min(padded(in_order), padded(shuffled))


# -- the runner's model path, with a toy model (tests/extractors/toy_model.py) ------------------
TEXTS = ["aaaaaaa", "b", "ccc", "boom", "dddddddddd", "ee", "bad", "ffff", "g", "hhhhhh", "iiiii"]
CLEAN = [t for t in TEXTS if t not in ("boom", "bad")]


def _ingest_texts(ingest_rows, texts=TEXTS):
    return ingest_rows([{"segment_id": f"s{i:02d}", "transcript": t} for i, t in enumerate(texts)])


def _expected(text):
    b = np.frombuffer(text.encode(), np.uint8).astype(np.float32)
    return [len(b), b.sum()]


def test_pipeline_sorts_each_window_by_length(store, ingest_rows):
    _ingest_texts(ingest_rows, CLEAN)
    Toy.calls = []
    assert run(store, Toy(), progress=False).ok == len(CLEAN)
    # A window is 4 runner batches of 2 (8 segments, in plan order s00..s07): its forward calls go by length.
    assert [n for call in Toy.calls[:4] for n in call] == sorted((len(t) for t in CLEAN[:8]), reverse=True)
    assert Toy.calls[4] == [len(CLEAN[8])]


def test_pipeline_isolates_failures_and_writes_everything(store, ingest_rows):
    _ingest_texts(ingest_rows)
    report = run(store, Toy(), progress=False)
    assert (report.ok, report.failed) == (9, 2)
    failures = dict(report.failures)
    assert failures["s03"].startswith("RuntimeError: model exploded") and failures["s06"].startswith("ValueError: cannot tokenize")
    df = store.features("toy").sort("segment_id")
    for sid, vec in zip(df["segment_id"], df["vector"].to_list(), strict=True):
        np.testing.assert_allclose(vec, _expected(TEXTS[int(sid[1:])]))


def test_interrupt_keeps_finished_batches_and_resumes(store, ingest_rows):
    _ingest_texts(ingest_rows)
    Toy.calls, Toy.stop_after = [], 2
    try:
        first = run(store, Toy(), progress=False)
    finally:
        Toy.stop_after = 0
    # Ctrl-C in the 2nd forward: the 1st batch (2 ok) and the prepare failure were written.
    assert first.interrupted and (first.ok, first.failed) == (2, 1)
    second = run(store, Toy(), progress=False)
    assert second.skipped == 2 and (second.ok, second.failed) == (7, 2)  # failed rows are retried
    assert store.group_status("toy").height == len(TEXTS)


def test_decode_processes_isolate_failures_too(store, ingest_rows):
    """--workers 2: prepare runs in two spawn processes; rows and failures as with the prefetch thread."""
    _ingest_texts(ingest_rows)
    a = run(store, Toy(), group="thread", progress=False)
    b = run(store, Toy(), group="procs", workers=2, progress=False)
    assert (a.ok, a.failed) == (b.ok, b.failed) == (9, 2) and dict(a.failures) == dict(b.failures)
    ia, va = store.vectors("thread")
    ib, vb = store.vectors("procs")
    np.testing.assert_array_equal(va[np.argsort(ia)], vb[np.argsort(ib)])


def test_a_dead_decode_process_fails_one_batch_and_the_run_goes_on(store, ingest_rows):
    _ingest_texts(ingest_rows, [*CLEAN, "die"])
    report = run(store, Toy(), workers=2, progress=False)
    # The batch in flight fails with the reason; everything else is decoded in this process.
    assert report.ok + report.failed == len(CLEAN) + 1 and 1 <= report.failed <= Toy.batch_size
    assert all("decode worker process died" in reason for _, reason in report.failures)


@pytest.mark.slow
def test_decode_processes_give_the_same_rows(store, ingest_rows, roberta_dir):
    """--workers 2: prepare (tokenize) in two spawn processes; the vectors equal the in-thread run."""
    ingest_rows([{"segment_id": f"s{i:02d}", "transcript": " ".join(["word"] * (i + 1))} for i in range(12)])
    a = run(store, TextEmbedder(model=str(roberta_dir), device="cpu"), group="thread", batch_size=3, progress=False)
    b = run(store, TextEmbedder(model=str(roberta_dir), device="cpu"), group="procs", batch_size=3, workers=2, progress=False)
    assert a.ok == b.ok == 12
    ia, va = store.vectors("thread")
    ib, vb = store.vectors("procs")
    np.testing.assert_allclose(va[np.argsort(ia)], vb[np.argsort(ib)], atol=1e-6)


def test_failed_rows_keep_a_null_vector(store, ingest_rows):
    _ingest_texts(ingest_rows)
    run(store, Toy(), progress=False)
    df = store.features("toy", status=None)
    failed = df.filter(df["status"] == "failed")
    assert failed.height == 2 and failed["vector"].null_count() == 2
    ids, vecs = store.vectors("toy")
    assert len(ids) == 9 and vecs.shape == (9, 2)


def test_forward_failure_message_is_isolated(store, ingest_rows):
    """A failure in forward retries one by one: the bad segment's neighbours in the batch are fine."""
    ingest_rows([{"segment_id": "a", "transcript": "boom"}, {"segment_id": "b", "transcript": "bomb"}])
    report = run(store, Toy(), progress=False)
    assert (report.ok, report.failed) == (1, 1) and report.failures[0][0] == "a"
    assert store.features("toy")["segment_id"].to_list() == ["b"]


@pytest.mark.parametrize("arch", ["roberta", "hubert", "videomae"])
def test_conformance_suite(arch, request):
    """The plugin contract (ambiguity.testing.check_extractor) holds for the model extractors too."""
    from ambiguity.extractors.audio import AudioEmbedder
    from ambiguity.extractors.video import VideoEmbedder
    from ambiguity.testing import check_extractor

    cls = {"roberta": TextEmbedder, "hubert": AudioEmbedder, "videomae": VideoEmbedder}[arch]
    check_extractor(cls, {"model": str(request.getfixturevalue(f"{arch}_dir")), "device": "cpu"})


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without a GPU")
def test_unusable_device_stops_before_the_store_is_touched(store, ingest_rows, roberta_dir):
    ingest_rows([{"segment_id": "a", "transcript": "hello there"}])
    args = ["--store", store.uri, "extract", "--extractor", "text", "--model", str(roberta_dir), "--quiet"]
    assert CliRunner().invoke(main, [*args, "--device", "cpu"]).exit_code == 0
    r = CliRunner().invoke(main, [*args, "--device", "cuda", "--recompute"])
    assert r.exit_code == 2 and r.output.strip() == "error: --device cuda: torch sees no CUDA GPU here; use cpu or auto"
    assert store.group_status("text.roberta").height == 1  # --recompute did not drop the group
