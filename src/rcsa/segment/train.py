"""``rcsa train``: 2.5-D MONAI BasicUNet on axial slices, from a manifest of labelled CTs.

Manifest (CSV with header): ``image,labels,label_map`` and optional ``parts`` (vertebral body
/ posterior-element mask) and ``subject`` columns. ``label_map`` is ``ts_v1``, ``ts_v2`` or
``rcsa`` (already prepared by ``rcsa prepare-training``). Relative paths are relative to the
manifest's folder.

Design (see ``docs/segment.md``): fixed in-plane spacing, HU window normalisation, MONAI
dictionary transforms with CT augmentation (anisotropic scale, rotation, shear, elastic,
field-of-view crops, intensity shift/scale, noise, blur, left-right flip with L/R label
swap), a CacheDataset, a marginal Dice + cross-entropy loss in which a class the subject's
labels do not define is merged into background (so it is neither learnt as background nor as
foreground), validation on held-out *subjects*, fixed seeds, checkpoints every epoch and
``--resume``.
"""

from __future__ import annotations

import csv
import json
import math
import random
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from monai.data.dataloader import DataLoader
from monai.data.dataset import CacheDataset
from monai.transforms.compose import Compose
from monai.transforms.croppad.dictionary import RandCropByPosNegLabeld, SpatialPadd
from monai.transforms.intensity.dictionary import (
    RandGaussianNoised,
    RandGaussianSmoothd,
    RandScaleIntensityd,
    RandShiftIntensityd,
)
from monai.transforms.spatial.dictionary import Rand2DElasticd, RandAffined
from monai.transforms.transform import MapTransform, Randomizable
from monai.transforms.utility.dictionary import EnsureTyped

from rcsa.errors import InputError, InputNotFoundError
from rcsa.outputs import atomic_write, atomic_write_text, make_dir
from rcsa.segment import classes as C
from rcsa.segment.data import Preprocessing, resample_labels, resampled_shape, slice_stack
from rcsa.segment.infer import predict_stack
from rcsa.segment.model import DEFAULT_ARCH, build_network

MANIFEST_COLUMNS = ("image", "labels", "label_map")


