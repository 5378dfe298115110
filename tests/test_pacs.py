"""rcsa.pacs: query parameters, credentials, errors, DICOM SEG / SR builders, and the round
trip through a real Orthanc (started here, see tests/orthanc.py)."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from dicomweb_client.api import DICOMwebClient
from typer.testing import CliRunner

from _pacs_series import (
    ABDOMEN_BODY_PART,
    ABDOMEN_PATIENT_ID,
    cement_spine,
    write_abdomen_series,
    write_thoracolumbar_with_uids,
)
from orthanc import PASSWORD, USER, Orthanc, free_port, orthanc_binary, start_orthanc
from rcsa.batch.cases import Case, RemoteSeries
from rcsa.cli import EXIT_PACS, EXIT_USAGE, app
from rcsa.errors import (
    CorruptFileError,
    DicomExportError,
    DuplicateSliceError,
    EmptySegmentationError,
    OutputExistsError,
    PacsConfigError,
    PacsConnectionError,
    PacsQueryError,
    PacsServerError,
)
from rcsa.io import load
from rcsa.pacs import (
    QueryParams,
    build_seg,
    build_sr,
    cases_from_query,
    load_settings,
    parse_date_range,
    push_results,
    query_series,
    retrieve,
)
from rcsa.pacs import codes as rc
from rcsa.pacs.client import make_client
from rcsa.pacs.config import ENV_PASSWORD, ENV_TOKEN, ENV_URL, ENV_USER, check_url
from rcsa.pacs.dicom_export import seg_frame_index
from rcsa.pacs.push import store
from rcsa.pacs.query import case_id_for

SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
COMPREHENSIVE_3D_SR = "1.2.840.10008.5.1.4.1.1.88.34"
SR_QUANTITIES = ("csa_mm2", "mean_hu", "fat_pct", "rcsa")
runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_ambient_pacs_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never see the machine's RCSA_* variables or ~/.config/rcsa/pacs.toml."""
    for var in (ENV_URL, ENV_USER, ENV_PASSWORD, ENV_TOKEN, "RCSA_PACS_CONFIG"):
        monkeypatch.setenv(var, "")  # recorded, so whatever a test (or CLI) sets is undone
        monkeypatch.delenv(var)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


# ------------------------------------------------------------------------------------------
# query parameters
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-01", (date(2024, 3, 1), date(2024, 3, 1))),
        ("20240301", (date(2024, 3, 1), date(2024, 3, 1))),
        ("2024-01-01..2024-03-31", (date(2024, 1, 1), date(2024, 3, 31))),
        ("2024-01-01..", (date(2024, 1, 1), None)),
        ("..2024-03-31", (None, date(2024, 3, 31))),
        ("20240101-20240331", (date(2024, 1, 1), date(2024, 3, 31))),
        ("20240101-", (date(2024, 1, 1), None)),
        ("-20240331", (None, date(2024, 3, 31))),
    ],
)
def test_parse_date_range(text: str, expected: tuple[date | None, date | None]) -> None:
    assert parse_date_range(text) == expected


@pytest.mark.parametrize("text", ["", "..", "2024-13-01", "yesterday", "2024-03-31..2024-01-01",
                                  "20240331-20240101"])
def test_parse_date_range_refuses(text: str) -> None:
    with pytest.raises(PacsQueryError):
        parse_date_range(text)


def test_search_filters_encode_dicom_ranges_and_modality() -> None:
    p = QueryParams.from_options("2024-01-01..2024-03-31", "ct", "ABDOMEN", "P*", "1.2.3",
                                 None, "ACC1")
    assert p.search_filters() == {
        "StudyDate": "20240101-20240331", "Modality": "CT", "BodyPartExamined": "ABDOMEN",
        "PatientID": "P*", "StudyInstanceUID": "1.2.3", "AccessionNumber": "ACC1",
    }
    assert QueryParams.from_options("2024-03-01").search_filters() == {
        "StudyDate": "20240301", "Modality": "CT"}
    assert QueryParams.from_options("2024-03-01..").search_filters()["StudyDate"] == "20240301-"
    assert QueryParams.from_options("..2024-03-01").search_filters()["StudyDate"] == "-20240301"
    assert QueryParams.from_options(modality="").search_filters() == {}
    assert QueryParams(modality=None).search_filters() == {}


def test_query_params_refuse_bad_values() -> None:
    with pytest.raises(PacsQueryError, match="ends before it starts"):
        QueryParams(date(2024, 2, 1), date(2024, 1, 1))
    with pytest.raises(PacsQueryError, match="not a DICOM UID"):
        QueryParams(study_uid="1.2.abc")
    with pytest.raises(PacsQueryError):
        QueryParams(limit=0)


def test_case_id_is_folder_safe_and_distinct() -> None:
    a = case_id_for("1.2.3", "1.2.3.4")
    assert a.startswith("1.2.3.4_") and "/" not in a
    assert a != case_id_for("1.2.9", "1.2.3.4")
    assert case_id_for("1.2.3", "x/../../etc").startswith("series_")


