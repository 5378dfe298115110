"""Seeded byte-level mutations of files, for the robustness property tests and
``benchmarks/robustness.py``.

A mutation never touches the original: :func:`mutate_copy` reads ``src`` and writes the damaged
bytes to ``dst``. The families are those an archive produces: random bytes in the header,
truncation, zeroed blocks (a disk or a transfer that lost a sector) and random bytes in the
pixel stream.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable
from pathlib import Path

KINDS = ("header", "truncate", "zero_block", "pixels")


def _header_end(data: bytes) -> int:
    """Offset of the pixel data element (7FE0,0010) in a DICOM file, else a third of it."""
    for tag in (b"\xe0\x7f\x10\x00OB", b"\xe0\x7f\x10\x00OW", b"\xe0\x7f\x10\x00"):
        at = data.rfind(tag)
        if at > 0:
            return at
    return max(1, len(data) // 3)


def mutate(data: bytes, rng: random.Random, kind: str, header_size: int | None = None) -> bytes:
    """``data`` damaged by one mutation of ``kind`` (see :data:`KINDS`).

    ``header_size``: where the header ends (default: the DICOM pixel data element)."""
    n = len(data)
    end = header_size if header_size is not None else _header_end(data)
    end = max(2, min(end, n))
    buf = bytearray(data)
    if kind == "header":  # 1-8 random bytes in the header (past a DICOM preamble)
        lo = 132 if data[128:132] == b"DICM" and end > 140 else 0
        for _ in range(rng.randint(1, 8)):
            buf[rng.randrange(lo, end)] = rng.randrange(256)
    elif kind == "truncate":  # cut anywhere
        return bytes(buf[: rng.randrange(0, n)])
    elif kind == "zero_block":  # 512 - 4096 bytes zeroed anywhere
        size = rng.randint(512, 4096)
        at = rng.randrange(0, max(1, n - 1))
        buf[at: at + size] = bytes(len(buf[at: at + size]))
    elif kind == "pixels":  # 1-64 random bytes in the pixel stream
        if end >= n - 1:
            end = n // 2
        for _ in range(rng.randint(1, 64)):
            buf[rng.randrange(end, n)] = rng.randrange(256)
    else:
        raise ValueError(f"unknown mutation {kind!r}")
    return bytes(buf)


def mutate_copy(src: Path, dst: Path, rng: random.Random, kind: str,
                header_size: int | None = None) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(mutate(src.read_bytes(), rng, kind, header_size))
    return dst


def mutated_series(files: list[Path], dst: Path, rng: random.Random) -> list[str]:
    """Copy the series ``files`` into ``dst`` with 1-3 of them mutated; returns what was done."""
    done = []
    targets = set(rng.sample(range(len(files)), rng.randint(1, min(3, len(files)))))
    for k, f in enumerate(files):
        if k in targets:
            kind = rng.choice(KINDS)
            mutate_copy(f, dst / f.name, rng, kind)
            done.append(f"{f.name}:{kind}")
        else:
            (dst / f.name).parent.mkdir(parents=True, exist_ok=True)
            (dst / f.name).write_bytes(f.read_bytes())
    return done


def digest(paths: Iterable[Path]) -> dict[str, str]:
    """sha256 of every file under ``paths`` (files or folders), by path."""
    out: dict[str, str] = {}
    for p in paths:
        files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
        for f in files:
            out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out
