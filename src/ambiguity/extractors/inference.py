"""The inference engine shared by the model extractors (text, text.minilm, audio, video, vad).

A model extractor splits its work in two:

- :meth:`ModelExtractor.prepare` (CPU): decode audio or frames, tokenize; returns
  picklable :class:`Prepared` items, so the runner can run it in a thread or in
  spawn worker processes ahead of the model (prefetch);
- :meth:`ModelExtractor.forward`: one padded batch through the model, under
  ``torch.inference_mode`` and, on a GPU, bf16/fp16 autocast.

Models load from a local directory, or from the Hugging Face cache by hub id,
never from the network unless ``AMBIGUITY_ALLOW_DOWNLOAD=1`` is set.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, cast

import numpy as np
import pyarrow as pa

from ambiguity.devices import resolve_device
from ambiguity.errors import ExtractorError, ModelNotFoundError
from ambiguity.extractors.base import Empty, Extractor, Failure, Result
from ambiguity.inputs import SegmentInput

#: Weight files hashed for provenance.
WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.pt", "*.pth")
ALLOW_DOWNLOAD_ENV = "AMBIGUITY_ALLOW_DOWNLOAD"


@dataclass(frozen=True)
class Prepared:
    """One segment after the CPU half: ``data`` goes to :meth:`ModelExtractor.forward`.

    ``length`` (tokens, samples, frames) is what batches are sorted by, so that
    segments of similar length share a batch and padding stays small.
    """

    length: int
    data: Any
    info: dict[str, Any] = field(default_factory=dict)


# -- finding models ---------------------------------------------------------------------
@dataclass(frozen=True)
class ModelSource:
    """Where a model's files are: ``path`` is always a local directory."""

    model: str  # what the user named: a hub id or a directory
    path: Path
    revision: str | None  # the hub commit of a cached snapshot; None for a plain directory

    @property
    def is_hub(self) -> bool:
        return self.revision is not None


def _not_found(model: str, why: str) -> ModelNotFoundError:
    return ModelNotFoundError(
        f"model {model!r} {why}; ambiguity loads models offline: download it where there is network "
        f"(`hf download {model} --local-dir DIR`) and pass model DIR, or set {ALLOW_DOWNLOAD_ENV}=1 to let it download",
        param="model")


@lru_cache(maxsize=32)
def resolve_model(model: str, revision: str | None = None) -> ModelSource:
    """A local directory holding ``model``: the directory itself, or its snapshot in the hub cache."""
    if not model or not model.strip():
        raise ExtractorError("no model given: pass model HUB_ID_OR_DIRECTORY", param="model")
    p = Path(model).expanduser()
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise ModelNotFoundError(
                f"model {p} has no config.json: point it at the folder that save_pretrained() wrote", param="model"
            )
        p = p.resolve()
        # A folder inside the hub cache (.../snapshots/<commit>) still knows its revision.
        return ModelSource(model, p, p.name if p.parent.name == "snapshots" else None)
    if p.exists():
        raise ModelNotFoundError(f"model {p} is a file: point it at the model's folder (with config.json)", param="model")
    if model.startswith((".", "/", "~")) or model.count("/") > 1:
        raise ModelNotFoundError(f"model {p}: no such directory; check the path", param="model")
    allow = os.environ.get(ALLOW_DOWNLOAD_ENV) == "1" and os.environ.get("HF_HUB_OFFLINE", "0") in ("0", "", "false")
    try:
        from huggingface_hub import snapshot_download

        path = Path(snapshot_download(model, revision=revision, cache_dir=_hub_cache(), local_files_only=not allow))
    except ImportError:
        raise _not_found(model, "is not a local directory (and huggingface_hub is not installed)") from None
    except Exception:  # LocalEntryNotFoundError, RepositoryNotFoundError, HFValidationError, network errors
        raise _not_found(model, "is not a local directory and not in the Hugging Face cache") from None
    if not (path / "config.json").is_file():
        raise _not_found(model, "is in the Hugging Face cache without its config.json")
    return ModelSource(model, path, path.name)


