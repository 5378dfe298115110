"""Benchmark: ``rcsa.io.load`` versus a bare SimpleITK ``ImageSeriesReader`` on a 512x512x300 CT.

Run from the repository root::

    .venv/bin/python benchmarks/load.py              # build the series once, then measure
    .venv/bin/python benchmarks/load.py --repeat 7   # more repetitions (default 5, minimum 3)
    .venv/bin/python benchmarks/load.py --rebuild    # rebuild the cached series

What it does:

1. **Builds a realistic CT series** from the real abdomen-pelvis CT
   ``sample_data/ct_abdomen_pelvis/ct.nii.gz`` (122 x 101 x 112 voxels at 3 mm): SimpleITK
   resamples it (linear) onto an axial LPS grid of 512 x 512 x 300 voxels whose square in-plane
   field of view covers the scan's larger in-plane extent (the smaller one is padded with air,
   as a scanner's reconstruction circle would be) and whose 300 slices cover the same z range.
   pydicom writes every slice as a single-frame CT Image Storage file with complete geometry
   (ImagePositionPatient per slice, ImageOrientationPatient, PixelSpacing, SliceThickness,
   SpacingBetweenSlices, RescaleSlope 1 / RescaleIntercept -1024, 12-bit unsigned stored
   values, unique UIDs), twice: uncompressed (Explicit VR Little Endian) and JPEG 2000
   lossless (``Dataset.compress``, encoded by pylibjpeg-openjpeg). Files are written in
   scanner order (instance 1 is the most superior slice), so both readers must sort.
   The series are cached in ``benchmarks/.cache/<version>/`` (git-ignored) with a manifest that
   holds the SHA-256 of the expected HU volume; reruns reuse them. Change ``CACHE_VERSION``
   (or pass ``--rebuild``) when the builder changes.
2. **Measures** for each series ``rcsa.io.load(folder)`` and SimpleITK
   (``GetGDCMSeriesFileNames`` + ``Execute`` + ``GetArrayFromImage``), each repetition in a
   fresh Python subprocess, readers alternating. The child times only the load call itself
   (``time.perf_counter`` around it, after the imports), the process CPU time of the call
   (all threads) and its peak RSS, which includes the interpreter and that reader's imports.
   Peak RSS is ``VmHWM`` from ``/proc/self/status``: on Linux
   ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` is carried across ``exec``, so a child of this
   (large, verifying) parent would report the parent's peak; ``ru_maxrss`` is the fallback
   where ``/proc`` is missing. The files are read once before timing so both readers see a warm
   page cache.
3. **Verifies** that both readers return the identical HU volume (the SimpleITK array flipped
   into rcsa's canonical LPS orientation), the same geometry, and the volume that was written
   (SHA-256 from the manifest). Any mismatch is printed loudly and the exit status is 1.

The table lists, per series and reader, the median load time, the ratio rcsa / SimpleITK
(target <= 1.2), the peak RSS of the child in MB, the median CPU time of the load and the RSS
after the imports. On a shared machine (see the printed load average) wall times are noisy;
CPU time is the steadier comparison. SimpleITK (GDCM) decodes JPEG 2000 with several OpenJPEG
threads, pylibjpeg-openjpeg holds the GIL, so on an idle multi-core machine the JPEG 2000 wall
ratio is worse than the CPU ratio.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SOURCE_CT = REPO / "sample_data" / "ct_abdomen_pelvis" / "ct.nii.gz"
CACHE_ROOT = REPO / "benchmarks" / ".cache"
#: Bump when the builder changes: the cache folder is keyed by it.
CACHE_VERSION = "ct512x512x300-v1"
SIZE = (512, 512, 300)  # columns, rows, slices
INTERCEPT = -1024
MAX_STORED = 4095  # 12-bit unsigned
SERIES = ("uncompressed", "jpeg2000")
TARGET_RATIO = 1.2


# ------------------------------------------------------------------------------------------
# building the series
# ------------------------------------------------------------------------------------------
def _resample_source() -> tuple[Any, tuple[float, float, float], tuple[float, float, float]]:
    """HU volume [k, j, i] (int16, LPS, identity direction), its spacing and origin."""
    import numpy as np
    import SimpleITK as sitk

    src = sitk.ReadImage(str(SOURCE_CT), sitk.sitkFloat32)
    size = np.array(src.GetSize())
    # physical bounding box (voxel edges, not centres) of the source in LPS
    corners = []
    for ci in (-0.5, size[0] - 0.5):
        for cj in (-0.5, size[1] - 0.5):
            for ck in (-0.5, size[2] - 0.5):
                corners.append(src.TransformContinuousIndexToPhysicalPoint((ci, cj, ck)))
    lo, hi = np.min(corners, axis=0), np.max(corners, axis=0)
    extent = hi - lo
    fov = float(max(extent[0], extent[1]))  # square in-plane field of view, centred
    centre = (lo + hi) / 2
    new_spacing = np.array([fov / SIZE[0], fov / SIZE[1], extent[2] / SIZE[2]])
    first_edge = np.array([centre[0] - fov / 2, centre[1] - fov / 2, lo[2]])
    new_origin = first_edge + new_spacing / 2

    res = sitk.ResampleImageFilter()
    res.SetSize([int(s) for s in SIZE])
    res.SetOutputSpacing([float(s) for s in new_spacing])
    res.SetOutputOrigin([float(o) for o in new_origin])
    res.SetOutputDirection((1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
    res.SetInterpolator(sitk.sitkLinear)
    res.SetDefaultPixelValue(float(INTERCEPT))
    out = sitk.GetArrayFromImage(res.Execute(src))
    hu = np.clip(np.rint(out), INTERCEPT, INTERCEPT + MAX_STORED).astype(np.int16)
    return hu, tuple(float(s) for s in new_spacing), tuple(float(o) for o in new_origin)  # type: ignore[return-value]


def _sha(hu: Any) -> str:
    import numpy as np

    return hashlib.sha256(np.ascontiguousarray(hu, dtype=np.int16).tobytes()).hexdigest()


def _write_series(
    folder: Path,
    kind: str,
    hu: Any,
    spacing: tuple[float, float, float],
    origin: tuple[float, float, float],
) -> None:
    import numpy as np
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import (
        PYDICOM_IMPLEMENTATION_UID,
        CTImageStorage,
        ExplicitVRLittleEndian,
        JPEG2000Lossless,
        generate_uid,
    )

    def uid(*parts: object) -> str:  # deterministic, unique per (version, series, instance)
        return str(generate_uid(entropy_srcs=[CACHE_VERSION, *map(str, parts)]))

    study_uid, frame_uid = uid("study"), uid("frame")
    series_uid = uid("series", kind)
    n = hu.shape[0]
    folder.mkdir(parents=True, exist_ok=True)
    for number, k in enumerate(range(n - 1, -1, -1), start=1):  # instance 1 = most superior
        stored = (hu[k].astype(np.int32) - INTERCEPT).astype(np.uint16)
        z = origin[2] + k * spacing[2]
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = uid("instance", kind, k)
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        ds = Dataset()
        ds.file_meta = meta
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20240101"
        ds.StudyTime = ds.SeriesTime = ds.ContentTime = "120000"
        ds.AccessionNumber = "BENCH0001"
        ds.Modality = "CT"
        ds.Manufacturer = "rcsa benchmark (synthetic from sample_data/ct_abdomen_pelvis)"
        ds.StudyDescription = "rcsa load benchmark"
        ds.SeriesDescription = f"ABD-PELVIS 512x512x{n} {kind}"
        ds.PatientName = "Benchmark^Synthetic"
        ds.PatientID = "RCSA-BENCH"
        ds.PatientBirthDate = ""
        ds.PatientSex = "O"
        ds.BodyPartExamined = "ABDOMEN"
        ds.SliceThickness = f"{spacing[2]:.6g}"
        ds.SpacingBetweenSlices = f"{spacing[2]:.6g}"
        ds.KVP = "120"
        ds.PatientPosition = "HFS"
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.StudyID = "1"
        ds.SeriesNumber = 2 if kind == "uncompressed" else 3
        ds.InstanceNumber = number
        ds.ImagePositionPatient = [f"{origin[0]:.6f}", f"{origin[1]:.6f}", f"{z:.6f}"]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.FrameOfReferenceUID = frame_uid
        ds.PositionReferenceIndicator = ""
        ds.SliceLocation = f"{z:.6f}"
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = int(hu.shape[1]), int(hu.shape[2])
        # PixelSpacing is (between rows = along y, between columns = along x)
        ds.PixelSpacing = [f"{spacing[1]:.6f}", f"{spacing[0]:.6f}"]
        ds.BitsAllocated = 16
        ds.BitsStored = 12
        ds.HighBit = 11
        ds.PixelRepresentation = 0
        ds.WindowCenter = "40"
        ds.WindowWidth = "400"
        ds.RescaleIntercept = str(INTERCEPT)
        ds.RescaleSlope = "1"
        ds.RescaleType = "HU"
        ds.PixelData = stored.tobytes()
        ds["PixelData"].VR = "OW"
        if kind == "jpeg2000":
            ds.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg")
        ds.save_as(folder / f"IM{number:06d}.dcm", enforce_file_format=True)


def build(rebuild: bool = False) -> dict[str, Any]:
    """Build (or reuse) the cached series; return the manifest."""
    cache = CACHE_ROOT / CACHE_VERSION
    manifest_path = cache / "manifest.json"
    if manifest_path.exists() and not rebuild:
        manifest: dict[str, Any] = json.loads(manifest_path.read_text())
        if all(len(list((cache / s).glob("*.dcm"))) == SIZE[2] for s in SERIES):
            return manifest
    if cache.exists():
        shutil.rmtree(cache)
    t0 = time.perf_counter()
    print(
        f"building {SIZE[0]}x{SIZE[1]}x{SIZE[2]} series from {SOURCE_CT.relative_to(REPO)} "
        f"into {cache.relative_to(REPO)} (once) ...",
        flush=True,
    )
    hu, spacing, origin = _resample_source()
    tmp = cache.with_name(cache.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    for kind in SERIES:
        t = time.perf_counter()
        _write_series(tmp / kind, kind, hu, spacing, origin)
        mb = sum(f.stat().st_size for f in (tmp / kind).iterdir()) / 2**20
        print(
            f"  {kind}: {SIZE[2]} files, {mb:.0f} MB, {time.perf_counter() - t:.0f} s", flush=True
        )
    manifest = {
        "version": CACHE_VERSION,
        "source": str(SOURCE_CT.relative_to(REPO)),
        "size_voxels": list(SIZE),
        "spacing_mm": list(spacing),
        "origin_mm": list(origin),
        "hu_sha256": _sha(hu),
        "hu_min": int(hu.min()),
        "hu_max": int(hu.max()),
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    tmp.rename(cache)
    print(f"  built in {time.perf_counter() - t0:.0f} s", flush=True)
    return manifest


# ------------------------------------------------------------------------------------------
# child: one timed load in a fresh interpreter
# ------------------------------------------------------------------------------------------
def _peak_rss_mb() -> float:
    """Peak resident memory of this process in MB.

    On Linux ``getrusage().ru_maxrss`` survives ``exec``: a child started by a parent that had
    grown large (this script holds two volumes while verifying) reports the parent's peak.
    ``VmHWM`` in ``/proc/self/status`` belongs to the child's own address space, so it is used
    when available; elsewhere ``ru_maxrss``.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux, bytes on macOS
    return kb / 1024 if sys.platform != "darwin" else kb / 2**20


