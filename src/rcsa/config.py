"""Package configuration: defaults in ``rcsa/defaults.toml``, optionally replaced by a user file.

The default and allowed level of each muscle (``[levels.muscles]``, ``[levels.available]``)
are not written in ``defaults.toml``: they come from the anatomy table
(:data:`rcsa.anatomy.ANATOMY`, one row per structure), listed in :data:`LEVEL_NAMES` order of
their default level (table order within a level), as ``defaults.toml`` listed them.
A user file gives its own ``[levels.muscles]`` (and optionally ``[levels.available]``) and
replaces them, as before.

>>> from rcsa.config import load_config
>>> cfg = load_config()
>>> cfg.levels.muscle_levels["psoas"]
'L3'
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from rcsa.anatomy import ANATOMY, AnatomyTable
from rcsa.errors import ConfigError
from rcsa.levels.types import LEVEL_NAMES, VERTEBRAE

__all__ = ["ConfigError", "LevelConfig", "MeasureConfig", "RcsaConfig", "load_config"]


@dataclass(frozen=True)
class LevelConfig:
    """Which level each muscle is measured at, and the normalising vertebra."""

    muscle_levels: dict[str, str]
    available: dict[str, tuple[str, ...]]
    reference_vertebra: str

    def level_for(self, muscle: str) -> str:
        try:
            return self.muscle_levels[muscle]
        except KeyError:
            raise ConfigError(f"no level configured for muscle {muscle!r}") from None


NORMALISERS = ("vertebral_body", "height2", "none")


@dataclass(frozen=True)
class MeasureConfig:
    """HU ranges (closed intervals) and the rCSA normaliser."""

    lean_hu: tuple[float, float] = (-29.0, 150.0)
    fat_hu: tuple[float, float] = (-190.0, -30.0)
    normaliser: str = "vertebral_body"


@dataclass(frozen=True)
class RcsaConfig:
    levels: LevelConfig
    measure: MeasureConfig = MeasureConfig()

    def to_dict(self) -> dict[str, Any]:
        """Everything that shapes the numbers, for recording beside every output."""
        return {
            "levels": {
                "muscles": dict(self.levels.muscle_levels),
                "available": {m: list(v) for m, v in self.levels.available.items()},
                "reference_vertebra": self.levels.reference_vertebra,
            },
            "measure": {
                "lean_hu": list(self.measure.lean_hu),
                "fat_hu": list(self.measure.fat_hu),
                "normaliser": self.measure.normaliser,
            },
        }


def _hu_range(value: Any, where: str, source: str) -> tuple[float, float]:
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, (int, float)) for v in value)
        or not value[0] < value[1]
    ):
        raise ConfigError(f"{where} must be [low, high] HU with low < high, got {value!r}", source)
    return float(value[0]), float(value[1])


def _parse_measure(data: dict[str, Any], source: str) -> MeasureConfig:
    m = data.get("measure", {})
    if not isinstance(m, dict):
        raise ConfigError("[measure] must be a table", source)
    default = MeasureConfig()
    lean = _hu_range(m["lean_hu"], "measure.lean_hu", source) if "lean_hu" in m else default.lean_hu
    fat = _hu_range(m["fat_hu"], "measure.fat_hu", source) if "fat_hu" in m else default.fat_hu
    if lean[0] <= fat[1]:
        raise ConfigError(f"measure.lean_hu {list(lean)} overlaps measure.fat_hu {list(fat)}",
                          source)
    normaliser = m.get("normaliser", default.normaliser)
    if normaliser not in NORMALISERS:
        raise ConfigError(
            f"measure.normaliser {normaliser!r} is not one of {', '.join(NORMALISERS)}", source
        )
    return MeasureConfig(lean, fat, str(normaliser))


def _level_name(value: Any, where: str, source: str) -> str:
    if not isinstance(value, str) or value not in LEVEL_NAMES:
        raise ConfigError(f"{where}: {value!r} is not a level ({', '.join(LEVEL_NAMES)})", source)
    return value


def _parse(data: dict[str, Any], source: str) -> RcsaConfig:
    lv = data.get("levels")
    if not isinstance(lv, dict):
        raise ConfigError("missing [levels] table", source)
    muscles = lv.get("muscles")
    if not isinstance(muscles, dict) or not muscles:
        raise ConfigError("missing or empty [levels.muscles] table", source)
    muscle_levels = {
        str(m): _level_name(v, f"levels.muscles.{m}", source) for m, v in muscles.items()
    }
    avail_raw = lv.get("available", {})
    if not isinstance(avail_raw, dict):
        raise ConfigError("[levels.available] must be a table", source)
    available: dict[str, tuple[str, ...]] = {}
    for m, vals in avail_raw.items():
        if not isinstance(vals, list):
            raise ConfigError(f"levels.available.{m} must be a list", source)
        available[str(m)] = tuple(
            _level_name(v, f"levels.available.{m}", source) for v in vals
        )
    for m, level in muscle_levels.items():
        allowed = available.setdefault(m, (level,))
        if level not in allowed:
            raise ConfigError(
                f"levels.muscles.{m} = {level!r} is not in levels.available.{m}", source
            )
    ref = lv.get("reference_vertebra", "L4")
    if ref not in VERTEBRAE:
        raise ConfigError(f"levels.reference_vertebra {ref!r} is not a vertebra", source)
    return RcsaConfig(LevelConfig(muscle_levels, available, str(ref)), _parse_measure(data, source))


def table_levels(table: AnatomyTable = ANATOMY) -> dict[str, Any]:
    """``{"muscles": ..., "available": ...}`` of the defaults, from the anatomy table: muscles
    in :data:`LEVEL_NAMES` order of their default level, table order within a level (the
    order of ``run.json``'s config and of the report's key muscles)."""
    defaults = table.default_levels()

    def rank(muscle: str) -> int:
        level = defaults[muscle]
        return LEVEL_NAMES.index(level) if level in LEVEL_NAMES else len(LEVEL_NAMES)

    order = sorted(defaults, key=rank)
    available = table.available_levels()
    return {"muscles": {m: defaults[m] for m in order},
            "available": {m: list(available[m]) for m in order}}


def load_config(path: str | Path | None = None) -> RcsaConfig:
    """Load the packaged defaults (``defaults.toml`` with the muscles' levels of the anatomy
    table), or the TOML file at ``path`` (same shape plus ``[levels.muscles]``, fully
    specified)."""
    if path is None:
        text = resources.files("rcsa").joinpath("defaults.toml").read_text(encoding="utf-8")
        source = "rcsa/defaults.toml"
    else:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config: {exc.strerror or exc}", p) from None
        source = str(p)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", source) from None
    if path is None:
        levels = data.setdefault("levels", {})
        if isinstance(levels, dict):
            levels.update(table_levels())
    return _parse(data, source)
