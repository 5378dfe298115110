"""NIfTI, NRRD and MetaImage (MHA/MHD) volumes via SimpleITK.

SimpleITK reports geometry in LPS (ITK's physical space), whatever the file stores: a NIfTI
affine (RAS by convention) is converted on read, honouring sform/qform, and a NIfTI's
``scl_slope``/``scl_inter`` are applied. The volume is then re-ordered into rcsa's canonical
orientation with :func:`rcsa.io.orientation.canonicalize`.
"""

from __future__ import annotations

import gzip
import json
import os
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import SimpleITK as sitk

from rcsa.errors import (
    CorruptFileError,
    InputNotFoundError,
    InputNotReadableError,
    UnsupportedFormatError,
)
from rcsa.io.orientation import canonicalize
from rcsa.io.volume import CTVolume, Geometry, LabelVolume, SourceInfo
from rcsa.logs import adopt_library_loggers, quiet_itk

quiet_itk()  # ITK's C++ warnings go to stderr directly: off unless --debug (rcsa.logs)

IMAGE_SUFFIXES = {
    ".nii": "nifti",
    ".nii.gz": "nifti",
    ".nrrd": "nrrd",
    ".nhdr": "nrrd",
    ".mha": "metaimage",
    ".mhd": "metaimage",
}

#: An integer volume with no value outside 0..LABEL_MAX_VALUE cannot be a CT in HU (air is
#: -1000, fat about -100): it is refused as a label / mask volume.
LABEL_MAX_VALUE = 255

_SITK_IO = {"nifti": "NiftiImageIO", "nrrd": "NrrdImageIO", "metaimage": "MetaImageIO"}


def image_format(path: Path) -> str | None:
    """'nifti' | 'nrrd' | 'metaimage' by suffix, or None."""
    name = path.name.lower()
    for suffix, fmt in IMAGE_SUFFIXES.items():
        if name.endswith(suffix):
            return fmt
    return None


def check_readable(path: Path) -> None:
    """Raise the typed error for a missing or unreadable file."""
    if not path.exists():
        raise InputNotFoundError("no such file or folder", path)
    try:
        with open(path, "rb") as fh:
            fh.read(1)
    except PermissionError as exc:
        raise InputNotReadableError("permission denied", path) from exc
    except IsADirectoryError as exc:
        raise UnsupportedFormatError("is a folder, expected an image file", path) from exc
    except OSError as exc:
        raise InputNotReadableError(f"cannot read file ({exc.strerror or exc})", path) from exc


def _gzip_size(path: Path) -> int:
    """Decompressed size of a gzip file; a truncated or damaged stream raises."""
    total = 0
    with gzip.open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            total += len(chunk)
    return total


def check_nifti_complete(path: Path) -> None:
    """Refuse a NIfTI file that holds less voxel data than its header describes.

    ITK's NIfTI reader silently fills the missing part of a truncated ``.nii`` / ``.nii.gz``
    with zeros (NRRD and MetaImage readers refuse such files themselves). For ``.nii.gz`` the
    gzip trailer's size field is compared first; only when it disagrees is the stream read
    through, which also catches a damaged stream.
    """
    import nibabel as nib

    adopt_library_loggers()  # nibabel's own console handler, installed on import
    try:
        img: Any = nib.load(str(path))
        hdr: Any = img.header
        shape = tuple(int(d) for d in hdr.get_data_shape())
        itemsize = int(hdr.get_data_dtype().itemsize)
        offset = int(getattr(img.dataobj, "offset", hdr.get_data_offset()))
    except Exception:  # not a readable NIfTI header: SimpleITK's reader names the problem
        return
    expected = offset + int(np.prod(shape, dtype=np.int64)) * itemsize
    if path.name.lower().endswith(".gz"):
        size = path.stat().st_size
        trailer = -1
        if size >= 18:
            with open(path, "rb") as fh:
                fh.seek(-4, os.SEEK_END)
                trailer = int.from_bytes(fh.read(4), "little")
        if trailer == expected % (1 << 32):  # the usual case: one member, nothing after it
            return
        try:
            actual = _gzip_size(path)
        except (EOFError, OSError, zlib.error) as exc:
            raise CorruptFileError(
                f"truncated or damaged gzip stream ({exc}); the header describes "
                f"{expected} bytes of image data", path) from exc
    else:
        actual = path.stat().st_size
    if actual < expected:
        raise CorruptFileError(
            f"truncated: the header describes {expected} bytes (voxels {'x'.join(map(str, shape))}"
            f" of {itemsize} bytes from offset {offset}) but the file holds {actual}", path)


