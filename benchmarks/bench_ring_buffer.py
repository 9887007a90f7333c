"""RingBuffer enqueue + dequeue throughput for 64 environments.

Run: python benchmarks/bench_ring_buffer.py [--quick] [--baseline SRC]

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
             the shared lock, wakeups), still in one process.

Four producer processes (fork), each owning 16 environments, and one consumer
(the main process) taking one item of all 64 environments per call:
  mp.Queue   a multiprocessing Queue carrying each producer's batch (NumPy
             arrays, pickled through the queue's pipe);
  alf-mp     blocking RingBuffer.enqueue / dequeue.

One producer (fork) and one consumer (the main process) hand over single
items through 3 slots of one environment, so that every call waits for the
other process (the latency of a wakeup):
  mp.Queue   a multiprocessing Queue(maxsize=3) of one-element NumPy arrays;
  alf-mp     blocking RingBuffer.enqueue / dequeue.

Figures are items per second, wall-clock (median of repeats for the single
process, alternating the candidates' order; median of --runs timed runs for
the producers, default 1); "ratio" is candidate / baseline throughput. "CPU
us/item" is the CPU time spent per item by all the processes of a run (this
one and its children; median), which other load on the machine disturbs far
less than wall-clock time.

--baseline SRC also measures another version of alf.utils.data_buffer in the
same run: SRC is a package source folder holding alf/utils/data_buffer.py
(e.g. a read-only checkout of the main branch,
/work/main/packages/alf-buffers/src). Its data_buffer.py and _buffer_*.py
helpers are loaded under a private package name, so both versions share one
process, and every RingBuffer row is measured for both, interleaved (single
process: in the same repeat loop; producers: alternating timed runs, --runs
of each, median). The first "vs old" is this version's / the baseline's
throughput, the second the baseline's / this version's CPU time per item
(above 1: this version is cheaper).

First, the setting of issue 16's table, as time per step: 64 environments,
one float32[64] item each, max_length 1024, one enqueue + one dequeue of all
environments per step; raw is the slice write + copying read above (one
tensor [64, 1024, 64]); alf a RingBuffer of that TensorSpec (and of a
one-key dict of it). Medians and 10th percentiles of interleaved repeats,
and the median of the per-repeat ratios to raw (with --baseline, also
the baseline's RingBuffer, rows 'old ...').
"""

import argparse
import os
import re
import resource
import statistics
import sys
import time
import types

import numpy as np
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


def load_baseline(src):
    """``RingBuffer`` of the data_buffer module under ``src`` (a source folder
    holding ``alf/utils/data_buffer.py``), loaded under a private package."""
    folder = os.path.join(src, "alf", "utils")
    package = "_baseline_alf_buffers"
    sys.modules[package] = types.ModuleType(package)
    sys.modules[package].__path__ = []
    names = sorted(n[:-3] for n in os.listdir(folder) if re.fullmatch(r"_buffer_\w+\.py", n))
    pending = names + ["data_buffer"]
    # helpers import each other: load those whose imports are loaded first
    while pending:
        for name in pending:
            with open(os.path.join(folder, name + ".py")) as f:
                code = f.read()
            needed = re.findall(r"from alf\.utils\.(_buffer_\w+) import", code)
            if all(f"{package}.{n}" in sys.modules for n in needed):
                break
        else:
            raise RuntimeError(f"cannot order the imports of {pending} in {folder}")
        code = re.sub(r"from alf\.utils\.(_buffer_\w+) import", rf"from {package}.\1 import", code)
        module = types.ModuleType(f"{package}.{name}")
        module.__file__ = os.path.join(folder, name + ".py")
        sys.modules[module.__name__] = module
        exec(compile(code, module.__file__, "exec"), module.__dict__)
        pending.remove(name)
    return sys.modules[f"{package}.data_buffer"].RingBuffer


def make_batch(n):
    return {
        "obs": torch.randn(n, 64),
        "action": torch.randint(0, 18, (n,)),
        "reward": torch.randn(n),
    }


