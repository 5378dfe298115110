"""Name the vertebrae and pelvic landmarks of a CT scan (rules in ``docs/levels.md``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from rcsa.io.volume import CTVolume
from rcsa.levels.override import LevelOverride, apply_overrides
from rcsa.levels.spine import (
    ArcProfile,
    Disc,
    LateralBone,
    SpineTrack,
    WorkGrid,
    arc_profile,
    body_z_extent,
    find_discs,
    lateral_bones,
    track_spine,
    work_grid,
)
from rcsa.levels.types import LEVEL_NAMES, PELVIC_LEVELS, VERTEBRAE, Level, LevelMap

#: Position of each vertebra counted upwards from S1 (0) along the column.
POSITION = {"S1": 0, "L5": 1, "L4": 2, "L3": 3, "L2": 4, "L1": 5, "T12": 6, "T11": 7}
#: Ilium: a lateral component this large (cm^3 on the working grid) is a pelvic bone, not a rib.
ILIUM_MIN_CM3 = 35.0


@dataclass
class Segment:
    """One vertebra between two discs (or a disc and the end of the tracked column)."""

    s_lo: float
    s_hi: float
    closed_lo: bool
    closed_hi: bool
    z_lo: float = 0.0
    z_hi: float = 0.0
    mid_z: float | None = None  # None: mid-body not in the scan
    endplate_z: float | None = None
    estimated: bool = False
    rib: bool = False
    sacral: bool = False
    sacral_anchor: bool = False
    mostly_visible: bool = False  # complete, or >= 75 % of the expected body height in view
    notes: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.closed_lo and self.closed_hi

    @property
    def length(self) -> float:
        return self.s_hi - self.s_lo


def _z_at(p: ArcProfile, s: float) -> float:
    return float(np.interp(s, p.s, p.z))


def _endplate(p: ArcProfile, s_disc: float) -> float:
    """Superior endplate of the vertebra below a disc: densest point 1-12 mm below it."""
    sel = (p.s >= s_disc - 12.0) & (p.s <= s_disc - 1.0)
    if not sel.any():
        return _z_at(p, s_disc - 4.0)
    idx = np.nonzero(sel)[0]
    return float(p.z[idx[int(np.argmax(p.hu[idx]))]])


def _segments(g: WorkGrid, p: ArcProfile, discs: list[float]) -> list[Segment]:
    bounds = [float(p.s[0]), *discs, float(p.s[-1])]
    segs: list[Segment] = []
    for a in range(len(bounds) - 1):
        seg = Segment(bounds[a], bounds[a + 1], a > 0, a < len(bounds) - 2)
        seg.z_lo, seg.z_hi = _z_at(p, seg.s_lo), _z_at(p, seg.s_hi)
        segs.append(seg)
    # drop slivers at the ends of the tracked column
    while segs and not segs[0].closed_lo and segs[0].length < 6.0:
        segs.pop(0)
        if segs:
            segs[0].closed_lo = False
    while segs and not segs[-1].closed_hi and segs[-1].length < 6.0:
        segs.pop()
        if segs:
            segs[-1].closed_hi = False
    complete = [s.length for s in segs if s.complete]
    typical = float(np.median(complete)) if complete else 34.0
    for n, seg in enumerate(segs):
        seg.mostly_visible = seg.complete or seg.length >= 0.75 * typical
        if seg.complete:
            ext = body_z_extent(g, p, seg.s_lo, seg.s_hi)
            seg.mid_z = 0.5 * (ext[0] + ext[1]) if ext else _z_at(p, 0.5 * (seg.s_lo + seg.s_hi))
            seg.endplate_z = _endplate(p, seg.s_hi)
            continue
        seg.estimated = True
        neighbour = segs[n + 1] if n + 1 < len(segs) and seg is segs[0] else (
            segs[n - 1] if n > 0 else None
        )
        est = neighbour.length if neighbour is not None and neighbour.complete else typical
        if seg.closed_hi and not seg.closed_lo:  # bottom piece: only its upper disc is seen
            mid_s = seg.s_hi - 0.5 * est
            if mid_s >= seg.s_lo:
                seg.mid_z = _z_at(p, mid_s)
            seg.endplate_z = _endplate(p, seg.s_hi)
        elif seg.closed_lo and not seg.closed_hi:  # top piece: only its lower disc is seen
            mid_s = seg.s_lo + 0.45 * est  # vertebrae shrink going up
            if mid_s <= seg.s_hi:
                seg.mid_z = _z_at(p, mid_s)
            # mostly visible body: use the middle of what is seen, as a reader would
            ext = body_z_extent(g, p, seg.s_lo, seg.s_hi + 50.0)
            expected = 0.9 * est - 5.0
            if ext is not None and ext[1] - ext[0] >= 0.75 * expected:
                seg.mid_z = 0.5 * (ext[0] + ext[1])
            top = seg.s_lo + est - 3.0
            seg.endplate_z = _z_at(p, top) if top <= seg.s_hi else None
    return segs


def _classify(
    segs: list[Segment], bones: list[LateralBone], g: WorkGrid, p: ArcProfile
) -> None:
    lowest_z = segs[0].z_hi if segs else -np.inf
    for b in bones:
        if b.kind != "rib":
            continue
        z_extent = (b.k_hi - b.k_lo + 1) * g.sz
        plate = b.volume_cm3 >= 5.0 and b.volume_cm3 / z_extent >= 0.25  # ribs are thin
        if plate or (
            b.volume_cm3 >= ILIUM_MIN_CM3 and (b.contact_k or g.z_mm[b.k_lo] < lowest_z)
        ):
            b.kind = "ilium"
    for _n, seg in enumerate(segs):
        lo = -np.inf if not seg.closed_lo else seg.z_lo
        hi = np.inf if not seg.closed_hi else seg.z_hi
        seg.rib = any(b.kind == "rib" and lo <= b.head_z < hi for b in bones)
        contact = sorted({k for b in bones if b.kind == "ilium" for k in b.contact_k})
        zc = g.z_mm[np.asarray(contact, dtype=np.int64)] if contact else np.array([])
        inside = zc[(zc >= lo) & (zc < hi)]
        seg.sacral = len(inside) >= 2
        # the sacrum articulates with the ilia over >= 15 mm; a lumbar transverse process
        # touching the ilium (or a crop through S1) gives a shorter contact
        seg.sacral_anchor = len(inside) >= 3 and float(inside.max() - inside.min()) >= 15.0
    for seg in segs[1:]:
        seg.sacral_anchor = False
    if segs and segs[0].sacral_anchor and not segs[0].closed_lo and segs[0].closed_hi:
        segs[0].sacral_anchor = segs[0].length >= 20.0
        if segs[0].sacral_anchor:  # S1: body below the L5/S1 disc, about 0.7 of L5's length
            above = segs[1].length if len(segs) > 1 and segs[1].complete else 34.0
            segs[0].mid_z = _z_at(p, max(segs[0].s_lo, segs[0].s_hi - 0.35 * above))


def _valid_offsets(segs: list[Segment], use_ribs: bool, use_sacrum: bool) -> list[int]:
    out: list[int] = []
    for o in range(-len(segs), 30):
        ok = True
        for i, seg in enumerate(segs):
            pos = o + i
            if (
                pos < 0
                or (use_sacrum and seg.sacral_anchor and pos != 0)
                or (use_sacrum and seg.sacral and pos > 1)
                or (use_sacrum and seg.mostly_visible and not seg.sacral and pos == 0)
                or (use_ribs and seg.rib and pos < POSITION["T12"])
                or (use_ribs and seg.mostly_visible and not seg.rib and pos > POSITION["L1"])
            ):
                ok = False
            if not ok:
                break
        if ok:
            out.append(o)
    return out


def _drop_sacral_remnants(
    discs: list[Disc], bones: list[LateralBone], p: ArcProfile, g: WorkGrid
) -> list[Disc]:
    """Drop weak 'discs' at the bottom that lie within the sacroiliac joints: remnants of the
    fused S1/S2 (S2/S3) discs inside the sacrum, not the L5/S1 disc."""
    contact = [k for b in bones if b.volume_cm3 >= ILIUM_MIN_CM3 for k in b.contact_k]
    if not contact or len(discs) < 3:
        return discs
    z_hi = float(g.z_mm[max(contact)])
    out = list(discs)
    while len(out) >= 3:
        med = float(np.median([d.strength for d in out]))
        z = _z_at(p, out[0].s)
        if out[0].strength < 0.6 * med and z <= z_hi:
            out.pop(0)
        else:
            break
    return out


def _slice_of(ct: CTVolume, z: float) -> int:
    return int(np.argmin(np.abs(ct.z_mm() - z)))


@dataclass
class _Count:
    offsets: list[int]
    method: str
    confidence: float
    warnings: list[str]
    reason: str = ""


def _count(segs: list[Segment]) -> _Count:
    has_rib_anchor = any(s.rib for s in segs) and any(
        s.complete and not s.rib for s in segs
    )
    has_sacrum = any(s.sacral_anchor for s in segs)
    warnings: list[str] = []
    both = _valid_offsets(segs, True, True)
    if has_sacrum and has_rib_anchor:
        if both:
            return _Count(both, "disc count from the sacrum, confirmed by the last rib", 0.95, [])
        o_s = _valid_offsets(segs, False, True)
        ribs = [i for i, s in enumerate(segs) if s.rib]
        n_lumbar = min(ribs) - 1 if ribs else -1
        warnings.append(
            f"transitional anatomy suspected: {n_lumbar} rib-free (lumbar-type) vertebrae "
            "between the sacrum and the last rib-bearing vertebra (expected 5; lumbarised S1 / "
            "sacralised L5 / rib anomaly); levels counted from the sacrum"
        )
        return _Count(o_s, "disc count from the sacrum (rib count disagrees)", 0.6, warnings)
    if has_sacrum:
        return _Count(both, "disc count from the sacrum", 0.85, warnings)
    if has_rib_anchor:
        return _Count(both, "disc count from the last rib-bearing vertebra (T12)", 0.8, warnings)
    return _Count(
        both,
        "unanchored",
        0.0,
        warnings,
        "the count cannot be anchored: no sacrum and no rib-bearing vertebra above a rib-free "
        "one in the scan",
    )


def _abnormal(segs: list[Segment]) -> set[int]:
    lengths = [s.length for s in segs if s.complete]
    if len(lengths) < 2:
        return set()
    med = float(np.median(lengths))
    return {i for i, s in enumerate(segs) if s.complete and not 0.5 * med <= s.length <= 1.7 * med}


def _vertebra_levels(
    ct: CTVolume, segs: list[Segment], cnt: _Count, discs: list[float], p: ArcProfile
) -> dict[str, Level]:
    out: dict[str, Level] = {}
    abnormal = _abnormal(segs)
    anchor = 0 if cnt.method.startswith("disc count from the sacrum") else next(
        (i for i, s in enumerate(segs) if s.rib), 0
    )
    z_scan = ct.z_mm()
    for name in VERTEBRAE:
        pos = POSITION[name]
        if not cnt.offsets:
            out[name] = Level(name, "ambiguous", method="disc-count", reason=cnt.reason or
                              "no consistent count of the vertebrae")
            continue
        results = set()
        for o in cnt.offsets:
            i = pos - o
            if 0 <= i < len(segs) and segs[i].mid_z is not None:
                results.add(("seg", i))
            elif i >= len(segs):
                results.add(("above", i))
            elif i < 0:
                results.add(("below", i))
            else:
                results.add(("cut", i))
        kinds = {r[0] for r in results}
        if len(results) == 1 and "seg" in kinds:
            i = next(iter(results))[1]
            seg = segs[i]
            assert seg.mid_z is not None
            lo, hi = sorted((anchor, i))
            if any(lo <= a <= hi for a in abnormal):
                out[name] = Level(
                    name, "ambiguous", method=cnt.method,
                    reason="a vertebra between the anchor and this level has an abnormal "
                    "height (missed or extra disc?)",
                    candidates=(_slice_of(ct, seg.mid_z),),
                )
                continue
            conf = cnt.confidence * (0.8 if seg.estimated else 1.0)
            ep = seg.endplate_z
            ep_in = ep is not None and z_scan.min() - 1 <= ep <= z_scan.max() + 1
            out[name] = Level(
                name, "found", _slice_of(ct, seg.mid_z), float(z_scan[_slice_of(ct, seg.mid_z)]),
                method=cnt.method + (
                    " (S1 mid-body estimated from the L5 height: no S1/S2 disc)"
                    if seg.sacral_anchor else
                    " (body partly outside the scan: mid-body estimated)" if seg.estimated
                    else ""),
                confidence=round(conf, 3),
                upper_endplate_slice=_slice_of(ct, ep) if ep_in and ep is not None else None,
                upper_endplate_z_mm=float(z_scan[_slice_of(ct, ep)]) if ep_in and ep is not None
                else None,
            )
        elif "seg" not in kinds:
            where = "above" if kinds <= {"above"} else "below" if kinds <= {"below"} else None
            reason = (
                f"outside the scan ({where} the field of view)" if where
                else "cut by the edge of the scan (mid-body not in the field of view)"
            )
            if cnt.method == "unanchored":
                reason += "; " + cnt.reason
            out[name] = Level(name, "missing", method=cnt.method, reason=reason)
        else:
            cands = tuple(sorted(
                _slice_of(ct, segs[r[1]].mid_z)  # type: ignore[arg-type]
                for r in results if r[0] == "seg"
            ))
            out[name] = Level(
                name, "ambiguous", method=cnt.method,
                reason=(cnt.reason or "several counts fit the scan")
                + f"; could be at slice(s) {list(cands)} or outside the scan",
                candidates=cands,
            )
    # L4/L5 disc: the disc above the vertebra at position 1 (L5)
    res: set[int | None] = set()
    for o in cnt.offsets:
        jd = POSITION["L5"] - o  # segment index of L5; disc jd lies above it
        res.add(jd if 0 <= jd < len(discs) else None)
    if out["L4"].found and out["L5"].found and len(res) == 1 and None not in res:
        jsel = next(iter(res))
        assert jsel is not None
        z = _z_at(p, discs[jsel])
        k = _slice_of(ct, z)
        out["L4_L5_disc"] = Level("L4_L5_disc", "found", k, float(z_scan[k]), cnt.method,
                                  round(cnt.confidence, 3))
    elif out["L4"].status == "missing" or out["L5"].status == "missing":
        out["L4_L5_disc"] = Level("L4_L5_disc", "missing", method=cnt.method,
                                  reason="L4 or L5 is outside the scan")
    else:
        out["L4_L5_disc"] = Level("L4_L5_disc", "ambiguous", method=cnt.method,
                                  reason="L4 and L5 are not both identified")
    return out


def _first_orig(g: WorkGrid, k: int) -> int:
    return k * g.fz


def _last_orig(g: WorkGrid, k: int, n: int) -> int:
    return min(n - 1, (k + 1) * g.fz - 1)


def _pelvic_levels(
    ct: CTVolume, g: WorkGrid, t: SpineTrack, bones: list[LateralBone], segs: list[Segment]
) -> tuple[dict[str, Level], list[str]]:
    out: dict[str, Level] = {}
    warnings: list[str] = []
    n = ct.n_slices
    zs = ct.z_mm()
    nk = g.hu.shape[0]
    ilia = [b for b in bones if b.kind == "ilium"]
    ribs = [b for b in bones if b.kind == "rib"]
    # --- iliac crest: top of the ilium ---------------------------------------------------
    if ilia:
        top = max(b.k_hi for b in ilia)
        if top >= nk - 1:
            out["iliac_crest_top"] = Level("iliac_crest_top", "missing", method="ilium top",
                                           reason="the ilium reaches the top of the scan")
        else:
            k = _last_orig(g, top, n)
            out["iliac_crest_top"] = Level(
                "iliac_crest_top", "found", k, float(zs[k]), "highest slice of the ilium "
                "(3-D bone component joined to the sacrum at the sacroiliac joint)", 0.85)
    else:
        rib_z = min((b.head_z for b in ribs), default=np.inf)
        cands = [b for b in bones if b.kind == "bottom_lateral" and b.k_hi < nk - 1
                 and g.z_mm[b.k_hi] < rib_z]
        if cands:
            top = max(b.k_hi for b in cands)
            k = _last_orig(g, top, n)
            out["iliac_crest_top"] = Level(
                "iliac_crest_top", "ambiguous", method="lateral bone at the scan bottom",
                reason="lateral bone rises from the bottom of the scan (an iliac wing?) but no "
                "sacroiliac joint is in view to confirm it is the ilium",
                candidates=(k,))
        else:
            out["iliac_crest_top"] = Level("iliac_crest_top", "missing", method="ilium top",
                                           reason="no iliac bone in the scan")
    # --- sacroiliac joints: lowest slice of sacrum-ilium contact -----------------------------
    contact = sorted({k for b in ilia for k in b.contact_k})
    sij_k: int | None = None
    if contact:
        run = [contact[-1]]
        max_gap = max(2, round(25.0 / g.sz))
        for k in reversed(contact[:-1]):
            if run[-1] - k <= max_gap:
                run.append(k)
            else:
                break
        low = run[-1]
        if low <= 0:
            out["sij_lower"] = Level("sij_lower", "missing", method="sacroiliac contact",
                                     reason="the sacroiliac joints continue below the scan")
        else:
            sij_k = low
            k = _first_orig(g, low)
            out["sij_lower"] = Level(
                "sij_lower", "found", k, float(zs[k]), "lowest slice where the sacrum and an "
                "ilium form one bone piece (sacroiliac joint)", 0.8)
    else:
        out["sij_lower"] = Level("sij_lower", "missing", method="sacroiliac contact",
                                 reason="no sacroiliac joint in the scan")
    # --- femoral heads --------------------------------------------------------------------
    out["femoral_head_top"], w = _femoral_head_top(ct, g, t, sij_k, bool(ilia))
    warnings += w
    return out, warnings


def _femoral_head_top(
    ct: CTVolume, g: WorkGrid, t: SpineTrack, sij_k: int | None, pelvis: bool
) -> tuple[Level, list[str]]:
    name = "femoral_head_top"
    warnings: list[str] = []
    if not pelvis:
        return Level(name, "missing", method="femur component",
                     reason="no pelvis in the scan"), warnings
    kmax = sij_k if sij_k is not None else g.hu.shape[0] - 1
    if kmax < 2:
        return Level(name, "missing", method="femur component",
                     reason="no slices below the sacroiliac joints"), warnings
    hu = g.hu[:kmax]
    xm = float(np.median(t.x))
    lat = (np.arange(hu.shape[2]) - xm) * g.sx
    vox = g.sx * g.sy * g.sz / 1000.0
    tops: dict[int, list[int]] = {-1: [], 1: []}
    metal: set[int] = set()
    for thr in (300.0, 350.0, 400.0, 500.0):
        lb, nlab = ndi.label(hu > thr)
        if nlab == 0:
            continue
        objs = ndi.find_objects(lb)
        best: dict[int, tuple[float, int]] = {}
        for c, sl in enumerate(objs, start=1):
            if sl is None:
                continue
            m = lb[sl] == c
            cnt = int(m.sum())
            if cnt * vox < 8.0:
                continue
            k3, _, i3 = np.nonzero(m)
            li = lat[i3 + sl[2].start]
            cen = float(li.mean())
            if not 50.0 <= abs(cen) <= 160.0 or np.sign(li).min() != np.sign(li).max():
                continue
            top = int(k3.max()) + sl[0].start
            if top >= kmax - 1:
                continue  # merged with the pelvis above
            side = 1 if cen > 0 else -1
            if float(hu[sl][m].max()) > 2000.0:
                metal.add(side)
            reach = float(np.abs(li).max())
            if side not in best or reach > best[side][0]:
                best[side] = (reach, top)
        for side, (_, top) in best.items():
            tops[side].append(top)
    # a femur must separate from the pelvis at >= 2 of the 4 thresholds
    side_tops = {s: int(np.median(v)) for s, v in tops.items() if len(v) >= 2}
    if metal:
        warnings.append(
            "metal in a femur (hip prosthesis?): its femoral head top is the implant's; "
            "check femoral_head_top on the QC image"
        )
    below_mm = (sij_k if sij_k is not None else 0) * g.sz
    if not side_tops:
        outside = sij_k is not None and below_mm < 20.0
        return Level(name, "missing" if outside or sij_k is None else "ambiguous",
                     method="femur component",
                     reason="femoral heads below the scan (less than 20 mm of scan below the "
                     "sacroiliac joints)" if outside else "no femoral head separable from the "
                     "acetabulum below the sacroiliac joints (outside the scan, or joint not "
                     "resolved)"), warnings
    top = max(side_tops.values())
    k = min(ct.n_slices - 1, _last_orig(g, top, ct.n_slices) + 1)
    if top >= kmax - 1 or k >= ct.n_slices:
        return Level(name, "missing", method="femur component",
                     reason="femoral head top outside the scan"), warnings
    conf = (0.8 if len(side_tops) == 2 else 0.6) * (0.8 if metal else 1.0)
    return Level(name, "found", k, float(ct.z_mm()[k]),
                 "first slice above the femoral head(s): top of the femur's bone component, "
                 "median over HU thresholds 300-500", conf), warnings


def find_levels(ct: CTVolume, overrides: Iterable[LevelOverride] = ()) -> LevelMap:
    """Locate T12-S1, the L4/L5 disc and pelvic landmarks in ``ct``; apply manual overrides."""
    g = work_grid(ct)
    t = track_spine(g)
    diagnostics: dict[str, Any] = {}
    warnings: list[str] = []
    if t is None:
        levels = {n: Level(n, "missing", method="spine tracking",
                           reason="no vertebral column found in the scan") for n in LEVEL_NAMES}
    else:
        p = arc_profile(g, t)
        found_discs = find_discs(p)
        bones = lateral_bones(g, t)
        found_discs = _drop_sacral_remnants(found_discs, bones, p, g)
        discs = [d.s for d in found_discs]
        segs = _segments(g, p, discs)
        _classify(segs, bones, g, p)
        cnt = _count(segs)
        warnings += cnt.warnings
        levels = _vertebra_levels(ct, segs, cnt, discs, p)
        pel, w = _pelvic_levels(ct, g, t, bones, segs)
        warnings += w
        levels.update(pel)
        ks = np.arange(t.k0, t.k1 + 1)
        # working pixel w averages original pixels w*s .. w*s+s-1: centre w*s + (s-1)/2
        si = g.sx / float(ct.spacing_mm[0])
        sj = g.sy / float(ct.spacing_mm[1])
        diagnostics = {
            "centreline": {
                "k": [float(k * g.fz + (g.fz - 1) / 2.0) for k in ks],
                "i": [float(x * si + (si - 1) / 2.0) for x in t.x],
                "j": [float(y * sj + (sj - 1) / 2.0) for y in t.y],
            },
            "discs_z_mm": [round(_z_at(p, d), 2) for d in discs],
            "segments": [
                {"z_lo": round(sg.z_lo, 1), "z_hi": round(sg.z_hi, 1), "rib": sg.rib,
                 "sacral": sg.sacral, "complete": sg.complete} for sg in segs
            ],
        }
    levels = {n: levels[n] for n in LEVEL_NAMES if n in levels}
    for n in PELVIC_LEVELS:
        levels.setdefault(n, Level(n, "missing", reason="not analysed"))
    levels = apply_overrides(ct, levels, overrides)
    return LevelMap(levels, tuple(dict.fromkeys(warnings)), ct.n_slices, diagnostics)
