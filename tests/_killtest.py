"""The batch kill test (issue 18), shared by ``tests/test_batch_kill.py`` (reduced) and
``benchmarks/kill_batch.py`` (the full run).

``rcsa batch`` runs as a real process on small real cases (3-slice slabs of subject A, one
manual level each: a manifest with ``levels = L3=slice:1``); it is killed with SIGKILL (its
whole process group: the batch process and its workers) at seeded random moments and resumed
each time, then run to the end. Checked after every kill: everything a later run or a reader
reads back is whole (``features.csv`` / ``.parquet``, ``run_report.json``, ``ignored.csv``,
every case's ``features.csv``, the state store's integrity); at the end: the feature table
equals an uninterrupted run's (same rows, same values, no duplicates).
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

REPO = Path(__file__).resolve().parents[1]
SUBJECT_A = REPO / "sample_data" / "ct_abdomen_pelvis" / "ct.nii.gz"
#: columns that legitimately differ between two runs of the same inputs
VOLATILE = ("seconds", "timestamp", "started", "finished", "run_id")


def make_cases(folder: Path, n: int = 6) -> Path:
    """``n`` 3-slice slabs of subject A as NIfTI, and the manifest naming them; returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    img = sitk.ReadImage(str(SUBJECT_A))
    depth = img.GetSize()[2]
    rows = ["id,path,levels"]
    for k, z in enumerate(np.linspace(30, depth - 30, n).astype(int)):
        slab = img[:, :, int(z) - 1: int(z) + 2]
        name = f"slab{k}.nii.gz"
        sitk.WriteImage(slab, str(folder / name), useCompression=True)
        rows.append(f"case{k},{name},L3=slice:1")
    manifest = folder / "manifest.csv"
    manifest.write_text("\n".join(rows) + "\n")
    return manifest


