"""Name the vertebrae and pelvic landmarks of a CT scan (rules in ``docs/levels.md``)."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from rcsa.io.volume import CTVolume
from rcsa.levels.override import LevelOverride, apply_overrides
from rcsa.levels.spine import (
    DISC_SPACING_MM,
    ArcProfile,
    LateralBone,
    SpineTrack,
    WorkGrid,
    arc_profile,
    body_z_extent,
    find_discs,
    lateral_bones,
    lung_slices,
    track_spine,
    work_grid,
)
from rcsa.levels.types import LEVEL_NAMES, PELVIC_LEVELS, VERTEBRAE, Level, LevelMap

#: Position of each vertebra counted upwards from S1 (0) along the column: S1, L5-L1,
#: T12-T1, C7.
POSITION = {
    "S1": 0, **{f"L{n}": 6 - n for n in range(1, 6)}, **{f"T{n}": 18 - n for n in range(1, 13)},
    "C7": 18,
}
#: Ilium: a lateral component this large (cm^3 on the working grid) is a pelvic bone, not a rib.
ILIUM_MIN_CM3 = 35.0
#: The sacrum touches the ilia over at least this height (mm); a lumbar transverse process
#: touching the ilium, or a crop through S1, gives a shorter contact.
SACRUM_MIN_CONTACT_MM = 15.0
#: A femur component cut by the scan bottom must be this tall (mm), about one femoral-head
#: diameter, to hold the whole head.
FEMUR_MIN_CUT_MM = 45.0
#: Lateral bone rising from the scan bottom must be this large (cm^3) to be an iliac wing.
BOTTOM_ILIUM_MIN_CM3 = 2.0
#: A complete vertebra this much shorter / taller than its neighbours (ratio) points to an
#: extra / a missed disc: the levels counted across it are ambiguous.
ABNORMAL_HEIGHT_RATIO = (0.55, 1.6)
#: A vertebra at the scan edge is named at a slice only when its body ends this many
#: working slices inside the scan (else it may be cut and its middle off by more than a
#: slice: ambiguous).
EDGE_MARGIN_SLICES = 1
#: Even at the ~40 degree lumbosacral inclination a vertebra (body + disc) spans this much
#: of the patient's z axis (mm).
MIN_VERTICAL_HEIGHT_MM = 15.0


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
    rib_sides: set[int] = field(default_factory=set)  # -1 patient right, +1 left
    sacral: bool = False
    sacral_anchor: bool = False
    mostly_visible: bool = False  # complete, or >= 75 % of the expected body height in view
    disc_below: bool = False
    uncertain_mid: bool = False  # mid-body estimated from a neighbour's height
    lung: bool = False  # lung beside the column at this vertebra
    rib_unknown: bool = False  # lateral bone cut by the scan bottom at this level
    notes: list[str] = field(default_factory=list)

    @property
    def rib(self) -> bool:
        """A rib head on either side at this vertebra."""
        return bool(self.rib_sides)

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
            segs[0].disc_below = True  # a disc just above the scan bottom: what lies under it?
    while segs and not segs[-1].closed_hi and segs[-1].length < 6.0:
        segs.pop()
        if segs:
            segs[-1].closed_hi = False
    z_bottom, z_top = float(g.z_mm[0]), float(g.z_mm[-1])
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
        expected = 0.9 * est - 5.0  # body height without the disc
        seg.uncertain_mid = True
        if seg.closed_hi and not seg.closed_lo:  # bottom piece: only its upper disc is seen
            mid_s = seg.s_hi - 0.5 * est
            if mid_s >= seg.s_lo:
                seg.mid_z = _z_at(p, mid_s)
            ext = body_z_extent(g, p, seg.s_lo - 50.0, seg.s_hi + 3.0)
            if (ext is not None and ext[1] - ext[0] >= 0.75 * expected
                    and ext[0] > z_bottom + EDGE_MARGIN_SLICES * g.sz):
                # the whole body is seen (its lower end lies inside the scan)
                seg.mid_z = 0.5 * (ext[0] + ext[1])
                seg.uncertain_mid = False
            seg.endplate_z = _endplate(p, seg.s_hi)
        elif seg.closed_lo and not seg.closed_hi:  # top piece: only its lower disc is seen
            mid_s = seg.s_lo + 0.45 * est  # vertebrae shrink going up
            if mid_s <= seg.s_hi:
                seg.mid_z = _z_at(p, mid_s)
            # mostly visible body: use the middle of what is seen, as a reader would
            # (from 3 mm below the disc peak: the disc is located to +-3 mm at 3 mm slices)
            ext = body_z_extent(g, p, seg.s_lo - 3.0, seg.s_hi + 50.0)
            if ext is not None and ext[1] - ext[0] >= 0.75 * expected:
                seg.mid_z = 0.5 * (ext[0] + ext[1])
                # the body's middle is known only when its upper end lies inside the scan
                seg.uncertain_mid = ext[1] >= z_top - EDGE_MARGIN_SLICES * g.sz
            top = seg.s_lo + est - 3.0
            seg.endplate_z = _z_at(p, top) if top <= seg.s_hi else None
    return segs


def _classify(
    segs: list[Segment], bones: list[LateralBone], g: WorkGrid, p: ArcProfile,
    lung: npt.NDArray[np.bool_],
) -> list[Segment]:
    """Ribs, ilia and sacroiliac contact per vertebra; returns the vertebrae from S1 up when
    a sacrum is found (the fused segments below S1 are dropped), else all of them."""
    # an ilium is a large lateral bone outside the thorax: never in a slice with lung and
    # never above a rib (ribs and the scapula are thin plates too, at 3 mm pixels as at 0.7)
    for b in bones:
        if b.kind != "rib":
            continue
        in_lung = float(lung[b.k_lo : b.k_hi + 1].mean()) if b.k_hi >= b.k_lo else 0.0
        if b.volume_cm3 >= ILIUM_MIN_CM3 and in_lung < 0.2:
            b.kind = "ilium"
    rib_heads = [b.head_z for b in bones if b.kind == "rib"]
    if rib_heads:
        lowest_rib = min(rib_heads)
        for b in bones:
            if b.kind == "ilium" and float(g.z_mm[b.k_hi]) > lowest_rib:
                b.kind = "other"
    contact = sorted({k for b in bones if b.kind == "ilium" for k in b.contact_k})
    zc = g.z_mm[np.asarray(contact, dtype=np.int64)] if contact else np.array([])
    for seg in segs:
        lo = -np.inf if not seg.closed_lo else seg.z_lo
        hi = np.inf if not seg.closed_hi else seg.z_hi
        seg.rib_sides = {b.side for b in bones
                         if b.kind == "rib" and not b.cut_top and lo <= b.head_z < hi}
        seg.rib_unknown = any(
            b.kind == "bottom_lateral" and float(g.z_mm[b.k_lo]) < hi
            and float(g.z_mm[b.k_hi]) >= lo for b in bones)
        kin = np.nonzero((g.z_mm >= seg.z_lo) & (g.z_mm < seg.z_hi))[0]
        seg.lung = bool(lung[kin].any()) if len(kin) else False
        inside = zc[(zc >= lo) & (zc < hi)]
        seg.sacral = len(inside) >= 2
        # the sacrum articulates with the ilia over >= 15 mm; a lumbar transverse process
        # touching the ilium (or a crop through S1) gives a shorter contact
        seg.sacral_anchor = (
            len(inside) >= 3 and float(inside.max() - inside.min()) >= SACRUM_MIN_CONTACT_MM
        )
    anchors = [i for i, sg in enumerate(segs) if sg.sacral_anchor]
    if not anchors:
        return segs
    top = max(anchors)
    s1 = segs[top]
    for sg in segs[:top]:
        s1.notes.append(f"fused sacral segment {sg.z_lo:.0f}..{sg.z_hi:.0f} mm dropped")
    segs = segs[top:]
    for sg in segs[1:]:
        sg.sacral_anchor = False
    if top == 0 and not s1.disc_below and _disc_at_bottom(p, s1):
        s1.disc_below = True
    s1.closed_lo = False
    if s1.closed_hi and s1.length >= 20.0:
        # S1: body below the L5/S1 disc, about 0.7 of L5's length
        l5_seen = len(segs) > 1 and segs[1].complete
        above = segs[1].length if l5_seen else 34.0
        s1.mid_z = _z_at(p, max(s1.s_lo, s1.s_hi - 0.35 * above))
        s1.estimated = True
        s1.uncertain_mid = not l5_seen  # without L5's height the estimate is a guess
    else:
        s1.sacral_anchor = False  # a crop through the sacrum: not enough of S1 to anchor
    return segs


def _disc_at_bottom(p: ArcProfile, seg: Segment) -> bool:
    """A one-sided disc (a dark band under a dense endplate) in the lowest 12 mm of a piece
    that the scan cuts below: the scan may end in the top of S1 under an L5/S1 disc, so that
    the piece above is L5, not S1. Its strength is compared with the piece's upper disc."""
    sel = np.nonzero((p.s >= seg.s_lo) & (p.s <= seg.s_lo + 12.0))[0]
    if len(sel) == 0:
        return False
    ref = float(p.gap[int(np.argmin(np.abs(p.s - seg.s_hi)))])
    best = 0.0
    for a in sel:
        above = p.hu[(p.s > p.s[a]) & (p.s <= p.s[a] + 9.0)]
        if len(above):
            best = max(best, float(above.max() - p.hu[a]))
    return best >= 0.5 * ref