def _save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file moved into place (an interrupted or refused write
    never leaves a truncated checkpoint for ``--resume``); a refused write (disk full,
    permission denied) is an :class:`~rcsa.errors.OutputWriteError` naming ``path``."""
    atomic_write(path, lambda tmp: torch.save(obj, tmp), overwrite=True)


def _save_json(data: Any, path: Path) -> None:
    atomic_write_text(path, json.dumps(data, indent=1) + "\n", overwrite=True)


@dataclass(frozen=True)
class ManifestRow:
    subject: str
    image: Path
    labels: Path
    label_map: str
    parts: Path | None = None
    #: rcsa classes whose *absence* in this subject's labels is not to be learnt (masked from
    #: the loss like a class the label source lacks): optional ``unknown`` column, names
    #: separated by ``;`` (a muscle name such as ``psoas`` stands for both sides)
    unknown: tuple[str, ...] = ()


def _unknown_classes(value: str, path: Path, line: int) -> tuple[str, ...]:
    names: list[str] = []
    for tok in (t.strip() for t in value.split(";")):
        if not tok:
            continue
        if tok in C.RCSA_CLASSES.names:
            names.append(tok)
        elif C.RCSA_CLASSES.ids_of_muscle(tok):
            names += [C.RCSA_CLASSES.classes[i].name for i in C.RCSA_CLASSES.ids_of_muscle(tok)]
        else:
            raise InputError(f"manifest line {line}: unknown class or muscle {tok!r} in the "
                             f"'unknown' column (classes: {', '.join(C.RCSA_CLASSES.names[1:])})",
                             path)
    if "background" in names:
        raise InputError(f"manifest line {line}: background cannot be unknown", path)
    return tuple(dict.fromkeys(names))


def read_manifest(path: Path) -> list[ManifestRow]:
    if not path.is_file():
        raise InputNotFoundError("manifest not found", path)
    rows: list[ManifestRow] = []
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in MANIFEST_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"manifest lacks column(s) {missing}", path)
        for i, r in enumerate(reader):

            def p(v: str) -> Path:
                q = Path(v)
                return q if q.is_absolute() else path.parent / q

            parts = (r.get("parts") or "").strip()
            rows.append(
                ManifestRow(
                    subject=(r.get("subject") or "").strip() or f"s{i}",
                    image=p(r["image"].strip()),
                    labels=p(r["labels"].strip()),
                    label_map=r["label_map"].strip(),
                    parts=p(parts) if parts else None,
                    unknown=_unknown_classes(r.get("unknown") or "", path, i + 2),
                )
            )
    if not rows:
        raise InputError("manifest has no rows", path)
    return rows


@dataclass
class TrainConfig:
    epochs: int = 40
    samples_per_epoch: int = 160
    batch_size: int = 8
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    val_subjects: tuple[str, ...] = ()
    threads: int = 1
    slice_step: int = 1  # use every n-th slice (tests)
    arch: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_ARCH))
    pre: Preprocessing = field(default_factory=Preprocessing)
    early_stop_patience: int = 0  # epochs without val improvement (0 = off)
    max_minutes: float = 0.0  # wall-clock budget: stop after the epoch that exceeds it (0 = off)
    swa_epochs: int = 0  # average the weights of the last N epochs and export that (0 = off)
    #: synthetic variation families (:mod:`rcsa.segment.synth`), empty = the v0.3 recipe
    synth: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["pre"] = self.pre.to_json()
        d["val_subjects"] = list(self.val_subjects)
        d["synth"] = list(self.synth)
        return d


# ---------------------------------------------------------------------------------------------
# data


def thick_slices(ct: Any, thickness_mm: float) -> Any:
    """``ct`` smoothed along z (Gaussian, FWHM added in quadrature to the slice spacing) to
    an effective slice thickness of ``thickness_mm``."""
    from dataclasses import replace

    from scipy import ndimage

    dz = abs(float(ct.spacing_mm[2]))
    fwhm = max(0.0, thickness_mm**2 - dz**2) ** 0.5
    vox = ct.voxels.astype(np.float32)
    if fwhm > 0:
        vox = ndimage.gaussian_filter1d(vox, fwhm / 2.3548 / dz, axis=0, mode="nearest")
    return replace(ct, voxels=np.asarray(vox, np.float32))


def build_items(rows: Sequence[ManifestRow], pre: Preprocessing, slice_step: int = 1,
                synth: bool = False) -> list[dict[str, Any]]:
    """One dict per axial slice (slices whose labels are all ignore are skipped): image
    (C,H,W), label (1,H,W), unknown (n_classes,); with
    ``synth`` also ``thick`` (the stack at 5 mm slice thickness) and ``aux`` (1,H,W: contrast-
    fillable vessels 1, kidneys 2) for :mod:`rcsa.segment.synth`."""
    from rcsa.io import load_labels
    from rcsa.segment.prepare import contrast_structures, load_subject
    from rcsa.segment.synth import THICK_SLICE_MM

    items: list[dict[str, Any]] = []
    n = len(C.RCSA_CLASSES)
    for row in rows:
        ct, prep = load_subject(row.image, row.labels, row.label_map, row.parts)
        unknown = np.ones(n, np.float32)
        unknown[list(prep.known_classes)] = 0.0
        shape = resampled_shape(ct, pre)
        vox = prep.labels.voxels
        for name in row.unknown:
            cid = C.RCSA_CLASSES.id_of(name)
            labelled = int((vox == cid).sum())
            if labelled:
                raise InputError(f"subject {row.subject}: class {name} is declared unknown but "
                                 f"its labels mark {labelled} voxels of it; 'unknown' is for "
                                 "classes whose absence is not to be learnt", row.labels)
            unknown[cid] = 1.0
        thick = aux = None
        if synth:
            thick = thick_slices(ct, THICK_SLICE_MM)
            aux = contrast_structures(load_labels(row.labels, like=ct), row.label_map)
        for k in range(0, ct.voxels.shape[0], slice_step):
            if (vox[k] == C.IGNORE_INDEX).all():
                continue  # nothing to learn (a pseudo-labelled subject's unchosen slices)
            item: dict[str, Any] = {
                "image": slice_stack(ct, k, pre),
                "label": resample_labels(vox[k], shape)[np.newaxis].astype(np.float32),
                "unknown": unknown,
                "subject": row.subject,
                "k": k,
            }
            if thick is not None and aux is not None:
                item["thick"] = slice_stack(thick, k, pre)
                item["aux"] = resample_labels(aux[k], shape)[np.newaxis].astype(np.float32)
            items.append(item)
    return items


class RandSynthd(Randomizable, MapTransform):
    """The label-aware synthetic variation of :mod:`rcsa.segment.synth` as a MONAI dictionary
    transform (numpy inside, tensors out); drops ``thick`` and ``aux`` afterwards."""

    def __init__(self, families: Sequence[str]) -> None:
        MapTransform.__init__(self, ["image", "label"])
        self.families = tuple(families)

    def randomize(self, data: Any = None) -> None:
        pass

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        from rcsa.segment import synth

        d = dict(data)
        keys = [k for k in ("image", "thick", "label", "aux") if k in d]
        sample = {str(k): np.asarray(torch.as_tensor(d[k]).cpu().numpy()) for k in keys}
        sample = synth.apply(sample, self.families, self.R)
        for k in ("thick", "aux"):
            d.pop(k, None)
        d["image"] = torch.as_tensor(np.ascontiguousarray(sample["image"], np.float32))
        d["label"] = torch.as_tensor(np.ascontiguousarray(sample["label"], np.float32))
        return d


class RandLRFlipSwapd(Randomizable, MapTransform):
    """Mirror image and label left-right (last axis) and swap the L/R class ids."""

    def __init__(self, keys: Sequence[str], label_key: str, perm: Sequence[int],
                 prob: float = 0.5) -> None:
        MapTransform.__init__(self, keys)
        self.label_key = label_key
        self.prob = prob
        lut = np.arange(256, dtype=np.float32)
        for i, j in enumerate(perm):
            lut[i] = j
        self.lut = lut
        self._do = False

    def randomize(self, data: Any = None) -> None:
        self._do = bool(self.R.random_sample() < self.prob)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        self.randomize()
        if not self._do:
            return d
        for key in self.key_iterator(d):
            d[key] = torch.flip(torch.as_tensor(d[key]), dims=(-1,))
        lab = torch.as_tensor(d[self.label_key])
        lut = torch.as_tensor(self.lut, device=lab.device)
        d[self.label_key] = lut[lab.long().clamp(0, 255)].to(lab.dtype)
        return d


def train_transforms(pre: Preprocessing, class_map: C.ClassMap,
                     synth: Sequence[str] = ()) -> Compose:
    """The augmentation pipeline; ``synth`` adds the families of :mod:`rcsa.segment.synth`
    (numpy generators on the whole slice before the crop; ``geometry`` and ``noise`` widen
    the MONAI transforms below)."""
    ps = (pre.patch_size, pre.patch_size)
    keys = ["image", "label"]
    geometry = "geometry" in synth
    numpy_families = [f for f in synth if f not in ("geometry", "noise")]
    pre_crop: list[Any] = [RandSynthd(numpy_families)] if numpy_families else []
    scale: Any = ((-0.25, 0.3), (-0.25, 0.3)) if geometry else (0.25, 0.25)
    return Compose(
        [
            EnsureTyped(keys=keys, track_meta=False),
            SpatialPadd(keys=keys + (["thick", "aux"] if numpy_families else []),
                        spatial_size=ps),
            *pre_crop,
            RandCropByPosNegLabeld(keys=keys, label_key="label", spatial_size=ps, pos=3,
                                   neg=1, num_samples=1),
            RandAffined(
                keys=keys, prob=0.9, rotate_range=(math.radians(15),),
                scale_range=scale, shear_range=(0.08, 0.08),
                translate_range=(20, 20) if geometry else (12, 12),
                mode=("bilinear", "nearest"), padding_mode="zeros",
            ),
            Rand2DElasticd(keys=keys, spacing=(24, 24), magnitude_range=(0.5, 2.0),
                           prob=0.5 if geometry else 0.25,
                           mode=("bilinear", "nearest"), padding_mode="zeros"),
            RandLRFlipSwapd(keys=keys, label_key="label", perm=class_map.lr_permutation()),
            RandScaleIntensityd(keys="image", factors=0.15, prob=0.5),
            RandShiftIntensityd(keys="image", offsets=0.06, prob=0.5),
            RandGaussianNoised(keys="image", prob=0.4 if "noise" in synth else 0.3,
                               std=0.06 if "noise" in synth else 0.03),
            RandGaussianSmoothd(keys="image", prob=0.2, sigma_x=(0.3, 1.0), sigma_y=(0.3, 1.0)),
            EnsureTyped(keys=keys, track_meta=False),
        ]
    )


# ---------------------------------------------------------------------------------------------
# loss and metrics


def merge_unknown(probs: torch.Tensor, unknown: torch.Tensor) -> torch.Tensor:
    """Marginal probabilities: unknown classes' probability is added to background."""
    u = unknown[:, :, None, None]
    merged = probs * (1.0 - u)
    merged[:, 0] = merged[:, 0] + (probs * u).sum(dim=1)
    return merged


