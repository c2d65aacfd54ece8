"""The Ray engine with the store on object storage (a local S3 server, tests/conftest.py):
the same features as the local engine, and its staging data removed afterwards.

The staging datasets used to be removed with shutil.rmtree, which does nothing on s3://;
the objects under ``_staging/`` are listed straight from the server with boto3.
"""

from __future__ import annotations

import pytest
from engine_data import assert_same_features, local_and_remote

from ambiguity.extractors.prosody import Prosody

ray = pytest.importorskip("ray")
# ray.init starts its processes by fork-and-exec, after the store has loaded Lance, whose at-fork hook warns
pytestmark = pytest.mark.filterwarnings("ignore:lance is not fork-safe")
pytest.importorskip("lance_ray")


def test_ray_on_s3_equals_local_and_removes_its_staging(tmp_path, speech_dir, s3_bucket, s3_env, s3_keys, monkeypatch):
    import ambiguity.engines.ray as engine

    local, remote = local_and_remote(tmp_path, speech_dir, 12, f"s3://{s3_bucket}/store")

    dropped = []
    real_drop = engine.drop_dataset

    def spy(uri):  # how many staging objects were on the server just before the engine removed them
        dropped.append((uri, len(s3_keys(s3_bucket, uri.removeprefix(f"s3://{s3_bucket}/")))))
        real_drop(uri)

    monkeypatch.setattr(engine, "drop_dataset", spy)
    if ray.is_initialized():
        ray.shutdown()
    # the cluster's workers read and write the store: they get the same AWS_* settings
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": s3_env})
    try:
        rep = engine.run(remote, Prosody(), batch_size=4)
    finally:
        ray.shutdown()
    assert rep.ok == 12 and rep.failed == 0
    assert_same_features(local, remote)
    # staging was really on the object store, and nothing of it is left there
    assert dropped and all(uri.startswith(f"s3://{s3_bucket}/store/_staging/") and n > 0 for uri, n in dropped), dropped
    assert s3_keys(s3_bucket, "store/_staging/") == []
    assert any(k.startswith("store/features.prosody.lance/") for k in s3_keys(s3_bucket, "store/"))
