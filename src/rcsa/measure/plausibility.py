"""Plausibility envelopes from the literature, attached to measurements as QC flags.

The envelopes live in ``plausibility.toml`` beside this module, each with the literature figure
it was set from and its references (``docs/measure.md`` lists them). They are wide on purpose:
a value outside its envelope almost always means a measurement failure (wrong level, a mask
leaking into fat, bone or bowel, a field-of-view cut, dense contrast), not a patient's anatomy.
A flag never changes a number.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from typing import Any

from rcsa.measure.types import Measurement

PER_SIDE = ("left", "right")


@dataclass(frozen=True)
class PlausibleRange:
    """One envelope: where it applies, its bounds, and where its figures come from."""

    structure: str  # a muscle name, "vertebral_body", or "*" (every muscle)
    quantity: str
    low: float | None
    high: float | None
    unit: str
    typical: str
    sources: tuple[str, ...]
    levels: tuple[str, ...] | None = None  # None: every level
    sides: tuple[str, ...] = PER_SIDE

    def applies(self, level: str, structure: str, side: str, quantity: str) -> bool:
        if quantity != self.quantity or side not in self.sides:
            return False
        if self.levels is not None and level not in self.levels:
            return False
        if self.structure == "*":
            return structure != "vertebral_body"
        return structure == self.structure

    def text(self) -> str:
        """``150-4000 mm2``, ``<= 50 %``, ``>= -50 HU``."""
        if self.low is not None and self.high is not None:
            return f"{_num(self.low)} to {_num(self.high)} {self.unit}"
        if self.high is not None:
            return f"<= {_num(self.high)} {self.unit}"
        assert self.low is not None  # _parse guarantees low or high
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


def _parse(doc: dict[str, Any]) -> PlausibilityTable:
    refs = {str(k): str(v) for k, v in doc.get("references", {}).items()}
    out = []
    for i, r in enumerate(doc.get("range", [])):
        sources = tuple(str(s) for s in r.get("sources", ()))
        unknown = [s for s in sources if s not in refs]
        if unknown or not sources:
            raise ValueError(f"plausibility range {i}: unknown or missing sources {unknown}")
        low = r.get("low")
        high = r.get("high")
        if low is None and high is None:
            raise ValueError(f"plausibility range {i}: needs low or high")
        if low is not None and high is not None and not float(low) < float(high):
            raise ValueError(f"plausibility range {i}: low must be below high")
        levels = r.get("levels")
        out.append(PlausibleRange(
            structure=str(r["structure"]),
            quantity=str(r["quantity"]),
            low=None if low is None else float(low),
            high=None if high is None else float(high),
            unit=str(r.get("unit", "")),
            typical=str(r.get("typical", "")),
            sources=sources,
            levels=None if levels is None else tuple(str(v) for v in levels),
            sides=tuple(str(s) for s in r.get("sides", PER_SIDE)),
        ))
    return PlausibilityTable(tuple(out), refs)


@lru_cache(maxsize=1)
def plausibility_table() -> PlausibilityTable:
    """The shipped envelopes (``rcsa/measure/plausibility.toml``)."""
    text = resources.files("rcsa.measure").joinpath("plausibility.toml").read_text("utf-8")
    return _parse(tomllib.loads(text))


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
