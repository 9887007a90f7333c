"""DataBuffer.get_batch against the raw limit and TorchRL's replay buffer.

Run: python benchmarks/bench_data_buffer.py [--quick]

For each item kind, 256 items are sampled uniformly from a full buffer by
  raw       torch.randint + torch.index_select on preallocated tensors of the
            same size (one per leaf): the limit of uniform sampling;
  select    torch.index_select alone with indices drawn beforehand;
  alf       alf.utils.data_buffer.DataBuffer.get_batch(256);
  torchrl   torchrl ReplayBuffer(LazyTensorStorage, batch_size=256).sample()
            (skipped when torchrl is not installed).
The figure is the median time per call over interleaved repeats; "ratio" is
raw time / candidate time (throughput relative to raw, 1.0 = as fast as raw).

The memory part reports the bytes a DataBuffer stores against the bytes of
its payload (capacity x item size) and checks that adding data never
reallocates the storage.

--scaling: get_batch(256) of float32[64] items from full in-memory buffers of
100k, 1M and 10M items (2.56 GB; one buffer at a time, freed before the next),
beside raw randint + index_select on the buffer's own storage tensor (the
same pages); "flat" is each time over the same candidate's time at the
smallest capacity. Medians and 10th/90th percentiles of interleaved repeats.

--file-backed DIR: the same items in a file-backed DataBuffer
(storage_dir=DIR/bench_storage, --file-capacity items: 140M = 35.8 GB by
default, more than the free memory of the machine it was written for),
filled once, then get_batch(256) beside raw numpy.memmap fancy indexing
(np.memmap(file)[idx] after randint) of the same file, interleaved. The
storage folder is deleted at the end.
"""

import argparse
import gc
import os
import shutil
import statistics
import time

import numpy as np
import torch

from alf.tensor_specs import TensorSpec
from alf.utils.data_buffer import DataBuffer

try:
    from tensordict import TensorDict
    from torchrl.data import LazyTensorStorage, ReplayBuffer
except ImportError:  # the benchmark still measures raw vs alf
    ReplayBuffer = None

BATCH = 256

KINDS = {
    "float32[64]": ({"obs": TensorSpec((64,), torch.float32)}, 100_000),
    "uint8[4,84,84]": ({"obs": TensorSpec((4, 84, 84), torch.uint8)}, 10_000),
    "obs float32[64] + act + rew": (
        {
            "obs": TensorSpec((64,), torch.float32),
            "action": TensorSpec((), torch.int64),
            "reward": TensorSpec((), torch.float32),
        },
        100_000,
    ),
    "obs uint8[4,84,84] + act + rew": (
        {
            "obs": TensorSpec((4, 84, 84), torch.uint8),
            "action": TensorSpec((), torch.int64),
            "reward": TensorSpec((), torch.float32),
        },
        10_000,
    ),
}


def random_items(spec, n):
    out = {}
    for key, s in spec.items():
        if s.dtype == torch.uint8:
            out[key] = torch.randint(0, 256, (n,) + tuple(s.shape), dtype=torch.uint8)
        elif s.dtype == torch.int64:
            out[key] = torch.randint(0, 18, (n,) + tuple(s.shape))
        else:
            out[key] = torch.randn((n,) + tuple(s.shape))
    return out


def measure(candidates, repeats, calls):
    """Median seconds per call of each candidate, interleaving the repeats."""
    times = interleaved(candidates, repeats, calls, warmup=3)
    return {name: statistics.median(t) for name, t in times.items()}


