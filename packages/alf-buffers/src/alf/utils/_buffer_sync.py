"""Coordination of ``RingBuffer`` calls: a lock, waits for space and for data,
and a stop flag, either for one process or shared between processes.

The shared variant survives the death of any participant (``SIGKILL``, the
OOM killer) at any moment:

* The lock is a process-shared, *robust*, recursive POSIX mutex (glibc or musl,
  through ``ctypes``) in shared memory. When its holder dies, the kernel marks
  it and hands it to the next process asking for it (``EOWNERDEAD``), which
  takes it over; nobody waits for a dead holder. Owner and death are tracked
  by the kernel (the robust futex list), so there is no window between taking
  the lock and recording the owner in which a death would go unnoticed.
  Waiting for the lock is bounded too (steps of ``_POLL_S``): an unlock wakes
  one waiter, and if that waiter is killed before it takes the lock while a
  third process takes it uncontended, the kernel wakes nobody else (it only
  does when the lock is still free), and the remaining waiters would sleep
  forever in an unbounded ``pthread_mutex_lock``.
* Waits use a sequence number per kind (space, data) and the ``futex``
  system call on it: a waiter reads the number under the lock, releases the
  lock and sleeps until the number changes; a notifier (under the lock)
  increments it and wakes the sleepers. Nothing counts sleepers in a way that
  a dead one could block (``multiprocessing.Condition.notify_all`` waits for
  every counted sleeper to wake up, forever if one was killed). Every sleep
  is also bounded (``_POLL_S``), so a wakeup missed in a race costs at most
  that long.
* The stop flag and a stop counter live in the same shared memory; ``stop()``
  sets them and wakes every sleeper.

Where the robust mutex or ``futex`` is not available (not Linux), the lock is a
``multiprocessing`` re-entrant lock (a killed holder then still blocks the
others) and waits poll; the rest is the same.

The shared memory is one small int64 tensor in shared memory, so that it
travels with the buffer to children started with ``fork`` (inherited) or
``spawn`` (pickled as a ``Process`` argument or through a
``torch.multiprocessing`` queue).
"""

import ctypes
import ctypes.util
import errno
import functools
import math
import multiprocessing
import os
import sys
import threading
import time
import warnings
from typing import Any, Callable, Optional, Tuple, Union

import numpy as np
import torch

__all__ = ["LocalSync", "SharedSync", "robust_lock_available"]

# Layout of the shared int64 words (``SharedSync._mem``).
_MUTEX_WORDS = 16  # [0, 16): the pthread mutex (128 bytes; glibc needs 40 or 48)
_SEQ = 16  # two int32 futex words: sequence numbers of (space, data)
_STOPPED = 17  # 1 while stopped
_STOPS = 18  # number of stop() calls
_WAITERS = 19  # sleepers waiting for space (19) and for data (20)
_RECOVERED = 21  # times the lock was taken over from a dead holder
_WORDS = 24
SPACE, DATA = 0, 1

# Longest single sleep of a waiting call: a bound on the latency of a wakeup
# missed in a race (e.g. stop() without the lock); no wait depends on it.
_POLL_S = 0.1
# How long stop() tries to take the lock before acting without it.
_STOP_LOCK_S = 1.0

_C_FUTEX_WAIT, _C_FUTEX_WAKE = ctypes.c_int(0), ctypes.c_int(1)
_C_ALL, _C_ZERO = ctypes.c_int(0x7FFFFFFF), ctypes.c_int(0)
_SYS_FUTEX = {
    "x86_64": 202,
    "amd64": 202,
    "aarch64": 98,
    "arm64": 98,
    "riscv64": 98,
    "loongarch64": 98,
    "ppc64le": 221,
    "ppc64": 221,
    "s390x": 238,
    "i386": 240,
    "i686": 240,
    "armv7l": 240,
}
# pthread constants, equal in glibc and musl
_PTHREAD_MUTEX_RECURSIVE = 1
_PTHREAD_PROCESS_SHARED = 1
_PTHREAD_MUTEX_ROBUST = 1


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def _timespec(seconds: float) -> _Timespec:
    whole = math.floor(seconds)
    return _Timespec(int(whole), int((seconds - whole) * 1e9))


