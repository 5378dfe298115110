"""Segmentation confidence: test-time agreement and needs_review (issue 16)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from rcsa.io import load
from rcsa.segment import load_model, segment
from rcsa.segment.infer import NEEDS_REVIEW_BELOW


def test_confidence_per_structure_and_missing_expected_muscles(abdomen: Path) -> None:
    ct = load(abdomen / "ct.nii.gz")
    model = load_model()
    lv = segment(ct, {"L3": 72}, model=model)["L3"]
    assert {"psoas_left", "psoas_right", "multifidus_left", "autochthon_left"} <= set(
        lv.seg_confidence)
    assert all(0.0 <= v <= 1.0 for v in lv.seg_confidence.values())
    assert set(lv.needs_review) == {n for n, v in lv.seg_confidence.items()
                                    if v < NEEDS_REVIEW_BELOW}
    # no flip / zoom passes: no confidence, never a made-up one
    assert segment(ct, {"L3": 72}, model=model, confidence=False)["L3"].seg_confidence == {}
    # an empty slice (air) named L3: nothing is segmented outside a body, so every muscle
    # anatomy puts there is "expected, not found" with confidence 0 (single networks
    # painted muscle into pure air before session 10)
    air = replace(ct, voxels=np.full(ct.voxels.shape, -1000, np.int16))
    lv = segment(air, {"L3": 72}, model=model)["L3"]
    missing = 0
    for name in ("psoas_left", "psoas_right", "multifidus_left", "multifidus_right",
                 "erector_spinae_left", "erector_spinae_right"):
        assert name in lv.needs_review
        if not lv.mask(name).any():
            assert lv.seg_confidence[name] == 0.0
            missing += 1
    assert missing == 6
    assert not lv.labels.any()
    assert "gluteus_maximus_left" not in lv.seg_confidence
    assert any("expected at L3, not found" in f for f in lv.flags)


def test_agreement_compares_passes_through_the_same_post_processing(
        abdomen: Path, monkeypatch) -> None:
    """The score measures the stability of what is reported: when every test-time pass
    gives the same probabilities, every structure found agrees fully (1.0), although the
    rule split moved pixels of the arg-max. Comparing the post-processed labels with a raw
    arg-max (or across grids) scored such a slice 0.93."""
    from rcsa.segment import infer

    ct = load(abdomen / "ct.nii.gz")
    model = load_model()
    real = infer.predict_passes

    def identical(net, stacks, dev, roi, passes, perm):  # type: ignore[no-untyped-def]
        r = real(net, stacks, dev, roi, ("orig",), perm)
        return {p: r["orig"] for p in passes}

    monkeypatch.setattr(infer, "predict_passes", identical)
    lv = segment(ct, {"L3": 72}, model=model)["L3"]
    assert lv.postprocessing["pixels_resplit_by_rule"] > 0
    found = {n: v for n, v in lv.seg_confidence.items()
             if not n.startswith("autochthon") and lv.mask(n).any()}
    assert {"multifidus_left", "erector_spinae_right", "psoas_left"} <= set(found)
    assert all(v == 1.0 for v in lv.seg_confidence.values()), lv.seg_confidence
    assert not lv.needs_review
