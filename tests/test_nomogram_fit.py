"""Fit and evaluate: simulation recovery, the shipped demonstration model, invalid data, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from rcsa.cli import app
from rcsa.errors import DataError
from rcsa.nomogram import load_spec
from rcsa.nomogram import simulate as sim
from rcsa.nomogram.design import design_matrix
from rcsa.nomogram.fit import fit, infer_predictor, logit_fit
from rcsa.nomogram.spec import MODELS_DIR

COHORT = MODELS_DIR / "demo_cohort_simulated.csv"


def _write(df: pd.DataFrame, path: Path) -> Path:
    df.to_csv(path, index=False)
    return path


def test_simulated_cohort_is_the_documented_one() -> None:
    df = sim.simulate_cohort()
    assert len(df) == 428 and int(df["rbp"].sum()) == 75  # 17.5 %
    shipped = pd.read_csv(COHORT)
    pd.testing.assert_frame_equal(df, shipped, check_dtype=False, atol=1e-9)


def test_shipped_demo_model_is_what_fit_produces() -> None:
    shipped = load_spec("demo-rbp-simulated")
    res = fit(COHORT, "rbp", None, n_bootstrap=0, demonstration=True)
    assert [p["name"] for p in res.spec["predictors"]] == [p.name for p in shipped.predictors]
    assert res.spec["intercept"] == pytest.approx(shipped.intercept, abs=1e-8)
    for p, q in zip(res.spec["predictors"], shipped.predictors, strict=True):
        assert p["coefficient"] == pytest.approx(q.coefficient, abs=1e-8)
    assert res.spec["disclaimer"] == "demonstration - not for clinical use"


def test_simulation_recovery_selection_and_ci_coverage(tmp_path: Path) -> None:
    """Full pipeline on 4 seeds: the 4 true predictors are selected every time, at most one
    noise predictor slips in per fit on average, and the CIs cover the truth."""
    covered: list[bool] = []
    noise = 0
    for seed in (101, 102, 103, 104):
        path = _write(sim.simulate_cohort(seed=seed), tmp_path / f"c{seed}.csv")
        res = fit(path, "rbp", None, seed=seed, n_bootstrap=0)
        selected = [p["name"] for p in res.spec["predictors"]]
        assert set(sim.TRUE_PREDICTORS) <= set(selected), (seed, selected)
        noise += len(set(selected) - set(sim.TRUE_PREDICTORS))
        assert res.lasso.lambda_1se > res.lasso.lambda_min
        for row in res.table:
            if row["term"] in sim.TRUE_PREDICTORS:
                lo, hi = row["coefficient_ci95"]
                covered.append(lo <= sim.TRUE_COEFFICIENTS[row["term"]] <= hi)
    assert noise <= 4
    assert sum(covered) >= 13  # of 16 (P(<= 12 | 0.95) < 0.01)


def test_ci_coverage_near_nominal_over_seeds() -> None:
    """Coverage of the multivariable 95 % CIs for the true model over 60 seeds (240 CIs)."""
    hits = total = 0
    for seed in range(500, 560):
        df = sim.simulate_cohort(seed=seed)
        preds = [infer_predictor(df, c, None) for c in sim.TRUE_PREDICTORS]
        x, terms = design_matrix(preds, df)
        lf = logit_fit(x, df["rbp"].to_numpy(dtype=int), terms)
        for j, name in enumerate(sim.TRUE_PREDICTORS, start=1):
            hits += int(lf.ci[j, 0] <= sim.TRUE_COEFFICIENTS[name] <= lf.ci[j, 1])
            total += 1
    assert 0.90 <= hits / total <= 0.99, hits / total


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    return sim.simulate_cohort(n=200, seed=7)


@pytest.mark.parametrize(
    ("mutate", "kwargs", "message"),
    [
        (lambda d: d, {"outcome": "nope"}, r"missing outcome column 'nope'"),
        (lambda d: d.assign(rbp=0), {}, r"outcome 'rbp' has a single class \(all 0\)"),
        (lambda d: d.assign(rbp=np.where(d.rbp == 1, "yes", "no")), {},
         r"outcome 'rbp' must be coded 0/1"),
        (lambda d: d, {"candidates": ["age_years", "grip_strength_kg"]},
         r"unknown candidate predictor\(s\) \['grip_strength_kg'\]"),
        (lambda d: d.assign(age_years=d.age_years.astype(object).where(d.index != 3, "unknown")),
         {}, r"candidate 'age_years' looks numeric but has non-numeric value\(s\) \['unknown'\]"),
        (lambda d: d.assign(leak_ml=d.rbp * 5.0 + d.age_years / 100), {},
         r"perfect separation by candidate 'leak_ml': every event has leak_ml > "),
        (lambda d: d.assign(site=np.where(d.rbp == 1, "B", np.where(d.index % 2 == 0, "A", "B"))),
         {}, r"perfect separation by candidate 'site': all \d+ patients with site = A have "
             r"outcome 0"),
        (lambda d: d.assign(note=[f"text {i}" for i in range(len(d))]), {},
         r"candidate 'note' is text with 200 distinct values"),
    ],
)
def test_invalid_data_fails_clearly(
    tmp_path: Path, small: pd.DataFrame, mutate: object, kwargs: dict[str, object], message: str
) -> None:
    path = _write(mutate(small.copy()), tmp_path / "d.csv")  # type: ignore[operator]
    args: dict[str, object] = {"outcome": "rbp", **kwargs}
    outcome = str(args.pop("outcome"))
    with pytest.raises(DataError, match=message) as info:
        fit(path, outcome, None, n_bootstrap=0, **args)  # type: ignore[arg-type]
    assert str(info.value).startswith(str(path))


def test_cli_fit_split_then_evaluate_with_figures(tmp_path: Path) -> None:
    spec = tmp_path / "model.yaml"
    r = CliRunner().invoke(app, ["nomogram", "fit", str(COHORT), "--outcome", "rbp",
                                 "--out", str(spec), "--split", "0.25", "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["n_train"] == 321 and summary["n_validation"] == 107
    assert 0.6 < summary["auc_validation"] <= 1.0
    assert summary["lambda_1se"] > summary["lambda_min"] > 0
    assert load_spec(spec).provenance["validation"] == "split"

    figs = tmp_path / "figs"
    figs.mkdir()
    out_json = tmp_path / "eval.json"
    args = ["nomogram", "evaluate", str(COHORT), "--outcome", "rbp", "--model",
            "demo-rbp-simulated", "--json", str(out_json), "--figures", str(figs)]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    d = json.loads(out_json.read_text())
    for key in ("auc", "auc_se_delong", "auc_ci95", "brier", "calibration_slope",
                "calibration_intercept", "net_benefit", "hosmer_lemeshow",
                "auc_optimism_corrected", "calibration_curve"):
        assert d[key] is not None, key
    assert d["disclaimer"] == "demonstration - not for clinical use"
    assert d["data_is_development_data"] is True
    assert d["bootstrap"]["resamples"] + d["bootstrap"]["failed"] == 200
    assert d["auc"] == pytest.approx(load_spec("demo-rbp-simulated").provenance["auc_training"],
                                     abs=5e-5)
    # apparent performance of a model on its own development data: calibration-in-the-large
    # 0 and slope 1 are properties of maximum likelihood logistic regression
    assert d["calibration_intercept"] == pytest.approx(0, abs=1e-6)
    assert d["calibration_slope"] == pytest.approx(1, abs=1e-6)
    assert 0 < d["auc"] - d["auc_optimism_corrected"] < 0.05
    for stem in ("roc", "calibration", "dca", "nomogram"):
        assert (figs / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert b"<svg" in (figs / f"{stem}.svg").read_bytes()[:2000]
    r = CliRunner().invoke(app, args)  # everything exists now
    assert r.exit_code == 6


def test_cli_evaluate_prob_column_hand_vector(tmp_path: Path) -> None:
    data = _write(pd.DataFrame({
        "y": [0, 0, 0, 0, 0, 0, 1, 0, 1, 1],
        "p": [0.05, 0.10, 0.15, 0.20, 0.25, 0.30, 0.35, 0.40, 0.70, 0.90],
    }), tmp_path / "v.csv")
    out = tmp_path / "e.json"
    r = CliRunner().invoke(app, ["nomogram", "evaluate", str(data), "--outcome", "y",
                                 "--prob", "p", "--json", str(out)])
    assert r.exit_code == 0, r.output
    d = json.loads(out.read_text())
    assert round(d["auc"], 4) == 0.9524 and round(d["auc_se_delong"], 4) == 0.0673
    assert d["brier"] == pytest.approx(0.091)
    assert d["net_benefit"]["0.20"]["model"] == pytest.approx(0.2, abs=1e-4)
    assert d["auc_optimism_corrected"] is None  # needs --model
    r = CliRunner().invoke(app, ["nomogram", "evaluate", str(data), "--outcome", "y"])
    assert r.exit_code == 4 and "exactly one of" in r.stderr


def test_evaluate_model_on_table_without_its_predictor(tmp_path: Path) -> None:
    data = _write(pd.read_csv(COHORT).drop(columns=["cement_volume_ml"]), tmp_path / "d.csv")
    r = CliRunner().invoke(app, ["nomogram", "evaluate", str(data), "--outcome", "rbp",
                                 "--model", "demo-rbp-simulated"])
    assert r.exit_code == 4
    assert "missing predictor 'cement_volume_ml'" in r.stderr


def test_optimism_with_selection_callback_repeats_the_lasso() -> None:
    from rcsa.nomogram.fit import selection_refit_predict

    df = pd.read_csv(COHORT)
    cands = ["femoral_head_top_gluteus_maximus_both_rcsa", "age_years", "procedure"]
    preds = [infer_predictor(df, c, None) for c in cands]
    x, terms = design_matrix(preds, df)
    groups = [[0], [1], [2]]
    y = df["rbp"].to_numpy(dtype=int)
    cb = selection_refit_predict(x, y, terms, groups, seed=1, rule="1se")
    idx = np.random.default_rng(0).integers(0, y.size, y.size)
    p_boot, p_orig = cb(idx, np.arange(y.size))
    assert p_boot.shape == (y.size,) and p_orig.shape == (y.size,)
    assert 0 < p_orig.min() < p_orig.max() < 1  # gluteus maximus is selected: risks vary
