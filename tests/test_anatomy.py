"""The anatomy table (:mod:`rcsa.anatomy`) and what is derived from it.

1. Golden: every derived product equals the literal values it had before the table existed
   (captured by running the code of commit 2c7459d, where each was written out in its own
   module).
2. Derivation: a table with one extra, hypothetical row (built here, never shipped) yields
   that structure in the class map, the measurement list and the measured rows, the codes,
   the report rows and the known nomogram columns.
3. Validation: a bad table is refused on construction.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from rcsa.anatomy import (
    ANATOMY,
    RCSA_CLASSES,
    AnatomyTable,
    AnatomyTableError,
    Concept,
    Envelope,
    Structure,
)
from rcsa.config import load_config, table_levels
from rcsa.io.volume import CTVolume, Geometry, SourceInfo
from rcsa.levels.types import LEVEL_NAMES, Level, LevelMap
from rcsa.measure import LevelLabels, measure
from rcsa.measure import table as mtable
from rcsa.measure.plausibility import plausibility_from, plausibility_table
from rcsa.nomogram import fit
from rcsa.pacs import codes as rc
from rcsa.report import content
from rcsa.segment import postprocess, prepare, qc, synth

_RULE = " (rule-derived split of TotalSegmentator 'autochthon', see docs/segment.md)"

# ------------------------------------------------------------------------------------------
# 1. golden: today's literal values
# ------------------------------------------------------------------------------------------
CLASSES = [
    (0, "background", None, None, ""),
    (1, "multifidus_left", "multifidus", "left", "lumbar multifidus" + _RULE),
    (2, "multifidus_right", "multifidus", "right", "lumbar multifidus" + _RULE),
    (3, "erector_spinae_left", "erector_spinae", "left", "longissimus + iliocostalis" + _RULE),
    (4, "erector_spinae_right", "erector_spinae", "right", "longissimus + iliocostalis" + _RULE),
    (5, "psoas_left", "psoas", "left", "psoas major at lumbar levels"),
    (6, "psoas_right", "psoas", "right", "psoas major at lumbar levels"),
    (7, "gluteus_maximus_left", "gluteus_maximus", "left", ""),
    (8, "gluteus_maximus_right", "gluteus_maximus", "right", ""),
    (9, "gluteus_medius_left", "gluteus_medius", "left", ""),
    (10, "gluteus_medius_right", "gluteus_medius", "right", ""),
    (11, "vertebral_body", None, None, "vertebral body (no posterior elements)"),
]
MUSCLES = ("multifidus", "erector_spinae", "psoas", "gluteus_maximus", "gluteus_medius")
LUMBAR = ["L3", "L4", "L5"]
#: defaults.toml's [levels.muscles] / [levels.available], in their file order
CONFIG_LEVELS = {
    "muscles": {"multifidus": "L3", "erector_spinae": "L3", "psoas": "L3",
                "gluteus_medius": "sij_lower", "gluteus_maximus": "femoral_head_top"},
    "available": {"multifidus": LUMBAR, "erector_spinae": LUMBAR, "psoas": LUMBAR,
                  "gluteus_medius": ["sij_lower"], "gluteus_maximus": ["femoral_head_top"]},
    "reference_vertebra": "L4",
}
#: plausibility.toml's ranges: (structure, quantity, low, high, unit, levels, sides, sources)
RANGES = {
    ("psoas", "csa_mm2", 150.0, 4000.0, "mm2", ("L3", "L4", "L5"), ("left", "right"),
     ("lawlor2022", "demarco2022")),
    ("multifidus", "csa_mm2", 100.0, 2500.0, "mm2", ("L3", "L4", "L5"), ("left", "right"),
     ("danneels2000", "fortin2016")),
    ("erector_spinae", "csa_mm2", 200.0, 4500.0, "mm2", ("L3", "L4", "L5"), ("left", "right"),
     ("fortin2016",)),
    ("gluteus_maximus", "csa_mm2", 600.0, 9000.0, "mm2", ("femoral_head_top",),
     ("left", "right"), ("koda1991", "homma2019")),
    ("gluteus_medius", "csa_mm2", 300.0, 6000.0, "mm2", ("sij_lower",), ("left", "right"),
     ("homma2019", "inoue2024")),
    ("*", "mean_hu", -50.0, 110.0, "HU", None, ("left", "right"), ("rollins2020", "lawlor2022")),
    ("*", "fat_pct", None, 50.0, "%", None, ("left", "right"), ("goutallier1994", "marcon2016")),
    ("*", "asymmetry_pct", -50.0, 50.0, "%", None, ("both",), ("hides1994",)),
    ("vertebral_body", "csa_mm2", 600.0, 3000.0, "mm2", ("T12", "L1", "L2", "L3", "L4", "L5"),
     ("",), ("mosekilde1990",)),
}
#: sha256 of the envelopes' "typical" texts (sorted by structure, quantity) and the
#: references, as plausibility.toml had them
ENVELOPE_TEXTS_SHA256 = "100dee422ae2c1666280354d6dd187a5cb42716bcd242fd998ab20ce4a63002d"
CODES = {
    "psoas": ("276167002", "SCT", "Psoas muscle", "UBERON:0008450 SNOMED CT cross-reference"),
    "multifidus": ("7:508", "MDC", "Musculi multifidii", "PS3.16 CID 3031"),
    "erector_spinae": ("44947003", "SCT", "Erector spinae muscle", "PS3.16 CID 6116, CID 7151"),
    "gluteus_maximus": ("181674001", "SCT", "Gluteus maximus muscle",
                        "TotalSegmentator SEG mapping"),
    "gluteus_medius": ("78333006", "SCT", "Gluteus medius muscle", "TotalSegmentator SEG mapping"),
    "vertebral_body": ("3572006", "SCT", "Vertebral body", "TotalSegmentator SEG mapping"),
}
LABELS = {"multifidus": "Multifidus", "erector_spinae": "Erector spinae", "psoas": "Psoas",
          "gluteus_maximus": "Gluteus maximus", "gluteus_medius": "Gluteus medius",
          "vertebral_body": "Vertebral body"}
KNOWN_COLUMNS = {
    "femoral_head_top_gluteus_maximus_both_rcsa": ("Gluteus maximus rCSA", "ratio"),
    "sij_lower_gluteus_medius_both_rcsa": ("Gluteus medius rCSA", "ratio"),
    "fractured_vertebrae_n": ("Fractured vertebrae", "count"),
    "cement_volume_ml": ("Cement volume", "mL"),
    "age_years": ("Age", "years"),
    "bmi_kg_m2": ("BMI", "kg/m^2"),
    "bmd_t_score": ("BMD T-score", "SD"),
    "sex": ("Sex", None),
    "diabetes": ("Diabetes", None),
    "procedure": ("Procedure", None),
    "rbp": ("residual back pain", None),
}
GLUTEAL = ("gluteus_maximus", "gluteus_medius")
IMPOSSIBLE_AT_LEVEL = {lv: GLUTEAL for lv in ("T11", "T12", "L1", "L2", "L3")}
MAX_MM_FROM_BODY = {"psoas": 40.0, "multifidus": 70.0, "erector_spinae": 120.0}
EXPECTED_AT_LEVEL = {
    **{lv: ("multifidus", "erector_spinae") for lv in ("T11", "T12")},
    **{lv: ("multifidus", "erector_spinae", "psoas") for lv in ("L1", "L2", "L3", "L4", "L5")},
    **{lv: GLUTEAL for lv in ("sij_lower", "femoral_head_top")},
}
TS_DEFAULT_IDS = {
    "ts_v1": {
        "gluteus_maximus_left": 94, "gluteus_maximus_right": 95,
        "gluteus_medius_left": 96, "gluteus_medius_right": 97,
        "autochthon_left": 100, "autochthon_right": 101,
        "iliopsoas_left": 102, "iliopsoas_right": 103,
        "hip_left": 90, "hip_right": 91, "sacrum": 92,
        "vertebrae_L5": 18, "vertebrae_L4": 19, "vertebrae_L3": 20, "vertebrae_L2": 21,
        "vertebrae_L1": 22, "vertebrae_T12": 23, "vertebrae_T11": 24, "vertebrae_T10": 25,
    },
    "ts_v2": {
        "gluteus_maximus_left": 80, "gluteus_maximus_right": 81,
        "gluteus_medius_left": 82, "gluteus_medius_right": 83,
        "autochthon_left": 86, "autochthon_right": 87,
        "iliopsoas_left": 88, "iliopsoas_right": 89,
        "hip_left": 77, "hip_right": 78, "sacrum": 25, "vertebrae_S1": 26,
        "vertebrae_L5": 27, "vertebrae_L4": 28, "vertebrae_L3": 29, "vertebrae_L2": 30,
        "vertebrae_L1": 31, "vertebrae_T12": 32, "vertebrae_T11": 33, "vertebrae_T10": 34,
    },
}
PALETTE = [
    (0, 0, 0),
    (230, 25, 75), (250, 130, 160),
    (60, 180, 75), (170, 255, 195),
    (0, 130, 200), (120, 200, 255),
    (245, 130, 48), (255, 215, 180),
    (145, 30, 180), (220, 190, 255),
    (255, 225, 25),
]
#: len and sha256 of the wide feature columns of the default configuration
WIDE_COLUMNS = (312, "8cff149b4098b8f68e004ce781ca9d2bc83e5f5f8621ee0a3385084a70c2bde4")


def test_class_map_is_unchanged_and_equals_the_shipped_models_metadata() -> None:
    got = [(c.id, c.name, c.muscle, c.side, c.description) for c in RCSA_CLASSES.classes]
    assert got == CLASSES
    meta = json.loads(resources.files("rcsa").joinpath("models/metadata.json").read_text())
    assert meta["classes"] == RCSA_CLASSES.to_json()
    assert RCSA_CLASSES.lr_permutation() == [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 11]


def test_measurement_list_and_default_levels_are_unchanged() -> None:
    assert mtable.MUSCLES == MUSCLES == ANATOMY.muscles()
    cfg = load_config()
    assert cfg.to_dict()["levels"] == CONFIG_LEVELS
    # the order of the former defaults.toml too (it is the order of run.json and the report)
    assert list(cfg.levels.muscle_levels) == list(CONFIG_LEVELS["muscles"])
    assert list(cfg.levels.available) == list(CONFIG_LEVELS["available"])
    cols = mtable.wide_columns(cfg)
    assert (len(cols), hashlib.sha256("\n".join(cols).encode()).hexdigest()) == WIDE_COLUMNS


def test_plausibility_envelopes_are_unchanged() -> None:
    table = plausibility_table()
    got = {(r.structure, r.quantity, r.low, r.high, r.unit, r.levels, r.sides, r.sources)
           for r in table.ranges}
    assert got == RANGES and len(table.ranges) == len(RANGES)
    texts = json.dumps(sorted([r.structure, r.quantity, r.typical] for r in table.ranges))
    texts += json.dumps(table.references, sort_keys=True)
    assert hashlib.sha256(texts.encode()).hexdigest() == ENVELOPE_TEXTS_SHA256
    # "*" still means every structure but the vertebral body
    assert all(r.not_for == ("vertebral_body",) for r in table.ranges)


def test_codes_report_labels_and_nomogram_columns_are_unchanged() -> None:
    assert {k: (v.value, v.scheme_designator, v.meaning) for k, v in rc.STRUCTURES.items()} == {
        k: v[:3] for k, v in CODES.items()}
    assert {k: rc.SOURCES[(v[1], v[0])] for k, v in CODES.items()} == {
        k: v[3] for k, v in CODES.items()}
    # the two PS3.16 codes are pydicom's (the table writes them out)
    from pydicom.sr.codedict import codes

    for name, code in (("multifidus", codes.MDC.MusculiMultifidii),
                       ("erector_spinae", codes.SCT.ErectorSpinaeMuscle)):
        assert CODES[name][:3] == (code.value, code.scheme_designator, code.meaning)
    assert content.STRUCTURE_LABELS == LABELS
    assert list(content.STRUCTURE_LABELS) == list(LABELS)  # the report's row order
    assert fit.KNOWN_COLUMNS == KNOWN_COLUMNS
    assert list(fit.KNOWN_COLUMNS) == list(KNOWN_COLUMNS)


def test_segmentation_facts_are_unchanged() -> None:
    assert postprocess.IMPOSSIBLE_AT_LEVEL == IMPOSSIBLE_AT_LEVEL
    assert postprocess.GLUTEAL == GLUTEAL
    assert postprocess.MAX_MM_FROM_BODY == MAX_MM_FROM_BODY
    assert postprocess.PARASPINAL == ("multifidus", "erector_spinae")
    assert ANATOMY.expected_at_level() == EXPECTED_AT_LEVEL
    assert prepare._DEFAULT_IDS == TS_DEFAULT_IDS
    # the rules other than copy are written for these structures (rcsa.segment.prepare)
    assert {r: [s.name for s in ANATOMY.prepared_by(r)]
            for r in ("copy", "iliopsoas", "autochthon", "vertebra_body_part", "none")} == {
        "copy": list(GLUTEAL), "iliopsoas": ["psoas"],
        "autochthon": ["multifidus", "erector_spinae"], "vertebra_body_part": ["vertebral_body"],
        "none": []}
    assert prepare._NEEDS_PARTS == (11,)
    assert prepare._FROM_TS == (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
    assert [qc._colour(i) for i in range(12)] == PALETTE
    assert qc._colour(12) == qc._colour(200) == (200, 200, 200)
    assert synth.MUSCLE_IDS == (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)


def test_segment_infer_expected_levels_come_from_the_table() -> None:
    pytest.importorskip("torch")
    from rcsa.segment import infer

    assert infer.EXPECTED_AT_LEVEL == EXPECTED_AT_LEVEL
    assert infer.AUTOCHTHON == ("multifidus", "erector_spinae")


def test_shipped_table_names_known_levels_and_uses_every_reference() -> None:
    cited: set[str] = set()
    for s in ANATOMY.structures:
        levels = (*s.levels, *s.impossible_at_levels, *s.expected_at_levels,
                  *(lv for e in s.envelopes for lv in (e.levels or ())))
        if s.default_level is not None:
            levels += (s.default_level,)
        unknown = [lv for lv in levels if lv not in LEVEL_NAMES and lv != "T11"]
        assert not unknown, (s.name, unknown)  # T11: a level of the segmentation only
        cited |= {r for e in s.envelopes for r in e.sources}
    cited |= {r for e in ANATOMY.muscle_envelopes for r in e.sources}
    assert cited == set(ANATOMY.references)


# ------------------------------------------------------------------------------------------
# 2. derivation: one extra row
# ------------------------------------------------------------------------------------------
def _quadratus() -> Structure:
    """A hypothetical row (quadratus lumborum, ids 12 / 13), never shipped."""
    return Structure(
        "quadratus_lumborum", "muscle", (12, 13), "Quadratus lumborum",
        Concept("structure-test-ql", "99RCSA", "Hypothetical test structure", "test only"),
        description="hypothetical test row",
        default_level="L3", levels=("L3", "L4"),
        envelopes=(Envelope("csa_mm2", "mm2", "test", ("hides1994",), low=10.0, high=20.0,
                            levels=("L3", "L4")),),
        nomogram_predictor=True,
        prepare_rule="copy", totalsegmentator="quadratus_lumborum",
        impossible_at_levels=("femoral_head_top",), max_mm_from_vertebral_body=90.0,
        colours=((1, 2, 3), (4, 5, 6)),
    )


def _extended() -> AnatomyTable:
    rows = list(ANATOMY.structures)
    rows.insert(len(rows) - 1, _quadratus())  # before the vertebral body: report order
    return AnatomyTable(tuple(rows), ANATOMY.muscle_envelopes, ANATOMY.references)


def test_extra_row_yields_classes_levels_codes_envelopes_and_columns() -> None:
    ext = _extended()
    cmap = ext.class_map()
    assert cmap.names[:12] == RCSA_CLASSES.names  # existing ids untouched
    assert cmap.names[12:] == ("quadratus_lumborum_left", "quadratus_lumborum_right")
    assert cmap.classes[12].muscle == "quadratus_lumborum" and cmap.classes[12].side == "left"
    assert cmap.mirror_of(12) == 13 and cmap.ids_of_muscle("quadratus_lumborum") == [12, 13]
    assert ext.muscles() == (*MUSCLES, "quadratus_lumborum")
    levels = table_levels(ext)
    assert levels["muscles"]["quadratus_lumborum"] == "L3"
    assert levels["available"]["quadratus_lumborum"] == ["L3", "L4"]
    assert list(levels["muscles"]).index("quadratus_lumborum") < list(
        levels["muscles"]).index("gluteus_medius")  # LEVEL_NAMES order of default level
    concept = rc.structure_concepts(ext)["quadratus_lumborum"]
    assert (concept.value, concept.scheme_designator) == ("structure-test-ql", "99RCSA")
    assert ("99RCSA", "structure-test-ql") not in rc.SOURCES  # the shipped codes untouched
    assert fit.known_columns(ext)["L3_quadratus_lumborum_both_rcsa"] == (
        "Quadratus lumborum rCSA", "ratio")
    assert list(ext.display_names())[-2:] == ["quadratus_lumborum", "vertebral_body"]
    plaus = plausibility_from(ext)
    own = plaus.find("L4", "quadratus_lumborum", "left", "csa_mm2")
    assert own is not None and (own.low, own.high) == (10.0, 20.0)
    hu = plaus.find("L4", "quadratus_lumborum", "right", "mean_hu")
    assert hu is not None and hu.structure == "*"
    assert ext.impossible_at_level()["femoral_head_top"] == ("quadratus_lumborum",)
    assert ext.max_mm_from_vertebral_body()["quadratus_lumborum"] == 90.0
    assert ext.colours()[13] == (4, 5, 6)


def _scan(cmap_table: AnatomyTable) -> tuple[CTVolume, LevelMap, dict[str, LevelLabels]]:
    """One 1 mm slice at L3: a vertebral body and a square of every muscle side of the
    extended table's quadratus lumborum and psoas."""
    cmap = cmap_table.class_map()
    n = 200
    hu = np.full((1, n, n), -100, np.int16)
    lab = np.zeros((n, n), np.uint8)
    lab[80:120, 80:120] = cmap.id_of("vertebral_body")
    hu[0, 80:120, 80:120] = 200
    for name, row, col in (("psoas_right", 100, 50), ("psoas_left", 100, 150),
                           ("quadratus_lumborum_right", 150, 40),
                           ("quadratus_lumborum_left", 150, 160)):
        lab[row - 10:row + 10, col - 10:col + 10] = cmap.id_of(name)
        hu[0, row - 10:row + 10, col - 10:col + 10] = 40
    geo = Geometry((n, n, 1), np.array([1.0, 1.0, 3.0]), np.zeros(3), np.eye(3))
    ct = CTVolume(hu, geo, SourceInfo("synthetic", "synthetic"))
    lm = LevelMap({"L3": Level("L3", "found", 0, 0.0, "manual", 1.0)}, n_slices=1)
    return ct, lm, {"L3": LevelLabels("L3", 0, lab, cmap, "synthetic")}


