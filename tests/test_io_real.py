"""Loader correctness on real CT with reference labels (issue 3, 'Must show')."""

from __future__ import annotations

import hashlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from rcsa.io import CTVolume, LabelVolume, load, load_labels, read_tag
from rcsa.io.volume import Geometry

LPS_FROM_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def _assert_muscle_and_bone(ct: CTVolume, labels: LabelVolume, left: int, right: int,
                            vertebrae: list[int]) -> None:
    hu = ct.hu()
    for lab in (left, right):
        m = labels.voxels == lab
        assert m.sum() > 1000, f"label {lab} nearly empty"
        mean = float(hu[m].mean())
        assert -30 < mean < 100, f"label {lab} ({labels.names.get(lab)}) mean HU {mean:.1f}"
    for lab in vertebrae:
        m = labels.voxels == lab
        assert m.sum() > 500
        assert float(hu[m].mean()) > 150, f"vertebra {lab} mean HU {hu[m].mean():.1f}"
    # The patient's left is +x in LPS: in canonical order, larger i (column index).
    i_left = np.nonzero(labels.voxels == left)[2].mean()
    i_right = np.nonzero(labels.voxels == right)[2].mean()
    assert i_left > i_right
    x_left = labels.geometry.index_to_world([i_left, 0, 0])[0]
    x_right = labels.geometry.index_to_world([i_right, 0, 0])[0]
    assert x_left > x_right  # world LPS x grows to the patient's left


# ---------------------------------------------------------------------------- subject B (DICOM)
@pytest.fixture(scope="module")
def tl_ct(thoracolumbar: Path) -> CTVolume:
    return load(thoracolumbar / "dicom")


def test_thoracolumbar_dicom_size_and_spacing(tl_ct: CTVolume) -> None:
    assert tl_ct.size_voxels == (512, 512, 20)
    np.testing.assert_allclose(tl_ct.spacing_mm, [0.9765625, 0.9765625, 2.0], atol=1e-6)
    assert tl_ct.modality == "CT"
    assert tl_ct.source.format == "dicom"
    assert tl_ct.source.acquisition["transfer_syntax"].startswith("JPEG 2000")
    np.testing.assert_allclose(tl_ct.direction, np.eye(3), atol=1e-9)


def test_thoracolumbar_slice_order_follows_positions(tl_ct: CTVolume, thoracolumbar: Path) -> None:
    # k grows to the patient's superior; slice k holds the file whose IPP z equals z_mm(k).
    zs = tl_ct.z_mm()
    assert np.all(np.diff(zs) > 0)
    by_z = {}
    for f in (thoracolumbar / "dicom").iterdir():
        ds = pydicom.dcmread(f)
        by_z[round(float(ds.ImagePositionPatient[2]), 3)] = ds
    for k in (0, 7, 19):
        ds = by_z[round(float(zs[k]), 3)]
        expected = ds.pixel_array.astype(np.int32) * int(ds.RescaleSlope) + int(ds.RescaleIntercept)
        np.testing.assert_array_equal(tl_ct.voxels[k], expected)


def test_thoracolumbar_labels_align_in_world_and_voxels(
    tl_ct: CTVolume, thoracolumbar: Path
) -> None:
    path = thoracolumbar / "labels_ts_v2.nii.gz"
    labels = load_labels(path, like=tl_ct)
    # world agreement of the grids
    assert tl_ct.geometry.max_corner_distance_mm(labels.geometry) < 0.01
    # the file is stored LAS: the raw array is row-flipped relative to the canonical one
    img = nib.load(str(path))
    codes = nib.aff2axcodes(img.affine)
    assert codes == ("L", "A", "S")
    raw = np.asarray(img.dataobj).astype(np.uint16)  # (i, j, k) in file order
    np.testing.assert_array_equal(np.transpose(raw[:, ::-1, :], (2, 1, 0)), labels.voxels)
    # naive comparison (ignoring orientation) puts the muscle on air/fat
    naive = np.transpose(raw, (2, 1, 0))
    assert tl_ct.hu()[naive == 86].mean() < -200
    _assert_muscle_and_bone(tl_ct, labels, 86, 87, [32, 33])
    assert labels.names[86] == "autochthon_left"


