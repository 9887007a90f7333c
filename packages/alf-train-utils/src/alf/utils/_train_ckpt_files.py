"""Files of a checkpoint directory: names, crash-safe commits, recovery, retention.

Private helper of :mod:`alf.utils.checkpoint_utils`.

Layout (ALF's): step ``N`` is the three files ``ckpt-N`` (module states and
``global_step``), ``ckpt-N-optimizer`` and ``ckpt-N-replay_buffer``; a step
exists when ``ckpt-N`` exists, which is the rule ALF's own loader applies.

Crash safety comes from the order of the operations, not from extra files
that ALF would not know about:

* every file is written under a hidden temporary name (``.ckpt-tmp-...``) in
  the same directory, flushed and fsynced (with the directory);
* a new step: the two side files are renamed into place, the directory is
  fsynced, and ``ckpt-N`` is renamed last, so ``ckpt-N`` never exists without
  the side files of the same save;
* a step that already exists (saved again): a journal ``.ckpt-journal-N.json``
  listing the pending renames is made durable first; a reader that finds it
  takes each file from its temporary name while that still exists, so it reads
  the new save whole, before, during and after the renames; the next writer
  completes an interrupted journal;
* retention deletes ``ckpt-N`` first and the side files after it.

Temporary files carry the host and the process id of their writer, so a
writer removes the debris of dead writers on its own host and nothing else.
"""

import errno
import hashlib
import json
import os
import pickle
import re
import secrets
import socket
from typing import Dict, List, Optional, Set, Tuple

import torch

from alf.utils._train_atomic import atomic_write_bytes, fsync_dir

__all__ = []

MODEL, OPTIMIZER, REPLAY_BUFFER = "model", "optimizer", "replay_buffer"
#: File-name suffix of each part of a step, in the order they are committed
#: (``ckpt-N`` itself last).
SUFFIXES = {OPTIMIZER: "-optimizer", REPLAY_BUFFER: "-replay_buffer", MODEL: ""}
PARTS = (OPTIMIZER, REPLAY_BUFFER, MODEL)
STRUCTURE_FILES = {
    MODEL: "ckpt-structure.json",
    OPTIMIZER: "ckpt-structure-optimizer.json",
    REPLAY_BUFFER: "ckpt-structure-replay_buffer.json",
}

_STEP_FILE = re.compile(r"^ckpt-(\d+)(-optimizer|-replay_buffer)?$")
_TMP_PREFIX = ".ckpt-tmp-"
_TMP_FILE = re.compile(r"^\.ckpt-tmp-([0-9a-f]{8})-(\d+)-[0-9a-f]{8}-(.+)$")
_JOURNAL_FILE = re.compile(r"^\.ckpt-journal-(\d+)\.json$")
_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


def step_file(step: int, part: str = MODEL) -> str:
    """Base name of ``part`` of step ``step``, e.g. ``ckpt-100-optimizer``."""
    return f"ckpt-{step}{SUFFIXES[part]}"


def journal_file(step: int) -> str:
    """Base name of the journal of a pending re-save of ``step``."""
    return f".ckpt-journal-{step}.json"


def tmp_file(final: str) -> str:
    """A fresh temporary base name for ``final``, owned by this process."""
    return f"{_TMP_PREFIX}{_HOST}-{os.getpid()}-{secrets.token_hex(4)}-{final}"


def _writer_alive(host: str, pid: int) -> bool:
    if host != _HOST:
        return True  # another machine: not ours to judge
    if pid == os.getpid():
        return False  # debris of an earlier, failed save of this process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def list_steps(ckpt_dir: str) -> List[int]:
    """Sorted steps whose file ``ckpt-N`` exists in ``ckpt_dir`` ([] if none;
    a folder named ``ckpt-N`` is not a step)."""
    try:
        entries = list(os.scandir(ckpt_dir))
    except FileNotFoundError:
        return []
    steps = []
    for entry in entries:
        m = _STEP_FILE.match(entry.name)
        if m and m.group(2) is None and entry.is_file():
            steps.append(int(m.group(1)))
    return sorted(steps)


def write_file_atomic(ckpt_dir: str, name: str, data: bytes, durable: bool) -> None:
    """Replace ``ckpt_dir/name`` by ``data`` in one rename (the temporary file
    is named as this module's, so that recovery knows its writer)."""
    atomic_write_bytes(os.path.join(ckpt_dir, name), data, durable, tmp_name=tmp_file(name))


