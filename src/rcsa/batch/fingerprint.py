"""What decides whether a case's earlier result may be reused: the state key.

``state key = sha256(input fingerprint, model sha256, configuration hash)``

* **Input fingerprint** (:func:`fingerprint`): the SHA-256 of the scan's content (every file
  the loader reads: the image file, a MetaImage / NRRD header's data file, every file of a
  DICOM folder, sorted by content hash so that renaming files changes nothing) plus what the
  case selects in it (``series_uid``, manual ``levels``, ``height_m``). Same bytes -> same
  fingerprint, wherever the files lie; one changed byte -> a new fingerprint. A DICOMweb series
  is fingerprinted by its service URL, study and series UID and instance count (DICOM
  instances are immutable by the standard; a series that gains instances is new).
* **Model** (:func:`model_version`): the sha256 of the shipped weights recorded in
  ``rcsa/models/metadata.json``.
* **Configuration** (:func:`config_hash`): the effective :class:`~rcsa.config.RcsaConfig`
  (``to_dict``) plus the options that change results (``tta``, tilt correction, irregular
  spacing resampling).

Hashing a large archive is I/O bound; :class:`HashCache` lets the state store remember file
hashes by (path, size, mtime) so a rerun reads only what changed. Files modified in the last
two seconds are never cached (their mtime may not yet tell a later change apart).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from rcsa.batch.cases import Case
from rcsa.config import RcsaConfig
from rcsa.errors import InputNotFoundError, InputNotReadableError, ModelError

#: Files younger than this are hashed but not cached (mtime granularity, racing writers).
RACY_S = 2.0
_HASH_THREADS = 4


class HashCache(Protocol):
    """Remembers file hashes by (absolute path, size, mtime_ns)."""

    def get_hash(self, path: str, size: int, mtime_ns: int) -> str | None: ...

    def put_hash(self, path: str, size: int, mtime_ns: int, sha256: str) -> None: ...


@dataclass(frozen=True)
class ModelVersion:
    """The segmentation model a result was made with."""

    name: str
    sha256: str


def model_version(path: Path | None = None) -> ModelVersion:
    """Name and weights sha256 of the shipped model, or of the model whose ``metadata.json``
    is ``path`` (read from the metadata; torch is not imported)."""
    meta_file: Any = (resources.files("rcsa").joinpath("models/metadata.json") if path is None
                      else Path(path))
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        return ModelVersion(str(meta.get("name", "")), str(meta["weights"]["sha256"]).lower())
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"cannot read the model's sha256 ({exc})", str(meta_file)) from None


def config_hash(config: RcsaConfig, options: Mapping[str, Any]) -> str:
    """SHA-256 of the effective configuration and the result-changing options."""
    doc = {"config": config.to_dict(), "options": dict(sorted(options.items()))}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def state_key(fingerprint_: str, model_sha256: str, config_hash_: str) -> str:
    """The key a finished result is recorded under."""
    return hashlib.sha256(f"{fingerprint_}\n{model_sha256}\n{config_hash_}".encode()).hexdigest()


# ------------------------------------------------------------------------------------------
# content
# ------------------------------------------------------------------------------------------
_DATA_FILE = {
    ".mhd": re.compile(r"^\s*ElementDataFile\s*=\s*(.+?)\s*$", re.MULTILINE),
    ".nhdr": re.compile(r"^\s*data ?file\s*:\s*(.+?)\s*$", re.MULTILINE | re.IGNORECASE),
}


def content_files(path: Path) -> list[Path]:
    """The files whose bytes make up the input at ``path`` (what the loader reads)."""
    if not path.exists():
        raise InputNotFoundError("no such file or folder", path)
    if path.is_dir():
        if not os.access(path, os.R_OK | os.X_OK):
            raise InputNotReadableError("permission denied: cannot list the folder", path)
        return sorted(f for f in path.rglob("*") if f.is_file() and not f.name.startswith(".")
                      and f.name.upper() != "DICOMDIR")
    files = [path]
    pattern = _DATA_FILE.get(path.suffix.lower())
    if pattern is not None:
        try:
            head = path.read_text(encoding="latin-1", errors="replace")[:65536]
        except OSError as exc:
            raise InputNotReadableError(f"cannot read file ({exc.strerror or exc})",
                                        path) from None
        m = pattern.search(head)
        if m and m.group(1) not in ("LOCAL", "LIST") and "%" not in m.group(1):
            data = path.parent / m.group(1)
            if data.is_file():
                files.append(data)
    return files


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    except PermissionError:
        raise InputNotReadableError("permission denied", path) from None
    except OSError as exc:
        raise InputNotReadableError(f"cannot read file ({exc.strerror or exc})", path) from None
    return h.hexdigest()


def _hash_files(files: list[Path], cache: HashCache | None) -> list[str]:
    """SHA-256 of each file; cached ones are not read. The cache is used from this thread
    only (sqlite connections are not shared); the reading runs in a few threads (hashlib
    releases the GIL)."""
    stats = []
    for f in files:
        try:
            st = f.stat()
        except OSError as exc:
            raise InputNotReadableError(f"cannot read file ({exc.strerror or exc})", f) from None
        stats.append((str(f.resolve()), st.st_size, st.st_mtime_ns))
    known = [cache.get_hash(*s) if cache is not None else None for s in stats]
    todo = [i for i, k in enumerate(known) if k is None]
    if len(todo) > 1:
        with ThreadPoolExecutor(min(_HASH_THREADS, len(todo))) as pool:
            fresh = list(pool.map(lambda i: file_sha256(files[i]), todo))
    else:
        fresh = [file_sha256(files[i]) for i in todo]
    now = time.time()
    for i, digest in zip(todo, fresh, strict=True):
        known[i] = digest
        if cache is not None and now - stats[i][2] / 1e9 > RACY_S:
            cache.put_hash(*stats[i], digest)
    return [k for k in known if k is not None]


def content_sha256(path: Path, cache: HashCache | None = None) -> str:
    """One SHA-256 over the content hashes of :func:`content_files` (order-free)."""
    digests = _hash_files(content_files(path), cache)
    h = hashlib.sha256(f"{len(digests)} file(s)\n".encode())
    for d in sorted(digests):
        h.update(d.encode() + b"\n")
    return h.hexdigest()


def fingerprint(case: Case, cache: HashCache | None = None) -> str:
    """The input fingerprint of a case (see the module docstring)."""
    if case.remote is not None:
        r = case.remote
        doc: dict[str, Any] = {"remote": [r.url.rstrip("/"), r.study_uid, r.series_uid,
                                          r.n_instances]}
    else:
        assert case.path is not None
        doc = {"content": content_sha256(case.path, cache)}
    doc.update(series_uid=case.series_uid, levels=list(case.levels), height_m=case.height_m)
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
