"""Coordinate the termination of a set of processes on request.

A ``Coordinator`` carries a stop flag and the first exception reported by any of
the processes that share it. It is made in the parent process and handed to the
children (as an argument of ``multiprocessing.Process``, or through a
``process_coordinator.Process``): its flag, lock and exception slot live in
shared memory, so a stop requested in any process is seen by all of them, and
an exception raised in a child is re-raised by ``join()`` in the parent.

.. code-block:: python

    coord = Coordinator()
    workers = [Process(coord, target=collect_experience, args=(i,)) for i in range(4)]
    for w in workers:
        w.start()
    with coord.stop_on_exception():
        while not coord.should_stop():
            train_step()
    coord.request_stop()
    coord.join(stop_grace_period_secs=10)   # re-raises a worker's exception

The process that creates the coordinator also watches the processes registered
with it: one that dies without a stop request (killed by a signal, or exiting
with a non-zero code) makes ``should_stop()`` true and ``join()`` raise a
``RuntimeError`` naming it.
"""

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import sys
import threading
import time
import traceback
from typing import Any, Iterable, Iterator, List, Optional, Set

from alf.utils._train_checks import check_real

__all__ = ["Coordinator", "Process"]

_SLOT_BYTES = 1 << 16  # room for one pickled exception and its traceback text
_TRACEBACK_CHARS = 16000
_POLL_SECS = 0.05
_LOCK_TIMEOUT_SECS = 10.0  # longest wait for the slot's lock (its holder may be dead)


class _RemoteTraceback(Exception):
    """The traceback of an exception raised in another process (the
    ``__cause__`` of the exception ``join()`` re-raises)."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return self.text


def _exit_description(exitcode: int) -> str:
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"was killed by {name} (exit code {exitcode})"
    return f"exited with code {exitcode}"


def _describe(process: multiprocessing.process.BaseProcess) -> str:
    return f"{process.name} (pid {process.pid})"


def _stand_in_text(exc: BaseException) -> str:
    return f"{type(exc).__module__}.{type(exc).__qualname__}: {str(exc)[:2000]}"


def _payload(exc: BaseException, tb_text: str) -> bytes:
    """The bytes stored in the shared slot for ``exc``.

    A pickle of ``(pickled exception or None, stand-in text, traceback text,
    pid)``: the outer tuple holds only bytes, strings and an int, so the
    reader always gets the text even where the exception itself cannot be
    rebuilt. An exception that does not survive a pickle round trip here is
    stored as None (the reader raises a RuntimeError with the stand-in text);
    the traceback text is cut to fit the slot.
    """
    pid = os.getpid()
    text = _stand_in_text(exc)
    if len(tb_text) > _TRACEBACK_CHARS:
        tb_text = "...\n" + tb_text[-_TRACEBACK_CHARS:]
    pickled: Optional[bytes]
    try:
        pickled = pickle.dumps(exc)
        pickle.loads(pickled)
    except Exception:
        pickled = None
    data = pickle.dumps((pickled, text, tb_text, pid))
    if len(data) > _SLOT_BYTES:
        data = pickle.dumps((None, text, tb_text[-4000:], pid))
    return data


def _unpack(data: bytes):
    """``(exception, traceback text, pid)`` from a slot's bytes."""
    pickled, text, tb_text, pid = pickle.loads(data)
    exc = None
    if pickled is not None:
        try:
            exc = pickle.loads(pickled)
        except Exception:  # e.g. its class is not importable in this process
            exc = None
    if exc is None:
        exc = RuntimeError(text)
    return exc, tb_text, pid


@contextlib.contextmanager
def _acquired(lock) -> Iterator[bool]:
    """Hold ``lock`` if it can be had within ``_LOCK_TIMEOUT_SECS``; yields
    whether it is held. A process killed while holding the lock (SIGKILL in
    the middle of request_stop) must not hang the others forever."""
    held = lock.acquire(timeout=_LOCK_TIMEOUT_SECS)
    try:
        yield held
    finally:
        if held:
            lock.release()


