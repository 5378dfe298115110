"""What a screening report says, as one JSON-able document (``report.json``).

The HTML and PDF are rendered from exactly this document, so every number the report shows is
in ``report.json`` (at full precision; the page rounds). Sources: an ``rcsa run`` output folder
(read through :mod:`rcsa.runfolder`), the chosen model spec, and the clinical inputs.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rcsa import __version__, runfolder
from rcsa.anatomy import ANATOMY
from rcsa.errors import InputError, ScoringError
from rcsa.measure.plausibility import PlausibleRange, plausibility_table, reference_range
from rcsa.nomogram.score import Score, score_patient
from rcsa.nomogram.spec import BUILTIN_MODELS, DEMO_DISCLAIMER, MODELS_DIR, ModelSpec
from rcsa.report.inputs import FREE_TEXT_FIELDS, ClinicalInputs, PredictorInput
from rcsa.report.render import data_uri_png, png_data_uri
from rcsa.report.spine import spine_section

REPORT_FORMAT = "rcsa-screen-report"
REPORT_VERSION = "1.0"
#: Acquisition keys shown without --show-phi (dates are identifiers: study_date is not).
ACQUISITION_KEYS = ("manufacturer", "model", "kvp", "convolution_kernel", "slice_thickness_mm",
                    "contrast_agent", "body_part", "series_description", "transfer_syntax")
#: Structure -> label of its report rows; the rows are in this order (the anatomy table's).
STRUCTURE_LABELS: dict[str, str] = ANATOMY.display_names()
TABLE_QUANTITIES = ("csa_mm2", "rcsa", "mean_hu", "fat_pct", "asymmetry_pct")
#: A measured level found with a lower heuristic confidence (``docs/levels.md``) is listed
#: among the checks. A prompt to look at the level map, not a validated threshold.
LEVEL_CONFIDENCE_REVIEW = 0.6


# ------------------------------------------------------------------------------ run folder
@dataclass(frozen=True)
class ReportRun:
    """The parts of an ``rcsa run`` / ``rcsa measure`` output folder that a report uses, as
    plain values (read through :mod:`rcsa.runfolder`)."""

    path: Path
    run: dict[str, Any]
    levels: dict[str, Any]
    wide: dict[str, Any]
    long: list[dict[str, Any]]

    @property
    def scan_id(self) -> str:
        return str(self.wide.get("scan_id") or self.run.get("scan_id") or "")

    def image(self, name: str) -> Path | None:
        return runfolder.RunFolder(self.path).image(name)


def _none(v: Any) -> Any:
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def read_run_folder(path: str | Path) -> ReportRun:
    """Read an output folder of ``rcsa run`` (read-only); typed errors name the missing file."""
    folder = runfolder.open_run_folder(path, require=runfolder.names.REQUIRED_FILES)
    run, levels = folder.record, folder.levels_document
    folder.level_map  # noqa: B018  # a malformed level map is refused here
    wide_frame, long_frame = folder.wide, folder.long
    if len(wide_frame) != 1:
        raise InputError(f"{runfolder.names.FEATURES_CSV} holds {len(wide_frame)} rows; a "
                         "report needs one scan", folder.path)
    wide = {str(k): _none(v) for k, v in wide_frame.iloc[0].to_dict().items()}
    long = [{str(k): _none(v) for k, v in r.items()}
            for r in long_frame.to_dict(orient="records")]
    for r in long:
        for k in ("flag", "reason", "side", "normaliser", "unit"):
            r[k] = "" if r.get(k) is None else str(r[k])
    return ReportRun(folder.path, run, levels, wide, long)


def feature_reasons(wide: Mapping[str, Any]) -> dict[str, str]:
    """Feature column -> the reason its ``<level>_<structure>_reason`` column gives."""
    out: dict[str, str] = {}
    for col, text in wide.items():
        if not col.endswith("_reason") or not text:
            continue
        prefix = col[: -len("_reason")] + "_"
        for c in wide:
            if c.startswith(prefix) and c != col:
                out[c] = str(text)
    return out


# ------------------------------------------------------------------------------ sections

def scan_summary(run: ReportRun, identifiers: Mapping[str, str | None] | None,
                 acquisition: Mapping[str, Any] | None, show_phi: bool) -> dict[str, Any]:
    """Scan facts; identifiers, the input path and dates only with ``show_phi``."""
    scan = run.run.get("scan", {})
    acq = {k: acquisition[k] for k in ACQUISITION_KEYS if acquisition and k in acquisition}
    out: dict[str, Any] = {
        "scan_id": run.scan_id,
        "format": scan.get("format"),
        "size_voxels": scan.get("size_voxels"),
        "spacing_mm": scan.get("spacing_mm"),
        "n_slices": run.levels.get("n_slices"),
        "acquisition": acq,
        "loader_warnings": list(scan.get("loader_warnings", [])),
        "segmentation_source": run.run.get("segmentation_source") or run.wide.get(
            "segmentation_source"),
        "rcsa_version_of_run": run.run.get("rcsa_version"),
        "show_phi": show_phi,
        "identifiers_note": None,
    }
    if show_phi:
        ids = dict(identifiers or {})
        if acquisition and acquisition.get("study_date") and not ids.get("study_date"):
            ids["study_date"] = str(acquisition["study_date"])
        out["identifiers"] = ids
        out["input_path"] = run.run.get("inputs", {}).get("scan")
        if not any(ids.values()):
            out["identifiers_note"] = (
                "no identifiers: the input carries none (NIfTI / NRRD / MHA) or could not be read")
    else:
        out["identifiers"] = None
        out["identifiers_note"] = (
            "patient identifiers, the input path and dates are not shown (rcsa screen "
            "--show-phi shows them)")
    return out


def _range_doc(rng: PlausibleRange | None, ref_numbers: dict[str, int]) -> dict[str, Any] | None:
    if rng is None:
        return None
    for s in rng.sources:
        ref_numbers.setdefault(s, len(ref_numbers) + 1)
    return {
        "text": rng.text(),
        "low": rng.low,
        "high": rng.high,
        "unit": rng.unit,
        "typical": rng.typical,
        "sources": list(rng.sources),
        "source_numbers": [ref_numbers[s] for s in rng.sources],
    }


def _level_order(run: ReportRun) -> dict[str, float]:
    z = {name: lv.get("z_mm") for name, lv in run.levels.get("levels", {}).items()}
    return {k: -float(v) if v is not None else math.inf for k, v in z.items()}


def muscle_table(run: ReportRun) -> tuple[list[dict[str, Any]], list[dict[str, Any]],
                                           dict[str, int]]:
    """Rows per level x structure x side with CSA, rCSA, HU, fat %, asymmetry, flags and the
    plausibility envelopes (with numbered sources); the distinct envelopes; source numbers."""
    grouped: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = {}
    for r in run.long:
        key = (str(r["level"]), str(r["structure"]), str(r["side"]))
        grouped.setdefault(key, {})[str(r["quantity"])] = r
    order = _level_order(run)
    structures = list(STRUCTURE_LABELS)
    sides = ["", "left", "right", "both"]

    def sort_key(k: tuple[str, str, str]) -> tuple[float, int, int]:
        s_idx = structures.index(k[1]) if k[1] in structures else len(structures)
        return (order.get(k[0], math.inf), s_idx, sides.index(k[2]) if k[2] in sides else 9)

    ref_numbers: dict[str, int] = {}
    envelopes: dict[int, dict[str, Any]] = {}
    rows: list[dict[str, Any]] = []
    for key in sorted(grouped, key=sort_key):
        level, structure, side = key
        q = grouped[key]
        if "csa_mm2" not in q:
            continue  # structures the table does not show (extra labels of a label map)
        values = {name: (q[name]["value"] if name in q else None) for name in TABLE_QUANTITIES}
        flags: list[str] = []
        out_of_range: list[str] = []
        ranges: dict[str, Any] = {}
        for name in TABLE_QUANTITIES:
            if name not in q:
                continue
            f = q[name]["flag"].strip()  # one string per quantity ("; "-joined by measure)
            if f and f not in flags:
                flags.append(f)
            rng = reference_range(level, structure, side, name)
            doc = _range_doc(rng, ref_numbers)
            if rng is not None and doc is not None:
                ranges[name] = doc
                envelopes.setdefault(id(rng), {"range": rng, "quantity": name, "rows": []})
                envelopes[id(rng)]["rows"].append(f"{level} {structure} {side}".strip())
                if rng.check(values[name]):
                    out_of_range.append(name)
        review = q.get("seg_needs_review", {}).get("value")
        conf = q.get("seg_confidence", {}).get("value")
        if review:
            flags.append(f"segmentation needs review (confidence {float(conf or 0.0):.2f})")
        csa = q["csa_mm2"]
        rows.append({
            "level": level,
            "structure": structure,
            "structure_label": STRUCTURE_LABELS.get(structure, structure.replace("_", " ")),
            "side": side,
            **values,
            "rcsa_unit": q["rcsa"]["unit"] if "rcsa" in q else "",
            "seg_confidence": conf,
            "flags": flags,
            "out_of_range": out_of_range,
            "reason": csa["reason"] if csa["value"] is None else "",
            "reference_ranges": ranges,
        })
    env_docs = []
    for e in envelopes.values():
        rng = e["range"]
        env_docs.append({
            "structure": rng.structure,
            "quantity": e["quantity"],
            "levels": list(rng.levels) if rng.levels is not None else None,
            "sides": list(rng.sides),
            **(_range_doc(rng, ref_numbers) or {}),
        })
    return rows, env_docs, ref_numbers


def levels_section(run: ReportRun, table_levels: Sequence[str]) -> list[dict[str, Any]]:
    out = []
    for name, lv in run.levels.get("levels", {}).items():
        out.append({
            "name": name,
            "status": lv.get("status"),
            "slice_index": lv.get("slice_index"),
            "z_mm": lv.get("z_mm"),
            "confidence": lv.get("confidence"),
            "method": lv.get("method") or "",
            "reason": lv.get("reason") or "",
            "measured": name in table_levels,
        })
    return out


def qc_section(run: ReportRun, table_levels: Sequence[str]) -> dict[str, Any]:
    seg_flags = run.run.get("notes", {}).get("segmentation_flags", {}) or {}
    overlays = []
    for name in table_levels:
        lv = run.levels.get("levels", {}).get(name, {})
        overlays.append({
            "level": name,
            "slice_index": lv.get("slice_index"),
            "z_mm": lv.get("z_mm"),
            "image": png_data_uri(run.image(name)),
            "segmentation_flags": list(seg_flags.get(name, [])),
        })
    return {"level_map_image": png_data_uri(run.image(runfolder.names.LEVEL_MAP_IMAGE)),
            "overlays": overlays}


def trust_section(run: ReportRun, rows: Sequence[Mapping[str, Any]],
                  levels: Sequence[Mapping[str, Any]],
                  overlays: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Everything that says the numbers may be wrong, in one list, and a one-line verdict."""
    items: list[str] = []
    for lv in levels:
        if lv["measured"] and lv["status"] != "found":
            items.append(f"level {lv['name']} {lv['status']}: {lv['reason']}".rstrip(": "))
        elif lv["measured"] and (lv["confidence"] or 0.0) < LEVEL_CONFIDENCE_REVIEW:
            items.append(f"level {lv['name']}: low confidence {lv['confidence']:.2f} (below "
                         f"{LEVEL_CONFIDENCE_REVIEW}); check the slice on the level map")
    needed = [lv for lv in levels if lv["measured"]]
    for r in rows:
        for f in r["flags"]:
            side = f" {r['side']}" if r["side"] else ""
            items.append(f"{r['level']} {r['structure_label'].lower()}{side}: {f}")
        if r["reason"] and r["side"] != "both":
            side = f" {r['side']}" if r["side"] else ""
            items.append(f"{r['level']} {r['structure_label'].lower()}{side}: no value "
                         f"({r['reason']})")
    for o in overlays:
        items += [f"{o['level']} segmentation: {f}" for f in o["segmentation_flags"]]
    items += [f"levels: {w}" for w in run.levels.get("warnings", [])]
    items += [f"loader: {w}" for w in run.run.get("scan", {}).get("loader_warnings", [])]
    n_flagged = sum(1 for r in rows if r["out_of_range"])
    verdict = ("review needed: " + (f"{len(items)} item(s) below" if items else "")) if items \
        else ("no automatic check raised a flag; the QC overlays must still be reviewed by eye")
    return {
        "verdict": verdict,
        "needs_review": bool(items),
        "checks": items,
        "levels_found": sum(1 for lv in needed if lv["status"] == "found"),
        "levels_needed": len(needed),
        "rows_outside_plausible_range": n_flagged,
    }


