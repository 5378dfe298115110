"""Inference: per-level 2-D masks from a :class:`~rcsa.io.CTVolume` and its level slices."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from rcsa.errors import InputError
from rcsa.io import CTVolume, Geometry
from rcsa.segment.classes import ClassMap
from rcsa.segment.data import probabilities_to_native, slice_stack
from rcsa.segment.model import LoadedModel, load_model
from rcsa.segment.postprocess import banned_classes, gluteal_ceiling, postprocess

#: Below this mean soft-max probability inside a predicted class, the level gets a QC flag.
LOW_CONFIDENCE = 0.75
#: Left/right area ratio outside [1/x, x] gets a QC flag.
ASYMMETRY_RATIO = 2.0


@dataclass(frozen=True, eq=False)
class LevelSegmentation:
    """The segmentation of one level's axial slice, on the CT's own in-plane grid."""

    level: str
    slice_index: int
    z_mm: float
    labels: npt.NDArray[np.uint8]  # [j, i] class ids (see ``class_map``)
    spacing_mm: tuple[float, float]  # (column / x, row / y)
    class_map: ClassMap
    confidence: Mapping[str, float] = field(default_factory=dict)
    flags: tuple[str, ...] = ()
    postprocessing: Mapping[str, int] = field(default_factory=dict)

    @property
    def pixel_area_mm2(self) -> float:
        return float(self.spacing_mm[0] * self.spacing_mm[1])

    def mask(self, name: str) -> npt.NDArray[np.bool_]:
        return np.asarray(self.labels == self.class_map.id_of(name))

    def area_mm2(self, name: str) -> float:
        return float(self.mask(name).sum()) * self.pixel_area_mm2

    def areas_mm2(self) -> dict[str, float]:
        counts = np.bincount(self.labels.ravel(), minlength=len(self.class_map))
        return {c.name: float(counts[c.id]) * self.pixel_area_mm2
                for c in self.class_map.classes if c.id != 0}


@dataclass(frozen=True, eq=False)
class SegmentationResult:
    """Per-level segmentations of one scan plus the model that made them."""

    levels: tuple[LevelSegmentation, ...]
    class_map: ClassMap
    geometry: Geometry
    model_info: Mapping[str, Any]
    seconds: float = 0.0

    def __getitem__(self, level: str) -> LevelSegmentation:
        for lv in self.levels:
            if lv.level == level:
                return lv
        raise KeyError(level)

    def __iter__(self) -> Any:
        return iter(self.levels)

    def __len__(self) -> int:
        return len(self.levels)

    def to_volume(self) -> npt.NDArray[np.uint8]:
        """Labels on the CT grid ``[k, j, i]``: level slices filled, all others 0."""
        ni, nj, nk = self.geometry.size_voxels
        vol = np.zeros((nk, nj, ni), np.uint8)
        for lv in self.levels:
            vol[lv.slice_index] = lv.labels
        return vol


def level_slices(levels: Any, names: Sequence[str] | None = None) -> list[tuple[str, int]]:
    """``[(name, slice_index)]`` from a ``Mapping[str, int]`` or an ``rcsa.levels.LevelMap``.

    Levels of a LevelMap that are not ``found`` (or have no slice) are skipped; ``names``
    restricts and orders the result (a requested name that is absent raises).
    """
    pairs: list[tuple[str, int]] = []
    source: Iterable[Any]
    if hasattr(levels, "levels") and isinstance(levels.levels, Mapping):
        source = levels.levels.items()
    elif isinstance(levels, Mapping):
        source = levels.items()
    else:
        raise InputError(f"levels must be a LevelMap or a name -> slice mapping, got "
                         f"{type(levels).__name__}")
    for name, value in source:
        if isinstance(value, (int, np.integer)):
            pairs.append((str(name), int(value)))
            continue
        status = getattr(value, "status", "found")
        k = getattr(value, "slice_index", None)
        if status == "found" and k is not None:
            pairs.append((str(name), int(k)))
    if names:
        have = dict(pairs)
        missing = [n for n in names if n not in have]
        if missing:
            raise InputError(f"level(s) not available: {', '.join(missing)}")
        pairs = [(n, have[n]) for n in names]
    return pairs


#: Body bounding box: pixels of the centre channel above this normalised intensity (with the
#: default window of -250..350 HU, 0.1 is about -190 HU: fat and every denser tissue, not air
#: or lung) are the body; the network sees that box plus ``BODY_MARGIN_PX``.
BODY_LEVEL = 0.1
BODY_MARGIN_PX = 8


def body_box(image: npt.NDArray[np.float32], margin: int = BODY_MARGIN_PX
             ) -> tuple[int, int, int, int]:
    """(row0, row1, col0, col1), end-exclusive, of the body in a (channels, H, W) input: the
    pixels of the centre channel above ``BODY_LEVEL``, grown by ``margin``; the whole image
    when nothing is above it."""
    h, w = image.shape[1:]
    body = image[image.shape[0] // 2] > BODY_LEVEL
    rows = np.flatnonzero(body.any(axis=1))
    cols = np.flatnonzero(body.any(axis=0))
    if rows.size == 0:
        return 0, h, 0, w
    return (max(0, int(rows[0]) - margin), min(h, int(rows[-1]) + 1 + margin),
            max(0, int(cols[0]) - margin), min(w, int(cols[-1]) + 1 + margin))


def _pad_to(x: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int]]:
    """Zero-pad the last two axes of ``x`` (centred) to at least ``size``; returns the offsets."""
    h, w = x.shape[-2:]
    ph, pw = max(0, size[0] - h), max(0, size[1] - w)
    return F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)), (ph // 2, pw // 2)


def predict_stacks(net: torch.nn.Module, images: Sequence[npt.NDArray[np.float32]],
                   device: torch.device, roi: int, tta: bool = False,
                   perm: Sequence[int] | None = None) -> list[npt.NDArray[np.float32]]:
    """Soft-max probabilities (C,H,W) for each (channels,H,W) input.

    The network sees the body's bounding box (:func:`body_box`); outside it every pixel is
    background with probability 1. A box that fits in ``roi`` x ``roi`` pixels (the training
    crop) is zero-padded (= air after normalisation, as training crops at the edge of the
    field of view are) to exactly that size, and all such boxes run as one batch; a larger box
    is covered by a sliding window of ``roi`` pixels with Gaussian blending. With ``tta``
    also the left-right mirrored input, mirrored back and with L/R classes swapped
    (``perm``), averaged.
    """
    from monai.inferers.utils import sliding_window_inference

    def forward(x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] <= roi and x.shape[-1] <= roi:
            out = net(x)
        else:
            out = sliding_window_inference(x, (roi, roi), 4, net, overlap=0.25,
                                           mode="gaussian")
        assert isinstance(out, torch.Tensor)
        return out

    def run(x: torch.Tensor) -> torch.Tensor:
        logits = forward(x)
        if tta:
            flipped = torch.flip(forward(torch.flip(x, dims=(-1,))), dims=(-1,))
            if perm is not None:
                flipped = flipped[:, list(perm)]
            return (torch.softmax(logits, dim=1) + torch.softmax(flipped, dim=1)) / 2
        return torch.softmax(logits, dim=1)

    boxes = [body_box(im) for im in images]
    crops: list[torch.Tensor] = []
    offsets: list[tuple[int, int]] = []
    for im, (r0, r1, c0, c1) in zip(images, boxes, strict=True):
        crop, off = _pad_to(torch.as_tensor(np.ascontiguousarray(im[:, r0:r1, c0:c1])),
                            (roi, roi))
        crops.append(crop)
        offsets.append(off)
    fits = [i for i, c in enumerate(crops) if tuple(c.shape[-2:]) == (roi, roi)]
    crop_probs: dict[int, torch.Tensor] = {}
    with torch.no_grad():
        if fits:
            batch = run(torch.stack([crops[i] for i in fits]).to(device))
            crop_probs.update(zip(fits, batch, strict=True))
        for i, c in enumerate(crops):
            if i not in crop_probs:
                crop_probs[i] = run(c[None].to(device))[0]
    out: list[npt.NDArray[np.float32]] = []
    for i, im in enumerate(images):
        r0, r1, c0, c1 = boxes[i]
        oy, ox = offsets[i]
        p = crop_probs[i][:, oy : oy + r1 - r0, ox : ox + c1 - c0].cpu().numpy()
        full = np.zeros((p.shape[0], *im.shape[1:]), np.float32)
        full[0] = 1.0
        full[:, r0:r1, c0:c1] = p
        out.append(full)
    return out


def predict_stack(net: torch.nn.Module, image: npt.NDArray[np.float32], device: torch.device,
                  roi: int, tta: bool = False, perm: Sequence[int] | None = None
                  ) -> npt.NDArray[np.float32]:
    """:func:`predict_stacks` for one input."""
    return predict_stacks(net, [image], device, roi, tta, perm)[0]


def _flags(labels: npt.NDArray[np.uint8], conf: Mapping[str, float], cmap: ClassMap,
           post: Mapping[str, int] | None = None) -> tuple[str, ...]:
    flags = [f"low confidence {name} ({v:.2f})" for name, v in conf.items() if v < LOW_CONFIDENCE]
    if post and post.get("pixels_removed_implausible_at_level"):
        flags.append(f"{post['pixels_removed_implausible_at_level']} px of a muscle impossible "
                     "at this level removed")
    counts = np.bincount(labels.ravel(), minlength=len(cmap))
    done = set()
    for c in cmap.classes:
        if c.side != "left" or c.muscle in done:
            continue
        done.add(c.muscle)
        nl, nr = counts[c.id], counts[cmap.mirror_of(c.id)]
        if (nl == 0) != (nr == 0):
            flags.append(f"{c.muscle} found on one side only")
        elif nl and nr and max(nl / nr, nr / nl) > ASYMMETRY_RATIO:
            flags.append(f"{c.muscle} left/right area ratio {nl / nr:.2f}")
    return tuple(flags)


def segment(
    ct: CTVolume,
    levels: Any,
    *,
    names: Sequence[str] | None = None,
    model: LoadedModel | None = None,
    tta: bool = False,
    post: bool = True,
    device: str | None = None,
    level_map: Any = None,
) -> SegmentationResult:
    """Segment the axial slice of each level.

    ``levels``: an ``rcsa.levels.LevelMap`` (its ``found`` levels are used) or a mapping of
    level name -> slice index in the canonical volume. ``names`` restricts the levels.
    ``model`` defaults to the shipped one (checksum verified). ``tta`` adds a left-right
    mirrored pass. ``post`` applies side consistency and per-class largest component.

    Anatomical plausibility acts on the probabilities before the arg-max: classes impossible
    on a slice get probability 0, so each pixel takes its most probable *possible* class.
    Gluteal muscles are impossible at T11-L3 and, from the level map's pelvic landmarks
    (``levels`` itself when it is a LevelMap, else ``level_map``), above the iliac crest or
    anywhere in a scan whose spine is present and pelvis absent
    (:func:`rcsa.segment.postprocess.gluteal_ceiling`).
    """
    t0 = time.time()
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    m = model or load_model(device=dev)
    m.network.to(dev)
    m.network.eval()
    pairs = level_slices(levels, names)
    anatomy = levels if hasattr(levels, "levels") else level_map
    ceiling = gluteal_ceiling(anatomy, abs(float(ct.spacing_mm[2])), int(ct.voxels.shape[0]))
    if not pairs:
        raise InputError("no level to segment: none was found or given")
    nk = ct.voxels.shape[0]
    cmap = m.class_map
    perm = cmap.lr_permutation()
    out: list[LevelSegmentation] = []
    spacing = (float(ct.spacing_mm[0]), float(ct.spacing_mm[1]))
    native = (int(ct.voxels.shape[1]), int(ct.voxels.shape[2]))
    for name, k in pairs:
        if not 0 <= k < nk:
            raise InputError(f"level {name}: slice {k} outside the scan (0..{nk - 1})")
    stacks = [slice_stack(ct, k, m.preprocessing) for _, k in pairs]
    all_probs = predict_stacks(m.network, stacks, dev, m.preprocessing.patch_size, tta, perm)
    for (name, k), probs in zip(pairs, all_probs, strict=True):
        probs = probabilities_to_native(probs, native)
        banned = banned_classes(cmap, name, k, ceiling) if post else []
        if banned:
            probs[banned] = 0.0
        labels = probs.argmax(0).astype(np.uint8)
        info: dict[str, int] = {}
        if post:
            labels, info = postprocess(labels, cmap, spacing[0], name, ct.voxels[k])
        pmax = probs.max(0)
        conf = {c.name: round(float(pmax[labels == c.id].mean()), 3)
                for c in cmap.classes if c.id != 0 and (labels == c.id).any()}
        out.append(
            LevelSegmentation(
                level=name, slice_index=k, z_mm=ct.slice_z_mm(k), labels=labels,
                spacing_mm=spacing, class_map=cmap, confidence=conf,
                flags=_flags(labels, conf, cmap, info), postprocessing=info,
            )
        )
    info_meta = {
        "gluteal_ceiling_slice": ceiling,
        "name": str(m.metadata.get("name", m.path.parent.name)),
        "metadata": str(m.path),
        "sha256": m.metadata.get("weights", {}).get("sha256"),
        "tta": tta,
        "postprocessing": post,
        "device": str(dev),
    }
    return SegmentationResult(tuple(out), cmap, ct.geometry, info_meta, time.time() - t0)


def write_outputs(result: SegmentationResult, ct: CTVolume, out_dir: Any) -> dict[str, Any]:
    """``segmentation.nii.gz`` (CT grid, labels on level slices only),
    ``segmentation_labels.json`` (id -> name) and ``qc_<level>.png`` per level."""
    import json
    from pathlib import Path

    from rcsa.segment.nifti import write_labels
    from rcsa.segment.qc import overlay_png

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seg = write_labels(result.to_volume(), ct, out / "segmentation.nii.gz")
    labels_json = out / "segmentation_labels.json"
    labels_json.write_text(json.dumps(result.class_map.labels_dict(), indent=1) + "\n")
    pngs = []
    for lv in result.levels:
        lines = tuple(f"flag: {f}" for f in lv.flags[:4])
        pngs.append(
            overlay_png(
                ct.hu()[lv.slice_index], lv.labels, result.class_map,
                out / f"qc_{lv.level}.png",
                title=f"{lv.level} k={lv.slice_index} z={lv.z_mm:.1f} mm "
                "(multifidus/erector trained on a rule-derived split)",
                spacing_mm=lv.spacing_mm, lines=lines,
            )
        )
    summary = {
        "segmentation": str(seg),
        "labels": str(labels_json),
        "qc": [str(p) for p in pngs],
        "model": dict(result.model_info),
        "seconds": round(result.seconds, 3),
        "levels": {
            lv.level: {
                "slice_index": lv.slice_index,
                "z_mm": round(lv.z_mm, 3),
                "areas_mm2": {k: round(v, 1) for k, v in lv.areas_mm2().items() if v > 0},
                "confidence": dict(lv.confidence),
                "flags": list(lv.flags),
                "postprocessing": dict(lv.postprocessing),
            }
            for lv in result.levels
        },
    }
    (out / "segmentation_summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary
