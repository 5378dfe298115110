"""``rcsa screen``: one patient's preoperative report (HTML + PDF + JSON) from a scan or from an
existing ``rcsa run`` folder.

Output folder (``docs/screen.md``)::

    report.html    self-contained page (images embedded, no scripts, no network)
    report.pdf     the same page printed by WeasyPrint (absent with --no-pdf)
    report.json    every number shown, at full precision, plus the inputs and their sources
    nomogram.png   the model's nomogram with the patient marked (when the model can score)
    run/           the rcsa run folder (only when PATH is a scan)

Everything is written in a staging folder beside DIR and moved into place at the end; a
non-empty DIR is replaced only with ``overwrite``; inputs are never modified.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rcsa.config import RcsaConfig, load_config
from rcsa.errors import InputError, InputNotFoundError
from rcsa.measure import wide_columns
from rcsa.nomogram.spec import ModelSpec, load_spec
from rcsa.outputs import staged_folder
from rcsa.report.content import ReportRun, build_document, feature_reasons, read_run_folder
from rcsa.report.inputs import ClinicalInputs, collect_inputs, resolve_predictors
from rcsa.report.render import PDF_ENGINE, pdf_engine, render_html, render_pdf
from rcsa.runfolder import check_output_dir, is_run_folder, open_run_folder
from rcsa.runfolder.names import RUN_JSON

if TYPE_CHECKING:
    from rcsa.pipeline import RunOptions


@dataclass(frozen=True)
class ScreenResult:
    """What :func:`screen` wrote, and the report document."""

    out_dir: Path
    html: Path
    json: Path
    pdf: Path | None
    pdf_pages: int | None
    document: dict[str, Any]
    warnings: tuple[str, ...] = ()


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def check_paths(path: Path, out_dir: Path) -> None:
    """Refuse an output folder that is, contains or lies inside the input (never touch it)."""
    src, out = path.resolve(), out_dir.resolve()
    if _inside(src, out):
        raise InputError(f"the output folder {out_dir} holds the input; choose another --out",
                         path)
    if path.is_dir() and _inside(out, src):
        raise InputError(f"the output folder {out_dir} lies inside the input folder; choose "
                         "another --out", path)


def _strip_images(doc: dict[str, Any]) -> dict[str, Any]:
    """``report.json``: the document without the embedded PNG data URIs."""
    out = copy.deepcopy(doc)
    out.pop("nomogram_image", None)
    if out.get("spine"):
        out["spine"].pop("image", None)
    out["qc"].pop("level_map_image", None)
    for o in out["qc"]["overlays"]:
        o.pop("image", None)
    return out


def _identifiers_from_run(run: ReportRun) -> tuple[dict[str, str | None] | None, str | None]:
    """Identifiers for ``--show-phi`` from a run folder: re-read the header of the scan that
    ``run.json`` records (run folders store no identifiers)."""
    scan = run.run.get("inputs", {}).get("scan")
    if run.run.get("scan", {}).get("format") != "dicom":
        return None, None
    if not scan or not Path(scan).exists():
        return None, f"the scan recorded in {RUN_JSON} ({scan}) is not readable here"
    from rcsa.io import patient_identifiers

    return patient_identifiers(open_run_folder(run.path).load_scan()), None


def screen(
    path: str | Path,
    out_dir: str | Path,
    *,
    model: str | Path | None = None,
    assignments: Sequence[str] = (),
    clinical: str | Path | None = None,
    show_phi: bool = False,
    overwrite: bool = False,
    pdf: bool = True,
    config: RcsaConfig | None = None,
    options: RunOptions | None = None,
) -> ScreenResult:
    """Run the pipeline on one scan (or read an ``rcsa run`` folder), merge the clinical
    values, score with ``model`` and write the report into ``out_dir``.

    ``options`` go to :func:`rcsa.pipeline.run_scan` (levels, height, loader options). Inputs
    that cannot be used (unknown field, unparsable value, bad spec) raise before any work; a
    predictor that is simply missing gives a report without a score that lists it.
    """
    from rcsa.pipeline import RunOptions, run_scan, write_scan_outputs

    src, out = Path(path), Path(out_dir)
    if not src.exists():
        raise InputNotFoundError("no such file or folder", src)
    check_paths(src, out)
    check_output_dir(out, overwrite)
    if pdf:
        pdf_engine()  # a missing PDF engine fails here, before the pipeline runs
    spec: ModelSpec | None = load_spec(model) if model is not None else None
    from_run = is_run_folder(src)
    run_options = options or RunOptions()
    scan_only = run_options.given()
    if from_run and scan_only:
        raise InputError(f"{', '.join(scan_only)} apply to a scan, not to an rcsa run folder",
                         src)
    # check names and values now (the measured columns are known before the scan is run)
    cfg = config or load_config()
    pre = collect_inputs(assignments, clinical)
    resolve_predictors(spec, pre, dict.fromkeys(wide_columns(cfg)), {})

    warnings: list[str] = []
    with staged_folder(out) as stage:
        identifiers: dict[str, str | None] | None = None
        acquisition: dict[str, Any] | None = None
        if from_run:
            run = read_run_folder(src)
            if show_phi:
                identifiers, note = _identifiers_from_run(run)
                if note:
                    warnings.append(f"--show-phi: {note}")
        else:
            result = run_scan(src, run_options, config=cfg)
            write_scan_outputs(result, stage / "run")
            run = read_run_folder(stage / "run")
            acquisition = dict(result.ct.source.acquisition)
            if show_phi:
                from rcsa.io import patient_identifiers

                identifiers = patient_identifiers(result.ct)
        inputs: ClinicalInputs = collect_inputs(assignments, clinical, scan_id=run.scan_id)
        preds = resolve_predictors(spec, inputs, run.wide, feature_reasons(run.wide))
        doc = build_document(run, spec, inputs, preds, identifiers=identifiers,
                             acquisition=acquisition, show_phi=show_phi)
        doc["run_folder"] = str(src) if from_run else "run"
        html = render_html(doc)
        (stage / "report.html").write_text(html, encoding="utf-8")
        pages: int | None = None
        if pdf:
            pages = render_pdf(html, stage / "report.pdf")
        if doc["nomogram_image"]:
            png = base64.b64decode(doc["nomogram_image"].split(",", 1)[1])
            (stage / "nomogram.png").write_bytes(png)
        json_doc = _strip_images(doc)
        json_doc["outputs"] = {
            "html": "report.html",
            "pdf": "report.pdf" if pdf else None,
            "pdf_engine": PDF_ENGINE if pdf else None,
            "pdf_pages": pages,
            "pdf_note": None if pdf else "not written: --no-pdf",
            "nomogram_png": "nomogram.png" if doc["nomogram_image"] else None,
            "images": "embedded in report.html; sources in the run folder's qc/",
        }
        json_doc["warnings"] = warnings
        (stage / "report.json").write_text(
            json.dumps(json_doc, indent=2, default=str) + "\n", encoding="utf-8")
    return ScreenResult(out, out / "report.html", out / "report.json",
                        out / "report.pdf" if pdf else None, pages, json_doc, tuple(warnings))