def test_nibabel_affine_matches_loaded_geometry(abdomen: Path) -> None:
    """The SimpleITK path's geometry equals nibabel's affine, converted RAS -> LPS."""
    path = abdomen / "ct.nii.gz"
    ct = load(path)
    img = nib.load(str(path))
    affine_lps = LPS_FROM_RAS @ img.affine
    ornt = nib.orientations.io_orientation(affine_lps)
    expected = affine_lps @ nib.orientations.inv_ornt_aff(ornt, img.shape)
    np.testing.assert_allclose(ct.geometry.affine_lps, expected, atol=1e-4)
    data = nib.orientations.apply_orientation(np.asarray(img.dataobj), ornt)
    np.testing.assert_array_equal(ct.voxels, np.transpose(data, (2, 1, 0)))


# ---------------------------------------------------------------------------- subject A (NIfTI)
@pytest.fixture(scope="module")
def ap_ct(abdomen: Path) -> CTVolume:
    return load(abdomen / "ct.nii.gz")


def test_abdomen_geometry(ap_ct: CTVolume) -> None:
    assert ap_ct.size_voxels == (122, 101, 112)
    np.testing.assert_allclose(ap_ct.spacing_mm, 3.0)
    assert ap_ct.source.format == "nifti"
    assert ap_ct.voxels.dtype == np.int16  # int32 HU on disk, fits int16 exactly
    # README: world z_mm = 94.30 + 3 k, the same in RAS and LPS
    np.testing.assert_allclose(ap_ct.z_mm()[[0, 72]], [94.30, 310.30], atol=0.01)


@pytest.mark.parametrize(
    ("version", "left", "right", "vertebrae"),
    [("v1", 100, 101, [19, 20, 21]), ("v2", 86, 87, [28, 29, 30])],
)
def test_abdomen_labels_both_versions(ap_ct: CTVolume, abdomen: Path, version: str, left: int,
                                      right: int, vertebrae: list[int]) -> None:
    path = abdomen / f"labels_ts_{version}.nii.gz"
    labels = load_labels(path, like=ap_ct)
    assert labels.names[left] == "autochthon_left"
    assert labels.names[right] == "autochthon_right"
    _assert_muscle_and_bone(ap_ct, labels, left, right, vertebrae)


def test_abdomen_reference_areas(ap_ct: CTVolume, abdomen: Path) -> None:
    """README figures: L3 at k 72 has psoas 648/702 mm^2 and autochthon 2619/2349 mm^2 L/R."""
    labels = load_labels(abdomen / "labels_ts_v2.nii.gz", like=ap_ct)
    sl = labels.axial_slice(72)
    px = sl.pixel_area_mm2
    assert sl.z_mm == pytest.approx(310.30, abs=0.01)
    for lab, ref in ((88, 648), (89, 702), (86, 2619), (87, 2349)):
        assert (sl.pixels == lab).sum() * px == pytest.approx(ref, abs=px)


def test_labels_on_another_grid_are_refused(ap_ct: CTVolume, thoracolumbar: Path) -> None:
    from rcsa.errors import GeometryError

    with pytest.raises(GeometryError, match=r"labels_ts_v2\.nii\.gz"):
        load_labels(thoracolumbar / "labels_ts_v2.nii.gz", like=ap_ct)


# ---------------------------------------------------------------------------- subject C (Alberta)
def test_alberta_jpeg_lossless_equals_uncompressed(alberta: Path) -> None:
    a = load(alberta / "slice_jpeg_lossless.dcm")
    b = load(alberta / "slice_uncompressed.dcm")
    assert a.size_voxels == (512, 512, 1)
    assert a.source.acquisition["transfer_syntax"].startswith("JPEG Lossless")
    np.testing.assert_array_equal(a.voxels, b.voxels)
    assert a.geometry.same_grid(b.geometry)
    assert a.hu().min() == -1024.0


def test_alberta_tag_muscle_area(alberta: Path) -> None:
    ct = load(alberta / "slice_uncompressed.dcm")
    tag = read_tag(alberta / "tissue_labels.tag", reference=ct)
    muscle = tag.voxels == 1
    assert int(muscle.sum()) == 30187
    area = muscle.sum() * ct.spacing_mm[0] * ct.spacing_mm[1]
    assert area == pytest.approx(13786, abs=1)
    assert tag.names[1] == "skeletal_muscle"
    # muscle pixels carry muscle HU; subcutaneous fat (7) fat HU
    hu = ct.hu()
    assert -30 < hu[muscle].mean() < 100
    assert -190 < hu[tag.voxels == 7].mean() < -30