def read_journal(ckpt_dir: str, step: int) -> Optional[List[Tuple[str, str]]]:
    """The pending ``(temporary, final)`` renames of ``step``, or None.

    Raises:
        RuntimeError: naming the journal if it cannot be parsed or names a
            file outside the directory.
    """
    path = os.path.join(ckpt_dir, journal_file(step))
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return None
    try:
        renames = json.loads(raw.decode("utf-8"))["renames"]
        pairs = [(str(t), str(n)) for t, n in renames]
    except (ValueError, KeyError, TypeError) as e:
        raise RuntimeError(f"checkpoint journal {path} is corrupt: {e}") from None
    for t, n in pairs:
        if not (t.startswith(_TMP_PREFIX) and _STEP_FILE.match(n)) or os.sep in t + n:
            raise RuntimeError(f"checkpoint journal {path} names unexpected files {t!r}, {n!r}")
    return pairs


def resolve_step(ckpt_dir: str, step: int) -> Dict[str, Optional[str]]:
    """Paths of the parts of ``step`` as a reader must open them now.

    A part whose file is absent maps to None (ALF folders may lack side files).
    While a journal is pending, a part is read from its temporary file as long
    as that exists.
    """
    pending = dict((n, t) for t, n in (read_journal(ckpt_dir, step) or []))
    paths: Dict[str, Optional[str]] = {}
    for part in PARTS:
        name = step_file(step, part)
        candidates = [pending[name], name] if name in pending else [name]
        paths[part] = None
        for c in candidates:
            p = os.path.join(ckpt_dir, c)
            if os.path.isfile(p):
                paths[part] = p
                break
    return paths


def write_tmp(ckpt_dir: str, final: str, obj, durable: bool) -> str:
    """``torch.save`` ``obj`` to a new temporary file for ``final``; its base name."""
    name = tmp_file(final)
    path = os.path.join(ckpt_dir, name)
    try:
        with open(path, "wb") as f:
            torch.save(obj, f)
            if durable:
                f.flush()
                os.fsync(f.fileno())
    except BaseException:
        _unlink(path)
        raise
    return name


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def commit_step(ckpt_dir: str, step: int, tmps: Dict[str, str], durable: bool) -> None:
    """Move the temporary files ``tmps`` (part -> base name) of ``step`` into place."""
    if durable:
        fsync_dir(ckpt_dir)  # the temporary files' entries
    renames = [(tmps[part], step_file(step, part)) for part in PARTS]
    if os.path.exists(os.path.join(ckpt_dir, step_file(step))):
        # saved again: the old files stay readable until the journal exists
        data = json.dumps({"step": step, "renames": renames}).encode()
        write_file_atomic(ckpt_dir, journal_file(step), data, durable)
        _finish_journal(ckpt_dir, step, renames, durable)
        return
    for tmp, final in renames[:-1]:
        os.replace(os.path.join(ckpt_dir, tmp), os.path.join(ckpt_dir, final))
    if durable:
        fsync_dir(ckpt_dir)
    tmp, final = renames[-1]
    os.replace(os.path.join(ckpt_dir, tmp), os.path.join(ckpt_dir, final))
    if durable:
        fsync_dir(ckpt_dir)


def _finish_journal(ckpt_dir, step, renames, durable) -> None:
    for tmp, final in renames:
        try:
            os.replace(os.path.join(ckpt_dir, tmp), os.path.join(ckpt_dir, final))
        except FileNotFoundError:
            pass  # renamed before an interruption
    if durable:
        fsync_dir(ckpt_dir)
    _unlink(os.path.join(ckpt_dir, journal_file(step)))


def recover(ckpt_dir: str, durable: bool) -> None:
    """Finish the journals and remove the debris that dead writers left.

    Debris: temporary files of dead writers of this host, and side files
    (``ckpt-N-optimizer``/``-replay_buffer``) of a step without ``ckpt-N``.
    Called by a writer before it saves; readers never change the directory.
    """
    names = os.listdir(ckpt_dir)
    pending: Set[str] = set()
    for name in names:
        m = _JOURNAL_FILE.match(name)
        if m:
            step = int(m.group(1))
            renames = read_journal(ckpt_dir, step) or []
            owners = [_TMP_FILE.match(t) for t, _ in renames]
            if all(o and not _writer_alive(o.group(1), int(o.group(2))) for o in owners):
                _finish_journal(ckpt_dir, step, renames, durable)
            else:
                pending.update(t for t, _ in renames)
    names = os.listdir(ckpt_dir)
    steps = set(list_steps(ckpt_dir))
    for name in names:
        m = _TMP_FILE.match(name)
        if m and name not in pending and not _writer_alive(m.group(1), int(m.group(2))):
            _unlink(os.path.join(ckpt_dir, name))
            continue
        m = _STEP_FILE.match(name)
        if m and m.group(2) is not None and int(m.group(1)) not in steps:
            _unlink(os.path.join(ckpt_dir, name))


