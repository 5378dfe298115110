"""Network construction and the shipped, self-describing model (weights + metadata.json)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from monai.networks.nets.basic_unet import BasicUNet

from rcsa.errors import ModelError
from rcsa.segment.classes import ClassMap, class_map_from_metadata
from rcsa.segment.data import Preprocessing

#: Folder of the shipped model inside the package.
MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
DEFAULT_MODEL = MODELS_DIR / "metadata.json"

DEFAULT_ARCH: dict[str, Any] = {
    "name": "BasicUNet",
    "spatial_dims": 2,
    "features": [16, 16, 32, 64, 128, 16],
    "dropout": 0.1,
}


def build_network(arch: Mapping[str, Any], in_channels: int, out_channels: int) -> torch.nn.Module:
    if arch.get("name") != "BasicUNet":
        raise ModelError(f"unsupported architecture {arch.get('name')!r}")
    net: torch.nn.Module = BasicUNet(
        spatial_dims=int(arch.get("spatial_dims", 2)),
        in_channels=in_channels,
        out_channels=out_channels,
        features=tuple(int(f) for f in arch["features"]),
        dropout=float(arch.get("dropout", 0.0)),
    )
    return net


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


#: ``model.pt`` of an ensemble: ``{"format": ENSEMBLE_FORMAT, "members": [state_dict, ...]}``.
ENSEMBLE_FORMAT = "rcsa-ensemble/1"


class EnsembleNetwork(torch.nn.Module):
    """Networks of one architecture trained apart (other seeds), combined as the mean of their
    soft-max probabilities (a deep ensemble, Lakshminarayanan et al., NeurIPS 2017).

    ``forward`` returns the *logarithm* of the mean probabilities, so that ``softmax`` of the
    output - what every caller applies to a network's logits - is exactly that mean.
    """

    def __init__(self, members: Sequence[torch.nn.Module]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ModelError("an ensemble needs at least two member networks")
        self.members = torch.nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = torch.stack([torch.softmax(m(x), dim=1) for m in self.members]).mean(0)
        return torch.log(p.clamp_min(1e-12))


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A network ready for inference, with what it needs to interpret its output.

    ``network`` is what to run for the prediction (an :class:`EnsembleNetwork` for an
    ensemble); ``members`` the ensemble's member networks (empty for a single network), whose
    disagreement is the ensemble's confidence (:func:`rcsa.segment.infer.segment`)."""

    network: torch.nn.Module
    class_map: ClassMap
    preprocessing: Preprocessing
    metadata: Mapping[str, Any]
    path: Path
    members: tuple[torch.nn.Module, ...] = ()

    @property
    def is_ensemble(self) -> bool:
        return len(self.members) > 1


def load_model(path: Path | None = None, device: str | torch.device = "cpu") -> LoadedModel:
    """Load a model from its ``metadata.json`` (default: the shipped one), offline.

    The weights file named in the metadata must match its recorded sha256, else
    :class:`~rcsa.errors.ModelChecksumError`.
    """
    from rcsa.errors import ModelChecksumError

    meta_path = Path(path) if path is not None else DEFAULT_MODEL
    if meta_path.is_dir():
        meta_path = meta_path / "metadata.json"
    if not meta_path.is_file():
        raise ModelError("model metadata not found (expected metadata.json)", meta_path)
    try:
        meta = json.loads(meta_path.read_text())
        weights = meta_path.parent / meta["weights"]["file"]
        expected = str(meta["weights"]["sha256"]).lower()
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"invalid model metadata: {exc}", meta_path) from exc
    if not weights.is_file():
        raise ModelError("model weights file missing", weights)
    actual = sha256_file(weights)
    if actual != expected:
        raise ModelChecksumError(
            f"model weights checksum mismatch: sha256 {actual[:16]}... but metadata.json "
            f"records {expected[:16]}...; the file is corrupt or not the one the metadata "
            "describes (reinstall rcsa or re-export the model)",
            weights,
        )
    class_map = class_map_from_metadata(meta)
    pre = Preprocessing.from_json(meta["preprocessing"])
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise ModelError(f"model weights unreadable: {exc}", weights) from exc
    if isinstance(state, dict) and state.get("format") == ENSEMBLE_FORMAT:
        states = state.get("members")
        n_meta = int(meta.get("ensemble", {}).get("members", 0))
        if not isinstance(states, list) or len(states) < 2 or len(states) != n_meta:
            raise ModelError(f"ensemble weights hold {len(states or [])} members but "
                             f"metadata.json records {n_meta}", weights)
        members = [_network(meta, pre, len(class_map), sd, weights, f"ensemble member {i}")
                   for i, sd in enumerate(states)]
        ens = EnsembleNetwork(members)
        ens.to(device)
        ens.eval()
        return LoadedModel(ens, class_map, pre, meta, meta_path, tuple(members))
    net = _network(meta, pre, len(class_map), state, weights,
                   "model weights do not fit the architecture")
    net.to(device)
    net.eval()
    return LoadedModel(net, class_map, pre, meta, meta_path)


