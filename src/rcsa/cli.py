"""Command-line interface. Parses, calls one library function, prints, maps errors to exit codes.

Exit codes (documented in ``docs/cli.md``):

==== ===============================================================================
0    success
1    unexpected internal error (a bug: please report it with ``--debug`` output)
2    command-line usage error (unknown option, missing argument)
3    input not found or not readable (missing path, permissions, empty folder)
4    input refused: unsupported format, corrupt file, not CT, inconsistent series, ...
5    geometry mismatch between inputs that must share a grid (e.g. CT and labels)
==== ===============================================================================
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from rcsa import __version__
from rcsa.errors import (
    EmptyInputError,
    GeometryError,
    InputError,
    InputNotFoundError,
    InputNotReadableError,
    RcsaError,
)

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_INPUT_REFUSED = 4
EXIT_GEOMETRY = 5

#: Most specific class first; the first ``isinstance`` match decides the exit code.
EXIT_CODES: tuple[tuple[type[RcsaError], int], ...] = (
    (InputNotFoundError, EXIT_NOT_FOUND),
    (InputNotReadableError, EXIT_NOT_FOUND),
    (EmptyInputError, EXIT_NOT_FOUND),
    (InputError, EXIT_INPUT_REFUSED),
    (GeometryError, EXIT_GEOMETRY),
    (RcsaError, EXIT_INTERNAL),
)

app = typer.Typer(
    name="rcsa",
    help="CT core-muscle measurement (CSA, rCSA, attenuation, fat) and risk scoring.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)


class _State:
    debug = False


def exit_code_for(exc: BaseException) -> int:
    for cls, code in EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return EXIT_INTERNAL


def _fail(exc: BaseException) -> typer.Exit:
    """Print one line (or the traceback with --debug) and return the Exit to raise."""
    code = exit_code_for(exc)
    if _State.debug:
        err.print_exception(show_locals=False)
    elif isinstance(exc, RcsaError):
        err.print(f"[bold red]error:[/] {exc.message}", highlight=False, soft_wrap=True)
    else:
        err.print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {exc} "
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
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version."),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks and debug logging.")
    ] = False,
) -> None:
    """rcsa: from CT to muscle measurements and a risk score."""
    _State.debug = debug
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


SeriesUidOpt = Annotated[
    str | None,
    typer.Option("--series-uid", help="Analyse this DICOM SeriesInstanceUID instead of the automatic choice."),
]
NoTiltOpt = Annotated[
    bool,
    typer.Option("--no-tilt-correction", help="Refuse gantry-tilted series instead of resampling them."),
]
IrregularOpt = Annotated[
    bool,
    typer.Option(
        "--resample-irregular",
        help="Interpolate over missing slices / non-uniform spacing instead of refusing.",
    ),
]


def _info_dict(path: Path, show_ids: bool, **load_opts: Any) -> dict[str, Any]:
    from rcsa.io import load

    ct = load(path, **load_opts)
    g = ct.geometry
    zs = ct.z_mm()
    hu = ct.voxels
    info: dict[str, Any] = {
        "path": str(path),
        "format": ct.source.format,
        "modality": ct.modality,
        "size_voxels": list(g.size_voxels),
        "spacing_mm": [round(float(v), 6) for v in g.spacing_mm],
        "origin_mm": [round(float(v), 4) for v in g.origin_mm],
        "direction": [[round(float(v), 6) for v in row] for row in g.direction],
        "orientation": "LPS (i->L, j->P, k->S)",
        "extent_mm": [round(float(v), 3) for v in g.spacing_mm * (np.array(g.size_voxels) - 1)],
        "z_range_mm": [round(float(zs.min()), 3), round(float(zs.max()), 3)],
        "hu_range": [float(hu.min()), float(hu.max())],
        "dtype": str(hu.dtype),
        "n_series_found": ct.source.n_series_found,
        "series": [s.to_dict(show_ids) for s in ct.source.series],
        "n_files": len(ct.source.files),
        "acquisition": dict(ct.source.acquisition),
        "warnings": list(ct.warnings),
    }
    if show_ids:
        info["ids"] = ct.ids.to_dict()
    return info


@app.command()
def info(
    path: Annotated[Path, typer.Argument(help="DICOM folder or file, or a NIfTI / NRRD / MHA file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    show_ids: Annotated[
        bool, typer.Option("--show-ids", help="Include patient/study/series identifiers.")
    ] = False,
    series_uid: SeriesUidOpt = None,
    no_tilt_correction: NoTiltOpt = False,
    resample_irregular: IrregularOpt = False,
) -> None:
    """Load a CT scan and describe it: size, spacing, geometry, series found, warnings."""
    try:
        d = _info_dict(
            path,
            show_ids,
            series_uid=series_uid,
            correct_tilt=not no_tilt_correction,
            resample_irregular=resample_irregular,
        )
    except Exception as exc:
        raise _fail(exc) from None
    if as_json:
        sys.stdout.write(json.dumps(d, indent=2) + "\n")
        return
    table = Table(title=f"rcsa info: {path}", show_header=False, title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value")
    for key in ("format", "modality", "size_voxels", "spacing_mm", "origin_mm", "z_range_mm",
                "hu_range", "n_series_found", "n_files"):
        table.add_row(key, str(d[key]))
    for key, value in d["acquisition"].items():
        table.add_row(key, str(value))
    out.print(table)
    for s in d["series"]:
        mark = "*" if s["chosen"] else "-"
        out.print(f" {mark} {s['modality']} {s['n_files']} image(s) '{s['description']}': {s['reason']}",
                  highlight=False)
    for w in d["warnings"]:
        err.print(f"[yellow]warning:[/] {w}", highlight=False, soft_wrap=True)


def run() -> None:  # pragma: no cover - console-script shim
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
