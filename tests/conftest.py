"""Shared fixtures: a fresh store on disk and the real data shipped in examples/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import hypothesis_profiles  # noqa: F401  (loads the HYPOTHESIS_PROFILE profile)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "examples" / "data"
#: CI's second, bare virtual environment (`make test-bare`: no extras): tests needing an optional
#: package skip there (pytest.importorskip). Everywhere else every optional package is installed,
#: so such a skip is a failure: a missing package must not pass unnoticed.
BARE = os.environ.get("AMBIGUITY_BARE") == "1"
_NO_SKIP = "; the main environment (`make test`) installs every extra, so this may not skip (AMBIGUITY_BARE=1 allows it)"


def _import_skip(excinfo) -> str | None:
    if excinfo is None or not excinfo.errisinstance(pytest.skip.Exception):
        return None
    msg = str(excinfo.value)
    return msg if msg.startswith("could not import") else None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    rep = (yield).get_result()
    msg = None if BARE else _import_skip(call.excinfo)
    if rep.skipped and msg:
        rep.outcome, rep.longrepr = "failed", msg + _NO_SKIP


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    rep = (yield).get_result()
    if rep.skipped and not BARE and isinstance(rep.longrepr, tuple) and str(rep.longrepr[2]).startswith("Skipped: could not import"):
        rep.outcome, rep.longrepr = "failed", str(rep.longrepr[2]) + _NO_SKIP


@pytest.fixture
def store(tmp_path):
    from ambiguity import open_store

    return open_store(tmp_path / "store")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def speech_dir() -> Path:
    return DATA / "speech-emotion"


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    return DATA / "faces"


CHROMIUM = os.environ.get("AMBIGUITY_CHROMIUM", "/usr/bin/chromium")  # Debian's package
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
_HOW = "install Debian's chromium (`apt-get install chromium`) and set AMBIGUITY_REQUIRE_BROWSER=1 to require this test"


@pytest.fixture
def chromium() -> dict:
    """Playwright launch options for a headless Chromium (``p.chromium.launch(**chromium)``).

    Skips without one, or fails when AMBIGUITY_REQUIRE_BROWSER=1 (as CI sets it).
    """
    problems = []
    if not (Path(CHROMIUM).exists() and os.access(CHROMIUM, os.X_OK)):
        problems.append(f"no Chromium at {CHROMIUM}")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problems.append("the playwright Python package is not installed (pip install playwright; no browser download needed)")
    if problems:
        msg = "; ".join(problems) + f": {_HOW}"
        if os.environ.get("AMBIGUITY_REQUIRE_BROWSER") == "1":
            pytest.fail(f"AMBIGUITY_REQUIRE_BROWSER=1 but {msg}", pytrace=False)
        pytest.skip(msg)
    return {"executable_path": CHROMIUM, "headless": True, "args": list(CHROMIUM_ARGS)}


# -- object storage: a real S3 server (moto's server mode) on 127.0.0.1 -----------------------
@pytest.fixture(scope="session")
def s3_server():
    """moto's S3-compatible server on an ephemeral port of 127.0.0.1, for the whole session.

    The store talks to it over HTTP exactly as to AWS: lance/lancedb, pyarrow and boto3 read the
    endpoint and keys from the standard AWS_* variables (:func:`s3_env`).
    """
    import logging

    moto_server = pytest.importorskip("moto.server", reason="pip install 'moto[server]' (in the [test] extra)")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


S3_ENV_KEYS = ("AWS_ENDPOINT_URL", "AWS_ALLOW_HTTP", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_DEFAULT_REGION")


@pytest.fixture
def s3_env(s3_server, monkeypatch) -> dict[str, str]:
    """AWS_* variables naming the test server (set in this process; pass to subprocesses)."""
    env = {"AWS_ENDPOINT_URL": s3_server, "AWS_ALLOW_HTTP": "true", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"}
    for k in ("AWS_ENDPOINT", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


@pytest.fixture
def s3_bucket(s3_env, request) -> str:
    """A new, empty bucket on the test server; its name."""
    import re
    import uuid

    import boto3

    name = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-") + "-" + uuid.uuid4().hex[:8]
    boto3.client("s3", endpoint_url=s3_env["AWS_ENDPOINT_URL"]).create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_keys(s3_env):
    """``s3_keys(bucket, prefix="")``: every object key under ``prefix``, straight from the server (not through lance)."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_env["AWS_ENDPOINT_URL"])

    def keys(bucket: str, prefix: str = "") -> list[str]:
        out: list[str] = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            out += [o["Key"] for o in page.get("Contents", [])]
        return out

    return keys
