"""One scan from file to feature table: ``run_scan`` (rcsa's model), ``measure_labels``
(existing masks), and ``write_scan_outputs``, which writes the result as a run folder.

The run folder's files, their writer and their reader are :mod:`rcsa.runfolder` (file list in
``docs/measure.md``); this module only says what goes into it (:func:`run_content`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rcsa.config import RcsaConfig, load_config
from rcsa.errors import InputError, NothingMeasuredError
from rcsa.io import CTVolume, LabelVolume, load, load_labels, read_label_names, read_tag
from rcsa.io.options import LoadOptions
from rcsa.levels import find_levels
from rcsa.levels.override import LevelSelection, load_levels_file, parse_level_specs
from rcsa.levels.types import LevelMap
from rcsa.measure import Measurements, labels_at_levels, measure
from rcsa.measure.table import (
    VERTEBRAL_BODY,
    LevelLabels,
    body_levels,
    check_height_m,
    level_names,
)
from rcsa.runfolder import Overlay, RunContent, RunRecord, check_output_dir, write_run_folder
from rcsa.segment.classes import RCSA_CLASSES, ClassMap, SegClass
from rcsa.spine import SpineResult, analyse_spine

LABEL_MAPS = ("ts_v1", "ts_v2", "rcsa")

#: Called with a short description at the start of each stage (``rcsa run``'s progress display).
Progress = Callable[[str], None]


def _no_progress(stage: str) -> None:
    """The default :data:`Progress`: report nothing."""


@dataclass(frozen=True)
class RunOptions:
    """The options of one scan's run (``rcsa run``, ``rcsa measure``, ``rcsa screen``, every
    case of ``rcsa batch``), built once by the command line and passed unchanged down to the
    workers (frozen, picklable).

    ``load``: how the scan is read. ``level_specs``: level specs in the one syntax of
    :func:`rcsa.levels.override.parse_level_specs` (``L3=slice:72``, ``L3=72``, ``L3=z:-41``,
    bare ``L3`` to restrict), applied after ``levels_file``. ``height_m``: for height^2 rCSA.
    ``tta`` and ``all_levels`` shape the segmentation (:func:`run_scan` only; ``rcsa measure``
    segments nothing but a missing vertebral body). ``seg_model``: the ``metadata.json`` of the
    segmentation model (None = the shipped one), to pin a model across a study, e.g.
    ``src/rcsa/models/previous/v0.3/metadata.json``; its name and weights' sha256 go into every
    output as for the shipped one.
    """

    load: LoadOptions = field(default_factory=LoadOptions)
    level_specs: tuple[str, ...] = ()
    levels_file: Path | None = None
    height_m: float | None = None
    tta: bool = False
    all_levels: bool = False
    seg_model: Path | None = None

    def __post_init__(self) -> None:
        # the same rule as rcsa.measure's, checked before any work is done
        check_height_m(self.height_m)
        if self.seg_model is not None:  # workers (processes, a cluster) may run elsewhere
            object.__setattr__(self, "seg_model", Path(self.seg_model).resolve())

    def segmentation_model(self) -> Any:
        """The pinned segmentation model, loaded and checksum-verified (``ModelError`` names
        the file), or None for the shipped one."""
        if self.seg_model is None:
            return None
        from rcsa.segment.model import load_model

        return load_model(self.seg_model)

    def levels(self, scan: str | Path) -> LevelSelection:
        """The manual levels for ``scan``: the levels file's, then the specs' (later win)."""
        sel = parse_level_specs(self.level_specs)
        if self.levels_file is None:
            return sel
        return LevelSelection((*load_levels_file(self.levels_file, scan=scan), *sel.overrides),
                              sel.names)

    def given(self) -> list[str]:
        """The command-line names of the options that differ from their defaults."""
        default = RunOptions()
        names = {"level_specs": "--level", "levels_file": "--levels-file",
                 "height_m": "--height-m", "tta": "--tta", "all_levels": "--all-levels",
                 "seg_model": "--seg-model"}
        out = [opt for attr, opt in names.items() if getattr(self, attr) != getattr(default, attr)]
        loader = {"series_uid": "--series-uid", "correct_tilt": "--no-tilt-correction",
                  "resample_irregular": "--resample-irregular"}
        out += [opt for attr, opt in loader.items()
                if getattr(self.load, attr) != getattr(default.load, attr)]
        return sorted(out)


@dataclass(frozen=True, eq=False)
class ScanResult:
    """Everything one scan produced; written by :func:`write_scan_outputs`."""

    ct: CTVolume
    level_map: LevelMap
    measurements: Measurements
    level_labels: Mapping[str, LevelLabels]
    class_map: ClassMap
    inputs: Mapping[str, str]
    timings_s: Mapping[str, float] = field(default_factory=dict)
    notes: Mapping[str, Any] = field(default_factory=dict)
    #: vertebral heights, Genant grades and trabecular HU (``docs/spine.md``); None = not run
    spine: SpineResult | None = None

    def segmentation_volume(self) -> LabelVolume:
        """Labels on the CT's grid: level slices filled, every other slice 0; class names from
        :attr:`class_map`."""
        ni, nj, nk = self.ct.size_voxels
        vol = np.zeros((nk, nj, ni), np.uint8)
        for ll in self.level_labels.values():
            vol[ll.slice_index] = np.asarray(ll.labels, dtype=np.uint8)
        return LabelVolume(vol, self.ct.geometry, {c.id: c.name for c in self.class_map.classes})


def _json_label_map(path: Path, labels: LabelVolume) -> tuple[LabelVolume, ClassMap]:
    """Remap a label volume with a JSON ``{"<id>": "<rcsa class or other name>"}``."""
    names = read_label_names(path)
    rcsa_names = set(RCSA_CLASSES.names)
    extra = sorted({n for n in names.values() if n not in rcsa_names})
    classes = list(RCSA_CLASSES.classes) + [
        SegClass(len(RCSA_CLASSES) + i, n, None, None) for i, n in enumerate(extra)
    ]
    cmap = ClassMap(tuple(classes))
    lut = np.zeros(int(labels.voxels.max()) + 1 if labels.voxels.size else 1, np.uint8)
    for src_id, name in names.items():
        if 0 <= src_id < lut.size:
            lut[src_id] = cmap.id_of(name)
    vox = lut[labels.voxels]
    return LabelVolume(vox, labels.geometry, {c.id: c.name for c in cmap.classes},
                       labels.source), cmap


def _tag_labels(path: Path, ct: CTVolume) -> tuple[LabelVolume, ClassMap]:
    tag = read_tag(path, reference=ct)
    present = sorted(int(v) for v in np.unique(tag.voxels) if v != 0)
    classes = [SegClass(0, "background", None, None)]
    lut = np.zeros(int(tag.voxels.max()) + 1, np.uint8)
    for new_id, src_id in enumerate(present, start=1):
        classes.append(SegClass(new_id, tag.names.get(src_id, f"tag_label_{src_id}"), None, None))
        lut[src_id] = new_id
    cmap = ClassMap(tuple(classes))
    vox = lut[tag.voxels]
    return LabelVolume(vox, tag.geometry, {c.id: c.name for c in cmap.classes}, tag.source), cmap


def measure_labels(
    path: str | Path,
    labels_path: str | Path,
    options: RunOptions | None = None,
    *,
    label_map: str = "ts_v2",
    body_parts: str | Path | None = None,
    config: RcsaConfig | None = None,
    scan_id: str | None = None,
    body_from_model: bool = True,
    progress: Progress | None = None,
) -> ScanResult:
    """Measure existing masks: load the CT and the labels, find the levels, measure.

    ``options``: loader, level specs, levels file and height (:class:`RunOptions`; its
    ``tta`` and ``all_levels`` do not apply). Bare level names restrict the measured levels.

    ``label_map``: ``ts_v1`` / ``ts_v2`` (TotalSegmentator; autochthon split by rule, psoas from
    iliopsoas, vertebral body from ``body_parts``), ``rcsa`` (rcsa class ids), or the path of a
    JSON ``{"<id>": "<name>"}``. A ``.tag`` labels file is read as a Slice-O-Matic tracing.

    The vertebral body (the rCSA normaliser) comes from the labels when they hold it (e.g.
    ``body_parts`` given); at a level where they do not, ``body_from_model`` fills it from rcsa's
    own segmentation model, on background pixels only, and says so in the segmentation source.
    ``progress`` is called at the start of each stage.
    """
    step = progress or _no_progress
    opts = options or RunOptions()
    t0 = time.perf_counter()
    cfg = config or load_config()
    selection = opts.levels(path)
    step("loading the scan")
    ct = load(path, opts.load)
    t_load = time.perf_counter()
    step("reading the labels")
    labels_path = Path(labels_path)
    notes: dict[str, Any] = {}
    if labels_path.suffix.lower() == ".tag":
        labels, cmap = _tag_labels(labels_path, ct)
        source = f"TAG tracing {labels_path.name}"
    elif label_map in ("ts_v1", "ts_v2", "rcsa"):
        from rcsa.segment.prepare import convert_labels

        raw = load_labels(labels_path, like=ct)
        parts = load_labels(Path(body_parts), like=ct) if body_parts is not None else None
        prepared = convert_labels(ct, raw, label_map, parts)
        labels, cmap = prepared.labels, RCSA_CLASSES
        notes["label_rules"] = dict(prepared.rules)
        source = f"{label_map} labels {labels_path.name}"
    elif label_map.lower().endswith(".json"):
        raw = load_labels(labels_path, like=ct, names={})
        labels, cmap = _json_label_map(Path(label_map), raw)
        source = f"labels {labels_path.name} mapped by {Path(label_map).name}"
    else:
        raise InputError(
            f"unknown label map {label_map!r}: expected {', '.join(LABEL_MAPS)} or a .json file"
        )
    t_labels = time.perf_counter()
    step("finding the levels")
    lm = find_levels(ct, selection.overrides)
    t_levels = time.perf_counter()
    step("measuring")
    per_level = labels_at_levels(labels, cmap, lm, source)
    if selection.names:
        per_level = {n: ll for n, ll in per_level.items() if n in selection.names}
    t_model = time.perf_counter()
    if body_from_model:
        per_level, cmap, body_note = _vertebral_body_from_model(ct, lm, per_level, cmap, cfg,
                                                                opts)
        if body_note:
            source = f"{source}; {body_note}"
            notes["vertebral_body_source"] = body_note
    t_body = time.perf_counter()
    m = measure(ct, lm, per_level, cfg, scan_id=scan_id or _scan_id(path),
                height_m=opts.height_m, segmentation_source=source)
    t_measured = time.perf_counter()
    spine = analyse_spine(ct, lm)
    t_end = time.perf_counter()
    inputs = {"scan": str(path), "labels": str(labels_path), "label_map": str(label_map)}
    if body_parts is not None:
        inputs["body_parts"] = str(body_parts)
    return ScanResult(
        ct, lm, m, per_level, cmap, inputs,
        {"load": t_load - t0, "labels": t_labels - t_load, "levels": t_levels - t_labels,
         "vertebral_body_model": t_body - t_model,
         "measure": (t_measured - t_levels) - (t_body - t_model), "spine": t_end - t_measured,
         "total": t_end - t0},
        notes, spine,
    )


def _has_body(ll: LevelLabels | None, cmap: ClassMap) -> bool:
    if ll is None or VERTEBRAL_BODY not in cmap.names:
        return False
    return bool(np.any(ll.labels == cmap.id_of(VERTEBRAL_BODY)))


def _vertebral_body_from_model(
    ct: CTVolume, lm: LevelMap, per_level: Mapping[str, LevelLabels], cmap: ClassMap,
    cfg: RcsaConfig, opts: RunOptions,
) -> tuple[dict[str, LevelLabels], ClassMap, str]:
    """Fill the vertebral body at body levels whose labels lack it, from rcsa's model.

    Model pixels are written only where the given labels are background, so the user's masks
    are never changed. Returns the new per-level labels, the (possibly extended) class map and
    a note naming the levels and the model ("" when nothing was needed).
    """
    need = [lv for lv in body_levels(cfg)
            if lv in per_level and not _has_body(per_level[lv], cmap)]
    out = dict(per_level)
    if not need:
        return out, cmap, ""
    from rcsa.measure.sources import labels_from_segmentation
    from rcsa.segment import segment

    if VERTEBRAL_BODY not in cmap.names:
        cmap = ClassMap((*cmap.classes, SegClass(max(c.id for c in cmap.classes) + 1,
                                                 VERTEBRAL_BODY, None, None)))
    body_id = cmap.id_of(VERTEBRAL_BODY)
    result = segment(ct, lm, names=need, model=opts.segmentation_model())  # only when needed
    predicted = labels_from_segmentation(result)
    for lv in need:
        pred = predicted[lv]
        body = (pred.labels == pred.class_map.id_of(VERTEBRAL_BODY)) & (per_level[lv].labels == 0)
        labels: npt.NDArray[np.integer] = np.array(per_level[lv].labels, dtype=np.int32)
        labels[body] = body_id
        old = per_level[lv]
        out[lv] = LevelLabels(lv, old.slice_index, labels, cmap, old.source, old.flags)
    info = dict(result.model_info)
    note = (f"vertebral body at {', '.join(need)} from rcsa model {info.get('name', '')} "
            f"(sha256 {str(info.get('sha256', ''))[:12]})")
    return out, cmap, note


def run_scan(
    path: str | Path,
    options: RunOptions | None = None,
    *,
    config: RcsaConfig | None = None,
    scan_id: str | None = None,
    progress: Progress | None = None,
) -> ScanResult:
    """The whole pipeline for one scan: load -> levels -> segment (rcsa's shipped model, or
    ``options.seg_model``) -> measure. Torch is imported here, lazily.

    Segmentation runs on the found levels that the feature table measures (the configured
    muscle levels and the vertebral-body levels, ``rcsa.measure.table.level_names``), on every
    found level with ``options.all_levels``, or on the found levels named bare in the level
    specs. ``progress`` is called at the start of each stage.
    """
    from rcsa.measure.sources import labels_from_segmentation
    from rcsa.segment import segment

    step = progress or _no_progress
    opts = options or RunOptions()
    t0 = time.perf_counter()
    cfg = config or load_config()
    selection = opts.levels(path)
    step("loading the scan")
    ct = load(path, opts.load)
    t_load = time.perf_counter()
    step("finding the levels")
    lm = find_levels(ct, selection.overrides)
    t_levels = time.perf_counter()
    wanted: set[str] | None = None if opts.all_levels else set(level_names(cfg))
    if selection.names:
        wanted = set(selection.names)
    found = [n for n, lv in lm.levels.items() if lv.found and (wanted is None or n in wanted)]
    per_level: dict[str, LevelLabels] = {}
    model_info: dict[str, Any] = {}
    cmap = RCSA_CLASSES
    if found:
        step(f"segmenting {len(found)} level(s): {', '.join(found)}")
        result = segment(ct, lm, names=found, tta=opts.tta, model=opts.segmentation_model())
        per_level = labels_from_segmentation(result)
        cmap = result.class_map
        model_info = dict(result.model_info)
    t_seg = time.perf_counter()
    source = f"rcsa model {model_info.get('name', '')} (sha256 {model_info.get('sha256', '')})"
    step("measuring")
    m = measure(ct, lm, per_level, cfg, scan_id=scan_id or _scan_id(path),
                height_m=opts.height_m, segmentation_source=source.strip())
    t_measured = time.perf_counter()
    step("measuring the vertebral bodies")
    spine = analyse_spine(ct, lm)
    t_end = time.perf_counter()
    flags = {n: list(ll.flags) for n, ll in per_level.items() if ll.flags}
    return ScanResult(
        ct, lm, m, per_level, cmap, {"scan": str(path)},
        {"load": t_load - t0, "levels": t_levels - t_load, "segment": t_seg - t_levels,
         "measure": t_measured - t_seg, "spine": t_end - t_measured, "total": t_end - t0},
        {"model": model_info, "segmentation_flags": flags}, spine,
    )


#: The override a single axial slice needs (the Alberta protocol's slice is at L3).
SINGLE_SLICE_OPTION = "--level L3=slice:0"


def single_slice_hint(n_slices: int, level_map: LevelMap) -> str | None:
    """What to tell the user when a one-slice scan has no level: the option to name it."""
    if n_slices != 1 or any(lv.found for lv in level_map.levels.values()):
        return None
    return ("the scan is a single axial slice, and rcsa cannot tell its vertebral level from "
            "one slice: name it, e.g. " + SINGLE_SLICE_OPTION + " for an L3 slice (the Alberta "
            "protocol's level; slice 0 is the only slice)")


def single_slice_note(result: ScanResult) -> str | None:
    """A one-slice scan measured at the level(s) the user named: say that nothing else is."""
    lm = result.level_map
    found = [n for n, lv in lm.levels.items() if lv.found]
    if result.ct.n_slices != 1 or not found:
        return None
    return (f"single axial slice: measured at {', '.join(found)} as given; every other level is "
            "missing by construction (one slice holds one level)")


def check_measured(result: ScanResult) -> None:
    """Raise :class:`NothingMeasuredError` when not one value was measured, with the reason
    and what to do (a single slice: :data:`SINGLE_SLICE_OPTION`)."""
    m = result.measurements
    if any(r.value is not None for r in m.rows):
        return
    scan = result.inputs.get("scan") or None
    lm = result.level_map
    hint = single_slice_hint(result.ct.n_slices, lm)
    if hint is not None:
        raise NothingMeasuredError(f"nothing measured: {hint}", scan)
    found = [n for n, lv in lm.levels.items() if lv.found]
    if not found:
        why = sorted({lv.reason for lv in lm.levels.values() if lv.reason})
        raise NothingMeasuredError(
            "nothing measured: no measurement level found"
            + (f" ({'; '.join(why)})" if why else "")
            + "; check the scan's coverage with `rcsa levels PATH --qc levels.png`, or give "
            "the levels with --level NAME=slice:K (e.g. --level L3=slice:72) or --levels-file",
            scan)
    raise NothingMeasuredError(
        f"nothing measured: no structure was measured on the levels found ({', '.join(found)}); "
        "check the labels / segmentation (QC with `rcsa segment`)", scan)


def to_folder(
    out_dir: str | Path, overwrite: bool, compute: Callable[[], ScanResult],
    progress: Progress | None = None,
) -> ScanResult:
    """Refuse a non-empty ``out_dir`` before any work, run ``compute``, write the folder.

    A result without a single measured value is refused (:func:`check_measured`) and nothing
    is written.
    """
    check_output_dir(Path(out_dir), overwrite)
    result = compute()
    check_measured(result)
    (progress or _no_progress)(f"writing {out_dir}")
    write_scan_outputs(result, out_dir, overwrite=overwrite)
    return result


def run_to_folder(path: str | Path, out_dir: str | Path, overwrite: bool = False,
                  progress: Progress | None = None, options: RunOptions | None = None, *,
                  config: RcsaConfig | None = None) -> ScanResult:
    """``rcsa run``: :func:`run_scan` written to ``out_dir``."""
    return to_folder(
        out_dir, overwrite,
        lambda: run_scan(path, options, config=config, progress=progress), progress)


def measure_to_folder(path: str | Path, labels_path: str | Path, out_dir: str | Path,
                      overwrite: bool = False, progress: Progress | None = None,
                      options: RunOptions | None = None, *, label_map: str = "ts_v2",
                      body_parts: str | Path | None = None, config: RcsaConfig | None = None,
                      body_from_model: bool = True) -> ScanResult:
    """``rcsa measure``: :func:`measure_labels` written to ``out_dir``."""
    return to_folder(
        out_dir, overwrite,
        lambda: measure_labels(path, labels_path, options, label_map=label_map,
                               body_parts=body_parts, config=config,
                               body_from_model=body_from_model, progress=progress),
        progress)


def _scan_id(path: str | Path) -> str:
    p = Path(path)
    name = p.name
    for suffix in (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd", ".dcm"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


# ------------------------------------------------------------------------------------------
# writing (the folder itself: rcsa.runfolder)
# ------------------------------------------------------------------------------------------
def _level_lines(result: ScanResult, level: str) -> list[str]:
    m = result.measurements
    lines = []
    conf = {(r.structure, r.side): r.value for r in m.rows
            if r.level == level and r.quantity == "seg_confidence" and r.value is not None}
    review = {(r.structure, r.side) for r in m.rows
              if r.level == level and r.quantity == "seg_needs_review" and r.value}
    for r in m.rows:
        if r.level == level and r.quantity == "csa_mm2" and r.value is not None and \
                r.side in ("left", "right", ""):
            line = f"{r.structure} {r.side}: {r.value:.0f} mm2".replace("  ", " ")
            c = conf.get((r.structure, r.side))
            if c is not None:
                line += f", confidence {c:.2f}"
                if (r.structure, r.side) in review:
                    line += " NEEDS REVIEW"
            lines.append(line)
    lines += [f"{s} {side}: not found, NEEDS REVIEW" for (s, side) in sorted(review)
              if not conf.get((s, side))]
    return lines


def run_content(result: ScanResult) -> RunContent:
    """What :func:`write_scan_outputs` writes: the result with its QC image titles and lines."""
    m = result.measurements
    overlays = []
    for name, ll in result.level_labels.items():
        lv = result.level_map.levels[name]
        overlays.append(Overlay(
            name, ll.slice_index, ll.labels, ll.class_map,
            title=f"{name}: slice {ll.slice_index}, z {lv.z_mm:.1f} mm ({ll.source})",
            lines=tuple(_level_lines(result, name))))
    return RunContent(
        ct=result.ct, segmentation=result.segmentation_volume(), class_map=result.class_map,
        overlays=tuple(overlays), level_map=result.level_map,
        level_map_title=f"rcsa levels: {m.scan_id}", measurements=m,
        record=RunRecord(result.inputs, result.notes, result.timings_s),
        spine=result.spine, spine_title=f"rcsa spine: {m.scan_id} (sagittal, anterior left)")


def write_scan_outputs(result: ScanResult, out_dir: str | Path, overwrite: bool = False) -> Path:
    """Write the run folder (:func:`rcsa.runfolder.write_run_folder`: atomic, refuses a
    non-empty ``out_dir`` unless ``overwrite``)."""
    return write_run_folder(run_content(result), out_dir, overwrite=overwrite)
