"""The GPU run, ready for a machine that has one: end to end vs forward only, GPU busy, MiniLM vs sentence-transformers.

    .venv/bin/python bench/gpu.py                      # on one H100 / H200: well under 10 minutes
    .venv/bin/python bench/gpu.py --device cpu --quick # tiny models, seconds (the test suite's smoke test)

For roberta-base, hubert-base and videomae-base with random weights (transformers'
config defaults: the published sizes; nothing downloaded; --quick: tiny models of the
same architectures):

- end-to-end segments/s of ``ambiguity extract`` (in this process: plan, model load,
  decoding / tokenising in --workers decode processes, padding, forward, store writes);
- forward-only segments/s of the same model on the very batches that run fed it
  (recorded with a forward pre-hook), under the same precision (bf16 autocast on a GPU);
- prepare-only segments/s (decode / tokenise, one process) times the decode workers:
  the CPU side's ceiling;
- GPU utilisation sampled every 100 ms during the end-to-end run (pynvml, else nvidia-smi);
- which bounds the run: the smaller of the two ceilings.

Then MiniLM (the offline all-MiniLM-L6-v2) through ``ambiguity extract`` vs
``SentenceTransformer.encode`` on the same texts and device, beside published anchors:
sentence-transformers reports all-MiniLM-L6-v2 at 14,200 sentences/s on a V100
(sbert.net, pretrained models table); the transformers docs give VideoMAE-base about
133 clips/s at batch 8 on an A100. Prints a Markdown table; --json writes the numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(ROOT / "tests" / "extractors"))
from embed import build, manifest, sh  # noqa: E402

ANCHORS = {
    "minilm": "14,200 sentences/s, all-MiniLM-L6-v2, V100 (sentence-transformers docs)",
    "videomae-base": "~133 clips/s, batch 8, A100 (transformers docs, VideoMAE)",
}
EXTRACTOR = {"roberta-base": "text", "hubert-base": "audio", "videomae-base": "video"}


# -- GPU utilisation ------------------------------------------------------------------------
class GpuSampler:
    """Samples GPU utilisation (%) every ``every`` seconds in a thread: pynvml, else nvidia-smi."""

    def __init__(self, device: str, every: float = 0.1):
        self.samples: list[float] = []
        self.source = "n/a (cpu)"
        self._stop = threading.Event()
        self._every = every
        self._read = None
        if device == "cuda":
            try:
                import pynvml

                pynvml.nvmlInit()
                h = pynvml.nvmlDeviceGetHandleByIndex(int(os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0] or 0))
                self._read, self.source = (lambda: float(pynvml.nvmlDeviceGetUtilizationRates(h).gpu)), "pynvml"
            except Exception:  # no pynvml, or it cannot talk to the driver
                if shutil.which("nvidia-smi"):
                    self._read, self.source = self._smi, "nvidia-smi"

    @staticmethod
    def _smi() -> float:
        out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-i", "0"],
                             capture_output=True, text=True, timeout=5).stdout
        return float(out.split()[0])

    def __enter__(self):
        if self._read is not None:
            self._t = threading.Thread(target=self._loop, daemon=True)
            self._t.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):
                self.samples.append(self._read())
            self._stop.wait(self._every)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._read is not None:
            self._t.join()

    def summary(self) -> str:
        if not self.samples:
            return self.source
        return f"mean {statistics.mean(self.samples):.0f}%, median {statistics.median(self.samples):.0f}% ({len(self.samples)} samples, {self.source})"


# -- models ---------------------------------------------------------------------------------
def make_model(kind: str, out: Path, quick: bool) -> Path:
    if not quick:
        return build(kind, out)  # base sizes, random weights
    import tiny_models

    arch = {"roberta-base": "roberta", "hubert-base": "hubert", "videomae-base": "videomae"}[kind]
    maker = {"roberta": tiny_models.text_model, "hubert": tiny_models.audio_model, "videomae": tiny_models.video_model}[arch]
    return maker(arch, out)


def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def one_model(kind: str, n: int, batch: int, workers: int, device: str, quick: bool, work: Path) -> dict:
    import torch
    from transformers import AutoModel

    from ambiguity.extractors import registry
    from ambiguity.extractors.inference import autocast, pick_dtype
    from ambiguity.extractors.isolate import prepare_isolated
    from ambiguity.extractors.plan import batches
    from ambiguity.extractors.rows import segment_inputs

    model_dir = make_model(kind, work / kind, quick)
    man = manifest(kind, work / f"{kind}.csv", n)
    store = str(work / f"store-{kind}")
    sh("--store", store, "ingest", str(man))
    recorded: list[dict] = []
    orig = AutoModel.from_pretrained.__func__

    def hook(module, args, kwargs):
        recorded.append({k: v.detach().clone() if torch.is_tensor(v) else v for k, v in kwargs.items()})

    def from_pretrained(cls, *a, **kw):  # see what the pipeline feeds the model
        m = orig(cls, *a, **kw)
        m.register_forward_pre_hook(hook, with_kwargs=True)
        return m

    args = ["--store", store, "extract", "--extractor", EXTRACTOR[kind], "--model", str(model_dir), "--device", device,
            "--batch-size", str(batch), "--quiet"] + (["--workers", str(workers)] if workers > 1 else [])
    AutoModel.from_pretrained = classmethod(from_pretrained)
    try:
        with GpuSampler(device) as gpu:
            t = time.perf_counter()
            sh(*args)
            e2e = time.perf_counter() - t
    finally:
        AutoModel.from_pretrained = classmethod(orig)

    # forward only, the same batches, the same precision
    dev = torch.device(device)
    dtype = pick_dtype("auto", dev)
    model = AutoModel.from_pretrained(str(model_dir)).eval().to(dev)
    moved = [{k: v.to(dev) if torch.is_tensor(v) else v for k, v in r.items()} for r in recorded]
    with torch.inference_mode(), autocast(dev, dtype):
        model(**moved[0])  # warm-up
        _sync(device)
        t = time.perf_counter()
        for inputs in moved:
            model(**inputs)
        _sync(device)
        fwd = time.perf_counter() - t

    # prepare only (decode / tokenise) in this process, on a sample of the batches
    ex = registry.get(EXTRACTOR[kind])(model=str(model_dir), device=device)
    ex.ensure_prepare()
    rows = sh_rows(store)
    sample = rows[: max(batch, min(len(rows), 4 * batch))]
    t = time.perf_counter()
    for b in batches(sample, batch):
        prepare_isolated(ex, segment_inputs(b))
    prep = (time.perf_counter() - t) / len(sample)
    e2e_s, fwd_s, prep_s = n / e2e, n / fwd, max(1, workers) / prep
    return {
        "model": kind, "segments": n, "batch_size": batch, "decode_workers": workers, "dtype": dtype,
        "end_to_end_seg_s": round(e2e_s, 1), "forward_only_seg_s": round(fwd_s, 1),
        "efficiency": round(e2e_s / fwd_s, 3), "prepare_ceiling_seg_s": round(prep_s, 1),
        "bound": "decoding (CPU side)" if prep_s < fwd_s else "compute (the model)",
        "gpu_util": gpu.summary(), "gpu_samples": gpu.samples[:2000],
    }


def sh_rows(store: str) -> list[dict]:
    from ambiguity import open_store

    return open_store(store).segments().sort("segment_id").to_dicts()


def minilm(n: int, batch: int, device: str, work: Path) -> dict:
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from ambiguity.extractors.text import package_dir

    essays = [r["essay"] for r in csv.DictReader((ROOT / "examples/data/empathic-reactions/messages.csv").open(newline=""))
              if r["essay"].strip()]
    texts = [essays[i % len(essays)] for i in range(n)]
    man = work / "minilm.csv"
    with man.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["segment_id", "transcript"])
        w.writerows([f"t{i:06d}", t] for i, t in enumerate(texts))
    out = {"texts": n, "batch_size": batch}
    seed = work / "minilm-seed"
    sh("--store", str(seed), "ingest", str(man))
    for dtype in (["auto", "float32"] if device == "cuda" else ["auto"]):
        store = work / f"minilm-{dtype}"
        shutil.copytree(seed, store)
        with GpuSampler(device) as gpu:
            t = time.perf_counter()
            sh("--store", str(store), "extract", "--extractor", "text.minilm", "--device", device, "--batch-size", str(batch),
               "--param", f"dtype={dtype}", "--quiet")
            out[f"ours_{dtype}_sent_s"] = round(n / (time.perf_counter() - t), 1)
        out[f"ours_{dtype}_gpu_util"] = gpu.summary()
    st = SentenceTransformer(str(package_dir()), device=device)
    st.encode(texts[:batch], batch_size=batch)  # warm-up (CUDA context, kernels)
    with GpuSampler(device) as gpu:
        t = time.perf_counter()
        emb = st.encode(texts, batch_size=batch)
        out["sentence_transformers_sent_s"] = round(n / (time.perf_counter() - t), 1)
    out["sentence_transformers_gpu_util"] = gpu.summary()
    out["sentence_transformers_dim"] = int(np.asarray(emb).shape[1])
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--quick", action="store_true", help="tiny models, few segments: a smoke run in seconds")
    ap.add_argument("--workers", type=int, default=None, help="decode processes (default: min(8, cores - 1) on a GPU)")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    if a.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda, but torch sees no GPU here (use --device cpu --quick for a smoke run)")
    t0 = time.perf_counter()
    cores = os.cpu_count() or 1
    workers = a.workers if a.workers is not None else (min(8, max(1, cores - 1)) if a.device == "cuda" else 1)
    if a.quick:
        plan = [("roberta-base", 8, 4, 1), ("hubert-base", 4, 2, 1), ("videomae-base", 2, 2, 1)]
        n_text = 16
    else:  # sized for about 5 minutes on one H100/H200
        plan = [("roberta-base", 8192, 64, 2), ("hubert-base", 1024, 32, workers), ("videomae-base", 512, 8, workers)]
        n_text = 50_000
    card = torch.cuda.get_device_name() if a.device == "cuda" else f"CPU ({cores} cores)"
    res: dict = {"device": card, "quick": a.quick, "models": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for kind, n, b, w in plan:
            r = one_model(kind, n, b, w, a.device, a.quick, work)
            res["models"].append(r)
            print(f"  {kind}: {r['end_to_end_seg_s']} seg/s end to end, {r['forward_only_seg_s']} forward only", flush=True)
        res["minilm"] = minilm(n_text, 128 if not a.quick else 8, a.device, work)
    res["seconds"] = round(time.perf_counter() - t0, 1)
    print(f"\n# bench/gpu.py on {card}{' (--quick: tiny models)' if a.quick else ''}, {res['seconds']} s\n")
    print("| model (random weights) | segments | batch | decode workers | dtype | end-to-end seg/s | forward-only seg/s "
          "| efficiency | decode ceiling seg/s | bound by | GPU utilisation | published anchor |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in res["models"]:
        print(f"| {r['model']} | {r['segments']} | {r['batch_size']} | {r['decode_workers']} | {r['dtype']} | {r['end_to_end_seg_s']} "
              f"| {r['forward_only_seg_s']} | {r['efficiency']:.2f} | {r['prepare_ceiling_seg_s']} | {r['bound']} | {r['gpu_util']} "
              f"| {ANCHORS.get(r['model'], '')} |")
    m = res["minilm"]
    print(f"\nMiniLM, {m['texts']} real essays, batch {m['batch_size']}: ours {m['ours_auto_sent_s']} sentences/s "
          f"(dtype auto; GPU {m['ours_auto_gpu_util']})"
          + (f", ours float32 {m['ours_float32_sent_s']}" if "ours_float32_sent_s" in m else "")
          + f"; sentence-transformers encode {m['sentence_transformers_sent_s']} sentences/s (float32; GPU "
          f"{m['sentence_transformers_gpu_util']}). Anchor: {ANCHORS['minilm']} (short sentences; essays are longer).")
    if a.json:
        a.json.write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main(sys.argv[1:])
