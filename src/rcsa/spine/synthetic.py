"""Synthetic vertebral compressions for validation (``benchmarks/spine_compress.py``).

The body of one measured vertebra is squeezed along its own axis (the frame its heights were
measured in), at every antero-posterior position b of the body frame: its superior endplate
(the plate with its partial-volume blur, :data:`ENDPLATE_BAND_MM` either side of the measured
surface) moves down rigidly by ``loss`` x the local height (surface to surface), and the
trabecular interior between the two plates' bands is resampled into the shorter span.
Because the plates keep their profiles, the applied loss is the loss of the body's measured
height (squeezing the plates with the body thinned their blurred peaks and pulled them
inwards, so that up to 7 points more loss was seen than applied). The surfaces are piecewise
linear through the three measured lines, so the loss is exact at each line.

Mode ``remove`` (slices removed inside the body): everything above moves down by the same
amount; for a wedge the column above is sheared, so the vertebrae above keep their heights
and the disc above its thickness (a real wedge fracture tilts the column into kyphosis
instead); the top of the scan repeats its last slice over the lost height. Mode
``stretch``: the gap is filled with the disc's lower half (from the plate's band to the
disc's darkest point, within :data:`DISC_SEARCH_MM`), stretched, and the canal and the
posterior elements are not squeezed (:data:`POSTERIOR_TAPER_MM`), so that every other
structure keeps its place and the level map of the original scan stays valid: it tests the
measurement and the grading alone, without the level finder. A ``biconcave`` loss leaves the
rim in place, so in both modes nothing above moves and the disc fills the depression (as
the nucleus does).
The loss per row:

* ``crush``: the same fraction everywhere (like removing slices inside the body);
* ``wedge``: ``loss`` at the anterior height line, falling linearly to 0 at the posterior one;
* ``biconcave``: ``loss`` at the middle line, falling linearly to 0 at the anterior and
  posterior lines (the endplate's centre pushed in).

It is a geometric model of a fracture (no trabecular impaction, no endplate break), for
testing that the measurement and the grading recover a known height loss.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from rcsa.io.volume import CTVolume
from rcsa.spine.body import HEIGHT_INSET_FRACTION, Frame
from rcsa.spine.types import VertebraResult

Kind = Literal["crush", "wedge", "biconcave"]
Mode = Literal["remove", "stretch"]
#: Each endplate is kept whole over this far (mm) on either side of its measured surface:
#: the cortical plate and its partial-volume blur, which reaches about 2.5 mm past the
#: surface at 2-3 mm slices (at most a quarter of the compressed height: a short body keeps
#: a squeezable interior).
ENDPLATE_BAND_MM = 3.0
#: ``stretch`` mode: the disc's darkest point is looked for this far (mm) above the superior
#: surface (per antero-posterior position); the disc from the plate's band up to it is
#: stretched into the gap, so the gap is disc whatever the disc's thickness (a fixed span
#: reached the next endplate's blur where a posterior lumbar disc is 3-4 mm thin).
DISC_SEARCH_MM = 8.0
#: ``stretch`` mode: behind the posterior wall the loss falls to 0 over this distance (mm),
#: so the canal and the posterior elements keep their shape (an osteoporotic compression
#: fracture is one of the anterior and middle column; squeezed with the body, the pedicles
#: and laminae moved into the band where the posterior wall is found). Mode ``remove``
#: squeezes the whole slab, so that everything above can move down in one piece.
POSTERIOR_TAPER_MM = 3.0
#: Slices resampled at a time (bounds the memory of the coordinate arrays).
CHUNK_SLICES = 16


def compress_vertebra(ct: CTVolume, v: VertebraResult, loss: float, kind: Kind,
                      mode: Mode = "remove") -> CTVolume:
    """A copy of ``ct`` with the body of ``v`` (a measured vertebra) compressed by ``loss``
    (0-0.8) of its height, of the given ``kind``; ``mode`` ``remove`` shortens the spine,
    ``stretch`` keeps every other structure in place (see the module docstring)."""
    if not v.measured or len(v.lines) != 3:
        raise ValueError(f"{v.name} is not measured: nothing to compress")
    if not 0.0 <= loss <= 0.8:
        raise ValueError(f"loss {loss} outside 0-0.8")
    if v.axis_kj is None:
        raise ValueError(f"{v.name} has no body axis")
    ant, mid, post = v.lines
    nk, nj, ni = ct.voxels.shape
    sx, sy, sz = (float(x) for x in ct.spacing_mm)
    uz, uy = v.axis_kj
    o = mid.inferior_kji
    f = Frame(o[0], o[1], o[2], uz, uy, sx, sy, sz)

    def ab(p: tuple[float, float, float]) -> tuple[float, float]:
        a, b, _ = f.from_kji(np.array(p[0]), np.array(p[1]), np.array(p[2]))
        return float(a), float(b)

    lo = [ab(ln.inferior_kji) for ln in (ant, mid, post)]
    hi = [ab(ln.superior_kji) for ln in (ant, mid, post)]
    b_a, b_m, b_p = (p[1] for p in lo)
    depth = v.depth_mm if v.depth_mm is not None else (b_a - b_p) / (1 - 2 * HEIGHT_INSET_FRACTION)
    b_wall = b_p - HEIGHT_INSET_FRACTION * depth  # the posterior wall
    # the endplate surfaces, piecewise linear through the three measured points (exact at
    # each height line, so that the loss applied there is that line's measured height loss;
    # a least-squares line would put a concave plate's middle too high), flat beyond them
    order = np.argsort([p[1] for p in lo])
    xb_lo = np.array([lo[n][1] for n in order])
    xa_lo = np.array([lo[n][0] for n in order])
    order = np.argsort([p[1] for p in hi])
    xb_hi = np.array([hi[n][1] for n in order])
    xa_hi = np.array([hi[n][0] for n in order])
    ks_all = [ln.inferior_kji[0] for ln in v.lines] + [ln.superior_kji[0] for ln in v.lines]
    k0 = max(0, int(np.floor(min(ks_all) - 20.0 / sz)))
    # cubic B-spline resampling: a thin endplate (one voxel at 3 mm) keeps its peak when moved
    # by a fraction of a voxel, where linear interpolation would flatten it
    # a biconcave loss leaves the rim in place: the disc follows the depressed centre (the
    # nucleus bulges into it) in both modes, and nothing above moves
    fill = mode == "stretch" or kind == "biconcave"
    if fill:
        dark_bg, dark_mm = _disc_darkest(ct, f, xb_hi, xa_hi)
    vol = ndimage.spline_filter(np.asarray(ct.voxels, np.float32), order=3, mode="nearest")
    out = np.array(ct.voxels, copy=True)
    ii = np.arange(ni, dtype=np.float64)
    for c0 in range(k0, nk, CHUNK_SLICES):
        c1 = min(nk, c0 + CHUNK_SLICES)
        kk, jj = np.meshgrid(np.arange(c0, c1, dtype=np.float64),
                             np.arange(nj, dtype=np.float64), indexing="ij")
        a, b, _ = f.from_kji(kk, jj, np.zeros_like(kk) + o[2])
        a_lo, a_hi = np.interp(b, xb_lo, xa_lo), np.interp(b, xb_hi, xa_hi)
        if kind == "crush":
            w = np.ones_like(b)
        elif kind == "wedge":  # b grows anteriorly
            w = np.clip((b - b_p) / (b_a - b_p), 0.0, 1.0)
        elif kind == "biconcave":
            half = np.where(b > b_m, b_a - b_m, b_m - b_p)
            w = np.clip(1.0 - np.abs(b - b_m) / half, 0.0, 1.0)
        else:
            raise ValueError(f"unknown compression kind {kind!r}")
        if mode == "stretch":  # the posterior elements are not squeezed (see POSTERIOR_...)
            w = w * np.clip((b - b_wall + POSTERIOR_TAPER_MM) / POSTERIOR_TAPER_MM, 0.0, 1.0)
        h = a_hi - a_lo
        drop = loss * w * h
        # each endplate keeps its profile (plate and partial-volume blur, +-band): the
        # superior one moves down rigidly by ``drop``, the trabecular interior between the
        # bands is squeezed, so that the body's height (plate to plate) loses exactly
        # ``drop`` (squeezing the plates with the body would thin and shift their peaks)
        band = np.minimum(ENDPLATE_BAND_MM, 0.25 * (h - drop))
        in_lo, in_hi = a_lo + band, a_hi - band  # interior, source
        new_hi = in_hi - drop  # interior's new upper end
        interior = (a > in_lo) & (a <= new_hi)
        scale = (in_hi - in_lo) / np.maximum(new_hi - in_lo, 1e-6)
        src = np.where(interior, in_lo + (a - in_lo) * scale, a)
        moved = a > new_hi  # the superior plate's band (and, removed, all above)
        if not fill:
            src = np.where(moved, a + drop, src)
        else:  # the disc's lower half, from the plate's band to its darkest point, stretched
            dark = np.interp(b, dark_bg, dark_mm)
            d0 = a_hi + np.minimum(band, 0.5 * dark)  # source: from the band's outer end ...
            d1 = a_hi + dark  # ... to the disc's darkest point
            plate = moved & (a <= d0 - drop)
            gap = (a > d0 - drop) & (a <= d1)
            src = np.where(plate, a + drop, src)
            src = np.where(gap, d0 + (a - (d0 - drop)) * (d1 - d0)
                           / np.maximum(d1 - d0 + drop, 1e-6), src)
        shift = src - a  # mm along the axis
        if not np.any(shift):
            continue
        coords = np.empty((3, c1 - c0, nj, ni), np.float64)
        coords[0] = (kk + shift * uz / sz)[:, :, None]
        coords[1] = (jj + shift * uy / sy)[:, :, None]
        coords[2] = ii[None, None, :]
        block = ndimage.map_coordinates(vol, coords, order=3, mode="nearest", prefilter=False)
        if out.dtype == np.int16:
            block = np.clip(np.round(block), -32768, 32767)
        out[c0:c1] = block.astype(out.dtype)
    return replace(ct, voxels=out)


def _disc_darkest(ct: CTVolume, f: Frame, xb_hi: npt.NDArray[np.float64],
                  xa_hi: npt.NDArray[np.float64]
                  ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per antero-posterior position b (mm, a grid over the body +-15 mm): how far (mm) above
    the superior surface the disc is darkest (4 mm lateral slab, 1.5 mm along the axis)."""
    bg = np.arange(float(xb_hi.min()) - 15.0, float(xb_hi.max()) + 15.0 + 1e-9, 0.5)
    da = np.arange(0.5, DISC_SEARCH_MM + 1e-9, 0.5)
    aa = np.interp(bg, xb_hi, xa_hi)[:, None] + da[None, :]
    bb = np.broadcast_to(bg[:, None], aa.shape)
    vol = np.asarray(ct.voxels, np.float32)
    prof = np.zeros(aa.shape, np.float64)
    for x in (-2.0, -1.0, 0.0, 1.0, 2.0):
        k, j, i = f.to_kji(aa, bb, x)
        prof += ndimage.map_coordinates(vol, np.stack([k, j, i]), order=1, mode="nearest")
    prof = ndimage.uniform_filter1d(prof, 3, axis=1)
    dark = ndimage.median_filter(da[np.argmin(prof, axis=1)], 5, mode="nearest")
    return bg, dark.astype(np.float64)
