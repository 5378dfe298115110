"""Metrics: the issue's hand-checkable vector, DeLong vs brute force, calibration, HL, DCA."""

from __future__ import annotations

import numpy as np
import pytest

from rcsa.errors import DataError
from rcsa.nomogram import metrics
from rcsa.nomogram.evaluate import evaluate_arrays

Y = np.array([0, 0, 0, 0, 0, 0, 1, 0, 1, 1])
P = np.array([0.05, 0.10, 0.15, 0.20, 0.25, 0.30, 0.35, 0.40, 0.70, 0.90])


def test_hand_checkable_vector() -> None:
    r = evaluate_arrays(Y, P)
    # 20 of 21 event/non-event pairs ordered correctly
    assert r["auc"] == pytest.approx(20 / 21, abs=1e-12)
    assert round(r["auc"], 4) == 0.9524
    # V10 = (6/7, 1, 1), V01 = (1 x 6, 2/3): var = S10/3 + S01/7
    assert round(r["auc_se_delong"], 4) == 0.0673
    assert r["auc_se_delong"] == pytest.approx(np.sqrt((1 / 147) / 3 + (2 / 126) / 7), abs=1e-12)
    lo, hi = r["auc_ci95"]
    assert lo == pytest.approx(20 / 21 - 1.959964 * r["auc_se_delong"], abs=1e-6)
    assert hi == 1.0  # clipped
    assert r["brier"] == pytest.approx(0.091, abs=1e-12)
    nb = r["net_benefit"]
    expected = {"0.10": (0.2333, 0.2222), "0.20": (0.2000, 0.1250), "0.30": (0.2143, 0.0)}
    for key, (model, treat_all) in expected.items():
        assert nb[key]["model"] == pytest.approx(model, abs=1e-4), key
        assert nb[key]["treat_all"] == pytest.approx(treat_all, abs=1e-4), key
        assert nb[key]["treat_none"] == 0.0
    # exact fractions: 3/10 - 6/10 * 1/9, 3/10 - 4/10 * 1/4, 3/10 - 2/10 * 3/7
    assert nb["0.10"]["model"] == pytest.approx(0.3 - 0.6 / 9, abs=1e-12)
    assert nb["0.30"]["model"] == pytest.approx(0.3 - 0.2 * 3 / 7, abs=1e-12)


def _brute_auc_se(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    pos, neg = p[y == 1], p[y == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    var = v10.var(ddof=1) / pos.size + v01.var(ddof=1) / neg.size
    return float(psi.mean()), float(np.sqrt(var))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_delong_matches_pairwise_definition_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = (rng.random(150) < 0.3).astype(int)
    p = np.round(rng.random(150) * 0.5 + 0.3 * y, 1)  # coarse: many ties
    a, se = metrics.auc_delong(y, p)
    ba, bse = _brute_auc_se(y, p)
    assert a == pytest.approx(ba, abs=1e-12)
    assert se == pytest.approx(bse, abs=1e-12)


def test_calibration_intercept_and_slope_recover_known_miscalibration() -> None:
    rng = np.random.default_rng(5)
    lp = rng.normal(-1.5, 1.2, 20_000)
    y = (rng.random(lp.size) < 1 / (1 + np.exp(-lp))).astype(int)
    a, b = metrics.calibration_intercept_slope(y, 1 / (1 + np.exp(-lp)))
    assert abs(a) < 0.05 and abs(b - 1) < 0.05
    # overconfident predictions (lp doubled): slope about 1/2
    _, b2 = metrics.calibration_intercept_slope(y, 1 / (1 + np.exp(-2 * lp)))
    assert b2 == pytest.approx(0.5, abs=0.03)
    # systematic overestimation by +1 on the logit: intercept about -1
    a3, _ = metrics.calibration_intercept_slope(y, 1 / (1 + np.exp(-(lp + 1))))
    assert a3 == pytest.approx(-1.0, abs=0.06)


def test_hosmer_lemeshow_by_hand() -> None:
    rng = np.random.default_rng(3)
    p = rng.uniform(0.05, 0.6, 200)
    y = (rng.random(200) < p).astype(int)
    hl = metrics.hosmer_lemeshow(y, p, g=10)
    order = np.argsort(p)
    stat = 0.0
    for idx in np.array_split(order, 10):  # no ties: quantile groups of 20
        o, e, n = y[idx].sum(), p[idx].sum(), idx.size
        stat += (o - e) ** 2 / (e * (1 - e / n))
    assert hl.df == 8
    assert [g["n"] for g in hl.groups] == [20] * 10
    assert hl.statistic == pytest.approx(stat, rel=1e-10)
    from scipy import stats

    assert hl.p_value == pytest.approx(stats.chi2.sf(stat, 8), rel=1e-10)


def test_invalid_inputs_refused() -> None:
    with pytest.raises(DataError, match="only one class"):
        metrics.auc_delong([0, 0, 0], [0.1, 0.2, 0.3])
    with pytest.raises(DataError, match="0/1"):
        metrics.brier([0, 2, 1], [0.1, 0.2, 0.3])
    with pytest.raises(DataError, match=r"within \[0, 1\]"):
        metrics.brier([0, 1], [0.1, 1.2])


def test_optimism_bootstrap_is_seeded_and_positive_for_an_overfit_model() -> None:
    from rcsa.nomogram.fit import refit_predict

    rng = np.random.default_rng(11)
    x = rng.normal(size=(120, 8))  # pure noise predictors: apparent AUC is all optimism
    y = (rng.random(120) < 0.3).astype(int)
    from rcsa.nomogram.fit import newton_logit

    beta = newton_logit(x, y)
    p = 1 / (1 + np.exp(-(beta[0] + x @ beta[1:])))
    app = metrics.auc(y, p)
    o1 = metrics.optimism_bootstrap(y, refit_predict(x, y), app, 200, seed=1)
    o2 = metrics.optimism_bootstrap(y, refit_predict(x, y), app, 200, seed=1)
    assert o1 == o2
    assert o1.n_resamples + o1.n_failed == 200
    assert o1.optimism > 0.05
    assert o1.corrected < app
