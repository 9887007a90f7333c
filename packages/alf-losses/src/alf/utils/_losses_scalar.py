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

        A NaN (transformed) target gets bin 0 and a NaN weight, so that its
        loss is NaN (rather than an out-of-range index)."""
        n = self._num_bins(logits)
        if target.shape != logits.shape[:-1]:
            raise ValueError(
                f"target must have shape logits.shape[:-1] = {tuple(logits.shape[:-1])}; "
                f"got {tuple(target.shape)}"
            )
        low_value = -((n - 1) // 2)
        y = self._forward(target.to(logits.dtype)).clamp(low_value, n // 2) - low_value
        low = y.floor().clamp(max=n - 2).nan_to_num(nan=0.0)
        return low.long(), y - low


class DiscreteRegressionLoss(_DiscreteRegressionLossBase):
    """A loss for predicting the distribution of a scalar.

    ``P = softmax(logits)`` and ``P[i]`` is the probability that the
    (transformed) target equals ``v_i = i - (n - 1) // 2``, ``n =
    logits.shape[-1]``; the target is assumed to be in ``[-(n-1)//2, n//2]``.
    A non-integer target ``y`` is split into mass ``y - floor(y)`` at
    ``floor(y) + 1`` and ``1 + floor(y) - y`` at ``floor(y)``; the loss is the
    cross entropy to that two-hot distribution.

    ``DiscreteRegressionLoss(SqrtLinearTransform(0.001), inverse_after_mean=True)``
    is the loss used by the MuZero paper.

    Args:
        transform (InvertibleTransform): the transformation applied to the
            target.
        inverse_after_mean (bool): see ``_DiscreteRegressionLossBase``.
    """

    def __call__(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Cross entropy to the two-hot target.

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
        return -((1 - w_high) * log_p_low + w_high * log_p_high)

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
        """Initialize the bias of the last FC layer so that the initial
        prediction in the original domain of the target is approximately
        Cauchy, :math:`p(x) \\propto \\frac{1}{1+x^2}`.

        Bin ``i`` gets the Cauchy probability of the values that round to it
        in the transformed domain, ``(f^-1(v_i - 0.5), f^-1(v_i + 0.5)]``, the
        end bins the tails; the bias is its log. A bin on one side of 0 takes
        the difference of the tail probabilities ``atan2(1, |x|)`` of its
        edges, which keeps far bins (probabilities far below the float64
        resolution of ``atan`` near ``pi / 2``) accurate and finite.

        Args:
            bias (Tensor): ``[n]``, initialized in place.
        """
        n = self._num_bins(bias, "bias")
        v = self._support(n, torch.empty(0, dtype=torch.float64))
        inf = torch.tensor([math.inf], dtype=torch.float64)
        edges = torch.cat([-inf, self._inverse(v[:-1] + 0.5), inf])
        low, high = edges[:-1], edges[1:]
        one = torch.ones_like(low)
        # pi * P(low < X <= high), with atan2(1, x) = pi * P(X > x).
        mass = torch.where(
            low >= 0,
            torch.atan2(one, low) - torch.atan2(one, high),
            torch.where(
                high <= 0,
                torch.atan2(one, -high) - torch.atan2(one, -low),
                torch.atan(high) - torch.atan(low),
            ),
        )
        with torch.no_grad():
            bias.copy_(torch.log(mass))


class OrderedDiscreteRegressionLoss(_DiscreteRegressionLossBase):
    """A loss for predicting the distribution of a scalar.

    ``P = sigmoid(logits)`` and ``P[i]`` is the probability that the
    (transformed) target is greater than or equal to ``v_i = i - (n - 1) // 2``
    (``n = logits.shape[-1]``); the target is assumed to be in
    ``[-(n-1)//2, n//2]`` and split into two bins as for
    ``DiscreteRegressionLoss``, which gives the probabilities
    ``q_i = P(target >= v_i)`` (1 up to ``floor(y)``, ``y - floor(y)`` at
    ``floor(y) + 1``, 0 above). The loss is the binary cross entropy between
    ``P`` and ``q`` summed over the ``n`` bins.

    Args:
        transform (InvertibleTransform): the transformation applied to the
            target.
        inverse_after_mean (bool): see ``_DiscreteRegressionLossBase``.
    """

    def __call__(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Binary cross entropy to ``P(target >= v_i)``, summed over bins.

        Args:
            logits (Tensor): ``[..., n]``.
            target (Tensor): ``[...]``, in the untransformed domain.

        Returns:
            loss, ``[...]``.
        """
        low, w_high = self._two_hot(logits, target)
        i = torch.arange(logits.shape[-1], device=logits.device)
        low, w_high = low.unsqueeze(-1), w_high.unsqueeze(-1)
        q = torch.where(i <= low, 1.0, torch.where(i == low + 1, w_high, 0.0)).to(logits.dtype)
        bce = F.binary_cross_entropy_with_logits(logits, q, reduction="none")
        return bce.sum(-1)

    def calc_expectation(self, logits: torch.Tensor) -> torch.Tensor:
        """Calculate the expected prediction in the untransformed domain.

        With ``P_i = sigmoid(logits_i)`` and ``P_0`` taken as 1,
        ``E[y] = v_0 + sum_{i>=1} P_i`` in the transformed domain and
        ``E[f^-1(y)] = f^-1(v_0) + sum_{i>=1} P_i (f^-1(v_i) - f^-1(v_{i-1}))``.

        Args:
            logits (Tensor): raw model prediction, ``[..., n]``.

        Returns:
            ``[...]``.
        """
        n = self._num_bins(logits)
        p = torch.sigmoid(logits[..., 1:])
        v = self._support(n, logits)
        if self._inverse_after_mean:
            return self._inverse(v[0] + p.sum(-1))
        x = self._inverse(v)
        return x[0] + (p * (x[1:] - x[:-1])).sum(-1)

    def initialize_bias(self, bias: torch.Tensor) -> None:
        """Initialize the bias of the last FC layer so that the initial
        prediction in the original domain of the target is approximately
        Cauchy, :math:`p(x) \\propto \\frac{1}{1+x^2}`.

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
