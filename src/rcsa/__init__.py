"""rcsa: CT core-muscle measurement and residual-back-pain risk scoring."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("rcsa")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
