"""Losses for predicting a scalar: square, discrete (two-hot) and quantile
regression, each with an optional target transform and an expectation."""

import abc
import math
from typing import Optional

import torch
import torch.nn.functional as F

from alf.utils._losses_elementwise import _check_delta, multi_quantile_huber_loss
from alf.utils.math_ops import InvertibleTransform

__all__ = [
    "DiscreteRegressionLoss",
    "OrderedDiscreteRegressionLoss",
    "QuantileRegressionLoss",
    "ScalarPredictionLoss",
    "SquareLoss",
]


def _check_transform(transform) -> Optional[InvertibleTransform]:
    if transform is not None and not (
        callable(getattr(transform, "transform", None))
        and callable(getattr(transform, "inverse_transform", None))
    ):
        raise TypeError(
            "transform must be an InvertibleTransform (with transform() and "
            f"inverse_transform()) or None; got {type(transform).__name__}"
        )
    return transform


class ScalarPredictionLoss(abc.ABC):
    """A loss for predicting a scalar target from a raw model prediction.

    Subclasses are called as ``loss(pred, target)`` and give the per-sample
    loss of the target's shape; ``calc_expectation(pred)`` turns the raw
    prediction into the predicted scalar.
    """

    @abc.abstractmethod
    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss of shape ``target.shape``."""

    @abc.abstractmethod
    def calc_expectation(self, pred: torch.Tensor) -> torch.Tensor:
        """Calculate the expected prediction in the untransformed domain from
        ``pred``."""

    def initialize_bias(self, bias: torch.Tensor) -> None:
        """Initialize the bias of the last FC layer for the prediction properly.

        This function can be passed to FC as bias_initializer. For some
        losses (e.g. OrderedDiscreteRegressionLoss), initializing the bias to
        zero gives very bad initial predictions, so subclasses provide loss
        specific initializations. Note that the weight of the last FC should
        be initialized to zero in general. The default sets the bias to zero.

        Args:
            bias (Tensor): the bias parameter to be initialized (in place).
        """
        with torch.no_grad():
            bias.zero_()


class SquareLoss(ScalarPredictionLoss):
    """Square loss ``(pred - f(target))^2`` for predicting a scalar target.

    Args:
        transform (InvertibleTransform): the transformation ``f`` applied to
            the target. If provided, the regression target is transformed.
    """

    def __init__(self, transform: Optional[InvertibleTransform] = None):
        self._transform = _check_transform(transform)

    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Args: ``pred``, ``target`` of the same shape. Returns the loss, that shape."""
        if pred.shape != target.shape:
            raise ValueError(
                f"target must have the shape of pred {tuple(pred.shape)}; got {tuple(target.shape)}"
            )
        if self._transform is not None:
            target = self._transform.transform(target)
        return (pred - target) ** 2

    def calc_expectation(self, pred: torch.Tensor) -> torch.Tensor:
        """Calculate the expected prediction in the untransformed domain:
        ``f^-1(pred)``.

        Args:
            pred (Tensor): raw model prediction.
        """
        if self._transform is not None:
            pred = self._transform.inverse_transform(pred)
        return pred


