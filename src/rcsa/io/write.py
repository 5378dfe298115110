"""Writing label volumes (NIfTI) on the grid of the CT they were made for.

The only place in rcsa that writes an image file: callers pass a
:class:`~rcsa.io.volume.LabelVolume` and, for a CT read from a NIfTI / NRRD / MetaImage file,
that file's own grid (``CTVolume.source.file_geometry``, recorded by the loader), so the source
file is never opened again to learn its orientation.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from rcsa.errors import OutputWriteError
from rcsa.io.volume import Geometry, LabelVolume


def _orientation_code(geometry: Geometry) -> str:
    """The three-letter DICOM orientation code of a grid's axes (e.g. ``"LPS"``, ``"RAS"``)."""
    code: str = sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(
        [float(v) for v in geometry.direction.ravel()])
    return code


def write_labels(labels: LabelVolume, path: Path | str,
                 file_geometry: Geometry | None = None) -> Path:
    """Write ``labels`` as a gzip-compressed uint8 NIfTI at ``path`` (parents created).

    With ``file_geometry`` (the grid of the CT file the labels belong to, as stored: see
    :attr:`rcsa.io.SourceInfo.file_geometry`) the voxels are re-ordered (flips / permutation
    only, no interpolation) to that file's axis order, so that the output overlays the input
    voxel for voxel in any viewer; when the re-ordered grid does not have the file's size (the
    labels are not on that file's grid) they stay in rcsa's canonical order. Without it (DICOM)
    they are written in rcsa's canonical LPS order, which is the DICOM series' own grid for
    axial scans. Label ids must fit in uint8. A refused write (permission denied, disk full)
    is an :class:`~rcsa.errors.OutputWriteError` naming ``path``.
    """
    path = Path(path)
    img = sitk.GetImageFromArray(np.ascontiguousarray(labels.voxels, dtype=np.uint8))
    g = labels.geometry
    img.SetSpacing([float(v) for v in g.spacing_mm])
    img.SetOrigin([float(v) for v in g.origin_mm])
    img.SetDirection([float(v) for v in g.direction.ravel()])
    if file_geometry is not None:
        reoriented = sitk.DICOMOrient(img, _orientation_code(file_geometry))
        if tuple(reoriented.GetSize()) == tuple(file_geometry.size_voxels):
            img = reoriented
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        why = exc.strerror or str(exc)
        raise OutputWriteError(f"cannot write the output ({why})", path.parent) from exc
    try:
        sitk.WriteImage(img, str(path), useCompression=True)
    except RuntimeError as exc:  # ITK reports a refused or failed write so (disk full, ...)
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        why = re.sub(r"^(ITK ERROR: \w+\(0x[0-9a-fA-F]+\):\s*)?(ERROR:\s*)?", "",
                     lines[-1] if lines else "")
        raise OutputWriteError(f"cannot write the NIfTI file ({why or 'ITK write failed'})",
                               path) from exc
    return path
