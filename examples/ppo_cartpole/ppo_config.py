"""Hyperparameters of the PPO CartPole example, in one dataclass.

Every number the training loop uses lives in ``PPOConfig``; ``ppo_train.train``
reads nothing else. The learning rate and the clip ratio follow piecewise
linear schedules over training progress (0 at the start, 1 at the end), written
as ``((progress, value), ...)`` pairs and computed by
``alf.utils.schedulers.LinearScheduler("percent", schedule)``.
"""

import dataclasses
from typing import Tuple

__all__ = ["PPOConfig"]

Schedule = Tuple[Tuple[float, float], ...]


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """Everything that defines one training run (one seed).

    Defaults: stable-baselines3 rl-zoo's tuned PPO for CartPole-v1 (8 envs x
    32 steps per update, 20 epochs on the whole batch, gamma 0.98, GAE lambda
    0.8, lr and clip ratio decaying linearly to 0), plus an observation
    normalizer (clipped to +-10), without per-batch advantage normalization
    (once the policy is good the advantages are mostly noise, and scaling
    them to unit variance made late collapses more frequent); see README.md
    for the tuning runs.
    """

    env_id: str = "CartPole-v1"
    seed: int = 0
    total_steps: int = 100_000  # environment steps (all envs together)
    num_envs: int = 8
    unroll_length: int = 32  # steps per environment between two updates
    num_epochs: int = 20
    num_minibatches: int = 1  # per epoch
    gamma: float = 0.98
    gae_lambda: float = 0.8
    lr_schedule: Schedule = ((0.0, 1e-3), (1.0, 0.0))
    clip_schedule: Schedule = ((0.0, 0.2), (1.0, 0.0))
    value_coef: float = 0.5
    entropy_coef: float = 0.0
    max_grad_norm: float = 0.5
    adam_eps: float = 1e-5
    normalize_advantages: bool = False  # per batch (all processes) to mean 0, std 1
    hidden_sizes: Tuple[int, ...] = (64, 64)
    normalize_observations: bool = True
    obs_normalizer_speed: float = 1.0  # AdaptiveNormalizer speed (1: equal weights)
    obs_clip: float = 10.0  # normalized observations are clipped to +-obs_clip
    return_window: int = 20  # "recent return" = mean over this many episodes
    target_return: float = 475.0  # the step where the recent return first reaches it is reported
    eval_episodes: int = 10
    summary_interval: int = 1  # iterations between two writes of the scalar summaries
    # iterations between two writes of histograms, variable and gradient norms
    detail_summary_interval: int = 10
    checkpoint_interval: int = 20  # iterations between two checkpoints (and one at the end)
    checkpoints_to_keep: int = 3
    num_processes: int = 1  # data-parallel processes; they share the num_envs environments
    torch_threads: int = 1

    @property
    def steps_per_iteration(self) -> int:
        """Environment steps collected between two updates."""
        return self.num_envs * self.unroll_length

    @property
    def num_iterations(self) -> int:
        """Updates in the run: ``total_steps`` rounded up to whole iterations."""
        return -(-self.total_steps // self.steps_per_iteration)
