"""Design matrices: predictor definitions + a table -> numeric columns for model fitting."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from rcsa.errors import DataError
from rcsa.nomogram.score import parse_value
from rcsa.nomogram.spec import Predictor

FloatArray = NDArray[np.float64]


def predictor_column(pred: Predictor, table: pd.DataFrame) -> pd.Series:
    if pred.column in table.columns:
        return table[pred.column]
    if pred.name in table.columns:
        return table[pred.name]
    raise DataError(f"missing predictor {pred.name!r}: no column {pred.column!r} in the table")


def design_matrix(
    predictors: Sequence[Predictor], table: pd.DataFrame
) -> tuple[FloatArray, list[str]]:
    """Numeric design (no intercept column) in the coefficient scale of the predictors:
    continuous -> transformed value, binary -> 0/1, categorical -> one dummy per non-reference
    level. Values that cannot be read raise :class:`DataError` naming column and row."""
    cols: list[FloatArray] = []
    names: list[str] = []
    for pred in predictors:
        series = predictor_column(pred, table)
        if pred.type == "continuous":
            num = pd.to_numeric(series, errors="coerce")
            bad = num.isna() & series.notna()
            if bad.any():
                i = int(np.flatnonzero(bad.to_numpy())[0])
                raise DataError(
                    f"column {pred.column!r} of continuous predictor {pred.name!r} has "
                    f"non-numeric value {series.iloc[i]!r} (row {i + 1})"
                )
            x = num.to_numpy(dtype=float)
            if pred.transform == "log":
                x = np.log(x)
            elif pred.transform == "log1p":
                x = np.log1p(x)
            elif pred.transform == "sqrt":
                x = np.sqrt(x)
            cols.append((x - pred.center) / pred.scale)
            names.append(pred.name)
            continue
        values = series.to_numpy(dtype=object)
        parsed: dict[object, float | str] = {}
        for v in pd.unique(values):
            if v is None or (isinstance(v, float) and np.isnan(v)):
                continue
            try:
                parsed[v] = parse_value(pred, v)
            except Exception as exc:
                reason = getattr(exc, "reason", str(exc))
                raise DataError(f"column {pred.column!r}: {reason}") from None
        mapped = [parsed.get(v, np.nan) if v in parsed else np.nan for v in values]
        if pred.type == "binary":
            cols.append(np.asarray(mapped, dtype=float))
            names.append(pred.name)
        else:
            for lv in pred.levels:
                if lv == pred.reference_level:
                    continue
                col = np.array(
                    [np.nan if not isinstance(m, str) else float(m == lv) for m in mapped]
                )
                cols.append(col)
                names.append(f"{pred.name}[{lv}]")
    x = np.column_stack(cols) if cols else np.zeros((len(table), 0))
    return np.asarray(x, dtype=float), names
