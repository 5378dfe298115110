"""`rcsa run`: scan to feature table with the shipped model (issue 6)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from rich.console import Console
from typer.testing import CliRunner

from _dicom_factory import ALBERTA, ALBERTA_UNCOMPRESSED
from rcsa.cli import EXIT_NOTHING_MEASURED, app
from rcsa.config import load_config
from rcsa.measure import wide_columns
from rcsa.spine import spine_columns

runner = CliRunner()
ALBERTA_SLICE = ALBERTA_UNCOMPRESSED
ALBERTA_TAG = ALBERTA / "tissue_labels.tag"


@pytest.fixture(scope="module")
def run_out(tmp_path_factory: pytest.TempPathFactory, abdomen: Path) -> Path:
    out = tmp_path_factory.mktemp("run") / "out"
    r = runner.invoke(app, ["run", str(abdomen / "ct.nii.gz"), "--out", str(out)])
    assert r.exit_code == 0, r.output
    return out


def test_run_writes_the_documented_folder(run_out: Path) -> None:
    names = {p.name for p in run_out.iterdir()}
    assert {"features.csv", "features.parquet", "features_long.csv", "levels.json",
            "segmentation.nii.gz", "segmentation_labels.json", "qc", "run.json"} <= names
    wide = pd.read_csv(run_out / "features.csv")
    assert list(wide.columns) == wide_columns(load_config()) + spine_columns()
    w = wide.iloc[0]
    # the spine analysis (docs/spine.md): columns, spine.json and the sagittal sheet
    assert (run_out / "spine.json").is_file() and (run_out / "qc" / "spine.png").is_file()
    assert w["L3_spine_status"] == "measured" and w["L3_body_height_posterior_mm"] > 15
    assert w["T12_spine_status"] == "ambiguous" and pd.isna(w["T12_genant_grade"])
    assert w["scan_id"] == "ct"
    assert "sha256" in w["segmentation_source"]
    run = json.loads((run_out / "run.json").read_text())
    assert run["notes"]["model"]["sha256"]
    assert set(run["timings_s"]) >= {"load", "levels", "segment", "measure", "spine", "total"}
    # segmentation only on the level slices, on the input's own grid
    seg = sitk.GetArrayFromImage(sitk.ReadImage(str(run_out / "segmentation.nii.gz")))
    assert seg.shape == (112, 101, 122)
    assert int((seg.reshape(112, -1).max(axis=1) > 0).sum()) == len(
        [p for p in (run_out / "qc").iterdir() if p.name not in ("levels.png", "spine.png")])
    # by default only the levels the feature table measures are segmented
    from rcsa.measure.table import level_names

    assert {p.stem for p in (run_out / "qc").iterdir()
            if p.name not in ("levels.png", "spine.png")} == set(
        level_names(load_config()))


def test_run_values_are_close_to_reference_labels(run_out: Path) -> None:
    """Model CSA vs TS-v2-derived CSA on the same automatically found levels. The sample was
    in the model's training data, so this checks plumbing and units, not accuracy."""
    w = pd.read_csv(run_out / "features.csv").iloc[0]
    assert w["L4_level_status"] == "found"
    for col, ref in (("L4_psoas_left_csa_mm2", 837), ("L4_vertebral_body_csa_mm2", 1575),
                     ("femoral_head_top_gluteus_maximus_right_csa_mm2", 3492)):
        assert w[col] == pytest.approx(ref, rel=0.15), col
    assert 0.3 < w["L4_psoas_both_rcsa"] < 2.0


