"""Distribution classes re-exported by ``alf.utils.dist_utils``.

Each subclasses the matching ``torch.distributions`` class, so it works in
``TransformedDistribution``, ``Independent`` and ``kl_divergence`` like
torch's own.
"""

import math
from typing import Optional, Union

import torch
import torch.distributions as td
import torch.nn.functional as F

from alf.utils._dist_transforms import AffineTransform

__all__ = [
    "AffineTransformedDistribution",
    "Beta",
    "DiagMultivariateBeta",
    "DiagMultivariateCauchy",
    "DiagMultivariateNormal",
    "StableCauchy",
    "OneHotCategoricalGumbelSoftmax",
    "OneHotCategoricalStraightThrough",
]

TensorLike = Union[torch.Tensor, float]


class AffineTransformedDistribution(td.TransformedDistribution):
    r"""Transform via the pointwise affine mapping :math:`y = loc + scale x`.

    Unlike a plain ``TransformedDistribution`` it knows its ``entropy``,
    ``mean``, ``variance`` and ``stddev`` from those of ``base_dist``:
    ``H(y) = H(x) + sum_event log|scale|``, ``E[y] = loc + scale E[x]``,
    ``Var[y] = scale^2 Var[x]``.

    Args:
        base_dist (Distribution): the distribution of ``x``.
        loc (Tensor | float): location parameter, broadcastable to
            ``base_dist``'s ``batch_shape + event_shape``.
        scale (Tensor | float): scale parameter, nonzero, likewise
            broadcastable.
    Raises:
        ValueError: ``scale`` is zero somewhere.
    """

    def __init__(self, base_dist: td.Distribution, loc: TensorLike, scale: TensorLike):
        if not bool((torch.as_tensor(scale) != 0).all()):
            raise ValueError(f"scale must be nonzero everywhere; got {scale!r}")
        self._loc = loc
        self._scale = scale
        super().__init__(base_dist, AffineTransform(loc=loc, scale=scale), validate_args=False)

    @property
    def loc(self) -> TensorLike:
        """The ``loc`` of the affine map, as given (float or Tensor)."""
        return self._loc

    @property
    def scale(self) -> TensorLike:
        """The ``scale`` of the affine map, as given (float or Tensor)."""
        return self._scale

    def entropy(self) -> torch.Tensor:
        """Returns entropy of distribution, batched over batch_shape.

        Returns:
            Tensor of shape batch_shape.
        """
        base_entropy = self.base_dist.entropy()
        log_scale = torch.log(torch.abs(torch.as_tensor(self._scale)))
        log_scale = log_scale.to(base_entropy).expand(self.batch_shape + self.event_shape)
        n = len(self.event_shape)
        if n:
            log_scale = log_scale.sum(tuple(range(-n, 0)))
        return base_entropy + log_scale

    @property
    def mean(self) -> torch.Tensor:
        """Returns the mean of the distribution."""
        return self._loc + self._scale * self.base_dist.mean

    @property
    def variance(self) -> torch.Tensor:
        """Returns the variance of the distribution."""
        return torch.as_tensor(self._scale) ** 2 * self.base_dist.variance

    @property
    def stddev(self) -> torch.Tensor:
        """Returns the standard deviation of the distribution."""
        return torch.abs(torch.as_tensor(self._scale)) * self.base_dist.stddev


def beta_mode(concentration1: torch.Tensor, concentration0: torch.Tensor) -> torch.Tensor:
    """Mode of Beta(a, b): ``(a - 1) / (a + b - 2)`` when ``a, b > 1``; else
    the end with the larger density (0 if ``a < b``, else 1). Differentiable
    (no NaN gradient from the branch not taken)."""
    a, b = concentration1, concentration0
    interior = (a > 1) & (b > 1)
    denominator = torch.where(interior, a + b - 2, torch.ones_like(a + b))
    edge = (a >= b).to(denominator.dtype)
    return torch.where(interior, (a - 1) / denominator, edge)


