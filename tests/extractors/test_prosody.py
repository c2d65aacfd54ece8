"""Prosody against Praat.

Two references: (1) a plain Praat script (parselmouth.praat.run) fed the same samples, which
pins every command and argument; (2) an independent one (test_prosody_equals_praat_reading_the_file)
where Praat itself reads the file (``parselmouth.Sound(path)``), converts to mono and resamples
with its own code, and Praat's own queries give the statistics (Harmonicity "Get mean", Intensity
"Get mean ... energy" / "Get minimum" / "Get maximum"), so a shared mistake in decoding, amplitude
scaling, downmix, resampling or the unvoiced/silent-frame filters would show."""

from __future__ import annotations

import math

import numpy as np
import parselmouth
import pytest
from parselmouth.praat import call
from parselmouth.praat import run as praat_run

from ambiguity.extractors.base import Empty, Failure
from ambiguity.extractors.prosody import COLUMNS, Prosody
from ambiguity.inputs import SegmentInput

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


# -- reference 2: Praat reads the file and measures with its own queries -----------------------

def praat_reads(path, floor=75.0, ceiling=600.0, rate=16000) -> dict[str, float]:
    snd = parselmouth.Sound(str(path))  # Praat's own decoder
    if snd.n_channels > 1:
        snd = call(snd, "Convert to mono")  # Praat's downmix: the mean of the channels
    if snd.sampling_frequency != rate:
        snd = call(snd, "Resample", rate, 50)  # Praat's sinc resampler
    pitch = call(snd, "To Pitch", 0.0, floor, ceiling)
    pp = call(snd, "To PointProcess (periodic, cc)", floor, ceiling)
    harm = call(snd, "To Harmonicity (cc)", 0.01, floor, 0.1, 1.0)
    intensity = call(snd, "To Intensity", floor, 0.0, "yes")
    _, out = praat_run(snd, PRAAT_SCRIPT, floor, ceiling, capture_output=True)  # only for the speaking rate:
    rate_ref = float(out.split()[-1])  # Praat has no query for it (de Jong & Wempe's script is the definition)
    return {
        "pitch_mean": call(pitch, "Get mean", 0, 0, "Hertz"),
        "pitch_min": call(pitch, "Get minimum", 0, 0, "Hertz", "Parabolic"),
        "pitch_max": call(pitch, "Get maximum", 0, 0, "Hertz", "Parabolic"),
        "jitter_local": call(pp, "Get jitter (local)", 0, 0, 0.0001, 0.02, 1.3),
        "shimmer_local": call([snd, pp], "Get shimmer (local)", 0, 0, 0.0001, 0.02, 1.3, 1.6),
        "hnr_mean": call(harm, "Get mean", 0, 0),  # Praat averages voiced frames only
        "intensity_mean": call(intensity, "Get mean", 0, 0, "energy"),
        "intensity_min": call(intensity, "Get minimum", 0, 0, "None"),
        "intensity_max": call(intensity, "Get maximum", 0, 0, "None"),
        "speaking_rate": rate_ref,
    }


# Tolerances. 16 kHz mono 16-bit files: Praat and PyAV both read int16 / 32768, so the samples
# are bit-identical and every value agrees to rounding (rel 1e-9). Files at another rate: the two
# resamplers differ (Praat's sinc, depth 50, vs scipy's polyphase Kaiser FIR), by ~1e-4 of full
# scale near the band edge; measured on 07.wav at 44.1 kHz: pitch 0.1%, HNR 0.2%, intensity
# 0.002 dB (min 0.1 dB), jitter 2%, shimmer 5% (period-to-period measures amplify small
# differences in the waveform) -- the bounds below are about twice those.
SAME_SAMPLES = dict.fromkeys(COLUMNS, {"rel": 1e-9, "abs": 1e-9})
RESAMPLED = {"pitch_mean": {"rel": 0.005}, "pitch_min": {"rel": 0.005}, "pitch_max": {"rel": 0.005},
             "jitter_local": {"rel": 0.1}, "shimmer_local": {"rel": 0.1}, "hnr_mean": {"rel": 0.01},
             "intensity_mean": {"abs": 0.05}, "intensity_min": {"abs": 0.5}, "intensity_max": {"abs": 0.05},
             "speaking_rate": {"abs": 0.51}}  # a syllable count may differ by one in 2 s


def _variants(tmp_path, speech_dir):
    """07.wav as it is, as stereo (two different channels), and at 44.1 kHz -- written by Praat."""
    snd = parselmouth.Sound(str(speech_dir / "07.wav"))
    left, right = snd.copy(), snd.copy()
    call(left, "Multiply", 0.9)
    call(right, "Reverse")  # a different signal in the other channel
    call(right, "Multiply", 0.3)
    stereo = call([left, right], "Combine to stereo")
    call(stereo, "Save as WAV file", str(tmp_path / "stereo.wav"))
    call(call(left, "Resample", 44100, 50), "Save as WAV file", str(tmp_path / "44k.wav"))
    return {"mono16k": (speech_dir / "07.wav", SAME_SAMPLES), "stereo": (tmp_path / "stereo.wav", SAME_SAMPLES),
            "44k": (tmp_path / "44k.wav", RESAMPLED)}


@pytest.mark.parametrize("clip", ["00", "19", "33", "46"])
def test_prosody_equals_praat_reading_the_file(speech_dir, clip):
    path = speech_dir / f"{clip}.wav"
    ours = Prosody().process([SegmentInput(clip, str(path))])[0]
    ref = praat_reads(path)
    for col in COLUMNS:
        assert ours[col] == pytest.approx(ref[col], **SAME_SAMPLES[col]), col


@pytest.mark.parametrize("variant", ["mono16k", "stereo", "44k"])
def test_prosody_equals_praat_after_praat_downmix_and_resampling(tmp_path, speech_dir, variant):
    path, tol = _variants(tmp_path, speech_dir)[variant]
    ours = Prosody().process([SegmentInput(variant, str(path))])[0]
    ref = praat_reads(path)
    for col in COLUMNS:
        assert ours[col] == pytest.approx(ref[col], **tol[col]), (col, ours[col], ref[col])
