"""Benchmark: normalizer update + normalize (alf-math ``EMNormalizer``).

One call is ``normalize(x, clip_value=5.0)`` with ``auto_update=True``: update
the first and second moments with ``x`` (outer dims averaged first), then
normalize ``x``. Measured for

* ``alf.utils.normalizers.EMNormalizer`` (all leaves of a dtype in one flat
  buffer, a few fused kernels per call);
* the baseline, written below: the ALF-style implementation that walks the
  nest with ``alf.nest.map_structure`` and keeps one mean and one second-moment
  buffer per leaf (per leaf: average the outer dims, two EMA updates, mass
  correction, variance, normalize, clip).

Then the setting of issue 16: ``AdaptiveNormalizer(TensorSpec((64,)))`` and
``ScalarAdaptiveNormalizer()`` (speed 8), each given ``[1024, 64]`` float32
batches, beside "raw": the same work written directly with torch in this
file (float64 moments, the second moment formed from centred values, the
adaptive rate ``speed / (speed + k - 1)``, normalize and clip), checked to
give the same outputs; the ratio is the median of per-repeat ratios.

Both start from the same state and are checked to give the same outputs.
Each time is the median over ``--repeats`` timings of ``--calls`` calls (the
two implementations timed alternately); the speed-up is the median of the
per-repeat ratios.
Usage::

    python benchmarks/bench_normalizer.py [--device cpu|cuda] [--calls 200] [--repeats 7]
"""

import argparse
import statistics
import time

import torch

import alf.nest
from alf.tensor_specs import TensorSpec
from alf.utils.normalizers import AdaptiveNormalizer, EMNormalizer, ScalarAdaptiveNormalizer


class PerLeafEMNormalizer:
    """Baseline: per-leaf EMA normalizer walking the nest (ALF's structure)."""

    def __init__(self, spec, update_rate, variance_epsilon=1e-10, device="cpu"):
        self.spec = spec
        self.rate = update_rate
        self.eps = variance_epsilon
        self.mean = alf.nest.map_structure(lambda s: s.zeros().to(device), spec)
        self.m2 = alf.nest.map_structure(lambda s: s.zeros().to(device), spec)
        self.mass = torch.zeros((), dtype=torch.float64, device=device)

    @staticmethod
    def _outer_mean(t, s):
        outer = t.dim() - len(s.shape)
        return t.mean(dim=tuple(range(outer))) if outer > 0 else t

    def normalize(self, tensor, clip_value=-1.0):
        def update(buf, t, s):
            buf.add_(self.rate * (self._outer_mean(t.detach(), s) - buf))

        alf.nest.map_structure(update, self.mean, tensor, self.spec)
        alf.nest.map_structure(
            update, self.m2, alf.nest.map_structure(torch.square, tensor), self.spec
        )
        self.mass.add_(self.rate * (1 - self.mass))

        def norm(m, m2, t):
            m = m / self.mass.to(m.dtype)
            m2 = m2 / self.mass.to(m.dtype)
            var = torch.relu(m2 - m * m)
            out = (t - m) * torch.rsqrt(var + self.eps)
            if clip_value > 0:
                out = torch.clamp(out, -clip_value, clip_value)
            return out

        return alf.nest.map_structure(norm, self.mean, self.m2, tensor)


class RawAdaptive:
    """Raw baseline of issue 16: an adaptive normalizer of ``[N, D]`` float32
    batches (``scalar``: of all N * D values as samples of one scalar),
    written directly with torch. Float64 moments, the batch second moment
    as var + mean^2 from centred values, rate speed / (speed + k - 1) (the
    first rate is 1, so no mass correction is needed)."""

    def __init__(self, dim, speed=8.0, eps=1e-10, scalar=False, device="cpu"):
        shape = () if scalar else (dim,)
        self.m = torch.zeros(shape, dtype=torch.float64, device=device)
        self.m2 = torch.zeros(shape, dtype=torch.float64, device=device)
        self.speed, self.steps, self.eps = speed, speed, eps
        self.dims = None if scalar else 0

    def normalize(self, x, clip_value=5.0):
        mean = x.mean() if self.dims is None else x.mean(0)
        c = x - mean
        var = (c * c).mean() if self.dims is None else (c * c).mean(0)
        mean64 = mean.double()
        rate = self.speed / self.steps
        self.steps += 1
        self.m.lerp_(mean64, rate)
        self.m2.lerp_(torch.addcmul(var.double(), mean64, mean64), rate)
        v = torch.addcmul(self.m2, self.m, self.m, value=-1.0).relu_()
        scale = torch.rsqrt(v + self.eps)
        # shift before scale, as alf-math (x * s - m * s in float32 cancels
        # to noise where the variance is tiny)
        out = (x - self.m.float()).mul_(scale.float())
        return out.clamp_(-clip_value, clip_value)


