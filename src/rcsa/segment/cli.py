"""CLI commands of the segmentation package, registered on the main ``rcsa`` app.

``rcsa prepare-training``, ``rcsa train`` and ``rcsa segment``. Heavy imports (torch, MONAI)
happen inside the commands, so ``rcsa --help`` and ``rcsa info`` stay fast.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from rcsa.errors import InputError

out = Console()
err = Console(stderr=True)


def parse_levels(spec: str) -> tuple[dict[str, int], list[str]]:
    """``"L3=72,L4=62"`` -> ({"L3": 72, "L4": 62}, []); bare names ``"L3,L4"`` restrict."""
    explicit: dict[str, int] = {}
    names: list[str] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        if "=" in part:
            name, _, value = part.partition("=")
            value = value.strip().removeprefix("slice:")
            try:
                explicit[name.strip()] = int(value)
            except ValueError as exc:
                raise InputError(f"--levels: {part!r} is not NAME=SLICE_INDEX") from exc
        else:
            names.append(part)
    return explicit, names


def _detect_levels(ct: Any) -> Any:
    """The automatic level map (``rcsa.levels.find_levels``)."""
    from rcsa.levels import find_levels

    return find_levels(ct)


def register(app: typer.Typer, fail: Callable[[BaseException], typer.Exit]) -> None:
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
            arch["features"] = [int(f) for f in features.split(",")]
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

    @app.command("segment")
    def segment_cmd(
        path: Annotated[Path, typer.Argument(help="CT: DICOM folder/file or NIfTI/NRRD/MHA.")],
        out_dir: Annotated[Path, typer.Option("--out", help="Output folder.")],
        levels: Annotated[
            str | None,
            typer.Option(
                "--levels",
                help="NAME=SLICE,... (canonical slice index), or level names to restrict the "
                "automatic level map (default: every level found by rcsa.levels).",
            ),
        ] = None,
        model: Annotated[
            Path | None, typer.Option("--model", help="metadata.json of another model.")
        ] = None,
        tta: Annotated[bool, typer.Option("--tta/--no-tta", help="Left-right flip TTA.")] = True,
        as_json: Annotated[bool, typer.Option("--json", help="Print the summary JSON.")] = False,
        overwrite: Annotated[
            bool, typer.Option("--overwrite", help="Replace a non-empty output folder.")
        ] = False,
    ) -> None:
        """Segment the muscles and vertebral body on each level's slice; write NIfTI + QC."""
        try:
            from rcsa.io import load
            from rcsa.runfolder import check_output_dir
            from rcsa.segment.infer import segment, write_outputs
            from rcsa.segment.model import load_model

            check_output_dir(out_dir, overwrite)  # before any work
            ct = load(path)
            explicit, names = parse_levels(levels or "")
            level_map: Any = explicit or _detect_levels(ct)
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
