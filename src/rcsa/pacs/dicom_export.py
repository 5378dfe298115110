"""An ``rcsa run`` output folder as DICOM: a Segmentation (SEG) of the level masks and a
Structured Report (TID 1500 Measurement Report) of the measurements.

Both reference the source CT instances. The run folder is read through :mod:`rcsa.runfolder`.
The mapping from the run's segmentation to the source instances is geometric: every labelled
slice of the segmentation must lie in the plane of one CT instance of the source series, and
the in-plane pixel grids must coincide up to axis flips / swaps (which is what rcsa's
canonical re-ordering does to a DICOM series). A series that rcsa resampled (gantry-tilt
correction, irregular spacing) has no instance per
segmentation slice and is refused with :class:`rcsa.errors.DicomExportError`.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset

from rcsa import __version__
from rcsa.anatomy import RCSA_CLASSES
from rcsa.errors import DicomExportError, EmptySegmentationError, InputError
from rcsa.io import DicomSourceInstance as SourceInstance
from rcsa.io import dicom_source_instances, read_dicom_instance
from rcsa.levels.types import LevelMap
from rcsa.outputs import atomic_write
from rcsa.pacs import codes as rc
from rcsa.runfolder import RunFolder, open_run_folder
from rcsa.runfolder import names as N

SEG_SERIES_NUMBER = 9901
SR_SERIES_NUMBER = 9902
_TOL_VOXEL = 0.05  # how far from a voxel centre a source pixel may lie (in voxels)

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------
# the run folder
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class _Run:
    folder: RunFolder
    labels: npt.NDArray[np.uint8]  # [k, j, i]
    origin: npt.NDArray[np.float64]
    to_world: npt.NDArray[np.float64]  # 3x3: direction @ diag(spacing)
    names: dict[int, str]
    levels: LevelMap
    run: dict[str, Any]

    def index_of(self, world: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.asarray(np.linalg.solve(self.to_world, world - self.origin), np.float64)

    def step_index(self, vec: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.asarray(np.linalg.solve(self.to_world, vec), np.float64)


def _read_run(folder: Path) -> _Run:
    """The run folder's segmentation (a geometry-true label volume), level map and record,
    through :mod:`rcsa.runfolder`; its refusals become :class:`DicomExportError`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DicomExportError("rcsa run output folder not found", folder)
    try:
        run = open_run_folder(folder, require=(N.SEGMENTATION_NIFTI, N.SEGMENTATION_LABELS_JSON,
                                               N.LEVELS_JSON))
        seg = run.segmentation()
        level_map = run.level_map
        record = run.record if run.has(N.RUN_JSON) else {}
    except DicomExportError:
        raise
    except InputError as exc:
        raise DicomExportError(exc.reason, exc.path) from exc
    g = seg.geometry
    return _Run(
        folder=run,
        labels=seg.voxels.astype(np.uint8, copy=False),
        origin=np.asarray(g.origin_mm, np.float64),
        to_world=np.asarray(g.direction, np.float64) @ np.diag(np.asarray(g.spacing_mm, float)),
        names=dict(run.class_names),
        levels=level_map,
        run=record,
    )


# ------------------------------------------------------------------------------------------
# the source series
# ------------------------------------------------------------------------------------------
def _read_source(source: Path, series_uid: str | None, warnings: list[str],
                 damaged_raise: bool = True) -> dict[str, list[SourceInstance]]:
    """CT image instances with geometry, by SeriesInstanceUID, read by :mod:`rcsa.io` (its
    typed errors for missing, unreadable or damaged files pass through: they name the file).
    Every instance must carry its study, series and instance UIDs: a SEG / SR references
    them."""
    by_key = dicom_source_instances(source, series_uid=series_uid, warnings=warnings,
                                    damaged_raise=damaged_raise)
    by_series: dict[str, list[SourceInstance]] = {}
    missing_uids = 0
    for instances in by_key.values():
        for inst in instances:
            if not (inst.study_uid and inst.series_uid and inst.sop_uid):
                missing_uids += 1
                continue
            by_series.setdefault(inst.series_uid, []).append(inst)
    if not by_series:
        if series_uid is not None and not missing_uids:
            raise DicomExportError(f"series {series_uid} is not among the CT series in the "
                                   "source folder", source)
        why = (f"{missing_uids} CT image(s) lack StudyInstanceUID / SeriesInstanceUID / "
               "SOPInstanceUID (anonymised?): a SEG / SR must reference them"
               if missing_uids else "no CT image instances with geometry")
        raise DicomExportError(why, source)
    return by_series


