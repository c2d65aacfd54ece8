"""Prosody against an independent Praat script run through parselmouth.praat.run."""

from __future__ import annotations

import math

import numpy as np
import parselmouth
import pytest
from parselmouth.praat import run as praat_run

from ambiguity.extractors.base import Empty, Failure, SegmentInput
from ambiguity.extractors.prosody import COLUMNS, Prosody

# The reference: every measure written as a plain Praat script. Speaking rate follows
# de Jong & Wempe (2009), "Praat script to detect syllable nuclei and measure speech
# rate automatically", Behavior Research Methods 41(2), v1 script logic.
PRAAT_SCRIPT = r"""
form Prosody
  real floor 75
  real ceiling 600
endform
sound = selected("Sound")
selectObject: sound
pitch = To Pitch: 0, floor, ceiling
pmean = Get mean: 0, 0, "Hertz"
pmin = Get minimum: 0, 0, "Hertz", "Parabolic"
pmax = Get maximum: 0, 0, "Hertz", "Parabolic"
selectObject: sound
pp = To PointProcess (periodic, cc): floor, ceiling
jitter = Get jitter (local): 0, 0, 0.0001, 0.02, 1.3
selectObject: sound, pp
shimmer = Get shimmer (local): 0, 0, 0.0001, 0.02, 1.3, 1.6
selectObject: sound
harm = To Harmonicity (cc): 0.01, floor, 0.1, 1.0
n = Get number of frames
hsum = 0
hn = 0
for i to n
  v = Get value in frame: i
  if v > -200
    hsum += v
    hn += 1
  endif
endfor
hnr = hsum / hn
selectObject: sound
int = To Intensity: floor, 0, "yes"
n = Get number of frames
esum = 0
en = 0
imin = 1e9
imax = -1e9
for i to n
  v = Get value in frame: i
  if v > -200
    esum += 10 ^ (v / 10)
    en += 1
    imin = min(imin, v)
    imax = max(imax, v)
  endif
endfor
imean = 10 * log10(esum / en)

# --- de Jong & Wempe (2009) ---
silencedb = -25
mindip = 2
minpause = 0.3
selectObject: sound
originaldur = Get total duration
intid = To Intensity: 50, 0, "yes"
min = Get minimum: 0, 0, "Parabolic"
max = Get maximum: 0, 0, "Parabolic"
max99 = Get quantile: 0, 0, 0.99
threshold = max99 + silencedb
threshold2 = max - max99
threshold3 = silencedb - threshold2
if threshold < min
  threshold = min
endif
textgridid = To TextGrid (silences): threshold3, minpause, 0.1, "silent", "sounding"
selectObject: intid
matrix = Down to Matrix
sps = To Sound (slice): 1
ppx = To PointProcess (extrema): "Left", "yes", "no", "Sinc70"
numpeaks = Get number of points
for i to numpeaks
  t[i] = Get time from index: i
endfor
selectObject: sps
peakcount = 0
for i to numpeaks
  value = Get value at time: t[i], "Cubic"
  if value > threshold
    peakcount += 1
    int[peakcount] = value
    timepeaks[peakcount] = t[i]
  endif
endfor
selectObject: intid
validpeakcount = 0
if peakcount > 0
  currenttime = timepeaks[1]
  currentint = int[1]
endif
for p to peakcount - 1
  following = p + 1
  followingtime = timepeaks[following]
  dip = Get minimum: currenttime, followingtime, "None"
  diffint = abs(currentint - dip)
  if diffint > mindip
    validpeakcount += 1
    validtime[validpeakcount] = timepeaks[p]
  endif
  currenttime = timepeaks[following]
  currentint = Get value at time: timepeaks[following], "Cubic"
endfor
selectObject: sound
pitchid = To Pitch (ac): 0.02, 30, 4, "no", 0.03, 0.25, 0.01, 0.35, 0.25, 450
voicedcount = 0
for i to validpeakcount
  querytime = validtime[i]
  selectObject: textgridid
  whichinterval = Get interval at time: 1, querytime
  whichlabel$ = Get label of interval: 1, whichinterval
  selectObject: pitchid
  value = Get value at time: querytime, "Hertz", "Linear"
  if value <> undefined
    if whichlabel$ = "sounding"
      voicedcount += 1
    endif
  endif
endfor
rate = voicedcount / originaldur
writeInfoLine: fixed$(pmean, 12), " ", fixed$(pmin, 12), " ", fixed$(pmax, 12), " ", fixed$(jitter, 15), " ", fixed$(shimmer, 15), " ", fixed$(hnr, 12), " ", fixed$(imean, 12), " ", fixed$(imin, 12), " ", fixed$(imax, 12), " ", fixed$(rate, 12)
"""


def praat_reference(x: np.ndarray, rate: int, floor: float = 75, ceiling: float = 600) -> dict[str, float]:
    snd = parselmouth.Sound(x.astype(np.float64), sampling_frequency=rate)
    _, out = praat_run(snd, PRAAT_SCRIPT, floor, ceiling, capture_output=True)
    return dict(zip(COLUMNS, map(float, out.split()), strict=True))


@pytest.mark.parametrize("clip", ["00", "07", "19", "33", "46"])
def test_prosody_equals_praat_script(speech_dir, clip):
    seg = SegmentInput(clip, str(speech_dir / f"{clip}.wav"))
    x = seg.audio(16000)
    ours = Prosody().process([seg])[0]
    ref = praat_reference(x, 16000)
    for col in COLUMNS:
        # The script prints 12-15 decimals; agreement to 1e-6 is the contract.
        assert ours[col] == pytest.approx(ref[col], abs=1e-6, rel=1e-9), col


def test_prosody_on_a_cut_segment_of_a_long_file(speech_dir):
    seg = SegmentInput("dia", str(speech_dir / "diarization-3speakers.wav"), start_s=6.3, end_s=11.3)
    x = seg.audio(16000)
    assert len(x) == 5 * 16000
    ours = Prosody(pitch_floor=60, pitch_ceiling=500).process([seg])[0]
    ref = praat_reference(x, 16000, 60, 500)
    assert all(ours[c] == pytest.approx(ref[c], abs=1e-6) for c in COLUMNS)


def test_silence_is_empty_and_short_segment_fails():
    ex = Prosody()
    assert isinstance(ex.measure(np.zeros(16000, np.float32), 16000), Empty)
    short = ex.measure(np.random.default_rng(0).normal(size=480).astype(np.float32), 16000)  # 30 ms
    assert isinstance(short, Failure) and "30 ms" in short.reason


def test_intensity_ignores_silent_frames():
    # A tone with a stretch of digital silence: Praat gives -300 dB there; min must not be -300.
    rate = 16000
    t = np.arange(rate) / rate
    x = (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    x[4000:12000] = 0
    r = Prosody().measure(x, rate)
    assert r["intensity_min"] > -200
    assert math.isfinite(r["intensity_mean"])


def test_invalid_parameters_name_both_values():
    from ambiguity.errors import ExtractorError

    with pytest.raises(ExtractorError, match="pitch_floor=500.*pitch_ceiling=100"):
        Prosody(pitch_floor=500, pitch_ceiling=100)
