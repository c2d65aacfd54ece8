"""The real server: `ambiguity annotate serve` (uvicorn, via annotate.server.serve) on a free
port, exercised over HTTP, stopped with SIGINT; the answer given is in the store afterwards."""

from __future__ import annotations

import http.cookiejar
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from ambiguity import open_store
from ambiguity.annotate.records import read_answers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(port: int, proc, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the server did not start listening")


def test_serve_answers_over_http_and_keeps_answers(study, tmp_path):
    store_dir = study.uri.removeprefix("file://")
    port = _free_port()
    cmd = [sys.executable, "-m", "ambiguity.cli.__main__", "--store", store_dir, "annotate", "serve",
           "--task", "pilot", "--port", str(port), "--clips", str(tmp_path / "clips")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _wait_listening(port, proc)
        base = f"http://127.0.0.1:{port}"
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

        def call(path, body=None):
            data = None if body is None else json.dumps(body).encode()
            req = urllib.request.Request(base + path, data=data, headers={"Content-Type": "application/json"})
            with opener.open(req, timeout=30) as r:
                return r.status, r.headers, r.read()

        status, headers, page = call("/")
        assert status == 200 and headers["Content-Type"].startswith("text/html") and b"<html" in page.lower()
        assert call("/api/login", {"name": "ann"})[2] == b'{"annotator":"ann"}'
        state = json.loads(call("/api/state")[2])
        item = state["item"]
        status, _, body = call("/api/answer", {"item": item["item"], "round": item["round"], "judgment": "neutral", "elapsed_s": 2.0})
        assert status == 200, body
        after = json.loads(call("/api/state")[2])
        assert after["item"] != item  # the server moved on
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: uvicorn shuts down, serve() compacts on the way out
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err  # uvicorn handles SIGINT itself: a clean shutdown
    answers = read_answers(open_store(store_dir), "pilot")
    assert answers.select("annotator", "item", "round", "judgment").rows() == [("ann", item["item"], item["round"], "neutral")]
