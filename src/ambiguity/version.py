"""The installed package's version, for provenance and report headers."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ambiguity")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0"
