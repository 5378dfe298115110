"""Decoding pixel data: in this process, or in worker processes for compressed series
(:class:`_Prefetch` overlaps decoding with header reading)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rcsa.errors import (
    CorruptFileError,
    InputNotReadableError,
    UnsupportedImageError,
)
from rcsa.io.dicom.header import _Header

log = logging.getLogger(__name__)


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
        # the decoders' messages span lines (one per backend tried): one line, as every
        # rcsa error is
        why = "; ".join(ln.strip() for ln in str(exc).splitlines() if ln.strip())
        raise CorruptFileError(f"pixel data cannot be decoded ({name}): {why}", h.path) from exc
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


