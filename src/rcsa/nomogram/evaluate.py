"""``rcsa nomogram evaluate``: discrimination, calibration and clinical usefulness of risks.

Predicted risks come from a column (``prob_column``) or from a model spec applied to the
table (``model``). Measures (references in ``docs/nomogram.md``): AUC with DeLong SE and 95 %
CI; Efron-Gong optimism-corrected AUC (model only: the spec's predictors are refitted in every
bootstrap resample); calibration intercept and slope; grouped and LOWESS calibration curve;
Hosmer-Lemeshow (g = 10); Brier score; net benefit by threshold vs treat-all / treat-none.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from rcsa import __version__
from rcsa.errors import DataError
from rcsa.nomogram import metrics
from rcsa.nomogram._io import atomic_write_text, check_writable, read_table
from rcsa.nomogram.design import FloatArray, design_matrix
from rcsa.nomogram.fit import logit_fit, outcome_vector, refit_predict
from rcsa.nomogram.spec import ModelSpec, _require_coefficients, load_spec

Z95 = 1.959963984540054
FIGURES = ("roc", "calibration", "dca", "nomogram")


@dataclass(frozen=True)
class EvaluationResult:
    result: dict[str, Any]
    json_out: Path | None
    figures: list[Path] = field(default_factory=list)


def coefficient_vector(spec: ModelSpec) -> FloatArray:
    """Coefficients in the order of :func:`design_matrix`'s terms."""
    out: list[float] = []
    for p in spec.predictors:
        if p.type == "categorical":
            assert isinstance(p.coefficient, dict)
            out.extend(p.coefficient[lv] for lv in p.levels if lv != p.reference_level)
        else:
            assert isinstance(p.coefficient, float)
            out.append(p.coefficient)
    return np.asarray(out, dtype=float)


def predict(spec: ModelSpec, x: FloatArray) -> FloatArray:
    assert spec.intercept is not None
    lp = spec.intercept + x @ coefficient_vector(spec)
    return np.asarray(1 / (1 + np.exp(-lp)), dtype=float)


def evaluate_arrays(
    y: NDArray[np.int_],
    p: FloatArray,
    *,
    thresholds: Sequence[float] = metrics.DEFAULT_THRESHOLDS,
    groups: int = 10,
) -> dict[str, Any]:
    """Every measure that needs only outcomes and predicted risks."""
    y, p = metrics.check_binary(y, p)
    auc, se = metrics.auc_delong(y, p)
    cal_a, cal_b = metrics.calibration_intercept_slope(y, p)
    hl = metrics.hosmer_lemeshow(y, p, groups)
    return {
        "n": int(y.size),
        "events": int(y.sum()),
        "prevalence": float(y.mean()),
        "auc": auc,
        "auc_se_delong": se,
        "auc_ci95": [max(0.0, auc - Z95 * se), min(1.0, auc + Z95 * se)],
        "brier": metrics.brier(y, p),
        "calibration_intercept": cal_a,
        "calibration_slope": cal_b,
        "calibration_curve": metrics.calibration_curve(y, p, groups),
        "hosmer_lemeshow": {
            "statistic": hl.statistic,
            "df": hl.df,
            "p_value": hl.p_value,
            "groups": hl.groups,
            "g": groups,
        },
        "net_benefit": metrics.net_benefit(y, p, thresholds),
    }


