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
from rcsa.io.dicom.header import Damaged, _Header, read_file

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


def read_headers(inputs: Sequence[Path], on_header: Callable[[_Header], None] | None = None,
                 damaged: list[Damaged] | None = None) -> tuple[list[_Header], list[Path]]:
    """All DICOM headers under ``inputs`` and the files that were not DICOM; ``on_header``
    is called with each image header as soon as it is read.

    A DICOM file that cannot be used (truncated, damaged header) raises its
    :class:`~rcsa.errors.CorruptFileError`, or, when ``damaged`` is a list, is appended to it
    (the caller decides with :func:`resolve_damaged` whether it costs the series)."""
    headers: list[_Header] = []
    skipped: list[Path] = []
    for f in _list_files(inputs):
        header, bad = read_file(f)
        if bad is not None:
            if damaged is None:
                raise bad.error
            damaged.append(bad)
            continue
        if header is None:
            skipped.append(f)
            continue
        if header.sop_class or "Modality" in header.ds:
            headers.append(header)
            if on_header is not None:
                on_header(header)
        else:
            skipped.append(f)
    if not headers:
        if damaged:
            raise damaged[0].error
        where = inputs[0] if len(inputs) == 1 else Path(os.path.commonpath(inputs))
        example = skipped[0].name if skipped else "?"
        raise NoDicomFoundError(
            f"no DICOM file among {len(skipped)} file(s) (e.g. {example!r} is not DICOM)", where
        )
    return headers, skipped


def resolve_damaged(damaged: Sequence[Damaged], headers: Sequence[_Header],
                    chosen: Sequence[_Header], warnings: list[str]) -> None:
    """Decide what each damaged file costs the chosen series (``chosen``, among all intact
    ``headers``): nothing, with a warning naming it, when it only duplicates an instance read
    intact elsewhere (same SOP Instance UID), belongs to another series or study, or carries
    no identity at all (no series or instance UID left: it belongs to no series); else (it is,
    or may be, an instance of the chosen series that has no intact copy) its error is raised,
    naming the file."""
    intact = {h.sop_uid: h for h in headers if h.sop_uid}
    series = {h.series_uid for h in chosen}
    studies = {str(h.get("StudyInstanceUID", "") or "") for h in chosen} - {""}
    for d in damaged:
        twin = intact.get(d.sop_uid or "")
        if twin is not None:
            why = f"a damaged copy of an instance read intact from {twin.path} (used)"
        elif d.series_uid is not None and d.series_uid not in series:
            why = "belongs to another series"
        elif d.series_uid is None and d.study_uid is not None and studies and \
                d.study_uid not in studies:
            why = "belongs to another study"
        elif d.series_uid is None and d.sop_uid is None:
            why = "no series or instance UID readable: belongs to no series"
        else:
            raise d.error
        warnings.append(f"ignored damaged file {d.path}: {d.reason}; {why}")
