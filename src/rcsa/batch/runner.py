"""Running a batch: :func:`run_batch` (cases from any source -> per-case folders, one feature
table, a run report, a resumable state store).

Output folder::

    features.csv / features.parquet   one row per case recorded as done (all runs), columns
                                      = rcsa.measure.wide_columns() + the manifests' clinical
                                      columns (``clinical_<name>`` where a name is taken)
    run_report.json                   this run: counts, timings, every failure's reason
    ignored.csv                       this run's ignored inputs (damaged files, non-scans)
    batch.log                         log records (``rcsa batch``; rcsa.logs)
    cases/<case_id>/                  exactly ``rcsa run``'s output folder, per case
    batch_state.sqlite                the state store (rcsa.batch.state)
    .batch.lock                       held while a batch runs in the folder

Resuming: a case whose state row is ``done`` under the same state key (input fingerprint,
model sha256, configuration hash; :mod:`rcsa.batch.fingerprint`) and whose folder is present
is skipped; ``failed`` cases are retried only with ``retry_failed``. A case folder written by
an interrupted run for the same key is replaced; a folder that holds anything else (another
input, model or configuration, or files rcsa did not record) is replaced only with
``overwrite``, else the case fails with that reason. The feature table is rebuilt from the
folders of every case recorded as done, so results of earlier runs are never dropped.

Parallelism: ``workers`` local processes (spawned; each limits torch to ``threads`` threads),
or an existing Dask cluster (``scheduler``: its address or a ``distributed.Client``). Either
way a worker runs one case at a time (:func:`rcsa.batch.worker.process_case`) and returns a
small result; only this (parent) process writes the state store and the tables.
"""

from __future__ import annotations

import importlib
import json
import multiprocessing as mp
import os
import shutil
import statistics
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from rcsa import __version__
from rcsa.batch.cases import Case
from rcsa.batch.discover import Ignored, check_case_ids
from rcsa.batch.fingerprint import (
    ModelVersion,
    config_hash,
    fingerprint,
    model_version,
    state_key,
)
from rcsa.batch.state import STATE_FILE, CaseRecord, OutputLock, StateStore
from rcsa.batch.worker import CaseOutcome, CaseTask, process_case, set_threads
from rcsa.config import RcsaConfig, load_config
from rcsa.errors import InputError, OutputExistsError, RcsaError
from rcsa.outputs import atomic_write, atomic_write_text, write_error
from rcsa.pipeline import RunOptions
from rcsa.runfolder import RunFolder, open_run_folder
from rcsa.runfolder.names import FEATURES_CSV, FEATURES_PARQUET

CASES_DIR = "cases"
#: the consolidated table has the run folder's table format and names
TABLE_CSV = FEATURES_CSV
TABLE_PARQUET = FEATURES_PARQUET
REPORT_FILE = "run_report.json"
IGNORED_CSV = "ignored.csv"
#: at most this many ignored inputs are listed one by one in the report
MAX_IGNORED_LISTED = 1000

CaseStatus = Literal["done", "skipped", "failed", "failed_earlier"]


@dataclass(frozen=True)
class BatchEvent:
    """Progress of a batch, for a progress display (the library itself prints nothing).

    ``kind``: ``planned`` (``n_to_run`` cases will run, ``n_skipped`` are done already,
    ``n_failed`` failed before running), ``started`` / ``done`` / ``failed`` (one case;
    ``running`` lists the cases in flight), ``table`` (the feature table was written)."""

    kind: Literal["planned", "started", "done", "failed", "table"]
    case_id: str = ""
    reason: str = ""
    seconds: float = 0.0
    n_to_run: int = 0
    n_skipped: int = 0
    n_failed: int = 0
    running: tuple[str, ...] = ()


@dataclass(frozen=True)
class CaseReport:
    """One case in the run report. ``status``: ``done`` (processed now), ``skipped`` (done in
    an earlier run, same key), ``failed`` (now), ``failed_earlier`` (not retried)."""

    case_id: str
    source: str
    status: CaseStatus
    reason: str = ""
    error_type: str = ""
    seconds: float | None = None
    output_dir: str = ""
    worker: str = ""
    peak_rss_mb: float | None = None
    pushed: dict[str, Any] | None = None


