"""Rule-derived split of TotalSegmentator ``autochthon_*`` into multifidus and erector spinae.

No public label source separates the two muscles, so rcsa derives the split from anatomy. It
is a *rule*, not a tracing: every output that carries these classes says so.

Rule, per axial slice and side (documented with references in ``docs/segment.md``):

1. Bone = HU >= ``bone_hu`` (250) or any vertebra / sacrum label. The midline is the median
   column of the vertebra labels on the slice (else the gap between left and right
   autochthon).
2. Multifidus seeds: autochthon pixels within ``seed_bone_mm`` (10 mm) of bone and within the
   medial ``medial_frac`` (45 %) of that side's lateral extent - the muscle that fills the
   groove between spinous process and lamina / mamillary process (Macintosh et al. 1986).
3. Erector spinae seeds: pixels in the lateral ``1 - lateral_frac`` (25 %) of the extent -
   longissimus and iliocostalis lie lateral to multifidus (Macintosh & Bogduk 1987).
4. Seeded watershed restricted to that side's autochthon on a "fat relief"
   ``max(0, fat_hu - smoothed HU)``: flat inside muscle, so the fronts meet half-way between
   the seeds (geodesic Voronoi), and raised on fat, so where the intermuscular fat plane is
   resolved the boundary follows it.
5. On slices through the sacrum with no lumbar/thoracic vertebra, all of autochthon is
   labelled multifidus (below L5/S1 the erector spinae is an aponeurosis over multifidus).

The module is torch-free (numpy / scipy / scikit-image).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage
from skimage.segmentation import watershed

BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class SplitRule:
    bone_hu: float = 250.0
    seed_bone_mm: float = 10.0
    medial_frac: float = 0.45
    lateral_frac: float = 0.75
    smooth_mm: float = 1.0
    fat_hu: float = -30.0

    def describe(self) -> str:
        return (
            "rule-derived multifidus / erector spinae split of TotalSegmentator autochthon: "
            f"seeded watershed on a fat relief (max(0, {self.fat_hu:g} - smoothed HU), sigma "
            f"{self.smooth_mm} mm; flat inside muscle); multifidus "
            f"seeds within {self.seed_bone_mm} mm of bone (HU >= {self.bone_hu:g} or vertebra "
            f"label) in the medial {self.medial_frac:.0%} of the side; erector seeds in the "
            f"lateral {1 - self.lateral_frac:.0%}; sacral slices: all multifidus"
        )


def split_side(
    hu: npt.NDArray[np.floating] | npt.NDArray[np.integer],
    side_mask: BoolArray,
    bone: BoolArray,
    midline_col: float,
    spacing_mm: tuple[float, float],
    rule: SplitRule = SplitRule(),
) -> BoolArray:
    """Multifidus part of one side's autochthon on one slice (rest is erector spinae).

    ``hu[j, i]`` one axial slice; ``spacing_mm`` = (column, row) pixel size.
    """
    if not side_mask.any():
        return np.zeros_like(side_mask)
    cols = np.nonzero(side_mask)[1]
    lateral = np.abs(np.arange(hu.shape[1], dtype=float) - midline_col)[np.newaxis, :]
    lateral = np.broadcast_to(lateral, hu.shape)
    lat_in = lateral[side_mask]
    lo, hi = float(lat_in.min()), float(lat_in.max())
    extent = max(hi - lo, 1e-6)
    rel = (lateral - lo) / extent
    if bone.any():
        dist_bone = ndimage.distance_transform_edt(~bone, sampling=(spacing_mm[1], spacing_mm[0]))
    else:
        dist_bone = np.full(hu.shape, np.inf)
    mf_seed = side_mask & (dist_bone <= rule.seed_bone_mm) & (rel <= rule.medial_frac)
    if not mf_seed.any():
        # No bone contact found: the most medial pixels seed multifidus.
        mf_seed = side_mask & (rel <= min(0.15, rule.medial_frac))
    es_seed = side_mask & (rel >= rule.lateral_frac) & ~mf_seed
    if not es_seed.any() or len(np.unique(cols)) < 4:
        return side_mask.copy()
    sigma = (rule.smooth_mm / spacing_mm[1], rule.smooth_mm / spacing_mm[0])
    smooth = ndimage.gaussian_filter(np.clip(hu.astype(np.float32), -200, 200), sigma)
    # Only fat-like pixels raise the relief: inside muscle the relief is flat, so the fronts
    # advance at equal speed and meet half-way between the seeds (a geodesic Voronoi split);
    # where the intermuscular fat plane is resolved, they meet on it.
    relief = np.clip(rule.fat_hu - smooth, 0.0, None)
    relief = np.round(relief).astype(np.int32)
    markers = np.zeros(hu.shape, np.int32)
    markers[mf_seed] = 1
    markers[es_seed] = 2
    regions = watershed(relief, markers=markers, mask=side_mask)  # type: ignore[no-untyped-call]
    return np.asarray(regions == 1)


def split_autochthon_slice(
    hu: npt.NDArray[np.floating] | npt.NDArray[np.integer],
    left: BoolArray,
    right: BoolArray,
    vertebra: BoolArray,
    sacral_only: bool,
    spacing_mm: tuple[float, float],
    rule: SplitRule = SplitRule(),
) -> tuple[BoolArray, BoolArray]:
    """Multifidus masks (left, right) of one slice; erector = autochthon minus these."""
    if sacral_only:
        return left.copy(), right.copy()
    bone = vertebra | (np.asarray(hu) >= rule.bone_hu)
    if vertebra.any():
        midline = float(np.median(np.nonzero(vertebra)[1]))
    elif left.any() and right.any():
        midline = (np.nonzero(left)[1].min() + np.nonzero(right)[1].max()) / 2.0
    else:
        midline = hu.shape[1] / 2.0
    return (
        split_side(hu, left, bone, midline, spacing_mm, rule),
        split_side(hu, right, bone, midline, spacing_mm, rule),
    )
