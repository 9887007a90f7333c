"""Truncated distributions sampled by inverse transform sampling.

A truncated distribution restricts a location-scale family
``p((x - loc) / scale) / scale`` to ``[lower_bound, upper_bound]`` and
renormalizes it:

.. math::

    q(x) = \\frac{1}{s (P(u') - P(l'))} p\\left(\\frac{x - \\mu}{s}\\right),
    \\quad l \\le x \\le u,

with ``l' = (l - mu) / s`` and ``u' = (u - mu) / s`` the standardized bounds
and ``P`` the cdf of ``p``. Samples are ``mu + s P^{-1}(P(l') + U (P(u') -
P(l')))`` with ``U ~ U(0, 1)``, differentiable in ``mu`` and ``s``.

Shapes: ``loc`` and ``scale`` are ``batch_shape + event_shape``; the bounds
are ``event_shape`` (one bound per event dimension, shared by the batch).
"""

from typing import Optional, Union

import torch
import torch.distributions as td
from torch.distributions import constraints

from alf.utils._dist_its import (
    T2ITS,
    CauchyITS,
    InverseTransformSampling,
    NormalITS,
    T2Cdf_,
    t2cdf,
)

__all__ = [
    "InverseTransformSampling",
    "NormalITS",
    "CauchyITS",
    "T2Cdf_",
    "t2cdf",
    "T2ITS",
    "TruncatedDistribution",
    "TruncatedNormal",
    "TruncatedCauchy",
    "TruncatedT2",
]

TensorLike = Union[torch.Tensor, float]


class TruncatedDistribution(td.Distribution):
    """The base class of truncated distributions.

    .. math::

        q(x) = \\frac{1}{s (P(u') - P(l'))} p\\left(\\frac{x-\\mu}{s}\\right)
        \\text{ if } l \\le x \\le u, \\quad q(x) = 0 \\text{ otherwise,}

    where ``p`` and ``P`` are the pdf and cdf of the standard distribution
    ``its``. When the interval lies mostly above ``loc`` the computation is
    mirrored so that the normalizer is taken from the lower tail of ``P``
    without cancellation.

    Args:
        loc (Tensor): the location parameter, ``batch_shape + event_shape``.
        scale (Tensor): the scale parameter (positive), same shape as ``loc``
            (or broadcastable to it).
        lower_bound (Tensor | float): the lower bound, ``event_shape``.
        upper_bound (Tensor | float): the upper bound, ``event_shape``;
            ``> lower_bound`` everywhere.
        its (InverseTransformSampling): the standard distribution to be used.
        validate_args (bool | None): as in ``torch.distributions``;
            validation rejects a non-positive ``scale`` and, in
            ``log_prob``, values outside the bounds.
    Raises:
        ValueError: ``lower_bound >= upper_bound`` somewhere, the bounds do
            not broadcast to each other, ``loc`` does not end with the bounds'
            shape, or (with validation) ``scale <= 0``.
        TypeError: ``its`` is not an ``InverseTransformSampling``.
    """

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    has_rsample = True

    def __init__(
        self,
        loc: TensorLike,
        scale: TensorLike,
        lower_bound: TensorLike,
        upper_bound: TensorLike,
        its: InverseTransformSampling,
        validate_args: Optional[bool] = None,
    ):
        its_cls = its if isinstance(its, type) else type(its)
        if not issubclass(its_cls, InverseTransformSampling):
            raise TypeError(f"its must be an InverseTransformSampling; got {its!r}")
        loc = torch.as_tensor(loc)
        if not loc.dtype.is_floating_point:
            loc = loc.to(torch.get_default_dtype())
        scale = torch.as_tensor(scale, dtype=loc.dtype, device=loc.device)
        try:
            loc, scale = torch.broadcast_tensors(loc, scale)
        except RuntimeError:
            raise ValueError(
                f"loc and scale must broadcast; got shapes {tuple(loc.shape)} and "
                f"{tuple(scale.shape)}"
            ) from None
        lower = torch.as_tensor(lower_bound, dtype=loc.dtype, device=loc.device)
        upper = torch.as_tensor(upper_bound, dtype=loc.dtype, device=loc.device)
        try:
            lower, upper = torch.broadcast_tensors(lower, upper)
        except RuntimeError:
            raise ValueError(
                f"lower_bound and upper_bound must broadcast; got shapes "
                f"{tuple(lower.shape)} and {tuple(upper.shape)}"
            ) from None
        if not bool((lower < upper).all()):
            raise ValueError(
                f"lower_bound must be < upper_bound everywhere; got lower_bound="
                f"{lower.tolist()}, upper_bound={upper.tolist()}"
            )
        event_shape = lower.shape
        n = len(event_shape)
        if loc.dim() < n or loc.shape[loc.dim() - n :] != event_shape:
            raise ValueError(
                f"loc must have shape batch_shape + event_shape with event_shape "
                f"{tuple(event_shape)} (the bounds' shape); got {tuple(loc.shape)}"
            )
        self._loc = loc
        self._scale = scale
        self._lower_bound = lower.contiguous()
        self._upper_bound = upper.contiguous()
        self._its = its
        self._event_dims = tuple(range(-n, 0))
        self._standardized = None
        super().__init__(loc.shape[: loc.dim() - n], event_shape, validate_args=validate_args)

    @property
    def loc(self) -> torch.Tensor:
        """Location parameter of this distribution."""
        return self._loc

    @property
    def scale(self) -> torch.Tensor:
        """Scale parameter of this distribution."""
        return self._scale

    @property
    def lower_bound(self) -> torch.Tensor:
        """Lower bound of this distribution."""
        return self._lower_bound

    @property
    def upper_bound(self) -> torch.Tensor:
        """Upper bound of this distribution."""
        return self._upper_bound

    @property
    def its(self) -> InverseTransformSampling:
        """The standard distribution ``p`` being truncated."""
        return self._its

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        return constraints.independent(
            constraints.interval(self._lower_bound, self._upper_bound), len(self.event_shape)
        )

    @property
    def mode(self) -> torch.Tensor:
        """Mode of this distribution: ``loc`` clipped to the bounds
        (differentiable), ``batch_shape + event_shape``."""
        return torch.clamp(self._loc, self._lower_bound, self._upper_bound)

    def _params(self):
        """``(a, width, signed_scale, log_norm)`` shared by ``rsample`` and
        ``log_prob``, computed once (recomputed if first built without grad
        and now needed with grad).

        With ``sign = -1`` when the interval's center is above ``loc`` (else
        ``+1``): ``a = P(sign l')``, ``width = P(sign u') - a`` (negative
        when mirrored), ``signed_scale = sign * scale`` and ``log_norm =
        log(scale * |width|)``.
        """
        cached = self._standardized
        if cached is not None and (cached[0] or not torch.is_grad_enabled()):
            return cached[1]
        loc, scale = self._loc, self._scale
        zl = (self._lower_bound - loc) / scale
        zu = (self._upper_bound - loc) / scale
        # -1 where zl + zu > 0, else +1 (copysign avoids a slower scalar where)
        sign = torch.copysign(loc.new_ones(()), -(zl + zu))
        cdf = self._its.cdf
        a = cdf(zl * sign)
        width = cdf(zu * sign) - a
        signed_scale = scale * sign
        log_norm = torch.log(width.abs() * scale)
        params = (a, width, signed_scale, log_norm)
        self._standardized = (torch.is_grad_enabled(), params)
        return params

    def rsample(self, sample_shape=()) -> torch.Tensor:
        """Generates a ``sample_shape`` shaped reparameterized sample.

        Args:
            sample_shape (Size): sample shape.
        Returns:
            Tensor of shape ``sample_shape + batch_shape + event_shape``,
            inside ``[lower_bound, upper_bound]``.
        """
        a, width, signed_scale, _ = self._params()
        shape = self._extended_shape(sample_shape)
        u = torch.rand(shape, dtype=self._loc.dtype, device=self._loc.device)
        z = self._its.icdf(torch.addcmul(a, u, width))
        x = torch.addcmul(self._loc, signed_scale, z)
        return torch.clamp(x, self._lower_bound, self._upper_bound)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """The log of the probability density evaluated at ``value``.

        Args:
            value (Tensor): its shape should be
                ``sample_shape + batch_shape + event_shape``.
        Returns:
            Tensor of shape ``sample_shape + batch_shape``.
        """
        if self._validate_args:
            self._validate_sample(value)
        _, _, _, log_norm = self._params()
        lp = self._its.log_prob((value - self._loc) / self._scale) - log_norm
        if self._event_dims:
            lp = lp.sum(self._event_dims)
        return lp


