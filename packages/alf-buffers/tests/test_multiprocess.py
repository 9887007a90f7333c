"""RingBuffer shared between processes (CPU, shared memory), started with
``fork`` and with ``spawn``.

The load and stop tests start their six processes with ``fork`` (a spawned
child spends seconds importing torch); ``test_spawned_children_share_buffer``
runs a blocking producer/consumer pair and a stop() through ``spawn``.
Every test is bounded: results are awaited with timeouts and leftover
processes are stopped and killed.
"""

import io
import multiprocessing
import os
import queue
import sys
import threading
import time

import numpy as np
import pytest
import torch

from alf.tensor_specs import TensorSpec
from alf.utils.data_buffer import RingBuffer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import alf_buffers_workers as workers  # noqa: E402

HAS_FORK = "fork" in multiprocessing.get_all_start_methods()
needs_fork = pytest.mark.skipif(not HAS_FORK, reason="the fork start method is unavailable")
SPEC = {"id": TensorSpec((), torch.int64), "payload": TensorSpec((3,), torch.float64)}
DEADLINE_S = 150


def shutdown(rb, processes):
    """Release and reap every process; kill what does not end."""
    rb.stop()
    for p in processes:
        p.join(timeout=5)
    for p in processes:
        if p.is_alive():
            p.kill()
            p.join(timeout=5)


def collect(results, count, deadline):
    got = []
    while len(got) < count:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            got.append(results.get(timeout=min(remaining, 5)))
        except queue.Empty:
            continue
    return got


def produce_in_forked_child(rb, env_ids, items_per_env):
    """Run ``workers.produce`` in one forked child and return what it reported."""
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    child = ctx.Process(target=workers.produce, args=(rb, env_ids, items_per_env, results))
    try:
        child.start()
        return collect(results, 1, time.monotonic() + DEADLINE_S)
    finally:
        shutdown(rb, [child])


@pytest.mark.slow
@needs_fork
def test_load_four_producers_two_consumers():
    """100,000 uniquely numbered items move through a buffer of 8 slots per
    environment: 4 producers own 8 environments each, 2 consumers each take
    every other environment (so every consumer reads from every producer).
    Every item arrives exactly once, in per-environment order, untorn."""
    ctx = multiprocessing.get_context("fork")
    n_producers, envs_per_producer, n_consumers = 4, 8, 2
    num_envs = n_producers * envs_per_producer
    items_per_env, n = 100_000 // num_envs, 5  # 3125 steps, dequeued 5 at a time
    assert items_per_env * num_envs == 100_000
    rb = RingBuffer(SPEC, num_envs, max_length=8, allow_multiprocess=True)
    results = ctx.Queue()
    producer_envs = [
        list(range(p * envs_per_producer, (p + 1) * envs_per_producer)) for p in range(n_producers)
    ]
    consumer_envs = [list(range(c, num_envs, n_consumers)) for c in range(n_consumers)]
    processes = [
        ctx.Process(target=workers.produce, args=(rb, envs, items_per_env, results))
        for envs in producer_envs
    ] + [
        ctx.Process(target=workers.consume, args=(rb, envs, items_per_env, n, results))
        for envs in consumer_envs
    ]
    try:
        for p in processes:
            p.start()
        reports = collect(results, len(processes), time.monotonic() + DEADLINE_S)
    finally:
        shutdown(rb, processes)
    kinds = sorted(kind for kind, _, _ in reports)
    assert kinds == ["consumed"] * n_consumers + ["produced"] * n_producers, reports
    seen = np.zeros(100_000, dtype=np.int64)
    for kind, envs, ids in reports:
        if kind != "consumed":
            continue
        for row, env in zip(ids, envs):
            # per environment: exactly its items, in the order produced
            np.testing.assert_array_equal(row, env * items_per_env + np.arange(items_per_env))
            np.add.at(seen, row, 1)
    assert (seen == 1).all()
    assert not rb.has_data(None, 1)
    assert rb.get_current_position().tolist() == [items_per_env] * num_envs


def wait_for_sleepers(rb, space, data):
    """Wait (generous deadline) until ``space`` calls wait for space and
    ``data`` calls wait for data in ``rb``, in any process."""
    deadline = time.monotonic() + DEADLINE_S
    while rb._sync.sleepers() != (space, data):
        assert time.monotonic() < deadline, f"sleepers: {rb._sync.sleepers()}"
        time.sleep(0.01)


