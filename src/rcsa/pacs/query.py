"""QIDO-RS series search: query parameters, their DICOM encoding, and the series found."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from rcsa.errors import PacsQueryError, PacsServerError
from rcsa.pacs.client import call, make_client
from rcsa.pacs.config import PacsSettings, load_settings

#: Attributes asked for in every series search (``includefield``).
FIELDS: tuple[str, ...] = (
    "StudyInstanceUID", "SeriesInstanceUID", "PatientID", "StudyDate", "StudyDescription",
    "AccessionNumber", "Modality", "BodyPartExamined", "SeriesNumber", "SeriesDescription",
    "NumberOfSeriesRelatedInstances",
)

_DATE_FORMATS = ("%Y-%m-%d", "%Y%m%d")
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


def _parse_date(text: str, what: str) -> date:
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text.strip(), fmt).date()
        except ValueError:
            continue
    raise PacsQueryError(f"{what}: {text!r} is not a date (use YYYY-MM-DD or YYYYMMDD)")


def parse_date_range(text: str) -> tuple[date | None, date | None]:
    """``2024-03-01`` (one day), ``2024-01-01..2024-03-31``, ``2024-01-01..`` (from),
    ``..2024-03-31`` (until), or DICOM style ``20240101-20240331`` / ``20240101-``."""
    t = text.strip()
    if not t:
        raise PacsQueryError("empty date range")
    if ".." in t:
        lo, _, hi = t.partition("..")
    elif re.fullmatch(r"\d{8}-\d{0,8}|-\d{8}", t):
        lo, _, hi = t.partition("-")
    else:
        d = _parse_date(t, "date")
        return d, d
    d_lo = _parse_date(lo, "range start") if lo.strip() else None
    d_hi = _parse_date(hi, "range end") if hi.strip() else None
    if d_lo is None and d_hi is None:
        raise PacsQueryError(f"date range {text!r} has neither a start nor an end")
    if d_lo is not None and d_hi is not None and d_lo > d_hi:
        raise PacsQueryError(f"date range {text!r} ends before it starts")
    return d_lo, d_hi


@dataclass(frozen=True)
class QueryParams:
    """What to search for. Empty fields do not filter. ``modality`` defaults to CT;
    ``body_part`` and ``patient_id`` may use DICOM wildcards (``*``, ``?``)."""

    date_from: date | None = None
    date_to: date | None = None
    modality: str | None = "CT"
    body_part: str | None = None
    patient_id: str | None = None
    study_uid: str | None = None
    series_uid: str | None = None
    accession_number: str | None = None
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise PacsQueryError(
                f"date range {self.date_from.isoformat()}..{self.date_to.isoformat()} ends "
                "before it starts"
            )
        for name in ("study_uid", "series_uid"):
            v = getattr(self, name)
            if v is not None and not _UID.match(v):
                raise PacsQueryError(f"{name}: {v!r} is not a DICOM UID (digits and dots)")
        if self.limit is not None and self.limit < 1:
            raise PacsQueryError(f"limit must be at least 1, got {self.limit}")

    @classmethod
    def from_options(
        cls,
        date_range: str | None = None,
        modality: str | None = "CT",
        body_part: str | None = None,
        patient_id: str | None = None,
        study_uid: str | None = None,
        series_uid: str | None = None,
        accession_number: str | None = None,
        limit: int | None = None,
    ) -> QueryParams:
        """Build from command-line strings (``date_range`` as in :func:`parse_date_range`)."""
        lo, hi = parse_date_range(date_range) if date_range else (None, None)
        return cls(lo, hi, (modality or None) and modality.upper(), body_part or None,
                   patient_id or None, study_uid or None, series_uid or None,
                   accession_number or None, limit)

    def search_filters(self) -> dict[str, str]:
        """QIDO-RS match parameters (DICOM attribute keyword -> value)."""
        f: dict[str, str] = {}
        if self.date_from or self.date_to:
            lo = self.date_from.strftime("%Y%m%d") if self.date_from else ""
            hi = self.date_to.strftime("%Y%m%d") if self.date_to else ""
            f["StudyDate"] = lo if lo == hi else f"{lo}-{hi}"
        if self.modality:
            f["Modality"] = self.modality
        if self.body_part:
            f["BodyPartExamined"] = self.body_part
        if self.patient_id:
            f["PatientID"] = self.patient_id
        if self.study_uid:
            f["StudyInstanceUID"] = self.study_uid
        if self.series_uid:
            f["SeriesInstanceUID"] = self.series_uid
        if self.accession_number:
            f["AccessionNumber"] = self.accession_number
        return f


@dataclass(frozen=True)
class SeriesRecord:
    """One series found by a query (identifiers included: print only what the user asked)."""

    study_uid: str
    series_uid: str
    patient_id: str = ""
    study_date: str = ""
    study_description: str = ""
    accession_number: str = ""
    modality: str = ""
    body_part: str = ""
    series_number: int | None = None
    series_description: str = ""
    n_instances: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "study_uid": self.study_uid,
            "series_uid": self.series_uid,
            "patient_id": self.patient_id,
            "study_date": self.study_date,
            "study_description": self.study_description,
            "accession_number": self.accession_number,
            "modality": self.modality,
            "body_part": self.body_part,
            "series_number": self.series_number,
            "series_description": self.series_description,
            "n_instances": self.n_instances,
        }


def _value(item: dict[str, Any], tag: str) -> Any:
    values = item.get(tag, {}).get("Value")
    if not values:
        return None
    v = values[0]
    if isinstance(v, dict):  # PersonName
        return v.get("Alphabetic")
    return v


def _record(item: dict[str, Any]) -> SeriesRecord:
    def s(tag: str) -> str:
        v = _value(item, tag)
        return "" if v is None else str(v)

    def i(tag: str) -> int | None:
        v = _value(item, tag)
        try:
            return int(v) if v is not None else None
        except (TypeError, ValueError):
            return None

    return SeriesRecord(
        study_uid=s("0020000D"), series_uid=s("0020000E"), patient_id=s("00100020"),
        study_date=s("00080020"), study_description=s("00081030"),
        accession_number=s("00080050"), modality=s("00080060"), body_part=s("00180015"),
        series_number=i("00200011"), series_description=s("0008103E"),
        n_instances=i("00201209"),
    )


def query_series(
    url: str | None, params: QueryParams, *, config: Path | None = None,
    settings: PacsSettings | None = None,
) -> list[SeriesRecord]:
    """QIDO-RS ``/series`` search; results sorted by study date, study, series number."""
    st = settings or load_settings(url, config)
    client = make_client(st)
    items = call(st.url, "QIDO-RS series search", lambda: client.search_for_series(
        fields=list(FIELDS), search_filters=dict(params.search_filters()),
        limit=params.limit, get_remaining=params.limit is None,
    ))
    if not isinstance(items, list):
        raise PacsServerError("QIDO-RS series search: answer is not a JSON list", st.url)
    records = [_record(it) for it in items if isinstance(it, dict)]
    records = [r for r in records if r.study_uid and r.series_uid]
    # a server may ignore a filter it does not support: apply the ones we can check here
    if params.modality:
        records = [r for r in records if r.modality.upper() == params.modality.upper()]
    if params.study_uid:
        records = [r for r in records if r.study_uid == params.study_uid]
    if params.series_uid:
        records = [r for r in records if r.series_uid == params.series_uid]
    records.sort(key=lambda r: (r.study_date, r.study_uid, r.series_number or 0, r.series_uid))
    return records[: params.limit] if params.limit else records


def case_id_for(study_uid: str, series_uid: str) -> str:
    """A folder-safe, stable case id: the SeriesInstanceUID (digits and dots, at most 64
    characters) plus a short hash of study and series, so that a series UID reused in another
    study (invalid DICOM, but seen) still gives a distinct id."""
    digest = hashlib.sha256(f"{study_uid}/{series_uid}".encode()).hexdigest()[:8]
    base = series_uid if _UID.match(series_uid) and len(series_uid) <= 64 else "series"
    return f"{base}_{digest}"
