"""Property tests (issue 18): seeded byte mutations of DICOM series and NIfTI / NRRD / MHA
files, each run through ``rcsa info`` in-process.

Property, for every mutated input: it loads (exit 0) or is refused with a typed rcsa error
(exit 3 or 4, one ``error:`` line naming a file), never an internal error (exit 1) nor a
traceback on the console (stdout, stderr, or file descriptor 2, where ITK's C++ would print),
and every input file is byte-identical afterwards. Counts are printed (``-s``) and feed the
table in docs/reliability.md. Fixed seeds: the same cases on every run.
"""

from __future__ import annotations

import copy
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from pydicom.uid import JPEG2000Lossless, RLELossless
from typer.testing import CliRunner

import _dicom_factory as f
from _mutate import KINDS, digest, mutate_copy, mutated_series
from rcsa.cli import app

N_SYNTHETIC_SERIES = 210
N_REAL_SERIES = 12
N_VOLUME_FILES = 120
SEED = 18

pytestmark = pytest.mark.filterwarnings("ignore")


def _run_info(path: Path, capfd: pytest.CaptureFixture[str]) -> str:
    """'loaded' | 'refused'; fails the test on anything else."""
    before = digest([path])
    result = CliRunner().invoke(app, ["info", str(path)])
    fd = capfd.readouterr()
    text = result.output + fd.out + fd.err
    assert "Traceback" not in text, f"{path}: traceback on the console:\n{text[-3000:]}"
    assert digest([path]) == before, f"{path}: an input file changed"
    if result.exit_code == 0:
        return "loaded"
    assert result.exit_code in (3, 4), f"{path}: exit {result.exit_code}\n{text[-3000:]}"
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], text[-3000:]  # one line, last
    return "refused"


def _small_series(tmp: Path, syntax: str | None) -> list[Path]:
    """A 4-slice, 32 x 32 crop of the real series, stored as ``syntax`` (None: native)."""
    out = []
    for k, ds in enumerate(f.series()[6:10]):
        ds = copy.deepcopy(ds)
        f.set_pixels(ds, f.pixels(ds)[240:272, 240:272])
        if syntax is not None:
            ds.compress(syntax)
        out.append(f.write(ds, tmp / f"slice_{k}.dcm"))
    return out


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    root = tmp_path_factory.mktemp("bases")
    return {name: _small_series(root / name, syntax) for name, syntax in
            (("native", None), ("rle", RLELossless), ("j2k", JPEG2000Lossless))}


def test_mutated_dicom_series(bases: dict[str, list[Path]], tmp_path: Path,
                              capfd: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(SEED)
    counts: Counter[str] = Counter()
    names = sorted(bases)
    for i in range(N_SYNTHETIC_SERIES):
        base = names[i % len(names)]
        case = tmp_path / f"syn{i:03d}"
        mutated_series(bases[base], case, rng)
        counts[_run_info(case, capfd)] += 1
    for i in range(N_REAL_SERIES):  # the real JPEG 2000 series (20 files, 512 x 512)
        case = tmp_path / f"real{i:02d}"
        mutated_series(f.sample_files(), case, rng)
        counts["real_" + _run_info(case, capfd)] += 1
    with capfd.disabled():
        print(f"\nDICOM series: {N_SYNTHETIC_SERIES} synthetic + {N_REAL_SERIES} real mutated: "
              f"{dict(sorted(counts.items()))}, crashed 0")
    assert sum(counts.values()) == N_SYNTHETIC_SERIES + N_REAL_SERIES
    # not vacuous: both outcomes occur in both families
    assert counts["loaded"] and counts["refused"]
    assert counts["real_loaded"] and counts["real_refused"]


def _volume_bases(root: Path) -> list[tuple[Path, int]]:
    """Small CT-like volumes in every format rcsa reads, with each header's size in bytes."""
    rng = np.random.default_rng(SEED)
    arr = rng.integers(-1000, 1500, size=(6, 24, 20), dtype=np.int16)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((0.8, 0.8, 2.5))
    img.SetOrigin((-10.0, 20.0, -300.0))
    root.mkdir(parents=True, exist_ok=True)
    out = []
    for name, compress in (("ct.nii", False), ("ct.nii.gz", True), ("ct.nrrd", False),
                           ("ct_gz.nrrd", True), ("ct.mha", False)):
        p = root / name
        sitk.WriteImage(img, str(p), useCompression=compress)
        data = p.read_bytes()
        if name.endswith(".nii") or name.endswith(".nii.gz"):
            header = 352 if not compress else len(data) // 3
        else:  # NRRD / MetaImage: a text header ending with an empty line / ElementDataFile
            marker = b"\n\n" if name.endswith(".nrrd") else b"ElementDataFile = LOCAL\n"
            header = data.index(marker) + len(marker)
        out.append((p, header))
    return out


def test_mutated_volume_headers(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    bases = _volume_bases(tmp_path / "bases")
    rng = random.Random(SEED + 1)
    counts: Counter[str] = Counter()
    by_format: Counter[str] = Counter()
    for i in range(N_VOLUME_FILES):
        src, header = bases[i % len(bases)]
        kind = KINDS[i % 3] if i % 5 else "header"  # header, truncate, zero_block; more header
        if kind == "zero_block":  # zero part of the header (a lost sector at the start)
            dst = tmp_path / f"v{i:03d}" / src.name
            data = bytearray(src.read_bytes())
            at = rng.randrange(0, header)
            size = rng.randint(4, max(5, header // 2))
            data[at: at + size] = bytes(len(data[at: at + size]))
            dst.parent.mkdir(parents=True)
            dst.write_bytes(bytes(data))
        else:
            dst = mutate_copy(src, tmp_path / f"v{i:03d}" / src.name, rng, kind, header)
        outcome = _run_info(dst, capfd)
        counts[outcome] += 1
        by_format[f"{src.name}:{outcome}"] += 1
    with capfd.disabled():
        print(f"\nNIfTI / NRRD / MHA: {N_VOLUME_FILES} mutated: {dict(sorted(counts.items()))}, "
              f"crashed 0; {dict(sorted(by_format.items()))}")
    assert sum(counts.values()) == N_VOLUME_FILES
    assert counts["loaded"] and counts["refused"]


def test_mutations_are_reproducible(tmp_path: Path) -> None:
    """Fixed seeds: the same bytes on every run (the docs' figures can be reproduced)."""
    src = f.sample_files()[0]
    before = digest([src])
    a = mutate_copy(src, tmp_path / "a", random.Random(5), "header")
    b = mutate_copy(src, tmp_path / "b", random.Random(5), "header")
    assert a.read_bytes() == b.read_bytes() != src.read_bytes()
    assert digest([src]) == before  # the source is never written
