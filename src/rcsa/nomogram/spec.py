"""The nomogram model spec: a versioned, validated, self-describing logistic model.

A spec is a JSON or YAML file (schema in :mod:`rcsa.nomogram.schema`, format in
``docs/nomogram.md``). :func:`load_spec` accepts a path or the name of a built-in model
(:data:`BUILTIN_MODELS`).
"""

from __future__ import annotations

import copy
import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from jsonschema import Draft202012Validator

from rcsa.errors import InputNotFoundError, InputNotReadableError, ModelSpecError, ScoringError
from rcsa.nomogram._io import atomic_write_text
from rcsa.nomogram.schema import SPEC_FORMAT, SPEC_SCHEMA, SPEC_VERSION

PredictorType = Literal["continuous", "binary", "categorical"]
Transform = Literal["none", "log", "log1p", "sqrt"]

MODELS_DIR = Path(__file__).resolve().parents[1] / "models" / "nomogram"
#: Built-in models, by the name ``--model`` accepts.
BUILTIN_MODELS: dict[str, str] = {
    "rbp-augmentation-structure": "rbp_augmentation_structure.yaml",
    "demo-rbp-simulated": "demo_rbp_simulated.json",
}
DEMO_DISCLAIMER = "demonstration - not for clinical use"

_VALIDATOR = Draft202012Validator(SPEC_SCHEMA)


@dataclass(frozen=True)
class Predictor:
    """One predictor: how to read it, its plausible range, and its log-odds coefficient(s)."""

    name: str
    type: PredictorType
    label: str
    column: str
    unit: str | None = None
    description: str = ""
    transform: Transform = "none"
    center: float = 0.0
    scale: float = 1.0
    plausible_range: tuple[float, float] | None = None
    levels: tuple[str, ...] = ()
    reference_level: str | None = None
    coefficient: float | dict[str, float] | None = None

    @property
    def display_levels(self) -> tuple[str, str] | tuple[str, ...]:
        """Labels of the values: binary -> (label of 0, label of 1); categorical -> levels."""
        if self.type == "binary":
            return self.levels if self.levels else ("0", "1")
        return self.levels

    def transformed(self, x: float) -> float:
        """``(f(x) - center) / scale``: the quantity the coefficient multiplies."""
        if self.transform == "log":
            fx = math.log(x)
        elif self.transform == "log1p":
            fx = math.log1p(x)
        elif self.transform == "sqrt":
            fx = math.sqrt(x)
        else:
            fx = x
        return (fx - self.center) / self.scale


@dataclass(frozen=True)
class RiskGroups:
    on: Literal["probability", "total_points"]
    cutoffs: tuple[float, ...]
    labels: tuple[str, ...]

    def group(self, probability: float, total_points: float) -> str:
        """Group ``k`` holds ``cutoffs[k-1] <= value < cutoffs[k]`` (lower bound inclusive)."""
        value = probability if self.on == "probability" else total_points
        k = sum(1 for c in self.cutoffs if value >= c)
        return self.labels[k]


@dataclass(frozen=True)
class ModelSpec:
    """A validated model spec. ``raw`` is the dictionary it was built from (for round trips)."""

    name: str
    model_version: str
    status: Literal["fitted", "published", "structure_only"]
    outcome: str
    outcome_label: str
    intended_use: str
    predictors: tuple[Predictor, ...]
    intercept: float | None
    risk_groups: RiskGroups | None
    provenance: dict[str, Any]
    citation: str | None
    disclaimer: str | None
    description: str = ""
    spec_version: str = SPEC_VERSION
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    source: str | None = None

    @property
    def has_coefficients(self) -> bool:
        return self.intercept is not None and all(
            p.coefficient is not None for p in self.predictors
        )

    def predictor(self, name: str) -> Predictor:
        for p in self.predictors:
            if p.name == name:
                return p
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self.raw)


def _fail(reason: str, source: str | Path | None) -> ModelSpecError:
    return ModelSpecError(f"invalid model spec: {reason}", source)


