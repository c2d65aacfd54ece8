"""The Ray engine on a local cluster equals the local engine, and a rerun is a no-op."""

from __future__ import annotations

import numpy as np
import pytest

from ambiguity import open_store
from ambiguity.extractors.prosody import Prosody
from ambiguity.extractors.runner import run as run_local
from ambiguity.segments import load_manifest

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    yield
    ray.shutdown()


def test_ray_equals_local_and_rerun_is_noop(cluster, tmp_path, speech_dir):
    from ambiguity.engines.ray import run as run_ray

    man = tmp_path / "m.csv"
    man.write_text("segment_id,media\n" + "".join(f"c{i:02d},{speech_dir / f'{i:02d}.wav'}\n" for i in range(47)))
    local, remote = open_store(tmp_path / "local"), open_store(tmp_path / "ray")
    for s in (local, remote):
        s.upsert_segments(load_manifest(man))
    run_local(local, Prosody(), workers=1, progress=False)
    rep = run_ray(remote, Prosody())
    assert rep.ok == 47 and rep.failed == 0
    a = local.features("prosody").sort("segment_id")
    b = remote.features("prosody").sort("segment_id")
    assert a["segment_id"].to_list() == b["segment_id"].to_list()
    cols = [c for c in a.columns if c not in ("segment_id", "status", "error")]
    np.testing.assert_allclose(b.select(cols).to_numpy(), a.select(cols).to_numpy(), rtol=0, atol=1e-6)
    assert remote.groups()["prosody"]["config_key"] == local.groups()["prosody"]["config_key"]
    version = remote.version("features.prosody")
    again = run_ray(remote, Prosody())
    assert again.processed == 0 and again.skipped == 47
    assert remote.version("features.prosody") == version
