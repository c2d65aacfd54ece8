"""Video embeddings from VideoMAE / TimeSformer: frames sampled over the segment, one pooled vector.

Frames come from :func:`ambiguity.media.sample_frames` (PyAV, decoding forward
from the keyframe before the segment). Resizing, centre cropping and
normalisation follow the model's ``preprocessor_config.json`` and use PIL and
numpy only, so torchvision is not needed; the result matches transformers'
``VideoMAEImageProcessorPil``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ambiguity.devices import Device, DType
from ambiguity.errors import ExtractorError, ModelNotFoundError
from ambiguity.extractors.base import Empty, Failure, Result
from ambiguity.extractors.inference import ModelExtractor, Prepared, checked, model_config, read_json
from ambiguity.inputs import SegmentInput

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Model types whose first output token is a [CLS] token (pooled with ``cls`` by default).
_CLS_MODELS = ("timesformer", "vivit")


@dataclass(frozen=True)
class VideoParams:
    model: str = ""
    num_frames: int | None = None
    pooling: Literal["auto", "mean", "cls"] = "auto"
    revision: str | None = None
    dtype: DType = "auto"
    device: Device = "auto"
    threads: int | None = None


@dataclass(frozen=True)
class FrameTransform:
    """The processor's resize, centre crop, rescale and normalise steps, read from its config."""

    size: dict[str, int] | None  # {"shortest_edge": n} or {"height": h, "width": w}; None: no resize
    resample: int
    crop: tuple[int, int] | None  # (height, width)
    rescale: float | None
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None

    @classmethod
    def from_config(cls, pre: dict[str, Any], image_size: int) -> FrameTransform:
        size = pre.get("size", {"shortest_edge": image_size}) if pre.get("do_resize", True) else None
        if isinstance(size, int):
            size = {"shortest_edge": size}
        crop = pre.get("crop_size", {"height": image_size, "width": image_size})
        if isinstance(crop, int):
            crop = {"height": crop, "width": crop}
        return cls(
            size=dict(size) if size else None,
            resample=int(pre.get("resample", 2)),  # PIL bilinear
            crop=(int(crop["height"]), int(crop["width"])) if pre.get("do_center_crop", True) else None,
            rescale=float(pre.get("rescale_factor", 1 / 255)) if pre.get("do_rescale", True) else None,
            mean=tuple(pre.get("image_mean", IMAGENET_MEAN)) if pre.get("do_normalize", True) else None,
            std=tuple(pre.get("image_std", IMAGENET_STD)) if pre.get("do_normalize", True) else None,
        )

    def out_size(self, h: int, w: int) -> tuple[int, int]:
        """(height, width) after resizing, as transformers computes it."""
        if self.size is None:
            return h, w
        if "shortest_edge" in self.size:
            s = int(self.size["shortest_edge"])
            short, long = (w, h) if w <= h else (h, w)
            new_long = int(s * long / short)
            return (new_long, s) if w <= h else (s, new_long)
        if "height" in self.size and "width" in self.size:
            return int(self.size["height"]), int(self.size["width"])
        raise ModelNotFoundError(f"preprocessor size {self.size}: expected shortest_edge, or height and width")

    def frame(self, rgb: np.ndarray) -> np.ndarray:
        """Resize and crop one HxWx3 uint8 frame; still uint8 (rescaling happens on the device)."""
        from PIL import Image

        h, w = rgb.shape[:2]
        nh, nw = self.out_size(h, w)
        if (nh, nw) != (h, w):
            rgb = np.asarray(Image.fromarray(rgb).resize((nw, nh), resample=self.resample, reducing_gap=None))
        if self.crop is not None:
            ch, cw = self.crop
            h, w = rgb.shape[:2]
            if ch > h or cw > w:  # pad with zeros to the crop size, centred, as transformers does
                top, left = max(ch - h, 0) // 2, max(cw - w, 0) // 2
                padded = np.zeros((max(h, ch), max(w, cw), 3), dtype=rgb.dtype)
                padded[top : top + h, left : left + w] = rgb
                rgb, h, w = padded, padded.shape[0], padded.shape[1]
            top, left = (h - ch) // 2, (w - cw) // 2
            rgb = rgb[top : top + ch, left : left + cw]
        return np.ascontiguousarray(rgb)


