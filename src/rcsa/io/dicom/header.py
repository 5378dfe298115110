"""One DICOM file's header: reading it (Part 10 or raw), spotting truncation, and the
:class:`_Header` view the loader works on."""

from __future__ import annotations

import logging
from collections.abc import Callable
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

from rcsa.errors import CorruptFileError, InputNotReadableError, RcsaError

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

#: Attributes the loader reads, parsed up front by :meth:`_Header.check`.
_TEXT_ATTRIBUTES = (
    "SeriesInstanceUID", "StudyInstanceUID", "FrameOfReferenceUID", "SOPInstanceUID",
    "SOPClassUID", "Modality", "SeriesDescription", "ImageType", "PhotometricInterpretation",
    "PatientID", "AccessionNumber", "Manufacturer", "ManufacturerModelName",
    "ConvolutionKernel", "ContrastBolusAgent", "BodyPartExamined", "StudyDate",
    "ModalityLUTSequence",
)
_NUMBER_ATTRIBUTES = (
    "SeriesNumber", "NumberOfFrames", "SamplesPerPixel", "Rows", "Columns", "SliceThickness",
    "SpacingBetweenSlices", "RescaleSlope", "RescaleIntercept", "KVP", "BitsAllocated",
    "BitsStored", "PixelRepresentation",
)


@dataclass
class _Header:
    path: Path
    ds: Dataset

    def get(self, keyword: str, default: Any = None) -> Any:
        """The attribute's value; a value pydicom cannot parse (a damaged header: unknown VR,
        bad number, ...) is a :class:`CorruptFileError` naming the file, never a crash."""
        try:
            return self.ds.get(keyword, default)
        except Exception as exc:  # pydicom converts lazily and raises many types
            why = " ".join(str(exc).split())
            raise CorruptFileError(f"DICOM attribute {keyword} cannot be parsed ({why})",
                                   self.path) from exc

    @property
    def sop_uid(self) -> str:
        """SOPInstanceUID, falling back to the file meta's MediaStorageSOPInstanceUID (some
        anonymisers blank the former)."""
        value = self.get("SOPInstanceUID") or getattr(
            getattr(self.ds, "file_meta", None), "MediaStorageSOPInstanceUID", None)
        return str(value or "").strip()

    def check(self) -> None:
        """Parse now every attribute the loader reads (pydicom converts values lazily, so a
        damaged header would otherwise fail somewhere later); raise :class:`CorruptFileError`
        naming the attribute."""
        for kw in _TEXT_ATTRIBUTES:
            self.get(kw)
        try:
            for kw in _NUMBER_ATTRIBUTES:
                v = self.get(kw)
                if v is not None and v != "":
                    float(v)
            ts = getattr(getattr(self.ds, "file_meta", None), "TransferSyntaxUID", None)
            if ts is not None and not ts.is_transfer_syntax:
                raise ValueError(f"transfer syntax {ts} is not a transfer syntax UID")
            if self.has_pixel_data:
                for kw in ("Rows", "Columns"):
                    if int(self.get(kw, 0) or 0) <= 0:
                        raise ValueError(f"{kw} missing or not positive")
            spacing = self.get("PixelSpacing")
            if spacing is not None:
                [float(x) for x in spacing]
            for name in ("orientation", "position"):
                getattr(self, name)
        except CorruptFileError:
            raise
        except Exception as exc:
            why = " ".join(str(exc).split())
            raise CorruptFileError(f"damaged DICOM header ({why})", self.path) from exc

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
        why = " ".join(str(exc).split())
        raise CorruptFileError(f"DICOM header cannot be parsed ({why})", path) from exc
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




@dataclass(frozen=True)
class Damaged:
    """A file that looks like DICOM but cannot be used (truncated, unparseable header), with
    what could still be read of its identity (None where that is lost too)."""

    path: Path
    error: RcsaError
    series_uid: str | None = None
    sop_uid: str | None = None
    study_uid: str | None = None

    @property
    def reason(self) -> str:
        return self.error.reason


def _salvage(path: Path) -> tuple[str | None, str | None, str | None]:
    """(series, SOP instance, study) UIDs of a damaged file, as far as they can be read."""
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True,
                             specific_tags=["SeriesInstanceUID", "SOPInstanceUID",
                                            "StudyInstanceUID"])
    except Exception:
        return None, None, None

    def text(getter: Callable[[], Any]) -> str | None:
        try:
            value = str(getter() or "").strip()
        except Exception:
            return None
        return value or None

    meta = getattr(ds, "file_meta", None)
    sop = text(lambda: ds.get("SOPInstanceUID")) or text(
        lambda: getattr(meta, "MediaStorageSOPInstanceUID", None))
    return (text(lambda: ds.get("SeriesInstanceUID")), sop,
            text(lambda: ds.get("StudyInstanceUID")))


def read_file(path: Path) -> tuple[_Header | None, Damaged | None]:
    """One file: (its checked header, None), (None, None) when it is not DICOM, or
    (None, :class:`Damaged`) when it is DICOM that cannot be used. Raises only
    :class:`InputNotReadableError` (the operating system refuses the file)."""
    try:
        ds = _read_header(path)
        if ds is None:
            return None, None
        header = _Header(path, ds)
        header.check()
        return header, None
    except InputNotReadableError:
        raise
    except RcsaError as exc:
        return None, Damaged(path, exc, *_salvage(path))
