"""STOW-RS of an rcsa run's SEG and SR, and the case list from a DICOMweb query."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset

from rcsa.cases import Case, RemoteSeries
from rcsa.errors import DicomExportError, EmptySegmentationError, PacsServerError
from rcsa.pacs.client import call, make_client
from rcsa.pacs.config import PacsSettings, load_settings
from rcsa.pacs.dicom_export import build_seg, build_sr
from rcsa.pacs.query import QueryParams, case_id_for, query_series


def cases_from_query(
    url: str | None, params: QueryParams, *, config: Path | None = None
) -> list[Case]:
    """One :class:`Case` per CT series the query finds (``remote`` set, ``case_id`` from the
    study / series UIDs; see :func:`rcsa.pacs.query.case_id_for`)."""
    settings = load_settings(url, config)
    records = query_series(settings.url, params, settings=settings)
    return [
        Case(
            case_id=case_id_for(r.study_uid, r.series_uid),
            remote=RemoteSeries(settings.url, r.study_uid, r.series_uid, r.n_instances),
        )
        for r in records
        if r.modality.upper() == "CT"
    ]


def store(settings: PacsSettings, datasets: list[Dataset]) -> list[str]:
    """STOW-RS ``datasets``; returns the SOPInstanceUIDs the server confirmed.

    Raises :class:`PacsServerError` when the server reports a failure or confirms fewer
    instances than were sent."""
    client = make_client(settings)
    answer = call(settings.url, "STOW-RS store", lambda: client.store_instances(datasets))
    failed = [str(i.get("ReferencedSOPInstanceUID", "?")) +
              (f" (reason {i.FailureReason})" if "FailureReason" in i else "")
              for i in answer.get("FailedSOPSequence", []) or []]
    if failed:
        raise PacsServerError(f"STOW-RS store: the server refused {', '.join(failed)}",
                              settings.url)
    stored = [str(i.ReferencedSOPInstanceUID)
              for i in answer.get("ReferencedSOPSequence", []) or []]
    sent = [str(ds.SOPInstanceUID) for ds in datasets]
    if sorted(stored) != sorted(sent):
        raise PacsServerError(
            f"STOW-RS store: the server confirmed {len(stored)} of {len(sent)} instance(s)",
            settings.url)
    return stored


def push_results(
    case: Case,
    case_out_dir: Path,
    source_dir: Path,
    *,
    url: str | None = None,
    config: Path | None = None,
) -> dict[str, Any]:
    """Build the SEG and SR of one case's ``rcsa run`` folder and store them (STOW-RS).

    The server is ``url`` or, for a remote case, the one it came from. Returns
    ``{"pushed": True, "url", "study_uid", "seg_sop_instance_uid", "seg_series_uid",
    "sr_sop_instance_uid", "sr_series_uid", "skipped": None, "sr_skipped": None}``. When the
    run segmented nothing, nothing is pushed: ``{"pushed": False, "skipped": "<reason>", ...}``
    with the UIDs ``None`` (a SEG without segments is never made). When it segmented but
    measured nothing on a found level (e.g. only T12 in the scan), the SEG alone is pushed and
    ``sr_skipped`` gives the reason.
    """
    target = url or (case.remote.url if case.remote is not None else None)
    settings = load_settings(target, config)
    series_uid = case.series_uid or (case.remote.series_uid if case.remote else None)
    result: dict[str, Any] = {
        "pushed": False, "url": settings.url, "study_uid": None,
        "seg_sop_instance_uid": None, "seg_series_uid": None,
        "sr_sop_instance_uid": None, "sr_series_uid": None, "skipped": None,
        "sr_skipped": None,
    }
    try:
        seg = build_seg(case_out_dir, source_dir, series_uid=series_uid)
    except EmptySegmentationError as exc:
        result["skipped"] = exc.reason
        return result
    datasets: list[Dataset] = [seg]
    try:
        sr: Dataset | None = build_sr(case_out_dir, source_dir, seg, series_uid=series_uid)
    except DicomExportError as exc:  # segmented, but no measured value (e.g. only T12 found)
        sr = None
        result["sr_skipped"] = exc.reason
    if sr is not None:
        datasets.append(sr)
    store(settings, datasets)
    result.update(
        pushed=True, study_uid=str(seg.StudyInstanceUID),
        seg_sop_instance_uid=str(seg.SOPInstanceUID), seg_series_uid=str(seg.SeriesInstanceUID),
    )
    if sr is not None:
        result.update(sr_sop_instance_uid=str(sr.SOPInstanceUID),
                      sr_series_uid=str(sr.SeriesInstanceUID))
    return result
