"""Blocking calls of a RingBuffer shared between processes: timeouts, the
portable lock used where robust mutexes are missing, copies, and waiters
killed while they wait.

Threads share a buffer's lock and waits as processes do; the waits are
observed through the buffer's count of sleeping calls, never by timing."""

import copy
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time

import pytest
import torch

from alf.tensor_specs import TensorSpec
from alf.utils import _buffer_sync
from alf.utils.data_buffer import RingBuffer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from alf_buffers_checks import assert_unchanged, snapshot  # noqa: E402

DEADLINE_S = 60
SPEC = TensorSpec((), torch.int64)


def wait_until(condition, what):
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {DEADLINE_S} s"
        time.sleep(0.005)


def in_thread(call):
    """Run ``call`` in a daemon thread; return (thread, results list)."""
    results = []
    thread = threading.Thread(target=lambda: results.append(call()), daemon=True)
    thread.start()
    return thread, results


def test_timeout_raises_timeout_error_and_changes_nothing():
    rb = RingBuffer(SPEC, 2, max_length=1, allow_multiprocess=True)
    before = snapshot(rb)
    with pytest.raises(
        TimeoutError, match=r"blocking dequeue: environments \[0, 1\] did not hold n=1"
    ):
        rb.dequeue(blocking=True, timeout=0.01)
    assert_unchanged(rb, before)
    rb.enqueue(torch.tensor([1, 2]))
    before = snapshot(rb)
    with pytest.raises(TimeoutError, match=r"blocking enqueue: no free slot in environments \[1\]"):
        rb.enqueue(torch.tensor([3]), torch.tensor([1]), blocking=True, timeout=0)
    assert_unchanged(rb, before)
    assert rb._sync.sleepers() == (0, 0)
    # the timeout only bounds the wait: with room or data the call goes through
    assert rb.dequeue(blocking=True, timeout=0).tolist() == [[1], [2]]
    assert rb.enqueue(torch.tensor([4, 5]), blocking=True, timeout=0) is True


def test_timeout_covers_taking_the_lock():
    """A blocking call gives up when another thread holds the lock for the
    whole timeout."""
    rb = RingBuffer(SPEC, 1, max_length=1, allow_multiprocess=True)
    rb.enqueue(torch.tensor([7]))
    held, release = threading.Event(), threading.Event()

    def hold():
        with rb._lock:
            held.set()
            release.wait(DEADLINE_S)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert held.wait(DEADLINE_S)
    try:
        with pytest.raises(TimeoutError, match="the buffer's lock was not free"):
            rb.dequeue(blocking=True, timeout=0.01)
    finally:
        release.set()
        holder.join(DEADLINE_S)
    assert rb.dequeue(blocking=True, timeout=DEADLINE_S).tolist() == [[7]]


def test_single_process_blocking_with_timeout_still_refuses_to_wait():
    rb = RingBuffer(SPEC, 1, max_length=1)
    with pytest.raises(RuntimeError, match="would wait forever"):
        rb.dequeue(blocking=True, timeout=5)


@pytest.mark.parametrize("robust", [True, False])
def test_blocking_handoff_and_stop_with_each_lock(monkeypatch, robust):
    """Blocking calls wake each other and stop() releases them, with the
    robust lock and with the portable one (a multiprocessing RLock and
    polling waits, used where robust mutexes are missing)."""
    if robust and not _buffer_sync.robust_lock_available():
        pytest.skip("no robust process-shared mutexes here")
    if not robust:

        class NoNative:
            ok = False
            futex = False

        monkeypatch.setattr(_buffer_sync, "_get_native", NoNative)
    rb = RingBuffer(SPEC, 1, max_length=2, allow_multiprocess=True)
    assert rb._sync.robust is robust
    consumer, got = in_thread(lambda: rb.dequeue(n=2, blocking=True, timeout=DEADLINE_S))
    wait_until(lambda: rb._sync.sleepers() == (0, 1), "the dequeue waiting")
    rb.enqueue(torch.tensor([1]))
    rb.enqueue(torch.tensor([2]))
    consumer.join(DEADLINE_S)
    assert [g.tolist() for g in got] == [[[1, 2]]]
    rb.enqueue(torch.tensor([3]))
    rb.enqueue(torch.tensor([4]))
    producer, put = in_thread(lambda: rb.enqueue(torch.tensor([5]), blocking=True))
    wait_until(lambda: rb._sync.sleepers() == (1, 0), "the enqueue waiting")
    rb.stop()
    producer.join(DEADLINE_S)
    assert put == [False]
    assert rb.dequeue(n=2).tolist() == [[3, 4]]


