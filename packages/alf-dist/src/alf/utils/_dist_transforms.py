"""Bijective transforms for ``torch.distributions.TransformedDistribution``.

Every transform here has a ``get_builder()`` returning a picklable callable
that creates a fresh, equally configured transform (with its own empty
cache). ``DistributionSpec`` uses these builders to rebuild a transformed
distribution from its parameters.

All transforms are elementwise (``event_dim == 0``) unless stated otherwise;
they accept tensors of any shape and floating dtype and keep shape and dtype.
"""

import functools
import math
from typing import TYPE_CHECKING, Callable, Union

import torch
import torch.distributions as td
import torch.nn.functional as F
from torch.distributions import constraints

from alf.utils import math_ops
from alf.utils._math_checks import check_hinge_softness

__all__ = [
    "get_invertible",
    "AbsTransform",
    "AffineTransform",
    "ExpTransform",
    "PowerTransform",
    "SigmoidTransform",
    "SoftmaxTransform",
    "Softplus",
    "Softsign",
    "StableTanh",
    "Softclip",
    "SoftclipTF",
    "Softlower",
    "Softupper",
    "transform_builder",
]

Scalar = Union[float, torch.Tensor]


# One validator for math_ops and dist_utils: the same values are accepted and refused.
_check_softness = check_hinge_softness


def _check_low_high(low: Scalar, high: Scalar) -> None:
    lo = torch.as_tensor(low, dtype=torch.float64)
    hi = torch.as_tensor(high, dtype=torch.float64)
    if not bool((lo < hi).all()):
        raise ValueError(f"low must be < high everywhere; got low={low!r}, high={high!r}")


def _log_expm1(x: torch.Tensor) -> torch.Tensor:
    """``log(exp(x) - 1) = x + log(1 - exp(-x))`` for ``x > 0``: one branch,
    exact for small ``x``, no overflow for large ``x`` and a finite gradient
    everywhere."""
    return x + torch.log(-torch.expm1(-x))


def get_invertible(cls: type) -> type:
    """Return a subclass of the torch transform ``cls`` whose cache is on.

    Some transforms ``g`` cannot be inverted accurately (``g^{-1}(g(x))`` may
    differ from ``x`` a lot, e.g. ``tanh`` near ``+-1``). With
    ``cache_size=1`` the latest ``(x, y)`` pair is kept and ``g^{-1}(y)``
    returns ``x`` for that very ``y``. In a chain of transforms every element
    needs its cache on for the chain to satisfy ``x = G^{-1}(G(x))``.

    The returned class takes the arguments of ``cls`` (``cache_size``
    defaults to 1) and adds ``get_builder()``; ``with_cache`` keeps the
    subclass.

    Args:
        cls (type): a subclass of ``torch.distributions.transforms.Transform``.
    Returns:
        type: the cached subclass (named ``NewCls``, like ALF's).
    Raises:
        TypeError: ``cls`` is not a ``Transform`` subclass.
    """
    if not (isinstance(cls, type) and issubclass(cls, td.Transform)):
        raise TypeError(f"cls must be a torch Transform subclass; got {cls!r}")

    class NewCls(cls):
        def __init__(self, *args, cache_size=1, **kwargs):
            super().__init__(*args, cache_size=cache_size, **kwargs)
            self._init_args = (args, kwargs)

        def with_cache(self, cache_size=1):
            if self._cache_size == cache_size:
                return self
            args, kwargs = self._init_args
            return type(self)(*args, cache_size=cache_size, **kwargs)

        def get_builder(self) -> Callable[[], td.Transform]:
            """A callable creating a fresh transform configured like this one."""
            args, kwargs = self._init_args
            return functools.partial(type(self), *args, cache_size=self._cache_size, **kwargs)

    NewCls.__doc__ = f"{cls.__name__} with ``cache_size=1`` by default and a builder."
    return NewCls


def _module_level(cls: type, name: str) -> type:
    """Name a ``get_invertible`` class after its module-level alias so that
    its instances pickle."""
    cls.__name__ = cls.__qualname__ = name
    return cls


