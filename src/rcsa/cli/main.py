"""The ``rcsa`` Typer app, its global options, and the one mapping of errors to exit codes.

Every command module registers its commands on :data:`app` with ``register(app, fail)`` (see
:mod:`rcsa.cli`); a command parses its options, calls one library function, prints, and on
any exception does ``raise fail(exc) from None``: :func:`fail` prints one line (the traceback
with ``--debug``) and picks the exit code from :data:`EXIT_CODES`.
"""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from rcsa import _IMPORTED_AT, __version__
from rcsa.cli_help import ConventionalGroup
from rcsa.cli_options import DebugOpt, LogFileOpt
from rcsa.errors import (
    BatchError,
    EmptyInputError,
    GeometryError,
    InputError,
    InputNotFoundError,
    InputNotReadableError,
    LevelError,
    ModelError,
    NothingMeasuredError,
    OutputExistsError,
    OutputWriteError,
    PacsError,
    PacsQueryError,
    RcsaError,
    ReportError,
)
from rcsa.logs import configure as configure_logging

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_INPUT_REFUSED = 4
EXIT_GEOMETRY = 5
EXIT_OUTPUT_EXISTS = 6
EXIT_BATCH_FAILED = 7
EXIT_PACS = 8
EXIT_NOTHING_MEASURED = 9
EXIT_ENVIRONMENT = 10

#: Most specific class first; the first ``isinstance`` match decides the exit code. Every
#: subclass of :class:`RcsaError` lands on a code other than 1 (``tests/test_cli.py`` walks
#: them all); only the bare base class, which rcsa never raises, falls through to "a bug".
EXIT_CODES: tuple[tuple[type[RcsaError], int], ...] = (
    (InputNotFoundError, EXIT_NOT_FOUND),
    (InputNotReadableError, EXIT_NOT_FOUND),
    (EmptyInputError, EXIT_NOT_FOUND),
    (InputError, EXIT_INPUT_REFUSED),  # also ConfigError, LevelOverrideError, nomogram inputs
    (LevelError, EXIT_INPUT_REFUSED),
    (GeometryError, EXIT_GEOMETRY),
    (OutputExistsError, EXIT_OUTPUT_EXISTS),
    (BatchError, EXIT_BATCH_FAILED),
    (PacsQueryError, EXIT_USAGE),
    (PacsError, EXIT_PACS),
    (NothingMeasuredError, EXIT_NOTHING_MEASURED),
    (ModelError, EXIT_ENVIRONMENT),
    (ReportError, EXIT_ENVIRONMENT),
    (OutputWriteError, EXIT_ENVIRONMENT),
    (RcsaError, EXIT_INTERNAL),
)

app = typer.Typer(
    name="rcsa",
    cls=ConventionalGroup,  # Click-style help: no metavar on flags, `rcsa run [OPTIONS] PATH`
    help="CT core-muscle measurement (CSA, rCSA, attenuation, fat) and risk scoring.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)


class State:
    debug = False
    #: start of the current command: rcsa's first import for the first command in a process
    #: (what a user of the console script waits for), the callback's call for later ones
    started: float | None = None


def exit_code_for(exc: BaseException) -> int:
    for cls, code in EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return EXIT_INTERNAL


def fail(exc: BaseException) -> typer.Exit:
    """Print one line (or the traceback with --debug) and return the Exit to raise."""
    code = exit_code_for(exc)
    if State.debug:
        err.print_exception(show_locals=False)
    elif isinstance(exc, RcsaError):
        # escape: a message naming "[levels]" or "[measure]" is text, not Rich markup
        err.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False,
                  soft_wrap=True)
    else:
        err.print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {escape(str(exc))} "
            "(run again with --debug for the traceback and report it)",
            highlight=False,
            soft_wrap=True,
        )
    return typer.Exit(code)


def _version_callback(value: bool) -> None:
    if value:
        out.print(f"rcsa {__version__}", highlight=False)
        raise typer.Exit(EXIT_OK)


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Print the version."
        ),
    ] = False,
    debug: DebugOpt = False,
    log_file: LogFileOpt = None,
) -> None:
    """rcsa: from CT to muscle measurements and a risk score."""
    State.debug = debug
    State.started = _IMPORTED_AT if State.started is None else time.perf_counter()
    # third-party log records and warnings (pydicom, the decoders, ITK) go to the log file and
    # --debug only; rcsa's own warnings reach the console as one line (rcsa.logs)
    configure_logging(debug, log_file)