def key_muscles(run: ReportRun, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Both-sides CSA / rCSA of each muscle at its primary level (``[levels] muscles``)."""
    primary = run.run.get("config", {}).get("levels", {}).get("muscles", {}) or {}
    out = []
    for muscle, level in primary.items():
        for r in rows:
            if (r["level"], r["structure"], r["side"]) == (level, muscle, "both"):
                out.append({"muscle": muscle, "label": STRUCTURE_LABELS.get(muscle, muscle),
                            "level": level, "csa_mm2": r["csa_mm2"], "rcsa": r["rcsa"],
                            "flagged": bool(r["flags"])})
    return out


def spec_identity(spec: ModelSpec) -> tuple[str, str]:
    """How the report names the model spec: name, version, where it came from (built into
    rcsa, or the spec file's name) and the sha256 of its content; never the path on the
    machine that made the report."""
    digest = hashlib.sha256(
        json.dumps(spec.raw, sort_keys=True, separators=(",", ":"), default=str).encode()
    ).hexdigest()
    builtin = {file: name for name, file in BUILTIN_MODELS.items()}
    src = Path(spec.source) if spec.source else None
    if src is not None and src.name in builtin and src.parent.resolve() == MODELS_DIR.resolve():
        origin = f"built-in model {builtin[src.name]} of rcsa {__version__}"
    elif src is not None:
        origin = f"spec file {src.name}"
    else:
        origin = "spec given in memory"
    return (f"{spec.name} version {spec.model_version} ({origin}; spec format "
            f"{spec.spec_version})", digest)


def model_section(spec: ModelSpec | None) -> dict[str, Any] | None:
    if spec is None:
        return None
    prov = spec.provenance
    identity, digest = spec_identity(spec)
    return {
        "name": spec.name,
        "model_version": spec.model_version,
        "status": spec.status,
        "description": spec.description,
        "intended_use": spec.intended_use,
        "disclaimer": spec.disclaimer,
        "demonstration": is_demonstration(spec),
        "outcome": spec.outcome,
        "outcome_label": spec.outcome_label,
        "citation": spec.citation,
        "spec": identity,
        "spec_sha256": digest,
        "provenance": {k: prov.get(k) for k in
                       ("cohort", "n", "events", "auc_training", "auc_validation",
                        "auc_training_optimism_corrected", "n_validation", "fitted_at")
                       if k in prov},
        "risk_groups": None if spec.risk_groups is None else {
            "on": spec.risk_groups.on,
            "cutoffs": list(spec.risk_groups.cutoffs),
            "labels": list(spec.risk_groups.labels),
        },
        "predictors": [{"name": p.name, "label": p.label, "column": p.column, "unit": p.unit,
                        "type": p.type, "plausible_range": p.plausible_range}
                       for p in spec.predictors],
    }


def is_demonstration(spec: ModelSpec) -> bool:
    return DEMO_DISCLAIMER in ((spec.disclaimer or "").lower(), spec.intended_use.lower())


def score_section(spec: ModelSpec | None, preds: Sequence[PredictorInput]
                  ) -> tuple[dict[str, Any], Score | None]:
    """The score, or ``available: false`` with the reason and the missing inputs."""
    rows: list[dict[str, Any]] = [{
        "name": p.predictor.name,
        "label": p.predictor.label,
        "unit": p.predictor.unit,
        "column": p.predictor.column,
        "measured": p.measured,
        "value": p.value,
        "source": p.source,
        "missing_reason": p.missing_reason,
        "points": None,
    } for p in preds]
    doc: dict[str, Any] = {"available": False, "reason": "", "missing": [], "predictors": rows,
                           "total_points": None, "linear_predictor": None, "probability": None,
                           "risk_group": None, "flags": []}
    if spec is None:
        doc["reason"] = ("no model was chosen (rcsa screen --model SPEC): this report gives "
                         "measurements only")
        return doc, None
    missing = [r for r in rows if r["value"] is None]
    doc["missing"] = [{"name": r["name"], "label": r["label"], "unit": r["unit"],
                       "reason": r["missing_reason"]} for r in missing]
    if not spec.has_coefficients:
        doc["reason"] = (f"model {spec.name!r} has no coefficients (status {spec.status}): it "
                         "describes the predictor structure only and cannot score a patient")
        return doc, None
    if missing:
        doc["reason"] = ("missing input(s): " + ", ".join(r["name"] for r in missing)
                         + "; no value is imputed, so no score is given")
        return doc, None
    try:
        s = score_patient(spec, {p.predictor.name: p.value for p in preds})
    except ScoringError as exc:  # values were parsed already; kept as a safety net
        doc["reason"] = exc.reason
        return doc, None
    for r in rows:
        r["points"] = s.points[r["name"]]
    doc.update(available=True, total_points=s.total_points,
               linear_predictor=s.linear_predictor, probability=s.probability,
               risk_group=s.risk_group, flags=list(s.flags))
    return doc, s


def nomogram_image(spec: ModelSpec | None, s: Score | None) -> str | None:
    """The model's nomogram (patient marked when scored) as a PNG data URI."""
    if spec is None or not spec.has_coefficients:
        return None
    from rcsa.nomogram.plots import nomogram_figure

    fig = nomogram_figure(spec, s)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=130)
    return data_uri_png(buf.getvalue())


def build_document(
    run: ReportRun,
    spec: ModelSpec | None,
    inputs: ClinicalInputs,
    preds: Sequence[PredictorInput],
    *,
    identifiers: Mapping[str, str | None] | None,
    acquisition: Mapping[str, Any] | None,
    show_phi: bool,
    created_at: datetime | None = None,
) -> dict[str, Any]:
    """The whole report as one JSON-able dict (images as PNG data URIs)."""
    rows, envelopes, ref_numbers = muscle_table(run)
    table_levels: list[str] = []
    for r in rows:
        if r["structure"] != "vertebral_body" and r["level"] not in table_levels:
            table_levels.append(r["level"])
    levels = levels_section(run, table_levels)
    qc = qc_section(run, table_levels)
    score, s = score_section(spec, preds)
    refs = plausibility_table().references
    model = model_section(spec)
    banner = None
    if spec is not None and is_demonstration(spec):
        banner = (f"{DEMO_DISCLAIMER.upper()}: the risk model {spec.name!r} was fitted on "
                  "simulated data, not on patients; its risk is not a clinical estimate")
    return {
        "format": REPORT_FORMAT,
        "report_version": REPORT_VERSION,
        "rcsa_version": __version__,
        "created_at": (created_at or datetime.now(UTC)).isoformat(timespec="seconds"),
        "banner": banner,
        "disclaimer": None if spec is None else spec.disclaimer,
        "scan": scan_summary(run, identifiers, acquisition, show_phi),
        "trust": trust_section(run, rows, levels, qc["overlays"]),
        "key_muscles": key_muscles(run, rows),
        "measurements": {
            "normaliser": run.wide.get("rcsa_normaliser"),
            "rows": rows,
            "envelopes": envelopes,
        },
        "references": [{"number": n, "key": k, "citation": refs.get(k, k)}
                       for k, n in sorted(ref_numbers.items(), key=lambda kv: kv[1])],
        "levels": levels,
        "qc": qc,
        "clinical": {
            "file": inputs.file,
            "values": {k: {"value": v.raw, "source": v.source}
                       for k, v in inputs.values.items() if k not in FREE_TEXT_FIELDS},
            "free_text": [{"name": k, "label": FREE_TEXT_FIELDS[k], "value": v}
                          for k, v in inputs.free_text().items()],
        },
        "model": model,
        "score": score,
        "nomogram_image": nomogram_image(spec, s),
        "spine": spine_section(run),
        "run_folder": str(run.path),
    }