class _Native:
    """The C functions used by the robust lock and the futex waits (one set
    per process; ``None`` where not available)."""

    def __init__(self):
        self.ok = False
        self.futex = False
        if not sys.platform.startswith("linux"):
            return
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            pylibc = ctypes.PyDLL(None)
            if not hasattr(libc, "pthread_mutexattr_setrobust"):
                name = ctypes.util.find_library("pthread")
                libc = ctypes.CDLL(name, use_errno=True)
                pylibc = ctypes.PyDLL(name)
            int_fn = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)
            # never block: called without releasing the GIL, and without
            # argument conversion (pass a ctypes.c_void_p; returns an int):
            # the cheapest calls ctypes makes
            self.trylock = pylibc.pthread_mutex_trylock
            self.unlock = pylibc.pthread_mutex_unlock
            self.consistent = int_fn(("pthread_mutex_consistent", libc))
            # may block (never longer than the deadline given): called releasing the GIL
            self.timedlock = ctypes.CFUNCTYPE(
                ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(_Timespec)
            )(("pthread_mutex_timedlock", libc))
            # glibc >= 2.30: a deadline on the monotonic clock (not moved by
            # changes of the wall clock)
            self.clocklock = None
            if hasattr(libc, "pthread_mutex_clocklock"):
                self.clocklock = ctypes.CFUNCTYPE(
                    ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(_Timespec)
                )(("pthread_mutex_clocklock", libc))
            self.attr_init = int_fn(("pthread_mutexattr_init", libc))
            self.attr_destroy = int_fn(("pthread_mutexattr_destroy", libc))
            set_fn = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int)
            self.attr_settype = set_fn(("pthread_mutexattr_settype", libc))
            self.attr_setpshared = set_fn(("pthread_mutexattr_setpshared", libc))
            self.attr_setrobust = set_fn(("pthread_mutexattr_setrobust", libc))
            self.mutex_init = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)(
                ("pthread_mutex_init", libc)
            )
            self.ok = True
            number = _SYS_FUTEX.get(os.uname().machine)
            if number is not None:
                # syscall(2) is variadic: called without a prototype, with
                # every argument given as its exact C type (no conversions)
                self.syscall = libc.syscall
                self.futex_number = ctypes.c_long(number)
                self.futex = True
        except (OSError, AttributeError, TypeError):
            self.ok = False
            self.futex = False

    def init_mutex(self, address: int) -> bool:
        """Initialize a process-shared robust recursive mutex at ``address``."""
        attr = ctypes.create_string_buffer(64)
        if self.attr_init(attr) != 0:
            return False
        try:
            return (
                self.attr_settype(attr, _PTHREAD_MUTEX_RECURSIVE) == 0
                and self.attr_setpshared(attr, _PTHREAD_PROCESS_SHARED) == 0
                and self.attr_setrobust(attr, _PTHREAD_MUTEX_ROBUST) == 0
                and self.mutex_init(address, attr) == 0
            )
        finally:
            self.attr_destroy(attr)

    def lock_for(self, address: int, seconds: float) -> int:
        """``pthread_mutex_lock`` of the mutex at ``address`` giving up after
        ``seconds``: 0 or ``EOWNERDEAD`` when taken, ``ETIMEDOUT`` when not, else
        an error number. The GIL is released while it waits."""
        if self.clocklock is not None:
            deadline = _timespec(time.clock_gettime(time.CLOCK_MONOTONIC) + seconds)
            return self.clocklock(address, time.CLOCK_MONOTONIC, deadline)
        return self.timedlock(address, _timespec(time.time() + seconds))

    def futex_wait(self, address: int, expected: int, timeout: _Timespec) -> None:
        """Sleep while the int32 at ``address`` equals ``expected``, at most
        ``timeout`` (returns early on a wake, a change, or a signal)."""
        self.syscall(
            self.futex_number,
            ctypes.c_void_p(address),
            _C_FUTEX_WAIT,
            ctypes.c_int(expected),
            ctypes.byref(timeout),
            None,
            _C_ZERO,
        )

    def waker(self, address: int) -> Callable[[], int]:
        """A C callable waking every sleeper on the int32 at ``address``."""
        return functools.partial(
            self.syscall,
            self.futex_number,
            ctypes.c_void_p(address),
            _C_FUTEX_WAKE,
            _C_ALL,
            None,
            None,
            _C_ZERO,
        )


_native: Optional[_Native] = None
_native_lock = threading.Lock()


def _get_native() -> _Native:
    global _native
    with _native_lock:
        if _native is None:
            _native = _Native()
        return _native


