"""The rcsa segmentation class map, as :mod:`rcsa.segment` and its callers know it.

The classes themselves (:class:`SegClass`, :class:`ClassMap`, :data:`RCSA_CLASSES`, the ids by
name and :func:`class_map_from_metadata`) are defined in :mod:`rcsa.anatomy`, below the measure
and pacs layers, and re-exported here unchanged; :data:`IGNORE_INDEX` (a training-label value)
belongs to segmentation and stays here. This module is torch-free.
"""

from __future__ import annotations

from rcsa.anatomy import (
    BACKGROUND,
    ERECTOR_L,
    ERECTOR_R,
    GMAX_L,
    GMAX_R,
    GMED_L,
    GMED_R,
    MULTIFIDUS_L,
    MULTIFIDUS_R,
    PSOAS_L,
    PSOAS_R,
    RCSA_CLASSES,
    VERTEBRAL_BODY,
    ClassMap,
    SegClass,
    class_map_from_metadata,
)

#: Label value meaning "unknown here, exclude from the loss" in prepared training labels.
IGNORE_INDEX = 255

__all__ = [
    "BACKGROUND",
    "ERECTOR_L",
    "ERECTOR_R",
    "GMAX_L",
    "GMAX_R",
    "GMED_L",
    "GMED_R",
    "IGNORE_INDEX",
    "MULTIFIDUS_L",
    "MULTIFIDUS_R",
    "PSOAS_L",
    "PSOAS_R",
    "RCSA_CLASSES",
    "VERTEBRAL_BODY",
    "ClassMap",
    "SegClass",
    "class_map_from_metadata",
]
