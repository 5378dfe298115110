"""Label-aware synthetic variation (rcsa.segment.synth) and the test-time agreement."""

from __future__ import annotations

import numpy as np
import pytest

from rcsa.segment import synth
from rcsa.segment.classes import RCSA_CLASSES


def _phantom() -> dict[str, np.ndarray]:
    """A 160 x 160 px body at 2 mm: ellipse of soft tissue (40 HU) in a 16 px fat layer
    (-100 HU), a vertebral body, two paraspinal muscles, an unenhanced aorta (aux 1)."""
    h = w = 160
    yy, xx = np.mgrid[0:h, 0:w]
    hu = np.full((h, w), -1000.0)
    outer = ((yy - 80) / 60) ** 2 + ((xx - 80) / 70) ** 2 <= 1
    inner = ((yy - 80) / 44) ** 2 + ((xx - 80) / 54) ** 2 <= 1
    hu[outer] = -100.0
    hu[inner] = 40.0
    lab = np.zeros((h, w), np.float32)
    body = (yy - 90) ** 2 + (xx - 80) ** 2 <= 12**2
    lab[body] = 11
    hu[body] = 300.0
    for cid, cx in ((2, 62), (1, 98)):  # multifidus right / left (patient's left = larger i)
        m = (yy - 105) ** 2 + (xx - cx) ** 2 <= 10**2
        lab[m] = cid
        hu[m] = 50.0
    aux = np.zeros((h, w), np.float32)
    aorta = (yy - 70) ** 2 + (xx - 85) ** 2 <= 5**2
    aux[aorta] = synth.VESSEL
    img = np.asarray(np.clip(synth.to_norm(hu), 0, 1), np.float32)
    stack = np.stack([img, img, img])
    return {"image": stack, "thick": stack.copy(), "label": lab[None], "aux": aux[None]}


def _fat_px(d: dict[str, np.ndarray]) -> int:
    hu = synth.to_hu(np.asarray(d["image"])[1])
    return int(((hu > -190) & (hu < -30)).sum())


def test_fat_warp_changes_the_fat_layer_not_the_muscles() -> None:
    d0 = _phantom()
    thin = synth.fat_warp(dict(d0), np.random.RandomState(0), scale=0.5)
    thick = synth.fat_warp(dict(d0), np.random.RandomState(0), scale=2.0)
    assert _fat_px(thin) < 0.7 * _fat_px(d0) < _fat_px(d0) < 0.8 * _fat_px(thick)
    # everything inside the abdominal wall stays put (the thick one is padded with air)
    assert np.array_equal(thin["label"], d0["label"])
    pad = (thick["label"].shape[-1] - d0["label"].shape[-1]) // 2
    assert pad > 0
    inner = thick["label"][:, pad:-pad, pad:-pad]
    assert np.array_equal(inner, d0["label"])


def test_atrophy_erodes_muscles_into_fat() -> None:
    d0 = _phantom()
    d = synth.atrophy(dict(d0), np.random.RandomState(1), pixel_mm=2.0)
    lab0, lab = d0["label"][0], d["label"][0]
    for cid in (1, 2):
        assert (lab == cid).sum() < (lab0 == cid).sum()
    ring = (lab0 != lab)
    assert ring.any() and np.all(np.isin(lab0[ring], synth.MUSCLE_IDS)) and np.all(lab[ring] == 0)
    assert synth.to_hu(d["image"][1][ring]).mean() == pytest.approx(-100, abs=20)
    assert np.array_equal(lab == 11, lab0 == 11)  # the vertebral body is not a muscle


def test_hypertrophy_grows_muscles_into_fat_only() -> None:
    """Muscles grow into the fat next to them (<= 5 mm), painted with their own HU and
    labelled as themselves; soft tissue, the vertebral body and air are never taken."""
    d0 = _phantom()
    yy, xx = np.mgrid[0:160, 0:160]
    hu = synth.to_hu(d0["image"][1]).copy()
    pad = ((yy - 105) ** 2 + (xx - 98) ** 2 <= 18**2) & (d0["label"][0] == 0)
    hu[pad] = -100.0  # a fat pad around the left multifidus only
    img = np.asarray(np.clip(synth.to_norm(hu), 0, 1), np.float32)
    d0["image"] = np.stack([img, img, img])
    d0["thick"] = d0["image"].copy()
    lab0 = d0["label"][0]
    grown_any = False
    for seed in range(6):
        d = synth.hypertrophy(dict(d0), np.random.RandomState(seed), pixel_mm=2.0)
        lab = d["label"][0]
        ring = lab != lab0
        if not ring.any():
            continue
        grown_any = True
        assert np.all(lab0[ring] == 0) and np.all(lab[ring] == 1)  # only the left one, fat
        assert pad[ring].all()
        dist = np.sqrt((yy - 105) ** 2 + (xx - 98) ** 2)
        assert dist[ring].max() <= 10 + 3 + 0.5  # radius 10 px + at most 3 px (5 mm)
        assert synth.to_hu(d["image"][1][ring]).mean() == pytest.approx(50, abs=10)
        assert np.array_equal(lab == 11, lab0 == 11) and np.array_equal(lab == 2, lab0 == 2)
        assert np.array_equal(d["image"][:, ~ring], d0["image"][:, ~ring])
    assert grown_any
    assert synth.expand("hypertrophy") == ("hypertrophy",)