AbsTransform = _module_level(get_invertible(td.AbsTransform), "AbsTransform")
ExpTransform = _module_level(get_invertible(td.ExpTransform), "ExpTransform")
PowerTransform = _module_level(get_invertible(td.PowerTransform), "PowerTransform")
SigmoidTransform = _module_level(get_invertible(td.SigmoidTransform), "SigmoidTransform")
SoftmaxTransform = _module_level(get_invertible(td.SoftmaxTransform), "SoftmaxTransform")


if TYPE_CHECKING:  # mypy cannot follow a base class made at run time
    _InvertibleAffine = td.AffineTransform
else:
    _InvertibleAffine = get_invertible(td.AffineTransform)


class AffineTransform(_InvertibleAffine):
    """``y = loc + scale * x`` with the cache on and a builder.

    Overwrites PyTorch's ``AffineTransform`` to provide a builder compatible
    with ``DistributionSpec.build_distribution()`` (``get_builder()``, from
    ``get_invertible``, rebuilds it with the same ``loc``, ``scale``,
    ``event_dim`` and ``cache_size``).

    Args:
        loc (Tensor | float): location, broadcastable with ``x``.
        scale (Tensor | float): scale, broadcastable with ``x``.
        event_dim (int): number of trailing dims forming one event.
        cache_size (int): 1 (default) keeps the latest ``(x, y)`` pair.
    """

    def __init__(self, loc, scale, event_dim=0, *, cache_size=1):
        super().__init__(loc, scale, event_dim=event_dim, cache_size=cache_size)


class _RebuildableTransform(td.Transform):
    """Shared plumbing of the elementwise bijections on the real line below.

    A subclass passes its configuration to ``__init__`` positionally and
    returns it from ``_args()`` (nothing by default), which gives it
    equality, ``with_cache`` and a picklable ``get_builder``.

    Args:
        cache_size (int): 1 (default) keeps the latest ``(x, y)`` pair.
    """

    domain = constraints.real
    bijective = True
    sign = 1

    def __init__(self, cache_size=1):
        super().__init__(cache_size=cache_size)

    def _args(self) -> tuple:
        """The positional arguments that rebuild this transform."""
        return ()

    def __eq__(self, other):
        return isinstance(other, type(self)) and other._args() == self._args()

    def with_cache(self, cache_size: int = 1) -> td.Transform:
        if self._cache_size == cache_size:
            return self
        rebuild: Callable[..., td.Transform] = type(self)
        return rebuild(*self._args(), cache_size=cache_size)

    def get_builder(self) -> Callable[[], td.Transform]:
        """A callable creating a fresh transform configured like this one."""
        rebuild: Callable[..., td.Transform] = type(self)
        return functools.partial(rebuild, *self._args(), cache_size=self._cache_size)


class Softplus(_RebuildableTransform):
    """``y = s * log(1 + exp(x / s))`` with ``s = hinge_softness``.

    Args:
        hinge_softness (float): positive; a higher softness makes a smoother
            transition from 0 to the identity.
        cache_size (int): 1 (default) keeps the latest ``(x, y)`` pair.
    Raises:
        ValueError: ``hinge_softness`` is not positive.
    """

    codomain = constraints.positive

    def __init__(self, hinge_softness=1.0, cache_size=1):
        super().__init__(cache_size=cache_size)
        self._hinge_softness = _check_softness(hinge_softness)

    def _args(self):
        return (self._hinge_softness,)

    def _call(self, x):
        s = self._hinge_softness
        return s * F.softplus(x / s)

    def _inverse(self, y):
        s = self._hinge_softness
        return s * _log_expm1(y / s)

    def log_abs_det_jacobian(self, x, y):
        """Computes the log det jacobian ``log |dy/dx| = log sigmoid(x / s)``."""
        return F.logsigmoid(x / self._hinge_softness)