@needs_fork
def test_stop_releases_every_blocked_call():
    """Three consumers block on an empty environment and three producers on a
    full one; stop() releases all six (dequeue -> None, enqueue -> False).
    After revive() blocking calls work again."""
    ctx = multiprocessing.get_context("fork")
    rb = RingBuffer(TensorSpec((), torch.int64), 2, max_length=2, allow_multiprocess=True)
    for _ in range(2):
        rb.enqueue(torch.zeros(1, dtype=torch.int64), torch.tensor([1]))
    ready, results = ctx.Queue(), ctx.Queue()
    roles = ["consumer"] * 3 + ["producer"] * 3
    processes = [
        ctx.Process(target=workers.block_then_report, args=(rb, role, ready, results))
        for role in roles
    ]
    try:
        for p in processes:
            p.start()
        assert len(collect(ready, len(roles), time.monotonic() + DEADLINE_S)) == len(roles)
        wait_for_sleepers(rb, 3, 3)  # all six wait
        assert results.empty(), "a blocking call returned before stop()"
        rb.stop()
        released = collect(results, len(roles), time.monotonic() + DEADLINE_S)
    finally:
        shutdown(rb, processes)
    assert len(released) == len(roles), f"only {len(released)} of 6 released"
    assert sorted(released, key=str) == sorted(
        [("consumer", None)] * 3 + [("producer", False)] * 3, key=str
    )
    assert rb._sync.sleepers() == (0, 0)
    # stopped: later blocking calls are skipped even where they could proceed
    assert rb.enqueue(torch.ones(1, dtype=torch.int64), torch.tensor([0]), blocking=True) is False
    rb.revive()
    assert rb.enqueue(torch.ones(1, dtype=torch.int64), torch.tensor([0]), blocking=True) is True
    assert rb.dequeue(torch.tensor([0, 1]), n=1, blocking=True).tolist() == [[1], [0]]


def test_spawned_children_share_buffer():
    """Children started with spawn receive the buffer pickled and share its
    memory, lock and conditions: a blocking producer and a blocking consumer
    move 2,000 items through 3 slots per environment, the parent sees the
    final positions, and stop() releases the consumer's next blocking call."""
    ctx = multiprocessing.get_context("spawn")
    items_per_env, envs = 1000, [0, 1]
    rb = RingBuffer(SPEC, 3, max_length=3, allow_multiprocess=True)
    results = ctx.Queue()
    processes = [
        ctx.Process(target=workers.produce, args=(rb, envs, items_per_env, results)),
        ctx.Process(target=workers.consume, args=(rb, envs, items_per_env, 2, results, True)),
    ]
    try:
        for p in processes:
            p.start()
        reports = collect(results, 2, time.monotonic() + DEADLINE_S)
        kinds = sorted(kind for kind, _, _ in reports)
        assert kinds == ["consumed", "produced"], reports
        assert rb.get_current_position().tolist() == [items_per_env, items_per_env, 0]
        # the consumer now blocks on an empty environment until stop()
        wait_for_sleepers(rb, 0, 1)
        rb.stop()
        after = collect(results, 1, time.monotonic() + DEADLINE_S)
    finally:
        shutdown(rb, processes)
    assert after == [("after stop", envs, None)]
    ids = next(ids for kind, _, ids in reports if kind == "consumed")
    for row, env in zip(ids, envs):
        np.testing.assert_array_equal(row, env * items_per_env + np.arange(items_per_env))


@needs_fork
def test_child_writes_reach_parent_memory():
    """A child's non-blocking enqueue lands in the parent's storage: the
    storage is in shared memory, not copied."""
    rb = RingBuffer(SPEC, 2, max_length=4, allow_multiprocess=True)
    assert produce_in_forked_child(rb, [1], 3) == [("produced", [1], 3)]
    assert rb.get_current_position().tolist() == [0, 3]
    assert rb.dequeue(torch.tensor([1]), n=3)["id"].tolist() == [[3, 4, 5]]