class TruncatedNormal(TruncatedDistribution):
    """Truncated normal distribution.

    ``q(x) = p((x - mu) / s) / (s (P(u') - P(l')))`` on ``[l, u]`` with ``p``
    and ``P`` the pdf and cdf of the standard normal distribution.

    Args:
        loc (Tensor): the location parameter, ``batch_shape + event_shape``.
        scale (Tensor): the scale parameter, positive, like ``loc``.
        lower_bound (Tensor | float): the lower bound, ``event_shape``.
        upper_bound (Tensor | float): the upper bound, ``event_shape``.
        validate_args (bool | None): as in ``torch.distributions``.
    """

    def __init__(self, loc, scale, lower_bound, upper_bound, validate_args=None):
        super().__init__(
            loc, scale, lower_bound, upper_bound, its=NormalITS, validate_args=validate_args
        )


class TruncatedCauchy(TruncatedDistribution):
    """Truncated Cauchy distribution.

    ``q(x) = p((x - mu) / s) / (s (P(u') - P(l')))`` on ``[l, u]`` with ``p``
    and ``P`` the pdf and cdf of the standard Cauchy distribution.

    Args:
        loc (Tensor): the location parameter, ``batch_shape + event_shape``.
        scale (Tensor): the scale parameter, positive, like ``loc``.
        lower_bound (Tensor | float): the lower bound, ``event_shape``.
        upper_bound (Tensor | float): the upper bound, ``event_shape``.
        validate_args (bool | None): as in ``torch.distributions``.
    """

    def __init__(self, loc, scale, lower_bound, upper_bound, validate_args=None):
        super().__init__(
            loc, scale, lower_bound, upper_bound, its=CauchyITS, validate_args=validate_args
        )


class TruncatedT2(TruncatedDistribution):
    """Truncated Student's t distribution with 2 degrees of freedom.

    ``q(x) = p((x - mu) / s) / (s (P(u') - P(l')))`` on ``[l, u]`` with
    ``p(x) = 1 / (2 (1 + x^2)^{3/2})`` and ``P`` its cdf.

    Args:
        loc (Tensor): the location parameter, ``batch_shape + event_shape``.
        scale (Tensor): the scale parameter, positive, like ``loc``.
        lower_bound (Tensor | float): the lower bound, ``event_shape``.
        upper_bound (Tensor | float): the upper bound, ``event_shape``.
        validate_args (bool | None): as in ``torch.distributions``.
    """

    def __init__(self, loc, scale, lower_bound, upper_bound, validate_args=None):
        super().__init__(
            loc, scale, lower_bound, upper_bound, its=T2ITS, validate_args=validate_args
        )
