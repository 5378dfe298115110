"""`rcsa screen`: the single-patient preoperative report (issue 9).

The sample scan goes through the whole pipeline once (module fixture); the other reports are
built from its `rcsa run` folder (the fast path). The browser test opens report.html in Debian's
Chromium through Playwright and saves a screenshot under tests/artifacts/ (git-ignored); it is
skipped only when /usr/bin/chromium is absent (CI installs it). The PDF text checks use poppler's
pdftotext / pdfinfo (skipped without poppler-utils; CI installs it); the first-page check reads
WeasyPrint's own layout.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pydicom
import pytest
from typer.testing import CliRunner

from _dicom_factory import copy_sample_series
from rcsa.cli import app
from rcsa.errors import ReportError
from rcsa.nomogram import load_spec
from rcsa.report import screen

runner = CliRunner()
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
XSS = "<script>window.__pwned = 1; alert('x')</script>"
NOTE = f"{XSS} back pain since March"
CLINICAL = ["--set", "fractured_vertebrae_n=2", "--set", "cement_volume_ml=3.5"]
#: Pages of the sample's demonstration report (A4; page breaks before the nomogram, the
#: muscle table, the scan / level map, the spine section and the QC overlays; the muscle
#: table takes 1.2 pages).
EXPECTED_PDF_PAGES = 7


def _expected_probability(features: dict[str, Any], clinical: dict[str, float]) -> float:
    """The demonstration model's probability computed here from the spec's coefficients."""
    spec = load_spec("demo-rbp-simulated").raw
    lp = float(spec["intercept"])
    for p in spec["predictors"]:
        x = clinical[p["name"]] if p["name"] in clinical else float(features[p["column"]])
        lp += float(p["coefficient"]) * x
    return 1 / (1 + math.exp(-lp))


def _files_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory: pytest.TempPathFactory, abdomen: Path) -> Path:
    """The sample scan through `rcsa screen` with the demonstration model."""
    out = tmp_path_factory.mktemp("screen") / "report"
    r = runner.invoke(app, ["screen", str(abdomen / "ct.nii.gz"), "--out", str(out),
                            "-m", "demo-rbp-simulated", *CLINICAL, "--set", f"note={NOTE}"])
    assert r.exit_code == 0, r.output
    assert "DEMONSTRATION - NOT FOR CLINICAL USE" in r.output
    return out


@pytest.fixture(scope="module")
def doc(demo_report: Path) -> dict[str, Any]:
    return dict(json.loads((demo_report / "report.json").read_text()))


def test_report_of_the_sample_scan(demo_report: Path, doc: dict[str, Any]) -> None:
    names = {p.name for p in demo_report.iterdir()}
    assert {"report.html", "report.pdf", "report.json", "nomogram.png", "run"} <= names
    assert (demo_report / "run" / "features.csv").is_file()
    assert doc["format"] == "rcsa-screen-report"
    assert doc["banner"].startswith("DEMONSTRATION - NOT FOR CLINICAL USE")
    # the score, checked against the spec's coefficients applied here
    features = pd.read_csv(demo_report / "run" / "features.csv").iloc[0].to_dict()
    p = _expected_probability(features, {"fractured_vertebrae_n": 2, "cement_volume_ml": 3.5})
    s = doc["score"]
    assert s["available"] and s["probability"] == pytest.approx(p, rel=1e-9)
    assert s["risk_group"] == ("low" if p < 0.1 else "intermediate" if p < 0.3 else "high")
    assert s["total_points"] == pytest.approx(sum(x["points"] for x in s["predictors"]))
    sources = {x["name"]: x["source"] for x in s["predictors"]}
    assert sources["femoral_head_top_gluteus_maximus_both_rcsa"].startswith("measured")
    assert sources["cement_volume_ml"] == "--set"
    # muscle table: the run's numbers, with the literature envelopes and their citations
    rows = {(r["level"], r["structure"], r["side"]): r for r in doc["measurements"]["rows"]}
    l3 = rows[("L3", "psoas", "left")]
    assert l3["csa_mm2"] == features["L3_psoas_left_csa_mm2"]
    assert l3["reference_ranges"]["csa_mm2"]["text"] == "150 to 4000 mm2"
    assert l3["reference_ranges"]["csa_mm2"]["sources"] == ["lawlor2022", "demarco2022"]
    cited = {r["key"]: r["citation"] for r in doc["references"]}
    assert cited["lawlor2022"].startswith("Lawlor MA")
    for r in rows.values():  # a missing value is empty with a reason, never 0
        assert (r["csa_mm2"] is None and r["reason"]) or r["csa_mm2"] > 0, r
    # the model's provenance and intended use; no identifiers without --show-phi
    assert doc["model"]["intended_use"] == "demonstration - not for clinical use"
    assert doc["model"]["provenance"]["n"] == 428
    assert doc["scan"]["identifiers"] is None and "input_path" not in doc["scan"]
    checks = doc["trust"]["checks"]
    assert doc["trust"]["needs_review"]
    assert any(c.startswith("level femoral_head_top: low confidence 0.48") for c in checks)
    assert any("metal in a femur" in c for c in checks)
    assert [o["level"] for o in doc["qc"]["overlays"]] == [
        "L3", "L4", "L5", "sij_lower", "femoral_head_top"]
    html = (demo_report / "report.html").read_text()
    # level map, 5 overlays, nomogram, spine sheet
    assert html.count('src="data:image/png;base64,') == 8
    assert "http://" not in html and "https://" not in html  # self-contained
    assert f"{100 * p:.1f} %" in html


def test_clinical_text_is_escaped(demo_report: Path, doc: dict[str, Any]) -> None:
    html = (demo_report / "report.html").read_text()
    assert "<script" not in html.lower()
    assert "&lt;script&gt;window.__pwned = 1; alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert doc["clinical"]["free_text"] == [{"name": "note", "label": "Note", "value": NOTE}]


def test_escaping_of_every_clinical_field_from_a_file(demo_report: Path, tmp_path: Path) -> None:
    """Free text from a clinical CSV (HTML, an attribute breakout, a template expression)."""
    evil = {"note": '"><img src=x onerror="window.__pwned=1">', "indication": "{{ 7*7 }} & co",
            "requested_by": "</td></tr></table><h1>forged</h1>"}
    csv = tmp_path / "clinical.csv"
    pd.DataFrame([evil]).to_csv(csv, index=False)
    out = tmp_path / "r"
    screen(demo_report / "run", out, clinical=csv, pdf=False)
    html = (out / "report.html").read_text()
    for tag in ("<img src=x", "<h1>forged", "</table><h1>"):
        assert tag not in html
    assert "&lt;h1&gt;forged&lt;/h1&gt;" in html and "{{ 7*7 }} &amp; co" in html
    assert "&#34;&gt;&lt;img src=x onerror=&#34;window.__pwned=1&#34;&gt;" in html


def test_pdf_pages_and_text(demo_report: Path, doc: dict[str, Any]) -> None:
    if not (shutil.which("pdfinfo") and shutil.which("pdftotext")):
        pytest.skip("pdfinfo / pdftotext are absent (Debian package poppler-utils; CI installs it)")
    pdf = demo_report / "report.pdf"
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True)
    pages = int(next(line.split()[-1] for line in info.stdout.splitlines()
                     if line.startswith("Pages:")))
    assert pages == doc["outputs"]["pdf_pages"] == EXPECTED_PDF_PAGES
    assert doc["outputs"]["pdf_engine"] == "weasyprint"
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True).stdout
    first = text.split("\f")[0]
    assert "DEMONSTRATION - NOT FOR CLINICAL USE" in first
    assert "Preoperative screening report" in first
    assert f"{100 * doc['score']['probability']:.1f} %" in first
    assert doc["score"]["risk_group"] in first
    assert "<script>window.__pwned = 1; alert('x')</script>" in first  # shown as text
    for heading in ("Muscle measurements", "Plausibility envelopes used", "QC overlays",
                    "Model: provenance and intended use", "Lawlor MA"):
        assert heading in text
    assert text.count("DEMONSTRATION - NOT FOR CLINICAL USE") >= EXPECTED_PDF_PAGES  # each page


def test_first_page_is_the_summary(demo_report: Path) -> None:
    """The PDF's first page stands alone (issue 20): the three cards, the checks, the score
    table and the note saying so; nothing of them on a later page. Element ids per page, from
    the layout WeasyPrint prints (no poppler needed)."""
    from weasyprint import HTML  # type: ignore[import-untyped]
    from weasyprint.urls import URLFetcher  # type: ignore[import-untyped]

    document = HTML(string=(demo_report / "report.html").read_text(), base_url=None,
                    url_fetcher=URLFetcher(allowed_protocols={"data"})).render()
    pages = [set(p.anchors) for p in document.pages]
    assert len(pages) == EXPECTED_PDF_PAGES
    summary = {"demo-banner", "card-qc", "card-muscles", "card-risk", "probability",
               "risk-group", "checks", "predictor-table", "summary-note"}
    assert summary <= pages[0], pages[0]
    for later in pages[1:]:
        assert not (summary - {"score"}) & later, later
    html = (demo_report / "report.html").read_text()
    assert "First page: summary" in html


def test_report_names_the_model_not_a_path(demo_report: Path, doc: dict[str, Any],
                                           tmp_path: Path) -> None:
    """The provenance table names the model, its version and origin and the spec's sha256;
    never the spec's install path (issue 20)."""
    from rcsa import __version__
    from rcsa.nomogram.spec import MODELS_DIR

    spec = doc["model"]
    assert "source" not in spec
    fmt = load_spec("demo-rbp-simulated").spec_version
    assert spec["spec"] == (f"demo-rbp-simulated version 1 (built-in model demo-rbp-simulated "
                            f"of rcsa {__version__}; spec format {fmt})")
    assert re.fullmatch(r"[0-9a-f]{64}", spec["spec_sha256"])
    for name in ("report.html", "report.json"):
        text = (demo_report / name).read_text()
        assert str(MODELS_DIR) not in text and "demo_rbp_simulated.json" not in text, name
    assert f"sha256 {spec['spec_sha256'][:16]}" in (demo_report / "report.html").read_text()
    # a site's own spec file: its name, not the folder it lives in
    own = tmp_path / "site" / "my_site_model.json"
    own.parent.mkdir()
    shutil.copy(MODELS_DIR / "demo_rbp_simulated.json", own)
    res = screen(demo_report / "run", tmp_path / "r", model=str(own), pdf=False,
                 assignments=CLINICAL[1::2])
    html = res.html.read_text()
    assert "(spec file my_site_model.json; spec format" in html
    assert str(own.parent) not in html and str(own.parent) not in res.json.read_text()
    assert res.document["model"]["spec_sha256"] == spec["spec_sha256"]  # same content


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (Debian package chromium; CI installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


def test_report_in_headless_chromium(browser: Any, demo_report: Path,
                                     doc: dict[str, Any]) -> None:
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    requests: list[str] = []
    dialogs: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    url = (demo_report / "report.html").as_uri()
    page.goto(url)
    banner = page.locator("#demo-banner")
    assert banner.is_visible()
    assert "DEMONSTRATION - NOT FOR CLINICAL USE" in banner.inner_text()
    box = banner.bounding_box()
    assert box is not None and box["y"] < 40  # the first thing on the page
    s = doc["score"]
    assert page.locator("#probability").is_visible()
    assert page.locator("#probability").inner_text() == f"{100 * s['probability']:.1f} %"
    assert page.locator("#risk-group").inner_text() == s["risk_group"]
    table = page.locator("#muscle-table")
    table.scroll_into_view_if_needed()
    assert table.is_visible()
    body_rows = table.locator("tbody tr")
    assert body_rows.count() == len(doc["measurements"]["rows"])
    first = body_rows.first.inner_text()
    r0 = doc["measurements"]["rows"][0]
    assert r0["level"] in first and f"{r0['csa_mm2']:.0f}" in first
    # the <script> in the note is text on the page, never run
    assert page.locator("#field-note").inner_text() == NOTE
    assert page.evaluate("window.__pwned") is None
    assert dialogs == []
    assert requests == [url]  # self-contained: nothing but the file itself is loaded
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "screen_report.png"
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(shot), full_page=True)
    page.screenshot(path=str(ARTIFACTS / "screen_report_top.png"))
    print(f"screenshot: {shot}", file=sys.stderr)
    assert shot.stat().st_size > 50_000
    page.close()


