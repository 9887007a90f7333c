"""Core data structures: step types, time steps, algorithm steps, loss info,
experiences, and the functions that make time steps (``restart``,
``transition``, ``termination``, ``truncation``) and their spec."""

import collections
import collections.abc
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

from alf import nest
from alf.tensor_specs import BoundedTensorSpec, TensorSpec

__all__ = [
    "namedtuple",
    "StepType",
    "TimeStep",
    "AlgStep",
    "LossInfo",
    "Experience",
    "BasicRLInfo",
    "make_experience",
    "add_batch_info",
    "time_step_spec",
    "restart",
    "transition",
    "termination",
    "truncation",
]


def namedtuple(
    typename: str,
    field_names: Sequence[str],
    default_value: Any = None,
    default_values: Any = (),
):
    """A ``collections.namedtuple`` class whose fields all default to
    ``default_value`` (so ``LossInfo(loss=x)`` leaves the others at it).

    Args:
        typename (str): the class name.
        field_names (list[str]): the fields.
        default_value: the default of every field.
        default_values (list | dict): per-field defaults overriding
            ``default_value``: the first fields' (a list) or the named ones
            (a dict).

    Raises:
        TypeError: ``default_values`` names a field the tuple lacks or has
            more values than fields.
    """
    make: Callable[..., Any] = collections.namedtuple  # a class made at run time
    cls = make(typename, field_names)
    cls.__new__.__defaults__ = (default_value,) * len(cls._fields)
    if isinstance(default_values, collections.abc.Mapping):
        prototype = cls(**default_values)
    else:
        prototype = cls(*default_values)
    cls.__new__.__defaults__ = tuple(prototype)
    return cls


class StepType:
    """Where a time step lies in an episode.

    ``FIRST`` (0) starts an episode, ``MID`` (1) continues it and ``LAST`` (2)
    ends it. The values are ``np.int32`` so they compare with int tensors.
    """

    FIRST = np.int32(0)
    MID = np.int32(1)
    LAST = np.int32(2)

    def __new__(cls, value: Any):
        """Validate ``value`` as a step type and return it as ``np.int32``."""
        if value in (cls.FIRST, cls.MID, cls.LAST):
            return np.int32(value)
        raise ValueError(f"step type must be 0 (FIRST), 1 (MID) or 2 (LAST); got {value!r}")


class TimeStep(
    collections.namedtuple(
        "TimeStep",
        [
            "step_type",
            "reward",
            "discount",
            "observation",
            "prev_action",
            "env_id",
            "untransformed",
            "env_info",
        ],
        defaults=((), (), (), (), (), (), (), ()),
    )
):
    """What an environment returns at each step.

    Fields (each a tensor of shape ``[B, ...]`` in a batched environment):
        step_type (int32): ``StepType`` of the step.
        reward (float32): reward received on arriving at this step.
        discount (float32): discount applied to the value of the next step
            (0 after a terminal step, 1 otherwise, including time limits).
        observation (nest): the observation.
        prev_action (nest): the action that led to this step.
        env_id (int32): id of the environment that produced the step.
        untransformed (TimeStep): the step before observation transforms.
        env_info (dict): extra environment information.
    """

    __slots__ = ()

    def is_first(self):
        """Whether ``step_type`` is ``StepType.FIRST``: a bool tensor (or NumPy
        array) of the shape of ``step_type``."""
        return _compare_step_type(self.step_type, StepType.FIRST)

    def is_mid(self):
        """Whether ``step_type`` is ``StepType.MID``: a bool tensor (or NumPy
        array) of the shape of ``step_type``."""
        return _compare_step_type(self.step_type, StepType.MID)

    def is_last(self):
        """Whether ``step_type`` is ``StepType.LAST``: a bool tensor (or NumPy
        array) of the shape of ``step_type``."""
        return _compare_step_type(self.step_type, StepType.LAST)

    def cuda(self) -> "TimeStep":
        """A copy whose tensors live on the default CUDA device."""
        return nest.map_structure(_to("cuda"), self)

    def cpu(self) -> "TimeStep":
        """A copy whose tensors live on the CPU."""
        return nest.map_structure(_to("cpu"), self)


