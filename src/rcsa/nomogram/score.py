"""Scoring with a model spec: linear predictor, probability, rms-style points, risk group.

Points follow Harrell's ``rms::nomogram``: every predictor's contribution ``beta * x`` is
shifted so that its smallest value over the predictor's plausible range (or its levels) scores
0, and the whole scale is stretched so that the predictor with the widest effect (largest
max - min contribution) spans 0-100 points. Total points are the sum; since the shifts are
constants, ``LP = lp_at_zero_points + total_points / points_per_lp``. The scale itself
(:func:`points_scale`) lives in :mod:`rcsa.nomogram.spec`, which checks it when a spec with
coefficients is loaded; it is re-exported here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rcsa.errors import DataError, ScoringError
from rcsa.nomogram._io import atomic_write, read_table
from rcsa.nomogram.spec import ModelSpec, Predictor, _require_coefficients, load_spec
from rcsa.nomogram.spec import PointsScale as PointsScale  # re-exported
from rcsa.nomogram.spec import contribution as contribution  # re-exported
from rcsa.nomogram.spec import points_scale as points_scale  # re-exported
from rcsa.nomogram.spec import predictor_points as predictor_points  # re-exported

_TRUE = {"1", "1.0", "true", "yes", "y"}
_FALSE = {"0", "0.0", "false", "no", "n"}


@dataclass(frozen=True)
class Score:
    """The score of one patient."""

    model: str
    linear_predictor: float
    probability: float
    points: dict[str, float]
    total_points: float
    risk_group: str | None
    flags: tuple[str, ...] = ()
    disclaimer: str | None = None
    values: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "disclaimer": self.disclaimer,
            "values": self.values,
            "linear_predictor": self.linear_predictor,
            "probability": self.probability,
            "points": self.points,
            "total_points": self.total_points,
            "risk_group": self.risk_group,
            "flags": list(self.flags),
        }


def parse_value(pred: Predictor, raw: Any) -> float | str:
    """Read one raw value (CLI text, CSV cell) as the predictor's type; ScoringError if unusable."""
    if (
        raw is None
        or (isinstance(raw, float) and math.isnan(raw))
        or (isinstance(raw, str) and raw.strip() == "")
    ):
        raise ScoringError(f"missing value for predictor {pred.name!r}")
    if pred.type == "continuous":
        if isinstance(raw, bool):
            raise ScoringError(f"predictor {pred.name!r} is continuous; got the boolean {raw!r}")
        try:
            x = float(raw)
        except (TypeError, ValueError):
            raise ScoringError(
                f"predictor {pred.name!r} is continuous ({pred.unit or 'no unit'}); "
                f"{raw!r} is not a number"
            ) from None
        if not math.isfinite(x):
            raise ScoringError(f"predictor {pred.name!r}: value {raw!r} is not finite")
        if (
            (pred.transform in ("log",)
            and x <= 0)
            or (pred.transform == "sqrt"
            and x < 0)
            or (pred.transform == "log1p" and x <= -1)
        ):
            raise ScoringError(
                f"predictor {pred.name!r}: transform {pred.transform} is undefined at {x}"
            )
        return x
    if pred.type == "binary":
        text = str(raw).strip().lower()
        if isinstance(raw, bool):
            return 1.0 if raw else 0.0
        if text in _TRUE:
            return 1.0
        if text in _FALSE:
            return 0.0
        if pred.levels:
            lowered = [lv.lower() for lv in pred.levels]
            if text in lowered:
                return float(lowered.index(text))
        allowed = "0/1, yes/no, true/false" + (
            f", {pred.levels[0]}/{pred.levels[1]}" if pred.levels else ""
        )
        raise ScoringError(f"predictor {pred.name!r} is binary ({allowed}); got {raw!r}")
    text = str(raw).strip()
    if text not in pred.levels:
        raise ScoringError(
            f"predictor {pred.name!r} is categorical with levels {list(pred.levels)}; got {raw!r}"
        )
    return text


def _range_flag(pred: Predictor, value: float | str) -> str | None:
    if pred.type != "continuous" or pred.plausible_range is None:
        return None
    lo, hi = pred.plausible_range
    assert isinstance(value, float)
    if lo <= value <= hi:
        return None
    unit = f" {pred.unit}" if pred.unit else ""
    return (
        f"{pred.name}={value:g} outside plausible range [{lo:g}, {hi:g}]{unit}: points extrapolated"
    )


