"""rcsa: CT core-muscle measurement and residual-back-pain risk scoring."""

import time as _time

#: ``time.perf_counter()`` when rcsa was first imported, before its dependencies: the start
#: from which the command line reports the wall time a command took (``rcsa run``).
_IMPORTED_AT = _time.perf_counter()

import logging as _logging  # noqa: E402
from importlib.metadata import PackageNotFoundError, version  # noqa: E402

# A library never configures logging: without this, a warning from rcsa in a program that set
# up no handler would go to Python's last-resort stderr handler.
_logging.getLogger("rcsa").addHandler(_logging.NullHandler())

try:
    __version__ = version("rcsa")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
