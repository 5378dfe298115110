"""Anatomical post-processing of one predicted label slice (torch-free).

1. Side consistency: a connected component of a left-sided class whose centroid lies on the
   patient's right of the midline (or vice versa) by more than ``side_margin_mm`` is
   relabelled to the mirror class. The midline is the vertebral body's centroid column when
   the body is predicted, else the median column of bone (HU >= 200), else the centroid of
   the paraspinal muscles, else the image centre.
2. Per class, only the largest connected component is kept (each class is one muscle or one
   vertebral body on an axial slice); the rest becomes background.
3. Level plausibility (when the level name is known): muscles that cannot appear on that
   level's slice are removed and reported - the gluteus maximus and medius arise from the
   ilium and sacrum, below the iliac crest, so they are impossible at T12-L3.
4. Multifidus / erector spinae by the labelling rule (when the slice's HU are given): the
   network's outline of each side's autochthon (multifidus + erector spinae) is kept and split
   again by the same rule that made the training labels (:mod:`rcsa.segment.split`), so the
   two muscles mean on every scan exactly what docs/segment.md defines, not the network's
   imitation of that rule (:func:`split_by_rule`).
5. Growth from the core (when the probabilities and HU are given), for the classes the anatomy
   table marks ``grown_from_core`` (psoas): a background pixel joins such a class when that
   class is its most probable foreground class with probability >= :data:`GROW_LOW_P`, its HU
   lie in the lean-muscle range :data:`GROW_HU` and within :data:`GROW_HU_SD` standard
   deviations of the core's mean HU, and it connects to the class's arg-max component -
   hysteresis thresholding (Canny 1986; high threshold = the arg-max, low =
   :data:`GROW_LOW_P`) with the intensity band of ITK's confidence-connected region growing
   (:func:`grow_from_core`). Nothing is grown without an arg-max core, and
   no pixel is taken from another class.

The per-structure facts these rules use (which muscles are impossible at which level, which
arise below the iliac crest, how far each may lie from the vertebral body, which are the
paraspinal muscles of the midline fallback) are columns of the anatomy table
(:data:`rcsa.anatomy.ANATOMY`); the rules themselves are here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from rcsa.anatomy import ANATOMY
from rcsa.levels.types import LEVEL_NAMES
from rcsa.segment.classes import ClassMap
from rcsa.segment.split import SplitRule, split_autochthon_slice

U8 = npt.NDArray[np.uint8]


#: Smallest predicted vertebral body (largest component) trusted as the midline, mm^2.
MIN_BODY_MM2 = 300.0
#: Muscles of the midline fallback (anatomy table: ``paraspinal``).
PARASPINAL: tuple[str, ...] = ANATOMY.paraspinal()
#: Classes grown from their arg-max core (anatomy table: ``grown_from_core``).
GROWN: tuple[str, ...] = ANATOMY.grown_from_core()
#: Low threshold of the growth: the class probability a pixel needs to join (half the 0.5 at
#: which a class wins a two-way arg-max; fixed before any measurement, not fitted).
GROW_LOW_P = 0.25
#: HU a grown pixel must have: the lean-muscle range (Mitsiopoulos et al. 1998), so growth
#: never takes fat, gas, bone or enhanced vessels.
GROW_HU = (-29.0, 150.0)
#: Intensity band of the growth, in standard deviations of the core's HU around its mean (the
#: default multiplier of ITK's ConfidenceConnectedImageFilter): keeps the growth out of
#: neighbouring soft tissue of another density (bowel wall, enhanced vessels, kidney).
GROW_HU_SD = 2.5


def vertebral_body(labels: npt.NDArray[Any], class_map: ClassMap, pixel_area_mm2: float
                   ) -> npt.NDArray[np.bool_] | None:
    """The largest connected component of the vertebral body class when it has at least
    :data:`MIN_BODY_MM2` (stray 'body' pixels elsewhere never count), else ``None``."""
    if "vertebral_body" not in class_map.names:
        return None
    body = labels == class_map.id_of("vertebral_body")
    if not body.any():
        return None
    comps, _n = ndimage.label(body)
    sizes = np.bincount(comps.ravel())[1:]
    if sizes.max() * pixel_area_mm2 < MIN_BODY_MM2:
        return None
    return np.asarray(comps == int(np.argmax(sizes)) + 1)


def midline_column(labels: npt.NDArray[Any], class_map: ClassMap,
                   hu: npt.NDArray[Any] | None = None, pixel_area_mm2: float = 1.0,
                   col0: int = 0, width: int | None = None) -> float:
    """Column (i) of the body midline on a predicted slice.

    The centroid of the vertebral body's largest component when it is at least
    ``MIN_BODY_MM2``, else the median column of bone pixels (HU >= 200: spine, ribs and pelvis
    are near-symmetric), else the paraspinal muscles' centroid, else the image centre.
    ``labels`` may be a box of the slice that starts at column ``col0`` of a slice ``width``
    columns wide (``hu`` is always the whole slice); the result is in the box's columns.
    """
    body = vertebral_body(labels, class_map, pixel_area_mm2)
    if body is not None:
        return float(np.mean(np.nonzero(body)[1]))
    if hu is not None:
        bone = np.asarray(hu) >= 200
        if bone.sum() >= 10:
            return float(np.median(np.nonzero(bone)[1])) - col0
    para = np.isin(labels, [i for m in PARASPINAL for i in class_map.ids_of_muscle(m)])
    if para.sum() >= 10:
        return float(np.mean(np.nonzero(para)[1]))
    return float((labels.shape[1] if width is None else width) - 1) / 2.0 - col0


def side_consistency(labels: npt.NDArray[Any], class_map: ClassMap, spacing_x_mm: float,
                     side_margin_mm: float = 5.0, hu: npt.NDArray[Any] | None = None,
                     midline: float | None = None) -> tuple[U8, int]:
    """Relabel components on the wrong side; returns (labels, number relabelled).
    ``midline``: the midline column when already known, else :func:`midline_column`."""
    out = np.asarray(labels, np.uint8).copy()
    mid = midline if midline is not None else midline_column(out, class_map, hu,
                                                             spacing_x_mm**2)
    margin = side_margin_mm / spacing_x_mm
    changed = 0
    for c in class_map.classes:
        if c.side is None:
            continue
        comps, n = ndimage.label(out == c.id)
        for lab in range(1, n + 1):
            m = comps == lab
            col = float(np.nonzero(m)[1].mean())
            # patient's left = larger column index (canonical LPS)
            wrong = (col < mid - margin) if c.side == "left" else (col > mid + margin)
            if wrong:
                out[m] = class_map.mirror_of(c.id)
                changed += 1
    return out, changed


def largest_component(labels: npt.NDArray[Any], class_map: ClassMap) -> tuple[U8, int]:
    """Keep the largest 8-connected component per class; returns (labels, pixels removed)."""
    out = np.asarray(labels, np.uint8).copy()
    removed = 0
    for c in class_map.classes:
        if c.id == 0:
            continue
        m = out == c.id
        if not m.any():
            continue
        comps, n = ndimage.label(m, structure=np.ones((3, 3)))
        if n <= 1:
            continue
        sizes = np.bincount(comps.ravel())[1:]
        keep = int(np.argmax(sizes)) + 1
        drop = m & (comps != keep)
        removed += int(drop.sum())
        out[drop] = 0
    return out, removed


#: Muscles (``SegClass.muscle``) that cannot appear on a level's slice, by level name
#: (anatomy table: ``impossible_at_levels``).
IMPOSSIBLE_AT_LEVEL: dict[str, tuple[str, ...]] = ANATOMY.impossible_at_level()


#: Muscles that arise below the iliac crest (anatomy table: ``below_iliac_crest``).
GLUTEAL: tuple[str, ...] = ANATOMY.below_iliac_crest()
#: Gluteal muscles may reach this far above the top of the iliac crest (mm): gluteus medius
#: arises from the outer ilium just below the crest, gluteus maximus lower still.
GLUTEAL_ABOVE_CREST_MM = 10.0
SPINE_LEVELS = ("T12", "L1", "L2", "L3", "L4", "L5", "S1")


def gluteal_ceiling(level_map: Any, slice_mm: float, n_slices: int) -> int | None:
    """The highest slice index (canonical, k = 0 most inferior) at which gluteal muscles can
    appear, from the level map's pelvic landmarks; ``-1`` = nowhere in this scan; ``None`` =
    unknown (no restriction).

    * iliac crest top found at ``k``: ``k`` + 10 mm;
    * crest missing but a pelvic level (S1, sacroiliac joints, femoral heads) found: the crest
      lies above the scan, so every slice may hold gluteal muscle (no restriction);
    * no pelvis at all while the spine is in the scan (a vertebra found or ambiguous): the scan
      lies above the pelvis, so no slice can hold gluteal muscle (``-1``).
    """
    levels = getattr(level_map, "levels", None)
    if not isinstance(levels, Mapping):
        return None
    crest = levels.get("iliac_crest_top")
    if crest is not None and crest.status == "found" and crest.slice_index is not None:
        margin = int(np.ceil(GLUTEAL_ABOVE_CREST_MM / max(slice_mm, 1e-6)))
        return min(int(crest.slice_index) + margin, n_slices - 1)
    pelvic = ("S1", "sij_lower", "femoral_head_top")
    if any(levels.get(n) is not None and levels[n].status == "found" for n in pelvic):
        return None
    spine = any(levels.get(n) is not None and levels[n].status in ("found", "ambiguous")
                for n in SPINE_LEVELS if n != "S1")
    no_pelvis = all(levels.get(n) is not None and levels[n].status == "missing"
                    for n in ("iliac_crest_top", "sij_lower", "femoral_head_top"))
    if spine and no_pelvis:
        return -1
    return None


def banned_classes(class_map: ClassMap, level: str | None, k: int, ceiling: int | None
                   ) -> list[int]:
    """Class ids that cannot appear on slice ``k`` named ``level``."""
    banned = set(IMPOSSIBLE_AT_LEVEL.get(level or "", ()))
    if ceiling is not None and k > ceiling:
        banned |= set(GLUTEAL)
    return [c.id for c in class_map.classes if c.muscle in banned]


def implausible_removed(labels: npt.NDArray[Any], class_map: ClassMap, level: str | None
                        ) -> tuple[U8, int]:
    """Remove classes impossible at ``level``; returns (labels, pixels removed)."""
    out = np.asarray(labels, np.uint8).copy()
    banned = IMPOSSIBLE_AT_LEVEL.get(level or "", ())
    ids = [c.id for c in class_map.classes if c.muscle in banned]
    m = np.isin(out, ids) if ids else np.zeros(out.shape, bool)
    out[m] = 0
    return out, int(m.sum())


#: Farthest a component of each muscle may lie from the vertebral body's edge on the same slice
#: (mm). Psoas arises from the vertebral bodies and transverse processes; the paraspinal muscles
#: lie in the grooves beside the spinous processes. Generous limits that still reject masks in
#: the arms, the abdominal wall or the bowel.
#: (anatomy table: ``max_mm_from_vertebral_body``)
MAX_MM_FROM_BODY: dict[str, float] = ANATOMY.max_mm_from_vertebral_body()


def far_from_body_removed(labels: npt.NDArray[Any], class_map: ClassMap, spacing_mm: float
                          ) -> tuple[U8, int]:
    """Drop muscle components farther from the vertebral body than :data:`MAX_MM_FROM_BODY`.

    The distance is measured from the largest connected component of the vertebral body
    class. Acts only where that body has at least :data:`MIN_BODY_MM2` (not at pelvic levels
    below the spine). Returns (labels, pixels removed).
    """
    out = np.asarray(labels, np.uint8).copy()
    body = vertebral_body(out, class_map, spacing_mm**2)
    if body is None:
        return out, 0
    dist = ndimage.distance_transform_edt(~body, sampling=(spacing_mm, spacing_mm))
    removed = 0
    for c in class_map.classes:
        limit = MAX_MM_FROM_BODY.get(c.muscle or "")
        if limit is None:
            continue
        m = out == c.id
        if not m.any():
            continue
        comps, n = ndimage.label(m, structure=np.ones((3, 3)))
        nearest = np.full(n + 1, np.inf)
        np.minimum.at(nearest, comps[m], dist[m])  # per component, over its pixels only
        for i in range(1, n + 1):
            if nearest[i] > limit:
                drop = comps == i
                removed += int(drop.sum())
                out[drop] = 0
    return out, removed


#: Levels whose axial slice passes through the sacrum below the lumbar vertebrae: there the
#: labelling rule makes all of autochthon multifidus (rcsa.segment.split, rule 5).
SACRAL_LEVELS = ("S1", "sij_lower", "femoral_head_top")
_SPLIT_CLASSES = ("multifidus_left", "multifidus_right", "erector_spinae_left",
                  "erector_spinae_right")


def split_by_rule(labels: npt.NDArray[Any], class_map: ClassMap, hu: npt.NDArray[Any],
                  spacing_mm: tuple[float, float], level: str | None = None,
                  rule: SplitRule | None = None) -> tuple[U8, int]:
    """Each side's autochthon (multifidus + erector spinae pixels) split again by the rule
    that made the training labels (:func:`rcsa.segment.split.split_autochthon_slice`);
    returns (labels, pixels whose class changed). ``spacing_mm`` = (column, row).

    The rule's inputs as in :func:`rcsa.segment.prepare.convert_labels`, from the prediction:
    the vertebra mask is the predicted vertebral body's largest component (bone is also every
    pixel at >= ``rule.bone_hu``, which holds the posterior elements); the slice counts as
    sacral (all multifidus) at :data:`SACRAL_LEVELS`, never at another named level, and on an
    unnamed slice when no vertebral body of :data:`MIN_BODY_MM2` is predicted. A class map
    without the four classes is returned unchanged.
    """
    out = np.asarray(labels, np.uint8).copy()
    if not all(n in class_map.names for n in _SPLIT_CLASSES):
        return out, 0
    mf_l, mf_r, es_l, es_r = (class_map.id_of(n) for n in _SPLIT_CLASSES)
    left, right = np.isin(out, (mf_l, es_l)), np.isin(out, (mf_r, es_r))
    if not (left.any() or right.any()):
        return out, 0
    body = vertebral_body(out, class_map, spacing_mm[0] * spacing_mm[1])
    vertebra = body if body is not None else np.zeros(out.shape, bool)
    sacral = (level in SACRAL_LEVELS if level in LEVEL_NAMES else body is None)
    new_l, new_r = split_autochthon_slice(np.asarray(hu), left, right, vertebra, sacral,
                                          spacing_mm, rule or SplitRule())
    before = out.copy()
    out[left], out[right] = es_l, es_r
    out[new_l], out[new_r] = mf_l, mf_r
    return out, int((out != before).sum())


def grow_from_core(labels: npt.NDArray[Any], probs: npt.NDArray[Any], hu: npt.NDArray[Any],
                   class_map: ClassMap, classes: tuple[str, ...] = GROWN,
                   low: float = GROW_LOW_P, hu_range: tuple[float, float] = GROW_HU,
                   hu_sd: float = GROW_HU_SD) -> tuple[U8, int]:
    """Each of ``classes`` grown from its arg-max pixels into the background pixels where it
    is the most probable foreground class with probability >= ``low`` and the HU lie in
    ``hu_range`` and within ``hu_sd`` standard deviations of the arg-max pixels' mean HU,
    keeping only what connects (4-connectivity) to the arg-max pixels; returns
    (labels, pixels grown). ``probs``: (classes, rows, columns), id 0 = background, on the
    grid of ``labels``. Pixels of another class are never taken."""
    out = np.asarray(labels, np.uint8).copy()
    probs = np.asarray(probs)
    if probs.shape[1:] != out.shape:
        raise ValueError(f"probabilities {probs.shape[1:]} and labels {out.shape} differ")
    ids = [class_map.id_of(n) for n in classes if n in class_map.names]
    cores = [out == i for i in ids]
    if not any(c.any() for c in cores):
        return out, 0
    hu = np.asarray(hu)
    free = (out == 0) & (hu >= hu_range[0]) & (hu <= hu_range[1])
    best = probs[1:].argmax(0) + 1
    grown = 0
    for cid, core in zip(ids, cores, strict=True):
        if not core.any():
            continue
        core_hu = hu[core].astype(np.float64)
        mu, sd = float(core_hu.mean()), float(core_hu.std())
        cand = (free & (best == cid) & (probs[cid] >= low)
                & (np.abs(hu - mu) <= hu_sd * sd))
        if not cand.any():
            continue
        comps, _n = ndimage.label(core | cand)
        touch = np.unique(comps[core])
        new = cand & np.isin(comps, touch[touch > 0])
        out[new] = cid
        grown += int(new.sum())
    return out, grown


def postprocess(labels: npt.NDArray[Any], class_map: ClassMap, spacing_x_mm: float,
                level: str | None = None, hu: npt.NDArray[Any] | None = None,
                spacing_y_mm: float | None = None, probs: npt.NDArray[Any] | None = None
                ) -> tuple[U8, dict[str, int]]:
    """Plausibility at ``level``, distance to the vertebral body, side consistency, the
    largest component per class and, when ``hu`` is given, the multifidus / erector spinae
    split by the labelling rule and, when ``probs`` (the probabilities the labels are the
    arg-max of) are given too, growth from the core (module docstring; square pixels unless
    ``spacing_y_mm``).

    Works on the bounding box of the labelled pixels: every component, and the vertebral
    body it is measured from, lies inside it, so the result equals that of the whole slice
    (the midline fallbacks that look outside the box, bone in ``hu`` and the image centre,
    are taken on the whole slice)."""
    full = np.asarray(labels, np.uint8)
    out = full.copy()
    rows = np.flatnonzero(full.any(axis=1))
    if rows.size == 0:
        return out, {"components_relabelled_side": 0, "pixels_removed_small": 0,
                     "pixels_removed_implausible_at_level": 0, "pixels_resplit_by_rule": 0,
                     "pixels_grown_from_core": 0}
    cols = np.flatnonzero(full.any(axis=0))
    r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    lab, implausible = implausible_removed(full[r0:r1, c0:c1], class_map, level)
    lab, far = far_from_body_removed(lab, class_map, spacing_x_mm)
    implausible += far
    mid = midline_column(lab, class_map, hu, spacing_x_mm**2, col0=c0, width=full.shape[1])
    lab, relabelled = side_consistency(lab, class_map, spacing_x_mm, midline=mid)
    lab, removed = largest_component(lab, class_map)
    out[r0:r1, c0:c1] = lab
    resplit = grown = 0
    if hu is not None:  # on the whole slice: bone beside the box counts in the rule
        out, resplit = split_by_rule(out, class_map, hu, (spacing_x_mm, spacing_y_mm or
                                                          spacing_x_mm), level)
        if probs is not None:
            out, grown = grow_from_core(out, probs, hu, class_map)
    return out, {"components_relabelled_side": relabelled, "pixels_removed_small": removed,
                 "pixels_removed_implausible_at_level": implausible,
                 "pixels_resplit_by_rule": resplit, "pixels_grown_from_core": grown}
