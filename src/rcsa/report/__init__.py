"""Screening report (``rcsa screen``): one patient's measurements, QC and risk score as
self-contained HTML, PDF and JSON (``docs/screen.md``).

>>> from rcsa.report import screen                                   # doctest: +SKIP
>>> screen("ct.nii.gz", "report/", model="my-site-model.json",       # doctest: +SKIP
...        assignments=["fractured_vertebrae_n=2", "cement_volume_ml=3.5"])
"""

from rcsa.report.content import build_document, read_run_folder
from rcsa.report.inputs import FREE_TEXT_FIELDS, collect_inputs, resolve_predictors
from rcsa.report.render import render_html, render_pdf
from rcsa.report.screen import ScreenResult, screen

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