def _json_path(parts: Any) -> str:
    out = "spec"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def validate_spec_dict(data: Any, source: str | Path | None = None) -> None:
    """Check ``data`` against the JSON schema; raise :class:`ModelSpecError` listing problems."""
    if not isinstance(data, dict):
        raise _fail(f"expected a mapping at the top level, got {type(data).__name__}", source)
    errors = sorted(_VALIDATOR.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        shown = [f"{_json_path(e.absolute_path)}: {_short(e)}" for e in errors[:5]]
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        raise _fail("; ".join(shown) + more, source)


def _short(error: Any) -> str:
    """jsonschema's message, shortened for ``oneOf`` failures."""
    if (
        error.validator == "oneOf"
        and error.absolute_path
        and error.absolute_path[-1] == "coefficient"
    ):
        return f"{error.instance!r} is not a number, null, or a mapping level -> number"
    msg: str = error.message
    return msg if len(msg) <= 200 else msg[:197] + "..."


def _predictor(d: dict[str, Any], i: int, status: str, source: str | Path | None) -> Predictor:
    name = str(d["name"])
    where = f"predictors[{i}] ({name})"
    ptype: PredictorType = d["type"]
    transform: Transform = d.get("transform", "none")
    rng = d.get("plausible_range")
    levels = tuple(str(v) for v in d.get("levels", ()))
    ref = d.get("reference_level")
    coef = d.get("coefficient")
    if ptype == "continuous":
        if rng is None:
            raise _fail(
                f"{where}: a continuous predictor needs plausible_range [low, high]", source
            )
        if levels or ref is not None:
            raise _fail(f"{where}: levels/reference_level apply to categorical predictors", source)
        if isinstance(coef, dict):
            raise _fail(f"{where}: a continuous predictor takes one number as coefficient", source)
    elif ptype == "binary":
        if levels and len(levels) != 2:
            raise _fail(f"{where}: a binary predictor has exactly 2 levels (for 0 and 1)", source)
        if isinstance(coef, dict):
            raise _fail(
                f"{where}: a binary predictor takes one number (the log-odds for 1)", source
            )
        if transform != "none":
            raise _fail(f"{where}: a binary predictor takes no transform", source)
    else:
        if not levels:
            raise _fail(f"{where}: a categorical predictor needs levels", source)
        if ref is None:
            raise _fail(f"{where}: a categorical predictor needs reference_level", source)
        if ref not in levels:
            raise _fail(
                f"{where}: reference_level {ref!r} is not one of levels {list(levels)}", source
            )
        if transform != "none":
            raise _fail(f"{where}: a categorical predictor takes no transform", source)
        if coef is not None and not isinstance(coef, dict):
            raise _fail(
                f"{where}: a categorical predictor takes a mapping level -> coefficient "
                "(one per non-reference level)",
                source,
            )
        if isinstance(coef, dict):
            expected = set(levels) - {ref}
            unknown = set(coef) - set(levels)
            if unknown:
                raise _fail(f"{where}: coefficient for unknown level(s) {sorted(unknown)}", source)
            if ref in coef:
                raise _fail(f"{where}: the reference level {ref!r} takes no coefficient", source)
            missing = expected - set(coef)
            if missing:
                raise _fail(f"{where}: no coefficient for level(s) {sorted(missing)}", source)
    prange: tuple[float, float] | None = None
    if rng is not None:
        lo, hi = float(rng[0]), float(rng[1])
        if not lo < hi:
            raise _fail(f"{where}: plausible_range low {lo} must be below high {hi}", source)
        domain_low = {"log": 0.0, "log1p": -1.0, "sqrt": 0.0}.get(transform)
        if domain_low is not None and (
            lo < domain_low or (transform != "sqrt" and lo == domain_low)
        ):
            raise _fail(
                f"{where}: transform {transform!r} is undefined at the range low {lo}", source
            )
        prange = (lo, hi)
    if status != "structure_only" and coef is None:
        raise _fail(f"{where}: status {status!r} needs a coefficient", source)
    coefficient: float | dict[str, float] | None
    if isinstance(coef, dict):
        coefficient = {str(k): float(v) for k, v in coef.items()}
    else:
        coefficient = None if coef is None else float(coef)
    return Predictor(
        name=name,
        type=ptype,
        label=str(d.get("label", name)),
        column=str(d.get("column", name)),
        unit=d.get("unit"),
        description=str(d.get("description", "")),
        transform=transform,
        center=float(d.get("center", 0.0)),
        scale=float(d.get("scale", 1.0)),
        plausible_range=prange,
        levels=levels,
        reference_level=None if ref is None else str(ref),
        coefficient=coefficient,
    )


def spec_from_dict(data: Any, source: str | Path | None = None) -> ModelSpec:
    """Validate a spec dictionary (schema + semantic checks) and build a :class:`ModelSpec`."""
    validate_spec_dict(data, source)
    status = data["status"]
    preds = tuple(_predictor(d, i, status, source) for i, d in enumerate(data["predictors"]))
    names = [p.name for p in preds]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise _fail(f"duplicate predictor name(s) {dup}", source)
    cols = [p.column for p in preds]
    dupc = sorted({c for c in cols if cols.count(c) > 1})
    if dupc:
        raise _fail(f"two predictors read the same column(s) {dupc}", source)
    if data["outcome"]["name"] in names:
        raise _fail(f"the outcome {data['outcome']['name']!r} is also a predictor", source)
    intercept = data["intercept"]
    if status != "structure_only" and intercept is None:
        raise _fail(f"status {status!r} needs an intercept", source)
    groups = None
    if "risk_groups" in data:
        rg = data["risk_groups"]
        cut = [float(c) for c in rg["cutoffs"]]
        if any(b <= a for a, b in itertools.pairwise(cut)):
            raise _fail(f"risk_groups.cutoffs must increase strictly, got {cut}", source)
        if rg["on"] == "probability" and not all(0.0 < c < 1.0 for c in cut):
            raise _fail(f"risk_groups.cutoffs on probability must lie in (0, 1), got {cut}", source)
        if len(rg["labels"]) != len(cut) + 1:
            raise _fail(
                f"risk_groups needs {len(cut) + 1} labels for {len(cut)} cut-off(s), "
                f"got {len(rg['labels'])}",
                source,
            )
        groups = RiskGroups(on=rg["on"], cutoffs=tuple(cut), labels=tuple(rg["labels"]))
    spec = ModelSpec(
        name=data["name"],
        model_version=data["model_version"],
        status=status,
        outcome=data["outcome"]["name"],
        outcome_label=data["outcome"].get("label", data["outcome"]["name"]),
        intended_use=data["intended_use"],
        predictors=preds,
        intercept=None if intercept is None else float(intercept),
        risk_groups=groups,
        provenance=dict(data["provenance"]),
        citation=data.get("citation"),
        disclaimer=data.get("disclaimer"),
        description=data.get("description", ""),
        spec_version=data["spec_version"],
        raw=copy.deepcopy(data),
        source=None if source is None else str(source),
    )
    if spec.has_coefficients:
        points_scale(spec)  # checks that at least one predictor has an effect
    return spec


def _parse_text(text: str, path: Path) -> Any:
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            return json.loads(text)
        if suffix in (".yaml", ".yml"):
            return yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise _fail(f"cannot parse {suffix[1:].upper()}: {exc}".replace("\n", " "), path) from exc
    raise _fail(f"unknown spec file type {suffix!r} (use .json, .yaml or .yml)", path)


def resolve_model(model: str | Path) -> Path:
    """A built-in model name or a path -> the spec file path."""
    key = str(model)
    if key in BUILTIN_MODELS:
        return MODELS_DIR / BUILTIN_MODELS[key]
    path = Path(model)
    if not path.exists():
        raise InputNotFoundError(
            f"model spec not found (built-in models: {', '.join(sorted(BUILTIN_MODELS))})", path
        )
    return path


def load_spec(model: str | Path) -> ModelSpec:
    """Load and validate a spec from a JSON/YAML file or a built-in model name."""
    path = resolve_model(model)
    try:
        text = path.read_text(encoding="utf-8")
    except PermissionError as exc:
        raise InputNotReadableError(f"cannot read: {exc.strerror}", path) from exc
    except UnicodeDecodeError as exc:
        raise _fail("not UTF-8 text", path) from exc
    return spec_from_dict(_parse_text(text, path), path)


def dump_spec(data: dict[str, Any], path: Path) -> str:
    """Serialise a spec dictionary as JSON or YAML according to ``path``'s suffix."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        return json.dumps(data, indent=2) + "\n"
    if suffix in (".yaml", ".yml"):
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    raise _fail(f"unknown spec file type {suffix!r} (use .json, .yaml or .yml)", path)


def save_spec(spec: ModelSpec | dict[str, Any], path: Path, overwrite: bool = False) -> None:
    """Validate and write a spec atomically (JSON or YAML by suffix); refuse to overwrite."""
    data = spec.to_dict() if isinstance(spec, ModelSpec) else spec
    spec_from_dict(data, path)
    atomic_write_text(Path(path), dump_spec(data, Path(path)), overwrite)


def base_spec_dict(name: str, outcome: str, intended_use: str, cohort: str) -> dict[str, Any]:
    """A skeleton with the required fields, for code that builds specs."""
    return {
        "format": SPEC_FORMAT,
        "spec_version": SPEC_VERSION,
        "name": name,
        "model_version": "1",
        "status": "fitted",
        "outcome": {"name": outcome},
        "intended_use": intended_use,
        "predictors": [],
        "intercept": None,
        "provenance": {"cohort": cohort},
    }


# --- the rms points scale (see rcsa.nomogram.score); here because loading a spec checks it ---


@dataclass(frozen=True)
class PointsScale:
    """The rms points scale of a model."""

    points_per_lp: float
    lp_at_zero_points: float
    contribution_range: dict[str, tuple[float, float]]
    max_total_points: float

    def total_points_for_lp(self, lp: float) -> float:
        return (lp - self.lp_at_zero_points) * self.points_per_lp


def _require_coefficients(spec: ModelSpec) -> None:
    if not spec.has_coefficients:
        raise ScoringError(
            f"model {spec.name!r} has no coefficients (status {spec.status}): it describes the "
            "predictor structure only; load a spec file with an intercept and coefficients",
            spec.source,
        )


def contribution(pred: Predictor, value: float | str) -> float:
    """``beta * transformed(x)`` for a continuous/binary value, ``beta[level]`` for a level."""
    coef = pred.coefficient
    if pred.type == "categorical":
        assert isinstance(coef, dict)
        return 0.0 if value == pred.reference_level else coef[str(value)]
    assert isinstance(coef, float)
    if pred.type == "binary":
        return coef * float(value)
    return coef * pred.transformed(float(value))


def _value_range(pred: Predictor) -> list[float | str]:
    if pred.type == "categorical":
        return list(pred.levels)
    if pred.type == "binary":
        return [0.0, 1.0]
    assert pred.plausible_range is not None
    return [pred.plausible_range[0], pred.plausible_range[1]]


def points_scale(spec: ModelSpec) -> PointsScale:
    """The points scale: 100 points = the widest predictor effect over its range/levels."""
    _require_coefficients(spec)
    ranges: dict[str, tuple[float, float]] = {}
    for pred in spec.predictors:
        cs = [contribution(pred, v) for v in _value_range(pred)]
        ranges[pred.name] = (min(cs), max(cs))
    widest = max(hi - lo for lo, hi in ranges.values())
    if not widest > 0:
        raise ModelSpecError("invalid model spec: every predictor has zero effect", spec.source)
    per_lp = 100.0 / widest
    assert spec.intercept is not None
    lp0 = spec.intercept + sum(lo for lo, _ in ranges.values())
    total = sum((hi - lo) * per_lp for lo, hi in ranges.values())
    return PointsScale(per_lp, lp0, ranges, total)


def predictor_points(
    spec: ModelSpec, scale: PointsScale, pred: Predictor, value: float | str
) -> float:
    return (
        contribution(pred, value) - scale.contribution_range[pred.name][0]
    ) * scale.points_per_lp
