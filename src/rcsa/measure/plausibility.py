"""Plausibility envelopes from the literature, attached to measurements as QC flags.

The envelopes are declared in the anatomy table (:data:`rcsa.anatomy.ANATOMY`: each
structure's own envelopes in its row, those of every muscle in ``muscle_envelopes``), each with
the literature figure it was set from and its references (``docs/measure.md`` lists them);
:func:`plausibility_from` turns them into this module's ranges. They are wide on purpose:
a value outside its envelope almost always means a measurement failure (wrong level, a mask
leaking into fat, bone or bowel, a field-of-view cut, dense contrast), not a patient's anatomy.
A flag never changes a number.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import lru_cache

from rcsa.anatomy import ANATOMY, AnatomyTable, Envelope
from rcsa.measure.types import Measurement

PER_SIDE = ("left", "right")


@dataclass(frozen=True)
class PlausibleRange:
    """One envelope: where it applies, its bounds, and where its figures come from."""

    structure: str  # a structure name, or "*" (every structure but those of ``not_for``)
    quantity: str
    low: float | None
    high: float | None
    unit: str
    typical: str
    sources: tuple[str, ...]
    levels: tuple[str, ...] | None = None  # None: every level
    sides: tuple[str, ...] = PER_SIDE
    #: structures a ``*`` envelope does not apply to (the anatomy table's non-muscles)
    not_for: tuple[str, ...] = ("vertebral_body",)

    def applies(self, level: str, structure: str, side: str, quantity: str) -> bool:
        if quantity != self.quantity or side not in self.sides:
            return False
        if self.levels is not None and level not in self.levels:
            return False
        if self.structure == "*":
            return structure not in self.not_for
        return structure == self.structure

    def text(self) -> str:
        """``150-4000 mm2``, ``<= 50 %``, ``>= -50 HU``."""
        if self.low is not None and self.high is not None:
            return f"{_num(self.low)} to {_num(self.high)} {self.unit}"
        if self.high is not None:
            return f"<= {_num(self.high)} {self.unit}"
        assert self.low is not None  # the anatomy table's validation: low or high
        return f">= {_num(self.low)} {self.unit}"

    def check(self, value: float | None) -> str:
        """The flag for ``value`` ("" when inside the envelope or when there is no value)."""
        if value is None or not math.isfinite(value):
            return ""
        if self.low is not None and value < self.low:
            where = "below"
        elif self.high is not None and value > self.high:
            where = "above"
        else:
            return ""
        return (f"implausible: {_num(value)} {self.unit} is {where} the plausible range "
                f"{self.text()} ({', '.join(self.sources)}); check the QC overlay")


def _num(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 10 else f"{v:.2g}"


@dataclass(frozen=True)
class PlausibilityTable:
    ranges: tuple[PlausibleRange, ...]
    references: dict[str, str]

    def find(self, level: str, structure: str, side: str, quantity: str) -> PlausibleRange | None:
        """The first envelope that applies (specific structures before ``*``)."""
        for r in self.ranges:
            if r.structure != "*" and r.applies(level, structure, side, quantity):
                return r
        for r in self.ranges:
            if r.structure == "*" and r.applies(level, structure, side, quantity):
                return r
        return None


def _range(structure: str, e: Envelope, not_for: tuple[str, ...]) -> PlausibleRange:
    return PlausibleRange(
        structure=structure, quantity=e.quantity, low=e.low, high=e.high, unit=e.unit,
        typical=e.typical, sources=e.sources, levels=e.levels, sides=e.sides, not_for=not_for,
    )


def plausibility_from(table: AnatomyTable) -> PlausibilityTable:
    """The envelopes of an anatomy table (validated there): each muscle's own, then those of
    every muscle (structure ``*``), then each non-muscle structure's."""
    muscles = [s for s in table.structures if s.is_muscle]
    others = [s for s in table.structures if not s.is_muscle]
    not_for = tuple(s.name for s in others)
    ranges = [_range(s.name, e, not_for) for s in muscles for e in s.envelopes]
    ranges += [_range("*", e, not_for) for e in table.muscle_envelopes]
    ranges += [_range(s.name, e, not_for) for s in others for e in s.envelopes]
    return PlausibilityTable(tuple(ranges), dict(table.references))


@lru_cache(maxsize=1)
def plausibility_table() -> PlausibilityTable:
    """The shipped envelopes (from :data:`rcsa.anatomy.ANATOMY`)."""
    return plausibility_from(ANATOMY)


def reference_range(level: str, structure: str, side: str, quantity: str
                    ) -> PlausibleRange | None:
    """The envelope for one measurement, or ``None`` when rcsa has none for it."""
    return plausibility_table().find(level, structure, side, quantity)


def flag_rows(rows: Iterable[Measurement]) -> tuple[Measurement, ...]:
    """``rows`` with plausibility flags added to ``flag`` (numbers untouched); an existing
    flag (e.g. a field-of-view warning) is kept in front."""
    out = []
    for r in rows:
        rng = reference_range(r.level, r.structure, r.side, r.quantity)
        flag = rng.check(r.value) if rng is not None else ""
        if flag:
            joined = f"{r.flag}; {flag}" if r.flag else flag
            r = replace(r, flag=joined)
        out.append(r)
    return tuple(out)