class CountMethod(enum.Enum):
    """How the vertebrae were named (``Level.method`` carries the value)."""

    BOTH = "disc count from the sacrum, confirmed by the last rib"
    SACRUM = "disc count from the sacrum"
    LAST_RIB = "disc count from the last rib-bearing vertebra (T12)"
    FIRST_RIB = "disc count from the first rib-bearing vertebra (T1)"
    ANCHORS_DISAGREE = "disc count: the anchors disagree"
    UNANCHORED = "unanchored"


#: Confidence of a count (a heuristic grade, documented in docs/levels.md).
COUNT_CONFIDENCE = {
    CountMethod.BOTH: 0.95, CountMethod.SACRUM: 0.85, CountMethod.LAST_RIB: 0.8,
    CountMethod.FIRST_RIB: 0.6, CountMethod.ANCHORS_DISAGREE: 0.0, CountMethod.UNANCHORED: 0.0,
}


def _general_offsets(segs: list[Segment]) -> set[int]:
    """Offsets o (segment i is vertebra position o + i) that break no anatomical rule."""
    out: set[int] = set()
    ribs = [i for i, sg in enumerate(segs) if sg.rib]
    lowest_rib = min(ribs) if ribs else len(segs)
    for o in range(-len(segs), POSITION["C7"] + 1):
        ok = True
        for i, seg in enumerate(segs):
            pos = o + i
            if (
                not 0 <= pos <= POSITION["C7"]
                or (seg.sacral and pos > POSITION["L5"])
                # S1 always meets the ilia: a mostly visible piece without contact is not S1
                or (pos == 0 and seg.mostly_visible and not seg.sacral)
                # ribs on both sides: thoracic (a rib on one side may be a lumbar rib)
                or (len(seg.rib_sides) == 2 and not POSITION["T12"] <= pos <= POSITION["T1"])
                # a vertebra seen whole, without a rib, below every rib: lumbar
                or (i < lowest_rib and seg.complete and not seg.rib
                    and pos > POSITION["L1"])
            ):
                ok = False
                break
        if ok:
            out.add(o)
    return out


