"""Where log records go: rcsa's log file, and the console only for what a user must see.

The libraries rcsa reads images with (pydicom, the pylibjpeg / openjpeg / libjpeg decoders,
SimpleITK / ITK, GDCM when installed, nibabel) log what they tolerate or fail on, some of it at
ERROR level with a traceback attached ("Traceback (most recent call last)"), and Python
``warnings`` of their own. rcsa turns every failure that matters into its own typed error
(one line naming the file), so none of that reaches the console unless ``--debug``:

* console (stderr): without ``--debug`` only ``rcsa.*`` records at WARNING or above, printed
  as one line (never a traceback); with ``--debug`` every record, tracebacks included;
* log file (:func:`configure` ``log_file``, ``rcsa --log-file``, or ``OUT/batch.log`` for
  ``rcsa batch``): every record at DEBUG and above from rcsa and the libraries, with
  tracebacks, and Python warnings (``py.warnings``);
* ITK's own warnings (printed by C++ straight to stderr) are routed into the ``SimpleITK``
  logger (or, with an old SimpleITK, turned off unless ``--debug``).

The settings travel to worker processes through the environment (:data:`ENV_DEBUG`,
:data:`ENV_LOG_FILE`): a spawned batch worker calls :func:`configure_from_env`.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any

#: Loggers of the libraries rcsa reads and decodes images with.
THIRD_PARTY = ("pydicom", "pylibjpeg", "openjpeg", "libjpeg", "rle", "gdcm", "SimpleITK",
               "nibabel", "highdicom", "PIL", "py.warnings")
ENV_DEBUG = "RCSA_DEBUG"
ENV_LOG_FILE = "RCSA_LOG_FILE"
FILE_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"
CONSOLE_FORMAT = "%(levelname)s %(name)s: %(message)s"

_HANDLER_FLAG = "_rcsa_handler"


class _OneLine(logging.Formatter):
    """A console formatter that never prints a traceback or stack (``--debug`` does)."""

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info = record.exc_text = record.stack_info = None
        try:
            return super().format(record).splitlines()[0] if record.getMessage() else ""
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved


def _rcsa_warning(record: logging.LogRecord) -> bool:
    return record.name.split(".")[0] == "rcsa" and record.levelno >= logging.WARNING


def configure(debug: bool = False, log_file: str | Path | None = None) -> None:
    """Route log records as the module docstring says; idempotent (replaces what an earlier
    call installed) and recorded in the environment for worker processes."""
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, _HANDLER_FLAG, False):
            root.removeHandler(h)
            h.close()
    # other libraries (matplotlib, fonts, ...) only from WARNING unless --debug
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    logging.getLogger("rcsa").setLevel(logging.DEBUG if debug else logging.INFO)
    console = logging.StreamHandler()
    setattr(console, _HANDLER_FLAG, True)
    if debug:
        console.setLevel(logging.DEBUG)
        console.setFormatter(logging.Formatter(CONSOLE_FORMAT))
    else:
        console.setLevel(logging.WARNING)
        console.setFormatter(_OneLine(CONSOLE_FORMAT))
        console.addFilter(_rcsa_warning)
    root.addHandler(console)
    if log_file is not None:
        path = Path(log_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(path, encoding="utf-8", delay=True)
        setattr(fh, _HANDLER_FLAG, True)
        fh.setLevel(logging.DEBUG)
        fh.setFormatter(logging.Formatter(FILE_FORMAT))
        root.addHandler(fh)
        os.environ[ENV_LOG_FILE] = str(path.resolve())
    else:
        os.environ.pop(ENV_LOG_FILE, None)
    os.environ[ENV_DEBUG] = "1" if debug else "0"
    for name in THIRD_PARTY:
        # INFO in the log file: pydicom's DEBUG output (with pydicom.config.debug) would
        # dump element values, patient names included
        logging.getLogger(name).setLevel(
            logging.DEBUG if debug else logging.INFO if log_file is not None else logging.WARNING)
    adopt_library_loggers()
    logging.captureWarnings(True)
    warnings.simplefilter("default")
    quiet_itk(debug)


def adopt_library_loggers() -> None:
    """Remove the console handlers the libraries install on their own loggers (nibabel adds
    one to ``nibabel.global`` when it is imported), so their records reach the console only
    through rcsa's handler (``--debug``). Called by :func:`configure` and by the readers
    right after a lazy import."""
    manager = logging.Logger.manager
    for name, lg in list(manager.loggerDict.items()):
        if not isinstance(lg, logging.Logger) or name.split(".")[0] not in THIRD_PARTY:
            continue
        lg.propagate = True
        for h in list(lg.handlers):
            if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler):
                lg.removeHandler(h)


def add_log_file(log_file: str | Path) -> None:
    """Also write every record to ``log_file`` (e.g. a batch's ``OUT/batch.log``), keeping
    the console as configured."""
    configure(os.environ.get(ENV_DEBUG) == "1", log_file)


def configure_from_env() -> None:
    """In a worker process: the parent's settings (:func:`configure`)."""
    configure(os.environ.get(ENV_DEBUG) == "1", os.environ.get(ENV_LOG_FILE) or None)


_ITK_LOGGER: Any = None  # the forwarder installed as ITK's global logger (kept alive here)


def _itk_forwarder(sitk: Any) -> Any:
    """A SimpleITK ``LoggerBase`` that hands ITK's messages to the ``SimpleITK`` logger."""
    log = logging.getLogger("SimpleITK")

    def one_line(text: str) -> str:
        return " ".join(str(text).split())

    class Forward(sitk.LoggerBase):  # type: ignore[misc]
        def DisplayText(self, text: str) -> None:
            log.info(one_line(text))

        def DisplayGenericOutputText(self, text: str) -> None:
            log.info(one_line(text))

        def DisplayDebugText(self, text: str) -> None:
            log.debug(one_line(text))

        def DisplayWarningText(self, text: str) -> None:
            log.warning(one_line(text))

        def DisplayErrorText(self, text: str) -> None:
            log.error(one_line(text))

    return Forward()


def quiet_itk(debug: bool | None = None) -> None:
    """ITK / SimpleITK print their warnings from C++ straight to stderr. Route them into the
    ``SimpleITK`` logger instead (SimpleITK's global ITK logger: log file, ``--debug``); where
    that is unavailable, switch them off unless debug (they are never needed: SimpleITK
    raises on a file it cannot read, and rcsa turns that into a typed error). Also GDCM's,
    when it is installed."""
    global _ITK_LOGGER
    if debug is None:
        debug = os.environ.get(ENV_DEBUG) == "1"
    sitk = sys.modules.get("SimpleITK")  # not imported here (slow): rcsa.io.image calls this
    if sitk is not None:
        if _ITK_LOGGER is None:
            try:
                forwarder = _itk_forwarder(sitk)
                forwarder.SetAsGlobalITKLogger()
                _ITK_LOGGER = forwarder
            except Exception:  # an old SimpleITK without LoggerBase
                _ITK_LOGGER = False
        sitk.ProcessObject.SetGlobalWarningDisplay(bool(_ITK_LOGGER) or debug)
    gdcm = sys.modules.get("gdcm")  # not a dependency; quiet it when something loaded it
    if gdcm is not None:  # pragma: no cover - not installed here
        try:
            gdcm.Trace.SetWarning(debug)
            gdcm.Trace.SetError(debug)
        except Exception:
            pass
