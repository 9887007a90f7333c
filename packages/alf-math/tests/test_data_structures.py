"""Tests of alf.data_structures."""

import numpy as np
import pytest
import torch

from alf import nest
from alf.data_structures import (
    AlgStep,
    BasicRLInfo,
    Experience,
    LossInfo,
    StepType,
    TimeStep,
    add_batch_info,
    make_experience,
    namedtuple,
    restart,
    termination,
    time_step_spec,
    transition,
    truncation,
)
from alf.tensor_specs import BoundedTensorSpec, TensorSpec


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


# ---- ALF compatibility: experiences and the time-step makers ----


def test_namedtuple_default_values():
    Triple = namedtuple("Triple", ["a", "b", "c"], default_value=0, default_values=(1,))
    assert Triple() == Triple(1, 0, 0)
    Named = namedtuple("Named", ["a", "b", "c"], default_value=(), default_values={"c": 5})
    assert Named(a=2) == Named(2, (), 5)
    with pytest.raises(TypeError):
        namedtuple("Bad", ["a"], default_values={"z": 1})


def test_experience_fields_and_make_experience():
    assert Experience._fields == (
        "time_step",
        "action",
        "rollout_info",
        "state",
        "batch_info",
        "replay_buffer",
        "rollout_info_field",
    )
    assert Experience().rollout_info_field == ()
    ts = TimeStep(step_type=torch.tensor([0, 2], dtype=torch.int32), reward=torch.ones(2))
    alg = AlgStep(output=torch.tensor([3, 4]), state={"h": torch.zeros(2)}, info={"v": 1})
    exp = make_experience(ts, alg, state={"h": torch.ones(2)})
    assert exp.time_step is ts and exp.action is alg.output and exp.rollout_info == {"v": 1}
    assert exp.state["h"].tolist() == [1.0, 1.0] and exp.batch_info == ()
    assert exp.is_first().tolist() == [True, False] and exp.is_last().tolist() == [False, True]
    assert exp.is_mid().tolist() == [False, False]
    assert exp.cpu().time_step.reward.device.type == "cpu"
    with_info = add_batch_info(exp, batch_info="bi", replay_buffer="rb")
    assert (with_info.batch_info, with_info.replay_buffer) == ("bi", "rb")
    assert exp.batch_info == () and with_info.action is exp.action
    assert add_batch_info(exp, "bi").replay_buffer == ()
    with pytest.raises(TypeError, match="experience must be an Experience; got TimeStep"):
        add_batch_info(ts, "bi")


def test_basic_rl_info():
    info = BasicRLInfo(reward=torch.ones(3))
    assert info.action == () and info.discount == () and info.step_type == ()
    assert set(BasicRLInfo._fields) == {"action", "reward", "discount", "step_type"}


def test_time_step_spec():
    obs = {"image": TensorSpec((3, 4, 4), torch.uint8), "x": TensorSpec((2,))}
    act = BoundedTensorSpec((), torch.int64, minimum=0, maximum=3)
    spec = time_step_spec(obs, act, TensorSpec((2,)))
    assert spec.step_type == TensorSpec((), torch.int32) and spec.env_id == TensorSpec(
        (), torch.int32
    )
    assert spec.discount == BoundedTensorSpec((), torch.float32, minimum=0.0, maximum=1.0)
    assert spec.reward == TensorSpec((2,)) and spec.observation is obs and spec.prev_action is act
    assert spec.untransformed == () and spec.env_info == ()
    assert time_step_spec(obs, act).reward == TensorSpec(())
    with pytest.raises(TypeError, match="observation_spec must hold TensorSpecs; got int at 'x'"):
        time_step_spec({"x": 3}, act)


def test_restart_batched_and_not():
    act = {"a": TensorSpec((2,)), "b": TensorSpec((), torch.int64)}
    obs = torch.randn(3, 5)
    first = restart(obs, act, batched=True)
    assert first.step_type.tolist() == [0, 0, 0] and first.step_type.dtype == torch.int32
    assert first.reward.tolist() == [0.0] * 3 and first.discount.tolist() == [1.0] * 3
    assert first.discount.dtype == torch.float32 and first.observation is obs
    assert first.prev_action["a"].shape == (3, 2) and first.prev_action["b"].dtype == torch.int64
    assert first.env_id.tolist() == [0, 1, 2] and first.env_id.dtype == torch.int32
    assert first.env_info == {} and first.is_first().all()
    single = restart(torch.zeros(5), act, reward_spec=TensorSpec((2,)), env_id=torch.tensor(7))
    assert single.step_type.shape == () and single.reward.shape == (2,)
    assert single.prev_action["a"].shape == (2,) and single.env_id.item() == 7
    # the batch size comes from one leaf; 0-d leaves elsewhere are fine
    assert restart(
        {"o": torch.zeros(4, 1), "t": torch.tensor(1.0)}, act, batched=True
    ).step_type.shape == (4,)


def test_transition_termination_truncation():
    obs, act = torch.zeros(2, 3), torch.ones(2)
    mid = transition(obs, act, reward=[1.0, 2.0], discount=0.5)
    assert mid.step_type.tolist() == [1, 1] and mid.reward.tolist() == [1.0, 2.0]
    assert mid.discount.tolist() == [0.5, 0.5] and mid.env_id.tolist() == [0, 1]
    assert mid.prev_action is act and mid.env_info == {} and mid.is_mid().all()
    mid = transition(obs, act, reward=torch.tensor([1.0, 2.0]), discount=torch.tensor([1.0, 0.0]))
    assert mid.discount.tolist() == [1.0, 0.0]
    one = transition(torch.zeros(3), 0, reward=1.5, env_id=torch.tensor(4), env_info={"k": 1})
    assert one.step_type.shape == () and one.discount.item() == 1.0 and one.env_id.item() == 4
    vec = transition(obs, act, reward=torch.zeros(2, 3), reward_spec=TensorSpec((3,)))
    assert vec.step_type.shape == (2,)
    last = termination(obs, act, reward=[1.0, 0.0])
    assert last.step_type.tolist() == [2, 2] and last.discount.tolist() == [0.0, 0.0]
    cut = truncation(obs, act, reward=[1.0, 0.0])
    assert cut.is_last().all() and cut.discount.tolist() == [1.0, 1.0]
    assert truncation(obs, act, reward=[1.0, 0.0], discount=0.9).discount[
        0
    ].item() == pytest.approx(0.9)
    with pytest.raises(ValueError, match=r"reward must have shape \[\] or \[B\] \+ \[\]"):
        transition(obs, act, reward=torch.zeros(2, 2))
    with pytest.raises(
        ValueError, match=r"discount must be a scalar or have the outer shape \[2\]"
    ):
        transition(obs, act, reward=[1.0, 2.0], discount=[1.0, 1.0, 1.0])
    # the field order stays TimeStep's, and nest sees the fields alphabetically
    assert (
        nest.flatten_with_path(time_step_spec(TensorSpec(()), TensorSpec(())))[0][0] == "discount"
    )
