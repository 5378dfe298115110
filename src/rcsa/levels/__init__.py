"""Vertebral and pelvic measurement levels: find, override, check (``docs/levels.md``).

>>> from rcsa.io import load
>>> from rcsa.levels import find_levels
>>> lm = find_levels(load("sample_data/ct_abdomen_pelvis/ct.nii.gz"))   # doctest: +SKIP
>>> lm["L3"].slice_index, lm["L3"].status                              # doctest: +SKIP
"""

from rcsa.levels.find import find_levels
from rcsa.levels.override import (
    LevelOverride,
    apply_overrides,
    load_levels_file,
    parse_level_override,
)
from rcsa.levels.qc import write_qc_png
from rcsa.levels.types import LEVEL_NAMES, PELVIC_LEVELS, VERTEBRAE, Level, LevelMap

__all__ = [
    "LEVEL_NAMES",
    "PELVIC_LEVELS",
    "VERTEBRAE",
    "Level",
    "LevelMap",
    "LevelOverride",
    "apply_overrides",
    "find_levels",
    "load_levels_file",
    "parse_level_override",
    "write_qc_png",
]
