"""Benchmark: ``alf.utils.tensor_utils.clip_by_global_norm`` over many tensors.

Clips a list of ``--tensors`` tensors shaped like the parameters of a small
network (weights and biases from a few dozen to ~65k elements), with

* the baseline: a per-tensor Python loop (``t.norm()`` for each tensor, the
  sum of squares, then ``t * factor`` / ``t.mul_(factor)`` for each tensor),
  as a straightforward implementation would do;
* alf-math: ``clip_by_global_norm`` (fused ``torch._foreach_*`` kernels);
* for reference, ``torch.nn.utils.clip_grad_norm_`` on parameters whose
  ``.grad`` are the same tensors (in place only);
* "raw" (issue 16's baseline): the same work written directly with the fused
  kernels, ``torch._foreach_norm`` + ``torch.stack`` + ``vector_norm``, the
  factor ``clip / max(norm, clip)``, ``torch._foreach_mul(_)``: no nest
  handling, no checks; the "alf / raw" column is the median of per-repeat
  ratios.

Each figure is the median over ``--repeats`` timings of ``--inner`` calls, the
contenders timed in turn within each repeat; the results are checked against
the loop's. Usage::

    python benchmarks/bench_clip_global_norm.py [--tensors 200] [--widths 16 256] [--device cpu]

``--widths`` picks the layer sizes: 16 gives small tensors (per-call
overhead dominates), 256 a ~1.1M-element network (memory traffic dominates).
"""

import argparse
import statistics
import time

import torch

from alf.utils.tensor_utils import clip_by_global_norm


def make_tensors(n, device, width=256, seed=0):
    """``n`` tensors alternating weights ``[out, in]`` and biases ``[out]``
    with layer widths cycling up to ``width``."""
    g = torch.Generator().manual_seed(seed)
    shapes = []
    sizes = [max(1, width >> k) for k in (4, 3, 2, 1, 0)]
    while len(shapes) < n:
        fan_in, fan_out = sizes[len(shapes) % 5], sizes[(len(shapes) // 2) % 5]
        shapes.append((fan_out, fan_in))
        shapes.append((fan_out,))
    return [torch.randn(s, generator=g).to(device) * 3 for s in shapes[:n]]


def loop_clip(tensors, clip_norm, in_place):
    norm = torch.sqrt(sum(t.norm() ** 2 for t in tensors))
    factor = clip_norm / torch.maximum(norm, torch.tensor(clip_norm, device=norm.device))
    if in_place:
        for t in tensors:
            t.mul_(factor)
        return tensors, norm
    return [t * factor for t in tensors], norm


def raw_clip(tensors, clip_norm, in_place):
    norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(tensors)))
    factor = clip_norm / torch.clamp(norm, min=clip_norm)
    if in_place:
        torch._foreach_mul_(tensors, factor)
        return tensors, norm
    return torch._foreach_mul(tensors, factor), norm


def torch_clip(params, clip_norm):
    return torch.nn.utils.clip_grad_norm_(params, clip_norm)


def timeit(fns, repeats, inner, device, raw_times=None):
    """Median seconds per call of each function in ``fns``. The functions are
    timed in turn within each repeat, so load from other processes on a
    shared machine hits all of them alike. ``raw_times``, a dict, receives
    the per-repeat times of each function (by position)."""
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, record in zip(fns, times):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(inner):
                fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            record.append((time.perf_counter() - start) / inner)
    if raw_times is not None:
        raw_times.update(enumerate(times))
    return [statistics.median(t) for t in times]


def run(args, device, width):
    tensors = make_tensors(args.tensors, device, width)
    clip = 1.0  # far below the global norm: every tensor is scaled

    # correctness against the loop
    expected, expected_norm = loop_clip([t.clone() for t in tensors], clip, in_place=False)
    got, got_norm = clip_by_global_norm(tensors, clip)
    torch.testing.assert_close(got_norm.float(), expected_norm.float(), rtol=1e-5, atol=0)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)

    work = [t.clone() for t in tensors]
    params = [torch.nn.Parameter(torch.empty_like(t)) for t in tensors]
    for p, t in zip(params, work):
        p.grad = t

    def bench(*fns, per_repeat=None):
        return timeit(fns, args.repeats, args.inner, device, per_repeat)

    got_raw, norm_raw = raw_clip(tensors, clip, False)
    torch.testing.assert_close(norm_raw, got_norm)
    for a, b in zip(got_raw, got):
        torch.testing.assert_close(a, b)
    out_times, in_times = {}, {}
    base, ours, raw = bench(
        lambda: loop_clip(tensors, clip, False),
        lambda: clip_by_global_norm(tensors, clip),
        lambda: raw_clip(tensors, clip, False),
        per_repeat=out_times,
    )
    rows = [("out of place", base, ours, raw, out_times)]
    base, ours, raw, torch_time = bench(
        lambda: loop_clip(work, clip, True),
        lambda: clip_by_global_norm(work, clip, in_place=True),
        lambda: raw_clip(work, clip, True),
        lambda: torch_clip(params, clip),
        per_repeat=in_times,
    )
    rows.append(("in place", base, ours, raw, in_times))

    n_elements = sum(t.numel() for t in tensors)
    print(
        f"\n{args.tensors} tensors (layer width <= {width}), {n_elements} elements, "
        f"device={device}, torch {torch.__version__}, median of {args.repeats}x{args.inner} calls"
    )
    print(
        f"{'mode':<14}{'python loop (ms)':>18}{'alf-math (ms)':>16}{'speed-up':>10}"
        f"{'raw (ms)':>10}{'alf / raw':>10}"
    )
    for name, base, ours, raw, per_repeat in rows:
        paired = statistics.median(o / r for o, r in zip(per_repeat[1], per_repeat[2]))
        print(
            f"{name:<14}{base * 1e3:>18.3f}{ours * 1e3:>16.3f}{base / ours:>9.2f}x"
            f"{raw * 1e3:>10.3f}{paired:>9.2f}x"
        )
    print(
        f"reference: torch.nn.utils.clip_grad_norm_ (in place) {torch_time * 1e3:.3f} ms "
        f"(alf-math in place / torch = {rows[1][2] / torch_time:.2f})"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tensors", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--inner", type=int, default=20)
    parser.add_argument("--widths", type=int, nargs="+", default=[16, 256])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    print("clip_by_global_norm vs a per-tensor Python loop")
    for width in args.widths:
        run(args, torch.device(args.device), width)


if __name__ == "__main__":
    main()