# ------------------------------------------------------------------------- no score, refusals
def test_structure_model_gives_no_score_and_says_why(demo_report: Path, tmp_path: Path) -> None:
    run = demo_report / "run"
    before = _files_digest(run)
    res = screen(run, tmp_path / "r", model="rbp-augmentation-structure",
                 assignments=["fracture_burden=2"], pdf=False)
    s = res.document["score"]
    assert not s["available"] and "has no coefficients" in s["reason"]
    assert s["probability"] is None and res.document["outputs"]["nomogram_png"] is None
    assert res.document["banner"] is None
    html = res.html.read_text()
    assert 'id="no-score"' in html and 'id="probability"' not in html
    assert "has no coefficients" in html
    assert _files_digest(run) == before  # the input run folder is never modified


def _run_with_edited_rows(demo_report: Path, tmp_path: Path,
                          where: tuple[str, str, str, str | None], **columns: Any) -> Path:
    """A copy of the sample's run folder whose features_long.csv rows at (level, structure,
    side[, quantity]) get ``columns`` (as ``rcsa measure`` would have written them)."""
    run = tmp_path / "run"
    shutil.copytree(demo_report / "run", run)
    long = pd.read_csv(run / "features_long.csv")
    level, structure, side, quantity = where
    sel = (long["level"] == level) & (long["structure"] == structure) & (long["side"] == side)
    if quantity is not None:
        sel &= long["quantity"] == quantity
    assert sel.sum() >= 1 and (quantity is None or sel.sum() == 1)
    for col, value in columns.items():
        long[col] = long[col].astype(object)
        long.loc[sel, col] = value
    long.to_csv(run / "features_long.csv", index=False)
    return run


