"""Classes for storing data for sampling.

``RingBuffer`` keeps, for each of ``num_environments`` environments, a ring of
the latest ``max_length`` items of a nest of tensors described by a nest of
``TensorSpec``; it can be shared between processes with blocking enqueue and
dequeue. ``DataBuffer`` is a single ring of ``capacity`` items with uniform
random sampling.

Terminology: a *position* (``pos``) counts the items ever enqueued into an
environment's ring and only grows (``clear`` resets it to 0); the *index*
(``idx``) of a position is the slot of the storage holding it:
``idx == pos % max_length``. An environment holds the items at positions
``[pos - size, pos)`` where ``pos`` is its current position and ``size`` its
current size.

Storage is allocated once, at construction: one tensor of shape
``[num_environments, max_length] + spec.shape`` per leaf of the spec, plus two
int64 ``[num_environments]`` tensors of positions and sizes. All of them are
registered buffers of the ``nn.Module``, so ``state_dict()`` holds the stored
data and the positions, and ``load_state_dict`` restores a buffer exactly (or,
given a checkpoint of another shape, dtype or with inconsistent positions,
raises and changes nothing).

Hot path: ``enqueue``/``dequeue`` check a batch with the spec read once at
construction (``ItemChecker``). On the CPU the positions are read and updated
through NumPy views of the two position tensors (same memory, also when it is
shared between processes), so no torch call is spent on bookkeeping; data
moves with ``index_copy_``/``index_select`` on a flat
``[num_environments * max_length] + spec.shape`` view of each storage tensor,
or, for all environments at one common slot, with plain slices. A
single-process CPU buffer whose environments share one position keeps it
as two Python ints ("lockstep", see ``_find_lockstep``) while calls use
``env_ids=None``; every other change of the positions goes through
``_positions_changed``, which ends that shortcut and commits file-backed
positions.

Storage: in memory (large CPU storage advised for huge pages, see
``_buffer_memory``) or, with ``storage_dir``, memory-mapped files whose
positions are committed after the data (see ``_buffer_files``).

Shared between processes (``allow_multiprocess=True``), a buffer survives the
death of any participant at any moment: see ``RingBuffer`` and
``alf.utils._buffer_sync``.
"""

import contextlib
import functools
import multiprocessing
import time
from typing import Any, Callable, List, Tuple

import numpy as np
import torch
from torch import nn

from alf import nest
from alf.utils._buffer_checks import (
    ItemChecker,
    check_data_spec,
    check_env_ids,
    check_int,
    check_timeout,
    is_integer_dtype,
    state_problems,
)
from alf.utils._buffer_files import FileStore
from alf.utils._buffer_memory import zeros_storage
from alf.utils._buffer_pack import compile_packer
from alf.utils._buffer_sync import LocalSync, SharedSync

__all__ = ["atomic", "RingBuffer", "DataBuffer"]

# selects every environment: indexes the positions (NumPy or torch) as a view
_ALL = slice(None)
# stands in for the lock of a single-process buffer (reusable)
_NO_LOCK = contextlib.nullcontext()


def atomic(func: Callable) -> Callable:
    """Make class member function atomic by checking class._lock.

    Can only be applied on class methods, whose containing class must have
    ``_lock`` set to ``None`` or a lock object (a ``multiprocessing`` lock, or
    the shared lock of a ``RingBuffer``, which is re-entrant); with a lock
    the method runs while holding it. The lock should be re-entrant
    (``multiprocessing.RLock``) when atomic methods call each other.

    Args:
        func (callable): the function to be wrapped.
    Returns:
        the wrapped function
    Raises:
        TypeError: (when called) the instance has no ``_lock`` attribute.
    """

    @functools.wraps(func)
    def atomic_wrapper(self, *args, **kwargs):
        try:
            lock = self._lock
        except AttributeError:
            raise TypeError(
                f"@atomic method {func.__qualname__} needs self._lock (None or a "
                f"multiprocessing lock); {type(self).__name__} has no _lock"
            ) from None
        if lock is None:
            return func(self, *args, **kwargs)
        with lock:
            return func(self, *args, **kwargs)

    return atomic_wrapper


def _buffer_name(i: int, path: str) -> str:
    """Name of the registered storage buffer of leaf ``i`` (at ``path``)."""
    tail = "".join(c if c.isalnum() else "_" for c in path)
    return f"_buffer{i}_{tail}" if tail else f"_buffer{i}"