def test_shared_buffer_cannot_be_copied():
    rb = RingBuffer(SPEC, 1, max_length=2, allow_multiprocess=True)
    with pytest.raises(RuntimeError, match="save its state_dict"):
        copy.deepcopy(rb)
    with pytest.raises(RuntimeError, match="save its state_dict"):
        pickle.loads(pickle.dumps(rb))


def waiting_consumer(rb):
    rb.dequeue(blocking=True)


@pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="no fork start method"
)
def test_a_killed_waiter_blocks_nothing():
    """A process killed while waiting for data stays counted as a sleeper
    until the next enqueue wakes the sleepers; that enqueue returns, and a
    new waiter gets the data."""
    ctx = multiprocessing.get_context("fork")
    rb = RingBuffer(SPEC, 1, max_length=2, allow_multiprocess=True)
    child = ctx.Process(target=waiting_consumer, args=(rb,), daemon=True)
    child.start()
    wait_until(lambda: rb._sync.sleepers() == (0, 1), "the child waiting")
    os.kill(child.pid, signal.SIGKILL)
    child.join(DEADLINE_S)
    assert rb._sync.sleepers() == (0, 1)
    adder, added = in_thread(lambda: rb.enqueue(torch.tensor([1])))
    adder.join(DEADLINE_S)
    assert added == [True]
    assert rb._sync.sleepers() == (0, 0)
    consumer, got = in_thread(lambda: rb.dequeue(n=2, blocking=True, timeout=DEADLINE_S))
    wait_until(lambda: rb._sync.sleepers() == (0, 1), "a new waiter")
    rb.enqueue(torch.tensor([2]))
    consumer.join(DEADLINE_S)
    assert [g.tolist() for g in got] == [[[1, 2]]]
    stopper, _ = in_thread(rb.stop)
    stopper.join(DEADLINE_S)
    assert not stopper.is_alive()


def _holder_that_vanishes(rb, conn):
    """Take the buffer's lock, report the lock word, then (told to) free the
    word without unlocking (so no wake-up is sent) and exit."""
    rb._sync.lock.acquire()
    conn.send(int(rb._sync._state.view("int32")[0]))
    conn.recv()
    rb._sync._state.view("int32")[0] = 0
    os._exit(0)


def _lock_waiter(rb, conn):
    """Wait for the buffer's lock with no time limit; report when taken."""
    conn.send("waiting")
    rb._sync.lock.acquire()
    conn.send("locked")
    rb._sync.lock.release()


def _sleeps_on_a_futex(pid):
    with open(f"/proc/{pid}/wchan") as f:
        return "futex" in f.read()


