"""One call for the ``rcsa levels`` command: load, detect, override, write JSON and QC PNG."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rcsa.errors import LevelOverrideError, OutputWriteError
from rcsa.io.options import LoadOptions
from rcsa.levels.find import find_levels
from rcsa.levels.override import LevelOverride, load_levels_file, parse_level_specs
from rcsa.levels.qc import write_qc_png
from rcsa.levels.types import LevelMap
from rcsa.outputs import atomic_write_text, check_writable


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
    overwrite: bool = False,
    load_options: LoadOptions | None = None,
) -> LevelMap:
    """Load ``path``, find the levels, apply overrides (file first, then ``--level``), and
    write the JSON (``'-'`` = stdout) and QC PNG when asked. Bad overrides raise
    :class:`~rcsa.errors.LevelOverrideError` before the scan is analysed."""
    from rcsa.io import load

    # refuse existing outputs before any work (nothing already written is lost)
    for out in (json_out, qc_out):
        if out is not None and str(out) != "-":
            check_writable(Path(out), overwrite, create_parent=True)
    overrides: list[LevelOverride] = []
    if levels_file is not None:
        overrides += load_levels_file(levels_file, scan=path)
    selection = parse_level_specs(level_specs)
    if selection.names:
        raise LevelOverrideError(
            f"--level {','.join(selection.names)}: a bare level name restricts the levels "
            "segmented or measured; `rcsa levels` shows every level (place one with "
            "NAME=slice:K or NAME=z:MM)")
    overrides += selection.overrides
    ct = load(path, load_options)
    lm = find_levels(ct, overrides)
    if json_out is not None:
        text = json.dumps(levels_document(path, lm), indent=2) + "\n"
        if str(json_out) == "-":
            sys.stdout.write(text)
        else:
            try:
                atomic_write_text(Path(json_out), text, overwrite, create_parent=True)
            except OSError as exc:
                raise OutputWriteError(f"cannot write JSON: {exc.strerror or exc}",
                                       json_out) from None
    if qc_out is not None:
        write_qc_png(ct, lm, qc_out, title=f"rcsa levels: {Path(path).name}", overwrite=overwrite)
    return lm
