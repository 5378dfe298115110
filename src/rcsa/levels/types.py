"""Result types of level detection (see ``docs/levels.md``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["found", "missing", "ambiguous"]

#: Vertebrae reported, from superior to inferior.
VERTEBRAE: tuple[str, ...] = ("T12", "L1", "L2", "L3", "L4", "L5", "S1")
#: Pelvic landmarks reported.
PELVIC_LEVELS: tuple[str, ...] = ("iliac_crest_top", "sij_lower", "femoral_head_top")
#: Every level name, in the order they appear in the JSON output.
LEVEL_NAMES: tuple[str, ...] = (*VERTEBRAE, "L4_L5_disc", *PELVIC_LEVELS)


@dataclass(frozen=True)
class Level:
    """One named level.

    ``slice_index`` is in the canonical volume (``k = 0`` most inferior); ``z_mm`` is the
    patient-superior (LPS z) coordinate of that slice's centre. For vertebrae the level is the
    mid-vertebral-body slice and ``upper_endplate_*`` the slice of the superior endplate.
    ``candidates`` lists the slices a level could be at when it is ``ambiguous``.
    """

    name: str
    status: Status
    slice_index: int | None = None
    z_mm: float | None = None
    method: str = ""
    confidence: float = 0.0
    reason: str = ""
    upper_endplate_slice: int | None = None
    upper_endplate_z_mm: float | None = None
    candidates: tuple[int, ...] = ()

    @property
    def found(self) -> bool:
        return self.status == "found"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "status": self.status,
            "slice_index": self.slice_index,
            "z_mm": None if self.z_mm is None else round(float(self.z_mm), 3),
            "method": self.method,
            "confidence": round(float(self.confidence), 3),
            "reason": self.reason,
        }
        if self.name in VERTEBRAE:
            d["upper_endplate_slice"] = self.upper_endplate_slice
            d["upper_endplate_z_mm"] = (
                None if self.upper_endplate_z_mm is None else round(self.upper_endplate_z_mm, 3)
            )
        if self.candidates:
            d["candidates"] = list(self.candidates)
        return d

    @classmethod
    def from_dict(cls, name: str, d: Mapping[str, Any]) -> Level:
        """The inverse of :meth:`to_dict` (values as rounded there)."""

        def opt_int(v: Any) -> int | None:
            return None if v is None else int(v)

        def opt_float(v: Any) -> float | None:
            return None if v is None else float(v)

        status = str(d.get("status", "missing"))
        if status not in ("found", "missing", "ambiguous"):
            raise ValueError(f"level {name}: unknown status {status!r}")
        return cls(
            name=name,
            status=status,  # type: ignore[arg-type]  # checked above
            slice_index=opt_int(d.get("slice_index")),
            z_mm=opt_float(d.get("z_mm")),
            method=str(d.get("method") or ""),
            confidence=float(d.get("confidence") or 0.0),
            reason=str(d.get("reason") or ""),
            upper_endplate_slice=opt_int(d.get("upper_endplate_slice")),
            upper_endplate_z_mm=opt_float(d.get("upper_endplate_z_mm")),
            candidates=tuple(int(k) for k in d.get("candidates") or ()),
        )


@dataclass(frozen=True)
class LevelMap:
    """All levels of one scan plus scan-wide warnings (e.g. transitional anatomy)."""

    levels: dict[str, Level]
    warnings: tuple[str, ...] = ()
    n_slices: int = 0
    diagnostics: dict[str, Any] = field(default_factory=dict, compare=False)

    def __getitem__(self, name: str) -> Level:
        return self.levels[name]

    def __contains__(self, name: object) -> bool:
        return name in self.levels

    def __iter__(self) -> Iterator[str]:
        return iter(self.levels)

    def __len__(self) -> int:
        return len(self.levels)

    def get(self, name: str) -> Level | None:
        return self.levels.get(name)

    def found(self) -> dict[str, Level]:
        return {k: v for k, v in self.levels.items() if v.found}

    def to_dict(self) -> dict[str, Any]:
        return {
            "levels": {name: lv.to_dict() for name, lv in self.levels.items()},
            "warnings": list(self.warnings),
            "n_slices": self.n_slices,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LevelMap:
        """The inverse of :meth:`to_dict` (the ``rcsa levels --json`` document; diagnostics
        are not stored there). Raises ``ValueError`` / ``TypeError`` on a malformed one."""
        levels = d.get("levels", {})
        if not isinstance(levels, Mapping):
            raise ValueError("'levels' must be an object of level name -> level")
        return cls(
            levels={str(n): Level.from_dict(str(n), lv) for n, lv in levels.items()},
            warnings=tuple(str(w) for w in d.get("warnings", ())),
            n_slices=int(d.get("n_slices", 0)),
        )
