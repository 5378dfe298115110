"""The batch state store: one SQLite file (``batch_state.sqlite``) in the output folder.

Only the parent process of a batch writes it, one short transaction per change, so a run
killed at any moment leaves it consistent (SQLite's rollback journal undoes a transaction cut
short). A case's row says what happened to it last:

========== ====================================================================================
pending    planned in a run that has not reached it yet
running    handed to a worker; a row still ``running`` when no batch runs was interrupted
done       its output folder was written completely (atomic rename) under ``state_key``
failed     ``reason`` / ``error_type`` say why; rerun with ``--retry-failed`` to try again
========== ====================================================================================

``state_key`` (:func:`rcsa.batch.fingerprint.state_key`) binds a row to the input content,
the model and the configuration; a ``done`` row counts only while its key matches the case as
it is now. The store also remembers file hashes by (path, size, mtime) so that fingerprints
of unchanged files are not recomputed, and one row per run.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rcsa.errors import BatchError

STATE_FILE = "batch_state.sqlite"
LOCK_FILE = ".batch.lock"
SCHEMA_VERSION = "1"
STATUSES = ("pending", "running", "done", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cases (
    case_id TEXT PRIMARY KEY,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
    state_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    model_sha256 TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    source TEXT NOT NULL,
    clinical TEXT NOT NULL DEFAULT '{}',
    output_dir TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    error_type TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    started_at REAL,
    finished_at REAL,
    seconds REAL,
    worker TEXT NOT NULL DEFAULT '',
    peak_rss_mb REAL,
    pushed TEXT,
    run_id TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS file_hashes (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, started_at REAL NOT NULL, finished_at REAL,
    options TEXT NOT NULL, counts TEXT
);
"""


@dataclass
class CaseRecord:
    """One row of the ``cases`` table."""

    case_id: str
    status: str
    state_key: str
    fingerprint: str
    model_sha256: str
    config_hash: str
    source: str
    output_dir: str
    clinical: dict[str, str] = field(default_factory=dict)
    reason: str = ""
    error_type: str = ""
    detail: str = ""
    attempts: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    seconds: float | None = None
    worker: str = ""
    peak_rss_mb: float | None = None
    pushed: dict[str, Any] | None = None
    run_id: str = ""


_COLUMNS = tuple(CaseRecord.__dataclass_fields__)


def _to_row(r: CaseRecord) -> tuple[Any, ...]:
    values = []
    for name in _COLUMNS:
        v = getattr(r, name)
        if name == "clinical":
            v = json.dumps(dict(v), sort_keys=True)
        elif name == "pushed":
            v = None if v is None else json.dumps(v, sort_keys=True, default=str)
        values.append(v)
    return tuple(values)


def _from_row(row: sqlite3.Row) -> CaseRecord:
    d = {k: row[k] for k in _COLUMNS}
    d["clinical"] = json.loads(d["clinical"] or "{}")
    d["pushed"] = None if d["pushed"] is None else json.loads(d["pushed"])
    return CaseRecord(**d)


class StateStore:
    """The SQLite state store of one batch output folder (parent process only)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA synchronous = FULL")
            with self.transaction():
                for stmt in _SCHEMA.split(";"):
                    if stmt.strip():
                        self._db.execute(stmt)
                row = self._db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
                if row is None:
                    self._db.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
                elif row[0] != SCHEMA_VERSION:
                    raise BatchError(f"state store schema {row[0]} is not {SCHEMA_VERSION} "
                                     "(written by another rcsa version)", self.path)
        except sqlite3.DatabaseError as exc:
            raise BatchError(f"state store unusable ({exc})", self.path) from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -------------------------------------------------------------------- file hash cache
    def get_hash(self, path: str, size: int, mtime_ns: int) -> str | None:
        row = self._db.execute(
            "SELECT sha256 FROM file_hashes WHERE path = ? AND size = ? AND mtime_ns = ?",
            (path, size, mtime_ns)).fetchone()
        return None if row is None else str(row[0])

    def put_hash(self, path: str, size: int, mtime_ns: int, sha256: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO file_hashes VALUES (?, ?, ?, ?)",
                         (path, size, mtime_ns, sha256))

    # -------------------------------------------------------------------- cases
    def get(self, case_id: str) -> CaseRecord | None:
        row = self._db.execute("SELECT * FROM cases WHERE case_id = ?", (case_id,)).fetchone()
        return None if row is None else _from_row(row)

    def records(self, status: str | None = None) -> list[CaseRecord]:
        if status is None:
            rows = self._db.execute("SELECT * FROM cases ORDER BY case_id").fetchall()
        else:
            rows = self._db.execute("SELECT * FROM cases WHERE status = ? ORDER BY case_id",
                                    (status,)).fetchall()
        return [_from_row(r) for r in rows]

    def put(self, *records: CaseRecord) -> None:
        """Insert or replace rows, in one transaction."""
        marks = ", ".join("?" for _ in _COLUMNS)
        with self.transaction() as db:
            db.executemany(f"INSERT OR REPLACE INTO cases ({', '.join(_COLUMNS)}) "
                           f"VALUES ({marks})", [_to_row(r) for r in records])

    def update(self, case_id: str, **values: Any) -> None:
        """Change some columns of one row, in one transaction."""
        unknown = set(values) - set(_COLUMNS)
        if unknown:
            raise ValueError(f"unknown state columns {sorted(unknown)}")
        probe = CaseRecord(case_id, "pending", "", "", "", "", "", "")
        for k, v in values.items():
            setattr(probe, k, v)
        row = dict(zip(_COLUMNS, _to_row(probe), strict=True))
        sets = ", ".join(f"{k} = ?" for k in values)
        with self.transaction() as db:
            cur = db.execute(f"UPDATE cases SET {sets} WHERE case_id = ?",
                             [row[k] for k in values] + [case_id])
            if cur.rowcount != 1:
                raise KeyError(case_id)

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for status, n in self._db.execute("SELECT status, COUNT(*) FROM cases GROUP BY status"):
            out[str(status)] = int(n)
        return out

    # -------------------------------------------------------------------- runs
    def begin_run(self, run_id: str, started_at: float, options: Mapping[str, Any]) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO runs (run_id, started_at, options) VALUES (?, ?, ?)",
                       (run_id, started_at, json.dumps(dict(options), sort_keys=True,
                                                       default=str)))

    def end_run(self, run_id: str, finished_at: float, counts: Mapping[str, Any]) -> None:
        with self.transaction() as db:
            db.execute("UPDATE runs SET finished_at = ?, counts = ? WHERE run_id = ?",
                       (finished_at, json.dumps(dict(counts), sort_keys=True), run_id))


class OutputLock:
    """An exclusive advisory lock on a batch output folder (``.batch.lock``), so two batches
    never write one folder at once. The operating system releases it when the process dies,
    also on SIGKILL. Where ``fcntl`` is missing (Windows) the lock is a no-op."""

    def __init__(self, out_dir: Path) -> None:
        self.path = out_dir / LOCK_FILE
        self._fd: int | None = None

    def __enter__(self) -> OutputLock:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise BatchError("another rcsa batch is running in this output folder (it holds "
                             f"{LOCK_FILE}); wait for it or use another --out",
                             self.path.parent) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the lock
            self._fd = None