def marginal_loss(logits: torch.Tensor, target: torch.Tensor, unknown: torch.Tensor
                  ) -> torch.Tensor:
    """Cross-entropy + soft Dice over the classes each sample's labels define.

    ``target`` (B,H,W) long with :data:`C.IGNORE_INDEX` for ignored pixels; ``unknown``
    (B,C) 1 where the sample's subject does not define the class.
    """
    probs = torch.softmax(logits, dim=1)
    merged = merge_unknown(probs, unknown)
    valid = (target != C.IGNORE_INDEX).float()[:, None]
    if not bool(valid.any()):  # every pixel ignored (a crop of pseudo-labels): no loss
        return logits.sum() * 0
    ce = F.nll_loss(torch.log(merged.clamp_min(1e-6)), target, ignore_index=C.IGNORE_INDEX)
    onehot = F.one_hot(target.clamp(0, logits.shape[1] - 1), logits.shape[1])
    onehot = onehot.permute(0, 3, 1, 2).float() * valid
    known = (1.0 - unknown)[:, :, None, None]
    p = merged * valid * known
    t = onehot * known
    inter = (p * t).sum(dim=(0, 2, 3))
    denom = p.sum(dim=(0, 2, 3)) + t.sum(dim=(0, 2, 3))
    dice = (2 * inter + 1.0) / (denom + 1.0)
    defined = known.sum(dim=(0, 2, 3)) > 0
    defined[0] = False
    dice_loss = (1 - dice[defined]).mean() if defined.any() else logits.sum() * 0
    return ce + dice_loss