def _rib_anchor(segs: list[Segment], lowest: bool) -> tuple[set[int], str] | None:
    """Offsets from the last (``lowest``) or first rib-bearing vertebra: the rib-bearing
    vertebra next to a complete rib-free one, per side; sides that disagree give both
    offsets (and so an ambiguous count)."""
    target = POSITION["T12"] if lowest else POSITION["T1"]
    offs: set[int] = set()
    for side in (-1, 1):
        idx = [i for i, sg in enumerate(segs) if side in sg.rib_sides]
        if not idx:
            continue
        r = min(idx) if lowest else max(idx)
        if not lowest and (len(segs[r].rib_sides) < 2 or not segs[r].lung):
            continue  # the first rib: both sides, at the lung apex
        nb = r - 1 if lowest else r + 1
        # the rib-free neighbour must lie wholly in the scan (both discs seen), else its
        # rib may simply be outside the field of view
        # (rib-free on this side: a rib on one side only - a hypoplastic 12th rib or a
        # lumbar rib - makes the two sides disagree, and so the count ambiguous)
        if (not 0 <= nb < len(segs) or not segs[nb].complete or side in segs[nb].rib_sides
                or segs[nb].rib_unknown):
            continue
        offs.add(target - r)
    if not offs:
        return None
    # a rib on either side beyond the claimed anchor (below the last / above the first)
    # contradicts it: that vertebra may be the anchor with its partner rib unseen
    any_rib = [i for i, sg in enumerate(segs) if sg.rib]
    extreme = min(any_rib) if lowest else max(any_rib)
    if (target - extreme) not in offs:
        offs.add(target - extreme)
    why = "" if len(offs) == 1 else (
        "the last rib is on different vertebrae on the two sides" if lowest
        else "the first rib is on different vertebrae on the two sides")
    return offs, why


