"""`rcsa run`: scan to feature table with the shipped model (issue 6)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from typer.testing import CliRunner

from rcsa.cli import app
from rcsa.config import load_config
from rcsa.measure import wide_columns

runner = CliRunner()


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
    assert list(wide.columns) == wide_columns(load_config())
    w = wide.iloc[0]
    assert w["scan_id"] == "ct"
    assert "sha256" in w["segmentation_source"]
    run = json.loads((run_out / "run.json").read_text())
    assert run["notes"]["model"]["sha256"]
    assert set(run["timings_s"]) >= {"load", "levels", "segment", "measure", "total"}
    # segmentation only on the level slices, on the input's own grid
    seg = sitk.GetArrayFromImage(sitk.ReadImage(str(run_out / "segmentation.nii.gz")))
    assert seg.shape == (112, 101, 122)
    assert int((seg.reshape(112, -1).max(axis=1) > 0).sum()) == len(
        [p for p in (run_out / "qc").iterdir() if p.name != "levels.png"])
    # by default only the levels the feature table measures are segmented
    from rcsa.measure.table import level_names

    assert {p.stem for p in (run_out / "qc").iterdir() if p.name != "levels.png"} == set(
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
