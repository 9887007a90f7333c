"""Closed-form KL divergence between two truncated normal distributions.

For ``P = TN(mu1, s1, [l1, u1])`` and ``Q = TN(mu2, s2, [l2, u2])`` with
``[l1, u1]`` inside ``[l2, u2]`` (otherwise the divergence is infinite):

.. math::

    KL(P || Q) = \\log\\frac{s_2 Z_2}{s_1 Z_1}
        + \\tfrac12 E_P[z_2^2 - z_1^2],
    \\quad z_i = (x - \\mu_i) / s_i,

with ``Z_i`` the normal mass of ``[l_i, u_i]``. Writing ``z2 = d + r z1``
(``d = (mu1 - mu2) / s2``, ``r = s1 / s2``),
``E[z2^2 - z1^2] = d^2 + 2 d r E[z1] + (r^2 - 1) E[z1^2]``, which stays
accurate (no difference of two large second moments) when ``P`` and ``Q``
are close. The moments of the standard normal truncated to
``[a, b]``: ``E[z] = (phi(a) - phi(b)) / Z`` and
``E[z^2] = 1 + (a phi(a) - b phi(b)) / Z``, with ``Z`` and the ratios
``phi / Z`` taken in log space for intervals in a tail (see
``_dist_normal_tail``), so that far-tail intervals give finite, accurate
values. Everything is computed in float64.
"""

import math
from typing import Tuple

import torch

from alf.utils._dist_normal_tail import log_mills, log_tail_ratio

__all__ = ["truncated_normal_kl"]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
_SQRT_HALF = math.sqrt(0.5)


def _std_moments(a: torch.Tensor, b: torch.Tensor) -> Tuple[torch.Tensor, ...]:
    """``(log Z, E[z], E[z^2])`` of the standard normal truncated to
    ``[a, b]`` (float64, ``a < b``, infinite ends allowed), elementwise."""
    flip = (a + b) < 0  # orient the interval so that its centre is >= 0
    lo = torch.where(flip, -b, a)
    hi = torch.where(flip, -a, b)
    hi_inf = torch.isinf(hi)
    lo_inf = torch.isinf(lo)
    tail = lo >= 0
    # in the right tail: Z = Q(lo) (1 - Q(hi) / Q(lo))
    lo_t = torch.where(tail, lo, torch.ones_like(lo))
    hi_t = torch.where(tail, hi, lo_t + 1)
    log_ratio = log_tail_ratio(lo_t, hi_t - lo_t)  # log(Q(hi) / Q(lo)), -inf at hi = inf
    one_minus = -torch.expm1(log_ratio)
    mills_lo = log_mills(lo_t)
    log_z_tail = mills_lo - 0.5 * lo_t * lo_t - _HALF_LOG_2PI + torch.log(one_minus)
    a_tail = torch.exp(-mills_lo) / one_minus  # phi(lo) / Z
    hi_fin = torch.where(hi_inf, lo_t + 1, hi_t)
    b_tail = torch.exp(log_ratio - log_mills(hi_fin)) / one_minus  # phi(hi) / Z
    # containing 0 (lo < 0 <= hi): Z = (erf(hi / sqrt 2) - erf(lo / sqrt 2)) / 2, a sum
    z_mid = 0.5 * (torch.erf(hi * _SQRT_HALF) - torch.erf(lo * _SQRT_HALF))
    z_mid = torch.where(tail, torch.ones_like(z_mid), z_mid)
    lo_m = torch.where(lo_inf, torch.zeros_like(lo), lo)
    hi_m = torch.where(hi_inf, torch.zeros_like(hi), hi)
    phi_lo = torch.where(lo_inf, 0.0, torch.exp(-0.5 * lo_m * lo_m - _HALF_LOG_2PI))
    phi_hi = torch.where(hi_inf, 0.0, torch.exp(-0.5 * hi_m * hi_m - _HALF_LOG_2PI))
    log_z = torch.where(tail, log_z_tail, torch.log(z_mid))
    ratio_lo = torch.where(tail, a_tail, phi_lo / z_mid)
    ratio_hi = torch.where(hi_inf, 0.0, torch.where(tail, b_tail, phi_hi / z_mid))
    mean = ratio_lo - ratio_hi
    # a * phi(a) -> 0 at an infinite end
    second = 1 + torch.where(lo_inf, 0.0, lo_m * ratio_lo) - torch.where(hi_inf, 0.0, hi_m * ratio_hi)
    return log_z, torch.where(flip, -mean, mean), second


def truncated_normal_kl(
    loc1: torch.Tensor,
    scale1: torch.Tensor,
    lower1: torch.Tensor,
    upper1: torch.Tensor,
    loc2: torch.Tensor,
    scale2: torch.Tensor,
    lower2: torch.Tensor,
    upper2: torch.Tensor,
    event_dims: Tuple[int, ...],
) -> torch.Tensor:
    """Elementwise ``KL(TN(loc1, scale1, [lower1, upper1]) ||
    TN(loc2, scale2, [lower2, upper2]))`` summed over ``event_dims``, in the
    dtype of ``loc1`` (``inf`` where ``[lower1, upper1]`` is not inside
    ``[lower2, upper2]``)."""
    dtype = torch.promote_types(loc1.dtype, loc2.dtype)
    f64 = torch.float64
    m1, s1, m2, s2 = (x.to(f64) for x in (loc1, scale1, loc2, scale2))
    l1, u1, l2, u2 = (x.to(f64) for x in (lower1, upper1, lower2, upper2))
    log_z1, mean1, second1 = _std_moments((l1 - m1) / s1, (u1 - m1) / s1)
    log_z2, _, _ = _std_moments((l2 - m2) / s2, (u2 - m2) / s2)
    d = (m1 - m2) / s2
    r = s1 / s2
    kl = (
        torch.log(r.reciprocal())
        + log_z2
        - log_z1
        + 0.5 * (d * d + 2 * d * r * mean1 + (r * r - 1) * second1)
    )
    inside = (l1 >= l2) & (u1 <= u2)
    kl = torch.where(inside, kl, math.inf)
    if event_dims:
        kl = kl.sum(event_dims)
    return kl.to(dtype)
