"""Crash-safe file writing shared by the modules of alf-train-utils (private).

Configuration files and snapshot archives (``alf.utils.common``), the small
files of a checkpoint directory (``alf.utils.checkpoint_utils``) and videos
with their metadata (``alf.utils.video_recorder``) are all written the same
way: to a hidden temporary file in the target's folder, flushed and fsynced,
then renamed over the target, and the folder fsynced. A process killed at any
moment leaves either the previous file or the new one, never a partial file
under the target name (a killed writer may leave its hidden temporary file
behind). New files get the permissions ``open()`` would give them (``0o666``
less the umask).
"""

import contextlib
import os
import secrets
from typing import BinaryIO, Iterator, Optional, Tuple

__all__ = ["atomic_write_bytes", "atomic_writer", "commit_file", "create_temp_file", "fsync_dir"]


def fsync_dir(directory: str) -> None:
    """fsync ``directory`` so that a rename inside it is durable (a no-op
    where folders cannot be opened, as on Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - file systems that refuse it
        pass
    finally:
        os.close(fd)


def _create(tmp: str) -> int:
    """Create the new file ``tmp`` (refusing an existing one) with ``open()``'s
    permissions; its descriptor, open for writing."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    return os.open(tmp, flags, 0o666)


def create_temp_file(path: str, tmp_name: Optional[str] = None) -> str:
    """Create an empty temporary file for ``path`` in ``path``'s folder and
    return its path.

    Args:
        path: the file the temporary file will replace.
        tmp_name: the temporary file's base name; None makes a fresh hidden
            name ``.<base name of path>.<random>.tmp``.
    Raises:
        FileExistsError: a file named ``tmp_name`` exists.
    """
    fd, tmp = _create_beside(path, tmp_name)
    os.close(fd)
    return tmp


def _create_beside(path: str, tmp_name: Optional[str]) -> Tuple[int, str]:
    directory = os.path.dirname(os.path.abspath(path))
    if tmp_name is not None:
        tmp = os.path.join(directory, tmp_name)
        return _create(tmp), tmp
    while True:
        tmp = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(4)}.tmp")
        try:
            return _create(tmp), tmp
        except FileExistsError:  # pragma: no cover - 1 in 2**32
            continue


def commit_file(tmp: str, path: str, durable: bool = True) -> None:
    """Rename the complete file ``tmp`` over ``path``; with ``durable``, fsync
    ``tmp`` before and the folder after the rename."""
    if durable:
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
    os.replace(tmp, path)
    if durable:
        fsync_dir(os.path.dirname(os.path.abspath(path)))


@contextlib.contextmanager
def atomic_writer(
    path: str, durable: bool = True, tmp_name: Optional[str] = None
) -> Iterator[BinaryIO]:
    """A binary file object whose content replaces ``path`` when the context
    exits without an exception (the temporary file is removed otherwise).

    Args:
        path: the file to replace.
        durable: fsync the file and the folder (False: still safe against a
            killed process, not against a power cut).
        tmp_name: the temporary file's base name (see
            :func:`create_temp_file`).
    """
    fd, tmp = _create_beside(path, tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if durable:
        fsync_dir(os.path.dirname(os.path.abspath(path)))


def atomic_write_bytes(
    path: str, data: bytes, durable: bool = True, tmp_name: Optional[str] = None
) -> None:
    """Replace ``path`` with ``data`` atomically (see :func:`atomic_writer`)."""
    with atomic_writer(path, durable, tmp_name) as f:
        f.write(data)