def robust_lock_available() -> bool:
    """Whether buffers shared between processes get the robust lock here
    (Linux with a C library providing robust process-shared mutexes)."""
    return _get_native().ok


class _RobustLock:
    """A recursive, process-shared, robust mutex at ``address``.

    ``acquire``/``release``/``with`` as ``multiprocessing.RLock``; a lock whose
    holder died is taken over (counted in ``state[_RECOVERED]``, with a
    ``RuntimeWarning``).
    """

    def __init__(self, native: _Native, address: int, state: np.ndarray):
        self._native = native
        self._address = address
        self._state = state
        pointer = ctypes.c_void_p(address)
        self._trylock = functools.partial(native.trylock, pointer)
        self._unlock = functools.partial(native.unlock, pointer)

    def acquire(self, blocking: bool = True, timeout: Optional[float] = None) -> bool:
        """Take the lock (again, if this thread holds it); False when it was
        not free within ``timeout`` seconds (``None``: no limit) or at once
        (``blocking=False``)."""
        rc = self._trylock()
        if rc == 0:
            return True
        if rc != errno.EBUSY:
            return self._acquired(rc)
        if not blocking:
            return False
        return self._lock_within(timeout)

    def _lock_within(self, timeout: Optional[float]) -> bool:
        """Wait for the lock at most ``timeout`` seconds (None: as long as it
        takes), in steps of at most ``_POLL_S``: a live holder releases it, a
        dead one is detected by the kernel (which then hands it over with
        ``EOWNERDEAD``), a wake-up lost with a waiter killed on its way to the
        lock costs one step, not forever, and Ctrl-C keeps working."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            step = _POLL_S if deadline is None else min(_POLL_S, deadline - time.monotonic())
            if step <= 0:
                return False
            rc = self._native.lock_for(self._address, step)
            if rc == 0:
                return True
            if rc != errno.ETIMEDOUT:
                return self._acquired(rc)

    def fast_pair(self):
        """``(try_lock, unlock)``: C callables without arguments for the hot
        paths: ``try_lock()`` returns 0 when it took the lock, else a code
        for ``finish_acquire``; ``unlock()`` releases one level."""
        return self._trylock, self._unlock

    def finish_acquire(self, rc: int) -> None:
        """Take the lock after ``try_lock()`` returned ``rc`` (not 0)."""
        if rc == errno.EBUSY:
            self._lock_within(None)
        else:
            self._acquired(rc)

    def _acquired(self, rc: int) -> bool:
        if rc == errno.EOWNERDEAD:
            # we hold it now; the holder's unfinished operation is discarded
            # (buffer operations commit their positions last)
            self._native.consistent(self._address)
            self._state[_RECOVERED] += 1
            warnings.warn(
                "RingBuffer: a process died while holding the buffer's lock; the lock "
                "was taken over (an operation it had not finished is not in the buffer)",
                RuntimeWarning,
                stacklevel=4,
            )
            return True
        raise RuntimeError(f"RingBuffer: locking the shared lock failed: {os.strerror(rc)}")

    def release(self) -> None:
        """Release one level of the lock (it must be held by this thread)."""
        rc = self._unlock()
        if rc != 0:
            raise RuntimeError(f"RingBuffer: releasing the shared lock failed: {os.strerror(rc)}")

    def __enter__(self):
        rc = self._trylock()
        if rc != 0:
            self.finish_acquire(rc)
        return self

    def __exit__(self, *exc):
        self._unlock()

    def release_all(self) -> int:
        """Release every level held by this thread; return how many."""
        depth = 0
        while self._unlock() == 0:
            depth += 1
        return depth

    def reacquire(self, depth: int) -> None:
        """Take the lock ``depth`` levels deep again (after ``release_all``)."""
        if depth:
            self.acquire()
            for _ in range(depth - 1):
                self._trylock()


class _PlainLock:
    """``multiprocessing.RLock`` with the interface of ``_RobustLock`` (a dead
    holder is not detected)."""

    def __init__(self, rlock):
        self._rlock = rlock

    def acquire(self, blocking: bool = True, timeout: Optional[float] = None) -> bool:
        """As ``multiprocessing.RLock.acquire``."""
        if not blocking:
            return self._rlock.acquire(False)
        return self._rlock.acquire(timeout=timeout)

    def release(self) -> None:
        """As ``multiprocessing.RLock.release``."""
        self._rlock.release()

    def __enter__(self):
        self._rlock.acquire()
        return self

    def __exit__(self, *exc):
        self._rlock.release()

    def fast_pair(self):
        """As ``_RobustLock.fast_pair``."""

        def try_lock():
            self._rlock.acquire()
            return 0

        return try_lock, self._rlock.release

    def finish_acquire(self, rc: int) -> None:
        """Never called: ``try_lock`` always takes the lock."""

    def release_all(self) -> int:
        depth = 0
        while self._rlock._semlock._is_mine():
            self._rlock.release()
            depth += 1
        return depth

    def reacquire(self, depth: int) -> None:
        for _ in range(depth):
            self._rlock.acquire()


def _nothing() -> None:
    """A wake-up with nobody to wake."""


class LocalSync:
    """Single-process coordination: no lock, a plain stop flag.

    A blocking call that would have to wait raises ``RuntimeError``: in one
    process nothing else could ever make room or data.
    """

    lock = None
    recovered = 0
    # "took the lock" and "released it" at the cost of a C call: int() == 0
    try_lock = int
    unlock = int

    def __init__(self):
        self._stopped = False

    def stop(self) -> None:
        self._stopped = True

    def revive(self) -> None:
        self._stopped = False

    def wait_for_space(self, ready: Callable[[], bool], deadline: Optional[float] = None) -> bool:
        return self._wait(ready, "enqueue", "free space")

    def wait_for_data(self, ready: Callable[[], bool], deadline: Optional[float] = None) -> bool:
        return self._wait(ready, "dequeue", "enough data")

    def _wait(self, ready: Callable[[], bool], what: str, missing: str) -> bool:
        if self._stopped:
            return False
        if ready():
            return True
        raise RuntimeError(
            f"blocking {what} would wait forever: the buffer has not {missing} and, "
            "without allow_multiprocess=True, no other process can change that"
        )

    def space_freed(self) -> None:
        """Nothing waits in a single process."""

    def data_added(self) -> None:
        """Nothing waits in a single process."""

    def note_space(self) -> None:
        """Nothing waits in a single process: no wake-up."""
        return None

    def note_data(self) -> None:
        """Nothing waits in a single process: no wake-up."""
        return None


class SharedSync:
    """Coordination between processes (see the module docstring).

    ``lock`` guards every buffer operation (re-entrant). ``wait_for_space`` and
    ``wait_for_data`` are called holding it and release it while they sleep.
    ``stop()`` counts itself (``_STOPS``), so that a call waiting at that moment
    returns False even when ``revive()`` clears the stop flag before it wakes
    up.
    """

    def __init__(self):
        self._mem = torch.zeros(_WORDS, dtype=torch.int64).share_memory_()
        native = _get_native()
        self._robust = native.ok and native.init_mutex(self._mem.data_ptr())
        self._rlock = None if self._robust else multiprocessing.get_context("spawn").RLock()
        self._bind()

    def _bind(self) -> None:
        """Process-local views of the shared memory and bindings."""
        native = _get_native()
        self._state = self._mem.numpy()
        self._seq = self._state.view(np.int32)[2 * _SEQ : 2 * _SEQ + 2]
        base = self._mem.data_ptr()
        self._seq_address = (base + 8 * _SEQ, base + 8 * _SEQ + 4)
        self._native = native if native.futex else None
        self._wakers: Tuple[Callable[[], Any], ...]
        if self._native is not None:
            self._wakers = tuple(native.waker(address) for address in self._seq_address)
        else:  # waiters poll
            self._wakers = (_nothing, _nothing)
        self._poll = _timespec(_POLL_S)
        self.lock: Union[_RobustLock, _PlainLock]
        if self._robust:
            self.lock = _RobustLock(native, base, self._state)
        else:
            self.lock = _PlainLock(self._rlock)
        self.try_lock, self.unlock = self.lock.fast_pair()

    def __getstate__(self):
        return {"mem": self._mem, "robust": self._robust, "rlock": self._rlock}

    def __setstate__(self, state):
        mem = state["mem"]
        if not mem.is_shared():
            raise RuntimeError(
                "a RingBuffer with allow_multiprocess=True can only be passed to another "
                "process (as a Process argument or through a torch.multiprocessing queue); "
                "it cannot be copied or pickled to a file (save its state_dict() instead)"
            )
        self._mem, self._robust, self._rlock = mem, state["robust"], state["rlock"]
        self._bind()

    @property
    def robust(self) -> bool:
        """Whether the lock survives the death of its holder."""
        return self._robust

    @property
    def recovered(self) -> int:
        """How many times the lock was taken over from a dead holder."""
        return int(self._state[_RECOVERED])

    def sleepers(self) -> tuple:
        """(calls waiting for space, calls waiting for data) at this moment,
        in every process: those gone to sleep that no wake-up has reached
        yet (a killed one stays counted until the next wake-up)."""
        return int(self._state[_WAITERS + SPACE]), int(self._state[_WAITERS + DATA])

    # ---- stop / revive ----------------------------------------------------
    def stop(self) -> None:
        """Set the stop flag and wake every waiting call. Takes the lock when
        it can within ``_STOP_LOCK_S`` (a dead holder's is taken over); acts
        without it otherwise, so it always returns."""
        locked = self.lock.acquire(timeout=_STOP_LOCK_S)
        try:
            state = self._state
            state[_STOPPED] = 1
            state[_STOPS] += 1
            self._wake(SPACE)
            self._wake(DATA)
        finally:
            if locked:
                self.lock.release()

    def revive(self) -> None:
        self._state[_STOPPED] = 0

    # ---- waits ------------------------------------------------------------
    def wait_for_space(self, ready: Callable[[], bool], deadline: Optional[float] = None) -> bool:
        """Wait (holding ``lock``) until ``ready()``; False once stopped (also
        by a ``stop()`` that came while waiting); ``TimeoutError`` at
        ``deadline`` (a ``time.monotonic()`` value; None: no limit)."""
        return self._wait(SPACE, ready, deadline)

    def wait_for_data(self, ready: Callable[[], bool], deadline: Optional[float] = None) -> bool:
        """As ``wait_for_space``, for data."""
        return self._wait(DATA, ready, deadline)

    def _wait(self, kind: int, ready: Callable[[], bool], deadline: Optional[float]) -> bool:
        state, seq = self._state, self._seq
        stops = int(state[_STOPS])
        backoff = 5e-5
        while True:
            expected = int(seq[kind])  # read before the checks: no missed change
            if state[_STOPPED] or state[_STOPS] != stops:
                return False
            if ready():
                return True
            sleep = _POLL_S
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                sleep = min(sleep, remaining)
            state[_WAITERS + kind] += 1
            depth = self.lock.release_all()
            try:
                if self._native is not None:
                    timeout = self._poll if sleep == _POLL_S else _timespec(sleep)
                    self._native.futex_wait(self._seq_address[kind], expected, timeout)
                else:
                    time.sleep(min(sleep, backoff))
                    backoff = min(backoff * 2, 2e-3)
            finally:
                self.lock.reacquire(depth)
                if int(seq[kind]) == expected:  # not woken: still counted
                    state[_WAITERS + kind] -= 1

    def _bump(self, kind: int) -> None:
        """Change the sequence number of ``kind`` (an int32 futex word,
        wrapping within [0, 2**31)): its sleepers will not sleep on, and no
        longer count as sleepers (so that the next change wakes nobody
        unless a call waits again; a waiter not woken this way, e.g. at its
        timeout, uncounts itself)."""
        self._seq[kind] = (int(self._seq[kind]) + 1) & 0x7FFFFFFF
        self._state[_WAITERS + kind] = 0

    def _wake(self, kind: int) -> None:
        """Change the sequence number of ``kind`` and wake its sleepers."""
        self._bump(kind)
        self._wakers[kind]()

    def note_space(self) -> Optional[Callable[[], Any]]:
        """Space was freed (call holding ``lock``): the sleepers' wake-up, to
        call after releasing the lock (so that they do not wake up only to
        wait for it), or None when no call waits for space."""
        if self._state[_WAITERS + SPACE]:
            self._bump(SPACE)
            return self._wakers[SPACE]
        return None

    def note_data(self) -> Optional[Callable[[], Any]]:
        """As ``note_space``, for data."""
        if self._state[_WAITERS + DATA]:
            self._bump(DATA)
            return self._wakers[DATA]
        return None

    def space_freed(self) -> None:
        """Wake blocked enqueues now (call holding ``lock``)."""
        if self._state[_WAITERS + SPACE]:
            self._wake(SPACE)

    def data_added(self) -> None:
        """Wake blocked dequeues now (call holding ``lock``)."""
        if self._state[_WAITERS + DATA]:
            self._wake(DATA)
