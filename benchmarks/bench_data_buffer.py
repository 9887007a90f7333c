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
"""

import argparse
import statistics
import time

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
    times = {name: [] for name in candidates}
    for fn in candidates.values():
        for _ in range(3):
            fn()
    for _ in range(repeats):
        for name, fn in candidates.items():
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            times[name].append((time.perf_counter() - start) / calls)
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
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
