"""Instance-level resilience (issue 18): damaged, re-sent and half-copied files in an archive
never cost a good series, and a lost instance still fails it, naming the file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import _dicom_factory as f
from rcsa.batch import discover
from rcsa.errors import CorruptFileError, DuplicateSliceError, SliceSpacingError
from rcsa.io import load

pytestmark = pytest.mark.filterwarnings("ignore:End of file reached:UserWarning")


@pytest.fixture(scope="module")
def reference_hu() -> np.ndarray:
    return np.asarray(load(f.THORACOLUMBAR).voxels)


def _series_with_truncated_copy(tmp: Path, n_bytes: int = 5000) -> tuple[Path, Path, Path]:
    """The issue's case: subject B's series in a/, a 5000-byte copy of one file in b/."""
    files = f.copy_sample_series(tmp / "in" / "a")
    victim = files[4]
    copy = tmp / "in" / "b" / victim.name
    copy.parent.mkdir(parents=True)
    copy.write_bytes(victim.read_bytes()[:n_bytes])
    return tmp / "in", victim, copy


def test_truncated_copy_of_an_intact_instance_is_ignored(tmp_path: Path,
                                                         reference_hu: np.ndarray) -> None:
    root, intact, copy = _series_with_truncated_copy(tmp_path)
    vol = load(root)
    assert np.array_equal(vol.voxels, reference_hu)
    assert str(copy) not in vol.source.files
    (w,) = [w for w in vol.warnings if "ignored damaged file" in w]
    assert str(copy) in w and str(intact) in w and "truncated" in w


def test_batch_discovery_lists_the_damaged_copy_and_keeps_the_case(tmp_path: Path) -> None:
    root, intact, copy = _series_with_truncated_copy(tmp_path)
    found = discover([root])
    (case,) = found.cases
    assert case.path == intact.parent  # the intact files' folder, without the damaged copy
    (ign,) = [i for i in found.ignored if i.path == str(copy)]
    assert "damaged" in ign.reason and str(intact) in ign.reason


def test_batch_gets_the_row_and_lists_the_damaged_file(tmp_path: Path) -> None:
    """End to end through ``run_batch`` (single case, real series): a row, the damaged file in
    run_report.json and ignored.csv."""
    import pandas as pd

    from rcsa.batch import run_batch

    root, _, copy = _series_with_truncated_copy(tmp_path)
    found = discover([root])
    report = run_batch(found.cases, tmp_path / "out", ignored=found.ignored)
    assert report.n_failed == 0 and report.n_done == 1
    table = pd.read_csv(tmp_path / "out" / "features.csv")
    assert len(table) == 1
    data = json.loads((tmp_path / "out" / "run_report.json").read_text())
    assert str(copy) in [i["path"] for i in data["ignored_inputs"]]
    ignored = pd.read_csv(tmp_path / "out" / "ignored.csv")
    assert str(copy) in set(ignored["path"])


def test_the_only_copy_damaged_still_fails_naming_it(tmp_path: Path) -> None:
    files = f.copy_sample_series(tmp_path / "s")
    f.truncate(files[7], 5000)
    with pytest.raises(CorruptFileError) as info:
        load(tmp_path / "s")
    assert info.value.path == files[7] and "truncated" in str(info.value)


def test_unidentifiable_damaged_file_is_ignored_and_a_gap_still_named(tmp_path: Path) -> None:
    """A file cut inside its file meta (no series, no instance UID left) belongs to no series:
    ignored with a warning. When the lost file was a middle slice, the gap is still refused."""
    files = f.copy_sample_series(tmp_path / "s")
    stray = tmp_path / "s" / "stray.dcm"
    stray.write_bytes(files[3].read_bytes()[:150])  # preamble + DICM + a few meta bytes
    vol = load(tmp_path / "s")
    assert vol.size_voxels[2] == 20
    assert any("stray.dcm" in w and "belongs to no series" in w for w in vol.warnings)
    files[7].write_bytes(files[7].read_bytes()[:150])  # the only copy of a middle slice
    with pytest.raises(SliceSpacingError, match="missing slice"):
        load(tmp_path / "s")


def test_undecodable_copy_of_an_instance_is_ignored(tmp_path: Path,
                                                    reference_hu: np.ndarray) -> None:
    """Same SOP Instance UID twice, one copy's JPEG 2000 stream broken (the header is fine):
    the copy that decodes is used, the other named in a warning."""
    files = f.copy_sample_series(tmp_path / "s")
    broken = tmp_path / "s" / "resent" / files[5].name
    broken.parent.mkdir()
    data = bytearray(files[5].read_bytes())
    start = data.index(b"\xff\x4f\xff\x51")
    data[start + 2: start + 42] = b"\xff" * 40
    broken.write_bytes(bytes(data))
    vol = load(tmp_path / "s")
    assert np.array_equal(vol.voxels, reference_hu)
    assert any(str(broken) in w and str(files[5]) in w for w in vol.warnings)


def test_two_complete_copies_that_differ_are_refused_naming_both(tmp_path: Path) -> None:
    ds = f.series()
    paths = f.write_series(ds[:5], tmp_path / "s")
    other = ds[2]  # same SOP Instance UID as slice 2, different pixels
    arr = f.pixels(other).copy()
    arr[100:120, 100:120] += 50
    f.set_pixels(other, arr)
    twin = f.write(other, tmp_path / "s" / "resent" / "slice_002.dcm")
    with pytest.raises(DuplicateSliceError) as info:
        load(tmp_path / "s")
    text = str(info.value)
    assert str(paths[2]) in text and str(twin) in text


def test_identical_copies_in_two_folders_load(tmp_path: Path, reference_hu: np.ndarray) -> None:
    files = f.copy_sample_series(tmp_path / "s" / "a")
    for p in files[:3]:
        (tmp_path / "s" / "b").mkdir(exist_ok=True)
        shutil.copy2(p, tmp_path / "s" / "b" / p.name)
    vol = load(tmp_path / "s")
    assert np.array_equal(vol.voxels, reference_hu)
    assert any("dropped 3 duplicate image(s)" in w for w in vol.warnings)


def test_decoder_tracebacks_go_to_the_log_file_not_the_console(
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """A broken JPEG 2000 stream: pydicom's decoder logs an ERROR record with the traceback
    attached before it raises. The console shows rcsa's one line; ``--log-file`` holds the
    library's record and its traceback; ``--debug`` shows it on the console."""
    from typer.testing import CliRunner

    from rcsa.cli import app

    files = f.copy_sample_series(tmp_path / "s")
    data = bytearray(files[5].read_bytes())
    start = data.index(b"\xff\x4f\xff\x51")
    data[start + 2: start + 42] = b"\xff" * 40
    files[5].write_bytes(bytes(data))
    log = tmp_path / "rcsa.log"
    r = CliRunner().invoke(app, ["--log-file", str(log), "info", str(tmp_path / "s")])
    console = r.output + capfd.readouterr().err
    assert r.exit_code == 4
    assert "Traceback" not in console and "pydicom" not in console
    assert [ln for ln in r.output.splitlines() if ln.strip()][-1].startswith("error:")
    text = log.read_text()
    assert "pydicom" in text and "Traceback (most recent call last)" in text
    r = CliRunner().invoke(app, ["--debug", "info", str(tmp_path / "s")])
    assert "Traceback" in r.output + capfd.readouterr().err


def test_itk_warnings_go_to_the_log_not_stderr(tmp_path: Path,
                                               capfd: pytest.CaptureFixture[str]) -> None:
    """ITK prints its warnings from C++ to stderr; rcsa.logs routes them into the
    ``SimpleITK`` logger (log file, --debug). Trigger: SimpleITK's series reader on a series
    with missing slices warns "Non uniform sampling"."""
    import logging

    import SimpleITK as sitk

    import rcsa.io.image  # noqa: F401  (installs the forwarder on import)
    from rcsa.logs import configure

    log = tmp_path / "rcsa.log"
    configure(False, log)
    try:
        files = [str(p) for p in f.sample_files()]
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(files[:3] + files[5:8])
        reader.Execute()
        for h in logging.getLogger().handlers:
            h.flush()
        err = capfd.readouterr().err
        assert "Non uniform sampling" not in err and "WARNING: In" not in err
        assert "SimpleITK" in log.read_text() and "Non uniform sampling" in log.read_text()
    finally:
        configure(False, None)
