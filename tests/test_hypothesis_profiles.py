"""HYPOTHESIS_PROFILE selects a registered profile; ci is derandomized with no deadline."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _settings(profile: str) -> str:
    code = ("import hypothesis_profiles as h; from hypothesis import settings; s = settings.default; "
            "print(s.derandomize, s.deadline, s.print_blob, s.max_examples, h.examples(5))")
    env = dict(os.environ, HYPOTHESIS_PROFILE=profile, PYTHONPATH=str(TESTS))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    return out.stdout.strip() or out.stderr


def test_profiles():
    assert _settings("ci") == "True None True 100 5"
    assert _settings("dev") == "False None True 100 5"
    assert _settings("thorough") == "False None True 1000 50"
    assert "use ci, dev or thorough" in _settings("nope")


def test_ci_selects_the_ci_profile():
    assert "export HYPOTHESIS_PROFILE=ci" in (TESTS.parent / ".ci" / "run").read_text()
    assert "HYPOTHESIS_PROFILE=thorough" in (TESTS.parent / "Makefile").read_text()