def delete_step(ckpt_dir: str, step: int) -> None:
    """Delete ``step``: ``ckpt-N`` first, so a half-deleted step does not exist."""
    for part in (MODEL, OPTIMIZER, REPLAY_BUFFER):
        _unlink(os.path.join(ckpt_dir, step_file(step, part)))


def apply_retention(ckpt_dir: str, keep: int, written: int, durable: bool) -> List[int]:
    """Delete all but the newest ``keep`` steps, never ``written`` nor the newest.

    Returns:
        the deleted steps.
    """
    steps = list_steps(ckpt_dir)
    kept = set(steps[-keep:]) | {written}
    doomed = [s for s in steps if s not in kept]
    for s in doomed:
        delete_step(ckpt_dir, s)
    if doomed and durable:
        fsync_dir(ckpt_dir)
    return doomed


def load_file(path: str, map_location, weights_only: bool):
    """``torch.load`` one checkpoint file.

    Raises:
        RuntimeError: naming ``path`` when the file is truncated or corrupt, or
            when ``weights_only=True`` refuses an object it holds.
    """
    try:
        return torch.load(path, map_location=map_location, weights_only=weights_only)
    except FileNotFoundError:
        raise
    except pickle.UnpicklingError as e:
        if weights_only and "Unsupported global" in str(e):
            raise RuntimeError(
                f"checkpoint file {path} holds objects that torch.load(weights_only=True) "
                "refuses; if you trust the file, load it with weights_only=False "
                f"(Checkpointer(..., weights_only=False)). {_last_line(e)}"
            ) from None
        raise RuntimeError(
            f"checkpoint file {path} is truncated or corrupt: {_last_line(e)}"
        ) from None
    except OSError as e:
        if e.errno in (errno.EACCES, errno.EISDIR):
            raise
        raise RuntimeError(f"checkpoint file {path} is truncated or corrupt: {e}") from None
    except (RuntimeError, EOFError, ValueError, KeyError, IndexError, TypeError) as e:
        raise RuntimeError(
            f"checkpoint file {path} is truncated or corrupt: {type(e).__name__}: {_last_line(e)}"
        ) from None


def _last_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    for ln in lines:
        if "Unsupported global" in ln or "PytorchStreamReader" in ln:
            return ln[:300]
    return (lines[-1] if lines else "")[:300]


LOAD_ATTEMPTS = 5


def read_step(ckpt_dir, req, wanted, map_location, weights_only):
    """Read the files (``wanted`` parts) of step ``req`` (an int or ``"latest"``),
    consistently even while a writer commits: the files' identities are
    compared before and after reading, and a change reads them again.

    Returns:
        ``(step, {part: state}, model path)``, or None if there is no such step.
    """
    for _ in range(LOAD_ATTEMPTS):
        if req == "latest":
            steps = list_steps(ckpt_dir)
            if not steps:
                return None
            step = steps[-1]
        else:
            step = req
        paths = resolve_step(ckpt_dir, step)
        if paths[MODEL] is None:
            if req == "latest":
                continue  # deleted meanwhile
            return None
        todo = {p: path for p, path in paths.items() if p in wanted and path is not None}
        before = {p: _identity(path) for p, path in todo.items()}
        try:
            loaded = {p: load_file(path, map_location, weights_only) for p, path in todo.items()}
        except FileNotFoundError:
            continue
        after = resolve_step(ckpt_dir, step)
        if any(after[p] != path or _identity(path) != before[p] for p, path in todo.items()):
            continue
        for p, value in loaded.items():
            if not isinstance(value, dict):
                raise RuntimeError(
                    f"checkpoint file {todo[p]} holds a {type(value).__name__}, "
                    "not the dict of states a checkpoint file holds"
                )
        return step, loaded, paths[MODEL]
    raise RuntimeError(
        f"the checkpoint directory {ckpt_dir} kept changing while loading "
        f"({LOAD_ATTEMPTS} attempts); is another process saving to it?"
    )


def _identity(path):
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns)
