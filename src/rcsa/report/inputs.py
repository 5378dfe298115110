"""Clinical inputs of a screening report: ``--set name=value`` and ``--clinical FILE``.

Names are refused unless they are a predictor of the chosen model (its ``name`` or its
``column``) or a free-text field of :data:`FREE_TEXT_FIELDS`. Predictors that the scan measures
(their column is a column of the wide feature table) cannot be entered by hand: the report
shows the measurement or, when the measurement is missing, says so. A clinical predictor that
is not given is listed as missing; nothing is imputed.

Exception: the columns of :data:`SCAN_FILLED_COLUMNS` (fracture burden and bone attenuation
from ``rcsa.spine``, ``docs/spine.md``) are filled from the scan when the user gives no value;
a value given by the user wins, and the source says which was used.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from rcsa.errors import (
    CorruptFileError,
    DataError,
    InputNotFoundError,
    InputNotReadableError,
    ScoringError,
)
from rcsa.nomogram.score import parse_assignments, parse_value
from rcsa.nomogram.spec import ModelSpec, Predictor

#: Free-text fields shown in the report as given (escaped), never used in a score.
FREE_TEXT_FIELDS: dict[str, str] = {
    "note": "Note",
    "indication": "Indication",
    "requested_by": "Requested by",
}
#: A clinical file may carry the scan's id; it must then match the report's scan.
ID_FIELD = "scan_id"
MAX_TEXT_CHARS = 2000
#: Feature columns the scan fills (``rcsa.spine``) that a hand-entered value overrules.
SCAN_FILLED_COLUMNS: frozenset[str] = frozenset({"fractured_vertebrae_n", "bone_attenuation_hu"})


@dataclass(frozen=True)
class ClinicalValue:
    """One value entered for the report, with where it came from (``--set`` or the file)."""

    name: str
    raw: str
    source: str


@dataclass(frozen=True)
class ClinicalInputs:
    """Everything entered by hand: values by name (``--set`` wins over the file)."""

    values: dict[str, ClinicalValue] = field(default_factory=dict)
    file: str | None = None

    def free_text(self) -> dict[str, str]:
        return {k: v.raw for k, v in self.values.items() if k in FREE_TEXT_FIELDS}


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or (
        isinstance(v, str) and v.strip() == "")


def _as_text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def read_clinical_file(path: str | Path) -> dict[str, str]:
    """A JSON object or a CSV with exactly one row -> ``{name: text}`` (empty cells dropped)."""
    p = Path(path)
    if not p.exists():
        raise InputNotFoundError("clinical file not found", p)
    if p.is_dir():
        raise DataError("expected a .json or .csv clinical file, got a folder", p)
    try:
        if p.suffix.lower() == ".json":
            try:
                doc = json.loads(p.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise CorruptFileError(f"cannot parse JSON: {exc}", p) from exc
            if not isinstance(doc, dict):
                raise DataError("a clinical JSON file must hold one object {name: value}", p)
            for k, v in doc.items():
                if isinstance(v, (dict, list)):
                    raise DataError(f"clinical field {k!r}: expected a single value", p)
            items: dict[Any, Any] = doc
        elif p.suffix.lower() == ".csv":
            try:
                frame = pd.read_csv(p, dtype=str, keep_default_na=False)
            except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError,
                    ValueError) as exc:
                raise CorruptFileError(f"cannot parse CSV: {exc}", p) from exc
            if len(frame) != 1:
                raise DataError(
                    f"a clinical CSV must hold exactly one row (one patient); it has {len(frame)}",
                    p)
            items = frame.iloc[0].to_dict()
        else:
            raise DataError("clinical file must be .json or .csv", p)
    except PermissionError as exc:
        raise InputNotReadableError(f"cannot read: {exc.strerror}", p) from exc
    return {str(k).strip(): _as_text(v) for k, v in items.items() if not _is_missing(v)}




def collect_inputs(
    assignments: Sequence[str] = (),
    clinical_file: str | Path | None = None,
    *,
    scan_id: str | None = None,
) -> ClinicalInputs:
    """Merge the clinical file and ``--set`` (``--set`` wins); check the file's ``scan_id``."""
    values: dict[str, ClinicalValue] = {}
    if clinical_file is not None:
        for k, v in read_clinical_file(clinical_file).items():
            values[k] = ClinicalValue(k, v, f"clinical file {Path(clinical_file).name}")
    for k, v in parse_assignments(assignments).items():
        if v == "":
            values.pop(k, None)  # "--set name=" removes a value given in the file
            continue
        values[k] = ClinicalValue(k, v, "--set")
    if ID_FIELD in values:
        given = values.pop(ID_FIELD).raw
        if scan_id is not None and given != scan_id:
            raise DataError(
                f"the clinical file is for scan_id {given!r} but this scan is {scan_id!r}",
                clinical_file)
    for name, cv in values.items():
        if name in FREE_TEXT_FIELDS and len(cv.raw) > MAX_TEXT_CHARS:
            raise ScoringError(
                f"free-text field {name!r} is longer than {MAX_TEXT_CHARS} characters")
    return ClinicalInputs(values, None if clinical_file is None else str(clinical_file))


@dataclass(frozen=True)
class PredictorInput:
    """A model predictor's value for this patient, or why there is none."""

    predictor: Predictor
    measured: bool  # True: its column is a column of the scan's feature table
    value: float | str | None
    source: str  # "measured: <column>", "--set", "clinical file x.csv", or ""
    missing_reason: str = ""