def _report_row(res: Any, level: str, structure: str, side: str) -> dict[str, Any]:
    return dict(next(r for r in res.document["measurements"]["rows"]
                     if (r["level"], r["structure"], r["side"]) == (level, structure, side)))


def test_implausible_value_is_flagged_in_table_and_checks(demo_report: Path,
                                                        tmp_path: Path) -> None:
    """A run whose L3 left psoas is 90 mm2 (below the 150 mm2 envelope), as measure writes it."""
    from rcsa.measure.plausibility import reference_range

    rng = reference_range("L3", "psoas", "left", "csa_mm2")
    assert rng is not None
    run = _run_with_edited_rows(demo_report, tmp_path, ("L3", "psoas", "left", "csa_mm2"),
                                value=90.0, flag=rng.check(90.0))
    res = screen(run, tmp_path / "r", pdf=False)
    row = _report_row(res, "L3", "psoas", "left")
    assert row["csa_mm2"] == 90.0 and row["out_of_range"] == ["csa_mm2"]
    assert row["flags"] == [rng.check(90.0)] and "below the plausible range" in row["flags"][0]
    assert res.document["trust"]["rows_outside_plausible_range"] == 1
    assert any(c.startswith("L3 psoas left: implausible") for c in res.document["trust"]["checks"])
    html = res.html.read_text()
    assert '<td class="num out">90</td>' in html


