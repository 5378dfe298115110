"""Performance measures of predicted risks against binary outcomes.

All functions take ``y`` (0/1) and ``p`` (predicted probability) as 1-D arrays. References are
in ``docs/nomogram.md``: DeLong et al. 1988 (AUC variance), Steyerberg 2019 (calibration
intercept and slope), Hosmer & Lemeshow 2013, Vickers & Elkin 2006 (net benefit), Efron & Gong
1983 / Harrell 2015 (optimism bootstrap).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from rcsa.errors import DataError

FloatArray = NDArray[np.float64]
EPS = 1e-12
#: Default decision-curve thresholds 0.01, 0.02, ..., 0.99 (each the nearest double to k/100).
DEFAULT_THRESHOLDS: tuple[float, ...] = tuple(k / 100 for k in range(1, 100))


def check_binary(y: ArrayLike, p: ArrayLike | None = None) -> tuple[NDArray[np.int_], FloatArray]:
    """Validate and convert; DataError for non-binary outcomes, one class, or bad probabilities."""
    ya = np.asarray(y, dtype=float).ravel()
    if ya.size == 0:
        raise DataError("no observations")
    if not np.isin(ya, (0.0, 1.0)).all():
        raise DataError("the outcome must be coded 0/1")
    if ya.min() == ya.max():
        raise DataError(
            f"the outcome has only one class (all {int(ya[0])}): need events and non-events"
        )
    pa = np.zeros_like(ya) if p is None else np.asarray(p, dtype=float).ravel()
    if pa.shape != ya.shape:
        raise DataError(f"{pa.size} predictions for {ya.size} outcomes")
    if p is not None and (not np.isfinite(pa).all() or pa.min() < 0 or pa.max() > 1):
        raise DataError("predicted probabilities must be finite and within [0, 1]")
    return ya.astype(int), pa


def auc_delong(y: ArrayLike, p: ArrayLike) -> tuple[float, float]:
    """AUC (Mann-Whitney, ties count 1/2) and its DeLong standard error.

    Structural components via midranks (Sun & Xu 2014): V10 for each event is the fraction of
    non-events it outranks, V01 for each non-event the fraction of events that outrank it;
    ``var = S10/m + S01/n`` with sample variances (ddof = 1).
    """
    ya, pa = check_binary(y, p)
    pos, neg = pa[ya == 1], pa[ya == 0]
    m, n = pos.size, neg.size
    tz = stats.rankdata(np.concatenate([pos, neg]))
    tx = stats.rankdata(pos)
    ty = stats.rankdata(neg)
    auc = float((tz[:m].sum() - m * (m + 1) / 2) / (m * n))
    v10 = (tz[:m] - tx) / n
    v01 = 1.0 - (tz[m:] - ty) / m
    s10 = float(np.var(v10, ddof=1)) if m > 1 else 0.0
    s01 = float(np.var(v01, ddof=1)) if n > 1 else 0.0
    return auc, float(np.sqrt(s10 / m + s01 / n))


def auc(y: ArrayLike, p: ArrayLike) -> float:
    return auc_delong(y, p)[0]


def brier(y: ArrayLike, p: ArrayLike) -> float:
    ya, pa = check_binary(y, p)
    return float(np.mean((pa - ya) ** 2))


def _logit(p: FloatArray) -> FloatArray:
    q = np.clip(p, 1e-10, 1 - 1e-10)
    return np.asarray(np.log(q / (1 - q)), dtype=float)


def calibration_intercept_slope(y: ArrayLike, p: ArrayLike) -> tuple[float, float]:
    """Calibration-in-the-large (intercept of ``logit P(y) = a + logit(p)``, slope fixed at 1)
    and calibration slope (``b`` of ``logit P(y) = a + b logit(p)``), as in Steyerberg."""
    import statsmodels.api as sm

    ya, pa = check_binary(y, p)
    lp = _logit(pa)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fam = sm.families.Binomial()
        m0 = sm.GLM(ya, np.ones((ya.size, 1)), family=fam, offset=lp).fit()
        m1 = sm.GLM(ya, sm.add_constant(lp, has_constant="add"), family=fam).fit()
    return float(m0.params[0]), float(m1.params[1])


@dataclass(frozen=True)
class HosmerLemeshow:
    statistic: float
    df: int
    p_value: float
    groups: list[dict[str, float]]


def quantile_groups(p: FloatArray, g: int) -> NDArray[np.int_]:
    """Group index per observation: cut at the ``g``-quantiles of ``p`` (lowest included), as
    R's ``cut(p, quantile(p, 0:g/g), include.lowest = TRUE)``; tied breaks merge groups."""
    breaks = np.unique(np.quantile(p, np.linspace(0, 1, g + 1)))
    if breaks.size < 2:
        return np.zeros(p.size, dtype=int)
    idx = np.searchsorted(breaks, p, side="left") - 1
    return np.asarray(np.clip(idx, 0, breaks.size - 2), dtype=int)


