"""Command-line interface. Parses, calls one library function, prints, maps errors to exit codes.

The package: :mod:`rcsa.cli.main` (the app, global options, :data:`EXIT_CODES`, ``fail``),
:mod:`rcsa.cli.info`, :mod:`rcsa.cli.levels`, :mod:`rcsa.cli.scan` (``run``, ``measure``);
the other commands live beside their library (``rcsa.segment.cli``, ``rcsa.report.cli``,
``rcsa.batch.cli``, ``rcsa.pacs.cli``, ``rcsa.nomogram.cli``) and are registered here, in
the order ``rcsa --help`` lists them. Options that several commands take are declared once in
:mod:`rcsa.cli_options`.

Exit codes (documented in ``docs/cli.md``):

===== ===============================================================================
0     success
1     unexpected internal error (a bug: please report it with ``--debug`` output)
2     command-line usage error (unknown option, missing argument)
3     input not found or not readable (missing path, permissions, empty folder)
4     input refused: unsupported format, corrupt file, not CT, inconsistent series, a bad
      ``--config`` file, a bad level spec, an unusable nomogram spec / table / value, ...
5     geometry mismatch between inputs that must share a grid (e.g. CT and labels)
6     output exists and ``--overwrite`` was not given
7     ``rcsa batch`` finished with failed cases (successes are written), or cannot run
8     PACS / DICOMweb: no server configured, server unreachable or refused a request
9     ``rcsa run`` / ``rcsa measure`` measured nothing (no level found or given; a single slice
      needs ``--level L3=slice:0``); nothing is written
10    rcsa cannot do it here: segmentation model missing or unusable (``--model``), PDF
      engine missing (``rcsa screen --no-pdf``), an output cannot be written (permissions)
===== ===============================================================================
"""

from __future__ import annotations

from rcsa.batch.cli import register as _register_batch
from rcsa.cli import info as _info
from rcsa.cli import levels as _levels
from rcsa.cli import scan as _scan
from rcsa.cli.main import (
    EXIT_BATCH_FAILED,
    EXIT_CODES,
    EXIT_ENVIRONMENT,
    EXIT_GEOMETRY,
    EXIT_INPUT_REFUSED,
    EXIT_INTERNAL,
    EXIT_NOT_FOUND,
    EXIT_NOTHING_MEASURED,
    EXIT_OK,
    EXIT_OUTPUT_EXISTS,
    EXIT_PACS,
    EXIT_USAGE,
    app,
    exit_code_for,
    fail,
)
from rcsa.nomogram.cli import register as _register_nomogram
from rcsa.pacs.cli import register as _register_pacs
from rcsa.report.cli import register as _register_screen
from rcsa.segment.cli import register as _register_segment

__all__ = [
    "EXIT_BATCH_FAILED",
    "EXIT_CODES",
    "EXIT_ENVIRONMENT",
    "EXIT_GEOMETRY",
    "EXIT_INPUT_REFUSED",
    "EXIT_INTERNAL",
    "EXIT_NOTHING_MEASURED",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_OUTPUT_EXISTS",
    "EXIT_PACS",
    "EXIT_USAGE",
    "app",
    "exit_code_for",
    "fail",
]

_info.register(app, fail)  # rcsa info
_levels.register(app, fail)  # rcsa levels
_scan.register(app, fail)  # rcsa run, rcsa measure
_register_segment(app, fail)  # prepare-training, train, segment (torch imported inside)
_register_screen(app, fail)  # rcsa screen (rcsa.report imported inside)
_register_batch(app, fail, EXIT_BATCH_FAILED)  # rcsa batch
_register_pacs(app, fail)  # rcsa pacs query / retrieve / push / export-dicom
_register_nomogram(app, fail)  # rcsa nomogram score / fit / evaluate / show / plot / simulate
