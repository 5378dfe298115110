"""The measure package's plain types: a level's label slice in, one long-table row out.

They sit below :mod:`rcsa.measure.table` (which computes rows) and
:mod:`rcsa.measure.plausibility` (which flags them), so neither has to import the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from rcsa.anatomy import ClassMap


@dataclass(frozen=True, eq=False)
class LevelLabels:
    """Class labels on one level's axial slice, on the CT's own in-plane grid."""

    level: str
    slice_index: int
    labels: npt.NDArray[np.integer]  # [j, i]
    class_map: ClassMap
    source: str = ""
    flags: tuple[str, ...] = ()
    #: per structure the segmentation's confidence (rcsa model: test-time agreement, 0..1);
    #: empty for labels that come without one
    seg_confidence: Mapping[str, float] = field(default_factory=dict)
    #: below this ``seg_confidence`` a structure needs review
    needs_review_below: float | None = None


@dataclass(frozen=True)
class Measurement:
    """One row of the long table."""

    level: str
    structure: str  # a muscle name or "vertebral_body"
    side: str  # "left" | "right" | "both" | "" (vertebral body)
    quantity: str
    value: float | None
    unit: str
    flag: str = ""
    reason: str = ""
    normaliser: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "structure": self.structure,
            "side": self.side,
            "quantity": self.quantity,
            "value": self.value,
            "unit": self.unit,
            "flag": self.flag,
            "reason": self.reason,
            "normaliser": self.normaliser,
        }
