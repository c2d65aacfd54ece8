"""Hypothesis profiles, chosen by HYPOTHESIS_PROFILE (loaded by tests/conftest.py).

* ``ci`` (.ci/run): derandomized -- the same examples on every run, so a CI failure
  replays locally with ``HYPOTHESIS_PROFILE=ci``; ``print_blob`` prints the
  ``@reproduce_failure`` blob; no deadline (a shared 2-core runner is slow).
* ``dev`` (the default): random examples, saved in .hypothesis/ so a failure replays
  on the next run; no deadline.
* ``thorough`` (``make test-all``): random, ten times the examples of each test.

Tests write ``max_examples=examples(N)`` rather than ``N`` so the profile can scale them.
"""

from __future__ import annotations

import os

from hypothesis import settings

# derandomize is set in every profile: with CI set, Hypothesis loads its own derandomized "ci"
# profile first, and a profile that does not say otherwise inherits from it.
settings.register_profile("ci", derandomize=True, print_blob=True, deadline=None)
settings.register_profile("dev", derandomize=False, deadline=None, print_blob=True)
settings.register_profile("thorough", derandomize=False, deadline=None, print_blob=True, max_examples=1000)

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "dev")
if PROFILE not in ("ci", "dev", "thorough"):
    raise RuntimeError(f"HYPOTHESIS_PROFILE={PROFILE!r}: use ci, dev or thorough")
settings.load_profile(PROFILE)
SCALE = 10 if PROFILE == "thorough" else 1


def examples(n: int) -> int:
    """``n`` examples, times ten under the thorough profile."""
    return n * SCALE
