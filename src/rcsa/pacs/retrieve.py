"""WADO-RS retrieve of one series into a local cache folder, atomically."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from rcsa.cases import RemoteSeries
from rcsa.errors import PacsServerError
from rcsa.pacs.client import call, make_client
from rcsa.pacs.config import PacsSettings, load_settings
from rcsa.pacs.query import case_id_for

#: Ask for the stored transfer syntax (no transcoding by the server).
MEDIA_TYPES: tuple[str | tuple[str, str], ...] = (("application/dicom", "*"),)
_SAFE = re.compile(r"[^0-9A-Za-z._-]")


def _unique_dir(parent: Path, name: str) -> Path:
    target = parent / name
    n = 1
    while target.exists():
        n += 1
        target = parent / f"{name}-{n}"
    return target


def retrieve(
    remote: RemoteSeries,
    cache_dir: Path,
    *,
    config: Path | None = None,
    settings: PacsSettings | None = None,
) -> Path:
    """Retrieve every instance of ``remote`` into a new folder under ``cache_dir``.

    Instances are streamed into a hidden staging folder (``.partial-*``) and the folder is
    renamed into place only when all of them arrived (and, when the series size is known from
    the query, their number matches); on any failure the staging folder is removed, so a
    half-retrieved series is never returned. Files are named ``<SOPInstanceUID>.dcm`` and keep
    the server's stored transfer syntax.
    """
    st = settings or load_settings(remote.url, config)
    client = make_client(st)
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".partial-", dir=cache_dir))
    what = f"WADO-RS retrieve of series {remote.series_uid}"
    try:
        expected = remote.n_instances
        if expected is None:
            found = call(st.url, "QIDO-RS instance search", lambda: client.search_for_instances(
                study_instance_uid=remote.study_uid,
                series_instance_uid=remote.series_uid,
                fields=["SOPInstanceUID"], get_remaining=True,
            ))
            expected = len(found)

        def fetch() -> int:
            n = 0
            for ds in client.iter_series(remote.study_uid, remote.series_uid,
                                         media_types=MEDIA_TYPES):
                uid = str(ds.get("SOPInstanceUID", "") or "") or f"instance-{n:06d}"
                name = _SAFE.sub("_", uid)[:120]
                ds.save_as(stage / f"{name}.dcm", enforce_file_format=True)
                n += 1
            return n

        n = call(st.url, what, fetch)
        if n == 0:
            raise PacsServerError(f"{what}: the server returned no instances", st.url)
        if expected and n != expected:
            raise PacsServerError(
                f"{what}: received {n} instance(s), the server lists {expected}", st.url
            )
        target = _unique_dir(cache_dir, case_id_for(remote.study_uid, remote.series_uid))
        os.chmod(stage, 0o755)
        os.replace(stage, target)
        return target
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