def test_missing_measurement_is_shown_empty_with_its_reason(demo_report: Path,
                                                          tmp_path: Path) -> None:
    """A run whose L5 left psoas was not found (as measure writes it: no value, a reason)."""
    reason = "no psoas (left) on the L5 slice: outside the field of view or not segmented"
    run = _run_with_edited_rows(demo_report, tmp_path, ("L5", "psoas", "left", None),
                                value=None, reason=reason)
    res = screen(run, tmp_path / "r", pdf=False)
    row = _report_row(res, "L5", "psoas", "left")
    assert row["csa_mm2"] is None and row["reason"] == reason
    assert any("L5 psoas left" in c and "L5 slice" in c for c in res.document["trust"]["checks"])
    assert reason in res.html.read_text()


def test_missing_clinical_input_is_listed_and_not_imputed(demo_report: Path,
                                                          tmp_path: Path) -> None:
    res = screen(demo_report / "run", tmp_path / "r", model="demo-rbp-simulated",
                 assignments=["fractured_vertebrae_n=2"], pdf=False)
    s = res.document["score"]
    assert not s["available"] and s["probability"] is None and s["total_points"] is None
    assert [m["name"] for m in s["missing"]] == ["cement_volume_ml"]
    assert "no value is imputed" in s["reason"]
    html = res.html.read_text()
    assert 'id="missing-inputs"' in html and "cement_volume_ml" in html
    assert 'id="probability"' not in html
    assert res.document["banner"]  # still a demonstration model


