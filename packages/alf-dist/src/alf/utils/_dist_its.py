"""Standard distributions for inverse transform sampling (ITS).

Each class bundles the ``cdf``, inverse cdf ``icdf`` and ``log_prob`` of a
standard (location 0, scale 1) distribution as static methods. They act
elementwise on float tensors of any shape and keep shape and dtype. The
formulas are arranged so that both tails keep full relative precision.
"""

import abc
import math

import torch

__all__ = [
    "InverseTransformSampling",
    "NormalITS",
    "CauchyITS",
    "T2Cdf_",
    "t2cdf",
    "T2ITS",
]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
_SQRT_2 = math.sqrt(2.0)
_SQRT_HALF = math.sqrt(0.5)
# below this probability NormalITS.icdf uses ndtri instead of erfinv
_NORMAL_TAIL = 0.02
_LOG_PI = math.log(math.pi)
_LOG_2 = math.log(2.0)


def _ndtri(u: torch.Tensor) -> torch.Tensor:
    """``torch.special.ndtri``, computed in float32 for float16/bfloat16
    (which torch's CPU kernel does not take)."""
    if u.dtype in (torch.float16, torch.bfloat16):
        return torch.special.ndtri(u.float()).to(u.dtype)
    return torch.special.ndtri(u)


def _log1p_square(x: torch.Tensor) -> torch.Tensor:
    """``log(1 + x^2)``, finite for every finite ``x`` (``x^2`` alone
    overflows beyond about 1.8e19 in float32): ``2 log(hypot(1, x))`` for
    ``|x| > 1``. The branch not taken has a zero (not NaN) gradient."""
    return torch.where(
        x.abs() > 1, 2 * torch.log(torch.hypot(torch.ones_like(x), x)), torch.log1p(x * x)
    )


def _neg_half_log_2pi(like: torch.Tensor) -> torch.Tensor:
    return like.new_full((), -_HALF_LOG_2PI)


class InverseTransformSampling(abc.ABC):
    """Interface for defining inverse transform sampling.

    Subclasses implement the three static methods for one standard
    distribution; ``TruncatedDistribution`` uses them to sample, by
    ``x = icdf(u)`` with ``u`` uniform, and to evaluate densities. The
    methods are called on the class (``NormalITS.cdf(x)``) or an instance.
    """

    @staticmethod
    @abc.abstractmethod
    def cdf(x: torch.Tensor) -> torch.Tensor:
        """Cumulative distribution function of this distribution."""

    @staticmethod
    @abc.abstractmethod
    def icdf(x: torch.Tensor) -> torch.Tensor:
        """Inverse of the CDF."""

    @staticmethod
    @abc.abstractmethod
    def log_prob(x: torch.Tensor) -> torch.Tensor:
        """Log probability density."""

    # ``P(x) - 1/2`` and its inverse, for intervals close to the median where
    # ``P`` itself rounds to 1/2. The defaults only shift ``cdf``/``icdf``; the
    # classes below override them with forms exact near 0.
    @classmethod
    def _centered_cdf(cls, x: torch.Tensor) -> torch.Tensor:
        return cls.cdf(x) - 0.5

    @classmethod
    def _centered_icdf(cls, c: torch.Tensor) -> torch.Tensor:
        return cls.icdf(c + 0.5)


class NormalITS(InverseTransformSampling):
    r"""Normal distribution, :math:`p(x) = 1/\sqrt{2\pi} \exp(-x^2/2)`.

    ``cdf`` and ``icdf`` go through ``erfc`` and ``erfinv``, several times
    faster on CPU than ``torch.special.ndtr``/``ndtri``. ``erfinv(2u - 1)``
    loses relative precision for small ``u`` (``2u - 1`` rounds), so below
    ``u = 0.02`` the exact ``ndtri`` replaces it.
    """

    @staticmethod
    def cdf(x):
        """Cumulative distribution function, ``erfc(-x / sqrt(2)) / 2`` (exact
        in the lower tail)."""
        return torch.erfc(x * -_SQRT_HALF) * 0.5

    @staticmethod
    def icdf(x):
        """Inverse of the CDF, ``sqrt(2) erfinv(2u - 1)`` (``ndtri`` for
        ``u < 0.02``)."""
        # one kernel for 2u - 1; z is a fresh product, so filling it in place
        # is safe for autograd (mul's backward does not need its output)
        z = torch.erfinv(torch.add(x.new_full((), -1.0), x, alpha=2.0)) * _SQRT_2
        tail = x < _NORMAL_TAIL
        if z.device.type != "cpu":
            return torch.where(tail, _ndtri(x), z)
        index = tail.nonzero(as_tuple=True)
        return z.index_put_(index, _ndtri(x[index]))

    @staticmethod
    def log_prob(x):
        """Log probability density."""
        return torch.addcmul(_neg_half_log_2pi(x), x, x, value=-0.5)

    @staticmethod
    def _centered_cdf(x):
        return torch.erf(x * _SQRT_HALF) * 0.5

    @staticmethod
    def _centered_icdf(c):
        return torch.erfinv(2 * c) * _SQRT_2


