"""``rcsa levels``: find the vertebral and pelvic measurement levels."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from rcsa.cli_options import (
    Fail,
    IrregularOpt,
    LevelOpt,
    LevelsFileOpt,
    NoTiltOpt,
    ScanArg,
    SeriesUidOpt,
    load_options,
)

out = Console()
err = Console(stderr=True)


def register(app: typer.Typer, fail: Fail) -> None:
    """Add ``rcsa levels`` to ``app``."""

    @app.command()
    def levels(
        path: ScanArg,
        json_out: Annotated[
            Path | None,
            typer.Option("--json", help="Write the levels as JSON to this file ('-' = stdout)."),
        ] = None,
        qc_out: Annotated[
            Path | None,
            typer.Option("--qc", help="Write a QC PNG (sagittal + coronal with levels)."),
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
                path, level or [], levels_file, json_out, qc_out, overwrite=overwrite,
                load_options=load_options(series_uid, no_tilt_correction, resample_irregular),
            )
        except Exception as exc:
            raise fail(exc) from None
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
