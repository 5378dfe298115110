"""Codes used in rcsa's DICOM SEG and SR, each with the published source it was checked against
(``SOURCES``; the same table is in ``docs/pacs.md``).

Order of preference: a code of a DICOM PS3.16 context group (CID) whose meaning there is the
structure or quantity named; otherwise a SNOMED CT (``SCT``) code from a published mapping;
UCUM for units; rcsa's private coding scheme ``99RCSA`` (the ``99`` prefix marks a private
scheme, PS3.16 section 8.2) only where no published concept has the meaning. "PS3.16 CID n"
sources are checked by ``tests/test_pacs_codes.py`` against the PS3.16 tables that pydicom
ships (``pydicom.sr._cid_dict``, DICOM 2024c).
"""

from __future__ import annotations

from highdicom.sr.coding import CodedConcept
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from rcsa.anatomy import ANATOMY, AnatomyTable

PRIVATE_SCHEME = "99RCSA"
#: Coding Scheme Identification Sequence item for the private scheme (PS3.3 C.12.1.1.3).
PRIVATE_SCHEME_NAME = "rcsa private concepts"
PRIVATE_SCHEME_ORGANIZATION = "rcsa project (see docs/pacs.md)"

# sources ---------------------------------------------------------------------------------
#: wasserth/TotalSegmentator resources/totalsegmentator_snomed_mapping.csv, the SNOMED CT
#: mapping of TotalSegmentator's own DICOM SEG export (same codes in SlicerTotalSegmentator's
#: totalsegmentator_snomed_mapping.csv).
TOTALSEGMENTATOR = "TotalSegmentator SEG mapping"
PRIVATE = "private (99RCSA), no published concept"

#: (coding scheme designator, code value) -> where the code and its meaning were checked.
SOURCES: dict[tuple[str, str], str] = {}


def _code(value: str, scheme: str, meaning: str, source: str) -> CodedConcept:
    prior = SOURCES.get((scheme, value))
    if prior is not None and prior != source:
        raise ValueError(f"{scheme} {value}: two sources ({prior!r}, {source!r})")
    SOURCES[(scheme, value)] = source
    return CodedConcept(value, scheme, meaning)


def _std(code: Code, source: str) -> CodedConcept:
    """A concept from pydicom's PS3.16 dictionary (value, scheme and meaning as published)."""
    return _code(code.value, code.scheme_designator, code.meaning, source)


def _sct(value: str, meaning: str, source: str) -> CodedConcept:
    return _code(value, "SCT", meaning, source)


def private(value: str, meaning: str) -> CodedConcept:
    """A ``99RCSA`` concept (not registered in ``SOURCES``: names may be built at run time)."""
    return CodedConcept(value, PRIVATE_SCHEME, meaning)


def _private(value: str, meaning: str) -> CodedConcept:
    SOURCES[(PRIVATE_SCHEME, value)] = PRIVATE
    return private(value, meaning)


# anatomy (SEG Segmented Property Type, SR finding type / finding site) --------------------
def structure_concepts(table: AnatomyTable) -> dict[str, CodedConcept]:
    """rcsa structure name -> anatomical concept, from the anatomy table's ``concept`` of each
    row (the codes and their sources are declared and commented there)."""
    return {s.name: CodedConcept(s.concept.value, s.concept.scheme, s.concept.meaning)
            for s in table.structures}


#: rcsa structure name -> anatomical concept (:data:`rcsa.anatomy.ANATOMY`).
STRUCTURES: dict[str, CodedConcept] = {
    s.name: _code(s.concept.value, s.concept.scheme, s.concept.meaning, s.concept.source)
    for s in ANATOMY.structures
}

#: Segmented Property Category of every segment.
ANATOMICAL_STRUCTURE = _std(codes.SCT.AnatomicalStructure, "PS3.16 CID 7150")
LEFT = _std(codes.SCT.Left, "PS3.16 CID 244")
RIGHT = _std(codes.SCT.Right, "PS3.16 CID 244")
#: Left and right pooled (rcsa side ``both``; SR finding site laterality only).
BILATERAL = _std(codes.SCT.Bilateral, "PS3.16 CID 244")
SIDES: dict[str, CodedConcept] = {"left": LEFT, "right": RIGHT, "both": BILATERAL}

