"""Where level labels come from: a label volume on the CT grid (existing masks) or rcsa's
segmentation result. Both end as ``{level: LevelLabels}`` for :func:`rcsa.measure.measure`."""

from __future__ import annotations

from typing import Any

import numpy as np

from rcsa.anatomy import ClassMap
from rcsa.io.volume import LabelVolume
from rcsa.levels.types import LevelMap
from rcsa.measure.types import LevelLabels


def labels_at_levels(
    labels: LabelVolume, class_map: ClassMap, level_map: LevelMap, source: str = ""
) -> dict[str, LevelLabels]:
    """Cut the axial slice of every found level out of a label volume of rcsa class ids."""
    out: dict[str, LevelLabels] = {}
    for name, level in level_map.levels.items():
        if level.found and level.slice_index is not None:
            k = int(level.slice_index)
            out[name] = LevelLabels(name, k, np.asarray(labels.voxels[k]), class_map, source)
    return out


def labels_from_segmentation(result: Any) -> dict[str, LevelLabels]:
    """``{level: LevelLabels}`` from an ``rcsa.segment`` result (duck-typed: torch-free)."""
    out: dict[str, LevelLabels] = {}
    info = getattr(result, "model_info", {})
    source = str(info.get("name", "rcsa model"))
    below = info.get("needs_review_below")
    for lv in result.levels:
        out[lv.level] = LevelLabels(
            lv.level, int(lv.slice_index), np.asarray(lv.labels), lv.class_map, source,
            tuple(lv.flags), dict(getattr(lv, "seg_confidence", {}) or {}),
            float(below) if below is not None else None,
        )
    return out
