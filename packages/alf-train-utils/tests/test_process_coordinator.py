"""process_coordinator with real processes: exceptions reach join(), a worker
that ignores the stop request fails join() after the grace period, a worker
killed with SIGKILL is noticed, and the Process loop's life cycle.

Every wait has a deadline and every join runs under a watchdog
(``call_with_watchdog``): a hang fails the test and kills the children.
"""

import multiprocessing
import os
import queue
import signal
import sys
import time
import traceback

import pytest

from alf.utils.process_coordinator import Coordinator, Process

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import alf_train_proc_workers as workers  # noqa: E402

DEADLINE_S = workers.DEADLINE_S
needs_fork = pytest.mark.skipif(
    multiprocessing.get_start_method() != "fork",
    reason="these tests start coordinated processes with the default start method, fork here",
)


def drain(q, count, deadline_s=DEADLINE_S):
    """``count`` items of ``q`` (fewer if the deadline passes)."""
    got, deadline = [], time.monotonic() + deadline_s
    while len(got) < count and time.monotonic() < deadline:
        try:
            got.append(q.get(timeout=0.5))
        except queue.Empty:
            pass
    return got


def join_watched(coord, to_kill, **kwargs):
    """coord.join(**kwargs) under the watchdog (kills ``to_kill`` on a hang)."""
    return workers.call_with_watchdog(
        lambda: coord.join(**kwargs), on_timeout=lambda: workers.reap(to_kill)
    )


@needs_fork
def test_exception_in_worker_reaches_join():
    """A worker raising ValueError stops the others; join() re-raises it in
    the parent with the worker's traceback as __cause__."""
    coord = Coordinator()
    calls = multiprocessing.Value("i", 0)
    counter = multiprocessing.Value("i", 0)
    failing = Process(coord, target=workers.fail_on_third_call, args=(calls,))
    healthy = Process(coord, target=workers.tick, kwargs={"counter": counter})
    procs = [failing, healthy]
    try:
        for p in procs:
            p.start()
        with pytest.raises(ValueError, match="worker failed on call 3") as info:
            join_watched(coord, procs, stop_grace_period_secs=DEADLINE_S)
    finally:
        workers.reap(procs)
    cause = str(info.value.__cause__)
    assert f"in process {failing.pid}" in cause
    assert "fail_on_third_call" in cause and "ValueError" in cause
    assert coord.joined and coord.should_stop()
    # both ended by themselves: the healthy one saw the stop request
    assert [p.exitcode for p in procs] == [0, 0]
    assert calls.value == 3
    # join() forgot the processes; clear_stop() resets the flag and the exception
    coord.clear_stop()
    assert not coord.should_stop() and not coord.joined
    coord.raise_requested_exception()  # nothing recorded any more
    join_watched(coord, [])


@needs_fork
def test_worker_ignoring_stop_fails_join_after_grace_period():
    """join() raises RuntimeError naming the process that is still alive after
    the grace period (and does not hang); ignore_live_processes=True accepts it."""
    coord = Coordinator()
    started = multiprocessing.Event()
    stubborn = Process(coord, target=workers.ignore_stop, args=(started,))
    stubborn.name = "stubborn-worker"
    procs = [stubborn]
    try:
        stubborn.start()
        assert started.wait(DEADLINE_S)
        coord.request_stop()
        with pytest.raises(RuntimeError, match=r"still alive") as info:
            join_watched(coord, procs, stop_grace_period_secs=0.2)
        assert f"stubborn-worker (pid {stubborn.pid})" in str(info.value)
        assert stubborn.is_alive()
        # the same process once more, accepted
        join_watched(
            coord,
            procs,
            processes=[stubborn],
            stop_grace_period_secs=0.05,
            ignore_live_processes=True,
        )
        assert stubborn.is_alive()
    finally:
        workers.reap(procs)
    assert stubborn.exitcode == -signal.SIGKILL


