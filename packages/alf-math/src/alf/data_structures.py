"""Core data structures: step types, time steps, algorithm steps, loss info."""

import collections
from typing import Any, Callable, Sequence

import numpy as np
import torch

from alf import nest

__all__ = [
    "namedtuple",
    "StepType",
    "TimeStep",
    "AlgStep",
    "LossInfo",
]


def namedtuple(typename: str, field_names: Sequence[str], default_value: Any = None):
    """A ``collections.namedtuple`` class whose fields all default to
    ``default_value`` (so ``LossInfo(loss=x)`` leaves the others at it)."""
    make: Callable[..., Any] = collections.namedtuple  # a class made at run time
    cls = make(typename, field_names)
    cls.__new__.__defaults__ = (default_value,) * len(cls._fields)
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

LossInfo = namedtuple("LossInfo", ["loss", "scalar_loss", "extra", "priority"], default_value=())
LossInfo.__doc__ = """Result of a loss computation.

Fields:
    loss (Tensor): per-sample loss, shape ``[B]`` or ``[T, B]``; what
        training backpropagates after averaging.
    scalar_loss (Tensor): a scalar loss added to ``loss``'s mean.
    extra (nest): the loss components, kept for summaries.
    priority (Tensor): per-sample priority for prioritized replay, ``[B]``.
"""
