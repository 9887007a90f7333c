"""The global environment of alf.utils.common and its spec getters."""

import math
from collections import namedtuple

import gin
import pytest
import torch

from alf.data_structures import StepType, TimeStep
from alf.tensor_specs import BoundedTensorSpec, TensorSpec
from alf.utils import common
from alf.utils.common import (
    active_action_target_entropy,
    get_action_spec,
    get_env,
    get_initial_time_step,
    get_observation_spec,
    get_raw_observation_spec,
    get_reward_spec,
    get_states_shape,
    get_vocab_size,
    set_global_env,
    set_transformed_observation_spec,
)

Obs = namedtuple("Obs", ["image", "states"])


class TinyEnv:
    """A batched environment with the AlfEnvironment methods the getters use."""

    def __init__(self, observation_spec, action_spec, batch_size=3):
        self._obs_spec = observation_spec
        self._action_spec = action_spec
        self.batch_size = batch_size

    def observation_spec(self):
        return self._obs_spec

    def action_spec(self):
        return self._action_spec

    def reward_spec(self):
        return TensorSpec(())

    def current_time_step(self):
        b = self.batch_size
        return TimeStep(
            step_type=torch.full((b,), int(StepType.FIRST), dtype=torch.int32),
            reward=torch.zeros(b),
            discount=torch.ones(b),
            observation={"x": torch.ones(b, 2)},
            prev_action=torch.full((b, 2), 7.0),  # garbage: must be replaced by zeros
            env_id=torch.arange(b, dtype=torch.int32),
        )


OBS_SPEC = {
    "camera": {"rgb": BoundedTensorSpec((3, 8, 8), torch.uint8, 0, 255)},
    "states": TensorSpec((5,)),
    "sentence": BoundedTensorSpec((4,), torch.int64, 0, 99),
}
ACTION_SPEC = BoundedTensorSpec((), torch.int64, 0, 9)


@pytest.fixture(autouse=True)
def _no_global_env():
    set_global_env(None)
    set_transformed_observation_spec(None)
    yield
    set_global_env(None)
    set_transformed_observation_spec(None)


def test_getters_need_a_global_env():
    for getter in (get_env, get_action_spec, get_reward_spec, get_raw_observation_spec):
        with pytest.raises(RuntimeError, match="set_global_env"):
            getter()
    with pytest.raises(RuntimeError, match="set_transformed_observation_spec"):
        get_observation_spec()


def test_global_env_and_specs():
    env = TinyEnv(OBS_SPEC, ACTION_SPEC)
    set_global_env(env)
    assert get_env() is env
    assert get_action_spec() == ACTION_SPEC
    assert get_reward_spec() == TensorSpec(())
    assert get_raw_observation_spec() is OBS_SPEC
    assert get_raw_observation_spec("camera.rgb") == OBS_SPEC["camera"]["rgb"]
    with pytest.raises(ValueError, match="camera.depth"):
        get_raw_observation_spec("camera.depth")
    assert get_states_shape() == torch.Size([5])
    assert get_vocab_size() == 100

    transformed = {"camera": {"rgb": TensorSpec((3, 8, 8))}, "states": TensorSpec((5,))}
    set_transformed_observation_spec(transformed)
    assert get_observation_spec() is transformed
    assert get_observation_spec("camera.rgb") == TensorSpec((3, 8, 8))


def test_states_and_vocab_absent_give_zero_namedtuple_observations():
    set_global_env(TinyEnv(Obs(TensorSpec((2,)), TensorSpec((6, 2))), ACTION_SPEC))
    assert get_states_shape() == torch.Size([6, 2])
    assert get_vocab_size() == 0
    set_global_env(TinyEnv(TensorSpec((2,)), ACTION_SPEC))
    assert get_states_shape() == 0 and get_vocab_size() == 0
    uneven = {"sentence": BoundedTensorSpec((2,), torch.int64, 0, [5, 9])}
    set_global_env(TinyEnv(uneven, ACTION_SPEC))
    with pytest.raises(ValueError, match="same bounds"):
        get_vocab_size()


def test_getters_are_gin_configurable():
    set_global_env(TinyEnv(OBS_SPEC, ACTION_SPEC))
    try:
        gin.parse_config("get_raw_observation_spec.field = 'states'")
        assert get_raw_observation_spec() == TensorSpec((5,))
        gin.parse_config("alf.utils.common.get_raw_observation_spec.field = 'sentence'")
        assert get_raw_observation_spec() == OBS_SPEC["sentence"]
    finally:
        gin.clear_config()
    assert common.get_observation_spec.__module__ == "alf.utils.common"


def test_active_action_target_entropy_by_hand():
    set_global_env(TinyEnv(OBS_SPEC, ACTION_SPEC))  # 10 actions
    assert active_action_target_entropy() == pytest.approx(math.log(10 * 0.2))
    assert active_action_target_entropy(0.5) == pytest.approx(math.log(5))
    # 0.05 < 1/10: log(0.5) < 0, so min_entropy wins
    assert active_action_target_entropy(0.05, min_entropy=0.3) == 0.3
    assert active_action_target_entropy(1.0, min_entropy=5.0) == 5.0
    spec = BoundedTensorSpec((1,), torch.int32, -2, 1)  # 4 actions
    assert active_action_target_entropy(1.0, 0.0, action_spec=spec) == pytest.approx(math.log(4))
    for kwargs in (
        dict(active_action_portion=0),
        dict(active_action_portion=1.5),
        dict(min_entropy=-1),
        dict(action_spec=BoundedTensorSpec((), torch.float32, -1, 1)),
        dict(action_spec=BoundedTensorSpec((2,), torch.int64, 0, 3)),
        dict(action_spec={"a": ACTION_SPEC}),
    ):
        with pytest.raises(ValueError):
            active_action_target_entropy(**kwargs)


def test_get_initial_time_step():
    env = TinyEnv(OBS_SPEC, BoundedTensorSpec((2,), torch.float32, -1, 1), batch_size=3)
    ts = get_initial_time_step(env, first_env_id=4)
    assert ts.env_id.tolist() == [4, 5, 6]
    assert ts.prev_action.shape == (3, 2) and not ts.prev_action.any()
    assert ts.prev_action.dtype == torch.float32
    assert ts.step_type.tolist() == [0, 0, 0]
    assert get_initial_time_step(env).env_id.tolist() == [0, 1, 2]
