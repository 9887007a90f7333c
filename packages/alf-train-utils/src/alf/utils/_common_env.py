"""The global environment of ``alf.utils.common`` and the spec getters that
read it.

The trainer (or a config file) sets the environment once per process with
``set_global_env``; networks and algorithms then ask for its specs. The
getters are gin-configurable (module ``alf.utils.common``) so gin files can
write ``input_tensor_spec = @get_observation_spec()``.
"""

import math
import numbers
from typing import Any, Optional

import gin
import numpy as np

from alf import nest
from alf.tensor_specs import BoundedTensorSpec
from alf.utils.spec_utils import zeros_from_spec

__all__ = [
    "active_action_target_entropy",
    "get_action_spec",
    "get_env",
    "get_initial_time_step",
    "get_observation_spec",
    "get_raw_observation_spec",
    "get_reward_spec",
    "get_states_shape",
    "get_vocab_size",
    "set_global_env",
    "set_transformed_observation_spec",
]

_PUBLIC_MODULE = "alf.utils.common"

_env: Any = None
_transformed_observation_spec: Any = None


def set_global_env(env: Any) -> None:
    """Make ``env`` (an ``AlfEnvironment``, or None to forget it) the global
    environment of this process."""
    global _env
    _env = env


def get_env() -> Any:
    """The global environment.

    Raises:
        RuntimeError: no global environment was set (``set_global_env``).
    """
    if _env is None:
        raise RuntimeError("no global environment: call set_global_env(env) first")
    return _env


def _field_of(specs: Any, field: Optional[str]) -> Any:
    return nest.get_field(specs, field)


def _has_key(specs: Any, key: str) -> bool:
    if isinstance(specs, dict):
        return key in specs
    if nest.is_namedtuple(specs):
        return key in specs._fields
    return False


@gin.configurable(module=_PUBLIC_MODULE)
def get_raw_observation_spec(field: Optional[str] = None) -> Any:
    """The observation spec of the global environment (before data
    transformers).

    Args:
        field (str | None): a path ``"A.B.C"`` into the nest; None for all.

    Returns:
        nested TensorSpec: the spec at ``field``.

    Raises:
        RuntimeError: no global environment is set.
        ValueError: ``field`` names nothing (the message names the path).
    """
    return _field_of(get_env().observation_spec(), field)


def set_transformed_observation_spec(spec: Any) -> None:
    """Set the spec of the observations after the data transformers (what
    ``get_observation_spec`` returns)."""
    global _transformed_observation_spec
    _transformed_observation_spec = spec


@gin.configurable(module=_PUBLIC_MODULE)
def get_observation_spec(field: Optional[str] = None) -> Any:
    """The observation spec after the data transformers (set by
    ``set_transformed_observation_spec``; the transformers are those of
    ``TrainerConfig.data_transformer_ctor``).

    Args:
        field (str | None): a path ``"A.B.C"`` into the nest; None for all.

    Returns:
        nested TensorSpec: the spec at ``field``.

    Raises:
        RuntimeError: the transformed spec was not set yet.
        ValueError: ``field`` names nothing (the message names the path).
    """
    if _transformed_observation_spec is None:
        raise RuntimeError(
            "the transformed observation spec is not set: call "
            "set_transformed_observation_spec(spec) first"
        )
    return _field_of(_transformed_observation_spec, field)


@gin.configurable(module=_PUBLIC_MODULE)
def get_action_spec() -> Any:
    """The spec (nested ``BoundedTensorSpec``) of the actions that the
    global environment's ``step(action)`` expects.

    Raises:
        RuntimeError: no global environment is set.
    """
    return get_env().action_spec()


@gin.configurable(module=_PUBLIC_MODULE)
def get_reward_spec() -> Any:
    """The spec (nested ``TensorSpec``) of the rewards of the global
    environment.

    Raises:
        RuntimeError: no global environment is set.
    """
    return get_env().reward_spec()


