"""Pseudo-labels for self-training (``rcsa.segment.pseudo``): agreement filter, anatomical
rules (a structure failing one becomes *ignore*, never background or the other side), the
written subject and one training step on it.

The rules are tested on a synthetic axial slice (1 mm pixels, fat background, a vertebral
body and the lumbar muscles where anatomy puts them) with hand-made test-time passes; the
end-to-end test runs on sample subject A with a stub predictor made from its reference
labels, so no network is needed, except in the CLI test (shipped model, one slice).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from rcsa.segment import classes as C
from rcsa.segment.pseudo import (
    PASSES,
    Predictor,
    filter_slice,
    pseudo_labels,
    slices_around_levels,
    write_pseudo_subject,
)

CMAP = C.RCSA_CLASSES
N = len(CMAP)
IGN = C.IGNORE_INDEX
SP = (1.0, 1.0)


def phantom() -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32]]:
    """(labels, HU) of a 128 x 128 slice at L3; rows anterior -> posterior, patient's left =
    larger column. Body centroid (50, 64)."""
    lab = np.zeros((128, 128), np.uint8)
    hu = np.full((128, 128), -100.0, np.float32)  # fat
    lab[40:61, 54:75] = C.VERTEBRAL_BODY
    lab[66:82, 68:77] = C.MULTIFIDUS_L  # 144 mm2, posterior, left
    lab[66:82, 51:60] = C.MULTIFIDUS_R
    lab[68:84, 80:96] = C.ERECTOR_L  # 256 mm2
    lab[68:84, 32:48] = C.ERECTOR_R
    lab[44:60, 78:88] = C.PSOAS_L  # 160 mm2, beside the body
    lab[44:60, 40:50] = C.PSOAS_R
    hu[lab > 0] = 50.0
    hu[lab == C.VERTEBRAL_BODY] = 300.0
    return lab, hu


def onehot(lab: npt.NDArray[np.uint8], p: float = 0.97) -> npt.NDArray[np.float32]:
    out = np.full((N, *lab.shape), (1 - p) / (N - 1), np.float32)
    for c in range(N):
        out[c][lab == c] = p
    return out


def passes(lab: npt.NDArray[np.uint8]) -> dict[str, npt.NDArray[np.float32]]:
    return {ps: onehot(lab) for ps in PASSES}


def test_phantom_passes_every_rule() -> None:
    lab, hu = phantom()
    r = filter_slice(passes(lab), hu, "L3", 0, CMAP, SP, 0.9)
    muscles = lab > 0
    assert (r.labels[muscles] == lab[muscles]).all()  # every structure kept
    assert not any(d["rule"] not in ("muscle_density_near_expected", "muscle_halo")
                   for d in r.removed), r.removed
    assert (r.labels[:5, :5] == 0).all()  # fat far away stays background


def test_disagreeing_pixels_become_ignore() -> None:
    lab, hu = phantom()
    p = passes(lab)
    zoomed = lab.copy()
    zoomed[66:74, 68:77] = 0  # the zoomed pass misses the front half of multifidus left
    p["scale"] = onehot(zoomed)
    unsure = onehot(lab)
    p["orig"] = unsure
    unsure[:, 76:84, 84:92] = 1.0 / N  # orig pass unsure inside erector left
    unsure[C.ERECTOR_L, 76:84, 84:92] = 1.5 / N
    r = filter_slice(p, hu, "L3", 0, CMAP, SP, 0.9)
    assert (r.labels[66:74, 68:77] == IGN).all()
    assert (r.labels[74:82, 68:77] == C.MULTIFIDUS_L).all()
    assert (r.labels[76:84, 84:92] == IGN).all()  # all agree, mean probability too low
    assert (r.labels[68:76, 80:84] == C.ERECTOR_L).all()
    assert 0 < r.kept_fraction()["multifidus_left"] < 1


def test_structure_at_an_impossible_level_is_ignored_not_background() -> None:
    lab, hu = phantom()
    lab[90:110, 100:120] = C.GMED_L  # gluteus medius at L3: impossible
    hu[90:110, 100:120] = 50.0
    r = filter_slice(passes(lab), hu, "L3", 0, CMAP, SP, 0.9)
    assert (r.labels[90:110, 100:120] == IGN).all()
    assert {"structure": "gluteus_medius_left", "rule": "impossible_at_level",
            "px": 400} in r.removed
    # the same slice named L5 (below the crest, no ceiling): gluteus medius may be there
    r5 = filter_slice(passes(lab), hu, "L5", 0, CMAP, SP, 0.9)
    assert (r5.labels[90:110, 100:120] == C.GMED_L).all()
    # ... unless the slice lies above the gluteal ceiling (iliac crest + 10 mm)
    r5c = filter_slice(passes(lab), hu, "L5", 10, CMAP, SP, 0.9, ceiling=5)
    assert (r5c.labels[90:110, 100:120] == IGN).all()


def test_sides_are_checked_not_swapped() -> None:
    lab, hu = phantom()
    lab[lab == C.ERECTOR_R] = C.ERECTOR_L  # a "left" erector on the patient's right
    r = filter_slice(passes(lab), hu, "L3", 0, CMAP, SP, 0.9)
    right = np.zeros(lab.shape, bool)
    right[68:84, 32:48] = True
    assert (r.labels[right] == IGN).all()  # never relabelled to erector_spinae_right
    assert not (r.labels == C.ERECTOR_R).any()
    assert (r.labels[68:84, 80:96] == C.ERECTOR_L).all()  # the true left one is kept
    assert any(d["rule"] == "wrong_side" and d["structure"] == "erector_spinae_left"
               for d in r.removed)
    # the right erector was expected and not kept: background where it may lie is ignored
    assert any(d["rule"] == "expected_missing" and d["structure"] == "erector_spinae_right"
               for d in r.removed)


def test_distance_posterior_fat_and_extra_component_rules() -> None:
    lab, hu = phantom()
    lab[50:60, 106:116] = C.PSOAS_L  # a smaller 2nd psoas component, within 40 mm
    lab[100:110, 2:12] = C.PSOAS_R  # psoas 60+ mm from the body
    lab[20:30, 66:72] = C.MULTIFIDUS_L  # a multifidus in front of the body
    lab[110:120, 64:80] = C.ERECTOR_L  # an erector in the subcutaneous fat
    hu[50:60, 106:116] = 50.0
    hu[100:110, 2:12] = 50.0
    hu[20:30, 66:72] = 50.0
    r = filter_slice(passes(lab), hu, "L3", 0, CMAP, SP, 0.9)
    rules = {(d["structure"], d["rule"]) for d in r.removed}
    assert ("psoas_right", "far_from_body") in rules
    assert ("multifidus_left", "not_posterior") in rules
    assert ("erector_spinae_left", "fat") in rules
    assert ("psoas_left", "extra_component") in rules  # the smaller of two passing ones
    for sl in ((slice(100, 110), slice(2, 12)), (slice(20, 30), slice(66, 72)),
               (slice(110, 120), slice(64, 80)), (slice(50, 60), slice(106, 116))):
        assert (r.labels[sl] == IGN).all()
    assert (r.labels[44:60, 78:88] == C.PSOAS_L).all()


def test_missing_expected_muscle_ignores_its_region_not_the_far_background() -> None:
    lab, hu = phantom()
    lab[lab == C.PSOAS_R] = 0  # model missed the right psoas (its HU still muscle)
    r = filter_slice(passes(lab), hu, "L3", 0, CMAP, SP, 0.9)
    assert (r.labels[44:60, 40:50] == IGN).all()  # where it would be: not background
    assert (r.labels[2:10, 2:10] == 0).all()  # fat far from the body stays background
    assert ("psoas_right", "expected_missing") in {(d["structure"], d["rule"])
                                                   for d in r.removed}


def test_slice_without_vertebral_body_at_a_spine_level_is_ignored() -> None:
    lab, hu = phantom()
    lab[lab == C.VERTEBRAL_BODY] = 0
    r = filter_slice(passes(lab), hu, "L3", 0, CMAP, SP, 0.9)
    assert (r.labels == IGN).all()
    assert r.removed[0]["rule"] == "no_vertebral_body"


def test_slices_around_levels_cover_the_slabs() -> None:
    got = slices_around_levels({"L4": 30, "L3": 46, "L2": 60}, 5, 100)
    by = {}
    for name, k in got:
        by.setdefault(name, []).append(k)
    assert 46 in by["L3"] and 30 in by["L4"] and 60 in by["L2"]
    assert all(len(v) == 5 for v in by.values())
    assert max(by["L4"]) < min(by["L3"]) and max(by["L3"]) < min(by["L2"])
    assert min(by["L3"]) >= 38 and max(by["L3"]) <= 53  # half-way to the neighbours
    assert slices_around_levels({"L3": 0}, 3, 5)[0] == ("L3", 0)  # clipped to the scan
    with pytest.raises(ValueError):
        slices_around_levels({"L3": 3}, 0, 5)


# --- a real scan with a stub predictor: sample subject A ------------------------------------


@pytest.fixture(scope="module")
def subject_a(abdomen: Path, tmp_path_factory: pytest.TempPathFactory
              ) -> tuple[Path, dict[str, object], npt.NDArray[np.uint8]]:
    from rcsa.io import load, load_labels
    from rcsa.segment.prepare import convert_labels

    ct = load(abdomen / "ct.nii.gz")
    ref = convert_labels(ct, load_labels(abdomen / "labels_ts_v2.nii.gz", like=ct), "ts_v2",
                         load_labels(abdomen / "vertebral_body_parts.nii.gz", like=ct)
                         ).labels.voxels
    ref = np.where(ref == IGN, 0, ref).astype(np.uint8)

    def predict(ct_: object, ks: list[int]) -> list[dict[str, npt.NDArray[np.float32]]]:
        out = []
        for k in ks:
            p = {ps: onehot(ref[k]) for ps in PASSES}
            flipped = ref[k].copy()
            flipped[:, :40][flipped[:, :40] > 0] = 0  # the flip pass disagrees on the right
            p["flip"] = onehot(flipped)
            out.append(p)
        return out

    stub = Predictor(CMAP, {"name": "stub (reference labels)", "sha256": "0" * 64}, predict)
    levels = {"L3": 72, "L4": 62, "L5": 50}
    pl = pseudo_labels(ct, levels, stub, agreement=0.9, slices_per_level=3)
    out = tmp_path_factory.mktemp("pseudoA") / "A_pseudo"
    doc = write_pseudo_subject(pl, ct, abdomen / "ct.nii.gz", out, name="Ap")
    return out, doc, ref


def test_kept_pixels_are_the_predicted_ones_and_files_are_written(
        subject_a: tuple[Path, dict[str, object], npt.NDArray[np.uint8]]) -> None:
    from rcsa.io import load, load_labels

    out, _doc, ref = subject_a
    for f in ("Ap_labels.nii.gz", "Ap_labels.json", "Ap_prepare.json", "manifest.csv"):
        assert (out / f).is_file(), f
    side = json.loads((out / "Ap_prepare.json").read_text())
    pseudo = side["pseudo"]
    assert pseudo["model"]["sha256"] == "0" * 64 and pseudo["agreement"] == 0.9
    assert len(pseudo["slices"]) == 9 and len(list((out / "qc").glob("*.png"))) == 9
    assert "kept_fraction" in pseudo["slices"][0]
    ct = load(Path(side["source"]["image"]))
    lab = load_labels(out / "Ap_labels.nii.gz", like=ct).voxels
    ks = [s["k"] for s in pseudo["slices"]]
    others = np.setdiff1d(np.arange(lab.shape[0]), ks)
    assert (lab[others] == IGN).all()  # unchosen slices: ignore
    kept = lab[ks] != IGN
    assert kept.any() and (~kept).any()
    assert (lab[ks][kept] == ref[ks][kept]).all()  # a stub that is right is kept right
    right, ref_right = lab[ks][:, :, :40], ref[ks][:, :, :40]
    assert ref_right.any() and (right[ref_right > 0] == IGN).all()  # the passes disagree


def test_one_training_step_on_the_pseudo_subject(
        subject_a: tuple[Path, dict[str, object], npt.NDArray[np.uint8]],
        tmp_path: Path) -> None:
    from rcsa.segment.data import Preprocessing
    from rcsa.segment.train import TrainConfig, build_items, read_manifest, train

    out, _doc, _ref = subject_a
    rows = read_manifest(out / "manifest.csv")
    assert rows[0].label_map == "rcsa" and rows[0].subject == "Ap"
    pre = Preprocessing(spacing_mm=6.0, patch_size=32, context_slices=0)
    items = build_items(rows, pre)
    # only the pseudo-labelled slices (3 per level, over each level's slab)
    assert sorted(int(it["k"]) for it in items) == [46, 50, 54, 58, 62, 66, 69, 72, 75]
    assert all(it["unknown"][C.VERTEBRAL_BODY] == 0 for it in items)  # body known (present)
    cfg = TrainConfig(epochs=1, samples_per_epoch=2, batch_size=2,
                      arch={"name": "BasicUNet", "spatial_dims": 2,
                            "features": [4, 4, 8, 8, 16, 4], "dropout": 0.0}, pre=pre)
    summary = train(out / "manifest.csv", tmp_path / "run", cfg, progress=False)
    assert summary["epochs_run"] == 1 and np.isfinite(summary["history"][0]["loss"])


def test_loss_of_an_all_ignored_batch_is_zero_not_nan() -> None:
    import torch

    from rcsa.segment.train import marginal_loss

    logits = torch.randn(2, N, 8, 8, requires_grad=True)
    target = torch.full((2, 8, 8), IGN, dtype=torch.long)
    loss = marginal_loss(logits, target, torch.zeros(2, N))
    assert float(loss.detach()) == 0.0
    loss.backward()  # type: ignore[no-untyped-call]


def test_cli_prepare_pseudo_with_the_shipped_model(abdomen: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from rcsa.cli import app

    out = tmp_path / "p"
    args = ["prepare-pseudo", str(abdomen / "ct.nii.gz"), "--out", str(out),
            "--levels", "L3=72", "--slices-per-level", "1", "--name", "A1"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    side = json.loads((out / "A1_prepare.json").read_text())
    assert len(side["pseudo"]["model"]["sha256"]) == 64
    assert [s["k"] for s in side["pseudo"]["slices"]] == [72]
    assert "kept multifidus_left" in r.output
    again = CliRunner().invoke(app, args)  # a non-empty output folder is refused
    assert again.exit_code not in (0, 1), again.output
    bad = CliRunner().invoke(app, [*args[:-2], "--agreement", "1.5", "--overwrite"])
    assert bad.exit_code not in (0, 1), bad.output