def test_no_model_gives_measurements_only(demo_report: Path, tmp_path: Path) -> None:
    res = screen(demo_report / "run", tmp_path / "r", assignments=["note=ok"], pdf=False)
    assert res.document["model"] is None and not res.document["score"]["available"]
    assert "no model was chosen" in res.document["score"]["reason"]
    assert res.pdf is None and res.document["outputs"]["pdf"] is None


def test_clinical_file_json_and_set_precedence(demo_report: Path, tmp_path: Path) -> None:
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"scan_id": "ct", "fractured_vertebrae_n": 1,
                             "cement_volume_ml": 9.0, "note": "from file"}))
    res = screen(demo_report / "run", tmp_path / "r", model="demo-rbp-simulated", clinical=f,
                 assignments=["cement_volume_ml=3.5"], pdf=False)
    preds = {p["name"]: p for p in res.document["score"]["predictors"]}
    assert preds["cement_volume_ml"]["value"] == 3.5
    assert preds["cement_volume_ml"]["source"] == "--set"
    assert preds["fractured_vertebrae_n"]["value"] == 1.0
    assert preds["fractured_vertebrae_n"]["source"].startswith("clinical file c.json")
    assert res.document["clinical"]["free_text"][0]["value"] == "from file"


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--set", "bmi=25"], 4, "unknown clinical field(s) bmi"),
    (["--set", "femoral_head_top_gluteus_maximus_both_rcsa=3"], 4, "measured from the scan"),
    (["--set", "cement_volume_ml=lots"], 4, "'lots' is not a number"),
    (["--set", "fractured_vertebrae_n"], 4, "NAME=VALUE"),
    (["-m", "no-such-model"], 3, "no-such-model"),
    (["--height-m", "1.7"], 4, "--height-m apply to a scan, not to an rcsa run folder"),
])
def test_unusable_inputs_are_refused_before_any_work(demo_report: Path, tmp_path: Path,
                                                     args: list[str], code: int,
                                                     message: str) -> None:
    out = tmp_path / "r"
    model = [] if "-m" in args else ["-m", "demo-rbp-simulated"]
    r = runner.invoke(app, ["screen", str(demo_report / "run"), "--out", str(out), *model,
                            *args])
    assert r.exit_code == code, r.output
    assert message in " ".join(r.output.split())
    assert not out.exists()


