"""Result types of the spine analysis (``docs/spine.md``): heights, grades, attenuation."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

#: Vertebrae analysed, superior to inferior.
SPINE_VERTEBRAE: tuple[str, ...] = ("T11", "T12", "L1", "L2", "L3", "L4", "L5")

#: ``measured``: heights (and usually attenuation) measured; ``not_measurable``: in the scan
#: but unusable (cut by the scan edge, cement / metal, edges not found) - the reason says
#: why; ``ambiguous``: the vertebra cannot be named safely, so nothing is reported under its
#: name; ``missing``: outside the scan.
VertebraStatus = Literal["measured", "not_measurable", "ambiguous", "missing"]
Morphology = Literal["normal", "wedge", "biconcave", "crush"]

#: Quantities of the wide table per vertebra, in column order (``<V>_<quantity>``).
#: Genant 1993 reduction thresholds (%): grade 1 from 20, grade 2 from 25, grade 3 above 40.
GENANT_THRESHOLDS_PCT: tuple[float, float, float] = (20.0, 25.0, 40.0)
#: A grade whose reduction lies within this many percentage points of a Genant threshold is
#: marked ``genant_needs_review``: the uncertainty of a measured reduction, from the synthetic
#: compressions (applied vs measured loss: median error 2.3 points, up to 9.7) and the natural
#: shape difference of a normal body against its neighbours (-3 to +7 points; docs/spine.md).
#: Every grade 1 (a 5-point band) is therefore marked.
GRADE_REVIEW_MARGIN_PCT = 5.0

VERTEBRA_COLUMNS: tuple[str, ...] = (
    "spine_status",
    "spine_reason",
    "body_height_anterior_mm",
    "body_height_middle_mm",
    "body_height_posterior_mm",
    "body_depth_mm",
    "height_ratio_anterior_posterior",
    "height_ratio_middle_posterior",
    "height_ratio_posterior_neighbours",
    "height_reduction_pct",
    "genant_grade",
    "genant_morphology",
    "genant_needs_review",
    "trabecular_hu",
    "trabecular_hu_sd",
    "trabecular_roi_mm3",
    "attenuation_band",
    "dense_material_mm3",
)
#: Scan-level columns of the wide table.
SPINE_SCAN_COLUMNS: tuple[str, ...] = (
    "fractured_vertebrae_n",
    "fractured_vertebrae",
    "vertebrae_graded_n",
    "spine_not_graded",
    "fracture_count_needs_review",
    "bone_attenuation_hu",
    "bone_attenuation_vertebra",
    "bone_attenuation_band",
    "spine_warnings",
)


def spine_columns() -> list[str]:
    """Every wide-table column :meth:`SpineResult.to_columns` writes, in order."""
    return [f"{v}_{q}" for v in SPINE_VERTEBRAE for q in VERTEBRA_COLUMNS] + list(
        SPINE_SCAN_COLUMNS
    )


@dataclass(frozen=True)
class HeightLine:
    """One measured height: its two ends in the CT's voxel index space ``(k, j, i)``."""

    name: Literal["anterior", "middle", "posterior"]
    inferior_kji: tuple[float, float, float]
    superior_kji: tuple[float, float, float]
    height_mm: float


