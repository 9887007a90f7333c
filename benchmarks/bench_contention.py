"""Value ops and DataBuffer.get_batch while other processes keep the cores busy.

Run: python benchmarks/bench_contention.py [--quick] [--load-procs 4] [--load-threads 2]

An RL learner shares its cores with environment workers. Each phase times
the candidates below one call at a time, interleaved in rounds (every
candidate once per round, so bursts of outside load hit all of them), and
reports the median, the 90th percentile and the maximum per call:

* GAE and discounted_return at T=1000, B=64 (float32, ~1% episode ends):
  ``alf`` (``alf.utils.value_ops``), the per-step ``torch loop`` of
  bench_value_ops (one Python step per time step) and a plain single-threaded
  ``numpy loop`` (the same recursion over NumPy rows, as SB3 computes it);
* ``get_batch(256)`` of float32[64] from a full 100k-item DataBuffer beside
  raw ``randint`` + ``index_select`` on the same storage.

Phases: ``quiet`` (no load started by this script; other users of the
machine are not controlled: the load average is printed) and ``loaded``
(``--load-procs`` processes, each running ``--load-threads``-thread torch
matrix products until the phase ends), each with torch's intra-op thread
count at 1 and at the default of the machine. The last table gives, per
candidate, the loaded / quiet ratio of the medians and of the p90s: a path
that degrades much more than the single-threaded loops do shows there.
"""

import argparse
import functools
import multiprocessing
import os
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_value_ops import LAMBDA, LAST, loop_gae, loop_return, make_data  # noqa: E402

from alf.tensor_specs import TensorSpec  # noqa: E402
from alf.utils import value_ops  # noqa: E402
from alf.utils.data_buffer import DataBuffer  # noqa: E402

T, B = 1000, 64


def burn(stop, threads, deadline_s):
    """A load process: ``threads``-thread matrix products until ``stop`` is
    set (or ``deadline_s`` passes: a watchdog against a forgotten child)."""
    torch.set_num_threads(threads)
    a = torch.randn(384, 384)
    end = time.monotonic() + deadline_s
    while not stop.is_set() and time.monotonic() < end:
        for _ in range(8):
            a = torch.tanh(a @ a)


def numpy_gae(rewards, values, step_types, discounts, td_lambda):
    """Single-threaded NumPy per-step loop (SB3's algorithm, ALF's layout)."""
    not_last = (step_types != LAST).astype(np.float64)
    adv = np.zeros_like(values, dtype=np.float64)
    acc = np.zeros(values.shape[1])
    for t in range(values.shape[0] - 2, -1, -1):
        delta = rewards[t + 1] + discounts[t + 1] * values[t + 1] - values[t]
        acc = not_last[t] * (delta + discounts[t + 1] * td_lambda * acc)
        adv[t] = acc
    return adv[:-1].astype(values.dtype)


def numpy_return(rewards, values, step_types, discounts):
    not_last = (step_types != LAST).astype(np.float64)
    ret = np.zeros_like(values, dtype=np.float64)
    acc = values[-1].astype(np.float64)
    for t in range(values.shape[0] - 2, -1, -1):
        acc = rewards[t + 1] + discounts[t + 1] * acc
        acc = not_last[t] * acc + (1 - not_last[t]) * values[t]
        ret[t] = acc
    return ret[:-1].astype(values.dtype)


