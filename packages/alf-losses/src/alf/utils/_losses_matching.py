"""Order-invariant set loss through an optimal bipartite matching."""

from typing import Optional, Tuple

import numpy as np
import torch

__all__ = ["BipartiteMatchingLoss"]

_REDUCTIONS = ("mean", "sum", "none")


class BipartiteMatchingLoss:
    """Bipartite matching loss.

    This order-invariant loss evaluates the matching between a predicted set
    and a target set. For every forward, an optimal one-to-one assignment from
    the predicted set to the target set is found by bipartite graph matching
    (``scipy.optimize.linear_sum_assignment``, the Hungarian method), and the
    loss of that assignment is minimized:

    .. math::

        \\min_{g\\in\\mathcal{G}_N}\\sum_n^N L(x_n(\\theta),y_{g(n)})

    where :math:`\\mathcal{G}_N` is the set of permutations of ``N`` objects.
    The matching itself is not differentiated through.

    Reference: Carion et al., "End-to-End Object Detection with Transformers",
    https://github.com/facebookresearch/detr/blob/main/models/matcher.py

    Args:
        reduction (str): ``'sum'``, ``'mean'`` or ``'none'``: how the matched
            losses of the ``N`` pairs are reduced. The loss is ``[B]`` for the
            former two and ``[B, N]`` for ``'none'``.
        name (str): name of this loss.

    Raises:
        ValueError: unknown ``reduction``.
    """

    def __init__(self, reduction: str = "mean", name: str = "BipartiteMatchingLoss"):
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be one of {_REDUCTIONS}; got {reduction!r}")
        self._reduction = reduction
        self._name = name

    def __call__(
        self, matching_cost_mat: torch.Tensor, cost_mat: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        return self.forward(matching_cost_mat, cost_mat)

    def forward(
        self, matching_cost_mat: torch.Tensor, cost_mat: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Compute the optimal matching loss.

        Args:
            matching_cost_mat (Tensor): ``[B, N, N]``, the cost matrix used to
                determine the optimal matching; entry ``[b, i, j]`` is the cost
                of matching prediction ``i`` with target ``j``.
            cost_mat (Tensor): ``[B, N, N]``, the cost matrix used to compute
                the loss once the optimal matching is found. According to the
                DETR paper it may differ from the one used for matching. If
                None, ``matching_cost_mat`` is used.

        Returns:
            tuple:
            - the optimal loss: ``[B]`` if reduction is ``'mean'`` or
              ``'sum'``, otherwise ``[B, N]``; differentiable w.r.t. ``cost_mat``.
            - the optimal matching, int64 ``[B, N]``: entry ``n`` is the index
              in the target set that prediction ``n`` is mapped to.

        Raises:
            ValueError: a matrix is not ``[B, N, N]``, the two differ in shape,
                or ``matching_cost_mat`` has NaN/Inf entries.
        """
        if matching_cost_mat.ndim != 3 or matching_cost_mat.shape[1] != matching_cost_mat.shape[2]:
            raise ValueError(
                f"matching_cost_mat must have shape [B, N, N]; got {tuple(matching_cost_mat.shape)}"
            )
        if cost_mat is None:
            cost_mat = matching_cost_mat
        elif cost_mat.shape != matching_cost_mat.shape:
            raise ValueError(
                f"cost_mat must have the shape of matching_cost_mat "
                f"{tuple(matching_cost_mat.shape)}; got {tuple(cost_mat.shape)}"
            )
        # Imported here: scipy.optimize takes longer to import than the rest
        # of alf.utils.losses together.
        from scipy.optimize import linear_sum_assignment

        costs = matching_cost_mat.detach().to("cpu", torch.float64).numpy()
        if not np.isfinite(costs).all():
            raise ValueError("matching_cost_mat must be finite; got NaN or Inf entries")
        columns = np.empty(costs.shape[:2], dtype=np.int64)
        for b, cost in enumerate(costs):
            # Rows come back sorted 0..N-1, so the columns are the mapping.
            columns[b] = linear_sum_assignment(cost)[1]
        matching = torch.from_numpy(columns).to(cost_mat.device)
        loss = cost_mat.gather(2, matching.unsqueeze(-1)).squeeze(-1)
        if self._reduction == "mean":
            loss = loss.mean(-1)
        elif self._reduction == "sum":
            loss = loss.sum(-1)
        return loss, matching