class _DiscreteRegressionLossBase(ScalarPredictionLoss):
    """Shared parts of the two-hot discrete regression losses.

    With ``n = logits.shape[-1]`` bins, bin ``i`` stands for the transformed
    value ``v_i = i - (n - 1) // 2`` (so ``v`` spans
    ``[-(n - 1) // 2, n // 2]``). A transformed target ``y`` (clipped to that
    range) puts mass ``y - floor(y)`` on ``floor(y) + 1`` and
    ``1 + floor(y) - y`` on ``floor(y)``.

    Args:
        transform (InvertibleTransform): the transformation ``f`` applied to
            the target. If provided, the regression target is transformed.
        inverse_after_mean (bool): whether the expectation applies ``f^-1``
            after averaging in the transformed space (biased, by Jensen's
            inequality, where ``f^-1`` is convex) instead of averaging
            ``f^-1(v_i)``.
    """

    def __init__(
        self, transform: Optional[InvertibleTransform] = None, inverse_after_mean: bool = False
    ):
        self._transform = _check_transform(transform)
        self._inverse_after_mean = bool(inverse_after_mean)

    def _forward(self, y: torch.Tensor) -> torch.Tensor:
        return y if self._transform is None else self._transform.transform(y)

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y if self._transform is None else self._transform.inverse_transform(y)

    @staticmethod
    def _support(n: int, like: torch.Tensor) -> torch.Tensor:
        """``v_i = i - (n - 1) // 2``, ``[n]``."""
        return torch.arange(n, dtype=like.dtype, device=like.device) - (n - 1) // 2

    @staticmethod
    def _num_bins(logits: torch.Tensor, name: str = "logits") -> int:
        if logits.ndim < 1 or logits.shape[-1] < 2:
            raise ValueError(
                f"{name} must have at least 2 bins in the last dim; got shape {tuple(logits.shape)}"
            )
        return logits.shape[-1]

    def _two_hot(self, logits: torch.Tensor, target: torch.Tensor):
        """Index of the lower bin and weight of the upper bin, target shape.

        The bins are found in the transformed space. Without a transform or
        with ``inverse_after_mean`` the weight is ``y - floor(y)`` of the
        transformed (clipped) target ``y``; otherwise the target ``t`` is
        split in the original space between ``x_lo = f^-1(v_lo)`` and
        ``x_hi = f^-1(v_lo + 1)``: weight ``(t - x_lo) / (x_hi - x_lo)``,
        which keeps ``sum_i P_i f^-1(v_i)`` an unbiased expectation.

        A NaN (transformed) target gets bin 0 and a NaN weight, so that its
        loss is NaN (rather than an out-of-range index)."""
        n = self._num_bins(logits)
        if target.shape != logits.shape[:-1]:
            raise ValueError(
                f"target must have shape logits.shape[:-1] = {tuple(logits.shape[:-1])}; "
                f"got {tuple(target.shape)}"
            )
        low_value = -((n - 1) // 2)
        target = target.to(logits.dtype)
        y = self._forward(target).clamp(low_value, n // 2) - low_value
        low = y.floor().clamp(max=n - 2).nan_to_num(nan=0.0)
        if self._transform is None or self._inverse_after_mean:
            return low.long(), y - low
        x_lo = self._inverse(low + low_value)
        x_hi = self._inverse(low + (low_value + 1))
        t = target.clamp(self._inverse(logits.new_tensor(low_value)),
                         self._inverse(logits.new_tensor(n // 2)))
        # (y - y) is NaN exactly where the transformed target is NaN
        w_high = ((t - x_lo) / (x_hi - x_lo)).clamp(0.0, 1.0) + (y - y)
        return low.long(), w_high

    @staticmethod
    def _target_entropy(w_high: torch.Tensor) -> torch.Tensor:
        """Entropy of the two-hot target ``(1 - w, w)``, ``0 log 0 = 0``."""
        w_low = 1 - w_high
        return -(torch.special.xlogy(w_high, w_high) + torch.special.xlogy(w_low, w_low))


class DiscreteRegressionLoss(_DiscreteRegressionLossBase):
    """A loss for predicting the distribution of a scalar.

    ``P = softmax(logits)`` and ``P[i]`` is the probability that the
    (transformed) target equals ``v_i = i - (n - 1) // 2``, ``n =
    logits.shape[-1]``; the target is assumed to be in ``[-(n-1)//2, n//2]``.
    A non-integer target ``y`` is split into mass ``y - floor(y)`` at
    ``floor(y) + 1`` and ``1 + floor(y) - y`` at ``floor(y)`` (with a
    transform and ``inverse_after_mean=False`` the split is made in the
    original space, ``(t - f^-1(low)) / (f^-1(high) - f^-1(low))``, as ALF
    does, so that the expectation is unbiased). The loss is the KL divergence
    from that two-hot distribution to ``P``: the cross entropy minus the
    entropy of the two-hot target (0 for a target on a bin).

    ``DiscreteRegressionLoss(SqrtLinearTransform(0.001), inverse_after_mean=True)``
    is the loss used by the MuZero paper.

    Args:
        transform (InvertibleTransform): the transformation applied to the
            target.
        inverse_after_mean (bool): see ``_DiscreteRegressionLossBase``.
    """

    def __call__(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """KL divergence from the two-hot target to ``softmax(logits)``.

        Args:
            logits (Tensor): ``[..., n]``.
            target (Tensor): ``[...]``, in the untransformed domain.

        Returns:
            loss, ``[...]``.
        """
        low, w_high = self._two_hot(logits, target)
        log_p = F.log_softmax(logits, dim=-1)
        log_p_low = log_p.gather(-1, low.unsqueeze(-1)).squeeze(-1)
        log_p_high = log_p.gather(-1, (low + 1).unsqueeze(-1)).squeeze(-1)
        cross_entropy = -((1 - w_high) * log_p_low + w_high * log_p_high)
        return cross_entropy - self._target_entropy(w_high)

    def calc_expectation(self, logits: torch.Tensor) -> torch.Tensor:
        """Calculate the expected prediction in the untransformed domain.

        Args:
            logits (Tensor): raw model prediction, ``[..., n]``.

        Returns:
            ``[...]``.
        """
        n = self._num_bins(logits)
        p = F.softmax(logits, dim=-1)
        v = self._support(n, logits)
        if self._inverse_after_mean:
            return self._inverse((p * v).sum(-1))
        return (p * self._inverse(v)).sum(-1)

    def initialize_bias(self, bias: torch.Tensor) -> None:
        r"""Initialize the bias of the last FC layer so that the initial
        prediction in the original domain of the target is approximately
        Cauchy, :math:`p(x) \propto \frac{1}{1+x^2}`.

        ``softmax(bias)`` is the expected two-hot target of a standard
        Cauchy variable ``X`` clipped to ``[x_0, x_{n-1}]``, where
        ``x_i = f^-1(v_i)`` and the target is split between neighbouring
        ``x_i`` linearly in the original space (the split this loss uses by
        default): ``P_i = E[max(0, 1 - |X - x_i| / (x_{i±1} - x_i))]``, the
        end bins adding the tails beyond them. It is computed in float64 in
        closed form from ``atan`` and ``log(1 + x^2)``.

        Args:
            bias (Tensor): ``[n]``, initialized in place.
        """
        n = self._num_bins(bias, "bias")
        v = self._support(n, torch.empty(0, dtype=torch.float64))
        x = self._inverse(v)
        a, b = x[:-1], x[1:]
        mass = _cauchy_mass(a, b)
        # E[X 1(a < X <= b)] - a P(a < X <= b) = E[(X - a) 1(a < X <= b)]
        first = (_half_log1p_square(b) - _half_log1p_square(a)) / math.pi - a * mass
        upper = (first / (b - a)).clamp(min=0.0).minimum(mass)
        lower = mass - upper
        one = torch.ones(1, dtype=torch.float64)
        p = torch.zeros(n, dtype=torch.float64)
        p[:-1] += lower
        p[1:] += upper
        p[0] += torch.atan2(one, -x[0])[0] / math.pi  # P(X <= x_0)
        p[-1] += torch.atan2(one, x[-1])[0] / math.pi  # P(X > x_{n-1})
        with torch.no_grad():
            bias.copy_(torch.log(p.clamp(min=torch.finfo(torch.float64).tiny)))


def _cauchy_mass(low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """``P(low < X <= high)`` of a standard Cauchy ``X``, elementwise, float64.

    An interval on one side of 0 takes the difference of the tail
    probabilities ``atan2(1, |x|) / pi``, which keeps far intervals (far
    below the float64 resolution of ``atan`` near ``pi / 2``) accurate."""
    one = torch.ones_like(low)
    return (
        torch.where(
            low >= 0,
            torch.atan2(one, low) - torch.atan2(one, high),
            torch.where(
                high <= 0,
                torch.atan2(one, -high) - torch.atan2(one, -low),
                torch.atan(high) - torch.atan(low),
            ),
        )
        / math.pi
    )


def _half_log1p_square(x: torch.Tensor) -> torch.Tensor:
    """``log(1 + x^2) / 2`` without overflow for large ``|x|``."""
    a = x.abs()
    big = a > 1
    safe = torch.where(big, a, torch.ones_like(a))
    return torch.where(
        big, torch.log(safe) + 0.5 * torch.log1p(safe**-2), 0.5 * torch.log1p(x * x)
    )


class OrderedDiscreteRegressionLoss(_DiscreteRegressionLossBase):
    """A loss for predicting the distribution of a scalar.

    ``P = sigmoid(logits)`` and ``P[i]`` is the probability that the
    (transformed) target is greater than or equal to ``v_i = i - (n - 1) // 2``
    (``n = logits.shape[-1]``); the target is assumed to be in
    ``[-(n-1)//2, n//2]`` and split into two bins as for
    ``DiscreteRegressionLoss``, which gives the probabilities
    ``q_i = P(target >= v_i)`` (1 up to ``floor(y)``, the weight of the upper
    bin at ``floor(y) + 1``, 0 above). The loss is the KL divergence between
    the Bernoulli distributions ``q`` and ``P`` summed over the ``n`` bins
    (the binary cross entropy minus the entropy of ``q``).

    Args:
        transform (InvertibleTransform): the transformation applied to the
            target.
        inverse_after_mean (bool): see ``_DiscreteRegressionLossBase``.
    """

    def __call__(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Binary KL divergence from ``P(target >= v_i)``, summed over bins.

        Args:
            logits (Tensor): ``[..., n]``.
            target (Tensor): ``[...]``, in the untransformed domain.

        Returns:
            loss, ``[...]``.
        """
        low, w_high = self._two_hot(logits, target)
        i = torch.arange(logits.shape[-1], device=logits.device)
        low1, w1 = low.unsqueeze(-1), w_high.unsqueeze(-1)
        q = torch.where(i <= low1, 1.0, torch.where(i == low1 + 1, w1, 0.0)).to(logits.dtype)
        bce = F.binary_cross_entropy_with_logits(logits, q, reduction="none")
        return bce.sum(-1) - self._target_entropy(w_high)

    def calc_expectation(self, logits: torch.Tensor) -> torch.Tensor:
        """Calculate the expected prediction in the untransformed domain.

        ``P_i = sigmoid(logits_i)`` is made non-increasing by a cumulative
        minimum (``P_i <- min_{j <= i} P_j``); bin ``i`` then has probability
        ``p_i = P_i - P_{i+1}`` (``P_n = 0``), and the expectation is
        ``sum_i p_i f^-1(v_i)`` (``f^-1(sum_i p_i v_i)`` with
        ``inverse_after_mean``). The first logit is included: the mass
        ``1 - P_0`` counts as the value 0.

        Args:
            logits (Tensor): raw model prediction, ``[..., n]``.

        Returns:
            ``[...]``.
        """
        n = self._num_bins(logits)
        ge = torch.sigmoid(logits).cummin(dim=-1).values
        p = ge - F.pad(ge[..., 1:], (0, 1))
        v = self._support(n, logits)
        if self._inverse_after_mean:
            return self._inverse((p * v).sum(-1))
        return (p * self._inverse(v)).sum(-1)

    def initialize_bias(self, bias: torch.Tensor) -> None:
        r"""Initialize the bias of the last FC layer so that the initial
        prediction in the original domain of the target is approximately
        Cauchy, :math:`p(x) \propto \frac{1}{1+x^2}`.

        ``sigmoid(bias_i)`` is the Cauchy probability ``P(X >= f^-1(v_i))``.

        Args:
            bias (Tensor): ``[n]``, initialized in place.
        """
        n = self._num_bins(bias, "bias")
        x = self._inverse(self._support(n, torch.empty(0, dtype=torch.float64)))
        one = torch.ones_like(x)
        # P(X >= x) = atan2(1, x) / pi and P(X < x) = atan2(1, -x) / pi.
        with torch.no_grad():
            bias.copy_(torch.log(torch.atan2(one, x)) - torch.log(torch.atan2(one, -x)))


class QuantileRegressionLoss(ScalarPredictionLoss):
    """Multi-quantile Huber loss for predicting the distribution of a scalar
    (Dabney et al., "Distributional Reinforcement Learning with Quantile
    Regression").

    ``quantiles[..., k]`` estimates the quantile ``(k + 0.5) / n`` of the
    (transformed) target, ``n = quantiles.shape[-1]``. For each prediction,
    there can be one or multiple target values. See
    ``multi_quantile_huber_loss``.

    Args:
        transform (InvertibleTransform): the transformation applied to the
            target.
        inverse_after_mean (bool): whether the expectation applies ``f^-1``
            after averaging the quantiles (biased by Jensen's inequality)
            instead of averaging ``f^-1(quantiles)``.
        delta (float): the smoothness parameter of the Huber loss (larger is
            smoother); quantile estimates with ``delta > 0`` are biased.
    """

    def __init__(
        self,
        transform: Optional[InvertibleTransform] = None,
        inverse_after_mean: bool = False,
        delta: float = 0.0,
    ):
        self._transform = _check_transform(transform)
        self._inverse_after_mean = bool(inverse_after_mean)
        self._delta = _check_delta(delta, positive=False)

    def __call__(self, quantiles: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Args: ``quantiles`` ``[..., n]``, ``target`` ``[...]`` or
        ``[..., num_targets]`` (untransformed). Returns the loss, ``[...]``."""
        if self._transform is not None:
            target = self._transform.transform(target)
        return multi_quantile_huber_loss(quantiles, target, self._delta)

    def calc_expectation(self, quantiles: torch.Tensor) -> torch.Tensor:
        """Calculate the expected prediction in the untransformed domain.

        Args:
            quantiles (Tensor): predicted quantile values in the transformed
                space, ``[..., n]``.

        Returns:
            ``[...]``.
        """
        if self._transform is None:
            return quantiles.mean(-1)
        if self._inverse_after_mean:
            return self._transform.inverse_transform(quantiles.mean(-1))
        return self._transform.inverse_transform(quantiles).mean(-1)

    def initialize_bias(self, bias: torch.Tensor) -> None:
        """Initialize the bias of the last FC layer to the quantiles of an
        approximately Cauchy initial prediction: ``bias_k = f(tan(pi ((k + 0.5)
        / n - 0.5)))``.

        Args:
            bias (Tensor): ``[n]``, initialized in place.
        """
        n = bias.shape[-1]
        tau = (torch.arange(n, dtype=torch.float64) + 0.5) / n
        x = torch.tan(math.pi * (tau - 0.5))
        if self._transform is not None:
            x = self._transform.transform(x)
        with torch.no_grad():
            bias.copy_(x)
