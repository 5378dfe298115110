"""Model spec: built-ins load, round trips, and invalid specs fail with clear messages."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from rcsa.cli import app
from rcsa.errors import InputNotFoundError, ModelSpecError, OutputExistsError
from rcsa.nomogram import BUILTIN_MODELS, load_spec, save_spec, spec_from_dict
from test_nomogram_score import SPEC3


def _spec(**changes: Any) -> dict[str, Any]:
    d = copy.deepcopy(SPEC3)
    d.update(changes)
    return d


def _pred(i: int, **changes: Any) -> dict[str, Any]:
    d = copy.deepcopy(SPEC3)
    d["predictors"][i].update(changes)
    return d


@pytest.mark.parametrize("name", sorted(BUILTIN_MODELS))
def test_builtin_models_validate(name: str) -> None:
    spec = load_spec(name)
    assert spec.name == name
    assert spec.spec_version == "1.0"


def test_demo_model_is_labelled_everywhere() -> None:
    spec = load_spec("demo-rbp-simulated")
    assert spec.disclaimer == "demonstration - not for clinical use"
    assert spec.intended_use == "demonstration - not for clinical use"
    assert "simulated" in spec.provenance["cohort"]
    assert spec.provenance["n"] == 428 and spec.provenance["events"] == 75


def test_structure_model_has_the_study_predictors_and_no_coefficients() -> None:
    spec = load_spec("rbp-augmentation-structure")
    cols = [p.column for p in spec.predictors]
    assert cols == ["femoral_head_top_gluteus_maximus_both_rcsa",
                    "sij_lower_gluteus_medius_both_rcsa", "fractured_vertebrae_n",
                    "cement_volume_ml"]
    assert spec.intercept is None and not spec.has_coefficients


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_round_trip_and_no_silent_overwrite(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"m{suffix}"
    save_spec(copy.deepcopy(SPEC3), path)
    assert load_spec(path).to_dict() == SPEC3
    with pytest.raises(OutputExistsError):
        save_spec(copy.deepcopy(SPEC3), path)
    save_spec(copy.deepcopy(SPEC3), path, overwrite=True)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_pred(0, type="numeric"),
         r"spec\.predictors\[0\]\.type: 'numeric' is not one of \['continuous', 'binary', "
         r"'categorical'\]"),
        (_pred(0, coefficient="0.04"), r"predictors\[0\]\.coefficient: '0.04' is not a number"),
        (_pred(0, coef=0.04), r"'coef' was unexpected"),
        (_spec(intercept="-3"), r"spec\.intercept: '-3' is not of type 'number', 'null'"),
        ({k: v for k, v in SPEC3.items() if k != "outcome"}, r"'outcome' is a required property"),
        (_pred(2, reference_level="sacral"), r"reference_level 'sacral' is not one of levels"),
        (_pred(2, coefficient={"thoracic": -0.4}),
         r"no coefficient for level\(s\) \['thoracolumbar'\]"),
        (_pred(2, coefficient={"thoracic": -0.4, "thoracolumbar": 0.8, "cervical": 1.0}),
         r"coefficient for unknown level\(s\) \['cervical'\]"),
        (_pred(0, plausible_range=[90, 40]), r"plausible_range low 90.0 must be below high 40.0"),
        (_pred(0, transform="log", plausible_range=[0, 90]), r"transform 'log' is undefined"),
        (_pred(0, coefficient=None), r"status 'published' needs a coefficient"),
        (_pred(1, name="age_years"), r"duplicate predictor name\(s\) \['age_years'\]"),
        (_spec(risk_groups={"on": "probability", "cutoffs": [0.4, 0.2],
                            "labels": ["a", "b", "c"]}), r"must increase strictly"),
        (_spec(risk_groups={"on": "probability", "cutoffs": [0.2], "labels": ["a", "b", "c"]}),
         r"needs 2 labels for 1 cut-off"),
        (_spec(spec_version="2.0"), r"spec\.spec_version: '2.0' does not match"),
    ],
)
def test_invalid_specs_fail_clearly(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ModelSpecError, match=message) as info:
        spec_from_dict(data, "m.json")
    assert str(info.value).startswith("m.json: invalid model spec:")


def test_unparsable_and_missing_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ModelSpecError, match="cannot parse YAML"):
        load_spec(bad)
    txt = tmp_path / "m.txt"
    txt.write_text(json.dumps(SPEC3))
    with pytest.raises(ModelSpecError, match="unknown spec file type"):
        load_spec(txt)
    with pytest.raises(InputNotFoundError, match="built-in models: demo-rbp-simulated"):
        load_spec(tmp_path / "nope.json")


def test_cli_show_valid_and_invalid(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["nomogram", "show", "demo-rbp-simulated", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert max(p["max_points"] for p in d["predictors"]) == pytest.approx(100.0)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(_pred(0, type="numeric")))
    r = CliRunner().invoke(app, ["nomogram", "show", str(bad)])
    assert r.exit_code == 4
    assert "predictors[0].type: 'numeric' is not one of" in r.stderr


def test_import_loads_no_torch_and_no_heavy_fitting_libraries() -> None:
    import subprocess
    import sys

    code = ("import sys, rcsa.nomogram; "
            "print(sorted(m for m in ('torch', 'sklearn', 'statsmodels', 'matplotlib') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