def _rss_now_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return float("nan")


def child(reader: str, folder: str, dump: str | None) -> None:
    if reader == "rcsa":
        from rcsa.io import load

        start_rss = _rss_now_mb()

        t0, c0 = time.perf_counter(), time.process_time()
        vol = load(folder)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        rss = _peak_rss_mb()
        voxels = vol.voxels
        geo = vol.geometry
        info = {
            "spacing": geo.spacing_mm.tolist(),
            "origin": geo.origin_mm.tolist(),
            "direction": geo.direction.tolist(),
        }
    else:
        import SimpleITK as sitk

        start_rss = _rss_now_mb()
        t0, c0 = time.perf_counter(), time.process_time()
        names = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(folder)
        rd = sitk.ImageSeriesReader()
        rd.SetFileNames(names)
        img = rd.Execute()
        voxels = sitk.GetArrayFromImage(img)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        rss = _peak_rss_mb()
        info = {
            "spacing": list(img.GetSpacing()),
            "origin": list(img.GetOrigin()),
            "direction": [list(img.GetDirection()[r * 3 : r * 3 + 3]) for r in range(3)],
        }
    if dump:
        import numpy as np

        np.save(dump + ".npy", voxels)
        Path(dump + ".json").write_text(json.dumps({**info, "dtype": str(voxels.dtype)}))
    result = {"seconds": seconds, "cpu_seconds": cpu, "peak_rss_mb": rss, "start_rss_mb": start_rss}
    print(json.dumps(result))