@dataclass
class BatchReport:
    """What :func:`run_batch` did (also written as ``run_report.json``)."""

    out_dir: Path
    run_id: str
    started_at: float
    finished_at: float
    model: ModelVersion
    config_hash: str
    options: dict[str, Any]
    cases: list[CaseReport]
    ignored: tuple[Ignored, ...] = ()
    table_rows: int = 0
    table_problems: list[str] = field(default_factory=list)

    @property
    def wall_s(self) -> float:
        return self.finished_at - self.started_at

    def _n(self, *status: str) -> int:
        return sum(1 for c in self.cases if c.status in status)

    @property
    def n_done(self) -> int:
        """Processed successfully in this run."""
        return self._n("done")

    @property
    def n_skipped(self) -> int:
        return self._n("skipped")

    @property
    def n_failed(self) -> int:
        """Failed now or earlier (not retried): the batch is not complete."""
        return self._n("failed", "failed_earlier")

    @property
    def failures(self) -> list[CaseReport]:
        return [c for c in self.cases if c.status in ("failed", "failed_earlier")]

    @property
    def table_csv(self) -> Path:
        return self.out_dir / TABLE_CSV

    @property
    def report_path(self) -> Path:
        return self.out_dir / REPORT_FILE

    def to_dict(self) -> dict[str, Any]:
        seconds = [c.seconds for c in self.cases if c.status == "done" and c.seconds is not None]
        wall = self.wall_s
        return {
            "rcsa_version": __version__,
            "run_id": self.run_id,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "out_dir": str(self.out_dir),
            "model": asdict(self.model),
            "config_hash": self.config_hash,
            "options": self.options,
            "counts": {
                "cases": len(self.cases),
                "done": self.n_done,
                "skipped_done_earlier": self.n_skipped,
                "failed": self._n("failed"),
                "failed_earlier_not_retried": self._n("failed_earlier"),
                "table_rows": self.table_rows,
                "ignored_inputs": len(self.ignored),
            },
            "timings": {
                "wall_s": round(wall, 3),
                "case_seconds_total": round(sum(seconds), 3),
                "case_seconds_mean": round(statistics.fmean(seconds), 3) if seconds else None,
                "case_seconds_median": round(statistics.median(seconds), 3) if seconds else None,
                "case_seconds_max": round(max(seconds), 3) if seconds else None,
                "scans_per_hour": round(len(seconds) * 3600.0 / wall, 1) if seconds and wall > 0
                else None,
            },
            "failures": [
                {"case_id": c.case_id, "source": c.source, "reason": c.reason,
                 "error_type": c.error_type,
                 "when": "this run" if c.status == "failed" else "an earlier run (not retried)"}
                for c in self.failures
            ],
            "cases": [asdict(c) for c in self.cases],
            "ignored_inputs": [asdict(i) for i in self.ignored[:MAX_IGNORED_LISTED]],
            "table": {"csv": TABLE_CSV, "parquet": TABLE_PARQUET, "rows": self.table_rows,
                      "problems": self.table_problems},
        }


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


# ------------------------------------------------------------------------------------------
# local worker processes
# ------------------------------------------------------------------------------------------
def _die_with_parent(parent_pid: int) -> None:
    """Linux: this worker gets SIGKILL when the batch process dies (also when it is killed
    with SIGKILL), so no orphan keeps writing into the output folder."""
    if sys.platform != "linux":
        return
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _init_local_worker(parent_pid: int, threads: int) -> None:
    import signal

    _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is handled by the parent
    from rcsa.logs import configure_from_env

    configure_from_env()  # the parent's log file; library records never on the console
    set_threads(threads)
    # import the pipeline (torch, MONAI) now, so a case's time is its own work
    importlib.import_module("rcsa.pipeline")
    importlib.import_module("rcsa.segment")


Dispatch = Callable[[CaseTask], None]
Collect = Callable[[CaseOutcome], None]


def _died(task: CaseTask, what: str) -> CaseOutcome:
    return CaseOutcome(task.case.case_id, False,
                       f"{what} while processing this case (out of memory? crashed?); "
                       "rerun with --retry-failed", "WorkerDied")


def _run_local(tasks: Sequence[CaseTask], workers: int, threads: int, on_start: Dispatch,
               on_done: Collect) -> None:
    """Run ``tasks`` on ``workers`` spawned processes, at most ``workers`` in flight (so a
    case marked running is running). A dead worker fails the cases in flight; the rest go on
    in a fresh pool. Must be called from the main thread (see :func:`_die_with_parent`)."""
    queue = deque(tasks)
    ctx = mp.get_context("spawn")
    while queue:
        n = min(workers, len(queue))
        pool = ProcessPoolExecutor(n, mp_context=ctx, initializer=_init_local_worker,
                                   initargs=(os.getpid(), threads))
        broken = False
        inflight: dict[Future[CaseOutcome], CaseTask] = {}
        try:
            while (queue and not broken) or inflight:
                while queue and not broken and len(inflight) < n:
                    task = queue.popleft()
                    on_start(task)
                    try:
                        inflight[pool.submit(process_case, task)] = task
                    except BrokenProcessPool:
                        broken = True
                        on_done(_died(task, "a worker process died"))
                if not inflight:
                    break
                finished, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
                for fut in finished:
                    task = inflight.pop(fut)
                    try:
                        outcome = fut.result()
                    except BrokenProcessPool:
                        broken = True
                        outcome = _died(task, "a worker process died")
                    except Exception as exc:  # e.g. the case could not be pickled
                        outcome = CaseOutcome(task.case.case_id, False,
                                              f"internal error: {type(exc).__name__}: {exc}",
                                              type(exc).__name__)
                    on_done(outcome)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)


