"""Nomogram: model specs, scoring, fitting (LASSO + logistic) and evaluation.

Importing this package loads numpy, pandas, jsonschema and PyYAML only; scikit-learn,
statsmodels and matplotlib are imported by the functions that need them, and torch never.

>>> from rcsa.nomogram import load_spec, score_patient
>>> spec = load_spec("demo-rbp-simulated")          # demonstration - not for clinical use

Fitting and evaluation live in :mod:`rcsa.nomogram.fit` (``fit``) and
:mod:`rcsa.nomogram.evaluate` (``evaluate``, ``plot_nomogram``); metrics in
:mod:`rcsa.nomogram.metrics`; the simulated cohort in :mod:`rcsa.nomogram.simulate`.
"""

from __future__ import annotations

from rcsa.nomogram.score import (
    PointsScale,
    Score,
    ScoreResult,
    merge_tables,
    points_scale,
    score,
    score_frame,
    score_patient,
)
from rcsa.nomogram.spec import (
    BUILTIN_MODELS,
    DEMO_DISCLAIMER,
    ModelSpec,
    Predictor,
    RiskGroups,
    load_spec,
    save_spec,
    spec_from_dict,
    validate_spec_dict,
)

__all__ = [
    "BUILTIN_MODELS",
    "DEMO_DISCLAIMER",
    "ModelSpec",
    "PointsScale",
    "Predictor",
    "RiskGroups",
    "Score",
    "ScoreResult",
    "load_spec",
    "merge_tables",
    "points_scale",
    "save_spec",
    "score",
    "score_frame",
    "score_patient",
    "spec_from_dict",
    "validate_spec_dict",
]
