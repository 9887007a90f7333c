"""Various functions/classes related to loss computation.

* element-wise: ``element_wise_huber_loss``, ``element_wise_squared_loss``,
  ``huber_function``, ``multi_quantile_huber_loss``, ``iqn_huber_loss``;
* per-sample: ``MeanSquaredLoss``;
* scalar prediction with a target transform: ``ScalarPredictionLoss`` and
  ``SquareLoss``, ``DiscreteRegressionLoss``,
  ``OrderedDiscreteRegressionLoss``, ``QuantileRegressionLoss``;
* sets: ``BipartiteMatchingLoss``;
* representations: ``AsymmetricSimSiamLoss``.
"""

import torch

import alf.summary
from alf.utils._losses_elementwise import (
    element_wise_huber_loss,
    element_wise_squared_loss,
    huber_function,
    iqn_huber_loss,
    multi_quantile_huber_loss,
)
from alf.utils._losses_matching import BipartiteMatchingLoss
from alf.utils._losses_scalar import (
    DiscreteRegressionLoss,
    OrderedDiscreteRegressionLoss,
    QuantileRegressionLoss,
    ScalarPredictionLoss,
    SquareLoss,
)
from alf.utils._losses_simsiam import AsymmetricSimSiamLoss

__all__ = [
    "AsymmetricSimSiamLoss",
    "BipartiteMatchingLoss",
    "DiscreteRegressionLoss",
    "MeanSquaredLoss",
    "OrderedDiscreteRegressionLoss",
    "QuantileRegressionLoss",
    "ScalarPredictionLoss",
    "SquareLoss",
    "element_wise_huber_loss",
    "element_wise_squared_loss",
    "huber_function",
    "iqn_huber_loss",
    "multi_quantile_huber_loss",
]


class MeanSquaredLoss:
    """Mean squared loss: for a prediction and target pair ``(x, y)``, the
    loss is ``((x - y) ** 2).mean()`` over the non-batch dims.

    Args:
        batch_dims (int): the first so many dims of prediction and target are
            treated as batch dims; the mean is taken over the rest.
        debug_summaries (bool): whether to write the mean loss as a summary.
        name (str): name of this loss (the summary scope).

    Raises:
        ValueError: ``batch_dims`` is negative.
    """

    def __init__(self, batch_dims: int = 1, debug_summaries: bool = True, name: str = "MSELoss"):
        if isinstance(batch_dims, bool) or not isinstance(batch_dims, int) or batch_dims < 0:
            raise ValueError(f"batch_dims must be a non-negative int; got {batch_dims!r}")
        self._batch_dims = batch_dims
        self._debug_summaries = debug_summaries
        self._name = name

    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.forward(pred, target)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Calculate the loss.

        Args:
            pred (Tensor): prediction of shape ``[B, ...]`` (``batch_dims``
                leading batch dims).
            target (Tensor): target of the same shape.

        Returns:
            loss of shape ``[B]`` (the batch dims).

        Raises:
            ValueError: shapes differ or have fewer than ``batch_dims`` dims.
        """
        if pred.shape != target.shape or pred.ndim < self._batch_dims:
            raise ValueError(
                f"pred and target must have the same shape with at least batch_dims="
                f"{self._batch_dims} dims; got {tuple(pred.shape)} and {tuple(target.shape)}"
            )
        loss = (pred - target) ** 2
        if pred.ndim > self._batch_dims:
            loss = loss.mean(dim=tuple(range(self._batch_dims, pred.ndim)))
        if self._debug_summaries and alf.summary.should_record_summaries():
            with alf.summary.scope(self._name):
                alf.summary.scalar("loss", loss.mean())
        return loss


# Public names defined in this package's private helper modules report this module, so
# pickles, reprs and docs name the public import path, never a private file.
for _name in __all__:
    _obj = globals()[_name]
    if str(getattr(_obj, "__module__", None) or "").startswith("alf.utils._"):
        _obj.__module__ = "alf.utils.losses"  # not __name__: "__main__" under python -m
del _name, _obj
