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

from rcsa.anatomy import ANATOMY
from rcsa.errors import InputError
from rcsa.io import CTVolume, Geometry
from rcsa.levels.types import Level, LevelMap
from rcsa.segment.classes import ClassMap
from rcsa.segment.data import (
    body_mask,
    probabilities_to_native,
    slice_stack,
    zoom_linear,
)
from rcsa.segment.model import LoadedModel, load_model
from rcsa.segment.postprocess import banned_classes, gluteal_ceiling, postprocess

#: Below this mean soft-max probability inside a predicted class, the level gets a QC flag.
LOW_CONFIDENCE = 0.75
#: Left/right area ratio outside [1/x, x] gets a QC flag.
ASYMMETRY_RATIO = 2.0
#: A structure whose test-time agreement (:func:`tta_agreement`) is below this is marked
#: ``needs_review`` (docs/segment.md, "Confidence": chosen on the cross-subject probes).
NEEDS_REVIEW_BELOW = 0.85
#: Muscles that anatomy puts on every slice of these levels (both sides): when one is not
#: found there, its ``seg_confidence`` is 0 and it needs review (psoas major arises from
#: T12-L4 and runs past L5; the paraspinal muscles fill the grooves at every spinal level;
#: both gluteal muscles lie at the sacroiliac joints and above the femoral heads).
#: (anatomy table: ``expected_at_levels``).
EXPECTED_AT_LEVEL: dict[str, tuple[str, ...]] = ANATOMY.expected_at_level()
#: Muscles that together are TotalSegmentator's ``autochthon`` (their split is rule-derived).
AUTOCHTHON: tuple[str, ...] = tuple(s.name for s in ANATOMY.prepared_by("autochthon"))


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
    #: per predicted structure: agreement of the test-time passes with the result
    #: (:func:`tta_agreement`, 0..1); empty when segmented without ``confidence``
    seg_confidence: Mapping[str, float] = field(default_factory=dict)
    #: the model's threshold (:func:`needs_review_below`) that :attr:`needs_review` applies
    review_below: float = NEEDS_REVIEW_BELOW

    @property
    def needs_review(self) -> tuple[str, ...]:
        """Structures whose :attr:`seg_confidence` is below :attr:`review_below`."""
        return tuple(n for n, v in self.seg_confidence.items() if v < self.review_below)

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


def level_slices(levels: LevelMap | Mapping[str, int | Level],
                 names: Sequence[str] | None = None) -> list[tuple[str, int]]:
    """``[(name, slice_index)]`` from a ``Mapping[str, int]`` or an ``rcsa.levels.LevelMap``.

    Levels of a LevelMap that are not ``found`` (or have no slice) are skipped; ``names``
    restricts and orders the result (a requested name that is absent raises).
    """
    pairs: list[tuple[str, int]] = []
    source: Iterable[Any]
    if isinstance(levels, LevelMap):
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
        if not isinstance(value, Level):
            raise InputError(f"level {name!r}: expected a slice index or a Level, got "
                             f"{type(value).__name__}")
        if value.status == "found" and value.slice_index is not None:
            pairs.append((str(name), int(value.slice_index)))
    if names:
        have = dict(pairs)
        missing = [n for n in names if n not in have]
        if missing:
            raise InputError(f"level(s) not available: {', '.join(missing)}")
        pairs = [(n, have[n]) for n in names]
    return pairs


#: Body bounding box: pixels of the centre channel above this normalised intensity (with the
#: default window of -250..350 HU, 0.1 is about -190 HU: fat and every denser tissue, not air
#: or lung) are body candidates; the network sees the box of the body (:func:`body_box`) plus
#: ``BODY_MARGIN_PX``.
BODY_LEVEL = 0.1
BODY_MARGIN_PX = 8
#: The body mask that sets the box: the candidates opened with a disc of this radius (px of
#: the network grid, 2 mm: a 4 mm radius), which removes what is thin (the couch, positioning
#: aids, ECG leads, wires, stray pixels at the edge of the reconstruction circle), then the
#: largest 8-connected component (the trunk) and every component of at least
#: ``BODY_COMPONENT_SHARE`` of its size (the arms, a trunk cut in parts by the field of view).
BODY_OPENING_PX = 2
BODY_COMPONENT_SHARE = 0.02


