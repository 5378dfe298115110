"""The command line: ``rcsa --version``, ``rcsa info``, exit codes, one-line errors, --debug."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

import _dicom_factory as f
import rcsa
from rcsa.cli import EXIT_GEOMETRY, EXIT_NOTHING_MEASURED, app, exit_code_for
from rcsa.errors import GeometryError, NothingMeasuredError

SAMPLE_DICOM = f.THORACOLUMBAR


def rcsa_executable() -> str:
    exe = Path(sys.executable).parent / "rcsa"
    found = str(exe) if exe.exists() else shutil.which("rcsa")
    assert found, "the rcsa console script is not installed"
    return found


def invoke(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def assert_one_line_error(result, code: int, named: Path, *fragments: str) -> str:
    text = result.stdout + result.stderr
    assert result.exit_code == code, (result.exit_code, text)
    assert "Traceback" not in text
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("error: "), line
    assert str(named) in line, line
    for frag in fragments:
        assert frag in line, (frag, line)
    return line


# ------------------------------------------------------------------------------------------
# inputs
# ------------------------------------------------------------------------------------------
def _empty(tmp: Path) -> tuple[Path, Path]:
    (tmp / "empty").mkdir()
    return tmp / "empty", tmp / "empty"


def _not_found(tmp: Path) -> tuple[Path, Path]:
    return tmp / "missing", tmp / "missing"


def _non_dicom(tmp: Path) -> tuple[Path, Path]:
    (tmp / "txt").mkdir()
    (tmp / "txt" / "a.txt").write_text("hello")
    return tmp / "txt", tmp / "txt"


def _mr(tmp: Path) -> tuple[Path, Path]:
    f.write_series(f.as_mr(f.series()[:3]), tmp / "mr")
    return tmp / "mr", tmp / "mr"


def _truncated(tmp: Path) -> tuple[Path, Path]:
    files = f.copy_sample_series(tmp / "s")
    f.truncate(files[4], files[4].stat().st_size - 5000)
    return tmp / "s", files[4]


def _gap(tmp: Path) -> tuple[Path, Path]:
    files = f.write_series(f.series(), tmp / "s")
    files[10].unlink()
    return tmp / "s", files[11]


def _duplicate(tmp: Path) -> tuple[Path, Path]:
    dss = f.series()
    f.write_series(dss, tmp / "s")
    other = f.new_instance(dss[2])
    f.set_pixels(other, f.pixels(other) + 1)
    return tmp / "s", f.write(other, tmp / "s" / "zz.dcm")


def _corrupt_nifti(tmp: Path) -> tuple[Path, Path]:
    (tmp / "ct.nii.gz").write_bytes(b"garbage" * 50)
    return tmp / "ct.nii.gz", tmp / "ct.nii.gz"


def _folder_as_nifti(tmp: Path) -> tuple[Path, Path]:
    (tmp / "ct.nii").mkdir()
    return tmp / "ct.nii", tmp / "ct.nii"


ERROR_CASES: dict[str, tuple[Callable[[Path], tuple[Path, Path]], int, tuple[str, ...]]] = {
    "not_found": (_not_found, 3, ("no such file or folder",)),
    "empty_folder": (_empty, 3, ("folder contains no files",)),
    "non_dicom": (_non_dicom, 4, ("no DICOM file among 1 file(s)",)),
    "mr": (_mr, 4, ("no CT series", "MR")),
    "truncated": (_truncated, 4, ("file truncated",)),
    "gap": (_gap, 4, ("missing slice(s)", "--resample-irregular")),
    "duplicate": (_duplicate, 4, ("two different images at the same position",)),
    "corrupt_nifti": (_corrupt_nifti, 4, ("cannot read nifti image",)),
    "folder_as_nifti": (_folder_as_nifti, 4, ("is a folder",)),
}


# ------------------------------------------------------------------------------------------
# tests
# ------------------------------------------------------------------------------------------
def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"rcsa {rcsa.__version__}"


def test_no_arguments_shows_help() -> None:
    result = invoke()
    assert result.exit_code in (0, 2)
    assert "info" in result.stdout + result.stderr


def test_usage_error_exit_code() -> None:
    result = invoke("info")  # missing PATH
    assert result.exit_code == 2
    result = invoke("info", str(SAMPLE_DICOM), "--no-such-option")
    assert result.exit_code == 2


def _command_paths(cmd: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from _command_paths(sub, (*path, name))


ALL_COMMANDS = list(_command_paths(typer.main.get_command(app)))


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=lambda p: " ".join(p) or "rcsa")
def test_help_looks_like_a_conventional_click_cli(path: tuple[str, ...]) -> None:
    """No ``<bool>`` / ``<path>`` type labels, no ``{path}`` in the usage line (issue 20)."""
    result = CliRunner().invoke(app, [*path, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "Usage: rcsa" in text
    for bad in ("<bool>", "<path>", "<str>", "<float>", "<int>", "<list", "{"):
        assert bad not in text, (bad, text)
    usage = next(ln for ln in text.splitlines() if "Usage:" in ln).split("Usage:")[1].split()
    assert all(p == p.upper() or p.startswith("rcsa") or p in path for p in usage), usage


def test_help_of_run_shows_click_metavars() -> None:
    text = CliRunner().invoke(app, ["run", "--help"], terminal_width=200).stdout
    rows = {ln.strip(" │*").split()[0]: ln.strip(" │*").split()[1:] for ln in text.splitlines()
            if ln.strip(" │*").startswith("--")}
    assert "Usage: rcsa run [OPTIONS] PATH" in text
    assert rows["--out"][0] == "PATH" and rows["--height-m"][0] == "FLOAT"
    assert rows["--level"][0] == "TEXT"
    assert rows["--all-levels"][0] == "Segment" and rows["--help"][0] == "Show"  # flags: no
    assert rows["--tta"][0] == "--no-tta"  # metavar; a flag pair shows both names
    root = CliRunner().invoke(app, ["--help"], terminal_width=200).stdout
    assert re.search(r"--version\s+Print the version", root), root
    missing = CliRunner().invoke(app, ["run"])
    assert missing.exit_code == 2 and "Missing argument 'PATH'" in missing.output


def test_info_json_on_sample() -> None:
    result = invoke("info", SAMPLE_DICOM, "--json")
    assert result.exit_code == 0, result.stderr
    d = json.loads(result.stdout)
    assert d["size_voxels"] == [512, 512, 20]
    assert d["spacing_mm"] == pytest.approx([0.977, 0.977, 2.0], abs=1e-3)
    assert d["modality"] == "CT"
    assert d["n_series_found"] == 1
    assert isinstance(d["warnings"], list)
    assert all(isinstance(w, str) for w in d["warnings"])
    assert any("SeriesInstanceUID missing" in w for w in d["warnings"])
    assert d["format"] == "dicom" and d["n_files"] == 20
    assert d["direction"] == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    assert d["z_range_mm"] == pytest.approx([-804.5, -766.5])
    assert "ids" not in d  # identifiers only with --show-ids


def test_info_table_on_alberta_slice() -> None:
    result = invoke("info", f.ALBERTA_JPEG_LOSSLESS)
    assert result.exit_code == 0, result.stderr
    assert "size_voxels" in result.stdout and "[512, 512, 1]" in result.stdout


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_error_exit_code_and_one_line_message(tmp_path: Path, case: str) -> None:
    make, code, fragments = ERROR_CASES[case]
    target, named = make(tmp_path)
    result = invoke("info", target, "--json")
    assert_one_line_error(result, code, named, *fragments)


def test_series_uid_not_found(tmp_path: Path) -> None:
    result = invoke("info", SAMPLE_DICOM, "--series-uid", "1.2.3")
    assert_one_line_error(result, 4, SAMPLE_DICOM, "series 1.2.3 not found")


def test_tilt_refused_with_no_tilt_correction(tmp_path: Path) -> None:
    dss = f.series()
    f.tilt_series(dss, 15.0)
    files = f.write_series(dss, tmp_path / "s")
    line = assert_one_line_error(
        invoke("info", tmp_path / "s", "--no-tilt-correction"), 4, files[-1], "gantry tilt"
    )
    assert "15.00 deg" in line
    ok = invoke("info", tmp_path / "s", "--json")
    assert ok.exit_code == 0, ok.stderr
    assert any("gantry tilt" in w for w in json.loads(ok.stdout)["warnings"])


def test_resample_irregular_flag(tmp_path: Path) -> None:
    target, _ = _gap(tmp_path)
    result = invoke("info", target, "--json", "--resample-irregular")
    assert result.exit_code == 0, result.stderr
    d = json.loads(result.stdout)
    assert d["size_voxels"] == [512, 512, 20]
    assert any("missing slice" in w for w in d["warnings"])


def test_debug_shows_traceback(tmp_path: Path) -> None:
    target, _ = _mr(tmp_path)
    result = invoke("--debug", "info", target)
    assert result.exit_code == 4
    assert "Traceback" in result.stderr
    assert "NotCTError" in result.stderr


def test_internal_error_is_exit_1_without_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    import rcsa.io

    def boom(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("simulated bug")

    monkeypatch.setattr(rcsa.io, "load", boom)
    result = invoke("info", SAMPLE_DICOM)
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr
    assert "internal error" in result.stderr and "ZeroDivisionError" in result.stderr
    assert "--debug" in result.stderr
    debug = invoke("--debug", "info", SAMPLE_DICOM)
    assert debug.exit_code == 1 and "Traceback" in debug.stderr


def test_geometry_error_exit_code() -> None:
    assert exit_code_for(GeometryError("grids differ")) == EXIT_GEOMETRY == 5


def test_nothing_measured_exit_code() -> None:
    assert exit_code_for(NothingMeasuredError("nothing measured")) == EXIT_NOTHING_MEASURED == 9


def test_every_exit_code_is_documented() -> None:
    """docs/cli.md's table and rcsa.cli's docstring list every code rcsa.cli can return."""
    import rcsa.cli

    codes = {v for k, v in vars(rcsa.cli).items() if k.startswith("EXIT_") and isinstance(v, int)}
    assert codes == set(range(11))
    doc = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text()
    table = doc.split("## Exit codes", 1)[1]
    assert {int(m) for m in re.findall(r"^\| (\d+) \|", table, re.M)} == codes
    assert {int(m) for m in re.findall(r"^(\d+) {4}", rcsa.cli.__doc__ or "", re.M)} == codes
    assert "--level L3=slice:0" in table


def test_levels_of_a_single_slice_name_the_option() -> None:
    result = invoke("levels", f.ALBERTA_UNCOMPRESSED)
    assert result.exit_code == 0, result.output
    assert "single axial slice" in result.stderr and "--level L3=slice:0" in result.stderr
    ok = invoke("levels", f.ALBERTA_UNCOMPRESSED, "--level", "L3=slice:0")
    assert ok.exit_code == 0 and "--level L3=slice:0" not in ok.stderr


# ------------------------------------------------------------------------------------------
# the installed console script, in a real process
# ------------------------------------------------------------------------------------------
def test_console_script_version() -> None:
    proc = subprocess.run([rcsa_executable(), "--version"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"rcsa {rcsa.__version__}"


def test_console_script_error_is_one_clean_line(tmp_path: Path) -> None:
    """Real process: library chatter (pydicom warns about the truncated JPEG 2000 file) stays
    off the console; one line names the file; exit code 4."""
    target, named = _truncated(tmp_path)
    proc = subprocess.run([rcsa_executable(), "info", str(target)], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "COLUMNS": "60"})
    assert proc.returncode == 4, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and str(named) in lines[0]
    assert "file truncated" in lines[0]
    assert "Traceback" not in proc.stderr


def test_console_script_unreadable_file_exit_3() -> None:
    """Permission denied, in a process that has dropped root: exit code 3."""
    # Warm up every lazy import first (as root): the interpreter's stdlib lives under /root,
    # which uid 65534 cannot read. Then drop root and run the real command.
    code = (
        "import contextlib, io, os, sys\n"
        "from rcsa.cli import app\n"
        "sink = io.StringIO()\n"
        "with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):\n"
        "    try:\n"
        "        app(['info', sys.argv[2], '--json'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "if os.geteuid() == 0:\n"
        "    os.setgroups([]); os.setgid(65534); os.setuid(65534)\n"
        "app(['info', sys.argv[1]], prog_name='rcsa')\n"
    )
    with f.world_readable_tmpdir() as d:
        victim = shutil.copy2(f.ALBERTA_UNCOMPRESSED, d / "slice.dcm")
        os.chmod(victim, 0o000)
        proc = subprocess.run(
            [sys.executable, "-c", code, str(victim), str(f.ALBERTA_UNCOMPRESSED)],
            capture_output=True, text=True, timeout=120, cwd=f.REPO,
        )
    assert proc.returncode == 3, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(victim) in lines[0] and "permission denied" in lines[0]
    assert "Traceback" not in proc.stderr
