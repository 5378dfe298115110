"""Writing output files safely: atomic replacement and refusal to overwrite.

Every writer in rcsa goes through :func:`atomic_write`: the content is written to a temporary
file beside the target and moved into place with ``os.replace``, so a reader (or a crashed
run) never sees a half-written file, and an existing output is only replaced when the caller
passed ``overwrite=True`` (``--overwrite`` on the command line).

An operating-system refusal while writing (permission denied, disk full, read-only file
system) is an :class:`~rcsa.errors.OutputWriteError` naming the output and the system's reason
(exit code 10), never a bare ``OSError``; the temporary file or staging folder is removed and a
previous output is left as it was.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rcsa.errors import InputNotFoundError, OutputExistsError, OutputWriteError


def write_error(exc: OSError, path: Path, stage: Path | None = None) -> OutputWriteError:
    """``exc`` as an :class:`OutputWriteError` on ``path`` (the output being written), with the
    system's reason ("No space left on device", "Permission denied", ...) and, when it names a
    file inside ``stage`` (the folder ``path`` is being built in), that file's place in it."""
    why = exc.strerror or " ".join(str(exc).split()) or type(exc).__name__
    what = "the output"
    if stage is not None and exc.filename is not None:
        name = Path(os.fsdecode(exc.filename)).absolute()
        if stage.absolute() in name.parents:
            what = f"{name.relative_to(stage.absolute()).as_posix()} of the output"
    return OutputWriteError(f"cannot write {what} ({why})", path)


def _about_output(exc: OSError, *roots: Path) -> bool:
    """Whether ``exc`` is about the output being written: it names no file (``write()`` on a
    full disk) or a file at or under one of ``roots`` (the stage, the temporary file, the
    target). An ``OSError`` naming another file (an input read while the output is built) is
    not turned into an output error."""
    if exc.filename is None:
        return True
    name = Path(os.fsdecode(exc.filename)).absolute()
    return any(name == r.absolute() or r.absolute() in name.parents for r in roots)


def _remove(path: Path) -> None:
    """Remove a temporary file or folder after a failure; a failure to remove it does not hide
    the error being raised."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        pass


def make_dir(path: Path) -> None:
    """``mkdir -p``; a refused creation is an :class:`OutputWriteError` on ``path``."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(exc, path) from exc


def check_writable(path: Path, overwrite: bool, create_parent: bool = False) -> None:
    """Refuse an existing output unless ``overwrite``; the parent folder must exist
    (or is created when ``create_parent``)."""
    if path.exists() and not overwrite:
        raise OutputExistsError("output exists; pass --overwrite to replace it", path)
    if not path.parent.exists():
        if not create_parent:
            raise InputNotFoundError("output folder does not exist", path.parent)
        make_dir(path.parent)


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
    """Call ``writer(tmp)`` on a temporary file beside ``path``, then move it into place.

    An ``OSError`` of the writer (naming no file or the temporary file) or of the move is an
    :class:`OutputWriteError` on ``path``; the temporary file is removed and an existing
    ``path`` is untouched."""
    path = Path(path)
    check_writable(path, overwrite, create_parent)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise write_error(exc, path) from exc
    tmp = Path(tmp_name)
    try:
        writer(tmp)
        os.chmod(tmp, _default_mode())  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)
    except OSError as exc:
        if not _about_output(exc, tmp, path):
            raise
        raise write_error(exc, path) from exc
    finally:
        if tmp.exists():
            _remove(tmp)
    return path


def atomic_write_text(
    path: Path | str, text: str, overwrite: bool, create_parent: bool = False
) -> Path:
    def write(tmp: Path) -> None:
        tmp.write_text(text, encoding="utf-8")

    return atomic_write(path, write, overwrite, create_parent)


def swap_into_place(stage: Path, out: Path) -> None:
    """Move the finished folder ``stage`` to ``out``; an existing ``out`` is moved aside first
    and put back if the move fails, then removed.

    A refused move is an :class:`OutputWriteError` on ``out`` with ``out`` as it was (when even
    putting it back fails, the error names the folder the previous output is kept in). The
    caller removes ``stage``."""
    if not out.exists():
        try:
            os.replace(stage, out)
        except OSError as exc:
            raise write_error(exc, out) from exc
        return
    try:
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        old.rmdir()
        os.replace(out, old)
    except OSError as exc:
        raise write_error(exc, out) from exc
    try:
        os.replace(stage, out)
    except BaseException as exc:
        try:
            os.replace(old, out)  # put the previous result back
        except OSError as back:
            why = back.strerror or str(back)
            raise OutputWriteError(f"cannot write the output, and the previous output could "
                                   f"not be put back ({why}): it is kept in {old}", out) from exc
        if isinstance(exc, OSError):
            raise write_error(exc, out) from exc
        raise
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def staged_folder(out: Path) -> Iterator[Path]:
    """Build an output folder in a staging folder beside ``out`` (same file system).

    On success the stage is made world-readable and moved into place with
    :func:`swap_into_place`; on any error it is removed and ``out`` is left as it was. The
    caller refuses a non-empty ``out`` first when it must not be replaced.

    An ``OSError`` raised while the folder is built (inside the ``with`` block) or moved is an
    :class:`OutputWriteError` on ``out`` when it names no file or a file of the stage or
    ``out``; one naming another file (an input) passes through unchanged (inputs are read
    through :mod:`rcsa.io`, whose refusals are typed).
    """
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    except OSError as exc:
        raise write_error(exc, out) from exc
    try:
        yield stage
        for f in stage.rglob("*"):
            os.chmod(f, 0o755 if f.is_dir() else 0o644)
        os.chmod(stage, 0o755)
        swap_into_place(stage, out)
    except OSError as exc:
        _remove(stage)
        if not _about_output(exc, stage, out):
            raise
        raise write_error(exc, out, stage) from exc
    except BaseException:
        _remove(stage)
        raise
