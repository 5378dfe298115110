"""Every typed error has its documented exit code; user errors at the command line are one line.

Exit code 1 means a bug: every subclass of :class:`rcsa.errors.RcsaError` (walked from the
module, so a new class is covered the day it is added) maps to another code, and that code is
in docs/cli.md's table. Representative user errors of each kind (config file, level spec,
model file, report input, nomogram spec and options) exit with that code, print one line and
no traceback. ``rcsa segment --levels`` and ``rcsa run --level`` take the same level specs
(one parser) with the same TTA default.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import rcsa.errors
from rcsa.cli import EXIT_CODES, EXIT_INTERNAL, app, exit_code_for
from rcsa.errors import RcsaError

REPO = Path(__file__).resolve().parents[1]
CT = REPO / "sample_data" / "ct_abdomen_pelvis" / "ct.nii.gz"
runner = CliRunner()


def _subclasses(cls: type[RcsaError]) -> Iterator[type[RcsaError]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _documented_codes() -> set[int]:
    doc = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    table = doc.split("## Exit codes", 1)[1]
    return {int(m) for m in re.findall(r"^\| (\d+) \|", table, re.M)}


def _instance(cls: type[RcsaError]) -> RcsaError:
    if "url" in inspect.signature(cls.__init__).parameters:
        return cls("reason", url="https://pacs.invalid")  # type: ignore[call-arg]
    return cls("reason", "some/path")


ALL_ERRORS = sorted({c for c in _subclasses(RcsaError) if c.__module__ == "rcsa.errors"},
                    key=lambda c: c.__name__)


def test_the_walk_sees_the_error_module() -> None:
    """Guards the walk itself: it found the classes defined in rcsa.errors, new ones included."""
    defined = {obj for obj in vars(rcsa.errors).values()
               if isinstance(obj, type) and issubclass(obj, RcsaError) and obj is not RcsaError}
    assert defined == set(ALL_ERRORS)
    names = {c.__name__ for c in ALL_ERRORS}
    assert {"ConfigError", "LevelOverrideError", "ModelError", "ReportError",
            "OutputWriteError", "ModelSpecError", "DataError"} <= names


@pytest.mark.parametrize("cls", ALL_ERRORS, ids=lambda c: c.__name__)
def test_every_error_class_has_a_documented_exit_code_other_than_1(
        cls: type[RcsaError]) -> None:
    code = exit_code_for(_instance(cls))
    assert code != EXIT_INTERNAL, f"{cls.__name__} maps to 1 ('a bug'): add it to EXIT_CODES"
    assert code in _documented_codes(), f"exit code {code} of {cls.__name__} not in docs/cli.md"


def test_errors_defined_elsewhere_are_the_error_module_s() -> None:
    """No package keeps a private RcsaError subclass out of the walk (ConfigError used to live
    in rcsa.config and exit 1)."""
    import rcsa.config

    assert rcsa.config.ConfigError is rcsa.errors.ConfigError
    stray = [c for c in _subclasses(RcsaError) if c.__module__ != "rcsa.errors"
             and not c.__module__.startswith(("tests", "test_"))]
    assert stray == []


def test_exit_codes_table_is_most_specific_first() -> None:
    """A class listed after one of its base classes could never be reached."""
    seen: list[type[RcsaError]] = []
    for cls, _code in EXIT_CODES:
        assert not any(issubclass(cls, earlier) for earlier in seen), cls
        seen.append(cls)


# ------------------------------------------------------------------------------------------
# user errors at the command line
# ------------------------------------------------------------------------------------------
def _one_line(result: Any) -> str:
    assert "Traceback" not in result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("user_errors")
    (d / "bad.toml").write_text("not toml [[[", encoding="utf-8")
    (d / "nolevels.toml").write_text("[measure]\nnormaliser = 'none'\n", encoding="utf-8")
    (d / "spec.json").write_text('{"name": 3}', encoding="utf-8")
    (d / "data.csv").write_text("scan_id,x,y\na,1,0\nb,2,1\nc,3,0\nd,4,1\n", encoding="utf-8")
    (d / "clinical.json").write_text("{not json", encoding="utf-8")
    return {p.stem: p for p in d.iterdir()} | {"dir": d}


CASES: list[tuple[str, list[str], int, str]] = [
    ("config not TOML", ["run", str(CT), "--out", "{dir}/o1", "--config", "{bad}"], 4,
     "not valid TOML"),
    ("config invalid", ["measure", str(CT), "--labels", str(CT), "--out", "{dir}/o2",
                        "--config", "{nolevels}"], 4, "[levels]"),
    ("config missing", ["screen", str(CT), "--out", "{dir}/o3", "--no-pdf",
                        "--config", "{dir}/none.toml"], 4, "cannot read config"),
    ("run level spec", ["run", str(CT), "--out", "{dir}/o4", "--level", "L3=banana"], 4,
     "'banana'"),
    ("run unknown level", ["run", str(CT), "--out", "{dir}/o5", "--level", "L9=slice:3"], 4,
     "unknown level 'L9'"),
    ("levels bare name", ["levels", str(CT), "--level", "L3"], 4, "bare level name"),
    ("height", ["run", str(CT), "--out", "{dir}/o6", "--height-m", "172"], 4,
     "plausible adult height"),
    ("screen --set", ["screen", str(CT), "--out", "{dir}/o7", "--no-pdf", "--set", "oops"], 4,
     "oops"),
    ("screen clinical file", ["screen", str(CT), "--out", "{dir}/o8", "--no-pdf",
                              "--clinical", "{clinical}"], 4, "clinical"),
    ("nomogram spec", ["nomogram", "show", "{spec}"], 4, "invalid model spec"),
    ("nomogram cut-offs", ["nomogram", "fit", "{data}", "--outcome", "y", "--out",
                           "{dir}/s.json", "--risk-cutoffs", "abc"], 4, "--risk-cutoffs"),
    ("nomogram model not found", ["nomogram", "score", "-m", "{dir}/nope.json", "--set",
                                  "x=1"], 3, "not found"),
]


@pytest.mark.parametrize("name,args,code,text", CASES, ids=[c[0] for c in CASES])
def test_user_error_exit_code_and_one_line(files: dict[str, Path], name: str, args: list[str],
                                          code: int, text: str) -> None:
    argv = [a.format(**{k: str(v) for k, v in files.items()}) for a in args]
    result = runner.invoke(app, argv)
    assert result.exit_code == code, (name, result.output)
    assert text in _one_line(result), (name, result.stderr)


def test_missing_model_file_exit_10(files: dict[str, Path]) -> None:
    pytest.importorskip("torch")
    out = files["dir"] / "seg"
    result = runner.invoke(app, ["segment", str(CT), "--out", str(out), "--levels", "L3=72",
                                 "--model", str(files["dir"] / "nope" / "metadata.json")])
    assert result.exit_code == 10, result.output
    assert "model metadata not found" in _one_line(result)
    assert not out.exists()


# ------------------------------------------------------------------------------------------
# one level-spec syntax for rcsa run and rcsa segment, one TTA default
# ------------------------------------------------------------------------------------------
class _Stop(RcsaError):
    """Raised by the stand-ins below once they have seen their arguments."""


def _slices_of_run(opts: Any) -> dict[str, int]:
    from rcsa.io import load
    from rcsa.levels.override import apply_overrides

    levels = apply_overrides(load(CT), {}, opts.levels(CT).overrides)
    return {n: int(lv.slice_index) for n, lv in levels.items()}


SPECS = [
    (["L3=72,L4=62"], {"L3": 72, "L4": 62}),
    (["L3=slice:72", "L4=62"], {"L3": 72, "L4": 62}),
]


@pytest.mark.parametrize("specs,want", SPECS, ids=["comma", "repeated"])
def test_run_and_segment_take_the_same_level_specs(
        specs: list[str], want: dict[str, int], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    import rcsa.pipeline
    import rcsa.segment.infer

    seen: dict[str, Any] = {}

    def fake_run_scan(path: Any, options: Any = None, **_: Any) -> Any:
        seen["run"] = options
        raise _Stop("stop")

    def fake_segment(ct: Any, levels: Any, **kw: Any) -> Any:
        seen["segment"] = ({n: int(lv.slice_index) for n, lv in levels.items()}, kw)
        raise _Stop("stop")

    monkeypatch.setattr(rcsa.pipeline, "run_scan", fake_run_scan)
    monkeypatch.setattr(rcsa.segment.infer, "segment", fake_segment)
    run_args = [a for s in specs for a in ("--level", s)]
    seg_args = [a for s in specs for a in ("--levels", s)]
    runner.invoke(app, ["run", str(CT), "--out", str(tmp_path / "r"), *run_args])
    runner.invoke(app, ["segment", str(CT), "--out", str(tmp_path / "s"), *seg_args])
    assert _slices_of_run(seen["run"]) == want
    seg_slices, seg_kw = seen["segment"]
    assert seg_slices == want
    assert seen["run"].tta is False and seg_kw["tta"] is False  # the same default: off
    # z in mm places the same slice as its index, in both
    from rcsa.io import load

    z62 = load(CT).slice_z_mm(62)
    seen.clear()
    runner.invoke(app, ["run", str(CT), "--out", str(tmp_path / "r"), "--level",
                        f"L4=z:{z62}"])
    runner.invoke(app, ["segment", str(CT), "--out", str(tmp_path / "s"), "--levels",
                        f"L4=z:{z62}", "--tta"])
    assert _slices_of_run(seen["run"]) == {"L4": 62} == seen["segment"][0]
    assert seen["segment"][1]["tta"] is True


def test_bad_level_spec_same_error_in_run_and_segment(tmp_path: Path) -> None:
    run = runner.invoke(app, ["run", str(CT), "--out", str(tmp_path / "r"), "--level",
                              "L3=slice:1.5"])
    seg = runner.invoke(app, ["segment", str(CT), "--out", str(tmp_path / "s"), "--levels",
                              "L3=slice:1.5"])
    assert run.exit_code == seg.exit_code == 4
    assert "slice index must be an integer" in _one_line(run)
    assert "slice index must be an integer" in _one_line(seg)


def test_bare_names_restrict_the_levels_in_run_and_segment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--level L3,L4`` (run) and ``--levels L3,L4`` (segment): the automatic level map,
    only those levels segmented."""
    pytest.importorskip("torch")
    import rcsa.segment
    import rcsa.segment.infer

    seen: list[list[str]] = []

    def fake_segment(ct: Any, levels: Any, names: Any = None, **kw: Any) -> Any:
        seen.append(list(names or []))
        raise _Stop("stop")

    monkeypatch.setattr(rcsa.segment, "segment", fake_segment)
    monkeypatch.setattr(rcsa.segment.infer, "segment", fake_segment)
    runner.invoke(app, ["run", str(CT), "--out", str(tmp_path / "r"), "--level", "L4,L3"])
    runner.invoke(app, ["segment", str(CT), "--out", str(tmp_path / "s"), "--levels", "L4,L3"])
    assert [sorted(s) for s in seen] == [["L3", "L4"], ["L3", "L4"]]
