"""Re-ordering voxel arrays into rcsa's canonical orientation, and resampling sheared stacks.

The affine is the single truth (nibabel's discipline): the canonical re-ordering is computed
from it with :func:`nibabel.orientations.io_orientation` and the new affine is the old one
composed with :func:`nibabel.orientations.inv_ornt_aff`, so voxel data and geometry can never
drift apart. Only flips and axis permutations are used: no interpolation, no value changes.
"""

from __future__ import annotations

from typing import Any

import nibabel.orientations as nio
import numpy as np
import numpy.typing as npt
from scipy import ndimage

from rcsa.io.volume import FloatArray, Geometry


def geometry_from_affine(affine_lps: npt.ArrayLike, size_voxels: tuple[int, int, int]) -> Geometry:
    """Split a 4x4 LPS affine into spacing, origin and an orthonormal direction."""
    a = np.asarray(affine_lps, dtype=np.float64)
    m = a[:3, :3]
    spacing = np.linalg.norm(m, axis=0)
    return Geometry(size_voxels, spacing, a[:3, 3], m / spacing[np.newaxis, :])


def canonicalize(voxels: npt.NDArray[Any], geometry: Geometry) -> tuple[npt.NDArray[Any], Geometry]:
    """Flip / permute ``voxels[k, j, i]`` so i -> +L, j -> +P, k -> +S as closely as possible.

    Returns a C-contiguous array (a copy only when the re-ordering is not the identity) and the
    matching geometry. The residual rotation of an oblique scan stays in ``direction``.
    """
    affine = geometry.affine_lps
    ornt = nio.io_orientation(affine)
    if np.array_equal(ornt, [[0, 1], [1, 1], [2, 1]]):
        return voxels, geometry
    arr_ijk = np.transpose(voxels, (2, 1, 0))
    new_ijk = nio.apply_orientation(arr_ijk, ornt)
    new_affine = affine @ nio.inv_ornt_aff(ornt, arr_ijk.shape)
    new_voxels = np.ascontiguousarray(np.transpose(new_ijk, (2, 1, 0)))
    size = (int(new_ijk.shape[0]), int(new_ijk.shape[1]), int(new_ijk.shape[2]))
    return new_voxels, geometry_from_affine(new_affine, size)


def resample_sheared_stack(
    voxels: npt.NDArray[Any],
    affine_lps: FloatArray,
    fill_value: float,
) -> tuple[npt.NDArray[np.float32], Geometry]:
    """Resample a sheared stack (gantry tilt) onto an axis-aligned LPS grid, trilinearly.

    ``affine_lps`` maps ``(i, j, k)`` to LPS mm and may be non-orthogonal (the slice step is
    not perpendicular to the slice planes). The output grid has identity direction, keeps the
    in-plane spacing of the input and, along z, the input's slice step projected on z; it
    covers the bounding box of the input's voxel centres. Points outside the input get
    ``fill_value`` (air).
    """
    nk, nj, ni = voxels.shape
    corners_idx = np.array(
        [[i, j, k, 1.0] for i in (0, ni - 1) for j in (0, nj - 1) for k in (0, nk - 1)]
    )
    corners = (affine_lps @ corners_idx.T).T[:, :3]
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    cols = affine_lps[:3, :3]
    spacing = np.array(
        [
            np.linalg.norm(cols[:, 0]),
            np.linalg.norm(cols[:, 1]),
            max(abs(cols[2, 2]), 1e-3),
        ]
    )
    size = tuple(int(np.floor((hi[d] - lo[d]) / spacing[d] + 1e-6)) + 1 for d in range(3))
    out_affine = np.eye(4)
    out_affine[:3, :3] = np.diag(spacing)
    out_affine[:3, 3] = lo
    # output index (i, j, k) -> input index (i, j, k); scipy works in array order (k, j, i).
    m_ijk = np.linalg.inv(affine_lps) @ out_affine
    perm = np.zeros((4, 4))
    perm[0, 2] = perm[1, 1] = perm[2, 0] = perm[3, 3] = 1.0  # (k, j, i) <-> (i, j, k)
    m_kji = perm @ m_ijk @ perm
    out = ndimage.affine_transform(
        voxels.astype(np.float32, copy=False),
        m_kji[:3, :3],
        offset=m_kji[:3, 3],
        output_shape=(size[2], size[1], size[0]),
        order=1,
        mode="constant",
        cval=fill_value,
        prefilter=False,
    )
    return out, Geometry((size[0], size[1], size[2]), spacing, lo, np.eye(3))
