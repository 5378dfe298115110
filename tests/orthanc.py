"""A throw-away Orthanc (with the DICOMweb plugin) for the PACS integration tests.

:func:`start_orthanc` runs ``/usr/sbin/Orthanc`` (Debian packages ``orthanc`` and
``orthanc-dicomweb``) on 127.0.0.1 at a free port, with a temporary storage folder and a
generated JSON configuration (HTTP basic authentication with one test user, DICOM network
server off), waits until ``/system`` answers and returns a handle whose ``stop()`` ends it. It
never touches an Orthanc service that may already run on the machine (port 8042).
"""

from __future__ import annotations

import base64
import glob
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

#: ``RCSA_TEST_ORTHANC`` names another binary (or a missing path, to run without Orthanc).
ORTHANC_OVERRIDE = os.environ.get("RCSA_TEST_ORTHANC")
ORTHANC_BINARY = ORTHANC_OVERRIDE or "/usr/sbin/Orthanc"
PLUGIN_GLOBS = (
    "/usr/share/orthanc/plugins/libOrthancDicomWeb.so*",
    "/usr/lib/orthanc/libOrthancDicomWeb.so*",
)
USER = "rcsa-test"
PASSWORD = "rcsa-test-password"


def orthanc_binary() -> str | None:
    """The Orthanc executable, or None when it is not installed."""
    if Path(ORTHANC_BINARY).is_file():
        return ORTHANC_BINARY
    return None if ORTHANC_OVERRIDE else shutil.which("Orthanc")


def dicomweb_plugin() -> str:
    for pattern in PLUGIN_GLOBS:
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    raise RuntimeError(
        "Orthanc is installed but its DICOMweb plugin is not (Debian package "
        "orthanc-dicomweb); searched " + ", ".join(PLUGIN_GLOBS)
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Orthanc:
    process: subprocess.Popen[bytes]
    base_url: str  # http://127.0.0.1:PORT
    folder: Path
    log: Path

    @property
    def dicomweb_url(self) -> str:
        return f"{self.base_url}/dicom-web"

    def get_json(self, path: str) -> object:
        """GET a REST path as the test user (e.g. ``/system``, ``/statistics``)."""
        req = urllib.request.Request(self.base_url + path, headers=_auth_header())
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read().decode("utf-8"))

    def versions(self) -> dict[str, str]:
        system = self.get_json("/system")
        plugin = self.get_json("/plugins/dicom-web")
        assert isinstance(system, dict) and isinstance(plugin, dict)
        return {"orthanc": str(system["Version"]), "dicomweb_plugin": str(plugin["Version"])}

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def _auth_header() -> dict[str, str]:
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def start_orthanc(folder: Path, timeout_s: float = 60.0) -> Orthanc:
    binary = orthanc_binary()
    if binary is None:
        raise RuntimeError("Orthanc is not installed")
    folder.mkdir(parents=True, exist_ok=True)
    storage = folder / "storage"
    storage.mkdir(exist_ok=True)
    port = free_port()
    config = {
        "Name": "rcsa-test",
        "StorageDirectory": str(storage),
        "IndexDirectory": str(storage),
        "HttpPort": port,
        "DicomServerEnabled": False,
        "DicomPort": free_port(),
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": True,
        "RegisteredUsers": {USER: PASSWORD},
        "HttpCompressionEnabled": False,
        "Plugins": [dicomweb_plugin()],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
    }
    cfg = folder / "orthanc.json"
    cfg.write_text(json.dumps(config, indent=2), encoding="utf-8")
    log = folder / "orthanc.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen([binary, str(cfg)], cwd=folder, stdout=fh,
                                stderr=subprocess.STDOUT, start_new_session=True)
    server = Orthanc(proc, f"http://127.0.0.1:{port}", folder, log)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"Orthanc exited with code {proc.returncode}:\n"
                               f"{server.log_tail()}")
        try:
            server.get_json("/system")
            return server
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"Orthanc did not answer /system within {timeout_s:.0f} s:\n"
                       f"{server.log_tail()}")
