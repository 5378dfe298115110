"""Evaluation of a segmentation model on the shared sample data (numbers for the model card).

``python -m rcsa.segment.evaluate [--model DIR/metadata.json] [--json OUT]`` prints:

* subject A (abdomen-pelvis): Dice per class at L3 / L4 / L5 / femoral_head_top / sij_lower
  (reference slices of ``sample_data/README``) against TS-v2 and TS-v1 converted with
  :func:`rcsa.segment.prepare.convert_labels`, plus autochthon (multifidus + erector) Dice;
* subject B (thoracolumbar DICOM): autochthon Dice L / R over its 20 slices (3-D) and per
  class (multifidus / erector, rule-derived reference);
* subject C (Alberta L3 slice): share of predicted muscle pixels inside the traced muscle.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rcsa.config import load_config
from rcsa.io import CTVolume, load, load_labels, read_tag
from rcsa.levels import find_levels
from rcsa.segment import classes as C
from rcsa.segment.infer import SegmentationResult, segment
from rcsa.segment.model import LoadedModel, load_model
from rcsa.segment.prepare import convert_labels

SAMPLE = Path(__file__).resolve().parents[3] / "sample_data"
LEVELS_A = {"L3": 72, "L4": 62, "L5": 50, "sij_lower": 31, "femoral_head_top": 19}


def _dice(a: npt.NDArray[np.bool_], b: npt.NDArray[np.bool_]) -> float | None:
    s = int(a.sum()) + int(b.sum())
    return None if int(b.sum()) == 0 else round(2.0 * float((a & b).sum()) / s, 4)


def per_class_dice(pred: npt.NDArray[Any], ref: npt.NDArray[Any]) -> dict[str, float | None]:
    """Dice per rcsa class (None where the reference lacks the class) + merged autochthon;
    reference pixels marked ignore (255) are excluded."""
    valid = ref != C.IGNORE_INDEX
    out: dict[str, float | None] = {}
    for c in C.RCSA_CLASSES.classes[1:]:
        out[c.name] = _dice((pred == c.id) & valid, (ref == c.id) & valid)
    for side, ids in (("left", (C.MULTIFIDUS_L, C.ERECTOR_L)),
                      ("right", (C.MULTIFIDUS_R, C.ERECTOR_R))):
        out[f"autochthon_{side}"] = _dice(np.isin(pred, ids) & valid, np.isin(ref, ids) & valid)
    return out


def surface_dice(pred: npt.NDArray[np.bool_], ref: npt.NDArray[np.bool_],
                 spacing_mm: Sequence[float], tolerance_mm: float) -> float | None:
    """Normalised surface Dice (Nikolov et al. 2021, arXiv:2111.05408) of two masks on the
    same grid: the share of both boundaries that lies within ``tolerance_mm`` of the other.
    ``spacing_mm`` per array axis (``(dz, dy, dx)`` for ``[k, j, i]``). None without
    reference pixels. Unlike Dice it does not count boundary disagreement below the
    tolerance, which is how a reference whose own outline is uncertain by that much is read
    (MONAI ``compute_surface_dice``, boundary pixels counted as edges)."""
    import torch
    from monai.metrics.surface_dice import compute_surface_dice

    if not ref.any():
        return None
    if not pred.any():
        return 0.0

    def onehot(m: npt.NDArray[np.bool_]) -> Any:
        t = torch.as_tensor(np.ascontiguousarray(m))
        return torch.stack([~t, t])[None].float()

    with warnings.catch_warnings():  # MONAI 1.6 passes a deprecated argument internally
        warnings.simplefilter("ignore", FutureWarning)
        v = compute_surface_dice(onehot(pred), onehot(ref), [float(tolerance_mm)],
                                 spacing=[float(x) for x in spacing_mm])
    return round(float(v.item()), 4)


def evaluate_a(model: LoadedModel, tta: bool = True, root: Path = SAMPLE) -> dict[str, Any]:
    d = root / "ct_abdomen_pelvis"
    ct = load(d / "ct.nii.gz")
    parts = load_labels(d / "vertebral_body_parts.nii.gz", like=ct)
    refs = {
        "ts_v2": convert_labels(ct, load_labels(d / "labels_ts_v2.nii.gz", like=ct), "ts_v2",
                                parts).labels.voxels,
        "ts_v1": convert_labels(ct, load_labels(d / "labels_ts_v1.nii.gz", like=ct), "ts_v1",
                                parts).labels.voxels,
    }
    t = time.perf_counter()
    res = segment(ct, LEVELS_A, model=model, tta=tta)
    seconds = time.perf_counter() - t
    out: dict[str, Any] = {"seconds_per_level": round(seconds / len(LEVELS_A), 3), "levels": {}}
    for lv in res:
        out["levels"][lv.level] = {
            "slice_index": lv.slice_index,
            "dice_vs": {name: per_class_dice(lv.labels, ref[lv.slice_index])
                        for name, ref in refs.items()},
            "flags": list(lv.flags),
            "confidence": dict(lv.confidence),
        }
    # the reference band: TS-v1 vs TS-v2 on the same slices
    out["v1_vs_v2"] = {name: per_class_dice(refs["ts_v1"][k], refs["ts_v2"][k])
                       for name, k in LEVELS_A.items()}
    return out


def load_subject_b(root: Path = SAMPLE) -> tuple[CTVolume, npt.NDArray[np.integer[Any]]]:
    """Subject B (thoracolumbar DICOM) and its reference labels (rcsa class ids, CT grid)."""
    d = root / "ct_thoracolumbar_dicom"
    ct = load(d / "dicom")
    ref = convert_labels(ct, load_labels(d / "labels_ts_v2.nii.gz", like=ct), "ts_v2"
                         ).labels.voxels
    return ct, ref


def segment_every_slice(model: LoadedModel, ct: CTVolume, tta: bool = True,
                        level_map: Any = None) -> SegmentationResult:
    """Every slice of ``ct`` segmented unnamed (``k00``, ``k01``, ...); the pelvic landmarks
    from ``level_map`` or, by default, rcsa's own level finder on ``ct`` (as in production),
    never from reference labels."""
    levels = {f"k{k:02d}": k for k in range(ct.voxels.shape[0])}
    return segment(ct, levels, model=model, tta=tta,
                   level_map=find_levels(ct) if level_map is None else level_map)


def segment_subject_b(model: LoadedModel, tta: bool = True, root: Path = SAMPLE
                      ) -> tuple[SegmentationResult, npt.NDArray[np.integer[Any]]]:
    """Subject B segmented on every slice (:func:`segment_every_slice`), with its reference
    labels (rcsa class ids)."""
    ct, ref = load_subject_b(root)
    return segment_every_slice(model, ct, tta), ref


def evaluate_b(model: LoadedModel, tta: bool = True, root: Path = SAMPLE) -> dict[str, Any]:
    res, ref = segment_subject_b(model, tta, root)
    pred = np.stack([lv.labels for lv in res])
    per = per_class_dice(pred, ref)
    return {
        "dice_3d_all_slices": {k: v for k, v in per.items() if v is not None},
        "autochthon_mean": round(float(np.mean([per["autochthon_left"] or 0,
                                                per["autochthon_right"] or 0])), 4),
        "n_slices": len(res),
    }


def evaluate_c(model: LoadedModel, tta: bool = True, root: Path = SAMPLE) -> dict[str, Any]:
    d = root / "l3_slice_alberta"
    ct = load(d / "slice_uncompressed.dcm")
    tag = read_tag(d / "tissue_labels.tag", reference=ct)
    res = segment(ct, {"L3": 0}, model=model, tta=tta)
    lv = res["L3"]
    muscle_ids = C.RCSA_CLASSES.muscle_ids()
    pred = np.isin(lv.labels, muscle_ids)
    traced = tag.voxels[0] == 1
    inside = float((pred & traced).sum()) / max(1, int(pred.sum()))
    # the Alberta protocol counts as muscle only the pixels at -29..150 HU inside the muscle
    # outline (the tracing holds no others); the same rule applied to the prediction gives
    # its "lean" muscle pixels (rcsa's lean_csa_mm2)
    lo, hi = load_config().measure.lean_hu
    hu = ct.voxels[0]
    lean = pred & (hu >= lo) & (hu <= hi)
    lean_inside = float((lean & traced).sum()) / max(1, int(lean.sum()))
    psoas: dict[str, Any] = {}
    for side in ("left", "right"):  # issue 16: psoas must be found on this L3 slice
        m = lv.mask(f"psoas_{side}")
        psoas[f"psoas_{side}_mm2"] = round(lv.area_mm2(f"psoas_{side}"), 1)
        psoas[f"psoas_{side}_share_inside"] = (round(float((m & traced).sum()) / int(m.sum()),
                                                     3) if m.any() else None)
        psoas[f"psoas_{side}_seg_confidence"] = lv.seg_confidence.get(f"psoas_{side}")
    return {
        "predicted_muscle_px": int(pred.sum()),
        "share_inside_traced_muscle": round(inside, 4),
        "predicted_lean_muscle_px": int(lean.sum()),
        "share_inside_traced_muscle_lean_px": round(lean_inside, 4),
        "traced_muscle_px": int(traced.sum()),
        "share_of_traced_covered": round(float((pred & traced).sum()) / max(1, traced.sum()), 4),
        "areas_mm2": {k: round(v, 1) for k, v in lv.areas_mm2().items() if v > 0},
        "flags": list(lv.flags),
        **psoas,
    }


def evaluate_all(model: LoadedModel, tta: bool = True,
                 parts: Sequence[str] = ("A", "B", "C")) -> dict[str, Any]:
    fns = {"A": evaluate_a, "B": evaluate_b, "C": evaluate_c}
    return {p: fns[p](model, tta) for p in parts}


def _table(res: Mapping[str, Any]) -> str:
    lines = []
    if "A" in res:
        lines.append("subject A, Dice vs TS-v2 (TS-v1):")
        for lvname, d in res["A"]["levels"].items():
            v2, v1 = d["dice_vs"]["ts_v2"], d["dice_vs"]["ts_v1"]
            cells = [f"{k}={v2[k]:.3f}({v1[k]:.3f})" if v2[k] is not None and v1[k] is not None
                     else f"{k}={v2[k]}" for k in v2 if v2[k] is not None]
            lines.append(f"  {lvname}: " + " ".join(cells))
    if "B" in res:
        lines.append(f"subject B: {res['B']['dice_3d_all_slices']}")
    if "C" in res:
        lines.append(f"subject C: {res['C']}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> str:
    """Evaluate the model on the sample subjects; returns the table (the caller prints it)."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--no-tta", action="store_true")
    ap.add_argument("--parts", default="A,B,C")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    model = load_model(a.model)
    res = evaluate_all(model, not a.no_tta, tuple(a.parts.split(",")))
    if a.json:
        a.json.write_text(json.dumps(res, indent=1) + "\n")
    return _table(res)


if __name__ == "__main__":
    import sys

    sys.stdout.write(main() + "\n")
