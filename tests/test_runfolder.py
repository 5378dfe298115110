"""The run folder (rcsa.runfolder): what the writer writes, the reader gives back, typed.

The pipeline runs on the shipped sample with existing masks (``rcsa measure``'s path without
the model, torch-free and fast); the folder is read back and compared with the in-memory
result: the segmentation's geometry and voxels, the level map, the long and wide tables.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from rcsa.errors import InputError, InputNotFoundError, OutputExistsError
from rcsa.io import CTVolume, LabelVolume, load, load_labels, write_labels
from rcsa.measure import wide_columns
from rcsa.pipeline import ScanResult, measure_labels, write_scan_outputs
from rcsa.runfolder import is_run_folder, open_run_folder
from rcsa.runfolder import names as N
from rcsa.spine import spine_columns


@pytest.fixture(scope="module")
def written(abdomen: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[ScanResult, Path]:
    result = measure_labels(abdomen / "ct.nii.gz", abdomen / "labels_ts_v2.nii.gz",
                            label_map="ts_v2", body_parts=abdomen / "vertebral_body_parts.nii.gz",
                            body_from_model=False)
    out = tmp_path_factory.mktemp("runfolder") / "out"
    write_scan_outputs(result, out)
    return result, out


def test_the_writer_writes_every_named_file(written: tuple[ScanResult, Path]) -> None:
    result, out = written
    assert {p.name for p in out.iterdir()} == {*N.RUN_FILES, N.QC_DIR}
    qc = {p.name for p in (out / N.QC_DIR).iterdir()}
    assert qc == {f"{n}.png" for n in (N.LEVEL_MAP_IMAGE, N.SPINE_IMAGE, *result.level_labels)}
    assert is_run_folder(out)


def test_segmentation_round_trips_on_the_ct_grid(written: tuple[ScanResult, Path]) -> None:
    result, out = written
    run = open_run_folder(out)
    seg = run.segmentation(like=result.ct)  # GeometryError if the grid differed
    assert isinstance(seg, LabelVolume)
    assert seg.geometry.size_voxels == result.ct.geometry.size_voxels
    np.testing.assert_allclose(seg.geometry.affine_lps, result.ct.geometry.affine_lps,
                               atol=1e-4)
    assert np.array_equal(seg.voxels, result.segmentation_volume().voxels)
    assert {k: v for k, v in seg.names.items()} == {c.id: c.name
                                                    for c in result.class_map.classes}
    assert seg.voxels.any()  # not a vacuous comparison
    # on disk, in the input file's own axis order (the sample is not stored in LPS order)
    raw = sitk.ReadImage(str(out / N.SEGMENTATION_NIFTI))
    src = sitk.ReadImage(str(Path(result.inputs["scan"])))
    assert raw.GetSize() == src.GetSize() and raw.GetDirection() == pytest.approx(
        src.GetDirection())


def test_level_map_and_tables_round_trip(written: tuple[ScanResult, Path]) -> None:
    result, out = written
    run = open_run_folder(out)
    assert run.level_map.to_dict() == result.level_map.to_dict()
    assert run.level_map.found().keys() == result.level_map.found().keys()
    assert run.level_map["L3"].slice_index == result.level_map["L3"].slice_index
    m = result.measurements
    assert len(run.measurements) == len(m.rows) > 0
    for got, want in zip(run.measurements, m.rows, strict=True):
        assert (got.level, got.structure, got.side, got.quantity, got.unit, got.flag,
                got.reason, got.normaliser) == (want.level, want.structure, want.side,
                                                want.quantity, want.unit, want.flag,
                                                want.reason, want.normaliser)
        if want.value is None:
            assert got.value is None
        else:
            assert got.value == pytest.approx(want.value, rel=1e-12, abs=1e-12)
    assert list(run.wide.columns) == wide_columns(m.config) + spine_columns()
    assert result.spine is not None and run.spine == json.loads(
        json.dumps(result.spine.to_dict()))
    assert run.wide.iloc[0]["L3_spine_status"] == result.spine["L3"].status
    row = run.wide.iloc[0]
    assert row["scan_id"] == m.scan_id == "ct"
    col = "L3_psoas_left_csa_mm2"
    assert row[col] == pytest.approx(m.wide_row()[col], rel=1e-12)
    assert run.record["scan_id"] == "ct" and run.scan_path == result.inputs["scan"]
    assert run.image("L3") == out / "qc" / "L3.png" and run.image("nowhere") is None
    ct = run.load_scan()  # the recorded input, on the grid the segmentation lies on
    assert np.array_equal(ct.voxels, result.ct.voxels)
    run.segmentation(like=ct)


def test_reader_refusals_name_the_file(written: tuple[ScanResult, Path], tmp_path: Path) -> None:
    _, out = written
    with pytest.raises(InputNotFoundError):
        open_run_folder(tmp_path / "missing")
    partial = tmp_path / "partial"
    shutil.copytree(out, partial)
    (partial / N.LEVELS_JSON).unlink()
    assert not is_run_folder(partial)
    with pytest.raises(InputError, match=r"levels\.json is missing"):
        open_run_folder(partial, require=N.REQUIRED_FILES)
    (partial / N.LEVELS_JSON).write_text('{"levels": {"L3": {"status": "lost"}}}')
    with pytest.raises(InputError, match="unknown status"):
        _ = open_run_folder(partial).level_map
    (partial / N.RUN_JSON).write_text("{not json")
    with pytest.raises(InputError, match=r"run\.json"):
        _ = open_run_folder(partial).record


def test_the_writer_refuses_a_non_empty_folder(written: tuple[ScanResult, Path]) -> None:
    result, out = written
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(OutputExistsError):
        write_scan_outputs(result, out)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("code", ["RAS", "LPI", "PIR"])
def test_write_labels_uses_the_file_grid_recorded_at_load(tmp_path: Path, code: str) -> None:
    """``io.write_labels`` puts the labels in the axis order of the CT file as stored (recorded
    by the loader: nothing reopens the file) and they read back onto the CT's grid."""
    rng = np.random.default_rng(0)
    img = sitk.GetImageFromArray(rng.integers(-1000, 1000, (6, 7, 8)).astype(np.int16))
    img.SetSpacing((0.8, 0.9, 2.5))
    img.SetOrigin((10.0, -20.0, 30.0))
    img = sitk.DICOMOrient(img, code)
    path = tmp_path / f"ct_{code}.nii.gz"
    sitk.WriteImage(img, str(path))
    ct: CTVolume = load(path)
    assert ct.source.file_geometry is not None
    labels = np.zeros(ct.voxels.shape, np.uint8)
    labels[1, 2, 3] = 5
    labels[4, 0, 6] = 7
    out = write_labels(LabelVolume(labels, ct.geometry, {5: "a", 7: "b"}), tmp_path / "l.nii.gz",
                       ct.source.file_geometry)
    raw = sitk.ReadImage(str(out))
    assert raw.GetSize() == img.GetSize()
    assert raw.GetDirection() == pytest.approx(img.GetDirection())
    back = load_labels(out, like=ct)
    assert np.array_equal(back.voxels, labels)
    # without the file grid (DICOM): rcsa's canonical order
    canon = sitk.ReadImage(str(write_labels(LabelVolume(labels, ct.geometry),
                                            tmp_path / "c.nii.gz")))
    assert canon.GetSize() == ct.size_voxels


def test_segmentation_labels_json_is_the_class_map(written: tuple[ScanResult, Path]) -> None:
    result, out = written
    doc = json.loads((out / N.SEGMENTATION_LABELS_JSON).read_text())
    assert doc == result.class_map.labels_dict()


def test_side_by_side_sheet() -> None:
    """QC panels left to right, top-aligned on black; no panel is refused."""
    from PIL import Image

    from rcsa.runfolder.qc import side_by_side

    a, b = Image.new("RGB", (3, 2), (255, 0, 0)), Image.new("L", (2, 4), 128)
    sheet = side_by_side([a, b])
    assert sheet.size == (5, 4) and sheet.mode == "RGB"
    assert sheet.getpixel((0, 0)) == (255, 0, 0) and sheet.getpixel((0, 3)) == (0, 0, 0)
    assert sheet.getpixel((4, 3)) == (128, 128, 128)
    with pytest.raises(ValueError, match="no panels"):
        side_by_side([])