@pytest.mark.parametrize("role", ["consumer", "producer"])
def test_stop_releases_a_blocked_call_even_if_revived_at_once(role):
    """A call blocked when stop() comes returns (dequeue -> None, enqueue ->
    False) even when revive() follows before it wakes up; after revive()
    blocking calls work again. Threads share the buffer's lock and
    conditions as processes do; a spy on the readiness check tells when the
    call has looked at the buffer and is about to wait (stop() takes the lock,
    so it runs only once the call waits)."""
    rb = RingBuffer(TensorSpec((), torch.int64), 1, max_length=1, allow_multiprocess=True)
    if role == "producer":
        rb.enqueue(torch.tensor([7]))  # full: the next blocking enqueue waits
    checked = threading.Event()
    check_name = "_has_data" if role == "consumer" else "_has_space"
    check = getattr(rb, check_name)

    def spy(*args):
        ready = check(*args)
        checked.set()
        return ready

    setattr(rb, check_name, spy)
    results = []
    if role == "consumer":
        call = lambda: results.append(rb.dequeue(blocking=True))  # noqa: E731
    else:
        call = lambda: results.append(rb.enqueue(torch.tensor([8]), blocking=True))  # noqa: E731
    blocked = threading.Thread(target=call, daemon=True)
    blocked.start()
    assert checked.wait(DEADLINE_S)
    rb.stop()
    rb.revive()
    blocked.join(timeout=DEADLINE_S / 10)
    released = not blocked.is_alive()
    if not released:  # release it for good before failing
        rb.stop()
        blocked.join(timeout=DEADLINE_S / 10)
        rb.revive()
    assert released, "a call blocked at stop() kept waiting after revive()"
    assert results == [None if role == "consumer" else False]
    assert rb.get_current_position().tolist() == [0 if role == "consumer" else 1]
    # revived: blocking calls go through again
    if role == "producer":
        assert rb.dequeue(blocking=True).tolist() == [[7]]
    assert rb.enqueue(torch.tensor([9]), blocking=True) is True
    assert rb.dequeue(blocking=True).tolist() == [[9]]


@needs_fork
def test_assign_loaded_buffer_stays_shared():
    """load_state_dict(assign=True) replaces the storage with the
    checkpoint's tensors; a child's writes still reach the parent."""
    source = RingBuffer(SPEC, 2, max_length=4)
    source.enqueue(workers.item_batch([0, 1], 0, 100))
    rb = RingBuffer(SPEC, 2, max_length=4, allow_multiprocess=True)
    rb.load_state_dict({k: v.clone() for k, v in source.state_dict().items()}, assign=True)
    assert produce_in_forked_child(rb, [1], 2) == [("produced", [1], 2)]
    assert rb.get_current_position().tolist() == [1, 3]
    assert rb.dequeue(torch.tensor([1]), n=3)["id"].tolist() == [[100, 2, 3]]


def checkpoint_with_item(value):
    """A checkpoint of a 2-environment buffer of 2 slots whose environment 0
    holds one item, ``value``."""
    source = RingBuffer(TensorSpec((), torch.int64), 2, max_length=2)
    source.enqueue(torch.tensor([value]), torch.tensor([0]))
    return {k: v.clone() for k, v in source.state_dict().items()}


@pytest.mark.parametrize("assign", [False, True])
def test_load_state_dict_wakes_a_blocked_dequeue(assign):
    """A dequeue waiting for data returns the items a load_state_dict brings
    (the load holds the lock and wakes the waiting calls)."""
    rb = RingBuffer(TensorSpec((), torch.int64), 2, max_length=2, allow_multiprocess=True)
    checked = threading.Event()
    has_data = rb._has_data

    def spy(*args):
        ready = has_data(*args)
        checked.set()
        return ready

    rb._has_data = spy
    results = []
    blocked = threading.Thread(
        target=lambda: results.append(rb.dequeue(torch.tensor([0]), blocking=True)), daemon=True
    )
    blocked.start()
    assert checked.wait(DEADLINE_S)
    rb.load_state_dict(checkpoint_with_item(42), assign=assign)
    blocked.join(timeout=DEADLINE_S / 10)
    if blocked.is_alive():  # release it before failing
        rb.stop()
        blocked.join(timeout=DEADLINE_S / 10)
    assert [r.tolist() for r in results] == [[[42]]]


@needs_fork
def test_load_state_dict_assign_reaches_running_children():
    """Children already running keep sharing the buffer's memory after
    load_state_dict(assign=True): a child blocked on an empty environment
    receives the loaded item."""
    ctx = multiprocessing.get_context("fork")
    rb = RingBuffer(TensorSpec((), torch.int64), 2, max_length=2, allow_multiprocess=True)
    ready, results = ctx.Queue(), ctx.Queue()
    child = ctx.Process(target=workers.block_then_report, args=(rb, "consumer", ready, results))
    try:
        child.start()
        assert collect(ready, 1, time.monotonic() + DEADLINE_S) == ["consumer"]
        rb.load_state_dict(checkpoint_with_item(42), assign=True)
        got = collect(results, 1, time.monotonic() + DEADLINE_S / 5)
    finally:
        shutdown(rb, [child])
    assert got == [("consumer", [[42]])]
    assert rb.get_current_position().tolist() == [1, 0]
    assert not rb.has_data(torch.tensor([0]), 1)