@dataclass
class _Count:
    offsets: set[int]
    method: CountMethod
    confidence: float
    warnings: list[str]
    reason: str = ""
    anchors: dict[str, int] = field(default_factory=dict)  # anchor name -> segment index


def _count(segs: list[Segment]) -> _Count:
    general = _general_offsets(segs)
    sets: dict[str, set[int]] = {}
    reasons: list[str] = []
    anchors: dict[str, int] = {}
    if segs and segs[0].sacral_anchor:
        # a disc just above the scan bottom under the candidate S1: the piece may be L5 with
        # the top of S1 below it (L5 often touches the ilia at 3 mm); both counts are kept
        sets["sacrum"] = {0, 1} if segs[0].disc_below else {0}
        anchors["sacrum"] = 0
        if segs[0].disc_below:
            reasons.append("the scan ends just below a disc under the sacrum candidate "
                           "(S1, or L5 above a cut S1)")
    last = _rib_anchor(segs, lowest=True)
    if last is not None:
        sets["last rib"] = last[0]
        if last[1]:
            reasons.append(last[1])
        anchors["last rib"] = min(POSITION["T12"] - o for o in last[0])
    first = _rib_anchor(segs, lowest=False)
    if first is not None and (last is None or first[0] != last[0]):
        sets["first rib"] = first[0]
        if first[1]:
            reasons.append(first[1])
        anchors["first rib"] = min(POSITION["T1"] - o for o in first[0])
    warnings: list[str] = []
    if not sets:
        return _Count(general, CountMethod.UNANCHORED, 0.0, warnings,
                      "the count cannot be anchored: no sacrum, and no rib-bearing vertebra "
                      "next to a rib-free vertebra seen whole (between two discs) in the scan")
    raw = dict(sets)
    sets = {name: offs & general for name, offs in sets.items()}
    inter = set.intersection(*sets.values())
    if inter:
        if {"sacrum", "last rib"} <= sets.keys():
            method = CountMethod.BOTH
        else:
            method = (CountMethod.SACRUM if "sacrum" in sets else
                      CountMethod.LAST_RIB if "last rib" in sets else CountMethod.FIRST_RIB)
        # several offsets left (an anchor unsure between two vertebrae): the levels they
        # name differently are ambiguous, with the anchor's reason
        return _Count(inter, method, COUNT_CONFIDENCE[method], warnings, "; ".join(reasons),
                      anchors)
    if len(sets) == 1:
        name = next(iter(sets))
        method = {"sacrum": CountMethod.SACRUM, "last rib": CountMethod.LAST_RIB,
                  "first rib": CountMethod.FIRST_RIB}[name]
        return _Count(set(), method, 0.0, warnings, "the count from the " + name +
                      " breaks an anatomical rule (a rib below T12 or contact with the "
                      "ilium above L5)", anchors)
    # the anchors disagree (or one breaks a rule the other obeys): keep every count they
    # give, so that each level they name differently is ambiguous
    union = set.union(*raw.values())
    if "sacrum" in sets and "last rib" in sets and last is not None and len(last[0]) == 1:
        n_free = anchors["last rib"] - 1
        if n_free != 5:
            warnings.append(
                f"transitional anatomy suspected: {n_free} rib-free (lumbar-type) vertebrae "
                "between the sacrum and the last rib-bearing vertebra (expected 5; lumbarised "
                "S1 / sacralised L5 / rib anomaly): the vertebrae the two counts name "
                "differently are reported ambiguous; set them by hand (--level)"
            )
            reasons.append(f"the count from the sacrum and from the last rib disagree "
                           f"({n_free} lumbar-type vertebrae, expected 5)")
    if not reasons:
        reasons.append("the counts from " + " and ".join(sets) + " disagree")
    return _Count(union, CountMethod.ANCHORS_DISAGREE, 0.0, warnings, "; ".join(reasons),
                  anchors)


