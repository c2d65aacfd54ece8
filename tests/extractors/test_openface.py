"""The openface extractor with a fake FeatureExtraction: statuses and reasons for every way it breaks."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from ambiguity.errors import UnavailableError
from ambiguity.extractors import openface as of
from ambiguity.extractors.openface import INSTALL_HINT, OpenFace, find_binary
from ambiguity.extractors.openface_csv import AU_C, AU_R
from ambiguity.extractors.runner import run
from ambiguity.segments import load_manifest

FAKE_DIR = Path(__file__).resolve().parents[1] / "fake_openface"
FAKE = FAKE_DIR / "FeatureExtraction"
DURATION = 2.4  # seconds the fake writes; single_face.mp4 lasts 2.42 s


@pytest.fixture(autouse=True)
def fake_env(monkeypatch, tmp_path):
    monkeypatch.delenv("OPENFACE_BIN", raising=False)
    monkeypatch.setenv("FAKE_OPENFACE_DURATION", str(DURATION))
    monkeypatch.setenv("FAKE_OPENFACE_LOG", str(tmp_path / "runs.log"))
    monkeypatch.delenv("FAKE_OPENFACE_MODE", raising=False)
    monkeypatch.chdir(tmp_path)  # no ambiguity.toml above
    py = tmp_path / "py"  # the fake's `#!/usr/bin/env python3` finds this interpreter first
    py.mkdir()
    (py / "python3").symlink_to(sys.executable)
    monkeypatch.setenv("PATH", f"{py}{os.pathsep}{os.environ.get('PATH', '')}")


def videos(tmp_path: Path, faces_dir: Path, names: list[str]) -> dict[str, Path]:
    """Copies of a real clip under names that tell the fake how to behave (the manifest resolves symlinks)."""
    out = {}
    for n in names:
        p = tmp_path / "videos" / f"{n}.mp4"
        p.parent.mkdir(exist_ok=True)
        shutil.copyfile(faces_dir / "single_face.mp4", p)
        out[n] = p
    return out


def ingest(store, tmp_path: Path, vids: dict[str, Path], cuts=((0.0, 0.8), (0.8, 1.6), (1.6, 2.4))) -> None:
    man = tmp_path / "manifest.csv"
    with man.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["segment_id", "media", "start_s", "end_s"])
        for name, path in vids.items():
            for i, (a, b) in enumerate(cuts):
                w.writerow([f"{name}-{i}", str(path), a, b])
    store.upsert_segments(load_manifest(man))


def statuses(store) -> dict[str, tuple[str, str | None]]:
    st = store.features("openface", status=None)
    return {r["segment_id"]: (r["status"], r["error"]) for r in st.iter_rows(named=True)}


def runs_logged(tmp_path: Path) -> list[str]:
    log = tmp_path / "runs.log"
    return log.read_text().splitlines() if log.exists() else []


def test_each_way_of_breaking_gives_its_status_and_reason_and_the_run_goes_on(store, tmp_path, faces_dir):
    names = ["good", "fail", "hang", "empty", "garbage", "nocsv", "noaus", "noface"]
    vids = videos(tmp_path, faces_dir, names)
    ingest(store, tmp_path, vids)
    t0 = time.perf_counter()
    report = run(store, OpenFace(binary=str(FAKE), timeout_s=1.5, jobs=2), batch_size=5, progress=False)
    assert time.perf_counter() - t0 < 30  # the hanging run was killed at its timeout
    got = statuses(store)
    assert len(got) == 3 * len(names)
    # each way of breaking: its status and the words its reason must hold
    broken = {
        "fail": ("failed", "exited with code 3", "could not load the landmark detector model"),  # the last stderr lines
        "hang": ("failed", "timed out after 1.5 s", "timeout_s"),
        "empty": ("failed", "is empty"),
        "garbage": ("failed", "malformed"),
        "nocsv": ("failed", "exited with code 0", "wrote no CSV"),
        "noaus": ("failed", "no column 'AU01_r'"),
        "noface": ("empty", "no tracked face"),
    }
    for i in range(3):
        assert got[f"good-{i}"] == ("ok", None)
        for name, (status, *words) in broken.items():
            st, err = got[f"{name}-{i}"]
            assert st == status and all(w in err for w in words), (name, st, err)
    assert (report.ok, report.empty, report.failed) == (3, 3, 18)
    # once per source video, although its three segments straddle batches of 5
    assert sorted(runs_logged(tmp_path)) == sorted(str(v) for v in vids.values())


def test_values_equal_pandas_on_the_csv_the_program_wrote(store, tmp_path, faces_dir):
    vids = videos(tmp_path, faces_dir, ["clip"])
    ingest(store, tmp_path, vids)
    run(store, OpenFace(binary=str(FAKE)), progress=False)
    feats = store.features("openface").sort("segment_id")
    # reference: run the same program by hand and compute with pandas
    out = tmp_path / "by_hand"
    subprocess.run([str(FAKE), "-f", str(vids["clip"]), "-out_dir", str(out), "-of", "x", "-aus"], check=True, capture_output=True)
    df = pd.read_csv(out / "x.csv", skipinitialspace=True)
    for i, (a, b) in enumerate(((0.0, 0.8), (0.8, 1.6), (1.6, 2.4))):
        v = df[(df.timestamp >= a) & (df.timestamp < b) & (df.success == 1) & (df.confidence >= 0.8)]
        row = feats.row(i, named=True)
        assert row["segment_id"] == f"clip-{i}"
        assert row["frames_valid"] == len(v) and row["frames_total"] == len(v)
        for au in AU_R:
            assert row[f"{au}_r_mean"] == pytest.approx(v[f"{au}_r"].mean(), abs=1e-12)
        for au in AU_C:
            assert row[f"{au}_c_rate"] == pytest.approx((v[f"{au}_c"] == 1).mean(), abs=1e-12)


def test_cache_serves_later_batches_and_is_bounded(tmp_path, faces_dir):
    from ambiguity.inputs import SegmentInput

    vids = videos(tmp_path, faces_dir, ["a", "b", "c"])
    ex = OpenFace(binary=str(FAKE), cache_sources=1)
    seg = lambda v, a, b: SegmentInput(f"{v}{a}", str(vids[v]), a, b)  # noqa: E731
    ex.process([seg("a", 0.0, 1.0)])
    ex.process([seg("a", 1.0, 2.0)])  # cached: no second run
    ex.process([seg("b", 0.0, 1.0), seg("c", 0.0, 1.0)])  # both kept while the batch needs them
    ex.process([seg("a", 0.0, 1.0)])  # evicted (cache of 1): runs again
    assert [Path(p).stem for p in ex.runs] == ["a", "b", "c", "a"]
    assert len(runs_logged(tmp_path)) == 4


def test_missing_binary_is_one_line_with_the_install_hint(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no FeatureExtraction anywhere
    assert find_binary() is None
    assert OpenFace.unavailable_reason() == INSTALL_HINT
    assert "\n" not in INSTALL_HINT and "OPENFACE_BIN" in INSTALL_HINT and "github.com/TadasBaltrusaitis/OpenFace" in INSTALL_HINT
    with pytest.raises(UnavailableError, match="was not found"):
        OpenFace().setup()
    with pytest.raises(UnavailableError, match="does not exist"):
        OpenFace(binary=str(tmp_path / "nowhere" / "FeatureExtraction"))
    monkeypatch.setenv("OPENFACE_BIN", str(tmp_path / "typo"))
    assert "does not exist" in OpenFace.unavailable_reason()


def test_binary_found_from_env_path_folder_and_project_config(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("OPENFACE_BIN", str(FAKE))
    assert find_binary() == str(FAKE) and OpenFace.unavailable_reason() is None
    monkeypatch.setenv("OPENFACE_BIN", str(FAKE_DIR))  # the build folder is enough
    assert find_binary() == str(FAKE)
    monkeypatch.delenv("OPENFACE_BIN")
    monkeypatch.setenv("PATH", f"{FAKE_DIR}{os.pathsep}{tmp_path}")
    assert find_binary() == str(FAKE_DIR / "FeatureExtraction")
    monkeypatch.setenv("PATH", str(tmp_path))
    (tmp_path / "ambiguity.toml").write_text(f'store = "store"\n[extractors.openface]\nbinary = "{FAKE}"\n')
    assert OpenFace.unavailable_reason() is None


def test_binary_that_vanishes_or_is_not_executable_fails_the_segments(tmp_path, faces_dir):
    from ambiguity.extractors.base import Failure
    from ambiguity.inputs import SegmentInput

    vids = videos(tmp_path, faces_dir, ["a"])
    copy = tmp_path / "bin" / "FeatureExtraction"
    copy.parent.mkdir()
    copy.write_bytes(FAKE.read_bytes())
    copy.chmod(0o755)
    ex = OpenFace(binary=str(copy))
    ex.setup()
    copy.unlink()
    got = ex.process([SegmentInput("s", str(vids["a"]), 0.0, 1.0)])
    assert isinstance(got[0], Failure) and "cannot start" in got[0].reason
    copy.write_text("#!/bin/sh\n")
    copy.chmod(0o644)
    with pytest.raises(UnavailableError, match="not executable"):
        OpenFace(binary=str(copy))
    missing = ex.process([SegmentInput("m", str(tmp_path / "absent.mp4"), 0.0, 1.0)])
    assert isinstance(missing[0], Failure) and "media file not found" in missing[0].reason


def test_operational_parameters_do_not_change_the_group(tmp_path):
    a = OpenFace(binary=str(FAKE), timeout_s=10, jobs=1)
    b = OpenFace(binary=str(FAKE_DIR), timeout_s=99, jobs=4, cache_sources=2)
    assert a.config_key() == b.config_key()
    assert OpenFace(binary=str(FAKE), min_confidence=0.9).config_key() != a.config_key()


def test_bad_parameters_name_the_value():
    from ambiguity.errors import ExtractorError

    with pytest.raises(ExtractorError, match="min_confidence=1.5"):
        OpenFace(binary=str(FAKE), min_confidence=1.5)
    with pytest.raises(ExtractorError, match="timeout_s"):
        OpenFace(binary=str(FAKE), timeout_s="0")


def test_whole_file_segment_without_times(store, tmp_path, faces_dir):
    vids = videos(tmp_path, faces_dir, ["whole"])
    man = tmp_path / "m.csv"
    man.write_text(f"segment_id,media\nw,{vids['whole']}\n")
    store.upsert_segments(load_manifest(man))
    run(store, OpenFace(binary=str(FAKE)), progress=False)
    row = store.features("openface").row(0, named=True)
    assert row["frames_total"] == round(DURATION * 30)


def test_installed_names_match_the_module():
    assert of.OpenFace.name == "openface" and of.OpenFace.modality == "video"


def test_cli_extract_video_runs_what_is_available_and_lists_the_rest(monkeypatch, tmp_path, faces_dir):
    from click.testing import CliRunner

    from ambiguity.cli import main
    from ambiguity.extractors import registry

    monkeypatch.setenv("PATH", str(tmp_path / "py"))  # python3 for the fake, no FeatureExtraction
    man = tmp_path / "m.csv"
    man.write_text(f"segment_id,media,start_s,end_s\nclip,{faces_dir / 'single_face.mp4'},0,0.6\n")
    store = ["--store", str(tmp_path / "store")]
    cli = CliRunner()

    def invoke(*args):
        r = cli.invoke(main, [*store, *args], catch_exceptions=False)
        assert r.exit_code == 0, r.output
        return r.output

    registry.entries.cache_clear()
    try:
        listing = invoke("extractors")
        line = next(ln for ln in listing.splitlines() if ln.startswith("openface"))
        assert "unavailable: OpenFace's FeatureExtraction was not found" in line
        invoke("ingest", str(man))
        out = invoke("extract", "--modality", "video", "--quiet", "--workers", "1")
        assert "skipped openface: OpenFace's FeatureExtraction was not found" in out and "OPENFACE_BIN" in out
        assert "landmarks: 1 processed (1 ok" in out
        assert "1 video extractor(s) unavailable" in out

        monkeypatch.setenv("OPENFACE_BIN", str(FAKE))
        registry.entries.cache_clear()
        assert "unavailable" not in next(ln for ln in invoke("extractors").splitlines() if ln.startswith("openface"))
        out = invoke("extract", "--modality", "video", "--quiet", "--workers", "1")
        assert "openface: 1 processed (1 ok" in out
        assert "landmarks: 0 processed" in out and "1 already done" in out
        assert "skipped" not in out
    finally:
        registry.entries.cache_clear()


def test_conformance_suite_with_the_fake_binary():
    from ambiguity.testing import check_extractor

    check_extractor(OpenFace, {"binary": str(FAKE)})


def test_ctrl_c_leaves_no_featureextraction_running(tmp_path, faces_dir, monkeypatch):
    import signal

    vids = videos(tmp_path, faces_dir, ["hang"])
    pidfile = tmp_path / "fake.pid"
    monkeypatch.setenv("FAKE_OPENFACE_PIDFILE", str(pidfile))
    code = (
        "import sys\n"
        "from ambiguity.extractors.openface import OpenFace\n"
        "from ambiguity.inputs import SegmentInput\n"
        f"ex = OpenFace(binary={str(FAKE)!r}, timeout_s=120)\n"
        "try:\n"
        f"    ex.process([SegmentInput('s', {str(vids['hang'])!r}, 0.0, 1.0)])\n"
        "except KeyboardInterrupt:\n"
        "    sys.exit(130)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 30
        while not (pidfile.exists() and pidfile.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        fake_pid = int(pidfile.read_text())
        child.send_signal(signal.SIGINT)  # to the Python process only, as a Ctrl-C would reach it
        assert child.wait(timeout=20) == 130
    finally:
        if child.poll() is None:
            child.kill()
    with pytest.raises(ProcessLookupError):
        os.kill(fake_pid, 0)


def test_killed_by_a_signal_is_said_so(tmp_path, faces_dir):
    from ambiguity.extractors.base import Failure
    from ambiguity.inputs import SegmentInput

    vids = videos(tmp_path, faces_dir, ["a"])
    killer = tmp_path / "bin" / "FeatureExtraction"
    killer.parent.mkdir()
    killer.write_text("#!/bin/sh\necho 'Segmentation fault in the landmark detector' >&2\nkill -SEGV $$\n")
    killer.chmod(0o755)
    got = OpenFace(binary=str(killer)).process([SegmentInput("s", str(vids["a"]), 0.0, 1.0)])
    assert isinstance(got[0], Failure)
    assert "killed by signal 11 (SIGSEGV)" in got[0].reason and "Segmentation fault in the landmark detector" in got[0].reason
