"""PACS over DICOMweb: query (QIDO-RS), retrieve (WADO-RS) and push results (STOW-RS).

The batch runner (:mod:`rcsa.batch`) imports this package lazily; these names are its
interface. Credentials come from the environment or a config file, never the command line
(:mod:`rcsa.pacs.config`). See ``docs/pacs.md``.

The submodules (and so ``dicomweb-client``, ``highdicom``) are imported on first use of a
name, so that ``rcsa --help`` and the CLI's registration stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rcsa._lazy import lazy_attributes

if TYPE_CHECKING:
    from rcsa.pacs.config import PacsSettings, load_settings
    from rcsa.pacs.dicom_export import build_seg, build_sr, export_dicom
    from rcsa.pacs.push import cases_from_query, push_results, store
    from rcsa.pacs.query import QueryParams, SeriesRecord, parse_date_range, query_series
    from rcsa.pacs.retrieve import retrieve

_WHERE = {
    "PacsSettings": "config",
    "load_settings": "config",
    "build_seg": "dicom_export",
    "build_sr": "dicom_export",
    "export_dicom": "dicom_export",
    "cases_from_query": "push",
    "push_results": "push",
    "store": "push",
    "QueryParams": "query",
    "SeriesRecord": "query",
    "parse_date_range": "query",
    "query_series": "query",
    "retrieve": "retrieve",
}

__all__ = [
    "PacsSettings",
    "QueryParams",
    "SeriesRecord",
    "build_seg",
    "build_sr",
    "cases_from_query",
    "export_dicom",
    "load_settings",
    "parse_date_range",
    "push_results",
    "query_series",
    "retrieve",
    "store",
]


__getattr__ = lazy_attributes(__name__, _WHERE)