def test_alberta_tag_without_reference_uses_header_geometry(alberta: Path) -> None:
    ct = load(alberta / "slice_uncompressed.dcm")
    tag = read_tag(alberta / "tissue_labels.tag")
    assert tag.geometry.max_corner_distance_mm(ct.geometry) < 0.02  # header has 4 decimals


# ---------------------------------------------------------------------------- canonical frame
@pytest.mark.parametrize("flip", [(0,), (1,), (2,), (0, 1), (0, 1, 2)])
def test_canonicalize_undoes_flips(ap_ct: CTVolume, flip: tuple[int, ...]) -> None:
    """Storing the same scan flipped (with the matching affine) loads identically."""
    from rcsa.io.orientation import canonicalize

    vox = ap_ct.voxels
    aff = ap_ct.geometry.affine_lps.copy()
    size = np.array(ap_ct.size_voxels)
    for axis_ijk in flip:
        axis_kji = 2 - axis_ijk
        vox = np.flip(vox, axis=axis_kji)
        aff[:3, 3] = aff[:3, 3] + aff[:3, axis_ijk] * (size[axis_ijk] - 1)
        aff[:3, axis_ijk] *= -1
    m = aff[:3, :3]
    sp = np.linalg.norm(m, axis=0)
    geom = Geometry(ap_ct.size_voxels, sp, aff[:3, 3], m / sp)
    out, g2 = canonicalize(vox, geom)
    np.testing.assert_array_equal(out, ap_ct.voxels)
    assert g2.same_grid(ap_ct.geometry, 1e-6)


def test_sample_data_is_unchanged(sample: Path) -> None:
    lines = (sample / "SHA256SUMS").read_text().splitlines()
    assert len(lines) >= 30
    for line in lines:
        digest, name = line.split(maxsplit=1)
        assert hashlib.sha256((sample / name).read_bytes()).hexdigest() == digest, name


@pytest.mark.parametrize("suffix", [".nrrd", ".mha", ".mhd", ".nii"])
def test_other_formats_load_identically(ap_ct: CTVolume, abdomen: Path, tmp_path: Path,
                                        suffix: str) -> None:
    import SimpleITK as sitk

    img = sitk.ReadImage(str(abdomen / "ct.nii.gz"))
    out = tmp_path / f"ct{suffix}"
    sitk.WriteImage(img, str(out))
    vol = load(out)
    np.testing.assert_array_equal(vol.voxels, ap_ct.voxels)
    assert vol.geometry.same_grid(ap_ct.geometry, 1e-4)


def test_permuted_axes_nifti_loads_identically(ap_ct: CTVolume, abdomen: Path,
                                               tmp_path: Path) -> None:
    """A file storing the scan with axes permuted (k, i, j) and a matching affine."""
    img = nib.load(str(abdomen / "ct.nii.gz"))
    data = np.asarray(img.dataobj)
    perm = (2, 0, 1)
    new_aff = img.affine.copy()
    new_aff[:, :3] = img.affine[:, list(perm)]
    out = tmp_path / "permuted.nii.gz"
    nib.save(nib.Nifti1Image(np.transpose(data, perm), new_aff), str(out))
    vol = load(out)
    np.testing.assert_array_equal(vol.voxels, ap_ct.voxels)
    assert vol.geometry.same_grid(ap_ct.geometry, 1e-4)


