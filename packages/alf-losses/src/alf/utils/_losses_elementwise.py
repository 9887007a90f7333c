"""Element-wise losses: squared, Huber and multi-quantile Huber."""

from typing import Optional

import torch
import torch.nn.functional as F

from alf.utils._math_checks import is_real

__all__ = [
    "element_wise_huber_loss",
    "element_wise_squared_loss",
    "huber_function",
    "iqn_huber_loss",
    "multi_quantile_huber_loss",
]


def element_wise_huber_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Elementwise Huber loss (``delta = 1``): ``0.5 (x - y)^2`` where
    ``|x - y| <= 1``, ``|x - y| - 0.5`` elsewhere.

    Args:
        x (Tensor): label.
        y (Tensor): prediction, broadcastable with ``x``.

    Returns:
        loss (Tensor), the broadcast shape.
    """
    x, y = torch.broadcast_tensors(x, y)
    return F.huber_loss(y, x, reduction="none", delta=1.0)


def element_wise_squared_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Elementwise squared loss ``(x - y)^2``.

    Args:
        x (Tensor): label.
        y (Tensor): prediction, broadcastable with ``x``.

    Returns:
        loss (Tensor), the broadcast shape.
    """
    x, y = torch.broadcast_tensors(x, y)
    return F.mse_loss(y, x, reduction="none")


def _check_delta(delta, positive: bool) -> float:
    if not is_real(delta):
        raise TypeError(f"delta must be a number; got {type(delta).__name__}")
    delta = float(delta)
    if not (delta > 0 if positive else delta >= 0):
        raise ValueError(f"delta must be {'> 0' if positive else '>= 0'}; got {delta!r}")
    return float(delta)


def huber_function(x: torch.Tensor, delta: float = 1.0) -> torch.Tensor:
    """Huber function: ``0.5 x^2`` where ``|x| <= delta``, else
    ``delta (|x| - 0.5 delta)`` (delta-scaled L1).

    Args:
        x (Tensor): difference between the observed and predicted values.
        delta (float): the threshold at which to change between delta-scaled
            L1 and L2 loss, must be positive.

    Returns:
        Huber function (Tensor), shape of ``x``.

    Raises:
        ValueError: ``delta <= 0``.
    """
    delta = _check_delta(delta, positive=True)
    abs_x = x.abs()
    return torch.where(abs_x <= delta, 0.5 * x * x, delta * (abs_x - 0.5 * delta))


def multi_quantile_huber_loss(
    quantiles: torch.Tensor, target: torch.Tensor, delta: float = 0.1
) -> torch.Tensor:
    """Multi-quantile Huber loss (Dabney et al., "Distributional Reinforcement
    Learning with Quantile Regression").

    The loss for simultaneous multiple quantile regression: ``quantiles[..., k]``
    estimates the quantile ``tau_k = (k + 0.5) / n`` of the target
    distribution (``n = quantiles.shape[-1]``). With ``u = target_j -
    quantiles_k`` the loss of each (target, quantile) pair is
    ``|tau_k - 1{u < 0}| * L(u)`` where ``L(u) = 0.5 u^2 / delta`` for
    ``|u| < delta`` and ``|u| - 0.5 delta`` elsewhere (``L(u) = |u|`` for
    ``delta = 0``, the pinball loss); the result is the mean over targets
    and quantiles.

    Args:
        quantiles (Tensor): ``batch_shape + [num_quantiles]``.
        target (Tensor): ``batch_shape`` (one target per prediction) or
            ``batch_shape + [num_targets]``.
        delta (float): the smoothness parameter for huber loss (larger means
            smoother), ``>= 0``. Quantile estimates with ``delta > 0`` are
            biased; use a small value for less biased estimates.

    Returns:
        loss of ``batch_shape``.

    Raises:
        ValueError: ``delta < 0`` or ``target`` does not match the batch shape.
    """
    delta = _check_delta(delta, positive=False)
    if target.ndim == quantiles.ndim - 1:
        target = target.unsqueeze(-1)
    if target.ndim != quantiles.ndim or target.shape[:-1] != quantiles.shape[:-1]:
        raise ValueError(
            f"target must have shape batch_shape {tuple(quantiles.shape[:-1])} or "
            f"batch_shape + [num_targets]; got {tuple(target.shape)}"
        )
    n = quantiles.shape[-1]
    tau = (torch.arange(n, dtype=quantiles.dtype, device=quantiles.device) + 0.5) / n
    # [..., num_targets, num_quantiles]
    u = target.unsqueeze(-1) - quantiles.unsqueeze(-2)
    weight = (tau - (u < 0).to(quantiles.dtype)).abs()
    abs_u = u.abs()
    if delta == 0.0:
        loss = weight * abs_u
    else:
        loss = weight * torch.where(abs_u < delta, (0.5 / delta) * u * u, abs_u - 0.5 * delta)
    return loss.mean(dim=(-2, -1))


