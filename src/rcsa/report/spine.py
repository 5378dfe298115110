"""The screening report's spine section: heights, Genant grades and bone attenuation from the
``rcsa.spine`` columns of an ``rcsa run`` folder (``docs/spine.md``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from rcsa.report.render import png_data_uri
from rcsa.runfolder.names import SPINE_IMAGE
from rcsa.spine import SPINE_VERTEBRAE

#: Shown under the table: what the figures are and are not.
SPINE_NOTE = (
    "Heights on each body's mid-sagittal plane (A anterior, M middle, P posterior). Genant grade "
    "from the largest height reduction against the expected height (20-25 % grade 1, 25-40 % "
    "grade 2, > 40 % grade 3; Genant 1993); vertebrae not named safely, cut by the scan or "
    "holding cement / metal are not graded. Trabecular HU is a mean in a body-centred ROI; the "
    "bands are published L1 thresholds (Pickhardt 2013), not a diagnosis of osteoporosis. "
    "Check the sagittal sheet by eye."
)


class _Run(Protocol):
    def image(self, name: str) -> Path | None: ...

    @property
    def wide(self) -> dict[str, Any]: ...


def spine_section(run: _Run) -> dict[str, Any] | None:
    """Rows per vertebra and the scan figures; ``None`` for a run folder without spine
    columns (written before rcsa.spine)."""
    w = run.wide
    if "fractured_vertebrae_n" not in w:
        return None
    rows = []
    for v in SPINE_VERTEBRAE:
        status = w.get(f"{v}_spine_status")
        if status in (None, "missing"):
            continue
        rows.append({
            "vertebra": v,
            "status": status,
            "reason": w.get(f"{v}_spine_reason"),
            "anterior_mm": w.get(f"{v}_body_height_anterior_mm"),
            "middle_mm": w.get(f"{v}_body_height_middle_mm"),
            "posterior_mm": w.get(f"{v}_body_height_posterior_mm"),
            "ratio_ap": w.get(f"{v}_height_ratio_anterior_posterior"),
            "reduction_pct": w.get(f"{v}_height_reduction_pct"),
            "grade": w.get(f"{v}_genant_grade"),
            "needs_review": bool(w.get(f"{v}_genant_needs_review")),
            "morphology": w.get(f"{v}_genant_morphology"),
            "trabecular_hu": w.get(f"{v}_trabecular_hu"),
        })
    image = png_data_uri(run.image(SPINE_IMAGE))
    return {
        "rows": rows,
        "fractured_vertebrae_n": w.get("fractured_vertebrae_n"),
        "fractured_vertebrae": w.get("fractured_vertebrae"),
        "not_graded": w.get("spine_not_graded"),
        "count_needs_review": bool(w.get("fracture_count_needs_review")),
        "bone_attenuation_hu": w.get("bone_attenuation_hu"),
        "bone_attenuation_vertebra": w.get("bone_attenuation_vertebra"),
        "bone_attenuation_band": w.get("bone_attenuation_band"),
        "warnings": w.get("spine_warnings"),
        "note": SPINE_NOTE,
        "image": image,
    }
