"""A DICOMweb client for one server, with rcsa's typed errors around every request."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import requests
from dicomweb_client.api import DICOMwebClient

from rcsa.errors import PacsConnectionError, PacsServerError
from rcsa.pacs.config import PacsSettings

T = TypeVar("T")


def make_client(settings: PacsSettings) -> DICOMwebClient:
    """A client whose session carries the settings' authentication and TLS options."""
    session = requests.Session()
    if settings.token:
        session.headers["Authorization"] = f"Bearer {settings.token}"
    elif settings.username is not None:
        session.auth = (settings.username, settings.password or "")
    session.verify = settings.ca_bundle if settings.ca_bundle else settings.verify_tls
    client = DICOMwebClient(settings.url, session=session, timeout=settings.timeout_s)
    # dicomweb-client retries every failed request (also "connection refused") 5 times with
    # back-off doubling from 2 s, i.e. ~30 s before an unreachable server is reported; keep
    # a short retry for transient errors instead (waits 0.5 s, 1 s, ...).
    client.set_http_retry_params(retry=settings.max_attempts > 1,
                                 max_attempts=settings.max_attempts,
                                 wait_exponential_multiplier=250)
    return client


def _reason(exc: BaseException) -> str:
    """A short human reason from a requests exception (the innermost cause, not a repr)."""
    inner: BaseException = exc
    while True:
        nxt = inner.__cause__ or inner.__context__
        if nxt is None or nxt is inner:
            break
        inner = nxt
    text = str(inner) or type(inner).__name__
    for marker in ("Connection refused", "Name or service not known", "timed out",
                   "No route to host", "certificate verify failed", "Temporary failure"):
        if marker.lower() in str(exc).lower() or marker.lower() in text.lower():
            return marker.lower()
    return text


def call(url: str, what: str, fn: Callable[[], T]) -> T:
    """Run one request; network failures and HTTP errors become rcsa's PACS errors."""
    try:
        return fn()
    except requests.exceptions.SSLError as exc:
        raise PacsConnectionError(f"{what}: TLS error: {_reason(exc)}", url) from exc
    except requests.exceptions.Timeout as exc:
        raise PacsConnectionError(f"{what}: server did not answer in time", url) from exc
    except requests.exceptions.ConnectionError as exc:
        raise PacsConnectionError(f"{what}: server unreachable: {_reason(exc)}", url) from exc
    except requests.exceptions.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        hint = {
            401: " (authentication required or refused: check RCSA_DICOMWEB_USER / "
                 "RCSA_DICOMWEB_PASSWORD / RCSA_DICOMWEB_TOKEN or pacs.toml)",
            403: " (the credentials are not allowed to do this)",
            404: " (not found: check the DICOMweb service root URL)",
        }.get(status or 0, "")
        raise PacsServerError(f"{what}: HTTP {status}{hint}", url) from exc
    except requests.exceptions.RequestException as exc:
        raise PacsConnectionError(f"{what}: {_reason(exc)}", url) from exc
    except ValueError as exc:  # malformed JSON / multipart answers
        raise PacsServerError(f"{what}: unusable answer from the server: {exc}", url) from exc
