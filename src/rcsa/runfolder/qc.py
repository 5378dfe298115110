"""QC overlay PNGs of label slices (torch-free; Pillow, which scikit-image already depends on).

The ``qc/<level>.png`` images of a run folder, and the QC images of ``rcsa prepare-training``
(through :mod:`rcsa.segment.qc`, which re-exports :func:`overlay_png`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw

from rcsa.anatomy import ANATOMY, ClassMap

#: RGB per class id of the anatomy table (``colours`` of its rows); others grey.
_COLOURS: dict[int, tuple[int, int, int]] = {0: (0, 0, 0), **ANATOMY.colours()}
_GREY = (200, 200, 200)


def _colour(i: int) -> tuple[int, int, int]:
    return _COLOURS.get(i, _GREY)


def overlay_png(
    hu: npt.NDArray[Any],
    labels: npt.NDArray[Any],
    class_map: ClassMap,
    path: Path,
    title: str = "",
    spacing_mm: tuple[float, float] = (1.0, 1.0),
    alpha: float = 0.45,
    lines: tuple[str, ...] = (),
    hatch: npt.NDArray[np.bool_] | None = None,
) -> Path:
    """Write ``hu[j, i]`` (window -200..300 HU) with ``labels`` blended in; returns ``path``.

    Displayed radiologically: patient's left on the image's right, anterior at the top. The
    image is scaled to square pixels of about 1 mm (at least 384 px wide). ``hatch`` (same
    shape as ``labels``): pixels drawn hatched in grey (e.g. the *ignored* pixels of
    pseudo-labels), on the scaled image so the stripes stay visible.
    """
    grey = (np.clip((np.asarray(hu, np.float32) + 200.0) / 500.0, 0, 1) * 255).astype(np.uint8)
    lab = np.asarray(labels)
    ids = [c.id for c in class_map.classes]
    lut = np.zeros((max(max(ids), int(lab.max(initial=0))) + 1, 3), np.float32)
    weight = np.zeros(len(lut), np.float32)  # blending weight of each label's colour
    for c in class_map.classes:
        if c.id != 0:
            lut[c.id] = _colour(c.id)
            weight[c.id] = alpha
    w = weight[lab][..., np.newaxis]
    rgb = (1 - w) * grey[..., np.newaxis].astype(np.float32) + w * lut[lab]
    img = Image.fromarray(rgb.clip(0, 255).astype(np.uint8))
    h_mm, w_mm = lab.shape[0] * spacing_mm[1], lab.shape[1] * spacing_mm[0]
    scale = max(1.0, 384.0 / max(w_mm, 1e-6))
    size = (max(1, round(w_mm * scale)), max(1, round(h_mm * scale)))
    img = img.resize(size, Image.Resampling.NEAREST)
    if hatch is not None and np.asarray(hatch).any():
        big = np.asarray(Image.fromarray(np.asarray(hatch, np.uint8) * 255).resize(
            size, Image.Resampling.NEAREST)) > 0
        yy, xx = np.indices(big.shape)
        stripe = big & ((xx + yy) % 6 < 2)
        arr = np.asarray(img).copy()
        arr[big] = (arr[big].astype(np.float32) * 0.6 + 0.4 * 128).astype(np.uint8)
        arr[stripe] = (170, 170, 170)
        img = Image.fromarray(arr)
    legend = [c for c in class_map.classes if c.id != 0 and (lab == c.id).any()]
    pad = 14 * (len(legend) + len(lines) + (2 if title else 1))
    canvas = Image.new("RGB", (img.width, img.height + pad), (0, 0, 0))
    canvas.paste(img, (0, 0))
    draw = ImageDraw.Draw(canvas)
    y = img.height + 2
    if title:
        draw.text((4, y), title, fill=(255, 255, 255))
        y += 14
    for line in lines:
        draw.text((4, y), line, fill=(255, 255, 255))
        y += 14
    for c in legend:
        draw.rectangle((4, y + 2, 14, y + 11), fill=_colour(c.id))
        draw.text((20, y), c.name, fill=(255, 255, 255))
        y += 14
    draw.text((4, 2), "R", fill=(255, 255, 0))
    draw.text((img.width - 12, 2), "L", fill=(255, 255, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path, compress_level=1)  # QC images: fast, not small
    return path


def side_by_side(panels: list[Image.Image]) -> Image.Image:
    """QC panels pasted left to right on black, top-aligned (a sheet of several slices)."""
    if not panels:
        raise ValueError("no panels to put side by side")
    sheet = Image.new("RGB", (sum(p.width for p in panels), max(p.height for p in panels)),
                      (0, 0, 0))
    x = 0
    for p in panels:
        sheet.paste(p.convert("RGB"), (x, 0))
        x += p.width
    return sheet
