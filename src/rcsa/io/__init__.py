"""Input/output: the only place that knows file formats and orientation codes.

>>> from rcsa.io import load
>>> ct = load("sample_data/ct_abdomen_pelvis/ct.nii.gz")   # doctest: +SKIP
>>> ct.size_voxels, ct.spacing_mm                          # doctest: +SKIP

Other packages use the names below only (``tests/test_layering.py`` checks that ``batch`` and
the packages above it import no ``rcsa.io`` submodule).
"""

from rcsa.io.dicom import Damaged as DamagedDicom
from rcsa.io.dicom import SourceInstance as DicomSourceInstance
from rcsa.io.dicom import _Header as DicomHeader
from rcsa.io.dicom import dicom_source_instances, read_dicom_instance, why_not_analysable
from rcsa.io.dicom import read_file as read_dicom_file
from rcsa.io.identifiers import patient_identifiers
from rcsa.io.image import IMAGE_SUFFIXES, image_format, load_labels, read_label_names
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
from rcsa.io.write import write_labels

__all__ = [
    "IMAGE_SUFFIXES",
    "CTVolume",
    "DamagedDicom",
    "DicomHeader",
    "DicomSourceInstance",
    "Geometry",
    "LabelVolume",
    "LoadOptions",
    "SeriesIds",
    "SeriesSummary",
    "Slice",
    "SourceInfo",
    "dicom_source_instances",
    "image_format",
    "load",
    "load_labels",
    "patient_identifiers",
    "read_dicom_file",
    "read_dicom_instance",
    "read_label_names",
    "read_tag",
    "why_not_analysable",
    "write_labels",
]
