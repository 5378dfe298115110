"""Shared fixtures: paths to the real sample data shipped in ``sample_data/``."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_data"
SHARED = REPO.parent / "shared" / "data"


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
