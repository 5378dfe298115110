"""Finding the DICOM files under the inputs and reading their headers."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from rcsa.errors import (
    EmptyInputError,
    InputNotFoundError,
    InputNotReadableError,
    NoDicomFoundError,
)
from rcsa.io.dicom.header import _Header, _read_header

log = logging.getLogger(__name__)


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


