"""The far tail of the standard normal distribution, in log space.

A normal distribution truncated to an interval far from its mean has a mass
``Q(beta) - Q(beta + w)`` (``Q`` the upper tail probability, ``beta`` the
standardized distance of the nearer bound, ``w`` the standardized width)
that underflows beyond ``beta`` of about 13 (float32) or 37 (float64). Here
every quantity is kept relative to ``Q(beta)``:

.. math::

    \\log \\frac{Q(\\beta + t)}{Q(\\beta)}
        = -t (\\beta + t / 2) + \\log m(\\beta + t) - \\log m(\\beta),

with the Mills ratio ``m(s) = Q(s) / phi(s) = sqrt(pi / 2) erfcx(s / sqrt(2))``
(about ``1 / s``), so the large quadratic terms cancel analytically instead
of numerically.

The functions take float64 tensors (the callers upcast the few far-tail
elements; ``erfcx``'s derivative cancels in float32) of one broadcast shape,
with ``beta >= 1``, and are differentiable in all their tensor arguments.
"""

import math

import torch

__all__ = ["TAIL_START", "log_mills", "log_tail_ratio", "tail_icdf"]

#: standardized distance from ``loc`` of the nearer bound beyond which the
#: truncated normal uses this log-space tail (the plain cdf path is exact to
#: a few ulps up to here in float32 and float64).
TAIL_START = 5.0

_SQRT_HALF = math.sqrt(0.5)
_HALF_LOG_HALF_PI = 0.5 * math.log(math.pi / 2)
_SQRT_HALF_PI = math.sqrt(math.pi / 2)
# Newton steps for tail_icdf from the quadratic initial guess: the error is
# below 1e-15 after three from any beta >= 5 (the guess is within 7%)
_NEWTON_STEPS = 3
# u is floored here so that an infinite interval never yields t = inf
_MIN_U = 2.0**-64


def log_mills(s: torch.Tensor) -> torch.Tensor:
    """``log(Q(s) / phi(s))``, the log Mills ratio of the standard normal
    (``-inf`` at ``s = inf``)."""
    return torch.log(torch.special.erfcx(s * _SQRT_HALF)) + _HALF_LOG_HALF_PI


def log_tail_ratio(beta: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``log(Q(beta + t) / Q(beta))`` for ``t >= 0`` (``-inf`` at
    ``t = inf``), a decreasing concave function of ``t``."""
    return log_mills(beta + t) - log_mills(beta) - t * (beta + 0.5 * t)


def tail_icdf(
    beta: torch.Tensor, width: torch.Tensor, tail_fraction: torch.Tensor, u: torch.Tensor
) -> torch.Tensor:
    """Standardized distance ``t`` in ``[0, width]`` of a sample from the
    nearer bound, for uniform ``u``.

    Solves ``Q(beta + t) = Q(beta) (u + (1 - u) f)`` with ``f =
    tail_fraction = Q(beta + width) / Q(beta)``, i.e. ``log_tail_ratio(beta,
    t) = log(u + (1 - u) f)``, by Newton's method: the function is concave
    and decreasing and the initial guess (which drops the Mills ratio terms)
    lies above the root, so the iterates decrease monotonically to it. The
    iterations run without gradient; one last differentiable step from the
    converged point gives the exact implicit derivative
    ``dt = m(beta + t) (d target - d log_tail_ratio)``.

    Args:
        beta (Tensor): distance of the nearer bound from the mean, in
            standard deviations (``>= 1``), float64.
        width (Tensor): width of the interval in standard deviations
            (``> 0``, may be ``inf``), float64.
        tail_fraction (Tensor): ``Q(beta + width) / Q(beta)``, float64.
        u (Tensor): uniform numbers in ``[0, 1)``, float64.
    Returns:
        Tensor: ``t``, float64, of the broadcast shape.
    """
    u = u.clamp_min(_MIN_U)
    target = torch.log(tail_fraction + u * (1 - tail_fraction))
    with torch.no_grad():
        b, goal = beta.detach(), target.detach()
        # root of -t (b + t / 2) = goal, in a form without cancellation
        t = -2 * goal / (b + torch.sqrt(b * b - 2 * goal))
        offset = log_mills(b) + goal
        for _ in range(_NEWTON_STEPS):
            # one erfcx gives both m(b + t) and log m(b + t)
            e = torch.special.erfcx((b + t) * _SQRT_HALF)
            residual = torch.log(e) + _HALF_LOG_HALF_PI - offset - t * (b + 0.5 * t)
            t = t + e * _SQRT_HALF_PI * residual
        t = torch.minimum(t.clamp_min(0.0), width.detach())
        slope = torch.special.erfcx((b + t) * _SQRT_HALF) * _SQRT_HALF_PI
    t = t + slope * (log_tail_ratio(beta, t) - target)
    return torch.minimum(t.clamp_min(0.0), width)