def single_process(steps, repeats, classes):
    """Items/s of each candidate: ``raw`` and, for each ``(label, RingBuffer
    class)`` of ``classes``, ``alf``, ``alf-ids`` and ``alf-mp`` (the label
    prefixed), timed in one interleaved loop."""
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

    candidates = {"raw": run_raw}
    for label, cls in classes:
        candidates[label + "alf"] = run_ring(cls(SPEC, N_ENVS, MAX_LENGTH))
        candidates[label + "alf-ids"] = run_ring(
            cls(SPEC, N_ENVS, MAX_LENGTH), torch.arange(N_ENVS)
        )
        candidates[label + "alf-mp"] = run_ring(
            cls(SPEC, N_ENVS, MAX_LENGTH, allow_multiprocess=True)
        )
    times = {name: [] for name in candidates}
    cpu = {name: [] for name in candidates}
    order = list(candidates)
    for r in range(repeats):
        for name in order if r % 2 == 0 else order[::-1]:  # no candidate always first
            start, start_cpu = time.perf_counter(), time.process_time()
            candidates[name]()
            cpu[name].append(time.process_time() - start_cpu)
            times[name].append(time.perf_counter() - start)
    items = steps * N_ENVS
    return {
        name: (items / statistics.median(times[name]), statistics.median(cpu[name]) / items)
        for name in candidates
    }


def cpu_seconds():
    """CPU time of this process and of its waited-for children so far."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def table_case(steps, repeats, classes):
    """{name: (median us/step, p10 us/step, paired ratio to raw)} for the
    issue-16 setting (see the module docstring): ``raw`` and, for each
    ``(label, RingBuffer class)`` of ``classes``, ``alf`` and ``alf dict``
    (the label prefixed)."""
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

    candidates = {"raw": run_raw}
    for label, cls in classes:
        candidates[label + "alf"] = run_ring(cls(spec, n_envs, length), batch)
        candidates[label + "alf dict"] = run_ring(
            cls({"obs": spec}, n_envs, length), {"obs": batch}
        )
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


def run_queue(steps):
    """Items/s of the mp.Queue baseline (one timed run)."""
    ctx = tmp.get_context("fork")
    q = ctx.Queue(maxsize=MAX_LENGTH)
    procs = [ctx.Process(target=queue_producer, args=(q, p, steps)) for p in range(N_PRODUCERS)]
    start, start_cpu = time.perf_counter(), cpu_seconds()
    for p in procs:
        p.start()
    for _ in range(steps * N_PRODUCERS):
        p_id, batch = q.get(timeout=120)
        {k: torch.from_numpy(v) for k, v in batch.items()}
    rate = steps * N_ENVS / (time.perf_counter() - start)
    for p in procs:
        p.join(timeout=30)
    return rate, (cpu_seconds() - start_cpu) / (steps * N_ENVS)


def run_ring_producers(cls, steps):
    """Items/s of four blocking producers and one blocking consumer on a
    ``cls`` buffer (one timed run)."""
    ctx = tmp.get_context("fork")
    per = N_ENVS // N_PRODUCERS
    envs = [list(range(p * per, (p + 1) * per)) for p in range(N_PRODUCERS)]
    rb = cls(SPEC, N_ENVS, MAX_LENGTH, allow_multiprocess=True)
    procs = [ctx.Process(target=ring_producer, args=(rb, e, steps)) for e in envs]
    start, start_cpu = time.perf_counter(), cpu_seconds()
    for p in procs:
        p.start()
    for _ in range(steps):
        rb.dequeue(blocking=True)
    rate = steps * N_ENVS / (time.perf_counter() - start)
    for p in procs:
        p.join(timeout=30)
    return rate, (cpu_seconds() - start_cpu) / (steps * N_ENVS)


def handoff_producer(rb, steps):
    torch.set_num_threads(1)
    item = torch.zeros(1, dtype=torch.int64)
    for _ in range(steps):
        rb.enqueue(item, blocking=True)


def queue_handoff_producer(q, steps):
    torch.set_num_threads(1)
    item = np.zeros(1, dtype=np.int64)  # a tensor would be sent as shared memory
    for _ in range(steps):
        q.put(item)


def run_handoff(cls, steps):
    """Items/s of single items through 3 slots, one producer, one consumer
    (``cls`` None: a multiprocessing Queue)."""
    ctx = tmp.get_context("fork")
    if cls is None:
        q = ctx.Queue(maxsize=3)
        proc = ctx.Process(target=queue_handoff_producer, args=(q, steps))
        take = lambda: q.get(timeout=120)  # noqa: E731
    else:
        rb = cls(TensorSpec((), torch.int64), 1, 3, allow_multiprocess=True)
        proc = ctx.Process(target=handoff_producer, args=(rb, steps))
        take = lambda: rb.dequeue(blocking=True)  # noqa: E731
    start, start_cpu = time.perf_counter(), cpu_seconds()
    proc.start()
    for _ in range(steps):
        take()
    rate = steps / (time.perf_counter() - start)
    proc.join(timeout=30)
    return rate, (cpu_seconds() - start_cpu) / steps


def medians(runs, candidates):
    """(median items/s, median CPU s per item) of each candidate over
    ``runs`` timed runs, alternating the candidates' order."""
    got = {name: [] for name in candidates}
    order = list(candidates)
    for r in range(runs):
        for name in order if r % 2 == 0 else order[::-1]:
            got[name].append(candidates[name]())
    return {
        name: tuple(statistics.median(v[i] for v in values) for i in range(2))
        for name, values in got.items()
    }


