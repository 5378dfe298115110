"""Label preparation: TotalSegmentator v1/v2 -> rcsa classes, on the real sample data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rcsa.io import load, load_labels
from rcsa.segment import classes as C
from rcsa.segment.prepare import PreparedLabels, convert_labels, prepare_training
from rcsa.segment.split import split_side


@pytest.fixture(scope="module")
def subject_a(abdomen: Path):  # type: ignore[no-untyped-def]
    ct = load(abdomen / "ct.nii.gz")
    v2 = load_labels(abdomen / "labels_ts_v2.nii.gz", like=ct)
    parts = load_labels(abdomen / "vertebral_body_parts.nii.gz", like=ct)
    return ct, v2, parts, convert_labels(ct, v2, "ts_v2", parts)


def _area(prep: PreparedLabels, k: int, cid: int) -> float:
    return float((prep.labels.voxels[k] == cid).sum()) * 9.0  # 3 mm x 3 mm pixels


def test_every_class_present_and_known(subject_a) -> None:  # type: ignore[no-untyped-def]
    _, _, _, prep = subject_a
    counts = prep.class_voxels()
    assert all(v > 0 for v in counts.values()), counts
    assert prep.known_classes == tuple(range(len(C.RCSA_CLASSES)))


def test_reference_areas_at_l3(subject_a) -> None:  # type: ignore[no-untyped-def]
    """README figures at L3 (k 72, above the iliac crest): psoas = iliopsoas; body = label
    AND part 1; autochthon = multifidus + erector spinae."""
    _, _, _, prep = subject_a
    assert _area(prep, 72, C.VERTEBRAL_BODY) == pytest.approx(1521, abs=9)
    assert _area(prep, 72, C.PSOAS_L) == pytest.approx(648, abs=9)
    assert _area(prep, 72, C.PSOAS_R) == pytest.approx(702, abs=9)
    assert _area(prep, 72, C.MULTIFIDUS_L) + _area(prep, 72, C.ERECTOR_L) == pytest.approx(
        2619, abs=9
    )
    assert _area(prep, 72, C.MULTIFIDUS_R) + _area(prep, 72, C.ERECTOR_R) == pytest.approx(
        2349, abs=9
    )


def test_psoas_rule_levels(subject_a) -> None:  # type: ignore[no-untyped-def]
    _, v2, _, prep = subject_a
    vox = prep.labels.voxels
    ilio = np.isin(v2.voxels, [88, 89])
    # below L5 (lowest L5 slice: k 42) iliopsoas is ignored, never psoas
    assert not np.isin(vox[:42], [C.PSOAS_L, C.PSOAS_R]).any()
    assert (vox[:42][ilio[:42]] == C.IGNORE_INDEX).all()
    # from L5 to the crest (k 42..60): part psoas, part iliacus (background)
    mid = vox[42:61][ilio[42:61]]
    assert np.isin(mid, [C.PSOAS_L, C.PSOAS_R]).any() and (mid == 0).any()
    # at L5 mid-body (k 50) psoas is defined on both sides and smaller than iliopsoas
    # (README: iliopsoas 1530 / 1278 mm^2 there)
    assert 300 < _area(prep, 50, C.PSOAS_L) < 1530 and 300 < _area(prep, 50, C.PSOAS_R) < 1278
    # above the crest all iliopsoas is psoas, on the right side
    top = vox[61:][ilio[61:]]
    assert np.isin(top, [C.PSOAS_L, C.PSOAS_R]).all()
    assert (vox[61:][v2.voxels[61:] == 88] == C.PSOAS_L).all()


def test_left_is_patient_left(subject_a) -> None:  # type: ignore[no-untyped-def]
    """Canonical LPS: patient's left = larger column index i."""
    _, _, _, prep = subject_a
    vox = prep.labels.voxels
    for lid, rid in [(C.GMAX_L, C.GMAX_R), (C.PSOAS_L, C.PSOAS_R), (C.ERECTOR_L, C.ERECTOR_R)]:
        assert np.nonzero(vox == lid)[2].mean() > np.nonzero(vox == rid)[2].mean()


def test_multifidus_is_medial_to_erector(subject_a) -> None:  # type: ignore[no-untyped-def]
    _, v2, _, prep = subject_a
    for k in (62, 72, 85):  # L4, L3, L2
        vox = prep.labels.voxels[k]
        mid = np.median(np.nonzero(np.isin(v2.voxels[k], range(25, 34)))[1])
        for mf, es in ((C.MULTIFIDUS_L, C.ERECTOR_L), (C.MULTIFIDUS_R, C.ERECTOR_R)):
            assert (vox == mf).sum() > 10 and (vox == es).sum() > 10
            d_mf = np.abs(np.nonzero(vox == mf)[1] - mid).mean()
            d_es = np.abs(np.nonzero(vox == es)[1] - mid).mean()
            assert d_mf < d_es


