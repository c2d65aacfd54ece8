"""OpenFace 2.x action units, through its ``FeatureExtraction`` program.

OpenFace has no Python API; its maintainers point to running ``FeatureExtraction``
as a subprocess. We run it once per source video (not once per segment clip),
into a temporary folder, parse the CSV and cut it into segments by timestamp.
Everything that can go wrong with the program becomes a ``failed`` row that
says what happened (exit code and the end of its output, a timeout, a CSV that
is missing, empty or malformed), never a silent gap.

Where the program is found, in order: the ``binary`` parameter (which a
project's ``[extractors.openface]`` table sets), ``$OPENFACE_BIN``, ``PATH``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from ambiguity.errors import ExtractorError, UnavailableError
from ambiguity.extractors.base import Empty, Extractor, Failure, Result
from ambiguity.extractors.openface_csv import Frames, OpenFaceOutputError, feature_names, read_csv, summarize
from ambiguity.inputs import SegmentInput

PROGRAM = "FeatureExtraction"
ENV = "OPENFACE_BIN"
INSTALL_HINT = (
    f"OpenFace's {PROGRAM} was not found: build OpenFace 2.2 "
    "(https://github.com/TadasBaltrusaitis/OpenFace/wiki, 'Unix Installation' or 'Windows Installation'), then set "
    f"{ENV}=/path/to/OpenFace/build/bin/{PROGRAM}, or binary = \"...\" under [extractors.openface] in ambiguity.toml, "
    f"or put {PROGRAM} on PATH"
)
#: Lines of the program's output quoted in a failure.
TAIL_LINES = 5


@dataclass(frozen=True)
class OpenFaceParams:
    #: Path to FeatureExtraction (or the folder holding it); None: $OPENFACE_BIN, then PATH.
    binary: str | None = None
    #: Frames count as valid with success == 1 and confidence at least this.
    min_confidence: float = 0.8
    #: Seconds one FeatureExtraction run (one source video) may take.
    timeout_s: float = 3600.0
    #: FeatureExtraction processes run at once (one per source video).
    jobs: int = 2
    #: Parsed source videos kept in memory for segments in later batches.
    cache_sources: int = 4
    #: Extra arguments passed to FeatureExtraction, e.g. "-wild" or "-multi_view,1".
    extra_args: tuple[str, ...] = ()


def _resolve(candidate: str, origin: str) -> str:
    """A usable executable from a path, a folder holding FeatureExtraction, or a name on PATH."""
    p = Path(candidate).expanduser()
    if p.is_dir():
        p = p / PROGRAM
    if p.is_file():
        if not os.access(p, os.X_OK):
            raise UnavailableError(f"{p} ({origin}) is not executable: chmod +x it or point at the built binary")
        return str(p)
    found = shutil.which(candidate) if os.sep not in candidate else None
    if found:
        return found
    raise UnavailableError(f"OpenFace binary {candidate!r} ({origin}) does not exist; {INSTALL_HINT}")


def find_binary(binary: str | None = None) -> str | None:
    """The FeatureExtraction to run: ``binary``, else $OPENFACE_BIN, else PATH; None if none.

    A ``binary`` or $OPENFACE_BIN that names a missing file raises UnavailableError
    (a typo should not fall back to another install silently).
    """
    if binary:
        return _resolve(binary, "the binary parameter")
    env = os.environ.get(ENV)
    if env:
        return _resolve(env, f"${ENV}")
    return shutil.which(PROGRAM)


def _configured_binary() -> str | None:
    """The binary set in the nearest project's ambiguity.toml, if any."""
    try:
        from ambiguity.config import find_project

        proj = find_project()
    except Exception:  # a broken project file is reported by the commands that read it
        return None
    value = proj.extractor_params("openface").get("binary") if proj else None
    return str(value) if value else None


def _signame(num: int) -> str:
    import signal

    try:
        return signal.Signals(num).name
    except ValueError:
        return "unknown"


