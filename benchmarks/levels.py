"""Benchmark: ``rcsa.levels.find_levels`` CPU time on a 512 x 512 x 300 CT (target <= 2 s).

Run from the repository root::

    .venv/bin/python benchmarks/levels.py            # 3 repetitions (median reported)
    .venv/bin/python benchmarks/levels.py --repeat 5

What it does:

1. **Builds the volume in memory** from the real abdomen-pelvis CT
   ``sample_data/ct_abdomen_pelvis/ct.nii.gz`` (122 x 101 x 112 voxels at 3 mm): SimpleITK
   resamples it (linear interpolation, air outside) onto an axial grid of 512 x 512 x 300
   voxels covering the same field of view (about 0.72 x 0.59 x 1.12 mm voxels), int16 HU.
   Nothing is written to disk; loading is not timed (``benchmarks/load.py`` does that).
2. **Times** ``find_levels`` on it with ``time.process_time`` (CPU time of this process, all
   threads), ``--repeat`` times after one untimed warm-up call, and reports the median.
   NumPy/SciPy may use several threads; process time counts all of them, so the figure is
   the CPU cost, not the wall time.
3. **Prints** a small table: volume size, median / min / max CPU seconds, the 2 s target and
   whether it is met, wall time, and the levels found on the resampled volume next to the
   ones found on the original 3 mm scan (a check that the result does not depend on the grid).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from rcsa.io import CTVolume, Geometry, SourceInfo, load  # noqa: E402
from rcsa.levels import LEVEL_NAMES, find_levels  # noqa: E402

SAMPLE = REPO / "sample_data" / "ct_abdomen_pelvis" / "ct.nii.gz"
TARGET_S = 2.0
SIZE = (512, 512, 300)  # (i, j, k)


def build_volume(ct: CTVolume) -> CTVolume:
    """Resample ``ct`` (canonical LPS) onto a SIZE grid covering the same extent."""
    src = sitk.GetImageFromArray(np.ascontiguousarray(ct.voxels))
    src.SetSpacing([float(s) for s in ct.spacing_mm])
    src.SetOrigin([float(o) for o in ct.origin_mm])
    src.SetDirection([float(d) for d in ct.direction.ravel()])
    extent = ct.spacing_mm * (np.array(ct.size_voxels) - 1)
    spacing = extent / (np.array(SIZE) - 1)
    res = sitk.ResampleImageFilter()
    res.SetSize([int(s) for s in SIZE])
    res.SetOutputSpacing([float(s) for s in spacing])
    res.SetOutputOrigin([float(o) for o in ct.origin_mm])
    res.SetOutputDirection([float(d) for d in ct.direction.ravel()])
    res.SetInterpolator(sitk.sitkLinear)
    res.SetDefaultPixelValue(-1024)
    res.SetOutputPixelType(sitk.sitkInt16)
    arr = sitk.GetArrayFromImage(res.Execute(src))
    geo = Geometry(SIZE, spacing, ct.origin_mm, ct.direction)
    return CTVolume(arr, geo, SourceInfo(path="<resampled in memory>", format="benchmark"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="timed repetitions (default 3)")
    args = ap.parse_args()
    ct = load(SAMPLE)
    big = build_volume(ct)
    find_levels(big)  # warm-up (imports, caches)
    cpu, wall = [], []
    lm = None
    for _ in range(max(1, args.repeat)):
        w0, c0 = time.perf_counter(), time.process_time()
        lm = find_levels(big)
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    assert lm is not None
    med = statistics.median(cpu)
    print(f"find_levels on {SIZE[0]} x {SIZE[1]} x {SIZE[2]} voxels "
          f"({', '.join(f'{s:.2f}' for s in big.spacing_mm)} mm), {len(cpu)} runs")
    print(f"{'metric':<28}{'value':>10}")
    print(f"{'CPU s, median':<28}{med:>10.3f}")
    print(f"{'CPU s, min / max':<28}{min(cpu):>5.2f} /{max(cpu):>4.2f}")
    print(f"{'wall s, median':<28}{statistics.median(wall):>10.3f}")
    print(f"{'target CPU s':<28}{TARGET_S:>10.1f}")
    print(f"{'target met':<28}{'yes' if med <= TARGET_S else 'NO':>10}")
    small = find_levels(ct)
    print(f"\n{'level':<18}{'3 mm scan z':>12}{'resampled z':>12}{'diff mm':>9}")
    for name in LEVEL_NAMES:
        a, b = small[name], lm[name]
        za = f"{a.z_mm:.1f}" if a.found and a.z_mm is not None else a.status
        zb = f"{b.z_mm:.1f}" if b.found and b.z_mm is not None else b.status
        diff = (f"{b.z_mm - a.z_mm:+.1f}" if a.found and b.found and a.z_mm is not None
                and b.z_mm is not None else "")
        print(f"{name:<18}{za:>12}{zb:>12}{diff:>9}")
    return 0 if med <= TARGET_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