def _read_sitk(path: Path) -> tuple[npt.NDArray[Any], Geometry, str, bool]:
    """(voxels ``[k, j, i]`` as stored, their geometry, the format, whether the file is 3-D)."""
    check_readable(path)
    fmt = image_format(path)
    if fmt is None:
        raise UnsupportedFormatError(
            "unknown image format (expected .nii, .nii.gz, .nrrd, .nhdr, .mha or .mhd)", path
        )
    if fmt == "nifti":
        check_nifti_complete(path)
    try:
        # the IO the suffix names: ITK would otherwise pick a reader by content (a DICOM file
        # named .nii.gz would load through GDCM, bypassing every DICOM check)
        img = sitk.ReadImage(str(path), imageIO=_SITK_IO[fmt])
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        fallback = first[-1] if first else ""
        detail = next((ln for ln in first if "rror" in ln or "annot" in ln), fallback)
        raise CorruptFileError(f"cannot read {fmt} image: {detail.strip()[:200]}", path) from exc
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise UnsupportedFormatError(
            f"{img.GetNumberOfComponentsPerPixel()} components per voxel; expected a scalar image",
            path,
        )
    dim = img.GetDimension()
    stored_3d = dim == 3
    if dim == 4 and img.GetSize()[3] == 1:
        img = img[:, :, :, 0]
        dim = 3
    if dim not in (2, 3):
        raise UnsupportedFormatError(f"{dim}-D image; expected a 3-D volume", path)
    arr = sitk.GetArrayFromImage(img)
    if dim == 2:
        arr = arr[np.newaxis]
        sp2, or2 = img.GetSpacing(), img.GetOrigin()
        d2 = np.array(img.GetDirection()).reshape(2, 2)
        direction = np.eye(3)
        direction[:2, :2] = d2
        geometry = Geometry(
            (arr.shape[2], arr.shape[1], 1),
            np.array([sp2[0], sp2[1], 1.0]),
            np.array([or2[0], or2[1], 0.0]),
            direction,
        )
    else:
        geometry = Geometry(
            (arr.shape[2], arr.shape[1], arr.shape[0]),
            np.array(img.GetSpacing(), dtype=float),
            np.array(img.GetOrigin(), dtype=float),
            np.array(img.GetDirection(), dtype=float).reshape(3, 3),
        )
    return arr, geometry, fmt, stored_3d


def _to_hu_dtype(arr: npt.NDArray[Any]) -> npt.NDArray[Any]:
    if np.issubdtype(arr.dtype, np.integer):
        if arr.size and (arr.min() < -32768 or arr.max() > 32767):
            return arr.astype(np.float32)
        return arr.astype(np.int16, copy=False)
    return arr.astype(np.float32, copy=False)


def load_image(path: Path) -> CTVolume:
    """Load a CT volume stored as NIfTI / NRRD / MetaImage."""
    arr, file_geometry, fmt, stored_3d = _read_sitk(path)
    voxels, geometry = canonicalize(_to_hu_dtype(arr), file_geometry)
    warnings: list[str] = []
    lo = float(voxels.min()) if voxels.size else 0.0
    hi = float(voxels.max()) if voxels.size else 0.0
    if np.issubdtype(arr.dtype, np.integer) and lo >= 0 and hi <= LABEL_MAX_VALUE:
        raise UnsupportedFormatError(
            f"values {lo:.0f}..{hi:.0f} only: this looks like a label or mask volume, not a CT in "
            "Hounsfield units (pass it as --labels)", path)
    if voxels.size and lo >= 0:
        warnings.append(
            "no negative values: the file may not be in Hounsfield units (missing rescale?)"
        )
    if geometry.obliquity_deg > 1.0:
        warnings.append(f"oblique volume: axes {geometry.obliquity_deg:.1f} deg off LPS")
    source = SourceInfo(
        path=str(path), format=fmt, modality="CT", files=(str(path),), warnings=tuple(warnings),
        file_geometry=file_geometry if stored_3d else None,
    )
    return CTVolume(voxels=voxels, geometry=geometry, source=source)


def read_label_names(path: Path) -> dict[int, str]:
    """A JSON object ``{"<id>": "<name>", ...}`` (the TotalSegmentator convention)."""
    check_readable(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptFileError(f"label map is not valid JSON ({exc})", path) from exc
    if not isinstance(raw, dict):
        raise CorruptFileError("label map must be a JSON object of id -> name", path)
    try:
        return {int(k): str(v) for k, v in raw.items()}
    except ValueError as exc:
        raise CorruptFileError(f"label ids must be integers ({exc})", path) from exc


def load_labels(
    path: Path | str,
    like: CTVolume | Geometry | None = None,
    names: Mapping[int, str] | Path | None = None,
    tol_mm: float = 0.01,
) -> LabelVolume:
    """Load a label image into the canonical frame.

    With ``like``, the labels must lie on the same grid (every voxel centre within ``tol_mm``),
    otherwise :class:`~rcsa.errors.GeometryError` says how they differ. Labels stored as floats
    must hold integers. ``names`` is an id -> name mapping or the path of a JSON one; by default
    a ``<stem>.json`` beside the file is used when present.
    """
    path = Path(path)
    from rcsa.errors import GeometryError

    arr, geometry, fmt, _ = _read_sitk(path)
    if not np.issubdtype(arr.dtype, np.integer) and (
        not np.all(np.isfinite(arr)) or not np.array_equal(arr, np.round(arr))
    ):
        raise CorruptFileError("label image holds non-integer values", path)
    if arr.size and (arr.min() < 0 or arr.max() > 65535):
        raise CorruptFileError(f"label ids outside 0..65535 ({arr.min()}..{arr.max()})", path)
    labels = arr.astype(np.uint16, copy=False)
    voxels, geometry = canonicalize(labels, geometry)
    if like is not None:
        ref = like.geometry if isinstance(like, CTVolume) else like
        try:
            ref.check_same_grid(geometry, tol_mm)
        except GeometryError as exc:
            raise GeometryError(f"label grid does not match the CT: {exc.reason}", path) from exc
    if names is None:
        stem = path.name[: -len(".nii.gz")] if path.name.endswith(".nii.gz") else path.stem
        sidecar = path.with_name(stem + ".json")
        names = read_label_names(sidecar) if sidecar.exists() else {}
    elif isinstance(names, Path):
        names = read_label_names(names)
    source = SourceInfo(path=str(path), format=fmt, modality="SEG", files=(str(path),))
    return LabelVolume(voxels=voxels, geometry=geometry, names=dict(names), source=source)