def _compare_step_type(step_type: Any, value: np.int32):
    if isinstance(step_type, torch.Tensor):
        return step_type == int(value)
    return np.asarray(step_type) == value


def _to(device: str):
    def move(x):
        return x.to(device) if isinstance(x, torch.Tensor) else x

    return move


AlgStep = namedtuple("AlgStep", ["output", "state", "info"], default_value=())
AlgStep.__doc__ = """Result of one step of an algorithm.

Fields:
    output (nest): the output (e.g. the action).
    state (nest): the state for the next step.
    info (nest): information used later for training or summaries.
"""

LossInfo = namedtuple(
    "LossInfo", ["loss", "scalar_loss", "extra", "priority", "batch_label"], default_value=()
)
LossInfo.__doc__ = """Result of a loss computation.

Fields:
    loss (Tensor): per-sample loss, shape ``[B]`` or ``[T, B]``; what
        training backpropagates after averaging.
    scalar_loss (Tensor): a scalar loss added to ``loss``'s mean.
    extra (nest): the loss components, kept for summaries.
    priority (Tensor): per-sample priority for prioritized replay, ``[B]``.
    batch_label (Tensor): per-sample integer category, the shape of
        ``loss``, for per-category loss summaries
        (``alf.utils.summary_utils.summarize_per_category_loss``).
"""


# a class made at run time: mypy cannot follow namedtuple() as a base
_ExperienceBase: Any = namedtuple(
    "Experience",
    [
        "time_step",
        "action",
        "rollout_info",
        "state",
        "batch_info",
        "replay_buffer",
        "rollout_info_field",
    ],
    default_value=(),
)


class Experience(_ExperienceBase):
    """A ``TimeStep`` in the context of training: what ALF stores in replay
    buffers and trains on. Every field defaults to ``()``.

    Fields:
        time_step (TimeStep): the step from the environment.
        action (nested Tensor): the action taken at this step
            (``AlgStep.output``).
        rollout_info (nest): ``AlgStep.info`` of ``rollout_step()``.
        state (nest): the state given to ``rollout_step()`` that produced
            ``action``.
        batch_info: where a replayed batch came from (the replay buffer's
            ``BatchInfo``); set by ``add_batch_info``.
        replay_buffer: the replay buffer ``batch_info`` refers to.
        rollout_info_field (str): the path of this algorithm's part of
            ``rollout_info``.
    """

    __slots__ = ()

    def is_first(self):
        """``time_step.is_first()``: bool tensor (or array) of the shape of
        ``time_step.step_type``."""
        return self.time_step.is_first()

    def is_mid(self):
        """``time_step.is_mid()``."""
        return self.time_step.is_mid()

    def is_last(self):
        """``time_step.is_last()``."""
        return self.time_step.is_last()

    def cuda(self) -> "Experience":
        """A copy whose tensors live on the default CUDA device."""
        return nest.map_structure(_to("cuda"), self)

    def cpu(self) -> "Experience":
        """A copy whose tensors live on the CPU."""
        return nest.map_structure(_to("cpu"), self)


BasicRLInfo = namedtuple(
    "BasicRLInfo", ["action", "reward", "discount", "step_type"], default_value=()
)
BasicRLInfo.__doc__ = """What the basic RL losses read from a rollout or replay (time-major
tensors ``[T, B, ...]``); every field defaults to ``()``.

Fields:
    action (nested Tensor): the action taken.
    reward (Tensor): the reward received on arriving at the step.
    discount (Tensor): the discount of the step (see ``TimeStep``).
    step_type (Tensor): the ``StepType`` of the step (int32).
"""


