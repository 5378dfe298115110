"""``rcsa batch``, registered on the main ``rcsa`` app (``register``).

The command builds a list of :class:`~rcsa.batch.cases.Case` from its inputs (folders, files,
manifest CSVs; a DICOMweb query adds its cases the same way) and hands it to
:func:`run_and_report`, which runs :func:`rcsa.batch.run_batch` with a progress bar and prints
the outcome. Heavy imports happen inside the command, so ``rcsa --help`` stays fast.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from rcsa.cli_options import (
    QUERY_PANEL,
    AllLevelsOpt,
    BodyPartOpt,
    ConfigOpt,
    DateOpt,
    Fail,
    IrregularOpt,
    ModalityOpt,
    NoTiltOpt,
    PacsConfigOpt,
    PatientIdOpt,
    SegModelOpt,
    StudyUidOpt,
    TtaOpt,
    load_options,
)

if TYPE_CHECKING:
    from rcsa.batch.cases import Case
    from rcsa.batch.discover import Discovery, Ignored
    from rcsa.batch.runner import BatchEvent, BatchReport
    from rcsa.config import RcsaConfig
    from rcsa.pipeline import RunOptions

out = Console()
err = Console(stderr=True)

#: every log record of a batch (rcsa's per-case events, the libraries' records, tracebacks)
BATCH_LOG = "batch.log"


def _short(text: str, n: int = 160) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


def run_and_report(cases: Sequence[Case], out_dir: Path, *, ignored: Sequence[Ignored] = (),
                   show_progress: bool = True, options: RunOptions | None = None,
                   config: RcsaConfig | None = None, workers: int = 1,
                   threads: int | None = None, scheduler: Any = None,
                   retry_failed: bool = False, overwrite: bool = False, keep: bool = False,
                   push: bool = False, cache_dir: Path | None = None) -> BatchReport:
    """Run the batch with a Rich progress bar (per-case lines above it) and print a summary.
    The keywords are :func:`rcsa.batch.run_batch`'s."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from rcsa.batch.runner import run_batch
    from rcsa.logs import add_log_file

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TimeRemainingColumn(), console=err,
                        disable=not show_progress)
    task_id = progress.add_task("planning", total=None)

    if not out_dir.exists() or out_dir.is_dir():  # else run_batch refuses it, with the reason
        add_log_file(out_dir / BATCH_LOG)
    log = logging.getLogger("rcsa.batch")

    def on_event(ev: BatchEvent) -> None:
        log.info("%s %s%s", ev.kind, ev.case_id or "",
                 f": {ev.reason}" if ev.reason else "")
        if ev.kind == "planned":
            progress.update(task_id, total=ev.n_to_run, description="batch")
            err.print(f"{ev.n_to_run} case(s) to run, {ev.n_skipped} done earlier (skipped), "
                      f"{ev.n_failed} failed before running", highlight=False)
        elif ev.kind == "started":
            progress.update(task_id, description=_short("running " + ", ".join(ev.running), 60))
        elif ev.kind in ("done", "failed"):
            progress.advance(task_id)
            progress.update(task_id, description=_short(
                "running " + ", ".join(ev.running), 60) if ev.running else "batch")
            if ev.kind == "done":
                progress.console.print(f"[green]done[/]   {ev.case_id} ({ev.seconds:.1f} s)",
                                       highlight=False)
            else:
                progress.console.print(f"[red]failed[/] {ev.case_id}: {_short(ev.reason)}",
                                       highlight=False, soft_wrap=True)
        elif ev.kind == "table":
            progress.update(task_id, description="table written")

    with progress:
        report = run_batch(cases, out_dir, ignored=ignored, progress=on_event, options=options,
                           config=config, workers=workers, threads=threads,
                           scheduler=scheduler, retry_failed=retry_failed,
                           overwrite=overwrite, keep=keep, push=push, cache_dir=cache_dir)
    for f in report.failures:
        when = "" if f.status == "failed" else " (earlier run; --retry-failed to retry)"
        err.print(f"[red]failed[/] {f.case_id}{when}: {f.reason}", highlight=False,
                  soft_wrap=True)
    if report.ignored:
        damaged = sum(1 for i in report.ignored if i.reason.startswith("damaged"))
        err.print(f"{len(report.ignored)} input(s) ignored ({damaged} damaged file(s), the rest "
                  f"not scans; listed in {report.report_path.name} and ignored.csv)",
                  highlight=False)
    for p in report.table_problems:
        err.print(f"[yellow]warning:[/] {p}", highlight=False, soft_wrap=True)
    rate = report.to_dict()["timings"]["scans_per_hour"]
    out.print(
        f"{report.n_done} done, {report.n_skipped} skipped (done earlier), "
        f"{report.n_failed} failed in {report.wall_s:.1f} s"
        + (f" ({rate:.0f} scans/hour)" if rate else "")
        + f"; table: {report.table_rows} row(s) -> {report.table_csv}; report -> "
        f"{report.report_path}",
        highlight=False, soft_wrap=True)
    return report


