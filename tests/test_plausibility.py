"""Plausibility envelopes (issue 6): literature-backed QC flags that never change numbers."""

from __future__ import annotations

import numpy as np
import pytest

from rcsa.anatomy import ANATOMY, AnatomyTable, AnatomyTableError, Envelope
from rcsa.config import load_config
from rcsa.io.volume import CTVolume, Geometry, SourceInfo
from rcsa.levels.types import Level, LevelMap
from rcsa.measure import LevelLabels, Measurement, measure
from rcsa.measure.plausibility import (
    flag_rows,
    plausibility_from,
    plausibility_table,
    reference_range,
)
from rcsa.measure.table import MUSCLES, targets
from rcsa.segment.classes import RCSA_CLASSES


def test_every_configured_muscle_level_side_has_an_envelope_with_sources() -> None:
    table = plausibility_table()
    cfg = load_config()
    for muscle, level in targets(cfg):
        for side in ("left", "right"):
            for q in ("csa_mm2", "mean_hu", "fat_pct"):
                rng = reference_range(level, muscle, side, q)
                assert rng is not None, (level, muscle, side, q)
                assert rng.sources and all(s in table.references for s in rng.sources)
        assert reference_range(level, muscle, "both", "asymmetry_pct") is not None
    for v in ("L3", "L4", "L5"):
        assert reference_range(v, "vertebral_body", "", "csa_mm2") is not None
    # a muscle's CSA envelope is per side: none is applied to the bilateral sum
    assert reference_range("L3", "psoas", "both", "csa_mm2") is None
    # the muscle attenuation envelope is not applied to bone
    assert reference_range("L3", "vertebral_body", "", "mean_hu") is None


def test_flags_name_value_range_and_source_and_keep_numbers() -> None:
    rows = [
        Measurement("L3", "psoas", "left", "csa_mm2", 80.0, "mm2"),
        Measurement("L3", "psoas", "right", "csa_mm2", 700.0, "mm2"),
        Measurement("L3", "psoas", "left", "mean_hu", 160.0, "HU", flag="touches the edge"),
        Measurement("L3", "psoas", "both", "asymmetry_pct", -80.0, "%"),
        Measurement("L3", "psoas", "left", "fat_pct", None, "%", reason="not segmented"),
        Measurement("L4", "vertebral_body", "", "csa_mm2", 5000.0, "mm2"),
    ]
    out = flag_rows(rows)
    assert [r.value for r in out] == [r.value for r in rows]
    assert "below" in out[0].flag and "150 to 4000 mm2" in out[0].flag
    assert "lawlor2022" in out[0].flag
    assert out[1].flag == ""
    assert out[2].flag.startswith("touches the edge; implausible: 160 HU is above")
    assert "below" in out[3].flag and "hides1994" in out[3].flag
    assert out[4].flag == ""  # no value, no flag (the reason says why)
    assert "above" in out[5].flag and "mosekilde1990" in out[5].flag


def test_malformed_envelopes_are_refused() -> None:
    """Envelopes are declared in the anatomy table, which refuses bad ones on construction."""
    ok = Envelope("csa_mm2", "mm2", "t", ("a",), low=1.0, high=2.0)

    def table(e: Envelope, refs: dict[str, str]) -> AnatomyTable:
        return AnatomyTable(ANATOMY.structures, (e,), refs)

    rng = plausibility_from(table(ok, {**ANATOMY.references, "a": "A"})).ranges
    assert any(r.structure == "*" and r.low == 1.0 for r in rng)
    with pytest.raises(AnatomyTableError, match="sources"):
        table(ok, dict(ANATOMY.references))
    with pytest.raises(AnatomyTableError, match="low must be below high"):
        table(Envelope("csa_mm2", "mm2", "t", ("a",), low=3.0, high=2.0), {"a": "A",
              **ANATOMY.references})
    with pytest.raises(AnatomyTableError, match="low or high"):
        table(Envelope("csa_mm2", "mm2", "t", ("a",)), {"a": "A", **ANATOMY.references})


def _synthetic_scan(psoas_half_width_px: int) -> tuple[CTVolume, LevelMap, dict[str, LevelLabels]]:
    """One 1 mm x 1 mm slice at L3: a 40 x 40 mm vertebral body and two square psoas."""
    n = 200
    hu = np.full((1, n, n), -100, np.int16)
    lab = np.zeros((n, n), np.uint8)
    body = RCSA_CLASSES.id_of("vertebral_body")
    lab[80:120, 80:120] = body
    hu[0, 80:120, 80:120] = 200
    w = psoas_half_width_px
    for name, ci in (("psoas_right", 50), ("psoas_left", 150)):  # patient's left = +x (LPS)
        lab[100 - w : 100 + w, ci - w : ci + w] = RCSA_CLASSES.id_of(name)
        hu[0, 100 - w : 100 + w, ci - w : ci + w] = 40
    geo = Geometry((n, n, 1), np.array([1.0, 1.0, 3.0]), np.zeros(3), np.eye(3))
    ct = CTVolume(hu, geo, SourceInfo("synthetic", "synthetic"))
    lm = LevelMap({"L3": Level("L3", "found", 0, 0.0, "manual", 1.0)}, n_slices=1)
    return ct, lm, {"L3": LevelLabels("L3", 0, lab, RCSA_CLASSES, "synthetic")}


def test_measure_flags_an_implausibly_small_psoas_without_changing_it() -> None:
    ct, lm, labels = _synthetic_scan(psoas_half_width_px=5)  # 10 x 10 mm = 100 mm2 per side
    m = measure(ct, lm, labels, scan_id="tiny")
    assert m.value("L3", "psoas", "left", "csa_mm2") == pytest.approx(100.0)
    row = m.wide_row()
    assert row["L3_psoas_left_csa_mm2"] == pytest.approx(100.0)
    assert "implausible: 100 mm2 is below" in row["L3_psoas_flags"]
    assert row["L3_vertebral_body_csa_mm2"] == pytest.approx(1600.0)
    assert row["L3_vertebral_body_flags"] is None

    ct, lm, labels = _synthetic_scan(psoas_half_width_px=14)  # 28 x 28 mm = 784 mm2
    row = measure(ct, lm, labels, scan_id="ok").wide_row()
    assert row["L3_psoas_flags"] is None
    assert row["L3_psoas_both_csa_mm2"] == pytest.approx(2 * 784.0)


@pytest.mark.parametrize("muscle", MUSCLES)
def test_envelopes_cover_muscle_csa_at_its_default_level(muscle: str) -> None:
    level = load_config().levels.level_for(muscle)
    rng = reference_range(level, muscle, "left", "csa_mm2")
    assert rng is not None and rng.low is not None and rng.high is not None
    assert 0 < rng.low < rng.high
