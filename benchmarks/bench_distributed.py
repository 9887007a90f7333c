"""Benchmark: the cost of ``@data_distributed`` (alf-train-utils) when DDP is off.

Without an initialised process group (or without ``_ddp_activated_rank`` on the
module) a ``@data_distributed`` method must cost what the undecorated method
costs. Measured in the same run, for methods of three sizes:

* ``identity``: returns its input (the decorator's bare overhead per call);
* ``mlp-1``: a 3-layer MLP (8 -> 64 -> 64 -> 8) on one sample;
* ``mlp-256``: the same MLP on a batch of 256 (forward + backward).

and four ways of calling each:

* ``direct``: the undecorated method (the baseline);
* ``passthrough``: the method under the thinnest Python decorator
  (``wrapped(self, *args, **kwargs)`` returning ``method(self, *args,
  **kwargs)``), the floor for any decorator;
* ``decorated``: the ``@data_distributed`` method, module not activated (the
  common single-process case);
* ``activated``: ``_ddp_activated_rank = 0`` set on the module but no process
  group initialised (the decorator checks torch.distributed and calls directly).

Each figure is the median over ``--repeats`` timings of ``--inner`` calls, the
four timed in turn within each repeat; the ratio is the median of per-repeat
ratios to ``direct``, and ``+ns`` the median difference per call.

Usage::

    python benchmarks/bench_distributed.py [--repeats 15] [--inner 20000]
"""

import argparse
import functools
import statistics
import time

import torch
from torch import nn

from alf.utils.distributed import data_distributed


def passthrough(method):
    """The thinnest Python decorator: forwards the call (for comparison)."""

    @functools.wraps(method)
    def wrapped(self, *args, **kwargs):
        return method(self, *args, **kwargs)

    return wrapped


class Model(nn.Module):
    """An MLP with each method in an undecorated and a decorated version."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(8, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 8)
        )

    def identity(self, x):
        return x

    @passthrough
    def identity_pt(self, x):
        return x

    @data_distributed
    def identity_dd(self, x):
        return x

    def mlp(self, x):
        return self.net(x)

    @passthrough
    def mlp_pt(self, x):
        return self.net(x)

    @data_distributed
    def mlp_dd(self, x):
        return self.net(x)


def time_calls(fn, inner):
    t0 = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - t0) / inner


def compare(fns, repeats, inner):
    """Per-call seconds of each fn (median over repeats) and, for each, the
    median per-repeat ratio to the first one and median difference."""
    for fn in fns:  # warm up
        time_calls(fn, max(1, inner // 10))
    samples = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            samples[i].append(time_calls(fn, inner))
    base = samples[0]
    rows = []
    for s in samples:
        rows.append(
            (
                statistics.median(s),
                statistics.median(a / b for a, b in zip(s, base)),
                statistics.median(a - b for a, b in zip(s, base)),
            )
        )
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--inner", type=int, default=20000)
    args = parser.parse_args()
    torch.manual_seed(0)
    plain, activated = Model(), Model()
    activated._ddp_activated_rank = 0
    x1, x256 = torch.randn(1, 8), torch.randn(256, 8)
    activated.load_state_dict(plain.state_dict())  # same weights: speed depends on them
    for method in ("mlp_pt", "mlp_dd"):  # same results as the direct call
        assert torch.equal(getattr(plain, method)(x256), plain.mlp(x256))
    assert torch.equal(activated.mlp_dd(x256), plain.mlp(x256))

    def step(method, x):
        module = method.__self__

        def run():  # one training step without the optimizer
            for p in module.parameters():
                p.grad = None
            method(x).sum().backward()

        return run

    cases = [
        (
            "identity",
            args.inner,
            [
                lambda: plain.identity(x1),
                lambda: plain.identity_pt(x1),
                lambda: plain.identity_dd(x1),
                lambda: activated.identity_dd(x1),
            ],
        ),
        (
            "mlp-1",
            args.inner // 4,
            [
                lambda: plain.mlp(x1),
                lambda: plain.mlp_pt(x1),
                lambda: plain.mlp_dd(x1),
                lambda: activated.mlp_dd(x1),
            ],
        ),
        (
            "mlp-256 fwd+bwd",
            max(1, args.inner // 40),
            [
                step(plain.mlp, x256),
                step(plain.mlp_pt, x256),
                step(plain.mlp_dd, x256),
                step(activated.mlp_dd, x256),
            ],
        ),
    ]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, no process group")
    print(f"{'method':<16} {'call':<12} {'us/call':>9} {'ratio':>7} {'+ns':>7}")
    for name, inner, fns in cases:
        rows = compare(fns, args.repeats, inner)
        for label, (t, ratio, diff) in zip(
            ["direct", "passthrough", "decorated", "activated"], rows
        ):
            print(f"{name:<16} {label:<12} {t * 1e6:9.3f} {ratio:7.3f} {diff * 1e9:7.0f}")


if __name__ == "__main__":
    main()
