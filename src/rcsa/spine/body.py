"""Vertebral body geometry on the body's mid-sagittal plane (classical, torch-free).

For one vertebra between two discs found by :mod:`rcsa.levels`: a sagittal image in the body's
own frame (axis ``u`` along the spine's centre line, ``v`` anterior, ``x`` patient left) is
resampled at :data:`STEP_MM`; the anterior cortex and the posterior wall are the half-way
crossings beyond the cortical peak of the mean antero-posterior profile of the body's middle,
the endplates the half-way crossings between each endplate's peak and the disc along three
lines parallel to the axis (anterior, middle, posterior). ``docs/spine.md`` has the method and
its limits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from rcsa.io.volume import CTVolume

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

#: Half the thickness of a cortical endplate (mm), added outside the endplate's peak.
ENDPLATE_HALF_THICKNESS_MM = 0.5
#: Sampling step of the sagittal image (mm).
STEP_MM = 0.5
#: Lateral offsets averaged into the mid-sagittal plane (mm): a 4 mm slab.
SLAB_MM = (-2.0, -1.0, 0.0, 1.0, 2.0)
#: Height lines lie this fraction of the body depth inside the anterior / posterior edges.
HEIGHT_INSET_FRACTION = 0.10
#: Each height line averages the sagittal image over +- this many mm in depth.
LINE_HALF_WIDTH_MM = 1.0
#: An edge needs this much contrast between the cortical / endplate peak and outside (HU).
MIN_EDGE_CONTRAST_HU = 60.0
#: Around the steepest fall of a profile, the peak and the low are looked for this far (mm).
EDGE_SIDE_MM = 6.0
#: Searches for the anterior / posterior edge reach this far from the centre line (mm).
ANTERIOR_REACH_MM = 32.0
POSTERIOR_REACH_MM = 36.0
#: The spinal canal (darkest point behind the body centre) is looked for this far back (mm).
CANAL_SEARCH_MM = (6.0, 36.0)
LATERAL_REACH_MM = 36.0
#: When an endplate is not found searching from the body's centre (a compressed body: the
#: plate has moved to or past the centre half-way between the discs), it is searched again
#: from this far (mm) inside the opposite endplate's surface: past that plate's blurred peak
#: (half-width about 2 mm at 2-3 mm slices), so the opposite plate is never taken.
RESTART_CLEARANCE_MM = 3.0
#: ... and the plate found so must stand out from the trabecular bone between the plates by
#: this much (HU; half the edge contrast): two plates, not one plate's ramp.
PLATE_TROUGH_HU = 30.0
#: The disc is looked for within this window (mm) around its position found by ``levels``.
DISC_WINDOW_MM = (-5.0, 6.0)
#: Largest tilt of a body's axis against the scanner's z axis that is followed (degrees).
MAX_TILT_DEG = 40.0
#: Angles whose endplate-sharpness energy is within this fraction of the best form its top.
TILT_TOP_FRACTION = 0.9
#: Material denser than this inside the body is cement or metal (HU).
DENSE_HU = 1500.0
#: ... when it fills at least this volume (mm^3): one or two voxels of dense cortex are not.
DENSE_MIN_MM3 = 20.0
#: Plausible ranges (mm) of a measured body; outside them the edges are not trusted.
HEIGHT_RANGE_MM = (6.0, 55.0)
DEPTH_RANGE_MM = (15.0, 65.0)
#: Largest anterior / posterior and middle / posterior height ratio of a measured body: normal
#: T11-L5 bodies have A/P 0.85-1.25 and M/P below 1.05 (concave endplates), and wedge,
#: biconcave and crush fractures lower A and M, or all three; a posterior height this short
#: against the others is a posterior line on the wrong plate (or a piece merged across a
#: missed disc), not a shape to grade.
MAX_SHAPE_RATIO = 1.5
WIDTH_RANGE_MM = (20.0, 80.0)
#: Trabecular ROI: an elliptic cylinder along the axis, centred this fraction of the depth in
#: front of the body centre, semi-axes as fractions of depth and width, over this fraction of
#: the smallest height (so it keeps clear of the cortex, the endplates and the basivertebral
#: vein, which enters the body from the middle of its posterior wall).
ROI_ANTERIOR_SHIFT = 0.15
ROI_SEMI_DEPTH = 0.22
ROI_SEMI_WIDTH = 0.30
ROI_HEIGHT_FRACTION = 0.60


@dataclass(frozen=True)
class Frame:
    """The body frame: centre (voxel k, j, i) and the superior axis (z, y components, unit)."""

    kc: float
    jc: float
    ic: float
    uz: float
    uy: float
    sx: float
    sy: float
    sz: float

    @property
    def vz(self) -> float:  # anterior unit vector (z component)
        return self.uy

    @property
    def vy(self) -> float:
        return -self.uz

    def to_kji(self, a: F64 | float, b: F64 | float, x: F64 | float = 0.0
               ) -> tuple[F64, F64, F64]:
        """Voxel coordinates of body-frame points (a superior, b anterior, x left; mm)."""
        a_ = np.asarray(a, np.float64)
        b_ = np.asarray(b, np.float64)
        x_ = np.asarray(x, np.float64)
        dz = a_ * self.uz + b_ * self.vz
        dy = a_ * self.uy + b_ * self.vy
        return (self.kc + dz / self.sz + 0.0 * x_, self.jc + dy / self.sy + 0.0 * x_,
                self.ic + x_ / self.sx + 0.0 * dz)

    def from_kji(self, k: F64, j: F64, i: F64) -> tuple[F64, F64, F64]:
        dz = (k - self.kc) * self.sz
        dy = (j - self.jc) * self.sy
        return dz * self.uz + dy * self.uy, dz * self.vz + dy * self.vy, (i - self.ic) * self.sx


@dataclass(frozen=True)
class BodyGeometry:
    """What :func:`measure_body` found; ``reason`` is set (and the rest may be None) on failure."""

    frame: Frame
    reason: str = ""
    b_anterior: float | None = None  # edges along v (mm from the centre)
    b_posterior: float | None = None
    width_mm: float | None = None
    x_centre: float = 0.0
    #: per line (anterior, middle, posterior): (b, a_inferior, a_superior)
    lines: tuple[tuple[float, float, float], ...] = ()
    dense_mm3: float = 0.0
    dense_max_hu: float | None = None
    roi_mean_hu: float | None = None
    roi_sd_hu: float | None = None
    roi_n: int = 0
    roi_mm3: float = 0.0
    roi_centre: tuple[float, float] | None = None  # (a, b)

    @property
    def depth_mm(self) -> float | None:
        if self.b_anterior is None or self.b_posterior is None:
            return None
        return self.b_anterior - self.b_posterior

    def heights(self) -> tuple[float, float, float] | None:
        if len(self.lines) != 3:
            return None
        a, m, p = (hi - lo for _, lo, hi in self.lines)
        return a, m, p


def _step_edge(q: F64, step: float, reach_mm: float) -> float | None:
    """Distance (mm) from ``q[0]`` (inside the body) to its cortical surface on a profile
    running outwards: at the steepest fall within ``reach_mm`` (bone to soft tissue, fat or
    the canal), the half-way crossing between the densest point up to
    :data:`EDGE_SIDE_MM` inside and the lowest point up to as far outside."""
    n = min(len(q), round(reach_mm / step) + 1)
    if n < 4:
        return None
    w = max(1, round(1.0 / step))
    grad = q[w:n] - q[: n - w]  # fall over 1 mm
    i_s = int(np.argmin(grad))
    side = round(EDGE_SIDE_MM / step)
    lo_i, hi_i = max(0, i_s - side), min(len(q), i_s + w + side + 1)
    ip = lo_i + int(np.argmax(q[lo_i : i_s + w + 1]))
    io = ip + int(np.argmin(q[ip:hi_i]))
    peak, low = float(q[ip]), float(q[io])
    if peak - low < MIN_EDGE_CONTRAST_HU or io <= ip:
        return None
    level = 0.5 * (peak + low)
    below = np.nonzero(q[ip : io + 1] < level)[0]
    k = ip + int(below[0])
    q0, q1 = float(q[k - 1]), float(q[k])
    frac = (q0 - level) / (q0 - q1) if q0 != q1 else 0.0
    return (k - 1 + frac) * step


def _canal_edge(q: F64, step: float) -> float | None:
    """Posterior wall on a profile running from the body centre backwards: the steepest fall
    in front of the spinal canal (the darkest point within :data:`CANAL_SEARCH_MM`)."""
    lo_i = round(CANAL_SEARCH_MM[0] / step)
    hi_i = min(len(q), round(CANAL_SEARCH_MM[1] / step) + 1)
    if hi_i <= lo_i + 1:
        return None
    i_canal = lo_i + int(np.argmin(q[lo_i:hi_i]))
    return _step_edge(q[: i_canal + 1], step, i_canal * step)


def _edge(q: F64, step: float, reach_mm: float, outside_mm: float = 10.0) -> float | None:
    """Distance (mm) from ``q[0]`` to the edge: half-way between the peak within ``reach_mm``
    and the lowest value within ``outside_mm`` beyond it, first crossing beyond the peak."""
    n_reach = min(len(q), round(reach_mm / step) + 1)
    if n_reach < 3:
        return None
    ip = int(np.argmax(q[:n_reach]))
    n_out = min(len(q), ip + round(outside_mm / step) + 1)
    if n_out <= ip + 1:
        return None
    lo = float(np.min(q[ip:n_out]))
    peak = float(q[ip])
    if peak - lo < MIN_EDGE_CONTRAST_HU:
        return None
    level = 0.5 * (peak + lo)
    below = np.nonzero(q[ip:n_out] < level)[0]
    if len(below) == 0:
        return None
    k = ip + int(below[0])
    q0, q1 = float(q[k - 1]), float(q[k])
    frac = (q0 - level) / (q0 - q1) if q0 != q1 else 0.0
    return (k - 1 + frac) * step


def _peak_position(seg: F64) -> int | None:
    """Index of the endplate peak in ``seg`` (body centre -> disc, ``seg[-1]`` the disc): the
    outermost peak that rises at least half-way from the disc to the densest point, reached by
    climbing from the disc (so a dense spot inside the body is never taken for the endplate)."""
    if len(seg) < 3:
        return None
    disc = float(seg[-1])
    top = float(np.max(seg))
    if top - disc < MIN_EDGE_CONTRAST_HU:
        return None
    thr = disc + 0.5 * (top - disc)
    ip = int(np.nonzero(seg >= thr)[0][-1])
    while ip > 0 and seg[ip - 1] >= seg[ip]:
        ip -= 1
    return ip


def _endplate_edge(c: F64, a: F64, a_disc: float, upward: bool, voxel_mm: float = 1.0,
                   a_start: float = 0.0) -> float | None:
    """Endplate surface (mm along the axis) on a column profile ``c(a)`` sampled at ``a``.

    The disc is the darkest point within :data:`DISC_WINDOW_MM` of its position from the level
    finder; the endplate is the densest point between the body's centre and the disc (the
    cortical endplate: at 1-3 mm slices it is blurred into a peak whose position is the
    plate's centre, unbiased by the blur, where a half-maximum crossing would move outwards by
    about half a slice); its surface lies :data:`ENDPLATE_HALF_THICKNESS_MM` further out. The
    peak is located between voxels by a parabola through the samples ``voxel_mm`` on either
    side.

    The search runs from ``a_start`` (mm along the axis; the body's centre by default) to
    the disc. A peak at ``a_start`` itself (the profile only falls from there to the disc) is
    no peak: the plate lies at or inside the start (a compressed body whose endplate has moved
    past the centre found from the discs), and None is returned so that the caller can search
    again from the opposite endplate (:data:`RESTART_CLEARANCE_MM`).
    """
    w0, w1 = DISC_WINDOW_MM
    if upward:
        sel = (a >= a_disc + w0) & (a <= a_disc + w1)
    else:
        sel = (a <= a_disc - w0) & (a >= a_disc - w1)
    if not sel.any():
        return None
    idx = np.nonzero(sel)[0]
    i_disc = int(idx[np.argmin(c[idx])])
    i0 = int(np.argmin(np.abs(a - a_start)))
    if upward:
        if i_disc <= i0 + 2:
            return None
        seg = c[i0 : i_disc + 1]
    else:
        if i_disc >= i0 - 2:
            return None
        seg = c[i_disc : i0 + 1][::-1]
    ip = _peak_position(seg)
    if ip is None or ip == 0 or float(seg[ip]) - float(seg[-1]) < MIN_EDGE_CONTRAST_HU:
        return None
    # sub-voxel position: a parabola through the peak and the samples one voxel on either
    # side (a linearly interpolated profile peaks at a voxel centre; the parabola through
    # voxel-spaced samples follows the blurred plate's true centre)
    h = max(1, round(voxel_mm / STEP_MM))
    frac = 0.0
    if h <= ip < len(seg) - h:
        y0, y1, y2 = float(seg[ip - h]), float(seg[ip]), float(seg[ip + h])
        den = y0 - 2 * y1 + y2
        if den < 0:
            frac = float(np.clip(0.5 * (y0 - y2) / den, -0.5, 0.5)) * h
    d = (ip + frac) * STEP_MM + ENDPLATE_HALF_THICKNESS_MM
    return float(a[i0]) + d if upward else float(a[i0]) - d


def _two_plates(c: F64, a: F64, lo: float, hi: float) -> bool:
    """Whether the column profile ``c(a)`` shows two distinct plates at the surfaces ``lo`` <
    ``hi``: a trough between their peaks at least :data:`PLATE_TROUGH_HU` below the lower
    peak (trabecular bone between two cortical plates). An endplate found by the search from
    the opposite plate (:data:`RESTART_CLEARANCE_MM`) must pass it: otherwise it may be the
    ramp of the opposite plate itself, or a dense spot, on a line that misses the body."""
    p_lo, p_hi = lo + ENDPLATE_HALF_THICKNESS_MM, hi - ENDPLATE_HALF_THICKNESS_MM
    between = (a > p_lo) & (a < p_hi)
    if p_hi <= p_lo or not between.any():
        return False
    peak = min(float(np.interp(p_lo, a, c)), float(np.interp(p_hi, a, c)))
    return float(c[between].min()) <= peak - PLATE_TROUGH_HU


def body_frame(ct: CTVolume, centreline: dict[str, list[float]], z_lo: float, z_hi: float
               ) -> Frame:
    """Frame of the vertebra between the discs at ``z_lo`` < ``z_hi`` (LPS z, mm).

    The centre is the centre line's point half-way between the discs. The axis is the tilt
    (in the sagittal plane, within +-:data:`MAX_TILT_DEG`) that makes the endplates and discs
    sharpest on the mean cranio-caudal profile of the body: the gradient energy of that
    profile is largest when the profile runs perpendicular to the endplates (projection-
    profile alignment, 1 degree steps; the energy-weighted centre of the angles within
    :data:`TILT_TOP_FRACTION` of the maximum, because the maximum is broad).
    """
    zs = ct.z_mm()
    kk = np.arange(len(zs), dtype=np.float64)
    zc = 0.5 * (z_lo + z_hi)
    kc = float(np.interp(zc, zs, kk))  # canonical volumes: z increases with k
    ck = np.asarray(centreline["k"], np.float64)
    ic = float(np.interp(kc, ck, np.asarray(centreline["i"], np.float64)))
    jc = float(np.interp(kc, ck, np.asarray(centreline["j"], np.float64)))
    sx, sy, sz = (float(s) for s in ct.spacing_mm)
    half = 0.5 * (z_hi - z_lo) + 8.0
    nk, nj, ni = ct.voxels.shape
    rz, ry = (half + 20.0) / sz + 2, (half + 20.0) / sy + 2
    k0, k1 = max(0, int(kc - rz)), min(nk, int(kc + rz) + 2)
    j0, j1 = max(0, int(jc - ry)), min(nj, int(jc + ry) + 2)
    i_ = round(ic)
    i0, i1 = max(0, i_ - 2), min(ni, i_ + 3)
    vol = np.asarray(ct.voxels[k0:k1, j0:j1, i0:i1], np.float32)
    a = np.arange(-half, half + 1e-9, 1.0)[:, None]
    b = np.arange(-14.0, 14.0 + 1e-9, 1.0)[None, :]

    def energy(deg: float) -> float:
        t = np.radians(deg)
        f = Frame(kc, jc, ic, float(np.cos(t)), float(np.sin(t)), sx, sy, sz)
        prof = _sample(vol, (k0, j0, i0), f, a, b, (0.0,)).mean(axis=1)
        return float(np.sum(np.diff(prof) ** 2))

    degs = np.arange(-MAX_TILT_DEG, MAX_TILT_DEG + 1e-9, 1.0)
    e = np.array([energy(d) for d in degs])
    e = np.convolve(e, np.ones(5) / 5.0, mode="same")
    top = e >= TILT_TOP_FRACTION * e.max()  # the maximum is broad: take its centre
    best = float(np.sum(degs[top] * e[top]) / np.sum(e[top]))
    t = np.radians(best)
    return Frame(kc, jc, ic, float(np.cos(t)), float(np.sin(t)), sx, sy, sz)


def _sample(vol: F32, origin: tuple[int, int, int], f: Frame, a: F64, b: F64,
            xs: tuple[float, ...] = SLAB_MM) -> F64:
    """Mean over the lateral offsets ``xs`` of the CT at body-frame points (a, b) (same shape)."""
    out = np.zeros(np.broadcast(a, b).shape, np.float64)
    for x in xs:
        k, j, i = f.to_kji(a, b, x)
        coords = np.stack([k - origin[0], j - origin[1], i - origin[2]])
        out += ndimage.map_coordinates(vol, coords, order=1, mode="nearest")
    return out / len(xs)


def measure_body(ct: CTVolume, f: Frame, a_lo_disc: float, a_hi_disc: float) -> BodyGeometry:
    """Edges, the three heights, dense material and the trabecular ROI of one body.

    ``a_lo_disc`` / ``a_hi_disc``: positions (mm along the axis from the centre) of the discs
    below and above, from the level finder.
    """
    nk, nj, ni = ct.voxels.shape
    half_h = max(abs(a_lo_disc), abs(a_hi_disc)) + 12.0
    # block of the CT holding everything sampled below
    rz = (half_h + ANTERIOR_REACH_MM * abs(f.uy)) / f.sz + 2
    ry = (half_h * abs(f.uy) + ANTERIOR_REACH_MM + 12) / f.sy + 2
    rx = (LATERAL_REACH_MM + 12) / f.sx + 2
    k0, k1 = max(0, int(f.kc - rz)), min(nk, int(f.kc + rz) + 2)
    j0, j1 = max(0, int(f.jc - ry)), min(nj, int(f.jc + ry) + 2)
    i0, i1 = max(0, int(f.ic - rx)), min(ni, int(f.ic + rx) + 2)
    vol = np.asarray(ct.voxels[k0:k1, j0:j1, i0:i1], np.float32)
    org = (k0, j0, i0)

    # 1. antero-posterior edges on the mean profile of the body's middle (+-4 mm)
    a_band = np.arange(-4.0, 4.0 + 1e-9, STEP_MM)
    b_fwd = np.arange(0.0, ANTERIOR_REACH_MM + 12.0, STEP_MM)
    b_back = np.arange(0.0, POSTERIOR_REACH_MM + 12.0, STEP_MM)
    q_ant = _sample(vol, org, f, a_band[:, None], b_fwd[None, :]).mean(axis=0)
    q_post = _sample(vol, org, f, a_band[:, None], -b_back[None, :]).mean(axis=0)
    e_ant = _step_edge(q_ant, STEP_MM, ANTERIOR_REACH_MM)
    e_post = _canal_edge(q_post, STEP_MM)
    dense_mm3, dense_max = _dense(vol, org, f, a_lo_disc, a_hi_disc, e_ant, e_post)
    if e_ant is None or e_post is None:
        side = "anterior cortex" if e_ant is None else "posterior wall"
        return BodyGeometry(f, f"the {side} of the body was not found on the mid-sagittal "
                            "plane", dense_mm3=dense_mm3, dense_max_hu=dense_max)
    b_ant, b_post = e_ant, -e_post
    depth = b_ant - b_post
    if not DEPTH_RANGE_MM[0] <= depth <= DEPTH_RANGE_MM[1]:
        return BodyGeometry(f, f"implausible body depth {depth:.1f} mm (edges not trusted)",
                            b_ant, b_post, dense_mm3=dense_mm3, dense_max_hu=dense_max)
    b_c = 0.5 * (b_ant + b_post)

    # 2. width (left-right) through the body centre, for the ROI
    xs_r = np.arange(0.0, LATERAL_REACH_MM + 12.0, STEP_MM)
    aa = a_band[:, None, None]
    bb = (b_c + np.arange(-3.0, 3.0 + 1e-9, 1.0))[None, :, None]
    width = None
    x_c = 0.0
    qs = []
    for sign in (1.0, -1.0):
        k, j, i = f.to_kji(aa, bb, sign * xs_r[None, None, :])
        prof = ndimage.map_coordinates(
            vol, np.stack([k - k0, j - j0, i - i0]), order=1, mode="nearest"
        ).mean(axis=(0, 1))
        qs.append(_step_edge(prof, STEP_MM, LATERAL_REACH_MM))
    if qs[0] is not None and qs[1] is not None:
        width = qs[0] + qs[1]
        x_c = 0.5 * (qs[0] - qs[1])
        if not WIDTH_RANGE_MM[0] <= width <= WIDTH_RANGE_MM[1]:
            width, x_c = None, 0.0

    # 3. the three heights along lines parallel to the axis
    inset = HEIGHT_INSET_FRACTION * depth
    a = np.arange(a_lo_disc + DISC_WINDOW_MM[0] - 2.0, a_hi_disc + DISC_WINDOW_MM[1] + 2.0,
                  STEP_MM)
    lines: list[tuple[float, float, float]] = []
    for b_line in (b_ant - inset, b_c, b_post + inset):
        db = np.arange(-LINE_HALF_WIDTH_MM, LINE_HALF_WIDTH_MM + 1e-9, STEP_MM)
        c = _sample(vol, org, f, a[:, None], b_line + db[None, :]).mean(axis=1)
        vox = f.sz / max(abs(f.uz), 0.5)  # voxel size along the axis (mm)
        lo = _endplate_edge(c, a, a_lo_disc, upward=False, voxel_mm=vox)
        hi = _endplate_edge(c, a, a_hi_disc, upward=True, voxel_mm=vox)
        if hi is None and lo is not None:  # superior plate at / below the centre
            hi = _endplate_edge(c, a, a_hi_disc, upward=True, voxel_mm=vox,
                                a_start=lo + RESTART_CLEARANCE_MM)
            hi = hi if hi is not None and _two_plates(c, a, lo, hi) else None
        elif lo is None and hi is not None:  # inferior plate at / above the centre
            lo = _endplate_edge(c, a, a_lo_disc, upward=False, voxel_mm=vox,
                                a_start=hi - RESTART_CLEARANCE_MM)
            lo = lo if lo is not None and _two_plates(c, a, lo, hi) else None
        if lo is None or hi is None:
            name = ("anterior", "middle", "posterior")[len(lines)]
            which = "inferior" if lo is None else "superior"
            return BodyGeometry(f, f"the {which} endplate was not found on the {name} height "
                                "line", b_ant, b_post, width, x_c, dense_mm3=dense_mm3,
                                dense_max_hu=dense_max)
        lines.append((float(b_line), lo, hi))
    hs = [hi - lo for _, lo, hi in lines]
    if min(hs) < HEIGHT_RANGE_MM[0] or max(hs) > HEIGHT_RANGE_MM[1]:
        return BodyGeometry(f, f"implausible body height ({min(hs):.1f}-{max(hs):.1f} mm): "
                            "edges not trusted", b_ant, b_post, width, x_c, tuple(lines),
                            dense_mm3, dense_max)
    ap, mp = hs[0] / hs[2], hs[1] / hs[2]
    if max(ap, mp) > MAX_SHAPE_RATIO:
        return BodyGeometry(f, f"implausible body shape (anterior / middle height {ap:.2f} / "
                            f"{mp:.2f} x the posterior): edges or the level's discs not "
                            "trusted", b_ant, b_post, width, x_c, tuple(lines), dense_mm3,
                            dense_max)

    # 4. trabecular ROI on the original voxels
    a_c = 0.5 * (lines[1][1] + lines[1][2])
    w_roi = width if width is not None else depth * 1.3
    kk, jj, ii = np.meshgrid(np.arange(k0, k1, dtype=np.float64),
                             np.arange(j0, j1, dtype=np.float64),
                             np.arange(i0, i1, dtype=np.float64), indexing="ij")
    pa, pb, px = f.from_kji(kk, jj, ii)
    b_roi = b_c + ROI_ANTERIOR_SHIFT * depth
    inside = (
        (np.abs(pa - a_c) <= 0.5 * ROI_HEIGHT_FRACTION * min(hs))
        & (((pb - b_roi) / (ROI_SEMI_DEPTH * depth)) ** 2
           + ((px - x_c) / (ROI_SEMI_WIDTH * w_roi)) ** 2 <= 1.0)
    )
    vals = vol[inside]
    n = int(vals.size)
    voxel_mm3 = f.sx * f.sy * f.sz
    return BodyGeometry(
        f, "", b_ant, b_post, width, x_c, tuple(lines), dense_mm3, dense_max,
        float(vals.mean()) if n else None, float(vals.std(ddof=1)) if n > 1 else None,
        n, n * voxel_mm3, (a_c, b_roi),
    )


def _dense(vol: F32, org: tuple[int, int, int], f: Frame, a_lo: float, a_hi: float,
           e_ant: float | None, e_post: float | None) -> tuple[float, float | None]:
    """Volume (mm^3) and maximum HU of voxels > :data:`DENSE_HU` inside the body's box."""
    k0, j0, i0 = org
    mask = vol > DENSE_HU
    if not mask.any():
        return 0.0, None
    kk, jj, ii = np.nonzero(mask)
    pa, pb, px = f.from_kji((kk + k0).astype(np.float64), (jj + j0).astype(np.float64),
                            (ii + i0).astype(np.float64))
    b_hi = e_ant if e_ant is not None else 15.0
    b_lo = -e_post if e_post is not None else -15.0
    keep = ((pa > a_lo + 2.0) & (pa < a_hi - 2.0) & (pb <= b_hi) & (pb >= b_lo)
            & (np.abs(px) <= 18.0))
    n = int(keep.sum())
    if n == 0:
        return 0.0, None
    return n * f.sx * f.sy * f.sz, float(vol[kk[keep], jj[keep], ii[keep]].max())
