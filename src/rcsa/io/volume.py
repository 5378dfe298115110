"""The volume types that flow through rcsa.

Conventions (the single truth for the whole package, see ``docs/io.md``):

* **Patient frame**: DICOM LPS. World x grows towards the patient's Left, y towards Posterior,
  z towards Superior. Coordinates are millimetres.
* **Axis order**: voxel arrays are indexed ``voxels[k, j, i]`` (slice, row, column), the order
  SimpleITK's ``GetArrayFromImage`` and pydicom's stacked ``pixel_array`` use. Everything that
  is a triple (``spacing_mm``, ``size_voxels``, a voxel index ``ijk``) is in ``(i, j, k)`` =
  ``(x, y, z)`` order, as DICOM and ITK write them.
* **Geometry**: the centre of voxel ``(i, j, k)`` lies at
  ``origin_mm + direction @ (spacing_mm * (i, j, k))``. ``direction`` is an orthonormal 3x3
  matrix whose columns are the world directions of the i, j and k axes.
* **Canonical orientation**: loaders return volumes re-ordered (flips and axis permutations, no
  interpolation) so that i points as close as possible to +L, j to +P and k to +S. For an
  axial scan ``direction`` is then the identity, slice ``k = 0`` is the most inferior and
  ``voxels[k]`` is an axial image displayed in radiological convention (patient's left on the
  right of the image, anterior at the top).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from rcsa.errors import GeometryError

FloatArray = npt.NDArray[np.float64]

#: Default tolerance (mm) when deciding whether two grids are the same.
GRID_TOLERANCE_MM = 0.01


def _frozen(a: npt.ArrayLike, shape: tuple[int, ...]) -> FloatArray:
    arr = np.array(a, dtype=np.float64)
    if arr.shape != shape:
        raise ValueError(f"expected shape {shape}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"non-finite geometry value: {arr.tolist()}")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class Geometry:
    """Where a voxel grid sits in the patient (LPS, mm). See the module docstring."""

    size_voxels: tuple[int, int, int]
    spacing_mm: FloatArray
    origin_mm: FloatArray
    direction: FloatArray

    def __post_init__(self) -> None:
        size = tuple(int(s) for s in self.size_voxels)
        if len(size) != 3 or min(size) < 1:
            raise ValueError(f"size_voxels must be three positive integers, got {size}")
        object.__setattr__(self, "size_voxels", size)
        spacing = _frozen(self.spacing_mm, (3,))
        if np.any(spacing <= 0):
            raise ValueError(f"spacing_mm must be positive, got {spacing.tolist()}")
        object.__setattr__(self, "spacing_mm", spacing)
        object.__setattr__(self, "origin_mm", _frozen(self.origin_mm, (3,)))
        direction = _frozen(self.direction, (3, 3))
        if not np.allclose(direction.T @ direction, np.eye(3), atol=1e-4):
            raise ValueError(f"direction must be orthonormal, got {direction.tolist()}")
        object.__setattr__(self, "direction", direction)

    # -- affines -------------------------------------------------------------------------------
    @property
    def affine_lps(self) -> FloatArray:
        """4x4 matrix mapping homogeneous ``(i, j, k, 1)`` to LPS millimetres."""
        a = np.eye(4)
        a[:3, :3] = self.direction * self.spacing_mm[np.newaxis, :]
        a[:3, 3] = self.origin_mm
        return a

    @property
    def affine_ras(self) -> FloatArray:
        """The same mapping into RAS millimetres (the NIfTI / nibabel convention)."""
        return np.diag([-1.0, -1.0, 1.0, 1.0]) @ self.affine_lps

    # -- coordinates ---------------------------------------------------------------------------
    def index_to_world(self, ijk: npt.ArrayLike) -> FloatArray:
        """LPS mm of voxel centres; ``ijk`` has shape (..., 3) in (i, j, k) order."""
        idx = np.asarray(ijk, dtype=np.float64)
        return idx @ (self.direction * self.spacing_mm).T + self.origin_mm

    def world_to_index(self, xyz: npt.ArrayLike) -> FloatArray:
        """Continuous (i, j, k) of LPS points; shape (..., 3)."""
        pts = np.asarray(xyz, dtype=np.float64) - self.origin_mm
        return (pts @ self.direction) / self.spacing_mm

    def slice_z_mm(self, k: int | npt.ArrayLike) -> FloatArray:
        """Patient-superior coordinate (LPS z, mm) of the centre of slice ``k``."""
        ks = np.asarray(k, dtype=np.float64)
        ci = (self.size_voxels[0] - 1) / 2.0
        cj = (self.size_voxels[1] - 1) / 2.0
        centre = np.stack(np.broadcast_arrays(np.full_like(ks, ci), np.full_like(ks, cj), ks), -1)
        return self.index_to_world(centre)[..., 2]

    def corners_mm(self) -> FloatArray:
        """LPS mm of the 8 corner voxel centres, shape (8, 3)."""
        ni, nj, nk = (s - 1 for s in self.size_voxels)
        idx = np.array([[i, j, k] for i in (0, ni) for j in (0, nj) for k in (0, nk)], float)
        return self.index_to_world(idx)

    @property
    def obliquity_deg(self) -> float:
        """Largest angle between a voxel axis and the nearest world axis, in degrees."""
        cosines = np.abs(self.direction).max(axis=0)
        return float(np.degrees(np.arccos(np.clip(cosines.min(), -1.0, 1.0))))

    def max_corner_distance_mm(self, other: Geometry) -> float:
        """Largest distance between corresponding corner voxel centres (inf if sizes differ)."""
        if self.size_voxels != other.size_voxels:
            return float("inf")
        return float(np.linalg.norm(self.corners_mm() - other.corners_mm(), axis=1).max())

    def same_grid(self, other: Geometry, tol_mm: float = GRID_TOLERANCE_MM) -> bool:
        """True when both grids have the same size and every voxel centre within ``tol_mm``."""
        return self.max_corner_distance_mm(other) <= tol_mm

    def check_same_grid(self, other: Geometry, tol_mm: float = GRID_TOLERANCE_MM) -> None:
        """Raise :class:`GeometryError` describing the first difference, if any."""
        if self.size_voxels != other.size_voxels:
            raise GeometryError(
                f"grid sizes differ: {list(self.size_voxels)} vs {list(other.size_voxels)}"
            )
        dist = self.max_corner_distance_mm(other)
        if dist > tol_mm:
            raise GeometryError(
                f"grids differ by up to {dist:.3f} mm (tolerance {tol_mm} mm): spacing "
                f"{np.round(self.spacing_mm, 4).tolist()} vs "
                f"{np.round(other.spacing_mm, 4).tolist()}, "
                f"origin {np.round(self.origin_mm, 3).tolist()} vs "
                f"{np.round(other.origin_mm, 3).tolist()}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "size_voxels": list(self.size_voxels),
            "spacing_mm": [float(v) for v in self.spacing_mm],
            "origin_mm": [float(v) for v in self.origin_mm],
            "direction": [[float(v) for v in row] for row in self.direction],
        }


@dataclass(frozen=True)
class SeriesIds:
    """Identifiers of the source study/series. Never printed unless asked (``repr`` hides them)."""

    patient_id: str | None = None
    study_instance_uid: str | None = None
    series_instance_uid: str | None = None
    accession_number: str | None = None

    def __repr__(self) -> str:
        return "SeriesIds(<redacted>)"

    def to_dict(self) -> dict[str, str | None]:
        return {
            "patient_id": self.patient_id,
            "study_instance_uid": self.study_instance_uid,
            "series_instance_uid": self.series_instance_uid,
            "accession_number": self.accession_number,
        }


@dataclass(frozen=True)
class SeriesSummary:
    """One DICOM series seen in the input, chosen or not."""

    series_instance_uid: str
    modality: str
    n_files: int
    description: str = ""
    chosen: bool = False
    reason: str = ""

    def to_dict(self, show_ids: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {
            "modality": self.modality,
            "n_files": self.n_files,
            "description": self.description,
            "chosen": self.chosen,
            "reason": self.reason,
        }
        if show_ids:
            d["series_instance_uid"] = self.series_instance_uid
        return d


@dataclass(frozen=True)
class SourceInfo:
    """Where a volume came from and what the loader noticed on the way."""

    path: str
    format: str
    modality: str = "CT"
    files: tuple[str, ...] = ()
    series: tuple[SeriesSummary, ...] = ()
    warnings: tuple[str, ...] = ()
    acquisition: Mapping[str, Any] = field(default_factory=dict)
    #: The grid of the file as stored, before the canonical re-ordering (3-D NIfTI / NRRD /
    #: MetaImage files; None for DICOM, 2-D files and volumes not read from one file). Label
    #: files written for this volume (:func:`rcsa.io.write_labels`) use its axis order.
    file_geometry: Geometry | None = None

    @property
    def n_series_found(self) -> int:
        return max(1, len(self.series))


@dataclass(frozen=True, eq=False)
class Slice:
    """One axial image with its geometry: ``pixels[j, i]`` in HU (or labels)."""

    pixels: npt.NDArray[Any]
    spacing_mm: tuple[float, float]
    index: int
    z_mm: float
    origin_mm: FloatArray
    direction: FloatArray

    @property
    def pixel_area_mm2(self) -> float:
        return float(self.spacing_mm[0] * self.spacing_mm[1])


class _GriddedVolume:
    """Shared accessors of volumes that carry ``voxels`` and a ``geometry``."""

    voxels: npt.NDArray[Any]
    geometry: Geometry

    def _validate_grid(self) -> None:
        if self.voxels.ndim != 3:
            raise ValueError(f"voxels must be 3-D [k, j, i], got shape {self.voxels.shape}")
        kji = tuple(int(s) for s in self.voxels.shape)
        if kji[::-1] != self.geometry.size_voxels:
            raise ValueError(
                f"voxels shape {kji} (k, j, i) does not match geometry size "
                f"{self.geometry.size_voxels} (i, j, k)"
            )

    @property
    def size_voxels(self) -> tuple[int, int, int]:
        """(columns, rows, slices)."""
        return self.geometry.size_voxels

    @property
    def spacing_mm(self) -> FloatArray:
        return self.geometry.spacing_mm

    @property
    def origin_mm(self) -> FloatArray:
        return self.geometry.origin_mm

    @property
    def direction(self) -> FloatArray:
        return self.geometry.direction

    @property
    def n_slices(self) -> int:
        return self.geometry.size_voxels[2]

    def slice_z_mm(self, k: int) -> float:
        return float(self.geometry.slice_z_mm(k))

    def z_mm(self) -> FloatArray:
        """LPS z (patient superior, mm) of every slice centre, shape (n_slices,)."""
        return np.asarray(self.geometry.slice_z_mm(np.arange(self.n_slices)), dtype=np.float64)

    def slice_at_z(self, z_mm: float) -> int:
        """Index of the slice whose centre is nearest to ``z_mm``; raises if outside the scan."""
        zs = self.z_mm()
        half = abs(float(self.spacing_mm[2]) * self.direction[2, 2]) / 2.0
        if z_mm < zs.min() - half or z_mm > zs.max() + half:
            raise ValueError(
                f"z = {z_mm:.2f} mm is outside the scan ({zs.min():.2f} .. {zs.max():.2f} mm)"
            )
        return int(np.argmin(np.abs(zs - z_mm)))

    def axial_slice(self, k: int) -> Slice:
        if not 0 <= k < self.n_slices:
            raise IndexError(f"slice {k} outside 0..{self.n_slices - 1}")
        origin = self.geometry.index_to_world([0.0, 0.0, float(k)])
        return Slice(
            pixels=self.voxels[k],
            spacing_mm=(float(self.spacing_mm[0]), float(self.spacing_mm[1])),
            index=k,
            z_mm=self.slice_z_mm(k),
            origin_mm=origin,
            direction=self.direction,
        )


@dataclass(frozen=True, eq=False)
class CTVolume(_GriddedVolume):
    """A CT scan in Hounsfield units on a geometry-true grid (see module docstring).

    ``voxels`` is ``int16`` when every rescale was integral and the values fit, otherwise
    ``float32``; either way the values are HU. The array is read-only.
    """

    voxels: npt.NDArray[Any]
    geometry: Geometry
    source: SourceInfo
    ids: SeriesIds = field(default_factory=SeriesIds, repr=False)

    def __post_init__(self) -> None:
        self._validate_grid()
        if self.voxels.dtype not in (np.int16, np.float32):
            raise ValueError(f"CT voxels must be int16 or float32 HU, got {self.voxels.dtype}")
        if self.voxels.flags.writeable:
            ro = self.voxels.view()
            ro.setflags(write=False)
            object.__setattr__(self, "voxels", ro)

    @property
    def modality(self) -> str:
        return self.source.modality

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.source.warnings

    def hu(self) -> npt.NDArray[np.float32]:
        """The voxels as float32 HU (a copy when stored as int16)."""
        return self.voxels.astype(np.float32, copy=False)

    def slab(self, k0: int, k1: int) -> CTVolume:
        """Slices ``k0..k1`` (inclusive, canonical order) as a new volume on the same grid:
        the origin moves to slice ``k0``, spacing and direction are unchanged."""
        n = self.n_slices
        if not 0 <= k0 <= k1 < n:
            raise ValueError(f"slab {k0}..{k1} outside the volume's {n} slices")
        g = self.geometry
        geo = Geometry(
            (g.size_voxels[0], g.size_voxels[1], k1 - k0 + 1),
            g.spacing_mm,
            g.index_to_world([0.0, 0.0, float(k0)]),
            g.direction,
        )
        return replace(self, voxels=np.ascontiguousarray(self.voxels[k0 : k1 + 1]), geometry=geo)

@dataclass(frozen=True, eq=False)
class LabelVolume(_GriddedVolume):
    """An integer label image (segmentation) on a geometry-true grid.

    ``names`` maps label id to structure name (0, background, may be omitted).
    """

    voxels: npt.NDArray[Any]
    geometry: Geometry
    names: Mapping[int, str] = field(default_factory=dict)
    source: SourceInfo | None = None

    def __post_init__(self) -> None:
        self._validate_grid()
        if not np.issubdtype(self.voxels.dtype, np.integer):
            raise ValueError(f"label voxels must be integers, got {self.voxels.dtype}")
        if self.voxels.flags.writeable:
            ro = self.voxels.view()
            ro.setflags(write=False)
            object.__setattr__(self, "voxels", ro)

    def mask(self, *label_ids: int) -> npt.NDArray[np.bool_]:
        """Boolean mask of the given label ids, shape like ``voxels``."""
        return np.isin(self.voxels, np.asarray(label_ids))

    def id_of(self, name: str) -> int:
        for k, v in self.names.items():
            if v == name:
                return int(k)
        raise KeyError(f"no label named {name!r}")
