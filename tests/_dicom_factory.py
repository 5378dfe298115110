"""Build malformed / edited DICOM inputs from the real sample data, for the loader tests.

Everything here writes into a folder the caller gives (pytest's ``tmp_path``); the files under
``sample_data/`` are only ever read. The thoracolumbar series (JPEG 2000) is decoded once per
test session and cached; the cache hands out copies, so a test may edit what it gets.
"""

from __future__ import annotations

import copy
import functools
import math
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_data"
THORACOLUMBAR = SAMPLE / "ct_thoracolumbar_dicom" / "dicom"
ALBERTA = SAMPLE / "l3_slice_alberta"
ALBERTA_UNCOMPRESSED = ALBERTA / "slice_uncompressed.dcm"
ALBERTA_JPEG_LOSSLESS = ALBERTA / "slice_jpeg_lossless.dcm"

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"

#: The real series: 20 slices, 512 x 512, 0.9765625 mm pixels, 2.0 mm apart.
N_SLICES = 20
SLICE_STEP_MM = 2.0


def sample_files() -> list[Path]:
    """The 20 files of the thoracolumbar series, sorted by name (= InstanceNumber order)."""
    return sorted(p for p in THORACOLUMBAR.iterdir() if p.is_file())


@functools.lru_cache(maxsize=1)
def _decoded() -> tuple[Dataset, ...]:
    out = []
    for f in sample_files():
        ds = pydicom.dcmread(f)
        ds.decompress()  # -> Explicit VR Little Endian, native pixel data
        out.append(ds)
    return tuple(out)


def series() -> list[Dataset]:
    """Decoded (uncompressed) copies of the real series, in file-name order.

    File order is superior -> inferior (z = -766.5 ... -804.5 mm)."""
    return [copy.deepcopy(ds) for ds in _decoded()]


def z_of(ds: Dataset) -> float:
    return float(ds.ImagePositionPatient[2])


def pixels(ds: Dataset) -> np.ndarray:
    return np.asarray(ds.pixel_array)


def set_pixels(ds: Dataset, arr: np.ndarray) -> None:
    """Replace the (uncompressed, 16-bit, unsigned) pixel data, updating Rows/Columns."""
    arr = np.ascontiguousarray(arr.astype(np.uint16))
    ds.Rows, ds.Columns = int(arr.shape[0]), int(arr.shape[1])
    ds.PixelData = arr.tobytes()


def new_instance(ds: Dataset) -> Dataset:
    """The same image as a new SOP instance (a re-export: new SOPInstanceUID)."""
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def set_series_uid(datasets: Iterable[Dataset], uid: str | None = None) -> str:
    uid = uid or generate_uid()
    for ds in datasets:
        ds.SeriesInstanceUID = uid
    return uid


def set_sop_class(ds: Dataset, sop_class: str) -> None:
    ds.SOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPClassUID = sop_class


def as_mr(datasets: Sequence[Dataset]) -> list[Dataset]:
    """Turn copies of CT images into an MR series (modality, SOP class, new UIDs)."""
    uid = generate_uid()
    for ds in datasets:
        ds.Modality = "MR"
        set_sop_class(ds, MR_IMAGE_STORAGE)
        ds.SeriesInstanceUID = uid
        ds.SeriesDescription = "t1_tse_tra"
        new_instance(ds)
    return list(datasets)


def as_localizer(datasets: Sequence[Dataset]) -> list[Dataset]:
    """Turn copies of CT images into a coronal localizer (scout / topogram) series."""
    uid = generate_uid()
    for n, ds in enumerate(datasets):
        ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER", "CT_SOM5 TOP"]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
        ds.ImagePositionPatient = [-250.0, float(n), -500.0]
        ds.SeriesInstanceUID = uid
        ds.SeriesDescription = "Topogram 0.6 T20f"
        new_instance(ds)
    return list(datasets)