def handoffs(steps, classes, runs):
    candidates = {"mp.Queue": lambda: run_handoff(None, steps)}
    for label, cls in classes:
        candidates[label + "alf-mp"] = lambda cls=cls: run_handoff(cls, steps)
    return medians(runs, candidates)


def with_producers(steps, classes, runs):
    candidates = {"mp.Queue": lambda: run_queue(steps)}
    for label, cls in classes:
        candidates[label + "alf-mp"] = lambda cls=cls: run_ring_producers(cls, steps)
    return medians(runs, candidates)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and repeats")
    parser.add_argument(
        "--baseline",
        metavar="SRC",
        help="also measure the alf.utils.data_buffer under this source folder (rows 'old ...')",
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=None,
        help="timed runs of each producer setting (default 1; 5 with --baseline)",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    steps, repeats = (200, 3) if args.quick else (1000, 9)
    classes = [("", RingBuffer)]
    if args.baseline:
        classes.append(("old ", load_baseline(args.baseline)))
    runs = args.runs or (5 if args.baseline else 1)
    print(f"torch {torch.__version__}; {N_ENVS} environments, max_length {MAX_LENGTH}")
    if args.baseline:
        print(f"baseline ('old'): {os.path.abspath(args.baseline)}")
    print()
    header = (
        f"{'setting':28} {'candidate':>13} {'items/s':>11} {'ratio':>6} {'vs old':>6} "
        f"{'CPU us/item':>11} {'vs old':>6}"
    )
    print("issue 16 setting: 64 environments, float32[64], L=1024")
    print(f"{'candidate':>14} {'us/step':>8} {'p10':>7} {'/raw':>6}")
    for name, (med, p10, paired) in table_case(steps, repeats * 3, classes).items():
        print(f"{name:>14} {med:8.2f} {p10:7.2f} {paired:6.2f}")
    print()
    print(header)
    print("-" * len(header))

    def table(setting, results, base):
        for name, (rate, cpu) in results.items():
            old = results.get("old " + name) if name.startswith("alf") else None
            vs = f"{rate / old[0]:6.3f}" if old else " " * 6
            vs_cpu = f"{old[1] / cpu:6.3f}" if old else ""
            print(
                f"{setting:28} {name:>13} {rate:11,.0f} {rate / results[base][0]:6.2f} {vs} "
                f"{cpu * 1e6:11.3f} {vs_cpu}"
            )

    table("1 process, enqueue+dequeue", single_process(steps, repeats, classes), "raw")
    table("4 producers + 1 consumer", with_producers(steps * 2, classes, runs), "mp.Queue")
    table("1 producer, 1 slot handoff", handoffs(steps * 5, classes, runs), "mp.Queue")


if __name__ == "__main__":
    main()
