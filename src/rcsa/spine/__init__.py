"""Vertebral bodies T11-L5: heights, Genant grades, trabecular attenuation (``docs/spine.md``).

Classical image analysis on the CT (torch-free), using the discs and names of
:mod:`rcsa.levels`.

>>> from rcsa.io import load
>>> from rcsa.levels import find_levels
>>> from rcsa.spine import analyse_spine
>>> ct = load("sample_data/ct_abdomen_pelvis/ct.nii.gz")            # doctest: +SKIP
>>> res = analyse_spine(ct, find_levels(ct))                         # doctest: +SKIP
>>> res["L3"].height_anterior_mm, res.fractured_vertebrae_n          # doctest: +SKIP
"""

from rcsa.spine.analyse import PICKHARDT_L1_BANDS_HU, analyse_spine, attenuation_band
from rcsa.spine.grade import GENANT_THRESHOLDS_PCT, genant_grade, grade_vertebra
from rcsa.spine.types import (
    SPINE_SCAN_COLUMNS,
    SPINE_VERTEBRAE,
    VERTEBRA_COLUMNS,
    HeightLine,
    SpineResult,
    VertebraResult,
    spine_columns,
)

__all__ = [
    "GENANT_THRESHOLDS_PCT",
    "PICKHARDT_L1_BANDS_HU",
    "SPINE_SCAN_COLUMNS",
    "SPINE_VERTEBRAE",
    "VERTEBRA_COLUMNS",
    "HeightLine",
    "SpineResult",
    "VertebraResult",
    "analyse_spine",
    "attenuation_band",
    "genant_grade",
    "grade_vertebra",
    "spine_columns",
]