@needs_fork
def test_worker_killed_with_sigkill_is_noticed():
    """A worker killed with SIGKILL (no stop request): should_stop() and
    wait_for_stop() become true in the parent, the other worker stops, and
    join() raises RuntimeError naming the dead process and the signal."""
    coord = Coordinator()
    started = [multiprocessing.Event() for _ in range(2)]
    counter = multiprocessing.Value("i", 0)
    procs = [Process(coord, target=workers.tick, args=(counter, ev)) for ev in started]
    victim, survivor = procs
    try:
        for p in procs:
            p.start()
        assert all(ev.wait(DEADLINE_S) for ev in started)
        assert not coord.should_stop()
        os.kill(victim.pid, signal.SIGKILL)
        assert coord.wait_for_stop(DEADLINE_S)
        assert coord.should_stop()
        with pytest.raises(RuntimeError, match="SIGKILL") as info:
            join_watched(coord, procs, stop_grace_period_secs=DEADLINE_S)
    finally:
        workers.reap(procs)
    assert f"{victim.name} (pid {victim.pid})" in str(info.value)
    assert victim.exitcode == -signal.SIGKILL
    assert survivor.exitcode == 0


@needs_fork
def test_process_exiting_with_error_code_is_noticed_by_should_stop():
    """A registered plain process that ends with os._exit(3) is noticed by
    should_stop() and named by join(). In a coordinated Process, SystemExit(3)
    is a recorded exception (join re-raises it) and SystemExit(0) a clean stop."""
    ctx = multiprocessing.get_context("fork")
    coord = Coordinator()
    plain = ctx.Process(target=os._exit, args=(3,))
    coord.register_process(plain)
    try:
        plain.start()
        plain.join(DEADLINE_S)
        assert coord.should_stop()
        with pytest.raises(RuntimeError, match="exited with code 3"):
            join_watched(coord, [plain], stop_grace_period_secs=1)
        coord.clear_stop()
        # SystemExit(3) in a coordinated Process is a recorded exception
        p = Process(coord, target=workers.exit_with_code)
        p.start()
        with pytest.raises(SystemExit) as info:
            join_watched(coord, [p], stop_grace_period_secs=DEADLINE_S)
        assert info.value.code == 3
        coord.clear_stop()
        # SystemExit(0) is a clean stop: nothing raised
        p = Process(coord, target=workers.exit_cleanly)
        p.start()
        join_watched(coord, [p], stop_grace_period_secs=DEADLINE_S)
        assert coord.should_stop() and p.exitcode == 0
    finally:
        workers.reap([plain])


@needs_fork
def test_plain_multiprocessing_process_with_coordinator():
    """A coordinator passed to a plain multiprocessing.Process: the parent's
    request_stop reaches the child's should_stop/wait_for_stop, and the
    child's exception (raised after the stop) reaches join(processes=...)."""
    ctx = multiprocessing.get_context("fork")
    coord = Coordinator()
    s1, s2, results = ctx.Event(), ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=workers.plain_worker, args=(coord, s1)),
        ctx.Process(target=workers.wait_then_report, args=(coord, s2, results)),
    ]
    try:
        for p in procs:
            p.start()
        assert s1.wait(DEADLINE_S) and s2.wait(DEADLINE_S)
        assert not coord.wait_for_stop(0.05)  # timed out: False
        coord.request_stop()
        assert drain(results, 1) == [("stopped", True, True)]
        with pytest.raises(KeyError, match="raised after the stop request"):
            join_watched(coord, procs, processes=procs, stop_grace_period_secs=DEADLINE_S)
    finally:
        workers.reap(procs)
    assert [p.exitcode for p in procs] == [0, 0]


def test_spawned_child_shares_the_coordinator():
    """A coordinator pickled into a spawned child: the child's exception
    reaches the parent's join()."""
    ctx = multiprocessing.get_context("spawn")
    coord = Coordinator(context="spawn")
    calls = ctx.Value("i", 0)
    child = ctx.Process(target=workers.run_coordinated, args=(coord, calls))
    coord.register_process(child)
    try:
        child.start()
        with pytest.raises(ValueError, match="worker failed on call 3") as info:
            join_watched(coord, [child], stop_grace_period_secs=DEADLINE_S)
    finally:
        workers.reap([child])
    assert f"in process {child.pid}" in str(info.value.__cause__)
    assert child.exitcode == 0


@needs_fork
def test_process_life_cycle():
    """start_loop, run_loop back to back until the stop request, stop_loop."""
    coord = Coordinator()
    events = multiprocessing.Queue()
    p = workers.LifecycleProcess(coord, events, stop_after=4)
    try:
        p.start()
        got = drain(events, 6)
        join_watched(coord, [p], stop_grace_period_secs=DEADLINE_S)
    finally:
        workers.reap([p])
    assert got == ["start_loop"] + [f"run_loop {i}" for i in range(1, 5)] + ["stop_loop"]
    assert p.exitcode == 0