def iqn_huber_loss(
    value: torch.Tensor,
    target: torch.Tensor,
    next_delta_tau: Optional[torch.Tensor],
    tau: torch.Tensor,
    sum_over_quantiles: bool = False,
    delta: float = 1.0,
) -> torch.Tensor:
    """Quantile Huber loss of implicit quantile networks (Dabney et al.,
    "Implicit Quantile Networks for Distributional Reinforcement Learning",
    2018), used by ALF's quantile TD losses.

    ``value[..., i]`` estimates the quantile ``tau[..., i]`` of the return
    and ``target[..., j]`` are target samples (quantile values). With
    ``u_ij = target_j - value_i``, each pair costs
    ``|tau_i - 1{u_ij < 0}| * huber_function(u_ij, delta)`` (the weight is
    a constant for the gradient). The pairs are reduced over the target
    dim ``j``: a mean, or, with ``next_delta_tau`` (the probability
    increments of the target quantiles), the sum weighted by
    ``next_delta_tau[..., j]``; then over the quantile dim ``i``: a mean, or
    a sum with ``sum_over_quantiles``.

    Args:
        value (Tensor): ``batch_shape + [N]``, the predicted quantile values.
        target (Tensor): ``batch_shape + [M]``, the target quantile values.
        next_delta_tau (Tensor | None): ``batch_shape + [M]`` weights of the
            target quantiles (summing to 1), or None for equal weights.
        tau (Tensor): ``batch_shape + [N]`` (or broadcastable to it), the
            quantile fractions of ``value``, in ``[0, 1]``.
        sum_over_quantiles (bool): sum over the ``N`` quantiles instead of
            averaging.
        delta (float): the Huber threshold, ``> 0``.

    Returns:
        loss of ``batch_shape``.

    Raises:
        ValueError: ``delta <= 0`` or the shapes do not match.
    """
    delta = _check_delta(delta, positive=True)
    if value.ndim < 1 or target.ndim != value.ndim or target.shape[:-1] != value.shape[:-1]:
        raise ValueError(
            "value and target must have shapes batch_shape + [N] and batch_shape + [M]; "
            f"got {tuple(value.shape)} and {tuple(target.shape)}"
        )
    try:
        tau = torch.broadcast_to(tau, value.shape)
    except RuntimeError:
        raise ValueError(
            f"tau must broadcast to value's shape {tuple(value.shape)}; got {tuple(tau.shape)}"
        ) from None
    if next_delta_tau is not None and next_delta_tau.shape != target.shape:
        raise ValueError(
            f"next_delta_tau must have target's shape {tuple(target.shape)}; "
            f"got {tuple(next_delta_tau.shape)}"
        )
    # [..., N, M]: quantile i of value against target sample j
    u = target.unsqueeze(-2) - value.unsqueeze(-1)
    with torch.no_grad():
        weight = (tau.unsqueeze(-1) - (u < 0).to(u.dtype)).abs()
    loss = weight * huber_function(u, delta)
    if next_delta_tau is None:
        loss = loss.mean(dim=-1)
    else:
        loss = (loss * next_delta_tau.unsqueeze(-2)).sum(dim=-1)
    return loss.sum(dim=-1) if sum_over_quantiles else loss.mean(dim=-1)
