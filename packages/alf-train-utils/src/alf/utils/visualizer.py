"""Various functions related to visualizations of networks etc."""

from typing import Any, Callable, Optional

import torch

import alf.nest as nest
from alf.utils._train_checks import check_int

__all__ = ["critic_network_visualizer"]


def _check_action(name: str, value: Any) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a tensor [action_dim], got {type(value).__name__}")
    if value.dim() != 1 or not value.is_floating_point():
        raise ValueError(
            f"{name} must be a floating-point tensor [action_dim], got {value.dtype} "
            f"{list(value.shape)}"
        )
    return value


def critic_network_visualizer(
    net: Callable,
    observation: Any,
    action_upper_left: torch.Tensor,
    action_upper_right: torch.Tensor,
    action_lower_left: torch.Tensor,
    H: int = 20,
    W: int = 20,
    batch_size: Optional[int] = None,
) -> torch.Tensor:
    """Evaluate ``net`` on an H x W grid of actions over a rectangle of the action
    space, for every observation of a batch, as an image [B, K, H, W].

    The probing region is the rectangle with corners::

        action_upper_left ---> action_upper_right
              |
              v
        action_lower_left       action_lower_right

    where ``action_lower_right = action_upper_right + action_lower_left -
    action_upper_left``. Pixel ``(i, j)`` is the response to the action ::

        upper_left + i / (H - 1) * (lower_left - upper_left)
                   + j / (W - 1) * (upper_right - upper_left)

    (``i / (H - 1)`` is 0 when ``H == 1``, likewise for ``W``), so row 0 runs from
    ``upper_left`` to ``upper_right`` and column 0 from ``upper_left`` to
    ``lower_left``. Each observation is paired with all ``H * W`` actions and
    ``net`` is called once, on ``B * H * W`` inputs, without gradients.

    Example::

        # action_dim = 4: vary the first two dimensions over [-1, 1]^2
        img = critic_network_visualizer(
            lambda inputs: critic_net(inputs)[0].min(dim=1)[0],  # [B*H*W, K]
            observation,                                         # [B, ...]
            torch.tensor([1., -1, 0, 0]),                        # upper left
            torch.tensor([1., 1, 0, 0]),                         # upper right
            torch.tensor([-1., -1, 0, 0]),                       # lower left
            20, 20)
        alf.summary.images("critic", img[:, :1])  # NCHW, one channel
        heat = img[0, 0].cpu().numpy()              # [H, W] for a heat map

    Args:
        net (Callable): called as ``net((observation, actions))`` with every leaf
            of ``observation`` repeated to ``[B * H * W, ...]`` (observation b
            at rows ``b * H * W`` to ``(b + 1) * H * W - 1``) and ``actions``
            [B * H * W, action_dim]; returns a tensor [B * H * W] or
            [B * H * W, ...] (trailing dims flattened into K).
        observation (nested Tensor): [B, ...].
        action_upper_left (Tensor): the upper-left point of the probing region,
            float [action_dim].
        action_upper_right (Tensor): the upper-right point, float [action_dim].
        action_lower_left (Tensor): the lower-left point, float [action_dim].
        H (int): number of samples along ``action_lower_left - action_upper_left``.
        W (int): number of samples along ``action_upper_right - action_upper_left``.
            The total number of samples is H * W.
        batch_size (int): the batch size of the input observation. If None, it is
            inferred from the first leaf of the observation.

    Returns:
        Tensor: the network response image [B, K, H, W] (the dtype and device of
        ``net``'s output), where K is the number of outputs per input (1 for a
        [B * H * W] output). This is the NCHW layout ``alf.summary.images``
        takes.

    Raises:
        TypeError/ValueError: naming the argument for actions that are not float
            tensors [action_dim] of one shape, an ``H``/``W`` that is not an int
            >= 1, an observation whose leaves disagree with ``batch_size``, or a
            network output whose first dimension is not ``B * H * W``.
    """
    upper_left = _check_action("action_upper_left", action_upper_left)
    upper_right = _check_action("action_upper_right", action_upper_right)
    lower_left = _check_action("action_lower_left", action_lower_left)
    if not upper_left.shape == upper_right.shape == lower_left.shape:
        raise ValueError(
            "action_upper_left, action_upper_right and action_lower_left must have one shape "
            f"[action_dim], got {list(upper_left.shape)}, {list(upper_right.shape)} and "
            f"{list(lower_left.shape)}"
        )
    H = check_int(H, "H", 1)
    W = check_int(W, "W", 1)
    leaves = nest.flatten(observation)
    if not leaves or not all(isinstance(x, torch.Tensor) and x.dim() >= 1 for x in leaves):
        raise TypeError("observation must be a (nest of) tensor(s) [B, ...]")
    if batch_size is None:
        batch_size = leaves[0].shape[0]
    batch_size = check_int(batch_size, "batch_size", 1)
    sizes = [x.shape[0] for x in leaves]
    if any(s != batch_size for s in sizes):
        raise ValueError(
            f"observation leaves must all have batch size batch_size={batch_size}, got {sizes}"
        )

    n = H * W
    rows = torch.linspace(0.0, 1.0, H, dtype=upper_left.dtype, device=upper_left.device)
    cols = torch.linspace(0.0, 1.0, W, dtype=upper_left.dtype, device=upper_left.device)
    down = lower_left - upper_left
    right = upper_right - upper_left
    grid = upper_left + rows.view(H, 1, 1) * down + cols.view(1, W, 1) * right  # [H, W, A]
    actions = grid.reshape(1, n, -1).expand(batch_size, n, -1).reshape(batch_size * n, -1)
    repeated = nest.map_structure(lambda x: x.repeat_interleave(n, dim=0), observation)

    with torch.no_grad():
        response = net((repeated, actions))
    if not isinstance(response, torch.Tensor) or response.dim() == 0:
        raise TypeError(f"net must return a tensor [B * H * W, ...], got {type(response).__name__}")
    if response.shape[0] != batch_size * n:
        raise ValueError(
            f"net must return a tensor with first dimension B * H * W = {batch_size * n}, got "
            f"shape {list(response.shape)}"
        )
    return response.reshape(batch_size, H, W, -1).permute(0, 3, 1, 2).contiguous()