def _run_child(reader: str, folder: Path, dump: Path | None) -> dict[str, float]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", reader, str(folder)]
    if dump is not None:
        cmd += ["--dump", str(dump)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")]))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"{reader} child failed on {folder} (exit {proc.returncode})")
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# ------------------------------------------------------------------------------------------
# verification
# ------------------------------------------------------------------------------------------
def _to_canonical(voxels: Any, direction: Any) -> Any:
    """Flip a [k, j, i] array with an axis-aligned direction so that i->L, j->P, k->S."""
    import numpy as np

    d = np.asarray(direction, dtype=float)
    if not np.allclose(np.abs(d), np.eye(3), atol=1e-6):
        raise ValueError(f"benchmark expects an axis-aligned, unpermuted grid, got {d.tolist()}")
    for axis_ijk in range(3):
        if d[axis_ijk, axis_ijk] < 0:
            voxels = np.flip(voxels, axis=2 - axis_ijk)
    return voxels


def verify(series: str, dumps: dict[str, Path], manifest: dict[str, Any]) -> list[str]:
    """Problems found (empty when both readers agree with each other and with the source)."""
    import numpy as np

    problems: list[str] = []
    arrays, infos = {}, {}
    for reader, stem in dumps.items():
        infos[reader] = json.loads(Path(str(stem) + ".json").read_text())
        try:
            arrays[reader] = _to_canonical(np.load(str(stem) + ".npy"), infos[reader]["direction"])
        except ValueError as exc:
            return [f"{series}/{reader}: {exc}"]
    a, b = arrays["rcsa"], arrays["SimpleITK"]
    expected_shape = tuple(manifest["size_voxels"][::-1])
    for reader, arr in arrays.items():
        if arr.shape != expected_shape:
            problems.append(f"{series}/{reader}: shape {arr.shape}, expected {expected_shape}")
        elif arr.dtype.kind == "f" and not np.array_equal(arr, np.rint(arr)):
            problems.append(f"{series}/{reader}: non-integer HU values ({arr.dtype})")
        elif _sha(arr) != manifest["hu_sha256"]:
            problems.append(f"{series}/{reader}: HU volume differs from the volume written")
    if a.shape != b.shape:
        problems.append(f"{series}: shapes differ, rcsa {a.shape} vs SimpleITK {b.shape}")
    else:
        diff = np.asarray(a, dtype=np.float64) != np.asarray(b, dtype=np.float64)
        if diff.any():
            k, j, i = np.argwhere(diff)[0]
            problems.append(
                f"{series}: {int(diff.sum())} voxels differ between rcsa and SimpleITK "
                f"(first at k,j,i={k},{j},{i}: rcsa {a[k, j, i]} vs SimpleITK {b[k, j, i]})"
            )
    for key, tol in (("spacing", 1e-4), ("origin", 1e-3)):
        va, vb = np.array(infos["rcsa"][key]), np.array(infos["SimpleITK"][key])
        if key == "origin":  # SimpleITK's origin is its own first voxel; compare canonical corners
            d = np.array(infos["SimpleITK"]["direction"])
            n = np.array(manifest["size_voxels"]) - 1
            sp = np.array(infos["SimpleITK"]["spacing"])
            vb = vb + d @ (np.where(np.diag(d) < 0, n, 0) * sp)
        if not np.allclose(va, vb, atol=tol):
            problems.append(
                f"{series}: {key} differs, rcsa {va.tolist()} vs SimpleITK {vb.tolist()}"
            )
    if not np.allclose(infos["rcsa"]["spacing"], manifest["spacing_mm"], atol=1e-4):
        problems.append(
            f"{series}: rcsa spacing {infos['rcsa']['spacing']} != written {manifest['spacing_mm']}"
        )
    return problems


# ------------------------------------------------------------------------------------------
# main
# ------------------------------------------------------------------------------------------
def _warm_cache(folder: Path) -> None:
    for f in sorted(folder.iterdir()):
        with open(f, "rb") as fh:
            while fh.read(1 << 20):
                pass


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--repeat", type=int, default=5, help="repetitions per reader (>= 3)")
    ap.add_argument("--rebuild", action="store_true", help="rebuild the cached series")
    ap.add_argument("--series", choices=SERIES, action="append", help="only this series")
    ap.add_argument("--child", choices=("rcsa", "SimpleITK"), help=argparse.SUPPRESS)
    ap.add_argument("--dump", help=argparse.SUPPRESS)
    ap.add_argument("folder", nargs="?", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child, args.folder, args.dump)
        return 0
    if args.repeat < 3:
        ap.error("--repeat must be at least 3")

    manifest = build(args.rebuild)
    cache = CACHE_ROOT / CACHE_VERSION
    import numpy as np
    import pydicom
    import SimpleITK as sitk

    print(
        f"python {platform.python_version()}, {os.cpu_count()} CPU(s), "
        f"SimpleITK {sitk.Version_VersionString()}, pydicom {pydicom.__version__}, "
        f"numpy {np.__version__}; {args.repeat} runs per reader, each in a fresh process",
        flush=True,
    )
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    readers = ("rcsa", "SimpleITK")
    with tempfile.TemporaryDirectory(prefix="rcsa-bench-") as tmp:
        for series in args.series or SERIES:
            folder = cache / series
            _warm_cache(folder)
            runs: dict[str, list[dict[str, float]]] = {r: [] for r in readers}
            dumps = {r: Path(tmp) / f"{series}-{r}" for r in readers}
            for rep in range(args.repeat):
                order = readers if rep % 2 == 0 else readers[::-1]
                for reader in order:
                    runs[reader].append(
                        _run_child(reader, folder, dumps[reader] if rep == 0 else None)
                    )
                if rep == 0:
                    problems += verify(series, dumps, manifest)
                    for stem in dumps.values():
                        for ext in (".npy", ".json"):
                            Path(str(stem) + ext).unlink(missing_ok=True)
            print(
                f"  {series} wall s: "
                + "; ".join(
                    f"{r} " + " ".join(f"{x['seconds']:.2f}" for x in runs[r]) for r in readers
                ),
                flush=True,
            )
            med = {r: statistics.median(x["seconds"] for x in runs[r]) for r in readers}
            for r in readers:
                rows.append(
                    {
                        "series": series,
                        "reader": r,
                        "seconds": med[r],
                        "ratio": med["rcsa"] / med["SimpleITK"] if r == "rcsa" else None,
                        "cpu": statistics.median(x["cpu_seconds"] for x in runs[r]),
                        "rss": max(x["peak_rss_mb"] for x in runs[r]),
                        "start": statistics.median(x["start_rss_mb"] for x in runs[r]),
                    }
                )

    print()
    print(
        f"{'series':<14}{'reader':<11}{'median s':>9}{'ratio rcsa/SimpleITK':>22}"
        f"{'peak RSS MB':>13}{'median CPU s':>14}{'RSS at start MB':>17}"
    )
    for row in rows:
        ratio = row["ratio"]
        rtxt = (
            "" if ratio is None else f"{ratio:.2f}" + (" ok" if ratio <= TARGET_RATIO else " > 1.2")
        )
        print(
            f"{row['series']:<14}{row['reader']:<11}{row['seconds']:>9.2f}{rtxt:>22}"
            f"{row['rss']:>13.0f}{row['cpu']:>14.2f}{row['start']:>17.0f}"
        )
    print(
        f"(target ratio <= {TARGET_RATIO}. median s: wall time of the load call inside the child; "
        "peak RSS: the child's VmHWM, max over runs; CPU s: the child's process CPU time during "
        "the load, all threads; RSS at start: after the reader's imports, before the load)"
    )
    load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"(1-min load average {load_before:.1f} before, {load_after:.1f} after on "
        f"{os.cpu_count()} CPU(s); the benchmark itself adds about 1: above that, other "
        "processes competed for the CPUs, wall times are noisy and CPU s compares better)"
    )
    if problems:
        print("\n" + "!" * 80)
        print("MISMATCH: the readers do not return the same HU volume / geometry:")
        for p in problems:
            print("  !! " + p)
        print("!" * 80)
        return 1
    print("verified: rcsa and SimpleITK return identical HU arrays (canonical LPS) and geometry,")
    print("          equal to the volume written (SHA-256 from the manifest)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
