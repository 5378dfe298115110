"""The writer of a run folder (:func:`write_run_folder`): every file of it, atomically.

The folder is built in a staging folder beside it (:func:`rcsa.outputs.staged_folder`) and
moved into place at the end, so a crash never leaves a half-written result; an existing
non-empty folder is replaced only with ``overwrite`` (else :class:`OutputExistsError`, checked
before anything is written).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from rcsa import __version__
from rcsa.anatomy import ClassMap
from rcsa.errors import OutputExistsError
from rcsa.io import CTVolume, LabelVolume, write_labels
from rcsa.levels.qc import write_qc_png
from rcsa.levels.run import levels_document
from rcsa.levels.types import LevelMap
from rcsa.measure import Measurements, wide_columns
from rcsa.outputs import staged_folder
from rcsa.runfolder import names as N
from rcsa.runfolder.qc import overlay_png
from rcsa.spine import SpineResult, spine_columns


@dataclass(frozen=True, eq=False)
class Overlay:
    """One QC overlay, ``qc/<name>.png``: the CT's slice ``slice_index`` with ``labels``."""

    name: str
    slice_index: int
    labels: npt.NDArray[np.integer]  # [j, i] class ids of ``class_map``
    class_map: ClassMap
    title: str = ""
    lines: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class RunRecord:
    """What ``run.json`` records besides the measurements and the scan's geometry."""

    inputs: Mapping[str, str]
    notes: Mapping[str, Any] = field(default_factory=dict)
    timings_s: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class RunContent:
    """Everything a run folder can hold; the writer writes the parts that are given.

    ``segmentation`` lies on ``ct``'s grid. ``rcsa run`` / ``rcsa measure`` give every part;
    ``rcsa segment`` gives the segmentation, the overlays and ``segmentation_summary``.
    """

    ct: CTVolume
    segmentation: LabelVolume
    class_map: ClassMap
    overlays: Sequence[Overlay] = ()
    #: the level map: ``levels.json`` and ``qc/levels.png`` (titled ``level_map_title``)
    level_map: LevelMap | None = None
    level_map_title: str = ""
    #: the feature tables (``features.csv`` / ``.parquet``, ``features_long.csv``)
    measurements: Measurements | None = None
    #: ``run.json`` (needs ``measurements``)
    record: RunRecord | None = None
    #: the vertebral bodies (``spine.json``, ``qc/spine.png``, its columns in the wide table)
    spine: SpineResult | None = None
    spine_title: str = ""
    segmentation_summary: Mapping[str, Any] | None = None

    @property
    def scan(self) -> str:
        """The input path as the records give it."""
        return self.record.inputs.get("scan", "") if self.record is not None else ""


def check_output_dir(out_dir: Path, overwrite: bool) -> None:
    """Refuse a non-empty output folder unless ``overwrite`` (before any work is done)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputExistsError("output path exists and is not a folder", out_dir)
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise OutputExistsError("output folder is not empty; pass --overwrite to replace it",
                                out_dir)


def _json_text(doc: Any, indent: int = 2, **opts: Any) -> str:
    return json.dumps(doc, indent=indent, **opts) + "\n"


def run_json(content: RunContent) -> dict[str, Any]:
    """The ``run.json`` document."""
    if content.measurements is None or content.record is None:
        raise ValueError("run.json needs the measurements and the run record")
    m, rec, ct = content.measurements, content.record, content.ct
    return {
        "rcsa_version": __version__,
        "scan_id": m.scan_id,
        "inputs": dict(rec.inputs),
        "scan": {
            "format": ct.source.format,
            "size_voxels": list(ct.size_voxels),
            "spacing_mm": [float(v) for v in ct.spacing_mm],
            "loader_warnings": list(ct.warnings),
        },
        "segmentation_source": m.segmentation_source,
        "config": m.config.to_dict(),
        "notes": dict(rec.notes),
        "level_warnings": list(content.level_map.warnings) if content.level_map else [],
        "timings_s": {k: round(v, 3) for k, v in rec.timings_s.items()},
    }


def write_run_folder(content: RunContent, out_dir: str | Path, overwrite: bool = False) -> Path:
    """Write the run folder ``out_dir`` atomically (staging folder, then rename); returns it."""
    out = Path(out_dir)
    check_output_dir(out, overwrite)
    ct = content.ct

    def tables(stage: Path) -> None:
        m, sp = content.measurements, content.spine
        if m is not None:
            wide = pd.DataFrame([{**m.wide_row(), **(sp.to_columns() if sp else {})}],
                                columns=wide_columns(m.config) + (spine_columns() if sp else []))
            wide.to_csv(stage / N.FEATURES_CSV, index=False)
            wide.astype(object).where(wide.notna(), None).to_parquet(stage / N.FEATURES_PARQUET)
            pd.DataFrame(m.long_records()).to_csv(stage / N.FEATURES_LONG_CSV, index=False)
        if content.level_map is not None:
            (stage / N.LEVELS_JSON).write_text(
                _json_text(levels_document(content.scan, content.level_map)), encoding="utf-8")
        if sp is not None:
            (stage / N.SPINE_JSON).write_text(_json_text(sp.to_dict()), encoding="utf-8")

    def labels(stage: Path) -> None:
        write_labels(content.segmentation, stage / N.SEGMENTATION_NIFTI,
                     ct.source.file_geometry)
        (stage / N.SEGMENTATION_LABELS_JSON).write_text(
            _json_text(content.class_map.labels_dict()), encoding="utf-8")

    def images(stage: Path) -> None:
        if content.level_map is None and not content.overlays:  # (the spine sheet needs it)
            return
        (stage / N.QC_DIR).mkdir()
        if content.level_map is not None:
            write_qc_png(ct, content.level_map, stage / N.qc_image(N.LEVEL_MAP_IMAGE),
                         title=content.level_map_title)
        if content.spine is not None and content.level_map is not None:
            from rcsa.spine.qc import write_spine_qc_png

            write_spine_qc_png(ct, content.level_map, content.spine,
                               stage / N.qc_image(N.SPINE_IMAGE), title=content.spine_title)
        spacing = (float(ct.spacing_mm[0]), float(ct.spacing_mm[1]))
        for o in content.overlays:
            overlay_png(ct.voxels[o.slice_index], o.labels, o.class_map,
                        stage / N.qc_image(o.name), title=o.title, spacing_mm=spacing,
                        lines=o.lines)

    with staged_folder(out) as stage:
        # Compression (NIfTI gzip, PNG zlib) runs outside the GIL: the three parts overlap.
        with ThreadPoolExecutor(max_workers=3) as pool:
            jobs = [pool.submit(part, stage) for part in (labels, images, tables)]
        for job in jobs:
            job.result()
        if content.measurements is not None and content.record is not None:
            (stage / N.RUN_JSON).write_text(_json_text(run_json(content), default=str),
                                            encoding="utf-8")
        if content.segmentation_summary is not None:
            (stage / N.SEGMENTATION_SUMMARY_JSON).write_text(
                _json_text(dict(content.segmentation_summary), indent=1), encoding="utf-8")
    return out
