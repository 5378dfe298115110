"""One call for the ``rcsa levels`` command: load, detect, override, write JSON and QC PNG."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rcsa.errors import LevelError
from rcsa.levels.find import find_levels
from rcsa.levels.override import LevelOverride, load_levels_file, parse_level_override
from rcsa.levels.qc import write_qc_png
from rcsa.levels.types import LevelMap


def _atomic_write_text(path: Path, text: str) -> None:
    """Write next to ``path`` then rename over it, so readers never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def levels_document(path: str | Path, lm: LevelMap) -> dict[str, Any]:
    """The JSON document written by ``rcsa levels --json`` (top-level ``levels`` object)."""
    d = lm.to_dict()
    return {"path": str(path), **d}


def detect_levels_for_path(
    path: str | Path,
    level_specs: Sequence[str] = (),
    levels_file: str | Path | None = None,
    json_out: str | Path | None = None,
    qc_out: str | Path | None = None,
    **load_opts: Any,
) -> LevelMap:
    """Load ``path``, find the levels, apply overrides (file first, then ``--level``), and
    write the JSON (``'-'`` = stdout) and QC PNG when asked. Bad overrides raise
    :class:`~rcsa.errors.LevelOverrideError` before the scan is analysed."""
    from rcsa.io import load

    overrides: list[LevelOverride] = []
    if levels_file is not None:
        overrides += load_levels_file(levels_file, scan=path)
    overrides += [parse_level_override(s) for s in level_specs]
    ct = load(path, **load_opts)
    lm = find_levels(ct, overrides)
    if json_out is not None:
        text = json.dumps(levels_document(path, lm), indent=2) + "\n"
        if str(json_out) == "-":
            sys.stdout.write(text)
        else:
            try:
                _atomic_write_text(Path(json_out), text)
            except OSError as exc:
                raise LevelError(f"cannot write JSON: {exc.strerror or exc}", json_out) from None
    if qc_out is not None:
        write_qc_png(ct, lm, qc_out, title=f"rcsa levels: {Path(path).name}")
    return lm
