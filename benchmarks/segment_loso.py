"""Leave-one-subject-out evaluation of the segmentation model: issue 16's table in one run.

Run from the repository root (nothing else heavy running)::

    .venv/bin/python benchmarks/segment_loso.py --held-out-model RUN_A_ONLY/model/metadata.json
    .venv/bin/python benchmarks/segment_loso.py --model M.json --held-out-model H.json \\
        --baseline benchmarks/segment_loso_v0.3.json --json OUT.json

Two models: ``--model`` (the model under test, trained on every labelled subject; default
the shipped one) and ``--held-out-model`` (its sibling trained by the same command with
``--val-subjects B``, i.e. on subject A only). Sections:

1. **cross-subject**: the A-only model on subject B (never seen): Dice per class, 3-D over
   B's 20 slices, flip TTA and post-processing as in ``python -m rcsa.segment.evaluate``;
   MF+ES = autochthon (multifidus + erector spinae; target >= 0.88 both sides). Beside it a
   check of the reference itself (:func:`reference_check`): how coarse B's reference outline
   is, the HU of the pixels only the model or only the reference call autochthon, and the
   2-D surface Dice at 3 mm; ``--figure PNG`` draws both outlines on three slices.
2. **subject C** (Alberta L3, human tracing of all muscle, never trained on), both models:
   share of predicted muscle pixels inside the tracing (target >= 0.97) and psoas on the L3
   slice (area per side and the share of its pixels inside the tracing).
3. **training subjects** (the full model): subject A mean Dice over the 31 class x level
   cells of the model card vs TS-v2, subject B autochthon; with ``--baseline`` (a JSON this
   script wrote for the previous model) the difference (target: not worse than -0.01).
4. **confidence**: over the cross-subject slices (A-only model, every B slice x multifidus /
   erector spinae left / right) the Spearman rank correlation of the test-time agreement
   (``seg_confidence``) with Dice, the share of slices with Dice < 0.8 that are marked
   ``needs_review`` (target >= 0.9) and of those with Dice >= 0.8 (target <= 0.2). A structure
   the model did not find counts as flagged (the table reports it missing).
5. **speed**: seconds per level slice on subject A's 5 levels with the full model (model
   load excluded), as ``rcsa run`` segments (confidence passes on, no flip averaging) and
   with flip TTA; median of ``--repeat`` runs.
6. **confidence under degradation** (``stress``): the A-only model on B after each of
   :data:`DEGRADATIONS` (noise, severe fat HU, rotation, blur, streaks; each beyond the
   training augmentation), the same confidence figures over all rows: does the confidence
   fall where the input, not the reference, makes the model fail?
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_data"
CLASSES_B = ("multifidus_left", "multifidus_right", "erector_spinae_left",
             "erector_spinae_right", "autochthon_left", "autochthon_right")
SHORT = {"multifidus_left": "MF L", "multifidus_right": "MF R", "erector_spinae_left": "ES L",
         "erector_spinae_right": "ES R", "autochthon_left": "MF+ES L",
         "autochthon_right": "MF+ES R"}
DICE_GOOD = 0.8


#: Boundary tolerance of the surface Dice on subject B: its reference outline was drawn on
#: about 3 mm pixels (TotalSegmentator's 3 mm model; ``reference_check`` measures it).
TOLERANCE_MM = 3.0
AUTO_IDS = {"left": (1, 3), "right": (2, 4)}  # multifidus + erector spinae, rcsa class ids


def reference_check(pred: np.ndarray, ref: np.ndarray, hu: np.ndarray,
                    spacing: tuple[float, float]) -> dict[str, Any]:
    """What the cross-subject Dice on B measures: (1) how coarse the reference outline is
    (rows of the autochthon reference identical to the next row; a mask drawn on pixels n
    times larger and resampled repeats each row n times: share (n-1)/n); (2) per side, the
    pixels only the model or only the reference call autochthon, with their HU (muscle is
    -29..150 HU, fat below -30); (3) 2-D normalised surface Dice per slice at
    ``TOLERANCE_MM``, mean over the slices."""
    from rcsa.segment.evaluate import surface_dice

    auto = np.isin(ref, (*AUTO_IDS["left"], *AUTO_IDS["right"]))
    same = [bool((auto[k, j] == auto[k, j + 1]).all()) for k in range(auto.shape[0])
            for j in range(auto.shape[1] - 1) if auto[k, j].any()]
    share = float(np.mean(same))
    out: dict[str, Any] = {"ref_rows_repeated": round(share, 3),
                           "ref_pixel_mm_estimate": round(spacing[1] / max(1e-6, 1 - share), 2),
                           "tolerance_mm": TOLERANCE_MM}
    for side, ids in AUTO_IDS.items():
        p, r = np.isin(pred, ids), np.isin(ref, ids)
        for name, m in (("both", p & r), ("model_only", p & ~r), ("reference_only", r & ~p)):
            v = hu[m]
            out[f"{side}_{name}"] = {
                "mm2_per_slice": round(float(m.sum()) * spacing[0] * spacing[1] / len(pred), 1),
                "mean_hu": round(float(v.mean()), 1) if v.size else None,
                "share_muscle_hu": round(float(((v >= -29) & (v <= 150)).mean()), 3)
                if v.size else None}
        nsd = [surface_dice(p[k], r[k], (spacing[1], spacing[0]), TOLERANCE_MM)
               for k in range(len(pred))]
        out[f"nsd_{side}"] = round(float(np.mean([x for x in nsd if x is not None])), 3)
    return out


def slice_rows(res: Any, ref: np.ndarray) -> list[dict[str, Any]]:
    """One record per B slice x structure of :data:`CLASSES_B` that the reference holds:
    Dice, ``seg_confidence`` and ``needs_review`` (a structure not found counts as flagged)."""
    from rcsa.segment.evaluate import per_class_dice

    rows = []
    for lv in res:
        dice = per_class_dice(lv.labels, ref[lv.slice_index])
        for name in CLASSES_B:
            if dice.get(name) is None:
                continue
            conf = lv.seg_confidence.get(name)
            rows.append({"k": lv.slice_index, "structure": name, "dice": dice[name],
                         "seg_confidence": conf,
                         "needs_review": conf is None or conf < lv.review_below})
    return rows


def cross_subject(res: Any, ct: Any, ref: np.ndarray) -> dict[str, Any]:
    """The held-out model's segmentation ``res`` of every slice of subject B (``ct``,
    reference ``ref``): 3-D Dice, per-slice records and the reference check
    (:func:`reference_check`)."""
    from rcsa.segment.evaluate import per_class_dice

    pred = np.stack([lv.labels for lv in res])
    per = per_class_dice(pred, ref)
    check = reference_check(pred, ref, ct.hu(), (float(ct.spacing_mm[0]),
                                                  float(ct.spacing_mm[1])))
    return {"dice_3d": {k: per[k] for k in CLASSES_B}, "slices": slice_rows(res, ref),
            "needs_review_below": res.model_info.get("needs_review_below"),
            "reference_check": check}


def reference_figure(res: Any, ct: Any, ref: np.ndarray, path: Path,
                     ks: tuple[int, ...] = (3, 9, 15)) -> None:
    """Subject B, A-only model's ``res``: each side's autochthon, reference (green) and model
    (red), on three slices, narrow window (-150..150 HU) so that the fat planes between the
    muscles show; the picture that goes with :func:`reference_check`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(ks), figsize=(4.2 * len(ks), 6.4))
    for col, k in enumerate(ks):
        pred = res.levels[k].labels
        for row, side in enumerate(("right", "left")):
            ids = AUTO_IDS[side]
            m_ref, m_pred = np.isin(ref[k], ids), np.isin(pred, ids)
            both = m_ref | m_pred
            rows, cols = np.nonzero(both)
            ax = axes[row, col]
            ax.imshow(ct.voxels[k], cmap="gray", vmin=-150, vmax=150)
            ax.contour(m_ref, [0.5], colors="lime", linewidths=1.6)
            ax.contour(m_pred, [0.5], colors="red", linewidths=1.0)
            ax.set_xlim(cols.min() - 25, cols.max() + 25)
            ax.set_ylim(rows.max() + 20, rows.min() - 20)
            ax.set_title(f"B k={k}, patient {side}", fontsize=9)
            ax.axis("off")
    fig.suptitle("Subject B autochthon: TotalSegmentator v2 reference (green) vs the A-only "
                 f"model (red), {res.model_info.get('name')}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


THRESHOLDS = tuple(round(0.5 + 0.01 * i, 2) for i in range(50))


def _dice_conf(slices: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Dice and confidence per row; a structure not found has confidence 0."""
    dice = np.array([s["dice"] for s in slices], float)
    conf = np.array([s["seg_confidence"] if s["seg_confidence"] is not None else 0.0
                     for s in slices], float)
    return dice, conf


def _flag_shares(bad: np.ndarray, flagged: np.ndarray) -> tuple[float | None, float | None]:
    """Share of the bad rows that are flagged, and of the good rows (None without rows)."""
    return (float(flagged[bad].mean()) if bad.any() else None,
            float(flagged[~bad].mean()) if (~bad).any() else None)


def _shares(slices: list[dict[str, Any]], t: float) -> tuple[float | None, float | None]:
    dice, conf = _dice_conf(slices)
    return _flag_shares(dice < DICE_GOOD, conf < t)


def split_half_threshold(slices: list[dict[str, Any]]) -> dict[str, Any]:
    """An honest threshold: chosen on one contiguous half of B's slices (the lowest
    threshold that flags >= 0.9 of that half's Dice < 0.8 rows), reported on the other half,
    both ways round. Contiguous halves, not alternate slices: neighbouring 5 mm slices are
    nearly the same image."""
    ks = sorted({s["k"] for s in slices})
    halves = (set(ks[: len(ks) // 2]), set(ks[len(ks) // 2:]))
    out = []
    for fit, test in ((0, 1), (1, 0)):
        fit_rows = [s for s in slices if s["k"] in halves[fit]]
        test_rows = [s for s in slices if s["k"] in halves[test]]
        chosen = next((t for t in THRESHOLDS if (_shares(fit_rows, t)[0] or 0.0) >= 0.9),
                      THRESHOLDS[-1])
        bad, good = _shares(test_rows, chosen)
        out.append({"threshold": chosen, "test_share_bad_flagged": bad,
                    "test_share_good_flagged": good, "test_rows": len(test_rows)})
    return {"folds": out}


def confidence_figures(slices: list[dict[str, Any]]) -> dict[str, Any]:
    """Over every slice x structure, and over the autochthon rows alone."""
    out = _confidence(slices)
    out["autochthon_only"] = _confidence([s for s in slices
                                          if s["structure"].startswith("autochthon")])
    out["split_half"] = split_half_threshold(slices)
    out["sweep"] = {str(t): _shares(slices, t) for t in THRESHOLDS[::5]}
    return out


def _confidence(slices: list[dict[str, Any]]) -> dict[str, Any]:
    from scipy.stats import spearmanr

    dice, conf = _dice_conf(slices)
    bad = dice < DICE_GOOD
    rho = spearmanr(conf, dice).statistic if len(slices) > 2 else float("nan")
    share_bad, share_good = _flag_shares(bad, np.array([s["needs_review"] for s in slices], bool))
    return {
        "n": len(slices),
        "n_dice_below_0.8": int(bad.sum()),
        "spearman_confidence_vs_dice": round(float(rho), 3),
        "share_bad_flagged": None if share_bad is None else round(share_bad, 3),
        "share_good_flagged": None if share_good is None else round(share_good, 3),
    }


#: Degradations of subject B for the stress test of the confidence, each beyond what training
#: augments (rotation +-15 deg, noise sd ~18 HU, mild blur): name -> description.
DEGRADATIONS = {
    "clean": "as acquired",
    "noise_150hu": "Gaussian noise, sd 150 HU (very low dose)",
    "muscle_-70hu": "every pixel of -29..150 HU lowered by 70 HU (severe fatty infiltration)",
    "rotation_30deg": "in-plane rotation by 30 deg (image and reference, patient tilted)",
    "blur_8mm": "in-plane Gaussian blur, FWHM 8 mm (very soft kernel / motion)",
    "streaks": "radial streaks of +-300 HU from the image centre, fading over 200 mm "
               "(metal-like artefact)",
}


def degraded_b(name: str, hu: np.ndarray, ref: np.ndarray, spacing_mm: float,
               seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Subject B's HU volume and reference after one of :data:`DEGRADATIONS`."""
    from scipy import ndimage

    if name == "clean":
        return hu, ref
    if name == "noise_150hu":
        rng = np.random.default_rng(seed)
        return hu + rng.normal(0.0, 150.0, hu.shape).astype(np.float32), ref
    if name == "muscle_-70hu":
        return np.where((hu >= -29) & (hu <= 150), hu - 70.0, hu).astype(np.float32), ref
    if name == "rotation_30deg":
        rot = ndimage.rotate(hu, 30.0, axes=(1, 2), reshape=False, order=1, cval=-1000.0)
        return (rot.astype(np.float32),
                ndimage.rotate(ref, 30.0, axes=(1, 2), reshape=False, order=0))
    if name == "blur_8mm":
        sd = 8.0 / 2.3548 / spacing_mm
        return ndimage.gaussian_filter(hu, (0.0, sd, sd)).astype(np.float32), ref
    if name == "streaks":
        h, w = hu.shape[1:]
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        y, x = y - h / 2, x - w / 2
        pattern = 300.0 * np.sin(18 * np.arctan2(y, x)) * np.exp(-np.hypot(y, x) * spacing_mm
                                                                   / 200.0)
        return (hu + pattern[None]).astype(np.float32), ref
    raise ValueError(f"unknown degradation {name!r}")


def stress(model: Any, ct: Any, ref0: np.ndarray) -> dict[str, Any]:
    """The held-out model on subject B (``ct``, reference ``ref0``) under each of
    :data:`DEGRADATIONS`: per degradation MF+ES Dice and mean confidence, and the confidence
    figures over all rows (does the confidence fall where the input makes the model fail?).
    Every degraded copy uses the level map of the clean scan."""
    from dataclasses import replace

    from rcsa.levels import find_levels
    from rcsa.segment.evaluate import per_class_dice, segment_every_slice

    level_map = find_levels(ct)
    rows: list[dict[str, Any]] = []
    per: dict[str, Any] = {}
    for name in DEGRADATIONS:
        hu, ref = degraded_b(name, ct.hu(), ref0, float(ct.spacing_mm[0]))
        res = segment_every_slice(model, replace(ct, voxels=np.ascontiguousarray(
            hu, np.float32)), level_map=level_map)
        these = [{**r, "degradation": name} for r in slice_rows(res, ref)]
        d3 = per_class_dice(np.stack([lv.labels for lv in res]), ref)
        auto = [r for r in these if r["structure"].startswith("autochthon")]
        per[name] = {"autochthon_left": d3["autochthon_left"],
                     "autochthon_right": d3["autochthon_right"],
                     "mean_confidence_autochthon": round(float(np.mean(
                         [r["seg_confidence"] or 0.0 for r in auto])), 3),
                     "flagged_autochthon": round(float(np.mean([r["needs_review"]
                                                                for r in auto])), 3)}
        rows += these
    return {"degradations": DEGRADATIONS, "per_degradation": per,
            "all_rows": _confidence(rows),
            "autochthon_rows": _confidence([r for r in rows
                                            if r["structure"].startswith("autochthon")])}


def subject_c(model: Any) -> dict[str, Any]:
    """Share of predicted muscle inside C's tracing and psoas on its L3 slice
    (:func:`rcsa.segment.evaluate.evaluate_c`, flip TTA)."""
    from rcsa.segment.evaluate import evaluate_c

    return evaluate_c(model, tta=True, root=SAMPLE)


def training_subjects(model: Any) -> dict[str, Any]:
    from rcsa.segment.evaluate import evaluate_a, evaluate_b

    a = evaluate_a(model, tta=True, root=SAMPLE)
    cells = [v for lv in a["levels"].values() for k, v in lv["dice_vs"]["ts_v2"].items()
             if v is not None and not k.startswith("autochthon")]
    b = evaluate_b(model, tta=True, root=SAMPLE)["dice_3d_all_slices"]
    return {"A_mean_dice": round(float(np.mean(cells)), 4), "A_cells": len(cells),
            "A_levels": {n: lv["dice_vs"]["ts_v2"] for n, lv in a["levels"].items()},
            "B_autochthon_left": b["autochthon_left"], "B_autochthon_right": b["autochthon_right"],
            "mean": round(float(np.mean([*cells, b["autochthon_left"], b["autochthon_right"]])),
                          4)}


def speed(model: Any, repeat: int) -> dict[str, float]:
    from rcsa.io import load
    from rcsa.segment.evaluate import LEVELS_A
    from rcsa.segment.infer import segment

    ct = load(SAMPLE / "ct_abdomen_pelvis" / "ct.nii.gz")
    out = {}
    for label, kw in (("confidence", {"tta": False, "confidence": True}),
                      ("confidence_flip_tta", {"tta": True, "confidence": True}),
                      ("plain", {"tta": False, "confidence": False})):
        segment(ct, {"L3": 72}, model=model, **kw)  # warm-up
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            segment(ct, LEVELS_A, model=model, **kw)
            times.append(time.perf_counter() - t)
        out[label] = round(statistics.median(times) / len(LEVELS_A), 4)
    return out


def _f(v: Any) -> str:
    return "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))


def table(res: dict[str, Any], baseline: dict[str, Any] | None) -> str:
    L = [f"models: full {res['model']}; held-out (A only) {res.get('held_out_model')}"]
    if "cross_subject" in res:
        d = res["cross_subject"]["dice_3d"]
        L.append("1. cross-subject, A-only model on B (3-D Dice, 20 slices; target MF+ES >= "
                 "0.88):")
        L.append("   " + " | ".join(f"{SHORT[k]} {_f(d[k])}" for k in CLASSES_B))
        r = res["cross_subject"].get("reference_check")
        if r:
            L.append(f"   reference: {r['ref_rows_repeated']:.0%} of its rows repeat the next "
                     f"(outline drawn on ~{r['ref_pixel_mm_estimate']} mm pixels); surface Dice "
                     f"at {r['tolerance_mm']} mm MF+ES L {r['nsd_left']:.3f} R "
                     f"{r['nsd_right']:.3f}")
            for side in ("left", "right"):
                mo, ro = r[f"{side}_model_only"], r[f"{side}_reference_only"]
                L.append(f"   {side}: model-only {mo['mm2_per_slice']} mm2/slice (mean "
                         f"{_f(mo['mean_hu'])} HU, {_f(mo['share_muscle_hu'])} muscle HU); "
                         f"reference-only {ro['mm2_per_slice']} mm2/slice (mean "
                         f"{_f(ro['mean_hu'])} HU, {_f(ro['share_muscle_hu'])} muscle HU); "
                         f"agreed {r[f'{side}_both']['mm2_per_slice']} mm2/slice")
    for key, label in (("C_held_out", "A-only model"), ("C", "full model")):
        if key in res:
            c = res[key]
            L.append(f"2. subject C ({label}): share inside tracing "
                     f"{_f(c['share_inside_traced_muscle'])} (target >= 0.97); psoas L3 "
                     f"L {c['psoas_left_mm2']} mm2 (inside {_f(c['psoas_left_share_inside'])})"
                     f", R {c['psoas_right_mm2']} mm2 (inside "
                     f"{_f(c['psoas_right_share_inside'])})")
    if "training" in res:
        t = res["training"]
        line = (f"3. training subjects (full model): A mean Dice ({t['A_cells']} cells) "
                f"{t['A_mean_dice']:.4f}; B MF+ES L {t['B_autochthon_left']:.3f} R "
                f"{t['B_autochthon_right']:.3f}; mean {t['mean']:.4f}")
        if baseline and "training" in baseline:
            b = baseline["training"]
            line += (f"; vs baseline {baseline.get('model')}: A "
                     f"{t['A_mean_dice'] - b['A_mean_dice']:+.4f}, mean "
                     f"{t['mean'] - b['mean']:+.4f} (target >= -0.01)")
        L.append(line)
    if "confidence" in res:
        c = res["confidence"]
        L.append(f"4. confidence (A-only model, {c['n']} B slice x structure, "
                 f"{c['n_dice_below_0.8']} with Dice < 0.8): Spearman "
                 f"{_f(c['spearman_confidence_vs_dice'])}; Dice<0.8 flagged "
                 f"{_f(c['share_bad_flagged'])} (target >= 0.9); Dice>=0.8 flagged "
                 f"{_f(c['share_good_flagged'])} (target <= 0.2); threshold "
                 f"{_f(res['cross_subject'].get('needs_review_below'))}")
        for i, f in enumerate(c["split_half"]["folds"]):
            L.append(f"   split-half fold {i + 1}: threshold {f['threshold']:.2f} chosen on one "
                     f"half of B, on the other half Dice<0.8 flagged "
                     f"{_f(f['test_share_bad_flagged'])}, Dice>=0.8 flagged "
                     f"{_f(f['test_share_good_flagged'])}")
        c = c["autochthon_only"]
        L.append(f"   MF+ES rows only ({c['n']}, {c['n_dice_below_0.8']} with Dice < 0.8): "
                 f"Spearman {_f(c['spearman_confidence_vs_dice'])}; Dice<0.8 flagged "
                 f"{_f(c['share_bad_flagged'])}; Dice>=0.8 flagged "
                 f"{_f(c['share_good_flagged'])}")
    if "speed_s_per_level" in res:
        s = res["speed_s_per_level"]
        L.append(f"5. speed, s per level slice (A, 5 levels, {res['threads']} threads): with "
                 f"confidence {s['confidence']:.3f} (target <= 0.15); + flip TTA "
                 f"{s['confidence_flip_tta']:.3f}; plain (no confidence) {s['plain']:.3f}")
    if "stress" in res:
        st = res["stress"]
        L.append("6. confidence under degradation (A-only model on B; MF+ES L / R, mean MF+ES "
                 "confidence, share flagged):")
        for name, v in st["per_degradation"].items():
            L.append(f"   {name:15s} {_f(v['autochthon_left'])} / {_f(v['autochthon_right'])}"
                     f"  conf {v['mean_confidence_autochthon']:.3f}  flagged "
                     f"{v['flagged_autochthon']:.2f}")
        for key, label in (("all_rows", "all rows"), ("autochthon_rows", "MF+ES rows")):
            c = st[key]
            L.append(f"   {label} ({c['n']}, {c['n_dice_below_0.8']} with Dice < 0.8): Spearman "
                     f"{_f(c['spearman_confidence_vs_dice'])}; Dice<0.8 flagged "
                     f"{_f(c['share_bad_flagged'])}; Dice>=0.8 flagged "
                     f"{_f(c['share_good_flagged'])}")
    return "\n".join(L)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="full model (default: shipped)")
    ap.add_argument("--held-out-model", type=Path, default=None, help="A-only sibling")
    ap.add_argument("--baseline", type=Path, default=None, help="JSON of an earlier run")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip", default="", help="comma-separated: training,speed,C,stress")
    ap.add_argument("--figure", type=Path, default=None,
                    help="PNG of subject B's reference vs the held-out model")
    a = ap.parse_args()

    import torch

    torch.set_num_threads(a.threads)
    from rcsa.segment.model import load_model

    skip = set(a.skip.split(","))
    full = load_model(a.model)
    res: dict[str, Any] = {"model": str(full.metadata.get("name", full.path)),
                           "threads": a.threads, "cpu": platform.machine()}
    t0 = time.perf_counter()
    if a.held_out_model:
        from rcsa.segment.evaluate import load_subject_b, segment_every_slice

        held = load_model(a.held_out_model)
        res["held_out_model"] = str(a.held_out_model)
        ct_b, ref_b = load_subject_b(SAMPLE)
        seg_b = segment_every_slice(held, ct_b)
        cs = cross_subject(seg_b, ct_b, ref_b)
        res["cross_subject"] = cs
        res["confidence"] = confidence_figures(cs["slices"])
        if a.figure:
            reference_figure(seg_b, ct_b, ref_b, a.figure)
        if "stress" not in skip:
            res["stress"] = stress(held, ct_b, ref_b)
        if "C" not in skip:
            res["C_held_out"] = subject_c(held)
    if "C" not in skip:
        res["C"] = subject_c(full)
    if "training" not in skip:
        res["training"] = training_subjects(full)
    if "speed" not in skip:
        res["speed_s_per_level"] = speed(full, a.repeat)
    res["seconds"] = round(time.perf_counter() - t0, 1)
    baseline = json.loads(a.baseline.read_text()) if a.baseline else None
    if a.json:
        a.json.write_text(json.dumps(res, indent=1, default=float) + "\n")
    print(table(res, baseline))


if __name__ == "__main__":
    main()