# ------------------------------------------------------------------------------------------
# settings and credentials
# ------------------------------------------------------------------------------------------
def _toml(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_credentials_from_config_file(tmp_path: Path) -> None:
    cfg = _toml(tmp_path / "pacs.toml", 'url = "https://pacs.example.org/dicom-web/"\n'
                'username = "alice"\npassword = "s3cret"\ntimeout_s = 5\n')
    s = load_settings(None, cfg, env={})
    assert (s.url, s.username, s.password, s.auth) == (
        "https://pacs.example.org/dicom-web", "alice", "s3cret", "basic")
    assert s.timeout_s == 5.0 and s.credentials_from == str(cfg)
    assert "s3cret" not in repr(s)


def test_environment_wins_over_config_file(tmp_path: Path) -> None:
    cfg = _toml(tmp_path / "pacs.toml", 'url = "https://a.example/dw"\nusername = "alice"\n'
                'password = "file-pw"\n')
    env = {ENV_USER: "bob", ENV_PASSWORD: "env-pw", ENV_URL: "https://b.example/dw"}
    s = load_settings(None, cfg, env=env)
    assert (s.url, s.username, s.password, s.credentials_from) == (
        "https://b.example/dw", "bob", "env-pw", "environment")
    # --url wins over both
    assert load_settings("http://c.example/dw", cfg, env=env).url == "http://c.example/dw"
    token = load_settings(None, cfg, env={ENV_TOKEN: "tok"})
    assert (token.auth, token.token, token.username) == ("bearer", "tok", None)
    assert make_client(token)._session.headers["Authorization"] == "Bearer tok"


def test_default_config_file_from_xdg(tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    (xdg / "rcsa").mkdir(parents=True)
    _toml(xdg / "rcsa" / "pacs.toml", 'url = "https://x.example/dw"\ntoken = "t"\n')
    s = load_settings(None, None, env={"XDG_CONFIG_HOME": str(xdg)})
    assert (s.url, s.auth) == ("https://x.example/dw", "bearer")


@pytest.mark.parametrize(
    ("content", "env", "match"),
    [
        ('url = "https://x/dw"\nusername = "a"\n', {}, "username and password"),
        ('url = "https://x/dw"\nportnumber = 1\n', {}, "unknown key"),
        ('url = "https://x/dw"\ntimeout_s = -1\n', {}, "timeout_s"),
        ('url = "https://x/dw"\nmax_attempts = 0\n', {}, "max_attempts"),
        ("url = [broken\n", {}, "not valid TOML"),
        ('username = "a"\npassword = "b"\n', {}, "no DICOMweb server URL"),
        ('url = "https://x/dw"\n', {ENV_USER: "a"}, "must be set together"),
        ('url = "ftp://x/dw"\n', {}, "not an http"),
    ],
)
def test_settings_refused(tmp_path: Path, content: str, env: dict[str, str],
                          match: str) -> None:
    cfg = _toml(tmp_path / "pacs.toml", content)
    with pytest.raises(PacsConfigError, match=match):
        load_settings(None, cfg, env=env)


def test_missing_explicit_config_and_credentials_in_url_are_refused(tmp_path: Path) -> None:
    with pytest.raises(PacsConfigError, match="does not exist"):
        load_settings("https://x/dw", tmp_path / "nope.toml", env={})
    with pytest.raises(PacsConfigError, match="credentials in the URL") as info:
        check_url("https://alice:s3cret@pacs.example.org/dicom-web")
    assert "s3cret" not in str(info.value)


def test_cli_has_no_credential_options() -> None:
    for cmd in ("query", "retrieve", "push"):
        help_text = runner.invoke(app, ["pacs", cmd, "--help"]).output.lower()
        assert "--password" not in help_text and "--token" not in help_text
    res = runner.invoke(app, ["pacs", "query", "--url", "http://127.0.0.1:9/dw",
                              "--password", "x"])
    assert res.exit_code == EXIT_USAGE


def test_unreachable_server_is_a_typed_error_naming_url_and_reason(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/dicom-web"
    with pytest.raises(PacsConnectionError) as info:
        query_series(url, QueryParams())
    msg = str(info.value)
    assert msg.startswith(url) and "unreachable" in msg and "refused" in msg
    assert info.value.url == url
    res = runner.invoke(app, ["pacs", "query", "--url", url])
    assert res.exit_code == EXIT_PACS
    assert url in res.output and "connection refused" in res.output
    cache = tmp_path / "cache"
    with pytest.raises(PacsConnectionError):
        retrieve(RemoteSeries(url, "1.2", "1.2.3"), cache)
    assert list(cache.iterdir()) == []  # no staging folder left behind


# ------------------------------------------------------------------------------------------
# SEG / SR builders (no server): one pipeline run of the abdomen sample as a DICOM series
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def abd_series(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("abd") / "series"
    write_abdomen_series(folder)
    return folder


@pytest.fixture(scope="module")
def abd_run(abd_series: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rcsa.pipeline import run_scan, write_scan_outputs

    out = tmp_path_factory.mktemp("abd_run") / "run"
    write_scan_outputs(run_scan(abd_series), out)
    return out


def _seg_volume(run_dir: Path) -> np.ndarray:
    return np.asarray(sitk.GetArrayFromImage(sitk.ReadImage(str(run_dir / "segmentation.nii.gz"))))


def _source_by_uid(folder: Path) -> dict[str, pydicom.Dataset]:
    out = {}
    for p in sorted(f for f in folder.rglob("*") if f.is_file()):
        ds = pydicom.dcmread(p, stop_before_pixels=True)
        out[str(ds.SOPInstanceUID)] = ds
    return out


def check_seg_against_run(seg: hd.seg.Segmentation, run_dir: Path, source: Path) -> None:
    """Frames line up with the source slices (UID and IPP) and equal the run's masks."""
    assert seg.SOPClassUID == SEG_SOP_CLASS
    labels = _seg_volume(run_dir)
    names = {int(k): v for k, v in
             json.loads((run_dir / "segmentation_labels.json").read_text()).items()}
    ct = load(source)
    sources = _source_by_uid(source)
    # which canonical slice each source instance is: by its position along the slice normal
    zs = ct.z_mm()
    segments = {int(s.SegmentNumber): str(s.SegmentLabel) for s in seg.SegmentSequence}
    present = {names[int(v)] for v in np.unique(labels) if v != 0}
    assert set(segments.values()) == present
    labelled = {int(k) for k in np.flatnonzero(labels.reshape(labels.shape[0], -1).any(1))}
    seen_slices = set()
    pixels = seg.pixel_array
    if pixels.ndim == 2:
        pixels = pixels[None]
    for f, item in enumerate(seg.PerFrameFunctionalGroupsSequence):
        number = int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        src_uid = str(item.DerivationImageSequence[0].SourceImageSequence[0]
                      .ReferencedSOPInstanceUID)
        src = sources[src_uid]
        ipp = [float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient]
        assert np.allclose(ipp, [float(v) for v in src.ImagePositionPatient], atol=1e-3)
        k = int(np.argmin(np.abs(zs - ipp[2])))
        assert abs(zs[k] - ipp[2]) < 1e-3
        seen_slices.add(k)
        # the source instance's pixel (r, c) is canonical (k, r, c') with c' flipped when the
        # instance's row direction points to -x (rcsa's canonical order is i -> L = +x)
        expected = labels[k] == {v: kk for kk, v in names.items()}[segments[number]]
        if float(src.ImageOrientationPatient[0]) < 0:
            expected = expected[:, ::-1]
        assert np.array_equal(pixels[f].astype(bool), expected), (segments[number], k)
    assert seen_slices == labelled
    refs = {str(i.ReferencedSOPInstanceUID) for s in seg.ReferencedSeriesSequence
            for i in s.ReferencedInstanceSequence}
    assert refs == {uid for uid, ds in sources.items()
                    if int(np.argmin(np.abs(zs - float(ds.ImagePositionPatient[2])))) in labelled}


def _all_groups(sr: hd.sr.Comprehensive3DSR) -> list[Any]:
    """The TID 1501 (image-level) measurement groups of a parsed SR."""
    return list(sr.content.get_image_measurement_groups())


def _bytes(ds: pydicom.Dataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def check_sr_against_run(sr: pydicom.Dataset, run_dir: Path, seg: pydicom.Dataset) -> None:
    """Every finite CSA / mean HU / fat % / rCSA of features_long.csv on a found level is in
    the SR with its UCUM unit; left / right / vertebral body groups reference the SEG."""
    import csv

    assert sr.SOPClassUID == COMPREHENSIVE_3D_SR
    parsed = hd.sr.srread(io.BytesIO(_bytes(sr)))
    levels = json.loads((run_dir / "levels.json").read_text())["levels"]
    expected: dict[str, list[tuple[str, float, str]]] = {}
    with open(run_dir / "features_long.csv", newline="") as fh:
        for r in csv.DictReader(fh):
            if r["quantity"] not in SR_QUANTITIES or not r["value"]:
                continue
            if levels.get(r["level"], {}).get("status") != "found":
                continue
            v = float(r["value"])
            if not np.isfinite(v):
                continue
            ident = f"{r['level']} {r['structure']} {r['side']}".strip()
            expected.setdefault(ident, []).append(
                (rc.QUANTITIES[r["quantity"]][0].value, v, rc.UNITS[r["unit"]].value))
    assert expected, "the run measured nothing: the test would prove nothing"
    report = parsed.content
    planar = report.get_planar_roi_measurement_groups()
    found: dict[str, list[tuple[str, float, str]]] = {}
    seg_uid = str(seg.SOPInstanceUID)
    labels = {int(x.SegmentNumber): str(x.SegmentLabel) for x in seg.SegmentSequence}
    for g in planar:
        assert g.reference_type.value == "121214"  # Referenced Segmentation Frame
        ref = g.referenced_segmentation_frame
        assert ref.referenced_sop_instance_uid == seg_uid
        [frame] = ref.referenced_frame_numbers
        # the frame alone names the segment (dciodvfy: not both, PS3.3 C.18.4)
        assert ref.referenced_segment_numbers is None
        item = seg.PerFrameFunctionalGroupsSequence[frame - 1]
        segment = int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        src = str(item.DerivationImageSequence[0].SourceImageSequence[0]
                  .ReferencedSOPInstanceUID)
        assert ref.source_image_for_segmentation.referenced_sop_instance_uid == src
        _, structure, *side = str(g.tracking_identifier).split()
        assert labels[segment] == "_".join([structure, *side])
        found[str(g.tracking_identifier)] = [
            (m.name.value, float(m.value), m.unit.value) for m in g.get_measurements()]
    for g in _all_groups(parsed):
        if str(g.tracking_identifier).startswith("spine "):
            continue  # check_sr_spine_against_run
        found[str(g.tracking_identifier)] = [
            (m.name.value, float(m.value), m.unit.value) for m in g.get_measurements()]
    assert set(found) == set(expected)
    for ident, vals in expected.items():
        got, want = sorted(found[ident]), sorted(vals)
        assert [(n, u) for n, _, u in got] == [(n, u) for n, _, u in want], ident
        assert [v for _, v, _ in got] == pytest.approx([v for _, v, _ in want], rel=1e-9), ident
    assert all(not i.endswith("both") for i in (str(g.tracking_identifier) for g in planar))
    check_sr_spine_against_run(parsed, run_dir)


def _texts(group: Any) -> dict[str, list[str]]:
    """The TEXT items of a measurement group: concept code value -> texts."""
    out: dict[str, list[str]] = {}
    for item in group[0].ContentSequence:
        if item.ValueType == "TEXT" and item.RelationshipType == "CONTAINS":
            out.setdefault(item.name.value, []).append(str(item.TextValue))
    return out


def _codes(group: Any) -> dict[str, str]:
    """The qualitative evaluations (CODE) of a group: concept code value -> value code."""
    return {e.name.value: e.value.value for e in group.get_qualitative_evaluations()}


def check_sr_spine_against_run(parsed: Any, run_dir: Path) -> None:
    """The spine groups hold spine.json: one group per vertebra measured / not measurable
    (heights by topographical modifier, trabecular mean and SD, Genant grade, morphology,
    status, reasons and bands as text), none for an ambiguous or missing one, and the scan
    group (fracture burden, bone attenuation with its vertebra and band)."""
    groups = {str(g.tracking_identifier): g for g in _all_groups(parsed)
              if str(g.tracking_identifier).startswith("spine ")}
    spine_json = run_dir / "spine.json"
    if not spine_json.is_file():
        assert groups == {}
        return
    doc = json.loads(spine_json.read_text())
    written = {n: v for n, v in doc["vertebrae"].items()
               if v["status"] in ("measured", "not_measurable")}
    if not written:  # nothing to say but "not graded": no spine group
        assert groups == {}
        return
    assert set(groups) == {f"spine {n}" for n in written} | {"spine T11-L5"}
    for name, v in written.items():
        g = groups[f"spine {name}"]
        assert g.finding_type.value == rc.VERTEBRAL_BODY.value
        [site] = g.finding_sites
        assert site.value.value == rc.VERTEBRAE[name].value
        codes_ = _codes(g)
        texts = _texts(g)
        assert codes_[rc.SPINE_STATUS.value] == f"status-{v['status']}"
        heights: dict[str, float] = {}
        hu: dict[str, float] = {}
        other: dict[str, float] = {}
        for m in g.get_measurements():
            if m.name.value == rc.HEIGHT.value:
                assert m.unit.value == "mm"
                [msite] = m.finding_sites
                heights[msite.topographical_modifier.value] = float(m.value)
            elif m.name.value == rc.ATTENUATION.value:
                assert m.unit.value == "[hnsf'U]" and m.method.value == "trabecular_roi"
                hu[m.derivation.value] = float(m.value)
            else:
                other[m.name.value] = float(m.value)
        if v["status"] == "not_measurable":
            assert heights == hu == other == {}  # never a number for a vertebra not measured
            assert texts[rc.SPINE_REASON.value] == [v["reason"]]
            assert rc.GENANT_GRADE.value not in codes_
            continue
        want = {rc.HEIGHT_SITES[w].value: v[f"height_{w}_mm"]
                for w in ("anterior", "middle", "posterior") if v[f"height_{w}_mm"] is not None}
        assert heights == pytest.approx(want, rel=1e-9) and len(heights) == 3
        want_hu = {k: v[key] for k, key in ((rc.MEAN.value, "trabecular_hu"),
                                            (rc.SD.value, "trabecular_hu_sd"))
                   if v[key] is not None}
        assert hu == pytest.approx(want_hu, rel=1e-9)
        assert other == pytest.approx({"height_reduction_pct": v["height_reduction_pct"]})
        if v["genant_grade"] is None:
            assert rc.GENANT_GRADE.value not in codes_
            assert texts[rc.SPINE_REASON.value] == [v["grade_reason"]]
        else:
            assert codes_[rc.GENANT_GRADE.value] == f"genant-{v['genant_grade']}"
            assert codes_[rc.GENANT_MORPHOLOGY.value] == f"morphology-{v['morphology']}"
            review = v.get("grade_review_reason")
            assert texts.get(rc.GRADING_NOTE.value, []) == (
                [v["grade_reason"]] if v["grade_reason"] else []) + (
                [f"needs review: {review}"] if review else [])
        assert texts.get(rc.ATTENUATION_BAND.value, []) == (
            [v["attenuation_band"]] if v["attenuation_band"] else [])
        if v["mid_slice"] is not None:  # the CT image of the body's middle slice
            [src] = g.source_images
            assert src.referenced_sop_class_uid == "1.2.840.10008.5.1.4.1.1.2"
    scan = groups["spine T11-L5"]
    assert scan.finding_type.value == rc.THORACOLUMBAR_SPINE.value
    texts = _texts(scan)
    nums = {(m.name.value, m.unit.value): m for m in scan.get_measurements()}
    if doc["fractured_vertebrae_n"] is None:
        assert (rc.FRACTURED_N.value, "{vertebrae}") not in nums
    else:
        assert float(nums[(rc.FRACTURED_N.value, "{vertebrae}")].value) == \
            doc["fractured_vertebrae_n"]
        assert texts[rc.FRACTURED_LIST.value] == [", ".join(doc["fractured_vertebrae"]) or "none"]
    if doc["bone_attenuation_hu"] is not None:
        m = nums[(rc.ATTENUATION.value, "[hnsf'U]")]
        assert float(m.value) == pytest.approx(doc["bone_attenuation_hu"], rel=1e-9)
        [msite] = m.finding_sites
        assert msite.value.value == rc.VERTEBRAE[doc["bone_attenuation_vertebra"]].value
        assert texts[rc.ATTENUATION_BAND.value] == [doc["bone_attenuation_band"]]
    not_graded = texts.get(rc.NOT_GRADED.value, [""])[0]
    assert all(n in not_graded for n in doc["not_graded"])
    assert texts.get(rc.SPINE_WARNING.value, []) == doc["warnings"]


def test_build_seg_matches_the_run(abd_run: Path, abd_series: Path) -> None:
    seg = build_seg(abd_run, abd_series)
    check_seg_against_run(seg, abd_run, abd_series)
    # written and read back with highdicom: the same segments and frames
    back = hd.seg.segread(io.BytesIO(_bytes(seg)))
    assert back.number_of_segments == len(seg.SegmentSequence) >= 10
    psoas_l = next(s for s in back.SegmentSequence if s.SegmentLabel == "psoas_left")
    prop = psoas_l.SegmentedPropertyTypeCodeSequence[0]
    assert (prop.CodeValue, prop.CodingSchemeDesignator) == ("276167002", "SCT")
    assert prop.SegmentedPropertyTypeModifierCodeSequence[0].CodeValue == "7771000"  # Left


def test_build_seg_flipped_source_stores_frames_in_source_order(
    abd_run: Path, abd_series: Path, tmp_path: Path
) -> None:
    """The same anatomy stored with reversed columns: frames must follow the source pixels."""
    ct0 = load(abd_series)
    flipped = tmp_path / "flipped"
    write_abdomen_series(flipped, flip_columns=True)
    assert np.array_equal(load(flipped).voxels, ct0.voxels)  # rcsa sees the same volume
    seg = build_seg(abd_run, flipped)
    check_seg_against_run(seg, abd_run, flipped)


def test_build_sr_holds_the_measurements(abd_run: Path, abd_series: Path) -> None:
    seg = build_seg(abd_run, abd_series)
    sr = build_sr(abd_run, abd_series, seg)
    check_sr_against_run(sr, abd_run, seg)
    # without a SEG every group still names its source slice
    plain = hd.sr.srread(io.BytesIO(_bytes(build_sr(abd_run, abd_series))))
    assert plain.content.get_planar_roi_measurement_groups() == []
    assert len(_all_groups(plain)) > 0


def test_source_is_read_by_the_loaders_rules(abd_run: Path, abd_series: Path, tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    """The source series is read by rcsa.io (dicom_source_instances): non-DICOM files are
    skipped, an agreeing copy of an instance is one instance, a damaged copy of an instance
    read intact is a warning, copies that differ and an instance only present damaged are the
    loader's typed errors naming the file."""
    seg = build_seg(abd_run, abd_series)
    used = sorted({uid for _, uid in seg_frame_index(seg)})
    by_uid = {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID): p
              for p in sorted(abd_series.rglob("*")) if p.is_file()}
    src = tmp_path / "src"
    shutil.copytree(abd_series, src)
    target = src / by_uid[used[0]].relative_to(abd_series)
    (src / "notes.txt").write_text("not DICOM\n")
    copies = src / "zz_copies"
    copies.mkdir()
    shutil.copy(target, copies / "same.dcm")
    data = target.read_bytes()
    (copies / "cut.dcm").write_bytes(data[: len(data) // 2])
    with caplog.at_level("WARNING"):
        again = build_seg(abd_run, src)
    assert seg_frame_index(again) == seg_frame_index(seg)
    assert "cut.dcm" in caplog.text and "damaged" in caplog.text

    ds = pydicom.dcmread(target)
    pixels = ds.pixel_array.copy()
    pixels[0, 0] += 1
    ds.PixelData = pixels.tobytes()
    ds.save_as(copies / "same.dcm")
    with pytest.raises(DuplicateSliceError, match=r"same\.dcm"):
        build_seg(abd_run, src)

    (copies / "same.dcm").unlink()
    target.write_bytes(data[: len(data) // 2])  # the instance is left only in damaged copies
    with pytest.raises(CorruptFileError, match="truncated"):
        build_seg(abd_run, src)


@pytest.mark.filterwarnings("ignore:End of file reached")
def test_series_uid_chooses_the_source_series_and_limits_what_is_judged(
        abd_run: Path, abd_series: Path, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    """Two CT series in one folder, the other one with a damaged image: the series that
    matches the segmentation is found first, then read alone, so the damaged image of the
    other series is a warning (as when loading), with or without --series-uid."""
    src = tmp_path / "two"
    shutil.copytree(abd_series, src / "abd")
    write_thoracolumbar_with_uids(src / "tl")
    victim = sorted(p for p in (src / "tl").rglob("*") if p.is_file())[0]
    victim.write_bytes(victim.read_bytes()[:-100])
    first = sorted(p for p in (src / "abd").rglob("*") if p.is_file())[0]
    uid = str(pydicom.dcmread(first, stop_before_pixels=True).SeriesInstanceUID)
    alone = seg_frame_index(build_seg(abd_run, abd_series))
    with caplog.at_level("WARNING"):
        assert seg_frame_index(build_seg(abd_run, src)) == alone
    assert victim.name in caplog.text and "another series" in caplog.text
    seg = build_seg(abd_run, src, series_uid=uid)
    assert seg_frame_index(seg) == alone
    with pytest.raises(DicomExportError, match="not among the CT series"):
        build_seg(abd_run, src, series_uid="1.2.3.4")


def test_sr_spine_groups_of_the_sample(abd_run: Path, abd_series: Path) -> None:
    """Subject A: L1-L5 measured (L1 grade 1, wedge), T12 ambiguous (no group, listed as not
    graded in the scan group with its reason), T11 outside the scan."""
    doc = json.loads((abd_run / "spine.json").read_text())
    sr = hd.sr.srread(io.BytesIO(_bytes(build_sr(abd_run, abd_series))))
    check_sr_spine_against_run(sr, abd_run)  # every value against spine.json
    groups = {str(g.tracking_identifier): g for g in _all_groups(sr)}
    measured = [n for n, v in doc["vertebrae"].items() if v["status"] == "measured"]
    assert len(measured) >= 4 and {f"spine {n}" for n in measured} <= set(groups)
    for n, v in doc["vertebrae"].items():
        if v["status"] in ("ambiguous", "missing"):
            assert f"spine {n}" not in groups  # never a coded finding site for these
    scan_texts = _texts(groups["spine T11-L5"])
    for n in doc["not_graded"]:
        reason = doc["vertebrae"][n]["reason"] or doc["vertebrae"][n]["grade_reason"]
        assert f"{n}: {reason}" in scan_texts[rc.NOT_GRADED.value][0]


def _with_spine(abd_run: Path, tmp_path: Path, doc: dict[str, Any] | None) -> Path:
    out = tmp_path / "run"
    shutil.copytree(abd_run, out)
    if doc is None:
        (out / "spine.json").unlink()
    else:
        (out / "spine.json").write_text(json.dumps(doc))
    return out


def test_sr_without_spine_json_exports_as_before(abd_run: Path, abd_series: Path,
                                                 tmp_path: Path) -> None:
    old = _with_spine(abd_run, tmp_path, None)
    seg = build_seg(old, abd_series)
    sr = build_sr(old, abd_series, seg)
    check_sr_against_run(sr, old, seg)  # the muscle groups as before, and no spine group
    parsed = hd.sr.srread(io.BytesIO(_bytes(sr)))
    assert not any(str(g.tracking_identifier).startswith("spine") for g in _all_groups(parsed))
    with_spine = hd.sr.srread(io.BytesIO(_bytes(build_sr(abd_run, abd_series, seg))))
    assert len(_all_groups(with_spine)) == len(_all_groups(parsed)) + 6  # L1-L5 + the scan


def test_sr_not_measurable_vertebra_is_text_never_numbers(abd_run: Path, abd_series: Path,
                                                          tmp_path: Path) -> None:
    run = _with_spine(abd_run, tmp_path, cement_spine(abd_run))
    sr = hd.sr.srread(io.BytesIO(_bytes(build_sr(run, abd_series))))
    check_sr_spine_against_run(sr, run)
    groups = {str(g.tracking_identifier): g for g in _all_groups(sr)}
    l2 = groups["spine L2"]
    assert l2.get_measurements() == []
    assert _codes(l2) == {rc.SPINE_STATUS.value: "status-not_measurable"}
    assert "cement" in _texts(l2)[rc.SPINE_REASON.value][0]
    assert rc.GENANT_GRADE.value not in _codes(groups["spine L3"])
    scan = groups["spine T11-L5"]
    [n] = [m for m in scan.get_measurements() if m.name.value == rc.FRACTURED_N.value]
    assert float(n.value) == 0
    assert _texts(scan)[rc.FRACTURED_LIST.value] == ["none"]
    assert "cement" in _texts(scan)[rc.SPINE_WARNING.value][0]


def test_sr_needs_a_measured_value_a_muscle_s_or_a_vertebra_s(abd_run: Path, abd_series: Path,
                                                               tmp_path: Path) -> None:
    import pandas as pd

    run = _with_spine(abd_run, tmp_path, None)
    shutil.copy(abd_run / "spine.json", run / "spine.json")
    long = pd.read_csv(run / "features_long.csv")
    long["value"] = np.nan  # no muscle value at all
    long.to_csv(run / "features_long.csv", index=False)
    sr = hd.sr.srread(io.BytesIO(_bytes(build_sr(run, abd_series))))  # the spine alone
    idents = {str(g.tracking_identifier) for g in _all_groups(sr)}
    assert idents and all(i.startswith("spine ") for i in idents)
    check_sr_spine_against_run(sr, run)
    doc = json.loads((run / "spine.json").read_text())
    for v in doc["vertebrae"].values():
        if v["status"] == "measured":
            v.update(status="not_measurable", reason="edges not trusted")
    (run / "spine.json").write_text(json.dumps(doc))
    with pytest.raises(DicomExportError, match="no measured vertebra: no SR"):
        build_sr(run, abd_series)


@pytest.mark.parametrize("change", [
    {"vertebrae": []},
    {"vertebrae": {"L1": {"status": "broken"}}},
    {"vertebrae": {"L1": {"status": "measured", "genant_grade": 4}}},
    {"vertebrae": {"L1": {"status": "measured", "genant_grade": 1, "morphology": "round"}}},
])
def test_sr_refuses_a_damaged_spine_json(abd_run: Path, abd_series: Path, tmp_path: Path,
                                         change: dict[str, Any]) -> None:
    doc = json.loads((abd_run / "spine.json").read_text())
    doc.update(change)
    run = _with_spine(abd_run, tmp_path, doc)
    with pytest.raises(DicomExportError, match=r"spine\.json"):
        build_sr(run, abd_series)
    (run / "spine.json").write_text("[1, 2")
    with pytest.raises(DicomExportError, match=r"spine\.json"):
        build_sr(run, abd_series)


def test_empty_segmentation_is_never_exported(abd_run: Path, abd_series: Path,
                                              tmp_path: Path) -> None:
    empty = tmp_path / "empty_run"
    shutil.copytree(abd_run, empty)
    img = sitk.ReadImage(str(empty / "segmentation.nii.gz"))
    zero = sitk.Image(img.GetSize(), img.GetPixelID())
    zero.CopyInformation(img)
    sitk.WriteImage(zero, str(empty / "segmentation.nii.gz"))
    with pytest.raises(EmptySegmentationError, match="no SEG"):
        build_seg(empty, abd_series)
    # push_results skips with the reason and contacts no server
    url = f"http://127.0.0.1:{free_port()}/dicom-web"
    result = push_results(Case("c", path=abd_series), empty, abd_series, url=url)
    assert result["pushed"] is False and "segmented nothing" in result["skipped"]
    assert result["seg_sop_instance_uid"] is None


def test_source_without_uids_or_wrong_series_is_refused(abd_run: Path, tmp_path: Path,
                                                        thoracolumbar: Path) -> None:
    # the shipped thoracolumbar sample is anonymised without UIDs
    with pytest.raises(DicomExportError, match="lack StudyInstanceUID"):
        build_seg(abd_run, thoracolumbar / "dicom")
    other = tmp_path / "tl"
    write_thoracolumbar_with_uids(other)
    with pytest.raises(DicomExportError, match=r"no CT series .* every segmented slice"):
        build_seg(abd_run, other)


def test_export_dicom_cli(abd_run: Path, abd_series: Path, tmp_path: Path) -> None:
    out = tmp_path / "dcm"
    res = runner.invoke(app, ["pacs", "export-dicom", str(abd_run), "--source",
                              str(abd_series), "--out", str(out)])
    assert res.exit_code == 0, res.output
    seg = hd.seg.segread(out / "seg.dcm")
    sr = pydicom.dcmread(out / "sr.dcm")
    assert seg.SOPClassUID == SEG_SOP_CLASS and sr.SOPClassUID == COMPREHENSIVE_3D_SR
    res = runner.invoke(app, ["pacs", "export-dicom", str(abd_run), "--source",
                              str(abd_series), "--out", str(out)])
    assert res.exit_code == 6
    with pytest.raises(OutputExistsError):
        from rcsa.pacs import export_dicom

        export_dicom(abd_run, abd_series, out)


# ------------------------------------------------------------------------------------------
# Orthanc
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    if orthanc_binary() is None:
        pytest.skip("Orthanc is not installed (Debian packages orthanc, orthanc-dicomweb): "
                    "PACS integration tests need it")
    server = start_orthanc(tmp_path_factory.mktemp("orthanc"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pacs_env(orthanc: Orthanc, monkeypatch: pytest.MonkeyPatch) -> str:
    """The test user's credentials in the environment (as a deployment would set them)."""
    monkeypatch.setenv(ENV_USER, USER)
    monkeypatch.setenv(ENV_PASSWORD, PASSWORD)
    return orthanc.dicomweb_url


@pytest.fixture(scope="module")
def uploaded(orthanc: Orthanc, abd_series: Path,
             tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The abdomen series and the (UID-filled) thoracolumbar series, stored via STOW-RS."""
    tl = tmp_path_factory.mktemp("tl") / "series"
    write_thoracolumbar_with_uids(tl)
    settings = load_settings(orthanc.dicomweb_url, None,
                             env={ENV_USER: USER, ENV_PASSWORD: PASSWORD})
    for folder in (abd_series, tl):
        datasets = [pydicom.dcmread(p) for p in sorted(folder.iterdir())]
        assert len(store(settings, datasets)) == len(datasets)
    return {"abdomen": abd_series, "thoracolumbar": tl}


def test_orthanc_versions(orthanc: Orthanc) -> None:
    v = orthanc.versions()
    assert v["orthanc"] and v["dicomweb_plugin"]


def test_wrong_password_is_a_server_error(orthanc: Orthanc, tmp_path: Path) -> None:
    cfg = _toml(tmp_path / "pacs.toml", f'url = "{orthanc.dicomweb_url}"\n'
                f'username = "{USER}"\npassword = "wrong"\n')
    with pytest.raises(PacsServerError, match="HTTP 401") as info:
        query_series(None, QueryParams(), config=cfg)
    assert orthanc.dicomweb_url in str(info.value)


def test_store_reports_instances_the_server_did_not_keep(orthanc: Orthanc,
                                                         thoracolumbar: Path) -> None:
    """The shipped sample has no UIDs: Orthanc answers 200 but stores nothing."""
    settings = load_settings(orthanc.dicomweb_url, None,
                             env={ENV_USER: USER, ENV_PASSWORD: PASSWORD})
    raw = pydicom.dcmread(sorted((thoracolumbar / "dicom").iterdir())[0])
    with pytest.raises(PacsServerError, match="confirmed 0 of 1"):
        store(settings, [raw])


def test_query_filters(uploaded: dict[str, Path], pacs_env: str) -> None:
    def n(**kw: Any) -> int:
        return len(query_series(pacs_env, QueryParams.from_options(**kw)))

    assert n() == 2
    assert n(date_range="2024-03-15") == 1
    assert n(date_range="2024-01-01..2024-12-31") == 1
    assert n(date_range="2022-12-08..") == 2
    assert n(date_range="..2023-01-01") == 1  # the thoracolumbar study (2022-12-08)
    assert n(date_range="2025-01-01..") == 0
    assert n(modality="MR") == 0
    assert n(body_part=ABDOMEN_BODY_PART) == 1
    assert n(patient_id=ABDOMEN_PATIENT_ID) == 1
    rec = query_series(pacs_env, QueryParams(patient_id=ABDOMEN_PATIENT_ID))[0]
    assert (rec.n_instances, rec.body_part, rec.study_date) == (112, "ABDOMEN", "20240315")
    assert n(study_uid=rec.study_uid) == 1


def test_query_cli_table_and_json(uploaded: dict[str, Path], pacs_env: str,
                                  tmp_path: Path) -> None:
    out = tmp_path / "q.json"
    res = runner.invoke(app, ["pacs", "query", "--url", pacs_env, "--date",
                              "2024-03-01..2024-03-31", "--json", str(out)], env={
                                  "COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    assert "1 series" in res.output and ABDOMEN_PATIENT_ID in res.output
    doc = json.loads(out.read_text())
    assert doc["n_series"] == 1 and doc["query"]["StudyDate"] == "20240301-20240331"
    assert doc["series"][0]["n_instances"] == 112


def test_retrieve_keeps_transfer_syntax_and_is_atomic(uploaded: dict[str, Path],
                                                      pacs_env: str, tmp_path: Path) -> None:
    tl = uploaded["thoracolumbar"]
    [case] = cases_from_query(pacs_env, QueryParams.from_options("..2023-01-01"))
    assert case.remote is not None and case.remote.n_instances == 20
    cache = tmp_path / "cache"
    folder = retrieve(case.remote, cache)
    assert folder.parent == cache and len(list(folder.iterdir())) == 20
    got = pydicom.dcmread(next(folder.iterdir()))
    assert got.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.90"  # JPEG 2000 lossless
    assert np.array_equal(load(folder).voxels, load(tl).voxels)
    # a second retrieve never reuses or overwrites the first folder
    again = retrieve(case.remote, cache)
    assert again != folder and len(list(again.iterdir())) == 20
    # the server lists fewer instances than promised: nothing is left behind
    wrong = RemoteSeries(case.remote.url, case.remote.study_uid, case.remote.series_uid, 21)
    before = set(cache.iterdir())
    with pytest.raises(PacsServerError, match="received 20 instance"):
        retrieve(wrong, cache)
    assert set(cache.iterdir()) == before


def test_batch_dry_run_lists_query_cases(uploaded: dict[str, Path], pacs_env: str,
                                          tmp_path: Path) -> None:
    res = runner.invoke(app, ["batch", "--out", str(tmp_path / "b"), "--pacs-url", pacs_env,
                              "--date", "2022-01-01..", "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "2 case(s)" in res.output
    res = runner.invoke(app, ["batch", "--out", str(tmp_path / "b"), "--pacs-url", pacs_env,
                              "--modality", "MR", "--dry-run"])
    assert res.exit_code == 0 and "0 case(s)" in res.output


def test_round_trip_through_orthanc(uploaded: dict[str, Path], pacs_env: str,
                                    tmp_path: Path) -> None:
    """rcsa batch: QIDO-RS query -> WADO-RS retrieve -> pipeline -> STOW-RS push of SEG + SR;
    then both are read back over DICOMweb and checked against the case's run folder."""
    out, cache = tmp_path / "batch", tmp_path / "cache"
    res = runner.invoke(app, [
        "batch", "--out", str(out), "--pacs-url", pacs_env, "--date", "2024-03-01..2024-03-31",
        "--body-part", ABDOMEN_BODY_PART, "--push", "--keep", "--cache-dir", str(cache)])
    assert res.exit_code == 0, res.output
    report = json.loads((out / "run_report.json").read_text())
    [case] = report["cases"]
    assert case["status"] == "done", case
    pushed = case["pushed"]
    assert pushed is not None and pushed["pushed"] is True, case
    case_dir = Path(case["output_dir"])
    case_dir = case_dir if case_dir.is_absolute() else out / case_dir
    assert (case_dir / "features_long.csv").is_file()
    # --keep: the retrieved series stays, and it is exactly the uploaded one
    kept = [p.parent for p in cache.rglob("*.dcm")]
    assert kept and len(set(kept)) == 1
    source = kept[0]
    assert set(_source_by_uid(source)) == set(_source_by_uid(uploaded["abdomen"]))

    client = DICOMwebClient(pacs_env)
    client._session.auth = (USER, PASSWORD)
    study = pushed["study_uid"]
    assert len(client.search_for_series(study_instance_uid=study,
                                        search_filters={"Modality": "SEG"})) == 1
    assert len(client.search_for_series(study_instance_uid=study,
                                        search_filters={"Modality": "SR"})) == 1
    seg_ds = client.retrieve_instance(study, pushed["seg_series_uid"],
                                      pushed["seg_sop_instance_uid"])
    sr_ds = client.retrieve_instance(study, pushed["sr_series_uid"],
                                     pushed["sr_sop_instance_uid"])
    seg = hd.seg.segread(io.BytesIO(_bytes(seg_ds)))
    assert seg.SOPInstanceUID == pushed["seg_sop_instance_uid"]
    [ref_series] = seg.ReferencedSeriesSequence
    assert str(ref_series.SeriesInstanceUID) == str(
        pydicom.dcmread(next(source.iterdir())).SeriesInstanceUID)
    check_seg_against_run(seg, case_dir, source)
    check_sr_against_run(sr_ds, case_dir, seg)


def test_push_seg_only_for_the_thoracolumbar_sample(uploaded: dict[str, Path], pacs_env: str,
                                                   tmp_path: Path) -> None:
    """The real JPEG 2000 series covers only T11-T12: with T12 set by hand (and all_levels, as
    T12 is no measured level) the model segments that slice, but no muscle is measured there,
    so the SEG alone is pushed (SR skipped with the reason). The SEG references the compressed
    source instance of slice 10."""
    from rcsa.pipeline import run_scan, write_scan_outputs

    tl = uploaded["thoracolumbar"]
    run_dir = tmp_path / "tl_run"
    from rcsa.pipeline import RunOptions

    write_scan_outputs(run_scan(tl, RunOptions(level_specs=("T12=slice:10",), all_levels=True)),
                       run_dir)
    result = push_results(Case("tl", path=tl), run_dir, tl, url=pacs_env)
    assert result["pushed"] is True and result["sr_sop_instance_uid"] is None
    assert "no measured value" in result["sr_skipped"]
    client = DICOMwebClient(pacs_env)
    client._session.auth = (USER, PASSWORD)
    seg = hd.seg.segread(io.BytesIO(_bytes(client.retrieve_instance(
        result["study_uid"], result["seg_series_uid"], result["seg_sop_instance_uid"]))))
    check_seg_against_run(seg, run_dir, tl)
    [ref_series] = seg.ReferencedSeriesSequence
    [ref] = ref_series.ReferencedInstanceSequence
    slice10 = next(ds for ds in _source_by_uid(tl).values()
                   if abs(float(ds.ImagePositionPatient[2]) - load(tl).slice_z_mm(10)) < 1e-3)
    assert str(ref.ReferencedSOPInstanceUID) == str(slice10.SOPInstanceUID)


def test_push_cli_for_a_local_case(uploaded: dict[str, Path], abd_run: Path,
                                   abd_series: Path, pacs_env: str) -> None:
    res = runner.invoke(app, ["pacs", "push", str(abd_run), "--source", str(abd_series),
                              "--url", pacs_env])
    assert res.exit_code == 0, res.output
    assert "stored SEG" in res.output
