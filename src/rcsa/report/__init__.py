"""Screening report (``rcsa screen``): one patient's measurements, QC and risk score as
self-contained HTML, PDF and JSON (``docs/screen.md``).

>>> from rcsa.report import screen                                   # doctest: +SKIP
>>> screen("ct.nii.gz", "report/", model="my-site-model.json",       # doctest: +SKIP
...        assignments=["fractured_vertebrae_n=2", "cement_volume_ml=3.5"])

The names below are imported on first use (PEP 562), so that ``rcsa --help`` and every other
command do not pay for pandas, SciPy and the nomogram code when ``rcsa.cli`` registers
``rcsa screen`` (``rcsa.report.cli``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rcsa._lazy import lazy_attributes

if TYPE_CHECKING:
    from rcsa.report.content import build_document, read_run_folder
    from rcsa.report.inputs import FREE_TEXT_FIELDS, collect_inputs, resolve_predictors
    from rcsa.report.render import render_html, render_pdf
    from rcsa.report.screen import ScreenResult, screen

_WHERE = {
    "build_document": "content",
    "read_run_folder": "content",
    "FREE_TEXT_FIELDS": "inputs",
    "collect_inputs": "inputs",
    "resolve_predictors": "inputs",
    "render_html": "render",
    "render_pdf": "render",
    "ScreenResult": "screen",
    "screen": "screen",
}

__all__ = [
    "FREE_TEXT_FIELDS",
    "ScreenResult",
    "build_document",
    "collect_inputs",
    "read_run_folder",
    "render_html",
    "render_pdf",
    "resolve_predictors",
    "screen",
]


__getattr__ = lazy_attributes(__name__, _WHERE)
