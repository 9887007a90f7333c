"""Process targets of the multi-process tests (a module of its own so that
children started with ``spawn`` can import them)."""

import faulthandler
import signal
import time
import warnings

import numpy as np
import torch


def item_batch(env_ids, step, items_per_env):
    """Items of ``step`` for ``env_ids``: id = env * items_per_env + step and
    a payload derived from the id (a torn write would break the relation)."""
    ids = torch.as_tensor(env_ids, dtype=torch.int64) * items_per_env + step
    payload = torch.stack([ids.double(), -ids.double(), ids.double() * 0.5], dim=1)
    return {"id": ids, "payload": payload}


def produce(rb, env_ids, items_per_env, results):
    """Enqueue ``items_per_env`` steps into ``env_ids`` in blocking mode."""
    for step in range(items_per_env):
        if not rb.enqueue(item_batch(env_ids, step, items_per_env), env_ids, blocking=True):
            results.put(("producer stopped", env_ids, step))
            return
    results.put(("produced", env_ids, items_per_env))


def consume(rb, env_ids, items_per_env, n, results, then_block=False):
    """Dequeue every item of ``env_ids`` in blocking mode, ``n`` steps at a time;
    report the ids as an array ``[len(env_ids), items_per_env]``. With
    ``then_block``, then block on one more dequeue and report its result."""
    chunks = []
    for _ in range(items_per_env // n):
        out = rb.dequeue(env_ids, n=n, blocking=True)
        if out is None:
            results.put(("consumer stopped", env_ids, None))
            return
        ids = out["id"]
        expected = torch.stack([ids.double(), -ids.double(), ids.double() * 0.5], dim=-1)
        if not torch.equal(out["payload"], expected):
            results.put(("torn item", env_ids, None))
            return
        chunks.append(ids.numpy())
    results.put(("consumed", env_ids, np.concatenate(chunks, axis=1)))
    if then_block:
        results.put(("after stop", env_ids, rb.dequeue(env_ids, n=1, blocking=True)))


def block_then_report(rb, role, ready, results):
    """Announce readiness, then block (dequeue from the empty env 0 or enqueue
    into the full env 1) until stop() or data; report what the call returned
    (a dequeued tensor as a list: a tensor sent through a queue would need
    this process alive until it is received)."""
    ready.put(role)
    if role == "consumer":
        out = rb.dequeue(torch.tensor([0]), n=1, blocking=True)
    else:
        out = rb.enqueue(torch.ones(1, dtype=torch.int64), torch.tensor([1]), blocking=True)
    results.put((role, out.tolist() if isinstance(out, torch.Tensor) else out))


def churn(rb, env_ids, steps, results):
    """Enqueue steps ``0..steps-1`` into ``env_ids`` (non-blocking), dequeuing
    the oldest step whenever the rings are full, so that positions and data
    keep changing; report when done."""
    for step in range(steps):
        if not rb.has_space(env_ids):
            rb.dequeue(env_ids, n=1)
        rb.enqueue(item_batch(env_ids, step, steps), env_ids)
    results.put(("churned", steps))


# ---- the kill test (test_kill.py) ------------------------------------------
# A trial's progress is a shared int64 tensor ``progress`` of shape
# [4, num_envs]: per environment, the steps a producer started enqueuing
# (ATTEMPTED), those whose enqueue returned (COMMITTED), the items a consumer
# checked and counted (CONSUMED); in row HALT, column 0 tells non-blocking
# writers to end and column 1 says that a holder holds the buffer's lock.
ATTEMPTED, COMMITTED, CONSUMED, HALT = range(4)
ID_STRIDE = 1 << 32  # item id = env * ID_STRIDE + position


def kill_item_batch(env_ids, step, width):
    """Items of ``step`` for ``env_ids``: id = env * ID_STRIDE + step and a
    payload of ``width`` float64 all equal to the id (a torn write mixes two
    ids)."""
    ids = torch.as_tensor(env_ids, dtype=torch.int64) * ID_STRIDE + step
    return {"id": ids, "payload": ids.double()[:, None].expand(-1, width).contiguous()}


def kill_worker(conn):
    """Serve kill-test tasks received on ``conn`` until ``None``: each is
    ``(role, rb, env_ids, progress, options)``; "started" is sent back once
    it is received, and the report of the role when it ends (a killed worker
    sends nothing more)."""
    torch.set_num_threads(1)
    # SIGUSR1 prints this worker's Python stack (the kill test asks a worker
    # that hangs where it is before killing it)
    faulthandler.register(signal.SIGUSR1)
    # a survivor that takes over the lock of a killed holder warns: expected here
    warnings.filterwarnings("ignore", "RingBuffer: a process died", RuntimeWarning)
    conn.send("ready")
    while True:
        task = conn.recv()
        if task is None:
            return
        role, rb, env_ids, progress, options = task
        conn.send("started")
        report = ROLES[role](rb, env_ids, progress, **options)
        del rb, progress, task
        conn.send(report)


def _produce_until_stopped(rb, env_ids, progress, width, blocking):
    """Enqueue steps 0, 1, ... into ``env_ids`` until a blocking enqueue
    returns False (stopped) or, non-blocking, until the HALT flag."""
    ids = torch.as_tensor(env_ids)
    batches = [kill_item_batch(env_ids, 0, width), kill_item_batch(env_ids, 1, width)]
    step = 0
    while True:
        if not blocking and progress[HALT, 0]:
            return ("halted", step)
        batch = batches[step % 2]
        # prepared outside the call, so that most of the time goes to enqueue
        batch["id"].copy_(ids * ID_STRIDE + step)
        batch["payload"].copy_(batch["id"].double()[:, None].expand_as(batch["payload"]))
        progress[ATTEMPTED, ids] = step + 1
        if not rb.enqueue(batch, ids, blocking=blocking):
            progress[ATTEMPTED, ids] = step
            return ("stopped", step)
        progress[COMMITTED, ids] = step + 1
        step += 1


def kill_producer(rb, env_ids, progress, width):
    """Blocking producer: report ``("stopped", steps)`` once stopped."""
    return _produce_until_stopped(rb, env_ids, progress, width, blocking=True)


def kill_writer(rb, env_ids, progress, width):
    """Non-blocking producer overwriting the oldest items of full rings:
    report ``("halted", steps)`` at the HALT flag."""
    return _produce_until_stopped(rb, env_ids, progress, width, blocking=False)


def kill_consumer(rb, env_ids, progress, n):
    """Blocking consumer of ``n`` steps at a time from ``env_ids``: checks
    that each item is the next of its environment and whole, then counts it
    in CONSUMED; reports ``("stopped", items)`` once stopped, or what went
    wrong."""
    ids = torch.as_tensor(env_ids)
    expected = progress[CONSUMED, ids].clone()
    steps = torch.arange(n)
    while True:
        out = rb.dequeue(ids, n=n, blocking=True)
        if out is None:
            return ("stopped", int(expected.sum()))
        want = ids[:, None] * ID_STRIDE + expected[:, None] + steps
        if not torch.equal(out["id"], want):
            return ("out of order", out["id"].tolist(), want.tolist())
        if not torch.equal(out["payload"], out["id"].double()[..., None].expand_as(out["payload"])):
            return ("torn item", out["id"].tolist())
        expected += n
        progress[CONSUMED, ids] = expected


def kill_holder(rb, env_ids, progress, width):
    """Enqueue one step into ``env_ids``, wait until every environment has
    an item, then hold the buffer's lock (as an ``atomic`` method or a write
    in progress does) until killed."""
    ids = torch.as_tensor(env_ids)
    progress[ATTEMPTED, ids] = 1
    rb.enqueue(kill_item_batch(env_ids, 0, width), ids)
    progress[COMMITTED, ids] = 1
    while not bool((progress[COMMITTED] > 0).all()):  # the others have begun
        time.sleep(0.001)
    with rb._lock:
        progress[HALT, 1] = 1
        time.sleep(3600)
    return ("not killed",)


ROLES = {
    "producer": kill_producer,
    "writer": kill_writer,
    "consumer": kill_consumer,
    "holder": kill_holder,
}
