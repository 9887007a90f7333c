"""Tests of alf.data_structures."""

import numpy as np
import pytest
import torch

from alf.data_structures import AlgStep, LossInfo, StepType, TimeStep, namedtuple


def test_step_type_values_and_validation():
    assert (StepType.FIRST, StepType.MID, StepType.LAST) == (0, 1, 2)
    assert StepType.LAST.dtype == np.int32
    assert StepType(2) == StepType.LAST
    with pytest.raises(ValueError, match="step type must be"):
        StepType(3)


def test_time_step_predicates_on_tensors_and_arrays():
    ts = TimeStep(step_type=torch.tensor([0, 1, 2], dtype=torch.int32))
    assert ts.is_first().tolist() == [True, False, False]
    assert ts.is_mid().tolist() == [False, True, False]
    assert ts.is_last().tolist() == [False, False, True]
    assert TimeStep(step_type=np.array([2, 0])).is_last().tolist() == [True, False]
    assert TimeStep().reward == ()
    moved = TimeStep(
        step_type=torch.zeros(2), reward=torch.ones(2), observation={"a": torch.ones(1)}
    ).cpu()
    assert moved.observation["a"].device.type == "cpu"


def test_defaults_of_named_tuples():
    assert LossInfo(loss=1).extra == () and LossInfo()._fields == (
        "loss",
        "scalar_loss",
        "extra",
        "priority",
        "batch_label",
    )
    assert AlgStep(output=1).state == ()
    Pair = namedtuple("Pair", ["a", "b"], default_value=0)
    assert Pair(a=1) == Pair(1, 0)