@dataclass(frozen=True)
class VertebraResult:
    """Everything measured on one vertebra. Lengths in mm, attenuation in HU.

    ``height_reduction_pct`` is the largest of the three Genant reductions (wedge: anterior
    against posterior, biconcave: middle against posterior, crush: posterior against the
    neighbours), each against its expected value (``docs/spine.md``, "Grading rule").
    ``genant_grade`` is ``None`` when the vertebra is not graded (``grade_reason`` says why).
    """

    name: str
    status: VertebraStatus
    reason: str = ""
    height_anterior_mm: float | None = None
    height_middle_mm: float | None = None
    height_posterior_mm: float | None = None
    depth_mm: float | None = None
    width_mm: float | None = None
    ratio_anterior_posterior: float | None = None
    ratio_middle_posterior: float | None = None
    ratio_anterior_neighbours: float | None = None
    ratio_middle_neighbours: float | None = None
    ratio_posterior_neighbours: float | None = None
    reduction_wedge_pct: float | None = None
    reduction_biconcave_pct: float | None = None
    reduction_crush_pct: float | None = None
    height_reduction_pct: float | None = None
    genant_grade: int | None = None
    morphology: Morphology | None = None
    grade_reason: str = ""
    trabecular_hu: float | None = None
    trabecular_hu_sd: float | None = None
    trabecular_roi_mm3: float | None = None
    trabecular_n_voxels: int = 0
    attenuation_band: str | None = None
    dense_material_mm3: float = 0.0
    mid_slice: int | None = None
    lines: tuple[HeightLine, ...] = ()
    #: ROI centre and the body axis (superior unit vector, mm per axis k, j) for the QC image
    roi_centre_kji: tuple[float, float, float] | None = None
    axis_kj: tuple[float, float] | None = None

    @property
    def measured(self) -> bool:
        return self.status == "measured"

    @property
    def fractured(self) -> bool:
        return self.genant_grade is not None and self.genant_grade >= 1

    @property
    def grade_review_reason(self) -> str | None:
        """Why the grade should be checked by a reader (its reduction lies within
        :data:`GRADE_REVIEW_MARGIN_PCT` of a Genant threshold); None when graded clear of them,
        or not graded."""
        red = self.height_reduction_pct
        if self.genant_grade is None or red is None:
            return None
        near = [t for t in GENANT_THRESHOLDS_PCT if abs(red - t) < GRADE_REVIEW_MARGIN_PCT]
        if not near:
            return None
        return (f"reduction {red:.1f} % is within {GRADE_REVIEW_MARGIN_PCT:g} points of the "
                f"{near[0]:g} % Genant threshold (the measurement's uncertainty)")

    def to_dict(self) -> dict[str, Any]:
        def r(v: float | None, nd: int = 2) -> float | None:
            return None if v is None else round(float(v), nd)

        return {
            "status": self.status,
            "reason": self.reason,
            "height_anterior_mm": r(self.height_anterior_mm),
            "height_middle_mm": r(self.height_middle_mm),
            "height_posterior_mm": r(self.height_posterior_mm),
            "depth_mm": r(self.depth_mm),
            "width_mm": r(self.width_mm),
            "ratio_anterior_posterior": r(self.ratio_anterior_posterior, 3),
            "ratio_middle_posterior": r(self.ratio_middle_posterior, 3),
            "ratio_anterior_neighbours": r(self.ratio_anterior_neighbours, 3),
            "ratio_middle_neighbours": r(self.ratio_middle_neighbours, 3),
            "ratio_posterior_neighbours": r(self.ratio_posterior_neighbours, 3),
            "reduction_wedge_pct": r(self.reduction_wedge_pct, 1),
            "reduction_biconcave_pct": r(self.reduction_biconcave_pct, 1),
            "reduction_crush_pct": r(self.reduction_crush_pct, 1),
            "height_reduction_pct": r(self.height_reduction_pct, 1),
            "genant_grade": self.genant_grade,
            "morphology": self.morphology,
            "grade_reason": self.grade_reason,
            "grade_review_reason": self.grade_review_reason,
            "trabecular_hu": r(self.trabecular_hu, 1),
            "trabecular_hu_sd": r(self.trabecular_hu_sd, 1),
            "trabecular_roi_mm3": r(self.trabecular_roi_mm3, 0),
            "attenuation_band": self.attenuation_band,
            "dense_material_mm3": r(self.dense_material_mm3, 0),
            "mid_slice": self.mid_slice,
        }

    def columns(self) -> dict[str, Any]:
        """``{quantity: value}`` for :data:`VERTEBRA_COLUMNS` (without the name prefix)."""
        d = self.to_dict()
        reason = self.reason or self.grade_reason
        return {
            "spine_status": self.status,
            "spine_reason": reason or None,
            "body_height_anterior_mm": d["height_anterior_mm"],
            "body_height_middle_mm": d["height_middle_mm"],
            "body_height_posterior_mm": d["height_posterior_mm"],
            "body_depth_mm": d["depth_mm"],
            "height_ratio_anterior_posterior": d["ratio_anterior_posterior"],
            "height_ratio_middle_posterior": d["ratio_middle_posterior"],
            "height_ratio_posterior_neighbours": d["ratio_posterior_neighbours"],
            "height_reduction_pct": d["height_reduction_pct"],
            "genant_grade": self.genant_grade,
            "genant_morphology": self.morphology,
            "genant_needs_review": (None if self.genant_grade is None
                                    else int(self.grade_review_reason is not None)),
            "trabecular_hu": d["trabecular_hu"],
            "trabecular_hu_sd": d["trabecular_hu_sd"],
            "trabecular_roi_mm3": d["trabecular_roi_mm3"],
            "attenuation_band": self.attenuation_band,
            "dense_material_mm3": d["dense_material_mm3"] if self.status != "missing" else None,
        }


