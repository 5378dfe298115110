"""A documented, seeded simulated cohort for the demonstration model and recovery tests.

Nothing here comes from the study: the distributions and the true coefficients below are
invented for demonstration and testing, and the shipped demonstration model fitted on this
cohort is labelled "demonstration - not for clinical use". Distributions (before clipping to
the ranges in :data:`RANGES`):

==================================================  ====================================  ======
column                                              distribution                          truth
==================================================  ====================================  ======
``age_years``                                       normal 72, SD 8 (correlated, below)   0
``sex``                                             female / male, P(male) = 0.25         0
``bmi_kg_m2``                                       normal 23.5, SD 3.2                   0
``bmd_t_score``                                     normal -3.0, SD 0.7 (correlated)      0
``diabetes``                                        0/1, P(1) = 0.2                       0
``procedure``                                       PKP / PVP, P(PVP) = 0.4               0
``femoral_head_top_gluteus_maximus_both_rcsa``      normal 3.2, SD 0.6 (correlated)       -1.4
``sij_lower_gluteus_medius_both_rcsa``              normal 2.0, SD 0.4 (correlated)       -2.0
``fractured_vertebrae_n``                           1 + binomial(3, 0.2)                  +1.0
``cement_volume_ml``                                normal 4.5, SD 1.3                    -0.5
==================================================  ====================================  ======

Correlations (Gaussian copula on the correlated block): age-gmax -0.30, age-gmed -0.25,
gmax-gmed +0.50, bmd-gmax +0.20, bmd-gmed +0.15, age-bmd -0.20. The outcome ``rbp`` is
Bernoulli(expit(``TRUE_INTERCEPT`` + sum(truth * x))); ``TRUE_INTERCEPT`` was solved once
(on 2 000 000 simulated patients) so that the expected event rate is 17.5 %. The default
seed, 18, is the first seed >= 1 whose 428-patient cohort has exactly 75 events (17.5 %).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray

DEFAULT_N = 428
DEFAULT_SEED = 18
OUTCOME = "rbp"
ID_COLUMN = "scan_id"
GMAX = "femoral_head_top_gluteus_maximus_both_rcsa"
GMED = "sij_lower_gluteus_medius_both_rcsa"

#: True log-odds coefficients per unit of each column (0 for the noise predictors).
TRUE_COEFFICIENTS: dict[str, float] = {
    GMAX: -1.4,
    GMED: -2.0,
    "fractured_vertebrae_n": 1.0,
    "cement_volume_ml": -0.5,
    "age_years": 0.0,
    "bmi_kg_m2": 0.0,
    "bmd_t_score": 0.0,
    "diabetes": 0.0,
    "sex": 0.0,
    "procedure": 0.0,
}
#: Intercept giving an expected 17.5 % event rate (see module docstring).
TRUE_INTERCEPT = 6.8616
TRUE_PREDICTORS: tuple[str, ...] = (GMAX, GMED, "fractured_vertebrae_n", "cement_volume_ml")

RANGES: dict[str, tuple[float, float]] = {
    "age_years": (50.0, 95.0),
    "bmi_kg_m2": (15.0, 38.0),
    "bmd_t_score": (-5.5, -1.0),
    GMAX: (1.2, 5.5),
    GMED: (0.8, 3.5),
    "cement_volume_ml": (1.5, 9.0),
}

_CORR_NAMES = ("age_years", GMAX, GMED, "bmd_t_score")
_CORR = np.array(
    [
        [1.00, -0.30, -0.25, -0.20],
        [-0.30, 1.00, 0.50, 0.20],
        [-0.25, 0.50, 1.00, 0.15],
        [-0.20, 0.20, 0.15, 1.00],
    ]
)
_MEANS = np.array([72.0, 3.2, 2.0, -3.0])
_SDS = np.array([8.0, 0.6, 0.4, 0.7])


def _covariates(rng: np.random.Generator, n: int) -> pd.DataFrame:
    z = rng.standard_normal((n, 4)) @ np.linalg.cholesky(_CORR).T
    block = _MEANS + z * _SDS
    df = pd.DataFrame({ID_COLUMN: [f"SIM{i + 1:04d}" for i in range(n)]})
    for j, name in enumerate(_CORR_NAMES):
        df[name] = block[:, j]
    df["sex"] = np.where(rng.random(n) < 0.25, "male", "female")
    df["bmi_kg_m2"] = rng.normal(23.5, 3.2, n)
    df["diabetes"] = (rng.random(n) < 0.2).astype(int)
    df["procedure"] = np.where(rng.random(n) < 0.4, "PVP", "PKP")
    df["fractured_vertebrae_n"] = 1 + rng.binomial(3, 0.2, n)
    df["cement_volume_ml"] = rng.normal(4.5, 1.3, n)
    for name, (lo, hi) in RANGES.items():
        df[name] = df[name].clip(lo, hi)
    return df


def true_linear_predictor(df: pd.DataFrame) -> NDArray[np.float64]:
    lp = np.full(len(df), TRUE_INTERCEPT)
    for name in TRUE_PREDICTORS:
        lp = lp + TRUE_COEFFICIENTS[name] * df[name].to_numpy(dtype=float)
    return lp


def simulate_cohort(
    n: int = DEFAULT_N, seed: int = DEFAULT_SEED, decimals: int = 3
) -> pd.DataFrame:
    """The simulated cohort: ``n`` patients, columns as in the module docstring, outcome ``rbp``.

    Continuous columns are rounded to ``decimals`` before the outcome is drawn, so the table
    written to CSV is exactly the data the outcome was generated from.
    """
    rng = np.random.default_rng(seed)
    df = _covariates(rng, n)
    for name in RANGES:
        df[name] = df[name].round(decimals)
    lp = true_linear_predictor(df)
    prob = 1.0 / (1.0 + np.exp(-lp))
    df[OUTCOME] = (rng.random(n) < prob).astype(int)
    return df


def write_cohort(
    path: str, n: int = DEFAULT_N, seed: int = DEFAULT_SEED, overwrite: bool = False
) -> pd.DataFrame:
    """Simulate and write the cohort as CSV (atomic; refuses to overwrite)."""
    from pathlib import Path

    from rcsa.nomogram._io import atomic_write

    df = simulate_cohort(n, seed)
    atomic_write(Path(path), lambda tmp: df.to_csv(tmp, index=False), overwrite)
    return df
