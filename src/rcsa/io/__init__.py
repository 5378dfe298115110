"""Input/output: the only place that knows file formats and orientation codes.

>>> from rcsa.io import load
>>> ct = load("sample_data/ct_abdomen_pelvis/ct.nii.gz")   # doctest: +SKIP
>>> ct.size_voxels, ct.spacing_mm                          # doctest: +SKIP
"""

from rcsa.io.image import load_labels, read_label_names
from rcsa.io.load import load
from rcsa.io.options import LoadOptions
from rcsa.io.tag import read_tag
from rcsa.io.volume import (
    CTVolume,
    Geometry,
    LabelVolume,
    SeriesIds,
    SeriesSummary,
    Slice,
    SourceInfo,
)

__all__ = [
    "CTVolume",
    "Geometry",
    "LabelVolume",
    "LoadOptions",
    "SeriesIds",
    "SeriesSummary",
    "Slice",
    "SourceInfo",
    "load",
    "load_labels",
    "read_label_names",
    "read_tag",
]