def make_experience(time_step: Any, alg_step: Any, state: Any) -> Experience:
    """The ``Experience`` of one step.

    Args:
        time_step (TimeStep): the step from the environment.
        alg_step (AlgStep): what ``rollout_step()`` returned for it.
        state (nest): the state given to ``rollout_step()``.

    Returns:
        Experience: ``time_step``, ``action=alg_step.output``,
        ``rollout_info=alg_step.info`` and ``state``; the other fields ``()``.
    """
    return Experience(
        time_step=time_step, action=alg_step.output, rollout_info=alg_step.info, state=state
    )


def add_batch_info(experience: Experience, batch_info: Any, replay_buffer: Any = ()) -> Experience:
    """A copy of ``experience`` with ``batch_info`` and ``replay_buffer`` set."""
    if not isinstance(experience, Experience):
        raise TypeError(f"experience must be an Experience; got {type(experience).__name__}")
    return experience._replace(batch_info=batch_info, replay_buffer=replay_buffer)


# the default reward spec (a TensorSpec is immutable, so one can be shared)
_SCALAR = TensorSpec(())


def _check_specs(nested: Any, name: str) -> None:
    for path, spec in nest.flatten_with_path(nested):
        if not isinstance(spec, TensorSpec):
            where = f" at '{path}'" if path else ""
            raise TypeError(f"{name} must hold TensorSpecs; got {type(spec).__name__}{where}")


def time_step_spec(
    observation_spec: Any, action_spec: Any, reward_spec: TensorSpec = _SCALAR
) -> TimeStep:
    """The spec of a ``TimeStep`` (of one environment, no batch dimension).

    Args:
        observation_spec (nested TensorSpec): the observation's spec.
        action_spec (nested TensorSpec): the action's spec.
        reward_spec (TensorSpec): the reward's spec (scalar by default).

    Returns:
        TimeStep: ``step_type`` and ``env_id`` int32 scalars, ``reward_spec``,
        ``discount`` a float32 scalar bounded to ``[0, 1]``,
        ``observation=observation_spec``, ``prev_action=action_spec``;
        ``untransformed`` and ``env_info`` ``()``.

    Raises:
        TypeError: a leaf of a spec is not a ``TensorSpec``.
    """
    _check_specs(observation_spec, "observation_spec")
    _check_specs(action_spec, "action_spec")
    _check_specs(reward_spec, "reward_spec")
    return TimeStep(
        step_type=TensorSpec((), torch.int32),
        reward=reward_spec,
        discount=BoundedTensorSpec((), torch.float32, minimum=0.0, maximum=1.0),
        observation=observation_spec,
        prev_action=action_spec,
        env_id=TensorSpec((), torch.int32),
    )


def _default_env_id(outer: Sequence[int]) -> torch.Tensor:
    if outer:
        return torch.arange(outer[0], dtype=torch.int32)
    return torch.tensor(0, dtype=torch.int32)


def restart(
    observation: Any,
    action_spec: Any,
    reward_spec: TensorSpec = _SCALAR,
    env_id: Any = None,
    env_info: Optional[dict] = None,
    batched: bool = False,
) -> TimeStep:
    """The ``TimeStep`` that starts an episode (``StepType.FIRST``).

    Args:
        observation (nested Tensor): the first observation (``[B, ...]`` when
            ``batched``).
        action_spec (nested TensorSpec): gives ``prev_action`` (zeros).
        reward_spec (TensorSpec): gives ``reward`` (zeros).
        env_id (Tensor | None): int32 id(s); default ``arange(B)`` (batched)
            or ``0``.
        env_info (dict | None): extra information (default ``{}``).
        batched (bool): whether ``observation`` has a batch dimension ``B``
            (read from its first leaf).

    Returns:
        TimeStep: ``step_type`` FIRST, ``reward`` zeros, ``discount`` ones
        (float32), ``prev_action`` zeros, each of outer shape ``[B]`` or ``[]``.
    """
    _check_specs(action_spec, "action_spec")
    _check_specs(reward_spec, "reward_spec")
    outer = (nest.get_nest_batch_size(observation),) if batched else ()
    return TimeStep(
        step_type=torch.full(outer, int(StepType.FIRST), dtype=torch.int32),
        reward=reward_spec.zeros(outer),
        discount=torch.ones(outer, dtype=torch.float32),
        observation=observation,
        prev_action=nest.map_structure(lambda spec: spec.zeros(outer), action_spec),
        env_id=_default_env_id(outer) if env_id is None else env_id,
        env_info={} if env_info is None else env_info,
    )


