"""RingBuffer enqueue + dequeue throughput for 64 environments.

Run: python benchmarks/bench_ring_buffer.py [--quick]

Items are obs float32[64] + int64 action + float32 reward.

Single process, one step = enqueue one item into each of the 64 environments
and dequeue it again:
  raw        slice assignment and a copying read on preallocated tensors
             [64, max_length, ...] at one shared position (no bookkeeping);
  alf        RingBuffer(allow_multiprocess=False).enqueue + .dequeue (env_ids
             None: all environments);
  alf-ids    the same with env_ids=torch.arange(64) given explicitly (the
             general path: flat index_copy_ / index_select, no slot shortcut);
  alf-mp     RingBuffer(allow_multiprocess=True), same calls (shared memory,
             lock, condition notifications), still in one process.

Four producer processes (fork), each owning 16 environments, and one consumer
(the main process) taking one item of all 64 environments per call:
  mp.Queue   a multiprocessing Queue carrying each producer's batch (NumPy
             arrays, pickled through the queue's pipe);
  alf-mp     blocking RingBuffer.enqueue / dequeue.

Figures are items per second (median of repeats for the single process; one
timed run for the producers); "ratio" is candidate / baseline throughput.

First, the setting of issue 16's table, as time per step: 64 environments,
one float32[64] item each, max_length 1024, one enqueue + one dequeue of all
environments per step; raw is the slice write + copying read above (one
tensor [64, 1024, 64]); alf a RingBuffer of that TensorSpec (and of a
one-key dict of it). Medians and 10th percentiles of interleaved repeats,
and the median of the per-repeat ratios to raw.
"""

import argparse
import statistics
import time

import torch
import torch.multiprocessing as tmp

from alf.tensor_specs import TensorSpec
from alf.utils.data_buffer import RingBuffer

N_ENVS, MAX_LENGTH, N_PRODUCERS = 64, 64, 4
SPEC = {
    "obs": TensorSpec((64,), torch.float32),
    "action": TensorSpec((), torch.int64),
    "reward": TensorSpec((), torch.float32),
}


def make_batch(n):
    return {
        "obs": torch.randn(n, 64),
        "action": torch.randint(0, 18, (n,)),
        "reward": torch.randn(n),
    }


def single_process(steps, repeats):
    batch = make_batch(N_ENVS)
    raw = {k: s.zeros((N_ENVS, MAX_LENGTH)) for k, s in SPEC.items()}

    def run_raw():
        for t in range(steps):
            i = t % MAX_LENGTH
            for k, v in batch.items():
                raw[k][:, i] = v
            {k: v[:, i].clone() for k, v in raw.items()}

    def run_ring(rb, env_ids=None):
        def loop():
            for _ in range(steps):
                rb.enqueue(batch, env_ids)
                rb.dequeue(env_ids)

        return loop

    candidates = {
        "raw": run_raw,
        "alf": run_ring(RingBuffer(SPEC, N_ENVS, MAX_LENGTH)),
        "alf-ids": run_ring(RingBuffer(SPEC, N_ENVS, MAX_LENGTH), torch.arange(N_ENVS)),
        "alf-mp": run_ring(RingBuffer(SPEC, N_ENVS, MAX_LENGTH, allow_multiprocess=True)),
    }
    times = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: steps * N_ENVS / statistics.median(t) for name, t in times.items()}


def table_case(steps, repeats):
    """{name: (median us/step, p10 us/step, paired ratio to raw)} for the
    issue-16 setting (see the module docstring)."""
    n_envs, length = 64, 1024
    spec = TensorSpec((64,), torch.float32)
    batch = torch.randn(n_envs, 64)
    raw = torch.zeros(n_envs, length, 64)

    def run_raw():
        for t in range(steps):
            i = t % length
            raw[:, i] = batch
            raw[:, i].clone()

    def run_ring(rb, item):
        def loop():
            for _ in range(steps):
                rb.enqueue(item)
                rb.dequeue()

        return loop

    candidates = {
        "raw": run_raw,
        "alf": run_ring(RingBuffer(spec, n_envs, length), batch),
        "alf dict": run_ring(RingBuffer({"obs": spec}, n_envs, length), {"obs": batch}),
    }
    times = {name: [] for name in candidates}
    for fn in candidates.values():
        fn()
    for _ in range(repeats):
        for name, fn in candidates.items():
            start = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - start) / steps * 1e6)
    result = {}
    for name, t in times.items():
        ordered = sorted(t)
        paired = statistics.median(a / b for a, b in zip(t, times["raw"]))
        result[name] = (statistics.median(t), ordered[len(t) // 10], paired)
    return result


def ring_producer(rb, env_ids, steps):
    torch.set_num_threads(1)
    batch = make_batch(len(env_ids))
    ids = torch.tensor(env_ids)
    for _ in range(steps):
        rb.enqueue(batch, ids, blocking=True)


def queue_producer(q, p, steps):
    torch.set_num_threads(1)
    batch = {k: v.numpy() for k, v in make_batch(N_ENVS // N_PRODUCERS).items()}
    for _ in range(steps):
        q.put((p, batch))


def with_producers(steps):
    ctx = tmp.get_context("fork")
    per = N_ENVS // N_PRODUCERS
    envs = [list(range(p * per, (p + 1) * per)) for p in range(N_PRODUCERS)]
    results = {}

    q = ctx.Queue(maxsize=MAX_LENGTH)
    procs = [ctx.Process(target=queue_producer, args=(q, p, steps)) for p in range(N_PRODUCERS)]
    start = time.perf_counter()
    for p in procs:
        p.start()
    for _ in range(steps * N_PRODUCERS):
        p_id, batch = q.get(timeout=120)
        {k: torch.from_numpy(v) for k, v in batch.items()}
    results["mp.Queue"] = steps * N_ENVS / (time.perf_counter() - start)
    for p in procs:
        p.join(timeout=30)

    rb = RingBuffer(SPEC, N_ENVS, MAX_LENGTH, allow_multiprocess=True)
    procs = [ctx.Process(target=ring_producer, args=(rb, e, steps)) for e in envs]
    start = time.perf_counter()
    for p in procs:
        p.start()
    for _ in range(steps):
        rb.dequeue(blocking=True)
    results["alf-mp"] = steps * N_ENVS / (time.perf_counter() - start)
    for p in procs:
        p.join(timeout=30)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and repeats")
    args = parser.parse_args()
    torch.set_num_threads(1)
    steps, repeats = (200, 3) if args.quick else (1000, 9)
    print(f"torch {torch.__version__}; issue 16 setting: 64 environments, float32[64], L=1024")
    print(f"{'candidate':>9} {'us/step':>8} {'p10':>7} {'/raw':>6}")
    for name, (med, p10, paired) in table_case(steps, repeats * 3).items():
        print(f"{name:>9} {med:8.2f} {p10:7.2f} {paired:6.2f}")
    print(f"\ntorch {torch.__version__}; {N_ENVS} environments, max_length {MAX_LENGTH}\n")
    header = f"{'setting':28} {'candidate':>9} {'items/s':>11} {'ratio':>6}"
    print(header)
    print("-" * len(header))
    single = single_process(steps, repeats)
    for name, rate in single.items():
        print(
            f"{'1 process, enqueue+dequeue':28} {name:>9} {rate:11,.0f} {rate / single['raw']:6.2f}"
        )
    multi = with_producers(steps * 2)
    for name, rate in multi.items():
        print(
            f"{'4 producers + 1 consumer':28} {name:>9} {rate:11,.0f} "
            f"{rate / multi['mp.Queue']:6.2f}"
        )


if __name__ == "__main__":
    main()
