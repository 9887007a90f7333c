"""Backward first-order linear recurrences solved without a Python step per
time step.

The value ops reduce to ``x[t] = a[t] * x[t + 1] + b[t]`` for ``t = n-1 .. 0``
with ``x[n] = 0`` (a bootstrap value is folded into ``b[n - 1]`` by the
caller). Two exact, division-free methods are used:

* tiny problems (``n * n * columns`` small): one batched unit upper-bidiagonal
  triangular solve (``torch.linalg.solve_triangular``), i.e. LAPACK's back
  substitution, in a handful of tensor ops;
* otherwise recursive halving (cyclic reduction): pairing neighbours gives the
  same recurrence on the even steps,
  ``x[2i] = (a[2i] a[2i+1]) x[2i+2] + (b[2i] + a[2i] b[2i+1])``, which is
  solved recursively; the odd steps then follow in one vectorized op,
  ``x[2i+1] = a[2i+1] x[2i+2] + b[2i+1]``. That is ``O(n)`` work in
  ``O(log n)`` vectorized ops, with no division, so zero coefficients (episode
  ends) and products that underflow are handled exactly.

Callers work in float64 so that float32 results are correctly rounded values
of the recurrence (no ``O(T)`` accumulation of float32 rounding errors).
"""

from typing import Iterator

import torch

__all__ = ["solve_backward_recurrence", "column_blocks"]

# Largest ``n * n * columns`` solved as one dense triangular system.
_DENSE_MAX = 1 << 14
# Length below which the halving recursion finishes with a short loop.
_BASE = 4
# Target number of float64 elements per column block (2 MiB): keeps the
# temporaries cache-sized and below the allocator's mmap threshold.
_BLOCK_ELEMENTS = 1 << 18


def column_blocks(n: int, shape: torch.Size) -> Iterator[slice]:
    """Split dim 1 of a ``[n, *shape]`` problem into blocks of about
    ``_BLOCK_ELEMENTS`` elements.

    Args:
        n (int): length of the time dim.
        shape (torch.Size): the other dims; ``shape[0]`` is the one split.

    Returns:
        An iterator of slices of ``range(shape[0])``.
    """
    if len(shape) == 0:
        yield slice(None)
        return
    per_column = n * max(1, shape[1:].numel())
    width = max(1, _BLOCK_ELEMENTS // per_column)
    for start in range(0, shape[0], width):
        yield slice(start, start + width)


def solve_backward_recurrence(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Solve ``x[t] = a[t] * x[t + 1] + b[t]`` backwards along dim 0, ``x[n] = 0``.

    Args:
        a (Tensor): coefficients, shape ``[n, ...]``, n >= 1.
        b (Tensor): offsets, same shape, dtype and device as ``a``; used as
            scratch space (overwritten).

    Returns:
        ``x``, a new tensor with the shape and dtype of ``b``.
    """
    n = a.shape[0]
    if n * n * a[0].numel() <= _DENSE_MAX:
        return _solve_dense(a, b)
    out = torch.empty_like(b)
    _solve_halving(a, b, out)
    return out


def _solve_dense(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    n = a.shape[0]
    # Columns first: [C, n]; the system is U x = b with U unit upper
    # bidiagonal, U[t, t + 1] = -a[t].
    a_cols = a.reshape(n, -1).T
    b_cols = b.reshape(n, -1).T.unsqueeze(-1)
    u = torch.diag_embed(-a_cols[:, :-1], offset=1)
    x = torch.linalg.solve_triangular(u, b_cols, upper=True, unitriangular=True)
    return x.squeeze(-1).T.reshape(b.shape)


def _solve_halving(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> None:
    n = a.shape[0]
    if n <= _BASE:
        out[n - 1].copy_(b[n - 1])
        for t in range(n - 2, -1, -1):
            torch.addcmul(b[t], a[t], out[t + 1], out=out[t])
        return
    if n % 2:
        # The last step stands alone (x[n-1] = b[n-1]); fold it into the one
        # before so the remaining even-length problem ends with x = 0.
        n -= 1
        b[n - 1].addcmul_(a[n - 1], b[n])
        out[n].copy_(b[n])
    m = n // 2
    rest = a.shape[1:]
    a_even, a_odd = a[:n].view(m, 2, *rest).unbind(1)
    b_even, b_odd = b[:n].view(m, 2, *rest).unbind(1)
    x_even, x_odd = out[:n].view(m, 2, *rest).unbind(1)
    _solve_halving(a_even * a_odd, torch.addcmul(b_even, a_even, b_odd), x_even)
    torch.addcmul(b_odd[:-1], a_odd[:-1], x_even[1:], out=x_odd[:-1])
    x_odd[-1].copy_(b_odd[-1])