def _hub_cache() -> str | None:
    """The cache named by the environment now (huggingface_hub reads it once, at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return os.path.join(os.environ["HF_HOME"], "hub")
    return None


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(f"cannot read {path}: {exc}") from None


def model_config(source: ModelSource) -> dict[str, Any]:
    """config.json as a dict: cheap, for the output width before the model loads."""
    return read_json(source.path / "config.json")


def weight_files(path: Path) -> list[Path]:
    files = {f for pat in WEIGHT_PATTERNS for f in path.glob(pat) if f.is_file()}
    return sorted(files)


def weights_sha256(path: Path) -> str | None:
    """Which weights made these features: sha256 over each weight file's name and sha256.

    A file's own sha256 is not recomputed on every run (gigabytes for large models): in
    the Hugging Face cache it is the name of the blob the snapshot links to; otherwise
    it is computed once and cached by path, size and mtime (:func:`file_sha256`).
    """
    files = weight_files(path)
    if not files:
        return None
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.name}\0{file_sha256(f)}\n".encode())
    return h.hexdigest()


_HEX64 = re.compile(r"[0-9a-f]{64}")


def file_sha256(f: Path) -> str:
    """sha256 of a file's bytes: its hub blob name, else from the disk cache, else read (and cached)."""
    from ambiguity.extractors import diskcache

    real = f.resolve()
    if f.is_symlink() and real.parent.name == "blobs" and _HEX64.fullmatch(real.name):
        return real.name  # LFS blobs are named by their sha256 (huggingface_hub's cache layout)
    st = real.stat()
    key = f"{real}|{st.st_size}|{st.st_mtime_ns}"
    cached = diskcache.load("weights-sha256").get(key)
    if cached:
        return cached
    h = hashlib.sha256()
    with open(real, "rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    diskcache.put("weights-sha256", key, h.hexdigest())
    return h.hexdigest()


def slug(model: str) -> str:
    """A feature-group-safe short name of a model: 'FacebookAI/roberta-base' -> 'roberta-base'."""
    base = Path(model.rstrip("/\\")).name or model
    return re.sub(r"[^A-Za-z0-9_.\-]+", "-", base).strip("-.") or "model"


# -- devices and precision ----------------------------------------------------------------
def pick_dtype(name: str, device) -> str:
    """The compute precision: auto is bf16 (fp16 without bf16 support) on a GPU, float32 on a CPU."""
    import torch

    if name == "auto":
        if device.type != "cuda":
            return "float32"
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    if name == "float16" and device.type != "cuda":
        raise ExtractorError("dtype float16 needs a CUDA device; on a CPU use float32 or bfloat16")
    return name


def autocast(device, dtype: str):
    """Mixed precision for the forward pass; nothing for float32."""
    import torch

    if dtype == "float32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=getattr(torch, dtype))


@contextlib.contextmanager
def _quiet_loading():
    """No 'Loading weights' progress bar from transformers on every run."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


def length_buckets(lengths: Sequence[int], size: int) -> list[list[int]]:
    """Indices in batches of ``size``, longest first: the least padding, and memory peaks show early."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i : i + size] for i in range(0, len(order), size)]


def exact_buckets(lengths: Sequence[int], size: int) -> list[list[int]]:
    """Batches of equal-length items only: for models that cannot take an attention mask."""
    groups: dict[int, list[int]] = {}
    for i, n in enumerate(lengths):
        groups.setdefault(n, []).append(i)
    return [g[i : i + size] for n in sorted(groups) for g in [groups[n]] for i in range(0, len(g), size)]


# -- the base class -------------------------------------------------------------------------
class ModelExtractor(Extractor):
    """An extractor backed by a neural model: prepare on CPU, forward in padded batches.

    Subclasses implement :meth:`load` (the model), :meth:`setup_prepare` (light
    CPU-side state: tokenizer, feature extractor, processor config),
    :meth:`prepare` and :meth:`forward`. Their ``Params`` carry ``device``,
    ``dtype`` and ``threads``.
    """

    kind = "model"
    auto = False
    requires: ClassVar[tuple[str, ...]] = ("torch", "transformers")
    #: Runner batches pooled and sorted by length before the forward pass (1: no pooling).
    bucket_batches: ClassVar[int] = 4

    _model: Any = None
    _prepared_ready: bool = False

    # a run resumed on another device continues its group
    runtime_params = frozenset({"device", "threads"})

    #: What the extractor needs when no --model is given, e.g. "a model: --model HUB_ID_OR_DIRECTORY
    #: (e.g. roberta-base)"; None: :meth:`validate` does not ask for one.
    missing_model: ClassVar[str | None] = None

    # -- configuration ---------------------------------------------------------------
    def validate(self) -> None:
        if self.missing_model and not self.model_id():
            raise ExtractorError(f"extractor {self.name!r} needs {self.missing_model}")

    def source(self) -> ModelSource:
        return resolve_model(self.model_id(), getattr(self.params, "revision", None))

    def model_id(self) -> str:
        return getattr(self.params, "model", "")

    def default_group(self) -> str:
        return f"{self.name}.{slug(self.model_id())}"

    def dim(self) -> int:
        """Width of the model's hidden states, from config.json (before the model loads)."""
        cfg = model_config(self.source())
        d = cfg.get("hidden_size") or cfg.get("dim") or cfg.get("d_model")
        if not d:
            raise ModelNotFoundError(f"{self.source().path}/config.json names no hidden_size")
        return int(d)

    def columns(self) -> list[pa.Field]:
        """One ``vector`` column of :meth:`dim` float32 values."""
        return [pa.field("vector", pa.list_(pa.float32(), self.dim()))]

    def extra_provenance(self) -> dict[str, Any]:
        # Called by the runner before it touches the store: an unusable device or dtype stops here.
        device = resolve_device(getattr(self.params, "device", "auto"))
        dtype = pick_dtype(getattr(self.params, "dtype", "auto"), device)
        src = self.source()
        return {
            "model": src.model,
            "model_path": str(src.path),
            "revision": src.revision,
            "weights_sha256": weights_sha256(src.path),
            "device": device.type,
            "dtype": dtype,
        }

    # -- lifecycle -------------------------------------------------------------------
    def setup_prepare(self) -> None:
        """Load what :meth:`prepare` needs (tokenizer, feature extractor); cheap, once per worker."""

    @abstractmethod
    def load(self, device) -> Any:
        """Build the model from :meth:`source`, in eval mode, on ``device``."""

    def from_pretrained(self, cls, part: str | None = None) -> Any:
        """``cls.from_pretrained`` on :meth:`source`, offline; ``part`` names what is loaded when
        it is not the model itself ("the tokenizer")."""
        src = self.source()
        try:
            return cls.from_pretrained(str(src.path), local_files_only=True)
        except (OSError, ValueError) as exc:
            what = f"{part} of {src.model!r}" if part else repr(src.model)
            raise ModelNotFoundError(f"cannot load {what} from {src.path}: {exc}") from None

    def check_layer(self, model, layer: int) -> Any:
        """``model``, if it has hidden state ``layer`` (0..n, or negative from the end)."""
        n = getattr(model.config, "num_hidden_layers", None)
        if n is not None and not -(n + 1) <= layer <= n:
            raise ExtractorError(f"layer={layer}: {self.source().model} has {n} layers (use 0..{n}, or negative from the end)")
        return model

    def setup(self) -> None:
        """Load the model once; later calls do nothing."""
        if self._model is not None:
            return
        import torch

        threads = getattr(self.params, "threads", None)
        if threads:
            torch.set_num_threads(int(threads))
        if not self._prepared_ready:
            self.setup_prepare()
            self._prepared_ready = True
        self.device = resolve_device(getattr(self.params, "device", "auto"))
        self.dtype = pick_dtype(getattr(self.params, "dtype", "auto"), self.device)
        with _quiet_loading():
            model = self.load(self.device)
        model.eval()
        self._model = model

    def ensure_prepare(self) -> None:
        if not self._prepared_ready:
            self.setup_prepare()
            self._prepared_ready = True

    def run_model(self, **inputs):
        """The model's forward under inference mode and the chosen precision."""
        import torch

        with torch.inference_mode(), autocast(self.device, self.dtype):
            return self._model(**inputs)

    # -- the two halves --------------------------------------------------------------
    @abstractmethod
    def prepare(self, batch: Sequence[SegmentInput]) -> list[Prepared | Failure | Empty]:
        """CPU work per segment (decode, tokenize): picklable, no model needed."""

    @abstractmethod
    def forward(self, items: Sequence[Prepared]) -> list[Result]:
        """One batch of prepared items through the model; one result per item, in order."""

    def process(self, batch: Sequence[SegmentInput]) -> list[Result]:
        """prepare + forward in one call (sorted by length): what non-pipelined callers use."""
        self.ensure_prepare()
        self.setup()
        prepped = self.prepare(batch)
        out: list[Result | None] = [p if isinstance(p, (Failure, Empty)) else None for p in prepped]
        idx = [i for i, p in enumerate(prepped) if isinstance(p, Prepared)]
        if idx:
            for bucket in length_buckets([cast(Prepared, prepped[i]).length for i in idx], len(idx)):
                chosen = [idx[j] for j in bucket]
                for i, r in zip(chosen, self.forward([cast(Prepared, prepped[i]) for i in chosen]), strict=True):
                    out[i] = r
        return out  # type: ignore[return-value]


def checked(row: dict[str, Any]) -> Result:
    """The row, or a Failure if the model produced NaN or inf (e.g. an fp16 overflow)."""
    for v in row.values():
        if isinstance(v, (float, np.ndarray, np.floating)) and not np.all(np.isfinite(v)):
            return Failure("the model's output is not finite (NaN or inf); with fp16 try the parameter dtype=float32")
    return row


def transcript_or_reason(seg: SegmentInput) -> str | Failure | Empty:
    """The transcript to embed, or why there is none."""
    err = seg.metadata.get("_transcript_error") if seg.metadata else None
    if err:
        return Failure(str(err))
    text = seg.transcript
    if text is None or not text.strip():
        return Empty("no transcript")
    return text
