"""Fast tests of the PPO CartPole example: a short training run and its
artifacts, the command line, bad input. (Learning itself is measured by the
full run, see README.md, never asserted here.)

Run from the repository root:

    PYTHONPATH=$(ls -d packages/*/src | tr '\\n' ':') python -m pytest -c pyproject.toml \\
        examples/ppo_cartpole/test_ppo_cartpole.py -q
"""

import dataclasses
import glob
import json
import os
import stat
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ppo_agent import ActorCritic, greedy_action, ppo_update, spec_from_space  # noqa: E402
from ppo_config import PPOConfig, piecewise_linear  # noqa: E402
from ppo_demo import main, parse_args  # noqa: E402
from ppo_train import check_inputs, evaluate, make_vector_env, train  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator,
)

from alf.tensor_specs import BoundedTensorSpec  # noqa: E402
from alf.utils.normalizers import AdaptiveNormalizer  # noqa: E402

SHORT = PPOConfig(total_steps=2048, num_epochs=4, eval_episodes=3)

TRAIN_TAGS = {
    "Metrics/AverageReturn",
    "Metrics/AverageEpisodeLength",
    "Metrics/EnvironmentSteps",
    "Metrics/NumberOfEpisodes",
    "Metrics_vs_EnvironmentSteps/AverageReturn",
    "Metrics_vs_EnvironmentSteps/AverageEpisodeLength",
    "ppo/policy_loss",
    "ppo/value_loss",
    "ppo/entropy",
    "ppo/approx_kl",
    "ppo/clip_fraction",
    "ppo/grad_norm",
    "ppo/learning_rate",
    "ppo/clip_ratio",
    "speed/env_steps_per_sec",
}


def _scalars(folder):
    acc = EventAccumulator(folder, size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: acc.Scalars(tag) for tag in acc.Tags()["scalars"]}


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("run"))
    seen = []
    result = train(SHORT, out, progress=seen.append)
    return out, result, seen


