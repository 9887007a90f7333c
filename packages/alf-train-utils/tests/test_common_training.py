"""Training-loop helpers of alf.utils.common: intervals, OU noise,
epsilon-greedy and the training phase."""

import math
from types import SimpleNamespace

import gin
import pytest
import torch

from alf.tensor_specs import BoundedTensorSpec
from alf.utils.common import (
    compute_summary_or_eval_interval,
    create_ou_process,
    get_epsilon_greedy,
    is_training,
    replay_context,
    rollout_context,
)
from alf.utils.dist_utils import OUProcess


def config(**kwargs):
    base = dict(num_iterations=0, num_env_steps=0, unroll_length=8, epsilon_greedy=0.05)
    return SimpleNamespace(**(base | kwargs))


def test_interval_from_iterations_and_env_steps():
    assert compute_summary_or_eval_interval(config(num_iterations=1000)) == 10
    assert compute_summary_or_eval_interval(config(num_iterations=1001)) == 11  # rounded up
    assert compute_summary_or_eval_interval(config(num_iterations=50)) == 1
    assert compute_summary_or_eval_interval(config(num_iterations=1000), 7) == math.ceil(1000 / 7)
    # 1e6 env steps / (16 envs * 8 steps per unroll) = 7812.5 iterations
    cfg = config(num_env_steps=1_000_000)
    assert compute_summary_or_eval_interval(cfg, 100, num_envs=16) == math.ceil(7812.5 / 100)
    cfg.num_envs = 4
    assert compute_summary_or_eval_interval(cfg, 10) == math.ceil(1_000_000 / 32 / 10)
    # num_iterations wins when both are set
    assert compute_summary_or_eval_interval(config(num_iterations=300, num_env_steps=10**9)) == 3


def test_interval_num_envs_from_gin():
    @gin.configurable(module="test_common_training")
    def create_environment(num_parallel_environments=1):
        return num_parallel_environments

    try:
        gin.parse_config("create_environment.num_parallel_environments = 10")
        cfg = config(num_env_steps=8000)
        assert compute_summary_or_eval_interval(cfg, 5) == 20  # 8000 / 80 / 5
    finally:
        gin.clear_config()


@pytest.mark.parametrize(
    "cfg, kwargs, match",
    [
        (config(), {}, "cannot both be 0"),
        (config(num_env_steps=100), {}, "number of environments"),
        (config(num_env_steps=100, unroll_length=0), {"num_envs": 2}, "unroll_length"),
        (config(num_iterations=10), {"summary_or_eval_calls": 0}, "summary_or_eval_calls"),
    ],
)
def test_interval_bad_input(cfg, kwargs, match):
    with pytest.raises(ValueError, match=match):
        compute_summary_or_eval_interval(cfg, **kwargs)


def test_interval_calls_must_be_an_int():
    with pytest.raises(TypeError, match="summary_or_eval_calls must be an int, got float 2.5"):
        compute_summary_or_eval_interval(config(num_iterations=10), summary_or_eval_calls=2.5)


def test_create_ou_process_follows_the_recurrence():
    spec = BoundedTensorSpec((2,), torch.float32, -1, 1)
    ou = create_ou_process(spec, ou_stddev=0.3, ou_damping=0.25)
    assert isinstance(ou, OUProcess)
    torch.manual_seed(5)
    got = [ou() for _ in range(4)]
    torch.manual_seed(5)
    x = torch.zeros(2)
    for value in got:
        x = (1 - 0.25) * x + 0.3 * torch.randn(2)
        torch.testing.assert_close(value, x)

    nested = create_ou_process({"a": spec, "b": [BoundedTensorSpec((), torch.float64)]}, 0.1, 0.5)
    assert isinstance(nested["a"], OUProcess) and isinstance(nested["b"][0], OUProcess)
    assert nested["b"][0]().dtype == torch.float64 and nested["b"][0]().shape == ()
    with pytest.raises(ValueError, match="damping"):
        create_ou_process(spec, 0.1, 1.5)


def test_get_epsilon_greedy():
    assert get_epsilon_greedy(config()) == 0.05
    assert get_epsilon_greedy(None) == 0.1  # the reference's TrainerConfig default

    @gin.configurable(module="test_common_training")
    class TrainerConfig:
        def __init__(self, epsilon_greedy=0.1):
            self.epsilon_greedy = epsilon_greedy

    try:
        gin.parse_config("TrainerConfig.epsilon_greedy = 0.01")
        assert get_epsilon_greedy(None) == 0.01
    finally:
        gin.clear_config()


class Alg:
    def __init__(self, on_policy, as_method):
        if as_method:
            self.on_policy = lambda: on_policy
        else:
            self.on_policy = on_policy


@pytest.mark.parametrize("as_method", [True, False])
def test_is_training(as_method):
    on, off = Alg(True, as_method), Alg(False, as_method)
    assert not is_training(on) and not is_training(off)
    with rollout_context():
        assert is_training(on) and not is_training(off)
    with replay_context():
        assert not is_training(on) and is_training(off)