class Beta(td.Beta):
    """Beta distribution parameterized by ``concentration1`` (alpha) and
    ``concentration0`` (beta).

    ``td.Beta`` slices its concentrations out of an inner Dirichlet, so a
    hook registered on ``td.Beta.concentration1`` never sees a gradient.
    Here ``concentration1``/``concentration0`` are the very tensors passed
    in. ``rsample`` clamps to ``[eps, 1 - eps]`` so that the gradients of
    ``log_prob`` stay finite (as Pyro's ``AffineBeta``).

    Args:
        concentration1 (float | Tensor): 1st concentration (alpha), positive.
        concentration0 (float | Tensor): 2nd concentration (beta), positive.
        eps (float | None): samples are clipped to ``[eps, 1 - eps]``;
            ``None`` means ``torch.finfo(dtype).eps``.
        validate_args (bool | None): as in ``torch.distributions``.
    Raises:
        ValueError: ``eps`` is not in ``[0, 0.5)``; (with validation) a
            non-positive concentration.
    """

    def __init__(self, concentration1, concentration0, eps=None, validate_args=None):
        if eps is not None and not (isinstance(eps, (int, float)) and 0 <= eps < 0.5):
            raise ValueError(f"eps must be None or a number in [0, 0.5); got {eps!r}")
        tensors = [c for c in (concentration1, concentration0) if isinstance(c, torch.Tensor)]
        like = tensors[0] if tensors else torch.empty(())
        self._concentration1 = torch.as_tensor(concentration1, dtype=like.dtype, device=like.device)
        self._concentration0 = torch.as_tensor(concentration0, dtype=like.dtype, device=like.device)
        super().__init__(self._concentration1, self._concentration0, validate_args=validate_args)
        dtype = self._dirichlet.concentration.dtype
        self._eps = torch.finfo(dtype).eps if eps is None else float(eps)

    def expand(self, batch_shape, _instance=None):
        batch_shape = torch.Size(batch_shape)
        return Beta(
            self._concentration1.expand(batch_shape),
            self._concentration0.expand(batch_shape),
            eps=self._eps,
            validate_args=False,
        )

    @property
    def concentration1(self) -> torch.Tensor:
        """The tensor passed as ``concentration1`` (alpha), ``batch_shape``."""
        return self._concentration1

    @property
    def concentration0(self) -> torch.Tensor:
        """The tensor passed as ``concentration0`` (beta), ``batch_shape``."""
        return self._concentration0

    @property
    def mode(self) -> torch.Tensor:
        """``(a - 1) / (a + b - 2)`` when both concentrations exceed 1, else
        the end with the larger density (0 if ``a < b``, else 1)."""
        return beta_mode(self._concentration1, self._concentration0)

    def rsample(self, sample_shape=()):
        """Reparameterized sample clamped to ``[eps, 1 - eps]``, shape
        ``sample_shape + batch_shape``."""
        return super().rsample(sample_shape).clamp(self._eps, 1 - self._eps)


class DiagMultivariateBeta(td.Independent):
    """Independent Beta distributions over the last dimension.

    Args:
        concentration1 (Tensor): alpha, shape ``batch_shape + [D]``.
        concentration0 (Tensor): beta, same shape.
    """

    def __init__(self, concentration1, concentration0):
        super().__init__(Beta(concentration1, concentration0), 1)


class DiagMultivariateCauchy(td.Independent):
    """Independent (``StableCauchy``) Cauchy distributions over the last
    dimension, i.e. a diagonal scale matrix.

    Args:
        loc (Tensor): median, shape ``batch_shape + [D]`` (Cauchy has no mean).
        scale (Tensor): half width, same shape as ``loc``.
    """

    def __init__(self, loc, scale):
        super().__init__(StableCauchy(loc, scale), 1)

    @property
    def loc(self) -> torch.Tensor:
        """Median, ``batch_shape + [D]``."""
        return self.base_dist.loc

    @property
    def scale(self) -> torch.Tensor:
        """Half width, ``batch_shape + [D]``."""
        return self.base_dist.scale


class DiagMultivariateNormal(td.Independent):
    """Multivariate normal distribution with diagonal variance.

    torch's argument validation is off for it, as in ALF, so that a zero
    scale (e.g. from a zero-initialised network) is accepted; its log
    probabilities are then infinite or NaN.

    Args:
        loc (Tensor): mean, shape ``batch_shape + [D]``.
        scale (Tensor): standard deviation (``>= 0``), same shape as ``loc``.
    """

    def __init__(self, loc, scale):
        super().__init__(td.Normal(loc, scale, validate_args=False), 1, validate_args=False)

    @property
    def stddev(self) -> torch.Tensor:
        """Returns the standard deviation of the distribution."""
        return self.base_dist.stddev