# ------------------------------------------------------------------------------------------
# Dask
# ------------------------------------------------------------------------------------------
def _run_dask(tasks: Sequence[CaseTask], scheduler: Any, on_start: Dispatch,
              on_done: Collect) -> None:
    """Run ``tasks`` on a Dask cluster (``scheduler``: address or ``distributed.Client``),
    with as many in flight as the cluster has threads."""
    dist: Any = importlib.import_module("distributed")  # untyped; imported only here
    own = not isinstance(scheduler, dist.Client)
    client = dist.Client(scheduler) if own else scheduler
    try:
        slots = max(1, sum(int(n) for n in client.nthreads().values()))
        queue = deque(tasks)
        inflight: dict[str, CaseTask] = {}
        pending = dist.as_completed()

        def submit() -> None:
            task = queue.popleft()
            on_start(task)
            fut = client.submit(process_case, task, pure=False, retries=0,
                                key=f"rcsa-case-{task.case.case_id}-{uuid.uuid4().hex[:8]}")
            inflight[str(fut.key)] = task
            pending.add(fut)

        for _ in range(min(slots, len(queue))):
            submit()
        for fut in pending:
            task = inflight.pop(str(fut.key))
            try:
                outcome = fut.result()
            except Exception as exc:  # KilledWorker, a lost scheduler, ...
                outcome = CaseOutcome(task.case.case_id, False,
                                      f"Dask task failed: {type(exc).__name__}: {exc}",
                                      type(exc).__name__)
            fut.release()
            on_done(outcome)
            if queue:
                submit()
    finally:
        if own:
            client.close()


# ------------------------------------------------------------------------------------------
# the feature table
# ------------------------------------------------------------------------------------------
def _parquet_safe(df: pd.DataFrame) -> pd.DataFrame:
    """Object columns as parquet can hold them: None for missing, one type per column."""
    out = df.astype(object).where(df.notna(), None)
    for col in out.columns:
        kinds = {type(v) for v in out[col] if v is not None}
        if len(kinds) > 1 and not kinds <= {int, float}:
            out[col] = [None if v is None else str(v) for v in out[col]]
    return out


def build_table(store: StateStore, out_dir: Path,
                config: RcsaConfig | None = None) -> tuple[pd.DataFrame, list[str]]:
    """The consolidated feature table from every case recorded as done (sorted by case id),
    and the problems met (a done case whose folder lost its feature table)."""
    from rcsa.measure import wide_columns

    frames: list[pd.DataFrame] = []
    problems: list[str] = []
    for rec in store.records("done"):
        path = out_dir / rec.output_dir / FEATURES_CSV
        try:
            df = open_run_folder(out_dir / rec.output_dir).wide
        except RcsaError as exc:
            cause = exc.__cause__ or exc
            problems.append(f"{rec.case_id}: {path} unreadable ({type(cause).__name__}); the "
                            "case is left out of the table and will run again")
            store.update(rec.case_id, status="failed", reason="result folder incomplete or "
                         "removed after it was written", error_type="MissingResult")
            continue
        if rec.clinical:
            clinical = {(k if k not in df.columns else f"clinical_{k}"): [v] * len(df)
                        for k, v in rec.clinical.items()}
            df = pd.concat([df, pd.DataFrame(clinical, index=df.index, dtype=object)], axis=1)
        frames.append(df)
    if not frames:
        return pd.DataFrame(columns=wide_columns(config or load_config())), problems
    return pd.concat(frames, ignore_index=True, sort=False), problems


def write_table(table: pd.DataFrame, out_dir: Path) -> None:
    """``features.csv`` and ``features.parquet``, each written atomically."""
    atomic_write(out_dir / TABLE_CSV, lambda tmp: table.to_csv(tmp, index=False),
                 overwrite=True)
    atomic_write(out_dir / TABLE_PARQUET, lambda tmp: _parquet_safe(table).to_parquet(tmp),
                 overwrite=True)


