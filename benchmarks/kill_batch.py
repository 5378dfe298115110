"""Kill test (issue 18): ``rcsa batch`` killed with SIGKILL at seeded random moments and
resumed each time; the final feature table must equal an uninterrupted run's.

Run from the repository root::

    .venv/bin/python benchmarks/kill_batch.py                  # 6 cases, 20 kills, seed 18
    .venv/bin/python benchmarks/kill_batch.py --kills 40 --seed 7

The procedure and the checks are in ``tests/_killtest.py`` (the suite runs a reduced version,
``tests/test_batch_kill.py``). Prints one table; exit 1 when any check failed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import _killtest


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=6)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--seed", type=int, default=18)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="rcsa-kill-") as tmp:
        r = _killtest.kill_test(Path(tmp), args.cases, args.kills, args.seed)
    rows = [
        ("cases", args.cases),
        (f"runs killed with SIGKILL (seed {args.seed})", r.kills),
        ("kills after the run's first case had started", r.kills_in_a_case),
        ("kills after which more cases were done", r.kills_with_progress),
        ("runs started (some finished before their moment)", r.attempts),
        ("rounds (fresh output folder, killed until finished)", r.rounds),
        ("runs refused / failed", r.refused),
        ("uninterrupted run (s)", f"{r.reference_s:.1f}"),
        ("final rows (last round)", r.rows), ("rows lost (all rounds)", r.rows_lost),
        ("rows duplicated (all rounds)", r.duplicates),
        ("every round's table equals the uninterrupted run's", r.values_equal),
        ("half-written / unreadable files seen", len(r.problems)),
        ("total time (s)", f"{r.total_s:.0f}"),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    for p in r.problems:
        print("problem:", p)
    return 0 if not r.problems and r.values_equal and not r.rows_lost and not r.duplicates else 1


if __name__ == "__main__":
    sys.exit(main())
