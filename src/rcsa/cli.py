"""Command-line interface. Parses, calls one library function, prints, maps errors to exit codes.

Exit codes (documented in ``docs/cli.md``):

==== ===============================================================================
0    success
1    unexpected internal error (a bug: please report it with ``--debug`` output)
2    command-line usage error (unknown option, missing argument)
3    input not found or not readable (missing path, permissions, empty folder)
4    input refused: unsupported format, corrupt file, not CT, inconsistent series, ...
5    geometry mismatch between inputs that must share a grid (e.g. CT and labels)
6    output exists and ``--overwrite`` was not given
7    ``rcsa batch`` finished with failed cases (successes are written), or cannot run
8    PACS / DICOMweb: no server configured, server unreachable or refused a request
9    ``rcsa run`` / ``rcsa measure`` measured nothing (no level found or given; a single slice
     needs ``--level L3=slice:0``); nothing is written
==== ===============================================================================
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from rcsa import _IMPORTED_AT, __version__
from rcsa.cli_help import ConventionalGroup
from rcsa.errors import (
    BatchError,
    EmptyInputError,
    GeometryError,
    InputError,
    InputNotFoundError,
    InputNotReadableError,
    NothingMeasuredError,
    OutputExistsError,
    PacsError,
    PacsQueryError,
    RcsaError,
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

#: Most specific class first; the first ``isinstance`` match decides the exit code.
EXIT_CODES: tuple[tuple[type[RcsaError], int], ...] = (
    (InputNotFoundError, EXIT_NOT_FOUND),
    (InputNotReadableError, EXIT_NOT_FOUND),
    (EmptyInputError, EXIT_NOT_FOUND),
    (InputError, EXIT_INPUT_REFUSED),
    (GeometryError, EXIT_GEOMETRY),
    (OutputExistsError, EXIT_OUTPUT_EXISTS),
    (BatchError, EXIT_BATCH_FAILED),
    (PacsQueryError, EXIT_USAGE),
    (PacsError, EXIT_PACS),
    (NothingMeasuredError, EXIT_NOTHING_MEASURED),
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


class _State:
    debug = False
    #: start of the current command: rcsa's first import for the first command in a process
    #: (what a user of the console script waits for), the callback's call for later ones
    started: float | None = None


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
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Print the version."
        ),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks and debug logging.")
    ] = False,
    log_file: Annotated[
        Path | None,
        typer.Option("--log-file", help="Append every log record (rcsa's and the libraries', "
                     "with tracebacks) to this file."),
    ] = None,
) -> None:
    """rcsa: from CT to muscle measurements and a risk score."""
    _State.debug = debug
    _State.started = _IMPORTED_AT if _State.started is None else time.perf_counter()
    # third-party log records and warnings (pydicom, the decoders, ITK) go to the log file and
    # --debug only; rcsa's own warnings reach the console as one line (rcsa.logs)
    configure_logging(debug, log_file)


SeriesUidOpt = Annotated[
    str | None,
    typer.Option(
        "--series-uid",
        help="Analyse this DICOM SeriesInstanceUID instead of the automatic choice.",
    ),
]
NoTiltOpt = Annotated[
    bool,
    typer.Option(
        "--no-tilt-correction", help="Refuse gantry-tilted series instead of resampling them."
    ),
]
LevelOpt = Annotated[
    list[str] | None,
    typer.Option("--level", help="Manual level, e.g. L3=z:-412.5 or L3=slice:72 (repeatable)."),
]
LevelsFileOpt = Annotated[
    Path | None,
    typer.Option("--levels-file", help="JSON file of manual levels (see docs/levels.md)."),
]
HeightOpt = Annotated[
    float | None, typer.Option("--height-m", help="Patient height in metres (height^2 rCSA).")
]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="TOML configuration (default: packaged).")
]
OverwriteDirOpt = Annotated[
    bool, typer.Option("--overwrite", help="Replace a non-empty output folder.")
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
    path: Annotated[
        Path,
        # readable=False: the loader reports unreadable input (exit 3), not a usage error (2)
        typer.Argument(help="DICOM folder or file, or a NIfTI / NRRD / MHA file.", readable=False),
    ],
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
        out.print(
            f" {mark} {s['modality']} {s['n_files']} image(s) '{s['description']}': "
            f"{s['reason']}",
            highlight=False,
        )
    for w in d["warnings"]:
        err.print(f"[yellow]warning:[/] {w}", highlight=False, soft_wrap=True)


@app.command()
def levels(
    path: Annotated[
        Path,
        typer.Argument(help="DICOM folder or file, or a NIfTI / NRRD / MHA file.", readable=False),
    ],
    json_out: Annotated[
        Path | None,
        typer.Option("--json", help="Write the levels as JSON to this file ('-' = stdout)."),
    ] = None,
    qc_out: Annotated[
        Path | None, typer.Option("--qc", help="Write a QC PNG (sagittal + coronal with levels).")
    ] = None,
    level: LevelOpt = None,
    levels_file: LevelsFileOpt = None,
    series_uid: SeriesUidOpt = None,
    no_tilt_correction: NoTiltOpt = False,
    resample_irregular: IrregularOpt = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace existing --json / --qc files.")
    ] = False,
) -> None:
    """Find vertebral (T12-S1, L4/L5 disc) and pelvic measurement levels; see docs/levels.md."""
    from rcsa.levels.run import detect_levels_for_path

    try:
        lm = detect_levels_for_path(
            path,
            level or [],
            levels_file,
            json_out,
            qc_out,
            overwrite=overwrite,
            series_uid=series_uid,
            correct_tilt=not no_tilt_correction,
            resample_irregular=resample_irregular,
        )
    except Exception as exc:
        raise _fail(exc) from None
    if json_out is not None and str(json_out) == "-":
        return
    table = Table(title=f"rcsa levels: {path}", title_justify="left")
    for col in ("level", "status", "slice", "z_mm", "method / reason"):
        table.add_column(col)
    for name, lv in lm.levels.items():
        z = "" if lv.z_mm is None else f"{lv.z_mm:.1f}"
        k = "" if lv.slice_index is None else str(lv.slice_index)
        table.add_row(name, lv.status, k, z, lv.reason if not lv.found else lv.method)
    out.print(table)
    for w in lm.warnings:
        err.print(f"[yellow]warning:[/] {w}", highlight=False, soft_wrap=True)
    from rcsa.pipeline import single_slice_hint

    hint = single_slice_hint(lm.n_slices, lm)
    if hint:
        err.print(f"[yellow]warning:[/] {hint}", highlight=False, soft_wrap=True)


class _Stages:
    """Progress of a long command (``rcsa run``, ``rcsa measure``) on stderr.

    On a terminal: a Rich spinner naming the stage that runs and its elapsed time, and one line
    per finished stage with its duration. Elsewhere (a pipe, a log file, a test) nothing is
    printed, so stderr keeps only warnings and the one-line error. Either way the durations are
    kept for the closing ``wrote DIR in ... s`` line, whose total is the wall time since rcsa
    started (``_State.started``).
    """

    def __init__(self, console: Console) -> None:
        self.console = console
        self.started = _State.started if _State.started is not None else time.perf_counter()
        self.done: list[tuple[str, float]] = []
        self._stage: str | None = None
        self._t = self.started
        self._status: Any = None

    def __enter__(self) -> _Stages:
        self._stage = "starting rcsa"  # since rcsa's first import: Python, numpy, Typer, Rich
        if self.console.is_terminal:
            self._status = self.console.status("starting rcsa ...", spinner="dots")
            self._status.start()
        return self

    def __call__(self, stage: str) -> None:
        self._finish()
        self._stage, self._t = stage, time.perf_counter()
        if self._status is not None:
            self._status.update(f"{stage} ...")

    def _finish(self) -> None:
        if self._stage is None:
            return
        dt = time.perf_counter() - self._t
        self.done.append((self._stage, dt))
        if self._status is not None:
            self.console.print(f"[green]done[/] {self._stage} [dim]({dt:.1f} s)[/]",
                               highlight=False, soft_wrap=True)
        self._stage = None

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self._finish()
        if self._status is not None:
            self._status.stop()

    def wall_s(self) -> float:
        return time.perf_counter() - self.started

    def summary(self) -> str:
        """``9.5 s (start-up 5.2 s, pipeline 3.6 s, writing 0.7 s)``."""
        start = sum(dt for name, dt in self.done if name in ("starting rcsa",
                                                              "importing the pipeline"))
        write = sum(dt for name, dt in self.done if name.startswith("writing"))
        work = sum(dt for _, dt in self.done) - start - write
        return (f"{self.wall_s():.1f} s (start-up {start:.1f} s, pipeline {work:.1f} s, "
                f"writing {write:.1f} s)")


def _print_scan_result(result: Any) -> None:
    from rcsa.pipeline import single_slice_note

    _print_measurements(result.measurements)
    note = single_slice_note(result)
    if note:
        err.print(f"[yellow]warning:[/] {note}", highlight=False, soft_wrap=True)


@app.command("run")
def run_cmd(
    path: Annotated[
        Path,
        typer.Argument(help="DICOM folder or file, or a NIfTI / NRRD / MHA file.", readable=False),
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder (see docs/measure.md).")],
    level: LevelOpt = None,
    levels_file: LevelsFileOpt = None,
    height_m: HeightOpt = None,
    config_file: ConfigOpt = None,
    tta: Annotated[bool, typer.Option("--tta", help="Add a left-right mirrored pass.")] = False,
    all_levels: Annotated[
        bool,
        typer.Option("--all-levels",
                     help="Segment every found level (T12-S1 and pelvic), not only the levels "
                          "the feature table measures."),
    ] = False,
    overwrite: OverwriteDirOpt = False,
    series_uid: SeriesUidOpt = None,
    no_tilt_correction: NoTiltOpt = False,
    resample_irregular: IrregularOpt = False,
) -> None:
    """Scan to feature table: load, find levels, segment, measure; write DIR (docs/measure.md).

    A single axial slice (e.g. an L3 slice) needs its level: --level L3=slice:0.
    """
    try:
        with _Stages(err) as stages:
            stages("importing the pipeline")
            from rcsa.config import load_config
            from rcsa.pipeline import run_to_folder

            result = run_to_folder(
                path, out_dir, overwrite, progress=stages, level_specs=level or [],
                levels_file=levels_file, config=load_config(config_file), height_m=height_m,
                tta=tta, all_levels=all_levels, series_uid=series_uid,
                correct_tilt=not no_tilt_correction, resample_irregular=resample_irregular,
            )
    except Exception as exc:
        raise _fail(exc) from None
    _print_scan_result(result)
    out.print(f"wrote {out_dir} in {stages.summary()}", highlight=False, soft_wrap=True)


@app.command("measure")
def measure_cmd(
    path: Annotated[
        Path,
        typer.Argument(help="The CT: DICOM folder or file, or a NIfTI / NRRD / MHA file.",
                       readable=False),
    ],
    labels: Annotated[
        Path,
        typer.Option(
            "--labels",
            help="Label volume on the CT's grid, or a Slice-O-Matic .tag file.",
            readable=False,
        ),
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder (see docs/measure.md).")],
    label_map: Annotated[
        str,
        typer.Option("--label-map", help="ts_v1 | ts_v2 | rcsa | path of a JSON id -> name map."),
    ] = "ts_v2",
    body_parts: Annotated[
        Path | None,
        typer.Option("--body-parts", help="Vertebral body (1) / posterior elements (2) volume.",
                     readable=False),
    ] = None,
    body_from_model: Annotated[
        bool,
        typer.Option(
            "--body-from-model/--no-body-from-model",
            help="Where the labels hold no vertebral body (no --body-parts), take it from rcsa's "
                 "own segmentation model (on background pixels only); recorded in the output.",
        ),
    ] = True,
    level: LevelOpt = None,
    levels_file: LevelsFileOpt = None,
    height_m: HeightOpt = None,
    config_file: ConfigOpt = None,
    overwrite: OverwriteDirOpt = False,
    series_uid: SeriesUidOpt = None,
) -> None:
    """Measure existing masks (manual, TotalSegmentator, other tools) into the rcsa table.

    A single axial slice with a TAG tracing needs its level: --level L3=slice:0.
    """
    try:
        with _Stages(err) as stages:
            stages("importing the pipeline")
            from rcsa.config import load_config
            from rcsa.pipeline import measure_to_folder

            result = measure_to_folder(
                path, labels, out_dir, overwrite, progress=stages, label_map=label_map,
                body_parts=body_parts, level_specs=level or [], levels_file=levels_file,
                config=load_config(config_file), height_m=height_m, series_uid=series_uid,
                body_from_model=body_from_model,
            )
    except Exception as exc:
        raise _fail(exc) from None
    _print_scan_result(result)
    out.print(f"wrote {out_dir} in {stages.summary()}", highlight=False, soft_wrap=True)


def _print_measurements(m: Any) -> None:
    table = Table(title=f"rcsa: {m.scan_id}", title_justify="left")
    table.add_column("level", no_wrap=True, min_width=5)
    table.add_column("structure", overflow="fold", min_width=9)
    table.add_column("side", no_wrap=True, min_width=4)
    for col in ("CSA mm2", "rCSA", "HU", "fat %"):  # numbers are never squeezed away
        table.add_column(col, justify="right", no_wrap=True, min_width=len(col))
    by_key: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in m.rows:
        by_key.setdefault((r.level, r.structure, r.side), {})[r.quantity] = r
    notes: list[str] = []
    for (lv, structure, side), q in by_key.items():
        if "csa_mm2" not in q:
            continue

        def fmt(name: str, digits: int, q: dict[str, Any] = q) -> str:
            r = q.get(name)
            return "" if r is None or r.value is None else f"{r.value:.{digits}f}"

        csa = q["csa_mm2"]
        mark = ""
        note = csa.reason if csa.value is None else csa.flag
        if note and side != "both":
            notes.append(f"{lv} {structure}{' ' + side if side else ''}: {note}")
            mark = f" [{len(notes)}]"
        table.add_row(lv, structure, side + mark, fmt("csa_mm2", 0), fmt("rcsa", 3),
                      fmt("mean_hu", 1), fmt("fat_pct", 1))
    out.print(table)
    for n, text in enumerate(notes, start=1):
        out.print(f"[{n}] {text}", highlight=False, soft_wrap=True)
    for w in m.warnings:
        err.print(f"[yellow]warning:[/] {w}", highlight=False, soft_wrap=True)


# segmentation commands: prepare-training, train, segment (torch imported lazily inside)
from rcsa.segment.cli import register as _register_segment  # noqa: E402

_register_segment(app, _fail)

# screening report: rcsa screen (rcsa.report imported lazily inside)
from rcsa.report.cli import register as _register_screen  # noqa: E402

_register_screen(app, _fail)

# batch processing: rcsa batch (rcsa.batch imported lazily inside)
from rcsa.batch.cli import register as _register_batch  # noqa: E402

_register_batch(app, _fail, EXIT_BATCH_FAILED)

# PACS over DICOMweb: rcsa pacs query / retrieve / push / export-dicom (lazy imports inside)
from rcsa.pacs.cli import register as _register_pacs  # noqa: E402

_register_pacs(app, _fail)


# ----------------------------------------------------------------------------- nomogram
nomogram_app = typer.Typer(
    name="nomogram",
    help="Risk models: score patients, fit (LASSO + logistic) and evaluate nomograms.",
    no_args_is_help=True,
)
app.add_typer(nomogram_app, name="nomogram")

ModelOpt = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        help="Spec file (.json/.yaml) or built-in name "
        "(demo-rbp-simulated, rbp-augmentation-structure).",
    ),
]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs.")]


def _disclaimer(text: str | None) -> None:
    if text:
        err.print(f"[bold red]{text.upper()}[/]", highlight=False)


def _warnings(items: Any) -> None:
    for w in items:
        err.print(f"[yellow]warning:[/] {w}", highlight=False, soft_wrap=True)


@nomogram_app.command("score")
def nomogram_score(
    model: ModelOpt,
    table: Annotated[
        Path | None, typer.Argument(help="Feature table (CSV/Parquet); omit to score one patient.")
    ] = None,
    clinical: Annotated[
        Path | None, typer.Option("--clinical", help="Clinical CSV merged on --id-column.")
    ] = None,
    id_column: Annotated[
        str, typer.Option("--id-column", help="Id column to merge on.")
    ] = "scan_id",
    assign: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="NAME=VALUE (repeatable): one patient, or a column for all rows."
        ),
    ] = None,
    out_csv: Annotated[
        Path | None, typer.Option("--out", help="Write the scored table here (CSV).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One patient: print JSON.")] = False,
    overwrite: OverwriteOpt = False,
) -> None:
    """Score one patient (--set age_years=72 ...) or a table (+ clinical CSV) with a model."""
    from rcsa.nomogram.score import score

    try:
        res = score(
            model,
            table,
            clinical=clinical,
            id_column=id_column,
            assignments=assign or [],
            out=out_csv,
            overwrite=overwrite,
        )
    except Exception as exc:
        raise _fail(exc) from None
    if res.patient is not None:
        s = res.patient
        if as_json:
            sys.stdout.write(json.dumps(s.to_dict(), indent=2) + "\n")
        else:
            t = Table(title=f"{s.model}", title_justify="left")
            for col in ("predictor", "value", "points"):
                t.add_column(col, justify="right" if col != "predictor" else "left")
            for name, pts in s.points.items():
                t.add_row(name, str(s.values[name]), f"{pts:.1f}")
            t.add_row("[bold]total points[/]", "", f"[bold]{s.total_points:.1f}[/]")
            out.print(t)
            out.print(
                f"linear predictor {s.linear_predictor:.4f}   probability "
                f"{s.probability:.4f}   risk group {s.risk_group or '-'}",
                highlight=False,
            )
        _warnings(s.flags)
    else:
        assert res.table is not None
        if res.out is None:
            sys.stdout.write(res.table.to_csv(index=False))
        else:
            n_ok = int((res.table["reason"] == "").sum())
            out.print(f"scored {n_ok} of {len(res.table)} row(s) -> {res.out}", highlight=False)
        _warnings(res.warnings)
    _disclaimer(res.spec.disclaimer)


@nomogram_app.command("fit")
def nomogram_fit(
    data: Annotated[
        Path, typer.Argument(help="Development data (CSV/Parquet), one row per patient.")
    ],
    outcome: Annotated[str, typer.Option("--outcome", help="0/1 outcome column.")],
    spec_out: Annotated[Path, typer.Option("--out", help="Spec file to write (.json/.yaml).")],
    candidates: Annotated[
        list[str] | None,
        typer.Option(
            "--candidates",
            help="Candidate predictor columns (repeat or comma-separate); "
            "default: every column but the outcome and --id-column.",
        ),
    ] = None,
    validation: Annotated[
        Path | None, typer.Option("--validation", help="External validation table.")
    ] = None,
    split: Annotated[
        float | None, typer.Option("--split", help="Hold out this fraction (stratified).")
    ] = None,
    lambda_rule: Annotated[
        str, typer.Option("--lambda", help="LASSO selection rule: 1se or min.")
    ] = "1se",
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of folds, split and bootstrap.")
    ] = 20260701,
    name: Annotated[str | None, typer.Option("--name", help="Model name in the spec.")] = None,
    cohort: Annotated[
        str | None, typer.Option("--cohort", help="Cohort description for the provenance.")
    ] = None,
    demonstration: Annotated[
        bool,
        typer.Option(
            "--demonstration", help="Label the model 'demonstration - not for clinical use'."
        ),
    ] = False,
    id_column: Annotated[
        str, typer.Option("--id-column", help="Id column (never a candidate).")
    ] = "scan_id",
    risk_cutoffs: Annotated[
        str,
        typer.Option(
            "--risk-cutoffs", help="Probability cut-offs of the risk groups, comma-separated."
        ),
    ] = "0.10,0.30",
    bootstrap: Annotated[
        int, typer.Option("--bootstrap", help="Optimism resamples (>= 200).")
    ] = 200,
    with_selection: Annotated[
        bool,
        typer.Option(
            "--optimism-with-selection",
            help="Repeat the LASSO selection in every bootstrap resample (slow: ~1 s each).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the fit summary as JSON.")] = False,
    overwrite: OverwriteOpt = False,
) -> None:
    """LASSO logistic (10-fold CV) -> multivariable logistic -> model spec."""
    from rcsa.nomogram.fit import fit

    try:
        cands = [c.strip() for item in candidates or [] for c in item.split(",") if c.strip()]
        cuts = [float(c) for c in risk_cutoffs.split(",") if c.strip()]
        res = fit(
            data,
            outcome,
            spec_out,
            candidates=cands or None,
            validation=validation,
            split=split,
            seed=seed,
            lambda_rule=lambda_rule,
            name=name,
            cohort=cohort,
            demonstration=demonstration,
            id_column=id_column,
            risk_cutoffs=cuts,
            n_bootstrap=max(bootstrap, 1),
            optimism_with_selection=with_selection,
            overwrite=overwrite,
        )
    except Exception as exc:
        raise _fail(exc) from None
    if as_json:
        sys.stdout.write(json.dumps(res.to_dict(), indent=2) + "\n")
    else:
        out.print(
            f"n {res.n_train}, events {res.events_train}; LASSO 10-fold CV: lambda.min "
            f"{res.lasso.lambda_min:.4g}, lambda.1se {res.lasso.lambda_1se:.4g} "
            f"(selection by lambda.{res.lasso.rule})",
            highlight=False,
        )
        t = Table(title="multivariable logistic regression", title_justify="left")
        for col in ("term", "coef", "OR", "95% CI", "p"):
            t.add_column(col, justify="left" if col == "term" else "right")
        for r in res.table:
            lo, hi = r["or_ci95"]
            t.add_row(
                r["term"],
                f"{r['coefficient']:.4f}",
                f"{r['odds_ratio']:.3g}",
                f"{lo:.3g}-{hi:.3g}",
                f"{r['p_value']:.2g}",
            )
        out.print(t)
        lo, hi = res.auc_train_ci95
        out.print(
            f"AUC training {res.auc_train:.3f} ({lo:.3f}-{hi:.3f}), optimism-corrected "
            f"{res.auc_optimism_corrected or float('nan'):.3f}",
            highlight=False,
        )
        if res.auc_validation is not None and res.auc_validation_ci95 is not None:
            vlo, vhi = res.auc_validation_ci95
            out.print(
                f"AUC validation {res.auc_validation:.3f} ({vlo:.3f}-{vhi:.3f}), "
                f"n {res.n_validation}",
                highlight=False,
            )
        out.print(f"spec -> {res.out}", highlight=False)
    _warnings(res.warnings)
    _disclaimer(res.spec.get("disclaimer"))


@nomogram_app.command("evaluate")
def nomogram_evaluate(
    data: Annotated[
        Path, typer.Argument(help="Table with the outcome (and predictors or a risk column).")
    ],
    outcome: Annotated[str, typer.Option("--outcome", help="0/1 outcome column.")],
    prob: Annotated[
        str | None, typer.Option("--prob", help="Column of predicted probabilities.")
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Spec file or built-in name.")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write all results as JSON here.")
    ] = None,
    figures: Annotated[
        Path | None,
        typer.Option("--figures", help="Folder for ROC/calibration/DCA/nomogram PNG+SVG."),
    ] = None,
    bootstrap: Annotated[
        int, typer.Option("--bootstrap", help="Optimism resamples (>= 200).")
    ] = 200,
    seed: Annotated[int, typer.Option("--seed", help="Bootstrap seed.")] = 20260701,
    overwrite: OverwriteOpt = False,
) -> None:
    """AUC (DeLong), optimism-corrected AUC, calibration, Hosmer-Lemeshow, Brier, decision curve."""
    from rcsa.nomogram.evaluate import evaluate

    try:
        res = evaluate(
            data,
            outcome,
            prob_column=prob,
            model=model,
            json_out=json_out,
            figures=figures,
            n_bootstrap=bootstrap,
            seed=seed,
            overwrite=overwrite,
        )
    except Exception as exc:
        raise _fail(exc) from None
    r = res.result
    t = Table(title=f"evaluation: {r['predictions']}", show_header=False, title_justify="left")
    t.add_column("measure", style="bold")
    t.add_column("value")
    lo, hi = r["auc_ci95"]
    t.add_row("n / events", f"{r['n']} / {r['events']}")
    t.add_row(
        "AUC (DeLong SE, 95% CI)", f"{r['auc']:.4f} ({r['auc_se_delong']:.4f}, {lo:.4f}-{hi:.4f})"
    )
    if r["auc_optimism_corrected"] is not None:
        t.add_row(
            "AUC optimism-corrected",
            f"{r['auc_optimism_corrected']:.4f} "
            f"(optimism {r['optimism']:.4f}, {r['bootstrap']['resamples']} resamples)",
        )
    t.add_row("Brier", f"{r['brier']:.4f}")
    t.add_row(
        "calibration intercept / slope",
        f"{r['calibration_intercept']:.3f} / {r['calibration_slope']:.3f}",
    )
    hl = r["hosmer_lemeshow"]
    t.add_row(
        "Hosmer-Lemeshow", f"chi2 {hl['statistic']:.2f}, df {hl['df']}, p {hl['p_value']:.3f}"
    )
    for key in ("0.10", "0.20", "0.30", "0.40", "0.50"):
        nb = r["net_benefit"][key]
        t.add_row(f"net benefit at {key}", f"{nb['model']:.4f} (treat all {nb['treat_all']:.4f})")
    out.print(t)
    for path in [*([res.json_out] if res.json_out else []), *res.figures]:
        out.print(f"-> {path}", highlight=False)
    _warnings(r["warnings"])
    _disclaimer(r["disclaimer"])


@nomogram_app.command("show")
def nomogram_show(
    model: Annotated[str, typer.Argument(help="Spec file or built-in name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Validate a model spec and describe it (predictors, coefficients, points)."""
    from rcsa.nomogram.score import describe

    try:
        d = describe(model)
    except Exception as exc:
        raise _fail(exc) from None
    if as_json:
        sys.stdout.write(json.dumps(d, indent=2) + "\n")
        return
    icpt = "none" if d["intercept"] is None else f"{d['intercept']:.4f}"
    out.print(
        f"{d['name']} (model {d['model_version']}, {d['status']}, spec {d['spec_version']}): "
        f"outcome {d['outcome']}; intercept {icpt}",
        highlight=False,
    )
    out.print(f"intended use: {d['intended_use']}", highlight=False)
    t = Table(title_justify="left")
    for col in ("predictor", "type", "unit", "range / levels", "coef", "max pts"):
        t.add_column(col, overflow="fold")
    for p in d["predictors"]:
        if p["type"] == "continuous":
            rng = f"{p['plausible_range'][0]:g}-{p['plausible_range'][1]:g}"
        else:
            rng = ", ".join(p["levels"]) or "0/1"
        coef = p["coefficient"]
        if isinstance(coef, dict):
            coef_text = ", ".join(f"{k}: {v:.4g}" for k, v in coef.items())
        else:
            coef_text = "-" if coef is None else f"{coef:.4g}"
        mp = p.get("max_points")
        name = p["name"] if p["column"] == p["name"] else f"{p['name']} ({p['column']})"
        t.add_row(name, p["type"], p["unit"] or "", rng, coef_text,
                  "" if mp is None else f"{mp:.1f}")
    out.print(t)
    _disclaimer(d["disclaimer"])


