"""Codes used in rcsa's DICOM SEG and SR (see ``docs/pacs.md`` for the sources).

SNOMED CT (``SCT``) where a concept exists, DICOM (``DCM``) and UCUM for units; quantities
without a standard concept use rcsa's private coding scheme ``99RCSA`` (documented in
``docs/pacs.md``; the ``99`` prefix marks a private scheme in DICOM PS3.16).
"""

from __future__ import annotations

from highdicom.sr.coding import CodedConcept
from pydicom.sr.codedict import codes

PRIVATE_SCHEME = "99RCSA"


def _sct(value: str, meaning: str) -> CodedConcept:
    return CodedConcept(value, "SCT", meaning)


def private(value: str, meaning: str) -> CodedConcept:
    return CodedConcept(value, PRIVATE_SCHEME, meaning)


#: rcsa structure name -> SNOMED CT anatomical concept.
STRUCTURES: dict[str, CodedConcept] = {
    # "Psoas muscle" (SCTID 276167002, the SNOMED cross-reference of UBERON:0008450)
    "psoas": _sct("276167002", "Psoas muscle"),
    # "Multifidus muscles" (SCTID 5709001)
    "multifidus": _sct("5709001", "Multifidus muscles"),
    # DICOM CID 6116 "Muscular Anatomy"
    "erector_spinae": _sct("44947003", "Erector spinae muscle"),
    # as used by TotalSegmentator's DICOM SEG export
    "gluteus_maximus": _sct("181674001", "Gluteus maximus muscle"),
    "gluteus_medius": _sct("78333006", "Gluteus medius muscle"),
    "vertebral_body": _sct("3572006", "Vertebral body"),
}

ANATOMICAL_STRUCTURE = CodedConcept.from_code(codes.SCT.AnatomicalStructure)  # CID 7150
TISSUE = CodedConcept.from_code(codes.SCT.Tissue)
LEFT = CodedConcept.from_code(codes.SCT.Left)
RIGHT = CodedConcept.from_code(codes.SCT.Right)
SIDES: dict[str, CodedConcept] = {"left": LEFT, "right": RIGHT}

#: Measurement level -> concept: SNOMED CT vertebra for vertebral levels, private otherwise.
LEVELS: dict[str, CodedConcept] = {
    "T12": _sct("23215003", "T12 vertebra"),
    "L1": _sct("66794005", "L1 vertebra"),
    "L2": _sct("14293000", "L2 vertebra"),
    "L3": _sct("36470004", "L3 vertebra"),
    "L4": _sct("11994002", "L4 vertebra"),
    "L5": _sct("49668003", "L5 vertebra"),
    "S1": _sct("65985001", "S1 vertebra"),
}
LEVEL_CONCEPT = private("level", "rcsa measurement level (axial slice)")


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


# quantities -----------------------------------------------------------------------------
AREA = CodedConcept.from_code(codes.SCT.Area)  # SCT 42798000
ATTENUATION = CodedConcept.from_code(codes.DCM.AttenuationCoefficient)  # DCM 112031
MEAN = CodedConcept.from_code(codes.SCT.Mean)  # SCT 373098007, derivation
FAT_PCT = private("fat_pct", "Fat infiltration: share of pixels in the fat HU range")
RCSA = private("rcsa", "Relative cross-sectional area (CSA / normaliser)")

MM2 = CodedConcept("mm2", "UCUM", "square millimeter")
HU = CodedConcept.from_code(codes.UCUM.HounsfieldUnit)  # [hnsf'U]
PERCENT = CodedConcept.from_code(codes.UCUM.Percent)
RATIO = CodedConcept.from_code(codes.UCUM.Ratio)  # {ratio}
MM2_PER_M2 = CodedConcept("mm2/m2", "UCUM", "square millimeter per square meter")

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

ALGORITHM_FAMILY = CodedConcept.from_code(codes.DCM.ArtificialIntelligence)