@dataclass(frozen=True)
class SpineResult:
    """Per-vertebra results (T11-L5, superior first) and the scan-level figures."""

    vertebrae: dict[str, VertebraResult]
    #: attenuation of the screening vertebra (L1, else the next measured one, see docs)
    bone_attenuation_hu: float | None = None
    bone_attenuation_vertebra: str | None = None
    bone_attenuation_band: str | None = None
    warnings: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __getitem__(self, name: str) -> VertebraResult:
        return self.vertebrae[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.vertebrae)

    def __len__(self) -> int:
        return len(self.vertebrae)

    @property
    def graded(self) -> list[str]:
        return [n for n, v in self.vertebrae.items() if v.genant_grade is not None]

    @property
    def fractured(self) -> list[str]:
        return [n for n, v in self.vertebrae.items() if v.fractured]

    @property
    def fractured_vertebrae_n(self) -> int | None:
        """Vertebrae of Genant grade >= 1 among those graded; ``None`` when none is graded."""
        return len(self.fractured) if self.graded else None

    @property
    def not_graded(self) -> list[str]:
        """Vertebrae in (or possibly in) the scan that could not be graded."""
        return [n for n, v in self.vertebrae.items()
                if v.genant_grade is None and v.status != "missing"]

    @property
    def count_needs_review(self) -> bool:
        """The fracture count should be checked: a vertebra was not graded, or a grade lies
        within the measurement's uncertainty of a Genant threshold."""
        return bool(self.not_graded) or any(
            v.grade_review_reason is not None for v in self.vertebrae.values())

    def to_columns(self) -> dict[str, Any]:
        """The wide feature-table columns (:func:`spine_columns`), e.g. ``L1_genant_grade``."""
        out: dict[str, Any] = {}
        for v in SPINE_VERTEBRAE:
            res = self.vertebrae.get(v) or VertebraResult(v, "missing", "not analysed")
            for q, value in res.columns().items():
                out[f"{v}_{q}"] = value
        out["fractured_vertebrae_n"] = self.fractured_vertebrae_n
        out["fractured_vertebrae"] = ";".join(self.fractured) if self.graded else None
        out["vertebrae_graded_n"] = len(self.graded)
        out["spine_not_graded"] = ";".join(self.not_graded) or None
        out["fracture_count_needs_review"] = (None if not self.graded
                                              else int(self.count_needs_review))
        out["bone_attenuation_hu"] = (None if self.bone_attenuation_hu is None
                                      else round(self.bone_attenuation_hu, 1))
        out["bone_attenuation_vertebra"] = self.bone_attenuation_vertebra
        out["bone_attenuation_band"] = self.bone_attenuation_band
        out["spine_warnings"] = "; ".join(self.warnings) or None
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "vertebrae": {n: v.to_dict() for n, v in self.vertebrae.items()},
            "fractured_vertebrae_n": self.fractured_vertebrae_n,
            "fractured_vertebrae": self.fractured,
            "not_graded": self.not_graded,
            "fracture_count_needs_review": self.count_needs_review if self.graded else None,
            "bone_attenuation_hu": None if self.bone_attenuation_hu is None
            else round(self.bone_attenuation_hu, 1),
            "bone_attenuation_vertebra": self.bone_attenuation_vertebra,
            "bone_attenuation_band": self.bone_attenuation_band,
            "warnings": list(self.warnings),
        }
