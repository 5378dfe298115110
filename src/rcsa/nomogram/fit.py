"""``rcsa nomogram fit``: LASSO logistic selection (10-fold CV) -> multivariable logistic -> spec.

Steps (details and references in ``docs/nomogram.md``):

1. Read and check the table: outcome present and coded 0/1 with both classes; candidate
   columns present; types inferred (0/1 numeric -> binary, numeric -> continuous, text with at
   most 12 levels -> categorical, reference = most frequent level); complete cases.
2. LASSO logistic (scikit-learn ``LogisticRegression`` with an L1 penalty, liblinear solver,
   intercept practically unpenalised) on standardised terms over a glmnet-style lambda path
   (lambda = 1 / (C n)); 10-fold stratified CV of the binomial deviance; ``lambda.min`` and
   ``lambda.1se`` (the largest lambda within one SE of the minimum, Friedman et al. 2010).
3. The predictors with a non-zero coefficient at the chosen lambda (all levels of a selected
   categorical) are refitted without penalty by ``statsmodels`` ``Logit``: coefficients, SE,
   odds ratios with Wald 95 % CI, p values.
4. Apparent AUC, Efron-Gong optimism-corrected AUC (multivariable refit in each resample; the
   LASSO selection is not repeated), and, with ``--validation`` or ``--split``, the AUC on the
   held-out data; everything goes into the spec's provenance.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from rcsa import __version__
from rcsa.anatomy import ANATOMY, AnatomyTable
from rcsa.errors import DataError
from rcsa.nomogram import metrics
from rcsa.nomogram._io import check_writable, read_table
from rcsa.nomogram.design import FloatArray, design_matrix
from rcsa.nomogram.spec import (
    DEMO_DISCLAIMER,
    Predictor,
    base_spec_dict,
    dump_spec,
    save_spec,
    spec_from_dict,
)

MAX_LEVELS = 12
N_LAMBDAS = 50
LAMBDA_MIN_RATIO = 1e-3

#: Labels and units of the clinical columns rcsa documents.
CLINICAL_COLUMNS: dict[str, tuple[str, str | None]] = {
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


def known_columns(table: AnatomyTable = ANATOMY) -> dict[str, tuple[str, str | None]]:
    """Labels and units for columns rcsa itself produces or documents: the measured
    predictors of the anatomy table (rows marked ``nomogram_predictor``), then
    :data:`CLINICAL_COLUMNS`."""
    return {**table.nomogram_columns(), **CLINICAL_COLUMNS}


#: Labels and units for columns rcsa itself produces or documents (others: the column name).
KNOWN_COLUMNS: dict[str, tuple[str, str | None]] = known_columns()
_UNIT_SUFFIXES = (
    ("_kg_m2", "kg/m^2"),
    ("_mm2", "mm^2"),
    ("_ml", "mL"),
    ("_years", "years"),
    ("_pct", "%"),
    ("_hu", "HU"),
    ("_mm", "mm"),
    ("_n", "count"),
    ("_kg", "kg"),
    ("_cm", "cm"),
    ("_days", "days"),
)


def _label_unit(column: str) -> tuple[str, str | None]:
    if column in KNOWN_COLUMNS:
        return KNOWN_COLUMNS[column]
    for suffix, unit in _UNIT_SUFFIXES:
        if column.endswith(suffix):
            return column, unit
    return column, None


@dataclass(frozen=True)
class LassoResult:
    lambdas: list[float]
    cv_deviance: list[float]
    cv_deviance_se: list[float]
    lambda_min: float
    lambda_1se: float
    rule: str
    coefficients_min: dict[str, float]
    coefficients_1se: dict[str, float]
    selected: list[str]
    n_folds: int


@dataclass(frozen=True)
class FitResult:
    spec: dict[str, Any]
    lasso: LassoResult
    table: list[dict[str, Any]]
    n_train: int
    events_train: int
    auc_train: float
    auc_train_ci95: tuple[float, float]
    auc_optimism_corrected: float | None
    n_validation: int | None
    auc_validation: float | None
    auc_validation_ci95: tuple[float, float] | None
    out: Path | None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_train": self.n_train,
            "events_train": self.events_train,
            "lambda_min": self.lasso.lambda_min,
            "lambda_1se": self.lasso.lambda_1se,
            "lambda_rule": self.lasso.rule,
            "selected": self.lasso.selected,
            "multivariable": self.table,
            "auc_train": self.auc_train,
            "auc_train_ci95": list(self.auc_train_ci95),
            "auc_optimism_corrected": self.auc_optimism_corrected,
            "n_validation": self.n_validation,
            "auc_validation": self.auc_validation,
            "auc_validation_ci95": None
            if self.auc_validation_ci95 is None
            else list(self.auc_validation_ci95),
            "warnings": self.warnings,
            "disclaimer": self.spec.get("disclaimer"),
        }


# ----------------------------------------------------------------------------- data checks


def outcome_vector(table: pd.DataFrame, outcome: str, source: Path | None) -> NDArray[np.int_]:
    """The outcome as 0/1 ints; DataError if absent, not 0/1, or single-class."""
    if outcome not in table.columns:
        raise DataError(
            f"missing outcome column {outcome!r} (columns: {', '.join(map(str, table.columns))})",
            source,
        )
    col = table[outcome]
    if col.isna().any():
        raise DataError(f"outcome {outcome!r} has missing values", source)
    if col.dtype == bool:
        col = col.astype(int)
    num = pd.to_numeric(col, errors="coerce")
    values = set(num.dropna().unique().tolist())
    if num.isna().any() or not values <= {0, 1}:
        shown = sorted(map(str, col.astype(str).unique()))[:6]
        raise DataError(f"outcome {outcome!r} must be coded 0/1, found values {shown}", source)
    if len(values) < 2:
        raise DataError(
            f"outcome {outcome!r} has a single class (all {int(num.iloc[0])}): a model needs "
            "events and non-events",
            source,
        )
    return np.asarray(num.to_numpy(dtype=int), dtype=int)


def infer_predictor(table: pd.DataFrame, column: str, source: Path | None) -> Predictor:
    """A predictor definition (no coefficient) from the column's values."""
    series = table[column].dropna()
    label, unit = _label_unit(column)
    if series.empty:
        raise DataError(f"candidate {column!r} has no values", source)
    if series.dtype == bool:
        series = series.astype(int)
    if pd.api.types.is_numeric_dtype(series):
        uniq = set(series.unique().tolist())
        if uniq <= {0, 1}:
            return Predictor(name=column, type="binary", label=label, column=column, unit=None)
        lo, hi = float(series.min()), float(series.max())
        if lo == hi:
            raise DataError(f"candidate {column!r} is constant ({lo:g})", source)
        return Predictor(
            name=column,
            type="continuous",
            label=label,
            column=column,
            unit=unit,
            plausible_range=(lo, hi),
        )
    text = series.astype(str).str.strip()
    num = pd.to_numeric(text, errors="coerce")
    if num.notna().mean() >= 0.8:
        bad = text[num.isna()].unique().tolist()[:3]
        raise DataError(
            f"candidate {column!r} looks numeric but has non-numeric value(s) {bad}", source
        )
    counts = text.value_counts()
    if len(counts) > MAX_LEVELS:
        raise DataError(
            f"candidate {column!r} is text with {len(counts)} distinct values: not a usable "
            f"categorical predictor (at most {MAX_LEVELS} levels)",
            source,
        )
    if len(counts) < 2:
        raise DataError(f"candidate {column!r} is constant ({counts.index[0]!r})", source)
    levels = sorted(counts.index.tolist())
    ref = sorted(counts[counts == counts.max()].index.tolist())[0]
    return Predictor(
        name=column,
        type="categorical",
        label=label,
        column=column,
        unit=None,
        levels=tuple(levels),
        reference_level=ref,
    )