@dataclass(frozen=True, eq=False)
class _SliceMap:
    """Seg slice ``k`` <-> one source instance, with the pixel index arrays."""

    k: int
    instance: SourceInstance
    jj: npt.NDArray[np.intp]  # [rows, cols] -> j of the segmentation
    ii: npt.NDArray[np.intp]


def _is_int(v: npt.NDArray[np.float64]) -> bool:
    return bool(np.all(np.abs(v - np.round(v)) < _TOL_VOXEL))


def _map_instance(run: _Run, inst: SourceInstance) -> _SliceMap | None:
    nk, nj, ni = run.labels.shape
    idx0 = run.index_of(inst.position_mm)
    if not _is_int(idx0):
        return None
    k = round(float(idx0[2]))
    if not 0 <= k < nk:
        return None
    dcol = run.step_index(inst.row_dir * inst.pixel_spacing_mm[1])
    drow = run.step_index(inst.col_dir * inst.pixel_spacing_mm[0])
    if not (_is_int(dcol) and _is_int(drow)):
        return None
    dcol_i, drow_i = np.round(dcol).astype(int), np.round(drow).astype(int)
    if dcol_i[2] != 0 or drow_i[2] != 0 or np.abs(dcol_i).sum() != 1 or \
            np.abs(drow_i).sum() != 1 or np.array_equal(np.abs(dcol_i), np.abs(drow_i)):
        return None
    r = np.arange(inst.rows)[:, None]
    c = np.arange(inst.cols)[None, :]
    i0, j0 = round(float(idx0[0])), round(float(idx0[1]))
    ii = i0 + c * dcol_i[0] + r * drow_i[0]
    jj = j0 + c * dcol_i[1] + r * drow_i[1]
    if ii.min() < 0 or ii.max() >= ni or jj.min() < 0 or jj.max() >= nj:
        return None
    return _SliceMap(k, inst, jj.astype(np.intp), ii.astype(np.intp))


def _labelled_slices(run: _Run) -> list[int]:
    return [int(k) for k in np.flatnonzero(run.labels.reshape(run.labels.shape[0], -1).any(1))]


def _match_series(
    run: _Run, source: Path, series_uid: str | None
) -> tuple[str, dict[int, _SliceMap], list[SourceInstance]]:
    """The source series whose instances carry every labelled slice, and that mapping.

    Without ``series_uid`` the series is first found among all CT series of the folder with
    damaged files set aside, then read again alone, so that a damaged file of an unrelated
    series is a warning (as when loading) and one that may belong to this series still refuses
    the export; when no series matches, the folder is read again with the damaged-file rules
    for every series, so a damaged instance that may be the missing one is named."""
    if series_uid is None:
        try:
            uid, _, _ = _match_in(run, source, _read_source(source, None, [],
                                                            damaged_raise=False))
        except DicomExportError:
            _read_source(source, None, [])  # a damaged file that may be the missing instance
            raise
        series_uid = uid
    warnings: list[str] = []
    by_series = _read_source(source, series_uid, warnings)
    for w in warnings:
        log.warning("%s", w)
    return _match_in(run, source, by_series)


