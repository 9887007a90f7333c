"""Modules that sample discrete actions from categorical probabilities.

Shapes: ``B`` is the batch size and ``K`` the number of classes; inputs are
probabilities ``[B, K]`` (rows summing to 1, floating dtype) and actions are
``int64`` tensors ``[B]``.
"""

import abc
from typing import Tuple

import torch
import torch.nn as nn

from alf.tensor_specs import TensorSpec
from alf.utils._dist_gamma import gamma_log_icdf

__all__ = ["CategoricalSeedSampler", "EpsilonGreedySampler", "MultinomialSampler"]


def _check_probs(input: torch.Tensor, name: str = "input") -> None:
    if not isinstance(input, torch.Tensor):
        raise TypeError(f"{name} must be a floating Tensor; got {type(input).__name__}")
    if input.dim() != 2:
        raise ValueError(
            f"{name} must be a [batch_size, num_classes] tensor; got {tuple(input.shape)}"
        )
    if not input.is_floating_point():
        raise TypeError(f"{name} must have a floating dtype; got {input.dtype}")


class _CategoricalSeedSamplerBase(nn.Module, abc.ABC):
    """A stateful sampler keeping a noise vector ``epsilon`` per batch row.

    ``forward(input, state)`` draws a fresh ``epsilon ~ U(0, 1)^K`` for the
    rows whose state is all zeros (an initial state) and, with probability
    ``new_noise_prob``, for any other row; the other rows keep their noise.
    Subclasses turn ``(input, epsilon)`` into actions in ``_sample``.

    Args:
        num_classes (int): number of classes ``K``.
        new_noise_prob (float): in ``[0, 1]``.
        name (str): name of the sampler.
    Attributes:
        input_tensor_spec (TensorSpec): ``TensorSpec((K,))`` for one row of
            probabilities.
        state_spec (TensorSpec): ``TensorSpec((K,))`` for one noise vector.
    Raises:
        ValueError: ``num_classes < 1`` or ``new_noise_prob`` not in ``[0, 1]``.
    """

    def __init__(self, num_classes: int, new_noise_prob: float = 0.01, name: str = "Sampler"):
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive int; got {num_classes!r}")
        if not (isinstance(new_noise_prob, (int, float)) and 0 <= new_noise_prob <= 1):
            raise ValueError(f"new_noise_prob must be in [0, 1]; got {new_noise_prob!r}")
        super().__init__()
        self._num_classes = num_classes
        self._new_noise_prob = float(new_noise_prob)
        self.input_tensor_spec = TensorSpec((num_classes,))
        self.state_spec = TensorSpec((num_classes,))
        self.name = name

    def forward(
        self, input: torch.Tensor, state: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Sample actions.

        Args:
            input (Tensor): the parameter of the categorical distribution with
                the shape of ``[batch_size, num_classes]``.
            state (Tensor): noise state (i.e. ``epsilon``), same shape.
        Returns:
            tuple: ``(actions [B] int64, new_state [B, K])``.
        Raises:
            TypeError: ``input`` or ``state`` is not a floating tensor.
            ValueError: ``input`` or ``state`` is not ``[B, num_classes]``.
        """
        _check_probs(input)
        _check_probs(state, "state")
        if input.shape[1] != self._num_classes or state.shape != input.shape:
            raise ValueError(
                f"input and state must both be [batch_size, {self._num_classes}]; got "
                f"input {tuple(input.shape)} and state {tuple(state.shape)}"
            )
        batch_size = input.shape[0]
        fresh = torch.rand(batch_size, device=input.device) < self._new_noise_prob
        fresh = fresh | (state == 0).all(dim=1)
        noise = torch.rand(state.shape, dtype=state.dtype, device=state.device)
        epsilon = torch.where(fresh.unsqueeze(1), noise, state)
        return self._sample(input, epsilon), epsilon

    @abc.abstractmethod
    def _sample(self, input: torch.Tensor, epsilon: torch.Tensor) -> torch.Tensor:
        """Actions ``[B]`` (int64) for probabilities ``input`` and noise
        ``epsilon``, both ``[B, K]``."""


class CategoricalSeedSampler(_CategoricalSeedSamplerBase):
    r"""Sample actions with temporal consistency.

    An internal noise vector :math:`\epsilon` (the state) modifies the
    categorical distribution :math:`\pi` into :math:`\tilde\pi = f(\pi,
    \epsilon)` with :math:`\tilde\pi \sim Dir(c\pi)`, so that
    :math:`E(\tilde\pi) = \pi`; the action is then drawn from
    :math:`\tilde\pi`. Here :math:`\tilde\pi_i \propto G_i`, where
    :math:`G_i` is the :math:`\epsilon_i`-quantile of
    :math:`Gamma(c\pi_i, 1)`. While :math:`\epsilon` is kept, similar
    :math:`\pi` give similar :math:`\tilde\pi`; a small concentration makes
    :math:`\tilde\pi` nearly one-hot and the actions nearly deterministic
    between noise refreshes, a large one brings :math:`\tilde\pi` close to
    :math:`\pi`. Marginally, actions follow :math:`\pi`.

    Args:
        num_classes (int): number of classes for the categorical distribution.
        new_noise_prob (float): the probability of generating a new
            :math:`\epsilon` at each step.
        concentration (float): the concentration scaling factor ``c > 0``.
    Raises:
        ValueError: bad ``num_classes``, ``new_noise_prob`` or
            ``concentration``.
    """

    def __init__(self, num_classes: int, new_noise_prob: float = 0.01, concentration: float = 1):
        if not (isinstance(concentration, (int, float)) and concentration > 0):
            raise ValueError(f"concentration must be a positive number; got {concentration!r}")
        super().__init__(num_classes, new_noise_prob, name="CategoricalSeedSampler")
        self._concentration = float(concentration)

    def dirichlet_probs(self, input: torch.Tensor, epsilon: torch.Tensor) -> torch.Tensor:
        r""":math:`\tilde\pi = f(\pi, \epsilon)`, ``[B, K]`` in the dtype of
        ``input``; rows follow :math:`Dir(c\pi)` for uniform :math:`\epsilon`."""
        log_gamma = gamma_log_icdf(epsilon, self._concentration * input)
        return torch.softmax(log_gamma, dim=1).to(input.dtype)

    def _sample(self, input, epsilon):
        return torch.multinomial(self.dirichlet_probs(input, epsilon), 1).squeeze(1)


class EpsilonGreedySampler(nn.Module):
    """Epsilon greedy sampler.

    With probability ``1 - epsilon_greedy`` take the action with the largest
    probability; with probability ``epsilon_greedy`` sample from the given
    categorical distribution.

    Args:
        epsilon_greedy (float): in ``[0, 1]``.
    Raises:
        ValueError: ``epsilon_greedy`` is not in ``[0, 1]``.
    """

    def __init__(self, epsilon_greedy: float = 0.1):
        if not (isinstance(epsilon_greedy, (int, float)) and 0 <= epsilon_greedy <= 1):
            raise ValueError(f"epsilon_greedy must be in [0, 1]; got {epsilon_greedy!r}")
        super().__init__()
        self._epsilon_greedy = float(epsilon_greedy)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Sample actions.

        Args:
            input (Tensor): categorical probabilities with the shape of
                ``[batch_size, num_classes]``.
        Returns:
            Tensor: ``int64`` actions ``[batch_size]``.
        Raises:
            TypeError: ``input`` is not a floating tensor.
            ValueError: ``input`` is not 2-D.
        """
        _check_probs(input)
        greedy = input.argmax(dim=1)
        if self._epsilon_greedy == 0:
            return greedy
        sampled = torch.multinomial(input, 1).squeeze(1)
        explore = torch.rand(input.shape[0], device=input.device) < self._epsilon_greedy
        return torch.where(explore, sampled, greedy)


class MultinomialSampler(nn.Module):
    """Sample actions according to the given multinomial distribution."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Sample actions.

        Args:
            input (Tensor): categorical probabilities with the shape of
                ``[batch_size, num_classes]``.
        Returns:
            Tensor: ``int64`` actions ``[batch_size]``.
        Raises:
            TypeError: ``input`` is not a floating tensor.
            ValueError: ``input`` is not 2-D.
        """
        _check_probs(input)
        return torch.multinomial(input, 1).squeeze(1)