@needs_fork
def test_body_receives_args_and_stop_loop_runs_after_a_failure():
    coord = Coordinator()
    events = multiprocessing.Queue()
    p = workers.BodyProcess(coord, events)
    try:
        p.start()
        got = drain(events, 3)
        with pytest.raises(RuntimeError, match="body failed"):
            join_watched(coord, [p], stop_grace_period_secs=DEADLINE_S)
    finally:
        workers.reap([p])
    assert got == [("body", "x", {"k": 1}, 1), ("body", "x", {"k": 1}, 2), "stop_loop"]


@needs_fork
def test_unpicklable_exception_arrives_as_runtime_error():
    """An exception that pickle cannot rebuild arrives as a RuntimeError
    naming its type and text."""
    coord = Coordinator()
    p = Process(coord, target=workers.raise_unrebuildable)
    try:
        p.start()
        with pytest.raises(RuntimeError, match=r"Unrebuildable: left/right"):
            join_watched(coord, [p], stop_grace_period_secs=DEADLINE_S)
    finally:
        workers.reap([p])


@needs_fork
def test_exception_of_a_class_the_parent_cannot_import(tmp_path):
    """The exception's class exists only in the child: join() raises a
    RuntimeError with its qualified name, text and the child's traceback."""
    coord = Coordinator()
    p = Process(coord, target=workers.raise_from_private_module, args=(str(tmp_path),))
    try:
        p.start()
        with pytest.raises(RuntimeError) as info:
            join_watched(coord, [p], stop_grace_period_secs=DEADLINE_S)
    finally:
        workers.reap([p])
    assert str(info.value) == (
        "alf_train_proc_private_mod.PrivateError: only the child knows this class"
    )
    assert "raise_from_private_module" in str(info.value.__cause__)


@needs_fork
def test_lock_of_a_killed_process_does_not_hang(monkeypatch):
    """A process killed while it holds the coordinator's lock (as it would in
    the middle of request_stop): request_stop, should_stop and join still
    work after the lock wait times out (shortened here from 10 s)."""
    import alf.utils.process_coordinator as pc

    monkeypatch.setattr(pc, "_LOCK_TIMEOUT_SECS", 0.2)
    coord = Coordinator()
    started = multiprocessing.Event()
    p = multiprocessing.Process(target=workers.hold_lock_forever, args=(coord, started))
    try:
        p.start()
        assert started.wait(DEADLINE_S)
        os.kill(p.pid, signal.SIGKILL)
        p.join(DEADLINE_S)

        def stop_and_join():
            coord.request_stop(ValueError("not recordable: the lock is lost"))
            assert coord.should_stop()
            coord.join([p], stop_grace_period_secs=0)

        workers.call_with_watchdog(stop_and_join)
    finally:
        workers.reap([p])


def test_request_stop_in_the_same_process():
    """Without processes: the first exception is kept with its traceback,
    exc_info tuples work, stop_on_exception records, request_stop after
    join() raises at once."""
    coord = Coordinator()
    assert not coord.should_stop() and not coord.joined
    assert not coord.wait_for_stop(0)
    try:
        raise ZeroDivisionError("first")
    except ZeroDivisionError:
        coord.request_stop(sys.exc_info())
        first_tb = sys.exc_info()[2]
    try:
        raise KeyError("second")
    except KeyError as ex:
        coord.request_stop(ex)  # not recorded: the first one is kept
    assert coord.should_stop() and coord.wait_for_stop()
    with pytest.raises(ZeroDivisionError, match="first") as info:
        coord.raise_requested_exception()
    # re-raised with its original traceback: the frame that raised it is in it
    lines = [f.line for f in traceback.extract_tb(info.value.__traceback__)]
    assert 'raise ZeroDivisionError("first")' in lines
    assert traceback.extract_tb(first_tb)[-1].line in lines
    with pytest.raises(ZeroDivisionError, match="first"):
        coord.join()
    assert coord.joined
    with pytest.raises(IndexError, match="after join"):
        coord.request_stop(IndexError("after join"))
    coord.clear_stop()
    with coord.stop_on_exception():
        raise OSError("inside the block")
    assert coord.should_stop()
    with pytest.raises(OSError, match="inside the block"):
        coord.join(stop_grace_period_secs=0)
    coord.clear_stop()
    coord.request_stop()  # no exception: join returns
    coord.join(stop_grace_period_secs=0)
    assert coord.joined