def test_short_run_result_and_progress(short_run):
    out, result, seen = short_run
    iterations = -(-2048 // 256)
    assert SHORT.num_iterations == iterations
    assert result["env_steps"] == iterations * SHORT.steps_per_iteration
    with open(os.path.join(out, "result.json")) as f:
        assert json.load(f) == result
    assert len(result["eval_returns"]) == 3
    assert result["eval_mean"] == pytest.approx(np.mean(result["eval_returns"]))
    assert all(1 <= r <= 500 for r in result["eval_returns"])
    # one progress report per iteration, steps counting up by one iteration
    assert [p["steps"] for p in seen] == [256 * (i + 1) for i in range(iterations)]
    assert seen[-1]["episodes"] == result["episodes"] > 0
    assert seen[-1]["recent_return"] == pytest.approx(result["final_recent_return"])


def test_short_run_tensorboard_events(short_run):
    out, result, _ = short_run
    train_scalars = _scalars(os.path.join(out, "train"))
    assert TRAIN_TAGS <= set(train_scalars)
    iterations = SHORT.num_iterations
    assert [e.step for e in train_scalars["ppo/policy_loss"]] == list(range(1, iterations + 1))
    steps = [e.value for e in train_scalars["Metrics/EnvironmentSteps"]]
    assert steps == [256.0 * (i + 1) for i in range(iterations)]
    vs_steps = train_scalars["Metrics_vs_EnvironmentSteps/AverageReturn"]
    assert vs_steps[-1].step == result["env_steps"]
    assert vs_steps[-1].value == pytest.approx(result["final_recent_return"])
    # the schedules written are the piecewise linear ones (independent: np.interp)
    lr = [e.value for e in train_scalars["ppo/learning_rate"]]
    expected = np.interp(np.arange(iterations) / iterations, [0.0, 1.0], [1e-3, 0.0])
    np.testing.assert_allclose(lr, expected, rtol=1e-6)
    eval_scalars = _scalars(os.path.join(out, "eval"))
    (point,) = eval_scalars["Metrics_vs_EnvironmentSteps/AverageReturn"]
    assert point.step == result["env_steps"]
    assert point.value == pytest.approx(result["eval_mean"])


def test_piecewise_linear_matches_interp():
    schedule = ((0.0, 1.0), (0.25, 3.0), (1.0, -1.0))
    xs, ys = zip(*schedule)
    for p in np.linspace(0.0, 1.5, 31):
        assert piecewise_linear(schedule, p) == pytest.approx(np.interp(p, xs, ys))


def test_spec_from_space():
    spec = spec_from_space(gym.spaces.Discrete(3, start=2), "action space")
    assert isinstance(spec, BoundedTensorSpec)
    assert (spec.shape, spec.dtype, int(spec.minimum), int(spec.maximum)) == (
        (),
        torch.int64,
        2,
        4,
    )
    box = gym.spaces.Box(np.array([-1.0, -np.inf], np.float32), np.array([2.0, np.inf], np.float32))
    spec = spec_from_space(box, "observation space")
    assert spec.shape == (2,) and spec.dtype == torch.float32
    np.testing.assert_array_equal(spec.minimum, [-1.0, -np.inf])
    with pytest.raises(ValueError, match="observation space must be a Box or Discrete"):
        spec_from_space(gym.spaces.MultiBinary(3), "observation space")


def test_ppo_update_moves_towards_advantageous_action():
    """One update on a batch where action 1 has positive advantage and action
    0 negative raises the probability of action 1 (hand-made batch)."""
    torch.manual_seed(0)
    obs_spec = BoundedTensorSpec((4,), torch.float32, -1.0, 1.0)
    act_spec = BoundedTensorSpec((), torch.int64, 0, 1)
    agent = ActorCritic(obs_spec, act_spec, (16,))
    obs = torch.randn(64, 4)
    action = torch.arange(64) % 2
    with torch.no_grad():
        dist, value = agent(obs)
        log_prob = dist.log_prob(action)
        p1_before = dist.probs[:, 1].mean().item()
    advantage = torch.where(action == 1, 1.0, -1.0)
    batch = {
        "observation": obs,
        "action": action,
        "log_prob": log_prob,
        "value": value,
        "advantage": advantage,
        "return": value + advantage,
    }
    config = dataclasses.replace(SHORT, num_epochs=5, num_minibatches=2)
    optimizer = torch.optim.Adam(agent.parameters(), lr=1e-2)
    stats = ppo_update(agent, optimizer, batch, 0.2, config)
    assert set(stats) == {
        "policy_loss",
        "value_loss",
        "entropy",
        "approx_kl",
        "clip_fraction",
        "grad_norm",
    }
    with torch.no_grad():
        dist, _ = agent(obs)
    assert dist.probs[:, 1].mean().item() > p1_before
    np.testing.assert_array_equal(greedy_action(agent, obs), dist.probs.argmax(-1).numpy())


def test_evaluate_counts_one_episode_per_env():
    """A policy that always pushes left ends every episode in about ten
    steps; the returns equal the lengths of independently played episodes."""
    obs_spec = BoundedTensorSpec((4,), torch.float32, -1.0, 1.0)
    act_spec = BoundedTensorSpec((), torch.int64, 0, 1)
    agent = ActorCritic(obs_spec, act_spec, (8,))
    with torch.no_grad():
        last = agent.actor[-1]
        last.weight.zero_()
        last.bias.copy_(torch.tensor([1.0, 0.0]))  # always action 0
    config = dataclasses.replace(SHORT, eval_episodes=4, normalize_observations=False)
    normalizer = AdaptiveNormalizer(obs_spec)
    returns = evaluate(agent, normalizer, config, act_spec, seed=7)
    expected = []
    for i in range(4):
        env = gym.make("CartPole-v1")
        env.reset(seed=7 + i)
        length, done = 0, False
        while not done:
            _, r, terminated, truncated, _ = env.step(0)
            length += r
            done = terminated or truncated
        expected.append(length)
        env.close()
    assert returns == expected


def test_vector_env_resets_on_next_step():
    env = make_vector_env("CartPole-v1", 2)
    env.reset(seed=0)
    done_seen = False
    for _ in range(100):
        _, reward, terminated, truncated, _ = env.step(np.zeros(2, dtype=np.int64))
        if done_seen:
            # the step after LAST is the reset: reward 0, not terminal
            assert reward[0] == 0.0 and not terminated[0]
            break
        done_seen = bool(terminated[0] or truncated[0])
    env.close()
    assert done_seen


@pytest.mark.parametrize(
    "args, message",
    [
        (["--env", "NoSuchEnv-v0"], "unknown environment id 'NoSuchEnv-v0'"),
        (["--env", "Pendulum-v1"], "needs a Discrete one"),
        (["--num-processes", "2"], "needs alf.utils.distributed"),
        (["--seeds", "1", "1"], "--seeds must be distinct"),
    ],
)
def test_main_bad_input_one_line(tmp_path, capsys, args, message):
    out = str(tmp_path / "out")
    assert main([*args, "--out", out, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not os.path.exists(os.path.join(out, "seed-0"))


def test_main_unwritable_output(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["--out", str(blocker / "sub"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not writable" in err
    if os.geteuid() != 0:  # root writes anywhere
        folder = tmp_path / "readonly"
        folder.mkdir()
        folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
        try:
            assert main(["--out", str(folder), "--no-progress"]) == 2
        finally:
            folder.chmod(stat.S_IRWXU)
        assert "is not writable" in capsys.readouterr().err


def test_check_inputs_config_values(tmp_path):
    with pytest.raises(ValueError, match="num_envs must be a positive int"):
        check_inputs(dataclasses.replace(SHORT, num_envs=0), str(tmp_path))
    with pytest.raises(ValueError, match="lr_schedule must be"):
        check_inputs(dataclasses.replace(SHORT, lr_schedule=((0.5, 1.0),)), str(tmp_path))


def test_main_trains_then_keeps_finished_seed(tmp_path, capsys):
    out = str(tmp_path / "demo")
    argv = ["--seeds", "3", "--total-steps", "512", "--out", out, "--jobs", "1", "--no-progress"]
    assert parse_args(argv).restart is False
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert f"tensorboard --logdir {out}" in text
    with open(os.path.join(out, "results.json")) as f:
        summary = json.load(f)
    assert [r["seed"] for r in summary["seeds"]] == [3]
    assert glob.glob(os.path.join(out, "seed-3", "train", "events.out.tfevents.*"))
    mtime = os.path.getmtime(os.path.join(out, "seed-3", "result.json"))
    assert main(argv) == 0
    assert "seed 3: already finished" in capsys.readouterr().out
    assert os.path.getmtime(os.path.join(out, "seed-3", "result.json")) == mtime
    assert main([*argv, "--restart"]) == 0
    assert "--restart: training it from scratch" in capsys.readouterr().out


def test_main_parallel_seeds(tmp_path):
    out = str(tmp_path / "par")
    argv = ["--seeds", "0", "1", "--total-steps", "512", "--out", out, "--jobs", "2"]
    assert main([*argv, "--no-progress"]) == 0
    for seed in (0, 1):
        with open(os.path.join(out, f"seed-{seed}", "result.json")) as f:
            assert json.load(f)["env_steps"] == 512
