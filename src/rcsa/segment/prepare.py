"""Training-label preparation: TotalSegmentator v1 / v2 label volumes -> rcsa class map.

Torch-free. :func:`convert_labels` does the work in memory; :func:`prepare_training` also
writes the prepared volume, its JSON sidecar and QC PNGs (``rcsa prepare-training``).

Rules (see ``docs/segment.md`` for the reasoning and references); which rule makes which rcsa
structure is the ``prepare_rule`` column of the anatomy table (:data:`rcsa.anatomy.ANATOMY`),
the rules themselves are here:

* ``copy`` (gluteus maximus / medius L/R): copied from the source labels named in the table
  (``totalsegmentator``; the ids of sidecar-less volumes in ``totalsegmentator_ids``).
* psoas L/R from ``iliopsoas_*``: on slices above the iliac crests (top slice of ``hip_*``)
  iliopsoas is psoas. From the lowest slice of the L5 vertebra label up to the crests, an
  iliopsoas pixel is psoas when it is nearer to the vertebral column than to the ipsilateral
  hip bone (the iliacus lines the iliac fossa). Below L5 the iliopsoas is marked *ignore*
  (255): psoas and iliacus are not separated there by this rule.
* vertebral body: any vertebra label (not the sacrum) AND body-part label 1 from a
  vertebral-body / posterior-element mask. Without such a mask the class is *unknown* for the
  subject and masked out of its loss (``known_classes`` in the sidecar), not background.
* multifidus / erector spinae: the rule-derived split of ``autochthon_*``
  (:mod:`rcsa.segment.split`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from rcsa.anatomy import ANATOMY, Structure
from rcsa.errors import InputError
from rcsa.io import CTVolume, LabelVolume, load, load_labels
from rcsa.segment import classes as C
from rcsa.segment.split import SplitRule, split_autochthon_slice

LABEL_MAPS = ("ts_v1", "ts_v2", "rcsa")

#: Fallback ids when a label volume has no JSON sidecar (TotalSegmentator v1 / v2 "total"):
#: the inputs of the rules below, and (added from the anatomy table) the structures copied.
_RULE_INPUT_IDS: dict[str, dict[str, int]] = {
    "ts_v1": {
        "autochthon_left": 100, "autochthon_right": 101,
        "iliopsoas_left": 102, "iliopsoas_right": 103,
        "hip_left": 90, "hip_right": 91, "sacrum": 92,
        "vertebrae_L5": 18, "vertebrae_L4": 19, "vertebrae_L3": 20, "vertebrae_L2": 21,
        "vertebrae_L1": 22, "vertebrae_T12": 23, "vertebrae_T11": 24, "vertebrae_T10": 25,
    },
    "ts_v2": {
        "autochthon_left": 86, "autochthon_right": 87,
        "iliopsoas_left": 88, "iliopsoas_right": 89,
        "hip_left": 77, "hip_right": 78, "sacrum": 25, "vertebrae_S1": 26,
        "vertebrae_L5": 27, "vertebrae_L4": 28, "vertebrae_L3": 29, "vertebrae_L2": 30,
        "vertebrae_L1": 31, "vertebrae_T12": 32, "vertebrae_T11": 33, "vertebrae_T10": 34,
    },
}


def _ts_names(s: Structure) -> tuple[str, ...]:
    """TotalSegmentator label names of a ``copy`` row, in the order of its label ids."""
    assert s.totalsegmentator is not None  # the anatomy table's validation
    return tuple(f"{s.totalsegmentator}_{side}" for side in s.sides) or (s.totalsegmentator,)


def _default_ids() -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {m: {} for m in _RULE_INPUT_IDS}
    for s in ANATOMY.prepared_by("copy"):
        for label_map, ts_ids in s.totalsegmentator_ids.items():
            if label_map not in out:
                raise ValueError(f"anatomy row {s.name}: unknown label map {label_map!r}")
            out[label_map].update(zip(_ts_names(s), ts_ids, strict=True))
    for label_map, ids in _RULE_INPUT_IDS.items():
        out[label_map].update(ids)
    return out


_DEFAULT_IDS: dict[str, dict[str, int]] = _default_ids()
#: rcsa classes known only where a subject's labels define them (vertebral body: from a body /
#: posterior-element mask); without that they are masked out of the loss.
_NEEDS_PARTS: tuple[int, ...] = tuple(
    i for s in ANATOMY.prepared_by("vertebra_body_part") for i in s.label_ids)
#: rcsa classes that TotalSegmentator labels define (the others are unknown for the subject).
_FROM_TS: tuple[int, ...] = (C.BACKGROUND, *(
    i for s in ANATOMY.structures if s.prepare_rule in ("copy", "iliopsoas", "autochthon")
    for i in s.label_ids))

SPLIT_NOTE = (
    "multifidus / erector spinae are a RULE-DERIVED split of TotalSegmentator 'autochthon' "
    "(seeded watershed, docs/segment.md), not a tracing"
)


@dataclass(frozen=True, eq=False)
class PreparedLabels:
    """rcsa-class labels of one subject on its CT grid."""

    labels: LabelVolume  # uint8 voxels [k, j, i], values = rcsa class ids or IGNORE_INDEX
    known_classes: tuple[int, ...]  # classes whose absence in a pixel is meaningful
    rules: Mapping[str, Any] = field(default_factory=dict)

    def class_voxels(self) -> dict[str, int]:
        counts = np.bincount(self.labels.voxels.ravel(), minlength=256)
        return {c.name: int(counts[c.id]) for c in C.RCSA_CLASSES.classes}


def _ids(names: Mapping[int, str], label_map: str) -> dict[str, int]:
    if names:
        by_name = {v: int(k) for k, v in names.items()}
        return by_name
    return dict(_DEFAULT_IDS[label_map])


def _mask(vox: npt.NDArray[Any], ids: Mapping[str, int], *names: str) -> npt.NDArray[np.bool_]:
    wanted = [ids[n] for n in names if n in ids]
    if not wanted:
        return np.zeros(vox.shape, bool)
    return np.isin(vox, np.asarray(wanted))


def _z_top(mask: npt.NDArray[np.bool_]) -> int | None:
    ks = np.nonzero(mask.any(axis=(1, 2)))[0]
    return int(ks.max()) if ks.size else None


def convert_labels(
    ct: CTVolume,
    labels: LabelVolume,
    label_map: str,
    parts: LabelVolume | None = None,
    rule: SplitRule | None = None,
) -> PreparedLabels:
    """Convert a TotalSegmentator label volume (canonical grid of ``ct``) to rcsa classes."""
    rule = rule or SplitRule()
    if label_map == "rcsa":
        vox = labels.voxels.astype(np.uint8)
        known = tuple(
            c.id for c in C.RCSA_CLASSES.classes
            if c.id not in _NEEDS_PARTS or (vox == c.id).any()
        )
        return PreparedLabels(_as_label_volume(vox, labels), known, {"source": "rcsa"})
    if label_map not in _DEFAULT_IDS:
        raise InputError(f"unknown label map {label_map!r}; expected one of {LABEL_MAPS}")
    ct.geometry.check_same_grid(labels.geometry)
    ids = _ids(labels.names, label_map)
    src = labels.voxels
    out = np.zeros(src.shape, np.uint8)
    spacing = (float(ct.spacing_mm[0]), float(ct.spacing_mm[1]))

    for s in ANATOMY.prepared_by("copy"):
        for ts_name, cid in zip(_ts_names(s), s.label_ids, strict=True):
            out[_mask(src, ids, ts_name)] = cid

    vert_names = [n for n in ids if n.startswith("vertebrae_")]
    lumbar_thoracic = [n for n in vert_names if n[len("vertebrae_"):][:1] in ("L", "T", "C")]
    vertebra = _mask(src, ids, *vert_names)
    column = vertebra | _mask(src, ids, "sacrum")
    upper = _mask(src, ids, *lumbar_thoracic)

    # psoas from iliopsoas
    hip_l, hip_r = _mask(src, ids, "hip_left"), _mask(src, ids, "hip_right")
    crest = _z_top(hip_l | hip_r)
    # lower limit of the psoas rule: the lowest slice of L5 (so that the L5 level, whose
    # mid-body lies below the top of the S1 label in a lordotic spine, keeps its psoas);
    # without an L5 label, the top of the sacrum.
    l5 = _mask(src, ids, "vertebrae_L5")
    l5_ks = np.nonzero(l5.any(axis=(1, 2)))[0]
    prom = int(l5_ks.min()) - 1 if l5_ks.size else _z_top(_mask(src, ids, "sacrum"))
    psoas_note = "iliopsoas above the iliac crest is psoas"
    for side, pid, hip in (("left", C.PSOAS_L, hip_l), ("right", C.PSOAS_R, hip_r)):
        ilio = _mask(src, ids, f"iliopsoas_{side}")
        for k in np.nonzero(ilio.any(axis=(1, 2)))[0]:
            sl = ilio[k]
            if crest is None or k > crest:
                out[k][sl] = pid
            elif prom is not None and k <= prom:
                out[k][sl] = C.IGNORE_INDEX
            else:
                d_col = _dist(column[k], spacing)
                d_hip = _dist(hip[k], spacing)
                out[k][sl & (d_col < d_hip)] = pid
                # the iliacus part is a muscle that is not a class: background
    if crest is not None:
        psoas_note += (
            f" (crest top k={crest}); from the slice above k={prom} (lowest L5)"
            " to the crest, iliopsoas nearer the spine than the hip bone; below L5 ignored"
        )

    # autochthon split
    auto_l, auto_r = _mask(src, ids, "autochthon_left"), _mask(src, ids, "autochthon_right")
    hu = ct.voxels
    for k in np.nonzero((auto_l | auto_r).any(axis=(1, 2)))[0]:
        sacral_only = bool(column[k].any() and not upper[k].any())
        mf_l, mf_r = split_autochthon_slice(
            hu[k], auto_l[k], auto_r[k], column[k], sacral_only, spacing, rule
        )
        ok = out[k]
        ok[auto_l[k]] = C.ERECTOR_L
        ok[auto_r[k]] = C.ERECTOR_R
        ok[mf_l] = C.MULTIFIDUS_L
        ok[mf_r] = C.MULTIFIDUS_R

    known_ids = list(_FROM_TS)
    body_note = "no vertebral body / posterior element mask: class unknown (masked from loss)"
    if parts is not None:
        ct.geometry.check_same_grid(parts.geometry)
        body = vertebra & (parts.voxels == 1)
        out[body & (out == 0)] = C.VERTEBRAL_BODY
        known_ids += _NEEDS_PARTS
        body_note = "vertebra label (not sacrum) AND body part 1"
    rules = {
        "split": SPLIT_NOTE,
        "split_rule": rule.describe(),
        "psoas": psoas_note,
        "vertebral_body": body_note,
        "label_map": label_map,
    }
    return PreparedLabels(_as_label_volume(out, labels), tuple(sorted(known_ids)), rules)


def _dist(mask: npt.NDArray[np.bool_], spacing: tuple[float, float]) -> npt.NDArray[np.float64]:
    if not mask.any():
        return np.full(mask.shape, np.inf)
    return np.asarray(ndimage.distance_transform_edt(~mask, sampling=(spacing[1], spacing[0])))


def _as_label_volume(vox: npt.NDArray[Any], like: LabelVolume) -> LabelVolume:
    return LabelVolume(
        voxels=np.ascontiguousarray(vox, dtype=np.uint8),
        geometry=like.geometry,
        names={int(k): v for k, v in C.RCSA_CLASSES.labels_dict().items()},
        source=like.source,
    )


@dataclass(frozen=True)
class PreparedSubject:
    """What :func:`prepare_training` wrote."""

    labels_path: Path
    sidecar_path: Path
    qc_paths: tuple[Path, ...]
    known_classes: tuple[int, ...]
    class_voxels: Mapping[str, int]


#: TotalSegmentator structures that take up intravenous contrast, for the synthetic
#: contrast-enhancement generator (:mod:`rcsa.segment.synth`): 1 = vessel, 2 = kidney.
CONTRAST_STRUCTURES: dict[str, int] = {
    **{n: 1 for n in ("aorta", "inferior_vena_cava", "superior_vena_cava",
                      "portal_vein_and_splenic_vein", "iliac_artery_left",
                      "iliac_artery_right", "iliac_vena_left", "iliac_vena_right")},
    "kidney_left": 2, "kidney_right": 2,
}


def contrast_structures(labels: LabelVolume, label_map: str) -> npt.NDArray[np.uint8]:
    """Vessels (1) and kidneys (2) of a TotalSegmentator label volume (zeros for other maps
    or when the volume names none of them)."""
    out = np.zeros(labels.voxels.shape, np.uint8)
    if label_map not in _DEFAULT_IDS:
        return out
    ids = _ids(labels.names, label_map)
    for name, value in CONTRAST_STRUCTURES.items():
        if name in ids:
            out[labels.voxels == ids[name]] = value
    return out


def load_subject(
    image: Path, labels: Path, label_map: str, parts: Path | None = None
) -> tuple[CTVolume, PreparedLabels]:
    """Load a CT and its label volume and convert them to rcsa classes."""
    if label_map not in LABEL_MAPS:
        raise InputError(f"unknown label map {label_map!r}; expected one of {LABEL_MAPS}")
    ct = load(image)
    lab = load_labels(labels, like=ct)
    part_vol = load_labels(parts, like=ct) if parts is not None else None
    return ct, convert_labels(ct, lab, label_map, part_vol)


def prepare_training(
    image: Path,
    labels: Path,
    label_map: str,
    out_dir: Path,
    parts: Path | None = None,
    name: str = "subject",
    qc_slices: int = 6,
) -> PreparedSubject:
    """Convert one subject's labels and write, in ``out_dir``:

    ``<name>_labels.nii.gz`` (rcsa class ids, 255 = ignore) with ``<name>_labels.json``
    (id -> name), ``<name>_prepare.json`` (known classes, rules, provenance, voxel counts) and
    ``<name>_qc_kNNN.png`` overlays of the rule-derived multifidus / erector split.
    """
    from rcsa.io import write_labels
    from rcsa.outputs import atomic_write_text, make_dir, write_error
    from rcsa.segment.qc import overlay_png

    ct, prep = load_subject(image, labels, label_map, parts)
    make_dir(out_dir)
    labels_path = out_dir / f"{name}_labels.nii.gz"
    # on the CT's own grid (the labels matched it within load_labels' tolerance)
    write_labels(replace(prep.labels, geometry=ct.geometry), labels_path,
                 ct.source.file_geometry)
    vox = prep.labels.voxels
    atomic_write_text(out_dir / f"{name}_labels.json",
                      json.dumps(C.RCSA_CLASSES.labels_dict(), indent=1) + "\n", overwrite=True)
    sidecar = out_dir / f"{name}_prepare.json"
    auto = np.isin(vox, [C.MULTIFIDUS_L, C.MULTIFIDUS_R, C.ERECTOR_L, C.ERECTOR_R])
    ks = np.nonzero(auto.any(axis=(1, 2)))[0]
    picks = sorted({int(k) for k in np.linspace(ks.min(), ks.max(), qc_slices).round()}) if (
        ks.size
    ) else []
    qc_paths = []
    hu = ct.hu()
    for k in picks:
        p = out_dir / f"{name}_qc_k{k:03d}.png"
        try:
            overlay_png(
                hu[k], np.where(vox[k] == C.IGNORE_INDEX, 0, vox[k]), C.RCSA_CLASSES, p,
                title=f"{name} k={k} (multifidus/erector split is rule-derived)",
                spacing_mm=(float(ct.spacing_mm[0]), float(ct.spacing_mm[1])),
            )
        except OSError as exc:
            raise write_error(exc, p) from exc
        qc_paths.append(p)
    info = {
        "labels": C.RCSA_CLASSES.labels_dict(),
        "ignore_index": C.IGNORE_INDEX,
        "known_classes": list(prep.known_classes),
        "rules": dict(prep.rules),
        "note": SPLIT_NOTE,
        "source": {"image": str(image), "labels": str(labels), "label_map": label_map,
                   "parts": str(parts) if parts else None},
        "class_voxels": prep.class_voxels(),
    }
    atomic_write_text(sidecar, json.dumps(info, indent=1) + "\n", overwrite=True)
    return PreparedSubject(labels_path, sidecar, tuple(qc_paths), prep.known_classes,
                           prep.class_voxels())
