"""Quantiles of the Gamma distribution in log space, as a deterministic
function of uniform noise (torch has ``gammainc`` but no inverse)."""

import math

import torch

__all__ = ["gamma_log_icdf"]

# log(x) below which P(alpha, x) ~= x^alpha / Gamma(alpha + 1) to double precision
_SMALL_LOG_X = -600.0
_BISECTION_STEPS = 64


def gamma_log_icdf(u: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """``log(x)`` where ``x`` is the ``u``-quantile of ``Gamma(alpha, 1)``.

    Since ``P(alpha, x) <= x^alpha / Gamma(alpha + 1)``, the quantile is at
    least ``t0 = (log u + lgamma(alpha + 1)) / alpha`` (in log space), which
    is also its value to double precision when ``t0`` is very negative.
    Otherwise the quantile is found by bisection of the regularized
    incomplete gamma function in ``log x`` between ``t0`` and a point beyond
    the upper tail. Computed in float64.

    Args:
        u (Tensor): probabilities in ``(0, 1)``, any shape.
        alpha (Tensor): shapes, ``> 0``, broadcastable with ``u``. Entries
            equal to 0 give ``-inf`` (a point mass at 0).
    Returns:
        Tensor: ``log x`` of the broadcast shape, float64.
    """
    u = u.to(torch.float64)
    alpha = alpha.to(torch.float64)
    u, alpha = torch.broadcast_tensors(u, alpha)
    degenerate = alpha <= 0
    alpha = torch.where(degenerate, torch.ones_like(alpha), alpha)
    t0 = (torch.log(u) + torch.lgamma(alpha + 1)) / alpha
    hi = torch.log(torch.maximum(2 * alpha, alpha + 20 * torch.sqrt(alpha) + 40))
    lo = torch.minimum(t0, hi)
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        below = torch.special.gammainc(alpha, torch.exp(mid)) < u
        lo = torch.where(below, mid, lo)
        hi = torch.where(below, hi, mid)
    t = torch.where(t0 < _SMALL_LOG_X, t0, 0.5 * (lo + hi))
    return torch.where(degenerate, torch.full_like(t, -math.inf), t)