def sampling_candidates(spec, capacity):
    data = random_items(spec, capacity)
    raw = {k: v.clone() for k, v in data.items()}
    fixed_idx = torch.randint(capacity, (BATCH,))

    def raw_sample():
        idx = torch.randint(capacity, (BATCH,))
        return {k: torch.index_select(v, 0, idx) for k, v in raw.items()}

    def select_only():
        return {k: torch.index_select(v, 0, fixed_idx) for k, v in raw.items()}

    db = DataBuffer(spec, capacity)
    db.add_batch(data)
    candidates = {"raw": raw_sample, "select": select_only, "alf": lambda: db.get_batch(BATCH)}
    if ReplayBuffer is not None:
        rb = ReplayBuffer(storage=LazyTensorStorage(capacity), batch_size=BATCH)
        rb.extend(TensorDict(data, batch_size=[capacity]))
        candidates["torchrl"] = rb.sample
    return candidates


def memory_report(spec, capacity):
    db = DataBuffer(spec, capacity)
    pointers = [t.data_ptr() for t in db.state_dict().values()]
    item_bytes = sum(s.numel * s.dtype.itemsize for s in spec.values())
    for _ in range(3):  # wrap around the ring three times
        db.add_batch(random_items(spec, capacity // 2))
        db.add_batch(random_items(spec, capacity // 2 + 1))
    stored = sum(t.numel() * t.element_size() for t in db.state_dict().values())
    payload = capacity * item_bytes
    same = pointers == [t.data_ptr() for t in db.state_dict().values()]
    return item_bytes, stored, payload, same


def percentiles(samples):
    """(median, 10th, 90th percentile) of ``samples``."""
    s = sorted(samples)
    return statistics.median(s), s[len(s) // 10], s[(len(s) * 9) // 10]


def interleaved(candidates, repeats, calls, warmup=1):
    """Seconds per call of each candidate over ``repeats`` interleaved rounds
    of ``calls`` calls, after ``warmup`` calls of each: {name: [per-round times]}."""
    times = {name: [] for name in candidates}
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    for _ in range(repeats):
        for name, fn in candidates.items():
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            times[name].append((time.perf_counter() - start) / calls)
    return times


def fill(db, capacity, chunk=1_000_000):
    """Fill ``db`` (float32[64] items) with items whose elements are their
    index (row i holds i in every column), ``chunk`` items per add_batch."""
    for start in range(0, capacity, chunk):
        n = min(chunk, capacity - start)
        rows = torch.arange(start, start + n, dtype=torch.float32)
        db.add_batch(rows[:, None].expand(n, 64))


def scaling(repeats, calls):
    spec = TensorSpec((64,), torch.float32)
    print(
        f"get_batch({BATCH}) of float32[64], in memory; medians [p10, p90] of {repeats} "
        f"interleaved rounds x {calls} calls"
    )
    header = f"{'capacity':>11} {'candidate':>9} {'us/call':>8} {'p10':>7} {'p90':>7} {'/raw':>6} {'flat':>6}"
    print(header)
    print("-" * len(header))
    first = {}
    for capacity in (100_000, 1_000_000, 10_000_000):
        db = DataBuffer(spec, capacity)
        fill(db, capacity)
        ring = db._rings[0]

        def raw(ring=ring, capacity=capacity):
            return torch.index_select(ring, 0, torch.randint(capacity, (BATCH,)))

        def alf(db=db):
            return db.get_batch(BATCH)

        sample = alf()
        assert torch.equal(sample[:, 0], sample[:, 63])  # rows hold their index
        times = interleaved({"raw": raw, "alf": alf}, repeats, calls)
        med = {name: percentiles(t)[0] for name, t in times.items()}
        for name, t in times.items():
            m, p10, p90 = percentiles(t)
            first.setdefault(name, m)
            print(
                f"{capacity:>11,} {name:>9} {m * 1e6:8.1f} {p10 * 1e6:7.1f} {p90 * 1e6:7.1f} "
                f"{m / med['raw']:6.2f} {m / first[name]:6.2f}"
            )
        del db, ring, raw, alf, sample, times
        gc.collect()
    print()


def file_backed(folder, capacity, repeats, calls):
    spec = TensorSpec((64,), torch.float32)
    storage = os.path.join(folder, "bench_storage")
    shutil.rmtree(storage, ignore_errors=True)
    usage = shutil.disk_usage(folder)
    need = capacity * 64 * 4
    if usage.free < need * 1.1:
        raise SystemExit(f"{folder}: {usage.free / 1e9:.1f} GB free, {need / 1e9:.1f} GB needed")
    try:
        db = DataBuffer(spec, capacity, storage_dir=storage)
        start = time.perf_counter()
        fill(db, capacity)
        db.flush()
        fill_s = time.perf_counter() - start
        mapped = np.memmap(os.path.join(storage, "leaf0.bin"), dtype=np.float32, mode="r")
        mapped = mapped.reshape(capacity, 64)

        def raw():
            return mapped[torch.randint(capacity, (BATCH,)).numpy()]

        def alf():
            return db.get_batch(BATCH)

        sample = alf()
        assert torch.equal(sample[:, 0], sample[:, 63])
        rows = raw()
        assert np.array_equal(rows[:, 0], rows[:, 63])
        times = interleaved({"raw memmap": raw, "alf": alf}, repeats, calls)
        print(
            f"file-backed get_batch({BATCH}) of float32[64]: capacity {capacity:,} "
            f"({need / 1e9:.1f} GB in {storage}; filled in {fill_s:.0f} s); "
            f"{repeats} interleaved rounds x {calls} calls"
        )
        header = f"{'candidate':>11} {'us/call':>9} {'p10':>9} {'p90':>9} {'/raw':>6}"
        print(header)
        print("-" * len(header))
        base = percentiles(times["raw memmap"])[0]
        for name, t in times.items():
            m, p10, p90 = percentiles(t)
            print(f"{name:>11} {m * 1e6:9.1f} {p10 * 1e6:9.1f} {p90 * 1e6:9.1f} {m / base:6.2f}")
        print()
    finally:
        shutil.rmtree(storage, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument(
        "--scaling", action="store_true", help="only the 100k/1M/10M in-memory scaling"
    )
    parser.add_argument(
        "--file-backed", metavar="DIR", help="only the file-backed run, storage under DIR"
    )
    parser.add_argument("--file-capacity", type=int, default=140_000_000)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.scaling or args.file_backed:
        if args.scaling:
            scaling(*((9, 50) if args.quick else (41, 100)))
        if args.file_backed:
            file_backed(args.file_backed, args.file_capacity, *((5, 5) if args.quick else (21, 10)))
        return
    repeats, calls = (5, 20) if args.quick else (21, 50)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; batch {BATCH}; "
        f"median of {repeats} x {calls} calls\n"
    )
    header = f"{'item':32} {'capacity':>8} {'candidate':>9} {'us/call':>9} {'ratio':>6}"
    print(header)
    print("-" * len(header))
    for kind, (spec, capacity) in KINDS.items():
        times = measure(sampling_candidates(spec, capacity), repeats, calls)
        for name, t in times.items():
            print(f"{kind:32} {capacity:>8} {name:>9} {t * 1e6:9.1f} {times['raw'] / t:6.2f}")
        print()

    print(
        f"{'item':32} {'item B':>7} {'capacity':>8} {'stored B':>12} {'payload B':>12} "
        f"{'overhead':>9} {'realloc':>7}"
    )
    for kind, spec, capacity in [
        ("float32[16] (64 B)", {"x": TensorSpec((16,))}, 100_000),
        ("float32[256] (1 KiB)", {"x": TensorSpec((256,))}, 10_000),
        ("obs uint8[4,84,84] + act + rew", KINDS["obs uint8[4,84,84] + act + rew"][0], 2_000),
    ]:
        item_bytes, stored, payload, same = memory_report(spec, capacity)
        print(
            f"{kind:32} {item_bytes:>7} {capacity:>8} {stored:>12} {payload:>12} "
            f"{(stored - payload) / payload:9.4%} {'no' if same else 'YES':>7}"
        )


if __name__ == "__main__":
    main()