def _lookup(spec: ModelSpec, pred: Predictor, values: Mapping[str, Any]) -> Any:
    if pred.name in values:
        return values[pred.name]
    if pred.column in values:
        return values[pred.column]
    unit = f", {pred.unit}" if pred.unit else ""
    raise ScoringError(
        f"missing predictor {pred.name!r} ({pred.label}{unit}) required by model {spec.name!r}"
        + (f" (column {pred.column!r})" if pred.column != pred.name else "")
    )


def score_patient(spec: ModelSpec, values: Mapping[str, Any]) -> Score:
    """Score one patient given ``values`` keyed by predictor name (or its column name)."""
    _require_coefficients(spec)
    known = {p.name for p in spec.predictors} | {p.column for p in spec.predictors}
    scale = points_scale(spec)
    parsed: dict[str, float | str] = {}
    for pred in spec.predictors:
        parsed[pred.name] = parse_value(pred, _lookup(spec, pred, values))
    unknown = sorted(set(values) - known)
    flags = [f for p in spec.predictors if (f := _range_flag(p, parsed[p.name]))]
    if unknown:
        flags.append(f"ignored value(s) not in the model: {', '.join(unknown)}")
    assert spec.intercept is not None
    lp = spec.intercept + sum(contribution(p, parsed[p.name]) for p in spec.predictors)
    pts = {p.name: predictor_points(spec, scale, p, parsed[p.name]) for p in spec.predictors}
    total = float(sum(pts.values()))
    prob = _expit(lp)
    group = spec.risk_groups.group(prob, total) if spec.risk_groups else None
    return Score(
        model=spec.name,
        linear_predictor=lp,
        probability=prob,
        points=pts,
        total_points=total,
        risk_group=group,
        flags=tuple(flags),
        disclaimer=spec.disclaimer,
        values=dict(parsed),
    )