class StableCauchy(td.Cauchy):
    """Cauchy distribution whose samples avoid huge magnitudes.

    ``rsample`` computes ``loc + scale * tan(pi * e)`` with ``e`` uniform in
    ``(-0.5, 0.5)`` clipped to ``[-clipping_value, clipping_value]``
    (``tan(pi * 0.49) = 31.8``, ``tan(pi * 0.499) = 318.3``).
    """

    def rsample(self, sample_shape=(), clipping_value=0.49):
        """Reparameterized sample of shape ``sample_shape + batch_shape``.

        Args:
            sample_shape (Size): sample shape.
            clipping_value (float): in ``(0, 0.5)``; the uniform noise is
                clipped to ``[-clipping_value, clipping_value]``.
        Raises:
            ValueError: ``clipping_value`` is not in ``(0, 0.5)``.
        """
        if not (isinstance(clipping_value, (int, float)) and 0 < clipping_value < 0.5):
            raise ValueError(f"clipping_value must be in (0, 0.5); got {clipping_value!r}")
        shape = self._extended_shape(sample_shape)
        e = torch.rand(shape, dtype=self.loc.dtype, device=self.loc.device) - 0.5
        e = e.clamp(-clipping_value, clipping_value)
        return self.loc + self.scale * torch.tan(math.pi * e)


def _straight_through_one_hot(probs: torch.Tensor) -> torch.Tensor:
    """One-hot of ``argmax(probs)`` whose gradient is that of ``probs``."""
    hard = F.one_hot(probs.argmax(-1), probs.shape[-1]).to(probs.dtype)
    return hard + (probs - probs.detach())


class OneHotCategoricalGumbelSoftmax(td.OneHotCategorical):
    """A reparameterizable ``OneHotCategorical`` using the Gumbel-softmax
    gradient estimator (Jang et al., "Categorical Reparameterization with
    Gumbel-Softmax", 2017).

    ``rsample`` returns ``softmax((logits + g) / tau)`` with ``g`` standard
    Gumbel noise; with ``hard_sample`` its argmax as a one-hot vector whose
    gradient is that of the soft sample (straight-through).

    Args:
        hard_sample (bool): one-hot (straight-through) or soft samples.
        tau (float): positive temperature; higher gives more uniform samples.
        **kwargs: ``probs`` or ``logits`` (``[..., K]``) and
            ``validate_args``, as for ``td.OneHotCategorical``.
    Raises:
        ValueError: ``tau`` is not positive.
    """

    has_rsample = True

    def __init__(self, hard_sample: bool = True, tau: float = 1.0, **kwargs):
        if not (isinstance(tau, (int, float)) and tau > 0):
            raise ValueError(f"tau must be a positive number; got {tau!r}")
        super().__init__(**kwargs)
        self._hard_sample = bool(hard_sample)
        self._tau = float(tau)

    @property
    def hard_sample(self) -> bool:
        """Whether ``rsample`` returns straight-through one-hot vectors."""
        return self._hard_sample

    @property
    def tau(self) -> float:
        """The Gumbel-softmax temperature (positive)."""
        return self._tau

    @property
    def mode(self) -> torch.Tensor:
        """One-hot argmax of ``probs`` with a straight-through gradient."""
        return _straight_through_one_hot(self.probs)

    def rsample(self, sample_shape=()):
        """Reparameterized sample of shape ``sample_shape + batch_shape + [K]``."""
        shape = self._extended_shape(sample_shape)
        logits = self.logits.expand(shape)
        tiny = torch.finfo(logits.dtype).tiny
        u = torch.rand(shape, dtype=logits.dtype, device=logits.device).clamp_(min=tiny)
        gumbel = -torch.log(-torch.log(u))
        soft = torch.softmax((logits + gumbel) / self._tau, dim=-1)
        if not self._hard_sample:
            return soft
        return _straight_through_one_hot(soft)


class OneHotCategoricalStraightThrough(td.OneHotCategoricalStraightThrough):
    """``td.OneHotCategoricalStraightThrough`` with a differentiable ``mode``.

    Args:
        probs (Tensor | None): event probabilities, ``[..., K]``.
        logits (Tensor | None): event log-probabilities, ``[..., K]``.
        validate_args (bool | None): as in ``torch.distributions``.
    """

    def __init__(self, probs=None, logits=None, validate_args: Optional[bool] = None):
        super().__init__(probs=probs, logits=logits, validate_args=validate_args)

    @property
    def mode(self) -> torch.Tensor:
        """One-hot argmax of ``probs`` with a straight-through gradient."""
        return _straight_through_one_hot(self.probs)