def table_cases(calls, repeats, device):
    """Issue 16's rows: (name, raw median s, alf median s, paired ratio)."""
    gen = torch.Generator().manual_seed(1)
    batches = [(torch.randn(1024, 64, generator=gen) * 3 + 1e3).to(device) for _ in range(8)]
    rows = []
    for name, ours, base in [
        (
            "AdaptiveNormalizer 1024x[64]",
            AdaptiveNormalizer(TensorSpec((64,)), speed=8.0).to(device),
            RawAdaptive(64, device=device),
        ),
        (
            "ScalarAdaptiveNormalizer 1024x64",
            ScalarAdaptiveNormalizer(speed=8.0).to(device),
            RawAdaptive(64, scalar=True, device=device),
        ),
    ]:
        for b in batches:  # same outputs (float32 results of float64 statistics)
            torch.testing.assert_close(
                ours.normalize(b, clip_value=5.0), base.normalize(b), rtol=1e-5, atol=1e-5
            )
        t_base, t_ours = [], []
        for _ in range(repeats):
            t_base.append(time_calls(base, batches, calls, device))
            t_ours.append(time_calls(ours, batches, calls, device))
        ratio = statistics.median(o / b for b, o in zip(t_base, t_ours))
        rows.append((name, statistics.median(t_base), statistics.median(t_ours), ratio))
    return rows


def make_case(name, device):
    gen = torch.Generator().manual_seed(0)
    if name == "1 leaf [256] x [64]":
        spec, outer = TensorSpec((64,)), (256,)
    elif name == "16 leaves [256] x mixed":
        shapes = [(8,), (3, 4), (), (16,), (2, 2, 2), (5,), (1,), (32,)] * 2
        spec = {f"obs{i}": TensorSpec(s) for i, s in enumerate(shapes)}
        outer = (256,)
    else:  # "16 leaves [16, 32] x mixed"
        shapes = [(8,), (3, 4), (), (16,), (2, 2, 2), (5,), (1,), (32,)] * 2
        spec = {f"obs{i}": TensorSpec(s) for i, s in enumerate(shapes)}
        outer = (16, 32)
    batches = [
        alf.nest.map_structure(
            lambda s: (torch.randn(outer + tuple(s.shape), generator=gen) * 3 + 1).to(device),
            spec,
        )
        for _ in range(8)
    ]
    return spec, batches


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_calls(normalizer, batches, calls, device):
    sync(device)
    start = time.perf_counter()
    for i in range(calls):
        normalizer.normalize(batches[i % len(batches)], clip_value=5.0)
    sync(device)
    return (time.perf_counter() - start) / calls


def compare(base, ours, batches, calls, repeats, device):
    """Median time per call of each, timed alternately so that both see the
    same load on a shared machine, and the median of the per-repeat ratios."""
    for b in batches:  # warm up
        base.normalize(b, clip_value=5.0)
        ours.normalize(b, clip_value=5.0)
    t_base, t_ours = [], []
    for _ in range(repeats):
        t_base.append(time_calls(base, batches, calls, device))
        t_ours.append(time_calls(ours, batches, calls, device))
    ratio = statistics.median(b / o for b, o in zip(t_base, t_ours))
    return statistics.median(t_base), statistics.median(t_ours), ratio


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1) if args.device == "cpu" else None

    print(
        f"issue 16: update + normalize with clip, device={args.device}, "
        f"median of {args.repeats * 3} x {args.calls} calls"
    )
    print(f"{'case':<34}{'raw':>10}{'alf-math':>12}{'alf / raw':>11}")
    for name, t_base, t_ours, ratio in table_cases(args.calls, args.repeats * 3, args.device):
        print(f"{name:<34}{t_base * 1e6:>7.1f} us{t_ours * 1e6:>9.1f} us{ratio:>10.2f}x")
    print()

    cases = ["1 leaf [256] x [64]", "16 leaves [256] x mixed", "16 leaves [16, 32] x mixed"]
    print(
        f"normalize(x) with auto update, EMNormalizer, device={args.device}, "
        f"median of {args.repeats} x {args.calls} calls"
    )
    print(f"{'case':<28}{'per-leaf baseline':>20}{'alf-math':>12}{'speed-up':>10}")
    for name in cases:
        spec, batches = make_case(name, args.device)
        ours = EMNormalizer(spec, update_rate=0.01).to(args.device)
        base = PerLeafEMNormalizer(spec, 0.01, device=args.device)
        for b in batches:  # same state, same outputs
            out_ours, out_base = (
                ours.normalize(b, clip_value=5.0),
                base.normalize(b, clip_value=5.0),
            )
            for x, y in zip(alf.nest.flatten(out_ours), alf.nest.flatten(out_base)):
                torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-4)
        t_base, t_ours, ratio = compare(base, ours, batches, args.calls, args.repeats, args.device)
        print(f"{name:<28}{t_base * 1e6:>17.1f} us{t_ours * 1e6:>9.1f} us{ratio:>9.2f}x")


if __name__ == "__main__":
    main()