@pytest.mark.skipif(
    not (_buffer_sync.robust_lock_available() and os.path.exists("/proc/self/wchan")),
    reason="needs the robust process-shared lock and /proc/PID/wchan (Linux)",
)
def test_a_lost_wake_up_of_the_lock_does_not_strand_a_waiter():
    """An unlock wakes one waiter. When that waiter is killed before it takes
    the lock and another process takes the lock uncontended, the kernel wakes
    nobody else: the other waiters got no wake-up and will get none. Made here
    without the race: a holder frees the lock word (glibc's layout: the first
    int32, holding the owner's thread id) while a waiter sleeps, and sends no
    wake-up. The waiter must still get the lock (it waits in bounded steps)
    instead of sleeping forever."""
    ctx = multiprocessing.get_context("fork")
    rb = RingBuffer(SPEC, 1, max_length=2, allow_multiprocess=True)
    to_holder, holder_end = ctx.Pipe()
    from_waiter, waiter_end = ctx.Pipe()
    holder = ctx.Process(target=_holder_that_vanishes, args=(rb, holder_end), daemon=True)
    waiter = ctx.Process(target=_lock_waiter, args=(rb, waiter_end), daemon=True)
    holder.start()
    try:
        assert to_holder.poll(DEADLINE_S), "the holder did not take the lock"
        word = to_holder.recv()
        if word & 0x3FFFFFFF != holder.pid:
            pytest.skip(f"the mutex is not glibc's (lock word {word:#x}, holder {holder.pid})")
        waiter.start()
        assert from_waiter.poll(DEADLINE_S) and from_waiter.recv() == "waiting"
        wait_until(lambda: _sleeps_on_a_futex(waiter.pid), "the waiter sleeping on the lock")
        assert rb._sync._state.view("int32")[0] < 0  # FUTEX_WAITERS: someone sleeps
        to_holder.send("vanish")
        holder.join(DEADLINE_S)
        assert from_waiter.poll(DEADLINE_S), f"the waiter slept {DEADLINE_S} s on a free lock"
        assert from_waiter.recv() == "locked"
        waiter.join(DEADLINE_S)
        assert waiter.exitcode == 0
    finally:
        for proc in (holder, waiter):
            if proc.pid is not None and proc.is_alive():
                proc.kill()
                proc.join(DEADLINE_S)
    assert rb._sync.lock.acquire(timeout=DEADLINE_S)  # free again, and still works
    rb._sync.lock.release()


@pytest.mark.parametrize("env_ids", [None, [0, 1], [1]])
def test_full_shared_rings_keep_the_newest_items(env_ids):
    """Non-blocking enqueues into full rings of a shared buffer (which first
    drop the oldest item, then write) keep the newest max_length items, as a
    buffer in one process does."""
    shared = RingBuffer(SPEC, 2, max_length=3, allow_multiprocess=True)
    ids = [0, 1] if env_ids is None else env_ids
    for step in range(8):
        shared.enqueue(torch.tensor([100 * e + step for e in ids]), env_ids)
    sizes = [3 if e in ids else 0 for e in range(2)]
    assert shared._current_size.tolist() == sizes
    assert shared.get_current_position().tolist() == [8 if e in ids else 0 for e in range(2)]
    out = shared.dequeue(torch.tensor(ids), n=3)
    assert out.tolist() == [[100 * e + s for s in (5, 6, 7)] for e in ids]


def test_a_blocked_call_sleeps_instead_of_spinning():
    """A waiting dequeue looks at the buffer again only when woken or after
    each bounded sleep (0.1 s): while nothing happens, it checks a handful
    of times, not thousands (a broken sleep would spin)."""
    rb = RingBuffer(SPEC, 1, max_length=1, allow_multiprocess=True)
    checks = []
    has_data = rb._has_data

    def spy(*args):
        checks.append(time.monotonic())
        return has_data(*args)

    rb._has_data = spy
    consumer, got = in_thread(lambda: rb.dequeue(blocking=True, timeout=DEADLINE_S))
    wait_until(lambda: rb._sync.sleepers() == (0, 1), "the dequeue waiting")
    started = time.monotonic()
    time.sleep(0.5)
    rb.enqueue(torch.tensor([3]))
    consumer.join(DEADLINE_S)
    elapsed = time.monotonic() - started
    assert [g.tolist() for g in got] == [[[3]]]
    # one check per sleep of at most 0.1 s, plus the first and the last
    assert len(checks) <= elapsed / 0.1 + 3, (len(checks), elapsed)