def hosmer_lemeshow(y: ArrayLike, p: ArrayLike, g: int = 10) -> HosmerLemeshow:
    """Hosmer-Lemeshow C-hat with ``g`` risk groups; df = groups - 2."""
    ya, pa = check_binary(y, p)
    grp = quantile_groups(pa, g)
    stat = 0.0
    rows: list[dict[str, float]] = []
    for k in np.unique(grp):
        sel = grp == k
        n_k = int(sel.sum())
        obs = float(ya[sel].sum())
        exp = float(pa[sel].sum())
        denom = exp * (1 - exp / n_k)
        stat += (obs - exp) ** 2 / denom if denom > EPS else 0.0
        rows.append(
            {
                "n": n_k,
                "observed": obs,
                "expected": exp,
                "mean_predicted": exp / n_k,
                "observed_rate": obs / n_k,
            }
        )
    df = max(len(rows) - 2, 1)
    return HosmerLemeshow(float(stat), df, float(stats.chi2.sf(stat, df)), rows)


def calibration_curve(y: ArrayLike, p: ArrayLike, g: int = 10) -> dict[str, Any]:
    """Grouped (deciles of risk, Wilson 95% CI) and LOWESS-smoothed observed vs predicted."""
    from statsmodels.nonparametric.smoothers_lowess import lowess

    ya, pa = check_binary(y, p)
    grp = quantile_groups(pa, g)
    bins = []
    z = 1.959963984540054
    for k in np.unique(grp):
        sel = grp == k
        n_k = int(sel.sum())
        rate = float(ya[sel].mean())
        centre = (rate + z * z / (2 * n_k)) / (1 + z * z / n_k)
        half = z * np.sqrt(rate * (1 - rate) / n_k + z * z / (4 * n_k * n_k)) / (1 + z * z / n_k)
        bins.append(
            {
                "n": n_k,
                "mean_predicted": float(pa[sel].mean()),
                "observed": rate,
                "observed_ci95": [float(max(centre - half, 0.0)), float(min(centre + half, 1.0))],
            }
        )
    sm = lowess(ya.astype(float), pa, frac=2 / 3, it=0, return_sorted=True)
    grid = np.linspace(float(pa.min()), float(pa.max()), 50)
    smooth = np.interp(grid, sm[:, 0], sm[:, 1])
    return {"groups": bins, "lowess": {"predicted": grid.tolist(), "observed": smooth.tolist()}}


def net_benefit(
    y: ArrayLike, p: ArrayLike, thresholds: Sequence[float] = DEFAULT_THRESHOLDS
) -> dict[str, dict[str, float]]:
    """Net benefit at each threshold ``pt``: ``TP/N - FP/N * pt/(1-pt)``, treating patients
    with ``p >= pt``; with treat-all (``prev - (1-prev) pt/(1-pt)``) and treat-none (0).
    Keys are the thresholds formatted with two decimals (``"0.10"``)."""
    ya, pa = check_binary(y, p)
    n = ya.size
    prev = ya.mean()
    out: dict[str, dict[str, float]] = {}
    for pt in thresholds:
        if not 0 < pt < 1:
            raise DataError(f"decision threshold {pt} outside (0, 1)")
        treat = pa >= pt - EPS
        tp = float(np.sum(treat & (ya == 1)))
        fp = float(np.sum(treat & (ya == 0)))
        w = pt / (1 - pt)
        out[f"{pt:.2f}"] = {
            "model": tp / n - fp / n * w,
            "treat_all": float(prev - (1 - prev) * w),
            "treat_none": 0.0,
        }
    return out


@dataclass(frozen=True)
class Optimism:
    apparent: float
    optimism: float
    corrected: float
    n_resamples: int
    n_failed: int
    seed: int


def optimism_bootstrap(
    y: NDArray[np.int_],
    fit_predict: Callable[[NDArray[np.int_], NDArray[np.int_]], tuple[FloatArray, FloatArray]],
    apparent: float,
    n_resamples: int = 200,
    seed: int = 20260701,
) -> Optimism:
    """Efron-Gong optimism bootstrap of the AUC (Harrell's ``validate``).

    ``fit_predict(boot_idx, all_idx)`` refits the model on rows ``boot_idx`` and returns its
    predictions on the bootstrap rows and on all original rows. Optimism is the mean of
    ``AUC(boot model on boot data) - AUC(boot model on original data)``; corrected AUC =
    apparent - optimism. Resamples with one class or a failed fit are skipped and counted.
    """
    rng = np.random.default_rng(seed)
    n = y.size
    all_idx = np.arange(n)
    diffs: list[float] = []
    failed = 0
    for _ in range(n_resamples):
        idx = rng.integers(0, n, n)
        yb = y[idx]
        if yb.min() == yb.max():
            failed += 1
            continue
        try:
            p_boot, p_orig = fit_predict(idx, all_idx)
        except (DataError, ValueError, np.linalg.LinAlgError):
            failed += 1
            continue
        diffs.append(auc(yb, p_boot) - auc(y, p_orig))
    if not diffs:
        raise DataError("every bootstrap resample failed to fit")
    opt = float(np.mean(diffs))
    return Optimism(apparent, opt, apparent - opt, len(diffs), failed, seed)
