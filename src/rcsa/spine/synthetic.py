"""Synthetic vertebral compressions for validation (``benchmarks/spine_compress.py``).

The body of one measured vertebra is squeezed along its own axis (the frame its heights were
measured in), at every antero-posterior position b of the body frame: its superior endplate
moves down by ``loss`` x the local height, the body between the endplates is resampled
into the shorter span and everything above moves down by the same amount (slices removed
inside the body; for a wedge or a biconcave loss the column above is sheared, so the
vertebrae above keep their heights and the disc above its thickness; the top of the scan
repeats its last slice over the lost height). That is mode ``remove``. Mode ``stretch``
instead fills the gap with :data:`DISC_STRETCH_MM` of the disc above (from
:data:`ENDPLATE_BLUR_MM` above the endplate), stretched,
so that every other structure keeps its place and the level map of the original scan stays
valid: it tests the measurement and the grading alone, without the level finder.
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
from scipy import ndimage

from rcsa.io.volume import CTVolume
from rcsa.spine.body import Frame
from rcsa.spine.types import VertebraResult

Kind = Literal["crush", "wedge", "biconcave"]
Mode = Literal["remove", "stretch"]
#: ``stretch`` mode: height of the disc above the body stretched into the gap (mm) ...
DISC_STRETCH_MM = 4.0
#: ... taken from above the endplate's partial-volume blur, which reaches this far past the
#: measured surface at 2-3 mm slices (stretched, it would fill the gap with half-bone grey).
ENDPLATE_BLUR_MM = 2.5
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
    c_lo = np.polyfit([p[1] for p in lo], [p[0] for p in lo], 1)
    c_hi = np.polyfit([p[1] for p in hi], [p[0] for p in hi], 1)
    ks_all = [ln.inferior_kji[0] for ln in v.lines] + [ln.superior_kji[0] for ln in v.lines]
    k0 = max(0, int(np.floor(min(ks_all) - 20.0 / sz)))
    # cubic B-spline resampling: a thin endplate (one voxel at 3 mm) keeps its peak when moved
    # by a fraction of a voxel, where linear interpolation would flatten it
    vol = ndimage.spline_filter(np.asarray(ct.voxels, np.float32), order=3, mode="nearest")
    out = np.array(ct.voxels, copy=True)
    ii = np.arange(ni, dtype=np.float64)
    for c0 in range(k0, nk, CHUNK_SLICES):
        c1 = min(nk, c0 + CHUNK_SLICES)
        kk, jj = np.meshgrid(np.arange(c0, c1, dtype=np.float64),
                             np.arange(nj, dtype=np.float64), indexing="ij")
        a, b, _ = f.from_kji(kk, jj, np.zeros_like(kk) + o[2])
        a_lo, a_hi = np.polyval(c_lo, b), np.polyval(c_hi, b)
        if kind == "crush":
            w = np.ones_like(b)
        elif kind == "wedge":  # b grows anteriorly
            w = np.clip((b - b_p) / (b_a - b_p), 0.0, 1.0)
        elif kind == "biconcave":
            half = np.where(b > b_m, b_a - b_m, b_m - b_p)
            w = np.clip(1.0 - np.abs(b - b_m) / half, 0.0, 1.0)
        else:
            raise ValueError(f"unknown compression kind {kind!r}")
        drop = loss * w * (a_hi - a_lo)
        top = a_hi - drop
        body = (a >= a_lo) & (a <= top)
        scale = (a_hi - a_lo) / np.maximum(top - a_lo, 1e-6)
        src = np.where(body, a_lo + (a - a_lo) * scale, a)
        if mode == "remove":
            src = np.where(a > top, a + drop, src)  # everything above moves down
        else:  # DISC_STRETCH_MM of the disc above, past the endplate's blur, fills the gap
            a_t = a_hi + np.minimum(drop, ENDPLATE_BLUR_MM)  # no change where nothing drops
            a_s = a_t + DISC_STRETCH_MM
            gap = (a > top) & (a <= a_s)
            src = np.where(gap, a_t + (a - top) * (a_s - a_t) / np.maximum(a_s - top, 1e-6),
                           src)
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