def _separation(
    pred: Predictor, x: FloatArray, names: list[str], y: NDArray[np.int_]
) -> str | None:
    """Describe (quasi-)complete separation of ``y`` by one predictor, or None."""
    if pred.type == "continuous":
        v = x[:, 0]
        x0, x1 = v[y == 0], v[y == 1]
        if x0.max() < x1.min():
            return f"every event has {pred.name} > {x0.max():g} and no non-event does"
        if x1.max() < x0.min():
            return f"every event has {pred.name} < {x0.min():g} and no non-event does"
        return None
    if pred.type == "binary":
        for val in (0, 1):
            sel = x[:, 0] == val
            if sel.any() and (y[sel].min() == y[sel].max()):
                return (
                    f"all {int(sel.sum())} patients with {pred.name} = {val} have outcome "
                    f"{int(y[sel][0])}"
                )
        return None
    dummies = x.astype(bool)
    ref = ~dummies.any(axis=1)
    for name, sel in [(f"{pred.name} = {pred.reference_level}", ref)] + [
        (f"{pred.name} = {n[len(pred.name) + 1 : -1]}", dummies[:, j]) for j, n in enumerate(names)
    ]:
        if sel.any() and (y[sel].min() == y[sel].max()):
            return f"all {int(sel.sum())} patients with {name} have outcome {int(y[sel][0])}"
    return None


