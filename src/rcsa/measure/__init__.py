"""Measurements on level slices: CSA, rCSA, attenuation, fat infiltration (torch-free).

>>> from rcsa.measure import measure, labels_at_levels, wide_columns   # doctest: +SKIP
"""

from rcsa.measure.sources import labels_at_levels
from rcsa.measure.stats import RegionStats, pooled, region_stats
from rcsa.measure.table import (
    MUSCLES,
    LevelLabels,
    Measurement,
    Measurements,
    measure,
    wide_columns,
)

__all__ = [
    "MUSCLES",
    "LevelLabels",
    "Measurement",
    "Measurements",
    "RegionStats",
    "labels_at_levels",
    "measure",
    "pooled",
    "region_stats",
    "wide_columns",
]