def _match_in(
    run: _Run, source: Path, by_series: dict[str, list[SourceInstance]]
) -> tuple[str, dict[int, _SliceMap], list[SourceInstance]]:
    wanted = _labelled_slices(run)
    matches: list[tuple[str, dict[int, _SliceMap]]] = []
    best = (0, "")
    for uid, instances in by_series.items():
        maps: dict[int, _SliceMap] = {}
        for inst in instances:
            m = _map_instance(run, inst)
            if m is not None:
                maps.setdefault(m.k, m)
        covered = sum(1 for k in wanted if k in maps)
        best = max(best, (covered, uid))
        if covered == len(wanted) if wanted else len(maps) == run.labels.shape[0]:
            matches.append((uid, maps))
    if not matches:
        raise DicomExportError(
            f"no CT series in the source folder has an instance for every segmented slice "
            f"(best: {best[0]} of {len(wanted)}); is this the series the run analysed, and was "
            "it resampled (gantry tilt, irregular spacing)?", source)
    if len(matches) > 1:
        raise DicomExportError(
            f"{len(matches)} CT series in the source folder match the segmentation; choose one "
            "with its SeriesInstanceUID", source)
    uid, maps = matches[0]
    return uid, maps, by_series[uid]


# ------------------------------------------------------------------------------------------
# coding
# ------------------------------------------------------------------------------------------
def _uses_scheme(ds: Dataset, scheme: str) -> bool:
    """Whether any item of any sequence in ``ds`` has Coding Scheme Designator ``scheme``."""
    for elem in ds:
        if elem.VR != "SQ":
            continue
        for item in elem.value:
            if str(item.get("CodingSchemeDesignator", "")) == scheme or _uses_scheme(item,
                                                                                      scheme):
                return True
    return False


def _declare_private_scheme(ds: Dataset) -> None:
    """Coding Scheme Identification Sequence (PS3.3 C.12.1) for ``99RCSA`` when it is used:
    a private coding scheme is identified in the object that uses it."""
    if not _uses_scheme(ds, rc.PRIVATE_SCHEME):
        return
    item = Dataset()
    item.CodingSchemeDesignator = rc.PRIVATE_SCHEME
    item.CodingSchemeName = rc.PRIVATE_SCHEME_NAME
    item.CodingSchemeResponsibleOrganization = rc.PRIVATE_SCHEME_ORGANIZATION
    ds.CodingSchemeIdentificationSequence = [item]


def _frame_reference_only(ref: hd.sr.ReferencedSegmentationFrame) -> None:
    """The Referenced Segmentation Frame image item names the SEG frame only.

    PS3.3 C.18.4 (Image Reference Macro) requires Referenced Segment Number only where no
    Referenced Frame Number is given, and dciodvfy reports an error when both are present;
    highdicom writes both. A SEG frame belongs to exactly one segment (its Segment
    Identification Sequence), so the frame number identifies the segment.
    """
    for sop in ref[0].ReferencedSOPSequence:
        if "ReferencedFrameNumber" not in sop:
            raise DicomExportError("a Referenced Segmentation Frame without a frame number")
        if "ReferencedSegmentNumber" in sop:
            del sop.ReferencedSegmentNumber


# ------------------------------------------------------------------------------------------
# SEG
# ------------------------------------------------------------------------------------------
def _class_info(name: str) -> tuple[str, str | None]:
    """(structure, side) of an rcsa class name; other names are their own structure."""
    if name in RCSA_CLASSES.names:
        c = RCSA_CLASSES.classes[RCSA_CLASSES.id_of(name)]
        return (c.muscle or name), c.side
    return name, None


def _algorithm(run: _Run) -> tuple[str, hd.AlgorithmIdentificationSequence | None]:
    source = str(run.run.get("segmentation_source", "") or "")
    if source.startswith("TAG tracing"):
        return hd.seg.SegmentAlgorithmTypeValues.MANUAL.value, None
    name = (source or "rcsa")[:64]
    version = str(run.run.get("rcsa_version", __version__))[:64]
    return hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC.value, hd.AlgorithmIdentificationSequence(
        name=name, family=rc.fresh(rc.ALGORITHM_FAMILY), version=version)


def _read_full(inst: SourceInstance) -> Dataset:
    return read_dicom_instance(inst.path)


