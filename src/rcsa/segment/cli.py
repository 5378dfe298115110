"""CLI commands of the segmentation package, registered on the main ``rcsa`` app.

``rcsa prepare-training``, ``rcsa prepare-pseudo``, ``rcsa train``, ``rcsa ensemble`` and
``rcsa segment``.
Heavy imports (torch, MONAI) happen inside the commands, so ``rcsa --help`` and ``rcsa info``
stay fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from rcsa.cli_options import (
    Fail,
    IrregularOpt,
    NoTiltOpt,
    OverwriteDirOpt,
    ScanArg,
    SegmentLevelsOpt,
    SeriesUidOpt,
    TtaOpt,
    load_options,
)
from rcsa.errors import InputError

if TYPE_CHECKING:  # imported when a command runs, not for `rcsa --help`
    from rcsa.io import CTVolume
    from rcsa.levels.override import LevelSelection
    from rcsa.levels.types import Level, LevelMap

out = Console()
err = Console(stderr=True)


def segment_levels(ct: CTVolume, selection: LevelSelection
                   ) -> tuple[LevelMap | dict[str, Level], list[str]]:
    """The levels ``rcsa segment`` works on, from its parsed ``--levels`` specs (the one syntax
    of :func:`rcsa.levels.override.parse_level_specs`), and the names that restrict them.

    Specs that place levels (``L3=72``, ``L3=slice:72``, ``L3=z:-412``) give exactly those
    levels, without level detection; otherwise the automatic level map
    (``rcsa.levels.find_levels``), restricted to the bare names given.
    """
    from rcsa.levels import find_levels
    from rcsa.levels.override import apply_overrides

    if selection.overrides:
        return apply_overrides(ct, {}, selection.overrides), list(selection.names)
    return find_levels(ct), list(selection.names)


def register(app: typer.Typer, fail: Fail) -> None:
    """Add the segmentation commands to ``app``; ``fail`` maps exceptions to exit codes."""

    @app.command("prepare-training")
    def prepare_training_cmd(
        image: Annotated[Path, typer.Argument(help="CT (NIfTI/NRRD/MHA file or DICOM folder).")],
        labels: Annotated[Path, typer.Argument(help="TotalSegmentator label volume.")],
        out_dir: Annotated[Path, typer.Option("--out", help="Output folder.")],
        label_map: Annotated[
            str, typer.Option("--label-map", help="ts_v1 | ts_v2 (TotalSegmentator 'total').")
        ] = "ts_v2",
        parts: Annotated[
            Path | None,
            typer.Option("--parts", help="Vertebral body (1) / posterior element (2) mask."),
        ] = None,
        name: Annotated[str, typer.Option("--name", help="File name prefix.")] = "subject",
    ) -> None:
        """Convert TotalSegmentator labels to the rcsa class map (+ QC PNGs).

        The multifidus / erector spinae split is RULE-DERIVED (docs/segment.md)."""
        try:
            from rcsa.segment.prepare import SPLIT_NOTE, prepare_training

            res = prepare_training(image, labels, label_map, out_dir, parts=parts, name=name)
        except Exception as exc:
            raise fail(exc) from None
        out.print(f"wrote {res.labels_path} ({len(res.qc_paths)} QC images)", highlight=False)
        for k, v in res.class_voxels.items():
            if k != "background":
                out.print(f"  {k}: {v} voxels", highlight=False)
        err.print(f"[yellow]note:[/] {SPLIT_NOTE}", highlight=False, soft_wrap=True)

    @app.command("prepare-pseudo")
    def prepare_pseudo_cmd(
        scan: ScanArg,
        out_dir: Annotated[Path, typer.Option("--out", help="Output folder (a prepared "
                                              "training subject).")],
        model: Annotated[
            Path | None, typer.Option("--model", help="metadata.json of the model that makes "
                                      "the pseudo-labels (default: the shipped one).")
        ] = None,
        levels: SegmentLevelsOpt = None,
        agreement: Annotated[
            float, typer.Option("--agreement", help="Keep a pixel where every test-time pass "
                                "agrees and the mean probability is at least this.")
        ] = 0.9,
        per_level: Annotated[
            int, typer.Option("--slices-per-level", help="Slices spread over each level's "
                              "slab (half-way to the neighbouring levels).")
        ] = 5,
        name: Annotated[str, typer.Option("--name", help="Subject name / file prefix.")
                        ] = "pseudo",
        series_uid: SeriesUidOpt = None,
        no_tilt_correction: NoTiltOpt = False,
        resample_irregular: IrregularOpt = False,
        overwrite: OverwriteDirOpt = False,
    ) -> None:
        """Pseudo-labels of an unlabelled scan for self-training (docs/segment.md).

        Kept only where the flip / zoom test-time passes agree and the anatomical rules
        hold; every other pixel is ignored (never relabelled). Writes a subject for
        `rcsa train` (manifest.csv row, label map rcsa) with QC images."""
        try:
            from rcsa.io import load
            from rcsa.levels.override import parse_level_specs
            from rcsa.levels.types import LevelMap
            from rcsa.runfolder import check_output_dir
            from rcsa.segment.infer import level_slices
            from rcsa.segment.postprocess import gluteal_ceiling
            from rcsa.segment.pseudo import model_predictor, pseudo_labels, write_pseudo_subject

            selection = parse_level_specs(levels or (), "--levels")
            check_output_dir(out_dir, overwrite)
            if per_level < 1:
                raise InputError(f"--slices-per-level {per_level}: must be at least 1")
            ct = load(scan, load_options(series_uid, no_tilt_correction, resample_irregular))
            level_map, names = segment_levels(ct, selection)
            pairs = dict(level_slices(level_map, names or None))
            ceiling = gluteal_ceiling(level_map if isinstance(level_map, LevelMap) else None,
                                      abs(float(ct.spacing_mm[2])), int(ct.voxels.shape[0]))
            pl = pseudo_labels(ct, pairs, model_predictor(model), agreement=agreement,
                               slices_per_level=per_level, ceiling=ceiling)
            doc = write_pseudo_subject(pl, ct, scan, out_dir, name=name, overwrite=overwrite)
        except Exception as exc:
            raise fail(exc) from None
        summ = doc["pseudo"]["summary"]
        out.print(f"wrote {out_dir / (name + '_labels.nii.gz')} ({summ['slices']} slices, "
                  f"model sha256 {str(doc['pseudo']['model'].get('sha256'))[:12]})",
                  highlight=False)
        for k, v in summ["kept_fraction"].items():
            out.print(f"  kept {k}: {v:.3f} of {summ['predicted_px'][k]} px", highlight=False)
        for k, v in summ["structure_slices_removed_by_rule"].items():
            if v:
                out.print(f"  rule {k}: {v} structure-slices", highlight=False)
        err.print("[yellow]note:[/] pseudo-labels are a model's output, not a tracing; "
                  f"read the QC images in {out_dir / 'qc'}", highlight=False, soft_wrap=True)

    @app.command("train")
    def train_cmd(
        manifest: Annotated[
            Path, typer.Option("--manifest", help="CSV: image,labels,label_map[,parts,subject].")
        ],
        out_dir: Annotated[Path, typer.Option("--out", help="Run folder (checkpoints, model).")],
        resume: Annotated[
            bool, typer.Option("--resume", help="Continue from DIR/last.pt.")
        ] = False,
        epochs: Annotated[int, typer.Option("--epochs")] = 40,
        samples: Annotated[int, typer.Option("--samples-per-epoch")] = 160,
        batch_size: Annotated[int, typer.Option("--batch-size")] = 8,
        lr: Annotated[float, typer.Option("--lr")] = 2e-3,
        val: Annotated[
            str, typer.Option("--val-subjects", help="Comma-separated subjects held out.")
        ] = "",
        context: Annotated[
            int, typer.Option("--context-slices", help="0 = 2-D, 1 = 2.5-D (3 channels).")
        ] = 1,
        spacing: Annotated[float, typer.Option("--spacing-mm", help="In-plane spacing.")] = 2.0,
        patch: Annotated[int, typer.Option("--patch", help="Crop size (pixels).")] = 144,
        features: Annotated[
            str, typer.Option("--features", help="BasicUNet features, 6 comma-separated ints.")
        ] = "16,16,32,64,128,16",
        seed: Annotated[int, typer.Option("--seed")] = 0,
        threads: Annotated[int, typer.Option("--threads", help="CPU threads for torch.")] = 1,
        patience: Annotated[
            int, typer.Option("--patience", help="Early stop after N epochs without val gain.")
        ] = 0,
        harmonise: Annotated[
            float,
            typer.Option("--harmonise-fwhm-mm", help="Blur thin slices to this resolution."),
        ] = 0.0,
        max_minutes: Annotated[
            float, typer.Option("--max-minutes", help="Stop after the epoch exceeding this.")
        ] = 0.0,
        swa_epochs: Annotated[
            int, typer.Option("--swa-epochs", help="Export the mean of the last N epochs' "
                              "weights (stochastic weight averaging); 0 = off.")
        ] = 0,
        synth: Annotated[
            str, typer.Option("--synth", help="Label-aware synthetic variation: families "
                              "and / or groups (tissue, acquisition, all), comma-separated; "
                              "see docs/segment.md.")
        ] = "",
        slice_step: Annotated[int, typer.Option("--slice-step", hidden=True)] = 1,
    ) -> None:
        """Train the 2.5-D segmentation network (CPU; CUDA when present)."""
        try:
            from rcsa.segment.data import Preprocessing
            from rcsa.segment.model import DEFAULT_ARCH
            from rcsa.segment.synth import expand
            from rcsa.segment.train import TrainConfig, train

            try:
                families = expand(synth)
            except ValueError as exc:
                raise InputError(f"--synth: {exc}") from exc

            arch = dict(DEFAULT_ARCH)
            try:
                arch["features"] = [int(f) for f in features.split(",")]
            except ValueError:
                raise InputError(f"--features {features!r}: expected 6 comma-separated "
                                 "integers") from None
            cfg = TrainConfig(
                epochs=epochs, samples_per_epoch=samples, batch_size=batch_size, lr=lr,
                seed=seed, threads=threads, slice_step=slice_step, arch=arch,
                val_subjects=tuple(s for s in val.split(",") if s),
                pre=Preprocessing(spacing_mm=spacing, context_slices=context, patch_size=patch,
                                  harmonise_fwhm_mm=harmonise),
                early_stop_patience=patience, max_minutes=max_minutes, swa_epochs=swa_epochs,
                synth=families,
            )
            summary = train(manifest, out_dir, cfg, resume=resume,
                            log=lambda s: err.print(s, highlight=False))
        except Exception as exc:
            raise fail(exc) from None
        out.print(f"model written to {out_dir / 'model'} ({summary['epochs_run']} epochs, "
                  f"{summary['seconds']} s)", highlight=False)

    @app.command("ensemble")
    def ensemble_cmd(
        models: Annotated[list[Path], typer.Argument(
            help="Two or more trained models (metadata.json or its folder), e.g. RUN/model.")],
        out_dir: Annotated[Path, typer.Option("--out", help="New model folder.")],
        name: Annotated[str | None, typer.Option("--name", help="Model name.")] = None,
        needs_review_below: Annotated[float | None, typer.Option(
            "--needs-review-below", min=0.0, max=1.0,
            help="Calibrated agreement threshold recorded in the model (docs/segment.md).")
        ] = None,
    ) -> None:
        """Combine models trained apart (other seeds) into one ensemble model: the mean of
        their probabilities is the prediction, their agreement the confidence."""
        try:
            from rcsa.segment.model import write_ensemble

            meta = write_ensemble(models, out_dir, name=name,
                                  needs_review_below=needs_review_below)
        except Exception as exc:
            raise fail(exc) from None
        out.print(f"ensemble of {len(models)} models written to {meta.parent}", highlight=False)

    @app.command("segment")
    def segment_cmd(
        path: Annotated[Path, typer.Argument(help="CT: DICOM folder/file or NIfTI/NRRD/MHA.")],
        out_dir: Annotated[Path, typer.Option("--out", help="Output folder.")],
        levels: SegmentLevelsOpt = None,
        model: Annotated[
            Path | None, typer.Option("--model", help="metadata.json of another model.")
        ] = None,
        tta: TtaOpt = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print the summary JSON.")] = False,
        series_uid: SeriesUidOpt = None,
        no_tilt_correction: NoTiltOpt = False,
        resample_irregular: IrregularOpt = False,
        overwrite: OverwriteDirOpt = False,
    ) -> None:
        """Segment the muscles and vertebral body on each level's slice; write NIfTI + QC.

        Without --levels: every level rcsa.levels finds."""
        try:
            from rcsa.io import load
            from rcsa.levels.override import parse_level_specs
            from rcsa.runfolder import check_output_dir
            from rcsa.segment.infer import segment, write_outputs
            from rcsa.segment.model import load_model

            selection = parse_level_specs(levels or (), "--levels")  # before any work
            check_output_dir(out_dir, overwrite)
            ct = load(path, load_options(series_uid, no_tilt_correction, resample_irregular))
            level_map, names = segment_levels(ct, selection)
            if not level_map:
                raise InputError("no level found in the scan: pass --levels NAME=SLICE,...")
            m = load_model(model) if model is not None else None
            result = segment(ct, level_map, names=names or None, model=m, tta=tta)
            summary = write_outputs(result, ct, out_dir, overwrite=overwrite)
        except Exception as exc:
            raise fail(exc) from None
        if as_json:
            sys.stdout.write(json.dumps(summary, indent=2) + "\n")
            return
        for name, d in summary["levels"].items():
            areas = ", ".join(f"{k} {v:.0f}" for k, v in d["areas_mm2"].items())
            out.print(f"{name} (k={d['slice_index']}): {areas} mm^2", highlight=False)
            for f in d["flags"]:
                err.print(f"[yellow]QC flag[/] {name}: {f}", highlight=False)
        out.print(f"wrote {summary['segmentation']} and {len(summary['qc'])} QC image(s)",
                  highlight=False)