# levels (SR qualitative evaluation "rcsa measurement level") ------------------------------
#: Measurement level -> concept: the vertebra for vertebral levels, the disc level for
#: L4_L5_disc, private for the pelvic levels defined by the edge of a landmark (PS3.16
#: CID 1005 has the landmarks, e.g. SCT 29850006 "Iliac Crest", but not their top / lower edge).
LEVELS: dict[str, CodedConcept] = {
    "T12": _std(codes.SCT.T12Vertebra, "PS3.16 CID 7151, CID 7602"),
    "L1": _std(codes.SCT.L1Vertebra, "PS3.16 CID 7151, CID 7602"),
    "L2": _std(codes.SCT.L2Vertebra, "PS3.16 CID 7151, CID 7602"),
    "L3": _std(codes.SCT.L3Vertebra, "PS3.16 CID 7151, CID 7602"),
    "L4": _std(codes.SCT.L4Vertebra, "PS3.16 CID 7151, CID 7602"),
    "L5": _std(codes.SCT.L5Vertebra, "PS3.16 CID 7151, CID 7602"),
    "S1": _sct("65985001", "S1 vertebra", TOTALSEGMENTATOR),
    "L4_L5_disc": _std(codes.SCT.LevelOfL4L5IntervertebralDisc, "PS3.16 CID 1003"),
    "sij_lower": _private("level-sij_lower", "rcsa level sij_lower"),
    "femoral_head_top": _private("level-femoral_head_top", "rcsa level femoral_head_top"),
    "iliac_crest_top": _private("level-iliac_crest_top", "rcsa level iliac_crest_top"),
}
LEVEL_CONCEPT = _private("level", "rcsa measurement level (axial slice)")


def fresh(c: CodedConcept) -> CodedConcept:
    """A new copy: a concept placed in a dataset may be modified there (e.g. a laterality
    modifier added), so shared module constants are never placed directly."""
    return CodedConcept(c.value, c.scheme_designator, c.meaning)


def level_code(level: str) -> CodedConcept:
    c = LEVELS.get(level)
    return fresh(c) if c is not None else private(f"level-{level}", f"rcsa level {level}")


def structure_code(name: str) -> CodedConcept:
    c = STRUCTURES.get(name)
    return fresh(c) if c is not None else private(f"structure-{name}",
                                                   f"rcsa structure {name}")


# quantities (SR TID 300 measurements) ------------------------------------------------------
AREA = _std(codes.SCT.Area, "PS3.16 CID 7469")
ATTENUATION = _std(codes.DCM.AttenuationCoefficient, "PS3.16 CID 7469")
MEAN = _std(codes.SCT.Mean, "PS3.16 CID 7464")  # derivation of ATTENUATION
# Not DCM 129100 "Fat fraction" (CID 7469): that is the fat share of each voxel's signal; rcsa's
# fat % is the share of the muscle's pixels whose HU lies in the fat range.
FAT_PCT = _private("fat_pct", "Fat infiltration: share of pixels in the fat HU range")
RCSA = _private("rcsa", "Relative cross-sectional area (CSA / normaliser)")

MM2 = _std(codes.UCUM.SquareMillimeter, "PS3.16 CID 7181")
HU = _std(codes.UCUM.HounsfieldUnit, "PS3.16 CID 7181")
PERCENT = _std(codes.UCUM.Percent, "PS3.16 CID 7181")
RATIO = _std(codes.UCUM.Ratio, "PS3.16 CID 7181")
# a UCUM expression (mm2 divided by m2); CID 7181 lists no area-per-area unit
MM2_PER_M2 = _code("mm2/m2", "UCUM", "square millimeter per square meter", "UCUM")

#: rcsa unit string (features_long.csv ``unit``) -> UCUM.
UNITS: dict[str, CodedConcept] = {
    "mm2": MM2, "HU": HU, "%": PERCENT, "ratio": RATIO, "mm2/m2": MM2_PER_M2,
}

#: Quantities written to the SR: name concept and derivation (or None).
QUANTITIES: dict[str, tuple[CodedConcept, CodedConcept | None]] = {
    "csa_mm2": (AREA, None),
    "mean_hu": (ATTENUATION, MEAN),
    "fat_pct": (FAT_PCT, None),
    "rcsa": (RCSA, None),
}

# provenance ----------------------------------------------------------------------------------
#: SEG Segment Algorithm Identification family.
ALGORITHM_FAMILY = _std(codes.DCM.ArtificialIntelligence, "PS3.16 CID 7162")
#: SR observer type (TID 1002) and procedure reported (TID 1500).
DEVICE_OBSERVER = _std(codes.DCM.Device, "PS3.16 CID 270")
PROCEDURE = _std(codes.LN.CTUnspecifiedBodyRegion, "PS3.16 CID 100")

