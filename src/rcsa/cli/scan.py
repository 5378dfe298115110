"""``rcsa run`` (scan to feature table) and ``rcsa measure`` (existing masks), with the
progress display they share."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from rcsa.cli.main import State
from rcsa.cli_options import (
    AllLevelsOpt,
    ConfigOpt,
    Fail,
    HeightOpt,
    IrregularOpt,
    LevelOpt,
    LevelsFileOpt,
    NoTiltOpt,
    OutDirOpt,
    OverwriteDirOpt,
    ScanArg,
    SegModelOpt,
    SeriesUidOpt,
    TtaOpt,
    load_options,
)

out = Console()
err = Console(stderr=True)


class Stages:
    """Progress of a long command (``rcsa run``, ``rcsa measure``) on stderr.

    On a terminal: a Rich spinner naming the stage that runs and its elapsed time, and one line
    per finished stage with its duration. Elsewhere (a pipe, a log file, a test) nothing is
    printed, so stderr keeps only warnings and the one-line error. Either way the durations are
    kept for the closing ``wrote DIR in ... s`` line, whose total is the wall time since rcsa
    started (``State.started``).
    """

    def __init__(self, console: Console) -> None:
        self.console = console
        self.started = State.started if State.started is not None else time.perf_counter()
        self.done: list[tuple[str, float]] = []
        self._stage: str | None = None
        self._t = self.started
        self._status: Any = None

    def __enter__(self) -> Stages:
        self._stage = "starting rcsa"  # since rcsa's first import: Python, numpy, Typer, Rich
        if self.console.is_terminal:
            self._status = self.console.status("starting rcsa ...", spinner="dots")
            self._status.start()
        return self

    def __call__(self, stage: str) -> None:
        self._finish()
        self._stage, self._t = stage, time.perf_counter()
        if self._status is not None:
            self._status.update(f"{stage} ...")

    def _finish(self) -> None:
        if self._stage is None:
            return
        dt = time.perf_counter() - self._t
        self.done.append((self._stage, dt))
        if self._status is not None:
            self.console.print(f"[green]done[/] {self._stage} [dim]({dt:.1f} s)[/]",
                               highlight=False, soft_wrap=True)
        self._stage = None

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self._finish()
        if self._status is not None:
            self._status.stop()

    def wall_s(self) -> float:
        return time.perf_counter() - self.started

    def summary(self) -> str:
        """``9.5 s (start-up 5.2 s, pipeline 3.6 s, writing 0.7 s)``."""
        start = sum(dt for name, dt in self.done if name in ("starting rcsa",
                                                              "importing the pipeline"))
        write = sum(dt for name, dt in self.done if name.startswith("writing"))
        work = sum(dt for _, dt in self.done) - start - write
        return (f"{self.wall_s():.1f} s (start-up {start:.1f} s, pipeline {work:.1f} s, "
                f"writing {write:.1f} s)")


def print_measurements(m: Any) -> None:
    table = Table(title=f"rcsa: {m.scan_id}", title_justify="left")
    table.add_column("level", no_wrap=True, min_width=5)
    table.add_column("structure", overflow="fold", min_width=9)
    table.add_column("side", no_wrap=True, min_width=4)
    for col in ("CSA mm2", "rCSA", "HU", "fat %"):  # numbers are never squeezed away
        table.add_column(col, justify="right", no_wrap=True, min_width=len(col))
    by_key: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in m.rows:
        by_key.setdefault((r.level, r.structure, r.side), {})[r.quantity] = r
    notes: list[str] = []
    for (lv, structure, side), q in by_key.items():
        if "csa_mm2" not in q:
            continue

        def fmt(name: str, digits: int, q: dict[str, Any] = q) -> str:
            r = q.get(name)
            return "" if r is None or r.value is None else f"{r.value:.{digits}f}"

        csa = q["csa_mm2"]
        mark = ""
        note = csa.reason if csa.value is None else csa.flag
        if note and side != "both":
            notes.append(f"{lv} {structure}{' ' + side if side else ''}: {note}")
            mark = f" [{len(notes)}]"
        table.add_row(lv, structure, side + mark, fmt("csa_mm2", 0), fmt("rcsa", 3),
                      fmt("mean_hu", 1), fmt("fat_pct", 1))
    out.print(table)
    for n, text in enumerate(notes, start=1):
        out.print(f"[{n}] {text}", highlight=False, soft_wrap=True)
    for w in m.warnings:
        err.print(f"[yellow]warning:[/] {w}", highlight=False, soft_wrap=True)


def _spine_lines(spine: Any) -> list[str]:
    """Two lines on the vertebral bodies (``docs/spine.md``): the fracture count with the
    vertebrae that were not graded, and the bone attenuation with its band."""
    if spine is None:
        return []
    if spine.fractured_vertebrae_n is None:
        head = "spine: no vertebra graded"
    else:
        graded = [spine[v] for v in spine.fractured]
        which = ", ".join(f"{v.name} grade {v.genant_grade} {v.morphology}"
                          + (" (near a threshold: check)" if v.grade_review_reason else "")
                          for v in graded) or "none"
        head = (f"spine: {spine.fractured_vertebrae_n} of {len(spine.graded)} graded "
                f"vertebra(e) with Genant grade >= 1 ({which})")
    if spine.not_graded:
        head += f"; not graded: {', '.join(spine.not_graded)} (the count may be too low)"
    lines = [head + "; check qc/spine.png"]
    if spine.bone_attenuation_hu is not None:
        lines.append(f"bone attenuation: {spine.bone_attenuation_vertebra} trabecular "
                     f"{spine.bone_attenuation_hu:.0f} HU, {spine.bone_attenuation_band} "
                     "(an attenuation band, not a diagnosis)")
    return lines


def _print_scan_result(result: Any) -> None:
    from rcsa.pipeline import single_slice_note

    print_measurements(result.measurements)
    for line in _spine_lines(result.spine):
        out.print(line, highlight=False, soft_wrap=True)
    note = single_slice_note(result)
    if note:
        err.print(f"[yellow]warning:[/] {note}", highlight=False, soft_wrap=True)


def register(app: typer.Typer, fail: Fail) -> None:
    """Add ``rcsa run`` and ``rcsa measure`` to ``app``."""

    @app.command("run")
    def run_cmd(
        path: ScanArg,
        out_dir: OutDirOpt,
        level: LevelOpt = None,
        levels_file: LevelsFileOpt = None,
        height_m: HeightOpt = None,
        config_file: ConfigOpt = None,
        tta: TtaOpt = False,
        all_levels: AllLevelsOpt = False,
        seg_model: SegModelOpt = None,
        overwrite: OverwriteDirOpt = False,
        series_uid: SeriesUidOpt = None,
        no_tilt_correction: NoTiltOpt = False,
        resample_irregular: IrregularOpt = False,
    ) -> None:
        """Scan to feature table: load, find levels, segment, measure; write DIR (docs/measure.md).

        A single axial slice (e.g. an L3 slice) needs its level: --level L3=slice:0.
        """
        try:
            with Stages(err) as stages:
                stages("importing the pipeline")
                from rcsa.config import load_config
                from rcsa.pipeline import RunOptions, run_to_folder

                options = RunOptions(
                    load=load_options(series_uid, no_tilt_correction, resample_irregular),
                    level_specs=tuple(level or ()), levels_file=levels_file, height_m=height_m,
                    tta=tta, all_levels=all_levels, seg_model=seg_model)
                result = run_to_folder(path, out_dir, overwrite, progress=stages,
                                       options=options, config=load_config(config_file))
        except Exception as exc:
            raise fail(exc) from None
        _print_scan_result(result)
        out.print(f"wrote {out_dir} in {stages.summary()}", highlight=False, soft_wrap=True)

    @app.command("measure")
    def measure_cmd(
        path: Annotated[
            Path,
            typer.Argument(help="The CT: DICOM folder or file, or a NIfTI / NRRD / MHA file.",
                           readable=False),
        ],
        labels: Annotated[
            Path,
            typer.Option(
                "--labels",
                help="Label volume on the CT's grid, or a Slice-O-Matic .tag file.",
                readable=False,
            ),
        ],
        out_dir: OutDirOpt,
        label_map: Annotated[
            str,
            typer.Option("--label-map",
                         help="ts_v1 | ts_v2 | rcsa | path of a JSON id -> name map."),
        ] = "ts_v2",
        body_parts: Annotated[
            Path | None,
            typer.Option("--body-parts",
                         help="Vertebral body (1) / posterior elements (2) volume.",
                         readable=False),
        ] = None,
        body_from_model: Annotated[
            bool,
            typer.Option(
                "--body-from-model/--no-body-from-model",
                help="Where the labels hold no vertebral body (no --body-parts), take it from "
                     "rcsa's own segmentation model (on background pixels only); recorded in "
                     "the output.",
            ),
        ] = True,
        level: LevelOpt = None,
        levels_file: LevelsFileOpt = None,
        height_m: HeightOpt = None,
        config_file: ConfigOpt = None,
        seg_model: SegModelOpt = None,
        overwrite: OverwriteDirOpt = False,
        series_uid: SeriesUidOpt = None,
        no_tilt_correction: NoTiltOpt = False,
        resample_irregular: IrregularOpt = False,
    ) -> None:
        """Measure existing masks (manual, TotalSegmentator, other tools) into the rcsa table.

        A single axial slice with a TAG tracing needs its level: --level L3=slice:0.
        """
        try:
            with Stages(err) as stages:
                stages("importing the pipeline")
                from rcsa.config import load_config
                from rcsa.pipeline import RunOptions, measure_to_folder

                options = RunOptions(
                    load=load_options(series_uid, no_tilt_correction, resample_irregular),
                    level_specs=tuple(level or ()), levels_file=levels_file, height_m=height_m,
                    seg_model=seg_model)
                result = measure_to_folder(
                    path, labels, out_dir, overwrite, progress=stages, options=options,
                    label_map=label_map, body_parts=body_parts,
                    config=load_config(config_file), body_from_model=body_from_model,
                )
        except Exception as exc:
            raise fail(exc) from None
        _print_scan_result(result)
        out.print(f"wrote {out_dir} in {stages.summary()}", highlight=False, soft_wrap=True)
