"""Writing output files safely: atomic replacement and refusal to overwrite.

Every writer in rcsa goes through :func:`atomic_write`: the content is written to a temporary
file beside the target and moved into place with ``os.replace``, so a reader (or a crashed
run) never sees a half-written file, and an existing output is only replaced when the caller
passed ``overwrite=True`` (``--overwrite`` on the command line).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rcsa.errors import InputNotFoundError, OutputExistsError


def check_writable(path: Path, overwrite: bool, create_parent: bool = False) -> None:
    """Refuse an existing output unless ``overwrite``; the parent folder must exist
    (or is created when ``create_parent``)."""
    if path.exists() and not overwrite:
        raise OutputExistsError("output exists; pass --overwrite to replace it", path)
    if not path.parent.exists():
        if not create_parent:
            raise InputNotFoundError("output folder does not exist", path.parent)
        path.parent.mkdir(parents=True, exist_ok=True)


def _default_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(
    path: Path | str,
    writer: Callable[[Path], None],
    overwrite: bool,
    create_parent: bool = False,
) -> Path:
    """Call ``writer(tmp)`` on a temporary file beside ``path``, then move it into place."""
    path = Path(path)
    check_writable(path, overwrite, create_parent)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        writer(tmp)
        os.chmod(tmp, _default_mode())  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def atomic_write_text(
    path: Path | str, text: str, overwrite: bool, create_parent: bool = False
) -> Path:
    def write(tmp: Path) -> None:
        tmp.write_text(text, encoding="utf-8")

    return atomic_write(path, write, overwrite, create_parent)


def swap_into_place(stage: Path, out: Path) -> None:
    """Move the finished folder ``stage`` to ``out``; an existing ``out`` is moved aside first
    and put back if the move fails, then removed."""
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        old.rmdir()
        os.replace(out, old)
        try:
            os.replace(stage, out)
        except BaseException:
            os.replace(old, out)  # put the previous result back
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(stage, out)


@contextmanager
def staged_folder(out: Path) -> Iterator[Path]:
    """Build an output folder in a staging folder beside ``out`` (same file system).

    On success the stage is made world-readable and moved into place with
    :func:`swap_into_place`; on any error it is removed and ``out`` is left as it was. The
    caller refuses a non-empty ``out`` first when it must not be replaced.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        yield stage
        for f in stage.rglob("*"):
            os.chmod(f, 0o755 if f.is_dir() else 0o644)
        os.chmod(stage, 0o755)
        swap_into_place(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
