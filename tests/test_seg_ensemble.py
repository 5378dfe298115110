"""Segmentation ensembles: mean of members, member agreement as confidence (issue 16)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from rcsa.cli import app
from rcsa.errors import ModelChecksumError, ModelError
from rcsa.io import load
from rcsa.segment import load_model, segment
from rcsa.segment.model import (
    DEFAULT_MODEL,
    ENSEMBLE_FORMAT,
    EnsembleNetwork,
    build_network,
    sha256_file,
    write_ensemble,
)


def _copy_model(dst: Path, noise: float = 0.0, seed: int = 0) -> Path:
    """A copy of the shipped model, its weights perturbed by Gaussian noise of ``noise`` times
    each tensor's standard deviation (a stand-in for a member trained with another seed)."""
    dst.mkdir(parents=True)
    meta = json.loads(DEFAULT_MODEL.read_text())
    state = torch.load(DEFAULT_MODEL.parent / meta["weights"]["file"], weights_only=True)
    g = torch.Generator().manual_seed(seed)
    if noise:
        state = {k: (v + noise * v.float().std() * torch.randn(v.shape, generator=g)
                     if v.is_floating_point() and v.numel() > 1 else v)
                 for k, v in state.items()}
    torch.save(state, dst / "model.pt")
    meta["weights"] = {"file": "model.pt", "sha256": sha256_file(dst / "model.pt"),
                       "bytes": (dst / "model.pt").stat().st_size}
    meta["training"]["config"]["seed"] = seed
    (dst / "metadata.json").write_text(json.dumps(meta))
    return dst / "metadata.json"


def test_ensemble_network_returns_the_log_of_the_mean_probability() -> None:
    torch.manual_seed(0)
    arch = {"name": "BasicUNet", "spatial_dims": 2, "features": [4, 4, 8, 8, 16, 4],
            "dropout": 0.0}
    nets = [build_network(arch, 3, 5).eval() for _ in range(3)]
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        want = torch.stack([torch.softmax(n(x), 1) for n in nets]).mean(0)
        got = torch.softmax(EnsembleNetwork(nets)(x), 1)
    assert torch.allclose(got, want, atol=1e-6)
    with pytest.raises(ModelError):
        EnsembleNetwork(nets[:1])


def test_identical_members_reproduce_the_single_model(abdomen: Path, tmp_path: Path) -> None:
    """Two copies of one network: the ensemble's labels are the network's, and the members
    agree with each other, so the agreement is what one member's raw arg-max scores against the
    post-processed labels, the same for any number of copies."""
    a, b = _copy_model(tmp_path / "a"), _copy_model(tmp_path / "b", seed=1)
    meta = write_ensemble([a, b.parent], tmp_path / "ens", name="twins")
    ens = load_model(meta)
    assert ens.is_ensemble and len(ens.members) == 2
    doc = json.loads(meta.read_text())
    assert doc["ensemble"]["members"] == 2 and doc["name"] == "twins"
    assert [m["seed"] for m in doc["training"]["members"]] == [0, 1]
    ct = load(abdomen / "ct.nii.gz")
    single = segment(ct, {"L3": 72, "L5": 46}, model=load_model())
    res = segment(ct, {"L3": 72, "L5": 46}, model=ens)
    assert res.model_info["confidence"] == "ensemble agreement (2 members)"
    c = _copy_model(tmp_path / "c", seed=2)
    triple = segment(ct, {"L3": 72, "L5": 46}, model=load_model(
        write_ensemble([a, b, c], tmp_path / "ens3")))
    for name in ("L3", "L5"):
        assert np.array_equal(res[name].labels, single[name].labels)
        assert res[name].seg_confidence == triple[name].seg_confidence
        found = {n for n in res[name].seg_confidence if res[name].seg_confidence[n] > 0}
        assert found and all(0.0 < res[name].seg_confidence[n] <= 1.0 for n in found)


def test_disagreeing_members_lower_the_confidence_and_the_threshold_is_the_models(
        abdomen: Path, tmp_path: Path) -> None:
    a = _copy_model(tmp_path / "a")
    b = _copy_model(tmp_path / "b", noise=0.6, seed=3)
    meta = write_ensemble([a, b], tmp_path / "ens", needs_review_below=0.97)
    ens = load_model(meta)
    ct = load(abdomen / "ct.nii.gz")
    res = segment(ct, {"L3": 72}, model=ens)
    lv = res["L3"]
    assert res.model_info["needs_review_below"] == 0.97
    assert lv.review_below == 0.97
    assert min(lv.seg_confidence.values()) < 1.0
    assert set(lv.needs_review) == {n for n, v in lv.seg_confidence.items() if v < 0.97}
    assert any("ensemble agreement" in f for f in lv.flags if f.startswith("needs review"))