def test_sacral_slices_are_all_multifidus(subject_a) -> None:  # type: ignore[no-untyped-def]
    _, _, _, prep = subject_a
    vox = prep.labels.voxels[40]  # sacrum and S1, no lumbar vertebra
    assert (vox == C.MULTIFIDUS_L).any()
    assert not np.isin(vox, [C.ERECTOR_L, C.ERECTOR_R]).any()


def test_split_follows_a_fat_plane() -> None:
    """A synthetic muscle with a fat line: the boundary lands on the line, not half-way."""
    hu = np.full((40, 60), 50.0)
    mask = np.zeros((40, 60), bool)
    mask[10:30, 5:55] = True
    hu[:, 40:42] = -150.0  # fat plane at columns 40-41 (seeds: near bone; lateral quarter)
    bone = np.zeros_like(mask)
    bone[10:30, 0:3] = True
    mf = split_side(hu, mask, bone, midline_col=0.0, spacing_mm=(1.0, 1.0))
    cols = np.nonzero(mf)[1]
    assert cols.max() in (39, 40, 41)  # half-way between the seeds would be 27
    assert cols.min() == 5


def test_v1_and_v2_agree(abdomen: Path, subject_a) -> None:  # type: ignore[no-untyped-def]
    ct, _, parts, prep2 = subject_a
    v1 = load_labels(abdomen / "labels_ts_v1.nii.gz", like=ct)
    prep1 = convert_labels(ct, v1, "ts_v1", parts)
    for cid in (C.GMAX_L, C.GMED_R, C.PSOAS_L):
        a, b = prep1.labels.voxels == cid, prep2.labels.voxels == cid
        dice = 2 * (a & b).sum() / (a.sum() + b.sum())
        assert dice > 0.85, (cid, dice)


def test_prepare_training_writes_outputs(thoracolumbar: Path, tmp_path: Path) -> None:
    res = prepare_training(
        thoracolumbar / "dicom", thoracolumbar / "labels_ts_v2.nii.gz", "ts_v2", tmp_path,
        name="B", qc_slices=2,
    )
    assert res.labels_path.is_file() and len(res.qc_paths) == 2
    assert C.VERTEBRAL_BODY not in res.known_classes  # no body split for subject B
    info = json.loads(res.sidecar_path.read_text())
    assert "RULE-DERIVED" in info["note"]
    names = json.loads((tmp_path / "B_labels.json").read_text())
    assert names["1"] == "multifidus_left"
    ct = load(thoracolumbar / "dicom")
    back = load_labels(res.labels_path, like=ct)
    assert back.voxels.max() <= C.ERECTOR_R
    assert (back.voxels > 0).sum() == sum(
        v for k, v in res.class_voxels.items() if k != "background"
    )


def test_cli_prepare_training(abdomen: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from rcsa.cli import app

    r = CliRunner().invoke(app, [
        "prepare-training", str(abdomen / "ct.nii.gz"), str(abdomen / "labels_ts_v1.nii.gz"),
        "--label-map", "ts_v1", "--out", str(tmp_path), "--name", "A",
    ])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "A_labels.nii.gz").is_file()
    r = CliRunner().invoke(app, [
        "prepare-training", str(abdomen / "ct.nii.gz"), str(abdomen / "labels_ts_v1.nii.gz"),
        "--label-map", "nonsense", "--out", str(tmp_path),
    ])
    assert r.exit_code == 4


def test_cli_prepare_training_refused_write_exits_10(thoracolumbar: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk while the prepared subject is written: one line naming the output, exit
    code 10 (environment), not an internal error; no temporary file left behind."""
    import errno
    import os

    from typer.testing import CliRunner

    from rcsa.cli import EXIT_ENVIRONMENT, app

    real = os.replace

    def replace(src: object, dst: object, *a: object, **k: object) -> None:
        if str(dst).endswith("_prepare.json"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(src, dst, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", replace)
    r = CliRunner().invoke(app, [
        "prepare-training", str(thoracolumbar / "dicom"),
        str(thoracolumbar / "labels_ts_v2.nii.gz"), "--label-map", "ts_v2",
        "--out", str(tmp_path), "--name", "B",
    ])
    assert r.exit_code == EXIT_ENVIRONMENT, r.output
    assert "B_prepare.json" in r.output and "No space left" in r.output
    assert "internal error" not in r.output
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