class VideoEmbedder(ModelExtractor):
    """A pooled embedding of ``num_frames`` frames sampled uniformly over the segment.

    ``num_frames`` defaults to the model's (16 for VideoMAE, 8 for TimeSformer);
    ``pooling``: ``auto`` takes the [CLS] token of TimeSformer and the mean of
    all tokens of VideoMAE (as their classifiers do).
    """

    name = "video"
    modality = "video"
    version = "1"
    Params = VideoParams
    batch_size = 4
    bucket_batches = 1  # every clip has the same shape: nothing to sort

    missing_model = "a model: --model HUB_ID_OR_DIRECTORY (e.g. MCG-NJU/videomae-base)"

    def validate(self) -> None:
        super().validate()
        n = self.params.num_frames
        if n is not None and n < 1:
            raise ExtractorError(f"num_frames={n}: use at least 1")

    def _cfg(self) -> dict[str, Any]:
        return model_config(self.source())

    def frames_per_clip(self) -> int:
        cfg = self._cfg()
        n = self.params.num_frames or cfg.get("num_frames")
        if not n:
            raise ExtractorError(f"{self.source().model}: config.json has no num_frames; set the parameter num_frames=N")
        tubelet = int(cfg.get("tubelet_size", 1))
        if n % tubelet:
            raise ExtractorError(f"num_frames={n} is not a multiple of the model's tubelet_size {tubelet}")
        return int(n)

    def pooling(self) -> str:
        if self.params.pooling != "auto":
            return self.params.pooling
        return "cls" if self._cfg().get("model_type") in _CLS_MODELS else "mean"

    def transform(self) -> FrameTransform:
        src = self.source()
        pre = read_json(src.path / "preprocessor_config.json") or read_json(src.path / "video_preprocessor_config.json")
        return FrameTransform.from_config(pre, int(self._cfg().get("image_size", 224)))

    def extra_provenance(self) -> dict[str, Any]:
        t = self.transform()
        return {
            **super().extra_provenance(),
            "pooling": self.pooling(),
            "num_frames": self.frames_per_clip(),
            "frame_transform": {"size": t.size, "crop": t.crop, "mean": t.mean, "std": t.std, "resample": t.resample},
        }

    # -- loading ----------------------------------------------------------------------
    def setup_prepare(self) -> None:
        self._transform = self.transform()
        self._num = self.frames_per_clip()
        self._pool = self.pooling()

    def load(self, device):
        from transformers import AutoModel

        return self.from_pretrained(AutoModel).to(device)

    # -- the two halves ---------------------------------------------------------------
    def prepare(self, batch: Sequence[SegmentInput]) -> list[Prepared | Failure | Empty]:
        self.ensure_prepare()
        out: list[Prepared | Failure | Empty] = []
        for seg in batch:
            late = _past_the_end(seg)
            if late:
                out.append(Failure(late))
                continue
            frames = seg.frames(num=self._num)
            if not frames:
                out.append(Empty("no video frames in the segment"))
                continue
            clip = [self._transform.frame(rgb) for _, rgb in frames]
            # Decoding can stop short at the very end of a file: repeat the last frame.
            clip += [clip[-1]] * (self._num - len(clip))
            out.append(Prepared(self._num, np.stack(clip), {"frames": len(frames)}))
        return out

    def forward(self, items: Sequence[Prepared]) -> list[Result]:
        import torch

        self.setup()
        t = self._transform
        x = torch.from_numpy(np.stack([it.data for it in items])).to(self.device)  # (B, T, H, W, 3) uint8
        x = x.permute(0, 1, 4, 2, 3).float()  # (B, T, 3, H, W)
        if t.rescale is not None:
            x = x * t.rescale
        if t.mean is not None and t.std is not None:
            mean = torch.tensor(t.mean, dtype=torch.float32, device=x.device).view(1, 1, 3, 1, 1)
            std = torch.tensor(t.std, dtype=torch.float32, device=x.device).view(1, 1, 3, 1, 1)
            x = (x - mean) / std
        h = self.run_model(pixel_values=x).last_hidden_state.float()
        pooled = h[:, 0] if self._pool == "cls" else h.mean(1)
        vecs = pooled.cpu().numpy().astype(np.float32)
        return [checked({"vector": vecs[i]}) for i in range(len(items))]


def _past_the_end(seg: SegmentInput) -> str | None:
    """Why a segment lies outside its video, if it does (sampling would repeat the last frame)."""
    from ambiguity.media import END_TOLERANCE_S, probe

    if seg.media is None or seg.start_s is None:
        return None
    dur = probe(str(seg.media)).duration
    if dur is not None and seg.start_s >= dur - END_TOLERANCE_S:
        return f"segment starts at {seg.start_s:.3f} s, past the end of {seg.media} ({dur:.3f} s)"
    return None