def _expit(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def score_frame(spec: ModelSpec, table: pd.DataFrame, id_column: str | None = None) -> pd.DataFrame:
    """Score every row. A predictor column that is absent raises :class:`ScoringError`
    naming it; a row with a missing or unusable value gets empty scores and a ``reason``."""
    _require_coefficients(spec)
    for pred in spec.predictors:
        if pred.name not in table.columns and pred.column not in table.columns:
            unit = f", {pred.unit}" if pred.unit else ""
            raise ScoringError(
                f"missing predictor {pred.name!r} ({pred.label}{unit}): the table has no column "
                f"{pred.column!r}; add it (e.g. from the clinical CSV) or with --set "
                f"{pred.name}=VALUE"
            )
    rows: list[dict[str, Any]] = []
    records = table.to_dict(orient="records")
    for rec in records:
        out: dict[str, Any] = {}
        if id_column is not None and id_column in rec:
            out[id_column] = rec[id_column]
        try:
            s = score_patient(spec, {p.name: _lookup(spec, p, rec) for p in spec.predictors})
        except ScoringError as exc:
            out.update(_empty_row(spec))
            out["reason"] = exc.reason
            rows.append(out)
            continue
        for name, pts in s.points.items():
            out[f"points_{name}"] = pts
        out["total_points"] = s.total_points
        out["linear_predictor"] = s.linear_predictor
        out["probability"] = s.probability
        out["risk_group"] = s.risk_group
        out["flags"] = "; ".join(s.flags)
        out["reason"] = ""
        rows.append(out)
    frame = pd.DataFrame(rows)
    frame["model"] = spec.name
    frame["disclaimer"] = spec.disclaimer or ""
    return frame


def _empty_row(spec: ModelSpec) -> dict[str, Any]:
    row: dict[str, Any] = {f"points_{p.name}": np.nan for p in spec.predictors}
    row.update(
        total_points=np.nan, linear_predictor=np.nan, probability=np.nan, risk_group="", flags=""
    )
    return row


def merge_tables(
    features: pd.DataFrame,
    clinical: pd.DataFrame,
    id_column: str,
    features_path: Path | None = None,
    clinical_path: Path | None = None,
) -> pd.DataFrame:
    """Left-join the clinical table onto the feature table on ``id_column`` (one row per id)."""
    for frame, path, what in (
        (features, features_path, "feature"),
        (clinical, clinical_path, "clinical"),
    ):
        if id_column not in frame.columns:
            raise DataError(f"the {what} table has no id column {id_column!r}", path)
        dups = frame[id_column][frame[id_column].duplicated()].astype(str).unique().tolist()
        if dups:
            raise DataError(
                f"duplicate {id_column} in the {what} table: {', '.join(dups[:5])}", path
            )
    left = features.copy()
    right = clinical.copy()
    left[id_column] = left[id_column].astype(str)
    right[id_column] = right[id_column].astype(str)
    both = sorted((set(left.columns) & set(right.columns)) - {id_column})
    if both:
        raise DataError(
            f"columns in both the feature and the clinical table: {', '.join(both)}", clinical_path
        )
    missing = sorted(set(left[id_column]) - set(right[id_column]))
    merged = left.merge(right, on=id_column, how="left")
    if missing:
        merged.attrs["warnings"] = [
            f"{len(missing)} id(s) without clinical row: {', '.join(missing[:5])}"
        ]
    return merged


def parse_assignments(items: Sequence[str]) -> dict[str, str]:
    """``["age_years=72", "sex=male"]`` -> dict; ScoringError for malformed items."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ScoringError(f"--set expects NAME=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


@dataclass(frozen=True)
class ScoreResult:
    """What :func:`score` returns to the CLI."""

    spec: ModelSpec
    table: pd.DataFrame | None
    patient: Score | None
    out: Path | None
    warnings: tuple[str, ...] = ()


def score(
    model: str | Path,
    table: Path | None = None,
    *,
    clinical: Path | None = None,
    id_column: str = "scan_id",
    assignments: Sequence[str] = (),
    out: Path | None = None,
    overwrite: bool = False,
) -> ScoreResult:
    """Score one patient (``assignments`` only) or a table (optionally merged with a clinical
    CSV on ``id_column``; ``assignments`` then fill columns for every row). With ``out`` the
    table is written as CSV (atomic; refuses to overwrite)."""
    spec = load_spec(model)
    _require_coefficients(spec)
    values = parse_assignments(assignments)
    if table is None:
        if clinical is not None:
            frame = read_table(clinical)
        else:
            return ScoreResult(spec, None, score_patient(spec, values), None)
    else:
        frame = read_table(table)
        if clinical is not None:
            frame = merge_tables(frame, read_table(clinical), id_column, table, clinical)
    warnings = list(frame.attrs.get("warnings", []))
    by_key = {p.name: p for p in spec.predictors} | {p.column: p for p in spec.predictors}
    for key, value in values.items():
        if key in by_key:
            parse_value(by_key[key], value)  # a bad --set value fails once, not on every row
        frame[key] = value
    scored = score_frame(spec, frame, id_column if id_column in frame.columns else None)
    n_bad = int((scored["reason"] != "").sum())
    if n_bad and n_bad == len(scored):
        raise ScoringError(f"no row could be scored; first reason: {scored['reason'].iloc[0]}")
    if n_bad:
        warnings.append(f"{n_bad} row(s) not scored (see the reason column)")
    if out is not None:
        atomic_write(Path(out), lambda tmp: scored.to_csv(tmp, index=False), overwrite)
    return ScoreResult(spec, scored, None, out, tuple(warnings))


def describe(model: str | Path) -> dict[str, Any]:
    """A summary of a spec for display: fields, predictors, coefficients, points ranges."""
    spec = load_spec(model)
    scale = points_scale(spec) if spec.has_coefficients else None
    preds = []
    for p in spec.predictors:
        row: dict[str, Any] = {
            "name": p.name,
            "label": p.label,
            "column": p.column,
            "type": p.type,
            "unit": p.unit,
            "transform": p.transform,
            "plausible_range": p.plausible_range,
            "levels": list(p.levels),
            "reference_level": p.reference_level,
            "coefficient": p.coefficient,
        }
        if scale is not None:
            lo, hi = scale.contribution_range[p.name]
            row["max_points"] = (hi - lo) * scale.points_per_lp
        preds.append(row)
    return {
        "name": spec.name,
        "model_version": spec.model_version,
        "status": spec.status,
        "spec_version": spec.spec_version,
        "source": spec.source,
        "outcome": spec.outcome,
        "intended_use": spec.intended_use,
        "disclaimer": spec.disclaimer,
        "intercept": spec.intercept,
        "predictors": preds,
        "risk_groups": None
        if spec.risk_groups is None
        else {
            "on": spec.risk_groups.on,
            "cutoffs": list(spec.risk_groups.cutoffs),
            "labels": list(spec.risk_groups.labels),
        },
        "points_per_lp": None if scale is None else scale.points_per_lp,
        "max_total_points": None if scale is None else scale.max_total_points,
        "provenance": spec.provenance,
        "citation": spec.citation,
    }
