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

import math
from typing import NamedTuple, Optional, Union

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
from alf.utils._dist_normal_tail import TAIL_START, log_mills, log_tail_ratio, tail_icdf
from alf.utils._dist_truncated_kl import truncated_normal_kl

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

# an interval holding less than this mass (in P units) may lie close to the
# median, where P(u') - P(l') loses digits: see _centered_params
_NARROW = 2.0**-6


class TruncatedDistribution(td.Distribution):
    """The base class of truncated distributions.

    .. math::

        q(x) = \\frac{1}{s (P(u') - P(l'))} p\\left(\\frac{x-\\mu}{s}\\right)
        \\text{ if } l \\le x \\le u, \\quad q(x) = 0 \\text{ otherwise,}

    where ``p`` and ``P`` are the pdf and cdf of the standard distribution
    ``its``. When the interval lies mostly above ``loc`` the computation is
    mirrored so that the normalizer is taken from the lower tail of ``P``
    without cancellation. For ``NormalITS``, an interval lying more than
    ``TAIL_START`` (5) standard deviations from ``loc`` is evaluated in log
    space relative to the tail mass at its nearer bound (see
    ``alf.utils._dist_normal_tail``), so ``log_prob`` stays exact and
    ``rsample`` inside the bounds with finite gradients however far the
    interval is (where the plain cdf would underflow beyond about 13 (float32)
    or 37 (float64) standard deviations); this path runs only for batches
    that contain such an element. For ``CauchyITS`` with finite bounds the
    mass ``P(u') - P(l')`` is computed as one angle, exact far from ``loc``.
    An interval holding little mass close to the median (a scale much larger
    than the interval, where ``P`` rounds to 1/2) is measured and sampled
    with ``P - 1/2`` and its inverse instead.

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
            ``log_prob``, values outside the bounds (whose ``log_prob`` is
            ``-inf`` without validation).
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
        loc_t = torch.as_tensor(loc)
        if not loc_t.dtype.is_floating_point:
            loc_t = loc_t.to(torch.get_default_dtype())
        scale_t = torch.as_tensor(scale, dtype=loc_t.dtype, device=loc_t.device)
        try:
            loc_t, scale_t = torch.broadcast_tensors(loc_t, scale_t)
        except RuntimeError:
            raise ValueError(
                f"loc and scale must broadcast; got shapes {tuple(loc_t.shape)} and "
                f"{tuple(scale_t.shape)}"
            ) from None
        lower = torch.as_tensor(lower_bound, dtype=loc_t.dtype, device=loc_t.device)
        upper = torch.as_tensor(upper_bound, dtype=loc_t.dtype, device=loc_t.device)
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
        if loc_t.dim() < n or loc_t.shape[loc_t.dim() - n :] != event_shape:
            raise ValueError(
                f"loc must have shape batch_shape + event_shape with event_shape "
                f"{tuple(event_shape)} (the bounds' shape); got {tuple(loc_t.shape)}"
            )
        self._loc = loc_t
        self._scale = scale_t
        self._lower_bound = lower.contiguous()
        self._upper_bound = upper.contiguous()
        center = (lower + upper) * 0.5
        self._center = torch.where(torch.isnan(center), 0.0, center)  # (-inf, inf)
        self._its = its
        self._far_tail = issubclass(its_cls, NormalITS)
        self._finite_bounds = bool(torch.isfinite(upper - lower).all())
        # the Cauchy mass as one angle needs finite bounds (see _params)
        self._cauchy = issubclass(its_cls, CauchyITS) and self._finite_bounds
        self._event_dims = tuple(range(-n, 0))
        self._standardized: Optional[_Params] = None
        super().__init__(loc_t.shape[: loc_t.dim() - n], event_shape, validate_args=validate_args)

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
        interval = constraints.interval(self._lower_bound, self._upper_bound)
        n = len(self.event_shape)
        return _IndependentInterval(interval, n) if n else interval

    @property
    def mode(self) -> torch.Tensor:
        """Mode of this distribution: ``loc`` clipped to the bounds
        (differentiable), ``batch_shape + event_shape``."""
        return torch.clamp(self._loc, self._lower_bound, self._upper_bound)

    def _params(self) -> "_Params":
        """The standardized quantities shared by ``rsample`` and ``log_prob``.

        They are computed once when no gradient is recorded (no parameter
        requires grad, or grad mode is off); otherwise at each call, so that
        every ``rsample``/``log_prob`` gets a graph of its own that can be
        backpropagated independently of the others.

        With ``sign = -1`` when the interval's center is above ``loc`` (else
        ``+1``): ``a = P(sign l')``, ``width = P(sign u') - a`` (negative
        when mirrored), ``signed_scale = sign * scale`` and ``log_norm =
        log(scale * |width|)``. For the normal family, elements whose interval
        lies more than ``TAIL_START`` standard deviations from ``loc`` get
        their values from ``tail`` instead (and harmless placeholders here).
        Elements whose interval holds little mass close to the median (a
        scale much larger than the interval), where ``P`` rounds to 1/2, get
        theirs from ``centered`` (``P - 1/2``, exact near 0).
        """
        loc, scale = self._loc, self._scale
        tracked = torch.is_grad_enabled() and any(
            t.requires_grad for t in (loc, scale, self._lower_bound, self._upper_bound)
        )
        if self._standardized is not None and not tracked:
            return self._standardized
        zl = self._over_scale(self._lower_bound - loc)
        zu = self._over_scale(self._upper_bound - loc)
        tail = None
        # two reductions decide whether any element needs the far-tail path
        if (
            self._far_tail
            and zl.numel() > 0
            and bool((zl.max() > TAIL_START) | (zu.min() < -TAIL_START))
        ):
            tail = self._tail_params(zl, zu)
            # placeholders keep the plain path (and so its gradient) finite
            zl = torch.where(tail.mask, -1.0, zl)
            zu = torch.where(tail.mask, 1.0, zu)
        # -1 where the interval's center is above loc, else +1 (copysign
        # avoids a slower scalar where)
        sign = torch.copysign(loc.new_ones(()), loc - self._center)
        cdf = self._its.cdf
        a = cdf(zl * sign)
        if self._cauchy:
            # atan(zu) - atan(zl) as one angle: no cancellation far from loc
            standard_width = (self._upper_bound - self._lower_bound) / scale
            width = torch.atan2(standard_width * sign, 1 + zl * zu) / math.pi
        else:
            width = cdf(zu * sign) - a
        signed_scale = scale * sign
        centered = None
        # one reduction decides whether any element may need the centered path
        if width.numel() > 0 and bool((width.abs() < _NARROW).any()):
            centered = self._centered_params(zl * sign, zu * sign, a, width)
        norm_width = (
            width if centered is None else torch.where(centered.mask, centered.width, width)
        )
        # width has the sign of sign, so width * signed_scale = |width| scale
        log_norm = torch.log(norm_width * signed_scale)
        params = _Params(a, width, signed_scale, log_norm, tail, centered)
        if not tracked:
            self._standardized = params
        return params

    def _centered_params(
        self, zl: torch.Tensor, zu: torch.Tensor, a: torch.Tensor, width: torch.Tensor
    ) -> Optional["_Centered"]:
        """``P - 1/2`` counterparts of ``a`` and ``width`` for the (possibly
        mirrored) standardized bounds ``zl``, ``zu``, where they are more
        precise, or None if they are nowhere.

        ``P(zu) - P(zl)`` computed from ``P`` values has an absolute error of
        a few ulps of ``max(P(zl), P(zu))``, computed from ``P - 1/2`` values
        of ``max(|P(zl) - 1/2|, |P(zu) - 1/2|)``: the latter is chosen where
        it is smaller and the former is large relative to the width.
        """
        centered_cdf = self._its._centered_cdf
        ca = centered_cdf(zl)
        # the Cauchy width is already exact (one angle)
        cwidth = width if self._cauchy else centered_cdf(zu) - ca
        tail_size = torch.maximum(a, a + width)
        centered_size = torch.maximum(ca.abs(), (ca + cwidth).abs())
        mask = (centered_size < tail_size) & (tail_size * _NARROW > width.abs())
        if not bool(mask.any()):
            return None
        # placeholders (0) elsewhere keep the centered sample finite
        return _Centered(
            mask=mask, a=torch.where(mask, ca, 0.0), width=torch.where(mask, cwidth, 0.0)
        )

    def _over_scale(self, distance: torch.Tensor) -> torch.Tensor:
        """``distance / scale``, keeping infinite distances (infinite bounds)
        out of the division so that their gradient is 0, not NaN."""
        if self._finite_bounds:
            return distance / self._scale
        finite = torch.isfinite(distance)
        return torch.where(finite, torch.where(finite, distance, 0.0) / self._scale, distance)

    def _tail_params(self, zl: torch.Tensor, zu: torch.Tensor) -> "_NormalTail":
        """Log-space description of the normal far tail (see
        ``alf.utils._dist_normal_tail``) for the standardized bounds
        ``zl``, ``zu`` (``batch_shape + event_shape``)."""
        loc, scale = self._loc, self._scale
        lower, upper = self._lower_bound, self._upper_bound
        above = zl > TAIL_START
        mask = above | (zu < -TAIL_START)
        beta = torch.where(mask, torch.where(above, zl, -zu), TAIL_START)
        width = torch.where(mask, self._over_scale(upper - lower), 1.0)
        near = torch.where(above, lower, upper).expand_as(loc)
        step = torch.where(above, scale, -scale)
        beta64, width64 = beta.double(), width.double()
        finite = torch.isfinite(width64)
        log_fraction = torch.where(
            finite, log_tail_ratio(beta64, torch.where(finite, width64, 1.0)), -math.inf
        )
        log_const = log_mills(beta64) + torch.log(-torch.expm1(log_fraction))
        return _NormalTail(
            mask=mask,
            near=near,
            step=step,
            beta=beta,
            log_const=log_const.to(loc.dtype) + torch.log(scale),
            beta64=beta64,
            width64=width64,
            fraction64=torch.exp(log_fraction),
        )

    def rsample(self, sample_shape=()) -> torch.Tensor:
        """Generates a ``sample_shape`` shaped reparameterized sample.

        Args:
            sample_shape (Size): sample shape.
        Returns:
            Tensor of shape ``sample_shape + batch_shape + event_shape``,
            inside ``[lower_bound, upper_bound]``.
        """
        a, width, signed_scale, _, tail, centered = self._params()
        shape = self._extended_shape(sample_shape)
        u = torch.rand(shape, dtype=self._loc.dtype, device=self._loc.device)
        # u = 0 (probability 2^-24 in float32) would give icdf(0) = -inf (or,
        # mirrored, icdf(1) = inf) where a bound is infinite
        finfo = torch.finfo(u.dtype)
        target = torch.addcmul(a, u, width).clamp_(finfo.tiny, 1 - finfo.eps / 2)
        z = self._its.icdf(target)
        if centered is not None:
            z_centered = self._its._centered_icdf(torch.addcmul(centered.a, u, centered.width))
            z = torch.where(centered.mask, z_centered, z)
        x = torch.addcmul(self._loc, signed_scale, z)
        if tail is not None:
            index = tail.mask.expand(shape).nonzero(as_tuple=True)
            # shape is sample_shape + loc.shape: trailing indices address loc
            at = index[len(shape) - self._loc.dim() :]
            t = tail_icdf(tail.beta64[at], tail.width64[at], tail.fraction64[at], u[index].double())
            x = x.index_put(index, torch.addcmul(tail.near[at], tail.step[at], t.to(x.dtype)))
        return torch.clamp(x, self._lower_bound, self._upper_bound)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """The log of the probability density evaluated at ``value``.

        Args:
            value (Tensor): its shape should be
                ``sample_shape + batch_shape + event_shape``.
        Returns:
            Tensor of shape ``sample_shape + batch_shape``; ``-inf`` where
            (without validation) a value lies outside the bounds.
        """
        if self._validate_args:
            self._validate_sample(value)
        _, _, _, log_norm, tail, _ = self._params()
        lp = self._its.log_prob((value - self._loc) / self._scale) - log_norm
        if tail is not None:
            # log phi(beta + t) - log phi(beta) - log(m(beta) (1 - Q(beta + w) / Q(beta)) s)
            t = (value - tail.near) / tail.step
            lp = torch.where(tail.mask, -t * (tail.beta + 0.5 * t) - tail.log_const, lp)
        if not self._validate_args:
            # q(x) = 0 outside [l, u] (validation rejects such values instead)
            inside = (value >= self._lower_bound) & (value <= self._upper_bound)
            lp = torch.where(inside, lp, -math.inf)
        if self._event_dims:
            lp = lp.sum(self._event_dims)
        return lp


class _IndependentInterval(constraints.independent):
    """``constraints.independent(interval, n)`` (``n >= 1``) whose ``check``
    also works on empty batches (torch's reshapes to ``-1``, which is
    ambiguous for zero elements)."""

    def check(self, value):
        result = self.base_constraint.check(value)
        return result.flatten(-self.reinterpreted_batch_ndims).all(-1)


class _NormalTail(NamedTuple):
    """Far-tail quantities of a truncated normal, ``batch_shape +
    event_shape`` each; placeholders (finite) where ``mask`` is False."""

    mask: torch.Tensor  # bool: the interval is beyond TAIL_START from loc
    near: torch.Tensor  # the bound nearer to loc
    step: torch.Tensor  # +scale (interval above loc) or -scale
    beta: torch.Tensor  # standardized distance of ``near`` from loc
    log_const: torch.Tensor  # log(m(beta) (1 - fraction) scale)
    beta64: torch.Tensor  # beta in float64
    width64: torch.Tensor  # standardized interval width, float64
    fraction64: torch.Tensor  # Q(beta + width) / Q(beta), float64


class _Centered(NamedTuple):
    """``P - 1/2`` counterparts of ``_Params.a`` and ``_Params.width``,
    ``batch_shape + event_shape`` each; 0 where ``mask`` is False."""

    mask: torch.Tensor  # bool: the interval is better measured from the median
    a: torch.Tensor  # P(sign l') - 1/2
    width: torch.Tensor  # P(sign u') - P(sign l'), from P - 1/2 values


class _Params(NamedTuple):
    a: torch.Tensor
    width: torch.Tensor
    signed_scale: torch.Tensor
    log_norm: torch.Tensor
    tail: Optional[_NormalTail]
    centered: Optional[_Centered]


class _FixedTruncated(TruncatedDistribution):
    """A ``TruncatedDistribution`` whose standard distribution is fixed by
    the subclass (class attribute ``_standard``)."""

    _standard: type

    def __init__(self, loc, scale, lower_bound, upper_bound, validate_args=None):
        super().__init__(
            loc, scale, lower_bound, upper_bound, its=self._standard, validate_args=validate_args
        )


class TruncatedNormal(_FixedTruncated):
    """Truncated normal distribution,
    ``TruncatedNormal(loc, scale, lower_bound, upper_bound, validate_args=None)``.

    ``q(x) = p((x - mu) / s) / (s (P(u') - P(l')))`` on ``[l, u]`` with ``p``
    and ``P`` the pdf and cdf of the standard normal distribution. Intervals
    lying far from ``loc`` (any distance) are handled in log space, with
    exact ``log_prob``, samples in the bounds and finite gradients. The
    arguments are those of ``TruncatedDistribution`` with ``its = NormalITS``.
    """

    _standard = NormalITS


class TruncatedCauchy(_FixedTruncated):
    """Truncated Cauchy distribution,
    ``TruncatedCauchy(loc, scale, lower_bound, upper_bound, validate_args=None)``.

    ``q(x) = p((x - mu) / s) / (s (P(u') - P(l')))`` on ``[l, u]`` with ``p``
    and ``P`` the pdf and cdf of the standard Cauchy distribution. The
    arguments are those of ``TruncatedDistribution`` with ``its = CauchyITS``.
    """

    _standard = CauchyITS


class TruncatedT2(_FixedTruncated):
    """Truncated Student's t distribution with 2 degrees of freedom,
    ``TruncatedT2(loc, scale, lower_bound, upper_bound, validate_args=None)``.

    ``q(x) = p((x - mu) / s) / (s (P(u') - P(l')))`` on ``[l, u]`` with
    ``p(x) = 1 / (2 (1 + x^2)^{3/2})`` and ``P`` its cdf. The arguments are
    those of ``TruncatedDistribution`` with ``its = T2ITS``.
    """

    _standard = T2ITS


@td.kl.register_kl(TruncatedNormal, TruncatedNormal)
def _kl_truncated_normal_truncated_normal(p: TruncatedNormal, q: TruncatedNormal) -> torch.Tensor:
    """Closed-form ``KL(p || q)`` of two truncated normals, ``batch_shape``
    (summed over the event dims), registered with
    ``torch.distributions.kl_divergence``; ``inf`` where ``p``'s interval is
    not inside ``q``'s. See ``_dist_truncated_kl``."""
    if p.event_shape != q.event_shape:
        raise ValueError(
            f"p and q must have the same event_shape; got {tuple(p.event_shape)} and "
            f"{tuple(q.event_shape)}"
        )
    return truncated_normal_kl(
        p.loc,
        p.scale,
        p.lower_bound,
        p.upper_bound,
        q.loc,
        q.scale,
        q.lower_bound,
        q.upper_bound,
        p._event_dims,
    )


# Public names defined in this package's private helper modules report this module, so
# pickles, reprs and docs name the public import path, never a private file.
for _name in __all__:
    _obj = globals()[_name]
    if str(getattr(_obj, "__module__", None) or "").startswith("alf.utils._"):
        _obj.__module__ = "alf.utils.distributions"  # not __name__: "__main__" under python -m
del _name, _obj
