"""Malformed and awkward inputs: each is refused with the right typed error, naming the file
(or folder) and the reason, or tolerated with a warning. Cases are built from the real sample
DICOM files, copied (and edited with pydicom) into ``tmp_path``."""

from __future__ import annotations

import copy
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest

import _dicom_factory as f
from rcsa.errors import (
    CorruptFileError,
    DuplicateSliceError,
    EmptyInputError,
    InconsistentSeriesError,
    InputError,
    InputNotFoundError,
    InputNotReadableError,
    MissingPixelDataError,
    NoDicomFoundError,
    NotCTError,
    RcsaError,
    SeriesNotFoundError,
    SliceSpacingError,
    UnsupportedFormatError,
    UnsupportedImageError,
)
from rcsa.io import load, load_labels


def refused(
    exc_type: type[RcsaError], source: object, where: Path, *fragments: str, **kw: object
) -> RcsaError:
    """Load ``source``, expect exactly ``exc_type``, naming ``where`` and every fragment."""
    with pytest.raises(RcsaError) as info:
        load(source, **kw)  # type: ignore[arg-type]
    err = info.value
    assert type(err) is exc_type, f"{type(err).__name__}: {err}"
    assert isinstance(err, InputError)
    text = str(err)
    assert "\n" not in text
    assert err.path == where, text
    assert str(where) in text
    for frag in fragments:
        assert frag in text, f"{frag!r} not in {text!r}"
    return err


@pytest.fixture
def ct_series() -> list[pydicom.Dataset]:
    """Decoded copies of the real series (file order: superior -> inferior)."""
    return f.series()


@pytest.fixture(scope="module")
def reference_hu() -> np.ndarray:
    """HU of the untouched real series, canonical order (k = 0 most inferior)."""
    return np.asarray(load(f.THORACOLUMBAR).voxels)


# ------------------------------------------------------------------------------------------
# not found / empty / not DICOM / unreadable
# ------------------------------------------------------------------------------------------
def test_missing_path(tmp_path: Path) -> None:
    where = tmp_path / "nope"
    refused(InputNotFoundError, where, where, "no such file or folder")


def test_empty_folder(tmp_path: Path) -> None:
    where = tmp_path / "empty"
    (where / "sub").mkdir(parents=True)  # sub-folders, but no file anywhere
    refused(EmptyInputError, where, where, "contains no files")