def test_parallel_decoding_equals_in_process(thoracolumbar: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Compressed series are decoded by worker processes, while the headers are still being
    read (prefetch) or after them; same HU as in-process decoding either way."""
    import rcsa.io.dicom.decode as dcm

    monkeypatch.setenv("RCSA_DECODE_PROCESSES", "0")
    serial = load(thoracolumbar / "dicom")
    monkeypatch.setenv("RCSA_DECODE_PROCESSES", "2")
    monkeypatch.setattr(dcm, "PARALLEL_DECODE_MIN_IMAGES", 2)
    calls: list[tuple[str, int]] = []
    real_after, real_prefetch = dcm._decode_parallel, dcm._Prefetch.results

    def after(hs: list) -> list | None:  # type: ignore[type-arg]
        res = real_after(hs)
        calls.append(("after", 0 if res is None else sum(r is not None for r in res)))
        return res

    def prefetched(self: dcm._Prefetch, hs: list) -> list | None:  # type: ignore[type-arg]
        res = real_prefetch(self, hs)
        calls.append(("prefetch", 0 if res is None else sum(r is not None for r in res)))
        return res

    monkeypatch.setattr(dcm, "_decode_parallel", after)
    monkeypatch.setattr(dcm._Prefetch, "results", prefetched)
    parallel = load(thoracolumbar / "dicom")
    assert calls == [("prefetch", 20)]  # every slice came from a worker, during header reading
    np.testing.assert_array_equal(parallel.voxels, serial.voxels)

    calls.clear()
    monkeypatch.setattr(dcm._Prefetch, "__call__", lambda self, h: None)  # no prefetch
    parallel = load(thoracolumbar / "dicom")
    assert calls == [("prefetch", 0), ("after", 20)]
    np.testing.assert_array_equal(parallel.voxels, serial.voxels)


def test_parallel_decoding_failure_names_the_file(thoracolumbar: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    import rcsa.io.dicom.decode as dcm
    from rcsa.errors import CorruptFileError

    folder = tmp_path / "s"
    shutil.copytree(thoracolumbar / "dicom", folder)
    victim = sorted(folder.iterdir())[7]
    # break the JPEG 2000 code stream's SIZ marker, keeping the file length (the header check
    # passes; only decoding fails)
    data = bytearray(victim.read_bytes())
    start = data.index(b"\xff\x4f\xff\x51")
    data[start + 2 : start + 42] = b"\xff" * 40
    victim.write_bytes(bytes(data))
    monkeypatch.setenv("RCSA_DECODE_PROCESSES", "2")
    monkeypatch.setattr(dcm, "PARALLEL_DECODE_MIN_IMAGES", 2)
    with pytest.raises(CorruptFileError) as info:
        load(folder)
    assert info.value.path == victim
    assert "cannot be decoded" in str(info.value)


@pytest.mark.parametrize("order", ["interleaved", "grouped"])
def test_prefetch_stops_at_a_second_series(thoracolumbar: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch, order: str) -> None:
    """A folder holding two series: speculative decoding stops at the first image of the
    second series (at most one unchosen series decoded for nothing); what it did not decode
    goes to the worker pool afterwards; the HU equal in-process decoding."""
    import pydicom
    from pydicom.uid import generate_uid

    import rcsa.io.dicom.decode as dcm

    folder = tmp_path / "two"
    folder.mkdir()
    uid = generate_uid()
    for n, f in enumerate(sorted((thoracolumbar / "dicom").iterdir())):
        name_a, name_b = ((f"{n:02d}a.dcm", f"{n:02d}b.dcm") if order == "interleaved"
                          else (f"a{n:02d}.dcm", f"b{n:02d}.dcm"))
        (folder / name_a).write_bytes(f.read_bytes())
        ds = pydicom.dcmread(f)
        ds.SeriesInstanceUID = uid
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.save_as(folder / name_b)
    monkeypatch.setenv("RCSA_DECODE_PROCESSES", "0")
    serial = load(folder)
    monkeypatch.setenv("RCSA_DECODE_PROCESSES", "2")
    monkeypatch.setattr(dcm, "PARALLEL_DECODE_MIN_IMAGES", 2)
    seen: dict[str, int] = {"after": 0}
    real_after, real_prefetch = dcm._decode_parallel, dcm._Prefetch.results

    def after(hs: list) -> list | None:  # type: ignore[type-arg]
        res = real_after(hs)
        seen["after"] = 0 if res is None else sum(r is not None for r in res)
        return res

    def prefetched(self: dcm._Prefetch, hs: list) -> list | None:  # type: ignore[type-arg]
        seen["submitted"] = len(self.futures)
        seen["stopped"] = int(self.off)
        res = real_prefetch(self, hs)
        seen["prefetch"] = 0 if res is None else sum(r is not None for r in res)
        return res

    monkeypatch.setattr(dcm, "_decode_parallel", after)
    monkeypatch.setattr(dcm._Prefetch, "results", prefetched)
    parallel = load(folder)
    assert seen["stopped"] == 1
    # interleaved: the second file is already another series; grouped: one whole series
    assert seen["submitted"] == (0 if order == "interleaved" else 20)
    assert seen["prefetch"] + seen["after"] == 20  # every slice of the chosen series decoded
    assert len(parallel.source.files) == 20
    np.testing.assert_array_equal(parallel.voxels, serial.voxels)