def _config_file(tmp_path: Path, ext: AnatomyTable) -> Path:
    lv = table_levels(ext)
    text = '[levels]\nreference_vertebra = "L4"\n[levels.muscles]\n'
    text += "".join(f'{m} = "{v}"\n' for m, v in lv["muscles"].items())
    text += "[levels.available]\n"
    text += "".join(f"{m} = {json.dumps(v)}\n" for m, v in lv["available"].items())
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_extra_row_is_measured_and_reported(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """With the table's derived lists in place (as a new shipped row would put them), the
    new muscle is measured per side and level, is in the wide columns, and gets its report
    row, labelled and ordered by the table."""
    ext = _extended()
    monkeypatch.setattr(mtable, "MUSCLES", ext.muscles())
    monkeypatch.setattr(content, "STRUCTURE_LABELS", ext.display_names())
    cfg = load_config(_config_file(tmp_path, ext))
    assert ("quadratus_lumborum", "L4") in mtable.targets(cfg)
    assert "L3_quadratus_lumborum_left_csa_mm2" in mtable.wide_columns(cfg)
    ct, lm, labels = _scan(ext)
    m = measure(ct, lm, labels, cfg, scan_id="ql")
    assert m.value("L3", "quadratus_lumborum", "left", "csa_mm2") == pytest.approx(400.0)
    assert m.value("L3", "quadratus_lumborum", "both", "rcsa") == pytest.approx(800.0 / 1600.0)
    row = m.wide_row()
    assert row["L3_quadratus_lumborum_right_mean_hu"] == pytest.approx(40.0)
    assert row["L4_quadratus_lumborum_reason"]  # L4 not in the level map: a reason, not 0
    run = content.ReportRun(tmp_path, {"config": cfg.to_dict()},
                            {"levels": {"L3": {"z_mm": 0.0}}}, row, m.long_records())
    rows, _envelopes, _refs = content.muscle_table(run)
    l3 = [r for r in rows if r["level"] == "L3"]
    assert list(dict.fromkeys(r["structure"] for r in l3)) == [
        "multifidus", "erector_spinae", "psoas", "quadratus_lumborum", "vertebral_body"]
    ql = next(r for r in l3 if (r["structure"], r["side"]) == ("quadratus_lumborum", "left"))
    assert ql["structure_label"] == "Quadratus lumborum"
    assert ql["csa_mm2"] == pytest.approx(400.0)


def test_extra_copy_row_is_prepared_from_its_totalsegmentator_label(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The TotalSegmentator copy rule of rcsa.segment.prepare takes its structures, names and
    class ids from the table: the extra row's labels become classes 12 / 13."""
    from rcsa.io.volume import LabelVolume

    ext = _extended()
    monkeypatch.setattr(prepare, "ANATOMY", ext)
    geo = Geometry((8, 8, 2), np.array([1.0, 1.0, 3.0]), np.zeros(3), np.eye(3))
    ct = CTVolume(np.zeros((2, 8, 8), np.int16), geo, SourceInfo("synthetic", "synthetic"))
    vox = np.zeros((2, 8, 8), np.uint8)
    vox[:, 1:3, 5:7] = 1  # patient's left = larger i
    vox[:, 1:3, 1:3] = 2
    vox[:, 5:7, 1:3] = 3
    names = {1: "quadratus_lumborum_left", 2: "quadratus_lumborum_right",
             3: "gluteus_medius_right"}
    prep = prepare.convert_labels(ct, LabelVolume(vox, geo, names), "ts_v2")
    out = prep.labels.voxels
    assert (out[:, 1:3, 5:7] == 12).all() and (out[:, 1:3, 1:3] == 13).all()
    assert (out[:, 5:7, 1:3] == RCSA_CLASSES.id_of("gluteus_medius_right")).all()


# ------------------------------------------------------------------------------------------
# 3. validation
# ------------------------------------------------------------------------------------------
def _table_with(row: Structure, *, replace_name: str | None = None) -> AnatomyTable:
    rows = [s for s in ANATOMY.structures if s.name != replace_name]
    if replace_name is None:
        rows.append(row)
    else:
        rows.insert([s.name for s in ANATOMY.structures].index(replace_name), row)
    return AnatomyTable(tuple(rows), ANATOMY.muscle_envelopes, ANATOMY.references)


def test_shipped_table_and_the_extended_one_are_valid() -> None:
    AnatomyTable(ANATOMY.structures, ANATOMY.muscle_envelopes, ANATOMY.references)
    _extended()


@pytest.mark.parametrize(("bad", "match"), [
    (replace(_quadratus(), name="psoas"), "not unique"),
    (replace(_quadratus(), name="psoas_left"), "not unique"),
    (replace(_quadratus(), name="Bad Name"), "lower-case"),
    (replace(_quadratus(), label_ids=(12, 12)), "not unique"),
    (replace(_quadratus(), label_ids=(5, 12)), "not unique"),
    (replace(_quadratus(), label_ids=(12, 14)), "must be 1..13"),
    (replace(_quadratus(), sides=("left",), label_ids=(12,)), "both sides"),
    (replace(_quadratus(), sides=("right", "left")), "both sides"),
    (replace(_quadratus(), label_ids=(12,)), "1 label ids"),
    (replace(_quadratus(), kind="organ"), "kind"),  # type: ignore[arg-type]
    (replace(_quadratus(), default_level="L5"), "not in its levels"),
    (replace(_quadratus(), default_level=None), "not in its levels"),
    (replace(_quadratus(), sides=(), label_ids=(12,), colours=None), "measured per side"),
    (replace(_quadratus(), concept=ANATOMY.structure("psoas").concept), "used twice"),
    (replace(_quadratus(), prepare_rule="guess"), "prepare rule"),
    (replace(_quadratus(), totalsegmentator=None), "TotalSegmentator name"),
    (replace(_quadratus(), totalsegmentator_ids={"ts_v2": (1,)}), "one id per label id"),
    (replace(_quadratus(), colours=((1, 2, 3),)), "one colour"),
    (replace(_quadratus(), envelopes=(
        Envelope("mean_hu", "HU", "t", ("hides1994",), low=110.0, high=-50.0),)),
     "low must be below high"),
    (replace(_quadratus(), envelopes=(
        Envelope("mean_hu", "HU", "t", ("hides1994",), low=40.0, high=40.0),)),
     "low must be below high"),
    (replace(_quadratus(), envelopes=(Envelope("mean_hu", "HU", "t", ("nobody2030",),
                                               low=0.0, high=1.0),)), "sources"),
    (replace(_quadratus(), envelopes=(Envelope("mean_hu", "HU", "t", ("hides1994",)),)),
     "low or high"),
])
def test_bad_rows_are_refused(bad: Structure, match: str) -> None:
    with pytest.raises(AnatomyTableError, match=match):
        _table_with(bad)


def test_a_bone_row_with_levels_and_a_one_sided_replacement_are_refused() -> None:
    vb = ANATOMY.structure("vertebral_body")
    with pytest.raises(AnatomyTableError, match="only muscles"):
        _table_with(replace(vb, levels=("L3",)), replace_name="vertebral_body")
    psoas = ANATOMY.structure("psoas")
    with pytest.raises(AnatomyTableError, match="both sides"):
        _table_with(replace(psoas, sides=("left",), label_ids=(5,)), replace_name="psoas")
    with pytest.raises(AnatomyTableError, match="muscle envelope 0: low must be below"):
        AnatomyTable(ANATOMY.structures, (Envelope("mean_hu", "HU", "t", ("hides1994",),
                                                   low=1.0, high=0.0),), ANATOMY.references)


def test_user_config_still_overrides_the_table_defaults(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text('[levels]\n[levels.muscles]\npsoas = "L4"\n'
                 '[levels.available]\npsoas = ["L4", "L5"]\n')
    cfg = load_config(p)
    assert cfg.levels.muscle_levels == {"psoas": "L4"}
    assert mtable.targets(cfg) == [("psoas", "L4"), ("psoas", "L5")]
