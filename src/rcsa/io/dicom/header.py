"""One DICOM file's header: reading it (Part 10 or raw), spotting truncation, and the
:class:`_Header` view the loader works on."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pydicom
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from rcsa.errors import (
    CorruptFileError,
    InputNotReadableError,
)

log = logging.getLogger(__name__)


CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
ENHANCED_CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2.1"
SECONDARY_CAPTURE_PREFIX = "1.2.840.10008.5.1.4.1.1.7"
AIR_HU = -1024.0

#: Tolerances for series validation (documented in docs/io.md).
ORIENTATION_TOL = 1e-3  # direction cosines
PIXEL_SPACING_TOL_MM = 1e-3
POSITION_DUPLICATE_TOL_MM = 0.01
SPACING_REL_TOL = 0.01  # 1 % of the median slice step ...
SPACING_ABS_TOL_MM = 0.02  # ... or 0.02 mm, whichever is larger
TILT_TOL_DEG = 0.05
AXIAL_MAX_ANGLE_DEG = 45.0


@dataclass
class _Header:
    path: Path
    ds: Dataset

    def get(self, keyword: str, default: Any = None) -> Any:
        return self.ds.get(keyword, default)

    @property
    def has_series_uid(self) -> bool:
        return bool(str(self.get("SeriesInstanceUID", "") or "").strip())

    @property
    def series_uid(self) -> str:
        """SeriesInstanceUID, or for anonymised files without one a surrogate key built from
        study, frame of reference, series number/description and modality.

        Size and orientation are deliberately not part of the key: an odd image among
        UID-less files must be reported as an inconsistent series, not split off silently."""
        if self.has_series_uid:
            return str(self.get("SeriesInstanceUID")).strip()
        parts = [
            str(self.get("StudyInstanceUID", "") or ""),
            str(self.get("FrameOfReferenceUID", "") or ""),
            str(self.get("SeriesNumber", "") or ""),
            str(self.get("SeriesDescription", "") or ""),
            self.modality,
        ]
        return "no-uid:" + "|".join(parts)

    @property
    def sop_class(self) -> str:
        """SOPClassUID, falling back to the file meta's MediaStorageSOPClassUID."""
        value = self.get("SOPClassUID") or getattr(
            getattr(self.ds, "file_meta", None), "MediaStorageSOPClassUID", None
        )
        return str(value or "")

    @property
    def modality(self) -> str:
        return str(self.get("Modality", "") or "?")

    @property
    def image_type(self) -> list[str]:
        value = self.get("ImageType", [])
        if isinstance(value, str):
            return [value.upper()]
        return [str(v).upper() for v in value]

    @property
    def has_pixel_data(self) -> bool:
        return any(t in self.ds for t in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"))

    def _numbers(self, keyword: str, n: int) -> npt.NDArray[np.float64] | None:
        """A decimal-string (DS) attribute as ``n`` floats, or None when absent / not ``n``.

        Parsed from the raw bytes when pydicom has not converted the element yet (its DS
        conversion validates every value and is most of the cost of reading a series'
        geometry); pydicom's value otherwise."""
        tag = tag_for_keyword(keyword)
        if tag is None or tag not in self.ds:
            return None
        raw = self.ds.get_item(tag)
        value = getattr(raw, "value", None)
        if isinstance(value, bytes):
            try:
                parts = [float(v) for v in value.decode("ascii").strip(" \0").split("\\")]
            except (UnicodeDecodeError, ValueError):
                parts = None
            if parts is not None:
                return np.array(parts) if len(parts) == n else None
        seq = self.get(keyword)
        if seq is None or len(seq) != n:
            return None
        return np.array([float(v) for v in seq])

    @cached_property
    def orientation(self) -> npt.NDArray[np.float64] | None:
        return self._numbers("ImageOrientationPatient", 6)

    @cached_property
    def position(self) -> npt.NDArray[np.float64] | None:
        return self._numbers("ImagePositionPatient", 3)




def _read_header(path: Path) -> Dataset | None:
    """Dataset with pixel data deferred, or None when the file is not DICOM."""
    try:
        ds = pydicom.dcmread(path, defer_size=1024)
    except InvalidDicomError:
        return _read_raw_header(path)
    except PermissionError as exc:
        raise InputNotReadableError("permission denied", path) from exc
    except OSError as exc:
        raise InputNotReadableError(f"cannot read file ({exc.strerror or exc})", path) from exc
    except Exception as exc:  # pydicom raises many types on malformed data
        raise CorruptFileError(f"DICOM header cannot be parsed ({exc})", path) from exc
    truncated = _truncation(ds, path)
    if truncated:
        raise CorruptFileError(f"file truncated: {truncated}", path)
    return ds


def _read_raw_header(path: Path) -> Dataset | None:
    """A DICOM data set stored without the Part-10 preamble ("raw", as :func:`rcsa.io.load`
    accepts by content: it starts with a group 0002 or 0008 tag), or None."""
    with open(path, "rb") as fh:
        if fh.read(2) not in (b"\x02\x00", b"\x08\x00"):
            return None
    try:
        ds = pydicom.dcmread(path, defer_size=1024, force=True)
    except Exception:
        return None
    if "Modality" not in ds and "SOPClassUID" not in ds:
        return None
    if "TransferSyntaxUID" not in ds.file_meta:  # no meta: the encoding pydicom detected
        implicit, little = ds.original_encoding
        ds.file_meta.TransferSyntaxUID = (
            pydicom.uid.ImplicitVRLittleEndian if implicit
            else pydicom.uid.ExplicitVRLittleEndian if little
            else pydicom.uid.ExplicitVRBigEndian
        )
    truncated = _truncation(ds, path)
    if truncated:
        raise CorruptFileError(f"file truncated: {truncated}", path)
    return ds


def _truncation(ds: Dataset, path: Path) -> str:
    """Why a parsed file looks cut short ('' when it does not).

    pydicom stops silently at end of file: a file cut inside its header parses into a partial
    data set (or, cut inside encapsulated pixel data, an empty one) that would otherwise be
    grouped as a different "series" and ignored."""
    size = path.stat().st_size
    tags = list(ds.keys())
    if not tags:
        return f"no data elements after the file meta information ({size} bytes)"
    # keep_deferred: look at the raw element without reading a deferred value (pixel data)
    last: Any = ds.get_item(max(tags), keep_deferred=True)
    tell, length = getattr(last, "value_tell", None), getattr(last, "length", None)
    if tell is None or length is None or length == 0xFFFFFFFF:
        return ""
    end = int(tell) + int(length)
    if end > size:
        return f"element {last.tag} needs {end} bytes but the file has {size}"
    if 0 < size - end < 8:
        return f"{size - end} stray byte(s) after the last complete element {last.tag}"
    return ""


