"""``rcsa screen``: registered on the main app by :mod:`rcsa.cli` (one call to :func:`register`).

Parses, calls :func:`rcsa.report.screen`, prints a short summary; errors go through the main
app's ``fail`` (one line, exit code from ``rcsa.cli.EXIT_CODES``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from rcsa.cli_options import (
    ConfigOpt,
    Fail,
    HeightOpt,
    IrregularOpt,
    LevelOpt,
    LevelsFileOpt,
    NoTiltOpt,
    OverwriteDirOpt,
    SegModelOpt,
    SeriesUidOpt,
    load_options,
)

out = Console()
err = Console(stderr=True)


def register(app: typer.Typer, fail: Fail) -> None:
    """Add ``rcsa screen`` to ``app``; ``fail`` maps exceptions to exit codes."""

    @app.command("screen")
    def screen_cmd(
        path: Annotated[
            Path,
            typer.Argument(help="CT (DICOM folder/file, NIfTI, NRRD, MHA) or an existing "
                           "`rcsa run` output folder.", readable=False),
        ],
        out_dir: Annotated[
            Path, typer.Option("--out", help="Report folder: report.html, report.pdf, "
                               "report.json (docs/screen.md).")
        ],
        model: Annotated[
            str | None,
            typer.Option("--model", "-m", help="Nomogram spec file or built-in name. No "
                         "default: without it the report has measurements only. The built-in "
                         "demo-rbp-simulated is a demonstration, not a clinical model."),
        ] = None,
        assign: Annotated[
            list[str] | None,
            typer.Option("--set", help="NAME=VALUE (repeatable): a clinical predictor of the "
                         "model, or a free-text field (note, indication, requested_by)."),
        ] = None,
        clinical: Annotated[
            Path | None,
            typer.Option("--clinical", help="Clinical values: JSON object or one-row CSV "
                         "(--set wins over it).", readable=False),
        ] = None,
        show_phi: Annotated[
            bool, typer.Option("--show-phi", help="Show the patient's name, identifiers, dates "
                               "and the input path (hidden by default).")
        ] = False,
        no_pdf: Annotated[
            bool, typer.Option("--no-pdf", help="Write report.html and report.json only.")
        ] = False,
        overwrite: OverwriteDirOpt = False,
        level: LevelOpt = None,
        levels_file: LevelsFileOpt = None,
        height_m: HeightOpt = None,
        config_file: ConfigOpt = None,
        seg_model: SegModelOpt = None,
        series_uid: SeriesUidOpt = None,
        no_tilt_correction: NoTiltOpt = False,
        resample_irregular: IrregularOpt = False,
    ) -> None:
        """One patient's preoperative report: QC, muscle table, risk score (HTML, PDF, JSON)."""
        try:
            from rcsa.config import load_config
            from rcsa.pipeline import RunOptions
            from rcsa.report.screen import screen

            options = RunOptions(
                load=load_options(series_uid, no_tilt_correction, resample_irregular),
                level_specs=tuple(level or ()), levels_file=levels_file, height_m=height_m,
                seg_model=seg_model)
            res = screen(
                path, out_dir, model=model, assignments=assign or [], clinical=clinical,
                show_phi=show_phi, overwrite=overwrite, pdf=not no_pdf,
                config=load_config(config_file), options=options,
            )
        except Exception as exc:
            raise fail(exc) from None
        doc = res.document
        if doc["banner"]:
            err.print(f"[bold red]{doc['banner']}[/]", highlight=False, soft_wrap=True)
        trust = doc["trust"]
        out.print(f"measurement QC: {trust['verdict']}", highlight=False, soft_wrap=True)
        for item in trust["checks"]:
            out.print(f"  - {item}", highlight=False, soft_wrap=True)
        for k in doc["key_muscles"]:
            csa = "-" if k["csa_mm2"] is None else f"{k['csa_mm2']:.0f}"
            rcsa = "-" if k["rcsa"] is None else f"{k['rcsa']:.3f}"
            out.print(f"{k['label']} ({k['level']}, both sides): CSA {csa} mm2, rCSA {rcsa}",
                      highlight=False)
        s = doc["score"]
        if s["available"]:
            out.print(f"risk: probability {s['probability']:.4f}, group {s['risk_group']}, "
                      f"total points {s['total_points']:.1f}", highlight=False)
            for f in s["flags"]:
                err.print(f"[yellow]warning:[/] {f}", highlight=False, soft_wrap=True)
        else:
            err.print(f"[yellow]no score:[/] {s['reason']}", highlight=False, soft_wrap=True)
            for m in s["missing"]:
                err.print(f"  missing {m['name']}: {m['reason']}", highlight=False,
                          soft_wrap=True)
        for w in res.warnings:
            err.print(f"[yellow]warning:[/] {w}", highlight=False, soft_wrap=True)
        pdf = f", {res.pdf.name} ({res.pdf_pages} pages)" if res.pdf is not None else ""
        out.print(f"wrote {res.out_dir}: {res.html.name}{pdf}, {res.json.name}",
                  highlight=False)