def test_ensemble_refusals(tmp_path: Path) -> None:
    a, b = _copy_model(tmp_path / "a"), _copy_model(tmp_path / "b", seed=1)
    with pytest.raises(ModelError, match="at least two"):
        write_ensemble([a], tmp_path / "one")
    # members must share the preprocessing
    odd = json.loads(b.read_text())
    odd["preprocessing"]["in_plane_spacing_mm"] = 1.5
    c = tmp_path / "c"
    shutil.copytree(b.parent, c)
    (c / "metadata.json").write_text(json.dumps(odd))
    with pytest.raises(ModelError, match="preprocessing"):
        write_ensemble([a, c], tmp_path / "mixed")
    assert not (tmp_path / "mixed").exists()
    with pytest.raises(ModelError, match="outside"):
        write_ensemble([a, b], tmp_path / "bad", needs_review_below=1.5)
    meta = write_ensemble([a, b], tmp_path / "ens")
    before = (tmp_path / "ens" / "model.pt").read_bytes()
    with pytest.raises(ModelError, match="already holds a model"):
        write_ensemble([a, b], tmp_path / "ens")
    assert (tmp_path / "ens" / "model.pt").read_bytes() == before
    # an ensemble is not a member
    with pytest.raises(ModelError, match="itself an ensemble"):
        write_ensemble([meta, a], tmp_path / "nested")
    # metadata and weights disagree on the member count
    doc = json.loads(meta.read_text())
    doc["ensemble"]["members"] = 3
    meta.write_text(json.dumps(doc))
    with pytest.raises(ModelError, match=r"2 members but metadata\.json records 3"):
        load_model(meta)
    # a damaged ensemble file fails its checksum
    state = torch.load(tmp_path / "ens" / "model.pt", weights_only=True)
    assert state["format"] == ENSEMBLE_FORMAT
    (tmp_path / "ens" / "model.pt").write_bytes(before[:-10])
    with pytest.raises(ModelChecksumError):
        load_model(meta)


def test_cli_ensemble(tmp_path: Path) -> None:
    a, b = _copy_model(tmp_path / "a"), _copy_model(tmp_path / "b", seed=1)
    r = CliRunner().invoke(app, ["ensemble", str(a), str(b.parent), "--out",
                                 str(tmp_path / "ens"), "--needs-review-below", "0.9"])
    assert r.exit_code == 0, r.output
    assert "ensemble of 2 models" in r.output
    doc = json.loads((tmp_path / "ens" / "metadata.json").read_text())
    assert doc["confidence"]["needs_review_below"] == 0.9
    r = CliRunner().invoke(app, ["ensemble", str(a), str(b), "--out", str(tmp_path / "ens")])
    assert r.exit_code not in (0, 1), r.output
    assert "already holds a model" in r.output


CANDIDATE = DEFAULT_MODEL.parent / "candidates" / "v0.4-ensemble" / "metadata.json"
CANDIDATE_A_ONLY = (Path(__file__).resolve().parents[1] / "benchmarks" / "models"
                    / "v0.4-ensemble-A-only" / "metadata.json")


def test_committed_v04_candidate_is_the_documented_ensemble(abdomen: Path) -> None:
    """The v0.4 candidate (docs/model_card.md): v0.3 plus three `--synth tissue` seeds,
    trained on A and B; its A-only sibling the same four recipes with B held out."""
    full, held = load_model(CANDIDATE), load_model(CANDIDATE_A_ONLY)
    for m, subjects, val in ((full, ["A", "B"], []), (held, ["A"], ["B"])):
        assert m.is_ensemble and len(m.members) == 4
        t = m.metadata["training"]
        assert t["train_subjects"] == subjects and t["val_subjects"] == val
        synth = [mt["config"].get("synth") or []
                 for mt in m.metadata["ensemble"]["member_training"]]
        assert [bool(s) for s in synth] == [False, True, True, True]
        assert [mm["seed"] for mm in t["members"]] == [0, 0, 1, 2]
    # v0.3 (the default until session 10, kept in models/previous) is the candidate's first
    # member, bit for bit
    single = load_model(DEFAULT_MODEL.parent / "previous" / "v0.3" / "metadata.json")
    for k, v in single.network.state_dict().items():
        assert torch.equal(v, full.members[0].state_dict()[k]), k
    ct = load(abdomen / "ct.nii.gz")
    lv = segment(ct, {"L3": 72}, model=full)["L3"]
    for n in ("psoas_left", "psoas_right", "multifidus_left", "erector_spinae_right",
              "vertebral_body"):
        assert lv.area_mm2(n) > 100.0, n
        assert 0.0 < lv.seg_confidence[n] <= 1.0
