"""``analyse_spine``: heights, Genant grades and trabecular attenuation of T11-L5."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from rcsa.io.volume import CTVolume
from rcsa.levels.types import LevelMap
from rcsa.spine.body import DENSE_HU, DENSE_MIN_MM3, BodyGeometry, body_frame, measure_body
from rcsa.spine.grade import Heights, grade_vertebra
from rcsa.spine.types import (
    SPINE_VERTEBRAE,
    HeightLine,
    Morphology,
    SpineResult,
    VertebraResult,
)

#: Published attenuation bands of L1 trabecular bone (unenhanced / portal-venous CT, HU),
#: Pickhardt PJ et al., Ann Intern Med 2013;158:588-595: <= 110 HU was 90 % specific for
#: DXA osteoporosis, >= 160 HU 90 % sensitive for its absence (normal BMD or osteopenia).
#: Reported as bands the value falls in, never as a diagnosis; calibrated on L1 only.
PICKHARDT_L1_BANDS_HU: tuple[float, float] = (110.0, 160.0)
#: Order in which the screening vertebra is chosen (L1 first, the common opportunistic site).
SCREENING_ORDER: tuple[str, ...] = ("L1", "L2", "T12", "L3", "L4", "T11", "L5")
#: T11 is not a level of the level map; it is named only when its disc-to-disc height is
#: within this ratio of T12's (a missed or extra disc above T12 would otherwise name a
#: merged or split piece T11).
T11_HEIGHT_RATIO = (0.75, 1.25)
#: Level-map reasons that mean the count itself is in doubt (a crushed vertebra merges with
#: its neighbour when its disc is missed), as opposed to a vertebra cut by the scan edge.
COUNT_PROBLEMS: tuple[str, ...] = ("abnormal height", "disagree")
#: Fewest ROI voxels for an attenuation figure.
MIN_ROI_VOXELS = 8


def attenuation_band(hu: float, vertebra: str) -> str:
    """The Pickhardt 2013 L1 band the value falls in (a band, not a diagnosis)."""
    lo, hi = PICKHARDT_L1_BANDS_HU
    where = "" if vertebra == "L1" else f" (L1 bands applied to {vertebra})"
    if hu <= lo:
        return f"<= {lo:.0f} HU: band where osteoporosis is likely (Pickhardt 2013){where}"
    if hu < hi:
        return f"{lo:.0f}-{hi:.0f} HU: indeterminate band (Pickhardt 2013){where}"
    return f">= {hi:.0f} HU: band where osteoporosis is unlikely (Pickhardt 2013){where}"


def _windows(lm: LevelMap) -> dict[str, tuple[str, str, dict[str, Any] | None]]:
    """Per vertebra: (status, reason, segment) from the level map; segment only if usable."""
    diag = lm.diagnostics or {}
    segs: list[dict[str, Any]] = list(diag.get("segments", []))
    out: dict[str, tuple[str, str, dict[str, Any] | None]] = {}
    for v in SPINE_VERTEBRAE:
        lv = lm.get(v)
        mine = [s for s in segs if s.get("names") == [v]]
        if lv is None:  # T11: not a level of the map; named by the same count
            t12 = lm.get("T12")
            if not mine:
                maybe = [s for s in segs if v in s.get("names", [])]
                out[v] = (("ambiguous", "the count of the vertebrae does not pin T11", None)
                          if maybe else ("missing", "outside the scan or not counted", None))
                continue
            if t12 is None or not t12.found:
                out[v] = ("ambiguous", "T12 is not found, so T11 is not named safely", None)
                continue
            seg = mine[0]
            if not seg.get("complete"):
                out[v] = ("not_measurable", "cut by the edge of the scan (a disc is outside "
                          "the tracked column)", None)
                continue
            t12seg = [s for s in segs if s.get("names") == ["T12"]]
            if t12seg:
                ratio = (seg["z_hi"] - seg["z_lo"]) / max(1e-6, t12seg[0]["z_hi"]
                                                          - t12seg[0]["z_lo"])
                if not T11_HEIGHT_RATIO[0] <= ratio <= T11_HEIGHT_RATIO[1]:
                    out[v] = ("ambiguous", f"T11's disc-to-disc height is {ratio:.2f} x "
                              "T12's: a disc may be missed or extra, so it is not named", None)
                    continue
            out[v] = ("ok", "", seg)
            continue
        if lv.status == "missing":
            out[v] = ("missing", lv.reason or "outside the scan", None)
            continue
        if lv.status == "ambiguous":
            cut = "edge of the scan" in lv.reason
            out[v] = ("not_measurable" if cut and "named by the count" in lv.reason
                      else "ambiguous", f"level {lv.status}: {lv.reason}", None)
            continue
        if lv.method == "manual":
            near = [s for s in segs if v in s.get("names", []) and s.get("complete")
                    and lv.z_mm is not None and s["z_lo"] <= lv.z_mm <= s["z_hi"]]
            if not near:
                out[v] = ("not_measurable", "the level was set by hand and its discs are not "
                          "known", None)
                continue
            mine = near
        if not mine:
            out[v] = ("not_measurable", "no vertebra between two discs matches the level", None)
            continue
        seg = mine[0]
        if not seg.get("complete"):
            out[v] = ("not_measurable", "cut by the edge of the scan (a disc is outside the "
                      "tracked column)", None)
            continue
        out[v] = ("ok", "", seg)
    return out


def analyse_spine(ct: CTVolume, lm: LevelMap) -> SpineResult:
    """Measure every vertebra T11-L5 that the level map names safely (``docs/spine.md``).

    Vertebrae that are ambiguous in the level map are reported ``ambiguous`` and never graded;
    vertebrae cut by the scan edge or holding cement / metal are ``not_measurable`` with the
    reason.
    """
    cl = (lm.diagnostics or {}).get("centreline")
    wins = _windows(lm)
    zs = ct.z_mm()
    z_bottom, z_top = float(zs.min()), float(zs.max())
    raw: dict[str, VertebraResult] = {}
    geoms: dict[str, BodyGeometry] = {}
    for v in SPINE_VERTEBRAE:
        status, reason, seg = wins[v]
        if seg is None or not cl or len(cl.get("k", [])) < 2:
            if seg is not None:
                status, reason = "not_measurable", "no spine centre line"
            raw[v] = VertebraResult(v, status, reason)  # type: ignore[arg-type]
            continue
        z_lo, z_hi = float(seg["z_lo"]), float(seg["z_hi"])
        f = body_frame(ct, cl, z_lo, z_hi)
        zc = 0.5 * (z_lo + z_hi)
        g = measure_body(ct, f, (z_lo - zc) / f.uz, (z_hi - zc) / f.uz)
        geoms[v] = g
        mid = round(f.kc)
        if g.dense_mm3 >= DENSE_MIN_MM3:
            raw[v] = VertebraResult(
                v, "not_measurable",
                f"dense material inside the body ({g.dense_mm3:.0f} mm3 above "
                f"{DENSE_HU:.0f} HU, max {g.dense_max_hu:.0f} HU): cement (previous "
                "augmentation) or metal; heights and attenuation not measured",
                dense_material_mm3=g.dense_mm3, mid_slice=mid)
            continue
        if g.reason:
            raw[v] = VertebraResult(v, "not_measurable", g.reason,
                                    dense_material_mm3=g.dense_mm3, mid_slice=mid)
            continue
        hs = g.heights()
        assert hs is not None and g.depth_mm is not None
        lines = []
        for name, (b, lo, hi) in zip(("anterior", "middle", "posterior"), g.lines, strict=True):
            k0, j0, i0 = f.to_kji(lo, b, g.x_centre)
            k1, j1, i1 = f.to_kji(hi, b, g.x_centre)
            lines.append(HeightLine(name, (float(k0), float(j0), float(i0)),  # type: ignore[arg-type]
                                    (float(k1), float(j1), float(i1)), hi - lo))
        # the body must lie inside the scan with a slice to spare
        kz = [ln.inferior_kji[0] for ln in lines] + [ln.superior_kji[0] for ln in lines]
        z_ends = np.interp(kz, np.arange(len(zs)), zs)
        if z_ends.min() < z_bottom + 0.5 * f.sz or z_ends.max() > z_top - 0.5 * f.sz:
            raw[v] = VertebraResult(v, "not_measurable", "the body reaches the edge of the "
                                    "scan (cut)", mid_slice=mid)
            continue
        roi_ok = g.roi_n >= MIN_ROI_VOXELS and g.roi_mean_hu is not None
        rc = None
        if g.roi_centre is not None:
            kr, jr, ir = f.to_kji(g.roi_centre[0], g.roi_centre[1], g.x_centre)
            rc = (float(kr), float(jr), float(ir))
        raw[v] = VertebraResult(
            v, "measured", "",
            height_anterior_mm=hs[0], height_middle_mm=hs[1], height_posterior_mm=hs[2],
            depth_mm=g.depth_mm, width_mm=g.width_mm,
            ratio_anterior_posterior=hs[0] / hs[2], ratio_middle_posterior=hs[1] / hs[2],
            trabecular_hu=g.roi_mean_hu if roi_ok else None,
            trabecular_hu_sd=g.roi_sd_hu if roi_ok else None,
            trabecular_roi_mm3=g.roi_mm3 if roi_ok else None,
            trabecular_n_voxels=g.roi_n,
            attenuation_band=attenuation_band(g.roi_mean_hu, v)  # type: ignore[arg-type]
            if roi_ok else None,
            dense_material_mm3=g.dense_mm3, mid_slice=mid, lines=tuple(lines),
            roi_centre_kji=rc, axis_kj=(f.uz, f.uy),
        )
    graded = _grade_all(raw)
    bone_v = next((v for v in SCREENING_ORDER
                   if graded[v].measured and graded[v].trabecular_hu is not None), None)
    hu = graded[bone_v].trabecular_hu if bone_v else None
    warnings = []
    dense = [v for v in SPINE_VERTEBRAE if graded[v].dense_material_mm3 >= DENSE_MIN_MM3]
    if dense:
        warnings.append("cement or metal in the vertebral body of " + ", ".join(dense)
                        + " (previous augmentation?): not measured")
    unnamed = [v for v in SPINE_VERTEBRAE if graded[v].status == "ambiguous"
               and any(w in graded[v].reason for w in COUNT_PROBLEMS)]
    if unnamed:
        warnings.append(
            f"{', '.join(unnamed)} not named safely (the vertebral count is in doubt): a "
            "severely compressed vertebra can cause this (its disc is then missed); these "
            "vertebrae are not graded and the fracture count may be too low: review the "
            "sagittal sheet")
    return SpineResult(
        graded, hu, bone_v,
        attenuation_band(hu, bone_v) if hu is not None and bone_v else None,
        tuple(warnings),
    )


def _grade_all(raw: dict[str, VertebraResult]) -> dict[str, VertebraResult]:
    out: dict[str, VertebraResult] = {}
    names = list(SPINE_VERTEBRAE)
    heights: dict[str, Heights] = {}
    for v, r in raw.items():
        if r.measured:
            assert (r.height_anterior_mm is not None and r.height_middle_mm is not None
                    and r.height_posterior_mm is not None)
            heights[v] = Heights(r.height_anterior_mm, r.height_middle_mm, r.height_posterior_mm)
    # the neighbour below L5 is S1 (not graded, not a reference); above T11 is T10 (not
    # analysed). Pass 1 with every measured neighbour; pass 2 without those graded >= 1.
    types: dict[str, Morphology] = {}
    for _pass in range(2):
        for n, v in enumerate(names):
            r = raw[v]
            if v not in heights:
                out[v] = replace(r, grade_reason="not graded: " + (r.reason or r.status))
                continue
            nb = [names[m] for m in (n - 1, n + 1) if 0 <= m < len(names) and names[m] in heights]
            g = grade_vertebra(heights[v], [heights[x] for x in nb],
                               [types.get(x, "normal") for x in nb])
            out[v] = replace(
                r, ratio_anterior_neighbours=g.ratio_anterior_neighbours,
                ratio_middle_neighbours=g.ratio_middle_neighbours,
                ratio_posterior_neighbours=g.ratio_posterior_neighbours,
                reduction_wedge_pct=g.wedge_pct, reduction_biconcave_pct=g.biconcave_pct,
                reduction_crush_pct=g.crush_pct, height_reduction_pct=g.reduction_pct,
                genant_grade=g.grade, morphology=g.morphology, grade_reason=g.note,
            )
        types = {v: r.morphology for v, r in out.items() if r.fractured and r.morphology}
    return out
