"""Sagittal QC sheet of the spine analysis: the three heights drawn on every vertebra."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rcsa.io.volume import CTVolume
from rcsa.levels.types import LevelMap
from rcsa.outputs import atomic_write
from rcsa.spine.types import SpineResult

#: Display window (HU): bone detail.
WINDOW_HU = (-200.0, 1000.0)
#: Pixels per mm of the reformat.
PX_PER_MM = 3.0
#: The reformat reaches this far in front of / behind the spine's centre line (mm).
ANTERIOR_MM = 80.0
POSTERIOR_MM = 50.0
GRADE_COLOURS = {0: (60, 220, 60), 1: (255, 230, 0), 2: (255, 140, 0), 3: (255, 50, 50)}
GREY = (170, 170, 170)
TEXT = (235, 235, 235)


def _font(size: int) -> Any:
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def write_spine_qc_png(ct: CTVolume, lm: LevelMap, res: SpineResult, path: Path | str,
                       overwrite: bool = False, title: str | None = None) -> Path:
    """Curved mid-sagittal reformat along the spine (anterior left), each measured vertebra's
    anterior / middle / posterior height drawn in its grade's colour, the trabecular ROI centre
    marked, and a table of the figures; not measured vertebrae listed with their reason."""
    from PIL import Image, ImageDraw

    nk, nj, ni = ct.voxels.shape
    _sx, sy, sz = (float(s) for s in ct.spacing_mm)
    cl = (lm.diagnostics or {}).get("centreline")
    kk = np.arange(nk)
    if cl and len(cl.get("k", [])) >= 2:
        ic = np.interp(kk, cl["k"], cl["i"])
        jc = np.interp(kk, cl["k"], cl["j"])
    else:
        ic, jc = np.full(nk, ni / 2.0), np.full(nk, nj * 0.6)
    j_mid = float(np.median(jc))
    j0 = max(0, int(j_mid - ANTERIOR_MM / sy))
    j1 = min(nj, int(j_mid + POSTERIOR_MM / sy) + 1)
    cols = np.clip(np.round(ic), 0, ni - 1).astype(int)
    sag = ct.voxels[kk, j0:j1, :][np.arange(nk), :, cols].astype(np.float32)  # [k, j]
    lo, hi = WINDOW_HU
    g = np.clip((sag - lo) / (hi - lo) * 255.0, 0, 255).astype(np.uint8)[::-1]
    w_px = max(1, round((j1 - j0) * sy * PX_PER_MM))
    h_px = max(1, round(nk * sz * PX_PER_MM))
    scale = min(1.0, 1400.0 / h_px)
    w_px, h_px = max(1, round(w_px * scale)), max(1, round(h_px * scale))
    panel = Image.fromarray(g, "L").resize((w_px, h_px), Image.Resampling.BILINEAR)
    table_w, top = 560, 40
    canvas = Image.new("RGB", (w_px + table_w + 30, max(h_px + top + 10, 420)), (0, 0, 0))
    canvas.paste(panel.convert("RGB"), (10, top))
    draw = ImageDraw.Draw(canvas)
    f_title, f_small = _font(16), _font(12)
    draw.text((10, 8), title or "rcsa spine: vertebral heights (sagittal, anterior left)",
              fill=TEXT, font=f_title)

    def xy(k: float, j: float) -> tuple[float, float]:
        x = 10 + (j - j0 + 0.5) / (j1 - j0) * w_px
        y = top + h_px - (k + 0.5) / nk * h_px
        return x, y

    for name, v in res.vertebrae.items():
        colour = GRADE_COLOURS.get(v.genant_grade, GREY) if v.genant_grade is not None else GREY
        for ln in v.lines:
            draw.line([xy(ln.inferior_kji[0], ln.inferior_kji[1]),
                       xy(ln.superior_kji[0], ln.superior_kji[1])], fill=colour, width=2)
        if v.roi_centre_kji is not None:
            x, y = xy(v.roi_centre_kji[0], v.roi_centre_kji[1])
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], outline=(0, 220, 255))
        if v.lines:
            k_lab = max(ln.superior_kji[0] for ln in v.lines)
            x, y = xy(k_lab, min(ln.superior_kji[1] for ln in v.lines))
            draw.text((x - 30, y - 2), name, fill=colour, font=f_small)
        elif v.mid_slice is not None:
            x, y = xy(v.mid_slice, j_mid)
            draw.text((x - 30, y), f"{name}: n/m", fill=GREY, font=f_small)
    # the table
    x0, y = w_px + 25, top
    draw.text((x0, y), "vertebra  A / M / P mm   A/P   red.%  Genant       HU", fill=TEXT,
              font=f_small)
    y += 18
    for name, v in res.vertebrae.items():
        if v.measured:
            colour = GRADE_COLOURS.get(v.genant_grade, GREY) if v.genant_grade is not None else GREY
            hu = "-" if v.trabecular_hu is None else f"{v.trabecular_hu:.0f}"
            red = "-" if v.height_reduction_pct is None else f"{v.height_reduction_pct:.0f}"
            kind = "" if v.morphology in (None, "normal") else f" {v.morphology}"
            line = (f"{name:4s}  {v.height_anterior_mm:4.1f} / {v.height_middle_mm:4.1f} / "
                    f"{v.height_posterior_mm:4.1f}  {v.ratio_anterior_posterior:4.2f}  "
                    f"{red:>4s}   {v.genant_grade}{kind:11s}  {hu:>4s}")
            draw.text((x0, y), line, fill=colour, font=f_small)
        else:
            draw.text((x0, y), f"{name:4s}  {v.status}: {v.reason}"[:88], fill=GREY, font=f_small)
        y += 16
    y += 8
    n = res.fractured_vertebrae_n
    draw.text((x0, y), f"fractured vertebrae (Genant >= 1): {'-' if n is None else n}"
              + (f" ({', '.join(res.fractured)})" if res.fractured else ""), fill=TEXT,
              font=f_small)
    y += 16
    if res.bone_attenuation_hu is not None:
        draw.text((x0, y), f"trabecular {res.bone_attenuation_vertebra}: "
                  f"{res.bone_attenuation_hu:.0f} HU", fill=TEXT, font=f_small)
        y += 16
        draw.text((x0, y), f"  {res.bone_attenuation_band}"[:90], fill=TEXT, font=f_small)
        y += 16
    for w in res.warnings:
        draw.text((x0, y), f"warning: {w}"[:90], fill=(255, 80, 80), font=f_small)
        y += 16
    draw.text((x0, y + 8), "lines: anterior, middle, posterior height; colour = Genant grade "
              "(green 0,", fill=GREY, font=f_small)
    draw.text((x0, y + 24), "yellow 1, orange 2, red 3, grey not graded); cyan circle = "
              "trabecular ROI centre.", fill=GREY, font=f_small)
    draw.text((x0, y + 40), "Attenuation bands are published thresholds, not a diagnosis.",
              fill=GREY, font=f_small)
    out = Path(path)
    atomic_write(out, lambda tmp: canvas.save(tmp, format="PNG", compress_level=1),
                 overwrite=overwrite, create_parent=True)
    return out