def body_box(image: npt.NDArray[np.float32], margin: int = BODY_MARGIN_PX,
             body: npt.NDArray[np.bool_] | None = None) -> tuple[int, int, int, int]:
    """(row0, row1, col0, col1), end-exclusive, of the body in a (channels, H, W) input
    (:func:`rcsa.segment.data.body_mask` of the centre channel with ``BODY_LEVEL``,
    ``BODY_OPENING_PX`` and ``BODY_COMPONENT_SHARE``), grown by ``margin``; the whole image
    when there is no body. ``body``: that mask when the caller has it already.

    Why a mask and not every pixel above the level: anything dense outside the patient widens
    such a box (dense specks outside subject D's body made its box 460 x 550 mm, rows x
    columns, where the body's own box is 330 x 400 mm), and the sliding window over it cuts
    the body at window edges; the network then missed most paraspinal muscle at L1-L5
    (docs/model_card.md, "Issue 16 (session 8)").
    """
    h, w = image.shape[1:]
    if body is None:  # filling the holes (inside_body) leaves the box as it is
        body = inside_body(image)
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


#: Overlap of the sliding windows over a body box larger than the training crop.
WINDOW_OVERLAP = 0.25

#: Scale of the test-time zoom pass used for the confidence (the body shown 0.8x as large,
#: i.e. as a smaller patient with more air around it).
TTA_SCALE = 0.8
PASSES = ("orig", "flip", "scale")


def predict_passes(net: torch.nn.Module, images: Sequence[npt.NDArray[np.float32]],
                   device: torch.device, roi: int, passes: Sequence[str] = ("orig",),
                   perm: Sequence[int] | None = None, scale: float = TTA_SCALE
                   ) -> dict[str, list[npt.NDArray[np.float32]]]:
    """Soft-max probabilities (C,H,W) of each (channels,H,W) input, per test-time pass.

    The network sees the body's bounding box (:func:`body_box`); outside it, and outside
    the body itself (:func:`inside_body`), every pixel is background with probability 1. A
    box that fits in ``roi`` x ``roi`` pixels (the training
    crop) is zero-padded (= air after normalisation, as training crops at the edge of the
    field of view are) to exactly that size, and all such boxes of all passes run as one
    batch; a larger box is covered by a sliding window of ``roi`` pixels with Gaussian
    blending. Passes: ``orig``; ``flip`` the left-right mirrored input, mirrored back with the
    L/R classes swapped (``perm``); ``scale`` the box zoomed by ``scale`` (bilinear), the
    probabilities zoomed back.
    """
    from monai.inferers.utils import sliding_window_inference

    def forward(x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] <= roi and x.shape[-1] <= roi:
            out = net(x)
        else:
            out = sliding_window_inference(x, (roi, roi), 4, net, overlap=WINDOW_OVERLAP,
                                           mode="gaussian")
        assert isinstance(out, torch.Tensor)
        return out

    bodies = [inside_body(im) for im in images]
    boxes = [body_box(im, body=b) for im, b in zip(images, bodies, strict=True)]
    # one network input per (pass, image): (tensor, offsets, pass, image index, box size)
    jobs: list[tuple[torch.Tensor, tuple[int, int], str, int, tuple[int, int]]] = []
    for i, (im, (r0, r1, c0, c1)) in enumerate(zip(images, boxes, strict=True)):
        x = torch.as_tensor(np.ascontiguousarray(im[:, r0:r1, c0:c1]))
        for ps in passes:
            if ps == "orig":
                xi = x
            elif ps == "flip":
                xi = torch.flip(x, dims=(-1,))
            elif ps == "scale":
                size = (max(16, round(x.shape[-2] * scale)), max(16, round(x.shape[-1] * scale)))
                xi = F.interpolate(x[None], size=size, mode="bilinear", align_corners=False)[0]
            else:
                raise ValueError(f"unknown test-time pass {ps!r}")
            crop, off = _pad_to(xi, (roi, roi))
            jobs.append((crop, off, ps, i, (int(xi.shape[-2]), int(xi.shape[-1]))))
    probs: dict[int, torch.Tensor] = {}
    with torch.no_grad():
        fits = [j for j, job in enumerate(jobs) if tuple(job[0].shape[-2:]) == (roi, roi)]
        if fits:
            batch = torch.softmax(forward(torch.stack([jobs[j][0] for j in fits]).to(device)),
                                  dim=1)
            probs.update(zip(fits, batch, strict=True))
        for j, job in enumerate(jobs):
            if j not in probs:
                probs[j] = torch.softmax(forward(job[0][None].to(device)), dim=1)[0]
    out: dict[str, list[npt.NDArray[np.float32]]] = {ps: [] for ps in passes}
    for j, (_crop, (oy, ox), ps, i, (h, w)) in enumerate(jobs):
        r0, r1, c0, c1 = boxes[i]
        p = probs[j][:, oy : oy + h, ox : ox + w]
        if ps == "flip":
            p = torch.flip(p, dims=(-1,))
            if perm is not None:
                p = p[list(perm)]
        elif ps == "scale":
            p = F.interpolate(p[None], size=(r1 - r0, c1 - c0), mode="bilinear",
                              align_corners=False)[0]
        full = np.zeros((p.shape[0], *images[i].shape[1:]), np.float32)
        full[0] = 1.0
        full[:, r0:r1, c0:c1] = p.cpu().numpy()
        outside = ~bodies[i]
        full[1:, outside] = 0.0  # nothing but background outside the patient
        full[0, outside] = 1.0
        out[ps].append(full)
    return out