def _predictor_for(spec: ModelSpec, name: str) -> Predictor | None:
    for p in spec.predictors:
        if name in (p.name, p.column):
            return p
    return None


def resolve_predictors(
    spec: ModelSpec | None,
    inputs: ClinicalInputs,
    features: Mapping[str, Any],
    feature_reasons: Mapping[str, str],
) -> list[PredictorInput]:
    """Each predictor's value: from the feature row (measured) or the clinical inputs.

    Refuses (``ScoringError``) names that are neither a predictor nor a free-text field, a
    hand-entered value for a measured predictor, two names for one predictor, and values that
    the predictor's type cannot read. ``feature_reasons`` maps a feature column to the reason
    it is empty (from the wide table's ``*_reason`` columns).
    """
    by_pred: dict[str, ClinicalValue] = {}
    unknown: list[str] = []
    for name, cv in inputs.values.items():
        if name in FREE_TEXT_FIELDS:
            continue
        pred = _predictor_for(spec, name) if spec is not None else None
        if pred is None:
            unknown.append(name)
            continue
        if pred.name in by_pred:
            raise ScoringError(
                f"predictor {pred.name!r} given twice (as {by_pred[pred.name].name!r} and "
                f"{name!r})")
        by_pred[pred.name] = cv
    if unknown:
        allowed = ", ".join(FREE_TEXT_FIELDS)
        if spec is None:
            raise ScoringError(
                f"unknown clinical field(s) {', '.join(sorted(unknown))}: without --model only "
                f"the free-text fields {allowed} are accepted")
        preds = ", ".join(p.name for p in spec.predictors)
        raise ScoringError(
            f"unknown clinical field(s) {', '.join(sorted(unknown))}: model {spec.name!r} has "
            f"the predictors {preds}; free-text fields are {allowed}")
    if spec is None:
        return []
    out: list[PredictorInput] = []
    for pred in spec.predictors:
        if pred.column in SCAN_FILLED_COLUMNS:
            out.append(_scan_filled(pred, by_pred.get(pred.name), features))
            continue
        measured = pred.column in features
        given = by_pred.get(pred.name)
        if measured:
            if given is not None:
                raise ScoringError(
                    f"predictor {pred.name!r} is measured from the scan (feature column "
                    f"{pred.column!r}); it cannot be entered by hand ({given.source})")
            raw = features[pred.column]
            if _is_missing(raw):
                reason = feature_reasons.get(pred.column) or "not measured on this scan"
                out.append(PredictorInput(pred, True, None, "", f"measurement missing: {reason}"))
                continue
            out.append(PredictorInput(pred, True, parse_value(pred, raw),
                                      f"measured: {pred.column}"))
            continue
        if given is None:
            how = f"--set {pred.name}=VALUE or a --clinical file column {pred.column!r}"
            out.append(PredictorInput(pred, False, None, "", f"not given ({how})"))
            continue
        try:
            value = parse_value(pred, given.raw)
        except ScoringError as exc:
            raise ScoringError(f"{exc.reason} ({given.source})") from None
        out.append(PredictorInput(pred, False, value, given.source))
    return out


def _scan_detail(column: str, features: Mapping[str, Any]) -> str:
    """What the scan's value of a :data:`SCAN_FILLED_COLUMNS` column is made of."""
    if column == "fractured_vertebrae_n":
        which = features.get("fractured_vertebrae")
        graded = features.get("vertebrae_graded_n")
        not_graded = features.get("spine_not_graded")
        text = (f"Genant grade >= 1 among {graded} vertebra(e) of T11-L5 graded"
                + ("" if _is_missing(which) else f" ({which})"))
        if not _is_missing(not_graded):
            text += f"; not graded: {not_graded} (the count may be too low)"
        near = [v for v in str(which or "").split(";")
                if v and features.get(f"{v}_genant_needs_review") == 1]
        if near:
            text += (f"; {', '.join(near)} near a Genant threshold: check the sagittal sheet, "
                     "or give the count with --set")
        return text
    vert = features.get("bone_attenuation_vertebra")
    return f"mean trabecular HU of {vert}" if not _is_missing(vert) else "trabecular HU"


def _scan_filled(pred: Predictor, given: ClinicalValue | None,
                 features: Mapping[str, Any]) -> PredictorInput:
    """A predictor the scan can fill: the user's value wins; else the scan's; else missing."""
    raw = features.get(pred.column)
    scan_has = pred.column in features and not _is_missing(raw)
    if given is not None:
        try:
            value = parse_value(pred, given.raw)
        except ScoringError as exc:
            raise ScoringError(f"{exc.reason} ({given.source})") from None
        note = f"; the scan's value {raw} was not used" if scan_has else ""
        return PredictorInput(pred, False, value, f"{given.source}{note}")
    if scan_has:
        return PredictorInput(pred, True, parse_value(pred, raw),
                              f"from the scan: {pred.column} "
                              f"({_scan_detail(pred.column, features)})")
    why = features.get("spine_not_graded") if pred.column == "fractured_vertebrae_n" else None
    detail = f" (not graded: {why})" if not _is_missing(why) else ""
    return PredictorInput(
        pred, False, None, "",
        f"not given, and not measured on the scan{detail}: --set {pred.name}=VALUE")
