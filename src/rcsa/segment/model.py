"""Network construction and the shipped, self-describing model (weights + metadata.json)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
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


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A network ready for inference, with what it needs to interpret its output."""

    network: torch.nn.Module
    class_map: ClassMap
    preprocessing: Preprocessing
    metadata: Mapping[str, Any]
    path: Path


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
    net = build_network(meta["architecture"], pre.in_channels, len(class_map))
    state = torch.load(weights, map_location="cpu", weights_only=True)
    net.load_state_dict(state)
    net.to(device)
    net.eval()
    return LoadedModel(net, class_map, pre, meta, meta_path)
