"""Batch processing: many scans -> per-case ``rcsa run`` folders, one feature table, a run
report and a resumable state store (``docs/scale.md``).

>>> from rcsa.batch import discover, run_batch
>>> found = discover(["scans/", "manifest.csv"])            # doctest: +SKIP
>>> report = run_batch(found.cases, "out/", workers=2)      # doctest: +SKIP
>>> report.n_done, report.n_skipped, report.n_failed        # doctest: +SKIP

Cases from any source (folders, manifests, a DICOMweb query in :mod:`rcsa.pacs`) are plain
:class:`Case` objects and all feed :func:`run_batch`.

Importing this package is cheap: the names below are imported on first use (PEP 562), so
that ``rcsa.cli`` registering ``rcsa batch`` does not import the pipeline for every command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rcsa._lazy import lazy_attributes

if TYPE_CHECKING:
    from rcsa.batch.cases import Case, RemoteSeries
    from rcsa.batch.discover import Discovery, Ignored, check_case_ids, discover, read_manifest
    from rcsa.batch.fingerprint import config_hash, fingerprint, model_version, state_key
    from rcsa.batch.runner import BatchEvent, BatchReport, CaseReport, build_table, run_batch
    from rcsa.batch.state import CaseRecord, StateStore

_WHERE = {
    **dict.fromkeys(("Case", "RemoteSeries"), "cases"),
    **dict.fromkeys(("Discovery", "Ignored", "check_case_ids", "discover", "read_manifest"),
                    "discover"),
    **dict.fromkeys(("config_hash", "fingerprint", "model_version", "state_key"), "fingerprint"),
    **dict.fromkeys(("BatchEvent", "BatchReport", "CaseReport", "build_table", "run_batch"),
                    "runner"),
    **dict.fromkeys(("CaseRecord", "StateStore"), "state"),
}

__all__ = [
    "BatchEvent",
    "BatchReport",
    "Case",
    "CaseRecord",
    "CaseReport",
    "Discovery",
    "Ignored",
    "RemoteSeries",
    "StateStore",
    "build_table",
    "check_case_ids",
    "config_hash",
    "discover",
    "fingerprint",
    "model_version",
    "read_manifest",
    "run_batch",
    "state_key",
]


__getattr__ = lazy_attributes(__name__, _WHERE)
