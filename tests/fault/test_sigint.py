"""A real Ctrl-C: SIGINT to the process group of `ambiguity extract` (as a terminal sends it),
after the first batch is committed. The CLI exits 130, prints the resume hint, keeps every row
written, and a rerun finishes the rest and equals an uninterrupted run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from ambiguity import open_store
from trace_kill import TRACED

N = 8


@pytest.fixture(scope="module")
def seeded(seed_prosody):
    return seed_prosody(N, batch_size=1)


@pytest.mark.parametrize("workers", [1, pytest.param(2, marks=pytest.mark.slow)])  # the pool variant: -m slow
def test_ctrl_c_exits_130_keeps_rows_and_resumes(seeded, tmp_path, workers):
    fresh, reference = seeded
    store_dir = tmp_path / "store"
    shutil.copytree(fresh, store_dir)
    args = ["--store", str(store_dir), "extract", "--extractor", "prosody", "--batch-size", "1", "--workers",
            str(workers), "--quiet"]
    proc = subprocess.Popen([sys.executable, *TRACED, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    lines, deadline = [], time.time() + 120
    for line in proc.stderr:
        lines.append(line)
        if line.strip() == "trace written":  # the first batch is committed
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the whole foreground process group
            break
        assert time.time() < deadline, "no batch was written in 120 s"
    out, rest = proc.communicate(timeout=120)
    err = "".join(lines) + rest
    assert proc.returncode == 130, err
    assert "interrupted: everything written so far is kept; rerun to resume" in err
    st = open_store(store_dir).group_status("prosody")
    assert 1 <= st.height < N, "the interrupt came too late to show anything"  # rows kept, run stopped
    assert (st["status"] == "ok").all() and st["segment_id"].n_unique() == st.height
    kept = st.height
    r = subprocess.run([sys.executable, "-m", "ambiguity.cli.__main__", *args], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"{kept} already done" in r.stdout, r.stdout
    got = open_store(store_dir).features("prosody").sort("segment_id").drop("status", "error")
    assert got.equals(reference)
