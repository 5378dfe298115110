"""From per-level label slices to the long measurement table and its wide feature-row view.

The long table (:class:`Measurements`) is the one computation; the wide row
(:meth:`Measurements.wide_row`) is a view of it with a fixed, documented set of columns
(:func:`wide_columns`) so that rows of many scans concatenate. Absent values are ``None``
with a reason, never 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rcsa import __version__
from rcsa.anatomy import ANATOMY
from rcsa.config import RcsaConfig, load_config
from rcsa.errors import InputError
from rcsa.io.volume import CTVolume
from rcsa.levels.types import VERTEBRAE, LevelMap
from rcsa.measure.plausibility import flag_rows
from rcsa.measure.stats import RegionStats, pooled, region_stats, touches_border
from rcsa.measure.types import LevelLabels as LevelLabels  # re-exported
from rcsa.measure.types import Measurement as Measurement  # re-exported

#: Muscles in the order of the wide table (the muscle rows of :data:`rcsa.anatomy.ANATOMY`).
MUSCLES: tuple[str, ...] = ANATOMY.muscles()
SIDES: tuple[str, ...] = ("left", "right", "both")
#: Quantities per muscle and side, with units.
QUANTITIES: dict[str, str] = {
    "csa_mm2": "mm2",
    "lean_csa_mm2": "mm2",
    "mean_hu": "HU",
    "sd_hu": "HU",
    "fat_pct": "%",
    "rcsa": "",  # unit depends on the normaliser (see RCSA_UNITS)
}
BOTH_ONLY: dict[str, str] = {"asymmetry_pct": "%"}
#: Per muscle and side (not both): the segmentation's confidence (0..1) and whether it is
#: below the model's review threshold (docs/segment.md, "Confidence").
#: ``seg_needs_review`` is 1.0 (needs review) or 0.0, a number like every other value of the
#: long table.
SEG_QUANTITIES: dict[str, str] = {"seg_confidence": "", "seg_needs_review": "1 = yes"}
BODY_QUANTITIES: dict[str, str] = {"csa_mm2": "mm2", "mean_hu": "HU"}
RCSA_UNITS = {"vertebral_body": "ratio", "height2": "mm2/m2", "none": ""}
VERTEBRAL_BODY = "vertebral_body"


def targets(config: RcsaConfig) -> list[tuple[str, str]]:
    """(muscle, level) pairs measured, in wide-table order."""
    avail = config.levels.available
    return [(m, lv) for m in MUSCLES for lv in avail.get(m, ())]


def body_levels(config: RcsaConfig) -> list[str]:
    """Vertebral levels whose body CSA is reported (muscle levels + the reference vertebra)."""
    levels = {lv for _, lv in targets(config) if lv in VERTEBRAE}
    levels.add(config.levels.reference_vertebra)
    return [v for v in VERTEBRAE if v in levels]


def level_names(config: RcsaConfig) -> list[str]:
    seen: list[str] = []
    for _, lv in targets(config):
        if lv not in seen:
            seen.append(lv)
    for lv in body_levels(config):
        if lv not in seen:
            seen.append(lv)
    return seen


def wide_columns(config: RcsaConfig | None = None) -> list[str]:
    """Every column of the wide feature row, in order (the same for every scan)."""
    cfg = config or load_config()
    cols = ["scan_id", "rcsa_version", "segmentation_source", "rcsa_normaliser", "height_m"]
    for lv in level_names(cfg):
        cols += [f"{lv}_level_status", f"{lv}_slice_index", f"{lv}_z_mm", f"{lv}_level_method"]
    for m, lv in targets(cfg):
        for side in SIDES:
            for q in QUANTITIES:
                cols.append(f"{lv}_{m}_{side}_{q}")
            if side != "both":
                cols += [f"{lv}_{m}_{side}_{q}" for q in SEG_QUANTITIES]
            if side == "both":
                cols += [f"{lv}_{m}_both_{q}" for q in BOTH_ONLY]
        cols += [f"{lv}_{m}_flags", f"{lv}_{m}_reason"]
    for lv in body_levels(cfg):
        cols += [f"{lv}_{VERTEBRAL_BODY}_{q}" for q in BODY_QUANTITIES]
        cols += [f"{lv}_{VERTEBRAL_BODY}_flags", f"{lv}_{VERTEBRAL_BODY}_reason"]
    return cols


@dataclass(frozen=True)
class Measurements:
    """The long table of one scan plus what is needed to read it."""

    scan_id: str
    rows: tuple[Measurement, ...]
    level_map: LevelMap
    config: RcsaConfig
    segmentation_source: str = ""
    height_m: float | None = None
    warnings: tuple[str, ...] = field(default=())

    def value(self, level: str, structure: str, side: str, quantity: str) -> float | None:
        for r in self.rows:
            if (r.level, r.structure, r.side, r.quantity) == (level, structure, side, quantity):
                return r.value
        raise KeyError((level, structure, side, quantity))

    def long_records(self) -> list[dict[str, Any]]:
        return [{"scan_id": self.scan_id, **r.to_dict()} for r in self.rows]

    def wide_row(self) -> dict[str, Any]:
        """The one-row feature view; keys are exactly :func:`wide_columns`."""
        cfg = self.config
        row: dict[str, Any] = dict.fromkeys(wide_columns(cfg))
        row.update(
            scan_id=self.scan_id,
            rcsa_version=__version__,
            segmentation_source=self.segmentation_source,
            rcsa_normaliser=normaliser_description(cfg),
            height_m=self.height_m,
        )
        for lv in level_names(cfg):
            level = self.level_map.levels.get(lv)
            row[f"{lv}_level_status"] = level.status if level else "missing"
            if level is not None and level.found:
                row[f"{lv}_slice_index"] = level.slice_index
                row[f"{lv}_z_mm"] = level.z_mm
                row[f"{lv}_level_method"] = level.method
        reasons: dict[str, str] = {}
        flags: dict[str, list[str]] = {}
        for r in self.rows:
            if r.structure == VERTEBRAL_BODY:
                row[f"{r.level}_{VERTEBRAL_BODY}_{r.quantity}"] = r.value
                if r.reason:
                    reasons[f"{r.level}_{VERTEBRAL_BODY}_reason"] = r.reason
                if r.flag and r.flag not in flags.setdefault(
                        f"{r.level}_{VERTEBRAL_BODY}_flags", []):
                    flags[f"{r.level}_{VERTEBRAL_BODY}_flags"].append(r.flag)
                continue
            row[f"{r.level}_{r.structure}_{r.side}_{r.quantity}"] = r.value
            key = f"{r.level}_{r.structure}"
            if r.reason and r.value is None:
                text = f"{r.side} {r.quantity}: {r.reason}" if r.side != "both" else r.reason
                reasons.setdefault(f"{key}_reason", text)
            if r.flag and r.flag not in flags.setdefault(f"{key}_flags", []):
                flags[f"{key}_flags"].append(r.flag)
        row.update(reasons)
        row.update({k: "; ".join(v) for k, v in flags.items() if v})
        return row


def normaliser_description(config: RcsaConfig) -> str:
    n = config.measure.normaliser
    if n == "vertebral_body":
        return (
            "vertebral body CSA at the same level; at pelvic levels the body CSA of "
            f"{config.levels.reference_vertebra}"
        )
    if n == "height2":
        return "height squared (mm2/m2)"
    return "none"


def _level_problem(level_map: LevelMap, labels: Mapping[str, LevelLabels], lv: str) -> str:
    level = level_map.levels.get(lv)
    if level is None:
        return f"level {lv} not determined"
    if not level.found:
        return f"level {lv} {level.status}" + (f": {level.reason}" if level.reason else "")
    if lv not in labels:
        return f"level {lv} not segmented"
    return ""


def _stats_rows(
    lv: str, structure: str, side: str, st: RegionStats | None, reason: str, flag: str
) -> list[Measurement]:
    rows = []
    for q, unit in QUANTITIES.items():
        if q == "rcsa":
            continue
        value: float | None = None
        if st is not None and st.n_pixels > 0:
            value = float(getattr(st, q))
        rows.append(Measurement(lv, structure, side, q, value, unit, flag,
                                reason if value is None else ""))
    return rows


def _seg_rows(ll: LevelLabels | None, lv: str, muscle: str, side: str, problem: str
              ) -> list[Measurement]:
    """``seg_confidence`` and ``seg_needs_review`` of one muscle side (None with a reason
    when the labels carry no confidence)."""
    name = f"{muscle}_{side}"
    conf = ll.seg_confidence.get(name) if ll is not None else None
    if conf is None:
        reason = problem or ("no segmentation confidence for these labels" if ll is None
                             or not ll.seg_confidence else f"{name} not segmented")
        return [Measurement(lv, muscle, side, q, None, u, reason=reason)
                for q, u in SEG_QUANTITIES.items()]
    below = ll.needs_review_below if ll is not None else None
    review = None if below is None else float(conf < below)
    return [Measurement(lv, muscle, side, "seg_confidence", float(conf), ""),
            Measurement(lv, muscle, side, "seg_needs_review", review, "1 = yes",
                        reason="" if review is not None else "no review threshold")]


#: Heights (m) accepted for the height^2 normaliser (``--height-m``): exclusive bounds.
HEIGHT_M_RANGE: tuple[float, float] = (0.5, 2.8)


def check_height_m(height_m: float | None) -> None:
    """Refuse a ``--height-m`` outside :data:`HEIGHT_M_RANGE` (an :class:`InputError`)."""
    lo, hi = HEIGHT_M_RANGE
    if height_m is not None and not lo < height_m < hi:
        raise InputError(f"--height-m {height_m}: not a plausible adult height in metres "
                         f"(expected {lo:g}-{hi:g})")


def measure(
    ct: CTVolume,
    level_map: LevelMap,
    labels: Mapping[str, LevelLabels],
    config: RcsaConfig | None = None,
    *,
    scan_id: str = "",
    height_m: float | None = None,
    segmentation_source: str = "",
) -> Measurements:
    """Measure every configured muscle / level / side and the vertebral bodies.

    ``labels`` maps level name to that level's class labels (from rcsa's model or from an
    existing label volume); the HU come from ``ct`` at the same slice.
    """
    cfg = config or load_config()
    mc = cfg.measure
    check_height_m(height_m)
    rows: list[Measurement] = []

    # vertebral bodies first: they are the default normaliser
    body_csa: dict[str, float | None] = {}
    body_reason: dict[str, str] = {}
    for lv in body_levels(cfg):
        problem = _level_problem(level_map, labels, lv)
        st: RegionStats | None = None
        if not problem:
            ll = labels[lv]
            hu = ct.voxels[ll.slice_index]
            names = ll.class_map.names
            cid = ll.class_map.id_of(VERTEBRAL_BODY) if VERTEBRAL_BODY in names else None
            if cid is None:
                problem = "no vertebral body class in the segmentation"
            else:
                st = region_stats(hu, ll.labels == cid, _spacing(ct), mc.lean_hu, mc.fat_hu)
                if st.n_pixels == 0:
                    problem = (
                        f"no vertebral body pixels on the {lv} slice (not segmented; for "
                        "TotalSegmentator labels pass --body-parts)"
                    )
        body_csa[lv] = st.csa_mm2 if st is not None and not problem else None
        body_reason[lv] = problem
        rows.append(Measurement(lv, VERTEBRAL_BODY, "", "csa_mm2", body_csa[lv], "mm2",
                                reason=problem))
        rows.append(Measurement(lv, VERTEBRAL_BODY, "", "mean_hu",
                                st.mean_hu if st is not None and not problem else None, "HU",
                                reason=problem))

    for muscle, lv in targets(cfg):
        problem = _level_problem(level_map, labels, lv)
        side_stats: dict[str, RegionStats | None] = {"left": None, "right": None}
        side_reason = {"left": problem, "right": problem}
        side_flag = {"left": "", "right": ""}
        if not problem:
            ll = labels[lv]
            hu = ct.voxels[ll.slice_index]
            for side in ("left", "right"):
                name = f"{muscle}_{side}"
                if name not in ll.class_map.names:
                    side_reason[side] = f"{name} is not a class of the segmentation"
                    continue
                mask = ll.labels == ll.class_map.id_of(name)
                st = region_stats(hu, mask, _spacing(ct), mc.lean_hu, mc.fat_hu)
                side_stats[side] = st
                if st.n_pixels == 0:
                    side_reason[side] = (
                        f"no {muscle} ({side}) on the {lv} slice: outside the field of view or "
                        "not segmented"
                    )
                elif touches_border(mask):
                    side_flag[side] = "touches the image edge: may be cut by the field of view"
        for side in ("left", "right"):
            rows += _stats_rows(lv, muscle, side, side_stats[side], side_reason[side],
                                side_flag[side])
            rows += _seg_rows(labels.get(lv) if not problem else None, lv, muscle, side,
                              problem)
        left, right = side_stats["left"], side_stats["right"]
        both_ok = left is not None and right is not None and left.n_pixels and right.n_pixels
        both = pooled(left, right) if both_ok and left and right else None
        both_reason = "" if both is not None else (problem or "one or both sides missing")
        flag_both = "; ".join(f for f in (side_flag["left"], side_flag["right"]) if f)
        rows += _stats_rows(lv, muscle, "both", both, both_reason, flag_both)
        asym: float | None = None
        if both is not None and left is not None and right is not None:
            asym = 100.0 * (left.csa_mm2 - right.csa_mm2) / ((left.csa_mm2 + right.csa_mm2) / 2)
        rows.append(Measurement(lv, muscle, "both", "asymmetry_pct", asym, "%",
                                reason="" if asym is not None else both_reason))
        # rCSA per side and both
        norm_value, norm_text, norm_problem = _normaliser(cfg, lv, body_csa, body_reason, height_m)
        for side, st in (("left", left), ("right", right), ("both", both)):
            csa = st.csa_mm2 if st is not None and st.n_pixels else None
            value = None
            reason = side_reason.get(side, both_reason) if csa is None else norm_problem
            if csa is not None and norm_value is not None:
                value = csa / norm_value
            rows.append(Measurement(lv, muscle, side, "rcsa", value,
                                    RCSA_UNITS[cfg.measure.normaliser],
                                    reason="" if value is not None else reason,
                                    normaliser=norm_text))
    rows += _other_structures(ct, labels, cfg)
    return Measurements(
        scan_id=scan_id,
        rows=flag_rows(rows),
        level_map=level_map,
        config=cfg,
        segmentation_source=segmentation_source,
        height_m=height_m,
        warnings=level_map.warnings,
    )


def _other_structures(
    ct: CTVolume, labels: Mapping[str, LevelLabels], cfg: RcsaConfig
) -> list[Measurement]:
    """Classes that are neither a configured muscle side nor the vertebral body (e.g. the
    Alberta protocol's all-muscle label of a TAG file): long table only, where present."""
    known = {f"{m}_{s}" for m in MUSCLES for s in ("left", "right")} | {VERTEBRAL_BODY}
    rows: list[Measurement] = []
    mc = cfg.measure
    for lv, ll in labels.items():
        hu = ct.voxels[ll.slice_index]
        for c in ll.class_map.classes:
            if c.id == 0 or c.name in known or c.name == "background":
                continue
            st = region_stats(hu, ll.labels == c.id, _spacing(ct), mc.lean_hu, mc.fat_hu)
            if st.n_pixels:
                rows += _stats_rows(lv, c.name, c.side or "both", st, "", "")
    return rows


def _spacing(ct: CTVolume) -> tuple[float, float]:
    return float(ct.spacing_mm[0]), float(ct.spacing_mm[1])


def _normaliser(
    cfg: RcsaConfig,
    level: str,
    body_csa: Mapping[str, float | None],
    body_reason: Mapping[str, str],
    height_m: float | None,
) -> tuple[float | None, str, str]:
    """(value, description, reason when unavailable)."""
    kind = cfg.measure.normaliser
    if kind == "none":
        return None, "none", "no normaliser configured (measure.normaliser = none)"
    if kind == "height2":
        if height_m is None:
            return None, "height^2", "height not given"
        return height_m**2, f"height^2 = {height_m:.3f}^2 m2", ""
    ref = level if level in VERTEBRAE else cfg.levels.reference_vertebra
    value = body_csa.get(ref)
    if value is None or not math.isfinite(value) or value <= 0:
        return None, f"{ref} vertebral body CSA", (
            f"normaliser unavailable: {ref} vertebral body CSA missing"
            + (f" ({body_reason[ref]})" if body_reason.get(ref) else "")
        )
    return value, f"{ref} vertebral body CSA {value:.1f} mm2", ""
