"""One entry point that loads any supported CT input into a canonical :class:`CTVolume`."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from rcsa.errors import InputNotFoundError, UnsupportedFormatError
from rcsa.io.dicom import load_dicom
from rcsa.io.image import check_readable, image_format, load_image
from rcsa.io.options import LoadOptions
from rcsa.io.volume import CTVolume

PathLike = str | os.PathLike[str]


def _looks_like_dicom(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(132)
    # Part-10 files carry "DICM" at byte 128; raw (preamble-less) files start with a group tag.
    return head[128:132] == b"DICM" or head[:2] in (b"\x08\x00", b"\x02\x00")


def load(
    source: PathLike | Sequence[PathLike],
    options: LoadOptions | None = None,
    *,
    series_uid: str | None = None,
    correct_tilt: bool = True,
    resample_irregular: bool = False,
) -> CTVolume:
    """Load a CT scan: a DICOM folder/file/file list, or a NIfTI / NRRD / MetaImage file.

    ``options`` (a :class:`~rcsa.io.options.LoadOptions`, what the command line and the
    pipeline pass) or the same settings as keywords (``series_uid``, ``correct_tilt``,
    ``resample_irregular``; used only without ``options``).

    The result is in Hounsfield units, in rcsa's canonical LPS orientation (see
    :mod:`rcsa.io.volume`). Problems raise subclasses of :class:`rcsa.errors.InputError`
    naming the file and the reason; tolerated oddities are listed in ``volume.warnings``.
    """
    opts = options if options is not None else LoadOptions(
        series_uid=series_uid, correct_tilt=correct_tilt, resample_irregular=resample_irregular)
    single = isinstance(source, (str, os.PathLike))
    paths = [Path(source)] if single else [Path(p) for p in source]  # type: ignore[arg-type,union-attr]
    dicom_opts = {
        "series_uid": opts.series_uid,
        "correct_tilt": opts.correct_tilt,
        "resample_irregular": opts.resample_irregular,
    }
    if len(paths) != 1:
        return load_dicom(paths, **dicom_opts)  # type: ignore[arg-type]
    path = paths[0]
    if not path.exists():
        raise InputNotFoundError("no such file or folder", path)
    if path.is_dir():
        if image_format(path) is not None:  # e.g. "ct.nii.gz/": surely not meant as DICOM
            raise UnsupportedFormatError(
                f"is a folder, expected a {image_format(path)} image file", path
            )
        return load_dicom(path, **dicom_opts)  # type: ignore[arg-type]
    if image_format(path) is not None:
        return load_image(path)
    check_readable(path)
    if _looks_like_dicom(path):
        return load_dicom(path, **dicom_opts)  # type: ignore[arg-type]
    raise UnsupportedFormatError(
        "not a DICOM file and not a NIfTI / NRRD / MetaImage volume (by content and suffix)",
        path,
    )