def dice_counts(pred: npt.NDArray[Any], target: npt.NDArray[Any], n: int
                ) -> npt.NDArray[np.float64]:
    """(n, 3): intersection, |pred|, |target| per class, ignoring IGNORE_INDEX pixels."""
    valid = target != C.IGNORE_INDEX
    p, t = pred[valid].astype(np.int64), target[valid].astype(np.int64)
    out = np.zeros((n, 3))
    out[:, 0] = np.bincount(p[p == t], minlength=n)[:n]
    out[:, 1] = np.bincount(p, minlength=n)[:n]
    out[:, 2] = np.bincount(t, minlength=n)[:n]
    return out


def dice_from_counts(c: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Dice per row; NaN where the reference has no pixel of the class (undefined)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        d = 2 * c[:, 0] / (c[:, 1] + c[:, 2])
    d[c[:, 2] == 0] = np.nan
    return np.asarray(d)


def evaluate(net: torch.nn.Module, items: Sequence[Mapping[str, Any]], device: torch.device,
             roi: int, n: int) -> dict[str, npt.NDArray[np.float64]]:
    """Per-subject Dice counts over all its slices (a 3-D Dice on the slices): rows 0..n-1
    the classes, then merged autochthon (multifidus + erector spinae) left and right."""
    net.eval()
    counts: dict[str, npt.NDArray[np.float64]] = {}
    for it in items:
        probs = predict_stack(net, it["image"], device, roi)
        pred = probs.argmax(0)
        target = np.asarray(it["label"][0]).astype(np.int64)
        unknown = np.asarray(it["unknown"]) > 0
        # classes the subject does not define: predicted pixels count as background
        pred = np.where(unknown[pred], 0, pred)
        c = counts.setdefault(str(it["subject"]), np.zeros((n + 2, 3)))
        c[:n] += dice_counts(pred, target, n)
        c[n:] += dice_counts(autochthon_map(pred), autochthon_map(target), 3)[1:]
    return counts


AUTOCHTHON_NAMES = ("autochthon_left", "autochthon_right")


def autochthon_map(labels: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    """1 / 2 where multifidus or erector spinae left / right, 255 kept, else 0."""
    out = np.zeros(labels.shape, np.int64)
    out[np.isin(labels, (C.MULTIFIDUS_L, C.ERECTOR_L))] = 1
    out[np.isin(labels, (C.MULTIFIDUS_R, C.ERECTOR_R))] = 2
    out[labels == C.IGNORE_INDEX] = C.IGNORE_INDEX
    return out


# ---------------------------------------------------------------------------------------------
# training loop


def _swa_update(avg: dict[str, torch.Tensor] | None, n: int, net: torch.nn.Module
                ) -> tuple[dict[str, torch.Tensor], int]:
    """Stochastic weight averaging (Izmailov et al., UAI 2018): running mean of the network's
    floating-point weights over epochs. The network has no batch normalisation (instance
    norm), so the averaged weights need no statistics update."""
    state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    if avg is None:
        return state, 1
    for k, v in state.items():
        if v.is_floating_point():
            avg[k] += (v - avg[k]) / (n + 1)
    return avg, n + 1


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _weights(items: Sequence[Mapping[str, Any]]) -> npt.NDArray[np.float64]:
    subj = [str(it["subject"]) for it in items]
    counts = {s: subj.count(s) for s in set(subj)}
    w = np.array([1.0 / math.sqrt(counts[s]) for s in subj])
    return np.asarray(w / w.sum())


def train(
    manifest: Path,
    out_dir: Path,
    config: TrainConfig,
    resume: bool = False,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train; writes ``out_dir/{last,best}.pt``, ``history.json`` and an exportable
    ``model/`` (weights + metadata.json) from the best (or last) epoch. Returns the summary."""
    from rich.progress import Progress

    torch.set_num_threads(max(1, config.threads))
    _seed_all(config.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    rows = read_manifest(manifest)
    cmap = C.RCSA_CLASSES
    n = len(cmap)
    pre = config.pre
    t0 = time.time()
    items = build_items(rows, pre, config.slice_step, synth=bool(config.synth))
    train_items = [it for it in items if it["subject"] not in config.val_subjects]
    val_items = [it for it in items if it["subject"] in config.val_subjects]
    if not train_items:
        raise InputError("no training subjects left after the validation split", manifest)
    emit = log or (lambda s: None)
    emit(f"{len(train_items)} training / {len(val_items)} validation slices "
         f"prepared in {time.time() - t0:.1f} s on {device}")

    ds = CacheDataset(train_items, transform=train_transforms(pre, cmap, config.synth),
                      cache_rate=1.0,
                      num_workers=0, progress=False)
    tfm = ds.transform
    assert isinstance(tfm, Compose)
    net = build_network(config.arch, pre.in_channels, n).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, config.epochs))
    make_dir(out_dir)
    history: list[dict[str, Any]] = []
    start_epoch = 0
    best_score = -1.0
    last = out_dir / "last.pt"
    ck: dict[str, Any] = {}
    if resume and last.is_file():
        ck = torch.load(last, map_location=device, weights_only=False)
        net.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        start_epoch = int(ck["epoch"]) + 1
        history = list(ck["history"])
        best_score = float(ck["best_score"])
        torch.set_rng_state(ck["torch_rng"])
        np.random.set_state(ck["numpy_rng"])
        random.setstate(ck["python_rng"])
        emit(f"resumed from {last} at epoch {start_epoch}")
    swa: dict[str, torch.Tensor] | None = None  # running mean of the weights (SWA)
    swa_n = 0
    if ck.get("swa") is not None:  # resumed inside the averaging window
        swa, swa_n = ck["swa"], int(ck["swa_n"])
    sampler_rng = np.random.default_rng(config.seed + start_epoch)
    weights = _weights(train_items)
    _save_json(config.to_json(), out_dir / "config.json")

    with Progress(disable=not progress, transient=False) as bar:
        task = bar.add_task("training", total=config.epochs, completed=start_epoch)
        for epoch in range(start_epoch, config.epochs):
            net.train()
            te = time.time()
            idx = sampler_rng.choice(len(ds), size=config.samples_per_epoch, p=weights)
            tfm.set_random_state(seed=config.seed + epoch)
            loader = DataLoader(
                torch.utils.data.Subset(ds, idx.tolist()), batch_size=config.batch_size,
                shuffle=False, num_workers=0,
            )
            losses = []
            for batch in loader:
                x = batch["image"].to(device)
                y = batch["label"][:, 0].long().to(device)
                u = batch["unknown"].float().to(device)
                opt.zero_grad()
                loss = marginal_loss(net(x), y, u)
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
                losses.append(float(loss.detach()))
            sched.step()
            rec: dict[str, Any] = {"epoch": epoch, "loss": float(np.mean(losses)),
                                   "seconds": round(time.time() - te, 1)}
            score = -float(np.mean(losses))
            if val_items:
                counts = evaluate(net, val_items, device, pre.patch_size, n)
                per = {s: dice_from_counts(c) for s, c in counts.items()}
                names = (*cmap.names, *AUTOCHTHON_NAMES)
                rec["val_dice"] = {s: {names[i]: (None if np.isnan(v) else round(float(v), 4))
                                       for i, v in enumerate(d) if i > 0}
                                   for s, d in per.items()}
                vals = [v for d in per.values() for v in d[1:] if not np.isnan(v)]
                score = float(np.mean(vals)) if vals else 0.0
                rec["val_score"] = round(score, 4)
            if config.swa_epochs and epoch >= config.epochs - config.swa_epochs:
                swa, swa_n = _swa_update(swa, swa_n, net)
                rec["swa_epochs_averaged"] = swa_n
            history.append(rec)
            improved = score > best_score
            if improved:
                best_score = score
                _save(net.state_dict(), out_dir / "best_weights.pt")
            _save(
                {"model": net.state_dict(), "optimizer": opt.state_dict(),
                 "scheduler": sched.state_dict(), "epoch": epoch, "history": history,
                 "best_score": best_score, "torch_rng": torch.get_rng_state(),
                 "numpy_rng": np.random.get_state(), "python_rng": random.getstate(),
                 "config": config.to_json(), "swa": swa, "swa_n": swa_n},
                last,
            )
            _save_json(history, out_dir / "history.json")
            msg = f"epoch {epoch + 1}/{config.epochs} loss {rec['loss']:.4f} ({rec['seconds']} s)"
            if "val_dice" in rec:
                msg += f" val {rec['val_score']:.3f}" + ("*" if improved else "")
                for s, d in rec["val_dice"].items():
                    msg += f"\n  {s}: " + " ".join(
                        f"{k}={v:.3f}" for k, v in d.items() if v is not None)
            if progress:
                bar.console.print(msg, highlight=False)
            else:
                emit(msg)
            bar.update(task, advance=1)
            if config.max_minutes and time.time() - t0 > 60 * config.max_minutes:
                emit(f"time budget of {config.max_minutes} min reached after epoch {epoch + 1}")
                break
            if (config.early_stop_patience and val_items and len(history) > 1):
                best_epoch = max(history, key=lambda r: r.get("val_score", -1))["epoch"]
                if epoch - best_epoch >= config.early_stop_patience:
                    emit(f"early stop: no improvement since epoch {best_epoch + 1}")
                    break

    if swa is not None:
        exported, origin = out_dir / "swa_weights.pt", f"mean of the last {swa_n} epochs (SWA)"
        _save(swa, exported)
    elif (out_dir / "best_weights.pt").is_file():
        exported, origin = out_dir / "best_weights.pt", "best epoch"
    else:
        exported, origin = last, "last epoch"
    summary = {
        "epochs_run": len(history),
        "best_score": best_score,
        "history": history,
        "train_subjects": sorted({str(it["subject"]) for it in train_items}),
        "val_subjects": sorted({str(it["subject"]) for it in val_items}),
        "seconds": round(time.time() - t0, 1),
        "device": str(device),
        "weights": origin,
    }
    export_model(exported, out_dir / "model", config, rows, summary)
    return summary


def export_model(weights: Path, out: Path, config: TrainConfig, rows: Sequence[ManifestRow],
                 summary: Mapping[str, Any], metrics: Mapping[str, Any] | None = None) -> Path:
    """Write ``out/model.pt`` (state dict) + ``out/metadata.json`` (with its sha256)."""
    from rcsa.segment.model import sha256_file

    make_dir(out)
    state = torch.load(weights, map_location="cpu", weights_only=False)
    if isinstance(state, dict) and "model" in state:
        state = state["model"]
    target = out / "model.pt"
    _save(state, target)
    meta = {
        "format": "rcsa-segmentation-model/1",
        "task": "axial CT slice segmentation of core muscles and the vertebral body",
        "classes": C.RCSA_CLASSES.to_json(),
        "class_notes": "left/right are the patient's; multifidus / erector spinae labels "
        "used for training are a RULE-DERIVED split of TotalSegmentator autochthon",
        "architecture": config.arch,
        "preprocessing": config.pre.to_json(),
        "weights": {"file": target.name, "sha256": sha256_file(target),
                    "bytes": target.stat().st_size},
        "training": {
            "subjects": [{"subject": r.subject, "image": str(r.image), "labels": str(r.labels),
                          "label_map": r.label_map,
                          **({"unknown_classes": list(r.unknown)} if r.unknown else {})}
                         for r in rows],
            "train_subjects": summary.get("train_subjects"),
            "val_subjects": summary.get("val_subjects"),
            "epochs_run": summary.get("epochs_run"),
            "weights_from": summary.get("weights"),
            "config": config.to_json(),
            "seconds": summary.get("seconds"),
            "device": summary.get("device"),
        },
        "metrics": dict(metrics or {}),
    }
    _save_json(meta, out / "metadata.json")
    return out / "metadata.json"
