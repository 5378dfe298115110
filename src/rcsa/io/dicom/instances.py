"""The instances of a DICOM source with their plane geometry, for writers that reference them
(the DICOM SEG / SR export maps each segmentation slice to one source instance).

The headers are read by the loader's own reader (:func:`~rcsa.io.dicom.header.read_file`:
Part 10 or raw files, truncation and damaged-header detection, the same typed errors), damaged
files are judged by :func:`~rcsa.io.dicom.discover.resolve_damaged` and copies of one instance
by :func:`~rcsa.io.dicom.stack._resolve_duplicate_instances`, as when loading a series.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset

from rcsa.errors import CorruptFileError, RcsaError
from rcsa.io.dicom.discover import read_headers, resolve_damaged
from rcsa.io.dicom.header import CT_IMAGE_STORAGE, Damaged, _Header, _read_header
from rcsa.io.dicom.stack import _resolve_duplicate_instances


@dataclass(frozen=True, eq=False)
class SourceInstance:
    """One single-frame image instance of a source series and the plane it lies in (LPS mm,
    DICOM patient coordinates).

    ``header`` is the file's header (pixel data not read), with ``SOPClassUID`` filled in from
    the file meta where an anonymiser kept it only there; read the whole data set with
    :func:`read_dicom_instance`.
    """

    path: Path
    header: Dataset
    position_mm: npt.NDArray[np.float64]  # ImagePositionPatient: centre of the first pixel
    row_dir: npt.NDArray[np.float64]  # direction of increasing column index
    col_dir: npt.NDArray[np.float64]  # direction of increasing row index
    pixel_spacing_mm: tuple[float, float]  # (between rows, between columns)
    rows: int
    cols: int

    @property
    def sop_uid(self) -> str:
        """SOPInstanceUID ('' when the file has none)."""
        return str(self.header.get("SOPInstanceUID", "") or "").strip()

    @property
    def sop_class(self) -> str:
        return str(self.header.get("SOPClassUID", "") or "")

    @property
    def study_uid(self) -> str:
        """StudyInstanceUID ('' when the file has none)."""
        return str(self.header.get("StudyInstanceUID", "") or "").strip()

    @property
    def series_uid(self) -> str:
        """SeriesInstanceUID ('' when the file has none)."""
        return str(self.header.get("SeriesInstanceUID", "") or "").strip()


def _instance(h: _Header) -> SourceInstance | None:
    """The instance's plane, or None when its header lacks one (orientation, position, pixel
    spacing or size); :meth:`_Header.check` has already parsed these, so a damaged value is
    a :class:`CorruptFileError` raised when the header was read."""
    iop, ipp = h.orientation, h.position
    spacing = h.get("PixelSpacing")
    rows, cols = int(h.get("Rows", 0) or 0), int(h.get("Columns", 0) or 0)
    if iop is None or ipp is None or spacing is None or len(spacing) != 2 or \
            rows <= 0 or cols <= 0:
        return None
    if not str(h.ds.get("SOPClassUID", "") or ""):
        h.ds.SOPClassUID = h.sop_class
    return SourceInstance(
        path=h.path, header=h.ds, position_mm=np.asarray(ipp, np.float64),
        row_dir=np.asarray(iop[:3], np.float64), col_dir=np.asarray(iop[3:], np.float64),
        pixel_spacing_mm=(float(spacing[0]), float(spacing[1])), rows=rows, cols=cols,
    )


def dicom_source_instances(
    source: Path | Sequence[Path],
    *,
    sop_class: str = CT_IMAGE_STORAGE,
    series_uid: str | None = None,
    warnings: list[str] | None = None,
    damaged_raise: bool = True,
) -> dict[str, list[SourceInstance]]:
    """The image instances under ``source`` (a folder tree, a file, or a list of them) of SOP
    class ``sop_class`` (CT Image Storage), localizers left out, by series key
    (SeriesInstanceUID, or for files without one the loader's surrogate key starting
    ``no-uid:``), each series in file-path order; only ``series_uid``'s when it is given (an
    empty dict when no instance has it).

    As when loading: files that are not DICOM are skipped; copies of one instance (same SOP
    Instance UID) are one instance when they agree and a :class:`DuplicateSliceError` when
    they differ; a damaged DICOM file is a warning when it duplicates an instance read intact,
    belongs to another series or study, or has no identity left, and otherwise (it is, or may
    be, an instance of a returned series) its :class:`CorruptFileError`. Instances whose header
    gives no plane (orientation, position, pixel spacing) are left out. Raises the loader's
    :class:`InputNotFoundError`, :class:`EmptyInputError`, :class:`InputNotReadableError` and
    :class:`NoDicomFoundError` for the files themselves. Warnings are appended to ``warnings``.
    With ``damaged_raise=False`` no damaged file raises (a caller that first looks for its
    series among several, then reads that series again with the rules above).
    """
    inputs = [Path(source)] if isinstance(source, (str, Path)) else [Path(p) for p in source]
    notes: list[str] = [] if warnings is None else warnings
    damaged: list[Damaged] = []
    headers, _ = read_headers(inputs, damaged=damaged)
    images = [h for h in headers if h.sop_class == sop_class and "LOCALIZER" not in h.image_type
              and (series_uid is None or h.series_uid == series_uid)]
    if damaged_raise:
        resolve_damaged(damaged, headers, images, notes)
    by_series: dict[str, list[SourceInstance]] = {}
    for h in _resolve_duplicate_instances(images, notes):
        inst = _instance(h)
        if inst is not None:
            by_series.setdefault(h.series_uid, []).append(inst)
    return by_series


def read_dicom_instance(path: Path) -> Dataset:
    """The whole data set of one DICOM file (pixel data included), read by the loader's reader
    (Part 10 or raw; truncation refused), ``SOPClassUID`` filled in from the file meta where
    it is only there. Raises :class:`InputNotReadableError` when the operating system refuses
    the file and :class:`CorruptFileError` when it is not DICOM or cannot be parsed."""
    ds = _read_header(Path(path))
    if ds is None:
        raise CorruptFileError("not a DICOM file", Path(path))
    try:
        for _ in ds:  # reads the deferred (large) values now, while the file is known good
            pass
    except RcsaError:
        raise
    except Exception as exc:  # pydicom raises many types on malformed data
        why = " ".join(str(exc).split())
        raise CorruptFileError(f"DICOM data set cannot be read ({why})", Path(path)) from exc
    if not str(ds.get("SOPClassUID", "") or ""):
        meta = getattr(ds, "file_meta", None)
        value = str(getattr(meta, "MediaStorageSOPClassUID", "") or "")
        if value:
            ds.SOPClassUID = value
    return ds
