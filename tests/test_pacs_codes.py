"""rcsa.pacs.codes: every coded concept of the SEG and SR has a source, the PS3.16 ones are in
the context groups named, and the SEG / SR of the abdomen sample carry exactly the concepts
below for each muscle, side and level, read back with highdicom / pydicom, and pass
dciodvfy (dicom3tools) without an error."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import highdicom as hd
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sr._cid_dict import cid_concepts
from pydicom.sr._concepts_dict import concepts

from _pacs_series import cement_spine, write_abdomen_series
from rcsa.pacs import build_seg, build_sr
from rcsa.pacs import codes as rc
from rcsa.segment.classes import RCSA_CLASSES

Triple = tuple[str, str, str]  # (code value, coding scheme designator, code meaning)

# The expected concepts, written out (not read from rcsa.pacs.codes) so that a changed code
# fails here; the sources are in docs/pacs.md.
STRUCTURE: dict[str, Triple] = {
    "psoas": ("276167002", "SCT", "Psoas muscle"),
    "multifidus": ("7:508", "MDC", "Musculi multifidii"),
    "erector_spinae": ("44947003", "SCT", "Erector spinae muscle"),
    "gluteus_maximus": ("181674001", "SCT", "Gluteus maximus muscle"),
    "gluteus_medius": ("78333006", "SCT", "Gluteus medius muscle"),
    "vertebral_body": ("3572006", "SCT", "Vertebral body"),
}
SIDE: dict[str, Triple] = {
    "left": ("7771000", "SCT", "Left"),
    "right": ("24028007", "SCT", "Right"),
    "both": ("51440002", "SCT", "Bilateral"),
}
LEVEL: dict[str, Triple] = {
    "T12": ("23215003", "SCT", "T12 vertebra"),
    "L1": ("66794005", "SCT", "L1 vertebra"),
    "L2": ("14293000", "SCT", "L2 vertebra"),
    "L3": ("36470004", "SCT", "L3 vertebra"),
    "L4": ("11994002", "SCT", "L4 vertebra"),
    "L5": ("49668003", "SCT", "L5 vertebra"),
    "S1": ("65985001", "SCT", "S1 vertebra"),
    "L4_L5_disc": ("243923001", "SCT", "Level of L4/L5 intervertebral disc"),
    "sij_lower": ("level-sij_lower", "99RCSA", "rcsa level sij_lower"),
    "femoral_head_top": ("level-femoral_head_top", "99RCSA", "rcsa level femoral_head_top"),
    "iliac_crest_top": ("level-iliac_crest_top", "99RCSA", "rcsa level iliac_crest_top"),
}
LEVEL_NAME: Triple = ("level", "99RCSA", "rcsa measurement level (axial slice)")
CATEGORY: Triple = ("91723000", "SCT", "Anatomical Structure")
MEAN: Triple = ("373098007", "SCT", "Mean")
#: quantity name concept -> (unit concepts allowed, derivation)
MEASUREMENT: dict[Triple, tuple[set[Triple], Triple | None]] = {
    ("42798000", "SCT", "Area"): ({("mm2", "UCUM", "square millimeter")}, None),
    ("112031", "DCM", "Attenuation Coefficient"): ({("[hnsf'U]", "UCUM", "Hounsfield unit")},
                                                   MEAN),
    ("fat_pct", "99RCSA", "Fat infiltration: share of pixels in the fat HU range"):
        ({("%", "UCUM", "Percent")}, None),
    ("rcsa", "99RCSA", "Relative cross-sectional area (CSA / normaliser)"):
        ({("{ratio}", "UCUM", "ratio"), ("mm2/m2", "UCUM", "square millimeter per square meter")},
         None),
}
# the spine groups (spine.json): "spine <vertebra>" and "spine T11-L5"
VERTEBRA: dict[str, Triple] = {
    "T11": ("12989004", "SCT", "T11 vertebra"),
    **{k: LEVEL[k] for k in ("T12", "L1", "L2", "L3", "L4", "L5")},
}
THORACOLUMBAR: Triple = ("1217256009", "SCT", "Thoraco-lumbar spine")
HEIGHT: Triple = ("121207", "DCM", "Height")
HEIGHT_SITE: dict[str, Triple] = {
    "anterior": ("255549009", "SCT", "Anterior"),
    "middle": ("26216008", "SCT", "Central"),
    "posterior": ("255551008", "SCT", "Posterior"),
}
MM: Triple = ("mm", "UCUM", "mm")
HU: Triple = ("[hnsf'U]", "UCUM", "Hounsfield unit")
SD: Triple = ("386136009", "SCT", "Standard Deviation")
TRABECULAR_ROI: Triple = ("trabecular_roi", "99RCSA",
                          "Trabecular ROI clear of cortex, endplates, basivertebral vein")
HEIGHT_REDUCTION: Triple = ("height_reduction_pct", "99RCSA",
                            "Vertebral body height reduction (largest of the Genant types)")
GENANT_GRADE: Triple = ("genant_grade", "99RCSA",
                        "Genant semi-quantitative vertebral fracture grade")
GENANT_GRADES: dict[int, Triple] = {
    0: ("genant-0", "99RCSA", "Genant grade 0 (normal)"),
    1: ("genant-1", "99RCSA", "Genant grade 1 (mild)"),
    2: ("genant-2", "99RCSA", "Genant grade 2 (moderate)"),
    3: ("genant-3", "99RCSA", "Genant grade 3 (severe)"),
}
MORPHOLOGY: Triple = ("genant_morphology", "99RCSA", "Vertebral deformity type (Genant)")
MORPHOLOGIES: dict[str, Triple] = {
    "normal": ("morphology-normal", "99RCSA", "No deformity"),
    "wedge": ("morphology-wedge", "99RCSA", "Wedge deformity"),
    "biconcave": ("morphology-biconcave", "99RCSA", "Biconcave deformity"),
    "crush": ("morphology-crush", "99RCSA", "Crush deformity"),
}
STATUS: Triple = ("spine_status", "99RCSA", "rcsa vertebra status")
STATUSES: dict[str, Triple] = {
    "measured": ("status-measured", "99RCSA", "measured"),
    "not_measurable": ("status-not_measurable", "99RCSA", "not measurable"),
}
#: TEXT evaluations of the vertebra groups / the scan group
VERTEBRA_TEXTS: set[Triple] = {
    ("spine_reason", "99RCSA", "Reason the vertebra was not measured or not graded"),
    ("spine_grading_note", "99RCSA", "Note on the grading"),
    ("attenuation_band", "99RCSA", "Attenuation band (Pickhardt 2013), not a diagnosis"),
}
SCAN_TEXTS: set[Triple] = {
    ("fractured_vertebrae", "99RCSA", "Fractured vertebrae"),
    ("spine_not_graded", "99RCSA", "Vertebrae in the scan not graded, with the reason"),
    ("attenuation_band", "99RCSA", "Attenuation band (Pickhardt 2013), not a diagnosis"),
    ("spine_warning", "99RCSA", "rcsa spine warning"),
}
FRACTURED_N: Triple = ("fractured_vertebrae_n", "99RCSA",
                       "Fractured vertebrae (Genant grade >= 1) of those graded")
VERTEBRAE_UNIT: Triple = ("{vertebrae}", "UCUM", "vertebrae")

#: what dciodvfy (dicom3tools 1.00~20220618) may still say: the private scheme is not one of
#: PS3.16's coding schemes (docs/pacs.md, "Validation")
ALLOWED_WARNINGS = {
    "Warning - Unrecognized defined term <99RCSA> for value 1 of attribute "
    "<Coding Scheme Designator>",
}


def _t(code: Any) -> Triple:
    return (str(code.CodeValue if hasattr(code, "CodeValue") else code.value),
            str(code.CodingSchemeDesignator if hasattr(code, "CodingSchemeDesignator")
                else code.scheme_designator),
            str(code.CodeMeaning if hasattr(code, "CodeMeaning") else code.meaning))


# ------------------------------------------------------------------------------------------
# the code table
# ------------------------------------------------------------------------------------------
def _all_codes() -> list[hd.sr.CodedConcept]:
    out = [v for v in vars(rc).values() if isinstance(v, hd.sr.CodedConcept)]
    for table in (rc.STRUCTURES, rc.SIDES, rc.LEVELS, rc.UNITS, rc.VERTEBRAE, rc.HEIGHT_SITES,
                  rc.GENANT_GRADES, rc.MORPHOLOGIES, rc.STATUSES):
        out += list(table.values())
    for name, derivation in rc.QUANTITIES.values():
        out += [name] + ([derivation] if derivation is not None else [])
    return out


def test_every_code_has_a_source_and_every_source_a_code() -> None:
    used = {(c.scheme_designator, c.value) for c in _all_codes()}
    assert used == set(rc.SOURCES)


def test_tables_hold_the_expected_concepts() -> None:
    assert {k: _t(v) for k, v in rc.STRUCTURES.items()} == STRUCTURE
    assert {k: _t(v) for k, v in rc.SIDES.items()} == SIDE
    assert {k: _t(v) for k, v in rc.LEVELS.items()} == LEVEL
    assert {k: _t(rc.level_code(k)) for k in LEVEL} == LEVEL
    assert _t(rc.LEVEL_CONCEPT) == LEVEL_NAME
    assert _t(rc.ANATOMICAL_STRUCTURE) == CATEGORY
    for name, derivation in rc.QUANTITIES.values():
        _units, want_derivation = MEASUREMENT[_t(name)]
        assert (None if derivation is None else _t(derivation)) == want_derivation
    assert {_t(u) for u in rc.UNITS.values()} == set().union(*(u for u, _ in MEASUREMENT.values()))
    # the spine
    assert {k: _t(v) for k, v in rc.VERTEBRAE.items()} == VERTEBRA
    assert {k: _t(rc.vertebra_code(k)) for k in VERTEBRA} == VERTEBRA
    assert _t(rc.VERTEBRAL_BODY) == STRUCTURE["vertebral_body"]
    assert _t(rc.THORACOLUMBAR_SPINE) == THORACOLUMBAR
    assert _t(rc.HEIGHT) == HEIGHT and _t(rc.MM) == MM and _t(rc.SD) == SD
    assert {k: _t(v) for k, v in rc.HEIGHT_SITES.items()} == HEIGHT_SITE
    assert _t(rc.TRABECULAR_ROI) == TRABECULAR_ROI
    assert _t(rc.HEIGHT_REDUCTION) == HEIGHT_REDUCTION
    assert _t(rc.GENANT_GRADE) == GENANT_GRADE and _t(rc.GENANT_MORPHOLOGY) == MORPHOLOGY
    assert {k: _t(v) for k, v in rc.GENANT_GRADES.items()} == GENANT_GRADES
    assert {k: _t(v) for k, v in rc.MORPHOLOGIES.items()} == MORPHOLOGIES
    assert _t(rc.SPINE_STATUS) == STATUS
    assert {k: _t(v) for k, v in rc.STATUSES.items()} == STATUSES
    assert {_t(c) for c in (rc.SPINE_REASON, rc.GRADING_NOTE, rc.ATTENUATION_BAND)} == \
        VERTEBRA_TEXTS
    assert {_t(c) for c in (rc.FRACTURED_LIST, rc.NOT_GRADED, rc.ATTENUATION_BAND,
                            rc.SPINE_WARNING)} == SCAN_TEXTS
    assert _t(rc.FRACTURED_N) == FRACTURED_N and _t(rc.VERTEBRAE_UNIT) == VERTEBRAE_UNIT
    assert _t(rc.vertebra_code("T10")) == ("vertebra-T10", "99RCSA", "rcsa vertebra T10")
    # names nobody coded: private, never a borrowed standard code
    assert _t(rc.structure_code("tag_7")) == ("structure-tag_7", "99RCSA", "rcsa structure tag_7")
    assert _t(rc.level_code("C7")) == ("level-C7", "99RCSA", "rcsa level C7")


def _cids(source: str) -> list[int]:
    return [int(n) for n in re.findall(r"CID (\d+)", source)]


def test_ps316_codes_are_in_the_context_groups_named() -> None:
    """Each "PS3.16 CID n" source: the code is in CID n of pydicom's PS3.16 tables, and its
    meaning there is the one written."""
    checked = 0
    for (scheme, value), source in rc.SOURCES.items():
        if not source.startswith("PS3.16"):
            continue
        code = next(c for c in _all_codes() if (c.scheme_designator, c.value) == (scheme, value))
        keywords = [kw for kw, entry in concepts[scheme].items() if value in entry]
        assert keywords, (scheme, value)
        assert code.meaning in {concepts[scheme][kw][value][0] for kw in keywords}
        assert _cids(source), source
        for cid in _cids(source):
            in_cid = set(cid_concepts[cid].get(scheme, []))
            assert in_cid & set(keywords), f"{scheme} {value} is not in CID {cid}"
            checked += 1
    assert checked >= 35


def test_rejected_codes_mean_something_else_in_ps316() -> None:
    """SCT 64038003 (given for "Psoas major muscle" by some mappings) is an intercostal lymph
    node in PS3.16; SCT 5709001 (rcsa's former multifidus code) is in no published source."""
    assert concepts["SCT"]["IntercostalLymphNode"] == {
        "64038003": ("intercostal lymph node", [7600, 8134])}
    values = {c.value for c in _all_codes()}
    assert "64038003" not in values and "5709001" not in values


_D = [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
      [2, 3, 4, 0, 1, 7, 8, 9, 5, 6], [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
      [4, 0, 1, 2, 3, 9, 5, 6, 7, 8], [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
      [6, 5, 9, 8, 7, 1, 0, 4, 3, 2], [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
      [8, 7, 6, 5, 9, 3, 2, 1, 0, 4], [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]]
_P = [list(range(10))]  # Verhoeff position permutations: powers of (1 5 7 6 2 8 3 0 9 4)
for _ in range(7):
    _P.append([(1, 5, 7, 6, 2, 8, 3, 0, 9, 4)[x] for x in _P[-1]])


def _sctid_ok(value: str) -> bool:
    """A SNOMED CT concept identifier: digits, partition 00 (a concept), Verhoeff check."""
    if not value.isdigit() or not 6 <= len(value) <= 18 or value[-3:-1] != "00":
        return False
    c = 0
    for i, ch in enumerate(reversed(value)):
        c = _D[c][_P[i % 8][int(ch)]]
    return c == 0


def test_sct_codes_are_wellformed_concept_ids() -> None:
    assert _sctid_ok("36470004") and not _sctid_ok("36470005")  # the check itself
    # and every core (partition 00) SNOMED CT concept id of PS3.16 passes it
    core = [v for entry in concepts["SCT"].values() for v in entry if v[-3:-1] == "00"]
    assert len(core) > 10000 and all(_sctid_ok(v) for v in core)
    bad = [c.value for c in _all_codes() if c.scheme_designator == "SCT"
           and not _sctid_ok(c.value)]
    assert bad == []


def test_docs_list_every_code_with_its_source() -> None:
    doc = (Path(__file__).parents[1] / "docs" / "pacs.md").read_text(encoding="utf-8")
    table = doc.split("\n### Codes\n", 1)[1].split("\n### ", 1)[0]
    for (scheme, value), source in rc.SOURCES.items():
        row = next((line for line in table.splitlines()
                    if line.startswith("|") and f"{scheme} `{value}`" in line), None)
        assert row is not None, f"{scheme} {value} is not in the Codes table of docs/pacs.md"
        assert source in row, f"{scheme} {value}: source {source!r} missing in its row"


def test_private_scheme_is_declared_only_where_used() -> None:
    from rcsa.pacs.dicom_export import _declare_private_scheme

    plain = Dataset()
    plain.ConceptNameCodeSequence = [Dataset()]
    plain.ConceptNameCodeSequence[0].CodingSchemeDesignator = "SCT"
    _declare_private_scheme(plain)
    assert "CodingSchemeIdentificationSequence" not in plain
    nested = Dataset()
    nested.ContentSequence = [Dataset()]
    nested.ContentSequence[0].ConceptCodeSequence = [rc.structure_code("tag_7")]
    _declare_private_scheme(nested)
    [item] = nested.CodingSchemeIdentificationSequence
    assert item.CodingSchemeDesignator == "99RCSA"


# ------------------------------------------------------------------------------------------
# the SEG and SR of the abdomen sample
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from rcsa.pipeline import run_scan, write_scan_outputs

    base = tmp_path_factory.mktemp("codes")
    series, run = base / "series", base / "run"
    write_abdomen_series(series)
    write_scan_outputs(run_scan(series), run)
    seg = build_seg(run, series)
    sr = build_sr(run, series, seg)
    out = {"seg": base / "seg.dcm", "sr": base / "sr.dcm"}
    seg.save_as(out["seg"], enforce_file_format=True)
    sr.save_as(out["sr"], enforce_file_format=True)
    return out


def test_seg_segments_carry_the_exact_concepts(exported: dict[str, Path]) -> None:
    seg = hd.seg.segread(exported["seg"])
    labels = set()
    for s in seg.SegmentSequence:
        label = str(s.SegmentLabel)
        labels.add(label)
        c = RCSA_CLASSES.classes[RCSA_CLASSES.id_of(label)]
        structure = c.muscle or label
        assert _t(s.SegmentedPropertyCategoryCodeSequence[0]) == CATEGORY, label
        [prop] = s.SegmentedPropertyTypeCodeSequence
        assert _t(prop) == STRUCTURE[structure], label
        modifiers = [_t(m) for m in prop.get("SegmentedPropertyTypeModifierCodeSequence", [])]
        assert modifiers == ([SIDE[c.side]] if c.side else []), label
    # every rcsa class (each muscle, both sides, the vertebral body) is in the sample's SEG
    assert labels == set(RCSA_CLASSES.names) - {"background"}
    assert "CodingSchemeIdentificationSequence" not in seg  # no private code in it


def test_sr_groups_carry_the_exact_concepts(exported: dict[str, Path]) -> None:
    raw = pydicom.dcmread(exported["sr"])
    [scheme] = raw.CodingSchemeIdentificationSequence
    assert scheme.CodingSchemeDesignator == "99RCSA"
    sr = hd.sr.srread(exported["sr"])
    groups = (list(sr.content.get_planar_roi_measurement_groups())
              + list(sr.content.get_image_measurement_groups()))
    seen: set[tuple[str, str, str]] = set()
    spine = [g for g in groups if str(g.tracking_identifier).startswith("spine ")]
    check_spine_groups_carry_the_exact_concepts(spine)
    for g in groups:
        if g in spine:
            continue
        level, structure, *rest = str(g.tracking_identifier).split()
        side = rest[0] if rest else ""
        seen.add((level, structure, side))
        assert _t(g.finding_type) == STRUCTURE[structure]
        [site] = g.finding_sites
        assert _t(site.value) == STRUCTURE[structure]
        assert (None if site.laterality is None else _t(site.laterality)) == (
            SIDE[side] if side else None)
        [evaluation] = g.get_qualitative_evaluations()
        assert _t(evaluation.name) == LEVEL_NAME
        assert _t(evaluation.value) == LEVEL[level]
        names = set()
        for m in g.get_measurements():
            units, derivation = MEASUREMENT[_t(m.name)]
            names.add(_t(m.name))
            assert _t(m.unit) in units
            assert (None if m.derivation is None else _t(m.derivation)) == derivation
        assert names, str(g.tracking_identifier)
    muscles = {s for s in STRUCTURE if s != "vertebral_body"}
    assert {s for _, s, _ in seen} == muscles | {"vertebral_body"}
    assert {side for _, _, side in seen} == {"left", "right", "both", ""}
    # the sample's measured levels (the other levels' codes: test_tables_hold_...)
    assert {lv for lv, _, _ in seen} == {"L3", "L4", "L5", "sij_lower", "femoral_head_top"}


def _group_texts(g: Any) -> list[Triple]:
    return [_t(item.name) for item in g[0].ContentSequence
            if item.ValueType == "TEXT" and item.RelationshipType == "CONTAINS"]


def check_spine_groups_carry_the_exact_concepts(groups: list[Any]) -> None:
    """Every item of the spine groups: finding type and site, the measurements' names, units,
    derivations, methods and sites, the coded evaluations' names and values, the TEXT names."""
    assert groups, "no spine group: the test would prove nothing"
    vertebrae = set()
    for g in groups:
        _, what = str(g.tracking_identifier).split()
        [site] = g.finding_sites
        texts = _group_texts(g)
        if what == "T11-L5":
            assert _t(g.finding_type) == THORACOLUMBAR and _t(site.value) == THORACOLUMBAR
            assert g.get_qualitative_evaluations() == []
            assert set(texts) <= SCAN_TEXTS
            for m in g.get_measurements():
                if _t(m.name) == FRACTURED_N:
                    assert _t(m.unit) == VERTEBRAE_UNIT and m.derivation is None
                else:
                    assert _t(m.name) == MEASUREMENT_ATTENUATION
                    assert (_t(m.unit), _t(m.derivation), _t(m.method)) == (HU, MEAN,
                                                                            TRABECULAR_ROI)
                    [msite] = m.finding_sites
                    assert _t(msite.value) in VERTEBRA.values()
            continue
        vertebrae.add(what)
        assert _t(g.finding_type) == STRUCTURE["vertebral_body"]
        assert _t(site.value) == VERTEBRA[what]
        assert set(texts) <= VERTEBRA_TEXTS
        evaluations = {_t(e.name): _t(e.value) for e in g.get_qualitative_evaluations()}
        assert evaluations[STATUS] in STATUSES.values()
        assert set(evaluations) <= {STATUS, GENANT_GRADE, MORPHOLOGY}
        if GENANT_GRADE in evaluations:
            assert evaluations[GENANT_GRADE] in GENANT_GRADES.values()
            assert evaluations[MORPHOLOGY] in MORPHOLOGIES.values()
        sites = []
        for m in g.get_measurements():
            name = _t(m.name)
            if name == HEIGHT:
                assert _t(m.unit) == MM and m.derivation is None
                [msite] = m.finding_sites
                assert _t(msite.value) == STRUCTURE["vertebral_body"]
                sites.append(_t(msite.topographical_modifier))
            elif name == HEIGHT_REDUCTION:
                assert _t(m.unit) == ("%", "UCUM", "Percent")
            else:
                assert name == MEASUREMENT_ATTENUATION
                assert _t(m.unit) == HU and _t(m.method) == TRABECULAR_ROI
                assert _t(m.derivation) in {MEAN, SD}
        if evaluations[STATUS] == STATUSES["measured"]:
            assert sorted(sites) == sorted(HEIGHT_SITE.values())
        else:
            assert sites == []
    assert len(vertebrae) >= 4


MEASUREMENT_ATTENUATION: Triple = ("112031", "DCM", "Attenuation Coefficient")


def _dciodvfy(path: Path) -> tuple[str, list[str], list[str]]:
    exe = shutil.which("dciodvfy")
    if exe is None:
        pytest.skip("dciodvfy (Debian package dicom3tools) is not installed; .ci/run installs it")
    res = subprocess.run([exe, str(path)], capture_output=True, text=True, timeout=120)
    lines = [ln for ln in (res.stdout + res.stderr).splitlines() if ln.strip()]
    return (lines[0] if lines else "", [ln for ln in lines if ln.startswith("Error")],
            [ln for ln in lines if ln.startswith("Warning")])


@pytest.fixture(scope="module")
def cement_sr(exported: dict[str, Path]) -> Path:
    """The sample's SR rebuilt with L2 not measurable (cement), L3 not graded, a warning."""
    base = exported["sr"].parent
    run = base / "run_cement"
    shutil.copytree(base / "run", run)
    doc = cement_spine(base / "run")
    (run / "spine.json").write_text(json.dumps(doc))
    out = base / "sr_cement.dcm"
    build_sr(run, base / "series").save_as(out, enforce_file_format=True)
    return out


def test_cement_sr_carries_the_exact_concepts_and_validates(cement_sr: Path) -> None:
    sr = hd.sr.srread(cement_sr)
    spine = [g for g in sr.content.get_image_measurement_groups()
             if str(g.tracking_identifier).startswith("spine ")]
    check_spine_groups_carry_the_exact_concepts(spine)
    l2 = next(g for g in spine if str(g.tracking_identifier) == "spine L2")
    assert {_t(e.value) for e in l2.get_qualitative_evaluations()} == {
        STATUSES["not_measurable"]}
    first, errors, warnings = _dciodvfy(cement_sr)
    assert first == "Comprehensive3DSR"
    assert errors == []
    assert set(warnings) <= ALLOWED_WARNINGS, set(warnings) - ALLOWED_WARNINGS


@pytest.mark.parametrize(("obj", "iod"), [("seg", "Segmentation"), ("sr", "Comprehensive3DSR")])
def test_dciodvfy_reports_no_error(exported: dict[str, Path], obj: str, iod: str) -> None:
    first, errors, warnings = _dciodvfy(exported[obj])
    assert first == iod  # the validator recognised the object and checked it as that IOD
    assert errors == []
    assert set(warnings) <= ALLOWED_WARNINGS, set(warnings) - ALLOWED_WARNINGS