def evaluate(
    data: Path,
    outcome: str,
    *,
    prob_column: str | None = None,
    model: str | Path | None = None,
    json_out: Path | None = None,
    figures: Path | None = None,
    n_bootstrap: int = 200,
    seed: int = 20260701,
    overwrite: bool = False,
) -> EvaluationResult:
    """Evaluate predicted risks on ``data``; optionally write JSON and figures (PNG + SVG)."""
    if (prob_column is None) == (model is None):
        raise DataError("give exactly one of a probability column (--prob) or a model (--model)")
    if n_bootstrap < 200:
        raise DataError(f"the optimism bootstrap needs at least 200 resamples, got {n_bootstrap}")
    if json_out is not None:
        check_writable(Path(json_out), overwrite)
    if figures is not None:
        if not Path(figures).is_dir():
            raise DataError("the figure folder does not exist", figures)
        for stem in FIGURES:
            for ext in ("png", "svg"):
                check_writable(Path(figures) / f"{stem}.{ext}", overwrite)
    table = read_table(data)
    y_all = outcome_vector(table, outcome, data)
    spec: ModelSpec | None = None
    warn: list[str] = []
    x: FloatArray | None = None
    if model is not None:
        spec = load_spec(model)
        _require_coefficients(spec)
        x, terms = design_matrix(spec.predictors, table)
        ok = ~np.isnan(x).any(axis=1)
        p_all = np.full(y_all.size, np.nan)
        p_all[ok] = predict(spec, x[ok])
        source = f"model {spec.name} ({spec.source})"
    else:
        assert prob_column is not None
        if prob_column not in table.columns:
            raise DataError(f"missing probability column {prob_column!r}", data)
        p_all = pd.to_numeric(table[prob_column], errors="coerce").to_numpy(dtype=float)
        bad = table[prob_column].notna().to_numpy() & np.isnan(p_all)
        if bad.any():
            raise DataError(f"probability column {prob_column!r} has non-numeric values", data)
        ok = ~np.isnan(p_all)
        source = f"column {prob_column}"
    if not ok.all():
        warn.append(f"{int((~ok).sum())} row(s) without a prediction (missing values) excluded")
    y, p = y_all[ok], p_all[ok]
    if y.size and y.min() == y.max():
        raise DataError(f"outcome {outcome!r} has a single class among the scored rows", data)
    res = evaluate_arrays(y, p)
    development: bool | None = None
    if spec is not None:
        digest = hashlib.sha256(Path(data).read_bytes()).hexdigest()
        development = spec.provenance.get("data_sha256") == digest
        if not development:
            warn.append(
                "DATA is not the model's development data (its sha256 differs from the spec's "
                "provenance): read the plain AUC as the validation AUC; the optimism-corrected "
                "AUC describes refitting the model's predictors on DATA"
            )
    res["data_is_development_data"] = development
    res["auc_optimism_corrected"] = None
    res["optimism"] = None
    res["bootstrap"] = None
    if spec is not None and x is not None:
        xs = x[ok]
        try:
            logit_fit(xs, y, terms)
        except DataError as exc:
            warn.append(
                f"optimism bootstrap skipped: refitting the model's predictors fails ({exc.reason})"
            )
        else:
            opt = metrics.optimism_bootstrap(y, refit_predict(xs, y), res["auc"], n_bootstrap, seed)
            res["auc_optimism_corrected"] = opt.corrected
            res["optimism"] = opt.optimism
            res["bootstrap"] = {
                "resamples": opt.n_resamples,
                "failed": opt.n_failed,
                "seed": seed,
                "method": "Efron-Gong optimism, refit of the "
                "spec's predictors (selection not repeated)",
            }
    else:
        warn.append(
            "optimism-corrected AUC needs --model (the model must be refitted in each "
            "bootstrap resample); not computed for a probability column"
        )
    header = {
        "data": str(data),
        "outcome": outcome,
        "predictions": source,
        "model": None if spec is None else spec.name,
        "model_version": None if spec is None else spec.model_version,
        "disclaimer": None if spec is None else spec.disclaimer,
        "rcsa_version": __version__,
    }
    result = {**header, **res, "warnings": warn}
    written: list[Path] = []
    if figures is not None:
        from rcsa.nomogram import plots

        title = spec.name if spec else f"{Path(data).name}: {prob_column}"
        disc = spec.disclaimer if spec else None
        figs = [
            ("roc", plots.roc_figure(y, p, result, title, disc)),
            ("calibration", plots.calibration_figure(y, p, result, title, disc)),
            ("dca", plots.dca_figure(result, title, disc)),
        ]
        if spec is not None:
            figs.append(("nomogram", plots.nomogram_figure(spec)))
        for stem, fig in figs:
            written += plots.save(fig, Path(figures) / stem, overwrite)
    if json_out is not None:
        atomic_write_text(Path(json_out), json.dumps(_clean(result), indent=2) + "\n", overwrite)
    return EvaluationResult(result, json_out, written)


def _clean(obj: Any) -> Any:
    """JSON-safe: NaN/inf -> null, numpy scalars -> Python."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def plot_nomogram(model: str | Path, out_dir: Path, overwrite: bool = False) -> list[Path]:
    """Write ``nomogram.png`` and ``nomogram.svg`` for a model into ``out_dir``."""
    from rcsa.nomogram import plots

    spec = load_spec(model)
    _require_coefficients(spec)
    if not Path(out_dir).is_dir():
        raise DataError("the figure folder does not exist", out_dir)
    for ext in ("png", "svg"):
        check_writable(Path(out_dir) / f"nomogram.{ext}", overwrite)
    return plots.save(plots.nomogram_figure(spec), Path(out_dir) / "nomogram", overwrite)