@gin.configurable(module=_PUBLIC_MODULE)
def get_states_shape() -> Any:
    """The shape (``torch.Size``) of the ``"states"`` observation of the
    global environment, or 0 when its observations have no ``"states"``
    field (so this also tells whether there is one).

    Raises:
        RuntimeError: no global environment is set.
    """
    spec = get_env().observation_spec()
    if _has_key(spec, "states"):
        return nest.get_field(spec, "states").shape
    return 0


def _num_values(spec: BoundedTensorSpec, what: str) -> int:
    """``maximum - minimum + 1`` of a spec whose bounds are the same for
    every element."""
    lo, hi = np.unique(spec.minimum), np.unique(spec.maximum)
    if lo.size != 1 or hi.size != 1:
        raise ValueError(f"{what} must have the same bounds for every element; got {spec!r}")
    return int(hi[0]) - int(lo[0]) + 1


@gin.configurable(module=_PUBLIC_MODULE)
def get_vocab_size() -> int:
    """The vocabulary size of the ``"sentence"`` observation of the global
    environment (``maximum - minimum + 1`` of its bounded spec), or 0 when
    its observations have no ``"sentence"`` field.

    Raises:
        RuntimeError: no global environment is set.
    """
    spec = get_env().observation_spec()
    if not _has_key(spec, "sentence"):
        return 0
    return _num_values(nest.get_field(spec, "sentence"), "observation 'sentence' spec")


@gin.configurable(module=_PUBLIC_MODULE)
def active_action_target_entropy(
    active_action_portion: float = 0.2, min_entropy: float = 0.3, action_spec: Any = None
) -> float:
    """A target entropy for ``EntropyTargetAlgorithm`` with discrete actions.

    Assuming a good policy is uniform over ``N * k`` of the ``N`` actions
    (``k = active_action_portion``), the target is ``log(N * k)``, raised to
    ``min_entropy`` when smaller (e.g. when ``k < 1 / N``):
    ``max(log(N * k), min_entropy)``.

    Args:
        active_action_portion (float): ``k``, in ``(0, 1]``.
        min_entropy (float): the smallest target returned (``>= 0``).
        action_spec (BoundedTensorSpec | None): a discrete spec with one
            element; None takes the global environment's.

    Returns:
        float: the target entropy.

    Raises:
        ValueError: an argument out of range, or an action spec that is not
            a single discrete bounded spec of one element.
    """
    if not isinstance(active_action_portion, numbers.Real) or not 0 < active_action_portion <= 1:
        raise ValueError(f"active_action_portion must be in (0, 1]; got {active_action_portion!r}")
    if not isinstance(min_entropy, numbers.Real) or not min_entropy >= 0:
        raise ValueError(f"min_entropy must be >= 0; got {min_entropy!r}")
    if action_spec is None:
        action_spec = get_action_spec()
    if (
        not isinstance(action_spec, BoundedTensorSpec)
        or not action_spec.is_discrete()
        or action_spec.numel != 1
    ):
        raise ValueError(
            "active_action_target_entropy supports a single discrete BoundedTensorSpec with "
            f"one element; got {action_spec!r}"
        )
    num_actions = _num_values(action_spec, "action_spec")
    return max(math.log(num_actions * active_action_portion), float(min_entropy))


def get_initial_time_step(env: Any, first_env_id: int = 0) -> Any:
    """The current (initial) time step of ``env`` with ``prev_action`` set
    to zeros and ``first_env_id`` added to ``env_id``.

    Args:
        env (AlfEnvironment): has ``current_time_step()`` and ``action_spec()``.
        first_env_id (int): the environment id of the first sample of the batch.

    Returns:
        TimeStep: ``prev_action`` zeros of shape ``[B, *action_shape]``
        (``B`` the batch size of ``step_type``; none for an unbatched step).
    """
    time_step = env.current_time_step()
    batch_shape = tuple(getattr(time_step.step_type, "shape", ()))[:1]
    prev_action = zeros_from_spec(env.action_spec(), batch_shape)
    return time_step._replace(prev_action=prev_action, env_id=time_step.env_id + first_env_id)