def test_folder_of_non_dicom_files(tmp_path: Path) -> None:
    where = tmp_path / "docs"
    where.mkdir()
    (where / "notes.txt").write_text("patient notes\n")
    (where / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    (where / "data.bin").write_bytes(os.urandom(4096))
    err = refused(NoDicomFoundError, where, where, "no DICOM file among 3 file(s)")
    assert "is not DICOM" in str(err)


def test_single_non_dicom_file(tmp_path: Path) -> None:
    where = tmp_path / "report.pdf"
    where.write_bytes(b"%PDF-1.4\n" + bytes(300))
    refused(UnsupportedFormatError, where, where, "not a DICOM file")


@pytest.mark.filterwarnings("ignore:End of file reached:UserWarning")
@pytest.mark.parametrize("cut", ["pixel_data", "header"])
@pytest.mark.parametrize("compressed", [False, True], ids=["native", "jpeg2000"])
def test_truncated_file(tmp_path: Path, ct_series: list[pydicom.Dataset], cut: str,
                        compressed: bool) -> None:
    folder = tmp_path / "series"
    files = f.copy_sample_series(folder) if compressed else f.write_series(ct_series, folder)
    victim = files[7]  # a middle slice: losing it would otherwise look like a gap
    start = f.pixel_data_offset(victim)
    size = victim.stat().st_size
    n_bytes = start + (size - start) // 2 if cut == "pixel_data" else 600
    assert n_bytes < start or cut == "pixel_data"
    f.truncate(victim, n_bytes)
    refused(CorruptFileError, folder, victim, "truncated")
    # the single file on its own too
    refused(CorruptFileError, victim, victim, "truncated")


def test_truncated_inside_an_element_tag(tmp_path: Path, ct_series: list[pydicom.Dataset]) -> None:
    """Cut 2 bytes into an element's tag: pydicom stops silently; the loader must not."""
    files = f.write_series(ct_series[:3], tmp_path / "s")
    victim = files[1]
    ds = pydicom.dcmread(victim, defer_size=64)
    tag = pydicom.tag.Tag("ImagePositionPatient")
    # start of its tag (explicit VR, short length form: 8 bytes before the value)
    offset = int(ds.get_item(tag, keep_deferred=True).value_tell) - 8
    f.truncate(victim, offset + 2)
    refused(CorruptFileError, tmp_path / "s", victim, "truncated")


@pytest.fixture(scope="module")
def unprivileged() -> Iterator[dict[str, tuple[Path, str, str]]]:
    """Loads run as an unprivileged user (root ignores file modes), in one subprocess:
    a file chmod 000, a folder holding it, a folder chmod 000 and a readable folder."""
    dss = f.series()
    with f.world_readable_tmpdir() as d:
        a = f.write_series(dss[:4], d / "a")
        f.write_series(dss[4:6], d / "b")
        f.write_series(dss[6:10], d / "c")
        for p in d.rglob("*"):
            os.chmod(p, 0o755 if p.is_dir() else 0o644)
        os.chmod(a[2], 0o000)
        os.chmod(d / "b", 0o000)
        cases = {"file": a[2], "folder_with_file": d / "a", "folder": d / "b", "ok": d / "c"}
        results = f.load_unprivileged(*cases.values())
        yield {k: (p, *r) for (k, p), r in zip(cases.items(), results, strict=True)}


@pytest.mark.parametrize(
    ("case", "named"), [("file", "file"), ("folder_with_file", "file"), ("folder", "folder")]
)
def test_unreadable_permissions(unprivileged: dict[str, tuple[Path, str, str]], case: str,
                                named: str) -> None:
    _, name, message = unprivileged[case]
    assert name == InputNotReadableError.__name__, (name, message)
    path = unprivileged[named][0]
    assert message.startswith(f"{path}: ") and "permission denied" in message, message


def test_unreadable_check_is_not_vacuous(unprivileged: dict[str, tuple[Path, str, str]]) -> None:
    """The same unprivileged process loads readable files: the refusals are about modes."""
    _, name, message = unprivileged["ok"]
    assert name == "LOADED", message


# ------------------------------------------------------------------------------------------
# not CT / not analysable
# ------------------------------------------------------------------------------------------
def test_mr_series_is_not_ct(tmp_path: Path, ct_series: list[pydicom.Dataset]) -> None:
    where = tmp_path / "mr"
    f.write_series(f.as_mr(ct_series[:5]), where)
    refused(NotCTError, where, where, "no CT series", "MR")


def test_requested_series_is_mr(tmp_path: Path, ct_series: list[pydicom.Dataset]) -> None:
    where = tmp_path / "mixed"
    f.write_series(ct_series[:6], where / "ct")
    mr = f.as_mr(ct_series[6:9])
    f.write_series(mr, where / "mr")
    refused(NotCTError, where, where, "requested series", "modality MR",
            series_uid=str(mr[0].SeriesInstanceUID))


def test_rgb_ct_image(tmp_path: Path, ct_series: list[pydicom.Dataset]) -> None:
    where = tmp_path / "rgb"
    f.write(f.as_rgb(ct_series[3]), where / "rgb.dcm")
    refused(UnsupportedImageError, where, where, "colour image (RGB, 3 samples per pixel)")


def test_secondary_capture(tmp_path: Path, ct_series: list[pydicom.Dataset]) -> None:
    where = tmp_path / "sc"
    f.write(f.as_rgb(ct_series[3], sop_class=f.SECONDARY_CAPTURE), where / "screenshot.dcm")
    refused(UnsupportedImageError, where / "screenshot.dcm", where / "screenshot.dcm",
            "secondary capture")


def test_localizer_only(tmp_path: Path, ct_series: list[pydicom.Dataset]) -> None:
    where = tmp_path / "scout"
    f.write_series(f.as_localizer(ct_series[:2]), where)
    refused(UnsupportedImageError, where, where, "localizer (scout)")


def test_missing_pixel_data(tmp_path: Path, ct_series: list[pydicom.Dataset]) -> None:
    del ct_series[4].PixelData
    files = f.write_series(ct_series, tmp_path / "s")
    refused(MissingPixelDataError, tmp_path / "s", files[4], "no pixel data")


def test_series_uid_not_present(tmp_path: Path) -> None:
    where = tmp_path / "s"
    f.copy_sample_series(where)
    refused(SeriesNotFoundError, where, where, "series 1.2.3.4.5 not found among 1 series",
            series_uid="1.2.3.4.5")


# ------------------------------------------------------------------------------------------
# inconsistent series
# ------------------------------------------------------------------------------------------
def test_one_slice_of_different_size(tmp_path: Path, ct_series: list[pydicom.Dataset]) -> None:
    f.set_series_uid(ct_series)
    odd = ct_series[9]
    f.set_pixels(odd, f.pixels(odd)[:256, :384])
    files = f.write_series(ct_series, tmp_path / "s")
    refused(InconsistentSeriesError, tmp_path / "s", files[9], "size (rows, cols) (256, 384)",
            "mixed images")


def test_one_slice_of_different_size_without_series_uid(
    tmp_path: Path, ct_series: list[pydicom.Dataset]
) -> None:
    """Anonymised files (blank SeriesInstanceUID, as the sample): the odd image must still be
    reported, not split off as another 'series' and silently ignored."""
    for ds in ct_series:
        ds.SeriesInstanceUID = ""
    for idx in (0, 9):  # at an end of the stack and in the middle
        series = [copy.deepcopy(ds) for ds in ct_series]
        odd = series[idx]
        f.set_pixels(odd, f.pixels(odd)[:256, :384])
        files = f.write_series(series, tmp_path / f"s{idx}")
        refused(InconsistentSeriesError, tmp_path / f"s{idx}", files[idx], "size (rows, cols)")


def test_mixed_orientation(tmp_path: Path, ct_series: list[pydicom.Dataset]) -> None:
    f.set_series_uid(ct_series)
    c, s = np.cos(np.radians(10)), np.sin(np.radians(10))
    ct_series[12].ImageOrientationPatient = [c, s, 0, -s, c, 0]  # rotated 10 deg about z
    files = f.write_series(ct_series, tmp_path / "s")
    refused(InconsistentSeriesError, tmp_path / "s", files[12], "ImageOrientationPatient",
            "differs from the rest of the series")


def test_mixed_pixel_spacing(tmp_path: Path, ct_series: list[pydicom.Dataset]) -> None:
    f.set_series_uid(ct_series)
    ct_series[3].PixelSpacing = [0.8, 0.8]
    files = f.write_series(ct_series, tmp_path / "s")
    refused(InconsistentSeriesError, tmp_path / "s", files[3], "PixelSpacing")


def test_missing_image_position(tmp_path: Path, ct_series: list[pydicom.Dataset]) -> None:
    del ct_series[8].ImagePositionPatient
    files = f.write_series(ct_series, tmp_path / "s")
    refused(InconsistentSeriesError, tmp_path / "s", files[8], "ImagePositionPatient missing")


def test_duplicate_position_with_different_pixels(tmp_path: Path,
                                                  ct_series: list[pydicom.Dataset]) -> None:
    files = f.write_series(ct_series, tmp_path / "s")
    other = f.new_instance(ct_series[5])
    f.set_pixels(other, f.pixels(other) + 7)  # another reconstruction at the same place
    extra = f.write(other, tmp_path / "s" / "zz_recon2.dcm")
    err = refused(DuplicateSliceError, tmp_path / "s", extra, "two different images at the "
                  "same position", files[5].name)
    assert "-776.50 mm" in str(err) or "776.50" in str(err)


def test_exact_duplicate_files_are_dropped(tmp_path: Path, reference_hu: np.ndarray) -> None:
    folder = tmp_path / "s"
    files = f.copy_sample_series(folder)
    for p in files[3:5]:
        shutil.copy2(p, folder / ("copy_of_" + p.name))
    vol = load(folder)
    assert vol.size_voxels == (512, 512, 20)
    assert np.array_equal(vol.voxels, reference_hu)
    assert any("dropped 2 duplicate image(s)" in w for w in vol.warnings), vol.warnings
    assert len(vol.source.files) == 20


def test_reexported_duplicate_with_same_pixels_is_dropped(
    tmp_path: Path, ct_series: list[pydicom.Dataset], reference_hu: np.ndarray
) -> None:
    f.write_series(ct_series, tmp_path / "s")
    f.write(f.new_instance(ct_series[11]), tmp_path / "s" / "again.dcm")
    vol = load(tmp_path / "s")
    assert np.array_equal(vol.voxels, reference_hu)
    assert any("dropped 1 duplicate" in w for w in vol.warnings), vol.warnings


def test_missing_slice_gap(tmp_path: Path, ct_series: list[pydicom.Dataset]) -> None:
    files = f.write_series(ct_series, tmp_path / "s")
    files[10].unlink()  # z = -786.5; the gap opens above z = -788.5 (files[11])
    err = refused(SliceSpacingError, tmp_path / "s", files[11], "missing slice(s)",
                  "gap of 4.00 mm", "about 1 slice(s) missing", "--resample-irregular")
    assert err.path != files[9]


def test_missing_slice_resampled(tmp_path: Path, ct_series: list[pydicom.Dataset],
                                 reference_hu: np.ndarray) -> None:
    files = f.write_series(ct_series, tmp_path / "s")
    files[10].unlink()
    vol = load(tmp_path / "s", resample_irregular=True)
    assert any("missing slice" in w and "resampled" in w for w in vol.warnings), vol.warnings
    assert vol.size_voxels == (512, 512, 20)
    assert np.allclose(vol.spacing_mm, [0.9765625, 0.9765625, 2.0])
    assert np.allclose(np.diff(vol.z_mm()), 2.0)
    assert np.allclose(vol.z_mm()[[0, -1]], [-804.5, -766.5])
    hu = vol.hu()
    k = 9  # canonical k of the removed file (file 10 of 0..19, superior first)
    keep = [i for i in range(20) if i != k]
    assert np.array_equal(hu[keep], reference_hu[keep].astype(np.float32))
    expected = (reference_hu[k - 1].astype(np.float32) + reference_hu[k + 1]) / 2
    assert np.allclose(hu[k], expected, atol=1e-3)
    assert not np.allclose(hu[k], reference_hu[k], atol=5)  # it was really interpolated


def test_non_uniform_spacing(tmp_path: Path, ct_series: list[pydicom.Dataset]) -> None:
    x, y, z = (float(v) for v in ct_series[6].ImagePositionPatient)
    ct_series[6].ImagePositionPatient = [x, y, z + 0.6]  # steps 1.4 / 2.6 mm around it
    files = f.write_series(ct_series, tmp_path / "s")
    refused(SliceSpacingError, tmp_path / "s", files[7], "non-uniform slice spacing",
            "step 2.600 mm", "median 2.000 mm")


def test_non_uniform_spacing_resampled(tmp_path: Path, ct_series: list[pydicom.Dataset]) -> None:
    x, y, z = (float(v) for v in ct_series[6].ImagePositionPatient)
    ct_series[6].ImagePositionPatient = [x, y, z + 0.6]
    f.write_series(ct_series, tmp_path / "s")
    vol = load(tmp_path / "s", resample_irregular=True)
    assert vol.size_voxels == (512, 512, 20)
    assert np.allclose(np.diff(vol.z_mm()), 2.0)
    assert any("non-uniform" in w for w in vol.warnings), vol.warnings


# ------------------------------------------------------------------------------------------
# NIfTI-path oddities
# ------------------------------------------------------------------------------------------
def test_non_nifti_file_with_nifti_suffix(tmp_path: Path) -> None:
    where = tmp_path / "ct.nii.gz"
    where.write_bytes(b"this is not gzip, nor NIfTI\n" * 20)
    refused(CorruptFileError, where, where, "cannot read nifti image")


def test_dicom_file_with_nifti_suffix(tmp_path: Path) -> None:
    where = tmp_path / "ct.nii.gz"
    shutil.copy2(f.sample_files()[0], where)
    refused(CorruptFileError, where, where, "cannot read nifti image")


@pytest.mark.parametrize(("name", "keep"), [
    ("ct.nii.gz", 0.5), ("ct.nii.gz", 2000), ("ct.nii", 0.5), ("ct.nii", -100),
    ("ct.nrrd", 0.5), ("ct.mha", 0.5),
])
def test_truncated_image_file_is_refused(tmp_path: Path, name: str, keep: float) -> None:
    """ITK's NIfTI reader zero-fills a truncated file; rcsa must refuse it (half the file, the
    first 2000 bytes, the last 100 bytes missing)."""
    import SimpleITK as sitk

    sample = Path(__file__).resolve().parents[1] / "sample_data/ct_abdomen_pelvis/ct.nii.gz"
    full = tmp_path / f"full_{name}"
    sitk.WriteImage(sitk.ReadImage(str(sample)), str(full), useCompression=name.endswith("gz"))
    data = full.read_bytes()
    cut = int(len(data) * keep) if 0 < keep < 1 else int(keep)
    where = tmp_path / name
    where.write_bytes(data[:cut])
    refused(CorruptFileError, where, where, "truncated" if ".nii" in name else "cannot read")
    with pytest.raises(CorruptFileError):
        load_labels(where)
    assert load(full).size_voxels == (122, 101, 112)  # the intact file still loads


def test_label_volume_passed_as_ct_is_refused() -> None:
    """A segmentation (integer values 0..117) is not a CT in HU: refused with the hint."""
    sample = Path(__file__).resolve().parents[1] / "sample_data" / "ct_abdomen_pelvis"
    where = sample / "labels_ts_v2.nii.gz"
    refused(UnsupportedFormatError, where, where, "label or mask volume")
    assert load_labels(where).voxels.max() == 117  # the same file is fine as labels


def test_folder_passed_as_nifti_path(tmp_path: Path) -> None:
    where = tmp_path / "labels.nii.gz"
    where.mkdir()
    (where / "readme.txt").write_text("x")
    with pytest.raises(UnsupportedFormatError) as info:
        load_labels(where)
    assert str(where) in str(info.value) and "is a folder" in str(info.value)
    refused(UnsupportedFormatError, where, where, "is a folder")


# ------------------------------------------------------------------------------------------
# positive cases
# ------------------------------------------------------------------------------------------
def test_ct_with_extra_mr_series_and_localizer(tmp_path: Path, ct_series: list[pydicom.Dataset],
                                               reference_hu: np.ndarray) -> None:
    root = tmp_path / "study"
    f.copy_sample_series(root / "ct")
    f.write_series(f.as_mr(f.series()[:8]), root / "mr", prefix="mr")
    f.write_series(f.as_localizer(f.series()[:2]), root / "scout", prefix="topo")
    (root / "DICOMDIR").write_bytes(b"not a real dicomdir")
    (root / "notes.txt").write_text("scanned on ...")
    (root / ".DS_Store").write_bytes(bytes(64))
    vol = load(root)
    assert any("skipped 1 non-DICOM file(s)" in w for w in vol.warnings), vol.warnings
    assert vol.modality == "CT"
    assert vol.size_voxels == (512, 512, 20)
    assert np.array_equal(vol.voxels, reference_hu)
    assert vol.source.n_series_found == 3
    chosen = [s for s in vol.source.series if s.chosen]
    assert len(chosen) == 1 and chosen[0].n_files == 20 and chosen[0].modality == "CT"
    reasons = " | ".join(s.reason for s in vol.source.series)
    assert "modality MR, not CT" in reasons and "localizer" in reasons
    assert any("3 series found" in w and "ignored 2 other series" in w for w in vol.warnings)
    assert all(Path(p).parent == root / "ct" for p in vol.source.files)


@pytest.mark.parametrize("name", ["0000_dose_report.dcm", "zzzz_dose_report.dcm"])
def test_screenshot_inside_the_ct_series_is_ignored(
    tmp_path: Path, ct_series: list[pydicom.Dataset], reference_hu: np.ndarray, name: str
) -> None:
    """A dose screenshot filed under the CT's SeriesInstanceUID: ignored with a warning,
    whether its file name sorts before or after the CT images."""
    uid = f.set_series_uid(ct_series)
    sc = f.as_rgb(f.series()[0], sop_class=f.SECONDARY_CAPTURE)
    sc.SeriesInstanceUID = uid
    del sc.ImagePositionPatient
    f.write_series(ct_series, tmp_path / "s")
    f.write(sc, tmp_path / "s" / name)
    vol = load(tmp_path / "s")
    assert np.array_equal(vol.voxels, reference_hu)
    assert vol.source.n_series_found == 1
    assert any("ignored 1 non-CT-image object(s)" in w and name in w for w in vol.warnings)


@pytest.mark.parametrize("name", ["0000_topogram.dcm", "zzzz_topogram.dcm"])
def test_localizer_inside_the_ct_series_is_ignored(
    tmp_path: Path, ct_series: list[pydicom.Dataset], reference_hu: np.ndarray, name: str
) -> None:
    uid = f.set_series_uid(ct_series)
    scout = f.as_localizer(f.series()[:1])[0]
    scout.SeriesInstanceUID = uid
    f.write_series(ct_series, tmp_path / "s")
    f.write(scout, tmp_path / "s" / name)
    vol = load(tmp_path / "s")
    assert np.array_equal(vol.voxels, reference_hu)
    assert any("ignored 1 localizer image(s) inside the series" in w for w in vol.warnings)


def test_rescale_is_applied_per_slice(tmp_path: Path, ct_series: list[pydicom.Dataset],
                                     reference_hu: np.ndarray) -> None:
    """Slices stored with different RescaleIntercept / RescaleSlope give the same HU."""
    a, b = ct_series[4], ct_series[15]
    f.set_pixels(a, f.pixels(a) + 100)
    a.RescaleIntercept = -1124
    f.set_pixels(b, f.pixels(b) // 2)  # loses the odd values: compare where they were even
    b.RescaleSlope = 2
    b.RescaleIntercept = -1024
    f.write_series(ct_series, tmp_path / "s")
    hu = load(tmp_path / "s").hu()
    ref = reference_hu.astype(np.float32)
    ka, kb = 19 - 4, 19 - 15  # canonical k of file n is 19 - n
    assert np.array_equal(hu[ka], ref[ka])
    even = (reference_hu[kb].astype(np.int32) % 2) == 0
    assert np.array_equal(hu[kb][even], ref[kb][even])
    assert np.allclose(hu[kb][~even], ref[kb][~even] - 1)


def test_mr_series_with_more_slices_is_not_chosen(tmp_path: Path,
                                                  ct_series: list[pydicom.Dataset]) -> None:
    root = tmp_path / "study"
    f.write_series(ct_series[:5], root / "ct")
    f.write_series(f.as_mr(f.series()), root / "mr", prefix="mr")  # 20 MR slices > 5 CT
    vol = load(root)
    assert vol.modality == "CT" and vol.size_voxels == (512, 512, 5)


def test_single_slice_is_depth_one_volume(reference_hu: np.ndarray) -> None:
    one = f.sample_files()[0]  # the most superior slice, z = -766.5
    vol = load(one)
    assert vol.size_voxels == (512, 512, 1)
    assert vol.voxels.shape == (1, 512, 512)
    assert np.allclose(vol.spacing_mm, [0.9765625, 0.9765625, 3.0])  # SliceThickness
    assert np.allclose(vol.direction, np.eye(3))
    assert np.isclose(vol.z_mm()[0], -766.5)
    assert np.array_equal(vol.voxels[0], reference_hu[-1])
    assert vol.axial_slice(0).pixels.shape == (512, 512)


@pytest.mark.parametrize("meta", [True, False], ids=["meta_no_preamble", "no_meta_implicit"])
def test_raw_dicom_without_preamble(tmp_path: Path, ct_series: list[pydicom.Dataset],
                                    reference_hu: np.ndarray, meta: bool) -> None:
    """Legacy files without the 128-byte preamble (load() accepts them by content)."""
    ds = ct_series[0]
    ds.SOPClassUID = f.CT_IMAGE_STORAGE  # blank in the anonymised sample
    ds.preamble = None
    if not meta:
        del ds.file_meta
    where = tmp_path / "raw" / "IM0001"
    where.parent.mkdir()
    pydicom.dcmwrite(where, ds, implicit_vr=not meta, little_endian=True,
                     enforce_file_format=False)
    assert where.read_bytes()[:2] == (b"\x02\x00" if meta else b"\x08\x00")
    for source in (where, where.parent):
        vol = load(source)
        assert vol.size_voxels == (512, 512, 1)
        assert np.array_equal(vol.voxels[0], reference_hu[-1])


def test_file_list_input(reference_hu: np.ndarray) -> None:
    files = f.sample_files()
    vol = load([str(p) for p in files[::-1]])
    assert np.array_equal(vol.voxels, reference_hu)


def test_alberta_jpeg_lossless_equals_uncompressed() -> None:
    a = load(f.ALBERTA_UNCOMPRESSED)
    b = load(f.ALBERTA_JPEG_LOSSLESS)
    assert a.size_voxels == b.size_voxels == (512, 512, 1)
    assert a.voxels.dtype == b.voxels.dtype
    assert np.array_equal(a.voxels, b.voxels)
    assert a.geometry.same_grid(b.geometry)
    ts = {a.source.acquisition.get("transfer_syntax"), b.source.acquisition.get("transfer_syntax")}
    assert len(ts) == 2  # really two encodings of one image
    hu = a.hu()
    assert hu.min() < -900 and 0 < float(np.median(hu[hu > -200])) < 200


def test_geometry_decimal_strings_parsed_like_pydicom(tmp_path: Path) -> None:
    """Orientation / position are parsed from the raw decimal strings (a fast path that skips
    pydicom's conversion): exponent, sign and padded forms give pydicom's values, and the
    wrong number of values is 'absent' as before."""
    from rcsa.io.dicom import _Header, _read_header

    ds = f.series()[0]
    ds.ImagePositionPatient = ["-1.5E2", "-12.25", "+301"]
    ds.ImageOrientationPatient = ["1", "0.0", "0", "0", "1.000000", "-0"]
    path = f.write(ds, tmp_path / "a.dcm")
    h = _Header(path, _read_header(path))
    assert isinstance(h.ds.get_item(0x00200032).value, bytes)  # still the raw string
    assert h.position is not None and h.position.tolist() == [-150.0, -12.25, 301.0]
    assert h.orientation is not None
    want = [float(v) for v in pydicom.dcmread(path).ImageOrientationPatient]
    assert h.orientation.tolist() == want
    ds.ImagePositionPatient = ["1", "2"]
    path = f.write(ds, tmp_path / "b.dcm")
    assert _Header(path, _read_header(path)).position is None
