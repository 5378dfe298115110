"""Measurement mechanics (synthetic) and reference figures on the real sample (issue 6)."""

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
from rcsa.errors import OutputWriteError
from rcsa.measure import pooled, region_stats, wide_columns
from rcsa.spine import spine_columns

runner = CliRunner()


# ------------------------------------------------------------------------------ mechanics
@pytest.mark.parametrize(("sx", "sy"), [(0.7, 1.3), (1.0, 1.0), (0.4, 2.5)])
def test_disc_area_within_discretisation_bound(sx: float, sy: float) -> None:
    r = 40.0  # mm
    ny, nx = int(2.6 * r / sy), int(2.6 * r / sx)
    y, x = np.mgrid[0:ny, 0:nx]
    cy, cx = (ny - 1) / 2 * sy, (nx - 1) / 2 * sx
    mask = ((x * sx - cx) ** 2 + (y * sy - cy) ** 2) <= r**2
    hu = np.full(mask.shape, 50.0)
    st = region_stats(hu, mask, (sx, sy))
    exact = np.pi * r**2
    # every misclassified pixel centre lies within half a pixel diagonal of the circle
    half_diag = 0.5 * np.hypot(sx, sy)
    bound = np.pi * ((r + half_diag) ** 2 - (r - half_diag) ** 2)
    assert abs(st.csa_mm2 - exact) <= bound
    assert st.csa_mm2 == pytest.approx(mask.sum() * sx * sy)


def test_hu_range_arithmetic_by_hand() -> None:
    values = np.array([-200, -190, -100, -30, -29.5, -29, 0, 150, 151, 500], dtype=np.float32)
    hu = values.reshape(2, 5)
    mask = np.ones_like(hu, dtype=bool)
    st = region_stats(hu, mask, (0.5, 2.0))  # pixel area 1 mm^2
    assert st.n_pixels == 10 and st.csa_mm2 == 10.0
    assert st.lean_csa_mm2 == 3.0  # -29, 0, 150 (closed interval -29..150)
    assert st.fat_pixels == 3  # -190, -100, -30 (closed interval -190..-30)
    assert st.fat_pct == pytest.approx(30.0)
    assert st.mean_hu == pytest.approx(values.astype(float).mean())
    assert st.sd_hu == pytest.approx(values.astype(float).std(ddof=1))


def test_pooled_equals_union() -> None:
    rng = np.random.default_rng(0)
    hu = rng.normal(40, 30, (50, 60))
    a = np.zeros(hu.shape, bool)
    b = np.zeros(hu.shape, bool)
    a[5:20, 5:20] = True
    b[30:45, 30:50] = True
    both = pooled(region_stats(hu, a, (0.8, 0.8)), region_stats(hu, b, (0.8, 0.8)))
    direct = region_stats(hu, a | b, (0.8, 0.8))
    assert both.csa_mm2 == pytest.approx(direct.csa_mm2)
    assert both.mean_hu == pytest.approx(direct.mean_hu)
    assert both.sd_hu == pytest.approx(direct.sd_hu)
    assert both.fat_pct == pytest.approx(direct.fat_pct)


def test_invalid_spacing_is_refused() -> None:
    with pytest.raises(ValueError, match="spacing"):
        region_stats(np.zeros((2, 2)), np.ones((2, 2), bool), (0.0, 1.0))


# ------------------------------------------------------------------------------ real sample
def _measure(args: list[str | Path]) -> None:
    r = runner.invoke(app, ["measure", *[str(a) for a in args]])
    assert r.exit_code == 0, r.output


@pytest.fixture(scope="module")
def ts_v2_out(tmp_path_factory: pytest.TempPathFactory, abdomen: Path) -> Path:
    out = tmp_path_factory.mktemp("m") / "out"
    _measure([abdomen / "ct.nii.gz", "--labels", abdomen / "labels_ts_v2.nii.gz",
              "--body-parts", abdomen / "vertebral_body_parts.nii.gz", "--out", out,
              "--level", "L3=slice:72", "--level", "L4=slice:62", "--level", "L5=slice:50"])
    return out


