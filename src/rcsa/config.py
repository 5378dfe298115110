"""Package configuration: defaults in ``rcsa/defaults.toml``, optionally replaced by a user file.

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

from rcsa.errors import RcsaError
from rcsa.levels.types import LEVEL_NAMES, VERTEBRAE


class ConfigError(RcsaError):
    """A configuration file is missing, not TOML, or holds invalid values."""


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


@dataclass(frozen=True)
class RcsaConfig:
    levels: LevelConfig


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
    return RcsaConfig(LevelConfig(muscle_levels, available, str(ref)))


def load_config(path: str | Path | None = None) -> RcsaConfig:
    """Load the packaged defaults, or the TOML file at ``path`` (same shape, fully specified)."""
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
    return _parse(data, source)
