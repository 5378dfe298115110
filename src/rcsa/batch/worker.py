"""What a worker does with one case: :func:`process_case` (a local worker process or a Dask
worker; the same function).

It materialises a remote case (``rcsa.pacs.retrieve``), runs ``rcsa run``'s pipeline
(:func:`rcsa.pipeline.run_scan`) and writes exactly ``rcsa run``'s folder
(:func:`rcsa.pipeline.write_scan_outputs`, atomic: staging folder, then rename), pushes the
results when asked (``rcsa.pacs.push_results``) and removes the retrieved copy unless
``keep``. It never raises for a case that fails: the reason comes back in a small picklable
:class:`CaseOutcome`; the parent alone records it in the state store.
"""

from __future__ import annotations

import importlib
import os
import shutil
import socket
import sys
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rcsa.batch.cases import Case
from rcsa.config import RcsaConfig
from rcsa.errors import RcsaError

if TYPE_CHECKING:
    from rcsa.pipeline import RunOptions


@dataclass(frozen=True)
class CaseTask:
    """Everything a worker needs for one case (picklable)."""

    case: Case
    case_dir: Path
    config: RcsaConfig
    #: the batch's run options (loader, TTA, all levels); the case adds its series, levels
    #: and height (:func:`case_options`)
    options: RunOptions
    overwrite: bool = False
    cache_dir: Path | None = None
    keep: bool = False
    push: bool = False
    #: torch / decoder threads in this worker (None: leave the process's setting)
    threads: int | None = None


@dataclass(frozen=True)
class CaseOutcome:
    """What a worker sends back (small and picklable)."""

    case_id: str
    ok: bool
    reason: str = ""
    error_type: str = ""
    detail: str = ""
    seconds: float = 0.0
    timings_s: dict[str, float] = field(default_factory=dict)
    worker: str = ""
    peak_rss_mb: float | None = None
    pushed: dict[str, Any] | None = None


def peak_rss_mb() -> float | None:
    """Peak resident memory of this process in MB (Linux ``VmHWM``; else ``getrusage``)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    try:
        import resource

        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return rss / (1024.0 * 1024.0) if sys.platform == "darwin" else rss / 1024.0
    except (ImportError, OSError):  # pragma: no cover - Windows
        return None


def set_threads(threads: int) -> None:
    """Limit torch's intra-op threads and the DICOM decoder's processes in this worker, so
    that N workers share the CPUs instead of each using all of them."""
    os.environ["RCSA_DECODE_PROCESSES"] = str(threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def _pacs() -> Any:
    """``rcsa.pacs``, imported only when a case needs it (remote cases, ``--push``)."""
    return importlib.import_module("rcsa.pacs")


def _describe(exc: BaseException) -> tuple[str, str, str]:
    """(reason, error type, traceback for unexpected errors)."""
    if isinstance(exc, RcsaError):
        return exc.message, type(exc).__name__, ""
    detail = "".join(traceback.format_exception(exc))[-4000:]
    return (f"internal error: {type(exc).__name__}: {exc}", type(exc).__name__, detail)


def case_options(options: RunOptions, case: Case, series_uid: str | None) -> RunOptions:
    """The batch's ``options`` with this case's series, level specs and height."""
    return replace(options, load=replace(options.load, series_uid=series_uid),
                   level_specs=tuple(case.levels), height_m=case.height_m)


def process_case(task: CaseTask) -> CaseOutcome:
    """Run one case to its output folder; never raises for a failing case."""
    from rcsa.pipeline import run_scan, write_scan_outputs

    t0 = time.perf_counter()
    case = task.case
    worker = f"{socket.gethostname()}:{os.getpid()}"
    if task.threads is not None:
        set_threads(task.threads)
    cache: Path | None = None
    stage = "load"
    try:
        series_uid = case.series_uid
        if case.remote is not None:
            stage = "retrieve"
            cache = (task.cache_dir or task.case_dir.parent / ".cache") / case.case_id
            source = Path(_pacs().retrieve(case.remote, cache))
            series_uid = series_uid or case.remote.series_uid
        else:
            assert case.path is not None
            source = case.path
        stage = "pipeline"
        result = run_scan(source, case_options(task.options, case, series_uid),
                          config=task.config, scan_id=case.case_id)
        stage = "write"
        write_scan_outputs(result, task.case_dir, overwrite=task.overwrite)
        pushed: dict[str, Any] | None = None
        if task.push:
            stage = "push"
            pushed = dict(_pacs().push_results(case, task.case_dir, source))
        timings = {k: round(float(v), 3) for k, v in result.timings_s.items()}
        return CaseOutcome(case.case_id, True, seconds=time.perf_counter() - t0,
                           timings_s=timings, worker=worker, peak_rss_mb=peak_rss_mb(),
                           pushed=pushed)
    except Exception as exc:
        reason, kind, detail = _describe(exc)
        if stage == "push":
            reason = f"results written, but pushing them failed: {reason}"
        elif stage == "retrieve":
            reason = f"retrieving the series failed: {reason}"
        return CaseOutcome(case.case_id, False, reason, kind, detail,
                           seconds=time.perf_counter() - t0, worker=worker,
                           peak_rss_mb=peak_rss_mb())
    finally:
        if cache is not None and not task.keep:
            shutil.rmtree(cache, ignore_errors=True)
