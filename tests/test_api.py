"""The public API: what each subpackage exports, that it is typed, and what it does not import."""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import ambiguity
import ambiguity.models
import ambiguity.stats

ROOT = Path(__file__).resolve().parent.parent

STATS = ["compare", "compare_quadrants", "quadrants", "boundary", "agreement", "cohen_kappa", "fleiss",
         "krippendorff_alpha", "adjust"]


def test_stats_exports_the_functions_not_their_modules():
    # load every stats module first: a module imported after the package must not rebind a name
    for info in pkgutil.iter_modules(ambiguity.stats.__path__):
        importlib.import_module(f"ambiguity.stats.{info.name}")
    for name in STATS:
        fn = getattr(ambiguity.stats, name)
        assert callable(fn) and not isinstance(fn, type(ambiguity)), name
        assert fn.__module__.startswith("ambiguity.stats."), (name, fn.__module__)
        assert name in ambiguity.stats.__all__
    from ambiguity.stats import compare, quadrants

    assert compare.__name__ == "compare" and quadrants.__name__ == "quadrants"


def test_every_name_in_all_resolves():
    pytest.importorskip("torch")  # ambiguity.models.training needs it
    for pkg in (ambiguity, ambiguity.stats, ambiguity.models):
        for name in pkg.__all__:
            assert getattr(pkg, name) is not None, f"{pkg.__name__}.{name}"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        ambiguity.models.nope  # noqa: B018


def test_models_exports_training_and_prediction_import():
    pytest.importorskip("torch")
    from ambiguity.models import TrainConfig, import_predictions, train
    from ambiguity.models.predictions import import_predictions as direct
    from ambiguity.models.training import train as direct_train

    assert import_predictions is direct and train is direct_train
    assert TrainConfig(arch="fusion").kind == "fusion"


def test_the_package_is_typed():
    assert (ROOT / "src" / "ambiguity" / "py.typed").exists()
    assert '"py.typed"' in (ROOT / "pyproject.toml").read_text()


# Run in a fresh interpreter where importing torch, matplotlib, transformers or umap fails (a
# meta-path finder hands out a loader that raises): the store, prediction import and statistics work.
# (CI also runs the statistics tests in a virtual environment where torch is not installed at all.)
_BLOCKED = r"""
import importlib.machinery, json, sys
BLOCKED = ("torch", "matplotlib", "transformers", "umap")

class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            return importlib.machinery.ModuleSpec(name, self)
        return None

    def create_module(self, spec):
        raise ImportError(f"{spec.name} is blocked in this test")

    def exec_module(self, module):
        raise ImportError(f"{module.__name__} is blocked in this test")

sys.meta_path.insert(0, Refuse())
import numpy as np, polars as pl
import ambiguity, ambiguity.stats, ambiguity.models, ambiguity.models.predictions, ambiguity.segments
import ambiguity.annotate.tasks, ambiguity.annotate.records
from ambiguity import open_store
from ambiguity.models import import_predictions, TrainConfig
from ambiguity.stats import adjust, agreement, cohen_kappa, compare, fleiss, krippendorff_alpha
TrainConfig(arch="fusion")
rng = np.random.default_rng(0)
res = compare(pl.DataFrame({"x": rng.normal(size=40), "y": rng.normal(size=40)}), ["a"] * 20 + ["b"] * 20, "a", "b")
out = {
    "compare_rows": res.table.height if hasattr(res, "table") else len(res.to_polars()),
    "kappa": cohen_kappa(["x", "y", "x", "y"], ["x", "y", "y", "y"]),
    "adjust": len(adjust([0.01, 0.04, 0.2])[0]) if isinstance(adjust([0.01, 0.04, 0.2]), tuple) else 3,
    "loaded": sorted(m for m in BLOCKED if m in sys.modules),
}
try:
    from ambiguity.models import train
except ImportError as exc:
    out["train"] = "ImportError"
print(json.dumps(out))
"""


def test_store_predictions_and_statistics_import_without_torch_or_matplotlib():
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    r = subprocess.run([sys.executable, "-c", _BLOCKED], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["loaded"] == []
    assert out["compare_rows"] == 2 and out["kappa"] == pytest.approx(0.5)
    assert out["train"] == "ImportError"  # training does need torch, and says so by failing to import it


def test_open_store_on_a_project_folder_opens_its_store(tmp_path):
    from ambiguity.config import init_project

    proj = init_project(tmp_path / "proj")
    (tmp_path / "proj" / "ambiguity.toml").write_text('store = "data/the-store"\n')
    store = ambiguity.open_store(tmp_path / "proj")
    assert Path(store.uri) == (tmp_path / "proj" / "data" / "the-store").resolve()
    assert ambiguity.open_store(tmp_path / "proj" / "ambiguity.toml").uri == store.uri
    assert proj.root == tmp_path / "proj"
    # a store folder itself (no ambiguity.toml in it) opens as before
    assert ambiguity.open_store(tmp_path / "plain").uri == str(tmp_path / "plain")
