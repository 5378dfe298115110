"""Quality-control image: curved sagittal and coronal reformats with the levels drawn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rcsa.io.volume import CTVolume
from rcsa.levels.types import VERTEBRAE, LevelMap
from rcsa.outputs import atomic_write


def _centreline(ct: CTVolume, lm: LevelMap) -> tuple[np.ndarray, np.ndarray]:
    """Column (i) and row (j) of the spine for every slice (straight midline if unknown)."""
    nk, nj, ni = ct.voxels.shape
    cl = lm.diagnostics.get("centreline") if lm.diagnostics else None
    if cl and len(cl["k"]) >= 2:
        kk = np.arange(nk)
        i = np.interp(kk, cl["k"], cl["i"])
        j = np.interp(kk, cl["k"], cl["j"])
    else:
        i = np.full(nk, ni / 2.0)
        j = np.full(nk, nj * 0.6)
    return np.clip(np.round(i), 0, ni - 1).astype(int), np.clip(np.round(j), 0, nj - 1).astype(int)


#: Display window (HU) of the reformats: bone and soft tissue both readable.
WINDOW_HU = (-250.0, 1000.0)
#: Height of each reformat in the image (pixels); width follows the physical aspect.
PANEL_HEIGHT = 760
#: Widest a reformat panel may get (pixels).
MAX_PANEL_WIDTH = 1000
_COLOURS = {"vertebra": (255, 230, 0), "disc": (0, 230, 230), "pelvic": (60, 230, 60),
            "anchor": (255, 90, 255), "count": (150, 200, 255),
            "ambiguous": (165, 165, 165), "warning": (255, 80, 80), "text": (235, 235, 235)}


def _font(size: int) -> Any:
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _panel(img: npt.NDArray[np.float32], row_mm: float, slice_mm: float, height: int
           ) -> tuple[Any, float]:
    """Grey-scale panel of a [k, x] reformat, superior up, resampled to ``height`` rows with
    the physical aspect; returns (image, pixels per slice)."""
    from PIL import Image

    lo, hi = WINDOW_HU
    g = np.clip((img - lo) / (hi - lo) * 255.0, 0, 255).astype(np.uint8)[::-1]  # superior up
    nk, nx = g.shape
    width = max(1, round(height * (nx * row_mm) / (nk * slice_mm)))
    return Image.fromarray(g, "L").resize((width, height), Image.Resampling.BILINEAR), height / nk


def _draw_count(draw: Any, ct: CTVolume, lm: LevelMap, x0: int, y_of: Any, font: Any) -> None:
    """On the sagittal panel: a tick at every disc found, the name(s) the count gives each
    vertebra ('L2/L3?' where it is not pinned), and the anchor(s) the count rests on."""
    d = lm.diagnostics or {}
    zs = ct.z_mm()
    order = np.argsort(zs)

    def k_of(z: float) -> float:
        return float(np.interp(z, zs[order], order.astype(np.float64)))

    for z in d.get("discs_z_mm", []):
        y = y_of(k_of(z))
        draw.line([(x0, y), (x0 + 14, y)], fill=_COLOURS["disc"], width=2)
    for seg in d.get("segments", []):
        names = seg.get("names", [])
        mid = seg.get("mid_z")
        if mid is None or not names:
            continue
        label = names[0] if len(names) == 1 else "/".join(names[:3]) + "?"
        draw.text((x0 + 18, y_of(k_of(mid)) - 6), label, fill=_COLOURS["count"], font=font)
    for name, a in d.get("anchors", {}).items():
        if a.get("z_mm") is None:
            continue
        y = y_of(k_of(a["z_mm"]))
        draw.ellipse([(x0 + 4, y - 4), (x0 + 12, y + 4)], outline=_COLOURS["anchor"], width=2)
        draw.text((x0 + 60, y - 6), f"anchor: {name}", fill=_COLOURS["anchor"], font=font)


def write_qc_png(
    ct: CTVolume, lm: LevelMap, path: str | Path, title: str = "", overwrite: bool = True
) -> Path:
    """Write a PNG with a sagittal and a coronal reformat through the spine and every level.

    The reformats follow the detected spine (curved planes): the sagittal image takes, on
    each slice, the column through the vertebral body centre; the coronal image the row.
    Found levels are solid lines (manual ones dashed), labelled with name and slice index
    (vertebrae yellow, discs cyan, pelvic levels green); the candidate slices of ambiguous
    levels are grey dotted lines marked ``name?``; thin dotted lines mark upper endplates.
    Drawn with Pillow (no matplotlib: this image is written by every ``rcsa run``).
    """
    from PIL import Image, ImageDraw

    v = ct.voxels
    nk, _nj, _ni = v.shape
    ic, jc = _centreline(ct, lm)
    kk = np.arange(nk)
    sag = v[kk, :, ic].astype(np.float32)  # [k, j]: anterior left, posterior right
    cor = v[kk, jc, :].astype(np.float32)  # [k, i]: patient right left, left right
    sx, sy, sz = (float(a) for a in ct.spacing_mm)
    # panels keep the physical aspect; a short scan (one slice, a thin slab) gets a low
    # panel rather than one tens of thousands of pixels wide
    z_extent = nk * sz
    w_extent = max(_nj * sy, _ni * sx)
    h = int(min(PANEL_HEIGHT, max(8, round(MAX_PANEL_WIDTH * z_extent / max(w_extent, 1e-6)))))
    panels = [(_panel(sag, sy, sz, h), "sagittal (A left, P right)"),
              (_panel(cor, sx, sz, h), "coronal (patient R left, L right)")]
    gap, top, bottom = 16, 58, 40 + 14 * min(len(lm.warnings), 4)
    width = sum(p.width for (p, _), _ in panels) + gap * (len(panels) + 1)
    canvas = Image.new("RGB", (max(width, 640), top + h + bottom), (0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    f_title, f_label = _font(16), _font(12)
    draw.text((gap, 8), title or "rcsa levels", fill=_COLOURS["text"], font=f_title)
    x0 = gap
    for (panel, per_slice), caption in panels:
        canvas.paste(panel.convert("RGB"), (x0, top))
        draw.text((x0, top - 20), caption, fill=_COLOURS["text"], font=f_label)

        def y_of(k: float, per: float = per_slice) -> float:
            return top + h - (k + 0.5) * per  # slice centre, superior up

        def hline(y: float, colour: tuple[int, int, int], width_px: int = 1,
                  dash: int = 0, x_left: int = x0, x_right: int = x0 + panel.width) -> None:
            if not dash:
                draw.line([(x_left, y), (x_right, y)], fill=colour, width=width_px)
                return
            for xs in range(x_left, x_right, 2 * dash):
                draw.line([(xs, y), (min(xs + dash, x_right), y)], fill=colour, width=width_px)

        for name, lv in lm.levels.items():
            if lv.status == "ambiguous":  # where it could be: grey, dotted, with a '?'
                for k in lv.candidates:
                    hline(y_of(k), _COLOURS["ambiguous"], dash=2)
                    draw.text((x0 + panel.width // 2, y_of(k) - 13), f"{name}?",
                              fill=_COLOURS["ambiguous"], font=f_label)
            if not lv.found or lv.slice_index is None:
                continue
            kind = "vertebra" if name in VERTEBRAE else ("disc" if "disc" in name else "pelvic")
            colour = _COLOURS[kind]
            y = y_of(lv.slice_index)
            hline(y, colour, width_px=2, dash=6 if lv.method == "manual" else 0)
            label = f"{name} ({lv.slice_index})"
            if name in VERTEBRAE:  # vertebrae labelled on the right, the others on the left
                tw = draw.textlength(label, font=f_label)
                draw.text((x0 + panel.width - tw - 2, y - 14), label, fill=colour, font=f_label)
            else:
                draw.text((x0 + 2, y - 14), label, fill=colour, font=f_label)
            if lv.upper_endplate_slice is not None:
                hline(y_of(lv.upper_endplate_slice), colour, dash=2)
        if caption.startswith("sagittal"):
            _draw_count(draw, ct, lm, x0, y_of, f_label)
        x0 += panel.width + gap
    method = lm.diagnostics.get("count_method") if lm.diagnostics else None
    if method:
        draw.text((gap, 28), f"vertebrae: {method}", fill=_COLOURS["anchor"], font=f_label)
    for n, w in enumerate(lm.warnings[:4]):
        draw.text((gap, top + h + 10 + 14 * n), f"warning: {w}"[:200],
                  fill=_COLOURS["warning"], font=f_label)
    out = Path(path)
    atomic_write(out, lambda tmp: canvas.save(tmp, format="PNG", compress_level=1),
                 overwrite=overwrite, create_parent=True)
    return out
