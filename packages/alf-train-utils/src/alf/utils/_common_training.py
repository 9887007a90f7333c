"""Training-loop helpers of ``alf.utils.common`` that read a trainer
configuration or an algorithm: summary/eval intervals, exploration noise,
epsilon-greedy, the training phase."""

import math
from typing import Any, Optional

import gin

from alf import nest
from alf.utils._common_exe_mode import is_replay, is_rollout
from alf.utils._train_checks import check_int
from alf.utils.dist_utils import OUProcess

__all__ = [
    "compute_summary_or_eval_interval",
    "create_ou_process",
    "get_epsilon_greedy",
    "is_training",
]


#: ``TrainerConfig.epsilon_greedy``'s default in the reference.
_DEFAULT_EPSILON_GREEDY = 0.1


def _gin_value(name: str) -> Optional[Any]:
    """The gin binding ``name`` (``"Configurable.param"``), None if unbound."""
    try:
        return gin.query_parameter(name)
    except ValueError:
        return None


def _attr(config: Any, name: str, default: Any = None) -> Any:
    value = getattr(config, name, default)
    return default if value is None else value


def compute_summary_or_eval_interval(
    config: Any, summary_or_eval_calls: int = 100, num_envs: Optional[int] = None
) -> int:
    """An interval (in training iterations, i.e. global-counter steps) giving
    about ``summary_or_eval_calls`` summaries or evaluations in a run:
    ``ceil(num_iterations / summary_or_eval_calls)`` (at least 1).

    ``num_iterations`` is ``config.num_iterations`` when positive, otherwise
    ``config.num_env_steps / (num_envs * config.unroll_length)``. Algorithms
    that advance the global counter themselves (e.g. ``LMAlgorithm``) get
    other counts.

    Args:
        config (TrainerConfig): anything with ``num_iterations``,
            ``num_env_steps`` and ``unroll_length``.
        summary_or_eval_calls (int): the number of calls wanted (positive);
            rounding the interval up may give fewer.
        num_envs (int | None): parallel environments, needed only when
            ``num_iterations`` is 0. None takes ``config.num_envs``, else
            the gin binding ``create_environment.num_parallel_environments``.

    Returns:
        int: the interval.

    Raises:
        TypeError: ``summary_or_eval_calls`` is not an int.
        ValueError: both ``num_iterations`` and ``num_env_steps`` are 0, a
            non-positive ``summary_or_eval_calls``/``unroll_length``, or the
            number of environments is unknown.
    """
    summary_or_eval_calls = check_int(summary_or_eval_calls, "summary_or_eval_calls", 1)
    num_iterations = _attr(config, "num_iterations", 0)
    if num_iterations <= 0:
        num_env_steps = _attr(config, "num_env_steps", 0)
        if num_env_steps <= 0:
            raise ValueError(
                "config.num_iterations and config.num_env_steps cannot both be 0 "
                f"(got {num_iterations!r} and {num_env_steps!r})"
            )
        unroll_length = _attr(config, "unroll_length", 0)
        if unroll_length <= 0:
            raise ValueError(f"config.unroll_length must be positive; got {unroll_length!r}")
        if num_envs is None:
            num_envs = _attr(config, "num_envs")
        if num_envs is None:
            num_envs = _gin_value("create_environment.num_parallel_environments")
        if num_envs is None or num_envs <= 0:
            raise ValueError(
                "the number of environments is unknown: pass num_envs (or set config.num_envs, "
                f"or bind create_environment.num_parallel_environments in gin); got {num_envs!r}"
            )
        num_iterations = num_env_steps / (num_envs * unroll_length)
    return max(1, math.ceil(num_iterations / summary_or_eval_calls))


def create_ou_process(action_spec: Any, ou_stddev: float, ou_damping: float) -> Any:
    """Zero-mean Ornstein-Uhlenbeck processes, one per spec:
    ``x_next = (1 - damping) * x + N(0, stddev^2)``, starting at
    ``spec.zeros()``.

    For a nested ``action_spec`` the result is a nest of ``OUProcess``
    modules with the same structure; not being submodules of anything, they
    are not checkpointed.

    Args:
        action_spec (nested BoundedTensorSpec): floating specs.
        ou_stddev (float): standard deviation (``>= 0``) of the Gaussian part.
        ou_damping (float): damping rate in ``[0, 1]``.

    Returns:
        OUProcess | nested OUProcess: each call returns the next noise, a
        tensor of ``spec.shape`` and ``spec.dtype``.

    Raises:
        ValueError: ``ou_damping`` outside ``[0, 1]`` or ``ou_stddev < 0``.
        TypeError: a spec with a non-floating dtype.
    """
    return nest.map_structure(
        lambda spec: OUProcess(spec.zeros(), damping=ou_damping, stddev=ou_stddev), action_spec
    )


def get_epsilon_greedy(config: Any) -> float:
    """The epsilon of epsilon-greedy exploration: ``config.epsilon_greedy``;
    with ``config=None`` the gin binding ``TrainerConfig.epsilon_greedy`` or,
    when unbound, the reference's default 0.1.

    Args:
        config (TrainerConfig | None): anything with ``epsilon_greedy``.

    Returns:
        float: the epsilon.
    """
    if config is not None:
        return config.epsilon_greedy
    value = _gin_value("TrainerConfig.epsilon_greedy")
    return _DEFAULT_EPSILON_GREEDY if value is None else value


def is_training(alg: Any) -> bool:
    """Whether the code runs in a training phase of ``alg``: the rollout
    phase of an on-policy algorithm or the replay phase of an off-policy one
    (False under ``train_from_unroll()``, which is neither).

    Args:
        alg (Algorithm): has ``on_policy`` (a method or a bool attribute).
    """
    on_policy = alg.on_policy
    if callable(on_policy):
        on_policy = on_policy()
    return is_rollout() if on_policy else is_replay()