def test_clinical_file_refusals(demo_report: Path, tmp_path: Path) -> None:
    two = tmp_path / "two.csv"
    pd.DataFrame([{"cement_volume_ml": 1}, {"cement_volume_ml": 2}]).to_csv(two, index=False)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"scan_id": "someone-else", "cement_volume_ml": 2}))
    for f, message in ((two, "exactly one row"), (other, "scan_id 'someone-else'")):
        r = runner.invoke(app, ["screen", str(demo_report / "run"), "--out",
                                str(tmp_path / "r"), "-m", "demo-rbp-simulated",
                                "--clinical", str(f), "--no-pdf"])
        assert r.exit_code == 4, r.output
        assert message in " ".join(r.output.split())


def test_output_folder_rules(demo_report: Path, tmp_path: Path) -> None:
    run = demo_report / "run"
    out = tmp_path / "r"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    r = runner.invoke(app, ["screen", str(run), "--out", str(out), "--no-pdf"])
    assert r.exit_code == 6 and (out / "keep.txt").exists()
    r = runner.invoke(app, ["screen", str(run), "--out", str(out), "--no-pdf", "--overwrite"])
    assert r.exit_code == 0, r.output
    assert not (out / "keep.txt").exists() and (out / "report.html").exists()
    # the input can be neither the output folder nor inside it, nor contain it
    for bad in (run, run / "sub", demo_report):
        r = runner.invoke(app, ["screen", str(run), "--out", str(bad), "--overwrite"])
        assert r.exit_code == 4, (bad, r.output)
    assert (run / "features.csv").exists()


def test_missing_pdf_engine_is_a_typed_error(demo_report: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "weasyprint", None)  # import weasyprint -> ImportError
    with pytest.raises(ReportError, match="--no-pdf"):
        screen(demo_report / "run", tmp_path / "r")
    assert not (tmp_path / "r").exists()
    res = screen(demo_report / "run", tmp_path / "r", pdf=False)
    assert res.html.exists() and not (tmp_path / "r" / "report.pdf").exists()


# ------------------------------------------------------------------------------- PHI, DICOM
def test_patient_name_only_with_show_phi(tmp_path: Path) -> None:
    """A DICOM series carrying a name: hidden by default, shown with --show-phi (also when
    the report is built from the run folder, which re-reads the scan's header). The series
    has no pelvis, so the gluteal predictors are missing and the report says why."""
    dicom = tmp_path / "dicom"
    for f in copy_sample_series(dicom):
        ds = pydicom.dcmread(f)
        ds.PatientName = "DOE^JANE"
        ds.PatientID = "PID-4711"
        ds.save_as(f)
    hidden = screen(dicom, tmp_path / "hidden", model="demo-rbp-simulated",
                    assignments=["fractured_vertebrae_n=1", "cement_volume_ml=4"], pdf=False)
    for p in (hidden.html, hidden.json):
        # embedded images are base64: "DOE" may occur there by chance, so look at the text
        text = re.sub(r"data:image/[a-z]+;base64,[A-Za-z0-9+/=]+", "", p.read_text())
        assert "DOE" not in text and "PID-4711" not in text and str(dicom) not in text
    assert "--show-phi" in hidden.html.read_text()
    s = hidden.document["score"]
    assert not s["available"]
    gmax = next(m for m in s["missing"] if m["name"].startswith("femoral_head_top"))
    assert gmax["reason"].startswith("measurement missing:")
    assert "level femoral_head_top missing: no pelvis in the scan" in gmax["reason"]

    shown = screen(tmp_path / "hidden" / "run", tmp_path / "shown", show_phi=True, pdf=False)
    ids = shown.document["scan"]["identifiers"]
    assert ids["patient_name"] == "DOE, JANE" and ids["patient_id"] == "PID-4711"
    assert ids["study_date"] == "20221208"
    html = shown.html.read_text()
    assert "DOE, JANE" in html and "PID-4711" in html and 'id="phi"' in html


