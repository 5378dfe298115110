"""Label-aware synthetic variation of labelled CT slices: new bodies from the labelled ones.

Torch-free (numpy / scipy). Every generator takes one training sample at the network's
working resolution and changes image and labels *together*:

* ``image`` (C, H, W): the 2.5-D stack, normalised HU (:func:`rcsa.segment.data.normalise`);
* ``thick`` (C, H, W): the same stack from a volume smoothed along z to an effective slice
  thickness of :data:`THICK_SLICE_MM` (for the slice-thickness generator);
* ``label`` (1, H, W): rcsa class ids, 255 = ignore;
* ``aux`` (1, H, W): 1 = contrast-fillable vessel (aorta, venae cavae, iliac and portal
  vessels), 2 = kidney, from the TotalSegmentator labels where a subject has them, else 0.

The generators (families of ``docs/segment.md``, "Synthetic variation"):

``fat``         subcutaneous fat thickness scaled 0.5-2.0x by a radial warp around the body
                outline (thin and obese habitus without changing the muscles);
``atrophy``     muscles eroded by 1-5 mm, the ring filled with fat HU and relabelled
                background;
``hypertrophy`` the counterpart: muscles grown by 1-5 mm into the fat around them (never
                into another structure, organ or air), the ring painted with the muscle's
                own HU and texture and relabelled as that muscle (muscular habitus);
``infiltration`` intramuscular fat: muscle mean HU lowered 10-40 HU and streaks near -100 HU;
``lean``        denser muscle: muscle mean HU raised 10-30 HU (lean or contrast-enhanced muscle);
``contrast``    contrast-enhanced vessels (+100-250 HU) and kidneys (+50-180 HU) where the
                labels give them and the scan is not enhanced already;
``thickness``   slice thickness from the native one up to :data:`THICK_SLICE_MM`;
``pixel``       coarser pixels (the working 2 mm down to 3 mm and back);
``kernel``      sharp reconstruction kernel (unsharp masking; blur is a MONAI transform).

Geometric families (elastic, habitus scale / aspect, rotation, off-centre) are MONAI
transforms in :func:`rcsa.segment.train.train_transforms`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from rcsa.segment import classes as C
from rcsa.segment import data

F32 = npt.NDArray[np.float32]
Sample = dict[str, Any]
Rng = np.random.RandomState

#: Effective slice thickness of the ``thick`` channel stack (mm).
THICK_SLICE_MM = 5.0
#: HU window of the normalised input (must match :class:`rcsa.segment.data.Preprocessing`).
HU_MIN, HU_MAX = -250.0, 350.0
#: rcsa muscle class ids (multifidus .. gluteus medius, both sides; left, right adjacent).
MUSCLE_IDS: tuple[int, ...] = tuple(C.RCSA_CLASSES.muscle_ids())
VESSEL, KIDNEY = 1, 2


def to_norm(hu: float | npt.NDArray[Any]) -> Any:
    return (np.asarray(hu, np.float32) - HU_MIN) / (HU_MAX - HU_MIN)


def to_hu(x: npt.NDArray[Any]) -> F32:
    return np.asarray(np.asarray(x, np.float32) * (HU_MAX - HU_MIN) + HU_MIN, np.float32)


def _arr(d: Mapping[str, Any], key: str) -> F32:
    return np.array(d[key], dtype=np.float32, copy=True)


def _channels(d: Sample) -> list[str]:
    return [k for k in ("image", "thick") if k in d]


# ---------------------------------------------------------------------------------------------
# body composition


def body_mask(centre: F32) -> npt.NDArray[np.bool_]:
    """The largest component of fat and denser tissue (> -190 HU), holes filled
    (:func:`rcsa.segment.data.body_mask`)."""
    return data.body_mask(centre, float(to_norm(-190.0)), fill_holes=True)


def fat_warp(d: Sample, rng: Rng, scale: float | None = None, n_bins: int = 180) -> Sample:
    """Subcutaneous fat thickness times ``scale`` (random 0.5-2.0) by a radial warp.

    In polar coordinates about the body's centroid, the body outline is R(theta) and the
    inner border of the subcutaneous fat r0(theta) is the outermost non-fat (> -30 HU) pixel
    at least 6 mm inside the skin, smoothed over theta. Output radius r maps to input radius r
    inside r0 and to r0 + (r - r0) / scale outside it, so the fat layer (and skin) is
    stretched or compressed and everything inside the abdominal wall stays put.
    """
    img = _arr(d, "image")
    c = img.shape[0] // 2
    body = body_mask(img[c])
    if body.sum() < 400:
        return d
    s = float(scale if scale is not None else np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
    if s > 1.0:  # room for the thicker body: pad every array with air first
        rows, cols = np.nonzero(body)
        depth = 0.25 * min(np.ptp(rows), np.ptp(cols))  # generous bound on the fat layer
        pad = int(np.ceil((s - 1.0) * depth)) + 2
        d = {k: (np.pad(np.asarray(v), ((0, 0), (pad, pad), (pad, pad)))
                 if k in ("image", "thick", "label", "aux") else v) for k, v in d.items()}
        img = _arr(d, "image")
        body = body_mask(img[c])
    h, w = body.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cy, cx = (float(v) for v in ndimage.center_of_mass(body))
    r = np.hypot(yy - cy, xx - cx)
    th = np.arctan2(yy - cy, xx - cx)
    b = ((th + np.pi) / (2 * np.pi) * n_bins).astype(np.int64) % n_bins
    R = np.zeros(n_bins)
    np.maximum.at(R, b[body], r[body])
    dense = body & (img[c] > to_norm(-30.0)) & (r < R[b] - 3.0)  # 3 px = 6 mm inside skin
    r0 = np.zeros(n_bins)
    np.maximum.at(r0, b[dense], r[dense])
    r0 = np.where(r0 > 0, r0, R - 3.0)
    r0 = ndimage.median_filter(r0, size=15, mode="wrap")
    r0 = ndimage.gaussian_filter1d(r0, 3.0, mode="wrap")
    r0 = np.clip(r0, 0.5 * R, np.maximum(R - 1.0, 0.5 * R))
    # r0 at the pixel's exact angle (linear between bins)
    fb = (th + np.pi) / (2 * np.pi) * n_bins - 0.5
    i0 = np.floor(fb).astype(np.int64)
    t = fb - i0
    r0p = r0[i0 % n_bins] * (1 - t) + r0[(i0 + 1) % n_bins] * t
    r_in = np.where(r <= r0p, r, r0p + (r - r0p) / s)
    with np.errstate(invalid="ignore", divide="ignore"):
        f = np.where(r > 0, r_in / r, 1.0)
    src = np.stack([cy + (yy - cy) * f, cx + (xx - cx) * f])
    out = dict(d)
    for key in _channels(d):
        a = _arr(d, key)
        out[key] = np.stack([ndimage.map_coordinates(ch, src, order=1, mode="constant", cval=0.0)
                             for ch in a]).astype(np.float32)
    for key in ("label", "aux"):
        if key in d:
            a = _arr(d, key)
            out[key] = ndimage.map_coordinates(a[0], src, order=0, mode="constant",
                                               cval=0.0)[None].astype(np.float32)
    return out


def _fat_texture(shape: tuple[int, ...], rng: Rng, mean_hu: float = -100.0,
                 sd_hu: float = 15.0) -> F32:
    return np.asarray(to_norm(mean_hu + sd_hu * ndimage.gaussian_filter(
        rng.normal(0, 1.6, shape), 0.7)), np.float32)


def atrophy(d: Sample, rng: Rng, pixel_mm: float = 2.0, max_mm: float = 5.0,
            max_share: float = 1.0 / 3.0) -> Sample:
    """Erode each muscle class by 1-``max_mm`` mm (per muscle, both sides alike), at most
    ``max_share`` of its largest inner distance; the eroded ring becomes fat (-100 +- 15 HU)
    and background."""
    lab = _arr(d, "label")[0].astype(np.int64)
    ring = np.zeros(lab.shape, bool)
    for left in MUSCLE_IDS[::2]:
        if rng.random_sample() < 0.3:  # this muscle spared
            continue
        depth = rng.uniform(1.0, max_mm) / pixel_mm
        for cid in (left, left + 1):
            m = lab == cid
            if m.any():
                dist = ndimage.distance_transform_edt(m)
                # never more than a third of the muscle's half-thickness: a thin muscle (the
                # gluteus medius' sliver at L5) thins, it does not vanish
                ring |= m & (dist <= min(depth, max_share * float(dist.max())))
    if not ring.any():
        return d
    out = dict(d)
    fat = _fat_texture(lab.shape, rng)
    for key in _channels(d):
        a = _arr(d, key)
        a[:, ring] = fat[ring]
        out[key] = a
    lab2 = _arr(d, "label")
    lab2[0, ring] = 0
    out["label"] = lab2
    return out


def hypertrophy(d: Sample, rng: Rng, pixel_mm: float = 2.0, max_mm: float = 5.0,
                fat_hu: tuple[float, float] = (-190.0, -30.0)) -> Sample:
    """Grow each muscle class by 1-``max_mm`` mm (per muscle, both sides alike) into the
    background pixels of fat density (``fat_hu``, centre channel) next to it: the ring gets the
    muscle's own mean and spread of intensity (smoothed noise) in every channel and the
    muscle's label. The counterpart of :func:`atrophy`: the training subjects' muscles are
    small (subject A: psoas about 360 mm^2 per side at L3), a young or muscular adult's are
    twice that. Growth never takes another class, an organ or gas (not fat density), and a
    pixel next to two growing muscles goes to the first one drawn."""
    lab = _arr(d, "label")[0].astype(np.int64)
    centre = _arr(d, "image")
    centre = centre[centre.shape[0] // 2]
    lo, hi = to_norm(fat_hu[0]), to_norm(fat_hu[1])
    free = (lab == 0) & (centre >= lo) & (centre <= hi)
    new = np.zeros(lab.shape, np.int64)
    order = list(MUSCLE_IDS[::2])
    rng.shuffle(order)
    for left in order:
        if rng.random_sample() < 0.3:  # this muscle spared
            continue
        depth = rng.uniform(1.0, max_mm) / pixel_mm
        for cid in (left, left + 1):
            m = lab == cid
            if m.sum() < 4:
                continue
            # geodesic growth through fat only: one-pixel dilations that change only ``free``
            grown = ndimage.binary_dilation(m, iterations=max(1, round(depth)),
                                            mask=free & (new == 0))
            ring = grown & ~m
            if ring.any():
                new[ring] = cid
    if not new.any():
        return d
    out = dict(d)
    noise = ndimage.gaussian_filter(rng.normal(0, 1.6, lab.shape), 0.7)
    arrays = {key: _arr(d, key) for key in _channels(d)}
    for cid in np.unique(new[new > 0]):
        ring, m = new == cid, lab == cid
        for a in arrays.values():
            vals = a[:, m]  # (channels, pixels of the muscle)
            mu, sd = vals.mean(axis=1), vals.std(axis=1)
            a[:, ring] = mu[:, None] + sd[:, None] * noise[ring][None, :]
    for key, a in arrays.items():
        out[key] = np.clip(a, 0.0, 1.0)
    lab2 = _arr(d, "label")
    lab2[0, new > 0] = new[new > 0]
    out["label"] = lab2
    return out


def infiltration(d: Sample, rng: Rng) -> Sample:
    """Fatty infiltration inside the muscles: mean lowered by 10-40 HU, and 3-15 % of the
    muscle turned into elongated streaks near -100 HU (thresholded anisotropic noise).
    Labels unchanged (intramuscular fat lies inside the muscle outline)."""
    lab = _arr(d, "label")[0]
    muscle = np.isin(lab, MUSCLE_IDS)
    if muscle.sum() < 20:
        return d
    shift = float(to_norm(rng.uniform(10.0, 40.0)) - to_norm(0.0))
    sig = (rng.uniform(0.6, 1.2), rng.uniform(1.5, 4.0))
    if rng.random_sample() < 0.5:
        sig = sig[::-1]
    field_ = ndimage.gaussian_filter(rng.normal(0, 1, lab.shape), sig)
    q = rng.uniform(0.03, 0.15)
    thr = np.quantile(field_[muscle], 1 - q)
    streak = muscle & (field_ >= thr)
    fat = _fat_texture(lab.shape, rng, -100.0, 20.0)
    out = dict(d)
    for key in _channels(d):
        a = _arr(d, key)
        a[:, muscle] -= shift
        a[:, streak] = 0.2 * a[:, streak] + 0.8 * fat[streak]
        out[key] = np.clip(a, 0.0, 1.0)
    return out


def lean(d: Sample, rng: Rng) -> Sample:
    """Denser (leaner or contrast-enhanced) muscle: every muscle's mean raised by 10-30 HU,
    each muscle class by its own amount (+-5 HU around the common shift), the texture kept.
    The counterpart of :func:`infiltration`: the training subjects' muscles lie at the fatty,
    low-attenuation end of the adult range (subject A at L3: autochthon median 14 HU, psoas
    38 HU), while lean adult muscle is commonly 40-60 HU and intravenous contrast raises it
    further. Labels unchanged."""
    lab = _arr(d, "label")[0]
    muscle = np.isin(lab, MUSCLE_IDS)
    if muscle.sum() < 20:
        return d
    base = rng.uniform(10.0, 30.0)
    out = dict(d)
    arrays = {key: _arr(d, key) for key in _channels(d)}
    for cid in MUSCLE_IDS:
        m = lab == cid
        if not m.any():
            continue
        shift = float(to_norm(base + rng.uniform(-5.0, 5.0)) - to_norm(0.0))
        for a in arrays.values():
            a[:, m] += shift
    for key, a in arrays.items():
        out[key] = np.clip(a, 0.0, 1.0)
    return out


def contrast(d: Sample, rng: Rng) -> Sample:
    """Contrast enhancement of vessels (+100-250 HU) and kidneys (+50-180 HU) from ``aux``,
    only where they are not enhanced already (mean below 100 HU)."""
    if "aux" not in d:
        return d
    aux = _arr(d, "aux")[0]
    img = _arr(d, "image")
    c = img.shape[0] // 2
    out = dict(d)
    changed = False
    for cls, lo, hi in ((VESSEL, 100.0, 250.0), (KIDNEY, 50.0, 180.0)):
        m = aux == cls
        if m.sum() < 4 or float(to_hu(img[c][m]).mean()) > 100.0:
            continue
        delta = float(to_norm(rng.uniform(lo, hi)) - to_norm(0.0))
        soft = ndimage.gaussian_filter(m.astype(np.float32), 0.6) * delta
        for key in _channels(d):
            a = np.asarray(out[key], np.float32).copy()
            out[key] = np.clip(a + soft[None], 0.0, 1.0)
        changed = True
    return out if changed else d


# ---------------------------------------------------------------------------------------------
# acquisition


def thickness(d: Sample, rng: Rng) -> Sample:
    """Slice thickness between the native one and :data:`THICK_SLICE_MM` (linear blend of the
    native and the z-smoothed stack)."""
    if "thick" not in d:
        return d
    u = rng.uniform(0.0, 1.0)
    out = dict(d)
    out["image"] = ((1 - u) * _arr(d, "image") + u * _arr(d, "thick")).astype(np.float32)
    return out


def pixel_size(d: Sample, rng: Rng, max_factor: float = 1.5) -> Sample:
    """Coarser acquisition pixels: down-sample by 1-``max_factor`` and back (bilinear)."""
    img = _arr(d, "image")
    f = rng.uniform(1.05, max_factor)
    h, w = img.shape[1:]
    small = ndimage.zoom(img, (1, 1 / f, 1 / f), order=1, mode="nearest", grid_mode=True)
    back = ndimage.zoom(small, (1, h / small.shape[1], w / small.shape[2]), order=1,
                        mode="nearest", grid_mode=True)
    out = dict(d)
    out["image"] = np.asarray(back[:, :h, :w], np.float32)
    return out


def kernel_sharpen(d: Sample, rng: Rng) -> Sample:
    """Sharp reconstruction kernel: unsharp masking with gain 0.3-1.5."""
    img = _arr(d, "image")
    gain = rng.uniform(0.3, 1.5)
    blur = ndimage.gaussian_filter(img, (0, 1.0, 1.0))
    out = dict(d)
    out["image"] = np.clip(img + gain * (img - blur), 0.0, 1.0).astype(np.float32)
    return out


@dataclass(frozen=True)
class Family:
    name: str
    fn: Callable[[Sample, Rng], Sample]
    prob: float
    description: str


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("fat", fat_warp, 0.4, "subcutaneous fat thickness x0.5-2.0 (radial warp)"),
    Family("atrophy", atrophy, 0.3, "muscles eroded 1-5 mm, ring -> fat HU and background"),
    Family("hypertrophy", hypertrophy, 0.3, "muscles grown 1-5 mm into the fat around "
           "them, ring -> the muscle's HU and label"),
    Family("infiltration", infiltration, 0.3,
           "muscle mean -10..-40 HU, 3-15 % streaks near -100 HU"),
    Family("lean", lean, 0.3, "muscle mean +10..+30 HU (+-5 per muscle): lean or "
           "contrast-enhanced muscle"),
    Family("contrast", contrast, 0.4, "vessels +100-250 HU, kidneys +50-180 HU"),
    Family("thickness", thickness, 0.5, f"slice thickness native..{THICK_SLICE_MM:g} mm"),
    Family("pixel", pixel_size, 0.3, "acquisition pixels 2-3 mm (down / up sampling)"),
    Family("kernel", kernel_sharpen, 0.2, "sharp kernel (unsharp mask, gain 0.3-1.5)"),
)}
#: Families carried out by MONAI transforms in :func:`rcsa.segment.train.train_transforms`
#: (stronger versions of the v0.3 recipe's geometric and noise augmentation).
MONAI_FAMILIES: dict[str, str] = {
    "geometry": "habitus scale 0.75-1.3 per axis (aspect), rotation +-15 deg, off-centre "
    "+-40 mm, elastic p 0.5",
    "noise": "Gaussian noise up to 36 HU sd (p 0.4)",
}
#: Groups used on the command line (``rcsa train --synth tissue,acquisition``).
GROUPS: dict[str, tuple[str, ...]] = {
    "tissue": ("fat", "atrophy", "infiltration", "contrast"),
    "acquisition": ("thickness", "pixel", "kernel", "noise"),
    "all": ("geometry", "fat", "atrophy", "infiltration", "contrast", "thickness", "pixel",
            "kernel", "noise"),
}
#: Order (body-outline warps first, then tissue, then acquisition; MONAI families last).
ORDER = ("thickness", "fat", "atrophy", "hypertrophy", "infiltration", "lean", "contrast",
         "pixel", "kernel", "geometry", "noise")


def expand(names: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Family names from a comma-separated list of families and / or groups, in
    :data:`ORDER`; raises ``ValueError`` on an unknown name."""
    parts = names.split(",") if isinstance(names, str) else list(names)
    chosen: set[str] = set()
    for p in (x.strip() for x in parts):
        if not p or p == "none":
            continue
        if p in GROUPS:
            chosen |= set(GROUPS[p])
        elif p in FAMILIES or p in MONAI_FAMILIES:
            chosen.add(p)
        else:
            raise ValueError(f"unknown synthetic variation {p!r}; families: "
                             f"{', '.join([*FAMILIES, *MONAI_FAMILIES])}; groups: "
                             f"{', '.join(GROUPS)}")
    return tuple(n for n in ORDER if n in chosen)


def apply(d: Sample, names: tuple[str, ...], rng: Rng,
          probs: Mapping[str, float] | None = None) -> Sample:
    """Apply the named (numpy) families in order, each with its probability."""
    for n in names:
        if n not in FAMILIES:
            continue
        fam = FAMILIES[n]
        p = fam.prob if probs is None else probs.get(n, fam.prob)
        if rng.random_sample() < p:
            d = fam.fn(d, rng)
    return d