def _step(
    step_type: np.int32,
    observation: Any,
    prev_action: Any,
    reward: Any,
    reward_spec: TensorSpec,
    discount: Any,
    env_id: Any,
    env_info: Optional[dict],
) -> TimeStep:
    _check_specs(reward_spec, "reward_spec")
    reward = torch.as_tensor(reward, dtype=reward_spec.dtype)
    outer_rank = reward.dim() - reward_spec.ndim
    if outer_rank not in (0, 1) or tuple(reward.shape[outer_rank:]) != tuple(reward_spec.shape):
        raise ValueError(
            f"reward must have shape {list(reward_spec.shape)} or [B] + {list(reward_spec.shape)}"
            f" (reward_spec); got {list(reward.shape)}"
        )
    outer = tuple(reward.shape[:outer_rank])
    discount = torch.as_tensor(discount, dtype=torch.float32, device=reward.device)
    try:
        discount = discount.expand(outer)
    except RuntimeError:
        raise ValueError(
            f"discount must be a scalar or have the outer shape {list(outer)} of reward; "
            f"got {list(discount.shape)}"
        ) from None
    return TimeStep(
        step_type=torch.full(outer, int(step_type), dtype=torch.int32, device=reward.device),
        reward=reward,
        discount=discount,
        observation=observation,
        prev_action=prev_action,
        env_id=_default_env_id(outer) if env_id is None else env_id,
        env_info={} if env_info is None else env_info,
    )


def transition(
    observation: Any,
    prev_action: Any,
    reward: Any,
    reward_spec: TensorSpec = _SCALAR,
    discount: Any = 1.0,
    env_id: Any = None,
    env_info: Optional[dict] = None,
) -> TimeStep:
    """A ``TimeStep`` in the middle of an episode (``StepType.MID``).

    The batch shape is read from ``reward``: ``[]`` for a reward of shape
    ``reward_spec.shape``, ``[B]`` for ``[B] + reward_spec.shape``.

    Args:
        observation (nested Tensor): the observation.
        prev_action (nested Tensor): the action that led here.
        reward (float | array | Tensor): the reward (converted to a tensor of
            ``reward_spec.dtype``).
        reward_spec (TensorSpec): the spec of one reward.
        discount (float | Tensor): a scalar (broadcast to ``[B]``) or ``[B]``.
        env_id (Tensor | None): int32 id(s); default ``arange(B)`` or ``0``.
        env_info (dict | None): extra information (default ``{}``).

    Raises:
        ValueError: ``reward`` has neither shape, or ``discount`` does not
            broadcast to the batch shape.
    """
    return _step(
        StepType.MID, observation, prev_action, reward, reward_spec, discount, env_id, env_info
    )


def termination(
    observation: Any,
    prev_action: Any,
    reward: Any,
    reward_spec: TensorSpec = _SCALAR,
    env_id: Any = None,
    env_info: Optional[dict] = None,
) -> TimeStep:
    """The ``TimeStep`` that ends an episode at a terminal state
    (``StepType.LAST``, ``discount`` 0); arguments as ``transition``."""
    return _step(
        StepType.LAST, observation, prev_action, reward, reward_spec, 0.0, env_id, env_info
    )


def truncation(
    observation: Any,
    prev_action: Any,
    reward: Any,
    reward_spec: TensorSpec = _SCALAR,
    discount: Any = 1.0,
    env_id: Any = None,
    env_info: Optional[dict] = None,
) -> TimeStep:
    """The ``TimeStep`` that ends an episode without a terminal state (a time
    limit: ``StepType.LAST`` with ``discount`` kept, 1 by default);
    arguments as ``transition``."""
    return _step(
        StepType.LAST, observation, prev_action, reward, reward_spec, discount, env_id, env_info
    )
