"""Manual level specs: ``L3=z:-412.5``, ``L3=slice:72``, ``L3=72``, bare ``L3`` and JSON
levels files. :func:`parse_level_specs` is the one parser of every command's level option.

A levels file is JSON in one of these shapes::

    {"L3": "z:-412.5", "sij_lower": {"slice": 31}}            # one scan
    {"levels": {"L3": {"z_mm": -412.5}}}                        # one scan
    {"scans": {"case01.nii.gz": {"L3": "slice:72"}, ...}}       # a batch, keyed by scan path
                                                                 # or file / folder name
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rcsa.errors import LevelOverrideError
from rcsa.io.volume import CTVolume
from rcsa.levels.types import LEVEL_NAMES, Level

Kind = Literal["z", "slice"]


@dataclass(frozen=True)
class LevelOverride:
    """Put level ``name`` at LPS z ``value`` mm (``kind='z'``) or slice ``value``."""

    name: str
    kind: Kind
    value: float
    source: str = "--level"


def _check_name(name: str, source: str) -> str:
    if name not in LEVEL_NAMES:
        raise LevelOverrideError(
            f"unknown level {name!r} in {source}; known: {', '.join(LEVEL_NAMES)}"
        )
    return name


def _parse_value(name: str, text: str, source: str) -> LevelOverride:
    kind, sep, val = text.partition(":")
    kind = kind.strip().lower()
    if not sep or kind not in ("z", "slice"):
        raise LevelOverrideError(
            f"bad override {name}={text!r} in {source}: expected z:<mm> or slice:<index>"
        )
    try:
        num = float(val)
    except ValueError:
        raise LevelOverrideError(
            f"bad number {val!r} in override {name}={text} ({source})"
        ) from None
    if not np.isfinite(num):
        raise LevelOverrideError(f"non-finite value in override {name}={text} ({source})")
    if kind == "slice" and num != int(num):
        raise LevelOverrideError(f"slice index must be an integer: {name}={text} ({source})")
    return LevelOverride(_check_name(name, source), "z" if kind == "z" else "slice", num, source)


def parse_level_override(text: str, source: str = "--level") -> LevelOverride:
    """Parse one ``NAME=z:<mm>``, ``NAME=slice:<k>`` or ``NAME=<k>`` (a slice index)."""
    name, sep, rest = text.partition("=")
    if not sep:
        raise LevelOverrideError(
            f"bad override {text!r} in {source}: expected NAME=z:<mm>, NAME=slice:<k> or NAME=<k>"
        )
    value = rest.strip()
    if ":" not in value:  # NAME=<k>: a slice index (rcsa segment's historical form)
        value = f"slice:{value}"
    return _parse_value(name.strip(), value, source)


@dataclass(frozen=True)
class LevelSelection:
    """What level specs ask for: manual ``overrides`` and, from bare names, the only levels to
    segment / measure (``names``; empty = no restriction). Picklable."""

    overrides: tuple[LevelOverride, ...] = ()
    names: tuple[str, ...] = ()


def parse_level_specs(specs: Iterable[str], source: str = "--level") -> LevelSelection:
    """The one parser of level specs (``rcsa run --level``, ``rcsa segment --levels``, a batch
    manifest's ``levels`` column, ``rcsa levels``, ``rcsa screen``).

    Each spec holds one or more comma-separated items: ``NAME=slice:<k>``, ``NAME=<k>`` (slice
    index), ``NAME=z:<mm>`` (LPS z in mm) or a bare ``NAME`` (restrict to that level). Unknown
    names and malformed values raise :class:`~rcsa.errors.LevelOverrideError`.
    """
    overrides: list[LevelOverride] = []
    names: list[str] = []
    for spec in specs:
        for item in (p.strip() for p in str(spec).split(",")):
            if not item:
                continue
            if "=" in item:
                overrides.append(parse_level_override(item, source))
            else:
                names.append(_check_name(item, source))
    return LevelSelection(tuple(overrides), tuple(dict.fromkeys(names)))


def _from_entry(name: str, entry: Any, source: str) -> LevelOverride:
    if isinstance(entry, str):
        return _parse_value(name, entry, source)
    if isinstance(entry, Mapping):
        keys = {"z": "z", "z_mm": "z", "slice": "slice", "slice_index": "slice"}
        found = [(keys[k], v) for k, v in entry.items() if k in keys]
        if len(found) != 1 or isinstance(found[0][1], bool) or not isinstance(
            found[0][1], (int, float)
        ):
            raise LevelOverrideError(
                f"level {name!r} in {source} needs exactly one of z_mm / slice_index (a number)"
            )
        kind, val = found[0]
        return _parse_value(name, f"{kind}:{val}", source)
    raise LevelOverrideError(f"level {name!r} in {source}: expected a string or an object")


def load_levels_file(path: str | Path, scan: str | Path | None = None) -> list[LevelOverride]:
    """Read overrides from a JSON levels file (see module docstring).

    For a batch file (``"scans"`` key) the entry whose key equals ``scan`` (as given, or its
    file/folder name) is used; a batch file without an entry for ``scan`` gives no overrides.
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LevelOverrideError("levels file not found", p) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LevelOverrideError(f"cannot read levels file: {exc}", p) from None
    if not isinstance(data, Mapping):
        raise LevelOverrideError("levels file must hold a JSON object", p)
    if "scans" in data:
        scans = data["scans"]
        if not isinstance(scans, Mapping):
            raise LevelOverrideError("'scans' must be an object keyed by scan path", p)
        entry: Any = None
        if scan is not None:
            for key in (str(scan), Path(scan).name, str(Path(scan).resolve())):
                if key in scans:
                    entry = scans[key]
                    break
        if entry is None:
            return []
        data = entry
    elif "levels" in data:
        data = data["levels"]
    if not isinstance(data, Mapping):
        raise LevelOverrideError("levels must be a JSON object keyed by level name", p)
    return [_from_entry(str(k), v, str(p)) for k, v in data.items()]


def apply_overrides(
    ct: CTVolume, levels: dict[str, Level], overrides: Iterable[LevelOverride]
) -> dict[str, Level]:
    """Replace levels by the manual ones (later overrides win); ``method`` becomes 'manual'."""
    out = dict(levels)
    zs = ct.z_mm()
    for ov in overrides:
        _check_name(ov.name, ov.source)
        if ov.kind == "slice":
            k = int(ov.value)
            if not 0 <= k < ct.n_slices:
                raise LevelOverrideError(
                    f"{ov.name}=slice:{k} is outside the scan (slices 0..{ct.n_slices - 1})"
                )
        else:
            try:
                k = ct.slice_at_z(float(ov.value))
            except ValueError as exc:
                raise LevelOverrideError(f"{ov.name}=z:{ov.value}: {exc}") from None
        auto = levels.get(ov.name)
        note = "manual override"
        if auto is not None and auto.found and auto.slice_index is not None:
            note += f" (automatic: slice {auto.slice_index})"
        base = auto if auto is not None else Level(ov.name, "found")
        out[ov.name] = replace(
            base, status="found", slice_index=k, z_mm=float(zs[k]), method="manual",
            confidence=1.0, reason=note, upper_endplate_slice=None, upper_endplate_z_mm=None,
            candidates=(),
        )
    return out