def build_seg(
    case_out_dir: str | Path, source_dir: str | Path, *, series_uid: str | None = None
) -> hd.seg.Segmentation:
    """A binary DICOM SEG of the run's level masks: one segment per class present, frames only
    on the level slices, each frame referencing its source CT instance.

    Raises :class:`EmptySegmentationError` when no class is present on any slice (a SEG without
    segments is never made) and :class:`DicomExportError` when the source does not match.
    """
    run = _read_run(Path(case_out_dir))
    ks = _labelled_slices(run)
    if not ks:
        raise EmptySegmentationError(
            "the run segmented nothing (no level slice with an rcsa class): no SEG to write",
            run.folder.path)
    _, maps, _ = _match_series(run, Path(source_dir), series_uid)
    class_ids = sorted(int(v) for v in np.unique(run.labels[ks]) if v != 0)
    algo_type, algo = _algorithm(run)
    descriptions = []
    for n, cid in enumerate(class_ids, start=1):
        name = run.names.get(cid, f"label_{cid}")
        structure, side = _class_info(name)
        desc = hd.seg.SegmentDescription(
            segment_number=n,
            segment_label=name[:64],
            segmented_property_category=rc.fresh(rc.ANATOMICAL_STRUCTURE),
            segmented_property_type=rc.structure_code(structure),
            algorithm_type=algo_type,
            algorithm_identification=algo,
            tracking_uid=hd.UID(),
            tracking_id=name[:64],
        )
        if side in rc.SIDES:
            desc.SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence = \
                [rc.fresh(rc.SIDES[side])]
        descriptions.append(desc)
    sources = [_read_full(maps[k].instance) for k in ks]
    first = sources[0]
    pixels = np.zeros((len(ks), int(first.Rows), int(first.Columns), len(class_ids)), bool)
    for f, k in enumerate(ks):
        m = maps[k]
        frame = run.labels[k][m.jj, m.ii]
        for s, cid in enumerate(class_ids):
            pixels[f, :, :, s] = frame == cid
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=pixels,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=SEG_SERIES_NUMBER,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="rcsa",
        manufacturer_model_name="rcsa",
        software_versions=__version__,
        device_serial_number="0",
        content_label="RCSA",
        content_description="rcsa muscle segmentation on level slices",
        series_description="rcsa segmentation",
        omit_empty_frames=True,
    )
    _declare_private_scheme(seg)
    return seg


def seg_frame_index(seg: Dataset) -> dict[tuple[int, str], int]:
    """(segment number, source SOPInstanceUID) -> frame number (1-based) of a SEG."""
    out: dict[tuple[int, str], int] = {}
    for f, item in enumerate(seg.PerFrameFunctionalGroupsSequence, start=1):
        segment = int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        for der in item.get("DerivationImageSequence", []):
            for src in der.get("SourceImageSequence", []):
                out[(segment, str(src.ReferencedSOPInstanceUID))] = f
    return out


# ------------------------------------------------------------------------------------------
# SR
# ------------------------------------------------------------------------------------------
def _level_instances(run: _Run, maps: dict[int, _SliceMap]) -> dict[str, _SliceMap]:
    """Level name -> the source instance of its slice (by the level's LPS z)."""
    out: dict[str, _SliceMap] = {}
    centres = {k: (run.origin + run.to_world @ np.array([0.0, 0.0, float(k)]))[2] for k in maps}
    step = abs(float(run.to_world[2, 2])) or 1.0
    for name, lv in run.levels.levels.items():
        z = lv.z_mm
        if not lv.found or z is None or not centres:
            continue
        k = min(centres, key=lambda kk: abs(centres[kk] - float(z)))
        if abs(centres[k] - float(z)) <= 0.5 * step + 1e-3:
            out[name] = maps[k]
    return out


def _segment_numbers(seg: Dataset) -> dict[str, int]:
    return {str(s.SegmentLabel): int(s.SegmentNumber) for s in seg.SegmentSequence}


