"""The engines' common check: the same speech clips in a local store and in the engine's store, and the
engine's prosody features compared with those of the local engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ambiguity import open_store
from ambiguity.extractors.prosody import Prosody
from ambiguity.extractors.runner import run as run_local
from ambiguity.segments import load_manifest


def local_and_remote(tmp_path: Path, speech_dir: Path, n: int, remote_uri: str):
    """``n`` speech clips ingested into a local store (with the local engine's prosody features) and into the store
    at ``remote_uri`` (no features yet); returns (local, remote)."""
    man = tmp_path / "m.csv"
    man.write_text("segment_id,media\n" + "".join(f"c{i:02d},{speech_dir / f'{i:02d}.wav'}\n" for i in range(n)))
    local, remote = open_store(tmp_path / "local"), open_store(remote_uri)
    for s in (local, remote):
        s.upsert_segments(load_manifest(man))
    run_local(local, Prosody(), workers=1, progress=False)
    return local, remote


def assert_same_features(local, remote) -> None:
    """The same segments with the same prosody values (to 1e-6)."""
    a = local.features("prosody").sort("segment_id")
    b = remote.features("prosody").sort("segment_id")
    assert a["segment_id"].to_list() == b["segment_id"].to_list()
    cols = [c for c in a.columns if c not in ("segment_id", "status", "error")]
    np.testing.assert_allclose(b.select(cols).to_numpy(), a.select(cols).to_numpy(), rtol=0, atol=1e-6)
