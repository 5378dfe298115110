"""The reader of a run folder (:func:`open_run_folder`): typed views of what the writer wrote.

Nothing is read until asked for, and each part is read once: ``rcsa screen`` needs the tables
and images, the DICOM export the segmentation and the level map, a batch only the feature row.
A missing or unreadable part raises :class:`~rcsa.errors.InputError` naming the folder and the
file; a damaged segmentation raises the loader's typed error.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from rcsa.errors import InputError, InputNotFoundError
from rcsa.io import CTVolume, Geometry, LabelVolume, load, load_labels, read_label_names
from rcsa.levels.types import LevelMap
from rcsa.measure.types import Measurement
from rcsa.runfolder import names as N


def _text(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return str(v)


def _value(v: Any) -> float | None:
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


@dataclass(frozen=True, eq=False)
class RunFolder:
    """An ``rcsa run`` / ``rcsa measure`` output folder, read-only."""

    path: Path

    def file(self, name: str) -> Path:
        """The path of one of its files (a name of :mod:`rcsa.runfolder.names`); raises when
        it is missing."""
        p = self.path / name
        if not p.is_file():
            raise InputError(f"not an rcsa run folder: {name} is missing", self.path)
        return p

    def has(self, name: str) -> bool:
        return (self.path / name).is_file()

    def _json(self, name: str) -> Any:
        p = self.file(name)
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read the run folder: {name}: {exc}", self.path) from exc

    def _csv(self, name: str, **opts: Any) -> pd.DataFrame:
        p = self.file(name)
        try:
            return pd.read_csv(p, **opts)
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read the run folder: {name}: {exc}", self.path) from exc

    @cached_property
    def record(self) -> dict[str, Any]:
        """``run.json``: versions, configuration, inputs, notes, timings, warnings."""
        doc = self._json(N.RUN_JSON)
        if not isinstance(doc, dict):
            raise InputError(f"cannot read the run folder: {N.RUN_JSON} is not an object",
                             self.path)
        return doc

    @cached_property
    def levels_document(self) -> dict[str, Any]:
        """``levels.json`` as written (the ``rcsa levels --json`` document)."""
        doc = self._json(N.LEVELS_JSON)
        if not isinstance(doc, dict):
            raise InputError(f"cannot read the run folder: {N.LEVELS_JSON} is not an object",
                             self.path)
        return doc

    @cached_property
    def level_map(self) -> LevelMap:
        """The level map (``levels.json``)."""
        try:
            return LevelMap.from_dict(self.levels_document)
        except (TypeError, ValueError) as exc:
            raise InputError(f"cannot read the run folder: {N.LEVELS_JSON}: {exc}",
                             self.path) from exc

    @cached_property
    def spine(self) -> dict[str, Any] | None:
        """``spine.json`` (``rcsa.spine.SpineResult.to_dict``); None for a folder written
        without it (before rcsa.spine, or by ``rcsa segment``)."""
        if not self.has(N.SPINE_JSON):
            return None
        doc = self._json(N.SPINE_JSON)
        if not isinstance(doc, dict):
            raise InputError(f"cannot read the run folder: {N.SPINE_JSON} is not an object",
                             self.path)
        return doc

    @cached_property
    def wide(self) -> pd.DataFrame:
        """``features.csv`` (``scan_id`` as text)."""
        return self._csv(N.FEATURES_CSV, dtype={"scan_id": str})

    @cached_property
    def long(self) -> pd.DataFrame:
        """``features_long.csv`` as pandas reads it (empty cells are NaN)."""
        return self._csv(N.FEATURES_LONG_CSV, keep_default_na=True)

    @cached_property
    def measurements(self) -> tuple[Measurement, ...]:
        """The long table's rows as :class:`~rcsa.measure.types.Measurement` (a missing value
        is None, empty text is "")."""
        return tuple(
            Measurement(level=_text(r.get("level")), structure=_text(r.get("structure")),
                        side=_text(r.get("side")), quantity=_text(r.get("quantity")),
                        value=_value(r.get("value")), unit=_text(r.get("unit")),
                        flag=_text(r.get("flag")), reason=_text(r.get("reason")),
                        normaliser=_text(r.get("normaliser")))
            for r in self.long.to_dict(orient="records"))

    @cached_property
    def class_names(self) -> dict[int, str]:
        """``segmentation_labels.json``: class id -> name."""
        return read_label_names(self.file(N.SEGMENTATION_LABELS_JSON))

    def segmentation(self, like: CTVolume | Geometry | None = None) -> LabelVolume:
        """The segmentation in rcsa's canonical orientation, with its class names; with
        ``like``, checked to lie on that grid (:func:`rcsa.io.load_labels`)."""
        return load_labels(self.file(N.SEGMENTATION_NIFTI), like=like, names=self.class_names)

    def image(self, name: str) -> Path | None:
        """``qc/<name>.png`` (a level, or :data:`~rcsa.runfolder.names.LEVEL_MAP_IMAGE`)."""
        p = self.path / N.qc_image(name)
        return p if p.is_file() else None

    @property
    def scan_path(self) -> str | None:
        """The input the run analysed, as ``run.json`` records it."""
        scan = self.record.get("inputs", {}).get("scan")
        return str(scan) if scan else None

    def load_scan(self) -> CTVolume:
        """The CT the run analysed, loaded again from :attr:`scan_path` (run folders hold no
        image of it). Loader options the run was given (``--series-uid``, ...) are not
        recorded: a folder of several series loads the automatic choice."""
        scan = self.scan_path
        if scan is None:
            raise InputError(f"{N.RUN_JSON} records no input scan", self.path)
        return load(scan)


def is_run_folder(path: str | Path) -> bool:
    """A folder holding the files a run folder is read from (:data:`REQUIRED_FILES`)."""
    p = Path(path)
    return p.is_dir() and all((p / f).is_file() for f in N.REQUIRED_FILES)


def open_run_folder(path: str | Path, require: tuple[str, ...] = ()) -> RunFolder:
    """The run folder at ``path``; ``require``: files that must be present (checked now)."""
    p = Path(path)
    if not p.is_dir():
        raise InputNotFoundError("not a folder", p)
    folder = RunFolder(p)
    for name in require:
        folder.file(name)
    return folder