class Coordinator:
    """A coordinator for processes.

    A simple mechanism to coordinate the termination of a set of processes:

    .. code-block:: python

        with coord.stop_on_exception():
            while not coord.should_stop():
                ...do some work...

    The stop flag and the recorded exception are shared by every process the
    coordinator is passed to (with any start method); registered processes are
    watched and joined by the process that created the coordinator.
    """

    def __init__(self, context: Any = None) -> None:
        """Create a new Coordinator (no stop requested, nothing registered).

        Args:
            context: the ``multiprocessing`` context (or the name of a start
                method: ``"fork"``, ``"spawn"``, ``"forkserver"``) of the
                processes that will share this coordinator; None for the
                default context (the one ``Process`` uses). Python refuses to
                pass the locks of a ``fork`` context to a ``spawn`` child, so a
                coordinator for spawned processes needs ``context="spawn"``.

        Raises:
            TypeError, ValueError: ``context`` is neither None, a context nor
                a known start method.
        """
        ctx: multiprocessing.context.BaseContext
        if context is None:
            ctx = multiprocessing.get_context()
        elif isinstance(context, str):
            if context not in multiprocessing.get_all_start_methods():
                raise ValueError(
                    f"context must be one of the start methods "
                    f"{multiprocessing.get_all_start_methods()}, got {context!r}"
                )
            ctx = multiprocessing.get_context(context)
        elif isinstance(context, multiprocessing.context.BaseContext):
            ctx = context
        else:
            raise TypeError(
                "context must be None, a multiprocessing context or a start method name, "
                f"got {type(context).__name__}"
            )
        self._stop_event = ctx.Event()
        self._lock = ctx.Lock()
        self._exc_size = ctx.Value("q", 0, lock=False)
        self._exc_bytes = ctx.Array("c", _SLOT_BYTES, lock=False)
        self._init_local()

    def _init_local(self) -> None:
        # state of the owning process only (not shared, not pickled)
        self._owner_pid = os.getpid()
        self._local_lock = threading.RLock()
        self._registered: Set[multiprocessing.process.BaseProcess] = set()
        self._reported_dead: Set[multiprocessing.process.BaseProcess] = set()
        self._local_exc_info: Optional[tuple] = None
        self._joined = False

    def __getstate__(self) -> dict:
        return {
            "_stop_event": self._stop_event,
            "_lock": self._lock,
            "_exc_size": self._exc_size,
            "_exc_bytes": self._exc_bytes,
        }

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._init_local()
        self._owner_pid = -1  # a copy in another process owns no process

    # -- the shared exception slot -------------------------------------------

    def _record(self, exc_info: tuple) -> None:
        """Store ``exc_info`` unless an exception is already recorded (lock held)."""
        if self._exc_size.value:
            return
        exc, tb = exc_info[1], exc_info[2]
        tb_text = "".join(traceback.format_exception(type(exc), exc, tb))
        data = _payload(exc, tb_text)
        self._exc_bytes[: len(data)] = data
        self._exc_size.value = len(data)
        self._local_exc_info = (type(exc), exc, tb)

    def _recorded(self) -> Optional[BaseException]:
        """The recorded exception, ready to raise (its traceback attached or its
        remote traceback as ``__cause__``), or None."""
        with _acquired(self._lock):
            size = self._exc_size.value  # written after the bytes
            data = bytes(self._exc_bytes[:size]) if size else b""
        if not size:
            return None
        exc, tb_text, pid = _unpack(data)
        local = self._local_exc_info
        if pid == os.getpid() and local is not None:
            return local[1].with_traceback(local[2])
        if tb_text:
            exc.__cause__ = _RemoteTraceback(f"\n\nin process {pid}:\n\n{tb_text}")
        return exc

    # -- watching child processes ---------------------------------------------

    def _is_owner(self) -> bool:
        return os.getpid() == self._owner_pid

    def _check_processes(self, processes: Optional[Iterable] = None) -> None:
        """In the owner process: a registered (or given) process that ended with
        a non-zero exit code while no stop was requested is recorded as an
        exception and stops the coordinator."""
        if not self._is_owner():
            return
        with self._local_lock:
            candidates = set(self._registered)
        if processes is not None:
            candidates.update(processes)
        for p in candidates:
            if p in self._reported_dead or p.pid is None:
                continue
            code = p.exitcode
            if code is None or code == 0:
                continue
            self._reported_dead.add(p)
            if self._stop_event.is_set():
                continue  # ended after the stop request: join() judges it
            self.request_stop(
                RuntimeError(
                    f"process {_describe(p)} {_exit_description(code)} while the "
                    "coordinator was running (no stop was requested)"
                )
            )

    # -- public API ------------------------------------------------------------

    def register_process(self, process: multiprocessing.process.BaseProcess) -> None:
        """Register a process to join.

        Args:
            process: a ``multiprocessing.Process`` (started or not) to be joined
                by ``join()`` and watched by ``should_stop()``.

        Raises:
            TypeError: ``process`` is not a ``multiprocessing`` process.
        """
        if not isinstance(process, multiprocessing.process.BaseProcess):
            raise TypeError(
                f"process must be a multiprocessing.Process, got {type(process).__name__}"
            )
        with self._local_lock:
            self._registered.add(process)

    def request_stop(self, ex: Any = None) -> None:
        """Request that the processes stop.

        After this is called, calls to ``should_stop()`` return True in every
        process sharing the coordinator. If an exception is passed in, it must
        be the one being handled (``except Exception as ex: coord.request_stop(ex)``)
        or its ``sys.exc_info()`` tuple; the first exception reported to the
        coordinator is recorded and re-raised by ``join()`` (in the process that
        joins; the traceback of a remote exception becomes its ``__cause__``).

        When called after ``join()`` with an exception, that exception is
        raised right away (nobody would join it any more). If the shared lock
        cannot be had within 10 s (a process was killed while holding it), the
        stop is still requested but the exception is not recorded.

        Args:
            ex: None, an exception, or an ``exc_info`` tuple as returned by
                ``sys.exc_info()``.

        Raises:
            TypeError: ``ex`` is neither None, an exception nor an exc_info tuple.
        """
        if ex is None:
            exc_info = None
        elif isinstance(ex, BaseException):
            exc_info = (type(ex), ex, ex.__traceback__)
        elif (
            isinstance(ex, tuple)
            and len(ex) == 3
            and (ex[1] is None or isinstance(ex[1], BaseException))
        ):
            exc_info = ex if ex[1] is not None else None
        else:
            raise TypeError(
                f"ex must be None, an exception or a sys.exc_info() tuple, got {type(ex).__name__}"
            )
        if self._joined and exc_info is not None:
            raise exc_info[1].with_traceback(exc_info[2])
        with _acquired(self._lock) as held:
            if exc_info is not None and held:
                self._record(exc_info)
            self._stop_event.set()

    def clear_stop(self) -> None:
        """Clears the stop flag and the recorded exception.

        After this is called, calls to ``should_stop()`` return False (until
        the next stop request), and ``join()`` may be called again.
        """
        with _acquired(self._lock):
            self._exc_size.value = 0
            self._stop_event.clear()
        with self._local_lock:
            self._local_exc_info = None
            self._joined = False

    def should_stop(self) -> bool:
        """Check if stop was requested.

        In the process that created the coordinator this also notices a
        registered process that died (non-zero exit code, e.g. SIGKILL)
        without a stop request, and requests the stop for it.

        Returns:
            True if a stop was requested.
        """
        if self._stop_event.is_set():
            return True
        if self._registered:
            self._check_processes()
        return self._stop_event.is_set()

    def wait_for_stop(self, timeout: Optional[float] = None) -> bool:
        """Wait till the Coordinator is told to stop.

        Args:
            timeout: float seconds to wait for ``should_stop()`` to become
                True, or None to wait without limit.

        Returns:
            True if the Coordinator is told to stop, False if the timeout
            expired.

        Raises:
            TypeError, ValueError: ``timeout`` is not a non-negative number.
        """
        if timeout is not None:
            timeout = check_real(timeout, "timeout", 0, finite=False)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self.should_stop():
                return True
            remaining = _POLL_SECS if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                return False
            if self._is_owner() and self._registered:
                # wake up for a dying process as well as for the flag
                if self._stop_event.wait(min(remaining, _POLL_SECS)):
                    return True
            elif self._stop_event.wait(remaining if deadline is not None else None):
                return True

    @contextlib.contextmanager
    def stop_on_exception(self) -> Iterator[None]:
        """Context manager to request stop when an exception is raised.

        Code that uses a coordinator must catch exceptions and pass them to
        ``request_stop()`` so that the other processes stop too. This context
        manager does it:

        .. code-block:: python

            with coord.stop_on_exception():
                # Any exception raised in the body of the with clause is
                # reported to the coordinator before the body ends.
                ...body...

        which is equivalent to ``try: ...body... except:
        coord.request_stop(sys.exc_info())``: the exception is recorded and not
        propagated. A ``SystemExit`` with code 0 or None (a clean
        ``sys.exit()``) requests the stop without recording an exception.

        Yields:
            nothing.
        """
        try:
            yield
        except SystemExit as ex:
            if ex.code is None or ex.code == 0:
                self.request_stop()
            else:
                self.request_stop(sys.exc_info())
        except BaseException:
            self.request_stop(sys.exc_info())

    def raise_requested_exception(self) -> None:
        """If an exception has been passed to ``request_stop``, raise it here."""
        exc = self._recorded()
        if exc is not None:
            raise exc

    @property
    def joined(self) -> bool:
        """True once ``join()`` has returned or raised (until ``clear_stop()``)."""
        return self._joined

    def join(
        self,
        processes: Optional[Iterable[multiprocessing.process.BaseProcess]] = None,
        stop_grace_period_secs: float = 120,
        ignore_live_processes: bool = False,
    ) -> None:
        """Wait for processes to terminate.

        Blocks until the processes have terminated or a stop was requested; the
        processes are those passed in ``processes`` and those registered with
        ``register_process()``. After a stop request the processes get
        ``stop_grace_period_secs`` seconds to terminate. Then, if an exception
        was passed to ``request_stop`` (in any process), it is re-raised here;
        otherwise, if processes are still alive and ``ignore_live_processes`` is
        False, a RuntimeError naming them is raised. The processes still alive
        are left running (terminate or kill them if they must go).

        A process that ended with a non-zero exit code (killed by a signal,
        ``os._exit(1)``) while no stop was requested counts as an exception:
        it stops the coordinator and ``join`` raises a RuntimeError naming it.

        Must be called in the process that created the coordinator (the parent
        of the processes).

        Args:
            processes: started processes to join in addition to the registered
                ones.
            stop_grace_period_secs: number of seconds given to the processes to
                stop after ``request_stop()`` has been called.
            ignore_live_processes: if False, raise an error if any process is
                still alive after ``stop_grace_period_secs``.

        Raises:
            RuntimeError: a process is still alive after the grace period, or a
                process died without a stop request.
            TypeError, ValueError: bad arguments (nothing is waited for).
            Exception: the exception recorded by ``request_stop``.
        """
        stop_grace_period_secs = check_real(
            stop_grace_period_secs, "stop_grace_period_secs", 0, finite=False
        )
        extra = [] if processes is None else list(processes)
        for p in extra:
            if not isinstance(p, multiprocessing.process.BaseProcess):
                raise TypeError(
                    f"processes must hold multiprocessing.Process objects, got {type(p).__name__}"
                )
        if not self._is_owner():
            raise RuntimeError(
                "Coordinator.join must be called in the process that created the coordinator "
                f"(pid {self._owner_pid}), not in pid {os.getpid()}"
            )
        with self._local_lock:
            procs: List[multiprocessing.process.BaseProcess] = list(self._registered)
        procs += [p for p in extra if p not in procs]
        started = [p for p in procs if p.pid is not None]

        def alive() -> List[multiprocessing.process.BaseProcess]:
            return [p for p in started if p.exitcode is None]

        def wait_some(timeout: float) -> None:
            sentinels = [p.sentinel for p in alive()]
            if sentinels:
                multiprocessing.connection.wait(sentinels, timeout=timeout)

        # until everything ended or a stop is requested
        while alive() and not self._stop_event.is_set():
            wait_some(_POLL_SECS)
            self._check_processes(started)
        self._check_processes(started)
        # the grace period
        deadline = time.monotonic() + stop_grace_period_secs
        while alive():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            wait_some(min(remaining, 1.0))
        for p in started:
            if p.exitcode is not None:
                p.join(0)  # reap
        self._joined = True
        with self._local_lock:
            self._registered = set()
        self.raise_requested_exception()
        stragglers = alive()
        if stragglers and not ignore_live_processes:
            raise RuntimeError(
                f"Coordinator stopped with processes still alive {stop_grace_period_secs} s "
                "after the stop request: " + ", ".join(_describe(p) for p in stragglers)
            )


