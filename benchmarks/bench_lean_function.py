"""Benchmark: memory of ``lean_function`` vs the plain network (alf-math).

A deep MLP (``--depth`` Linear+Tanh layers of width ``--width``, batch
``--batch``) runs forward and backward

* plain (the baseline);
* as lean blocks: ``lean_function`` applied to each group of ``--per-block``
  consecutive layers (the layers and parameters are shared with the plain net).

Measured in the same run, for both:

* ``saved``: bytes autograd keeps between forward and backward (distinct
  storages packed through ``torch.autograd.graph.saved_tensors_hooks``,
  parameters left out since the model holds them anyway);
* ``peak saved``: the most bytes of saved tensors alive at once over forward
  *and* backward (the lean blocks recompute one block at a time during
  backward; a saved tensor stops counting when autograd frees it). This is
  the activation memory of training, measured exactly and deterministically
  on any device; it leaves out gradients and transient temporaries;
* on CUDA also ``torch.cuda.max_memory_allocated`` over forward + backward,
  above the memory allocated before (parameters, input);
* the median wall time of forward + backward (lean recomputes the forward),
  the two timed alternately; the ratio is the median of per-repeat ratios.

Usage::

    python benchmarks/bench_lean_function.py [--device cpu|cuda] [--depth 32]
        [--width 256] [--batch 4096] [--per-block 4] [--repeats 5]
"""

import argparse
import statistics
import time
import weakref

import torch
from torch import nn

from alf.utils.lean_function import lean_function


class SavedTensorMeter:
    """Counts bytes of distinct storages held by autograd for backward,
    leaving out ``exclude`` (the parameters, which the model holds anyway)."""

    class _Holder:
        __slots__ = ("tensor", "__weakref__")

        def __init__(self, tensor):
            self.tensor = tensor

    def __init__(self, exclude=()):
        self.exclude = {t.untyped_storage().data_ptr() for t in exclude}
        self.refs = {}  # storage ptr -> [holders alive, nbytes]
        self.live = 0
        self.peak = 0

    def _release(self, ptr):
        entry = self.refs[ptr]
        entry[0] -= 1
        if entry[0] == 0:
            self.live -= entry[1]
            del self.refs[ptr]

    def pack(self, tensor):
        storage = tensor.untyped_storage()
        ptr, nbytes = storage.data_ptr(), storage.nbytes()
        if ptr in self.exclude:
            return tensor
        entry = self.refs.setdefault(ptr, [0, nbytes])
        if entry[0] == 0:
            self.live += nbytes
            self.peak = max(self.peak, self.live)
        entry[0] += 1
        holder = self._Holder(tensor)
        weakref.finalize(holder, self._release, ptr)
        return holder

    @staticmethod
    def unpack(packed):
        return packed.tensor if isinstance(packed, SavedTensorMeter._Holder) else packed


def mlp(depth, width, device):
    torch.manual_seed(0)
    layers = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), nn.Tanh()]
    return nn.Sequential(*layers).to(device)


def lean_blocks(net, per_block):
    layers = list(net)
    step = 2 * per_block
    return nn.Sequential(
        *[lean_function(nn.Sequential(*layers[i : i + step])) for i in range(0, len(layers), step)]
    )


def measure_saved(model, x):
    meter = SavedTensorMeter(exclude=list(model.parameters()))
    with torch.autograd.graph.saved_tensors_hooks(meter.pack, meter.unpack):
        out = model(x)
        kept = meter.live
        out.sum().backward()
    return kept, meter.peak


def measure_cuda_peak(model, x):
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    model(x).sum().backward()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - base


def fwd_bwd_time(model, x, device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    model(x).sum().backward()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def compare_time(plain, lean, x, repeats, device):
    """Median forward+backward times, the two timed alternately (same load on
    a shared machine), and the median of the per-repeat ratios lean/plain."""
    fwd_bwd_time(plain, x, device)  # warm up
    fwd_bwd_time(lean, x, device)
    t_plain, t_lean = [], []
    for _ in range(repeats):
        t_plain.append(fwd_bwd_time(plain, x, device))
        t_lean.append(fwd_bwd_time(lean, x, device))
    ratio = statistics.median(b / a for a, b in zip(t_plain, t_lean))
    return statistics.median(t_plain), statistics.median(t_lean), ratio


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--depth", type=int, default=32)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--per-block", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    device = args.device
    net = mlp(args.depth, args.width, device)
    lean = lean_blocks(net, args.per_block)
    x = torch.randn(args.batch, args.width, device=device, requires_grad=True)

    # same values and gradients
    params = list(net.parameters())
    y_plain, y_lean = net(x), lean(x)
    torch.testing.assert_close(y_lean, y_plain, rtol=0, atol=0)
    for a, b in zip(
        torch.autograd.grad(y_lean.sum(), [x] + params),
        torch.autograd.grad(y_plain.sum(), [x] + params),
    ):
        torch.testing.assert_close(a, b)
    del y_plain, y_lean

    rows = []
    kept_p, peak_p = measure_saved(net, x)
    kept_l, peak_l = measure_saved(lean, x)
    rows.append(("saved after forward (MiB)", kept_p / 2**20, kept_l / 2**20))
    rows.append(("peak saved, fwd+bwd (MiB)", peak_p / 2**20, peak_l / 2**20))
    if device.startswith("cuda"):
        measure_cuda_peak(net, x)  # warm up the allocator and kernels
        measure_cuda_peak(lean, x)
        rows.append(
            (
                "CUDA max allocated (MiB)",
                measure_cuda_peak(net, x) / 2**20,
                measure_cuda_peak(lean, x) / 2**20,
            )
        )
    t_plain, t_lean, t_ratio = compare_time(net, lean, x, args.repeats, device)

    print(
        f"MLP depth={args.depth} width={args.width} batch={args.batch}, lean blocks of "
        f"{args.per_block} layers, device={device}"
    )
    print(f"{'measure':<30}{'plain':>12}{'lean':>12}{'lean/plain':>12}")
    for name, plain, lean_value in rows:
        print(f"{name:<30}{plain:>12.2f}{lean_value:>12.2f}{lean_value / plain:>12.3f}")
    print(f"{'fwd+bwd time (ms)':<30}{t_plain * 1e3:>12.1f}{t_lean * 1e3:>12.1f}{t_ratio:>12.3f}")


if __name__ == "__main__":
    main()
