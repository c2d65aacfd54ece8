"""`video`: tiny VideoMAE and TimeSformer; frames prepared as transformers' PIL image processor does."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ambiguity.cli import main
from ambiguity.errors import ExtractorError
from ambiguity.extractors.video import FrameTransform, VideoEmbedder
from ambiguity.inputs import SegmentInput
from ambiguity.media import sample_frames


def clips(faces_dir, n=6):
    src = str(faces_dir / "WolfgangLanger_Pexels.mp4")  # 19.7 s, 24 fps
    return [SegmentInput(segment_id=f"v{i}", media=src, start_s=1.5 * i, end_s=1.5 * i + 1.0 + 0.25 * i) for i in range(n)]


def processor(model_dir):
    from transformers.models.videomae.image_processing_pil_videomae import VideoMAEImageProcessorPil

    return VideoMAEImageProcessorPil.from_pretrained(model_dir)


def test_frame_transform_matches_the_transformers_processor(faces_dir):
    import json

    frames = [f for _, f in sample_frames(str(faces_dir / "WolfgangLanger_Pexels.mp4"), 2.0, 3.0, num=3)]
    # Non-default settings: shortest edge 224 on a 16:9 frame, bicubic, crop 200, CLIP-like mean/std.
    pre = {"size": {"shortest_edge": 224}, "resample": 3, "crop_size": {"height": 200, "width": 200},
           "image_mean": [0.48, 0.46, 0.41], "image_std": [0.27, 0.26, 0.28]}
    from transformers.models.videomae.image_processing_pil_videomae import VideoMAEImageProcessorPil

    ref = VideoMAEImageProcessorPil(**json.loads(json.dumps(pre)))(frames, return_tensors="np")["pixel_values"][0]
    t = FrameTransform.from_config(pre, 224)
    ours = np.stack([t.frame(f) for f in frames]).astype(np.float32) * t.rescale
    ours = ((ours - np.array(t.mean)) / np.array(t.std)).transpose(0, 3, 1, 2)
    assert ref.shape == ours.shape == (3, 3, 200, 200)
    np.testing.assert_allclose(ours, ref, atol=1e-5)


@pytest.mark.parametrize("arch,pool", [("videomae", "mean"), ("timesformer", "cls")])
def test_batch_invariance_and_reference(arch, pool, request, faces_dir):
    d = request.getfixturevalue(f"{arch}_dir")
    ex = VideoEmbedder(model=str(d), device="cpu")
    segs = clips(faces_dir)
    batch = np.stack([r["vector"] for r in ex.process(segs)])
    single = np.stack([ex.process([s])[0]["vector"] for s in segs])
    assert batch.shape == (6, 32) and batch.dtype == np.float32
    np.testing.assert_allclose(batch, single, atol=1e-5)

    # Reference: transformers' processor on the same 4 sampled frames, AutoModel, pooled by hand.
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(d)).eval()
    for i in (0, 3):
        frames = [f for _, f in sample_frames(segs[i].media, segs[i].start_s, segs[i].end_s, num=4)]
        px = torch.tensor(processor(str(d))(frames, return_tensors="np")["pixel_values"])
        with torch.no_grad():
            h = model(pixel_values=px).last_hidden_state[0]
        want = h[0] if pool == "cls" else h.mean(0)
        np.testing.assert_allclose(batch[i], want.numpy(), atol=1e-5)


def test_parameters_are_checked(videomae_dir):
    with pytest.raises(ExtractorError, match="needs a model"):
        VideoEmbedder()
    with pytest.raises(ExtractorError, match="tubelet_size"):
        VideoEmbedder(model=str(videomae_dir), num_frames=3).setup_prepare()


def test_cli_extract_resume_and_bad_segment(store, ingest_rows, timesformer_dir, faces_dir):
    src = str(faces_dir / "single_face.mp4")  # 2.4 s
    rows = [{"segment_id": f"v{i}", "media": src, "start_s": 0.4 * i, "end_s": 0.4 * i + 0.8} for i in range(3)]
    rows.append({"segment_id": "late", "media": src, "start_s": 30.0, "end_s": 31.0})  # past the end
    ingest_rows(rows)
    args = ["--store", store.uri, "extract", "--extractor", "video", "--model", str(timesformer_dir), "--device", "cpu", "--quiet"]
    r1 = CliRunner().invoke(main, [*args, "--limit", "2", "--batch-size", "1"])
    r2 = CliRunner().invoke(main, args)
    assert r1.exit_code == 0 and "2 processed (2 ok" in r1.output, r1.output
    assert r2.exit_code == 0 and "2 already done" in r2.output and "2 processed" in r2.output, r2.output
    st = store.group_status("video.timesformer")
    assert st.height == 4 and set(st.filter(st["status"] == "ok")["segment_id"]) == {"v0", "v1", "v2"}
    assert "past the end" in st.filter(st["segment_id"] == "late")["error"][0]
    prov = store.groups()["video.timesformer"]
    assert prov["pooling"] == "cls" and prov["num_frames"] == 4 and prov["frame_transform"]["crop"] == [32, 32]
