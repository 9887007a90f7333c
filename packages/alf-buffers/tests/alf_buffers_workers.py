"""Process targets of the multi-process tests (a module of its own so that
children started with ``spawn`` can import them)."""

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