class Softsign(_RebuildableTransform):
    """``y = x / (1 + |x|)``, mapping the real line onto ``(-1, 1)``.

    Args:
        cache_size (int): 1 (default) keeps the latest ``(x, y)`` pair.
    """

    codomain = constraints.interval(-1.0, 1.0)

    def _call(self, x):
        return x / (1 + x.abs())

    def _inverse(self, y):
        return y / (1 - y.abs())

    def log_abs_det_jacobian(self, x, y):
        r"""``dy/dx = 1 / (1 + |x|)^2`` on both sides of 0, so
        ``log|dy/dx| = -2 log(1 + |x|)``."""
        return -2.0 * torch.log1p(x.abs())


class StableTanh(_RebuildableTransform):
    r"""``y = tanh(x)``, computed stably, with ``y \in (-1, 1)``.

    Equivalent to ``Affine(0, 2) -> Sigmoid -> Affine(-1, 2)`` but more
    accurate. The inverse clamps ``y`` to the largest representable value
    below 1 in magnitude, so it stays finite at the bounds; with the cache on
    (default) the exact ``x`` of the latest forward call is returned.

    Args:
        cache_size (int): 1 (default) keeps the latest ``(x, y)`` pair.
    """

    codomain = constraints.interval(-1.0, 1.0)

    def _call(self, x):
        return torch.tanh(x)

    def _inverse(self, y):
        bound = 1.0 - torch.finfo(y.dtype).eps / 2
        return torch.atanh(y.clamp(-bound, bound))

    def log_abs_det_jacobian(self, x, y):
        """``log(1 - tanh(x)^2) = 2 (log 2 - x - softplus(-2x))``, finite for
        any finite ``x``."""
        return 2.0 * (math.log(2.0) - x - F.softplus(-2.0 * x))


class Softclip(_RebuildableTransform):
    """Softly clip to ``(low, high)`` with ``alf.utils.math_ops.softclip``.

    ``y = l + s log(1 + e^{(x-l)/s}) - s log(1 + e^{(x-h)/s})``. Unlike
    ``SoftclipTF`` it is symmetric with respect to the two bounds.

    Args:
        low (float | Tensor): the lower bound.
        high (float | Tensor): the upper bound, ``> low`` everywhere.
        hinge_softness (float): positive; a higher softness makes a smoother
            transition from ``low`` to ``high``.
        cache_size (int): 1 (default) keeps the latest ``(x, y)`` pair.
    Raises:
        ValueError: ``low >= high`` somewhere or ``hinge_softness <= 0``.
    """

    codomain = constraints.real  # the instances narrow it to (low, high)

    def __init__(self, low, high, hinge_softness=1.0, cache_size=1):
        super().__init__(cache_size=cache_size)
        _check_low_high(low, high)
        self._hinge_softness = _check_softness(hinge_softness)
        self._low = low
        self._high = high
        self.codomain = constraints.interval(low, high)

    def _args(self):
        return (self._low, self._high, self._hinge_softness)

    def __eq__(self, other):
        # the bounds may be tensors: compare them by identity
        return (
            isinstance(other, Softclip)
            and other._low is self._low
            and other._high is self._high
            and other._hinge_softness == self._hinge_softness
        )

    def _call(self, x):
        return math_ops.softclip(x, self._low, self._high, self._hinge_softness)

    def _inverse(self, y):
        s = self._hinge_softness
        return (
            self._low
            + s * _log_expm1((y - self._low) / s)
            - s * torch.log(-torch.expm1((y - self._high) / s))
        )

    def log_abs_det_jacobian(self, x, y):
        """Compute ``log|dy/dx|``.

        ``dy/dx = sigmoid(a) - sigmoid(b)`` with ``a = (x-l)/s > b = (x-h)/s``,
        which equals ``sigmoid(a) sigmoid(-b) (1 - e^{-(h-l)/s})``.
        """
        s = self._hinge_softness
        gap = torch.as_tensor((self._high - self._low) / s, dtype=x.dtype, device=x.device)
        return (
            F.logsigmoid((x - self._low) / s)
            + F.logsigmoid((self._high - x) / s)
            + torch.log(-torch.expm1(-gap))
        )


