"""Pseudo-labels (issue 16, item 2): subject D's figures and a sanity check of the filter.

    .venv/bin/python benchmarks/segment_pseudo.py [--model META] [--out DIR] [--json OUT]

1. **Subject D** (unlabelled): ``rcsa.segment.pseudo`` on the slices around every level
   rcsa's level finder names, written as a prepared training subject to ``--out`` (QC
   images in ``--out/qc``): slices, kept fraction per class, structure-slices per rule.
2. **Sanity check on subjects A and B** (reference = TotalSegmentator v2 converted by the
   training rules): the same filter with the same model, and the precision of the kept
   pixels against the reference next to that of every predicted pixel. The shipped model
   was trained on A and B, so these figures are optimistic: they test the filter's logic
   (does it keep the right pixels and drop the wrong ones?), not the model.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path("/work/shared/data")
if not SHARED.is_dir():
    SHARED = REPO.parent / "shared" / "data"
D = SHARED / "ct_chest_pelvis_dicom" / "dicom"
SAMPLE = REPO / "sample_data"


def run(ct: Any, predictor: Any, agreement: float, per_level: int) -> Any:
    from rcsa.levels import find_levels
    from rcsa.segment.postprocess import gluteal_ceiling
    from rcsa.segment.pseudo import pseudo_labels

    lm = find_levels(ct)
    levels = {n: int(lv.slice_index) for n, lv in lm.levels.items()
              if lv.status == "found" and lv.slice_index is not None}
    ceiling = gluteal_ceiling(lm, abs(float(ct.spacing_mm[2])), int(ct.voxels.shape[0]))
    return pseudo_labels(ct, levels, predictor, agreement=agreement,
                         slices_per_level=per_level, ceiling=ceiling)


def precision(pl: Any, ref: Any, known: tuple[int, ...]) -> dict[str, Any]:
    """Kept-pixel vs all-pixel agreement with the reference (ignore / unknown excluded)."""
    from rcsa.segment import classes as C

    kept_ok = kept_n = all_ok = all_n = 0
    fg_kept_ok = fg_kept_n = fg_all_ok = fg_all_n = 0
    ref_fg_as_bg_kept = ref_fg_as_bg_all = ref_fg = 0
    per: dict[str, list[int]] = {c.name: [0, 0, 0, 0] for c in C.RCSA_CLASSES.classes}
    unknown = [c.id for c in C.RCSA_CLASSES.classes if c.id not in known]
    for s in pl.slices:
        r = ref[s.k].astype(np.int64)
        pred = s.predicted.astype(np.int64)
        lab = s.labels.astype(np.int64)
        # a class the reference does not define: its predicted pixels are not scored
        valid_u = ~np.isin(pred, unknown) if unknown else np.ones(r.shape, bool)
        valid = (r != C.IGNORE_INDEX) & valid_u
        kept = valid & (lab != C.IGNORE_INDEX)
        all_ok += int((pred[valid] == r[valid]).sum())
        all_n += int(valid.sum())
        kept_ok += int((lab[kept] == r[kept]).sum())
        kept_n += int(kept.sum())
        fga, fgk = valid & (pred > 0), kept & (lab > 0)
        fg_all_ok += int((pred[fga] == r[fga]).sum())
        fg_all_n += int(fga.sum())
        fg_kept_ok += int((lab[fgk] == r[fgk]).sum())
        fg_kept_n += int(fgk.sum())
        rf = valid & (r > 0)
        ref_fg += int(rf.sum())
        ref_fg_as_bg_all += int((rf & (pred == 0)).sum())
        ref_fg_as_bg_kept += int((rf & (lab == 0)).sum())
        for c in C.RCSA_CLASSES.classes:
            pa, pk = valid & (pred == c.id), kept & (lab == c.id)
            per[c.name][0] += int((r[pa] == c.id).sum())
            per[c.name][1] += int(pa.sum())
            per[c.name][2] += int((r[pk] == c.id).sum())
            per[c.name][3] += int(pk.sum())

    def f(a: int, b: int) -> float | None:
        return round(a / b, 4) if b else None

    return {
        "accuracy_all_pixels": f(all_ok, all_n), "accuracy_kept_pixels": f(kept_ok, kept_n),
        "kept_share_of_pixels": f(kept_n, all_n),
        "foreground_precision_all": f(fg_all_ok, fg_all_n),
        "foreground_precision_kept": f(fg_kept_ok, fg_kept_n),
        "reference_foreground_labelled_background_all": f(ref_fg_as_bg_all, ref_fg),
        "reference_foreground_labelled_background_kept": f(ref_fg_as_bg_kept, ref_fg),
        "per_class_precision": {n: {"all": f(v[0], v[1]), "kept": f(v[2], v[3]),
                                    "predicted_px": v[1], "kept_px": v[3]}
                                for n, v in per.items() if v[1]},
    }


def sheet(out: Path, pl: Any, path: Path, levels: tuple[str, ...] = ("L1", "L3", "L4", "S1"),
          scale: float = 0.7) -> None:
    """The QC images of the level slices side by side (scaled)."""
    from PIL import Image

    from rcsa.runfolder.qc import side_by_side

    chosen = pl.info["levels"]
    panels = []
    for name in levels:
        if name in chosen:
            img = Image.open(out / "qc" / f"D_{name}_k{chosen[name]:03d}.png").convert("RGB")
            panels.append(img.resize((round(img.width * scale), round(img.height * scale)),
                                     Image.Resampling.LANCZOS))
    path.parent.mkdir(parents=True, exist_ok=True)
    side_by_side(panels).save(path, optimize=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None, help="write subject D's pseudo subject")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--agreement", type=float, default=0.9)
    ap.add_argument("--slices-per-level", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sheet", type=Path, default=None,
                    help="QC sheet of subject D at L1, L3, L4, S1 (e.g. "
                         "docs/segment_pseudo_qc_subject_d.png)")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    from rcsa.io import load, load_labels
    from rcsa.segment.prepare import convert_labels
    from rcsa.segment.pseudo import model_predictor, write_pseudo_subject

    predictor = model_predictor(a.model)
    res: dict[str, Any] = {"model": dict(predictor.info), "agreement": a.agreement}
    ct = load(D)
    pl = run(ct, predictor, a.agreement, a.slices_per_level)
    res["D"] = pl.summary()
    out = a.out or Path(tempfile.mkdtemp()) / "pseudo_D"
    write_pseudo_subject(pl, ct, D, out, name="D", overwrite=a.out is not None)
    res["D"]["written"] = str(out)
    print("subject D:", json.dumps(res["D"], indent=1))
    if a.sheet:
        sheet(out, pl, a.sheet)

    da = SAMPLE / "ct_abdomen_pelvis"
    ct_a = load(da / "ct.nii.gz")
    ref_a = convert_labels(ct_a, load_labels(da / "labels_ts_v2.nii.gz", like=ct_a), "ts_v2",
                           load_labels(da / "vertebral_body_parts.nii.gz", like=ct_a))
    pl_a = run(ct_a, predictor, a.agreement, a.slices_per_level)
    res["A"] = {"summary": pl_a.summary(),
                "vs_reference": precision(pl_a, ref_a.labels.voxels, ref_a.known_classes)}
    print("subject A:", json.dumps(res["A"]["vs_reference"], indent=1))
    db = SAMPLE / "ct_thoracolumbar_dicom"
    ct_b = load(db / "dicom")
    ref_b = convert_labels(ct_b, load_labels(db / "labels_ts_v2.nii.gz", like=ct_b), "ts_v2")
    try:
        pl_b = run(ct_b, predictor, a.agreement, a.slices_per_level)
    except Exception as exc:  # no level found in B's 20 slices
        res["B"] = {"skipped": str(exc)}
    else:
        res["B"] = {"summary": pl_b.summary(),
                    "vs_reference": precision(pl_b, ref_b.labels.voxels, ref_b.known_classes)}
    print("subject B:", json.dumps(res["B"].get("vs_reference", res["B"]), indent=1))
    if a.json:
        a.json.write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
