"""Nomogram: model specs, scoring, fitting (LASSO + logistic) and evaluation.

Importing this package loads nothing heavy: its names are imported on first use (the
scoring names load numpy, pandas, jsonschema and PyYAML; scikit-learn, statsmodels and
matplotlib are imported by the functions that need them, torch never), so that
``rcsa.nomogram.cli`` is cheap to register on ``rcsa --help``. The table scorer is
``rcsa.nomogram.score.score`` (the package name ``score`` is its module).

>>> from rcsa.nomogram import load_spec, score_patient
>>> spec = load_spec("demo-rbp-simulated")          # demonstration - not for clinical use

Fitting and evaluation live in :mod:`rcsa.nomogram.fit` (``fit``) and
:mod:`rcsa.nomogram.evaluate` (``evaluate``, ``plot_nomogram``); metrics in
:mod:`rcsa.nomogram.metrics`; the simulated cohort in :mod:`rcsa.nomogram.simulate`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rcsa._lazy import lazy_attributes

if TYPE_CHECKING:
    from rcsa.nomogram.score import (
        PointsScale,
        Score,
        ScoreResult,
        merge_tables,
        points_scale,
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

_LAZY = {
    "PointsScale": "rcsa.nomogram.score",
    "Score": "rcsa.nomogram.score",
    "ScoreResult": "rcsa.nomogram.score",
    "merge_tables": "rcsa.nomogram.score",
    "points_scale": "rcsa.nomogram.score",
    "score_frame": "rcsa.nomogram.score",
    "score_patient": "rcsa.nomogram.score",
    "BUILTIN_MODELS": "rcsa.nomogram.spec",
    "DEMO_DISCLAIMER": "rcsa.nomogram.spec",
    "ModelSpec": "rcsa.nomogram.spec",
    "Predictor": "rcsa.nomogram.spec",
    "RiskGroups": "rcsa.nomogram.spec",
    "load_spec": "rcsa.nomogram.spec",
    "save_spec": "rcsa.nomogram.spec",
    "spec_from_dict": "rcsa.nomogram.spec",
    "validate_spec_dict": "rcsa.nomogram.spec",
}

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
    "score_frame",
    "score_patient",
    "spec_from_dict",
    "validate_spec_dict",
]

__getattr__ = lazy_attributes(__name__, _LAZY)