# ------------------------------------------------------------------------------------------
# the batch
# ------------------------------------------------------------------------------------------
def _has_files(folder: Path) -> bool:
    return folder.is_dir() and any(folder.iterdir())


def _scheduler_name(scheduler: Any) -> str | None:
    """The address of a Dask scheduler given as an address or a ``distributed.Client``."""
    if scheduler is None or isinstance(scheduler, str):
        return scheduler
    return str(getattr(getattr(scheduler, "scheduler", None), "address", type(scheduler).__name__))


def default_threads(workers: int) -> int:
    """CPU threads per local worker: the CPUs shared out, at least 1."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def run_batch(
    cases: Sequence[Case],
    out_dir: str | Path,
    *,
    workers: int = 1,
    scheduler: Any = None,
    retry_failed: bool = False,
    overwrite: bool = False,
    keep: bool = False,
    push: bool = False,
    config: RcsaConfig | None = None,
    options: RunOptions | None = None,
    threads: int | None = None,
    cache_dir: str | Path | None = None,
    ignored: Iterable[Ignored] = (),
    progress: Callable[[BatchEvent], None] | None = None,
) -> BatchReport:
    """Process ``cases`` into ``out_dir`` (see the module docstring); resumable.

    ``options``: the run options of every case (loader, TTA, all levels; a case's own series,
    level specs and height are added to them). ``scheduler``: a Dask scheduler address (or
    ``distributed.Client``) instead of local worker processes. ``threads``: torch threads per
    worker (default: local, the CPUs shared by the workers; Dask, left as the worker has it).
    ``cache_dir``: where remote series are retrieved (default ``out_dir/cache``), removed after
    each case unless ``keep``. ``push``: send each finished case's results back with
    ``rcsa.pacs.push_results``.

    Returns the :class:`BatchReport`; a case that fails never raises (``report.n_failed``).
    Raises :class:`~rcsa.errors.CaseIdError` for duplicated ids and
    :class:`~rcsa.errors.BatchError` when another batch holds the folder.
    """
    check_case_ids(cases)
    if workers < 1:
        raise InputError(f"workers must be at least 1, got {workers}")
    if threads is not None and threads < 1:
        raise InputError(f"threads must be at least 1, got {threads}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputExistsError("output path exists and is not a folder", out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(exc, out) from exc
    cfg = config or load_config()
    run_options = options or RunOptions()
    model = model_version(run_options.seg_model)
    result_options = {"tta": run_options.tta, "all_levels": run_options.all_levels,
                      "correct_tilt": run_options.load.correct_tilt,
                      "resample_irregular": run_options.load.resample_irregular}
    chash = config_hash(cfg, result_options)
    local_threads = threads if threads is not None else default_threads(workers)
    recorded: dict[str, Any] = {
        **result_options, "workers": workers if scheduler is None else None,
        "scheduler": _scheduler_name(scheduler),
        "threads": local_threads if scheduler is None else threads,
        "retry_failed": retry_failed, "overwrite": overwrite, "keep": keep, "push": push,
    }
    ignored = tuple(ignored)
    emit = progress or (lambda _event: None)
    started = time.time()
    run_id = f"{datetime.fromtimestamp(started, UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"

    with OutputLock(out), StateStore(out / STATE_FILE) as store:
        store.begin_run(run_id, started, recorded)
        reports: dict[str, CaseReport] = {}
        tasks: list[CaseTask] = []
        new_rows: list[CaseRecord] = []
        for case in cases:
            rel = f"{CASES_DIR}/{case.case_id}"
            case_dir = out / rel
            rec = store.get(case.case_id)
            try:
                fp = fingerprint(case, store)
            except RcsaError as exc:
                reports[case.case_id] = CaseReport(case.case_id, case.source, "failed",
                                                   exc.message, type(exc).__name__)
                if rec is None or rec.status != "done":
                    new_rows.append(CaseRecord(
                        case.case_id, "failed", "", "", model.sha256, chash, case.source, rel,
                        dict(case.clinical), exc.message, type(exc).__name__, run_id=run_id,
                        attempts=(rec.attempts if rec else 0) + 1, finished_at=time.time()))
                continue
            key = state_key(fp, model.sha256, chash)
            same = rec is not None and rec.state_key == key
            if rec is not None and same and rec.status == "done" and \
                    RunFolder(case_dir).has(FEATURES_CSV):
                reports[case.case_id] = CaseReport(
                    case.case_id, case.source, "skipped", seconds=rec.seconds, output_dir=rel,
                    worker=rec.worker, peak_rss_mb=rec.peak_rss_mb, pushed=rec.pushed)
                if rec.clinical != dict(case.clinical):
                    store.update(case.case_id, clinical=dict(case.clinical))
                continue
            if rec is not None and same and rec.status == "failed" and not retry_failed:
                reports[case.case_id] = CaseReport(case.case_id, case.source, "failed_earlier",
                                                   rec.reason, rec.error_type,
                                                   seconds=rec.seconds)
                continue
            replace = _has_files(case_dir)
            if replace and not (same or overwrite):
                why = ("holds the result of a different input, model or configuration"
                       if rec is not None and rec.status == "done"
                       else "exists and is not a result recorded by this batch")
                reason = f"{case_dir} {why}; pass --overwrite to replace it"
                reports[case.case_id] = CaseReport(case.case_id, case.source, "failed", reason,
                                                   "OutputExistsError")
                if rec is None or rec.status != "done":
                    new_rows.append(CaseRecord(
                        case.case_id, "failed", key, fp, model.sha256, chash, case.source, rel,
                        dict(case.clinical), reason, "OutputExistsError", run_id=run_id,
                        attempts=(rec.attempts if rec else 0) + 1, finished_at=time.time()))
                continue
            new_rows.append(CaseRecord(
                case.case_id, "pending", key, fp, model.sha256, chash, case.source, rel,
                dict(case.clinical), attempts=rec.attempts if rec and same else 0,
                run_id=run_id))
            tasks.append(CaseTask(
                case, case_dir, cfg, run_options, overwrite=replace,
                cache_dir=Path(cache_dir) if cache_dir is not None else out / "cache",
                keep=keep, push=push, threads=local_threads if scheduler is None else threads))
        if new_rows:
            store.put(*new_rows)
        n_failed_early = sum(1 for r in reports.values() if r.status != "skipped")
        emit(BatchEvent("planned", n_to_run=len(tasks),
                        n_skipped=sum(1 for r in reports.values() if r.status == "skipped"),
                        n_failed=n_failed_early))

        running: dict[str, CaseTask] = {}
        attempts = {r.case_id: r.attempts for r in new_rows}

        def on_start(task: CaseTask) -> None:
            cid = task.case.case_id
            running[cid] = task
            store.update(cid, status="running", started_at=time.time(),
                         attempts=attempts.get(cid, 0) + 1, run_id=run_id)
            emit(BatchEvent("started", cid, running=tuple(running)))

        def on_done(outcome: CaseOutcome) -> None:
            cid = outcome.case_id
            task = running.pop(cid)
            status: Literal["done", "failed"] = "done" if outcome.ok else "failed"
            store.update(cid, status=status, reason=outcome.reason,
                         error_type=outcome.error_type, detail=outcome.detail,
                         finished_at=time.time(), seconds=round(outcome.seconds, 3),
                         worker=outcome.worker, peak_rss_mb=outcome.peak_rss_mb,
                         pushed=outcome.pushed)
            reports[cid] = CaseReport(
                cid, task.case.source, "done" if outcome.ok else "failed", outcome.reason,
                outcome.error_type, round(outcome.seconds, 3), f"{CASES_DIR}/{cid}",
                outcome.worker, outcome.peak_rss_mb, outcome.pushed)
            emit(BatchEvent(status, cid, outcome.reason, outcome.seconds,
                            running=tuple(running)))

        for task in tasks:  # staging folders of a run killed while writing (never results)
            for stale in task.case_dir.parent.glob(f".{task.case.case_id}.partial-*"):
                shutil.rmtree(stale, ignore_errors=True)
        if tasks:
            if scheduler is not None:
                _run_dask(tasks, scheduler, on_start, on_done)
            else:
                _run_local(tasks, workers, local_threads, on_start, on_done)

        table, problems = build_table(store, out, cfg)
        write_table(table, out)
        emit(BatchEvent("table"))
        report = BatchReport(
            out, run_id, started, time.time(), model, chash, recorded,
            [reports[c.case_id] for c in cases], ignored, len(table), problems)
        text = json.dumps(report.to_dict(), indent=2, default=str) + "\n"
        atomic_write_text(out / REPORT_FILE, text, overwrite=True)
        # every ignored input (damaged files, non-scans), one per row: path, reason
        atomic_write_text(out / IGNORED_CSV, pd.DataFrame(
            [asdict(i) for i in ignored], columns=["path", "reason"]).to_csv(index=False),
            overwrite=True)
        store.end_run(run_id, report.finished_at, report.to_dict()["counts"])
    return report
