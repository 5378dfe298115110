"""Write label volumes on a CT's own grid (torch-free, SimpleITK)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import SimpleITK as sitk

from rcsa.io import CTVolume


def write_labels(voxels: npt.NDArray[Any], ct: CTVolume, path: Path) -> Path:
    """Write ``voxels[k, j, i]`` (canonical grid of ``ct``) as uint8 NIfTI.

    When the CT was read from an axis-aligned NIfTI / NRRD / MHA file, the output is re-ordered
    (flips / permutation only, no interpolation) to that file's own axis order, so that it
    overlays the input voxel for voxel in any viewer. Otherwise (DICOM) it is written in
    rcsa's canonical LPS order, which is the DICOM series' own grid for axial scans.
    """
    img = sitk.GetImageFromArray(np.ascontiguousarray(voxels, dtype=np.uint8))
    g = ct.geometry
    img.SetSpacing([float(v) for v in g.spacing_mm])
    img.SetOrigin([float(v) for v in g.origin_mm])
    img.SetDirection([float(v) for v in g.direction.ravel()])
    src = Path(ct.source.path)
    if ct.source.format != "dicom" and src.is_file():
        try:
            reader = sitk.ImageFileReader()
            reader.SetFileName(str(src))
            reader.ReadImageInformation()
            code = sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(
                reader.GetDirection()
            )
            reoriented = sitk.DICOMOrient(img, code)
            if reoriented.GetSize() == reader.GetSize():
                img = reoriented
        except RuntimeError:
            pass
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(img, str(path), useCompression=True)
    return path
