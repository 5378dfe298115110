"""An operating-system refusal while writing an output (disk full, permission denied, read-only
folder) is an OutputWriteError: exit code 10 with one line naming the output and the system's
reason, the staging folder / temporary file removed, a previous output left as it was.

The tests run as root here, where ``chmod`` cannot make a folder unwritable, so the refusal is
simulated: ``os.replace`` or a writer raising ``OSError(ENOSPC)``, or a file standing where a
folder must be created (refused even for root).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from _dicom_factory import ALBERTA, ALBERTA_UNCOMPRESSED
from rcsa.batch import Case, run_batch
from rcsa.cli import EXIT_BATCH_FAILED, EXIT_ENVIRONMENT, app
from rcsa.errors import OutputWriteError
from rcsa.outputs import atomic_write, atomic_write_text, staged_folder, swap_into_place

runner = CliRunner()
SLICE = ALBERTA_UNCOMPRESSED
TAG = ALBERTA / "tissue_labels.tag"
NO_SPACE = os.strerror(errno.ENOSPC)  # "No space left on device"
_real_replace = os.replace


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _leftovers(parent: Path) -> list[str]:
    """Staging folders / temporary files rcsa leaves beside an output when it fails badly."""
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def _replace_failing(when: Callable[[Path, Path], bool]) -> Callable[..., None]:
    def replace(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        if when(Path(src), Path(dst)):
            raise OSError(errno.ENOSPC, NO_SPACE)
        _real_replace(src, dst, *args, **kwargs)
    return replace


def _one_line_error(r: Any) -> str:
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.output
    return lines[0]


# ------------------------------------------------------------------------------------------
# rcsa.outputs
# ------------------------------------------------------------------------------------------
def test_atomic_write_turns_os_errors_into_output_write_errors(tmp_path: Path) -> None:
    target = tmp_path / "table.csv"
    atomic_write_text(target, "old\n", overwrite=False)

    def full_disk(tmp: Path) -> None:
        tmp.write_text("half")
        raise OSError(errno.ENOSPC, NO_SPACE)

    with pytest.raises(OutputWriteError) as info:
        atomic_write(target, full_disk, overwrite=True)
    assert info.value.path == target and NO_SPACE in info.value.reason
    assert "\n" not in str(info.value)
    assert target.read_text() == "old\n" and _leftovers(tmp_path) == []
    # a file where the parent folder should be created: refused even for root
    (tmp_path / "blocker").write_text("x")
    with pytest.raises(OutputWriteError, match="blocker"):
        atomic_write_text(tmp_path / "blocker" / "sub" / "t.csv", "x", overwrite=False,
                          create_parent=True)


def test_staged_folder_keeps_the_previous_output(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    with staged_folder(out) as stage:
        (stage / "a.txt").write_text("previous")
    before = _snapshot(out)
    # a writer failing inside the stage
    with pytest.raises(OutputWriteError) as info, staged_folder(out) as stage:
        (stage / "a.txt").write_text("new")
        raise OSError(errno.ENOSPC, NO_SPACE, str(stage / "b.txt"))
    assert info.value.path == out and NO_SPACE in info.value.reason
    assert info.value.reason.startswith("cannot write b.txt of the output")
    assert _snapshot(out) == before and _leftovers(tmp_path) == []
    # an OSError about another file (an input) is not called an output error
    elsewhere = tmp_path.parent / "input.dcm"
    with pytest.raises(FileNotFoundError), staged_folder(out):
        elsewhere.with_name("missing.dcm").read_bytes()
    assert _snapshot(out) == before and _leftovers(tmp_path) == []
    # the final move refused
    monkeypatch.setattr(os, "replace", _replace_failing(lambda s, d: ".partial-" in s.name))
    with pytest.raises(OutputWriteError, match="No space left"), staged_folder(out) as stage:
        (stage / "a.txt").write_text("new")
    assert _snapshot(out) == before and _leftovers(tmp_path) == []


def test_swap_names_where_the_previous_output_is_when_it_cannot_be_put_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out, stage = tmp_path / "out", tmp_path / "stage"
    out.mkdir()
    (out / "a.txt").write_text("previous")
    stage.mkdir()
    monkeypatch.setattr(os, "replace", _replace_failing(lambda s, d: d == out))
    with pytest.raises(OutputWriteError, match=r"could not be put back.*kept in") as info:
        swap_into_place(stage, out)
    kept = Path(str(info.value.reason).rpartition("kept in ")[2])
    assert (kept / "a.txt").read_text() == "previous"


# ------------------------------------------------------------------------------------------
# the command line
# ------------------------------------------------------------------------------------------
def test_run_disk_full_exits_10_and_keeps_the_previous_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "run"
    args = ["run", str(SLICE), "--out", str(out), "--level", "L3=slice:0"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    before = _snapshot(out)
    monkeypatch.setattr(os, "replace", _replace_failing(lambda s, d: ".partial-" in s.name))
    r = runner.invoke(app, [*args, "--overwrite"])
    assert r.exit_code == EXIT_ENVIRONMENT == 10, r.output
    line = _one_line_error(r)
    assert str(out) in line and NO_SPACE in line
    assert _snapshot(out) == before and _leftovers(tmp_path) == []


def test_measure_writer_refused_exits_10_and_writes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "measured"

    def to_csv(self: pd.DataFrame, *args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, NO_SPACE)

    monkeypatch.setattr(pd.DataFrame, "to_csv", to_csv)
    r = runner.invoke(app, ["measure", str(SLICE), "--labels", str(TAG), "--out", str(out),
                            "--no-body-from-model", "--level", "L3=slice:0"])
    assert r.exit_code == EXIT_ENVIRONMENT, r.output
    line = _one_line_error(r)
    assert str(out) in line and NO_SPACE in line
    assert not out.exists() and _leftovers(tmp_path) == []


def test_batch_table_refused_exits_10_and_keeps_the_previous_table(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch whose one case fails before any worker starts still writes its (empty) table;
    when that write is refused the batch exits 10, the previous table intact."""
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("id,path\nghost,missing/ct.nii.gz\n")
    out = tmp_path / "out"
    args = ["batch", str(manifest), "--out", str(out)]
    r = runner.invoke(app, args)
    assert r.exit_code == EXIT_BATCH_FAILED, r.output
    table = (out / "features.csv").read_bytes()
    monkeypatch.setattr(os, "replace", _replace_failing(lambda s, d: d.name == "features.csv"))
    r = runner.invoke(app, args)
    assert r.exit_code == EXIT_ENVIRONMENT, r.output
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and r.stderr.rstrip().endswith(errors[0]), r.stderr  # progress above
    assert "Traceback" not in r.output
    line = errors[0]
    assert str(out / "features.csv") in line and NO_SPACE in line
    assert (out / "features.csv").read_bytes() == table
    assert [n for n in _leftovers(out) if n.endswith(".tmp")] == []


def test_batch_case_whose_folder_cannot_be_written_fails_with_the_reason(
        tmp_path: Path) -> None:
    """In a (spawned) worker: ``cases`` is a file, so the case folder cannot be created. The
    case fails as an OutputWriteError with one line naming it, not as an internal error."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "cases").write_text("not a folder\n")
    report = run_batch([Case("slice", path=SLICE, levels=("L3=slice:0",))], out)
    assert report.n_failed == 1
    failure = report.failures[0]
    assert failure.error_type == "OutputWriteError", failure.reason
    assert str(out / "cases" / "slice") in failure.reason and "\n" not in failure.reason
    assert (out / "cases").read_text() == "not a folder\n"