def _tail(*paths: Path) -> str:
    """The last lines of the first non-empty file, joined into one line."""
    for p in paths:
        try:
            lines = [ln.strip() for ln in p.read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            continue
        if lines:
            return " | ".join(lines[-TAIL_LINES:])
    return "(no output)"


def run_feature_extraction(
    binary: str,
    video: str,
    *,
    timeout_s: float,
    extra_args: Sequence[str] = (),
    running: Running | None = None,
) -> Frames | Failure:
    """Run FeatureExtraction on one video and parse its CSV; a Failure says what went wrong.

    ``running``: where the live process is registered, so a caller can kill it (on Ctrl-C).
    The program stays in our process group: a Ctrl-C in the terminal reaches it too.
    """
    if not os.path.isfile(video):
        return Failure(f"media file not found: {video}")
    with tempfile.TemporaryDirectory(prefix="ambiguity-openface-") as tmp:
        out = Path(tmp)
        cmd = [binary, "-f", str(video), "-out_dir", str(out / "out"), "-of", "openface", "-aus", *extra_args]
        with open(out / "stdout.txt", "wb") as so, open(out / "stderr.txt", "wb") as se:
            try:
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=so, stderr=se)
            except OSError as exc:
                return Failure(f"cannot start {binary}: {exc.strerror or exc}")
            if running is not None:
                running.add(proc)
            try:
                code = proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                _kill(proc)
                return Failure(
                    f"{PROGRAM} timed out after {timeout_s:g} s on {video} (raise the timeout_s parameter); "
                    f"last output: {_tail(out / 'stderr.txt', out / 'stdout.txt')}"
                )
            finally:
                if running is not None:
                    running.discard(proc)
        if code != 0:
            how = f"exited with code {code}" if code > 0 else f"was killed by signal {-code} ({_signame(-code)})"
            return Failure(f"{PROGRAM} {how} on {video}: {_tail(out / 'stderr.txt', out / 'stdout.txt')}")
        csv = out / "out" / "openface.csv"
        if not csv.exists():
            found = sorted((out / "out").glob("*.csv")) if (out / "out").is_dir() else []
            if len(found) != 1:
                return Failure(
                    f"{PROGRAM} exited with code 0 on {video} but wrote no CSV; "
                    f"its output ends: {_tail(out / 'stderr.txt', out / 'stdout.txt')}"
                )
            csv = found[0]
        try:
            return read_csv(csv)
        except OpenFaceOutputError as exc:
            return Failure(f"{exc} (from {video})")


