"""Shared fixtures: paths to the real sample data shipped in ``sample_data/``."""

from __future__ import annotations

from pathlib import Path

import pytest

from rcsa.io import CTVolume, load

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_data"
SHARED = REPO.parent / "shared" / "data"
#: Subject D (unlabelled chest-pelvis DICOM, 3 mm pixels) in ../shared; tests skip without it.
SUBJECT_D_DICOM = SHARED / "ct_chest_pelvis_dicom" / "dicom"


@pytest.fixture(scope="session")
def sample() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def abdomen(sample: Path) -> Path:
    return sample / "ct_abdomen_pelvis"


@pytest.fixture(scope="session")
def thoracolumbar(sample: Path) -> Path:
    return sample / "ct_thoracolumbar_dicom"


@pytest.fixture(scope="session")
def alberta(sample: Path) -> Path:
    return sample / "l3_slice_alberta"


@pytest.fixture(scope="session")
def subject_d_available() -> bool:
    return SUBJECT_D_DICOM.is_dir()


@pytest.fixture(scope="session")
def chest_pelvis(subject_d_available: bool) -> CTVolume:
    """Subject D loaded once per test session (skips where ../shared lacks it)."""
    if not subject_d_available:
        pytest.skip(f"subject D not available at {SUBJECT_D_DICOM}")
    return load(SUBJECT_D_DICOM)
