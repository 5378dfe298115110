"""Reader for Slice-O-Matic TAG label files (manual tracings, e.g. the Alberta L3 protocol).

Format: an ASCII header of ``key:value`` pairs separated by white space, terminated by a form
feed (0x0C), then ``x * y * z`` unsigned bytes of labels in row-major order (x fastest), in the
pixel order of the DICOM image they were traced on. Header keys seen in practice: ``x``, ``y``,
``z``, ``type`` (BYTE), ``org_x/y/z`` (ImagePositionPatient, mm), ``inc_x/y`` (pixel spacing,
mm), ``epais`` (slice thickness, mm), ``dir_h_*`` / ``dir_v_*`` (row / column direction
cosines). Older files carry only some of these (or none); then the reference DICOM slice gives
the grid. Alberta protocol label ids: 1 skeletal muscle, 5 visceral fat, 7 subcutaneous fat,
12 intermuscular fat (site conventions vary: ``names`` overrides).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from rcsa.errors import CorruptFileError, GeometryError
from rcsa.io.image import check_readable
from rcsa.io.orientation import canonicalize
from rcsa.io.volume import CTVolume, Geometry, LabelVolume, SourceInfo

ALBERTA_LABELS: dict[int, str] = {
    1: "skeletal_muscle",
    5: "visceral_fat",
    7: "subcutaneous_fat",
    12: "intermuscular_fat",
}

_FORM_FEED = b"\x0c"
_MAX_HEADER = 64 * 1024
_PAIR = re.compile(r"([A-Za-z_]+)\s*:\s*([-+0-9.eE]+|[A-Za-z]+)")


def parse_tag_header(text: str) -> dict[str, str]:
    """``key:value`` pairs of a TAG header."""
    return {m.group(1).lower(): m.group(2) for m in _PAIR.finditer(text)}


def _num(header: Mapping[str, str], key: str) -> float | None:
    value = header.get(key)
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _header_geometry(header: Mapping[str, str], shape: tuple[int, int, int]) -> Geometry | None:
    needed = ["org_x", "org_y", "org_z", "inc_x", "inc_y"]
    if any(_num(header, k) is None for k in needed):
        return None
    row = [_num(header, f"dir_h_{a}") for a in "xyz"]
    col = [_num(header, f"dir_v_{a}") for a in "xyz"]
    row_v = np.array(row if None not in row else [1.0, 0.0, 0.0], dtype=float)
    col_v = np.array(col if None not in col else [0.0, 1.0, 0.0], dtype=float)
    row_v /= np.linalg.norm(row_v)
    col_v /= np.linalg.norm(col_v)
    normal = np.cross(row_v, col_v)
    thickness = _num(header, "epais") or 1.0
    return Geometry(
        (shape[2], shape[1], shape[0]),
        np.array([_num(header, "inc_x"), _num(header, "inc_y"), thickness], dtype=float),
        np.array([_num(header, k) for k in ("org_x", "org_y", "org_z")], dtype=float),
        np.column_stack([row_v, col_v, normal]),
    )


def read_tag(
    path: Path,
    reference: CTVolume | None = None,
    names: Mapping[int, str] | None = None,
) -> LabelVolume:
    """Read a TAG file as a :class:`LabelVolume` in the canonical frame.

    ``reference``: the CT slice (or volume of the same size) the tracing was drawn on. When
    given, its grid is used and the header's geometry, if any, must agree with it (within the
    header's 4-decimal rounding). Without it, the header must carry the geometry.
    """
    check_readable(path)
    data = path.read_bytes()
    end = data.find(_FORM_FEED, 0, _MAX_HEADER)
    if end < 0:
        raise CorruptFileError("not a TAG file: no form feed (0x0C) ends a header", path)
    try:
        header = parse_tag_header(data[:end].decode("ascii", errors="strict"))
    except UnicodeDecodeError as exc:
        raise CorruptFileError("not a TAG file: header is not ASCII", path) from exc
    payload = data[end + 1 :]

    if "x" in header and "y" in header:
        nx, ny = int(float(header["x"])), int(float(header["y"]))
        nz = int(float(header.get("z", "1")))
    elif reference is not None:
        nx, ny, nz = reference.size_voxels[0], reference.size_voxels[1], 1
    else:
        raise CorruptFileError("TAG header has no size (x, y) and no reference image given", path)
    if header.get("type", "BYTE").upper() != "BYTE":
        raise CorruptFileError(f"unsupported TAG voxel type {header['type']!r}", path)
    expected = nx * ny * nz
    if len(payload) != expected:
        raise CorruptFileError(
            f"TAG payload has {len(payload)} bytes, header size {nx}x{ny}x{nz} needs {expected}"
            " (truncated or wrong size)",
            path,
        )
    labels = np.frombuffer(payload, dtype=np.uint8).reshape(nz, ny, nx).astype(np.uint16)

    geometry = _header_geometry(header, labels.shape)
    if reference is not None:
        if reference.size_voxels[:2] != (nx, ny) or (nz != 1 and reference.n_slices != nz):
            raise GeometryError(
                f"TAG size {nx}x{ny}x{nz} does not match the reference image "
                f"{list(reference.size_voxels)}",
                path,
            )
        ref_geom = reference.geometry
        if nz == 1 and reference.n_slices != 1:
            raise GeometryError("a single-slice TAG needs the single reference slice", path)
        if geometry is not None:
            _check_header_against(geometry, ref_geom, path)
        # Labels are in the DICOM pixel order; bring them into the reference's canonical order
        # by re-deriving the same re-ordering from the header/reference geometry.
        source_geom = geometry if geometry is not None else ref_geom
        voxels, canon = canonicalize(labels, source_geom)
        canon.check_same_grid(ref_geom, tol_mm=0.5)  # same grid up to header rounding
        geometry_out = ref_geom
    else:
        if geometry is None:
            raise CorruptFileError(
                "TAG header carries no geometry (org_*, inc_*): give the reference DICOM slice",
                path,
            )
        voxels, geometry_out = canonicalize(labels, geometry)
    source = SourceInfo(path=str(path), format="tag", modality="SEG", files=(str(path),))
    return LabelVolume(
        voxels=voxels,
        geometry=geometry_out,
        names=dict(names if names is not None else ALBERTA_LABELS),
        source=source,
    )


def _check_header_against(header_geom: Geometry, ref: Geometry, path: Path) -> None:
    """The header's spacing (4 decimals) and origin must match the reference's."""
    if not np.allclose(header_geom.spacing_mm[:2], ref.spacing_mm[:2], atol=1e-4):
        raise GeometryError(
            f"TAG pixel spacing {header_geom.spacing_mm[:2].tolist()} differs from the "
            f"reference image {ref.spacing_mm[:2].tolist()}",
            path,
        )
    # The reference is canonical; compare the physical positions of the TAG's first voxel.
    first_ref = ref.corners_mm()
    d = np.linalg.norm(first_ref - header_geom.origin_mm, axis=1).min()
    if d > 0.01 + 1e-3 * max(ref.size_voxels):
        raise GeometryError(
            f"TAG origin {header_geom.origin_mm.tolist()} is {d:.2f} mm from every corner of "
            "the reference image",
            path,
        )