class RingBuffer(nn.Module):
    """Batched Ring Buffer.

    Multiprocessing safe, optionally via: ``allow_multiprocess`` flag, blocking
    modes to enqueue and dequeue, a stop event to terminate blocked processes,
    and putting buffer into shared memory.

    This is the underlying implementation of ReplayBuffer and Queue.

    Users give the environment ids when adding a batch, so multiple actors can
    store experience in the same buffer, each in its own environments.

    Once stop event is set, all blocking enqueue and dequeue calls that happen
    afterwards will be skipped, unless the operation already started.

    Terminology: ``pos`` (as in ``_current_pos``) is the always increasing
    position of an element in the infinitely long buffer, and ``idx`` the
    actual index of the element in the underlying store (``_buffer``):
    ``idx == pos % _max_length``, and ``_buffer[env, idx]`` is the stored data.

    Multiple processes: with ``allow_multiprocess=True`` the CPU storage is put
    in shared memory and every operation holds a re-entrant lock shared by all
    processes. Pass the buffer to a child as a ``Process`` argument (or send it
    through a ``torch.multiprocessing`` queue or pipe); children started with
    ``spawn`` and with ``fork`` share the same memory, lock, waits and stop
    flag. (A CUDA buffer can be shared with ``spawn`` children only, as CUDA
    does not survive ``fork``.) Such a buffer cannot be pickled to a file or
    deep-copied (save its ``state_dict()``); ``load_state_dict`` loads it in
    place (also with ``assign=True``), so running children see the loaded
    items.

    Crashed participants: any one process may die at any moment (``SIGKILL``,
    the OOM killer) without blocking the others. On Linux the lock is a
    robust process-shared mutex: the kernel hands the lock of a dead holder
    to the next process that asks for it (glibc or musl; on other platforms
    a killed lock holder still blocks the others). Every operation commits
    the positions after the data, so an operation cut short by a death is
    simply not there: ``state_dict()`` holds only whole items (those whose
    write completed) and a new buffer can be loaded from it. Waiting calls
    sleep without being counted in a way that a dead one could block, and
    ``stop()`` releases every blocked call in the surviving processes
    (``enqueue`` returns False, ``dequeue`` None). Blocking calls take a
    ``timeout`` (``TimeoutError``).

    File-backed storage: with ``storage_dir`` the items live in
    memory-mapped files in that folder (one per leaf of the spec, see
    ``flush``), so the buffer may be larger than the memory; the API and
    ``state_dict`` are unchanged. A folder that already holds a buffer's
    storage is reopened: its items and positions come back, exactly those of
    every call that completed, also after the writing process was killed
    (each call writes the items first and then commits the positions in a
    small header). Such a buffer stays on the CPU, is pickled only to start a
    process (the child maps the same files) and belongs to one buffer object
    (and its child processes) at a time.

    Args:
        data_spec (nested TensorSpec): spec describing a single item that can
            be stored in this buffer.
        num_environments (int): number of environments or total batch size.
        max_length (int): The maximum number of items that can be stored for a
            single environment.
        device (str | torch.device): A torch device to place the storage and
            positions on.
        allow_multiprocess (bool): if True, allows multiple processes to write
            and read the buffer asynchronously.
        name (str): name of the replay buffer.
        storage_dir (str | os.PathLike | None): a folder for file-backed
            storage (created if needed; reopened if it holds a buffer of the
            same ``num_environments``, ``max_length`` and ``data_spec``);
            None keeps the storage in memory.
    Raises:
        ValueError: ``num_environments`` or ``max_length`` is < 1,
            ``data_spec`` has no leaf, ``storage_dir`` with a device other
            than the CPU, or ``storage_dir`` holds a storage of another
            layout or a corrupt one.
        TypeError: a leaf of ``data_spec`` is not a ``TensorSpec`` or an int
            argument is not an int.
        OSError: ``storage_dir`` cannot be created or mapped.
    """

    # Registered buffers (see __init__) and what _refresh derives from them: NumPy
    # arrays on the CPU, tensors elsewhere for the positions and their helpers.
    _current_pos: torch.Tensor
    _current_size: torch.Tensor
    _storage: List[torch.Tensor]
    _pos: Any
    _size: Any
    _row_base: Any
    _steps: Any
    _count_nonzero: Callable[..., Any]

    def __init__(
        self,
        data_spec: Any,
        num_environments: int,
        max_length: int = 1024,
        device: Any = "cpu",
        allow_multiprocess: bool = False,
        name: str = "RingBuffer",
        storage_dir: Any = None,
    ):
        super().__init__()
        num_environments = check_int(num_environments, "num_environments", 1)
        max_length = check_int(max_length, "max_length", 1)
        leaves = check_data_spec(data_spec)
        if not isinstance(name, str):
            raise TypeError(f"name must be a str; got {type(name).__name__}")
        device = torch.device(device)
        if storage_dir is not None and device.type != "cpu":
            raise ValueError(f"storage_dir needs device='cpu' (mapped files); got device={device}")
        self._name = name
        self._data_spec = data_spec
        self._specs = leaves
        self._num_envs = num_environments
        self._max_length = max_length
        self._allow_multiprocess = bool(allow_multiprocess)
        self._buffer_names = [_buffer_name(i, path) for i, (path, _) in enumerate(leaves)]
        # file-backed storage (None: in memory)
        self._files = (
            None
            if storage_dir is None
            else FileStore(storage_dir, leaves, num_environments, max_length)
        )
        for i, (buf_name, (_, spec)) in enumerate(zip(self._buffer_names, leaves)):
            if self._files is not None:
                storage = self._files.tensors[i]
            else:
                storage = zeros_storage(
                    (num_environments, max_length) + tuple(spec.shape),
                    spec.dtype,
                    device,
                )
            self.register_buffer(buf_name, storage)
        # positions before sizes: load_state_dict copies in this order (see
        # _load_from_state_dict)
        self.register_buffer(
            "_current_pos", torch.zeros(num_environments, dtype=torch.int64, device=device)
        )
        self.register_buffer(
            "_current_size", torch.zeros(num_environments, dtype=torch.int64, device=device)
        )
        if self._files is not None:
            pos, size = self._files.committed()
            self._current_pos.copy_(torch.from_numpy(pos))
            self._current_size.copy_(torch.from_numpy(size))
        self._sync = SharedSync() if self._allow_multiprocess else LocalSync()
        if self._allow_multiprocess:
            self.share_memory()
        self._refresh()

    # ---- cached views of the registered buffers ---------------------------
    # attributes rebuilt by _refresh (never pickled)
    _DERIVED: Tuple[str, ...] = (
        "_storage",
        "_flat_storage",
        "_leaf_shapes",
        "_all_env_ids",
        "_pos",
        "_size",
        "_row_base",
        "_steps",
        "_count_nonzero",
        "_on_cpu",
        "_pack",
        "_check",
        "_lock",
        "_try_lock",
        "_unlock",
        "_lockstep_ok",
        "_lockstep",
        "_slot_views",
    )

    def _refresh(self) -> None:
        """Rebuild what is derived from the registered buffers (after
        construction, ``.to()``, ``load_state_dict``, unpickling).

        ``_pos``/``_size`` are the positions and sizes to compute with: NumPy
        views of ``_current_pos``/``_current_size`` on the CPU, the tensors
        themselves elsewhere (their values then stay on the device). Indexing
        them with ``_ALL`` or with ``_env_index(env_ids)`` works alike.
        """
        rows = self._num_envs * self._max_length
        self._storage = [self.get_buffer(n) for n in self._buffer_names]
        self._flat_storage = [s.view((rows,) + tuple(s.shape[2:])) for s in self._storage]
        self._leaf_shapes = [tuple(s.shape[2:]) for s in self._storage]
        self._device = self.get_buffer("_current_pos").device
        self._on_cpu = self._device.type == "cpu"
        self._all_env_ids = torch.arange(self._num_envs, device=self._device)
        if self._device.type == "cpu":
            self._pos = self._current_pos.numpy()
            self._size = self._current_size.numpy()
            self._row_base = np.arange(self._num_envs, dtype=np.int64) * self._max_length
            self._steps = np.arange(self._max_length, dtype=np.int64)
            self._count_nonzero = np.count_nonzero
        else:
            self._pos = self._current_pos
            self._size = self._current_size
            self._row_base = self._all_env_ids * self._max_length
            self._steps = torch.arange(self._max_length, device=self._device)
            self._count_nonzero = torch.count_nonzero
        self._pack = compile_packer(self._data_spec)
        self._check = ItemChecker(self._data_spec, self._specs)
        # None without allow_multiprocess, where _try_lock() always returns 0
        self._lock: Any = self._sync.lock
        # the lock on the hot paths (no-ops without allow_multiprocess)
        self._try_lock, self._unlock = self._sync.try_lock, self._sync.unlock
        # the lockstep shortcut (see _find_lockstep) serves single-process
        # CPU buffers in memory; nothing else can change their positions
        self._lockstep_ok = self._on_cpu and not self._allow_multiprocess and self._files is None
        self._lockstep = None
        # per leaf, the [num_environments] + spec.shape view of each slot,
        # made on first use (a cached view saves a third of a write); only
        # for rings short enough that all the views stay small
        cache = self._lockstep_ok and len(self._storage) * self._max_length <= 65536
        self._slot_views = [[None] * self._max_length for _ in self._storage] if cache else None

    def _apply(self, fn, recurse=True):
        """``nn.Module`` conversions move the storage (``.to(device)``,
        ``.cuda()``, ``share_memory()``) but keep its dtypes, those of
        ``data_spec`` (and int64 positions), and its contiguous layout:
        ``.double()``, ``.half()``, ``.to(dtype)`` or
        ``.to(memory_format=...)`` of an enclosing module leave them as they
        are, as dtype conversions leave integer tensors. File-backed storage
        stays where it is mapped (``ValueError`` for a move off the CPU,
        before anything moves)."""
        mapped = set()
        if self._files is not None:
            mapped = {id(self._buffers[name]) for name in self._buffer_names}
            probe = fn(self._buffers["_current_pos"].clone())
            if probe.device.type != "cpu":
                raise ValueError(
                    f"a buffer with storage_dir stays on the CPU; cannot move it to {probe.device}"
                )

        def keep_dtype_and_layout(tensor):
            if id(tensor) in mapped:
                return tensor
            out = fn(tensor)
            if out.dtype != tensor.dtype:
                out = tensor.to(device=out.device)
            return out if out.is_contiguous() else out.contiguous()

        result = super()._apply(keep_dtype_and_layout, recurse)
        self._refresh()
        return result

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        """Store the data and positions; a buffer shared between processes is
        copied under the lock, so that the positions and the items of a
        checkpoint belong to the same moment even while other processes
        enqueue and dequeue (the copy costs the buffer's size until saved)."""
        if not self._allow_multiprocess:
            super()._save_to_state_dict(destination, prefix, keep_vars)
            return
        with self._locked():
            super()._save_to_state_dict(destination, prefix, keep_vars)
            for name in self._buffers:
                key = prefix + name
                if key in destination:
                    destination[key] = destination[key].detach().clone()

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        """Load all of the buffer or, reporting why (``load_state_dict`` then
        raises ``RuntimeError``), nothing: a checkpoint of another
        ``num_environments``/``max_length``/``data_spec``, or with
        inconsistent positions, leaves the stored data and positions as they
        were.

        The load holds the lock and then wakes the blocked calls. A buffer
        shared between processes is always loaded in place (``assign=True``
        would give this process tensors that the others do not see), and so
        that a process killed while loading leaves it consistent: the sizes
        are set to 0 first (nothing visible), then the data, the positions
        and last the sizes are copied (the registration order)."""
        expected = {
            name: (tuple(tensor.shape), tensor.dtype) for name, tensor in self._buffers.items()
        }
        problems = state_problems(state_dict, prefix, expected, self._max_length)
        if problems:
            error_msgs.extend(problems)
            return
        in_place = self._allow_multiprocess or self._files is not None
        if in_place and local_metadata.get("assign_to_params_buffers"):
            local_metadata = dict(local_metadata, assign_to_params_buffers=False)
        with self._locked():
            if in_place and prefix + "_current_size" in state_dict:
                # nothing visible while the stored items are replaced (all
                # entries are there: state_problems); committed at once for
                # file-backed storage
                self._current_size.zero_()
                self._positions_changed()
            super()._load_from_state_dict(
                state_dict,
                prefix,
                local_metadata,
                strict,
                missing_keys,
                unexpected_keys,
                error_msgs,
            )
            # load_state_dict(assign=True) replaces the registered tensors:
            # views of a transposed or expanded checkpoint tensor are copied
            for name, tensor in self._buffers.items():
                if not tensor.is_contiguous():
                    self._buffers[name] = tensor.contiguous()
            self._refresh()
            self._positions_changed()
            self._sync.data_added()
            self._sync.space_freed()

    def __getstate__(self):
        state = super().__getstate__()
        for key in self._DERIVED:
            state.pop(key, None)
        if state.get("_files") is not None:
            # a process being started maps the same files; anything else
            # would copy (or alias) the storage behind the user's back
            if multiprocessing.context.get_spawning_popen() is None:
                raise TypeError(
                    f"a buffer with storage_dir ({self._files.folder!r}) can be pickled only "
                    "to start a process; save its state_dict() or reopen the folder instead"
                )
            state["_buffers"] = {
                name: (None if name in self._buffer_names else tensor)
                for name, tensor in self._buffers.items()
            }
            state["_files"] = self._files.folder
        return state

    def __setstate__(self, state):
        state.setdefault("_files", None)  # pickled before file-backed storage existed
        folder = state["_files"]
        if folder is not None:
            files = FileStore(folder, state["_specs"], state["_num_envs"], state["_max_length"])
            buffers = dict(state["_buffers"])
            for name, tensor in zip(state["_buffer_names"], files.tensors):
                buffers[name] = tensor
            state = dict(state, _files=files, _buffers=buffers)
        super().__setstate__(state)
        self._refresh()

    def extra_repr(self) -> str:
        files = "" if self._files is None else f", storage_dir={self._files.folder!r}"
        return (
            f"name={self._name!r}, num_environments={self._num_envs}, "
            f"max_length={self._max_length}, device={self._device}, "
            f"allow_multiprocess={self._allow_multiprocess}{files}"
        )

    # ---- file-backed storage ----------------------------------------------
    @property
    def storage_dir(self) -> Any:
        """The folder of file-backed storage (an absolute path, str), or None
        when the storage is in memory."""
        return None if self._files is None else self._files.folder

    @atomic
    def flush(self) -> None:
        """Write file-backed storage to the disk: the mapped item files, then
        the header with the committed positions.

        Not needed to survive a killed process (the operating system keeps
        what the process stored in the mapped files); call it to make what
        is stored so far survive an operating-system crash or a power loss.
        Does nothing for a buffer in memory.
        """
        if self._files is not None:
            self._files.flush()

    def _positions_changed(self) -> None:
        """Called after every change of the positions or sizes: forgets the
        lockstep shortcut and commits the positions of file-backed storage
        (after the data they make visible is written)."""
        self.__dict__["_lockstep"] = None
        if self._files is not None:
            self._files.commit(self._pos, self._size)

    def _drop_overwritten(self, envs: Any, n: int = 1) -> None:
        """Before writing ``n`` more items into ``envs`` of a buffer shared
        between processes or stored in files: shrink the rings with fewer
        than ``n`` free slots by the oldest items that the write overwrites
        (and commit those sizes), so that no visible item is ever
        half-overwritten, whenever a process dies. Nothing to do for a
        single-process buffer in memory."""
        if self._files is None and not self._allow_multiprocess:
            return
        size = self._size[envs]
        keep = max(self._max_length - n, 0)
        # (on CUDA without looking: that would wait for the device)
        if not self._on_cpu or self._count_nonzero(size > keep):
            self._size[envs] = size.clip(max=keep)
            self._positions_changed()

    # ---- properties -------------------------------------------------------
    @property
    def device(self) -> torch.device:
        """The device where the data is stored in."""
        return self._device

    @property
    def num_environments(self) -> int:
        """Number of environments (rings) of the buffer."""
        return self._num_envs

    @property
    def _buffer(self) -> Any:
        """The storage: a nest like ``data_spec`` of tensors of shape
        ``[num_environments, max_length] + spec.shape``."""
        return self._pack(self._storage)

    # ---- helpers ----------------------------------------------------------
    def check_convert_env_ids(self, env_ids: Any) -> torch.Tensor:
        """Check ``env_ids`` and return them as an int64 tensor on ``device``.

        Args:
            env_ids (Tensor | Sequence[int] | None): ids of shape ``[B]``, each
                in ``[0, num_environments)`` and none twice; ``None`` means
                all environments, in order.
        Returns:
            Tensor: int64 of shape ``[B]`` on ``device`` (a new tensor for
            ``None``).
        Raises:
            TypeError: not integers.
            ValueError: not 1-D, out of range, or duplicated.
        """
        if env_ids is None:
            return self._all_env_ids.clone()  # the caller may change it
        return check_env_ids(env_ids, self._num_envs).to(self._device)

    def _env_index(self, env_ids: Any) -> Any:
        """``env_ids`` checked, as an index of ``_pos``/``_size``/``_row_base``:
        ``_ALL`` for ``None``, else an int64 NumPy array (CPU) or tensor."""
        if env_ids is None:
            return _ALL
        ids = check_env_ids(env_ids, self._num_envs)
        return ids.numpy() if self._device.type == "cpu" else ids.to(self._device)

    def _batch_size(self, envs: Any) -> int:
        return self._num_envs if envs is _ALL else len(envs)

    def _one_slot(self, pos: Any) -> bool:
        """Whether the positions of all environments are one value (only
        looked at on the CPU, where it costs no device sync)."""
        return (
            self._device.type == "cpu" and pos[0] == pos[-1] and not np.count_nonzero(pos != pos[0])
        )

    def circular(self, pos: Any) -> Any:
        """Mod pos by _max_length to get the actual index in the _buffer.

        Args:
            pos (int | Tensor): positions (int64 tensor of any shape).
        Returns:
            ``pos % max_length``, of the type and shape of ``pos``.
        """
        return pos % self._max_length

    def _has_space(self, envs: Any) -> bool:
        return not self._count_nonzero(self._size[envs] >= self._max_length)

    def _has_data(self, envs: Any, n: int) -> bool:
        return not self._count_nonzero(self._size[envs] < n)

    @atomic
    def has_data(self, env_ids: Any, n: int = 1) -> bool:
        """Check n steps of data available for env_ids.

        Args:
            env_ids (Tensor): ids of shape ``[B]`` (``None``: all).
            n (int): Number of time steps to check.
        Returns:
            bool: whether every environment of ``env_ids`` holds ``n`` items.
        """
        n = check_int(n, "n", 0)
        return self._has_data(self._env_index(env_ids), n)

    @atomic
    def has_space(self, env_ids: Any) -> bool:
        """Check free space for one batch of data for env_ids.

        Args:
            env_ids (Tensor): ids of shape ``[B]`` (``None``: all).
        Returns:
            bool: whether every environment of ``env_ids`` has a free slot.
        """
        return self._has_space(self._env_index(env_ids))

    @atomic
    def get_current_position(self) -> torch.Tensor:
        """Get the current position for each environment.

        Returns:
            Tensor: int64 with shape ``[num_environments]`` (a copy): the
            position the next enqueued item of each environment will have.
        """
        return self._current_pos.clone()

    @atomic
    def get_earliest_position(self, env_ids: Any) -> torch.Tensor:
        """The earliest position that is still in the replay buffer.

        Args:
            env_ids (Tensor): int64 Tensor of environment ids, of any shape; an
                id may repeat (``None``: all, shape ``[num_environments]``).
        Returns:
            Tensor: int64 with the same shape as env_ids, whose each entry is
            the earliest position that is still in the replay buffer for
            corresponding environment (equal to the current position when the
            environment holds nothing).
        Raises:
            TypeError, ValueError: ids that are not integers or out of range.
        """
        if env_ids is None:
            ids = self._all_env_ids
        else:
            ids = check_env_ids(env_ids, self._num_envs, read_only=True).to(self._device)
        return self._current_pos[ids] - self._current_size[ids]

    # ---- writing ----------------------------------------------------------
    def enqueue(
        self, batch: Any, env_ids: Any = None, blocking: bool = False, timeout: Any = None
    ) -> bool:
        """Add a batch of items to the buffer.

        Note, when blocking == False, it always succeeds, overwriting oldest
        data if there is no free slot.

        Args:
            batch (nested Tensor): each leaf of shape ``[B] + spec.shape``
                (or a shape that broadcasts to it, as ALF's assignment does:
                e.g. ``[B, 1]`` for a spec of shape ``[20]``) and the spec's
                dtype.
            env_ids (Tensor): If None, ``B`` must be num_environments. If not
                None, its shape should be ``[B]``; no id may repeat.
                ``batch[i]`` is generated by environment ``env_ids[i]``.
            blocking (bool): If True, blocks if there is no free slot to add
                data. If False, enqueue can overwrite oldest data.
            timeout (float | None): with ``blocking``, the most seconds to
                wait (``None``: no limit); ignored otherwise.
        Returns:
            True on success, False only in blocking mode when queue is stopped
            (by a ``stop()`` before or during the wait; nothing is written).
        Raises:
            ValueError, TypeError: bad ``env_ids``, ``timeout`` or a ``batch``
                that disagrees with the spec (the message names the nest
                path); nothing is stored then.
            TimeoutError: blocking, no free slot came within ``timeout``
                seconds (nothing is written).
            RuntimeError: blocking without ``allow_multiprocess`` when the
                buffer has no space (the wait could never end).
        """
        if timeout is not None:
            timeout = check_timeout(timeout)
        if env_ids is None and not blocking and self._lockstep_ok:
            return self._enqueue_lockstep(batch)
        envs = self._env_index(env_ids)
        items = self._items(batch, self._batch_size(envs))
        if blocking:
            return self._enqueue_blocking(envs, items, timeout)
        rc = self._try_lock()
        if rc:
            self._lock.finish_acquire(rc)
        try:
            self._write(envs, items)
            wake = self._sync.note_data()
        finally:
            self._unlock()
        if wake is not None:
            wake()
        return True

    def _items(self, batch: Any, batch_size: int) -> List[torch.Tensor]:
        """The checked leaves of ``batch``, each ``[batch_size] + spec.shape``."""
        try:
            return self._check(batch, batch_size, self._device)
        except ValueError:
            # ALF stores by assignment, which broadcasts; retry with the
            # leaves broadcast (views), keeping the first error if they do not
            broadcast = self._broadcast_leaves(batch, batch_size)
            if broadcast is None:
                raise
            return self._check(broadcast, batch_size, self._device)

    def _enqueue_blocking(self, envs: Any, items: List[torch.Tensor], timeout: Any) -> bool:
        deadline = self._take_lock(timeout, "enqueue")
        try:
            try:
                if not self._sync.wait_for_space(lambda: self._has_space(envs), deadline):
                    return False
            except TimeoutError:
                raise TimeoutError(
                    f"blocking enqueue: no free slot in {self._env_list(envs)} within "
                    f"timeout={timeout} s (nothing was written)"
                ) from None
            self._write(envs, items)
            wake = self._sync.note_data()
        finally:
            if self._lock is not None:
                self._lock.release()
        if wake is not None:
            wake()
        return True

    def _take_lock(self, timeout: Any, what: str) -> Any:
        """Take the lock for a blocking call (within ``timeout`` seconds);
        return the call's deadline (``time.monotonic()``; None: no limit)."""
        if timeout is None:
            if self._lock is not None:
                self._lock.acquire()
            return None
        deadline = time.monotonic() + timeout
        if self._lock is not None and not self._lock.acquire(timeout=timeout):
            raise TimeoutError(
                f"blocking {what}: the buffer's lock was not free within timeout={timeout} s"
            )
        return deadline

    def _env_list(self, envs: Any) -> str:
        ids = list(range(self._num_envs)) if envs is _ALL else envs.tolist()
        return f"environments {ids}"

    def _broadcast_leaves(self, batch: Any, batch_size: int) -> Any:
        """``batch`` with each tensor leaf broadcast to ``[batch_size] +
        spec.shape`` (an expanded view), or None when the structure differs
        or a leaf does not broadcast."""

        def expand(item, spec):
            if not isinstance(item, torch.Tensor):
                raise TypeError
            return torch.broadcast_to(item, (batch_size, *spec.shape))

        try:
            return nest.map_structure(expand, batch, self._data_spec)
        except (TypeError, ValueError, RuntimeError):
            return None

    def _locked(self):
        return self._lock if self._lock is not None else _NO_LOCK

    # ---- lockstep shortcut --------------------------------------------------
    # A single-process CPU buffer in memory whose environments all have one
    # position and one size (the usual case: every call with env_ids=None)
    # keeps them as two ints, ``_lockstep = (pos, size)``: enqueue and
    # dequeue of all environments then cost one slice copy per leaf and two
    # NumPy fills, with no per-environment arithmetic. Every other change of
    # the positions goes through _positions_changed(), which forgets them.
    # (_lockstep is set through __dict__: nn.Module.__setattr__ costs more
    # than the rest of the bookkeeping.)
    def _find_lockstep(self) -> Any:
        """``(pos, size)`` shared by all environments, or None."""
        pos, size = self._pos, self._size
        p, s = int(pos[0]), int(size[0])
        if np.count_nonzero(pos != p) or np.count_nonzero(size != s):
            return None
        self.__dict__["_lockstep"] = (p, s)
        return (p, s)

    def _enqueue_lockstep(self, batch: Any) -> bool:
        """``enqueue(batch)`` into all environments (non-blocking)."""
        items = self._items(batch, self._num_envs)
        step = self._lockstep or self._find_lockstep()
        if step is None:  # the environments are at different positions
            self._write(_ALL, items)
            return True
        pos, size = step
        idx = pos % self._max_length
        if self._slot_views is None:
            for storage, item in zip(self._storage, items):
                storage.select(1, idx).copy_(item)
        else:
            for storage, views, item in zip(self._storage, self._slot_views, items):
                view = views[idx]
                if view is None:
                    view = views[idx] = storage.select(1, idx)
                view.copy_(item)
        pos += 1
        if size < self._max_length:
            size += 1
        self._pos.fill(pos)
        self._size.fill(size)
        self.__dict__["_lockstep"] = (pos, size)
        return True

    def _dequeue_lockstep(self, n: int) -> Any:
        """``dequeue(n=n)`` from all environments (non-blocking) when they
        hold ``n`` items in one piece of the ring; else None (the general
        path then decides, raising when there is not enough data)."""
        step = self._lockstep or self._find_lockstep()
        if step is None:
            return None
        pos, size = step
        start = (pos - size) % self._max_length
        if n > size or start + n > self._max_length:
            return None
        # narrow_copy: a contiguous copy, cheaper than narrow().clone()
        result = [storage.narrow_copy(1, start, n) for storage in self._storage]
        size -= n
        self._size.fill(size)
        self.__dict__["_lockstep"] = (pos, size)
        return self._pack(result)

    def _write(self, envs: Any, items: List[torch.Tensor]) -> None:
        """Store ``items[leaf][b]`` at the current position of environment
        ``b`` of ``envs`` and advance the positions.

        The positions are committed after the data: a process killed while
        writing leaves every visible item complete. A full ring of a buffer
        shared between processes or stored in files first shrinks by its
        oldest item, whose slot is about to be overwritten, so that it is
        never visible half-overwritten (it would be gone after the write
        anyway): see ``_drop_overwritten``.
        """
        self._drop_overwritten(envs)
        pos = self._pos[envs]  # (views for envs=_ALL: use before changing)
        size = self._size[envs]
        # formed before the data is written: a process killed between the
        # commits of the positions and of the sizes (which would hide the
        # oldest item) has one assignment to die in, not four
        new_size = size + (size < self._max_length)
        if envs is _ALL and self._one_slot(pos):
            idx = int(pos[0]) % self._max_length
            for storage, item in zip(self._storage, items):
                storage[:, idx] = item
        else:
            rows = self._row_base[envs] + pos % self._max_length
            if self._on_cpu:
                rows = torch.from_numpy(rows)
            for flat, item in zip(self._flat_storage, items):
                flat.index_copy_(0, rows, item)
        self._pos[envs] = pos + 1
        self._size[envs] = new_size
        self._positions_changed()

    # ---- reading ----------------------------------------------------------
    def dequeue(
        self, env_ids: Any = None, n: int = 1, blocking: bool = False, timeout: Any = None
    ) -> Any:
        """Return earliest n steps and mark them removed in the buffer.

        Args:
            env_ids (Tensor): If None, batch_size must be num_environments. If
                not None, dequeue from these environments (no id may repeat).
                ``result[i]`` will be from environment ``env_ids[i]``.
            n (int): Number of steps to dequeue, ``1 <= n <= max_length``.
            blocking (bool): If True, blocks if there is not enough data to
                dequeue.
            timeout (float | None): with ``blocking``, the most seconds to
                wait (``None``: no limit); ignored otherwise.
        Returns:
            nested Tensors (shape ``[B, n] + spec.shape``, oldest first) or
            None when blocking dequeue gets terminated by stop event (a
            ``stop()`` before or during the wait; nothing is removed).
        Raises:
            AssertionError: when not enough data is present, in non-blocking
                mode (nothing is removed then), ``n > max_length`` included.
            ValueError, TypeError: bad ``env_ids``, ``timeout`` or ``n``
                (``n > max_length`` when blocking: that wait could never end).
            TimeoutError: blocking, ``n`` items did not come within
                ``timeout`` seconds (nothing is removed).
            RuntimeError: blocking without ``allow_multiprocess`` when the
                buffer has not enough data (the wait could never end).
        """
        n = check_int(n, "n", 1)
        if timeout is not None:
            timeout = check_timeout(timeout)
        if env_ids is None and not blocking and self._lockstep_ok:
            result = self._dequeue_lockstep(n)
            if result is not None:
                return result
        if n > self._max_length:
            message = (
                f"n must be <= max_length={self._max_length} (more can never be stored); got {n}"
            )
            if blocking:
                raise ValueError(message)
            raise AssertionError(f"not enough data to dequeue n={n}: {message}")
        envs = self._env_index(env_ids)
        if blocking:
            return self._dequeue_blocking(envs, n, timeout)
        rc = self._try_lock()
        if rc:
            self._lock.finish_acquire(rc)
        try:
            if not self._has_data(envs, n):
                raise AssertionError(
                    f"not enough data to dequeue n={n}: {self._env_list(envs)} "
                    f"hold {self._size[envs].tolist()} items"
                )
            result, wake = self._take(envs, n)
        finally:
            self._unlock()
        if wake is not None:
            wake()
        return self._pack(result)

    def _dequeue_blocking(self, envs: Any, n: int, timeout: Any) -> Any:
        deadline = self._take_lock(timeout, "dequeue")
        try:
            try:
                if not self._sync.wait_for_data(lambda: self._has_data(envs, n), deadline):
                    return None
            except TimeoutError:
                raise TimeoutError(
                    f"blocking dequeue: {self._env_list(envs)} did not hold n={n} items "
                    f"within timeout={timeout} s (nothing was removed)"
                ) from None
            result, wake = self._take(envs, n)
        finally:
            if self._lock is not None:
                self._lock.release()
        if wake is not None:
            wake()
        return self._pack(result)

    def _take(self, envs: Any, n: int) -> Tuple[List[torch.Tensor], Any]:
        """Copy the earliest ``n`` items of ``envs``, then remove them (in
        this order: a process killed while copying removes nothing); return
        the copies and the wake-up of blocked enqueues (to call after
        releasing the lock; None if none waits)."""
        result = self._read(envs, n)
        self._size[envs] = self._size[envs] - n
        self._positions_changed()
        return result, self._sync.note_space()

    def _read(self, envs: Any, n: int) -> List[torch.Tensor]:
        """Copies of the earliest ``n`` items of each environment of
        ``envs``: ``[B, n] + spec.shape`` per leaf."""
        start = self._pos[envs] - self._size[envs]
        if envs is _ALL and self._one_slot(start):
            idx = int(start[0]) % self._max_length
            if idx + n <= self._max_length:
                return [
                    storage[:, idx : idx + n].clone(memory_format=torch.contiguous_format)
                    for storage in self._storage
                ]
        rows = self._row_base[envs][:, None] + (start[:, None] + self._steps[:n]) % self._max_length
        batch = rows.shape[0]
        rows = rows.reshape(-1)
        if self._device.type == "cpu":
            rows = torch.from_numpy(rows)
        return [
            flat.index_select(0, rows).view((batch, n) + shape)
            for flat, shape in zip(self._flat_storage, self._leaf_shapes)
        ]

    @atomic
    def remove_up_to(self, n: int, env_ids: Any = None) -> None:
        """Mark as removed earliest up to n steps.

        Args:
            n (int): max number of steps to mark removed from buffer (>= 0);
                an environment holding fewer than ``n`` is emptied.
            env_ids (Tensor): environments to remove from (``None``: all).
        """
        # no ring holds more than max_length: a larger n (even beyond int64)
        # removes everything
        n = min(check_int(n, "n", 0), self._max_length)
        envs = self._env_index(env_ids)
        self._size[envs] = (self._size[envs] - n).clip(min=0)
        self._positions_changed()
        self._sync.space_freed()

    @atomic
    def clear(self, env_ids: Any = None) -> None:
        """Clear the buffer: the environments hold nothing and their positions
        restart from 0.

        Args:
            env_ids (Tensor): optional list of environment ids to clear
                (``None``: all).
        """
        envs = self._env_index(env_ids)
        self._size[envs] = 0
        self._pos[envs] = 0
        self._positions_changed()
        self._sync.space_freed()

    # ---- stop / revive ----------------------------------------------------
    def stop(self) -> None:
        """Stop waiting processes from being blocked.

        Only checked in blocking mode of dequeue and enqueue.

        All blocking enqueue and dequeue calls that happen afterwards will be
        skipped (return None for dequeue or False for enqueue), unless the
        operation already started; calls blocked now return at once, in
        every process. It returns promptly also after another process died
        at any moment, holding the lock or not (the lock of a dead holder is
        taken over).
        """
        self._sync.stop()

    def revive(self) -> None:
        """Clears the stop Event so blocking mode will start working again.

        Only checked in blocking mode of dequeue and enqueue.
        """
        self._sync.revive()


