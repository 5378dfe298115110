"""QC sheet of the label-aware synthetic variation (``rcsa.segment.synth``), read by eye.

    .venv/bin/python benchmarks/segment_synth_qc.py [--out docs/segment_synth_qc.png]

Rows: subject A at L3 (k 72) and L5 (k 50), subject B (k 10); columns: the training input
(centre channel, window -200..300 HU, labels blended), then each numpy family applied alone
with a fixed seed. The contours of the labels are drawn after the generator, so a label that
does not follow the image shows at once.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]


def _render(img: np.ndarray, lab: np.ndarray, scale: int = 2) -> Image.Image:
    from rcsa.segment import classes as C
    from rcsa.segment.qc import _colour
    from rcsa.segment.synth import to_hu

    hu = to_hu(img)
    grey = (np.clip((hu + 200.0) / 500.0, 0, 1) * 255).astype(np.uint8)
    rgb = np.repeat(grey[..., None], 3, axis=2).astype(np.float32)
    lab = lab.astype(np.int64)
    edge = lab != np.roll(lab, 1, axis=0)
    edge |= lab != np.roll(lab, 1, axis=1)
    for c in C.RCSA_CLASSES.classes[1:]:
        m = (lab == c.id) & edge
        rgb[m] = _colour(c.id)
    im = Image.fromarray(rgb.clip(0, 255).astype(np.uint8))
    return im.resize((im.width * scale, im.height * scale), Image.Resampling.NEAREST)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "segment_synth_qc.png")
    ap.add_argument("--seed", type=int, default=3)
    a = ap.parse_args()
    from rcsa.segment import synth
    from rcsa.segment.data import Preprocessing
    from rcsa.segment.train import build_items, read_manifest

    rows = read_manifest(REPO / "src" / "rcsa" / "models" / "training_manifest.csv")
    items = build_items(rows, Preprocessing(harmonise_fwhm_mm=3.0), synth=True)
    pick = [("A k72 (L3)", "A", 72), ("A k50 (L5)", "A", 50), ("B k10", "B", 10)]
    cols = ["input", *synth.FAMILIES]
    tiles: list[list[Image.Image]] = []
    for _label, subj, k in pick:
        it = next(i for i in items if i["subject"] == subj and i["k"] == k)
        base = {key: np.asarray(it[key]) for key in ("image", "thick", "label", "aux")}
        row = [_render(base["image"][1], base["label"][0])]
        for j, name in enumerate(synth.FAMILIES):
            rng = np.random.RandomState(a.seed + j)
            d = synth.FAMILIES[name].fn(dict(base), rng)
            row.append(_render(np.asarray(d["image"])[1], np.asarray(d["label"])[0]))
        tiles.append(row)
    tw = max(t.width for r in tiles for t in r)
    th = [max(t.height for t in r) for r in tiles]
    head, side = 16, 80
    sheet = Image.new("RGB", (side + tw * len(cols), head + sum(th)), (0, 0, 0))
    draw = ImageDraw.Draw(sheet)
    for j, c in enumerate(cols):
        draw.text((side + j * tw + 4, 2), c, fill=(255, 255, 255))
    y = head
    for (label, _s, _k), r, h in zip(pick, tiles, th, strict=True):
        draw.text((4, y + h // 2), label, fill=(255, 255, 255))
        for j, t in enumerate(r):
            sheet.paste(t, (side + j * tw, y))
        y += h
    a.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(a.out)
    print(f"wrote {a.out} ({sheet.width} x {sheet.height})")


if __name__ == "__main__":
    main()
