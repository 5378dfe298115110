"""``rcsa info``: load a scan and describe it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from rcsa.cli_options import Fail, IrregularOpt, NoTiltOpt, ScanArg, SeriesUidOpt, load_options

if TYPE_CHECKING:
    from rcsa.io.options import LoadOptions

out = Console()
err = Console(stderr=True)


def info_dict(path: Path, show_ids: bool, options: LoadOptions) -> dict[str, Any]:
    """What ``rcsa info --json`` prints."""
    from rcsa import io  # looked up at call time (tests replace rcsa.io.load)

    ct = io.load(path, options)
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


def register(app: typer.Typer, fail: Fail) -> None:
    """Add ``rcsa info`` to ``app``."""

    @app.command()
    def info(
        path: ScanArg,
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
            d = info_dict(path, show_ids,
                          load_options(series_uid, no_tilt_correction, resample_irregular))
        except Exception as exc:
            raise fail(exc) from None
        if as_json:
            sys.stdout.write(json.dumps(d, indent=2) + "\n")
            return
        table = Table(title=f"rcsa info: {path}", show_header=False, title_justify="left")
        table.add_column("field", style="bold")
        table.add_column("value")
        for key in ("format", "modality", "size_voxels", "spacing_mm", "origin_mm",
                    "z_range_mm", "hu_range", "n_series_found", "n_files"):
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