def test_lean_raises_muscle_hu_per_muscle_and_keeps_the_rest() -> None:
    d0 = _phantom()
    d = synth.lean(dict(d0), np.random.RandomState(3))
    lab = d0["label"][0]
    m = np.isin(lab, synth.MUSCLE_IDS)
    shifts = []
    for cid in np.unique(lab[m]):
        sel = lab == cid
        delta = synth.to_hu(d["image"][1][sel]) - synth.to_hu(d0["image"][1][sel])
        assert np.allclose(delta, delta.mean(), atol=0.5)  # one shift per muscle, texture kept
        assert 5.0 - 1e-3 <= delta.mean() <= 35.0 + 1e-3
        shifts.append(float(delta.mean()))
    assert len(shifts) > 1 and max(shifts) - min(shifts) <= 10.0 + 1e-3
    assert np.array_equal(d["label"], d0["label"])
    assert np.array_equal(d["image"][:, ~m], d0["image"][:, ~m])


def test_infiltration_lowers_muscle_hu_and_keeps_labels() -> None:
    d0 = _phantom()
    d = synth.infiltration(dict(d0), np.random.RandomState(2))
    m = np.isin(d0["label"][0], synth.MUSCLE_IDS)
    before = synth.to_hu(d0["image"][1][m]).mean()
    after = synth.to_hu(d["image"][1][m])
    assert before - after.mean() >= 10
    assert (after < -50).mean() > 0.02  # fat streaks
    assert np.array_equal(d["label"], d0["label"])
    outside = ~m
    assert np.array_equal(d["image"][:, outside], d0["image"][:, outside])


def test_contrast_enhances_only_labelled_vessels() -> None:
    d0 = _phantom()
    d = synth.contrast(dict(d0), np.random.RandomState(3))
    vessel = d0["aux"][0] == synth.VESSEL
    gain = synth.to_hu(d["image"][1]) - synth.to_hu(d0["image"][1])
    assert gain[vessel].mean() > 80
    far = np.ones_like(vessel)
    far[60:81, 75:96] = False
    assert np.abs(gain[far]).max() < 1e-3
    again = synth.contrast(dict(d), np.random.RandomState(3))  # already enhanced: unchanged
    assert np.array_equal(again["image"], d["image"])


def test_acquisition_families_leave_labels_alone() -> None:
    d0 = _phantom()
    d0["thick"] = np.asarray(d0["thick"] * 0.9, np.float32)
    for name in ("thickness", "pixel", "kernel"):
        d = synth.FAMILIES[name].fn(dict(d0), np.random.RandomState(4))
        assert d["image"].shape == d0["image"].shape
        assert not np.array_equal(d["image"], d0["image"]), name
        assert np.array_equal(d["label"], d0["label"])


def test_expand_groups_and_unknown_names() -> None:
    assert synth.expand("tissue") == ("fat", "atrophy", "infiltration", "contrast")
    assert synth.expand("kernel,fat") == ("fat", "kernel")
    assert "geometry" in synth.expand("all")
    assert synth.expand("") == ()
    with pytest.raises(ValueError, match="unknown synthetic variation"):
        synth.expand("tissue,sunburn")


def test_tta_agreement() -> None:
    from rcsa.segment.infer import tta_agreement

    lab = np.zeros((40, 40), np.uint8)
    lab[5:15, 5:15] = 1  # multifidus left
    lab[5:15, 20:30] = 3  # erector spinae left
    same = tta_agreement(lab, [lab, lab.copy()], RCSA_CLASSES)
    assert same == {"multifidus_left": 1.0, "erector_spinae_left": 1.0, "autochthon_left": 1.0}
    other = lab.copy()
    other[5:15, 5:15] = 0
    res = tta_agreement(lab, [lab, other], RCSA_CLASSES)
    assert res["multifidus_left"] == pytest.approx(0.5)
    assert res["erector_spinae_left"] == 1.0
    assert 0.5 < res["autochthon_left"] < 1.0
