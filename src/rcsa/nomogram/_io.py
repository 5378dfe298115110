"""File helpers of the nomogram package: atomic writes, overwrite refusal, reading tables."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from rcsa.errors import (
    CorruptFileError,
    DataError,
    InputNotFoundError,
    InputNotReadableError,
    OutputExistsError,
)


def check_writable(path: Path, overwrite: bool) -> None:
    """Refuse an existing output unless ``overwrite``; the parent folder must exist."""
    if path.exists() and not overwrite:
        raise OutputExistsError("output exists; pass --overwrite to replace it", path)
    if not path.parent.exists():
        raise InputNotFoundError("output folder does not exist", path.parent)


def _default_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: Path, writer: Callable[[Path], None], overwrite: bool) -> None:
    """Call ``writer(tmp)`` on a temporary file beside ``path``, then move it into place."""
    path = Path(path)
    check_writable(path, overwrite)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        writer(tmp)
        os.chmod(tmp, _default_mode())  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(path: Path, text: str, overwrite: bool) -> None:
    def write(tmp: Path) -> None:
        tmp.write_text(text, encoding="utf-8")

    atomic_write(path, write, overwrite)


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV (or Parquet) table; typed errors for missing, unreadable or malformed files."""
    path = Path(path)
    if not path.exists():
        raise InputNotFoundError("table not found", path)
    if path.is_dir():
        raise DataError("expected a CSV or Parquet file, got a folder", path)
    try:
        if path.suffix.lower() == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except PermissionError as exc:
        raise InputNotReadableError(f"cannot read: {exc.strerror}", path) from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise CorruptFileError(f"cannot parse table: {exc}", path) from exc