# ------------------------------------------------------------------------------------------
# SR: the spine (spine.json, read through rcsa.runfolder)
# ------------------------------------------------------------------------------------------
SPINE_TRACKING_PREFIX = "spine"
#: tracking identifier of the scan-level spine group
SPINE_SCAN_TRACKING = f"{SPINE_TRACKING_PREFIX} T11-L5"


def _spine_num(v: Any) -> float | None:
    """A finite number of spine.json, else None (booleans and text are not numbers)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _text_item(name: hd.sr.CodedConcept, value: str) -> hd.sr.TextContentItem:
    """A TEXT qualitative evaluation of a TID 1501 group (row 12 of TID 1501 as DCMTK's
    dcmsr/libcmr implements it; highdicom writes only the CODE form)."""
    return hd.sr.TextContentItem(name=rc.fresh(name), value=value or "-",
                                 relationship_type=hd.sr.RelationshipTypeValues.CONTAINS)


_Group = hd.sr.MeasurementsAndQualitativeEvaluations


def _group_with_text(group: _Group, texts: list[hd.sr.TextContentItem]) -> _Group:
    if texts:
        group[0].ContentSequence.extend(texts)
    return group


def _attenuation(value: float, derivation: hd.sr.CodedConcept,
                 site: hd.sr.CodedConcept | None = None) -> hd.sr.Measurement:
    return hd.sr.Measurement(
        name=rc.fresh(rc.ATTENUATION), value=value, unit=rc.fresh(rc.HU),
        derivation=rc.fresh(derivation), method=rc.fresh(rc.TRABECULAR_ROI),
        finding_sites=[hd.sr.FindingSite(anatomic_location=site)] if site is not None else None)


def _spine_document(run: _Run) -> dict[str, Any] | None:
    try:
        doc = run.folder.spine
    except InputError as exc:
        raise DicomExportError(exc.reason, exc.path) from exc
    if doc is None:
        return None
    if not isinstance(doc.get("vertebrae"), dict):
        raise DicomExportError(f"{N.SPINE_JSON}: 'vertebrae' is not an object", run.folder.path)
    return doc


def _bad_spine(run: _Run, what: str) -> DicomExportError:
    return DicomExportError(f"{N.SPINE_JSON}: {what}", run.folder.path)


def _vertebra_group(run: _Run, name: str, v: dict[str, Any], maps: dict[int, _SliceMap],
                    evidence_uids: dict[str, SourceInstance]
                    ) -> hd.sr.MeasurementsAndQualitativeEvaluations | None:
    """TID 1501 group of one vertebra (``measured`` / ``not_measurable``), else None."""
    status = v.get("status")
    if status in ("ambiguous", "missing"):
        return None
    if status not in rc.STATUSES:
        raise _bad_spine(run, f"{name}: unknown status {status!r}")
    measurements: list[hd.sr.Measurement] = []
    evaluations = [hd.sr.QualitativeEvaluation(name=rc.fresh(rc.SPINE_STATUS),
                                               value=rc.fresh(rc.STATUSES[str(status)]))]
    texts: list[hd.sr.TextContentItem] = []
    reason = str(v.get("reason") or "")
    grade_reason = str(v.get("grade_reason") or "")
    if status == "measured":
        for where, modifier in rc.HEIGHT_SITES.items():
            h = _spine_num(v.get(f"height_{where}_mm"))
            if h is not None:
                measurements.append(hd.sr.Measurement(
                    name=rc.fresh(rc.HEIGHT), value=h, unit=rc.fresh(rc.MM),
                    finding_sites=[hd.sr.FindingSite(
                        anatomic_location=rc.fresh(rc.VERTEBRAL_BODY),
                        topographical_modifier=rc.fresh(modifier))]))
        reduction = _spine_num(v.get("height_reduction_pct"))
        if reduction is not None:
            measurements.append(hd.sr.Measurement(
                name=rc.fresh(rc.HEIGHT_REDUCTION), value=reduction, unit=rc.fresh(rc.PERCENT)))
        for key, derivation in (("trabecular_hu", rc.MEAN), ("trabecular_hu_sd", rc.SD)):
            hu = _spine_num(v.get(key))
            if hu is not None:
                measurements.append(_attenuation(hu, derivation))
        grade = v.get("genant_grade")
        if grade is not None:
            if isinstance(grade, bool) or grade not in rc.GENANT_GRADES:
                raise _bad_spine(run, f"{name}: genant_grade {grade!r} is not a Genant grade 0-3")
            evaluations.append(hd.sr.QualitativeEvaluation(
                name=rc.fresh(rc.GENANT_GRADE), value=rc.fresh(rc.GENANT_GRADES[int(grade)])))
        morphology = v.get("morphology")
        if morphology is not None:
            if morphology not in rc.MORPHOLOGIES:
                raise _bad_spine(run, f"{name}: unknown morphology {morphology!r}")
            evaluations.append(hd.sr.QualitativeEvaluation(
                name=rc.fresh(rc.GENANT_MORPHOLOGY), value=rc.fresh(rc.MORPHOLOGIES[morphology])))
        if grade is None:
            texts.append(_text_item(rc.SPINE_REASON, grade_reason or "not graded"))
        else:
            review = str(v.get("grade_review_reason") or "")
            for note in (grade_reason, f"needs review: {review}" if review else ""):
                if note:
                    texts.append(_text_item(rc.GRADING_NOTE, note))
        band = v.get("attenuation_band")
        if band:
            texts.append(_text_item(rc.ATTENUATION_BAND, str(band)))
    else:
        texts.append(_text_item(rc.SPINE_REASON, reason or grade_reason or "not measurable"))
    mid = v.get("mid_slice")
    sm = maps.get(mid) if isinstance(mid, int) and not isinstance(mid, bool) else None
    sources = None
    if sm is not None:
        evidence_uids[sm.instance.sop_uid] = sm.instance
        sources = [hd.sr.SourceImageForMeasurementGroup(
            str(sm.instance.header.SOPClassUID), sm.instance.sop_uid)]
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=hd.UID(), identifier=f"{SPINE_TRACKING_PREFIX} {name}"),
        finding_type=rc.fresh(rc.VERTEBRAL_BODY),
        finding_sites=[hd.sr.FindingSite(anatomic_location=rc.vertebra_code(name))],
        measurements=measurements or None, qualitative_evaluations=evaluations,
        source_images=sources,
    )
    return _group_with_text(group, texts)


def _spine_scan_group(run: _Run, doc: dict[str, Any]
                      ) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    """The scan-level group: fracture burden, the bone-attenuation figure and its band."""
    measurements: list[hd.sr.Measurement] = []
    texts: list[hd.sr.TextContentItem] = []
    n = _spine_num(doc.get("fractured_vertebrae_n"))
    vertebrae: dict[str, Any] = doc["vertebrae"]
    if n is not None:
        measurements.append(hd.sr.Measurement(
            name=rc.fresh(rc.FRACTURED_N), value=int(n), unit=rc.fresh(rc.VERTEBRAE_UNIT)))
        fractured = doc.get("fractured_vertebrae") or []
        texts.append(_text_item(rc.FRACTURED_LIST, ", ".join(str(f) for f in fractured)
                                or "none"))
    else:
        texts.append(_text_item(rc.FRACTURED_LIST, "no vertebra graded: not counted"))
    not_graded = []
    for name in doc.get("not_graded") or []:
        v = vertebrae.get(name)
        why = str((v or {}).get("reason") or (v or {}).get("grade_reason") or "") \
            if isinstance(v, dict) else ""
        not_graded.append(f"{name}: {why}" if why else str(name))
    if not_graded:
        texts.append(_text_item(rc.NOT_GRADED, "; ".join(not_graded)))
    hu = _spine_num(doc.get("bone_attenuation_hu"))
    if hu is not None:
        where = doc.get("bone_attenuation_vertebra")
        measurements.append(_attenuation(hu, rc.MEAN,
                                         rc.vertebra_code(str(where)) if where else None))
        band = doc.get("bone_attenuation_band")
        if band:
            texts.append(_text_item(rc.ATTENUATION_BAND, str(band)))
    for w in doc.get("warnings") or []:
        texts.append(_text_item(rc.SPINE_WARNING, str(w)))
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(),
                                                     identifier=SPINE_SCAN_TRACKING),
        finding_type=rc.fresh(rc.THORACOLUMBAR_SPINE),
        finding_sites=[hd.sr.FindingSite(anatomic_location=rc.fresh(rc.THORACOLUMBAR_SPINE))],
        measurements=measurements or None,
    )
    return _group_with_text(group, texts)


def _spine_groups(run: _Run, maps: dict[int, _SliceMap], evidence_uids: dict[str, SourceInstance]
                  ) -> tuple[list[_Group], bool]:
    """The spine groups of the SR: one per vertebra written, then the scan group; none for a
    run folder without spine.json, and none when no vertebra is measured or not measurable
    (the scan group would only say that nothing was graded). And whether a vertebra was
    measured."""
    doc = _spine_document(run)
    if doc is None:
        return [], False
    out: list[hd.sr.MeasurementsAndQualitativeEvaluations] = []
    for name, v in doc["vertebrae"].items():
        if not isinstance(v, dict):
            raise _bad_spine(run, f"{name} is not an object")
        group = _vertebra_group(run, str(name), v, maps, evidence_uids)
        if group is not None:
            out.append(group)
    if out:
        out.append(_spine_scan_group(run, doc))
    measured = any(isinstance(v, dict) and v.get("status") == "measured"
                   for v in doc["vertebrae"].values())
    return out, measured


def build_sr(
    case_out_dir: str | Path,
    source_dir: str | Path,
    seg: Dataset | None = None,
    *,
    series_uid: str | None = None,
) -> hd.sr.Comprehensive3DSR:
    """A TID 1500 Measurement Report of the run's CSA (mm2), mean attenuation (HU), fat % and
    rCSA per level x structure x side, each group naming the level and, where ``seg`` holds the
    structure's segment on that level's slice, referencing that SEG frame; and, when the run
    folder holds ``spine.json``, one group per vertebra measured or not measurable (heights,
    trabecular attenuation, Genant grade and morphology, status and reason) and a scan-level
    spine group (fracture burden, bone attenuation and its band), see ``docs/pacs.md``.
    """
    run = _read_run(Path(case_out_dir))
    _, maps, instances = _match_series(run, Path(source_dir), series_uid)
    level_inst = _level_instances(run, maps)
    try:
        rows = run.folder.measurements
    except InputError as exc:
        raise DicomExportError(exc.reason, exc.path) from exc
    groups: dict[tuple[str, str, str], list[hd.sr.Measurement]] = defaultdict(list)
    for r in rows:
        if r.quantity not in rc.QUANTITIES or r.level not in level_inst:
            continue
        unit = rc.UNITS.get(r.unit)
        if r.value is None or not math.isfinite(r.value) or unit is None:
            continue
        name, derivation = rc.QUANTITIES[r.quantity]
        groups[(r.level, r.structure, r.side)].append(
            hd.sr.Measurement(name=rc.fresh(name), value=r.value, unit=rc.fresh(unit),
                derivation=rc.fresh(derivation) if derivation is not None else None)
        )
    evidence_uids: dict[str, SourceInstance] = {}
    spine, spine_measured = _spine_groups(run, maps, evidence_uids)
    if not groups and not spine_measured:  # a not-measurable vertebra alone makes no SR
        raise DicomExportError(
            f"{N.FEATURES_LONG_CSV} holds no measured value on a found level"
            + (f" and {N.SPINE_JSON} no measured vertebra" if spine else "")
            + ": no SR to write", run.folder.path)

    frames = seg_frame_index(seg) if seg is not None else {}
    seg_numbers = _segment_numbers(seg) if seg is not None else {}
    imaging: list[Any] = []
    for (level, structure, side), measurements in sorted(groups.items()):
        inst = level_inst[level].instance
        evidence_uids[inst.sop_uid] = inst
        tracking = hd.sr.TrackingIdentifier(
            uid=hd.UID(), identifier=f"{level} {structure} {side}".strip())
        site = hd.sr.FindingSite(anatomic_location=rc.structure_code(structure),
                                 laterality=rc.fresh(rc.SIDES[side]) if side in rc.SIDES else None)
        level_eval = hd.sr.QualitativeEvaluation(name=rc.fresh(rc.LEVEL_CONCEPT),
                                                 value=rc.level_code(level))
        label = structure if not side or side == "both" else f"{structure}_{side}"
        seg_no = seg_numbers.get(label) if side != "both" else None
        frame = frames.get((seg_no, inst.sop_uid)) if seg_no is not None else None
        if seg is not None and seg_no is not None and frame is not None:
            ref = hd.sr.ReferencedSegmentationFrame(
                sop_class_uid=str(seg.SOPClassUID),
                sop_instance_uid=str(seg.SOPInstanceUID),
                frame_number=frame,
                segment_number=seg_no,
                source_image=hd.sr.SourceImageForSegmentation(
                    inst.sop_class, inst.sop_uid),
            )
            _frame_reference_only(ref)
            imaging.append(hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
                tracking_identifier=tracking, referenced_segment=ref,
                finding_type=rc.structure_code(structure), finding_sites=[site],
                measurements=measurements, qualitative_evaluations=[level_eval],
            ))
        else:
            imaging.append(hd.sr.MeasurementsAndQualitativeEvaluations(
                tracking_identifier=tracking, finding_type=rc.structure_code(structure),
                finding_sites=[site], measurements=measurements,
                qualitative_evaluations=[level_eval],
                source_images=[hd.sr.SourceImageForMeasurementGroup(
                    inst.sop_class, inst.sop_uid)],
            ))
    imaging.extend(spine)
    observer = hd.sr.ObserverContext(
        observer_type=rc.fresh(rc.DEVICE_OBSERVER),
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=hd.UID(), name="rcsa", manufacturer_name="rcsa",
            model_name=f"rcsa {__version__}"),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=rc.fresh(rc.PROCEDURE),
        imaging_measurements=imaging,
    )
    evidence: list[Dataset] = [ev.header for ev in evidence_uids.values()]
    if seg is not None:
        evidence.append(seg)
    if not evidence:
        evidence = [instances[0].header]
    sr = hd.sr.Comprehensive3DSR(
        evidence=evidence,
        content=report,
        series_instance_uid=hd.UID(),
        series_number=SR_SERIES_NUMBER,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="rcsa",
        is_complete=True,
        series_description="rcsa measurements",
    )
    _declare_private_scheme(sr)
    return sr


def export_dicom(
    case_out_dir: str | Path, source_dir: str | Path, out_dir: str | Path,
    *, series_uid: str | None = None, overwrite: bool = False,
) -> dict[str, Path]:
    """Write ``seg.dcm`` and ``sr.dcm`` for a run into ``out_dir`` (no server involved), each
    atomically (:func:`rcsa.outputs.atomic_write`: a refused write is an
    :class:`~rcsa.errors.OutputWriteError`)."""
    from rcsa.errors import OutputExistsError

    out = Path(out_dir)
    targets = {"seg": out / "seg.dcm", "sr": out / "sr.dcm"}
    existing = [p for p in targets.values() if p.exists()]
    if existing and not overwrite:
        raise OutputExistsError("exists; pass --overwrite to replace it", existing[0])
    seg = build_seg(case_out_dir, source_dir, series_uid=series_uid)
    sr = build_sr(case_out_dir, source_dir, seg, series_uid=series_uid)
    def saver(ds: Dataset) -> Callable[[Path], None]:
        def save(tmp: Path) -> None:
            ds.save_as(tmp, enforce_file_format=True)
        return save

    atomic_write(targets["seg"], saver(seg), overwrite=True, create_parent=True)
    atomic_write(targets["sr"], saver(sr), overwrite=True, create_parent=True)
    return targets