def test_bad_input():
    coord = Coordinator()
    with pytest.raises(TypeError, match="coord"):
        Process("not a coordinator", target=print)
    with pytest.raises(TypeError, match="target"):
        Process(coord, target=3)
    with pytest.raises(TypeError, match="target is None"):
        Process(coord)
    with pytest.raises(TypeError, match="args"):
        Process(coord, target=print, args=3)
    with pytest.raises(TypeError, match="kwargs"):
        Process(coord, target=print, kwargs=[1])
    with pytest.raises(TypeError, match="process"):
        coord.register_process("not a process")
    with pytest.raises(ValueError, match="context"):
        Coordinator(context="no-such-method")
    with pytest.raises(TypeError, match="context"):
        Coordinator(context=3)
    with pytest.raises(TypeError, match="ex"):
        coord.request_stop("not an exception")
    with pytest.raises(ValueError, match="stop_grace_period_secs"):
        coord.join(stop_grace_period_secs=-1)
    with pytest.raises(TypeError, match="stop_grace_period_secs"):
        coord.join(stop_grace_period_secs="10")
    with pytest.raises(TypeError, match="processes"):
        coord.join(processes=[1])
    with pytest.raises(ValueError, match="timeout"):
        coord.wait_for_stop(-0.5)
    # none of these changed anything
    assert not coord.should_stop() and not coord.joined


class Recorder(Process):
    """A coordinated Process that records its hooks (run here, in this process)."""

    def __init__(self, coord, stop_after):
        super().__init__(coord, target=self.step, args=("x",), kwargs={"k": 1})
        self.calls = []
        self.stop_after = stop_after

    def start_loop(self):
        self.calls.append("start")

    def step(self, arg, k):
        self.calls.append((arg, k))
        if len(self.calls) > self.stop_after:
            self.coord.request_stop()

    def stop_loop(self):
        self.calls.append("stop")


def test_run_is_the_coordinated_loop():
    """``run()`` (what the child executes) in this process: start_loop, then
    run_loop -> body -> target until the coordinator stops, then stop_loop."""
    coord = Coordinator()
    p = Recorder(coord, stop_after=3)
    assert p.coord is coord
    p.run()
    assert p.calls == ["start", ("x", 1), ("x", 1), ("x", 1), "stop"]
    coord.join(stop_grace_period_secs=0)  # a clean stop: nothing to raise


class FailingRecorder(Recorder):
    def step(self, arg, k):
        raise KeyError(f"iteration {arg}")


def test_run_records_a_failing_iteration_and_still_stops():
    coord = Coordinator()
    p = FailingRecorder(coord, stop_after=100)
    p.run()
    assert p.calls == ["start", "stop"]
    with pytest.raises(KeyError, match="iteration x"):
        coord.raise_requested_exception()


@pytest.mark.parametrize("code, recorded", [(None, False), (0, False), (3, True), ("bye", True)])
def test_system_exit_inside_stop_on_exception(code, recorded):
    coord = Coordinator()
    with coord.stop_on_exception():
        sys.exit(code)
    assert coord.should_stop()
    if recorded:
        with pytest.raises(SystemExit) as info:
            coord.raise_requested_exception()
        assert info.value.code == code
    else:
        coord.raise_requested_exception()  # nothing recorded


def test_coordinator_takes_a_context_object():
    ctx = multiprocessing.get_context("spawn")
    coord = Coordinator(context=ctx)
    assert not coord.should_stop()
    coord.request_stop()
    assert coord.wait_for_stop(0)


@needs_fork
def test_worker_killed_by_an_unnamed_signal_is_noticed():
    """A signal without a name in ``signal.Signals`` (a real-time one) is
    reported by its number."""
    rt = signal.SIGRTMIN + 3
    coord = Coordinator()
    started = multiprocessing.Event()
    counter = multiprocessing.Value("i", 0)
    victim = Process(coord, target=workers.tick, args=(counter, started))
    try:
        victim.start()
        assert started.wait(DEADLINE_S)
        os.kill(victim.pid, rt)
        assert coord.wait_for_stop(DEADLINE_S)
        with pytest.raises(RuntimeError, match=rf"was killed by signal {rt} \(exit code -{rt}\)"):
            join_watched(coord, [victim], stop_grace_period_secs=DEADLINE_S)
    finally:
        workers.reap([victim])