class CauchyITS(InverseTransformSampling):
    r"""Cauchy distribution, :math:`p(x) = 1 / (\pi (1 + x^2))`."""

    @staticmethod
    def cdf(x):
        """Cumulative distribution function, ``atan2(1, -x) / pi``.

        Equal to ``1/2 + atan(x)/pi`` but exact in the lower tail.
        """
        return torch.atan2(torch.ones_like(x), -x) / math.pi

    @staticmethod
    def icdf(x):
        """Inverse of the CDF: ``-cot(pi u)`` below 1/2, ``cot(pi (1-u))`` above."""
        lower = x < 0.5
        v = torch.where(lower, x, 1 - x)
        t = 1 / torch.tan(math.pi * v)
        return torch.where(lower, -t, t)

    @staticmethod
    def log_prob(x):
        """Log probability density, ``-log(pi) - log(1 + x^2)``."""
        return -_LOG_PI - _log1p_square(x)

    @staticmethod
    def _centered_cdf(x):
        return torch.atan(x) / math.pi

    @staticmethod
    def _centered_icdf(c):
        return torch.tan(math.pi * c)


class T2Cdf_(torch.autograd.Function):
    """CDF of Student's t with 2 degrees of freedom, with an exact gradient.

    ``P(x) = 1/2 + x / (2 sqrt(1 + x^2))``, evaluated as
    ``1 / (2 h (h + |x|))`` (mirrored above 0) with ``h = hypot(1, x)``, so
    neither tail cancels or overflows. The backward pass uses the density
    ``p(x) = 1 / (2 h^3)`` directly instead of differentiating the
    branchy forward formula.
    """

    @staticmethod
    def forward(ctx, x):
        """Compute ``P(x)`` elementwise (any shape, float dtype)."""
        h = torch.hypot(torch.ones_like(x), x)
        tail = 0.5 / (h * (h + x.abs()))
        ctx.save_for_backward(h)
        return torch.where(x < 0, tail, 1 - tail)

    @staticmethod
    def backward(ctx, grad_output):
        """``dP/dx = p(x) = 1 / (2 (1 + x^2)^{3/2})``."""
        (h,) = ctx.saved_tensors
        return grad_output * (0.5 / (h * h * h))


t2cdf = T2Cdf_.apply


class T2ITS(InverseTransformSampling):
    r"""Student's t-distribution with 2 degrees of freedom,
    :math:`p(x) = 1 / (2 (1 + x^2)^{3/2})`."""

    @staticmethod
    def cdf(x):
        """Cumulative distribution function of this distribution."""
        return t2cdf(x)

    @staticmethod
    def icdf(x):
        """Inverse of the CDF: ``(2u - 1) / (2 sqrt(u (1 - u)))``."""
        return (2 * x - 1) / (2 * torch.sqrt(x * (1 - x)))

    @staticmethod
    def log_prob(x):
        """Log probability density, ``-log(2) - 1.5 log(1 + x^2)``."""
        return -_LOG_2 - 1.5 * _log1p_square(x)

    @staticmethod
    def _centered_cdf(x):
        return x / (2 * torch.hypot(torch.ones_like(x), x))

    @staticmethod
    def _centered_icdf(c):
        # z = 2c / sqrt(1 - 4c^2), with 1 - 4c^2 = (1 - 2c)(1 + 2c)
        return 2 * c / torch.sqrt((1 - 2 * c) * (1 + 2 * c))
