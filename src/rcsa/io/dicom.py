"""Loading a CT series from DICOM files into a :class:`~rcsa.io.volume.CTVolume`.

Steps (each refusal is a typed error naming the file and the reason; see ``docs/io.md``):

1. discover files (a folder tree, one file or a list), read headers with pydicom, skip and
   count non-DICOM files;
2. group by SeriesInstanceUID and choose the axial CT series to analyse: the one with most
   slices that is CT Image Storage, not a localizer, single-sample greyscale and axial, or the
   one named by ``series_uid``; the others are reported;
3. validate the chosen series: pixel data present, one size / pixel spacing / orientation,
   positions present; sort along the slice normal; drop exact duplicates, refuse conflicting
   ones; refuse gaps and non-uniform spacing unless ``resample_irregular``; detect gantry tilt
   and resample it onto an axis-aligned grid unless ``correct_tilt`` is False;
4. decode (JPEG Lossless, JPEG-LS, JPEG 2000, RLE via pylibjpeg; uncompressed natively) and
   apply the modality LUT (RescaleSlope / RescaleIntercept per slice) to get HU;
5. re-order into the canonical LPS orientation.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
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
    DuplicateSliceError,
    EmptyInputError,
    GantryTiltError,
    InconsistentSeriesError,
    InputNotFoundError,
    InputNotReadableError,
    MissingPixelDataError,
    NoDicomFoundError,
    NotCTError,
    SeriesNotFoundError,
    SliceSpacingError,
    UnsupportedImageError,
)
from rcsa.io.orientation import canonicalize, resample_sheared_stack
from rcsa.io.volume import CTVolume, Geometry, SeriesIds, SeriesSummary, SourceInfo

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


# ------------------------------------------------------------------------------------------
# discovery
# ------------------------------------------------------------------------------------------
def _list_files(inputs: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for p in inputs:
        if not p.exists():
            raise InputNotFoundError("no such file or folder", p)
        if p.is_dir():
            if not os.access(p, os.R_OK | os.X_OK):
                raise InputNotReadableError("permission denied: cannot list the folder", p)
            found = sorted(
                f for f in p.rglob("*") if f.is_file() and not f.name.startswith(".")
            )
            files.extend(f for f in found if f.name.upper() != "DICOMDIR")
        else:
            files.append(p)
    if not files:
        where = inputs[0] if len(inputs) == 1 else Path(os.path.commonpath(inputs))
        raise EmptyInputError("folder contains no files", where)
    return files


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


def read_headers(inputs: Sequence[Path], on_header: Callable[[_Header], None] | None = None
                 ) -> tuple[list[_Header], list[Path]]:
    """All DICOM headers under ``inputs`` and the files that were not DICOM; ``on_header``
    is called with each image header as soon as it is read."""
    headers: list[_Header] = []
    skipped: list[Path] = []
    for f in _list_files(inputs):
        ds = _read_header(f)
        if ds is None:
            skipped.append(f)
            continue
        header = _Header(f, ds)
        if header.sop_class or "Modality" in ds:
            headers.append(header)
            if on_header is not None:
                on_header(header)
        else:
            skipped.append(f)
    if not headers:
        where = inputs[0] if len(inputs) == 1 else Path(os.path.commonpath(inputs))
        example = skipped[0].name if skipped else "?"
        raise NoDicomFoundError(
            f"no DICOM file among {len(skipped)} file(s) (e.g. {example!r} is not DICOM)", where
        )
    return headers, skipped


# ------------------------------------------------------------------------------------------
# series selection
# ------------------------------------------------------------------------------------------
def _normal(iop: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    n = np.cross(iop[:3], iop[3:])
    return n / np.linalg.norm(n)


def _why_not_analysable(hs: list[_Header]) -> str:
    """Empty string when the series is an analysable axial CT series, else the reason."""
    # judge the series by a CT image, not by whichever file sorts first: a dose screenshot or
    # a localizer filed under the same SeriesInstanceUID is dropped later (load_dicom)
    h = next(
        (x for x in hs if x.sop_class == CT_IMAGE_STORAGE and "LOCALIZER" not in x.image_type),
        hs[0],
    )
    sop = h.sop_class
    if h.modality != "CT":
        return f"modality {h.modality}, not CT"
    if sop.startswith(SECONDARY_CAPTURE_PREFIX):
        return "secondary capture (screenshot), not a CT image"
    if sop == ENHANCED_CT_IMAGE_STORAGE or int(h.get("NumberOfFrames", 1) or 1) > 1:
        return "multi-frame (Enhanced CT) images are not supported; export as single-frame CT"
    if sop != CT_IMAGE_STORAGE:
        return f"SOP class {sop or '(missing)'} is not CT Image Storage"
    if all("LOCALIZER" in x.image_type for x in hs):
        return "localizer (scout) images"
    spp = int(h.get("SamplesPerPixel", 1) or 1)
    photometric = str(h.get("PhotometricInterpretation", "MONOCHROME2"))
    if spp != 1 or not photometric.startswith("MONOCHROME"):
        return f"colour image ({photometric}, {spp} samples per pixel), not CT greyscale"
    iop = h.orientation
    if iop is None:
        return "no ImageOrientationPatient"
    angle = float(np.degrees(np.arccos(min(1.0, abs(_normal(iop)[2])))))
    if angle > AXIAL_MAX_ANGLE_DEG:
        return f"not axial (slice normal {angle:.0f} deg from the patient's long axis)"
    return ""


def _describe(hs: list[_Header]) -> str:
    return str(hs[0].get("SeriesDescription", "") or "")


def choose_series(
    headers: list[_Header], series_uid: str | None, where: Path
) -> tuple[list[_Header], tuple[SeriesSummary, ...]]:
    """Pick the series to analyse; return its headers and a summary of every series."""
    groups: dict[str, list[_Header]] = defaultdict(list)
    for h in headers:
        groups[h.series_uid].append(h)

    reasons = {uid: _why_not_analysable(hs) for uid, hs in groups.items()}
    if series_uid is not None:
        if series_uid not in groups:
            raise SeriesNotFoundError(
                f"series {series_uid} not found among {len(groups)} series in the input", where
            )
        chosen = series_uid
        if reasons[chosen]:
            cls = NotCTError if groups[chosen][0].modality != "CT" else UnsupportedImageError
            raise cls(f"requested series cannot be analysed: {reasons[chosen]}", where)
    else:
        candidates = [uid for uid, r in reasons.items() if not r]
        if not candidates:
            kinds = sorted({r for r in reasons.values()})
            if all(hs[0].modality != "CT" for hs in groups.values()):
                modalities = sorted({hs[0].modality for hs in groups.values()})
                raise NotCTError(
                    f"no CT series in the input (found modality {', '.join(modalities)})", where
                )
            raise UnsupportedImageError(
                "no analysable axial CT series: " + "; ".join(kinds), where
            )

        def rank(uid: str) -> tuple[int, float, str]:
            hs = groups[uid]
            thickness = float(hs[0].get("SliceThickness", 0) or 0)
            return (-len(hs), thickness, uid)

        chosen = min(candidates, key=rank)

    summaries = []
    for uid, hs in sorted(groups.items(), key=lambda kv: (kv[0] != chosen, kv[0])):
        if uid == chosen:
            why = "chosen" + (" (--series-uid)" if series_uid else ": axial CT with most slices")
        else:
            why = reasons[uid] or f"fewer slices than the chosen series ({len(hs)})"
        summaries.append(
            SeriesSummary(uid, hs[0].modality, len(hs), _describe(hs), uid == chosen, why)
        )
    return groups[chosen], tuple(summaries)


# ------------------------------------------------------------------------------------------
# validation and stacking
# ------------------------------------------------------------------------------------------
def _odd_one_out(hs: list[_Header], key: Any, what: str, fmt: Any = str) -> None:
    values = [key(h) for h in hs]
    ref = max(set(values), key=values.count)
    for h, v in zip(hs, values, strict=True):
        if v != ref:
            raise InconsistentSeriesError(
                f"{what} {fmt(v)} differs from the rest of the series ({fmt(ref)}): "
                "mixed images in one series",
                h.path,
            )


def _validate_series(hs: list[_Header]) -> None:
    for h in hs:
        if not h.has_pixel_data:
            raise MissingPixelDataError("image has no pixel data (PixelData missing)", h.path)
        if h.position is None:
            raise InconsistentSeriesError("ImagePositionPatient missing", h.path)
        if h.orientation is None:
            raise InconsistentSeriesError("ImageOrientationPatient missing", h.path)
        if h.get("PixelSpacing") is None:
            raise InconsistentSeriesError("PixelSpacing missing", h.path)
        if "LOCALIZER" in h.image_type:
            raise InconsistentSeriesError("localizer image mixed into the axial series", h.path)
    _odd_one_out(hs, lambda h: (int(h.get("Rows")), int(h.get("Columns"))), "size (rows, cols)")

    def rounded_iop(h: _Header) -> tuple[float, ...]:
        iop = h.orientation
        assert iop is not None
        return tuple(np.round(iop / ORIENTATION_TOL).astype(int).tolist())

    def iop_text(v: tuple[float, ...]) -> list[float]:
        return [round(x * ORIENTATION_TOL, 3) for x in v]

    _odd_one_out(hs, rounded_iop, "ImageOrientationPatient", iop_text)

    def rounded_spacing(h: _Header) -> tuple[float, ...]:
        ps = h._numbers("PixelSpacing", 2)
        if ps is None:
            ps = np.array([float(x) for x in h.get("PixelSpacing")])
        return tuple(round(float(x) / PIXEL_SPACING_TOL_MM) for x in ps)

    _odd_one_out(
        hs, rounded_spacing, "PixelSpacing", lambda v: [x * PIXEL_SPACING_TOL_MM for x in v]
    )


def _decode(h: _Header) -> npt.NDArray[Any]:
    from pydicom.pixels.utils import pixel_array

    # The function, not ``ds.pixel_array``: same decoder and options, but the array is not
    # cached on the data set; and the deferred (unread) pixel data element is put back after
    # decoding, so the data sets do not keep the file's pixel bytes either. Otherwise every
    # header would hold a raw and a decoded copy of its slice until loading ends.
    unread = h.ds.get_item(0x7FE00010, keep_deferred=True)
    try:
        arr = pixel_array(h.ds)
    except PermissionError as exc:
        raise InputNotReadableError("permission denied", h.path) from exc
    except Exception as exc:
        ts = getattr(getattr(h.ds, "file_meta", None), "TransferSyntaxUID", None)
        name = getattr(ts, "name", str(ts))
        raise CorruptFileError(f"pixel data cannot be decoded ({name}): {exc}", h.path) from exc
    if unread is not None and getattr(unread, "value", b"") is None:
        h.ds[0x7FE00010] = unread
    if arr.ndim != 2:
        raise UnsupportedImageError(f"expected one 2-D frame, got array shape {arr.shape}", h.path)
    return arr


#: Compressed series with at least this many images are decoded in worker processes: the
#: pylibjpeg decoders hold the GIL, so threads do not help (benchmarks/README.md).
PARALLEL_DECODE_MIN_IMAGES = 24


def _decode_file(path: str) -> tuple[bool, Any]:
    """Worker: (True, stored pixel array) or (False, error text). Never raises."""
    try:
        from pydicom.pixels.utils import pixel_array

        return True, pixel_array(path)
    except Exception as exc:  # reported by re-decoding in the parent, with the typed error
        return False, f"{type(exc).__name__}: {exc}"


def _worker_limit() -> int:
    env = os.environ.get("RCSA_DECODE_PROCESSES")
    return int(env) if env and env.isdigit() else min(4, os.cpu_count() or 1)


def _worker_decodable(h: _Header) -> bool:
    """Compressed, with a Part-10 preamble: what a worker decodes from the path alone."""
    ts = getattr(getattr(h.ds, "file_meta", None), "TransferSyntaxUID", None)
    return ts is not None and bool(ts.is_compressed) and h.ds.preamble is not None


def _decode_workers(hs: list[_Header]) -> int:
    """How many worker processes to decode with (0 = decode in this process)."""
    limit = _worker_limit()
    if limit < 2 or len(hs) < PARALLEL_DECODE_MIN_IMAGES:
        return 0
    return limit if all(_worker_decodable(h) for h in hs) else 0


def _process_pool(workers: int) -> Any:
    """A ProcessPoolExecutor, or None where worker processes are unavailable.

    Start method: ``fork`` when this process runs a single Python thread (fast, and it does
    not re-import the caller's ``__main__`` script in the workers, so unguarded user scripts
    are safe), else ``forkserver`` (forking a multi-threaded process is unsafe)."""
    import multiprocessing as mp
    import threading
    from concurrent.futures import ProcessPoolExecutor

    try:
        ctx: Any
        if threading.active_count() == 1 and "fork" in mp.get_all_start_methods():
            ctx = mp.get_context("fork")
        else:
            ctx = mp.get_context("forkserver")
            ctx.set_forkserver_preload(["pydicom.pixels"])
        return ProcessPoolExecutor(workers, mp_context=ctx)
    except (OSError, RuntimeError, AssertionError, ValueError) as exc:
        log.debug("parallel decoding unavailable (%s); decoding in-process", exc)
        return None


class _Prefetch:
    """Decodes compressed images in worker processes while this process is still reading
    the headers of the rest (the two overlap instead of running one after the other).

    Speculative: every worker-decodable image is submitted as soon as its header is read,
    once ``PARALLEL_DECODE_MIN_IMAGES`` of them have been seen, as long as all belong to one
    series (one series per folder is the common case); at the first image of another series
    the speculation stops, so at most one unchosen series is decoded for nothing. Images not
    prefetched are decoded by the caller (worker processes again, or in-process, which
    raises the typed error naming the file). :meth:`close` must be called (it waits for the
    workers)."""

    def __init__(self) -> None:
        self.workers = _worker_limit()
        self.pool: Any = None
        self.waiting: list[_Header] = []
        self.futures: dict[Path, Any] = {}
        self.series: str | None = None
        self.off = self.workers < 2

    def __call__(self, h: _Header) -> None:
        if self.off or not _worker_decodable(h):
            return
        if self.series is None:
            self.series = h.series_uid
        elif h.series_uid != self.series:  # a second series: stop speculating
            self.off = True
            self.waiting.clear()
            return
        self.waiting.append(h)
        if self.pool is None:
            if len(self.waiting) < PARALLEL_DECODE_MIN_IMAGES:
                return
            self.pool = _process_pool(self.workers)
            if self.pool is None:
                self.off = True
                return
        try:
            for w in self.waiting:
                self.futures[w.path] = self.pool.submit(_decode_file, str(w.path))
        except (OSError, RuntimeError, AssertionError, ValueError) as exc:
            # e.g. inside a daemonic worker (no children allowed) or a broken pool: the
            # caller decodes in-process
            log.debug("parallel decoding stopped (%s)", exc)
            self.off = True
        self.waiting.clear()

    def results(self, hs: list[_Header]) -> list[npt.NDArray[Any] | None] | None:
        """Decoded arrays for ``hs`` (None where not prefetched or failed); None when
        nothing was prefetched."""
        if not self.futures:
            return None
        out: list[npt.NDArray[Any] | None] = []
        for h in hs:
            fut = self.futures.pop(h.path, None)
            try:
                ok, arr = fut.result() if fut is not None else (False, None)
            except Exception as exc:  # a worker died: decode this one in-process
                log.debug("parallel decoding of %s failed (%s)", h.path, exc)
                ok, arr = False, None
            out.append(arr if ok else None)
        return out

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None
        self.futures.clear()


def _decode_parallel(hs: list[_Header]) -> list[npt.NDArray[Any] | None] | None:
    """Stored arrays decoded by a process pool (:func:`_process_pool`), or None when not
    worth it / not possible. A slice whose worker failed is None: the caller decodes it
    in-process, which raises the typed error naming the file."""
    workers = _decode_workers(hs)
    if not workers:
        return None
    pool = _process_pool(workers)
    if pool is None:
        return None
    try:
        chunk = max(1, len(hs) // (4 * workers))
        with pool:
            results = list(pool.map(_decode_file, [str(h.path) for h in hs], chunksize=chunk))
    except (OSError, RuntimeError, AssertionError, ValueError) as exc:
        # e.g. inside a daemonic worker (no children allowed): decode in this process
        log.debug("parallel decoding unavailable (%s); decoding in-process", exc)
        return None
    return [arr if ok else None for ok, arr in results]


def _rescale(h: _Header) -> tuple[float, float]:
    slope = float(h.get("RescaleSlope", 1) or 1)
    intercept = float(h.get("RescaleIntercept", 0) or 0)
    return slope, intercept


def _same_pixels(a: _Header, b: _Header) -> bool:
    return bool(np.array_equal(_decode(a), _decode(b)) and _rescale(a) == _rescale(b))


def _sort_and_dedupe(
    hs: list[_Header], warnings: list[str]
) -> tuple[list[_Header], npt.NDArray[np.float64]]:
    iop = hs[0].orientation
    assert iop is not None
    n = _normal(iop)
    dist = np.array([float(np.dot(h.position, n)) for h in hs])  # type: ignore[arg-type]
    order = np.argsort(dist, kind="stable")
    hs = [hs[i] for i in order]
    dist = dist[order]
    keep = [0]
    dropped = 0
    for idx in range(1, len(hs)):
        prev = keep[-1]
        if abs(dist[idx] - dist[prev]) < POSITION_DUPLICATE_TOL_MM:
            a, b = hs[prev], hs[idx]
            uid_a = str(a.get("SOPInstanceUID", "") or "")
            same_sop = bool(uid_a) and uid_a == str(b.get("SOPInstanceUID", "") or "")
            if same_sop or _same_pixels(a, b):
                dropped += 1
                continue
            raise DuplicateSliceError(
                f"two different images at the same position {dist[idx]:.2f} mm "
                f"(the other is {a.path.name}); the series mixes reconstructions",
                b.path,
            )
        keep.append(idx)
    if dropped:
        warnings.append(f"dropped {dropped} duplicate image(s) at identical positions")
    return [hs[i] for i in keep], dist[keep]


def _check_spacing(
    hs: list[_Header], dist: npt.NDArray[np.float64], resample_irregular: bool, warnings: list[str]
) -> tuple[bool, float]:
    """Return (irregular, step_mm)."""
    if len(hs) < 2:
        return False, 0.0
    steps = np.diff(dist)
    step = float(np.median(steps))
    tol = max(SPACING_ABS_TOL_MM, SPACING_REL_TOL * step)
    bad = np.nonzero(np.abs(steps - step) > tol)[0]
    if bad.size == 0:
        return False, float(np.mean(steps))
    gaps = [int(i) for i in bad if steps[i] > 1.5 * step]
    if gaps:
        i = gaps[0]
        missing = round(steps[i] / step) - 1
        desc = (
            f"missing slice(s): gap of {steps[i]:.2f} mm after this image where the series "
            f"steps {step:.2f} mm (about {missing} slice(s) missing"
            + (f", {len(gaps)} gaps in all" if len(gaps) > 1 else "")
            + ")"
        )
    else:
        i = int(bad[0])
        desc = (
            f"non-uniform slice spacing: step {steps[i]:.3f} mm after this image, median "
            f"{step:.3f} mm"
        )
    if not resample_irregular:
        raise SliceSpacingError(desc + "; use --resample-irregular to interpolate", hs[i].path)
    warnings.append(desc.split(":")[0] + f" - resampled to a uniform {step:.3f} mm grid")
    return True, step


def _hu_stack(hs: list[_Header], threads: int, prefetch: _Prefetch | None = None
              ) -> npt.NDArray[Any]:
    """Decode every slice and apply the modality LUT; int16 when exact, else float32."""
    first = hs[0]
    shape = (len(hs), int(first.get("Rows")), int(first.get("Columns")))
    rescales = [_rescale(h) for h in hs]
    has_lut = any("ModalityLUTSequence" in h.ds for h in hs)
    float_pixels = any(t in h.ds for h in hs for t in ("FloatPixelData", "DoubleFloatPixelData"))
    integral = (
        not has_lut
        and not float_pixels
        and all(float(s).is_integer() and float(i).is_integer() for s, i in rescales)
    )
    out: npt.NDArray[Any] = np.empty(shape, dtype=np.int16 if integral else np.float32)
    overflow = False

    pre = prefetch.results(hs) if prefetch is not None else None
    if pre is None:
        pre = _decode_parallel(hs)
    else:  # what the prefetch did not decode: worker processes again when worth it
        todo = [k for k, arr in enumerate(pre) if arr is None]
        more = _decode_parallel([hs[k] for k in todo]) if todo else None
        if more is not None:
            for k, arr in zip(todo, more, strict=True):
                pre[k] = arr

    def work(k: int) -> bool:
        h = hs[k]
        got = pre[k] if pre is not None else None
        if pre is not None:
            pre[k] = None  # release the decoded copy as soon as it is used
        raw = got if got is not None and got.ndim == 2 else _decode(h)
        if raw.shape != shape[1:]:
            raise CorruptFileError(f"decoded size {raw.shape} does not match header", h.path)
        if has_lut:
            from pydicom.pixels.processing import apply_modality_lut

            out[k] = apply_modality_lut(raw, h.ds).astype(np.float32)
            return False
        slope, intercept = rescales[k]
        if integral and slope == 1 and raw.dtype.kind in "iu" and raw.dtype.itemsize <= 2:
            # fast path (CT's usual 12-16 bit integers, slope 1): add in int16 straight into
            # the output when the stored range and the result range both fit in int16
            lo, hi = int(raw.min()), int(raw.max())
            b = int(intercept)
            if lo + b < -32768 or hi + b > 32767:
                return True
            if hi <= 32767 and -32768 <= b <= 32767:  # int16 holds raw and b: exact
                np.add(raw, b, out=out[k], dtype=np.int16, casting="unsafe")
                return False
        if integral:
            v = raw.astype(np.int32)
            if slope != 1:
                v *= int(slope)
            v += int(intercept)
            if v.min() < -32768 or v.max() > 32767:
                return True
            out[k] = v
        else:
            out[k] = raw.astype(np.float32) * np.float32(slope) + np.float32(intercept)
        return False

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        overflow = any(list(pool.map(work, range(len(hs)))))
    if overflow:  # rare: values beyond int16 after rescale; redo in float32
        out = np.empty(shape, dtype=np.float32)
        for k, h in enumerate(hs):
            slope, intercept = rescales[k]
            out[k] = _decode(h).astype(np.float32) * np.float32(slope) + np.float32(intercept)
    return out


def _resample_uniform(
    stack: npt.NDArray[Any], dist: npt.NDArray[np.float64], step: float
) -> tuple[npt.NDArray[np.float32], int]:
    """Linear interpolation along slices onto a uniform grid starting at dist[0]."""
    n_out = int(np.floor((dist[-1] - dist[0]) / step + 1e-6)) + 1
    targets = dist[0] + step * np.arange(n_out)
    out = np.empty((n_out, *stack.shape[1:]), dtype=np.float32)
    for m, t in enumerate(targets):
        hi = int(np.searchsorted(dist, t, side="left"))
        hi = min(max(hi, 1), len(dist) - 1)
        lo = hi - 1
        w = (t - dist[lo]) / (dist[hi] - dist[lo])
        w = min(max(w, 0.0), 1.0)
        out[m] = (1 - w) * stack[lo].astype(np.float32) + w * stack[hi].astype(np.float32)
    return out, n_out


def _acquisition(h: _Header) -> dict[str, Any]:
    keys = {
        "manufacturer": "Manufacturer",
        "model": "ManufacturerModelName",
        "kvp": "KVP",
        "convolution_kernel": "ConvolutionKernel",
        "slice_thickness_mm": "SliceThickness",
        "contrast_agent": "ContrastBolusAgent",
        "body_part": "BodyPartExamined",
        "series_description": "SeriesDescription",
        "study_date": "StudyDate",
        "transfer_syntax": None,
    }
    out: dict[str, Any] = {}
    for name, kw in keys.items():
        if kw is None:
            ts = getattr(getattr(h.ds, "file_meta", None), "TransferSyntaxUID", None)
            value: Any = getattr(ts, "name", None) if ts is not None else None
        else:
            value = h.get(kw)
        if value is None or value == "":
            continue
        if isinstance(value, pydicom.multival.MultiValue):
            value = "\\".join(str(v) for v in value)
        elif isinstance(value, (pydicom.valuerep.DSfloat, pydicom.valuerep.IS)):
            value = float(value)
        else:
            value = str(value)
        out[name] = value
    return out


def load_dicom(
    inputs: Path | Sequence[Path],
    *,
    series_uid: str | None = None,
    correct_tilt: bool = True,
    resample_irregular: bool = False,
    threads: int | None = None,
) -> CTVolume:
    """Load one axial CT series from DICOM files as a canonical :class:`CTVolume`.

    ``inputs``: a folder (searched recursively), one file, or a list of files/folders.
    ``series_uid``: analyse this series instead of the automatic choice.
    ``correct_tilt``: resample gantry-tilted series onto an axis-aligned grid (else refuse).
    ``resample_irregular``: interpolate over missing slices / non-uniform spacing (else refuse).
    """
    paths = [Path(inputs)] if isinstance(inputs, (str, Path)) else [Path(p) for p in inputs]
    if not paths:
        raise EmptyInputError("no input files given")
    prefetch = _Prefetch()
    try:
        return _load_series(paths, prefetch, series_uid=series_uid, correct_tilt=correct_tilt,
                            resample_irregular=resample_irregular, threads=threads)
    finally:
        prefetch.close()


def _load_series(
    paths: list[Path],
    prefetch: _Prefetch,
    *,
    series_uid: str | None,
    correct_tilt: bool,
    resample_irregular: bool,
    threads: int | None,
) -> CTVolume:
    where = paths[0] if len(paths) == 1 else Path(os.path.commonpath(paths))
    warnings: list[str] = []
    headers, skipped = read_headers(paths, prefetch)
    if skipped:
        warnings.append(f"skipped {len(skipped)} non-DICOM file(s)")
    hs, summaries = choose_series(headers, series_uid, where)
    if not hs[0].has_series_uid:
        warnings.append(
            "SeriesInstanceUID missing (anonymised?): images grouped by study, frame of "
            "reference, series number/description and modality"
        )
    others = [s for s in summaries if not s.chosen]
    if others:
        warnings.append(
            f"{len(summaries)} series found; analysing "
            f"'{summaries[0].description or 'unnamed'}' ({summaries[0].n_files} images), "
            f"ignored {len(others)} other series"
        )
    localizers = [h for h in hs if "LOCALIZER" in h.image_type]
    if localizers and len(localizers) < len(hs):
        hs = [h for h in hs if "LOCALIZER" not in h.image_type]
        warnings.append(f"ignored {len(localizers)} localizer image(s) inside the series")
    foreign = [h for h in hs if h.sop_class != CT_IMAGE_STORAGE]  # e.g. a dose screenshot
    if foreign:
        hs = [h for h in hs if h.sop_class == CT_IMAGE_STORAGE]
        warnings.append(
            f"ignored {len(foreign)} non-CT-image object(s) inside the series (e.g. "
            f"{foreign[0].path.name}: SOP class {foreign[0].sop_class or 'missing'})"
        )
    _validate_series(hs)
    hs, dist = _sort_and_dedupe(hs, warnings)

    first = hs[0]
    iop = first.orientation
    assert iop is not None
    row_dir, col_dir, normal = iop[:3], iop[3:], _normal(iop)
    ps = [float(v) for v in first.get("PixelSpacing")]
    spacing_ij = (ps[1], ps[0])  # PixelSpacing is (between rows, between columns)

    irregular, step = _check_spacing(hs, dist, resample_irregular, warnings)
    if len(hs) == 1:
        # depth-1 volume: the voxel's z extent is the slice thickness (the nominal slab)
        step = abs(float(first.get("SliceThickness", 0) or 0)) or abs(
            float(first.get("SpacingBetweenSlices", 0) or 0)
        )
        if step <= 0:
            step = 1.0
            warnings.append("single slice without SliceThickness: slice spacing set to 1 mm")

    tilt_deg = 0.0
    stack_vec = normal * step
    if len(hs) >= 2:
        p0, p1 = first.position, hs[-1].position
        assert p0 is not None and p1 is not None
        total = p1 - p0
        along = float(np.dot(total, normal))
        inplane = total - along * normal
        tilt_deg = float(np.degrees(np.arctan2(np.linalg.norm(inplane), abs(along))))
        if tilt_deg > TILT_TOL_DEG:
            if not correct_tilt:
                raise GantryTiltError(
                    f"gantry tilt of {tilt_deg:.2f} deg (slices are sheared); "
                    "tilt correction is disabled",
                    first.path,
                )
            if irregular:  # resampled onto `step` along the normal, same shear per mm
                stack_vec = inplane / along * step + normal * step
            else:
                stack_vec = total / (len(hs) - 1)

    stack = _hu_stack(hs, threads if threads is not None else min(4, os.cpu_count() or 1),
                      prefetch)
    if irregular:
        stack, _ = _resample_uniform(stack, dist, step)

    affine = np.eye(4)
    affine[:3, 0] = row_dir * spacing_ij[0]
    affine[:3, 1] = col_dir * spacing_ij[1]
    affine[:3, 2] = stack_vec
    assert first.position is not None
    affine[:3, 3] = first.position
    if tilt_deg > TILT_TOL_DEG:
        stack, geometry = resample_sheared_stack(stack, affine, AIR_HU)
        warnings.append(
            f"gantry tilt of {tilt_deg:.2f} deg corrected by trilinear resampling onto an "
            "axis-aligned grid"
        )
    else:
        geometry = Geometry(
            (stack.shape[2], stack.shape[1], stack.shape[0]),
            np.array([spacing_ij[0], spacing_ij[1], step]),
            first.position,
            np.column_stack([row_dir, col_dir, normal]),
        )
    voxels, geometry = canonicalize(stack, geometry)
    if geometry.obliquity_deg > 1.0:
        warnings.append(f"oblique acquisition: axes {geometry.obliquity_deg:.1f} deg off LPS")

    ids = SeriesIds(
        patient_id=str(first.get("PatientID", "") or "") or None,
        study_instance_uid=str(first.get("StudyInstanceUID", "") or "") or None,
        series_instance_uid=str(first.get("SeriesInstanceUID", "") or "") or None,
        accession_number=str(first.get("AccessionNumber", "") or "") or None,
    )
    source = SourceInfo(
        path=str(where),
        format="dicom",
        modality=first.modality,
        files=tuple(str(h.path) for h in hs),
        series=summaries,
        warnings=tuple(warnings),
        acquisition=_acquisition(first),
    )
    return CTVolume(voxels=voxels, geometry=geometry, source=source, ids=ids)