def candidates():
    data = make_data(T, B)
    np_data = tuple(x.numpy() for x in data)
    expected = loop_gae(*data, LAMBDA)
    torch.testing.assert_close(
        value_ops.generalized_advantage_estimation(*data, LAMBDA), expected, rtol=1e-4, atol=1e-4
    )
    np.testing.assert_allclose(numpy_gae(*np_data, LAMBDA), expected.numpy(), atol=1e-4)
    np.testing.assert_allclose(
        numpy_return(*np_data), loop_return(*data).numpy(), rtol=1e-4, atol=1e-4
    )
    spec = TensorSpec((64,), torch.float32)
    db = DataBuffer(spec, 100_000)
    db.add_batch(torch.randn(100_000, 64))
    ring = db._rings[0]
    return {
        "GAE alf": functools.partial(value_ops.generalized_advantage_estimation, *data, LAMBDA),
        "GAE torch loop": functools.partial(loop_gae, *data, LAMBDA),
        "GAE numpy loop": functools.partial(numpy_gae, *np_data, LAMBDA),
        "return alf": functools.partial(value_ops.discounted_return, *data),
        "return torch loop": functools.partial(loop_return, *data),
        "return numpy loop": functools.partial(numpy_return, *np_data),
        "get_batch alf": functools.partial(db.get_batch, 256),
        "get_batch raw": lambda: torch.index_select(ring, 0, torch.randint(100_000, (256,))),
    }


def phase(cands, rounds):
    """Per-call seconds of each candidate over ``rounds`` interleaved rounds
    (the fast ones called 5 times per round: more samples, same time)."""
    times = {name: [] for name in cands}
    for fn in cands.values():
        fn()
    for _ in range(rounds):
        for name, fn in cands.items():
            for _ in range(1 if "loop" in name else 5):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    return times


def summary(samples):
    s = sorted(samples)
    return statistics.median(s), s[(len(s) * 9) // 10], s[-1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--load-procs", type=int, default=4)
    parser.add_argument("--load-threads", type=int, default=2)
    parser.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=None,
        help="intra-op thread counts to measure (default: 1 and the default)",
    )
    args = parser.parse_args()
    rounds = 8 if args.quick else 30
    default_threads = torch.get_num_threads()
    thread_counts = args.threads or sorted({1, default_threads})
    cands = candidates()
    print(
        f"torch {torch.__version__}, {os.cpu_count()} CPUs, default intra-op threads "
        f"{default_threads}; T={T}, B={B}; get_batch(256) of 100k x float32[64]; "
        f"{rounds} interleaved rounds per phase"
    )
    results = {}
    ctx = multiprocessing.get_context("fork")
    for loaded in (False, True):
        stop = ctx.Event()
        procs = []
        if loaded:
            procs = [
                ctx.Process(target=burn, args=(stop, args.load_threads, 600), daemon=True)
                for _ in range(args.load_procs)
            ]
            for p in procs:
                p.start()
            time.sleep(1.0)  # let the load settle
        try:
            for threads in thread_counts:
                torch.set_num_threads(threads)
                load = os.getloadavg()[0]
                label = (
                    f"loaded ({args.load_procs} x {args.load_threads}-thread matmul)"
                    if loaded
                    else "quiet"
                )
                times = phase(cands, rounds)
                results[(loaded, threads)] = {k: summary(v) for k, v in times.items()}
                print(f"\n{label}, torch threads {threads}, load average {load:.1f}")
                print(f"{'candidate':>20} {'median ms':>10} {'p90 ms':>8} {'max ms':>8}")
                for name, (med, p90, top) in results[(loaded, threads)].items():
                    print(f"{name:>20} {med * 1e3:10.3f} {p90 * 1e3:8.3f} {top * 1e3:8.3f}")
        finally:
            stop.set()
            for p in procs:
                p.join(timeout=30)
                if p.is_alive():
                    p.kill()
    torch.set_num_threads(default_threads)
    print("\nloaded / quiet (same thread count): ratio of medians, ratio of p90s")
    header = f"{'candidate':>20}" + "".join(
        f" {f'{t} thr med':>10} {f'{t} thr p90':>10}" for t in thread_counts
    )
    print(header)
    for name in cands:
        cells = []
        for t in thread_counts:
            q, lo = results[(False, t)][name], results[(True, t)][name]
            cells.append(f" {lo[0] / q[0]:10.2f} {lo[1] / q[1]:10.2f}")
        print(f"{name:>20}" + "".join(cells))


if __name__ == "__main__":
    main()