# the spine (rcsa.spine: spine.json; SR groups "spine <vertebra>" and "spine T11-L5") ---------
#: Vertebra (SR finding site of a vertebra group): the vertebra concepts of PS3.16 CID 7602
#: "Vertebral Anatomic Structure" (T12-L5 are the level codes above).
VERTEBRAE: dict[str, CodedConcept] = {
    "T11": _std(codes.SCT.T11Vertebra, "PS3.16 CID 7151, CID 7602"),
    **{v: LEVELS[v] for v in ("T12", "L1", "L2", "L3", "L4", "L5")},
}
#: Finding type of a vertebra group: the vertebral body (the anatomy table's code, above).
VERTEBRAL_BODY = STRUCTURES["vertebral_body"]
#: Finding type and site of the scan-level spine group: the range analysed, T11-L5.
THORACOLUMBAR_SPINE = _std(codes.SCT.ThoracoLumbarSpine, "PS3.16 CID 4030, CID 7151")

HEIGHT = _std(codes.DCM.Height, "PS3.16 CID 7469, CID 7470")
#: Which of the three body heights: the Topographical Modifier of the measurement's finding
#: site (TID 300, PS3.16 CID 2 "Anatomic Modifier"); the middle height is the central one.
HEIGHT_SITES: dict[str, CodedConcept] = {
    "anterior": _std(codes.SCT.Anterior, "PS3.16 CID 2"),
    "middle": _std(codes.SCT.Central, "PS3.16 CID 2"),
    "posterior": _std(codes.SCT.Posterior, "PS3.16 CID 2"),
}
MM = _std(codes.UCUM.Millimeter, "PS3.16 CID 7181")
SD = _std(codes.SCT.StandardDeviation, "PS3.16 CID 7464")  # derivation of ATTENUATION
#: Measurement Method of the trabecular attenuation (not the level slice's whole-body mean HU).
TRABECULAR_ROI = _private(
    "trabecular_roi", "Trabecular ROI clear of cortex, endplates, basivertebral vein")
HEIGHT_REDUCTION = _private(
    "height_reduction_pct", "Vertebral body height reduction (largest of the Genant types)")
#: Genant semi-quantitative grade: a coded qualitative evaluation (an ordinal category of the
#: reduction above, not a quantity; PS3.16 has no Genant scale, see docs/pacs.md).
GENANT_GRADE = _private("genant_grade", "Genant semi-quantitative vertebral fracture grade")
GENANT_GRADES: dict[int, CodedConcept] = {
    0: _private("genant-0", "Genant grade 0 (normal)"),
    1: _private("genant-1", "Genant grade 1 (mild)"),
    2: _private("genant-2", "Genant grade 2 (moderate)"),
    3: _private("genant-3", "Genant grade 3 (severe)"),
}
GENANT_MORPHOLOGY = _private("genant_morphology", "Vertebral deformity type (Genant)")
MORPHOLOGIES: dict[str, CodedConcept] = {
    "normal": _private("morphology-normal", "No deformity"),
    "wedge": _private("morphology-wedge", "Wedge deformity"),
    "biconcave": _private("morphology-biconcave", "Biconcave deformity"),
    "crush": _private("morphology-crush", "Crush deformity"),
}
SPINE_STATUS = _private("spine_status", "rcsa vertebra status")
#: Vertebrae written as a group (``ambiguous`` / ``missing`` ones are not: a vertebra that
#: cannot be named safely gets no coded finding site; it is listed in the scan group).
STATUSES: dict[str, CodedConcept] = {
    "measured": _private("status-measured", "measured"),
    "not_measurable": _private("status-not_measurable", "not measurable"),
}
#: TEXT qualitative evaluations (TID 1501 allows TEXT beside CODE evaluations).
SPINE_REASON = _private("spine_reason", "Reason the vertebra was not measured or not graded")
GRADING_NOTE = _private("spine_grading_note", "Note on the grading")
ATTENUATION_BAND = _private(
    "attenuation_band", "Attenuation band (Pickhardt 2013), not a diagnosis")
FRACTURED_N = _private(
    "fractured_vertebrae_n", "Fractured vertebrae (Genant grade >= 1) of those graded")
FRACTURED_LIST = _private("fractured_vertebrae", "Fractured vertebrae")
NOT_GRADED = _private("spine_not_graded", "Vertebrae in the scan not graded, with the reason")
SPINE_WARNING = _private("spine_warning", "rcsa spine warning")
#: a UCUM annotation (a count of vertebrae); CID 7181 lists no count unit
VERTEBRAE_UNIT = _code("{vertebrae}", "UCUM", "vertebrae", "UCUM")


def vertebra_code(name: str) -> CodedConcept:
    c = VERTEBRAE.get(name)
    return fresh(c) if c is not None else private(f"vertebra-{name}", f"rcsa vertebra {name}")