@needs_fork
def test_state_dict_of_shared_buffer_is_a_consistent_snapshot():
    """Checkpoints taken while another process enqueues and dequeues: in each,
    every stored position p of environment e holds the item of step p (id
    e * steps + p, with its payload), i.e. positions and data are of one moment."""
    ctx = multiprocessing.get_context("fork")
    steps, max_length = 3000, 8
    env_ids = torch.arange(4)
    rb = RingBuffer(SPEC, 4, max_length=max_length, allow_multiprocess=True)
    results = ctx.Queue()
    child = ctx.Process(target=workers.churn, args=(rb, env_ids, steps, results), daemon=True)
    child.start()
    snapshots = []
    try:
        while child.is_alive() and len(snapshots) < 400:
            snapshots.append(rb.state_dict())
        assert collect(results, 1, time.monotonic() + DEADLINE_S) == [("churned", steps)]
    finally:
        shutdown(rb, [child])
    snapshots.append(rb.state_dict())
    id_key = next(k for k in snapshots[0] if k.endswith("_id"))
    payload_key = next(k for k in snapshots[0] if k.endswith("_payload"))
    for state in snapshots:
        for env in env_ids.tolist():
            pos = int(state["_current_pos"][env])
            size = int(state["_current_size"][env])
            assert 0 <= size <= max_length and size <= pos
            for p in range(pos - size, pos):
                stored = state[id_key][env, p % max_length]
                assert int(stored) == env * steps + p
                expected = torch.tensor([1.0, -1.0, 0.5], dtype=torch.float64) * float(stored)
                assert torch.equal(state[payload_key][env, p % max_length], expected)
    # a snapshot is a copy: later changes to the buffer do not reach it
    last = snapshots[-1]
    before = {k: v.clone() for k, v in last.items()}
    rb.revive()
    rb.dequeue(env_ids, n=1)
    rb.enqueue(workers.item_batch(env_ids, steps, steps), env_ids)
    assert all(torch.equal(last[k], before[k]) for k in last)
    assert not torch.equal(rb.state_dict()["_current_pos"], last["_current_pos"])


@needs_fork
def test_checkpoint_saved_while_processes_write_restores_complete_items():
    """Checkpoints saved with torch.save while two processes enqueue and
    dequeue, each loaded into a new buffer: the new buffer returns, for every
    environment, consecutive whole items ending at the saved position."""
    ctx = multiprocessing.get_context("fork")
    steps, max_length = 2000, 8
    rb = RingBuffer(SPEC, 4, max_length=max_length, allow_multiprocess=True)
    results = ctx.Queue()
    children = [
        ctx.Process(target=workers.churn, args=(rb, ids, steps, results), daemon=True)
        for ids in (torch.tensor([0, 1]), torch.tensor([2, 3]))
    ]
    blobs = []
    try:
        for child in children:
            child.start()
        while any(c.is_alive() for c in children) and len(blobs) < 100:
            blob = io.BytesIO()
            torch.save(rb.state_dict(), blob)
            blobs.append(blob)
        assert collect(results, 2, time.monotonic() + DEADLINE_S) == [("churned", steps)] * 2
    finally:
        shutdown(rb, children)
    for blob in blobs:
        blob.seek(0)
        restored = RingBuffer(SPEC, 4, max_length=max_length)
        restored.load_state_dict(torch.load(blob, weights_only=True))
        pos = restored.get_current_position()
        first = restored.get_earliest_position(torch.arange(4))
        for env in range(4):
            n = int(pos[env] - first[env])
            ids = torch.tensor([env])
            if n == 0:
                continue
            out = restored.dequeue(ids, n=n)
            expected = env * steps + torch.arange(int(first[env]), int(pos[env]))
            assert torch.equal(out["id"][0], expected)
            whole = torch.stack([expected.double(), -expected.double(), expected.double() / 2], 1)
            assert torch.equal(out["payload"][0], whole)