def _slice_of(ct: CTVolume, z: float) -> int:
    return int(np.argmin(np.abs(ct.z_mm() - z)))


def _abnormal(segs: list[Segment]) -> set[int]:
    """Complete vertebrae whose height differs from their neighbours' (a missed or an extra
    disc): outside 0.55-1.6 x the median of the complete vertebrae within two places."""
    out: set[int] = set()
    for i, s in enumerate(segs):
        if not s.complete:
            continue
        if (not DISC_SPACING_MM[0] <= s.length <= DISC_SPACING_MM[1]
                or s.z_hi - s.z_lo < MIN_VERTICAL_HEIGHT_MM):
            out.add(i)  # no adult vertebra is that short (or tall, with both discs seen)
            continue
        near = [t.length for j, t in enumerate(segs) if t.complete and j != i and abs(j - i) <= 2]
        if not near:
            continue
        ratio = s.length / float(np.median(near))
        if not ABNORMAL_HEIGHT_RATIO[0] <= ratio <= ABNORMAL_HEIGHT_RATIO[1]:
            out.add(i)
    return out


def _vertebra_levels(
    ct: CTVolume, segs: list[Segment], cnt: _Count, p: ArcProfile
) -> dict[str, Level]:
    out: dict[str, Level] = {}
    abnormal = _abnormal(segs)
    anchors = list(cnt.anchors.values()) or [0]
    method = cnt.method.value
    z_scan = ct.z_mm()
    for name in VERTEBRAE:
        pos = POSITION[name]
        if not cnt.offsets:
            out[name] = Level(name, "ambiguous", method=method, reason=cnt.reason or
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
        if len(results) == 1 and "seg" in kinds and cnt.method is CountMethod.UNANCHORED:
            i = next(iter(results))[1]
            out[name] = Level(name, "ambiguous", method=method, reason=cnt.reason,
                              candidates=(_slice_of(ct, segs[i].mid_z),))  # type: ignore[arg-type]
            continue
        if len(results) == 1 and "seg" in kinds:
            i = next(iter(results))[1]
            seg = segs[i]
            assert seg.mid_z is not None
            if seg.uncertain_mid or (seg.sacral_anchor and 1 in abnormal):
                why = ("the L5 above it has an abnormal height, which the S1 estimate uses"
                       if not seg.uncertain_mid else "the body is cut by the scan edge")
                out[name] = Level(
                    name, "ambiguous", method=method,
                    reason=f"named by the count, but {why}: its mid-body (estimated at "
                    f"slice {_slice_of(ct, seg.mid_z)}) cannot be placed within one slice; "
                    "set it by hand (--level)",
                    candidates=(_slice_of(ct, seg.mid_z),))
                continue
            # counted across a vertebra of abnormal height from every anchor: ambiguous
            if all(any(min(a, i) <= b <= max(a, i) for b in abnormal) for a in anchors):
                out[name] = Level(
                    name, "ambiguous", method=method,
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
                method=method + (
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
            if where:
                reason = f"outside the scan ({where} the field of view)"
                if cnt.method is CountMethod.UNANCHORED:
                    reason += "; " + cnt.reason
                out[name] = Level(name, "missing", method=method, reason=reason)
            else:  # the vertebra is in the scan, cut by its edge: its middle may be outside
                out[name] = Level(name, "ambiguous", method=method,
                                  reason="cut by the edge of the scan: its mid-body may lie "
                                  "outside the field of view (set it by hand with --level)")
        else:
            cands = tuple(sorted(
                _slice_of(ct, segs[r[1]].mid_z)  # type: ignore[arg-type]
                for r in results if r[0] == "seg"
            ))
            out[name] = Level(
                name, "ambiguous", method=method,
                reason=(cnt.reason or "several counts fit the scan")
                + f"; could be at slice(s) {list(cands)} or outside the scan",
                candidates=cands,
            )
    # L4/L5 disc: the upper boundary of the vertebra named L5
    res = {POSITION["L5"] - o for o in cnt.offsets}
    if out["L4"].found and out["L5"].found and len(res) == 1:
        i5 = next(iter(res))
        z = _z_at(p, segs[i5].s_hi)
        k = _slice_of(ct, z)
        out["L4_L5_disc"] = Level("L4_L5_disc", "found", k, float(z_scan[k]), method,
                                  round(cnt.confidence, 3))
    elif out["L4"].status == "missing" and out["L5"].status == "missing":
        out["L4_L5_disc"] = Level("L4_L5_disc", "missing", method=method,
                                  reason="L4 and L5 are outside the scan")
    elif out["L4"].status == "missing" or out["L5"].status == "missing":
        out["L4_L5_disc"] = Level("L4_L5_disc", "ambiguous", method=method,
                                  reason="L4 or L5 is outside the scan: the disc between them "
                                  "may lie at the scan's edge")
    else:
        out["L4_L5_disc"] = Level("L4_L5_disc", "ambiguous", method=method,
                                  reason="L4 and L5 are not both identified")
    return out


def _first_orig(g: WorkGrid, k: int) -> int:
    return k * g.fz


def _last_orig(g: WorkGrid, k: int, n: int) -> int:
    return min(n - 1, (k + 1) * g.fz - 1)


def _pelvic_levels(
    ct: CTVolume, g: WorkGrid, t: SpineTrack, bones: list[LateralBone],
    lung: npt.NDArray[np.bool_], vertebrae: dict[str, Level], sacrum_seen: bool,
) -> tuple[dict[str, Level], list[str]]:
    """Iliac crest, lowest sacroiliac slice and femoral heads, each checked against the
    anatomical order: below the lowest rib, never in a slice with lung, the sacroiliac
    joints below L5 and on both sides."""
    out: dict[str, Level] = {}
    warnings: list[str] = []
    n = ct.n_slices
    zs = ct.z_mm()
    nk = g.hu.shape[0]
    ilia = [b for b in bones if b.kind == "ilium"]
    ribs = [b for b in bones if b.kind == "rib"]
    rib_z = min((b.head_z for b in ribs), default=np.inf)

    def thoracic(kw: int) -> str:
        """Why working slice ``kw`` cannot be pelvic ('' when it can)."""
        if lung[kw]:
            return "lung in that slice"
        if float(g.z_mm[kw]) >= rib_z:
            return "at or above a rib"
        return ""

    no_pelvis = "no pelvis in the scan"
    # --- iliac crest: top of the ilium ---------------------------------------------------
    if ilia:
        top = max(b.k_hi for b in ilia)
        why = thoracic(top)
        if top >= nk - 1:
            out["iliac_crest_top"] = Level("iliac_crest_top", "missing", method="ilium top",
                                           reason="the ilium reaches the top of the scan")
        elif why:
            out["iliac_crest_top"] = Level("iliac_crest_top", "ambiguous", method="ilium top",
                                           reason=f"the top of the 'ilium' is in the thorax "
                                           f"({why})")
        else:
            k = _last_orig(g, top, n)
            out["iliac_crest_top"] = Level(
                "iliac_crest_top", "found", k, float(zs[k]), "highest slice of the ilium "
                "(3-D bone component joined to the sacrum at the sacroiliac joint)", 0.85)
    else:
        cands = [b for b in bones if b.kind == "bottom_lateral" and b.k_hi < nk - 1
                 and not thoracic(b.k_hi) and b.volume_cm3 >= BOTTOM_ILIUM_MIN_CM3]
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
                                           reason=no_pelvis)
    # --- sacroiliac joints: lowest slice of sacrum-ilium contact on both sides ------------
    by_side = {sd: {k for b in ilia if b.side == sd for k in b.contact_k} for sd in (-1, 1)}
    contact = sorted(by_side[-1] | by_side[1])
    sij_k: int | None = None
    name = "sij_lower"
    method = "sacroiliac contact"
    if not ilia:
        out[name] = Level(name, "missing", method=method, reason=no_pelvis)
    elif not contact:
        out[name] = Level(name, "missing", method=method,
                          reason="no sacroiliac joint in the scan")
    else:
        run = [contact[-1]]
        max_gap = max(2, round(25.0 / g.sz))
        for k in reversed(contact[:-1]):
            if run[-1] - k <= max_gap:
                run.append(k)
            else:
                break
        low = run[-1]
        sides = {sd for sd in (-1, 1) if by_side[sd] & set(run)}
        l5 = vertebrae.get("L5")
        k = _first_orig(g, low)
        if low <= 0:
            out[name] = Level(name, "missing", method=method,
                              reason="the sacroiliac joints continue below the scan")
        elif len(sides) < 2:
            out[name] = Level(name, "ambiguous", method=method, candidates=(k,),
                              reason="sacrum-ilium contact on one side only")
        elif not sacrum_seen:
            out[name] = Level(name, "ambiguous", method=method, candidates=(k,),
                              reason="bone contact beside the column, but no sacrum is "
                              "identified on the column (below the sacroiliac joints?)")
        elif thoracic(low):
            out[name] = Level(name, "ambiguous", method=method, candidates=(k,),
                              reason=f"the contact lies in the thorax ({thoracic(low)})")
        elif l5 is not None and l5.found and l5.z_mm is not None and zs[k] >= l5.z_mm:
            out[name] = Level(name, "ambiguous", method=method, candidates=(k,),
                              reason="the contact is not below L5")
        else:
            sij_k = low
            out[name] = Level(
                name, "found", k, float(zs[k]), "lowest slice where the sacrum and an "
                "ilium form one bone piece (sacroiliac joint), on both sides", 0.8)
    # --- femoral heads --------------------------------------------------------------------
    sij = out[name]
    fname = "femoral_head_top"
    if sij.status == "missing" and sij.reason.startswith("the sacroiliac joints continue"):
        out[fname] = Level(fname, "missing", method="femur component",
                           reason="below the scan (the sacroiliac joints, which lie above the "
                           "femoral heads, continue below the scan)")
    elif sij.status == "ambiguous":
        out[fname] = Level(fname, "ambiguous", method="femur component",
                           reason="the sacroiliac joints above the femoral heads are not "
                           "identified: " + sij.reason)
    else:
        fh, w = _femoral_head_top(ct, g, t, sij_k, bool(ilia))
        warnings += w
        if fh.found and fh.slice_index is not None:
            kw = min(nk - 1, fh.slice_index // g.fz)
            if thoracic(kw):
                fh = Level(fname, "ambiguous", method=fh.method, candidates=(fh.slice_index,),
                           reason=f"the 'femoral head' lies in the thorax ({thoracic(kw)})")
        out[fname] = fh
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
            if sl[0].start == 0 and (top + 1) * g.sz < FEMUR_MIN_CUT_MM:
                continue  # cut by the scan bottom: may be a piece of the head or neck only
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


def _round_or_none(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


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
        discs = [d.s for d in find_discs(p)]
        bones = lateral_bones(g, t)
        lung = lung_slices(g, t)
        segs = _classify(_segments(g, p, discs), bones, g, p, lung)
        cnt = _count(segs)
        warnings += cnt.warnings
        levels = _vertebra_levels(ct, segs, cnt, p)
        pel, w = _pelvic_levels(ct, g, t, bones, lung, levels,
                                any(sg.sacral_anchor for sg in segs))
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
                 "rib_sides": sorted(sg.rib_sides), "sacral": sg.sacral,
                 "sacral_anchor": sg.sacral_anchor, "complete": sg.complete,
                 "mid_z": None if sg.mid_z is None else round(sg.mid_z, 1),
                 "names": sorted({n for n in POSITION for o in cnt.offsets
                                  if POSITION[n] == o + i}, key=POSITION.__getitem__)}
                for i, sg in enumerate(segs)
            ],
            "count_method": cnt.method.value,
            "anchors": {
                name: {"segment": i, "z_mm": _round_or_none(segs[i].mid_z)}
                for name, i in cnt.anchors.items() if 0 <= i < len(segs)
            },
            "rib_heads_z_mm": sorted(round(b.head_z, 1) for b in bones if b.kind == "rib"),
        }
    levels = {n: levels[n] for n in LEVEL_NAMES if n in levels}
    for n in PELVIC_LEVELS:
        levels.setdefault(n, Level(n, "missing", reason="not analysed"))
    levels = apply_overrides(ct, levels, overrides)
    return LevelMap(levels, tuple(dict.fromkeys(warnings)), ct.n_slices, diagnostics)
