"""Quality-control image: curved sagittal and coronal reformats with the levels drawn."""

from __future__ import annotations

from pathlib import Path

import numpy as np

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


def write_qc_png(
    ct: CTVolume, lm: LevelMap, path: str | Path, title: str = "", overwrite: bool = True
) -> Path:
    """Write a PNG with a sagittal and a coronal reformat through the spine and every level.

    The reformats follow the detected spine (curved planes): the sagittal image takes, on
    each slice, the column through the vertebral body centre; the coronal image the row.
    Found levels are solid lines (manual ones dashed), labelled with name and slice index;
    the candidate slices of ambiguous levels are grey dotted lines marked ``name?``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    v = ct.voxels
    nk, _nj, _ni = v.shape
    ic, jc = _centreline(ct, lm)
    kk = np.arange(nk)
    sag = v[kk, :, ic].astype(np.float32)  # [k, j]
    cor = v[kk, jc, :].astype(np.float32)  # [k, i]
    sx, sy, sz = (float(a) for a in ct.spacing_mm)
    fig, axes = plt.subplots(1, 2, figsize=(12, 8), dpi=100)
    for ax, img, dx, lab in ((axes[0], sag, sy, "sagittal (A left, P right)"),
                             (axes[1], cor, sx, "coronal (patient R left, L right)")):
        ax.imshow(img, cmap="gray", vmin=-250, vmax=1000, origin="lower",
                  aspect=sz / dx, interpolation="nearest")
        ax.set_title(lab, fontsize=9)
        ax.set_xlabel("pixel")
        ax.set_ylabel("slice k (superior up)")
        width = img.shape[1]
        for name, lv in lm.levels.items():
            if lv.status == "ambiguous":  # where it could be: grey, dotted, with a '?'
                for k in lv.candidates:
                    ax.axhline(k, color="0.6", lw=0.6, ls=":")
                    ax.text(width / 2, k + 0.5, f"{name}?", color="0.7", fontsize=6,
                            ha="center", va="bottom")
            if not lv.found or lv.slice_index is None:
                continue
            colour = "yellow" if name in VERTEBRAE else ("cyan" if "disc" in name else "lime")
            style = "--" if lv.method == "manual" else "-"
            ax.axhline(lv.slice_index, color=colour, lw=0.8, ls=style)
            # vertebrae labelled on the right, disc and pelvic levels on the left
            right = name in VERTEBRAE
            ax.text(width - 1 if right else 1, lv.slice_index + 0.5,
                    f"{name} ({lv.slice_index})", color=colour, fontsize=7,
                    ha="right" if right else "left", va="bottom")
            if lv.upper_endplate_slice is not None:
                ax.axhline(lv.upper_endplate_slice, color=colour, lw=0.4, ls=":")
    fig.suptitle(title or "rcsa levels", fontsize=10)
    if lm.warnings:
        fig.text(0.01, 0.01, "warnings: " + "; ".join(lm.warnings)[:300], fontsize=7,
                 color="red", wrap=True)
    out = Path(path)
    try:
        atomic_write(
            out,
            lambda tmp: fig.savefig(tmp, format="png", pil_kwargs={"compress_level": 1}),
            overwrite=overwrite,
            create_parent=True,
        )
    finally:
        plt.close(fig)
    return out