def test_nomogram_figure_marks_the_patient() -> None:
    from rcsa.nomogram import score_patient
    from rcsa.nomogram.plots import nomogram_figure

    spec = load_spec("demo-rbp-simulated")
    s = score_patient(spec, {"femoral_head_top_gluteus_maximus_both_rcsa": 2.6,
                             "sij_lower_gluteus_medius_both_rcsa": 1.7,
                             "fractured_vertebrae_n": 2, "cement_volume_ml": 3.5})
    plain = nomogram_figure(spec).axes[0]
    marked = nomogram_figure(spec, s).axes[0]

    def red_xs(ax: Any) -> list[float]:
        return [float(line.get_xdata()[0]) for line in ax.get_lines()
                if line.get_color() == "#c62828" and line.get_marker() == "o"]

    assert red_xs(plain) == []
    xs = red_xs(marked)
    # one dot per predictor at its points, and total points on 3 rows (total, LP, risk)
    for name, pts in s.points.items():
        assert any(abs(x - pts) < 1e-9 for x in xs), name
    assert len(xs) == len(s.points) + 3


def test_free_text_and_cli_summary(demo_report: Path, tmp_path: Path) -> None:
    r = runner.invoke(app, ["screen", str(demo_report / "run"), "--out", str(tmp_path / "r"),
                            "-m", "demo-rbp-simulated", *CLINICAL, "--no-pdf"])
    assert r.exit_code == 0, r.output
    assert "risk: probability" in r.output and "measurement QC" in r.output
    assert "report.pdf" not in r.output
    shutil.rmtree(tmp_path / "r")


def test_fracture_burden_filled_from_the_scan_unless_given(demo_report: Path,
                                                          tmp_path: Path) -> None:
    """issue 17: fractured_vertebrae_n comes from rcsa.spine when not given; a value given by
    the user wins, and the report says which source was used."""
    run_wide = pd.read_csv(demo_report / "run" / "features.csv").iloc[0]
    scan_n = int(run_wide["fractured_vertebrae_n"])
    res = screen(demo_report / "run", tmp_path / "a", model="demo-rbp-simulated",
                 assignments=["cement_volume_ml=3.5"], pdf=False)
    preds = {p["name"]: p for p in res.document["score"]["predictors"]}
    fv = preds["fractured_vertebrae_n"]
    assert fv["value"] == scan_n and fv["measured"]
    assert fv["source"].startswith("from the scan: fractured_vertebrae_n")
    assert "not graded: T12" in fv["source"]  # T12 is ambiguous on the sample
    # L1's grade 1 (21.8 %) lies within the measurement's uncertainty of the 20 % threshold
    assert "L1 near a Genant threshold: check" in fv["source"]
    spine = res.document["spine"]
    assert spine["count_needs_review"] and {r["vertebra"]: r["needs_review"]
                                            for r in spine["rows"]}["L1"]
    assert res.document["score"]["available"]
    res2 = screen(demo_report / "run", tmp_path / "b", model="demo-rbp-simulated",
                  assignments=["cement_volume_ml=3.5", "fractured_vertebrae_n=3"], pdf=False)
    fv2 = {p["name"]: p for p in res2.document["score"]["predictors"]}["fractured_vertebrae_n"]
    assert fv2["value"] == 3 and not fv2["measured"]
    assert fv2["source"] == f"--set; the scan's value {scan_n} was not used"
    spine = res.document["spine"]
    assert spine["fractured_vertebrae_n"] == scan_n and "image" not in spine  # json: no images
    html = res.html.read_text()
    assert 'id="spine"' in html and "Genant" in html and "not a diagnosis" in html
