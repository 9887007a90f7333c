"""The PPO agent: specs from gymnasium spaces, the actor-critic network and
the clipped-surrogate update.

Shapes: ``B`` a batch of environments or samples, ``D`` the observation size,
``A`` the number of discrete actions.

Data-parallel training: the update computes its outputs through
``ActorCritic.logits_and_value``, marked ``@data_distributed``. Once the
module is activated (``agent._ddp_activated_rank = rank``) and a
``torch.distributed`` process group exists, that call runs under PyTorch's
DistributedDataParallel, so ``backward()`` averages the gradients over the
processes; otherwise it is a plain call.
"""

import math
from typing import Callable, Dict, Optional, Sequence, Tuple

import gymnasium as gym
import numpy as np
import torch
import torch.distributions as td
from torch import nn

from alf.tensor_specs import BoundedTensorSpec, TensorSpec
from alf.utils import common, dist_utils
from alf.utils.distributed import data_distributed
from alf.utils.tensor_utils import clip_by_global_norm

__all__ = ["ActorCritic", "greedy_action", "ppo_update", "spec_from_space"]


def spec_from_space(space: gym.Space, name: str) -> BoundedTensorSpec:
    """The ``BoundedTensorSpec`` of one item of a ``Box`` or ``Discrete`` space.

    A ``Discrete(n, start)`` space becomes an int64 scalar spec with bounds
    ``[start, start + n - 1]``; a ``Box`` keeps its shape, dtype and bounds
    (infinite bounds included).

    Raises:
        ValueError: any other space (``name`` says which one it is).
    """
    if isinstance(space, gym.spaces.Discrete):
        start = int(space.start)
        return BoundedTensorSpec((), torch.int64, start, start + int(space.n) - 1)
    if isinstance(space, gym.spaces.Box):
        return BoundedTensorSpec(space.shape, space.dtype, space.low, space.high)
    raise ValueError(f"{name} must be a Box or Discrete space; got {space}")


def _mlp(sizes: Sequence[int], out_gain: float) -> nn.Sequential:
    layers = []
    for i in range(len(sizes) - 1):
        linear = nn.Linear(sizes[i], sizes[i + 1])
        last = i == len(sizes) - 2
        nn.init.orthogonal_(linear.weight, out_gain if last else math.sqrt(2.0))
        nn.init.zeros_(linear.bias)
        layers.append(linear)
        if not last:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


