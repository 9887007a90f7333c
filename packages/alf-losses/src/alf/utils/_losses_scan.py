"""Backward first-order linear recurrences solved without a Python step per
time step.

The value ops reduce to ``x[t] = a[t] * x[t + 1] + b[t]`` for ``t = n-1 .. 0``
with ``x[n] = 0`` (a bootstrap value is folded into ``b[n - 1]`` by the
caller). Two exact, division-free methods are used:

* tiny problems (``n * n * columns`` small): one batched unit
  upper-bidiagonal triangular solve (``torch.linalg.solve_triangular``, i.e.
  LAPACK's back substitution);
* few columns: two-level blocked back substitution. The steps are cut into
  ``G`` groups of ``k ~ sqrt(n)``; one batched unit upper-bidiagonal
  triangular solve (``torch.linalg.solve_triangular``, i.e. LAPACK's back
  substitution) gives, per group, the solution with a zero boundary and the
  suffix products of ``a``; a second solve links the ``G`` groups, and one
  fused multiply-add finishes. About twenty tensor ops whatever ``n``;
  ``O(n k)`` work per column, so it is used while that stays small;
* otherwise recursive halving (cyclic reduction): pairing neighbours gives the
  same recurrence on the even steps,
  ``x[2i] = (a[2i] a[2i+1]) x[2i+2] + (b[2i] + a[2i] b[2i+1])``, which is
  solved recursively; the odd steps then follow in one vectorized op,
  ``x[2i+1] = a[2i+1] x[2i+2] + b[2i+1]``. That is ``O(n)`` work in
  ``O(log n)`` vectorized ops, with no division, so zero coefficients (episode
  ends) and products that underflow are handled exactly.

Callers work in float64 so that float32 results are correctly rounded values
of the recurrence (no ``O(T)`` accumulation of float32 rounding errors), and
solve long inputs a cache-sized block at a time (``row_blocks``,
``column_blocks``) in buffers from ``workspace``, which are reused across calls:
fresh multi-megabyte buffers would cost a page fault per 4 KiB on every call.

Threads: with more than one torch intra-op thread, blocks are kept below
torch's parallel grain (32768 elements per op), so no op of a value op enters
an intra-op parallel region. These ops are memory bound and gain little from
a second thread; but a parallel region waits for all its threads, and on
cores shared with other busy processes (environment workers) each wait can
last a scheduler time slice: GAE at T=1000, B=64 took 30-270 ms instead of
0.6 ms (p90, 2 threads, 4 busy processes on 2 cores), which is what the
159 ms outlier of issue 16 was. (Up to ``B = 1927`` columns, as a block has
at least ``_MIN_ROWS`` + 1 = 17 rows, or ``T = 32766`` steps in a
batch-major layout; beyond that the smallest block still exceeds the grain.)
With one thread, large blocks cost fewer op launches.
"""

import math
import threading
from typing import Iterator

import torch
import torch.nn.functional as F

__all__ = [
    "column_blocks",
    "row_blocks",
    "scratch_size",
    "solve_backward_recurrence_",
    "workspace",
]

# Largest ``n * n * columns`` solved as one triangular system.
_DENSE_MAX = 1 << 14
# Limits for the blocked triangular solve: number of small systems
# (columns * groups) and work (n * k * columns).
_DENSE_SYSTEMS = 256
_DENSE_WORK = 1 << 16
# Length below which the halving recursion finishes with a short loop.
_BASE = 4
# Target number of elements per block (2 MiB of float64) with one thread.
_BLOCK_ELEMENTS = 1 << 18
# torch's intra-op parallel grain (at::internal::GRAIN_SIZE): an op on fewer
# elements runs on the calling thread alone.
_PARALLEL_GRAIN = 32768
# Fewest time steps in a time block.
_MIN_ROWS = 16
# Workspaces up to this many bytes are kept for reuse (per thread and device).
_KEEP_BYTES = 1 << 24

_local = threading.local()


