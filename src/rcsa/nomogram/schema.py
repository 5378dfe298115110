"""JSON Schema (draft 2020-12) of the nomogram model spec, format version 1.

The schema checks structure and types; :func:`rcsa.nomogram.spec.spec_from_dict` adds the
checks a schema cannot express (unique names, reference level among the levels, cut-offs
increasing, transform defined on the plausible range, coefficients present when fitted).
"""

from __future__ import annotations

from typing import Any

SPEC_FORMAT = "rcsa-nomogram-spec"
SPEC_VERSION = "1.0"

_number = {"type": "number"}
_nullable_number = {"type": ["number", "null"]}
_text = {"type": "string", "minLength": 1}
_identifier = {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"}

PREDICTOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "type"],
    "properties": {
        "name": _identifier,
        "label": _text,
        "column": _text,
        "description": {"type": "string"},
        "unit": {"type": ["string", "null"]},
        "type": {"enum": ["continuous", "binary", "categorical"]},
        "transform": {"enum": ["none", "log", "log1p", "sqrt"]},
        "center": _number,
        "scale": {"type": "number", "exclusiveMinimum": 0},
        "plausible_range": {
            "type": "array",
            "items": _number,
            "minItems": 2,
            "maxItems": 2,
        },
        "levels": {"type": "array", "items": _text, "minItems": 2, "uniqueItems": True},
        "reference_level": _text,
        "coefficient": {
            "oneOf": [
                {"type": "number"},
                {"type": "null"},
                {"type": "object", "additionalProperties": _number, "minProperties": 1},
            ]
        },
    },
}

SPEC_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://rcsa.invalid/schemas/nomogram-spec-1.0.json",
    "title": "rcsa nomogram model spec",
    "type": "object",
    "additionalProperties": False,
    "required": [
        "format",
        "spec_version",
        "name",
        "model_version",
        "status",
        "outcome",
        "intended_use",
        "predictors",
        "intercept",
        "provenance",
    ],
    "properties": {
        "format": {"const": SPEC_FORMAT},
        "spec_version": {"type": "string", "pattern": "^1\\.[0-9]+$"},
        "name": _text,
        "model_version": _text,
        "status": {"enum": ["fitted", "published", "structure_only"]},
        "description": {"type": "string"},
        "disclaimer": {"type": ["string", "null"]},
        "intended_use": _text,
        "outcome": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name"],
            "properties": {
                "name": _identifier,
                "label": _text,
                "description": {"type": "string"},
            },
        },
        "predictors": {"type": "array", "items": PREDICTOR_SCHEMA, "minItems": 1},
        "intercept": _nullable_number,
        "risk_groups": {
            "type": "object",
            "additionalProperties": False,
            "required": ["on", "cutoffs", "labels"],
            "properties": {
                "on": {"enum": ["probability", "total_points"]},
                "cutoffs": {"type": "array", "items": _number, "minItems": 1},
                "labels": {"type": "array", "items": _text, "minItems": 2},
            },
        },
        "provenance": {
            "type": "object",
            "required": ["cohort"],
            "properties": {
                "cohort": _text,
                "n": {"type": ["integer", "null"], "minimum": 0},
                "events": {"type": ["integer", "null"], "minimum": 0},
                "auc_training": _nullable_number,
                "auc_validation": _nullable_number,
            },
        },
        "citation": {"type": ["string", "null"]},
    },
}