class Process(multiprocessing.Process):
    """A coordinated process that runs a loop until its coordinator stops.

    ``run()`` calls ``start_loop()``, then ``run_loop()`` back to back while
    ``coord.should_stop()`` is False, then ``stop_loop()``; an exception in any
    of them is reported to the coordinator (which stops every process sharing
    it and re-raises the exception in ``join()``). ``run_loop()`` calls
    ``body(args, kwargs)``, which calls ``target(*args, **kwargs)``. Subclasses
    override ``start_loop``/``stop_loop`` for set-up and clean-up and
    ``body`` or ``run_loop`` for the work of one iteration.

    The process registers itself with ``coord`` when it is created.
    """

    def __init__(self, coord: Coordinator, target=None, args=(), kwargs=None):
        """Create a process running ``target`` in a loop, managed by ``coord``.

        Args:
            coord (Coordinator): the coordinator managing this process.
            target (callable): invoked by ``run()`` in a loop until the
                coordinator tells the process to stop (None when a subclass
                overrides ``body``, ``run_loop`` or ``run``).
            args (tuple): positional arguments for ``target``.
            kwargs (dict): keyword arguments for ``target``.

        Raises:
            TypeError: ``coord`` is not a Coordinator, ``target`` is not
                callable (or None without an overridden ``body``/``run_loop``/
                ``run``), ``args`` is not a tuple or list, or ``kwargs`` is not
                a dict.
        """
        if not isinstance(coord, Coordinator):
            raise TypeError(f"coord must be a Coordinator, got {type(coord).__name__}")
        if target is not None and not callable(target):
            raise TypeError(f"target must be callable, got {type(target).__name__}")
        cls = type(self)
        if target is None and (
            cls.body is Process.body and cls.run_loop is Process.run_loop and cls.run is Process.run
        ):
            raise TypeError("target is None: give a target or override body(), run_loop() or run()")
        if not isinstance(args, (tuple, list)):
            raise TypeError(f"args must be a tuple or list, got {type(args).__name__}")
        if kwargs is None:
            kwargs = {}
        if not isinstance(kwargs, dict):
            raise TypeError(f"kwargs must be a dict, got {type(kwargs).__name__}")
        super().__init__()
        self._coord = coord
        self._loop_target = target
        self._loop_args = tuple(args)
        self._loop_kwargs = dict(kwargs)
        coord.register_process(self)

    @property
    def coord(self) -> Coordinator:
        """The coordinator managing this process."""
        return self._coord

    def start_loop(self) -> None:
        """Called when the process starts, before the first ``run_loop()``."""

    def stop_loop(self) -> None:
        """Called when the process stops, after the last ``run_loop()`` (also
        when an iteration raised)."""

    def run_loop(self) -> None:
        """Called in a back to back loop while the coordinator runs."""
        self.body(self._loop_args, self._loop_kwargs)

    def body(self, args=(), kwargs=None) -> None:
        """One iteration of the work: ``target(*args, **kwargs)``."""
        self._loop_target(*args, **(kwargs or {}))

    def run(self) -> None:
        """Method run in the child process: the coordinated loop."""
        with self._coord.stop_on_exception():
            self.start_loop()
            try:
                while not self._coord.should_stop():
                    self.run_loop()
            finally:
                self.stop_loop()