def Softlower(low, hinge_softness=1.0) -> td.ComposeTransform:
    """``softlower(x) = softplus(x - low) + low`` as a composed transform.

    Args:
        low (float | Tensor): the lower bound.
        hinge_softness (float): positive transition softness.
    Returns:
        ComposeTransform: ``Affine(-low, 1) -> Softplus -> Affine(low, 1)``.
    """
    return td.ComposeTransform(
        [
            AffineTransform(loc=-low, scale=1.0),
            Softplus(hinge_softness=hinge_softness),
            AffineTransform(loc=low, scale=1.0),
        ]
    )


def Softupper(high, hinge_softness=1.0) -> td.ComposeTransform:
    """``softupper(x) = -softplus(high - x) + high`` as a composed transform.

    Args:
        high (float | Tensor): the upper bound.
        hinge_softness (float): positive transition softness.
    Returns:
        ComposeTransform: ``Affine(high, -1) -> Softplus -> Affine(high, -1)``.
    """
    return td.ComposeTransform(
        [
            AffineTransform(loc=high, scale=-1.0),
            Softplus(hinge_softness=hinge_softness),
            AffineTransform(loc=high, scale=-1.0),
        ]
    )


def SoftclipTF(low, high, hinge_softness=1.0) -> td.ComposeTransform:
    """Softclip adapted from TensorFlow Probability, as a composed transform.

    ``clipped = softupper(softlower(x, low), high)`` then
    ``y = (clipped - high) / (high - softupper(low, high)) * (high - low) + high``.
    The rescaling compensates ``softupper(low, high) < low``; the result is
    mildly asymmetric in the two bounds.

    Args:
        low (float | Tensor): the lower bound.
        high (float | Tensor): the upper bound, ``> low`` everywhere.
        hinge_softness (float): positive transition softness.
    Returns:
        ComposeTransform: ``Softlower -> Softupper -> Affine``.
    Raises:
        ValueError: ``low >= high`` somewhere or ``hinge_softness <= 0``.
    """
    _check_low_high(low, high)
    s = _check_softness(hinge_softness)
    numbers = not isinstance(low, torch.Tensor) and not isinstance(high, torch.Tensor)
    width = torch.as_tensor(high - low, dtype=torch.float64 if numbers else None)
    # high - softupper(low, high) = s * softplus((high - low) / s)
    scale = width / (s * F.softplus(width / s))
    factor: Scalar = scale.item() if numbers else scale
    return td.ComposeTransform(
        [
            Softlower(low, hinge_softness=s),
            Softupper(high, hinge_softness=s),
            AffineTransform(loc=high * (1 - factor), scale=factor),
        ]
    )


def _rebuild_compose(parts, cache_size):
    return td.ComposeTransform([part() for part in parts], cache_size=cache_size)


def _rebuild_independent(base, reinterpreted_batch_ndims, cache_size):
    return td.IndependentTransform(base(), reinterpreted_batch_ndims, cache_size=cache_size)


def _reuse(transform):
    return transform


def transform_builder(transform: td.Transform) -> Callable[[], td.Transform]:
    """A callable creating a fresh copy of ``transform``.

    Uses ``transform.get_builder()`` where available, recurses into
    ``ComposeTransform`` and ``IndependentTransform``, and otherwise returns
    ``transform`` itself (torch transforms without parameters to rebuild).
    """
    if hasattr(transform, "get_builder"):
        return transform.get_builder()
    if isinstance(transform, td.ComposeTransform):
        parts = [transform_builder(t) for t in transform.parts]
        return functools.partial(_rebuild_compose, parts, transform._cache_size)
    if isinstance(transform, td.IndependentTransform):
        return functools.partial(
            _rebuild_independent,
            transform_builder(transform.base_transform),
            transform.reinterpreted_batch_ndims,
            transform._cache_size,
        )
    return functools.partial(_reuse, transform)