class ActorCritic(nn.Module):
    """Separate tanh MLPs for the policy logits and the state value.

    Args:
        observation_spec (TensorSpec): float ``[D]`` observations.
        action_spec (BoundedTensorSpec): int64 scalar actions in
            ``[minimum, maximum]``; ``A = maximum - minimum + 1``.
        hidden_sizes: widths of the hidden layers of each network.
    """

    def __init__(
        self,
        observation_spec: TensorSpec,
        action_spec: BoundedTensorSpec,
        hidden_sizes: Sequence[int] = (64, 64),
    ):
        super().__init__()
        if len(observation_spec.shape) != 1:
            raise ValueError(
                f"observation_spec must be 1-D for an MLP; got shape {tuple(observation_spec.shape)}"
            )
        obs_size = observation_spec.shape[0]
        num_actions = int(action_spec.maximum) - int(action_spec.minimum) + 1
        self.actor = _mlp([obs_size, *hidden_sizes, num_actions], out_gain=0.01)
        self.critic = _mlp([obs_size, *hidden_sizes, 1], out_gain=1.0)

    def forward(self, observation: torch.Tensor) -> Tuple[td.Categorical, torch.Tensor]:
        """``observation`` float32 ``[B, D]`` -> (Categorical with batch shape
        ``[B]`` over action indices ``0..A-1``, float32 values ``[B]``)."""
        logits = self.actor(observation)
        # validate_args=False: argument checks cost more than the tiny MLP
        dist = td.Categorical(logits=logits, validate_args=False)
        return dist, self.critic(observation).squeeze(-1)

    @data_distributed
    def logits_and_value(self, observation: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """The outputs the update trains: float32 logits ``[B, A]`` and values
        ``[B]`` for ``observation`` ``[B, D]``. Under DDP (see the module
        docstring) their ``backward()`` averages the gradients over processes."""
        return self.actor(observation), self.critic(observation).squeeze(-1)

    def act(self, observation: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The policy step for ``observation`` float32 ``[B, D]``: int64
        action indices ``[B]`` (``0..A-1``), their float32 log-probabilities
        ``[B]`` and the values ``[B]``.

        The execution mode of ``alf.utils.common`` decides: in eval mode
        (``common.eval_context()``) the action is the mode of the
        distribution (the greedy policy), otherwise a sample.
        """
        dist, value = self(observation)
        if common.is_eval():
            action = dist_utils.get_mode(dist)
            return action, dist_utils.compute_log_probability(dist, action), value
        action, log_prob = dist_utils.sample_action_distribution(dist, return_log_prob=True)
        return action, log_prob, value


def ppo_update(
    agent: ActorCritic,
    optimizer: torch.optim.Optimizer,
    batch: Dict[str, torch.Tensor],
    clip_ratio: float,
    config,
    all_reduce: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
) -> Dict[str, float]:
    """Run ``config.num_epochs`` epochs of clipped PPO on one batch of samples.

    Args:
        batch: flat samples, each ``[N]`` (observation ``[N, D]``):
            ``observation`` (normalized, float32), ``action`` (int64 index
            ``0..A-1``), ``log_prob`` and ``value`` of the behaviour policy,
            ``advantage`` and ``return`` (float32).
        clip_ratio: the PPO clip epsilon for this update.
        config: the ``PPOConfig`` (epochs, minibatches, coefficients).
            Minibatches are shuffled with torch's global generator.
        all_reduce: data-parallel training: a function summing a float64
            tensor over the processes (None: a single process). The
            advantages are then normalized with the statistics of all the
            processes' samples, and each process's loss is weighted by its
            share of the samples, so that the gradients DDP averages are
            those of the mean loss over every sample.

    Returns:
        Floats averaged over the minibatches of the last epoch (before their
        optimizer step): ``loss`` (the total minimized), ``policy_loss``,
        ``value_loss``, ``entropy``, ``approx_kl`` and ``clip_fraction`` (how
        far the policy moved from the behaviour policy), ``grad_norm``
        (before clipping). The parameters' ``.grad`` keep the clipped
        gradients of the last minibatch.
    """
    n = batch["action"].shape[0]
    advantage = batch["advantage"]
    weight = 1.0
    if all_reduce is None:
        if config.normalize_advantages and n > 1:
            advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
    else:
        a = advantage.double()
        count, total, squares, processes = all_reduce(
            torch.stack(
                [
                    torch.tensor(float(n), dtype=torch.float64),
                    a.sum(),
                    a.square().sum(),
                    torch.tensor(1.0, dtype=torch.float64),
                ]
            )
        ).tolist()
        weight = n * processes / count  # DDP averages: sum of n_i / count
        if config.normalize_advantages and count > 1:
            mean = total / count
            std = math.sqrt(max(squares - count * mean * mean, 0.0) / (count - 1))
            advantage = (advantage - mean) / (std + 1e-8)
    batch = {**batch, "advantage": advantage}
    params = [p for p in agent.parameters()]
    totals = torch.zeros(7)
    num_minibatches = max(1, min(config.num_minibatches, n))
    for epoch in range(config.num_epochs):
        if num_minibatches == 1:  # the full batch: no shuffle, no gather
            minibatches = [batch]
        else:
            order = torch.randperm(n)
            minibatches = [
                {k: v[i] for k, v in batch.items()} for i in order.chunk(num_minibatches)
            ]
        last_epoch = epoch == config.num_epochs - 1
        for mb in minibatches:
            logits, value = agent.logits_and_value(mb["observation"])
            dist = td.Categorical(logits=logits, validate_args=False)
            log_prob = dist_utils.compute_log_probability(dist, mb["action"])
            log_ratio = log_prob - mb["log_prob"]
            ratio = log_ratio.exp()
            adv = mb["advantage"]
            policy_loss = -torch.min(
                ratio * adv, ratio.clamp(1.0 - clip_ratio, 1.0 + clip_ratio) * adv
            ).mean()
            value_loss = 0.5 * (mb["return"] - value).square().mean()
            loss = policy_loss + config.value_coef * value_loss
            if config.entropy_coef:
                entropy = dist_utils.compute_entropy(dist).mean()
                loss = loss - config.entropy_coef * entropy
            optimizer.zero_grad(set_to_none=False)
            (loss * weight if all_reduce is not None else loss).backward()
            _, grad_norm = clip_by_global_norm(
                [p.grad for p in params], config.max_grad_norm, in_place=True
            )
            optimizer.step()
            if last_epoch:  # statistics of the last epoch only: they cost time
                with torch.no_grad():
                    entropy = dist_utils.compute_entropy(dist).mean()
                    approx_kl = ((ratio - 1.0) - log_ratio).mean()
                    clipped = ((ratio - 1.0).abs() > clip_ratio).float().mean()
                    totals += torch.stack(
                        [loss, policy_loss, value_loss, entropy, approx_kl, clipped, grad_norm]
                    )
    names = (
        "loss",
        "policy_loss",
        "value_loss",
        "entropy",
        "approx_kl",
        "clip_fraction",
        "grad_norm",
    )
    return dict(zip(names, (totals / len(minibatches)).tolist()))


def greedy_action(agent: ActorCritic, observation: torch.Tensor) -> np.ndarray:
    """Deterministic (mode) action indices ``[B]`` int64 for ``observation``
    ``[B, D]``: ``agent.act`` in ``common.eval_context()``, without gradients."""
    with common.eval_context(), torch.no_grad():
        action, _, _ = agent.act(observation)
    return action.numpy()
