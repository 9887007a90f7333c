"""PerProcessContext: one instance per process, defaults, set/finalize, bad input.

The singleton lives for the whole test process: a test that changes it runs
in a forked child (and reports back through a queue), or on a fresh instance
that the ``fresh_context`` fixture swaps in and out; the other tests only read
it or check calls that must fail without changing it.
"""

import multiprocessing
import queue
import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from alf.utils.per_process_context import PerProcessContext

DEADLINE_S = 60
needs_fork = pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="needs the fork start method"
)


def state(ctx):
    return (
        ctx.ddp_rank,
        ctx.num_processes,
        ctx.is_distributed,
        ctx.is_main_process,
        ctx.paras_queue,
        ctx.is_finalized,
    )


def in_forked_child(fn):
    """Run ``fn()`` in a forked child and return its (picklable) result; an
    exception in the child fails the test, and so does a child that hangs."""
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()

    def target():
        try:
            results.put(("ok", fn()))
        except BaseException as ex:  # noqa: B036 - reported to the parent
            results.put(("error", repr(ex)))

    child = ctx.Process(target=target)
    child.start()
    try:
        kind, value = results.get(timeout=DEADLINE_S)
    except queue.Empty:
        kind, value = "error", f"child {child.pid} reported nothing in {DEADLINE_S} s"
    finally:
        child.join(DEADLINE_S)
        if child.exitcode is None:
            child.kill()
            child.join(10)
    assert kind == "ok", value
    return value


def test_defaults_and_singleton():
    a, b = PerProcessContext(), PerProcessContext()
    assert a is b
    # this test process never changes it
    assert state(a) == (-1, 1, False, True, None, False)
    assert "ddp_rank=-1" in repr(a)


@needs_fork
def test_set_distributed_then_finalize():
    def child():
        ctx = PerProcessContext()
        before = state(ctx)
        ctx.set_distributed(rank=2, num_processes=3)
        q = multiprocessing.Queue()
        ctx.set_paras_queue(q)
        ctx.finalize()
        ctx.finalize()  # harmless
        after = state(PerProcessContext())  # the same object everywhere
        errors = []
        for call in (lambda: ctx.set_distributed(0, 1), lambda: ctx.set_paras_queue(None)):
            try:
                call()
            except RuntimeError as ex:
                errors.append(str(ex))
        return before, after[:4] + (after[4] is q, after[5]), errors, state(ctx)[:4]

    before, after, errors, final = in_forked_child(child)
    assert before == (-1, 1, False, True, None, False)
    assert after == (2, 3, True, False, True, True)
    assert len(errors) == 2 and all("finalized" in e for e in errors)
    assert final == (2, 3, True, False)  # unchanged by the refused calls
    # the parent's context is untouched by the child's
    assert state(PerProcessContext()) == (-1, 1, False, True, None, False)


@needs_fork
def test_rank_zero_is_the_main_process():
    def child():
        ctx = PerProcessContext()
        ctx.set_distributed(0, 4)
        first = (ctx.is_main_process, ctx.is_distributed)
        ctx.set_distributed(3, 4)  # settable until finalize()
        return first, (ctx.is_main_process, ctx.ddp_rank, ctx.num_processes)

    assert in_forked_child(child) == ((True, True), (False, 3, 4))


@given(num_processes=st.integers(1, 64), rank=st.integers(-200, 200))
def test_rank_outside_range_is_refused(num_processes, rank):
    """A rank outside [0, num_processes) raises ValueError naming rank, and
    the context is unchanged (so a valid rank is not tried here)."""
    ctx = PerProcessContext()
    if 0 <= rank < num_processes:
        return
    with pytest.raises(ValueError, match=r"rank must be in \[0, num_processes\)"):
        ctx.set_distributed(rank, num_processes)
    assert state(ctx) == (-1, 1, False, True, None, False)


def test_bad_input():
    ctx = PerProcessContext()
    with pytest.raises(ValueError, match="num_processes must be at least 1"):
        ctx.set_distributed(0, 0)
    with pytest.raises(TypeError, match="rank must be an int"):
        ctx.set_distributed(0.0, 2)
    with pytest.raises(TypeError, match="rank must be an int"):
        ctx.set_distributed(True, 2)
    with pytest.raises(TypeError, match="num_processes must be an int"):
        ctx.set_distributed(0, "2")
    with pytest.raises(TypeError, match="paras_queue"):
        ctx.set_paras_queue([1, 2])
    assert state(ctx) == (-1, 1, False, True, None, False)


@pytest.fixture
def fresh_context():
    """This process's singleton replaced by a new one for the test (and put
    back after), so that the setters can run here and not in a child."""
    saved = PerProcessContext._instance
    PerProcessContext._instance = None
    try:
        yield PerProcessContext()
    finally:
        PerProcessContext._instance = saved


def test_setters_and_finalize_in_this_process(fresh_context):
    ctx = fresh_context
    assert state(ctx) == (-1, 1, False, True, None, False)
    ctx.set_distributed(np.int64(1), 2)
    q = queue.Queue()
    ctx.set_paras_queue(q)
    assert state(ctx) == (1, 2, True, False, q, False)
    ctx.finalize()
    with pytest.raises(RuntimeError, match="set_distributed: the context was finalized"):
        ctx.set_distributed(0, 1)
    with pytest.raises(RuntimeError, match="set_paras_queue: the context was finalized"):
        ctx.set_paras_queue(None)
    assert state(PerProcessContext()) == (1, 2, True, False, q, True)
    assert repr(ctx) == "PerProcessContext(ddp_rank=1, num_processes=2, finalized=True)"


def test_threads_get_one_instance(fresh_context):
    """The instance is created once even when many threads ask at once."""
    PerProcessContext._instance = None
    barrier = threading.Barrier(8)
    got = []

    def ask():
        barrier.wait()
        got.append(PerProcessContext())

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE_S)
    assert len(got) == 8 and all(c is got[0] for c in got)
