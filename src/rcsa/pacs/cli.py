"""``rcsa pacs``: query a DICOMweb server, retrieve a series, push or export SEG + SR.

Registered on the main app by ``register``. There is deliberately no option for a password
or token: credentials come from the environment or a config file (``docs/pacs.md``).
Library modules are imported inside the commands so that ``rcsa --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from rcsa.cli_options import (
    QUERY_PANEL,
    BodyPartOpt,
    DateOpt,
    Fail,
    ModalityOpt,
    PacsConfigOpt,
    PatientIdOpt,
    SeriesUidOpt,
    StudyUidOpt,
)

out = Console()
err = Console(stderr=True)

UrlOpt = Annotated[
    str | None,
    typer.Option("--url", help="DICOMweb service root, e.g. https://pacs.example.org/dicom-web "
                               "(default: RCSA_DICOMWEB_URL or url in the config file)."),
]


def _query_table(records: list[Any]) -> Table:
    t = Table(title=f"{len(records)} series", show_lines=False)
    for col in ("study date", "patient id", "accession", "modality", "body part", "series",
                "description", "images", "study uid", "series uid"):
        t.add_column(col, overflow="fold")
    for r in records:
        t.add_row(r.study_date, r.patient_id, r.accession_number, r.modality, r.body_part,
                  "" if r.series_number is None else str(r.series_number),
                  r.series_description,
                  "" if r.n_instances is None else str(r.n_instances), r.study_uid,
                  r.series_uid)
    return t


def register(app: typer.Typer, fail: Fail) -> None:
    """Add the ``pacs`` command group to ``app``; ``fail`` maps exceptions to exit codes."""
    pacs_app = typer.Typer(
        help="PACS over DICOMweb: query, retrieve, push SEG + SR (docs/pacs.md).",
        no_args_is_help=True,
    )
    app.add_typer(pacs_app, name="pacs")

    @pacs_app.command("query")
    def query_cmd(
        url: UrlOpt = None,
        pacs_config: PacsConfigOpt = None,
        date: DateOpt = None,
        modality: ModalityOpt = "CT",
        body_part: BodyPartOpt = None,
        patient_id: PatientIdOpt = None,
        study_uid: StudyUidOpt = None,
        series_uid: Annotated[
            str | None,
            typer.Option("--series-uid", help="SeriesInstanceUID.", rich_help_panel=QUERY_PANEL)
        ] = None,
        accession: Annotated[
            str | None,
            typer.Option("--accession", help="AccessionNumber.", rich_help_panel=QUERY_PANEL)
        ] = None,
        limit: Annotated[int | None, typer.Option("--limit", min=1)] = None,
        json_out: Annotated[
            Path | None,
            typer.Option("--json", help="Also write the series found as JSON to this file "
                                        "('-' for stdout instead of the table)."),
        ] = None,
    ) -> None:
        """Search the server for series (QIDO-RS) and print them as a table."""
        try:
            from rcsa.pacs.query import QueryParams, query_series

            params = QueryParams.from_options(date, modality, body_part, patient_id,
                                              study_uid, series_uid, accession, limit)
            records = query_series(url, params, config=pacs_config)
            doc = {"query": {k: v for k, v in params.search_filters().items()},
                   "n_series": len(records), "series": [r.to_dict() for r in records]}
            text = json.dumps(doc, indent=2) + "\n"
            if json_out is not None and str(json_out) == "-":
                typer.echo(text, nl=False)
                return
            if json_out is not None:
                from rcsa.outputs import atomic_write_text

                atomic_write_text(json_out, text, overwrite=True, create_parent=True)
        except Exception as exc:
            raise fail(exc) from None
        out.print(_query_table(records))

    @pacs_app.command("retrieve")
    def retrieve_cmd(
        study_uid: Annotated[str, typer.Option("--study-uid", help="StudyInstanceUID.")],
        series_uid: Annotated[str, typer.Option("--series-uid", help="SeriesInstanceUID.")],
        out_dir: Annotated[
            Path, typer.Option("--out", help="Cache folder; the series lands in a new "
                                             "sub-folder.")
        ],
        url: UrlOpt = None,
        pacs_config: PacsConfigOpt = None,
    ) -> None:
        """Retrieve one series (WADO-RS) into a new folder under --out."""
        try:
            from rcsa.cases import RemoteSeries
            from rcsa.pacs.config import load_settings
            from rcsa.pacs.retrieve import retrieve

            settings = load_settings(url, pacs_config)
            folder = retrieve(RemoteSeries(settings.url, study_uid, series_uid), out_dir,
                              settings=settings)
        except Exception as exc:
            raise fail(exc) from None
        n = sum(1 for _ in folder.iterdir())
        out.print(f"retrieved {n} instance(s) -> {folder}", highlight=False)

    @pacs_app.command("push")
    def push_cmd(
        run_dir: Annotated[Path, typer.Argument(help="An rcsa run output folder.")],
        source: Annotated[
            Path, typer.Option("--source", help="The DICOM folder the run analysed.")
        ],
        url: UrlOpt = None,
        pacs_config: PacsConfigOpt = None,
        series_uid: SeriesUidOpt = None,
    ) -> None:
        """Build SEG + SR from a run folder and store them on the server (STOW-RS)."""
        try:
            from rcsa.cases import Case
            from rcsa.pacs.push import push_results

            case = Case(case_id=run_dir.name or "run", path=source, series_uid=series_uid)
            result = push_results(case, run_dir, source, url=url, config=pacs_config)
        except Exception as exc:
            raise fail(exc) from None
        if not result["pushed"]:
            err.print(f"[yellow]nothing pushed:[/] {result['skipped']}", highlight=False,
                      soft_wrap=True)
            return
        sr = (f"SR {result['sr_sop_instance_uid']}" if result["sr_sop_instance_uid"]
              else f"no SR ({result['sr_skipped']})")
        out.print(f"stored SEG {result['seg_sop_instance_uid']} and {sr} in study "
                  f"{result['study_uid']} on {result['url']}", highlight=False, soft_wrap=True)

    @pacs_app.command("export-dicom")
    def export_cmd(
        run_dir: Annotated[Path, typer.Argument(help="An rcsa run output folder.")],
        source: Annotated[
            Path, typer.Option("--source", help="The DICOM folder the run analysed.")
        ],
        out_dir: Annotated[Path, typer.Option("--out", help="Folder for seg.dcm and sr.dcm.")],
        series_uid: SeriesUidOpt = None,
        overwrite: Annotated[
            bool, typer.Option("--overwrite", help="Replace existing seg.dcm / sr.dcm.")
        ] = False,
    ) -> None:
        """Write the run's DICOM SEG and SR to files (no server)."""
        try:
            from rcsa.pacs.dicom_export import export_dicom

            paths = export_dicom(run_dir, source, out_dir, series_uid=series_uid,
                                 overwrite=overwrite)
        except Exception as exc:
            raise fail(exc) from None
        out.print(f"wrote {paths['seg']} and {paths['sr']}", highlight=False)
