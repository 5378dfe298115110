"""HTML (Jinja2, autoescaped) and PDF (WeasyPrint) rendering of a report document.

Every value reaches the page through Jinja2's autoescaping; the templates use no ``|safe`` and
no ``Markup``, so a clinical field such as ``<script>`` is shown as text. The page is
self-contained (images are ``data:`` URIs, the stylesheet is inline) and its Content Security
Policy forbids scripts and every network request.

The PDF is printed from the same HTML by WeasyPrint (pure Python on Pango; no browser at run
time). When WeasyPrint or the Pango library it needs is missing, :func:`pdf_engine` raises
:class:`rcsa.errors.ReportError` naming the cause, before any work is done.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from rcsa.errors import ReportError


def data_uri_png(data: bytes) -> str:
    """PNG bytes as a ``data:`` URI (the report embeds its images)."""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def png_data_uri(path: Path | None) -> str | None:
    """A PNG file as a ``data:`` URI; None for no file."""
    return data_uri_png(path.read_bytes()) if path is not None else None

PDF_ENGINE = "weasyprint"


def fmt(value: Any, digits: int = 1) -> str:
    """Numbers rounded for the page (``report.json`` keeps full precision); ``None`` -> ``-``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return f"{value:.{digits}f}"
    return str(value)


def pct(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{100 * float(value):.{digits}f} %"


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("rcsa.report", "templates"),
        autoescape=True,  # every template, whatever its name: user fields are escaped
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fmt"] = fmt
    env.filters["pct"] = pct
    return env


def render_html(doc: Mapping[str, Any]) -> str:
    return environment().get_template("report.html.j2").render(r=doc)


def pdf_engine() -> Any:
    """The WeasyPrint ``HTML`` class; :class:`ReportError` when it cannot be loaded."""
    try:
        from weasyprint import HTML  # type: ignore[import-untyped]
    except ImportError as exc:
        raise ReportError(
            f"the PDF engine ({PDF_ENGINE}) is not available: {exc}; install it (pip install "
            "weasyprint; it needs the Pango library, Debian package libpango-1.0-0) or pass "
            "--no-pdf to write report.html and report.json only") from exc
    except OSError as exc:  # WeasyPrint loads Pango with ctypes/cffi at import time
        raise ReportError(
            f"the PDF engine ({PDF_ENGINE}) cannot load a system library: {exc}; install "
            "Pango (Debian: libpango-1.0-0 libpangoft2-1.0-0) or pass --no-pdf") from exc
    return HTML


def render_pdf(html: str, path: Path) -> int:
    """Print ``html`` to ``path`` with WeasyPrint; returns the number of pages."""
    html_cls = pdf_engine()
    try:
        from weasyprint.urls import URLFetcher  # type: ignore[import-untyped]

        # data: URIs only: the report is self-contained and never fetches anything else
        fetcher = URLFetcher(allowed_protocols={"data"})
        document = html_cls(string=html, base_url=None, url_fetcher=fetcher).render()
        document.write_pdf(str(path))
    except Exception as exc:
        raise ReportError(f"the PDF engine ({PDF_ENGINE}) failed: {type(exc).__name__}: {exc}",
                          path) from exc
    return len(document.pages)
