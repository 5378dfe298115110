"""File helpers of the nomogram package: atomic writes, overwrite refusal, reading tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from rcsa.errors import (
    CorruptFileError,
    DataError,
    InputNotFoundError,
    InputNotReadableError,
)
from rcsa.outputs import atomic_write, atomic_write_text, check_writable

__all__ = ["atomic_write", "atomic_write_text", "check_writable", "read_table"]


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