@nomogram_app.command("plot")
def nomogram_plot(
    model: Annotated[str, typer.Argument(help="Spec file or built-in name.")],
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder for nomogram.png and nomogram.svg.")
    ],
    overwrite: OverwriteOpt = False,
) -> None:
    """Draw the nomogram (rms layout) as PNG and SVG."""
    from rcsa.nomogram.evaluate import plot_nomogram

    try:
        paths = plot_nomogram(model, out_dir, overwrite=overwrite)
    except Exception as exc:
        raise _fail(exc) from None
    for path in paths:
        out.print(f"-> {path}", highlight=False)


@nomogram_app.command("simulate")
def nomogram_simulate(
    out_csv: Annotated[Path, typer.Argument(help="CSV to write.")],
    n: Annotated[int, typer.Option("--n", help="Patients.")] = 428,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed (default: the documented cohort).")
    ] = 18,
    overwrite: OverwriteOpt = False,
) -> None:
    """Write the documented simulated cohort (demonstration data, not patients)."""
    from rcsa.nomogram.simulate import write_cohort

    try:
        df = write_cohort(str(out_csv), n=n, seed=seed, overwrite=overwrite)
    except Exception as exc:
        raise _fail(exc) from None
    out.print(
        f"{len(df)} simulated patients, {int(df['rbp'].sum())} events -> {out_csv}", highlight=False
    )


if __name__ == "__main__":  # pragma: no cover
    app()
