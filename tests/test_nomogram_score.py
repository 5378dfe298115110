"""Scoring: hand-computed points for a 3-predictor spec, missing / out-of-range / table merge."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from rcsa.cli import app
from rcsa.errors import ScoringError
from rcsa.nomogram import load_spec, points_scale, score_frame, score_patient, spec_from_dict
from rcsa.nomogram.score import score

SPEC3: dict[str, Any] = {
    "format": "rcsa-nomogram-spec",
    "spec_version": "1.0",
    "name": "hand-3",
    "model_version": "1",
    "status": "published",
    "outcome": {"name": "event", "label": "event"},
    "intended_use": "unit test",
    "predictors": [
        {"name": "age_years", "type": "continuous", "unit": "years",
         "plausible_range": [40, 90], "coefficient": 0.04},
        {"name": "sex", "type": "binary", "levels": ["female", "male"], "coefficient": 0.5},
        {"name": "region", "type": "categorical",
         "levels": ["lumbar", "thoracic", "thoracolumbar"], "reference_level": "lumbar",
         "coefficient": {"thoracolumbar": 0.8, "thoracic": -0.4}},
    ],
    "intercept": -3.0,
    "risk_groups": {"on": "probability", "cutoffs": [0.2, 0.45],
                    "labels": ["low", "intermediate", "high"]},
    "provenance": {"cohort": "invented for a unit test"},
}


@pytest.fixture()
def spec3() -> Any:
    return spec_from_dict(copy.deepcopy(SPEC3))


def test_points_scale_by_hand(spec3: Any) -> None:
    # effect widths over range/levels: age 0.04 * (90 - 40) = 2.0 (widest -> 100 points),
    # sex 0.5, region 0.8 - (-0.4) = 1.2; so 1 unit of log-odds = 50 points
    sc = points_scale(spec3)
    assert sc.points_per_lp == pytest.approx(50.0)
    assert sc.contribution_range["age_years"] == pytest.approx((1.6, 3.6))
    assert sc.contribution_range["region"] == pytest.approx((-0.4, 0.8))
    assert sc.max_total_points == pytest.approx(100 + 25 + 60)
    assert sc.lp_at_zero_points == pytest.approx(-3 + 1.6 + 0 - 0.4)


def test_patient_points_by_hand(spec3: Any) -> None:
    s = score_patient(spec3, {"age_years": 72, "sex": "male", "region": "thoracic"})
    # age (72 - 40) * 0.04 * 50 = 64; male 0.5 * 50 = 25; thoracic is the lowest level -> 0
    assert s.points == pytest.approx({"age_years": 64.0, "sex": 25.0, "region": 0.0})
    assert s.total_points == pytest.approx(89.0)
    assert s.linear_predictor == pytest.approx(-3 + 2.88 + 0.5 - 0.4)  # -0.02
    assert s.probability == pytest.approx(1 / (1 + math.exp(0.02)))
    assert s.risk_group == "high"  # 0.495 >= 0.45
    assert s.flags == ()
    # total points map back to the linear predictor
    assert -1.8 + s.total_points / 50 == pytest.approx(s.linear_predictor)

    s2 = score_patient(spec3, {"age_years": "40", "sex": 0, "region": "thoracolumbar"})
    assert s2.points == pytest.approx({"age_years": 0.0, "sex": 0.0, "region": 60.0})
    assert s2.linear_predictor == pytest.approx(-0.6)
    assert s2.risk_group == "intermediate"


def test_missing_predictor_is_named(spec3: Any) -> None:
    with pytest.raises(ScoringError, match="missing predictor 'sex'"):
        score_patient(spec3, {"age_years": 72, "region": "lumbar"})


def test_wrong_value_types_are_named(spec3: Any) -> None:
    with pytest.raises(ScoringError, match=r"'age_years' is continuous.*'old' is not a number"):
        score_patient(spec3, {"age_years": "old", "sex": 1, "region": "lumbar"})
    with pytest.raises(ScoringError, match=r"'region' is categorical.*'sacral'"):
        score_patient(spec3, {"age_years": 60, "sex": 1, "region": "sacral"})
    with pytest.raises(ScoringError, match="'sex' is binary"):
        score_patient(spec3, {"age_years": 60, "sex": "unknown", "region": "lumbar"})


def test_out_of_range_is_flagged_not_refused(spec3: Any) -> None:
    s = score_patient(spec3, {"age_years": 95, "sex": 1, "region": "lumbar", "bmi": 30})
    assert s.points["age_years"] == pytest.approx((95 - 40) * 0.04 * 50)  # 110, extrapolated
    assert any("age_years=95 outside plausible range [40, 90] years" in f for f in s.flags)
    assert any("bmi" in f for f in s.flags)  # unknown inputs are reported, not silently used


def test_structure_only_model_cannot_score() -> None:
    spec = load_spec("rbp-augmentation-structure")
    assert spec.status == "structure_only" and spec.intercept is None
    assert all(p.coefficient is None for p in spec.predictors)
    with pytest.raises(ScoringError, match="has no coefficients"):
        score_patient(spec, {})


def test_table_merged_with_clinical_csv(tmp_path: Path, spec3: Any) -> None:
    features = pd.DataFrame({"scan_id": ["a", "b", "c", "d"], "age_years": [72, 40, 95, None]})
    clinical = pd.DataFrame({"scan_id": ["b", "a", "c", "d"],
                             "sex": ["female", "male", "male", "male"],
                             "region": ["thoracolumbar", "thoracic", "lumbar", "lumbar"]})
    f, c, spec_path = tmp_path / "f.csv", tmp_path / "c.csv", tmp_path / "m.json"
    features.to_csv(f, index=False)
    clinical.to_csv(c, index=False)
    spec_path.write_text(json.dumps(SPEC3))
    res = score(spec_path, f, clinical=c, id_column="scan_id")
    t = res.table
    assert t is not None
    t = t.set_index("scan_id")
    assert t.loc["a", "total_points"] == pytest.approx(89.0)
    assert t.loc["b", "total_points"] == pytest.approx(60.0)
    assert "outside plausible range" in t.loc["c", "flags"]
    assert math.isnan(t.loc["d", "probability"])
    assert "missing value for predictor 'age_years'" in t.loc["d", "reason"]
    assert any("1 row(s) not scored" in w for w in res.warnings)
    # a predictor column absent from both tables is an error naming it
    with pytest.raises(ScoringError, match="missing predictor 'region'"):
        score_frame(spec3, features.merge(clinical[["scan_id", "sex"]], on="scan_id"))


def test_cli_score_single_patient_demo_model_says_demonstration() -> None:
    r = CliRunner().invoke(app, [
        "nomogram", "score", "-m", "demo-rbp-simulated", "--json",
        "--set", "femoral_head_top_gluteus_maximus_both_rcsa=2.8",
        "--set", "sij_lower_gluteus_medius_both_rcsa=1.7",
        "--set", "fractured_vertebrae_n=2", "--set", "cement_volume_ml=4",
    ])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["disclaimer"] == "demonstration - not for clinical use"
    assert 0 < d["probability"] < 1
    assert "DEMONSTRATION - NOT FOR CLINICAL USE" in r.stderr


def test_cli_score_missing_predictor_exit_4() -> None:
    r = CliRunner().invoke(app, ["nomogram", "score", "-m", "demo-rbp-simulated",
                                 "--set", "fractured_vertebrae_n=2"])
    assert r.exit_code == 4
    assert "missing predictor 'femoral_head_top_gluteus_maximus_both_rcsa'" in r.stderr


def test_cli_score_table_writes_csv_and_refuses_overwrite(tmp_path: Path) -> None:
    from rcsa.nomogram.spec import MODELS_DIR

    cohort = MODELS_DIR / "demo_cohort_simulated.csv"
    out = tmp_path / "scores.csv"
    args = ["nomogram", "score", "-m", "demo-rbp-simulated", str(cohort), "--out", str(out)]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    t = pd.read_csv(out)
    assert len(t) == 428 and (t["disclaimer"] == "demonstration - not for clinical use").all()
    assert {"scan_id", "total_points", "probability", "risk_group"} <= set(t.columns)
    r2 = CliRunner().invoke(app, args)
    assert r2.exit_code == 6 and "--overwrite" in r2.stderr


def test_bad_set_value_and_unscorable_table_fail_once(tmp_path: Path) -> None:
    spec_path = tmp_path / "m.json"
    spec_path.write_text(json.dumps(SPEC3))
    f = tmp_path / "f.csv"
    pd.DataFrame({"scan_id": ["a", "b"], "age_years": [50, 60]}).to_csv(f, index=False)
    with pytest.raises(ScoringError, match=r"'region' is categorical.*'spine'"):
        score(spec_path, f, assignments=["sex=1", "region=spine"])
    g = tmp_path / "g.csv"
    pd.DataFrame({"scan_id": ["a", "b"], "age_years": [None, None], "sex": [1, 0],
                  "region": ["lumbar", "lumbar"]}).to_csv(g, index=False)
    with pytest.raises(ScoringError, match="no row could be scored; first reason: missing value"):
        score(spec_path, g)
