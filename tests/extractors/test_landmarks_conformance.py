"""The landmarks extractor passes the plugin conformance suite on a real face clip."""

from __future__ import annotations

from ambiguity.extractors.landmarks import Landmarks
from ambiguity.testing import check_extractor


def test_landmarks_conforms(faces_dir):
    check_extractor(Landmarks, {"fps": 5.0}, media=faces_dir / "single_face.mp4")
