"""Patient and study identifiers of a loaded DICOM series, read only when a caller asks.

:class:`~rcsa.io.volume.SeriesIds` keeps the identifiers the loader needs (patient ID, UIDs,
accession number) and hides them in ``repr``. A report that is explicitly asked to show
protected health information (``rcsa screen --show-phi``) also needs the patient's name, birth
date, sex and the study date; :func:`patient_identifiers` reads them from the header of the
first file of the chosen series (pixel data is not read). Only this module (inside ``io``)
knows where they live in DICOM.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydicom
from pydicom.errors import InvalidDicomError

from rcsa.io.volume import CTVolume

#: Output key -> DICOM keyword, in display order.
IDENTIFIER_KEYWORDS: dict[str, str] = {
    "patient_name": "PatientName",
    "patient_id": "PatientID",
    "birth_date": "PatientBirthDate",
    "sex": "PatientSex",
    "study_date": "StudyDate",
    "accession_number": "AccessionNumber",
    "study_description": "StudyDescription",
    "institution": "InstitutionName",
}


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, pydicom.valuerep.PersonName):
        # "DOE^JANE" -> "DOE, JANE" (family name first, as DICOM stores it)
        parts = [p for p in (value.family_name, value.given_name, value.middle_name) if p]
        text = ", ".join(parts[:2]) + (" " + " ".join(parts[2:]) if parts[2:] else "")
        return text or (str(value).strip() or None)
    text = str(value).strip()
    return text or None


def patient_identifiers(ct: CTVolume) -> dict[str, str | None]:
    """Identifiers of ``ct``'s series: name, ID, birth date, sex, study date, accession, ...

    Every key of :data:`IDENTIFIER_KEYWORDS` is present (``None`` when absent). A volume that
    was not loaded from DICOM (NIfTI, NRRD, MHA carry no identifiers) gives all ``None``; the
    UIDs and accession number of :class:`SeriesIds` fill in what the header lacks.
    """
    out: dict[str, str | None] = dict.fromkeys(IDENTIFIER_KEYWORDS)
    if ct.source.format == "dicom" and ct.source.files:
        try:
            ds = pydicom.dcmread(Path(ct.source.files[0]), stop_before_pixels=True, force=True)
        except (OSError, InvalidDicomError):
            ds = None
        if ds is not None:
            for key, kw in IDENTIFIER_KEYWORDS.items():
                out[key] = _text(ds.get(kw))
    ids = ct.ids.to_dict()
    out["patient_id"] = out["patient_id"] or ids["patient_id"]
    out["accession_number"] = out["accession_number"] or ids["accession_number"]
    out["study_instance_uid"] = ids["study_instance_uid"]
    out["series_instance_uid"] = ids["series_instance_uid"]
    return out
