"""Classical analysis of the vertebral column on a CT volume.

Pipeline (details and references in ``docs/levels.md``):

1. :func:`work_grid` block-averages the scan to about 2 mm in-plane (and 2 mm in z for thin
   slices) so that every later step is cheap.
2. :func:`track_spine` finds, on every axial slice, the vertebral body: a bright compact block
   (``B``) with a dark spinal canal behind it (``C``) and bright posterior elements behind
   the canal (``P``). The per-slice candidates are linked into one smooth path by dynamic
   programming, then the path is re-centred on the vertebral body from the sagittal
   intensity profile (posterior wall and anterior cortex).
3. :func:`arc_profile` samples the mean HU in a small window perpendicular to that centre line
   (so that the strongly inclined L5/S1 disc is cut across, not along) every millimetre of
   arc length, and :func:`find_discs` finds the intervertebral discs as short low-HU gaps
   between two dense endplates, with a minimum spacing learned from the strongest discs.
4. :func:`lateral_bones` labels the bone lateral to the column in 3-D: components that start
   beside the column and run far laterally are ribs (their medial end gives the rib-bearing
   vertebra) or the ilia (contact with the sacrum = sacroiliac joints).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi
from scipy.signal import find_peaks

from rcsa.io.volume import CTVolume

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]

#: Target working resolution (mm).
WORK_MM = 2.0
#: HU threshold for bone in the lateral-bone analysis.
BONE_HU = 180.0


@dataclass(frozen=True, eq=False)
class WorkGrid:
    """The scan block-averaged to about ``WORK_MM``: ``hu[k, j, i]``, spacings in mm."""

    hu: F32
    sx: float
    sy: float
    sz: float
    z_mm: F64  # LPS z of every working slice centre
    fz: int  # original slices per working slice


def work_grid(ct: CTVolume) -> WorkGrid:
    v = ct.voxels
    sx, sy, sz = (float(a) for a in ct.spacing_mm)
    s = max(1, round(WORK_MM / min(sx, sy)))
    fz = max(1, int(WORK_MM // sz)) if sz < 1.5 else 1
    nk, nj, ni = v.shape
    kw, jw, iw = max(1, nk // fz), max(1, nj // s), max(1, ni // s)
    bz, bj, bi = min(fz, nk), min(s, nj), min(s, ni)
    acc = np.empty((kw, jw, iw), np.float32)
    # A few working slices at a time, so that the strided sums stay in the CPU cache
    # (4x faster than summing whole-volume strided views).
    step = 4
    for w0 in range(0, kw, step):
        w1 = min(kw, w0 + step)
        src = v[w0 * fz : w1 * fz, : jw * s]
        cols = src[..., 0 : iw * s : s][..., :iw].astype(np.float32)
        for di in range(1, bi):
            cols += src[..., di : iw * s : s][..., :iw]
        rows = acc[w0:w1]
        rows[...] = cols[0 : (w1 - w0) * fz : fz, 0 : jw * s : s][:, :jw]
        for dz in range(bz):
            for dj in range(bj):
                if dz == 0 and dj == 0:
                    continue
                rows += cols[dz : (w1 - w0) * fz : fz, dj : jw * s : s][:, :jw]
    acc /= float(bz * bj * bi)
    z = ct.z_mm()[: kw * fz].reshape(kw, fz).mean(axis=1) if fz > 1 else ct.z_mm()[:kw]
    return WorkGrid(acc, sx * s, sy * s, sz * fz, np.asarray(z, np.float64), fz)


def _odd(n: float) -> int:
    return max(1, round(n) | 1)


@dataclass(frozen=True, eq=False)
class SpineTrack:
    """Vertebral-body centre per working slice in ``[k0, k1]`` (pixel units of the grid)."""

    k0: int
    k1: int
    x: F64  # column (i) of the body centre, per slice k0..k1
    y: F64  # row (j) of the body centre
    score: F64  # body/canal score along the path


def _body_midline(hu: F32) -> F64:
    body = hu > -300.0
    cols = body.sum(axis=1).astype(np.float64)  # [k, i]
    n = cols.sum(axis=1)
    ii = np.arange(hu.shape[2], dtype=np.float64)
    xm = np.where(n > 0, (cols * ii).sum(axis=1) / np.maximum(n, 1), hu.shape[2] / 2.0)
    return np.asarray(ndi.median_filter(xm, size=5, mode="nearest"), np.float64)


#: Spinal canal: the dark vertebral foramen, enclosed by bone in front (body), behind
#: (lamina / spinous process) and on at least one side (pedicle / facet).
CANAL_ANTERIOR_MM = (6.0, 20.0)
CANAL_POSTERIOR_MM = (6.0, 26.0)
CANAL_LATERAL_MM = (6.0, 16.0)
#: A canal candidate needs its bony ring this much brighter (HU, 5 mm smoothed) than itself.
CANAL_MIN_SCORE_HU = 40.0
#: Soft tissue brighter than this (HU, 5 mm smoothed) is not the canal.
CANAL_MAX_HU = 150.0
#: Candidates further than this from the body's left-right midline are not the column.
MIDLINE_MAX_MM = 35.0
#: Anteroposterior depth of a vertebral body used when its front cannot be measured.
BODY_DEPTH_MM = (18.0, 50.0)
#: The body centre's distance in front of the canal changes slowly: median over this (mm).
OFFSET_SMOOTH_MM = 45.0


def _onesided_max(a: F32, axis: int, d0: float, d1: float, sp: float, sign: int) -> F32:
    """Maximum of ``a`` over offsets ``d0..d1`` mm in direction ``sign`` along ``axis``."""
    n0, n1 = max(1, round(d0 / sp)), max(1, round(d1 / sp))
    size = n1 - n0 + 1
    m = ndi.maximum_filter1d(a, size, axis=axis, mode="nearest")
    centre = n0 + (size - 1) // 2
    out = np.roll(m, -sign * centre, axis=axis)
    # wrapped-around rows see nothing
    idx = [slice(None)] * a.ndim
    idx[axis] = slice(None, centre) if sign < 0 else slice(a.shape[axis] - centre, None)
    out[tuple(idx)] = -1000.0
    return np.asarray(out, np.float32)


def canal_score(g: WorkGrid, i0: int = 0, i1: int | None = None) -> tuple[F32, F32]:
    """Enclosure score of the spinal canal on columns ``i0:i1`` and the 5 mm smoothed HU.

    ``score = min(bone in front, bone behind, bone on the brighter side) - own HU``: the
    vertebral foramen is the one dark hole of the trunk ringed by bone, at every vertebra
    from the thorax to the sacrum and at any pixel size that resolves a 12 mm canal.
    """
    sub = g.hu[:, :, i0:i1]
    sm = np.asarray(
        ndi.uniform_filter(np.clip(sub, -100.0, 600.0), (1, _odd(5.0 / g.sy), _odd(5.0 / g.sx))),
        np.float32,
    )
    a = _onesided_max(sm, 1, *CANAL_ANTERIOR_MM, g.sy, -1)
    p = _onesided_max(sm, 1, *CANAL_POSTERIOR_MM, g.sy, +1)
    left = _onesided_max(sm, 2, *CANAL_LATERAL_MM, g.sx, -1)
    right = _onesided_max(sm, 2, *CANAL_LATERAL_MM, g.sx, +1)
    score = np.minimum.reduce([a, p, np.maximum(left, right)]) - sm
    score[sm > CANAL_MAX_HU] = 0.0
    return np.asarray(score, np.float32), sm


def _body_centre_from_canal(
    prof: F64, j_canal: int, sy: float
) -> tuple[float, float] | None:
    """Row of the vertebral body's centre and its AP depth (mm) from a profile along j.

    Walk forward (towards anterior, lower j) from the canal: the posterior wall is where the
    profile first rises half-way from the canal to the brightest bone within 20 mm in front;
    the front is where it stays below that level for more than 5 mm.
    """
    lo = max(0, j_canal - round(20.0 / sy))
    ahead = prof[lo:j_canal]
    if len(ahead) < 2:
        return None
    base = float(prof[j_canal])
    peak = float(ahead.max())
    if peak - base < 30.0:
        return None
    thr = base + 0.5 * (peak - base)
    wall = None
    for j in range(j_canal - 1, lo - 1, -1):
        if prof[j] >= thr:
            wall = j
            break
    if wall is None:
        return None
    front, miss = wall, 0
    stop = max(0, wall - round(BODY_DEPTH_MM[1] / sy))
    for j in range(wall - 1, stop - 1, -1):
        if prof[j] >= thr:
            front, miss = j, 0
        else:
            miss += 1
            if miss * sy > 5.0:
                break
    depth = float(np.clip((wall - front + 1) * sy, *BODY_DEPTH_MM))
    return wall + 0.5 - 0.5 * depth / sy, depth


def track_spine(g: WorkGrid) -> SpineTrack | None:
    """Follow the spinal canal through the scan and place the vertebral-body centre in front
    of it on every slice where the column is present."""
    hu = g.hu
    nk, nj, ni = hu.shape
    if nk < 2:
        return None
    xmid = _body_midline(hu)
    xm = float(np.median(xmid))
    half = round(70.0 / g.sx)
    i0, i1 = max(0, int(xm) - half), min(ni, int(xm) + half + 1)
    score, sm = canal_score(g, i0, i1)
    peaks = score == ndi.maximum_filter(score, size=(1, 3, 3))

    # candidates per slice: local maxima near the body midline, with soft tissue 30 mm
    # behind them (the back muscles; rejects the patient table, which has air behind it)
    tissue = hu[:, :, i0:i1] > -300.0
    behind = round(30.0 / g.sy)
    cands: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], F64]] = []
    for k in range(nk):
        jj, ii = np.nonzero(peaks[k] & (score[k] > CANAL_MIN_SCORE_HU))
        ok = np.abs(ii + i0 - xmid[k]) * g.sx < MIDLINE_MAX_MM
        ok &= (jj + behind < nj) & tissue[k, np.minimum(jj + behind, nj - 1), ii]
        jj, ii = jj[ok], ii[ok]
        sc = score[k, jj, ii].astype(np.float64)
        order = np.argsort(-sc)[:6]
        cands.append((jj[order], ii[order] + i0, sc[order]))

    # dynamic programming: maximise score minus a penalty on in-plane jumps
    lam, free = 3.0, 0.5 * g.sz + 0.5
    acc: list[F64] = []
    back: list[npt.NDArray[np.int64]] = []
    for k in range(nk):
        jj, ii, sc = cands[k]
        if k == 0 or len(jj) == 0 or len(cands[k - 1][0]) == 0:
            acc.append(sc.copy())
            back.append(np.full(len(sc), -1, np.int64))
            continue
        pj, pi, _ = cands[k - 1]
        dist = np.hypot((jj[:, None] - pj[None, :]) * g.sy, (ii[:, None] - pi[None, :]) * g.sx)
        tot = acc[-1][None, :] - lam * np.maximum(0.0, dist - free)
        b = np.argmax(tot, axis=1)
        best = tot[np.arange(len(sc)), b]
        acc.append(sc + np.maximum(0.0, best))
        back.append(np.where(best > 0, b, -1).astype(np.int64))
    ends = [(float(a.max()), k) for k, a in enumerate(acc) if len(a)]
    if not ends:
        return None
    _, kend = max(ends)
    idx = int(np.argmax(acc[kend]))
    path: dict[int, tuple[float, float, float]] = {}
    k = kend
    while k >= 0 and idx >= 0:
        jj, ii, sc = cands[k]
        path[k] = (float(jj[idx]), float(ii[idx]), float(sc[idx]))
        idx = int(back[k][idx])
        k -= 1
    ks = np.array(sorted(path))
    py = np.array([path[int(k)][0] for k in ks])
    px = np.array([path[int(k)][1] for k in ks])
    ps = np.array([path[int(k)][2] for k in ks])
    # trim weak ends (no column there)
    thr = 0.35 * float(np.median(ps))
    strong = np.nonzero(ndi.uniform_filter1d(ps, 3) > thr)[0]
    if len(strong) < 3:
        return None
    a, b2 = int(strong[0]), int(strong[-1])
    ks, py, px, ps = ks[a : b2 + 1], py[a : b2 + 1], px[a : b2 + 1], ps[a : b2 + 1]
    if ks[-1] - ks[0] + 1 < 3:
        return None

    med = _odd(15.0 / g.sz)
    sig = max(0.7, 4.0 / g.sz)
    pxs = ndi.gaussian_filter1d(ndi.median_filter(px, med, mode="nearest"), sig)
    pys = ndi.gaussian_filter1d(ndi.median_filter(py, med, mode="nearest"), sig)
    # re-centre left-right on the mirror-symmetry axis of body, canal and posterior elements
    xr = np.empty(len(ks))
    half_w = round(30.0 / g.sx)
    search = round(15.0 / g.sx)
    for n, k in enumerate(ks):
        i = round(pxs[n])
        j = round(pys[n])
        j0, j1 = max(0, j - int(45 / g.sy)), min(nj, j + int(25 / g.sy) + 1)
        strip = np.clip(hu[k, j0:j1, :], 0.0, 400.0)
        xa, xb = max(half_w, i - search), min(ni - half_w - 1, i + search)
        if xb < xa:
            xr[n] = float(i)
            continue
        # all candidate axes x at once: mean |strip[:, x-w:x] - mirror(strip[:, x+1:x+1+w])|
        win = np.lib.stride_tricks.sliding_window_view(strip, half_w, axis=1)
        xs_ = np.arange(xa, xb + 1)
        d = np.abs(win[:, xs_ - half_w] - win[:, xs_ + 1, ::-1]).mean(axis=(0, 2))
        xr[n] = float(xs_[int(np.argmin(d))])
    xs = ndi.gaussian_filter1d(ndi.median_filter(xr, _odd(21.0 / g.sz), mode="nearest"), sig)
    pxs = np.where(np.abs(xs - pxs) * g.sx < 25.0, xs, pxs)
    # the vertebral body lies in front of the canal: measure its wall and depth per slice
    cen = np.full(len(ks), np.nan)
    hw = max(1, round(8.0 / g.sx))
    for n, k in enumerate(ks):
        i = round(pxs[n]) - i0
        jc = round(py[n])
        prof = sm[k, :, max(0, i - hw) : i + hw + 1].mean(axis=1).astype(np.float64)
        # the canal's darkest row near the tracked point
        lo, hi = max(0, jc - 2), min(nj, jc + 3)
        jc = lo + int(np.argmin(prof[lo:hi]))
        res = _body_centre_from_canal(prof, jc, g.sy)
        if res is not None:
            cen[n] = res[0]
    good = np.isfinite(cen)
    if good.sum() < 3:
        return None
    # slices without a measurable body (disc spaces, sacrum tip) take the offset of their
    # neighbours: the body stays at a smooth distance in front of the canal
    off = np.interp(np.arange(len(ks)), np.nonzero(good)[0], (cen - py)[good])
    off = ndi.median_filter(off, _odd(OFFSET_SMOOTH_MM / g.sz), mode="nearest")
    off = ndi.gaussian_filter1d(off, max(1.0, 8.0 / g.sz))
    yc = ndi.gaussian_filter1d(pys + off, sig)
    return SpineTrack(int(ks[0]), int(ks[-1]), pxs.astype(np.float64), yc.astype(np.float64),
                      ps.astype(np.float64))


@dataclass(frozen=True, eq=False)
class ArcProfile:
    """Samples every ``step`` mm of arc length along the body centre line (mm units)."""

    s: F64  # arc length
    z: F64  # LPS z (mm) of each sample
    k: F64  # continuous working-slice index
    hu: F64  # mean HU in the cross-sectional window
    gap: F64  # disc score: min(max left, max right) - hu
    x: F64  # grid-mm column / row / slice coordinates of each sample (index * spacing)
    y: F64
    zg: F64


def arc_profile(g: WorkGrid, t: SpineTrack, step: float = 1.0) -> ArcProfile:
    ks = np.arange(t.k0, t.k1 + 1, dtype=np.float64)
    zc, yc, xc = ks * g.sz, t.y * g.sy, t.x * g.sx
    ds = np.hypot(np.diff(zc), np.diff(yc))
    s_arc = np.concatenate([[0.0], np.cumsum(ds)])
    s = np.arange(0.0, s_arc[-1] + 1e-9, step)
    z = np.interp(s, s_arc, zc)
    y = np.interp(s, s_arc, yc)
    x = np.interp(s, s_arc, xc)
    sm = max(1.0, 4.0 / step)
    tz = np.gradient(ndi.gaussian_filter1d(z, sm))
    ty = np.gradient(ndi.gaussian_filter1d(y, sm))
    nrm = np.maximum(np.hypot(tz, ty), 1e-9)
    tz, ty = tz / nrm, ty / nrm
    u = np.linspace(-10.0, 10.0, 9)[None, :, None]
    w = np.linspace(-12.0, 12.0, 9)[None, None, :]
    yy = y[:, None, None] + tz[:, None, None] * u
    zz = z[:, None, None] - ty[:, None, None] * u
    xx = x[:, None, None] + w
    yy, zz, xx = np.broadcast_arrays(yy, zz, xx)
    coords = np.stack([zz / g.sz, yy / g.sy, xx / g.sx]).reshape(3, -1)
    vals = ndi.map_coordinates(g.hu, coords, order=1, mode="nearest").reshape(len(s), -1)
    prof = np.clip(vals, -100.0, 1000.0).mean(axis=1).astype(np.float64)
    win = max(2, round(max(9.0, 2.0 * g.sz) / step))
    pad = np.concatenate([np.full(win, -1e4), prof, np.full(win, -1e4)])
    sw = np.lib.stride_tricks.sliding_window_view(pad, win)
    n = len(prof)
    left = sw[:n].max(axis=1)  # max over [a - win, a)
    right = sw[win + 1 : win + 1 + n].max(axis=1)  # max over (a, a + win]
    gap = np.minimum(left, right) - prof
    # a disc needs both endplates in view: none within one window of the column's ends
    gap[(left < -1e3) | (right < -1e3)] = 0.0
    edge = win + round(6.0 / step)  # and a margin: a half-seen endplate shifts the peak
    gap[:edge] = 0.0
    gap[max(0, n - edge):] = 0.0
    zw = np.interp(z / g.sz, np.arange(len(g.z_mm)), g.z_mm)
    return ArcProfile(s, zw, z / g.sz, prof, np.maximum(gap, 0.0), x, y, z)


@dataclass(frozen=True)
class Disc:
    s: float  # arc position (mm)
    strength: float  # disc score (HU)


#: Disc-to-disc spacing along the column (mm): no adult thoracic or lumbar vertebra (body
#: and disc, T1 about 20 mm, L3 about 38 mm) is shorter; above it a disc was missed.
DISC_SPACING_MM = (18.0, 60.0)
#: Penalty (HU of disc score) per unit of |log(spacing ratio)| between consecutive vertebrae:
#: vertebral heights change slowly along the column (thoracic ~22 mm to lumbar ~38 mm).
SPACING_CHANGE_PENALTY = 150.0
#: Cost of one disc, as a fraction of the mean score of the two strongest candidates: a
#: dip this much weaker than the real discs is not worth a disc.
DISC_COST_FRACTION = 0.5
#: A weaker disc is added to that chain only this far (fraction of the local disc spacing)
#: from every accepted disc.
MIN_SPACING_FRACTION = 0.65


def find_discs(p: ArcProfile, step: float = 1.0, min_height: float = 30.0) -> list[Disc]:
    """Intervertebral discs along the arc, bottom to top.

    Candidates are the local maxima of the disc score; the discs are the chain of candidates
    that maximises the summed score minus a cost per disc and a penalty on changes of the
    spacing between consecutive discs (dynamic programming over the last two discs). A
    mid-body dip (basivertebral vein, osteoporotic centre) splits a vertebra into two short
    pieces and so costs more than it adds; a missed disc doubles a spacing.
    """
    if len(p.s) < 5:
        return []
    pk, props = find_peaks(p.gap, height=min_height * 0.8, distance=max(1, int(8 / step)))
    h = props["peak_heights"].astype(np.float64)
    if len(pk) == 0:
        return []
    top3 = float(np.median(np.sort(h)[-3:]))
    keep = h >= max(min_height * 0.8, 0.25 * top3)
    pk, h = pk[keep], h[keep]
    pos = p.s[pk]
    n = len(pk)
    cost = DISC_COST_FRACTION * float(np.mean(np.sort(h)[-2:]))
    gain = h - cost
    d_lo, d_hi = DISC_SPACING_MM
    neg = -1e18
    # best[j, i]: best chain ending with discs i < j (i = j: chain of one disc)
    best = np.full((n, n), neg)
    prev = np.full((n, n), -1, np.int64)
    for j in range(n):
        best[j, j] = gain[j]
        for i in range(j):
            d = pos[j] - pos[i]
            if not d_lo <= d <= d_hi:
                continue
            cand = best[i, i] + gain[j]
            arg = -1
            for q in range(i):
                if best[i, q] <= neg / 2:
                    continue
                d0 = pos[i] - pos[q]
                v = best[i, q] + gain[j] - SPACING_CHANGE_PENALTY * abs(np.log(d / d0))
                if v > cand:
                    cand, arg = v, q
            best[j, i] = cand
            prev[j, i] = arg
    jj_, ii_ = np.unravel_index(int(np.argmax(best)), best.shape)
    j, i = int(jj_), int(ii_)
    if best[j, i] <= 0:
        return []
    chain = [int(j)]
    if i != j:
        chain.append(int(i))
        q = int(prev[j, i])
        while q >= 0:
            chain.append(q)
            j, i = i, q
            q = int(prev[j, i])
    # extend the core chain with weaker discs (thoracic discs at thick slices) where they
    # keep the local spacing: at least 0.65 x the spacing of the nearest accepted discs
    accepted = sorted(set(chain))
    if len(accepted) >= 2:
        for c in np.argsort(-h):
            c = int(c)
            if c in accepted:
                continue
            acc_pos = pos[accepted]
            gaps = np.diff(acc_pos)
            mids = 0.5 * (acc_pos[1:] + acc_pos[:-1])
            local = float(np.median(gaps[np.argsort(np.abs(mids - pos[c]))[:3]]))
            gap_mm = float(np.abs(acc_pos - pos[c]).min())
            if gap_mm >= max(d_lo, MIN_SPACING_FRACTION * local):
                accepted = sorted([*accepted, c])
    return [Disc(float(pos[c]), float(h[c])) for c in accepted]


@dataclass
class LateralBone:
    """A bone component lateral to the column that starts beside it."""

    kind: str  # "rib" or "ilium"
    side: int  # -1 patient right (low i), +1 patient left
    head_z: float  # LPS z of the medial end (mm)
    k_lo: int  # working slices spanned
    k_hi: int
    contact_k: list[int] = field(default_factory=list)  # slices with bone <= 40 mm from axis
    volume_cm3: float = 0.0
    max_lateral_mm: float = 0.0
    #: touches the top slice: the head of a lower rib is its highest point, so it may lie
    #: above the scan and the medial end seen is not the head
    cut_top: bool = False


def lateral_bones(g: WorkGrid, t: SpineTrack) -> list[LateralBone]:
    """Ribs and ilia next to the column (3-D components of bone with the column cut out)."""
    hu = g.hu
    nk, nj, ni = hu.shape
    kk = np.arange(nk, dtype=np.float64)
    ks = np.arange(t.k0, t.k1 + 1, dtype=np.float64)
    xc = np.interp(kk, ks, t.x)
    yc = np.interp(kk, ks, t.y)
    lat = (np.arange(ni)[None, None, :] - xc[:, None, None]) * g.sx
    dy = (np.arange(nj)[None, :, None] - yc[:, None, None]) * g.sy
    alat = np.abs(lat)
    region = (hu > BONE_HU) & (alat >= 26.0) & (alat <= 180.0) & (dy > -120.0) & (dy < 70.0)
    lb, _n = ndi.label(region)
    zone = (alat <= 40.0) & (dy > -15.0) & (dy < 30.0) & (lb > 0)
    ids = np.unique(lb[zone])
    objs = ndi.find_objects(lb)
    out = _bottom_lateral(lb, objs, set(int(a) for a in ids), xc, g)
    vox = g.sx * g.sy * g.sz / 1000.0
    for c in ids:
        sl = objs[int(c) - 1]
        if sl is None:
            continue
        m = lb[sl] == c
        k3, j3, i3 = np.nonzero(m)
        k3 = k3 + sl[0].start
        j3 = j3 + sl[1].start
        i3 = i3 + sl[2].start
        signed = (i3 - xc[k3]) * g.sx
        al = np.abs(signed)
        if al.max() < 60.0:
            continue  # a transverse process, not a rib or an ilium
        med = al <= al.min() + 8.0
        head_k = float(k3[med].mean())
        head_z = float(np.interp(head_k, kk, g.z_mm))
        near = (
            _contact_slices(k3, j3, i3, al, (j3 - yc[k3]) * g.sy) if float(al.max()) >= 80.0 else []
        )
        # cut by the scan bottom with its medial end there: bone rising from below (an
        # iliac wing), not a rib, whose head is its highest point
        rising = int(k3.min()) == 0 and head_z - float(g.z_mm[0]) < RIB_HEAD_ABOVE_BOTTOM_MM
        out.append(
            LateralBone(
                kind="bottom_lateral" if rising else "rib",
                side=1 if float(signed.mean()) > 0 else -1,
                head_z=head_z,
                k_lo=int(k3.min()),
                k_hi=int(k3.max()),
                contact_k=[int(a) for a in near],
                volume_cm3=float(len(k3) * vox),
                max_lateral_mm=float(al.max()),
                cut_top=int(k3.max()) >= nk - 1,
            )
        )
    return out


def _contact_slices(
    k3: npt.NDArray[np.int64],
    j3: npt.NDArray[np.int64],
    i3: npt.NDArray[np.int64],
    al: F64,
    dy: F64,
) -> list[int]:
    """Slices where one 2-D piece runs from beside the column (<= 40 mm lateral, level with
    the vertebral body or canal) to >= 60 mm lateral: the sacroiliac joint bridged."""
    out: list[int] = []
    nearz = (al <= 40.0) & (dy > -15.0) & (dy < 30.0)
    for k in np.unique(k3[nearz]):
        sel = k3 == k
        jj, ii, aa = j3[sel], i3[sel], al[sel]
        if aa.max() < 60.0:
            continue
        j0, i0 = int(jj.min()), int(ii.min())
        img = np.zeros((int(jj.max()) - j0 + 1, int(ii.max()) - i0 + 1), bool)
        img[jj - j0, ii - i0] = True
        lb2, _ = ndi.label(img, structure=np.ones((3, 3), bool))
        labs = lb2[jj - j0, ii - i0]
        for lab_id in np.unique(labs):
            part = aa[labs == lab_id]
            if nearz[sel][labs == lab_id].any() and part.max() >= 60.0:
                out.append(int(k))
                break
    return out


def _bottom_lateral(
    lb: npt.NDArray[np.int32],
    objs: list[tuple[slice, ...] | None],
    skip: set[int],
    xc: F64,
    g: WorkGrid,
) -> list[LateralBone]:
    """Lateral bone touching the bottom of the scan but not the column: maybe an iliac wing."""
    out: list[LateralBone] = []
    vox = g.sx * g.sy * g.sz / 1000.0
    for c in np.unique(lb[0]):
        c = int(c)
        if c == 0 or c in skip or objs[c - 1] is None:
            continue
        sl = objs[c - 1]
        assert sl is not None
        k3, _, i3 = np.nonzero(lb[sl] == c)
        if len(k3) * vox < 2.0:
            continue
        k3 = k3 + sl[0].start
        i3 = i3 + sl[2].start
        signed = (i3 - xc[k3]) * g.sx
        al = np.abs(signed)
        if al.min() < 45.0:
            continue
        out.append(
            LateralBone(
                kind="bottom_lateral",
                side=1 if float(signed.mean()) > 0 else -1,
                head_z=float(g.z_mm[int(k3.max())]),
                k_lo=int(k3.min()),
                k_hi=int(k3.max()),
                volume_cm3=float(len(k3) * vox),
                max_lateral_mm=float(al.max()),
            )
        )
    return out


def body_z_extent(
    g: WorkGrid, p: ArcProfile, s_lo: float, s_hi: float
) -> tuple[float, float] | None:
    """LPS z range (mm) of the vertebral body between two discs at arc positions s_lo < s_hi.

    Voxels of bone density within 18 mm of the centre line (sagittal plane), +-15 mm left-right
    and not behind the posterior wall are assigned to the nearest centre-line sample; those
    whose sample lies between the two discs form the body. Robust 2nd/98th percentiles of z.
    """
    sel = (p.s >= s_lo - 15.0) & (p.s <= s_hi + 15.0)
    if sel.sum() < 3:
        return None
    sy_, sz_, sx_ = p.y[sel], p.zg[sel], p.x[sel]
    ss = p.s[sel]
    nk, nj, ni = g.hu.shape
    k0 = max(0, int((sz_.min() - 20.0) / g.sz))
    k1 = min(nk, int((sz_.max() + 20.0) / g.sz) + 1)
    j0 = max(0, int((sy_.min() - 25.0) / g.sy))
    j1 = min(nj, int((sy_.max() + 25.0) / g.sy) + 1)
    i0 = max(0, int((sx_.min() - 16.0) / g.sx))
    i1 = min(ni, int((sx_.max() + 16.0) / g.sx) + 1)
    if k1 <= k0 or j1 <= j0 or i1 <= i0:
        return None
    sub = g.hu[k0:k1, j0:j1, i0:i1]
    kk, jj, ii = np.nonzero(sub > 120.0)
    if len(kk) == 0:
        return None
    vz = (kk + k0) * g.sz
    vy = (jj + j0) * g.sy
    vx = (ii + i0) * g.sx
    d2 = (vz[:, None] - sz_[None, :]) ** 2 + (vy[:, None] - sy_[None, :]) ** 2
    near = np.argmin(d2, axis=1)
    dist = np.sqrt(d2[np.arange(len(near)), near])
    keep = (
        (dist <= 18.0)
        & (np.abs(vx - sx_[near]) <= 15.0)
        & (vy <= sy_[near] + 12.0)
        & (ss[near] > s_lo + 1.0)
        & (ss[near] < s_hi - 1.0)
    )
    if keep.sum() < 5:
        return None
    zk = vz[keep] / g.sz
    lo_k, hi_k = np.percentile(zk, [2.0, 98.0])
    zs = np.interp([lo_k, hi_k], np.arange(len(g.z_mm)), g.z_mm)
    return float(zs[0]), float(zs[1])


#: A rib cut by the scan bottom must have its head this far above it (mm).
RIB_HEAD_ABOVE_BOTTOM_MM = 20.0
#: Air inside the body (HU) and the size of an air component that can be lung (cm^3).
AIR_HU = -500.0
LUNG_MIN_CM3 = 150.0
#: Where lung lies in the lower thorax: beside the vertebral body (mm from the axis, and
#: antero-posteriorly from the body centre).
PARAVERTEBRAL_LATERAL_MM = (15.0, 60.0)
PARAVERTEBRAL_AP_MM = (-25.0, 25.0)


def lung_slices(g: WorkGrid, t: SpineTrack) -> npt.NDArray[np.bool_]:
    """Working slices with lung: a large air space inside the body lying right beside the
    vertebral body (bowel gas lies in front of the psoas, not against the column)."""
    hu = g.hu
    nk, nj, ni = hu.shape
    air = hu < AIR_HU
    lb, n = ndi.label(air)
    if n == 0:
        return np.zeros(nk, bool)
    vox = g.sx * g.sy * g.sz / 1000.0
    sizes = np.bincount(lb.ravel())
    # air touching the in-plane border is outside the patient
    border = np.unique(np.concatenate([lb[:, 0].ravel(), lb[:, -1].ravel(),
                                       lb[:, :, 0].ravel(), lb[:, :, -1].ravel()]))
    big = sizes * vox >= LUNG_MIN_CM3
    big[0] = False
    big[border] = False
    kk = np.arange(nk, dtype=np.float64)
    ks = np.arange(t.k0, t.k1 + 1, dtype=np.float64)
    xc = np.interp(kk, ks, t.x)
    yc = np.interp(kk, ks, t.y)
    out = np.zeros(nk, bool)
    lat_lo, lat_hi = PARAVERTEBRAL_LATERAL_MM
    ap_lo, ap_hi = PARAVERTEBRAL_AP_MM
    ii = np.arange(ni)
    for k in range(t.k0, t.k1 + 1):
        j0 = max(0, int((yc[k] * g.sy + ap_lo) / g.sy))
        j1 = min(nj, int((yc[k] * g.sy + ap_hi) / g.sy) + 1)
        al = np.abs(ii - xc[k]) * g.sx
        cols = (al >= lat_lo) & (al <= lat_hi)
        strip = lb[k, j0:j1][:, cols]
        if strip.size and big[strip].mean() >= 0.05:
            out[k] = True
    return out

