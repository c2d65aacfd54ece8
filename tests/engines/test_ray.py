"""The Ray engine on a local cluster equals the local engine, and a rerun is a no-op."""

from __future__ import annotations

import pytest
from engine_data import assert_same_features, local_and_remote

from ambiguity.extractors.prosody import Prosody

ray = pytest.importorskip("ray")
# ray.init starts its processes by fork-and-exec, after the store has loaded Lance, whose at-fork hook warns
pytestmark = pytest.mark.filterwarnings("ignore:lance is not fork-safe")


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    yield
    ray.shutdown()


def test_ray_equals_local_and_rerun_is_noop(cluster, tmp_path, speech_dir):
    from ambiguity.engines.ray import run as run_ray

    local, remote = local_and_remote(tmp_path, speech_dir, 47, str(tmp_path / "ray"))
    rep = run_ray(remote, Prosody())
    assert rep.ok == 47 and rep.failed == 0
    assert_same_features(local, remote)
    assert remote.groups()["prosody"]["config_key"] == local.groups()["prosody"]["config_key"]
    version = remote.version("features.prosody")
    again = run_ray(remote, Prosody())
    assert again.processed == 0 and again.skipped == 47
    assert remote.version("features.prosody") == version