def _command(manifest: Path, out: Path) -> list[str]:
    code = "from rcsa.cli import app; app()"
    return [sys.executable, "-c", code, "batch", str(manifest), "--out", str(out),
            "--threads", "1"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(REPO / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    env["RCSA_DECODE_PROCESSES"] = "0"
    env["OMP_NUM_THREADS"] = "1"
    return env


def run_batch_process(manifest: Path, out: Path, kill_after_s: float | None = None,
                      after_start: bool = False) -> tuple[int | None, str]:
    """Run ``rcsa batch``; SIGKILL its process group ``kill_after_s`` seconds after it
    started, or, with ``after_start``, that long after it logged its first ``started`` case
    event (``batch.log``: a kill while a case is processed or written). None: let it finish.
    Returns (exit code, or None when killed; stderr)."""
    log = out / "batch.log"
    offset = log.stat().st_size if log.exists() else 0
    proc = subprocess.Popen(_command(manifest, out), env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    if kill_after_s is None:
        _, err = proc.communicate(timeout=900)
        return proc.returncode, err
    if after_start:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if log.exists():
                with open(log, "rb") as fh:
                    fh.seek(offset)
                    if b"rcsa.batch: started " in fh.read():
                        break
            time.sleep(0.02)
    try:
        _, err = proc.communicate(timeout=kill_after_s)
        return proc.returncode, err
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        return None, err


def check_whole(out: Path) -> list[str]:
    """Problems with what a reader would read back from ``out`` (empty: all whole)."""
    problems: list[str] = []
    checks = [out / "features.csv", out / "ignored.csv", *sorted(out.glob("cases/*/features.csv"))]
    for p in checks:
        if p.exists():
            try:
                pd.read_csv(p)
            except Exception as exc:
                problems.append(f"{p}: {exc}")
    if (out / "features.parquet").exists():
        try:
            pd.read_parquet(out / "features.parquet")
        except Exception as exc:
            problems.append(f"features.parquet: {exc}")
    if (out / "run_report.json").exists():
        try:
            json.loads((out / "run_report.json").read_text())
        except Exception as exc:
            problems.append(f"run_report.json: {exc}")
    db = out / "batch_state.sqlite"
    if db.exists():
        with sqlite3.connect(db) as con:
            ok = con.execute("PRAGMA integrity_check").fetchone()[0]
        if ok != "ok":
            problems.append(f"batch_state.sqlite: {ok}")
    for tmp in out.rglob("*"):
        if tmp.is_file() and (".tmp" in tmp.name or tmp.name.endswith(".part")) and \
                ".partial-" not in str(tmp):
            problems.append(f"temporary file left where results are read: {tmp}")
    return problems


def comparable(table: pd.DataFrame) -> pd.DataFrame:
    keep = [c for c in table.columns if not any(v in c for v in VOLATILE)]
    return table[keep].sort_values("scan_id").reset_index(drop=True)


def _done_count(out: Path) -> int:
    db = out / "batch_state.sqlite"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as con:
        try:
            row = con.execute("SELECT COUNT(*) FROM cases WHERE status = 'done'").fetchone()
        except sqlite3.OperationalError:
            # a run killed between creating the database file and its schema: nothing done
            return 0
        return int(row[0])


@dataclass
class KillResult:
    kills: int = 0  # runs killed with SIGKILL before they finished
    attempts: int = 0  # runs started with a kill moment (some finish before it)
    rounds: int = 0  # fresh output folders, each killed until a run finished it
    kills_with_progress: int = 0  # kills after which more cases were done than before
    kills_in_a_case: int = 0  # kills after the run's first case had started
    refused: int = 0
    problems: list[str] = field(default_factory=list)
    rows: int = 0
    duplicates: int = 0
    rows_lost: int = 0
    values_equal: bool = False
    reference_s: float = 0.0
    total_s: float = 0.0


def _final_checks(out: Path, reference: pd.DataFrame, res: KillResult, label: str) -> None:
    res.problems += [f"{label}: {p}" for p in check_whole(out)]
    final = comparable(pd.read_csv(out / "features.csv"))
    res.rows = len(final)
    res.duplicates += int(final["scan_id"].duplicated().sum())
    res.rows_lost += len(set(reference["scan_id"]) - set(final["scan_id"]))
    try:
        pd.testing.assert_frame_equal(final, reference, check_exact=False, rtol=1e-9)
    except AssertionError as exc:
        res.values_equal = False
        res.problems.append(f"{label}: table differs from the uninterrupted run: "
                            f"{str(exc)[:1500]}")


def kill_test(work: Path, n_cases: int = 6, n_kills: int = 20, seed: int = 18) -> KillResult:
    """The procedure of the module docstring in ``work``: rounds, each a fresh output folder
    where ``rcsa batch`` is started again and again, killed at a seeded random moment in
    [0.3 s, the uninterrupted run's duration], until one run finishes by itself (or
    ``n_kills`` runs have been killed in all: then a last run without a kill finishes it);
    the final table of every round is compared with the uninterrupted run's. Rounds go on
    until ``n_kills`` runs have been killed in all."""
    t0 = time.perf_counter()
    manifest = make_cases(work / "cases", n_cases)
    res = KillResult(values_equal=True)
    t = time.perf_counter()
    code, err = run_batch_process(manifest, work / "reference")
    res.reference_s = time.perf_counter() - t
    if code != 0:
        raise RuntimeError(f"reference run failed ({code}): {err[-2000:]}")
    reference = comparable(pd.read_csv(work / "reference" / "features.csv"))
    rng = random.Random(seed)
    while res.kills < n_kills and res.attempts < 5 * n_kills:
        res.rounds += 1
        out = work / f"round{res.rounds}"
        finished = False
        while not finished and res.kills < n_kills and res.attempts < 5 * n_kills:
            res.attempts += 1
            before = _done_count(out)
            # every other run: a moment after its first case started (inside a case's work
            # or the writing of its folder), else any moment of the run
            if res.attempts % 2:
                code, err = run_batch_process(manifest, out, rng.uniform(0.3, res.reference_s))
            else:
                code, err = run_batch_process(
                    manifest, out, rng.uniform(0.0, 2 * res.reference_s / n_cases),
                    after_start=True)
            label = f"round {res.rounds} run {res.attempts}"
            if code is None:
                res.kills += 1
                res.kills_with_progress += _done_count(out) > before
                res.kills_in_a_case += res.attempts % 2 == 0
            elif code == 0:
                finished = True
            else:
                res.refused += 1
                res.problems.append(f"{label}: exit {code}: {err[-500:]}")
            if "Traceback" in err:
                res.problems.append(f"{label}: traceback on stderr: {err[-1500:]}")
            res.problems += [f"after {label}: {p}" for p in check_whole(out)]
        if not finished:  # enough kills (or attempts exhausted): finish without a kill
            code, err = run_batch_process(manifest, out)
            if code != 0:
                res.problems.append(f"round {res.rounds} final run: exit {code}: {err[-1500:]}")
        _final_checks(out, reference, res, f"round {res.rounds}")
    res.total_s = time.perf_counter() - t0
    return res
