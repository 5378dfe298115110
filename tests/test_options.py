"""The typed options that travel from the command line to the workers: frozen, picklable,
merged per case, and checked before any work."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import pytest

from rcsa.batch.cases import Case
from rcsa.batch.worker import CaseTask, case_options
from rcsa.cli_options import load_options
from rcsa.config import load_config
from rcsa.errors import InputError, LevelOverrideError
from rcsa.io import LoadOptions
from rcsa.levels.override import LevelSelection, parse_level_specs
from rcsa.pipeline import RunOptions


def test_options_are_frozen_and_pickle() -> None:
    opts = RunOptions(load=LoadOptions("1.2.3", correct_tilt=False), level_specs=("L3=72",),
                      height_m=1.7, tta=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.tta = False  # type: ignore[misc]
    task = CaseTask(Case("a", path=Path("x.nii.gz")), Path("out/a"), load_config(), opts)
    back = pickle.loads(pickle.dumps(task))  # what a worker process / Dask receives
    assert back == task and back.options.load.series_uid == "1.2.3"


def test_load_options_from_the_command_line_flags() -> None:
    assert load_options() == LoadOptions()
    assert load_options("9.8", True, True) == LoadOptions("9.8", False, True)


def test_case_options_add_the_case_s_series_levels_and_height() -> None:
    batch = RunOptions(load=LoadOptions(resample_irregular=True), tta=True, all_levels=True)
    case = Case("a", path=Path("x"), levels=("L3=slice:4",), height_m=1.8)
    got = case_options(batch, case, "5.6")
    assert got == RunOptions(load=LoadOptions("5.6", True, True), level_specs=("L3=slice:4",),
                             height_m=1.8, tta=True, all_levels=True)


def test_given_names_the_changed_options() -> None:
    assert RunOptions().given() == []
    opts = RunOptions(load=LoadOptions(series_uid="1", correct_tilt=False), height_m=1.7,
                      level_specs=("L3=1",))
    assert opts.given() == ["--height-m", "--level", "--no-tilt-correction", "--series-uid"]


def test_implausible_height_is_refused_before_any_work() -> None:
    with pytest.raises(InputError, match="plausible adult height"):
        RunOptions(height_m=172.0)


def test_one_level_spec_syntax() -> None:
    sel = parse_level_specs(["L3=72, L4=slice:62", "L5=z:-300.5", "L3,S1"])
    assert [(o.name, o.kind, o.value) for o in sel.overrides] == [
        ("L3", "slice", 72), ("L4", "slice", 62), ("L5", "z", -300.5)]
    assert sel.names == ("L3", "S1")
    assert parse_level_specs([]) == LevelSelection()
    for bad in (["L3=slice:1.5"], ["X1"], ["L3=q:2"], ["L3=z:inf"]):
        with pytest.raises(LevelOverrideError):
            parse_level_specs(bad)


def test_batch_resume_key_unchanged_by_the_options_type(tmp_path: Path) -> None:
    """The state key hashes the same result options as before RunOptions existed, so a batch
    started before resumes instead of re-running every case."""
    from rcsa.batch.fingerprint import config_hash
    from rcsa.batch.runner import run_batch

    cfg = load_config()
    for opts, old in [
        (None, {"tta": False, "all_levels": False, "correct_tilt": True,
                "resample_irregular": False}),
        (RunOptions(load=LoadOptions(correct_tilt=False), tta=True),
         {"tta": True, "all_levels": False, "correct_tilt": False, "resample_irregular": False}),
    ]:
        report = run_batch([], tmp_path / str(id(old)), config=cfg, options=opts)
        assert report.config_hash == config_hash(cfg, old)
        assert {k: report.options[k] for k in old} == old
