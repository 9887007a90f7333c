"""Process targets and helpers of the process tests (a module of its own, free of
torch, so that children started with ``spawn`` import it quickly)."""

import socket
import threading
import time

from alf.utils.process_coordinator import Process

DEADLINE_S = 60  # generous: only a hang (a bug) gets near it


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call_with_watchdog(fn, timeout=DEADLINE_S, on_timeout=None):
    """Run ``fn()`` in a thread; return its result or re-raise its exception.

    If it has not finished after ``timeout`` seconds, call ``on_timeout()`` (which
    should kill the processes ``fn`` waits for) and raise AssertionError: a hang
    fails the test instead of blocking the suite."""
    box = {}

    def target():
        try:
            box["result"] = fn()
        except BaseException as ex:  # noqa: B036 - re-raised in the caller
            box["error"] = ex

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        if on_timeout is not None:
            on_timeout()
        t.join(10)
        raise AssertionError(f"{getattr(fn, '__name__', fn)} did not finish in {timeout} s")
    if "error" in box:
        raise box["error"]
    return box.get("result")


def reap(processes):
    """Kill and reap whatever is still running."""
    for p in processes:
        if p.pid is not None and p.exitcode is None:
            p.kill()
    for p in processes:
        if p.pid is not None:
            p.join(10)


# -- Process targets ------------------------------------------------------------


def tick(counter, started=None):
    """One loop iteration of a healthy worker: count, then nap briefly."""
    if started is not None:
        started.set()
    with counter.get_lock():
        counter.value += 1
    time.sleep(0.005)


def fail_on_third_call(calls):
    """Raise ValueError on the third iteration of the loop."""
    with calls.get_lock():
        calls.value += 1
        n = calls.value
    if n == 3:
        raise ValueError(f"worker failed on call {n}")
    time.sleep(0.005)


def ignore_stop(started):
    """An iteration that never returns: it ignores the coordinator."""
    started.set()
    while True:
        time.sleep(0.02)


class Unrebuildable(Exception):
    """An exception whose instances cannot be rebuilt by pickle (its __init__
    takes two arguments, its args hold one)."""

    def __init__(self, a, b):
        super().__init__(f"{a}/{b}")


def raise_unrebuildable():
    raise Unrebuildable("left", "right")


def exit_cleanly():
    raise SystemExit(0)


def exit_with_code():
    raise SystemExit(3)


def plain_worker(coord, started):
    """A plain multiprocessing target using the coordinator by hand."""
    with coord.stop_on_exception():
        started.set()
        while not coord.should_stop():
            time.sleep(0.005)
        raise KeyError("raised after the stop request")


def wait_then_report(coord, started, results):
    """Block in wait_for_stop, then report what should_stop says."""
    started.set()
    told = coord.wait_for_stop(DEADLINE_S)
    results.put(("stopped", told, coord.should_stop()))


class LifecycleProcess(Process):
    """Records its life cycle in a queue: start_loop, the iterations, stop_loop."""

    def __init__(self, coord, events, stop_after):
        super().__init__(coord)
        self._events = events
        self._stop_after = stop_after
        self._n = 0

    def start_loop(self):
        self._events.put("start_loop")

    def run_loop(self):
        self._n += 1
        self._events.put(f"run_loop {self._n}")
        if self._n == self._stop_after:
            self.coord.request_stop()

    def stop_loop(self):
        self._events.put("stop_loop")


class BodyProcess(Process):
    """Overrides body(): each iteration puts its arguments in a queue and
    fails on the second one (stop_loop still runs)."""

    def __init__(self, coord, events):
        super().__init__(coord, args=(events, "x"), kwargs={"k": 1})
        self._events = events
        self._calls = 0

    def body(self, args=(), kwargs=None):
        events, x = args
        self._calls += 1
        events.put(("body", x, dict(kwargs), self._calls))
        if self._calls == 2:
            raise RuntimeError("body failed")

    def stop_loop(self):
        self._events.put("stop_loop")


def run_coordinated(coord, calls):
    """A plain process target: the coordinated loop written by hand."""
    with coord.stop_on_exception():
        while not coord.should_stop():
            fail_on_third_call(calls)


def raise_from_private_module(folder):
    """Raise an exception whose class lives in a module only this process
    can import (written to ``folder``, which the parent's sys.path lacks)."""
    import importlib
    import os
    import sys

    with open(os.path.join(folder, "alf_train_proc_private_mod.py"), "w") as f:
        f.write("class PrivateError(Exception):\n    pass\n")
    sys.path.insert(0, folder)
    mod = importlib.import_module("alf_train_proc_private_mod")
    raise mod.PrivateError("only the child knows this class")


def hold_lock_forever(coord, started):
    """Take the coordinator's shared lock (as request_stop does) and never
    release it: the parent kills this process while it holds the lock."""
    coord._lock.acquire()
    started.set()
    while True:
        time.sleep(0.05)