class DataBuffer(RingBuffer):
    """A simple circular buffer supporting random sampling. This buffer
    doesn't preserve temporality as data from multiple environments will be
    arbitrarily stored.

    Not multiprocessing safe.

    Args:
        data_spec (nested TensorSpec): spec for the data item (without batch
            dimension) to be stored.
        capacity (int): capacity of the buffer.
        device (str): which device to store the data
        name (str): name of the buffer
        storage_dir (str | os.PathLike | None): a folder for file-backed
            storage (see ``RingBuffer``): the items live in memory-mapped
            files there, so ``capacity`` may exceed the memory; reopening the
            folder (same spec and capacity) gives back every item whose
            ``add_batch`` completed. None keeps the storage in memory.
    Raises:
        ValueError: ``capacity`` < 1, ``data_spec`` has no leaf, or a bad
            ``storage_dir`` (see ``RingBuffer``).
        TypeError: a leaf of ``data_spec`` is not a ``TensorSpec``.
    """

    def __init__(
        self,
        data_spec: Any,
        capacity: int,
        device: Any = "cpu",
        name: str = "DataBuffer",
        storage_dir: Any = None,
    ):
        capacity = check_int(capacity, "capacity", 1)
        super().__init__(
            data_spec,
            num_environments=1,
            max_length=capacity,
            device=device,
            allow_multiprocess=False,
            name=name,
            storage_dir=storage_dir,
        )

    _DERIVED: Tuple[str, ...] = RingBuffer._DERIVED + ("_rings",)

    def _refresh(self) -> None:
        super()._refresh()
        # the single ring of each leaf: [capacity] + spec.shape
        self._rings = [storage[0] for storage in self._storage]

    def _size_and_start(self):
        """(number of stored items, position of the earliest) as ints (on
        the CPU read through the NumPy views, without a torch call)."""
        size, pos = int(self._size[0]), int(self._pos[0])
        return size, pos - size

    @property
    def current_size(self) -> torch.Tensor:
        """Number of stored items (0-dim int64 tensor)."""
        return self._current_size[0].clone()

    @property
    def current_pos(self) -> torch.Tensor:
        """Number of items written since the last ``clear`` (0-dim int64
        tensor); a batch larger than ``capacity`` counts ``capacity``."""
        return self._current_pos[0].clone()

    def is_full(self) -> bool:
        """Whether ``capacity`` items are stored."""
        return int(self._current_size[0]) == self._max_length

    def add_batch(self, batch: Any) -> None:
        """Add a batch of items to the buffer.

        Add ``batch_size`` items along the length of the underlying RingBuffer,
        whereas ``RingBuffer.enqueue`` only adds data of length 1. Keeps the
        newest ``capacity`` items if ``batch_size > capacity``.

        Args:
            batch (nested Tensor): each leaf of shape
                ``[batch_size] + spec.shape``.
        Raises:
            ValueError, TypeError: ``batch`` disagrees with the spec (the
                message names the nest path); nothing is stored then.
        """
        items = self._check(batch, None, self._device)
        batch_size = items[0].shape[0]
        n = min(batch_size, self._max_length)
        if n == 0:
            return
        self._drop_overwritten(_ALL, n)
        pos = self._current_pos[0:1]
        idx = self.circular(pos + torch.arange(n, device=self._device))
        for ring, item in zip(self._rings, items):
            ring.index_copy_(0, idx, item[batch_size - n :])
        self._current_pos.add_(n)
        self._current_size.copy_(torch.clamp(self._current_size + n, max=self._max_length))
        self._positions_changed()

    def get_batch(self, batch_size: int) -> Any:
        """Get batch_size random samples in the buffer (uniformly, with
        replacement).

        Args:
            batch_size (int): batch size
        Returns:
            nested Tensor of shape ``[batch_size] + spec.shape``
        Raises:
            ValueError: the buffer is empty or ``batch_size`` < 0.
        """
        batch_size = check_int(batch_size, "batch_size", 0)
        size, start = self._size_and_start()
        if size == 0:
            raise ValueError(f"get_batch needs stored items; {self._name} is empty")
        idx = torch.randint(size, (batch_size,), device=self._device)
        if size < self._max_length and start % self._max_length != 0:
            # a partly filled ring that does not start at slot 0
            idx = self.circular(idx + start)
        # a full ring: every slot holds an item, uniform slots = uniform items
        return self._gather(idx)

    def _gather(self, idx: torch.Tensor) -> Any:
        return self._pack([torch.index_select(ring, 0, idx) for ring in self._rings])

    def get_batch_by_indices(self, indices: Any) -> Any:
        """Get the samples by indices

        index=0 corresponds to the earliest added sample in the DataBuffer.

        Args:
            indices (Tensor): integer indices of shape ``[batch_size]``, each in
                ``[0, current_size)``.
        Returns:
            nested Tensor of shape ``[batch_size] + spec.shape``, where
            ``batch_size`` is ``indices.shape[0]``.
        Raises:
            TypeError: ``indices`` is not an integer tensor.
            ValueError: ``indices`` is not 1-D or an index is out of range.
        """
        if not isinstance(indices, torch.Tensor):
            raise TypeError(f"indices must be a torch.Tensor; got {type(indices).__name__}")
        if not is_integer_dtype(indices.dtype):
            raise TypeError(f"indices must have an integer dtype; got {indices.dtype}")
        if indices.dim() != 1:
            raise ValueError(f"indices must be 1-D; got shape {tuple(indices.shape)}")
        size, start = self._size_and_start()
        if indices.numel() > 0:
            low, high = int(indices.min()), int(indices.max())
            if low < 0 or high >= size:
                raise ValueError(
                    f"indices must lie in [0, current_size={size}); got values in [{low}, {high}]"
                )
        idx = self.circular(indices.to(device=self._device, dtype=torch.int64) + start)
        return self._gather(idx)

    def get_all(self) -> Any:
        """The whole storage, in ALF's layout: ``capacity`` slots in storage
        order (slot ``pos % capacity`` holds the item written at position
        ``pos``; slots not written yet hold zeros), not only the stored items
        in time order. Use ``get_batch_by_indices(torch.arange(current_size))``
        for the stored items, earliest first.

        Returns:
            nested Tensor of shape ``[capacity] + spec.shape``: views of the
            storage, as ALF returns (later writes show through; clone to
            keep).
        """
        return self._pack(list(self._rings))
