"""Genant semi-quantitative grade from measured heights (``docs/spine.md``, "Grading rule").

Genant HK, Wu CY, van Kuijk C, Nevitt MC. Vertebral fracture assessment using a
semiquantitative technique. J Bone Miner Res 1993;8:1137-1148: grade 1 (mild) = 20-25 %
reduction of anterior, middle and/or posterior height, grade 2 (moderate) 25-40 %, grade 3
(severe) > 40 %; the type is wedge (anterior), biconcave (middle) or crush (posterior / whole).

The reductions are measured, as in quantitative morphometry (McCloskey EV et al., Osteoporos
Int 1993;3:138-147; Eastell R et al., J Bone Miner Res 1991;6:207-215), against the height
the vertebra would have: for the wedge and biconcave types the shape ratio (A/P, M/P)
against the mean ratio of the measured neighbours (normal lumbar bodies range from slightly
anterior-short at T11-L1 to anterior-tall at L4-L5), bounded to :data:`EXPECTED_RATIO_RANGE`;
for the crush type the posterior height against the mean posterior height of the two
neighbours (only when both are usable: with one, the cranio-caudal size trend is not
cancelled). A neighbour graded >= 1 in a first pass is left out, in the second pass, of the
reference its deformity distorts (a wedge neighbour's A/P, a biconcave one's M/P, a crushed
one's posterior height), so that a fracture neither hides nor creates its neighbour's.
"""

from __future__ import annotations

from dataclasses import dataclass

from rcsa.spine.types import GENANT_THRESHOLDS_PCT, Morphology

__all__ = ["GENANT_THRESHOLDS_PCT"]
#: The expected A/P and M/P ratios taken from the neighbours are kept within this range, so
#: that a fractured neighbour does not lower the expectation (and a tall one raise it) beyond
#: the ratios of normal bodies (about 0.85-1.25 for A/P from T11 to L5).
EXPECTED_RATIO_RANGE: tuple[float, float] = (0.90, 1.20)
#: Without a measured neighbour a ratio is expected to be 1 (the body's own posterior height).
DEFAULT_EXPECTED_RATIO = 1.0


@dataclass(frozen=True)
class Heights:
    anterior_mm: float
    middle_mm: float
    posterior_mm: float

    @property
    def ap(self) -> float:
        return self.anterior_mm / self.posterior_mm

    @property
    def mp(self) -> float:
        return self.middle_mm / self.posterior_mm


@dataclass(frozen=True)
class Grade:
    wedge_pct: float
    biconcave_pct: float
    crush_pct: float | None
    reduction_pct: float
    grade: int
    morphology: Morphology
    ratio_anterior_neighbours: float | None
    ratio_middle_neighbours: float | None
    ratio_posterior_neighbours: float | None
    note: str


def genant_grade(reduction_pct: float) -> int:
    """0-3 from a height reduction in % (Genant 1993)."""
    g1, g2, g3 = GENANT_THRESHOLDS_PCT
    if reduction_pct > g3:
        return 3
    if reduction_pct >= g2:
        return 2
    if reduction_pct >= g1:
        return 1
    return 0


def _clip(v: float) -> float:
    lo, hi = EXPECTED_RATIO_RANGE
    return min(hi, max(lo, v))


def grade_vertebra(own: Heights, neighbours: list[Heights],
                   neighbour_types: list[Morphology] | None = None) -> Grade:
    """Reductions, grade and type of a vertebra given its measured neighbours (0-2).

    ``neighbour_types`` (same order, from a first pass) leaves a neighbour out of the
    reference its own deformity distorts: a wedge neighbour's A/P, a biconcave one's M/P, a
    crushed one's posterior height.
    """
    types = neighbour_types or ["normal"] * len(neighbours)
    note = ""
    r_a: float | None = None
    r_m: float | None = None
    r_p: float | None = None
    crush: float | None = None

    def mean(vals: list[float]) -> float | None:
        return sum(vals) / len(vals) if vals else None

    ap = mean([n.ap for n, t in zip(neighbours, types, strict=True) if t != "wedge"])
    mp = mean([n.mp for n, t in zip(neighbours, types, strict=True) if t != "biconcave"])
    exp_ap = DEFAULT_EXPECTED_RATIO if ap is None else _clip(ap)
    exp_mp = DEFAULT_EXPECTED_RATIO if mp is None else _clip(mp)
    if neighbours:
        r_a = own.anterior_mm / (sum(n.anterior_mm for n in neighbours) / len(neighbours))
        r_m = own.middle_mm / (sum(n.middle_mm for n in neighbours) / len(neighbours))
        r_p = own.posterior_mm / (sum(n.posterior_mm for n in neighbours) / len(neighbours))
    p_ref = [n.posterior_mm for n, t in zip(neighbours, types, strict=True) if t != "crush"]
    if len(p_ref) == 2:
        crush = 100.0 * (1.0 - own.posterior_mm / (0.5 * (p_ref[0] + p_ref[1])))
    elif neighbours:  # one neighbour: the cranio-caudal size trend (T12 < L1 < L2) remains
        note = "one usable neighbour: crush type not assessed"
    else:
        note = "no measured neighbour: crush type not assessed, shape against A/P = M/P = 1"
    wedge = 100.0 * (1.0 - own.ap / exp_ap)
    bic = 100.0 * (1.0 - own.mp / exp_mp)
    cands: list[tuple[float, Morphology]] = [(wedge, "wedge"), (bic, "biconcave")]
    if crush is not None:
        cands.append((crush, "crush"))
    red, kind = max(cands, key=lambda t: t[0])
    g = genant_grade(red)
    return Grade(wedge, bic, crush, red, g, kind if g >= 1 else "normal", r_a, r_m, r_p, note)
