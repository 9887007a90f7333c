"""Coordination of blocking ``RingBuffer`` calls: a lock, two conditions and a
stop flag, either for one process or shared between processes.

The shared variant creates its primitives from the ``spawn`` context: such
primitives can be handed to a child started with ``spawn`` (pickled with the
buffer as a ``Process`` argument) and are inherited by a child started with
``fork``, so one buffer works with both start methods.
"""

import multiprocessing
from typing import Callable

__all__ = ["LocalSync", "SharedSync"]


class LocalSync:
    """Single-process coordination: no lock, a plain stop flag.

    A blocking call that would have to wait raises ``RuntimeError``: in one
    process nothing else could ever make room or data.
    """

    lock = None

    def __init__(self):
        self._stopped = False

    def stop(self) -> None:
        self._stopped = True

    def revive(self) -> None:
        self._stopped = False

    def wait_for_space(self, ready: Callable[[], bool]) -> bool:
        return self._wait(ready, "enqueue", "free space")

    def wait_for_data(self, ready: Callable[[], bool]) -> bool:
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


class SharedSync:
    """Coordination between processes.

    ``lock`` is a re-entrant lock guarding every buffer operation; blocking
    calls wait on one condition for free space and one for data (both on
    ``lock``), and ``stop()`` wakes all of them at once. ``stop()`` also
    counts itself (``_stops``), so that a call waiting at that moment returns
    False even when ``revive()`` clears the stop flag before it wakes up.
    """

    def __init__(self):
        ctx = multiprocessing.get_context("spawn")
        self.lock = ctx.RLock()
        self._space = ctx.Condition(self.lock)
        self._data = ctx.Condition(self.lock)
        self._stop = ctx.Event()
        self._stops = ctx.Value("q", 0, lock=False)  # guarded by lock

    def stop(self) -> None:
        with self.lock:
            self._stop.set()
            self._stops.value += 1
            self._space.notify_all()
            self._data.notify_all()

    def revive(self) -> None:
        self._stop.clear()

    def wait_for_space(self, ready: Callable[[], bool]) -> bool:
        """Wait (holding ``lock``) until ``ready()``; False once stopped
        (also by a ``stop()`` that came while waiting)."""
        return self._wait(self._space, ready)

    def wait_for_data(self, ready: Callable[[], bool]) -> bool:
        """Wait (holding ``lock``) until ``ready()``; False once stopped
        (also by a ``stop()`` that came while waiting)."""
        return self._wait(self._data, ready)

    def _wait(self, condition, ready: Callable[[], bool]) -> bool:
        stops = self._stops.value
        while True:
            if self._stop.is_set() or self._stops.value != stops:
                return False
            if ready():
                return True
            condition.wait()

    def space_freed(self) -> None:
        """Wake blocked enqueues (call holding ``lock``)."""
        self._space.notify_all()

    def data_added(self) -> None:
        """Wake blocked dequeues (call holding ``lock``)."""
        self._data.notify_all()