def column_blocks(n: int, shape: torch.Size) -> Iterator[slice]:
    """Split dim 1 of a ``[n, *shape]`` problem into blocks of about
    ``_BLOCK_ELEMENTS`` elements.

    Args:
        n (int): length of the time dim.
        shape (torch.Size): the other dims; ``shape[0]`` is the one split.

    Returns:
        An iterator of slices of ``range(shape[0])``, in order.
    """
    per_column = max(1, shape[1:].numel())
    if torch.get_num_threads() > 1:  # every op below the grain (see above)
        width = max(1, (_PARALLEL_GRAIN - 1) // ((n + 1) * per_column))
    else:
        width = max(1, _BLOCK_ELEMENTS // (n * per_column))
    for start in range(0, shape[0], width):
        yield slice(start, min(start + width, shape[0]))


def row_blocks(n: int, shape: torch.Size) -> Iterator[slice]:
    """Split the time dim of a ``[n, *shape]`` problem into blocks of about
    ``_BLOCK_ELEMENTS`` elements (at least ``_MIN_ROWS`` rows), last first.

    Args:
        n (int): length of the time dim.
        shape (torch.Size): the other dims.

    Returns:
        An iterator of slices of ``range(n)``, from the end of time backwards.
    """
    per_row = max(1, shape.numel())
    if torch.get_num_threads() > 1:  # every op below the grain (see above)
        # (values take one row more than the block: height + 1 rows)
        height = max(_MIN_ROWS, (_PARALLEL_GRAIN - 1) // per_row - 1)
    else:
        height = max(_MIN_ROWS, _BLOCK_ELEMENTS // per_row)
    for stop in range(n, 0, -height):
        yield slice(max(0, stop - height), stop)


def workspace(numel: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A flat scratch tensor of ``numel`` elements (uninitialized).

    Buffers of up to ``_KEEP_BYTES`` are cached per thread, dtype and device
    and handed out again by later calls, so a caller must be done with one
    before asking for another of the same dtype and device.
    """
    nbytes = numel * torch.empty((), dtype=dtype).element_size()
    if nbytes > _KEEP_BYTES:
        return torch.empty(numel, dtype=dtype, device=device)
    cache = getattr(_local, "buffers", None)
    if cache is None:
        cache = _local.buffers = {}
    key = (dtype, torch.device(device))
    buf = cache.get(key)
    if buf is None or buf.numel() < numel:
        buf = cache[key] = torch.empty(numel, dtype=dtype, device=device)
    return buf[:numel]


def scratch_size(shape: torch.Size) -> int:
    """Elements of scratch ``solve_backward_recurrence_`` needs for ``shape``."""
    return shape.numel()


def solve_backward_recurrence_(a: torch.Tensor, b: torch.Tensor, scratch: torch.Tensor) -> None:
    """Solve ``x[t] = a[t] * x[t + 1] + b[t]`` backwards along dim 0 with
    ``x[n] = 0``, writing ``x`` over ``b``.

    Args:
        a (Tensor): coefficients, shape ``[n, ...]`` (n >= 1), broadcastable
            views allowed.
        b (Tensor): offsets, same shape and dtype (any strides); overwritten
            with the solution.
        scratch (Tensor): flat, same dtype and device, at least
            ``scratch_size(b.shape)`` elements.
    """
    n = a.shape[0]
    columns = a[0].numel()
    k = math.isqrt(n - 1) + 1
    groups = -(-n // k)
    if n * n * columns <= _DENSE_MAX:
        b.copy_(_solve_dense(a, b))
    elif columns * groups <= _DENSE_SYSTEMS and n * k * columns <= _DENSE_WORK:
        b.copy_(_solve_blocked(a, b, k, groups))
    else:
        _solve_halving(a, b, scratch)


def _solve_dense(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    n = a.shape[0]
    # Columns first, [C, n]: U x = b with U[t, t+1] = -a[t], unit diagonal.
    u = torch.diag_embed(-a.reshape(n, -1).T[:, :-1], offset=1)
    x = torch.linalg.solve_triangular(
        u, b.reshape(n, -1).T.unsqueeze(-1), upper=True, unitriangular=True
    )
    return x.squeeze(-1).T.reshape(b.shape)


def _solve_blocked(a: torch.Tensor, b: torch.Tensor, k: int, groups: int) -> torch.Tensor:
    n = a.shape[0]
    pad = groups * k - n
    # Columns first, steps padded with a = b = 0 (x = 0 there) and cut into
    # groups: [C, G, k].
    a_g = F.pad(a.reshape(n, -1).T, (0, pad)).view(-1, groups, k)
    b_g = F.pad(b.reshape(n, -1).T, (0, pad)).view(-1, groups, k)
    # Within a group, U x = rhs with U unit upper bidiagonal, U[j, j+1] = -a[j].
    # Right-hand sides: b (solution with x = 0 after the group) and
    # a[k-1] e_{k-1} (solution: suffix products p[j] = a[j] ... a[k-1]).
    rhs = torch.zeros((*a_g.shape, 2), dtype=b.dtype, device=b.device)
    rhs[..., 0] = b_g
    rhs[..., -1, 1] = a_g[..., -1]
    u = torch.diag_embed(-a_g[..., :-1], offset=1)
    local, suffix = torch.linalg.solve_triangular(u, rhs, upper=True, unitriangular=True).unbind(-1)
    # Group starts: X[g] = suffix[g, 0] X[g+1] + local[g, 0], X[G] = 0.
    u_groups = torch.diag_embed(-suffix[:, :-1, 0], offset=1)
    starts = torch.linalg.solve_triangular(
        u_groups, local[:, :, :1], upper=True, unitriangular=True
    )
    next_start = F.pad(starts[:, 1:, 0], (0, 1))
    x = torch.addcmul(local, suffix, next_start.unsqueeze(-1))
    return x.reshape(-1, groups * k)[:, :n].T.reshape(b.shape)


def _solve_halving(a: torch.Tensor, b: torch.Tensor, scratch: torch.Tensor) -> None:
    n = a.shape[0]
    if n <= _BASE:
        for t in range(n - 2, -1, -1):
            b[t].addcmul_(a[t], b[t + 1])
        return
    if n % 2:
        # The last step stands alone (x[n-1] = b[n-1]); fold it into the one
        # before so the remaining even-length problem ends with x = 0.
        n -= 1
        b[n - 1].addcmul_(a[n - 1], b[n])
    m = n // 2
    rest = b.shape[1:]
    a_even, a_odd = a[:n].view(m, 2, *rest).unbind(1)
    b_even, b_odd = b[:n].view(m, 2, *rest).unbind(1)
    # Even steps, in place: b_even becomes b[2i] + a[2i] b[2i+1] and then,
    # solved with the paired coefficients, x[2i].
    a_pair = torch.mul(a_even, a_odd, out=scratch[: m * rest.numel()].view(m, *rest))
    b_even.addcmul_(a_even, b_odd)
    _solve_halving(a_pair, b_even, scratch[m * rest.numel() :])
    # Odd steps: x[2i+1] = b[2i+1] + a[2i+1] x[2i+2] (x[n] = 0 for the last).
    b_odd[:-1].addcmul_(a_odd[:-1], b_even[1:])
