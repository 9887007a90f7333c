"""StableTanh-transformed normal: rsample + log_prob for 1M samples, against
torch's own ``TanhTransform`` (baseline) measured in the same run.

Both transforms are used with ``cache_size=1`` (so log_prob of a fresh
sample reuses the pre-tanh value). Also reports how many log_prob values are
non-finite when the sample is cloned (cache miss) and saturates at +-1.

Run: python benchmarks/bench_stable_tanh.py [--n 1000000] [--rounds 15]
"""

import argparse
import statistics
import time

import torch
import torch.distributions as td

from alf.utils.dist_utils import StableTanh


def run(loc, scale, transform):
    dist = td.TransformedDistribution(td.Normal(loc, scale), [transform])
    y = dist.rsample()
    return y, dist.log_prob(y)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()

    torch.manual_seed(0)
    loc = torch.randn(args.n) * 2
    scale = torch.rand(args.n) * 0.9 + 0.1
    candidates = {
        "torch TanhTransform (baseline)": lambda: run(loc, scale, td.TanhTransform(cache_size=1)),
        "alf StableTanh": lambda: run(loc, scale, StableTanh()),
    }
    times = {name: [] for name in candidates}
    for fn in candidates.values():
        fn()
    for _ in range(args.rounds):
        for name, fn in candidates.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(t) * 1e3 for name, t in times.items()}
    base = medians["torch TanhTransform (baseline)"]
    print(f"tanh-normal rsample + log_prob, n={args.n}, threads={torch.get_num_threads()}")
    print(f"{'implementation':35s} {'median ms':>10s} {'ratio':>7s}")
    for name, ms in medians.items():
        print(f"{name:35s} {ms:10.2f} {ms / base:7.2f}")

    # cache miss at saturated samples: the uncached inverse must stay finite
    big = torch.full((5,), 12.0)
    for name, transform in (("torch", td.TanhTransform(cache_size=1)), ("alf", StableTanh())):
        dist = td.TransformedDistribution(td.Normal(big, torch.full((5,), 0.1)), [transform])
        y = dist.rsample().clone()
        finite = torch.isfinite(dist.log_prob(y)).sum().item()
        print(f"{name}: finite log_prob at saturated, uncached samples: {finite}/5")


if __name__ == "__main__":
    main()
