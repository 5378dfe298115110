"""Benchmark: time ``rcsa.spine`` adds to ``rcsa run`` on a 512 x 512 x 300 CT (target <= 1 s).

Run from the repository root::

    .venv/bin/python benchmarks/spine.py             # 3 repetitions (median reported)
    .venv/bin/python benchmarks/spine.py --repeat 5

The volume is the one of ``benchmarks/levels.py`` (subject A resampled in memory to
512 x 512 x 300 voxels, about 0.72 x 0.59 x 1.12 mm). ``find_levels`` runs once (it is part
of ``rcsa run`` already); then ``analyse_spine`` (heights, grades, ROI) and the sagittal QC
sheet (``write_spine_qc_png`` into a temporary folder) are timed with ``time.process_time``
after one warm-up, and the ratio to ``find_levels``' own time is printed. The heights on the
resampled grid are printed beside those on the 3 mm original (same body, different grid).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

from levels import SAMPLE, SIZE, build_volume  # noqa: E402
from rcsa.io import load  # noqa: E402
from rcsa.levels import find_levels  # noqa: E402
from rcsa.spine import analyse_spine  # noqa: E402
from rcsa.spine.qc import write_spine_qc_png  # noqa: E402

TARGET_S = 1.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    ct = load(SAMPLE)
    big = build_volume(ct)
    c0 = time.process_time()
    lm = find_levels(big)
    t_levels = time.process_time() - c0
    analyse_spine(big, lm)  # warm-up
    spine, qc = [], []
    res = None
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(max(1, args.repeat)):
            c0 = time.process_time()
            res = analyse_spine(big, lm)
            spine.append(time.process_time() - c0)
            c0 = time.process_time()
            write_spine_qc_png(big, lm, res, Path(tmp) / f"spine{n}.png")
            qc.append(time.process_time() - c0)
    assert res is not None
    total = statistics.median(spine) + statistics.median(qc)
    print(f"rcsa.spine on {SIZE[0]} x {SIZE[1]} x {SIZE[2]} voxels "
          f"({', '.join(f'{s:.2f}' for s in big.spacing_mm)} mm), {len(spine)} runs, CPU s")
    print(f"{'analyse_spine, median':<30}{statistics.median(spine):>8.3f}")
    print(f"{'QC sheet, median':<30}{statistics.median(qc):>8.3f}")
    print(f"{'added, total':<30}{total:>8.3f}")
    print(f"{'find_levels (for scale)':<30}{t_levels:>8.3f}")
    print(f"{'added / find_levels':<30}{total / max(t_levels, 1e-9):>8.2f}")
    print(f"{'target added s':<30}{TARGET_S:>8.1f}")
    print(f"{'target met':<30}{'yes' if total <= TARGET_S else 'NO':>8}")
    small = analyse_spine(ct, find_levels(ct))
    print(f"\n{'vertebra':<10}{'3 mm: A / M / P mm, grade':>32}"
          f"{'512^2 x 300: A / M / P, grade':>34}")
    for v in small.vertebrae:
        cells = []
        for r in (small[v], res[v]):
            cells.append(f"{r.height_anterior_mm:.1f} / {r.height_middle_mm:.1f} / "
                         f"{r.height_posterior_mm:.1f}, {r.genant_grade}" if r.measured
                         else r.status)
        print(f"{v:<10}{cells[0]:>32}{cells[1]:>34}")
    return 0 if total <= TARGET_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