class Running:
    """The FeatureExtraction processes alive now; once closed, a late starter is killed at once."""

    def __init__(self) -> None:
        self._procs: set[subprocess.Popen] = set()
        self._lock = threading.Lock()
        self._closed = False

    def add(self, proc: subprocess.Popen) -> None:
        with self._lock:
            if not self._closed:
                self._procs.add(proc)
                return
        _kill(proc)

    def discard(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._procs.discard(proc)

    def kill_all(self) -> None:
        with self._lock:
            self._closed = True
            procs = list(self._procs)
        for proc in procs:
            _kill(proc)


def _kill(proc: subprocess.Popen) -> None:
    """Kill the program (FeatureExtraction starts no children) and reap it."""
    try:
        proc.kill()
    except OSError:
        pass
    proc.wait()


class OpenFace(Extractor):
    """Per segment: mean intensity (``AUxx_r_mean``) and activation rate (``AUxx_c_rate``) of each AU."""

    name = "openface"
    modality = "video"
    version = "1"
    Params = OpenFaceParams
    # In-process: the work happens in FeatureExtraction subprocesses (``jobs`` at once), and one
    # process keeps each video's parsed CSV for all its segments, so a video is never run twice.
    kind = "model"
    batch_size = 64
    # how the program runs, not what it measures
    runtime_params = frozenset({"binary", "timeout_s", "jobs", "cache_sources"})

    def __init__(self, **params: Any):
        super().__init__(**params)
        self._binary: str | None = None
        self._cache: OrderedDict[str, Frames | Failure | Empty] = OrderedDict()
        self.runs: list[str] = []  # source videos FeatureExtraction ran on, in order (for tests and logs)

    def validate(self) -> None:
        p = self.params
        if not 0.0 <= p.min_confidence <= 1.0:
            raise ExtractorError(f"openface: min_confidence={p.min_confidence} must lie in [0, 1]")
        if p.timeout_s <= 0:
            raise ExtractorError(f"openface: timeout_s={p.timeout_s} must be positive")
        if p.jobs < 1 or p.cache_sources < 1:
            raise ExtractorError(f"openface: jobs={p.jobs} and cache_sources={p.cache_sources} must be at least 1")
        if p.binary:
            find_binary(p.binary)  # a wrong path is an error now, not at the first video

    @classmethod
    def unavailable_reason(cls) -> str | None:
        try:
            found = find_binary(_configured_binary())
        except UnavailableError as exc:
            return str(exc)
        return None if found else INSTALL_HINT

    def extra_provenance(self) -> dict[str, Any]:
        try:
            return {"binary": find_binary(self.params.binary)}
        except UnavailableError:
            return {}

    def columns(self) -> list[pa.Field]:
        return [pa.field(n, pa.int64() if n.startswith("frames_") else pa.float64()) for n in feature_names()]

    def setup(self) -> None:
        found = find_binary(self.params.binary)
        if found is None:
            raise UnavailableError(INSTALL_HINT)
        self._binary = found

    def _frames_for(self, sources: Sequence[str]) -> dict[str, Frames | Failure | Empty]:
        """Parsed output per source video: from the cache, else one FeatureExtraction run each."""
        if self._binary is None:
            self.setup()
        binary = self._binary
        assert binary is not None  # setup() set it or raised
        todo = [s for s in dict.fromkeys(sources) if s not in self._cache]

        running = Running()

        def one(src: str) -> Frames | Failure | Empty:
            from ambiguity.media import MediaError, probe

            try:
                if not probe(src).has_video:  # an audio-only file: a missing modality, not an error
                    return Empty(f"no video track in {src}")
            except MediaError:
                pass  # unreadable: FeatureExtraction's own words go into the failed row
            return run_feature_extraction(
                binary, src, timeout_s=self.params.timeout_s, extra_args=self.params.extra_args, running=running
            )

        if todo:
            pool = ThreadPoolExecutor(max_workers=min(self.params.jobs, len(todo)))
            try:
                futures = [pool.submit(one, src) for src in todo]
                pending = set(futures)
                while pending:  # wake up now and then: a Ctrl-C is handled only when this thread runs
                    _done, pending = wait(pending, timeout=0.25)
                for src, fut in zip(todo, futures, strict=True):
                    self.runs.append(src)
                    self._cache[src] = fut.result()
            except BaseException:  # Ctrl-C or a crash: no FeatureExtraction may outlive the run
                running.kill_all()
                raise
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
        out = {}
        for s in dict.fromkeys(sources):
            out[s] = self._cache[s]
            self._cache.move_to_end(s)
        while len(self._cache) > max(self.params.cache_sources, len(out)):
            self._cache.popitem(last=False)
        return out

    def process(self, batch: Sequence[SegmentInput]) -> list[Result]:
        sources = [s.media for s in batch if s.media]
        frames = self._frames_for(sources)
        results: list[Result] = []
        for seg in batch:
            if not seg.media:
                results.append(Empty(f"segment {seg.segment_id} has no media file"))
                continue
            got = frames[seg.media]
            if isinstance(got, (Failure, Empty)):
                results.append(got)
            else:
                results.append(summarize(got, seg.start_s, seg.end_s, self.params.min_confidence))
        return results