def _with_pacs(found: Discovery, query: bool, url: str | None, config: Path | None,
               date: str | None, modality: str, body_part: str | None,
               patient_id: str | None, study_uid: str | None) -> Discovery:
    """Add the cases of a DICOMweb query (``rcsa.pacs.cases_from_query``) to ``found``, and
    hand the server settings to the workers (``--push`` of local cases) through the
    environment variables rcsa.pacs reads (never credentials: those stay where they are)."""
    import os

    from rcsa.batch.discover import Discovery
    from rcsa.pacs.config import ENV_CONFIG, ENV_URL
    from rcsa.pacs.push import cases_from_query
    from rcsa.pacs.query import QueryParams

    if url is not None:
        os.environ[ENV_URL] = url
    if config is not None:
        os.environ[ENV_CONFIG] = str(config.resolve())
    if not query:
        return found
    params = QueryParams.from_options(date, modality, body_part, patient_id, study_uid)
    remote = cases_from_query(url, params, config=config)
    return Discovery(tuple(found.cases) + tuple(remote), found.ignored)


def register(app: typer.Typer, fail: Fail, exit_failed: int) -> None:
    """Add ``rcsa batch`` to ``app``; ``fail`` maps exceptions to exit codes, ``exit_failed``
    is the exit code of a batch that finished with failed cases."""

    @app.command("batch")
    def batch_cmd(
        out_dir: Annotated[
            Path, typer.Option("--out", help="Batch output folder (see docs/scale.md).")
        ],
        inputs: Annotated[
            list[Path] | None,
            typer.Argument(help="Folders (searched recursively for DICOM series and NIfTI / "
                                "NRRD / MHA files), scan files, manifest .csv files.",
                           readable=False, show_default=False),
        ] = None,
        workers: Annotated[
            int, typer.Option("--workers", min=1, help="Local worker processes.")
        ] = 1,
        threads: Annotated[
            int | None,
            typer.Option("--threads", min=1,
                         help="CPU threads per worker (default: CPUs / workers)."),
        ] = None,
        scheduler: Annotated[
            str | None,
            typer.Option("--scheduler",
                         help="Dask scheduler address (tcp://host:8786): run on that cluster."),
        ] = None,
        retry_failed: Annotated[
            bool, typer.Option("--retry-failed", help="Run cases that failed before again.")
        ] = False,
        overwrite: Annotated[
            bool, typer.Option("--overwrite",
                               help="Replace case folders holding other results.")
        ] = False,
        keep: Annotated[
            bool, typer.Option("--keep", help="Keep retrieved remote series in the cache.")
        ] = False,
        push: Annotated[
            bool, typer.Option("--push", help="Send each case's results back to the PACS.")
        ] = False,
        cache_dir: Annotated[
            Path | None, typer.Option("--cache-dir", help="Where remote series are retrieved "
                                                          "(default OUT/cache).")
        ] = None,
        config_file: ConfigOpt = None,
        tta: TtaOpt = False,
        all_levels: AllLevelsOpt = False,
        seg_model: SegModelOpt = None,
        no_tilt_correction: NoTiltOpt = False,
        resample_irregular: IrregularOpt = False,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="List the cases found and stop.")
        ] = False,
        pacs_url: Annotated[
            str | None,
            typer.Option("--pacs-url", help="DICOMweb server to query for cases (QIDO-RS) and "
                                            "to --push to (credentials: docs/pacs.md).",
                         rich_help_panel=QUERY_PANEL),
        ] = None,
        pacs_config: PacsConfigOpt = None,
        date: DateOpt = None,
        modality: ModalityOpt = "CT",
        body_part: BodyPartOpt = None,
        patient_id: PatientIdOpt = None,
        study_uid: StudyUidOpt = None,
    ) -> None:
        """Many scans: per-case rcsa run folders, one feature table, a run report; resumable."""
        try:
            from rcsa.batch.discover import discover
            from rcsa.config import load_config
            from rcsa.pipeline import RunOptions

            query = pacs_url is not None or any(
                v is not None for v in (date, body_part, patient_id, study_uid))
            if not inputs and not query:
                raise typer.BadParameter("give at least one INPUT (folder, scan or manifest) "
                                         "or a DICOMweb query (--pacs-url, --date, ...)")
            found = discover(inputs or [])
            if query or push:
                found = _with_pacs(found, query, pacs_url, pacs_config, date, modality,
                                   body_part, patient_id, study_uid)
            if dry_run:
                for c in found.cases:
                    out.print(f"{c.case_id}\t{c.source}", highlight=False, soft_wrap=True)
                for i in found.ignored:
                    err.print(f"ignored {i.path}: {i.reason}", highlight=False, soft_wrap=True)
                out.print(f"{len(found.cases)} case(s), {len(found.ignored)} input(s) ignored",
                          highlight=False)
                return
            report = run_and_report(
                found.cases, out_dir, ignored=found.ignored, workers=workers, threads=threads,
                scheduler=scheduler, retry_failed=retry_failed, overwrite=overwrite, keep=keep,
                push=push, cache_dir=cache_dir, config=load_config(config_file),
                options=RunOptions(
                    load=load_options(None, no_tilt_correction, resample_irregular), tta=tta,
                    all_levels=all_levels, seg_model=seg_model))
        except typer.BadParameter:
            raise
        except Exception as exc:
            raise fail(exc) from None
        if report.n_failed:
            raise typer.Exit(exit_failed)
