"""Crash-safe file replacement for the configuration and snapshot files of
``alf.utils.common`` (private).

A file is written to a hidden temporary file in the same folder, flushed and
fsync'ed, then renamed over the target and the folder fsync'ed: a process
killed at any moment leaves either the previous file or the new one, never a
partial file under the target name (a killed writer may leave its hidden
``.<name>.*.tmp`` file behind).
"""

import contextlib
import os
import tempfile
from typing import BinaryIO, Iterator

__all__ = ["atomic_write_bytes", "atomic_writer", "fsync_dir"]


def fsync_dir(directory: str) -> None:
    """fsync ``directory`` so that a rename inside it is durable (a no-op
    where folders cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    """The process umask, read without changing it where /proc allows."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # pragma: no cover - no /proc
    os.umask(mask)  # pragma: no cover
    return mask  # pragma: no cover


@contextlib.contextmanager
def atomic_writer(path: str) -> Iterator[BinaryIO]:
    """A binary file object whose content replaces ``path`` when the context
    exits without an exception (the temporary file is removed otherwise).
    The new file gets the permissions ``open()`` would give (``0o666`` less
    the umask)."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(
        prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory
    )
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(directory)


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (see ``atomic_writer``)."""
    with atomic_writer(path) as f:
        f.write(data)
