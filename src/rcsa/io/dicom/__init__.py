"""Loading a CT series from DICOM files into a :class:`~rcsa.io.volume.CTVolume`.

Steps (each refusal is a typed error naming the file and the reason; see ``docs/io.md``):

1. discover files (a folder tree, one file or a list), read headers with pydicom, skip and
   count non-DICOM files;
2. group by SeriesInstanceUID and choose the axial CT series to analyse: the one with most
   slices that is CT Image Storage, not a localizer, single-sample greyscale and axial, or the
   one named by ``series_uid``; the others are reported;
3. validate the chosen series: pixel data present, one size / pixel spacing / orientation,
   positions present; sort along the slice normal; drop exact duplicates, refuse conflicting
   ones; refuse gaps and non-uniform spacing unless ``resample_irregular``; detect gantry tilt
   and resample it onto an axis-aligned grid unless ``correct_tilt`` is False;
4. decode (JPEG Lossless, JPEG-LS, JPEG 2000, RLE via pylibjpeg; uncompressed natively) and
   apply the modality LUT (RescaleSlope / RescaleIntercept per slice) to get HU;
5. re-order into the canonical LPS orientation.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pydicom

from rcsa.errors import EmptyInputError, GantryTiltError
from rcsa.io.dicom.decode import (
    PARALLEL_DECODE_MIN_IMAGES,
    _decode,
    _decode_parallel,
    _Prefetch,
)
from rcsa.io.dicom.discover import _list_files, read_headers, resolve_damaged
from rcsa.io.dicom.header import (
    AIR_HU,
    AXIAL_MAX_ANGLE_DEG,
    CT_IMAGE_STORAGE,
    ENHANCED_CT_IMAGE_STORAGE,
    ORIENTATION_TOL,
    PIXEL_SPACING_TOL_MM,
    POSITION_DUPLICATE_TOL_MM,
    SECONDARY_CAPTURE_PREFIX,
    SPACING_ABS_TOL_MM,
    SPACING_REL_TOL,
    TILT_TOL_DEG,
    Damaged,
    _Header,
    _read_header,
    _truncation,
    read_file,
)
from rcsa.io.dicom.instances import SourceInstance, dicom_source_instances, read_dicom_instance
from rcsa.io.dicom.select import _normal, choose_series, why_not_analysable
from rcsa.io.dicom.stack import (
    _check_spacing,
    _hu_stack,
    _resample_uniform,
    _resolve_duplicate_instances,
    _sort_and_dedupe,
    _validate_series,
)
from rcsa.io.orientation import canonicalize, resample_sheared_stack
from rcsa.io.volume import CTVolume, Geometry, SeriesIds, SourceInfo

__all__ = [
    "AIR_HU",
    "AXIAL_MAX_ANGLE_DEG",
    "CT_IMAGE_STORAGE",
    "ENHANCED_CT_IMAGE_STORAGE",
    "ORIENTATION_TOL",
    "PARALLEL_DECODE_MIN_IMAGES",
    "PIXEL_SPACING_TOL_MM",
    "POSITION_DUPLICATE_TOL_MM",
    "SECONDARY_CAPTURE_PREFIX",
    "SPACING_ABS_TOL_MM",
    "SPACING_REL_TOL",
    "TILT_TOL_DEG",
    "Damaged",
    "SourceInstance",
    "_Header",
    "_Prefetch",
    "_check_spacing",
    "_decode",
    "_decode_parallel",
    "_hu_stack",
    "_list_files",
    "_normal",
    "_read_header",
    "_resample_uniform",
    "_resolve_duplicate_instances",
    "_sort_and_dedupe",
    "_truncation",
    "_validate_series",
    "choose_series",
    "dicom_source_instances",
    "load_dicom",
    "read_dicom_instance",
    "read_file",
    "read_headers",
    "resolve_damaged",
    "why_not_analysable",
]

log = logging.getLogger(__name__)


def _acquisition(h: _Header) -> dict[str, Any]:
    keys = {
        "manufacturer": "Manufacturer",
        "model": "ManufacturerModelName",
        "kvp": "KVP",
        "convolution_kernel": "ConvolutionKernel",
        "slice_thickness_mm": "SliceThickness",
        "contrast_agent": "ContrastBolusAgent",
        "body_part": "BodyPartExamined",
        "series_description": "SeriesDescription",
        "study_date": "StudyDate",
        "transfer_syntax": None,
    }
    out: dict[str, Any] = {}
    for name, kw in keys.items():
        if kw is None:
            ts = getattr(getattr(h.ds, "file_meta", None), "TransferSyntaxUID", None)
            value: Any = getattr(ts, "name", None) if ts is not None else None
        else:
            value = h.get(kw)
        if value is None or value == "":
            continue
        if isinstance(value, pydicom.multival.MultiValue):
            value = "\\".join(str(v) for v in value)
        elif isinstance(value, (pydicom.valuerep.DSfloat, pydicom.valuerep.IS)):
            value = float(value)
        else:
            value = str(value)
        out[name] = value
    return out


def load_dicom(
    inputs: Path | Sequence[Path],
    *,
    series_uid: str | None = None,
    correct_tilt: bool = True,
    resample_irregular: bool = False,
    threads: int | None = None,
) -> CTVolume:
    """Load one axial CT series from DICOM files as a canonical :class:`CTVolume`.

    ``inputs``: a folder (searched recursively), one file, or a list of files/folders.
    ``series_uid``: analyse this series instead of the automatic choice.
    ``correct_tilt``: resample gantry-tilted series onto an axis-aligned grid (else refuse).
    ``resample_irregular``: interpolate over missing slices / non-uniform spacing (else refuse).
    """
    paths = [Path(inputs)] if isinstance(inputs, (str, Path)) else [Path(p) for p in inputs]
    if not paths:
        raise EmptyInputError("no input files given")
    prefetch = _Prefetch()
    try:
        return _load_series(paths, prefetch, series_uid=series_uid, correct_tilt=correct_tilt,
                            resample_irregular=resample_irregular, threads=threads)
    finally:
        prefetch.close()


def _load_series(
    paths: list[Path],
    prefetch: _Prefetch,
    *,
    series_uid: str | None,
    correct_tilt: bool,
    resample_irregular: bool,
    threads: int | None,
) -> CTVolume:
    where = paths[0] if len(paths) == 1 else Path(os.path.commonpath(paths))
    warnings: list[str] = []
    damaged: list[Damaged] = []
    headers, skipped = read_headers(paths, prefetch, damaged)
    if skipped:
        warnings.append(f"skipped {len(skipped)} non-DICOM file(s)")
    hs, summaries = choose_series(headers, series_uid, where)
    resolve_damaged(damaged, headers, hs, warnings)
    if not hs[0].has_series_uid:
        warnings.append(
            "SeriesInstanceUID missing (anonymised?): images grouped by study, frame of "
            "reference, series number/description and modality"
        )
    others = [s for s in summaries if not s.chosen]
    if others:
        warnings.append(
            f"{len(summaries)} series found; analysing "
            f"'{summaries[0].description or 'unnamed'}' ({summaries[0].n_files} images), "
            f"ignored {len(others)} other series"
        )
    localizers = [h for h in hs if "LOCALIZER" in h.image_type]
    if localizers and len(localizers) < len(hs):
        hs = [h for h in hs if "LOCALIZER" not in h.image_type]
        warnings.append(f"ignored {len(localizers)} localizer image(s) inside the series")
    foreign = [h for h in hs if h.sop_class != CT_IMAGE_STORAGE]  # e.g. a dose screenshot
    if foreign:
        hs = [h for h in hs if h.sop_class == CT_IMAGE_STORAGE]
        warnings.append(
            f"ignored {len(foreign)} non-CT-image object(s) inside the series (e.g. "
            f"{foreign[0].path.name}: SOP class {foreign[0].sop_class or 'missing'})"
        )
    hs = _resolve_duplicate_instances(hs, warnings)
    _validate_series(hs)
    hs, dist = _sort_and_dedupe(hs, warnings)

    first = hs[0]
    iop = first.orientation
    assert iop is not None
    row_dir, col_dir, normal = iop[:3], iop[3:], _normal(iop)
    ps = [float(v) for v in first.get("PixelSpacing")]
    spacing_ij = (ps[1], ps[0])  # PixelSpacing is (between rows, between columns)

    irregular, step = _check_spacing(hs, dist, resample_irregular, warnings)
    if len(hs) == 1:
        # depth-1 volume: the voxel's z extent is the slice thickness (the nominal slab)
        step = abs(float(first.get("SliceThickness", 0) or 0)) or abs(
            float(first.get("SpacingBetweenSlices", 0) or 0)
        )
        if step <= 0:
            step = 1.0
            warnings.append("single slice without SliceThickness: slice spacing set to 1 mm")

    tilt_deg = 0.0
    stack_vec = normal * step
    if len(hs) >= 2:
        p0, p1 = first.position, hs[-1].position
        assert p0 is not None and p1 is not None
        total = p1 - p0
        along = float(np.dot(total, normal))
        inplane = total - along * normal
        tilt_deg = float(np.degrees(np.arctan2(np.linalg.norm(inplane), abs(along))))
        if tilt_deg > TILT_TOL_DEG:
            if not correct_tilt:
                raise GantryTiltError(
                    f"gantry tilt of {tilt_deg:.2f} deg (slices are sheared); "
                    "tilt correction is disabled",
                    first.path,
                )
            if irregular:  # resampled onto `step` along the normal, same shear per mm
                stack_vec = inplane / along * step + normal * step
            else:
                stack_vec = total / (len(hs) - 1)

    stack = _hu_stack(hs, threads if threads is not None else min(4, os.cpu_count() or 1),
                      prefetch)
    if irregular:
        stack, _ = _resample_uniform(stack, dist, step)

    affine = np.eye(4)
    affine[:3, 0] = row_dir * spacing_ij[0]
    affine[:3, 1] = col_dir * spacing_ij[1]
    affine[:3, 2] = stack_vec
    assert first.position is not None
    affine[:3, 3] = first.position
    if tilt_deg > TILT_TOL_DEG:
        stack, geometry = resample_sheared_stack(stack, affine, AIR_HU)
        warnings.append(
            f"gantry tilt of {tilt_deg:.2f} deg corrected by trilinear resampling onto an "
            "axis-aligned grid"
        )
    else:
        geometry = Geometry(
            (stack.shape[2], stack.shape[1], stack.shape[0]),
            np.array([spacing_ij[0], spacing_ij[1], step]),
            first.position,
            np.column_stack([row_dir, col_dir, normal]),
        )
    voxels, geometry = canonicalize(stack, geometry)
    if geometry.obliquity_deg > 1.0:
        warnings.append(f"oblique acquisition: axes {geometry.obliquity_deg:.1f} deg off LPS")

    ids = SeriesIds(
        patient_id=str(first.get("PatientID", "") or "") or None,
        study_instance_uid=str(first.get("StudyInstanceUID", "") or "") or None,
        series_instance_uid=str(first.get("SeriesInstanceUID", "") or "") or None,
        accession_number=str(first.get("AccessionNumber", "") or "") or None,
    )
    source = SourceInfo(
        path=str(where),
        format="dicom",
        modality=first.modality,
        files=tuple(str(h.path) for h in hs),
        series=summaries,
        warnings=tuple(warnings),
        acquisition=_acquisition(first),
    )
    return CTVolume(voxels=voxels, geometry=geometry, source=source, ids=ids)

