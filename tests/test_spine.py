"""rcsa.spine: heights, Genant grade, attenuation, cement, columns (docs/spine.md)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rcsa.io import load
from rcsa.levels import find_levels
from rcsa.spine import (
    SPINE_VERTEBRAE,
    analyse_spine,
    attenuation_band,
    genant_grade,
    grade_vertebra,
    spine_columns,
)
from rcsa.spine.grade import Heights
from rcsa.spine.qc import write_spine_qc_png
from rcsa.spine.synthetic import compress_vertebra

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_data" / "ct_abdomen_pelvis"


@pytest.fixture(scope="module")
def subject_a():  # type: ignore[no-untyped-def]
    ct = load(SAMPLE / "ct.nii.gz")
    lm = find_levels(ct)
    return ct, lm, analyse_spine(ct, lm)


def test_genant_thresholds() -> None:
    assert [genant_grade(x) for x in (0, 19.9, 20, 24.9, 25, 40, 40.1, 60)] == [
        0, 0, 1, 1, 2, 2, 3, 3]


def test_grade_types_from_heights() -> None:
    normal = Heights(27.0, 25.0, 27.0)
    assert grade_vertebra(normal, [normal, normal]).grade == 0
    wedge = grade_vertebra(Heights(19.0, 23.0, 27.0), [normal, normal])
    assert (wedge.grade, wedge.morphology) == (2, "wedge")
    bic = grade_vertebra(Heights(27.0, 16.0, 27.0), [normal, normal])
    assert bic.morphology == "biconcave" and bic.grade == 2
    crush = grade_vertebra(Heights(15.0, 14.0, 15.0), [normal, normal])
    assert (crush.grade, crush.morphology) == (3, "crush")
    # one neighbour: no crush assessment (size trend not cancelled)
    assert grade_vertebra(Heights(15.0, 14.0, 15.0), [normal]).crush_pct is None


def test_subject_a_heights_against_reference(subject_a) -> None:  # type: ignore[no-untyped-def]
    _, _, res = subject_a
    ref = json.loads((SAMPLE / "vertebra_measurements.json").read_text())["results"]
    diffs = []
    for v in ("L1", "L2", "L3", "L4", "L5"):
        r = res[v]
        assert r.status == "measured", (v, r.reason)
        for q, h in (("anterior", r.height_anterior_mm), ("middle", r.height_middle_mm),
                     ("posterior", r.height_posterior_mm)):
            diffs.append(abs(h - ref[f"vertebrae_{v}_height_{q}_mm"]))  # type: ignore[operator]
    assert float(np.median(diffs)) <= 1.5
    # T12 reaches the top slice: the level is ambiguous -> not graded, never named wrongly
    assert res["T12"].status == "ambiguous" and res["T12"].genant_grade is None
    assert res["T11"].status == "missing"


def test_subject_a_attenuation_and_columns(subject_a) -> None:  # type: ignore[no-untyped-def]
    _, _, res = subject_a
    assert res.bone_attenuation_vertebra == "L1"
    assert res.bone_attenuation_hu is not None and 60 < res.bone_attenuation_hu < 250
    cols = res.to_columns()
    assert list(cols) == spine_columns()
    assert cols["L1_body_height_anterior_mm"] == pytest.approx(res["L1"].height_anterior_mm, 0.01)
    assert cols["T12_spine_status"] == "ambiguous" and cols["T12_genant_grade"] is None
    assert cols["fractured_vertebrae_n"] == len(res.fractured)
    assert "Pickhardt" in cols["bone_attenuation_band"]


def test_attenuation_bands_are_bands() -> None:
    assert attenuation_band(100, "L1").startswith("<= 110 HU")
    assert attenuation_band(130, "L1").startswith("110-160 HU")
    assert "L1 bands applied to L2" in attenuation_band(170, "L2")
    for hu in (50, 130, 200):
        assert "diagnos" not in attenuation_band(hu, "L1")


@pytest.mark.parametrize(("loss", "grade"), [(0.30, 2), (0.45, 3)])
def test_synthetic_wedge_recovered(subject_a, loss: float, grade: int) -> None:  # type: ignore[no-untyped-def]
    """Measurement and grading alone: the disc above stretched, the level map kept."""
    ct, lm, res = subject_a
    ct2 = compress_vertebra(ct, res["L3"], loss, "wedge", mode="stretch")
    res2 = analyse_spine(ct2, lm)
    assert res2["L3"].genant_grade == grade and res2["L3"].morphology == "wedge"
    assert [v for v in res2.fractured if v != "L3"] == [v for v in res.fractured if v != "L3"]
    # the anterior height lost is the loss applied (the plates keep their profiles, so the
    # applied loss is the body-height loss; within 4 % of the height at 3 mm voxels)
    a0, a1 = res["L3"].height_anterior_mm, res2["L3"].height_anterior_mm
    assert 1 - a1 / a0 == pytest.approx(loss, abs=0.04)  # type: ignore[operator]


def test_severe_crush_graded_3(subject_a) -> None:  # type: ignore[no-untyped-def]
    """A 45 % crush (L2, 25.8 -> about 14 mm): measured and graded 3, no neighbour graded;
    its superior endplate lies near the centre half-way between the discs of the level map."""
    ct, lm, res = subject_a
    ct2 = compress_vertebra(ct, res["L2"], 0.45, "crush", mode="stretch")
    res2 = analyse_spine(ct2, lm)
    l2 = res2["L2"]
    assert l2.status == "measured", l2.reason
    assert l2.genant_grade == 3 and l2.morphology == "crush"
    # every height follows the loss to half a 3 mm voxel
    for h0, h1 in ((res["L2"].height_anterior_mm, l2.height_anterior_mm),
                   (res["L2"].height_posterior_mm, l2.height_posterior_mm),
                   (res["L2"].height_middle_mm, l2.height_middle_mm)):
        assert h1 == pytest.approx(0.55 * h0, abs=1.5)  # type: ignore[operator]
    # no other vertebra newly graded (L1, graded 1 at baseline against L2's A/P alone, may
    # drop to 0 against the crushed L2's A/P: its only measured neighbour)
    assert not [v for v in res2.fractured if v != "L2" and v not in res.fractured]


@pytest.mark.parametrize("vertebra", ["L3", "L4"])
def test_biconcave_30_graded_at_least_2(subject_a, vertebra: str) -> None:  # type: ignore[no-untyped-def]
    ct, lm, res = subject_a
    ct2 = compress_vertebra(ct, res[vertebra], 0.30, "biconcave", mode="stretch")
    res2 = analyse_spine(ct2, lm)
    r = res2[vertebra]
    assert r.genant_grade is not None and r.genant_grade >= 2, r.reason
    assert r.morphology == "biconcave"
    m0, m1 = res[vertebra].height_middle_mm, r.height_middle_mm
    assert m1 == pytest.approx(0.70 * m0, abs=1.5)  # type: ignore[operator]
    assert not [v for v in res2.fractured if v != vertebra and v not in res.fractured]


def _column(top_mm: float, plate_hu: float = 250.0) -> tuple[np.ndarray, np.ndarray]:
    """A column profile at 0.5 mm (disc 60 HU, trabecular 120 HU between -12 mm and top, 1 mm
    plates of plate_hu at both surfaces), blurred like 3 mm slices."""
    from scipy.ndimage import gaussian_filter1d

    a = np.arange(-24.0, 24.0 + 1e-9, 0.5)
    c = np.full_like(a, 60.0)
    c[(a > -12.0) & (a < top_mm)] = 120.0
    c[np.abs(a + 12.5) <= 0.5] = plate_hu
    c[np.abs(a - (top_mm - 0.5)) <= 0.5] = plate_hu
    return a, gaussian_filter1d(c, 3.0)


def test_endplate_past_the_centre_found_from_the_opposite_plate() -> None:
    from rcsa.spine.body import RESTART_CLEARANCE_MM, _endplate_edge, _two_plates

    a, c = _column(12.0)  # a normal body: both plates found from the centre
    assert _endplate_edge(c, a, 17.0, upward=True) == pytest.approx(12.0, abs=1.0)
    a, c = _column(-1.5)  # crushed: the superior plate lies below the centre
    lo = _endplate_edge(c, a, -17.0, upward=False)
    assert lo == pytest.approx(-12.0, abs=1.0)
    assert _endplate_edge(c, a, 17.0, upward=True) is None  # no peak from the centre up
    hi = _endplate_edge(c, a, 17.0, upward=True, a_start=lo + RESTART_CLEARANCE_MM)
    assert hi == pytest.approx(-1.5, abs=1.0) and _two_plates(c, a, lo, hi)
    # a "plate" that is the ramp of the other plate (no trabecular trough between) is refused
    ramp = np.where(a > lo, np.interp(a, [lo, lo + 10.0], [250.0, 100.0]), c)
    assert not _two_plates(ramp, a, lo, lo + 6.0)


def test_slices_removed_never_rename_a_vertebra(subject_a) -> None:  # type: ignore[no-untyped-def]
    """The whole chain on a spine shortened by a 30 % crush of L3: every other vertebra that is
    measured keeps its heights (it is the same vertebra under the same name)."""
    ct, _, res = subject_a
    ct2 = compress_vertebra(ct, res["L3"], 0.30, "crush")
    res2 = analyse_spine(ct2, find_levels(ct2))
    for v in ("L1", "L2", "L4", "L5"):
        if res2[v].measured:
            assert res2[v].height_posterior_mm == pytest.approx(
                res[v].height_posterior_mm, abs=2.0), v
    assert not [v for v in res2.fractured if v != "L3" and v not in res.fractured]


def test_cement_is_not_measurable(subject_a) -> None:  # type: ignore[no-untyped-def]
    ct, lm, res = subject_a
    v = np.array(ct.voxels, copy=True)
    k, j, i = (round(c) for c in res["L3"].roi_centre_kji)  # type: ignore[union-attr]
    v[k - 1 : k + 2, j - 2 : j + 2, i - 2 : i + 2] = 2500
    res2 = analyse_spine(replace(ct, voxels=v), lm)
    assert res2["L3"].status == "not_measurable"
    assert "cement" in res2["L3"].reason and res2["L3"].genant_grade is None
    assert "L3" in res2.to_columns()["spine_not_graded"]
    assert any("cement" in w for w in res2.warnings)


def test_cut_by_scan_edge_not_graded(subject_a) -> None:  # type: ignore[no-untyped-def]
    ct, _, res = subject_a
    # crop the scan through the middle of L2's body: L2 may not be reported as measured
    k_mid = res["L2"].mid_slice
    assert k_mid is not None
    from rcsa.io.volume import CTVolume, Geometry

    g = ct.geometry
    crop = CTVolume(np.ascontiguousarray(ct.voxels[:k_mid]),
                    Geometry((g.size_voxels[0], g.size_voxels[1], k_mid), g.spacing_mm,
                             g.origin_mm, g.direction), ct.source)
    res2 = analyse_spine(crop, find_levels(crop))
    assert res2["L2"].status != "measured" and res2["L2"].genant_grade is None
    assert res2["L2"].reason


def test_qc_sheet_written(subject_a, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ct, lm, res = subject_a
    out = write_spine_qc_png(ct, lm, res, tmp_path / "spine.png")
    from PIL import Image

    with Image.open(out) as im:
        assert im.width > 400 and im.height > 300
    from rcsa.errors import OutputExistsError

    with pytest.raises(OutputExistsError):
        write_spine_qc_png(ct, lm, res, out)


def test_every_vertebra_reported(subject_a) -> None:  # type: ignore[no-untyped-def]
    _, _, res = subject_a
    assert list(res.vertebrae) == list(SPINE_VERTEBRAE)
    for v in res.vertebrae.values():
        assert v.status == "measured" or v.reason


def test_bone_attenuation_input_filled_from_scan_unless_given() -> None:
    """A spec asking for ``bone_attenuation_hu`` gets the scan's value; ``--set`` wins; a
    ``bmd_t_score`` predictor is never filled from HU."""
    from rcsa.nomogram.spec import ModelSpec, Predictor
    from rcsa.report.inputs import collect_inputs, resolve_predictors

    bone = Predictor("ct_bone_hu", "continuous", "Trabecular HU", "bone_attenuation_hu", "HU")
    tscore = Predictor("bmd_t_score", "continuous", "BMD T-score", "bmd_t_score", "SD")
    spec = ModelSpec("t", "1", "structure_only", "y", "y", "test", (bone, tscore), None, None,
                     {}, None, None)
    features = {"bone_attenuation_hu": 131.4, "bone_attenuation_vertebra": "L1"}
    got = {p.predictor.name: p for p in resolve_predictors(spec, collect_inputs(), features, {})}
    assert got["ct_bone_hu"].value == 131.4 and got["ct_bone_hu"].measured
    assert got["ct_bone_hu"].source == ("from the scan: bone_attenuation_hu (mean trabecular HU "
                                        "of L1)")
    assert got["bmd_t_score"].value is None and "not given" in got["bmd_t_score"].missing_reason
    given = resolve_predictors(spec, collect_inputs(["ct_bone_hu=95"]), features, {})
    assert given[0].value == 95.0 and given[0].source == (
        "--set; the scan's value 131.4 was not used")
    missing = resolve_predictors(spec, collect_inputs(), {"bone_attenuation_hu": None}, {})
    assert missing[0].value is None and "not measured on the scan" in missing[0].missing_reason


def test_count_in_doubt_is_warned_not_graded(subject_a) -> None:  # type: ignore[no-untyped-def]
    """A 45 % crush with the slices removed: the level finder misses the crushed body's disc
    and refuses the count. Nothing is graded under a doubtful name, and a warning says why."""
    ct, _, res = subject_a
    ct2 = compress_vertebra(ct, res["L3"], 0.45, "crush")
    lm2 = find_levels(ct2)
    res2 = analyse_spine(ct2, lm2)
    for v in ("L1", "L2", "L3", "L4", "L5"):
        if lm2[v].status == "ambiguous":
            assert res2[v].status == "ambiguous" and res2[v].genant_grade is None
    l3 = res2["L3"]
    # either the crushed body is named and graded as a fracture, or it is refused with a
    # warning (today: the count from the sacrum and from the last rib disagree)
    assert (l3.genant_grade is not None and l3.genant_grade >= 2) or (
        l3.status == "ambiguous" and any("count is in doubt" in w for w in res2.warnings))


@pytest.mark.parametrize(("reduction", "grade", "review"), [
    (12.0, 0, False), (16.0, 0, True), (21.8, 1, True), (24.0, 1, True), (32.0, 2, False),
    (36.0, 2, True), (43.0, 3, True), (48.0, 3, False),
])
def test_grade_near_a_threshold_needs_review(reduction: float, grade: int,
                                             review: bool) -> None:
    """A grade within GRADE_REVIEW_MARGIN_PCT (the measured uncertainty) of a Genant
    threshold is marked for review; every grade 1 is; a vertebra not graded has no mark."""
    from rcsa.spine.types import GRADE_REVIEW_MARGIN_PCT, VertebraResult

    assert GRADE_REVIEW_MARGIN_PCT == 5.0
    assert genant_grade(reduction) == grade
    v = VertebraResult("L2", "measured", height_reduction_pct=reduction, genant_grade=grade,
                       morphology="wedge" if grade else "normal")
    assert (v.grade_review_reason is not None) is review
    assert v.columns()["genant_needs_review"] == int(review)
    assert VertebraResult("L2", "not_measurable", "cut").columns()["genant_needs_review"] is None


def test_sample_count_needs_review(subject_a) -> None:  # type: ignore[no-untyped-def]
    """Subject A: L1's grade 1 (21.8 %) is marked, and so is the fracture count (T12 is not
    graded either)."""
    _, _, res = subject_a
    cols = res.to_columns()
    assert cols["L1_genant_grade"] == 1 and cols["L1_genant_needs_review"] == 1
    assert "threshold" in (res["L1"].grade_review_reason or "")
    assert cols["fracture_count_needs_review"] == 1
    assert res.to_dict()["fracture_count_needs_review"] is True