# ----------------------------------------------------------------------------- LASSO


def _deviance(y: NDArray[np.int_], p: FloatArray) -> float:
    q = np.clip(p, 1e-12, 1 - 1e-12)
    return float(-2 * np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))


def _lasso_path(
    x: FloatArray, y: NDArray[np.int_], lambdas: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Coefficients (standardised scale) and intercepts along ``lambdas`` (descending)."""
    from sklearn.linear_model import LogisticRegression

    n = y.size
    coefs = np.zeros((lambdas.size, x.shape[1]))
    icpt = np.zeros(lambdas.size)
    model = LogisticRegression(
        l1_ratio=1.0, solver="liblinear", tol=1e-7, max_iter=10_000, intercept_scaling=100.0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, lam in enumerate(lambdas):
            model.set_params(C=1.0 / (lam * n))
            model.fit(x, y)
            coefs[i] = model.coef_[0]
            icpt[i] = model.intercept_[0]
    return coefs, icpt


def _standardise(x: FloatArray, ref: FloatArray) -> FloatArray:
    mu = ref.mean(axis=0)
    sd = ref.std(axis=0)
    sd[sd == 0] = 1.0
    return np.asarray((x - mu) / sd, dtype=float)


def lasso_cv(
    x: FloatArray,
    y: NDArray[np.int_],
    terms: list[str],
    seed: int,
    n_folds: int = 10,
    rule: str = "1se",
) -> tuple[LassoResult, FloatArray]:
    """10-fold CV of the L1 path; returns the result and the coefficients at the chosen lambda."""
    from sklearn.model_selection import StratifiedKFold

    n = y.size
    xs = _standardise(x, x)
    lam_max = float(np.max(np.abs(xs.T @ (y - y.mean()))) / n)
    lambdas = lam_max * np.logspace(0, math.log10(LAMBDA_MIN_RATIO), N_LAMBDAS)
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    dev = np.zeros((n_folds, lambdas.size))
    weights = np.zeros(n_folds)
    for k, (tr, te) in enumerate(folds.split(x, y)):
        xtr = _standardise(x[tr], x[tr])
        xte = _standardise(x[te], x[tr])
        coefs, icpt = _lasso_path(xtr, y[tr], lambdas)
        for i in range(lambdas.size):
            lp = icpt[i] + xte @ coefs[i]
            dev[k, i] = _deviance(y[te], 1 / (1 + np.exp(-lp)))
        weights[k] = te.size
    cvm = np.average(dev, axis=0, weights=weights)
    cvsd = np.sqrt(np.average((dev - cvm) ** 2, axis=0, weights=weights) / (n_folds - 1))
    i_min = int(np.argmin(cvm))
    i_1se = int(np.flatnonzero(cvm <= cvm[i_min] + cvsd[i_min])[0])
    full_coefs, _ = _lasso_path(xs, y, lambdas)
    chosen = full_coefs[i_1se if rule == "1se" else i_min]
    sel = [t for t, c in zip(terms, chosen, strict=True) if abs(c) > 1e-8]
    res = LassoResult(
        lambdas=lambdas.tolist(),
        cv_deviance=cvm.tolist(),
        cv_deviance_se=cvsd.tolist(),
        lambda_min=float(lambdas[i_min]),
        lambda_1se=float(lambdas[i_1se]),
        rule=rule,
        coefficients_min=dict(zip(terms, full_coefs[i_min].tolist(), strict=True)),
        coefficients_1se=dict(zip(terms, full_coefs[i_1se].tolist(), strict=True)),
        selected=sel,
        n_folds=n_folds,
    )
    return res, chosen


# ----------------------------------------------------------------------------- refit


@dataclass(frozen=True)
class LogitFit:
    params: FloatArray
    bse: FloatArray
    ci: FloatArray
    pvalues: FloatArray
    terms: list[str]

    def predict(self, x: FloatArray) -> FloatArray:
        lp = self.params[0] + x @ self.params[1:]
        return np.asarray(1 / (1 + np.exp(-lp)), dtype=float)


def logit_fit(x: FloatArray, y: NDArray[np.int_], terms: list[str]) -> LogitFit:
    """Unpenalised logistic regression (statsmodels); DataError on separation / no convergence."""
    import statsmodels.api as sm

    xc = np.column_stack([np.ones(y.size), x])
    if np.linalg.matrix_rank(xc) < xc.shape[1]:
        raise DataError(f"the design is collinear (terms {', '.join(terms)})")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res = sm.Logit(y, xc).fit(method="newton", maxiter=100, disp=0)
        except Exception as exc:  # statsmodels raises PerfectSeparationError in some versions
            if "separation" in str(exc).lower() or type(exc).__name__ == "PerfectSeparationError":
                raise DataError(f"perfect separation in the multivariable model: {exc}") from None
            raise
    sep = [w for w in caught if "separation" in str(w.message).lower()]
    lp = xc @ res.params
    if sep or not res.mle_retvals.get("converged", True) or np.max(np.abs(lp)) > 30:
        raise DataError(
            "perfect separation in the multivariable model: the terms "
            f"{', '.join(terms)} predict the outcome (almost) perfectly, so the maximum-"
            "likelihood coefficients are infinite; remove or merge the offending predictor"
        )
    params = np.asarray(res.params, dtype=float)
    bse = np.asarray(res.bse, dtype=float)
    return LogitFit(
        params,
        bse,
        np.asarray(res.conf_int(0.05), dtype=float),
        np.asarray(res.pvalues, dtype=float),
        terms,
    )


def newton_logit(x: FloatArray, y: NDArray[np.int_], max_iter: int = 50) -> FloatArray:
    """Plain Newton-Raphson logistic regression (intercept first); the fast refit used inside
    bootstrap loops (same estimates as statsmodels ``Logit``). DataError on separation /
    non-convergence."""
    xc = np.column_stack([np.ones(y.size), x])
    beta = np.zeros(xc.shape[1])
    for _ in range(max_iter):
        lp = xc @ beta
        if np.max(np.abs(lp)) > 30:
            raise DataError("separation in a refit (|linear predictor| > 30)")
        mu = 1 / (1 + np.exp(-lp))
        w = mu * (1 - mu)
        grad = xc.T @ (y - mu)
        hess = (xc * w[:, None]).T @ xc
        step = np.linalg.solve(hess, grad)
        beta = beta + step
        if np.max(np.abs(step)) < 1e-8:
            return beta
    raise DataError("logistic refit did not converge")


def _predict(beta: FloatArray, x: FloatArray) -> FloatArray:
    return np.asarray(1 / (1 + np.exp(-(beta[0] + x @ beta[1:]))), dtype=float)


def refit_predict(
    x: FloatArray, y: NDArray[np.int_]
) -> Callable[[NDArray[np.int_], NDArray[np.int_]], tuple[FloatArray, FloatArray]]:
    """The ``fit_predict`` callback of :func:`rcsa.nomogram.metrics.optimism_bootstrap` for an
    unpenalised logistic model on the design ``x``."""

    def fit_predict(
        idx: NDArray[np.int_], all_idx: NDArray[np.int_]
    ) -> tuple[FloatArray, FloatArray]:
        beta = newton_logit(x[idx], y[idx])
        return _predict(beta, x[idx]), _predict(beta, x[all_idx])

    return fit_predict


def selection_refit_predict(
    x: FloatArray, y: NDArray[np.int_], terms: list[str], groups: list[list[int]], seed: int,
    rule: str,
) -> Callable[[NDArray[np.int_], NDArray[np.int_]], tuple[FloatArray, FloatArray]]:
    """``fit_predict`` repeating the whole procedure in each resample: LASSO 10-fold CV on the
    resample (same rule), then the unpenalised refit of the selected predictors (``groups``:
    the design columns of each candidate predictor). An empty selection predicts the
    resample's event rate."""

    def fit_predict(
        idx: NDArray[np.int_], all_idx: NDArray[np.int_]
    ) -> tuple[FloatArray, FloatArray]:
        xb, yb = x[idx], y[idx]
        res, _ = lasso_cv(xb, yb, terms, seed=seed, rule=rule)
        chosen = set(res.selected)
        cols = [c for g in groups if any(terms[i] in chosen for i in g) for c in g]
        if not cols:
            rate = float(yb.mean())
            return np.full(idx.size, rate), np.full(all_idx.size, rate)
        beta = newton_logit(xb[:, cols], yb)
        return _predict(beta, xb[:, cols]), _predict(beta, x[all_idx][:, cols])

    return fit_predict


# ----------------------------------------------------------------------------- the workflow


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _nice_range(lo: float, hi: float) -> list[float]:
    """Round outward to 2 significant digits of the span."""
    span = hi - lo
    step = 10 ** math.floor(math.log10(span)) / 10 if span > 0 else 1.0
    return [round(math.floor(lo / step) * step, 10), round(math.ceil(hi / step) * step, 10)]


def _auc_ci(y: NDArray[np.int_], p: FloatArray) -> tuple[float, tuple[float, float]]:
    a, se = metrics.auc_delong(y, p)
    return a, (max(0.0, a - 1.959963984540054 * se), min(1.0, a + 1.959963984540054 * se))


def fit(
    data: Path,
    outcome: str,
    out: Path | None = None,
    *,
    candidates: Sequence[str] | None = None,
    validation: Path | None = None,
    split: float | None = None,
    seed: int = 20260701,
    lambda_rule: str = "1se",
    name: str | None = None,
    cohort: str | None = None,
    intended_use: str | None = None,
    demonstration: bool = False,
    id_column: str = "scan_id",
    risk_cutoffs: Sequence[float] = (0.10, 0.30),
    n_bootstrap: int = 200,
    optimism_with_selection: bool = False,
    overwrite: bool = False,
) -> FitResult:
    """Fit a nomogram model and (with ``out``) write its spec (JSON/YAML, atomic)."""
    if out is not None:
        dump_spec({}, Path(out))  # refuses unknown suffixes before any work
        check_writable(Path(out), overwrite)
    if validation is not None and split is not None:
        raise DataError("give either a validation file or --split, not both")
    if split is not None and not 0.05 <= split <= 0.5:
        raise DataError(f"--split must be between 0.05 and 0.5, got {split}")
    if n_bootstrap != 0 and n_bootstrap < 200:
        raise DataError(f"the optimism bootstrap needs at least 200 resamples, got {n_bootstrap}")
    if lambda_rule not in ("1se", "min"):
        raise DataError(f"lambda rule must be '1se' or 'min', got {lambda_rule!r}")
    table = read_table(data)
    y_all = outcome_vector(table, outcome, data)
    warn: list[str] = []
    if candidates:
        unknown = [c for c in candidates if c not in table.columns]
        if unknown:
            raise DataError(
                f"unknown candidate predictor(s) {unknown}: not columns of the table "
                f"(columns: {', '.join(map(str, table.columns))})",
                data,
            )
        if outcome in candidates:
            raise DataError(f"the outcome {outcome!r} cannot be a candidate predictor", data)
        cands = list(dict.fromkeys(candidates))
    else:
        cands = [c for c in table.columns if c not in (outcome, id_column)]
    if not cands:
        raise DataError("no candidate predictors", data)
    for c in cands:
        if str(c).lower() == "id" or str(c).lower().endswith("_id"):
            warn.append(
                f"candidate {c!r} looks like an identifier; exclude it with --id-column "
                "or --candidates"
            )
    complete = table[cands].notna().all(axis=1).to_numpy()
    if not complete.all():
        warn.append(
            f"{int((~complete).sum())} row(s) with missing predictor values dropped "
            "(complete-case analysis)"
        )
    table = table.loc[complete].reset_index(drop=True)
    y_all = y_all[complete]
    outcome_vector(table, outcome, data)  # still two classes after dropping?
    preds = [infer_predictor(table, c, data) for c in cands]

    # train / validation
    if split is not None:
        from sklearn.model_selection import train_test_split

        idx_tr, idx_va = train_test_split(
            np.arange(y_all.size), test_size=split, stratify=y_all, random_state=seed
        )
        train, valid = table.iloc[np.sort(idx_tr)], table.iloc[np.sort(idx_va)]
        preds = [infer_predictor(train, c, data) for c in cands]
    else:
        train, valid = table, None
        if validation is not None:
            valid = read_table(validation)
            outcome_vector(valid, outcome, validation)
    y = outcome_vector(train, outcome, data)
    x, terms = design_matrix(preds, train)
    events = int(y.sum())
    if events / max(len(terms), 1) < 10:
        warn.append(
            f"{events} events for {len(terms)} candidate term(s): fewer than 10 events "
            "per candidate; estimates are unstable"
        )
    for pred in preds:
        cols = [i for i, t in enumerate(terms) if t == pred.name or t.startswith(pred.name + "[")]
        why = _separation(pred, x[:, cols], [terms[i] for i in cols], y)
        if why:
            raise DataError(
                f"perfect separation by candidate {pred.name!r}: {why}; its odds ratio would be "
                "infinite (remove it, merge levels, or use a penalised model)",
                data,
            )

    lasso, _ = lasso_cv(x, y, terms, seed=seed, rule=lambda_rule)
    chosen_preds = [
        p for p in preds if any(t == p.name or t.startswith(p.name + "[") for t in lasso.selected)
    ]
    if not chosen_preds:
        raise DataError(
            f"LASSO at lambda.{lambda_rule} selected no predictor: the candidates carry no "
            "detectable signal (try --lambda min, more data, or other candidates)",
            data,
        )
    xs, sterms = design_matrix(chosen_preds, train)
    lf = logit_fit(xs, y, sterms)
    p_train = lf.predict(xs)
    auc_tr, ci_tr = _auc_ci(y, p_train)

    if optimism_with_selection:
        groups = [
            [i for i, t in enumerate(terms) if t == p.name or t.startswith(p.name + "[")]
            for p in preds
        ]
        callback = selection_refit_predict(x, y, terms, groups, seed, lambda_rule)
        note = "whole procedure per resample: LASSO 10-fold CV selection + refit"
    else:
        callback = refit_predict(xs, y)
        note = "multivariable refit per resample; LASSO selection not repeated"
    opt = (
        metrics.optimism_bootstrap(y, callback, auc_tr, n_bootstrap, seed)
        if n_bootstrap > 0
        else None
    )

    table_rows: list[dict[str, Any]] = []
    for j, t in enumerate(["(intercept)", *sterms]):
        table_rows.append(
            {
                "term": t,
                "coefficient": float(lf.params[j]),
                "se": float(lf.bse[j]),
                "odds_ratio": float(math.exp(lf.params[j])),
                "or_ci95": [float(math.exp(lf.ci[j, 0])), float(math.exp(lf.ci[j, 1]))],
                "coefficient_ci95": [float(lf.ci[j, 0]), float(lf.ci[j, 1])],
                "p_value": float(lf.pvalues[j]),
            }
        )

    n_va: int | None = None
    auc_va: float | None = None
    ci_va: tuple[float, float] | None = None
    if valid is not None:
        yv = outcome_vector(valid, outcome, validation or data)
        xv, _ = design_matrix(chosen_preds, valid)
        ok = ~np.isnan(xv).any(axis=1)
        if not ok.all():
            warn.append(f"{int((~ok).sum())} validation row(s) with missing values dropped")
        pv = lf.predict(xv[ok])
        n_va = int(ok.sum())
        auc_va, ci_va = _auc_ci(yv[ok], pv)

    coef_by_term = dict(zip(sterms, lf.params[1:].tolist(), strict=True))
    spec_preds: list[dict[str, Any]] = []
    for p in chosen_preds:
        d: dict[str, Any] = {
            "name": p.name,
            "label": p.label,
            "column": p.column,
            "unit": p.unit,
            "type": p.type,
        }
        if p.type == "continuous":
            assert p.plausible_range is not None
            d["transform"] = "none"
            d["plausible_range"] = _nice_range(*p.plausible_range)
            d["coefficient"] = coef_by_term[p.name]
        elif p.type == "binary":
            d["coefficient"] = coef_by_term[p.name]
        else:
            d["levels"] = list(p.levels)
            d["reference_level"] = p.reference_level
            d["coefficient"] = {
                t[len(p.name) + 1 : -1]: c
                for t, c in coef_by_term.items()
                if t.startswith(p.name + "[")
            }
        spec_preds.append(d)
    use = intended_use or (
        "demonstration - not for clinical use"
        if demonstration
        else "research use: risk of the outcome in the population of the "
        "development cohort; not validated for clinical decisions"
    )
    spec = base_spec_dict(
        name or f"{Path(data).stem}-{outcome}", outcome, use, cohort=cohort or Path(data).name
    )
    spec["outcome"]["label"] = _label_unit(outcome)[0] if outcome in KNOWN_COLUMNS else outcome
    spec["disclaimer"] = DEMO_DISCLAIMER if demonstration else None
    spec["description"] = (
        f"LASSO logistic (10-fold CV, lambda.{lambda_rule}) selection, "
        "multivariable logistic refit (statsmodels)"
    )
    spec["predictors"] = spec_preds
    spec["intercept"] = float(lf.params[0])
    labels = ["low", "intermediate", "high", "very high", "highest"][: len(risk_cutoffs) + 1]
    if len(risk_cutoffs) > 4:
        labels = [f"group {i + 1}" for i in range(len(risk_cutoffs) + 1)]
    if risk_cutoffs:
        spec["risk_groups"] = {
            "on": "probability",
            "cutoffs": [float(c) for c in risk_cutoffs],
            "labels": labels,
        }
    spec["provenance"] = {
        "cohort": spec["provenance"]["cohort"],
        "rows_used": "training part of a stratified split" if split else "all complete rows",
        "n": int(y.size),
        "events": events,
        "auc_training": round(auc_tr, 4),
        "auc_training_ci95": [round(ci_tr[0], 4), round(ci_tr[1], 4)],
        "auc_training_optimism_corrected": None if opt is None else round(opt.corrected, 4),
        "auc_validation": None if auc_va is None else round(auc_va, 4),
        "auc_validation_ci95": None if ci_va is None else [round(ci_va[0], 4), round(ci_va[1], 4)],
        "n_validation": n_va,
        "validation": ("split" if split else "file" if validation else "none"),
        "data_file": Path(data).name,
        "data_sha256": _sha256(Path(data)),
        "candidates": cands,
        "lasso": {
            "lambda_min": lasso.lambda_min,
            "lambda_1se": lasso.lambda_1se,
            "rule": lambda_rule,
            "folds": lasso.n_folds,
            "seed": seed,
            "selected_terms": lasso.selected,
        },
        "multivariable": table_rows,
        "bootstrap": None
        if opt is None
        else {
            "resamples": opt.n_resamples,
            "failed": opt.n_failed,
            "seed": seed,
            "note": note,
        },
        "fitted_with": f"rcsa {__version__} nomogram fit",
        "fitted_at": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if split is not None:
        spec["provenance"]["split"] = split
    spec["citation"] = None
    spec_from_dict(spec)
    if out is not None:
        save_spec(spec, Path(out), overwrite=overwrite)
    return FitResult(
        spec,
        lasso,
        table_rows,
        int(y.size),
        events,
        auc_tr,
        ci_tr,
        None if opt is None else opt.corrected,
        n_va,
        auc_va,
        ci_va,
        out,
        warn,
    )
