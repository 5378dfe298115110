"""DICOMweb server settings: URL, credentials, timeout, TLS.

Credentials never come from the command line. Sources, first match wins per item:

* URL: the ``url`` argument (``--url``), ``RCSA_DICOMWEB_URL``, the config file's ``url``.
* Credentials: ``RCSA_DICOMWEB_TOKEN`` or ``RCSA_DICOMWEB_USER`` + ``RCSA_DICOMWEB_PASSWORD``
  from the environment; otherwise ``token`` or ``username`` + ``password`` from the config file.
  A bearer token wins over a user/password pair from the same source.
* Config file: the ``config`` argument (``--pacs-config``), ``RCSA_PACS_CONFIG``, or
  ``$XDG_CONFIG_HOME/rcsa/pacs.toml`` (``~/.config/rcsa/pacs.toml``) when it exists.

A URL with ``user:password@`` in it is refused, so a password cannot slip onto a command line
or into a log through the URL.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rcsa.errors import PacsConfigError

ENV_URL = "RCSA_DICOMWEB_URL"
ENV_USER = "RCSA_DICOMWEB_USER"
ENV_PASSWORD = "RCSA_DICOMWEB_PASSWORD"
ENV_TOKEN = "RCSA_DICOMWEB_TOKEN"
ENV_CONFIG = "RCSA_PACS_CONFIG"

_KEYS = {"url", "username", "password", "token", "timeout_s", "max_attempts", "verify_tls",
         "ca_bundle"}


@dataclass(frozen=True)
class PacsSettings:
    """Everything needed to talk to one DICOMweb server. Secrets are hidden in ``repr``."""

    url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    timeout_s: float = 60.0
    max_attempts: int = 3  # per request, for transient failures (connection, 429, 503, ...)
    verify_tls: bool = True
    ca_bundle: str | None = None
    credentials_from: str = "none"  # "environment", "<config file path>" or "none"

    @property
    def auth(self) -> str:
        """``bearer``, ``basic`` or ``none`` (what is sent, never the secret itself)."""
        if self.token:
            return "bearer"
        if self.username is not None:
            return "basic"
        return "none"


def default_config_path(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME/rcsa/pacs.toml`` (``~/.config/rcsa/pacs.toml`` without XDG)."""
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "rcsa" / "pacs.toml"


def read_config_file(path: Path) -> dict[str, Any]:
    """The ``pacs.toml`` table; unknown keys and wrong types are refused with the file named."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PacsConfigError(f"PACS config file {path} does not exist") from None
    except OSError as exc:
        raise PacsConfigError(f"PACS config file {path} cannot be read: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PacsConfigError(f"PACS config file {path} is not valid TOML: {exc}") from None
    if isinstance(data.get("pacs"), dict):  # allow a [pacs] table as well as top-level keys
        data = dict(data["pacs"])
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise PacsConfigError(
            f"PACS config file {path}: unknown key(s) {', '.join(unknown)} "
            f"(known: {', '.join(sorted(_KEYS))})"
        )
    for key in ("url", "username", "password", "token", "ca_bundle"):
        if key in data and not isinstance(data[key], str):
            raise PacsConfigError(f"PACS config file {path}: {key} must be a string")
    if "timeout_s" in data and (
        isinstance(data["timeout_s"], bool)
        or not isinstance(data["timeout_s"], int | float)
        or data["timeout_s"] <= 0
    ):
        raise PacsConfigError(f"PACS config file {path}: timeout_s must be a positive number")
    if "max_attempts" in data and (
        isinstance(data["max_attempts"], bool) or not isinstance(data["max_attempts"], int)
        or not 1 <= data["max_attempts"] <= 10
    ):
        raise PacsConfigError(f"PACS config file {path}: max_attempts must be 1 to 10")
    if "verify_tls" in data and not isinstance(data["verify_tls"], bool):
        raise PacsConfigError(f"PACS config file {path}: verify_tls must be true or false")
    return dict(data)


def check_url(url: str) -> str:
    """Validate a DICOMweb service root; returns it without a trailing slash."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PacsConfigError(
            f"not an http(s) URL: {url!r} (expected e.g. https://pacs.example.org/dicom-web)"
        )
    if parts.username is not None or parts.password is not None:
        safe = parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()
        raise PacsConfigError(
            "credentials in the URL are refused: set RCSA_DICOMWEB_USER / "
            "RCSA_DICOMWEB_PASSWORD (or RCSA_DICOMWEB_TOKEN) or use a pacs.toml file",
            safe,
        )
    return url.rstrip("/")


def load_settings(
    url: str | None = None,
    config: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> PacsSettings:
    """Resolve the server settings (see the module docstring for the order of sources)."""
    env = os.environ if env is None else env
    file_data: dict[str, Any] = {}
    config_path: Path | None = None
    if config is not None:
        config_path = Path(config)
    elif env.get(ENV_CONFIG):
        config_path = Path(env[ENV_CONFIG])
    elif default_config_path(env).is_file():
        config_path = default_config_path(env)
    if config_path is not None:
        file_data = read_config_file(config_path)

    chosen = url or env.get(ENV_URL) or file_data.get("url")
    if not chosen:
        raise PacsConfigError(
            f"no DICOMweb server URL: pass --url, set {ENV_URL}, or put url = \"...\" in "
            f"{config_path or default_config_path(env)}"
        )
    chosen = check_url(str(chosen))

    username = password = token = None
    source = "none"
    if env.get(ENV_TOKEN) or env.get(ENV_USER) or env.get(ENV_PASSWORD):
        source = "environment"
        token = env.get(ENV_TOKEN) or None
        if token is None:
            username, password = env.get(ENV_USER), env.get(ENV_PASSWORD)
            if not username or password is None:
                raise PacsConfigError(
                    f"{ENV_USER} and {ENV_PASSWORD} must be set together", chosen
                )
    elif any(k in file_data for k in ("token", "username", "password")):
        source = str(config_path)
        token = file_data.get("token") or None
        if token is None:
            username, password = file_data.get("username"), file_data.get("password")
            if not username or password is None:
                raise PacsConfigError(
                    f"PACS config file {config_path}: username and password must be given "
                    "together", chosen
                )
    return PacsSettings(
        url=chosen,
        username=username,
        password=password,
        token=token,
        timeout_s=float(file_data.get("timeout_s", 60.0)),
        max_attempts=int(file_data.get("max_attempts", 3)),
        verify_tls=bool(file_data.get("verify_tls", True)),
        ca_bundle=file_data.get("ca_bundle"),
        credentials_from=source,
    )