def test_reference_figures_reproduced_exactly(ts_v2_out: Path) -> None:
    """shared README: L3 k72 psoas 648/702, body 1521; L4 k62 psoas 837/864, body 1656 at
    z 280.30; vertebral body = vertebra label AND body part 1; psoas = iliopsoas above the
    iliac crest (k 60)."""
    w = pd.read_csv(ts_v2_out / "features.csv").iloc[0]
    assert w["L4_z_mm"] == pytest.approx(280.30, abs=0.01)
    assert w["L4_level_method"] == "manual"
    expected = {
        "L3_psoas_left_csa_mm2": 648, "L3_psoas_right_csa_mm2": 702,
        "L3_vertebral_body_csa_mm2": 1521,
        "L4_psoas_left_csa_mm2": 837, "L4_psoas_right_csa_mm2": 864,
        "L4_vertebral_body_csa_mm2": 1656, "L5_vertebral_body_csa_mm2": 1836,
    }
    for col, value in expected.items():
        assert w[col] == pytest.approx(value, abs=1e-6), col
    # autochthon = multifidus + erector spinae (rule-derived split of one label)
    for lv, left, right in (("L3", 2619, 2349), ("L4", 2421, 2277), ("L5", 1053, 1251)):
        assert w[f"{lv}_multifidus_left_csa_mm2"] + w[f"{lv}_erector_spinae_left_csa_mm2"] \
            == pytest.approx(left)
        assert w[f"{lv}_multifidus_right_csa_mm2"] + w[f"{lv}_erector_spinae_right_csa_mm2"] \
            == pytest.approx(right)
    # rCSA: psoas at L4 over the L4 body; gluteal levels over the reference vertebra (L4)
    assert w["L4_psoas_both_rcsa"] == pytest.approx((837 + 864) / 1656)
    assert w["sij_lower_gluteus_medius_left_rcsa"] == pytest.approx(
        w["sij_lower_gluteus_medius_left_csa_mm2"] / 1656)
    assert "L4" in w["rcsa_normaliser"]


def test_output_folder_contents(ts_v2_out: Path) -> None:
    names = {p.name for p in ts_v2_out.iterdir()}
    assert {"features.csv", "features.parquet", "features_long.csv", "levels.json",
            "segmentation.nii.gz", "segmentation_labels.json", "qc", "run.json"} <= names
    assert (ts_v2_out / "qc" / "L4.png").stat().st_size > 1000
    wide = pd.read_csv(ts_v2_out / "features.csv")
    assert list(wide.columns) == wide_columns(load_config()) + spine_columns()
    assert (ts_v2_out / "spine.json").is_file() and (ts_v2_out / "qc" / "spine.png").is_file()
    pq = pd.read_parquet(ts_v2_out / "features.parquet")
    assert list(pq.columns) == list(wide.columns)
    long = pd.read_csv(ts_v2_out / "features_long.csv")
    row = long[(long.level == "L4") & (long.structure == "psoas") & (long.side == "left")
               & (long.quantity == "csa_mm2")]
    assert row.value.item() == 837 and row.unit.item() == "mm2"
    run = json.loads((ts_v2_out / "run.json").read_text())
    assert run["config"]["measure"]["lean_hu"] == [-29.0, 150.0]
    seg = sitk.ReadImage(str(ts_v2_out / "segmentation.nii.gz"))
    assert seg.GetSize() == (122, 101, 112)


def test_tag_file_gives_alberta_muscle_area(tmp_path: Path, alberta: Path) -> None:
    out = tmp_path / "tag"
    _measure([alberta / "slice_uncompressed.dcm", "--labels", alberta / "tissue_labels.tag",
              "--out", out, "--level", "L3=slice:0"])
    long = pd.read_csv(out / "features_long.csv")
    row = long[(long.structure == "skeletal_muscle") & (long.quantity == "csa_mm2")]
    assert row.value.item() == pytest.approx(13786, abs=0.5)


def test_scan_without_pelvis_gives_empty_gluteal_values(tmp_path: Path, abdomen: Path,
                                                         ts_v2_out: Path) -> None:
    crop = tmp_path / "crop"
    crop.mkdir()
    for name in ("ct.nii.gz", "labels_ts_v2.nii.gz", "vertebral_body_parts.nii.gz"):
        img = sitk.ReadImage(str(abdomen / name))
        sitk.WriteImage(img[:, :, 61:], str(crop / name))
    (crop / "labels_ts_v2.json").write_text((abdomen / "labels_ts_v2.json").read_text())
    out = tmp_path / "out"
    _measure([crop / "ct.nii.gz", "--labels", crop / "labels_ts_v2.nii.gz",
              "--body-parts", crop / "vertebral_body_parts.nii.gz", "--out", out])
    w = pd.read_csv(out / "features.csv").iloc[0]
    for col in ("sij_lower_gluteus_medius_left_csa_mm2",
                "femoral_head_top_gluteus_maximus_right_csa_mm2"):
        assert pd.isna(w[col]), col  # empty, never 0
    assert "missing" in w["sij_lower_gluteus_medius_reason"]
    assert w["sij_lower_level_status"] == "missing"
    assert w["L3_psoas_left_csa_mm2"] > 0
    # the same documented columns as the full scan: tables concatenate
    full = pd.read_csv(ts_v2_out / "features.csv")
    both = pd.concat([full, pd.read_csv(out / "features.csv")], ignore_index=True)
    assert list(both.columns) == list(full.columns) and len(both) == 2


