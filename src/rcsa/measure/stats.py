"""Region statistics of one mask on one axial slice, in physical units.

Areas come from the true in-plane pixel spacing (mm x mm); HU ranges are closed intervals and
come from configuration (:class:`rcsa.config.MeasureConfig`):

* lean (fat-free) muscle: -29 .. 150 HU (Mitsiopoulos et al., J Appl Physiol 1998;85:115-22;
  the Alberta protocol's skeletal-muscle range);
* fat: -190 .. -30 HU (Kvist et al., Am J Clin Nutr 1988;48:1351-61).

Fat infiltration is the percentage of the mask's pixels in the fat range. Pixels outside both
ranges (bone, air, or values between the two ranges) count in the CSA but in neither the lean
CSA nor the fat percentage.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class RegionStats:
    """Statistics of one region; every area in mm^2, HU in Hounsfield units."""

    n_pixels: int
    csa_mm2: float
    mean_hu: float | None
    sd_hu: float | None
    lean_csa_mm2: float
    fat_pixels: int

    @property
    def fat_pct(self) -> float | None:
        return None if self.n_pixels == 0 else 100.0 * self.fat_pixels / self.n_pixels

    @property
    def sum_hu(self) -> float:
        return 0.0 if self.mean_hu is None else self.mean_hu * self.n_pixels

    @property
    def sum_sq_hu(self) -> float:
        if self.mean_hu is None or self.sd_hu is None:
            return 0.0
        n = self.n_pixels
        return (self.sd_hu**2) * (n - 1) + n * self.mean_hu**2 if n > 1 else n * self.mean_hu**2


def pixel_area_mm2(spacing_mm: tuple[float, float]) -> float:
    """Area of one pixel; spacing must be finite and positive (validated, as skimage does)."""
    sx, sy = (float(s) for s in spacing_mm)
    if not (np.isfinite(sx) and np.isfinite(sy)) or sx <= 0 or sy <= 0:
        raise ValueError(f"pixel spacing must be positive and finite, got {spacing_mm}")
    return sx * sy


def region_stats(
    hu: npt.NDArray[np.floating] | npt.NDArray[np.integer],
    mask: npt.NDArray[np.bool_],
    spacing_mm: tuple[float, float],
    lean_range: tuple[float, float] = (-29.0, 150.0),
    fat_range: tuple[float, float] = (-190.0, -30.0),
) -> RegionStats:
    """CSA, mean / SD HU (sample SD, ddof=1), lean CSA and fat pixel count of ``mask``."""
    if hu.shape != mask.shape:
        raise ValueError(f"image {hu.shape} and mask {mask.shape} differ in shape")
    area = pixel_area_mm2(spacing_mm)
    values = np.asarray(hu[mask], dtype=np.float64)
    n = int(values.size)
    if n == 0:
        return RegionStats(0, 0.0, None, None, 0.0, 0)
    lean = int(np.count_nonzero((values >= lean_range[0]) & (values <= lean_range[1])))
    fat = int(np.count_nonzero((values >= fat_range[0]) & (values <= fat_range[1])))
    sd = float(values.std(ddof=1)) if n > 1 else 0.0
    return RegionStats(n, n * area, float(values.mean()), sd, lean * area, fat)


def pooled(a: RegionStats, b: RegionStats) -> RegionStats:
    """Statistics of the union of two disjoint regions (e.g. left + right)."""
    n = a.n_pixels + b.n_pixels
    if n == 0:
        return RegionStats(0, 0.0, None, None, 0.0, 0)
    s = a.sum_hu + b.sum_hu
    ss = a.sum_sq_hu + b.sum_sq_hu
    mean = s / n
    var = (ss - n * mean**2) / (n - 1) if n > 1 else 0.0
    return RegionStats(
        n,
        a.csa_mm2 + b.csa_mm2,
        mean,
        float(np.sqrt(max(var, 0.0))),
        a.lean_csa_mm2 + b.lean_csa_mm2,
        a.fat_pixels + b.fat_pixels,
    )


def touches_border(mask: npt.NDArray[np.bool_]) -> bool:
    """True when the region reaches the image edge (the field of view may cut it)."""
    return bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())