def _network(meta: Mapping[str, Any], pre: Preprocessing, n_classes: int, state: Any,
             weights: Path, what: str) -> torch.nn.Module:
    """The recorded architecture with ``state`` loaded (``ModelError`` naming ``what``)."""
    net = build_network(meta["architecture"], pre.in_channels, n_classes)
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelError(f"{what}: {exc}", weights) from exc
    return net


def write_ensemble(models: Sequence[Path], out: Path, *, name: str | None = None,
                   needs_review_below: float | None = None) -> Path:
    """Combine trained models (each a ``metadata.json`` or its folder) into one ensemble model
    folder ``out`` (``model.pt`` + ``metadata.json``); returns the metadata path.

    The members must share classes, preprocessing and architecture (else
    :class:`~rcsa.errors.ModelError`); each is checksum-verified as it loads. ``out`` must not
    hold a model already (nothing is overwritten). The metadata records every member's training
    block (seed, subjects, epochs) under ``ensemble.member_training``. ``needs_review_below``
    (the calibrated agreement threshold, docs/segment.md "Confidence") goes to
    ``confidence.needs_review_below``.
    """
    if len(models) < 2:
        raise ModelError("an ensemble needs at least two models")
    if needs_review_below is not None and not 0.0 < needs_review_below <= 1.0:
        raise ModelError(f"needs_review_below {needs_review_below} outside (0, 1]", out)
    loaded = [load_model(p) for p in models]
    first = loaded[0]
    for m in loaded[1:]:
        for key in ("classes", "preprocessing", "architecture"):
            if m.metadata.get(key) != first.metadata.get(key):
                raise ModelError(f"ensemble members differ in {key!r} ({first.path} vs "
                                 f"{m.path})", m.path)
        if m.is_ensemble:
            raise ModelError("an ensemble member is itself an ensemble", m.path)
    if first.is_ensemble:
        raise ModelError("an ensemble member is itself an ensemble", first.path)
    out = Path(out)
    if (out / "metadata.json").exists() or (out / "model.pt").exists():
        raise ModelError("output folder already holds a model (nothing is overwritten)", out)
    from rcsa.outputs import atomic_write, atomic_write_text, make_dir

    make_dir(out)
    target = out / "model.pt"
    state = {"format": ENSEMBLE_FORMAT, "members": [m.network.state_dict() for m in loaded]}
    atomic_write(target, lambda tmp: torch.save(state, tmp), overwrite=False)
    meta = {k: v for k, v in first.metadata.items() if k not in ("training", "metrics", "name")}
    if name:
        meta["name"] = name
    meta["weights"] = {"file": target.name, "sha256": sha256_file(target),
                       "bytes": target.stat().st_size}
    trainings = [dict(m.metadata.get("training", {})) for m in loaded]
    meta["ensemble"] = {
        "members": len(loaded),
        "combine": "mean of the members' soft-max probabilities",
        "confidence": "agreement of each member's arg-max with the ensemble's (mean Dice)",
        "member_weights_sha256": [str(m.metadata["weights"]["sha256"]) for m in loaded],
        "member_training": trainings,
    }
    subjects = sorted({s for t in trainings for s in t.get("train_subjects") or []})
    meta["training"] = {"train_subjects": subjects,
                        "val_subjects": sorted({s for t in trainings
                                                for s in t.get("val_subjects") or []}),
                        "members": [{"seed": t.get("config", {}).get("seed"),
                                     "epochs_run": t.get("epochs_run"),
                                     "weights_from": t.get("weights_from")} for t in trainings]}
    meta["metrics"] = {}
    if needs_review_below is not None:
        meta["confidence"] = {"needs_review_below": float(needs_review_below),
                              "score": "ensemble agreement"}
    atomic_write_text(out / "metadata.json", json.dumps(meta, indent=1) + "\n", overwrite=False)
    return out / "metadata.json"
