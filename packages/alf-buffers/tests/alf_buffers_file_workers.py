"""Process targets of the file-backed storage tests (a module of its own so
that children started with ``spawn`` can import them).

Item ``i`` is recognisable from its content alone: ``id = i`` and every
element of ``payload`` is a function of ``i`` (a half-written item breaks
the relation)."""

import torch

from alf.tensor_specs import TensorSpec
from alf.utils.data_buffer import DataBuffer

WIDTH = 2048  # float64 elements per item: 16 KiB, so writes take a while
SPEC = {"id": TensorSpec((), torch.int64), "payload": TensorSpec((WIDTH,), torch.float64)}


def payload_of(ids):
    """``[len(ids), WIDTH]`` float64: row ``k`` is ``ids[k] * 1.5 + column``."""
    return ids.double()[:, None] * 1.5 + torch.arange(WIDTH, dtype=torch.float64)


def items(first, count):
    ids = torch.arange(first, first + count, dtype=torch.int64)
    return {"id": ids, "payload": payload_of(ids)}


def add_batches_forever(folder, capacity, batch_size, started, completed):
    """Reopen the DataBuffer in ``folder`` and append numbered batches until
    killed, continuing the numbering from the reopened position.

    ``started``/``completed`` (shared int64 values) count the items whose
    ``add_batch`` began / returned."""
    # a forked child must not start OpenMP parallel regions (GNU OpenMP's
    # threads do not survive fork: large copies would hang)
    torch.set_num_threads(1)
    db = DataBuffer(SPEC, capacity, storage_dir=folder)
    next_id = int(db.current_pos)
    completed.value = next_id
    while True:
        started.value = next_id + batch_size
        db.add_batch(items(next_id, batch_size))
        next_id += batch_size
        completed.value = next_id


def enqueue_forever(rb, started, completed):
    """Enqueue one numbered item into every environment of the shared
    RingBuffer ``rb`` per step (environment ``e`` of step ``s`` gets id
    ``s * num_environments + e``), dequeuing two steps whenever the rings
    are full, until killed. ``started``/``completed`` count the steps whose
    enqueue began / returned."""
    torch.set_num_threads(1)  # see add_batches_forever
    n = rb.num_environments
    step = int(rb.get_current_position()[0])
    completed.value = step
    while True:
        if not rb.has_space(None):
            rb.dequeue(n=2)
        started.value = step + 1
        rb.enqueue(items(step * n, n))
        step += 1
        completed.value = step


def enqueue_steps(rb, steps, done):
    """Blocking-enqueue ``steps`` numbered steps into every environment of
    ``rb`` (as ``enqueue_forever`` numbers them); then set ``done``."""
    torch.set_num_threads(1)
    n = rb.num_environments
    for step in range(steps):
        rb.enqueue(items(step * n, n), blocking=True)
    done.set()
