"""Gantry tilt: a sheared copy of the real thoracolumbar series.

Slice k (counted from the most inferior) is moved along +y (or -y) by ``k * 2 mm * tan(15 deg)``
with its pixels unchanged, so the anatomy is sheared in the patient frame exactly as in a tilted
acquisition. The corrected volume must sit on an axis-aligned grid and hold, at each voxel
centre, the value the sheared source has at that world point (computed here from the source
geometry, independently of the loader).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

import _dicom_factory as f
from rcsa.errors import GantryTiltError, SliceSpacingError
from rcsa.io import CTVolume, load

TILT_DEG = 15.0
DX = 0.9765625


class Source:
    """The sheared series as written: per slice origin (LPS) and HU image [row j, column i]."""

    def __init__(self, tilt_deg: float, folder: Path) -> None:
        dss = f.series()
        f.tilt_series(dss, tilt_deg)
        self.files = f.write_series(dss, folder)
        order = np.argsort([f.z_of(ds) for ds in dss])  # inferior -> superior
        self.origins = np.array([[float(v) for v in dss[n].ImagePositionPatient] for n in order])
        self.hu = np.stack(
            [f.pixels(dss[n]).astype(np.float64) * float(dss[n].RescaleSlope)
             + float(dss[n].RescaleIntercept) for n in order]
        )
        self.inferior_file = self.files[int(order[0])]

    def value_at(self, xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """HU of the source at LPS points lying on source slice planes; (values, inside)."""
        z = self.origins[:, 2]
        k = np.searchsorted(z, xyz[:, 2])
        k = np.clip(k, 0, len(z) - 1)
        assert np.allclose(z[k], xyz[:, 2], atol=1e-4), "points must lie on slice planes"
        i = (xyz[:, 0] - self.origins[k, 0]) / DX
        j = (xyz[:, 1] - self.origins[k, 1]) / DX
        n_rows, n_cols = self.hu.shape[1:]
        inside = (i >= 0) & (i <= n_cols - 1) & (j >= 0) & (j <= n_rows - 1)
        vals = np.full(len(xyz), np.nan)
        for kk in np.unique(k):
            sel = (k == kk) & inside
            vals[sel] = ndimage.map_coordinates(self.hu[kk], [j[sel], i[sel]], order=1)
        return vals, inside


@pytest.fixture(scope="module", params=[TILT_DEG, -TILT_DEG], ids=["plus15", "minus15"])
def tilted(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    src = Source(request.param, tmp_path_factory.mktemp("tilt") / "series")
    vol = load(src.files[0].parent)
    return request.param, src, vol


def test_loads_with_tilt_warning(tilted: tuple[float, Source, CTVolume]) -> None:
    _, _, vol = tilted
    msg = [w for w in vol.warnings if "gantry tilt" in w]
    assert msg and "15.00 deg corrected" in msg[0], vol.warnings
    assert vol.modality == "CT"


def test_corrected_grid_is_axis_aligned(tilted: tuple[float, Source, CTVolume]) -> None:
    _, src, vol = tilted
    assert np.allclose(vol.direction, np.eye(3))
    assert np.allclose(vol.spacing_mm, [DX, DX, 2.0])
    # covers the sheared stack: 19 steps of 2 mm * tan(15 deg) = 10.18 mm more along y
    extra = int(np.floor(19 * 2.0 * math.tan(math.radians(TILT_DEG)) / DX))
    assert vol.size_voxels == (512, 512 + extra, 20)
    assert np.allclose(vol.z_mm(), src.origins[:, 2])
    assert np.isclose(vol.origin_mm[1], src.origins[:, 1].min())
    assert np.isclose(vol.origin_mm[0], src.origins[0, 0])


def test_corrected_hu_matches_sheared_source(tilted: tuple[float, Source, CTVolume]) -> None:
    _, src, vol = tilted
    rng = np.random.default_rng(3)
    n = 40_000
    ijk = np.column_stack([
        rng.integers(0, vol.size_voxels[0], n),
        rng.integers(0, vol.size_voxels[1], n),
        rng.integers(0, vol.size_voxels[2], n),
    ])
    xyz = vol.geometry.index_to_world(ijk)
    expected, inside = src.value_at(xyz)
    got = vol.hu()[ijk[:, 2], ijk[:, 1], ijk[:, 0]].astype(np.float64)
    assert inside.mean() > 0.9
    err = np.abs(got[inside] - expected[inside])
    assert err.mean() < 0.5, err.mean()
    assert np.percentile(err, 99) < 2.0
    # outside the sheared stack (the corners the shear uncovers) the loader fills air
    assert (~inside).sum() > 100
    assert np.all(got[~inside] == -1024)

    # the check discriminates: ignoring the shear (stacking slices unshifted) is far off
    k = np.searchsorted(src.origins[:, 2], xyz[:, 2])
    naive_j = (xyz[:, 1] - src.origins[0, 1]) / DX
    ok = inside & (naive_j >= 0) & (naive_j <= 511)
    naive = np.array([
        ndimage.map_coordinates(src.hu[kk], [[jj], [ii]], order=1)[0]
        for kk, jj, ii in zip(k[ok][:4000], naive_j[ok][:4000],
                              ((xyz[:, 0] - src.origins[0, 0]) / DX)[ok][:4000], strict=True)
    ])
    naive_err = np.abs(naive - expected[ok][:4000])
    assert naive_err.mean() > 10 * max(err.mean(), 0.5)


def test_superior_slice_is_shifted_by_the_shear(tilted: tuple[float, Source, CTVolume]) -> None:
    """The top slice of the corrected volume is the top source slice moved by 19*2*tan(15)."""
    tilt, src, vol = tilted
    shift_vox = 19 * 2.0 * math.tan(math.radians(tilt)) / DX  # +/- 10.4 rows
    top = vol.hu()[-1].astype(np.float64)
    j0 = (src.origins[-1, 1] - vol.origin_mm[1]) / DX  # first row of the source slice in vol
    assert np.isclose(j0, max(shift_vox, 0.0), atol=1e-6)
    whole = int(np.ceil(j0))
    # rows of vol at integer j map to source rows j - j0: compare a band of interior rows
    rows = np.arange(whole + 50, whole + 450)
    expected = ndimage.map_coordinates(
        src.hu[-1], np.meshgrid(rows - j0, np.arange(512), indexing="ij"), order=1
    )
    assert np.abs(top[rows] - expected).mean() < 0.5


def test_tilt_refused_when_correction_disabled(tilted: tuple[float, Source, CTVolume]) -> None:
    _, src, _ = tilted
    with pytest.raises(GantryTiltError) as info:
        load(src.files[0].parent, correct_tilt=False)
    err = info.value
    assert err.path == src.inferior_file
    assert str(src.inferior_file) in str(err)
    assert "gantry tilt of 15.00 deg" in str(err) and "correction is disabled" in str(err)


def test_untilted_series_has_no_tilt_warning() -> None:
    vol = load(f.THORACOLUMBAR, correct_tilt=False)
    assert not any("tilt" in w for w in vol.warnings)
    assert vol.size_voxels == (512, 512, 20)


def test_tilt_with_missing_slice_resampled(tmp_path: Path) -> None:
    """Gap and tilt together: both corrections compose, values still match the source."""
    src = Source(TILT_DEG, tmp_path / "series")
    removed = src.files[10]  # z = -786.5 mm
    removed.unlink()
    with pytest.raises(SliceSpacingError):
        load(tmp_path / "series")
    vol = load(tmp_path / "series", resample_irregular=True)
    assert any("gantry tilt" in w for w in vol.warnings)
    assert any("missing slice" in w for w in vol.warnings)
    assert vol.size_voxels == (512, 522, 20)
    assert np.allclose(vol.direction, np.eye(3))
    rng = np.random.default_rng(5)
    ijk = np.column_stack([rng.integers(0, s, 20_000) for s in vol.size_voxels])
    xyz = vol.geometry.index_to_world(ijk)
    on_real_slice = np.abs(xyz[:, 2] - (-786.5)) > 1e-3
    expected, inside = src.value_at(xyz[on_real_slice])
    got = vol.hu()[ijk[on_real_slice, 2], ijk[on_real_slice, 1], ijk[on_real_slice, 0]]
    assert np.abs(got[inside] - expected[inside]).mean() < 0.5
