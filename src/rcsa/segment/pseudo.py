"""Pseudo-labels of an unlabelled scan for self-training (issue 16, item 2).

``rcsa prepare-pseudo SCAN --out DIR``: a model (default the shipped one) segments the axial
slices around each found level with the test-time passes of the confidence code
(:func:`rcsa.segment.infer.predict_passes`: original, left-right mirrored, zoomed 0.8x). A
pixel keeps the label of the passes' mean probabilities only where

1. every pass gives it the same arg-max and the mean probability of that arg-max is at least
   ``agreement`` (default 0.9), and
2. its structure's connected component (8-connected, of the mean's arg-max) passes the
   anatomical rules below;

every other pixel becomes *ignore* (:data:`rcsa.segment.classes.IGNORE_INDEX`, excluded from
the training loss). A structure that fails a rule is **never relabelled** (not to background,
not to the other side): its pixels are ignored. Rules, per slice, from the anatomy table
(:data:`rcsa.anatomy.ANATOMY`) and the post-processing (:mod:`rcsa.segment.postprocess`):

* ``no_vertebral_body``: on a spine-level slice (T12-S1) with no trusted vertebral body
  (largest component < ``MIN_BODY_MM2``) the distance / side rules cannot be checked: the
  whole slice is ignored;
* ``impossible_at_level``: the muscle cannot appear on this level's slice
  (``impossible_at_levels``; gluteal muscles above the iliac crest + 10 mm,
  :func:`rcsa.segment.postprocess.gluteal_ceiling`);
* ``far_from_body``: the component's nearest pixel is farther from the vertebral body than
  ``max_mm_from_vertebral_body``;
* ``not_posterior``: a paraspinal muscle (``paraspinal``) whose centroid is not posterior to
  the vertebral body's centroid;
* ``wrong_side``: a left (right) structure whose centroid lies more than 5 mm on the
  patient's right (left) of the midline (vertebral body centroid, else the bone midline);
* ``fat``: a muscle component whose median HU is below ``FAT_MEDIAN_HU`` (mostly fat: e.g. a
  "muscle" in the subcutaneous fat);
* ``extra_component``: every component of a class but the largest that passed the rules;
* ``below_envelope``: the kept component is smaller than the low end of the muscle's CSA
  plausibility envelope at this level (anatomy table ``envelopes``): its agreed pixels stay,
  but it counts as missing for the next rule;
* ``expected_missing``: a muscle anatomy puts on every slice of this level
  (``expected_at_levels``) was not kept on one side: the background pixels on that side
  within its ``max_mm_from_vertebral_body`` of the body are ignored (a missed muscle must
  not teach background);
* ``muscle_density_near_expected``: where an expected muscle that *was* kept may lie (the
  same region; for the paraspinal muscles only posterior to the body's centroid), background
  is trusted only as fat, air or bone: background pixels of muscle density (-29..150 HU)
  are ignored (an under-segmented muscle continues there);
* ``muscle_halo``: background pixels of muscle density (-29..150 HU) within ``HALO_MM`` of a
  predicted muscle are ignored (where an under-segmented muscle continues).

The output is a prepared training subject as ``rcsa prepare-training`` writes it
(``<name>_labels.nii.gz`` on the CT's grid with label map ``rcsa``, slices not pseudo-labelled
entirely *ignore*; ``<name>_labels.json``; ``<name>_prepare.json`` with ``known_classes`` and,
under ``pseudo``, the model sha256, thresholds, rules and per-slice kept fractions;
``manifest.csv``, one row for ``rcsa train`` with absolute paths; ``qc/*.png`` with ignored
pixels hatched grey).

The filtering is torch-free and takes any :class:`Predictor`; :func:`model_predictor` wraps
a segmentation model (imports torch).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from rcsa.anatomy import ANATOMY
from rcsa.io import CTVolume, LabelVolume
from rcsa.segment import classes as C
from rcsa.segment.postprocess import (
    MAX_MM_FROM_BODY,
    PARASPINAL,
    SPINE_LEVELS,
    banned_classes,
    midline_column,
    vertebral_body,
)

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]

#: Passes that must agree (the confidence code's test-time passes).
PASSES = ("orig", "flip", "scale")
#: Default threshold on the mean probability of the arg-max.
AGREEMENT = 0.9
#: Default slices per level (spread over the level's slab, the level slice in the middle).
SLICES_PER_LEVEL = 5
#: Levels the slabs are built around: the vertebral levels and the pelvic levels that name
#: a slice of their own (iliac crest top and discs lie between vertebral levels).
PSEUDO_LEVELS: tuple[str, ...] = (*SPINE_LEVELS, "sij_lower", "femoral_head_top")
#: A muscle component whose median HU is below this is mostly fat (adipose tissue: -190 to
#: -30 HU; the Alberta protocol's muscle range starts at -29 HU).
FAT_MEDIAN_HU = -30.0
SIDE_MARGIN_MM = 5.0
#: Background pixels of muscle density (the lean range of the Alberta protocol, -29..150 HU)
#: this close to a predicted muscle are ignored: an under-segmented muscle continues there.
HALO_MM = 15.0
LEAN_HU = (-29.0, 150.0)
RULES = ("no_vertebral_body", "impossible_at_level", "far_from_body", "not_posterior",
         "wrong_side", "fat", "extra_component", "below_envelope", "expected_missing",
         "muscle_density_near_expected", "muscle_halo")
#: Smallest plausible CSA per muscle and level (anatomy table envelopes ``csa_mm2``, low).
MIN_CSA_MM2: dict[tuple[str, str], float] = {
    (s.name, lv): float(e.low) for s in ANATOMY.structures for e in s.envelopes
    if e.quantity == "csa_mm2" and e.low is not None for lv in (e.levels or ())}
#: Muscles anatomy puts on every slice of a level (anatomy table: ``expected_at_levels``).
EXPECTED_AT_LEVEL: dict[str, tuple[str, ...]] = ANATOMY.expected_at_level()


#: ``predict(ct, slice_indices)`` -> per slice, per pass (:data:`PASSES`), soft-max
#: probabilities (classes, rows, cols) on the CT's own in-plane grid.
PredictFn = Callable[[CTVolume, Sequence[int]], list[dict[str, F32]]]


@dataclass(frozen=True)
class Predictor:
    """What the pseudo-labeller needs from a model: its class map, a description for the
    manifest (name, sha256, metadata path) and the test-time passes."""

    class_map: C.ClassMap
    info: Mapping[str, Any]
    predict: PredictFn


def model_predictor(model_path: Path | None = None, device: str | None = None,
                    batch: int = 8) -> Predictor:
    """A :class:`Predictor` from a model's ``metadata.json`` (default: the shipped model)."""
    import torch

    from rcsa.segment.data import probabilities_to_native, slice_stack
    from rcsa.segment.infer import predict_passes
    from rcsa.segment.model import load_model, sha256_file

    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    m = load_model(model_path, device=dev)
    perm = m.class_map.lr_permutation()

    def predict(ct: CTVolume, ks: Sequence[int]) -> list[dict[str, F32]]:
        native = (int(ct.voxels.shape[1]), int(ct.voxels.shape[2]))
        out: list[dict[str, F32]] = []
        for s in range(0, len(ks), batch):
            chunk = list(ks[s:s + batch])
            stacks = [slice_stack(ct, k, m.preprocessing) for k in chunk]
            res = predict_passes(m.network, stacks, dev, m.preprocessing.patch_size, PASSES,
                                 perm)
            for i in range(len(chunk)):
                out.append({ps: probabilities_to_native(res[ps][i], native) for ps in PASSES})
        return out

    weights = m.path.parent / str(m.metadata["weights"]["file"])
    info = {"name": str(m.metadata.get("name", m.path.parent.name)), "metadata": str(m.path),
            "sha256": sha256_file(weights),
            "training_subjects": m.metadata.get("training", {}).get("train_subjects")}
    return Predictor(m.class_map, info, predict)


