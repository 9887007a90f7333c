"""Supervised learning utilities: classification and regression losses, AUROC
and dataset prediction for (ensembles of) predictors.

Shape legend: ``B`` samples in a batch, ``N`` predictors of an ensemble,
``D`` output dims (classes), ``S`` samples of a dataset.
"""

from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from alf.data_structures import LossInfo

__all__ = ["auc_score", "classification_loss", "predict_dataset", "regression_loss"]


def _flat_scores(name: str, x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    if x.size == 0:
        raise ValueError(f"{name} must hold at least one prediction; got none")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} must be finite; got NaN or Inf predictions")
    return x


def auc_score(inliers: Any, outliers: Any) -> float:
    """Computes the AUROC score w.r.t. network outputs on two distinct
    datasets: typically the main training/testing set (inliers) and a set of
    unseen outliers.

    Outliers are the positive class: the score is the probability that a
    random outlier's prediction exceeds a random inlier's (ties count one
    half), i.e. the Mann-Whitney U statistic over ``len(inliers) *
    len(outliers)``.

    Args:
        inliers (Tensor | array): predictions on inlier data, any shape
            (flattened).
        outliers (Tensor | array): predictions on outlier data, any shape.

    Returns:
        AUROC score (float) in ``[0, 1]``.

    Raises:
        ValueError: an input is empty or not finite.
    """
    # Imported here, not with the module: scipy.stats is slow to import.
    from scipy.stats import rankdata

    x = _flat_scores("inliers", inliers)
    y = _flat_scores("outliers", outliers)
    ranks = rankdata(np.concatenate([x, y]))
    u = ranks[x.size :].sum() - y.size * (y.size + 1) / 2.0
    return float(u / (x.size * y.size))


def classification_loss(output: torch.Tensor, target: torch.Tensor) -> LossInfo:
    """Computes the cross entropy loss with respect to a batch of predictions
    and targets.

    Args:
        output (Tensor): predictions (logits) of shape ``[B, D]`` or
            ``[B, N, D]``.
        target (Tensor): class indices of shape ``[B]``, ``[B, 1]``, ``[B, N]``
            or ``[B, N, 1]`` (``[B]``/``[B, 1]`` for ``[B, D]`` outputs).

    Returns:
        ``LossInfo(loss=..., extra=...)``: ``loss`` the mean cross entropy
        over all samples (and predictors), a scalar; ``extra`` the average
        accuracy, a scalar.

    Raises:
        ValueError: shapes that do not match.
    """
    if output.ndim not in (2, 3):
        raise ValueError(f"output must have shape [B, D] or [B, N, D]; got {tuple(output.shape)}")
    if target.ndim == output.ndim and target.shape[-1] == 1:
        target = target.squeeze(-1)
    if target.shape != output.shape[:-1]:
        expected = "[B] or [B, 1]" if output.ndim == 2 else "[B, N] or [B, N, 1]"
        raise ValueError(
            f"target must have shape {expected} for output {tuple(output.shape)}; "
            f"got {tuple(target.shape)}"
        )
    target = target.long()
    logits = output.reshape(-1, output.shape[-1])
    loss = F.cross_entropy(logits, target.reshape(-1))
    accuracy = (output.argmax(-1) == target).float().mean()
    return LossInfo(loss=loss, extra=accuracy)


def regression_loss(output: torch.Tensor, target: torch.Tensor) -> LossInfo:
    """Computes the MSE loss with respect to a batch of predictions and
    targets.

    Args:
        output (Tensor): predictions of shape ``[B, 1]`` or ``[B, N, 1]``.
        target (Tensor): targets of shape ``[B, 1]`` or ``[B, N, 1]``, the same
            number of elements as ``output``.

    Returns:
        ``LossInfo(loss=...)``: the mean squared error over all elements, a
        scalar.

    Raises:
        ValueError: shapes that do not match.
    """
    if output.ndim not in (2, 3):
        raise ValueError(f"output must have shape [B, 1] or [B, N, 1]; got {tuple(output.shape)}")
    if target.shape[-1:] != output.shape[-1:] or target.numel() != output.numel():
        raise ValueError(
            f"target must have the last dim and number of elements of output "
            f"{tuple(output.shape)}; got {tuple(target.shape)}"
        )
    loss = F.mse_loss(output, target.reshape(output.shape).to(output.dtype))
    return LossInfo(loss=loss, extra=())


def predict_dataset(model: Callable, testset: Any) -> torch.Tensor:
    """Computes predictions for an input dataset.

    Each batch of ``testset`` is ``(data, target)`` (the target is ignored)
    or ``data`` alone. ``data`` is moved to the device of the model's
    parameters when ``model`` is a ``torch.nn.Module`` that has any. Gradients
    are recorded or not as the caller's grad mode says (wrap the call in
    ``torch.no_grad()`` to save memory).

    Args:
        model (Callable): model with which to compute predictions; returns
            ``[b, D]`` (one predictor) or ``[b, N, D]`` (an ensemble) for a batch
            of ``b`` samples, or an ALF-style ``(output, state)`` tuple.
        testset (torch.utils.data.DataLoader): dataset for which to compute
            predictions.

    Returns:
        model_outputs (Tensor): ``[N, S, D]``, where ``N`` is the number of
        predictors, ``S`` the number of data points and ``D`` the output
        dimensionality.

    Raises:
        ValueError: ``testset`` yields no batch, or an output is not 2-D/3-D.
    """
    device = None
    if isinstance(model, torch.nn.Module):
        param = next(model.parameters(), None)
        device = None if param is None else param.device
    outputs = []
    for batch in testset:
        data = batch[0] if isinstance(batch, (tuple, list)) else batch
        if device is not None:
            data = data.to(device)
        output = model(data)
        if isinstance(output, tuple):
            output = output[0]
        if output.ndim == 2:
            output = output.unsqueeze(1)
        if output.ndim != 3:
            raise ValueError(
                f"model output must have shape [b, D] or [b, N, D]; got {tuple(output.shape)}"
            )
        outputs.append(output.transpose(0, 1))
    if not outputs:
        raise ValueError("testset must yield at least one batch; got none")
    return torch.cat(outputs, dim=1)