def test_non_empty_output_folder_is_never_overwritten(tmp_path: Path, abdomen: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    args = [abdomen / "ct.nii.gz", "--labels", abdomen / "labels_ts_v2.nii.gz", "--out", out]
    r = runner.invoke(app, ["measure", *[str(a) for a in args]])
    assert r.exit_code == 6 and "--overwrite" in r.output
    assert (out / "keep.txt").read_text() == "mine"
    r = runner.invoke(app, ["measure", *[str(a) for a in args], "--overwrite"])
    assert r.exit_code == 0, r.output
    assert not (out / "keep.txt").exists() and (out / "features.csv").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left


def test_vertebral_body_from_rcsa_model_without_body_parts(tmp_path: Path, abdomen: Path) -> None:
    """Without --body-parts the normaliser comes from rcsa's own model, and says so; with
    --no-body-from-model it is empty with a reason (never 0)."""
    levels = ["--level", "L3=slice:72", "--level", "L4=slice:62", "--level", "L5=slice:50"]
    base = [abdomen / "ct.nii.gz", "--labels", abdomen / "labels_ts_v2.nii.gz", *levels]
    _measure([*base, "--out", tmp_path / "model"])
    w = pd.read_csv(tmp_path / "model" / "features.csv").iloc[0]
    # reference: vertebra label AND body part 1 (shared README); the sample is training data
    for lv, ref in (("L3", 1521), ("L4", 1656), ("L5", 1836)):
        assert w[f"{lv}_vertebral_body_csa_mm2"] == pytest.approx(ref, rel=0.10), lv
    assert "vertebral body at L3, L4, L5 from rcsa model" in w["segmentation_source"]
    assert w["L4_psoas_left_csa_mm2"] == 837  # the given muscle masks are untouched
    assert w["L4_psoas_both_rcsa"] == pytest.approx((837 + 864) / w["L4_vertebral_body_csa_mm2"])

    _measure([*base, "--no-body-from-model", "--out", tmp_path / "none"])
    w = pd.read_csv(tmp_path / "none" / "features.csv").iloc[0]
    assert pd.isna(w["L4_vertebral_body_csa_mm2"]) and pd.isna(w["L4_psoas_both_rcsa"])
    assert "--body-parts" in w["L4_vertebral_body_reason"]


def test_measuring_existing_masks_does_not_import_torch(abdomen: Path) -> None:
    """With a vertebral body in the labels (or --no-body-from-model) rcsa measure is torch-free."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from rcsa.pipeline import measure_labels\n"
        f"d = {str(abdomen)!r} + '/'\n"
        "measure_labels(d + 'ct.nii.gz', d + 'labels_ts_v2.nii.gz',\n"
        "               body_parts=d + 'vertebral_body_parts.nii.gz')\n"
        "measure_labels(d + 'ct.nii.gz', d + 'labels_ts_v2.nii.gz', body_from_model=False)\n"
        "print(sorted(m for m in ('torch', 'monai') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr


def test_failed_write_keeps_the_previous_folder(tmp_path: Path, abdomen: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The output parts are written concurrently into a staging folder: when one part fails,
    the error reaches the caller (an OSError as an OutputWriteError) and the existing folder is
    left exactly as it was."""
    import rcsa.runfolder.write
    from rcsa.pipeline import measure_to_folder

    out = tmp_path / "out"
    args = (abdomen / "ct.nii.gz", abdomen / "labels_ts_v2.nii.gz", out)
    opts = {"label_map": "ts_v2", "body_parts": abdomen / "vertebral_body_parts.nii.gz"}
    measure_to_folder(*args, **opts)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert Path("segmentation.nii.gz") in before and Path("qc/L4.png") in before

    def broken(*_a: object, **_k: object) -> None:
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(rcsa.runfolder.write, "write_labels", broken)
    with pytest.raises(OutputWriteError, match="disk full") as info:
        measure_to_folder(*args, overwrite=True, **opts)
    assert info.value.path == out  # the typed error (exit 10) names the output
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging folder left


def test_console_names_the_spine_figures_and_what_was_not_graded(
        tmp_path: Path, abdomen: Path) -> None:
    """``rcsa measure`` prints the fracture count with the vertebrae that were not graded and
    the bone attenuation as a band (docs/spine.md); the numbers are those of spine.json."""
    out = tmp_path / "out"
    r = runner.invoke(app, ["measure", str(abdomen / "ct.nii.gz"), "--labels",
                            str(abdomen / "labels_ts_v2.nii.gz"), "--out", str(out)])
    assert r.exit_code == 0, r.output
    spine = json.loads((out / "spine.json").read_text())
    text = " ".join(r.output.split())
    n, graded = spine["fractured_vertebrae_n"], [
        v for v, d in spine["vertebrae"].items() if d.get("genant_grade") is not None]
    assert f"spine: {n} of {len(graded)} graded vertebra(e) with Genant grade >= 1" in text
    for v in spine["fractured_vertebrae"]:
        assert f"{v} grade {spine['vertebrae'][v]['genant_grade']}" in text
    assert "not graded: " + ", ".join(spine["not_graded"]) in text
    assert f"{spine['bone_attenuation_vertebra']} trabecular " \
           f"{spine['bone_attenuation_hu']:.0f} HU" in text and "not a diagnosis" in text