def as_rgb(ds: Dataset, sop_class: str = CT_IMAGE_STORAGE) -> Dataset:
    """An 8-bit RGB rendering of the slice (what a screenshot / secondary capture holds)."""
    hu = pixels(ds).astype(np.float32) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    grey = np.clip((hu + 160) / 400 * 255, 0, 255).astype(np.uint8)
    rgb = np.ascontiguousarray(np.stack([grey, grey, grey], axis=-1))
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "RGB"
    ds.PlanarConfiguration = 0
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = rgb.tobytes()
    set_sop_class(ds, sop_class)
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesDescription = "screen capture"
    for kw in ("RescaleSlope", "RescaleIntercept", "WindowCenter", "WindowWidth"):
        if kw in ds:
            delattr(ds, kw)
    return new_instance(ds)


def write(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_series(
    datasets: Sequence[Dataset], folder: Path, prefix: str = "slice", suffix: str = ".dcm"
) -> list[Path]:
    """Write ``datasets`` as ``folder/<prefix>_000<suffix>, ...`` (in the given order)."""
    folder.mkdir(parents=True, exist_ok=True)
    return [write(ds, folder / f"{prefix}_{n:03d}{suffix}") for n, ds in enumerate(datasets)]


def copy_sample_series(folder: Path) -> list[Path]:
    """Byte-exact copies of the real (JPEG 2000) files."""
    folder.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy2(f, folder / f.name)) for f in sample_files()]


def truncate(path: Path, n_bytes: int) -> Path:
    data = path.read_bytes()
    assert 0 < n_bytes < len(data)
    path.write_bytes(data[:n_bytes])
    return path


def pixel_data_offset(path: Path) -> int:
    """File offset of the first byte of the PixelData value."""
    ds = pydicom.dcmread(path, defer_size=64)
    raw = ds.get_item("PixelData", keep_deferred=True)
    assert raw is not None
    return int(raw.value_tell)


def tilt_series(datasets: Sequence[Dataset], tilt_deg: float, set_tag: bool = True) -> float:
    """Gantry-tilt a copy of the series in place: shift slice k (counted from the most
    inferior) along +y by ``k * step * tan(tilt)``; pixels unchanged, so the anatomy shears.

    Returns the y shift per mm of z (tan(tilt))."""
    shear = math.tan(math.radians(tilt_deg))
    z_lo = min(z_of(ds) for ds in datasets)
    for ds in datasets:
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x, y + (z - z_lo) * shear, z]
        if set_tag:
            ds.GantryDetectorTilt = tilt_deg
    return shear


@contextmanager
def world_readable_tmpdir() -> Iterator[Path]:
    """A temporary folder under /tmp that any user can traverse (pytest's tmp_path is 0700)."""
    d = Path(tempfile.mkdtemp(prefix="rcsa-perm-", dir="/tmp"))
    try:
        os.chmod(d, 0o755)
        yield d
    finally:
        for p in [d, *d.rglob("*")]:
            os.chmod(p, 0o755 if p.is_dir() else 0o644)
        shutil.rmtree(d, ignore_errors=True)


_UNPRIVILEGED_LOAD = r"""
import os, sys
from rcsa.io import load
from rcsa.errors import RcsaError
load(sys.argv[1])  # warm up lazy imports while privileged (the interpreter may sit in /root)
if os.geteuid() == 0:
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
for path in sys.argv[2:]:
    try:
        load(path)
        print("LOADED|")
    except RcsaError as exc:
        print(f"{type(exc).__name__}|{exc}")
"""


def load_unprivileged(*paths: Path) -> list[tuple[str, str]]:
    """``rcsa.io.load(path)`` for each path, in one subprocess that has dropped root
    (uid/gid 65534). Returns (error class name or 'LOADED', message) per path."""
    proc = subprocess.run(
        [sys.executable, "-c", _UNPRIVILEGED_LOAD, str(ALBERTA_UNCOMPRESSED), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == len(paths), proc.stdout + proc.stderr
    return [(name, message) for name, _, message in (ln.partition("|") for ln in lines)]