def slices_around_levels(levels: Mapping[str, int], per_level: int, n_slices: int
                         ) -> list[tuple[str, int]]:
    """``[(level, k)]``: ``per_level`` slices spread evenly over each level's slab.

    A level's slab reaches half-way to the neighbouring levels (by slice index); the end
    levels' slabs are symmetric about the level. ``per_level`` odd puts the level slice in the
    middle. Each slice is named by the level whose slab holds it; duplicates dropped.
    """
    if per_level < 1:
        raise ValueError("per_level must be >= 1")
    order = sorted(levels.items(), key=lambda kv: kv[1])
    ks = [k for _, k in order]
    out: list[tuple[str, int]] = []
    seen: set[int] = set()
    for i, (name, k) in enumerate(order):
        below = (k - ks[i - 1]) / 2 if i > 0 else None
        above = (ks[i + 1] - k) / 2 if i + 1 < len(ks) else None
        lo = below if below is not None else (above if above is not None else 2.0)
        hi = above if above is not None else lo
        # slab [k - lo, k + hi): per_level slices at the centres of equal parts
        edges = np.linspace(k - lo, k + hi, per_level + 1)
        centres = (edges[:-1] + edges[1:]) / 2
        if per_level % 2 == 1:
            centres = centres - centres[per_level // 2] + k
        for c in centres:
            kk = int(np.clip(round(float(c)), 0, n_slices - 1))
            if kk not in seen:
                seen.add(kk)
                out.append((name, kk))
    return sorted(out, key=lambda t: t[1])


@dataclass
class SliceResult:
    """One pseudo-labelled slice: labels with :data:`IGNORE_INDEX`, and what was removed."""

    level: str
    k: int
    labels: U8
    predicted: U8  # arg-max of the passes' mean, before the agreement and the rules
    predicted_px: dict[str, int] = field(default_factory=dict)
    kept_px: dict[str, int] = field(default_factory=dict)
    removed: list[dict[str, Any]] = field(default_factory=list)  # {structure, rule, px}

    def kept_fraction(self) -> dict[str, float]:
        return {n: round(self.kept_px.get(n, 0) / v, 4) for n, v in self.predicted_px.items()
                if v}

    def to_json(self) -> dict[str, Any]:
        return {"level": self.level, "k": self.k, "predicted_px": self.predicted_px,
                "kept_px": self.kept_px, "kept_fraction": self.kept_fraction(),
                "removed": self.removed}


def filter_slice(probs: Mapping[str, F32], hu: npt.NDArray[Any], level: str, k: int,
                 cmap: C.ClassMap, spacing_mm: tuple[float, float], agreement: float,
                 ceiling: int | None = None) -> SliceResult:
    """Pseudo-labels of one slice from its test-time passes (module docstring)."""
    stack = np.stack([np.asarray(probs[p], np.float32) for p in probs])
    mean = stack.mean(0)
    final = mean.argmax(0).astype(np.uint8)
    agree = (mean.max(0) >= agreement)
    for p in stack:
        agree &= p.argmax(0) == final
    ignore = ~agree
    res = SliceResult(level, k, final, final)
    names = {c.id: c.name for c in cmap.classes}
    counts = np.bincount(final.ravel(), minlength=len(cmap))
    res.predicted_px = {names[c.id]: int(counts[c.id]) for c in cmap.classes}
    px_area = spacing_mm[0] * spacing_mm[1]
    body = vertebral_body(final, cmap, px_area)
    hu = np.asarray(hu)
    if body is None and level in SPINE_LEVELS:
        res.removed.append({"structure": "slice", "rule": "no_vertebral_body",
                            "px": int(final.size)})
        res.labels = np.full(final.shape, C.IGNORE_INDEX, np.uint8)
        res.kept_px = {n: 0 for n in res.predicted_px}
        return res
    sx, sy = spacing_mm
    dist = (np.asarray(ndimage.distance_transform_edt(~body, sampling=(sy, sx)))
            if body is not None else None)
    mid = midline_column(final, cmap, hu, px_area)
    body_row = float(np.nonzero(body)[0].mean()) if body is not None else None
    banned = set(banned_classes(cmap, level, k, ceiling))
    margin = SIDE_MARGIN_MM / sx
    kept_cls: set[int] = set()
    for c in cmap.classes:
        if c.id == 0:
            continue
        comps, n = ndimage.label(final == c.id, structure=np.ones((3, 3)))
        survivors: list[tuple[int, int]] = []  # (size, label)
        for lab in range(1, n + 1):
            m = comps == lab
            rows, cols = np.nonzero(m)
            rule = None
            limit = MAX_MM_FROM_BODY.get(c.muscle or "")
            if c.id in banned:
                rule = "impossible_at_level"
            elif limit is not None and dist is not None and float(dist[m].min()) > limit:
                rule = "far_from_body"
            elif (c.muscle in PARASPINAL and body_row is not None
                  and float(rows.mean()) <= body_row):
                rule = "not_posterior"  # rows run anterior -> posterior
            elif c.side is not None and (
                    float(cols.mean()) < mid - margin if c.side == "left"
                    else float(cols.mean()) > mid + margin):
                rule = "wrong_side"  # patient's left = larger column (canonical LPS)
            elif c.muscle is not None and float(np.median(hu[m])) < FAT_MEDIAN_HU:
                rule = "fat"
            if rule is None:
                survivors.append((int(m.sum()), lab))
                continue
            ignore |= m
            res.removed.append({"structure": c.name, "rule": rule, "px": int(m.sum())})
        survivors.sort(reverse=True)
        for size, lab in survivors[1:]:
            ignore |= comps == lab
            res.removed.append({"structure": c.name, "rule": "extra_component", "px": size})
        if survivors and (agree & (comps == survivors[0][1])).any():
            low = MIN_CSA_MM2.get((c.muscle or "", level))
            if low is not None and survivors[0][0] * px_area < low:
                res.removed.append({"structure": c.name, "rule": "below_envelope",
                                    "px": survivors[0][0]})
            else:
                kept_cls.add(c.id)
    # expected muscles: where they may lie, background is trusted only as fat, air or bone
    # (a missed or under-segmented muscle must not teach background); not kept at all: no
    # background is trusted there
    lean = (hu >= LEAN_HU[0]) & (hu <= LEAN_HU[1])
    cols = np.arange(final.shape[1])[None, :]
    rows = np.arange(final.shape[0])[:, None]
    for c in cmap.classes:
        if c.muscle not in EXPECTED_AT_LEVEL.get(level, ()):
            continue
        limit = MAX_MM_FROM_BODY.get(c.muscle or "")
        if dist is None or limit is None:
            region = final == 0  # nowhere to bound it: the slice's background is unknown
        else:
            side = cols >= mid if c.side == "left" else cols <= mid
            region = (dist <= limit) & side & (final == 0)
            if c.muscle in PARASPINAL and body_row is not None:
                region &= rows > body_row
        if c.id not in kept_cls:
            rule, drop = "expected_missing", region & ~ignore
        else:
            rule, drop = "muscle_density_near_expected", region & lean & ~ignore
        if drop.any():
            ignore |= drop
            res.removed.append({"structure": c.name, "rule": rule, "px": int(drop.sum())})
    # background of muscle density next to any predicted muscle: maybe its missed part
    muscle = np.isin(final, cmap.muscle_ids())
    if muscle.any():
        near = np.asarray(ndimage.distance_transform_edt(~muscle, sampling=(sy, sx))) <= HALO_MM
        halo = near & (final == 0) & lean & ~ignore
        if halo.any():
            ignore |= halo
            res.removed.append({"structure": "background", "rule": "muscle_halo",
                                "px": int(halo.sum())})
    res.labels = np.where(ignore, C.IGNORE_INDEX, final).astype(np.uint8)
    kc = np.bincount(res.labels.ravel(), minlength=256)
    res.kept_px = {names[c.id]: int(kc[c.id]) for c in cmap.classes}
    return res


@dataclass(frozen=True)
class PseudoLabels:
    """Pseudo-labels of a scan: labels on the CT grid (slices not chosen entirely ignore)."""

    labels: LabelVolume
    slices: tuple[SliceResult, ...]
    info: Mapping[str, Any]

    def summary(self) -> dict[str, Any]:
        """Kept fraction per class over all slices, and structure-slices removed per rule."""
        pred: dict[str, int] = {}
        kept: dict[str, int] = {}
        for s in self.slices:
            for n, v in s.predicted_px.items():
                pred[n] = pred.get(n, 0) + v
                kept[n] = kept.get(n, 0) + s.kept_px.get(n, 0)
        per_rule = {r: len({(s.k, d["structure"]) for s in self.slices for d in s.removed
                            if d["rule"] == r}) for r in RULES}
        return {"slices": len(self.slices),
                "predicted_px": pred, "kept_px": kept,
                "kept_fraction": {n: round(kept[n] / v, 4) for n, v in pred.items() if v},
                "structure_slices_removed_by_rule": per_rule}


def pseudo_labels(ct: CTVolume, levels: Mapping[str, int], predictor: Predictor, *,
                  agreement: float = AGREEMENT, slices_per_level: int = SLICES_PER_LEVEL,
                  ceiling: int | None = None) -> PseudoLabels:
    """Pseudo-label the slices around ``levels`` (name -> slice index) of ``ct``.

    ``ceiling``: the highest slice that may hold gluteal muscle
    (:func:`rcsa.segment.postprocess.gluteal_ceiling`; None = no restriction).
    """
    from rcsa.errors import InputError

    if not 0.0 < agreement <= 1.0:
        raise InputError(f"agreement threshold {agreement} outside (0, 1]")
    chosen = {n: int(k) for n, k in levels.items() if n in PSEUDO_LEVELS}
    if not chosen:
        raise InputError(f"no level to pseudo-label: none of {', '.join(PSEUDO_LEVELS)} given "
                         "or found")
    nk = int(ct.voxels.shape[0])
    pairs = slices_around_levels(chosen, slices_per_level, nk)
    cmap = predictor.class_map
    probs = predictor.predict(ct, [k for _, k in pairs])
    spacing = (float(ct.spacing_mm[0]), float(ct.spacing_mm[1]))
    vol = np.full(ct.voxels.shape, C.IGNORE_INDEX, np.uint8)
    results = []
    for (name, k), p in zip(pairs, probs, strict=True):
        r = filter_slice({ps: p[ps] for ps in PASSES if ps in p}, ct.voxels[k], name, k, cmap,
                         spacing, agreement, ceiling)
        vol[k] = r.labels
        results.append(r)
    labels = LabelVolume(vol, ct.geometry, {int(k): v for k, v in cmap.labels_dict().items()},
                         ct.source)
    info = {"model": dict(predictor.info), "agreement": agreement, "passes": list(PASSES),
            "slices_per_level": slices_per_level, "levels": chosen,
            "gluteal_ceiling_slice": ceiling, "fat_median_hu": FAT_MEDIAN_HU,
            "side_margin_mm": SIDE_MARGIN_MM, "rules": list(RULES),
            "muscle_halo_mm": HALO_MM, "lean_hu": list(LEAN_HU),
            "min_csa_mm2": {f"{m}@{lv}": v for (m, lv), v in MIN_CSA_MM2.items()},
            "max_mm_from_vertebral_body": dict(MAX_MM_FROM_BODY),
            "paraspinal": list(PARASPINAL)}
    return PseudoLabels(labels, tuple(results), info)


def known_classes(pl: PseudoLabels) -> tuple[int, ...]:
    """Classes whose absence in a kept pixel is meaningful: what ``rcsa train`` derives for
    label map ``rcsa`` (every class; the vertebral body only where some pixel has it)."""
    vox = pl.labels.voxels
    needs_parts = {i for s in ANATOMY.prepared_by("vertebra_body_part") for i in s.label_ids}
    return tuple(c.id for c in C.RCSA_CLASSES.classes
                 if c.id not in needs_parts or bool((vox == c.id).any()))


def write_pseudo_subject(pl: PseudoLabels, ct: CTVolume, image: Path, out_dir: Path,
                         name: str = "pseudo", overwrite: bool = False) -> dict[str, Any]:
    """Write the prepared subject (module docstring) into ``out_dir`` (staged, atomic; a
    non-empty ``out_dir`` is refused unless ``overwrite``). Returns the sidecar document."""
    from dataclasses import replace

    from rcsa.io import write_labels
    from rcsa.outputs import staged_folder
    from rcsa.runfolder import check_output_dir
    from rcsa.segment.qc import overlay_png

    check_output_dir(out_dir, overwrite)
    cmap = C.RCSA_CLASSES
    spacing = (float(ct.spacing_mm[0]), float(ct.spacing_mm[1]))
    doc: dict[str, Any] = {
        "labels": cmap.labels_dict(),
        "ignore_index": C.IGNORE_INDEX,
        "known_classes": list(known_classes(pl)),
        "rules": {"pseudo": "self-training pseudo-labels: kept where the test-time passes "
                  "agree and the anatomical rules hold, all else ignore (rcsa.segment.pseudo)"},
        "note": "PSEUDO-LABELS made by a model, not a tracing; multifidus / erector spinae "
                "follow the model's rule-derived split",
        "source": {"image": str(image), "labels": f"{name}_labels.nii.gz", "label_map": "rcsa",
                   "parts": None},
        "class_voxels": {c.name: int((pl.labels.voxels == c.id).sum()) for c in cmap.classes},
        "pseudo": {**pl.info, "summary": pl.summary(),
                   "slices": [s.to_json() for s in pl.slices]},
    }
    with staged_folder(out_dir) as stage:
        write_labels(replace(pl.labels, geometry=ct.geometry), stage / f"{name}_labels.nii.gz",
                     ct.source.file_geometry)
        (stage / f"{name}_labels.json").write_text(json.dumps(cmap.labels_dict(), indent=1)
                                                    + "\n")
        # absolute paths, so that the row can be appended to another manifest
        (stage / "manifest.csv").write_text(
            "subject,image,labels,label_map,parts\n"
            f"{name},{Path(image).resolve()},{out_dir.resolve() / f'{name}_labels.nii.gz'},"
            "rcsa,\n")
        for s in pl.slices:
            kf = s.kept_fraction()
            muscles = ", ".join(f"{n} {v:.2f}" for n, v in kf.items() if n != "background")
            rules = sorted({f"{d['rule']}: {d['structure']}" for d in s.removed})
            lines = (f"kept fraction: {muscles}"[:110], *[r[:110] for r in rules[:6]])
            overlay_png(ct.hu()[s.k], s.labels, cmap,
                        stage / "qc" / f"{name}_{s.level}_k{s.k:03d}.png",
                        title=f"{name} {s.level} k={s.k} pseudo-labels (hatched = ignored)",
                        spacing_mm=spacing, lines=lines,
                        hatch=s.labels == C.IGNORE_INDEX)
        (stage / f"{name}_prepare.json").write_text(json.dumps(doc, indent=1) + "\n")
    return doc
