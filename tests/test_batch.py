"""`rcsa batch` (issue 8, batch core): discovery, manifests, fingerprints, the state store,
failures with reasons, resuming after SIGKILL, local workers vs a Dask LocalCluster.

Real pipeline runs are few (each costs seconds): the shared batch runs the abdomen NIfTI and
the thoracolumbar DICOM once each, the Dask run repeats them once, the kill test runs the
small thoracolumbar series three to five times. Everything else fails fast or runs nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from typer.testing import CliRunner

import _dicom_factory as f
from rcsa.batch import Case, StateStore, discover, fingerprint, read_manifest, run_batch
from rcsa.batch.state import OutputLock
from rcsa.cli import EXIT_BATCH_FAILED, EXIT_INPUT_REFUSED, app
from rcsa.errors import BatchError, CaseIdError, InputNotFoundError, ManifestError

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]
RUN_FILES = {"features.csv", "features.parquet", "features_long.csv", "levels.json",
             "segmentation.nii.gz", "segmentation_labels.json", "qc", "run.json", "spine.json"}


@dataclass(frozen=True)
class Inputs:
    folder: Path
    manifest: Path

    @property
    def args(self) -> list[str]:
        return [str(self.folder), str(self.manifest)]


def _mr_study(folder: Path, n: int = 6) -> None:
    study = generate_uid()
    series = f.as_mr(f.series()[:n])
    for ds in series:
        ds.StudyInstanceUID = study
    f.write_series(series, folder)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory, abdomen: Path,
           thoracolumbar: Path) -> Inputs:
    """A folder (abdomen NIfTI copy, a truncated NIfTI, an MR study, a text file) and a
    manifest (the thoracolumbar DICOM with clinical columns, a path that does not exist)."""
    root = tmp_path_factory.mktemp("batch_inputs")
    scans = root / "scans"
    (scans / "abdomen").mkdir(parents=True)
    shutil.copy2(abdomen / "ct.nii.gz", scans / "abdomen" / "ct.nii.gz")
    (scans / "broken").mkdir()
    (scans / "broken" / "ct.nii.gz").write_bytes((abdomen / "ct.nii.gz").read_bytes()[:100])
    _mr_study(scans / "mr")
    (scans / "notes.txt").write_text("not a scan\n")
    manifest = root / "manifest.csv"
    manifest.write_text(
        "id,path,age_years,sex\n"
        f"tl,{thoracolumbar / 'dicom'},71,F\n"
        "ghost,missing/ct.nii.gz,80,M\n")
    return Inputs(scans, manifest)


@pytest.fixture(scope="module")
def local_run(inputs: Inputs, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("batch_local") / "out"
    r = runner.invoke(app, ["batch", *inputs.args, "--out", str(out), "--workers", "2"])
    assert r.exit_code == EXIT_BATCH_FAILED, r.output
    return out


def _table(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "features.csv", dtype={"scan_id": str})


def _report(out: Path) -> dict[str, object]:
    report: dict[str, object] = json.loads((out / "run_report.json").read_text())
    return report


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------------
# (1) a batch with good and bad cases
# ------------------------------------------------------------------------------------------
def test_batch_writes_every_success_and_lists_each_failure(local_run: Path) -> None:
    table = _table(local_run)
    assert sorted(table["scan_id"]) == ["scans_abdomen_ct", "tl"]
    for cid in table["scan_id"]:
        case_dir = local_run / "cases" / cid
        assert {p.name for p in case_dir.iterdir()} == RUN_FILES  # exactly rcsa run's folder
        own = pd.read_csv(case_dir / "features.csv", dtype={"scan_id": str})
        row = table[table["scan_id"] == cid].reset_index(drop=True)
        pd.testing.assert_frame_equal(row[own.columns], own, check_dtype=False)
    # clinical columns of the manifest, unchanged; empty for the discovered case
    tl = table.set_index("scan_id").loc["tl"]
    assert (int(tl["age_years"]), tl["sex"]) == (71, "F")
    assert pd.isna(table.set_index("scan_id").loc["scans_abdomen_ct", "sex"])
    assert pd.read_parquet(local_run / "features.parquet").shape == table.shape

    report = _report(local_run)
    counts = report["counts"]
    assert isinstance(counts, dict)
    assert (counts["cases"], counts["done"], counts["failed"], counts["table_rows"]) == (5, 2, 3, 2)
    failures = {f["case_id"]: f for f in report["failures"]}  # type: ignore[attr-defined]
    assert set(failures) == {"scans_broken_ct", "scans_mr", "ghost"}
    assert failures["scans_broken_ct"]["error_type"] == "CorruptFileError"
    assert "cannot read nifti" in failures["scans_broken_ct"]["reason"]
    assert failures["scans_mr"]["error_type"] == "NotCTError"
    assert "modality MR" in failures["scans_mr"]["reason"]
    assert failures["ghost"]["error_type"] == "InputNotFoundError"
    assert "missing/ct.nii.gz: no such file" in failures["ghost"]["reason"]
    ignored = [Path(i["path"]).name for i in report["ignored_inputs"]]  # type: ignore[attr-defined]
    assert ignored == ["notes.txt"]
    timings = report["timings"]
    assert isinstance(timings, dict) and timings["scans_per_hour"] > 0
    assert not (local_run / "cases" / "scans_mr").exists()  # a failure writes nothing

    with StateStore(local_run / "batch_state.sqlite") as store:
        status = {r.case_id: r.status for r in store.records()}
    assert status == {"scans_abdomen_ct": "done", "tl": "done", "scans_broken_ct": "failed",
                      "scans_mr": "failed", "ghost": "failed"}


def test_rerun_skips_done_cases_and_loses_nothing(local_run: Path, inputs: Inputs) -> None:
    before_table = _table(local_run)
    before_files = _snapshot(local_run / "cases")
    r = runner.invoke(app, ["batch", *inputs.args, "--out", str(local_run)])
    assert r.exit_code == EXIT_BATCH_FAILED, r.output  # the failures are still there
    report = _report(local_run)
    assert report["counts"]["skipped_done_earlier"] == 2  # type: ignore[index]
    assert report["counts"]["done"] == 0  # type: ignore[index]
    assert report["counts"]["failed_earlier_not_retried"] == 2  # type: ignore[index]
    assert _snapshot(local_run / "cases") == before_files  # nothing rewritten
    pd.testing.assert_frame_equal(_table(local_run), before_table)

    # --retry-failed runs the failed cases again (they still fail); successes stay untouched
    r = runner.invoke(app, ["batch", *inputs.args, "--out", str(local_run), "--retry-failed"])
    assert r.exit_code == EXIT_BATCH_FAILED, r.output
    with StateStore(local_run / "batch_state.sqlite") as store:
        attempts = {rec.case_id: rec.attempts for rec in store.records()}
    assert attempts["scans_mr"] == 2 and attempts["scans_broken_ct"] == 2
    assert attempts["tl"] == 1 and attempts["scans_abdomen_ct"] == 1
    assert _snapshot(local_run / "cases") == before_files
    pd.testing.assert_frame_equal(_table(local_run), before_table)


# ------------------------------------------------------------------------------------------
# (3) Dask
# ------------------------------------------------------------------------------------------
def test_dask_local_cluster_gives_the_same_table(local_run: Path, inputs: Inputs,
                                                 tmp_path: Path) -> None:
    from distributed import LocalCluster

    out = tmp_path / "dask_out"
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster:
        r = runner.invoke(app, ["batch", *inputs.args, "--out", str(out), "--scheduler",
                                cluster.scheduler_address])
    assert r.exit_code == EXIT_BATCH_FAILED, r.output
    a = _table(local_run).sort_values("scan_id").reset_index(drop=True)
    b = _table(out).sort_values("scan_id").reset_index(drop=True)
    assert list(a.columns) == list(b.columns)
    pd.testing.assert_frame_equal(a, b)
    fail_a = {f["case_id"]: f["error_type"] for f in _report(local_run)["failures"]}  # type: ignore[attr-defined]
    fail_b = {f["case_id"]: f["error_type"] for f in _report(out)["failures"]}  # type: ignore[attr-defined]
    assert fail_a == fail_b
    assert _report(out)["options"]["scheduler"] == cluster.scheduler_address  # type: ignore[index]


# ------------------------------------------------------------------------------------------
# (2) SIGKILL in the middle, then resume
# ------------------------------------------------------------------------------------------
def _counts(db: Path) -> dict[str, int]:
    if not db.exists():
        return {}
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return dict(con.execute("SELECT status, COUNT(*) FROM cases GROUP BY status"))
        finally:
            con.close()
    except sqlite3.OperationalError:  # not created yet, or locked for a moment
        return {}


def _children(pid: int) -> list[int]:
    import psutil

    try:
        return [c.pid for c in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


@pytest.fixture
def batch_process() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for p in procs:  # never leave a batch running after a failed assertion
        if p.poll() is None:
            p.kill()
            p.wait()


def test_sigkill_then_rerun_gives_every_case_exactly_once(
        tmp_path: Path, thoracolumbar: Path,
        batch_process: list[subprocess.Popen[bytes]]) -> None:
    import psutil

    manifest = tmp_path / "manifest.csv"
    ids = ["tl1", "tl2", "tl3"]
    manifest.write_text("id,path\n" + "".join(f"{i},{thoracolumbar / 'dicom'}\n" for i in ids))
    out = tmp_path / "out"
    db = out / "batch_state.sqlite"
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    cmd = [sys.executable, "-m", "rcsa.cli", "batch", str(manifest), "--out", str(out),
           "--workers", "1"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    batch_process.append(proc)
    deadline = time.monotonic() + 240
    seen: dict[str, int] = {}
    while time.monotonic() < deadline and proc.poll() is None:
        seen = _counts(db)
        if seen.get("done", 0) >= 1 and seen.get("running", 0) >= 1:
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"batch ended before it could be killed: {seen}"
    assert seen.get("done", 0) >= 1 and seen.get("running", 0) >= 1, seen
    workers = _children(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # the workers die with the batch process (no orphan keeps writing into the folder)
    gone_by = time.monotonic() + 30
    while time.monotonic() < gone_by and any(psutil.pid_exists(p) and
                                             psutil.Process(p).status() != "zombie"
                                             for p in workers):
        time.sleep(0.1)
    assert not [p for p in workers if psutil.pid_exists(p) and
                psutil.Process(p).status() != "zombie"]

    killed = _counts(db)
    n_done_before = killed.get("done", 0)
    assert killed.get("running", 0) >= 1 and n_done_before < len(ids), killed
    assert not (out / "features.csv").exists()  # the table comes at the end of a run

    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    table = _table(out)
    assert sorted(table["scan_id"]) == ids  # every case exactly once
    report = _report(out)
    assert report["counts"]["skipped_done_earlier"] == n_done_before  # type: ignore[index]
    assert report["counts"]["done"] == len(ids) - n_done_before  # type: ignore[index]
    assert sorted(p.name for p in (out / "cases").iterdir()) == ids  # no staging left over
    for cid in ids:
        assert {p.name for p in (out / "cases" / cid).iterdir()} == RUN_FILES
    # the same content under every id: identical measurement rows
    assert (table.drop(columns=["scan_id"]).nunique(dropna=False) == 1).all()


# ------------------------------------------------------------------------------------------
# (4) fingerprints, manifests, case ids, discovery, the output folder
# ------------------------------------------------------------------------------------------
def test_fingerprint_follows_content_not_names(tmp_path: Path) -> None:
    a = tmp_path / "a" / "ct.nii.gz"
    a.parent.mkdir()
    a.write_bytes(b"0123456789" * 1000)
    b = tmp_path / "elsewhere" / "other-name.nii.gz"
    b.parent.mkdir()
    shutil.copy(a, b)
    assert fingerprint(Case("x", path=a)) == fingerprint(Case("y", path=b))
    data = bytearray(a.read_bytes())
    data[5000] ^= 1
    b.write_bytes(bytes(data))  # same size, one bit changed
    assert fingerprint(Case("x", path=a)) != fingerprint(Case("y", path=b))
    # what the case selects is part of its input
    base = fingerprint(Case("x", path=a))
    assert fingerprint(Case("x", path=a, levels=("L3=slice:5",))) != base
    assert fingerprint(Case("x", path=a, series_uid="1.2.3")) != base
    assert fingerprint(Case("x", path=a, height_m=1.7)) != base


def test_folder_fingerprint_and_hash_cache(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    f.copy_sample_series(one)
    f.copy_sample_series(two)
    files = sorted(two.iterdir())
    files[0].rename(two / "renamed.dcm")
    assert fingerprint(Case("a", path=one)) == fingerprint(Case("b", path=two))
    with StateStore(tmp_path / "state.sqlite") as store:
        old = time.time() - 3600
        for p in one.iterdir():
            os.utime(p, (old, old))  # old files: their hashes are cached
        first = fingerprint(Case("a", path=one), store)
        assert first == fingerprint(Case("b", path=two))
        assert store.get_hash(str(sorted(one.iterdir())[0].resolve()),
                              sorted(one.iterdir())[0].stat().st_size,
                              sorted(one.iterdir())[0].stat().st_mtime_ns) is not None
        assert fingerprint(Case("a", path=one), store) == first
        victim = sorted(one.iterdir())[3]
        data = bytearray(victim.read_bytes())
        data[-10] ^= 0xFF
        victim.write_bytes(bytes(data))  # same size, new mtime: the cache must not answer
        assert fingerprint(Case("a", path=one), store) != first
        (one / "extra.dcm").write_bytes(b"x")
        assert fingerprint(Case("a", path=one), store) != first


def test_manifest_columns_paths_and_clinical(tmp_path: Path) -> None:
    m = tmp_path / "sub" / "m.csv"
    m.parent.mkdir()
    m.write_text("\ufeffcase_id,path,series_uid,levels,height_m,bmi,smoker\n"
                 "p1,scans/p1.nii.gz,,L3=slice:40; L4=z:-12.5,1.72,24.1,yes\n"
                 f"p2,{tmp_path / 'abs'},1.2.3,,,,\n")
    cases = read_manifest(m)
    assert [c.case_id for c in cases] == ["p1", "p2"]
    p1, p2 = cases
    assert p1.path == m.parent / "scans" / "p1.nii.gz"
    assert p1.levels == ("L3=slice:40", "L4=z:-12.5") and p1.height_m == 1.72
    assert dict(p1.clinical) == {"bmi": "24.1", "smoker": "yes"}
    assert p2.path == tmp_path / "abs" and p2.series_uid == "1.2.3" and p2.height_m is None


@pytest.mark.parametrize(("text", "needle"), [
    ("id,file\na,x.nii\n", "missing column(s) path"),
    ("path,age\nx.nii,3\n", "missing column(s) id"),
    ("id,path\na,x.nii,extra\n", "row 2: 3 value(s) for 2 column(s)"),
    ("id,path\n,x.nii\n", "row 2: empty id"),
    ("id,path,height_m\na,x.nii,tall\n", "height_m 'tall' is not a number"),
    ("id,path,height_m\na,x.nii,172\n", "not a height in metres"),
    ("", "missing column(s) id, path"),
])
def test_manifest_errors_name_the_problem(tmp_path: Path, text: str, needle: str) -> None:
    m = tmp_path / "m.csv"
    m.write_text(text)
    with pytest.raises(ManifestError) as info:
        read_manifest(m)
    assert needle in str(info.value) and str(m) in str(info.value)


def test_duplicate_case_ids_are_refused(tmp_path: Path, abdomen: Path) -> None:
    m = tmp_path / "m.csv"
    m.write_text(f"id,path\na,{abdomen / 'ct.nii.gz'}\nb,x\na,y\n")
    with pytest.raises(CaseIdError, match="'a'"):
        read_manifest(m)
    r = runner.invoke(app, ["batch", str(m), "--out", str(tmp_path / "out")])
    assert r.exit_code == EXIT_INPUT_REFUSED and "used more than once" in r.output
    assert not (tmp_path / "out").exists()  # refused before anything was written
    # two inputs naming the same file: the same id twice
    with pytest.raises(CaseIdError):
        discover([abdomen / "ct.nii.gz", abdomen / "ct.nii.gz"])
    with pytest.raises(CaseIdError):
        run_batch([Case("a", path=abdomen), Case("a", path=abdomen)], tmp_path / "out2")
    with pytest.raises(CaseIdError, match="cannot name an output folder"):
        run_batch([Case("../a", path=abdomen)], tmp_path / "out2")
    assert not (tmp_path / "out2").exists()
    with pytest.raises(InputNotFoundError):
        discover([tmp_path / "nowhere"])


def _non_image(study: str) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.22"  # Enhanced SR
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "SR"
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    return ds


def test_discovery_groups_dicom_by_study_and_series(tmp_path: Path, abdomen: Path) -> None:
    root = tmp_path / "archive"
    series = f.series()
    lower, upper = series[:10], series[10:]
    study = str(series[0].StudyInstanceUID)
    for n, part in ((2, lower), (3, upper)):
        f.set_series_uid(part)
        for ds in part:
            ds.SeriesNumber = n
    f.write_series(lower + upper, root / "patient1" / "study", prefix="img")  # 2 series, 1 dir
    scout = f.as_localizer(f.series()[:2])
    f.write_series(scout, root / "patient1" / "study" / "scout")
    f.write(_non_image(study), root / "patient1" / "study" / "sr" / "report.dcm")
    _mr_study(root / "patient2" / "mr")
    shutil.copy2(abdomen / "ct.nii.gz", root / "patient3.nii.gz")
    (root / "readme.txt").write_text("x")
    (root / ".hidden").mkdir()
    (root / ".hidden" / "ct.nii.gz").write_bytes(b"never looked at")

    found = discover([root])
    by_id = {c.case_id: c for c in found.cases}
    assert set(by_id) == {"archive_patient1_study_s2", "archive_patient1_study_s3",
                          "archive_patient2_mr", "archive_patient3"}
    assert by_id["archive_patient1_study_s2"].series_uid == lower[0].SeriesInstanceUID
    assert by_id["archive_patient1_study_s3"].path == root / "patient1" / "study"
    assert by_id["archive_patient2_mr"].series_uid is not None  # fails later, with its reason
    reasons = {Path(i.path).name: i.reason for i in found.ignored}
    assert "localizer" in reasons["scout"]
    assert "holds no images" in reasons["sr"]
    assert "neither DICOM" in reasons["readme.txt"]
    # ids do not depend on the other inputs
    alone = discover([root / "patient2"])
    assert [c.case_id for c in alone.cases] == ["patient2_mr"]


def test_foreign_case_folder_is_not_overwritten(tmp_path: Path, abdomen: Path) -> None:
    scan = tmp_path / "bad.nii.gz"
    scan.write_bytes((abdomen / "ct.nii.gz").read_bytes()[:100])
    out = tmp_path / "out"
    (out / "cases" / "bad").mkdir(parents=True)
    (out / "cases" / "bad" / "mine.txt").write_text("keep me")
    report = run_batch([Case("bad", path=scan)], out)  # refused before any worker starts
    assert report.n_failed == 1 and report.failures[0].error_type == "OutputExistsError"
    assert "--overwrite" in report.failures[0].reason
    assert (out / "cases" / "bad" / "mine.txt").read_text() == "keep me"
    assert report.table_rows == 0 and _table(out).columns[0] == "scan_id"


def test_a_second_batch_on_the_same_folder_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with OutputLock(out), pytest.raises(BatchError, match="another rcsa batch"):
        run_batch([], out)
    report = run_batch([], out)  # the lock is free again
    assert report.n_failed == 0 and report.table_rows == 0


def test_discovery_skips_label_volumes_with_a_label_map(tmp_path: Path, abdomen: Path) -> None:
    """A folder laid out like the sample (CT + TotalSegmentator labels with their .json): the
    label volumes are ignored with the reason, the CT is a case."""
    for name in ("ct.nii.gz", "labels_ts_v2.nii.gz", "labels_ts_v2.json"):
        shutil.copy2(abdomen / name, tmp_path / name)
    found = discover([tmp_path])
    assert [c.path.name for c in found.cases if c.path is not None] == ["ct.nii.gz"]
    why = {Path(i.path).name: i.reason for i in found.ignored}
    assert "label volume" in why["labels_ts_v2.nii.gz"]
