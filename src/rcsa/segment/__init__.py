"""Muscle and vertebral-body segmentation of axial CT slices (MONAI 2.5-D U-Net).

The only rcsa package that imports torch / MONAI, and it does so lazily: importing
``rcsa.segment`` (or its torch-free modules ``classes``, ``split``, ``prepare``, ``data``,
``postprocess``, ``qc``, ``nifti``) does not load torch; ``segment``, ``load_model`` and
``train`` do.

>>> from rcsa.io import load
>>> from rcsa.segment import segment
>>> ct = load("sample_data/ct_abdomen_pelvis/ct.nii.gz")      # doctest: +SKIP
>>> result = segment(ct, {"L3": 72}, tta=True)                # doctest: +SKIP
>>> result["L3"].area_mm2("psoas_left")                       # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rcsa._lazy import lazy_attributes
from rcsa.segment.classes import RCSA_CLASSES, ClassMap, SegClass

if TYPE_CHECKING:
    from rcsa.segment.infer import LevelSegmentation, SegmentationResult, segment, write_outputs
    from rcsa.segment.model import LoadedModel, load_model
    from rcsa.segment.prepare import prepare_training
    from rcsa.segment.train import TrainConfig, train

_LAZY = {
    "segment": "rcsa.segment.infer",
    "write_outputs": "rcsa.segment.infer",
    "LevelSegmentation": "rcsa.segment.infer",
    "SegmentationResult": "rcsa.segment.infer",
    "load_model": "rcsa.segment.model",
    "LoadedModel": "rcsa.segment.model",
    "prepare_training": "rcsa.segment.prepare",
    "train": "rcsa.segment.train",
    "TrainConfig": "rcsa.segment.train",
}

__all__ = [
    "RCSA_CLASSES",
    "ClassMap",
    "LevelSegmentation",
    "LoadedModel",
    "SegClass",
    "SegmentationResult",
    "TrainConfig",
    "load_model",
    "prepare_training",
    "segment",
    "train",
    "write_outputs",
]


__getattr__ = lazy_attributes(__name__, _LAZY)
