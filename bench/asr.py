"""Real-time factors on CPU: speech recognition (Whisper), forced alignment, word prosody, voice activity.

RTF = processing seconds / audio seconds (below 1: faster than real time); cost per minute of
audio = RTF x 60 s. Workloads:

- alignment and word prosody: the real clips of examples/data/speech-emotion with the words
  PocketSphinx heard in them (tests/extractors/test_align.py::HEARD), and, when espeak-ng is
  installed, the test's ten sentences synthesised whole (connected speech);
- voice activity: all 47 real clips;
- Whisper: the published tiny and base architectures (d_model 384 / 512, 4 / 6 layers per side,
  vocabulary 51,865) with random weights (no checkpoint can be downloaded here), generating a
  fixed 3 tokens per second of audio (about English speech's rate) with word timestamps, batch 8:
  the same arithmetic as the trained model's, not its accuracy. Language detection included.

Each extractor is called in this process (``process`` on batches of 8), after one warm-up
batch; decoding is included (soundfile reads of 16 kHz files).

    .venv/bin/python bench/asr.py [--threads N] [--skip-whisper]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "extractors"))
from common import OUT, SPEECH, machine  # noqa: E402

#: Published Whisper dimensions (openai/whisper, model card table): d_model, layers, heads.
ARCH = {"tiny": (384, 4, 6), "base": (512, 6, 8)}
TOKENS_PER_S = 3.0


def clips(with_text: bool):
    import soundfile as sf
    from test_align import HEARD, SENTENCES

    out = []
    names = HEARD if with_text else range(47)
    for i in names:
        x, rate = sf.read(SPEECH / f"{i:02d}.wav", dtype="float32")
        out.append((f"real{i}", x, HEARD.get(i)))
    if with_text and shutil.which("espeak-ng"):
        from speech_synth import espeak

        out += [(f"tts{k}", espeak(s).astype(np.float32), s) for k, s in enumerate(SENTENCES)]
    return out


def segs(items):
    from ambiguity.inputs import SegmentInput

    return [SegmentInput(sid, None, transcript_value=text, _audio_loader=lambda s, rate, x=x: x) for sid, x, text in items]


def rtf(ex, items, batch: int = 8) -> tuple[float, float, float, int]:
    """(wall RTF, CPU-time RTF, audio seconds, ok rows) of ``ex.process`` over ``items``, after a
    warm-up batch. CPU time (this process) is less disturbed by other work on the machine."""
    seconds = sum(len(x) for _, x, _ in items) / 16000
    ex.process(segs(items[:2]))
    t, c = time.perf_counter(), time.process_time()
    ok = 0
    for k in range(0, len(items), batch):
        ok += sum(isinstance(r, dict) for r in ex.process(segs(items[k:k + batch])))
    return (time.perf_counter() - t) / seconds, (time.process_time() - c) / seconds, seconds, ok


def whisper_rtf(arch: str, items, batch: int = 8) -> tuple[float, float, float]:
    import torch
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

    d, layers, heads = ARCH[arch]
    cfg = WhisperConfig(
        vocab_size=51865, d_model=d, encoder_layers=layers, decoder_layers=layers, encoder_attention_heads=heads,
        decoder_attention_heads=heads, encoder_ffn_dim=4 * d, decoder_ffn_dim=4 * d, decoder_start_token_id=50258,
        pad_token_id=50257, eos_token_id=50257, bos_token_id=50257, begin_suppress_tokens=None, suppress_tokens=None,
    )
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(cfg).eval()
    model.generation_config.alignment_heads = [[layers - 1, 0], [layers - 1, 1]]
    fe = WhisperFeatureExtractor()
    lang_ids = torch.tensor(list(range(50259, 50358)))  # Whisper's 99 language tokens

    def run(chunk):
        f = fe([x for _, x, _ in chunk], sampling_rate=16000, return_tensors="pt", return_attention_mask=True)
        n = int(np.ceil(TOKENS_PER_S * max(len(x) for _, x, _ in chunk) / 16000))
        with torch.inference_mode():
            start = torch.full((len(chunk), 1), 50258)
            model(input_features=f.input_features, decoder_input_ids=start).logits[:, -1, lang_ids].softmax(-1)
            prompt = torch.tensor([[50258, 50259, 50359, 50363]] * len(chunk))  # sot, en, transcribe, notimestamps
            model.generate(
                f.input_features, attention_mask=f.attention_mask, decoder_input_ids=prompt, max_new_tokens=n,
                min_new_tokens=n, return_token_timestamps=True, return_dict_in_generate=True,
            )

    seconds = sum(len(x) for _, x, _ in items) / 16000
    run(items[:2])
    t, c = time.perf_counter(), time.process_time()
    for k in range(0, len(items), batch):
        run(items[k:k + batch])
    return (time.perf_counter() - t) / seconds, (time.process_time() - c) / seconds, seconds


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--skip-whisper", action="store_true")
    ap.add_argument("--only-whisper", action="store_true")
    ap.add_argument("--arch", choices=sorted(ARCH), action="append", help="Whisper sizes (default: all)")
    ap.add_argument("--clips", type=int, default=16, help="real clips given to Whisper (each is one padded 30 s window)")
    args = ap.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from ambiguity.extractors.align import Align
    from ambiguity.extractors.speech_activity import SpeechActivity
    from ambiguity.extractors.word_prosody import WordProsody

    texted, every = clips(True), clips(False)
    rows = []
    for name, ex, items in [] if args.only_whisper else [
        ("align (pocketsphinx)", Align(), texted),
        ("word_prosody (align + Praat)", WordProsody(), texted),
        ("speech_activity (WebRTC)", SpeechActivity(), every),
    ]:
        ex.setup()
        r, cpu, secs, ok = rtf(ex, items)
        rows.append({"what": name, "rtf": r, "rtf_cpu": cpu, "audio_s": secs, "ok": ok, "n": len(items)})
        print(f"{name}: RTF {r:.4f} (CPU time {cpu:.4f}) over {secs:.0f} s of audio ({ok}/{len(items)} ok); "
              f"{r * 60:.1f} s per minute", flush=True)
    if not args.skip_whisper:
        short = every[: args.clips]
        # Long recordings: the same audio laid end to end in full 30 s windows
        joined = np.concatenate([x for _, x, _ in every])
        windows = [(f"w{k}", joined[k:k + 30 * 16000], None) for k in range(0, len(joined) - 30 * 16000 + 1, 30 * 16000)]
        for arch in args.arch or ARCH:
            for label, items in ((f"{len(short)} clips of {sum(len(x) for _, x, _ in short) / 16000 / len(short):.1f} s", short),
                                 (f"{len(windows)} full 30 s windows", windows)):
                r, cpu, secs = whisper_rtf(arch, items)
                what = f"whisper-{arch} (random weights, transformers), {label}"
                rows.append({"what": what, "rtf": r, "rtf_cpu": cpu, "audio_s": secs, "ok": None, "n": len(items)})
                print(f"{what}: RTF {r:.4f} (CPU time {cpu:.4f}) over {secs:.0f} s of audio; {r * 60:.1f} s per minute", flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / ("asr-whisper.json" if args.only_whisper else "asr.json")).write_text(json.dumps({"machine": machine(), "threads": torch.get_num_threads(), "rows": rows}, indent=1))
    return rows


if __name__ == "__main__":
    main()
