"""Ornstein-Uhlenbeck exploration noise."""

import torch
import torch.nn as nn

__all__ = ["OUProcess"]


class OUProcess(nn.Module):
    """A zero-mean Ornstein-Uhlenbeck process for generating noises.

    The process generates temporally correlated noise via a random walk
    with damping: the velocity of a particle undergoing brownian motion with
    friction, useful for exploration in continuous action environments with
    momentum. Each call updates and returns

    ``x_next = (1 - damping) * x + N(0, stddev^2)``.

    Args:
        initial_value (Tensor): initial value of the process (any shape,
            floating dtype); it is copied, never modified.
        damping (float): in ``[0, 1]``; 0 gives an undamped random walk, 1
            uncorrelated Gaussian noise; a small non-zero value is usual.
        stddev (float): standard deviation (``>= 0``) of the Gaussian
            component.
    Raises:
        ValueError: ``damping`` not in ``[0, 1]`` or ``stddev < 0``.
        TypeError: ``initial_value`` is not a floating tensor.
    """

    _x: torch.Tensor

    def __init__(self, initial_value: torch.Tensor, damping: float = 0.15, stddev: float = 0.2):
        if not isinstance(initial_value, torch.Tensor) or not initial_value.is_floating_point():
            raise TypeError(f"initial_value must be a floating Tensor; got {initial_value!r}")
        if not (isinstance(damping, (int, float)) and 0 <= damping <= 1):
            raise ValueError(f"damping must be in [0, 1]; got {damping!r}")
        if not (isinstance(stddev, (int, float)) and stddev >= 0):
            raise ValueError(f"stddev must be a non-negative number; got {stddev!r}")
        super().__init__()
        self._damping = float(damping)
        self._stddev = float(stddev)
        self.register_buffer("_x", initial_value.detach().clone())

    def forward(self) -> torch.Tensor:
        """Advance the process one step; returns a copy of the new value
        (shape and dtype of ``initial_value``)."""
        noise = torch.randn_like(self._x) * self._stddev
        self._x.mul_(1 - self._damping).add_(noise)
        return self._x.clone()
