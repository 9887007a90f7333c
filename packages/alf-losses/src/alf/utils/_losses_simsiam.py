"""The asymmetric SimSiam representation loss."""

from typing import Any, Callable, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

import alf.summary

__all__ = ["AsymmetricSimSiamLoss"]


class _FixedNorm(nn.Module):
    """Weight parametrization ``w -> w * (c / ||w||)`` that keeps the
    Frobenius norm of a weight at its initial value ``c``."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.register_buffer("norm", weight.detach().norm())

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * (self.norm / weight.norm())


def _mlp(
    input_size: int,
    hidden_sizes: Sequence[int],
    output_size: int,
    last_use_bn: bool,
    fixed_weight_norm: bool,
) -> nn.Sequential:
    """``Flatten -> [Linear -> BatchNorm1d -> ReLU] * len(hidden_sizes) ->
    Linear (-> BatchNorm1d)``."""
    layers: List[nn.Module] = [nn.Flatten()]
    sizes = [input_size, *hidden_sizes]
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(n_in, n_out), nn.BatchNorm1d(n_out), nn.ReLU()]
    layers.append(nn.Linear(sizes[-1], output_size))
    if last_use_bn:
        layers.append(nn.BatchNorm1d(output_size))
    if fixed_weight_norm:
        for layer in layers:
            if isinstance(layer, nn.Linear):
                parametrize.register_parametrization(layer, "weight", _FixedNorm(layer.weight))
    return nn.Sequential(*layers)


def _output(result: Any) -> torch.Tensor:
    """The output of a network: ALF networks return ``(output, state)``."""
    return result[0] if isinstance(result, tuple) else result


def _check_size(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int; got {value!r}")
    return value


class AsymmetricSimSiamLoss(nn.Module):
    """The siamese loss of Chen and He, "Exploring Simple Siamese
    Representation Learning", CVPR 2021.

    The loss is ``1 - cosine(pred(proj(x)), detach(proj(y)))`` where ``x``
    is the predicted representation and ``y`` the target representation. It
    is asymmetric: only ``x`` receives gradients.

    Args:
        proj_net (Callable): maps ``[N, ...]`` representations to ``[N, D]``
            (a ``torch.nn.Module``, or an ALF network returning
            ``(output, state)``). If not provided, an MLP with two hidden
            layers of ``proj_hidden_size`` (each followed by batch norm and
            ReLU) and output size ``output_size`` is created.
        pred_net (Callable): maps ``[N, D]`` to ``[N, D]``. If not provided,
            an MLP with one hidden layer of ``pred_hidden_size`` (batch norm,
            ReLU) and output size ``output_size`` is created.
        input_size (int): the (flattened) size of a representation; required
            when ``proj_net`` is not provided.
        proj_hidden_size (int): size of the hidden layers of the default
            ``proj_net``.
        pred_hidden_size (int): size of the hidden layer of the default
            ``pred_net``.
        output_size (int): output size of the default networks (``D``).
        proj_last_use_bn (bool): whether the default ``proj_net`` applies
            batch norm to its output layer.
        eps (float): the eps for ``F.normalize()`` when normalizing the
            vectors whose cosine is taken.
        fixed_weight_norm (bool): whether to fix the (Frobenius) norm of the
            weight of each FC layer of the default networks at its initial
            value (a weight parametrization).
        lr (float): learning rate for the parameters of this loss, recorded
            as ``self.lr`` for the optimizer (e.g. a parameter group
            ``{"params": loss.parameters(), "lr": loss.lr}``). If None, the
            default learning rate is used.
        debug_summaries (bool): whether to write debug summaries.
        name (str): name of this loss (the summary scope).

    Raises:
        ValueError: ``input_size`` missing for the default ``proj_net``, a
            non-positive size, or ``eps <= 0``.
    """

    def __init__(
        self,
        proj_net: Optional[Callable] = None,
        pred_net: Optional[Callable] = None,
        input_size: Optional[int] = None,
        proj_hidden_size: int = 256,
        pred_hidden_size: int = 128,
        output_size: int = 256,
        proj_last_use_bn: bool = False,
        eps: float = 1e-5,
        fixed_weight_norm: bool = False,
        lr: Optional[float] = None,
        debug_summaries: bool = True,
        name: str = "SimSiamLoss",
    ):
        super().__init__()
        if proj_net is None:
            if input_size is None:
                raise ValueError("input_size must be given when proj_net is not provided")
            proj_net = _mlp(
                _check_size("input_size", input_size),
                [_check_size("proj_hidden_size", proj_hidden_size)] * 2,
                _check_size("output_size", output_size),
                proj_last_use_bn,
                fixed_weight_norm,
            )
        if pred_net is None:
            pred_net = _mlp(
                _check_size("output_size", output_size),
                [_check_size("pred_hidden_size", pred_hidden_size)],
                output_size,
                False,
                fixed_weight_norm,
            )
        if not eps > 0:
            raise ValueError(f"eps must be > 0; got {eps!r}")
        if lr is not None and not lr > 0:
            raise ValueError(f"lr must be > 0 or None; got {lr!r}")
        self._proj_net = proj_net
        self._pred_net = pred_net
        self._eps = float(eps)
        self.lr = lr
        self._debug_summaries = debug_summaries
        self._name = name

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Calculate the loss.

        Args:
            pred (Tensor): predicted representation of shape ``[B, T, ...]``.
            target (Tensor): target representation of shape ``[B, T, ...]``.

        Returns:
            loss of shape ``[B, T]``, in ``[0, 2]``.
        """
        if pred.ndim < 2 or pred.shape != target.shape:
            raise ValueError(
                f"pred and target must have the same shape [B, T, ...]; got "
                f"{tuple(pred.shape)} and {tuple(target.shape)}"
            )
        B, T = pred.shape[:2]
        x = pred.reshape(B * T, *pred.shape[2:])
        y = target.reshape(B * T, *target.shape[2:])
        predicted = _output(self._pred_net(_output(self._proj_net(x)))).reshape(B * T, -1)
        with torch.no_grad():
            projected = _output(self._proj_net(y)).reshape(B * T, -1)
        cosine = (
            F.normalize(predicted, dim=-1, eps=self._eps)
            * F.normalize(projected, dim=-1, eps=self._eps)
        ).sum(-1)
        loss = 1 - cosine
        if self._debug_summaries and alf.summary.should_record_summaries():
            with alf.summary.scope(self._name):
                alf.summary.scalar("loss", loss.mean())
                alf.summary.scalar("pred_norm", predicted.norm(dim=-1).mean())
                alf.summary.scalar("target_proj_norm", projected.norm(dim=-1).mean())
        return loss.reshape(B, T)