def test_run_without_pelvis_succeeds_with_empty_gluteal_values(tmp_path: Path,
                                                               abdomen: Path) -> None:
    img = sitk.ReadImage(str(abdomen / "ct.nii.gz"))
    crop = tmp_path / "upper.nii.gz"
    sitk.WriteImage(img[:, :, 61:], str(crop))
    out = tmp_path / "out"
    r = runner.invoke(app, ["run", str(crop), "--out", str(out)])
    assert r.exit_code == 0, r.output
    w = pd.read_csv(out / "features.csv").iloc[0]
    for col in ("sij_lower_gluteus_medius_left_csa_mm2",
                "femoral_head_top_gluteus_maximus_left_csa_mm2",
                "sij_lower_gluteus_medius_both_rcsa"):
        assert pd.isna(w[col]), col
    assert "missing" in w["femoral_head_top_gluteus_maximus_reason"]
    assert np.isfinite(w["L3_psoas_left_csa_mm2"])


# ------------------------------------------------------------------------------------------
# a single axial slice (subject C, the Alberta protocol's L3 slice) and "nothing measured"
# ------------------------------------------------------------------------------------------
def _one_line_error(r: Any) -> str:
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.output
    return lines[0]


def test_single_slice_without_level_exits_9_naming_the_option(tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = runner.invoke(app, ["run", str(ALBERTA_SLICE), "--out", str(out)])
    assert r.exit_code == EXIT_NOTHING_MEASURED == 9, r.output
    line = _one_line_error(r)
    assert str(ALBERTA_SLICE) in line and "nothing measured" in line
    assert "single axial slice" in line and "--level L3=slice:0" in line
    assert r.stdout == "" and not out.exists()  # nothing written


def test_single_slice_tag_tracing_without_level_exits_9(tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = runner.invoke(app, ["measure", str(ALBERTA_SLICE), "--labels", str(ALBERTA_TAG),
                            "--out", str(out), "--no-body-from-model"])
    assert r.exit_code == 9, r.output
    assert "--level L3=slice:0" in _one_line_error(r)
    assert not out.exists()


def test_single_slice_tag_tracing_with_level(tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = runner.invoke(app, ["measure", str(ALBERTA_SLICE), "--labels", str(ALBERTA_TAG),
                            "--out", str(out), "--no-body-from-model", "--level", "L3=slice:0"])
    assert r.exit_code == 0, r.output
    w = pd.read_csv(out / "features_long.csv")
    muscle = w[(w.level == "L3") & (w.structure == "skeletal_muscle") & (w.quantity == "csa_mm2")]
    assert float(muscle.value.iloc[0]) == pytest.approx(13786, abs=1)  # data README: 13786 mm2
    assert "single axial slice: measured at L3 as given" in r.stderr


def test_no_level_in_a_volume_exits_9_with_the_reason(tmp_path: Path) -> None:
    """Twenty slices of air: no vertebral column, nothing measured, no output folder."""
    img = sitk.GetImageFromArray(np.full((20, 48, 48), -1000, np.int16))
    img.SetSpacing((2.0, 2.0, 3.0))
    ct = tmp_path / "air.nii.gz"
    sitk.WriteImage(img, str(ct))
    r = runner.invoke(app, ["run", str(ct), "--out", str(tmp_path / "out")])
    assert r.exit_code == 9, r.output
    line = _one_line_error(r)
    assert "no measurement level found" in line and "--level NAME=slice:K" in line
    assert "single axial slice" not in line and not (tmp_path / "out").exists()


def test_single_slice_with_level_runs_with_progress_on_a_terminal(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The issue's command with the level named: measured, exit 0; progress per stage on a
    terminal's stderr, none on a pipe's; the closing line gives the wall time and its parts."""
    import rcsa.cli.scan

    args = ["run", str(ALBERTA_SLICE), "--level", "L3=slice:0"]
    piped = runner.invoke(app, [*args, "--out", str(tmp_path / "piped")])
    assert piped.exit_code == 0, piped.output
    assert "done " not in piped.stderr  # not a terminal: stderr keeps warnings and errors only
    assert "single axial slice: measured at L3 as given" in piped.stderr
    w = pd.read_csv(tmp_path / "piped" / "features.csv").iloc[0]
    assert w["L3_level_status"] == "found" and np.isfinite(w["L3_vertebral_body_csa_mm2"])
    last = piped.stdout.strip().splitlines()[-1]
    m = re.fullmatch(r"wrote (\S+) in (\d+\.\d) s \(start-up (\d+\.\d) s, pipeline (\d+\.\d) s, "
                     r"writing (\d+\.\d) s\)", last)
    assert m, last
    total, parts = float(m[2]), [float(m[i]) for i in (3, 4, 5)]
    assert total >= sum(parts) - 0.15 and parts[1] > 0

    buf = io.StringIO()
    monkeypatch.setattr(rcsa.cli.scan, "err", Console(file=buf, force_terminal=True, width=200))
    tty = runner.invoke(app, [*args, "--out", str(tmp_path / "tty")])
    assert tty.exit_code == 0, tty.output
    text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", buf.getvalue())
    for stage in ("starting rcsa", "importing the pipeline", "loading the scan",
                  "finding the levels", "segmenting 1 level(s): L3", "measuring",
                  f"writing {tmp_path / 'tty'}"):
        assert re.search(rf"done {re.escape(stage)} \(\d+\.\d s\)", text), (stage, text)


def test_run_carries_the_segmentation_confidence(run_out: Path) -> None:
    """Per muscle side and level: seg_confidence in [0, 1] and seg_needs_review, the flag
    agreeing with the model's threshold (issue 16)."""
    from rcsa.segment.infer import NEEDS_REVIEW_BELOW

    w = pd.read_csv(run_out / "features.csv").iloc[0]
    conf_cols = [c for c in w.index if c.endswith("_seg_confidence")]
    assert "L3_psoas_left_seg_confidence" in conf_cols
    assert not any(c.endswith("_both_seg_confidence") for c in conf_cols)
    measured = [c for c in conf_cols if not pd.isna(w[c])]
    assert measured
    for c in measured:
        assert 0.0 <= w[c] <= 1.0
        review = w[c.replace("_seg_confidence", "_seg_needs_review")]
        assert bool(review) == (w[c] < NEEDS_REVIEW_BELOW), c


def test_seg_model_pins_the_segmentation_model(run_out: Path, abdomen: Path,
                                               tmp_path: Path) -> None:
    """`--seg-model` runs the pipeline with another model (here v0.3, kept in
    models/previous) and records it; the batch state key follows it; a bad path is a model
    error (exit 10) naming the file, before any output is written."""
    from rcsa.batch.fingerprint import model_version
    from rcsa.segment.model import MODELS_DIR

    v03 = MODELS_DIR / "previous" / "v0.3" / "metadata.json"
    out = tmp_path / "v03"
    r = runner.invoke(app, ["run", str(abdomen / "ct.nii.gz"), "--out", str(out),
                            "--seg-model", str(v03)])
    assert r.exit_code == 0, r.output
    pinned = json.loads((out / "run.json").read_text())["notes"]["model"]
    shipped = json.loads((run_out / "run.json").read_text())["notes"]["model"]
    meta = json.loads(v03.read_text())
    assert pinned["name"] == meta["name"] == "rcsa-seg-2.5d-basicunet-v0.3"
    assert pinned["sha256"] == meta["weights"]["sha256"] != shipped["sha256"]
    assert pd.read_csv(out / "features.csv").iloc[0]["segmentation_source"].count(
        meta["weights"]["sha256"]) == 1
    assert model_version(v03).sha256 == meta["weights"]["sha256"]
    assert model_version().sha256 == shipped["sha256"]
    bad = tmp_path / "none" / "metadata.json"
    r = runner.invoke(app, ["run", str(abdomen / "ct.nii.gz"), "--out", str(tmp_path / "b"),
                            "--seg-model", str(bad)])
    assert r.exit_code == 10, r.output
    assert "metadata.json" in r.output and not (tmp_path / "b").exists()
