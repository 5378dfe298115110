"""Validating the chosen series and stacking it: consistency checks, sorting, duplicates,
slice spacing, HU conversion, resampling."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rcsa.errors import (
    CorruptFileError,
    DuplicateSliceError,
    InconsistentSeriesError,
    MissingPixelDataError,
    RcsaError,
    SliceSpacingError,
)
from rcsa.io.dicom import decode as _decoding
from rcsa.io.dicom.decode import _decode, _Prefetch, _rescale, _same_pixels
from rcsa.io.dicom.header import (
    ORIENTATION_TOL,
    PIXEL_SPACING_TOL_MM,
    POSITION_DUPLICATE_TOL_MM,
    SPACING_ABS_TOL_MM,
    SPACING_REL_TOL,
    _Header,
)
from rcsa.io.dicom.select import _normal

log = logging.getLogger(__name__)


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


def _geometry_key(h: _Header) -> tuple[Any, ...]:
    """What two copies of one instance must agree on besides the pixels."""
    def rounded(v: npt.NDArray[np.float64] | None) -> tuple[float, ...] | None:
        return None if v is None else tuple(np.round(v, 4).tolist())

    return (rounded(h.position), rounded(h.orientation), str(h.get("PixelSpacing")),
            _rescale(h), int(h.get("Rows", 0) or 0), int(h.get("Columns", 0) or 0))


def _resolve_duplicate_instances(hs: list[_Header], warnings: list[str]) -> list[_Header]:
    """One file per SOP Instance UID. Copies of one instance (an archive's re-sent or
    half-copied files): the readable, complete copies are kept when they agree (identical
    pixel data and geometry; one is used); copies that cannot be decoded are ignored with a
    warning naming them; two complete copies that differ are refused
    (:class:`DuplicateSliceError` naming both files); when no copy decodes, the first one's
    :class:`CorruptFileError` is raised."""
    groups: dict[str, list[_Header]] = {}
    for h in hs:
        if h.sop_uid:
            groups.setdefault(h.sop_uid, []).append(h)
    drop: set[Path] = set()
    same = 0
    for copies in groups.values():
        if len(copies) < 2:
            continue
        good: list[tuple[_Header, npt.NDArray[Any]]] = []
        bad: list[tuple[_Header, RcsaError]] = []
        for h in copies:
            try:
                arr = _decode(h)
                if arr.shape != (int(h.get("Rows")), int(h.get("Columns"))):
                    raise CorruptFileError(f"decoded size {arr.shape} does not match header",
                                           h.path)
                good.append((h, arr))
            except RcsaError as exc:
                bad.append((h, exc))
        if not good:
            raise bad[0][1]
        keep, ref = good[0]
        for h, arr in good[1:]:
            if not np.array_equal(arr, ref) or _geometry_key(h) != _geometry_key(keep):
                raise DuplicateSliceError(
                    "two complete copies of one instance (same SOP Instance UID) differ in "
                    f"pixel data or geometry; the other copy is {keep.path}; remove the wrong "
                    "one", h.path)
            same += 1
            drop.add(h.path)
        for h, err in bad:
            drop.add(h.path)
            warnings.append(f"ignored damaged copy {h.path} of an instance: {err.reason} "
                            f"(intact copy used: {keep.path})")
    if same:
        warnings.append(f"dropped {same} duplicate image(s): identical copies of one instance "
                        "(same SOP Instance UID)")
    return [h for h in hs if h.path not in drop]


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
        pre = _decoding._decode_parallel(hs)
    else:  # what the prefetch did not decode: worker processes again when worth it
        todo = [k for k, arr in enumerate(pre) if arr is None]
        more = _decoding._decode_parallel([hs[k] for k in todo]) if todo else None
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


