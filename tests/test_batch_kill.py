"""Kill test, reduced for the suite (issue 18): ``rcsa batch`` on 6 real cases killed with
SIGKILL at (at least) 3 seeded moments and resumed; the final table equals an uninterrupted
run's, and nothing half-written is ever read back. The full run (20 kills) is
``benchmarks/kill_batch.py`` (docs/reliability.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import _killtest


@pytest.mark.skipif(sys.platform != "linux", reason="process groups and SIGKILL (POSIX)")
def test_batch_survives_sigkill_and_resumes(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    r = _killtest.kill_test(tmp_path, n_cases=6, n_kills=3, seed=18)
    with capsys.disabled():
        print(f"\nkill test: {r.kills} kills ({r.kills_in_a_case} while a case ran, "
              f"{r.kills_with_progress} after progress), "
              f"{r.attempts} runs, {r.rounds} round(s), rows {r.rows}, lost {r.rows_lost}, "
              f"duplicated {r.duplicates}, equal {r.values_equal}, {r.total_s:.0f} s")
    assert not r.problems, "\n".join(r.problems)
    assert r.kills >= 3  # not vacuous: runs really were killed mid-way ...
    assert r.kills_in_a_case >= 1  # ... and at least once while a case was being processed
    assert r.rows == 6 and r.rows_lost == 0 and r.duplicates == 0
    assert r.values_equal