def inside_body(image: npt.NDArray[np.float32]) -> npt.NDArray[np.bool_]:
    """The pixels of a (channels, H, W) input that may hold a structure: the body mask of
    :func:`body_box` with its holes (bowel gas, lungs) filled. No pixel when there is no
    body: an image of air holds no muscle, whatever the network says there."""
    return body_mask(image[image.shape[0] // 2], BODY_LEVEL, opening_px=BODY_OPENING_PX,
                     min_share=BODY_COMPONENT_SHARE, fill_holes=True)


def predict_stacks(net: torch.nn.Module, images: Sequence[npt.NDArray[np.float32]],
                   device: torch.device, roi: int, tta: bool = False,
                   perm: Sequence[int] | None = None) -> list[npt.NDArray[np.float32]]:
    """Soft-max probabilities (C,H,W) for each (channels,H,W) input (:func:`predict_passes`);
    with ``tta`` the mean of the original and the left-right mirrored pass."""
    passes = ("orig", "flip") if tta else ("orig",)
    res = predict_passes(net, images, device, roi, passes, perm)
    if not tta:
        return res["orig"]
    return [np.asarray((a + b) / 2, np.float32)
            for a, b in zip(res["orig"], res["flip"], strict=True)]


def predict_stack(net: torch.nn.Module, image: npt.NDArray[np.float32], device: torch.device,
                  roi: int, tta: bool = False, perm: Sequence[int] | None = None
                  ) -> npt.NDArray[np.float32]:
    """:func:`predict_stacks` for one input."""
    return predict_stacks(net, [image], device, roi, tta, perm)[0]


def tta_agreement(final: npt.NDArray[Any], passes: Sequence[npt.NDArray[Any]],
                  cmap: ClassMap) -> dict[str, float]:
    """Per structure present in ``final`` (labels at the model's spacing): the mean Dice
    between it and the labels of each test-time pass (same grid; in :func:`segment` each
    pass's arg-max after the same post-processing as ``final``); 1 = every pass agrees.
    Also ``autochthon_left`` / ``_right`` (multifidus + erector spinae together, whose split
    is rule-derived)."""
    groups: dict[str, tuple[int, ...]] = {c.name: (c.id,) for c in cmap.classes if c.id != 0}
    for side in ("left", "right"):
        ids = tuple(c.id for c in cmap.classes
                    if c.side == side and c.muscle in AUTOCHTHON)
        if ids:
            groups[f"autochthon_{side}"] = ids
    out: dict[str, float] = {}
    for name, ids in groups.items():
        f = np.isin(final, ids)
        nf = int(f.sum())
        if nf == 0:
            continue
        ds = []
        for p in passes:
            q = np.isin(p, ids)
            ds.append(2.0 * float((f & q).sum()) / (nf + int(q.sum())))
        out[name] = round(float(np.mean(ds)), 3)
    return out


def labels_from_probs(probs: npt.NDArray[np.float32], cmap: ClassMap, banned: Sequence[int],
                      level: str | None, hu: npt.NDArray[Any] | None,
                      spacing_mm: tuple[float, float], post: bool = True,
                      in_place: bool = False) -> tuple[npt.NDArray[np.uint8], dict[str, int]]:
    """Labels of one set of probabilities, by the one path of :func:`segment`: impossible
    classes zeroed (in ``probs`` itself with ``in_place``, else in a copy), arg-max, then
    (with ``post`` and ``hu`` on the same grid, ``spacing_mm`` = column, row) the
    post-processing; returns (labels, post-processing counts). :func:`segment` takes it on the
    native grid for the result and on the model's grid for the final probabilities and each
    test-time pass, whose agreement is the confidence."""
    if banned:
        if not in_place:
            probs = probs.copy()
        probs[list(banned)] = 0.0
    lab = probs.argmax(0).astype(np.uint8)
    info: dict[str, int] = {}
    if post and hu is not None:
        lab, info = postprocess(lab, cmap, spacing_mm[0], level, hu,
                                spacing_y_mm=spacing_mm[1], probs=probs)
    return np.asarray(lab, np.uint8), info


def needs_review_below(model: LoadedModel) -> float:
    """The agreement below which a structure needs review: the model's own calibrated
    threshold (``confidence.needs_review_below`` in its metadata.json, set where the model
    was evaluated) or :data:`NEEDS_REVIEW_BELOW`."""
    v = model.metadata.get("confidence", {}).get("needs_review_below")
    return float(v) if isinstance(v, int | float) and 0.0 < float(v) <= 1.0 else NEEDS_REVIEW_BELOW


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
    levels: LevelMap | Mapping[str, int | Level],
    *,
    names: Sequence[str] | None = None,
    model: LoadedModel | None = None,
    tta: bool = False,
    post: bool = True,
    device: str | None = None,
    level_map: LevelMap | None = None,
    confidence: bool = True,
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

    ``confidence`` (default) gives each structure an agreement score (``seg_confidence``,
    :func:`tta_agreement`) and, below the model's threshold (:func:`needs_review_below`), a
    ``needs_review`` mark and QC flag. For a single network it runs the original, mirrored and
    zoomed passes in one batch and scores their agreement; the probabilities are the original
    pass (mean with the mirrored one with ``tta``) either way. For an ensemble
    (:class:`~rcsa.segment.model.EnsembleNetwork`) the probabilities are the members' mean and
    the score is each member's agreement with it, at no extra cost.
    """
    t0 = time.time()
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    m = model or load_model(device=dev)
    m.network.to(dev)
    m.network.eval()
    pairs = level_slices(levels, names)
    anatomy = levels if isinstance(levels, LevelMap) else level_map
    ceiling = gluteal_ceiling(anatomy, abs(float(ct.spacing_mm[2])), int(ct.voxels.shape[0]))
    if not pairs:
        raise InputError("no level to segment: none was found or given")
    nk = ct.voxels.shape[0]
    cmap = m.class_map
    perm = cmap.lr_permutation()
    out: list[LevelSegmentation] = []
    below = needs_review_below(m)
    kind = "ensemble agreement" if m.is_ensemble else "test-time agreement"
    spacing = (float(ct.spacing_mm[0]), float(ct.spacing_mm[1]))
    native = (int(ct.voxels.shape[1]), int(ct.voxels.shape[2]))
    for name, k in pairs:
        if not 0 <= k < nk:
            raise InputError(f"level {name}: slice {k} outside the scan (0..{nk - 1})")
    stacks = [slice_stack(ct, k, m.preprocessing) for _, k in pairs]
    roi = m.preprocessing.patch_size
    # probabilities whose arg-max the agreement compares with the final labels, per image
    check_probs: list[list[npt.NDArray[np.float32]]] = []
    if m.is_ensemble:
        # each member once (with its mirrored pass under ``tta``); the prediction is the mean
        # of the members, the confidence their agreement with it: no extra passes needed
        base = ("orig", "flip") if tta else ("orig",)
        member_probs = []
        for mem in m.members:
            r = predict_passes(mem, stacks, dev, roi, base, perm)
            member_probs.append([np.asarray(sum(r[ps][i] for ps in base) / len(base), np.float32)
                                 for i in range(len(stacks))])
        all_probs = [np.asarray(sum(mp[i] for mp in member_probs) / len(member_probs),
                                np.float32) for i in range(len(stacks))]
        if confidence:
            check_probs = [[mp[i] for mp in member_probs] for i in range(len(stacks))]
    else:
        passes = ["orig"]
        if tta or confidence:
            passes.append("flip")
        if confidence:
            passes.append("scale")
        res = predict_passes(m.network, stacks, dev, roi, passes, perm)
        if tta:
            all_probs = [np.asarray((a + b) / 2, np.float32)
                         for a, b in zip(res["orig"], res["flip"], strict=True)]
        else:
            all_probs = res["orig"]
        if confidence:
            check_probs = [[res[ps][i] for ps in passes] for i in range(len(stacks))]
    for i, ((name, k), probs) in enumerate(zip(pairs, all_probs, strict=True)):
        model_shape = (int(probs.shape[1]), int(probs.shape[2]))
        probs_m = probs
        probs = probabilities_to_native(probs, native)
        banned = banned_classes(cmap, name, k, ceiling) if post else []
        # in place: the per-class confidence below reads the probabilities with the bans
        labels, info = labels_from_probs(probs, cmap, banned, name, ct.voxels[k], spacing,
                                         post, in_place=True)
        pmax = probs.max(0)
        conf = {c.name: round(float(pmax[labels == c.id].mean()), 3)
                for c in cmap.classes if c.id != 0 and (labels == c.id).any()}
        agreement: dict[str, float] = {}
        if confidence:
            # the final probabilities and each pass through the same steps on the model's
            # grid (arg-max, then the same post-processing: rule split and growth included),
            # so the score measures the stability of what is reported, not how far the rules
            # moved the network's own arg-max, nor the resampling between the grids
            hu_m = (zoom_linear(ct.voxels[k][None].astype(np.float32), model_shape)[0]
                    if post else None)
            sp_m = (spacing[0] * native[1] / model_shape[1],
                    spacing[1] * native[0] / model_shape[0])

            agreement = tta_agreement(
                labels_from_probs(probs_m, cmap, banned, name, hu_m, sp_m, post)[0],
                [labels_from_probs(pp, cmap, banned, name, hu_m, sp_m, post)[0]
                 for pp in check_probs[i]], cmap)
            # scored on the model's grid, reported for what the native labels hold
            present = {c.name for c in cmap.classes if c.id != 0 and (labels == c.id).any()}
            present |= {f"autochthon_{c.side}" for c in cmap.classes
                        if c.muscle in AUTOCHTHON and c.name in present}
            agreement = {n: v for n, v in agreement.items() if n in present}
            for c in cmap.classes:
                if c.muscle in EXPECTED_AT_LEVEL.get(name, ()) and c.name not in agreement:
                    agreement[c.name] = 0.0  # anatomy says it is there; the model missed it
        flags = _flags(labels, conf, cmap, info)
        flags += tuple(
            f"needs review: {n} " + (f"({kind} {v:.2f} < {below})"
                                     if n not in cmap.names or (labels == cmap.id_of(n)).any()
                                     else f"expected at {name}, not found")
            for n, v in agreement.items() if v < below)
        out.append(
            LevelSegmentation(
                level=name, slice_index=k, z_mm=ct.slice_z_mm(k), labels=labels,
                spacing_mm=spacing, class_map=cmap, confidence=conf,
                flags=flags, postprocessing=info, seg_confidence=agreement,
                review_below=below,
            )
        )
    info_meta = {
        "gluteal_ceiling_slice": ceiling,
        "name": str(m.metadata.get("name", m.path.parent.name)),
        "metadata": str(m.path),
        "sha256": m.metadata.get("weights", {}).get("sha256"),
        "tta": tta,
        "confidence": ("off" if not confidence
                       else f"ensemble agreement ({len(m.members)} members)" if m.is_ensemble
                       else "test-time agreement (orig, flip, scale)"),
        "needs_review_below": below,
        "postprocessing": post,
        "device": str(dev),
    }
    return SegmentationResult(tuple(out), cmap, ct.geometry, info_meta, time.time() - t0)


def write_outputs(result: SegmentationResult, ct: CTVolume, out_dir: Any,
                  overwrite: bool = False) -> dict[str, Any]:
    """Write ``rcsa segment``'s folder with the run folder's writer
    (:func:`rcsa.runfolder.write_run_folder`: atomic, a non-empty ``out_dir`` refused unless
    ``overwrite``, the run folder's file names): ``segmentation.nii.gz`` (CT grid, labels on
    level slices only), ``segmentation_labels.json`` (id -> name), ``qc/<level>.png`` per
    level and ``segmentation_summary.json`` (the summary returned)."""
    from pathlib import Path

    from rcsa.io import LabelVolume
    from rcsa.runfolder import Overlay, RunContent, write_run_folder
    from rcsa.runfolder import names as N

    out = Path(out_dir)
    overlays = []
    for lv in result.levels:
        review = [f"needs review: {n} ({lv.seg_confidence[n]:.2f})" for n in lv.needs_review]
        lines = tuple(review[:4]) + tuple(f"flag: {f}" for f in lv.flags
                                          if not f.startswith("needs review"))[:4]
        overlays.append(Overlay(
            lv.level, lv.slice_index, lv.labels, result.class_map,
            title=f"{lv.level} k={lv.slice_index} z={lv.z_mm:.1f} mm "
            "(multifidus/erector trained on a rule-derived split)", lines=lines))
    summary = {
        "segmentation": str(out / N.SEGMENTATION_NIFTI),
        "labels": str(out / N.SEGMENTATION_LABELS_JSON),
        "qc": [str(out / N.qc_image(lv.level)) for lv in result.levels],
        "model": dict(result.model_info),
        "seconds": round(result.seconds, 3),
        "levels": {
            lv.level: {
                "slice_index": lv.slice_index,
                "z_mm": round(lv.z_mm, 3),
                "areas_mm2": {k: round(v, 1) for k, v in lv.areas_mm2().items() if v > 0},
                "confidence": dict(lv.confidence),
                "seg_confidence": dict(lv.seg_confidence),
                "needs_review": list(lv.needs_review),
                "flags": list(lv.flags),
                "postprocessing": dict(lv.postprocessing),
            }
            for lv in result.levels
        },
    }
    names = {c.id: c.name for c in result.class_map.classes}
    segmentation = LabelVolume(result.to_volume(), ct.geometry, names)
    write_run_folder(RunContent(ct, segmentation, result.class_map, tuple(overlays),
                                segmentation_summary=summary), out, overwrite=overwrite)
    return summary
