"""openSMILE through our pipeline equals opensmile.Smile.process_file on the same audio."""

from __future__ import annotations

import numpy as np
import opensmile
import pytest

from ambiguity.extractors.opensmile import OpenSmile, column_name
from ambiguity.inputs import SegmentInput


@pytest.mark.parametrize("clip", ["03", "21", "40"])
def test_egemaps_equals_process_file(speech_dir, clip):
    path = str(speech_dir / f"{clip}.wav")
    ours = OpenSmile().process([SegmentInput(clip, path)])[0]
    # Reference: the opensmile package reading the file itself (audiofile), no decoding of ours.
    ref = opensmile.Smile(
        feature_set=opensmile.FeatureSet.eGeMAPSv02, feature_level=opensmile.FeatureLevel.Functionals
    ).process_file(path)
    assert len(ours) == ref.shape[1] == 88
    for name, value in ref.iloc[0].items():
        np.testing.assert_allclose(ours[column_name(name)], value, rtol=1e-6, atol=1e-6, err_msg=name)


def test_group_name_follows_the_feature_set():
    assert OpenSmile().default_group() == "opensmile.egemaps"
    assert OpenSmile(feature_set="ComParE_2016").default_group() == "opensmile.compare"
    assert OpenSmile().config_key() != OpenSmile(feature_set="ComParE_2016").config_key()


def test_compare_equals_process_file(speech_dir):
    path = str(speech_dir / "07.wav")
    ours = OpenSmile(feature_set="ComParE_2016").process([SegmentInput("07", path)])[0]
    ref = opensmile.Smile(
        feature_set=opensmile.FeatureSet.ComParE_2016, feature_level=opensmile.FeatureLevel.Functionals
    ).process_file(path)
    assert len(ours) == ref.shape[1] == 6373
    got = np.array([ours[column_name(n)] for n in ref.columns], dtype=np.float64)
    np.testing.assert_allclose(got, ref.iloc[0].to_numpy(np.float64), rtol=1e-6, atol=1e-6)


def test_a_signal_too_short_for_openSMILE_gives_nans_like_process_signal():
    x = np.linspace(-0.5, 0.5, 40, dtype=np.float32)
    ref = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02, feature_level=opensmile.FeatureLevel.Functionals)
    with pytest.warns(UserWarning, match="too short"):
        want = ref.process_signal(x, 16000).iloc[0].to_numpy(np.float32)
    ex = OpenSmile()
    ex.setup()
    got = np.array(list(ex.measure_samples(x).values()), dtype=np.float32)  # type: ignore[union-attr]
    assert got.shape == want.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got[~np.isnan(got)], want[~np.isnan(want)], rtol=1e-6)


def test_only_the_public_api_of_opensmile_is_used():
    # opensmile.core.* moved before upstream; Smile and its enums are the package's public surface.
    from pathlib import Path

    import ambiguity.extractors.opensmile as mod

    src = Path(mod.__file__).read_text()
    assert "opensmile.core" not in src and "._options" not in src and "_extract" not in src
