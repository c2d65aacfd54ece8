"""The project file ``ambiguity.toml``: where the store is and per-extractor defaults."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ambiguity.errors import ConfigError

CONFIG_NAME = "ambiguity.toml"

TEMPLATE = """\
# ambiguity project. Paths are relative to this file.
store = "store"

[ingest]
# Map your manifest's column names to ours, e.g.:
# columns = { dialog_id = "segment_id", start_time = "start_s", end_time = "end_s" }
# media_template = "videos/{dialog_id}.mp4"

# Default parameters per extractor, e.g.:
# [extractors.prosody]
# pitch_floor = 75
# [extractors.openface]
# binary = "/opt/OpenFace/build/bin/FeatureExtraction"
"""


@dataclass
class Project:
    root: Path
    store: str
    ingest: dict[str, Any] = field(default_factory=dict)
    extractors: dict[str, dict[str, Any]] = field(default_factory=dict)

    def extractor_params(self, name: str) -> dict[str, Any]:
        return dict(self.extractors.get(name, {}))


def init_project(root: Path) -> Project:
    root.mkdir(parents=True, exist_ok=True)
    cfg = root / CONFIG_NAME
    if not cfg.exists():
        cfg.write_text(TEMPLATE)
    return load_project(cfg)


def load_project(cfg: Path) -> Project:
    try:
        data = tomllib.loads(cfg.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {cfg}: {exc}") from None
    store = str(data.get("store", "store"))
    if "://" not in store and not os.path.isabs(store):
        store = str((cfg.parent / store).resolve())
    return Project(cfg.parent, store, dict(data.get("ingest", {})), dict(data.get("extractors", {})))


def find_project(start: Path | None = None) -> Project | None:
    """The nearest ``ambiguity.toml`` in ``start`` or a parent folder."""
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / CONFIG_NAME).exists():
            return load_project(d / CONFIG_NAME)
    return None


def store_location(uri: str | os.PathLike) -> str:
    """The store a user names: a project folder (holding ambiguity.toml) or the file itself means its store.

    Anything else (a store folder, an object-store URI) is returned as given.
    """
    text = str(uri)
    if "://" in text and not text.startswith("file://"):
        return text
    path = Path(text.removeprefix("file://"))
    if path.name == CONFIG_NAME and path.is_file():
        return load_project(path).store
    if (path / CONFIG_NAME).is_file():
        return load_project(path / CONFIG_NAME).store
    return text
