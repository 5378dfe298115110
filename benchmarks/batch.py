"""Benchmark: ``rcsa batch`` throughput (scans/hour) and memory per worker, 1 and 2 workers.

Run from the repository root::

    .venv/bin/python benchmarks/batch.py                 # 4 cases, workers 1 and 2
    .venv/bin/python benchmarks/batch.py --cases 6 --workers 1 2 4

Every case is the real abdomen-pelvis sample (``sample_data/ct_abdomen_pelvis/ct.nii.gz``,
122 x 101 x 112 voxels) under its own id, so each configuration does the same work. Each
configuration runs :func:`rcsa.batch.run_batch` into a fresh temporary folder with local worker
processes (spawned; torch threads per worker = CPUs / workers, the default). Reported:

* wall time of the whole batch (planning, fingerprints, spawning the workers and importing
  torch in them, every case, the consolidated table) and scans/hour = cases x 3600 / wall;
* the mean time of one case inside a worker (load, levels, segmentation, measurement, writing
  ``rcsa run``'s folder) and the steady-state rate workers x 3600 / mean case time;
* peak resident memory per worker (``VmHWM`` of the worker process, the largest over its
  cases; includes Python, torch and MONAI) and of the parent process.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

SCAN = REPO / "sample_data" / "ct_abdomen_pelvis" / "ct.nii.gz"


def run_config(n_cases: int, workers: int) -> dict[str, float]:
    from rcsa.batch import Case, run_batch
    from rcsa.batch.worker import peak_rss_mb

    cases = [Case(f"abdomen{n:02d}", path=SCAN) for n in range(n_cases)]
    with tempfile.TemporaryDirectory(prefix="rcsa-batch-bench-") as tmp:
        t0 = time.perf_counter()
        report = run_batch(cases, Path(tmp) / "out", workers=workers)
        wall = time.perf_counter() - t0
    if report.n_done != n_cases:
        raise SystemExit(f"{report.n_failed} case(s) failed: "
                         + "; ".join(f"{c.case_id}: {c.reason}" for c in report.failures))
    seconds = [c.seconds for c in report.cases if c.seconds is not None]
    by_worker: dict[str, float] = {}
    for c in report.cases:
        if c.peak_rss_mb is not None:
            by_worker[c.worker] = max(by_worker.get(c.worker, 0.0), c.peak_rss_mb)
    mean_case = statistics.fmean(seconds)
    return {
        "workers": workers,
        "threads": report.options["threads"],
        "cases": n_cases,
        "wall_s": wall,
        "per_hour": n_cases * 3600.0 / wall,
        "mean_case_s": mean_case,
        "steady_per_hour": workers * 3600.0 / mean_case,
        "worker_peak_mb": max(by_worker.values()),
        "parent_peak_mb": peak_rss_mb() or float("nan"),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--cases", type=int, default=4)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args(argv)
    rows = [run_config(args.cases, w) for w in args.workers]
    load1, _, _ = os.getloadavg()
    print(f"rcsa batch, {args.cases} x {SCAN.relative_to(REPO)}, {os.cpu_count()} CPUs, "
          f"load average {load1:.1f} at the end")
    head = ("workers", "threads/worker", "wall s", "scans/hour", "case s (mean)",
            "steady scans/hour", "peak RSS/worker MB", "parent peak MB")
    print("  ".join(head))
    for r in rows:
        cells = (f"{r['workers']:.0f}", f"{r['threads']:.0f}", f"{r['wall_s']:.1f}",
                 f"{r['per_hour']:.0f}", f"{r['mean_case_s']:.2f}", f"{r['steady_per_hour']:.0f}",
                 f"{r['worker_peak_mb']:.0f}", f"{r['parent_peak_mb']:.0f}")
        print("  ".join(c.rjust(len(h)) for c, h in zip(cells, head, strict=True)))
    return 0


if __name__ == "__main__":  # the guard matters: worker processes are spawned
    raise SystemExit(main())
