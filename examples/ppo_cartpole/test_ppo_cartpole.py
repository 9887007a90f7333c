"""Tests of the PPO CartPole example: a short training run and its artifacts
(checkpoint, TensorBoard events, PNG, MP4), resuming after a real SIGKILL,
data-parallel training (forked ranks and torchrun), the command line, bad
input. Learning itself is measured by the full run (README.md), never
asserted here; nothing asserts on wall time.

Run from the repository root:

    PYTHONPATH=$(ls -d packages/*/src | tr '\\n' ':') python -m pytest -c pyproject.toml \\
        examples/ppo_cartpole -q
"""

import dataclasses
import glob
import json
import os
import random
import signal
import stat
import subprocess
import sys
import time

import gymnasium as gym
import numpy as np
import pytest
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from ppo_agent import ActorCritic, greedy_action, ppo_update, spec_from_space  # noqa: E402
from ppo_config import PPOConfig  # noqa: E402
from ppo_demo import main, parse_args, plot_returns  # noqa: E402
from ppo_envs import EnvGroup  # noqa: E402
from ppo_state import TrainingState, truncate_events  # noqa: E402
from ppo_train import (  # noqa: E402
    check_inputs,
    ckpt_dir,
    config_mismatch,
    evaluate,
    load_policy,
    read_config,
    record_video,
    train,
)
from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator,
)

import alf.summary  # noqa: E402
from alf.tensor_specs import BoundedTensorSpec  # noqa: E402
from alf.utils import common, schedulers  # noqa: E402
from alf.utils.checkpoint_utils import Checkpointer  # noqa: E402
from alf.utils.normalizers import AdaptiveNormalizer  # noqa: E402

# What `ppo_demo.py --total-steps 6144 --checkpoint-interval 2` trains: 24 iterations.
SHORT = PPOConfig(total_steps=6144, checkpoint_interval=2)
DEADLINE = 300  # seconds a subprocess may take before the test fails (watchdog, not a target)

SCALAR_TAGS = {
    "Metrics/AverageReturn",
    "Metrics/AverageEpisodeLength",
    "Metrics/EnvironmentSteps",
    "Metrics/NumberOfEpisodes",
    "Metrics_vs_EnvironmentSteps/AverageReturn",
    "Metrics_vs_EnvironmentSteps/AverageEpisodeLength",
    "ppo/loss",
    "ppo/loss/policy_loss",
    "ppo/loss/value_loss",
    "ppo/loss/entropy",
    "ppo/approx_kl",
    "ppo/clip_fraction",
    "ppo/grad_norm",
    "ppo/learning_rate",
    "ppo/clip_ratio",
    "ppo/advantage/mean",
    "ppo/value/mean",
    "speed/env_steps_per_sec",
    "time/unroll",
    "time/update",
    "summarize_vars/actor.0.weight_value_norm",
    "summarize_grads/critic.4.bias_gradient_norm",
}
HISTOGRAM_TAGS = {
    "rollout/action/0",
    "ppo/advantage/value",
    "summarize_vars/actor.0.weight_value",
    "summarize_grads/actor.0.weight_gradient",
}
WALL_CLOCK_TAGS = {"speed/env_steps_per_sec", "time/unroll", "time/update"}


def _events(folder):
    acc = EventAccumulator(folder, size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    return acc


def _scalars(folder):
    acc = _events(folder)
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def _demo_command(out, *extra):
    return [
        sys.executable,
        os.path.join(HERE, "ppo_demo.py"),
        "--out",
        out,
        "--no-progress",
        "--readme-figure",
        "",
        *extra,
    ]


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("run"))
    seen = []
    result = train(SHORT, out, progress=seen.append)
    return out, result, seen


# --------------------------------------------------------------------------
# The short run and its artifacts


def test_short_run_result_and_progress(short_run):
    out, result, seen = short_run
    iterations = 6144 // 256
    assert SHORT.num_iterations == iterations
    assert result["env_steps"] == iterations * SHORT.steps_per_iteration == 6144
    with open(os.path.join(out, "result.json")) as f:
        assert json.load(f) == result
    assert result["resumed_from"] == 0 and result["num_processes"] == 1
    assert len(result["eval_returns"]) == SHORT.eval_episodes
    assert result["eval_mean"] == pytest.approx(np.mean(result["eval_returns"]))
    assert all(1 <= r <= 500 for r in result["eval_returns"])
    # one progress report per iteration, steps counting up by one iteration
    assert [p["steps"] for p in seen] == [256 * (i + 1) for i in range(iterations)]
    assert seen[-1]["episodes"] == result["episodes"] > 0
    assert seen[-1]["recent_return"] == pytest.approx(result["final_recent_return"])
    assert read_config(out) == SHORT
    assert config_mismatch(SHORT, out) is None
    assert "total_steps=6144 (now 512)" in config_mismatch(
        dataclasses.replace(SHORT, total_steps=512), out
    )


def test_short_run_tensorboard_events(short_run):
    out, result, _ = short_run
    acc = _events(os.path.join(out, "train"))
    assert SCALAR_TAGS <= set(acc.Tags()["scalars"])
    assert HISTOGRAM_TAGS <= set(acc.Tags()["histograms"])
    iterations = SHORT.num_iterations
    scalars = _scalars(os.path.join(out, "train"))
    assert [s for s, _ in scalars["ppo/loss/policy_loss"]] == list(range(1, iterations + 1))
    assert [v for _, v in scalars["Metrics/EnvironmentSteps"]] == [
        256.0 * (i + 1) for i in range(iterations)
    ]
    # variables, gradients and histograms every detail_summary_interval iterations
    interval = SHORT.detail_summary_interval
    assert [s for s, _ in scalars["summarize_vars/actor.0.weight_value_norm"]] == list(
        range(interval, iterations + 1, interval)
    )
    vs_steps = scalars["Metrics_vs_EnvironmentSteps/AverageReturn"]
    assert vs_steps[-1][0] == result["env_steps"]
    assert vs_steps[-1][1] == pytest.approx(result["final_recent_return"])
    # the schedules (LinearScheduler) against an independent np.interp
    progress = np.arange(iterations) / iterations
    lr = [v for _, v in scalars["ppo/learning_rate"]]
    np.testing.assert_allclose(lr, np.interp(progress, [0.0, 1.0], [1e-3, 0.0]), rtol=1e-6)
    clip = [v for _, v in scalars["ppo/clip_ratio"]]
    np.testing.assert_allclose(clip, np.interp(progress, [0.0, 1.0], [0.2, 0.0]), rtol=1e-6)
    # every action of the 24 unrolls is in the histogram
    counts = sum(e.histogram_value.num for e in acc.Histograms("rollout/action/0"))
    assert counts == (iterations // interval) * 256
    eval_scalars = _scalars(os.path.join(out, "eval"))
    ((step, value),) = eval_scalars["Metrics_vs_EnvironmentSteps/AverageReturn"]
    assert step == result["env_steps"] and value == pytest.approx(result["eval_mean"])


def test_short_run_checkpoint_is_loadable(short_run):
    out, result, _ = short_run
    folder = ckpt_dir(out)
    steps = Checkpointer(folder).checkpointed_steps()
    assert steps[-1] == SHORT.num_iterations and len(steps) == SHORT.checkpoints_to_keep
    saved = torch.load(os.path.join(folder, f"ckpt-{steps[-1]}"), weights_only=True)
    assert saved["global_step"] == SHORT.num_iterations
    assert {"agent", "normalizer", "rollout", "envs", "state"} <= set(saved)
    assert saved["state"]["env_steps"] == result["env_steps"]
    assert saved["state"]["progress"]["global_counter"] == SHORT.num_iterations
    config, agent, normalizer, iteration = load_policy(out)
    assert config == SHORT and iteration == SHORT.num_iterations
    obs_spec = spec_from_space(gym.make("CartPole-v1").observation_space, "observation")
    act_spec = spec_from_space(gym.make("CartPole-v1").action_space, "action")
    assert obs_spec.shape == (4,)
    # the loaded policy plays the evaluation episodes exactly as after training
    returns = evaluate(agent, normalizer, config, act_spec, seed=result["eval_seed"])
    assert returns == result["eval_returns"]


def test_plot_returns_png(short_run, tmp_path):
    out, _, _ = short_run
    png = str(tmp_path / "return.png")
    plot_returns([out, out], png, "two copies")
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    image = matplotlib.image.imread(png)
    assert image.shape[:2] == (400, 600)  # figsize 6x4 at 100 dpi
    assert not os.path.exists(str(tmp_path / "return.partial.png"))


def test_record_video(short_run, tmp_path):
    out, result, _ = short_run
    path = str(tmp_path / "episode.mp4")
    video = record_video(out, path, seed=result["eval_seed"])
    # the first evaluation episode, greedy: the same return
    assert video["return"] == result["eval_returns"][0]
    with open(path, "rb") as f:
        assert f.read(12)[4:8] == b"ftyp"  # an MP4 container
    with open(str(tmp_path / "episode.meta.json")) as f:
        meta = json.load(f)
    # the reset frame, one per step, the last one repeated 25 times
    assert meta["frames"] == video["frames"] == int(video["return"]) + 1 + 25


# --------------------------------------------------------------------------
# Resuming


def test_sigkill_then_resume_continues_exactly(short_run, tmp_path):
    """Kill the command with SIGKILL once a checkpoint exists, rerun it: it
    resumes from that checkpoint and ends exactly where an uninterrupted run
    ends (same figures, same curves, no duplicated points)."""
    reference_dir, reference, _ = short_run
    out = str(tmp_path / "demo")
    command = _demo_command(
        out, "--seeds", "0", "--total-steps", "6144", "--checkpoint-interval", "2", "--jobs", "1"
    )
    command.append("--no-video")
    run_dir = os.path.join(out, "seed-0")
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + DEADLINE
        while not glob.glob(os.path.join(run_dir, "ckpt", "ckpt-*[0-9]")):
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, "no checkpoint before the deadline"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(DEADLINE) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not os.path.exists(os.path.join(run_dir, "result.json"))
    saved = Checkpointer(ckpt_dir(run_dir)).checkpointed_steps()[-1]
    assert 0 < saved < SHORT.num_iterations

    done = subprocess.run(command, capture_output=True, text=True, timeout=DEADLINE)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"seed 0: resuming from its checkpoint at iteration {saved}" in done.stdout
    with open(os.path.join(run_dir, "result.json")) as f:
        result = json.load(f)
    assert result["resumed_from"] == saved
    for key in ("env_steps", "episodes", "final_recent_return", "steps_to_target"):
        assert result[key] == reference[key], key
    assert result["eval_returns"] == reference["eval_returns"]
    expected = _scalars(os.path.join(reference_dir, "train"))
    resumed = _scalars(os.path.join(run_dir, "train"))
    assert set(resumed) == set(expected)
    for tag in set(expected) - WALL_CLOCK_TAGS:
        assert resumed[tag] == expected[tag], tag
    for tag in WALL_CLOCK_TAGS:  # written once per iteration, none twice
        assert [s for s, _ in resumed[tag]] == [s for s, _ in expected[tag]]


def test_env_group_replays_its_state():
    """An EnvGroup restored from state_dict() continues exactly as the
    original (compared step by step with the original's own continuation)."""
    rng = np.random.default_rng(0)
    original = EnvGroup("CartPole-v1", 3)
    original.reset(seed=5)
    for _ in range(60):  # episodes end and restart (random actions: about 20 steps)
        original.step(rng.integers(0, 2, size=3))
    state = original.state_dict()
    restored = EnvGroup("CartPole-v1", 3)
    restored.load_state_dict(state)
    assert restored.replay_exact
    np.testing.assert_array_equal(restored.pending_reset, original.pending_reset)
    for _ in range(60):
        actions = rng.integers(0, 2, size=3)
        a, b = original.step(actions), restored.step(actions)
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    with pytest.raises(ValueError, match="holds 3 environments; this EnvGroup has 2"):
        EnvGroup("CartPole-v1", 2).load_state_dict(state)


def test_env_group_resets_on_next_step():
    """ALF's convention, checked against a plain gymnasium env: the step
    after the last one is the reset (reward 0, not terminal), with the
    observation of ``reset()`` continuing the env's random generator."""
    envs = EnvGroup("CartPole-v1", 2, first_index=3)
    obs = envs.reset(seed=10)
    plain = gym.make("CartPole-v1")
    expected, _ = plain.reset(seed=13)  # global index 3 -> seed + 3
    np.testing.assert_array_equal(obs[0], expected)
    while True:
        obs, reward, terminated, truncated = envs.step(np.zeros(2, dtype=np.int64))
        expected, r, te, tr, _ = plain.step(0)
        np.testing.assert_array_equal(obs[0], expected)
        assert (reward[0], terminated[0], truncated[0]) == (r, te, tr)
        if te or tr:
            break
    assert envs.pending_reset[0]
    obs, reward, terminated, truncated = envs.step(np.zeros(2, dtype=np.int64))
    expected, _ = plain.reset()
    np.testing.assert_array_equal(obs[0], expected)
    assert reward[0] == 0.0 and not terminated[0] and not truncated[0]


def test_training_state_restores_generators_and_progress():
    state = TrainingState(return_window=3, num_envs=2)
    state.iteration, state.env_steps, state.steps_to_target = 7, 1792, None
    state.recent_returns.extend([10.0, 20.0, 30.0, 40.0])
    schedulers.update_progress("percent", 0.25)
    schedulers.update_progress("global_counter", 7)
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    saved = state.state_dict()
    draws = (random.random(), np.random.rand(), torch.rand(()).item())
    schedulers.update_progress("percent", 0.9)
    alf.summary.set_global_counter(99)
    restored = TrainingState(return_window=3, num_envs=2)
    restored.load_state_dict(saved)
    assert (random.random(), np.random.rand(), torch.rand(()).item()) == draws
    assert schedulers.get_progress("percent") == 0.25
    assert int(alf.summary.get_global_counter()) == 7
    assert list(restored.recent_returns) == [20.0, 30.0, 40.0]
    assert (restored.iteration, restored.env_steps, restored.steps_to_target) == (7, 1792, None)


def test_truncate_events(tmp_path):
    folder = str(tmp_path)
    writer = alf.summary.create_summary_writer(folder)
    for step in range(1, 7):
        writer.add_scalar("Metrics/AverageReturn", float(step), step)
        writer.add_scalar("Metrics_vs_EnvironmentSteps/AverageReturn", float(step), 256 * step)
    writer.close()
    (path,) = glob.glob(os.path.join(folder, "events.out.tfevents.*"))
    with open(path, "ab") as f:  # a record a killed writer cut off
        f.write(b"\x10\x00\x00\x00\x00\x00\x00\x00abc")
    assert truncate_events(folder, global_step=4, env_steps=4 * 256) == [path]
    scalars = _scalars(folder)
    assert [s for s, _ in scalars["Metrics/AverageReturn"]] == [1, 2, 3, 4]
    assert [s for s, _ in scalars["Metrics_vs_EnvironmentSteps/AverageReturn"]] == [
        256,
        512,
        768,
        1024,
    ]
    assert truncate_events(folder, global_step=4, env_steps=4 * 256) == []


# --------------------------------------------------------------------------
# The agent


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
        "loss",
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
    greedy = dist.probs.argmax(-1).numpy()
    np.testing.assert_array_equal(greedy_action(agent, obs), greedy)
    with common.eval_context():  # act() follows the execution mode
        np.testing.assert_array_equal(agent.act(obs)[0].numpy(), greedy)
    torch.manual_seed(1)
    with common.rollout_context():
        sampled = agent.act(obs)[0].numpy()
    torch.manual_seed(1)
    np.testing.assert_array_equal(sampled, dist.sample().numpy())


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
            _, r, terminated, truncated = env.step(0)[:4]
            length += r
            done = terminated or truncated
        expected.append(length)
        env.close()
    assert returns == expected


# --------------------------------------------------------------------------
# The command line


@pytest.mark.parametrize(
    "args, message",
    [
        (["--env", "NoSuchEnv-v0"], "unknown environment id 'NoSuchEnv-v0'"),
        (["--env", "Pendulum-v1"], "needs a Discrete one"),
        (["--num-processes", "3"], "num_envs (8) must be a multiple of num_processes (3)"),
        (["--seeds", "1", "1"], "--seeds must be distinct"),
    ],
)
def test_main_bad_input_one_line(tmp_path, capsys, args, message):
    out = str(tmp_path / "out")
    assert main([*args, "--out", out, "--no-progress"]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and message in captured.err
    assert captured.out == ""
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
    with pytest.raises(ValueError, match="checkpoint_interval must be a positive int"):
        check_inputs(dataclasses.replace(SHORT, checkpoint_interval=0), str(tmp_path))


def test_main_artifacts_then_keeps_finished_seed(tmp_path, capsys):
    out = str(tmp_path / "demo")
    argv = ["--seeds", "3", "--total-steps", "512", "--out", out, "--jobs", "1", "--no-progress"]
    argv += ["--readme-figure", str(tmp_path / "docs" / "figure.png")]
    assert parse_args(argv).restart is False
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert f"tensorboard --logdir {out}" in text
    png = os.path.join(out, "return.png")
    mp4 = os.path.join(out, "seed-3", "eval", "episode.mp4")
    for path in (png, mp4, os.path.join(out, "seed-3", "ckpt", "ckpt-2")):
        assert os.path.isfile(path) and f"{os.path.dirname(path)}" in text.replace("<n>", "3")
    assert f"return plot:  {png}" in text and f"video:        {mp4}" in text
    with open(png, "rb") as f, open(tmp_path / "docs" / "figure.png", "rb") as g:
        assert f.read() == g.read()
    with open(os.path.join(out, "results.json")) as f:
        summary = json.load(f)
    assert [r["seed"] for r in summary["seeds"]] == [3]
    assert set(summary["seconds"]) == {"training", "plotting", "video"}
    mtime = os.path.getmtime(os.path.join(out, "seed-3", "result.json"))
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "seed 3: already finished" in text and "kept from the previous run" in text
    assert os.path.getmtime(os.path.join(out, "seed-3", "result.json")) == mtime
    # other settings for a finished folder: one line, nothing changes
    assert main([*argv[:3], "1024", *argv[4:]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "total_steps=512 (now 1024)" in err
    assert main([*argv, "--restart", "--no-video"]) == 0
    assert "--restart: training it from scratch" in capsys.readouterr().out


def test_main_parallel_seeds(tmp_path):
    out = str(tmp_path / "par")
    argv = ["--seeds", "0", "1", "--total-steps", "512", "--out", out, "--no-video"]
    assert main([*argv, "--no-progress", "--readme-figure", ""]) == 0
    for seed in (0, 1):
        with open(os.path.join(out, f"seed-{seed}", "result.json")) as f:
            assert json.load(f)["env_steps"] == 512


# --------------------------------------------------------------------------
# Data-parallel


def _agents_equal(run_dir):
    a = torch.load(os.path.join(ckpt_dir(run_dir, 0), "ckpt-4"), weights_only=True)["agent"]
    b = torch.load(os.path.join(ckpt_dir(run_dir, 1), "ckpt-4"), weights_only=True)["agent"]
    assert a.keys() == b.keys()
    return all(torch.equal(a[k], b[k]) for k in a)


def test_num_processes_2_trains_one_seed_data_parallel(tmp_path, capsys):
    """Two forked ranks (gloo): each runs 4 of the 8 environments; the
    averaged gradients keep their networks identical."""
    out = str(tmp_path / "ddp")
    argv = ["--seeds", "0", "--total-steps", "1024", "--num-processes", "2", "--out", out]
    assert main([*argv, "--no-progress", "--no-video", "--readme-figure", ""]) == 0
    run_dir = os.path.join(out, "seed-0")
    with open(os.path.join(run_dir, "result.json")) as f:
        result = json.load(f)
    assert result["env_steps"] == 1024 and result["num_processes"] == 2
    assert _agents_equal(run_dir)
    saved = torch.load(os.path.join(ckpt_dir(run_dir, 1), "ckpt-4"), weights_only=True)
    assert saved["envs"]["observation"].shape == (4, 4)  # rank 1's 4 environments
    assert "(1 seed(s) at a time, 2 process(es) each)" in capsys.readouterr().out


def _update_half(rank, port, batch, initial, config, results):
    """One rank of test_ddp_update_equals_full_batch_update."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        agent = ActorCritic(*_TINY_SPECS, (16,))
        agent.load_state_dict(initial)
        agent._ddp_activated_rank = rank
        optimizer = torch.optim.Adam(agent.parameters(), lr=1e-2)
        part = slice(0, 40) if rank == 0 else slice(40, None)  # unequal shares

        def all_reduce(x):
            x = x.clone()
            dist.all_reduce(x)
            return x

        ppo_update(
            agent, optimizer, {k: v[part] for k, v in batch.items()}, 0.2, config, all_reduce
        )
        results.put((rank, {k: v.numpy() for k, v in agent.state_dict().items()}))
    finally:
        dist.destroy_process_group()


_TINY_SPECS = (
    BoundedTensorSpec((4,), torch.float32, -1.0, 1.0),
    BoundedTensorSpec((), torch.int64, 0, 1),
)


def test_ddp_update_equals_full_batch_update():
    """Two gloo ranks holding 40 and 24 of 64 samples end with the parameters
    a single process gets from the whole batch (global advantage statistics,
    losses weighted by each rank's share, gradients averaged by DDP)."""
    import multiprocessing

    torch.manual_seed(0)
    agent = ActorCritic(*_TINY_SPECS, (16,))
    initial = {k: v.clone() for k, v in agent.state_dict().items()}
    obs = torch.randn(64, 4)
    action = torch.randint(0, 2, (64,))
    with torch.no_grad():
        dist_, value = agent(obs)
    batch = {
        "observation": obs,
        "action": action,
        "log_prob": dist_.log_prob(action),
        "value": value,
        "advantage": torch.randn(64) + 0.5,
        "return": value + torch.randn(64),
    }
    config = dataclasses.replace(SHORT, num_epochs=3, normalize_advantages=True)
    optimizer = torch.optim.Adam(agent.parameters(), lr=1e-2)
    ppo_update(agent, optimizer, batch, 0.2, config)
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    port = common.get_unused_port(21000)
    ranks = [
        context.Process(target=_update_half, args=(r, port, batch, initial, config, results))
        for r in range(2)
    ]
    for process in ranks:
        process.start()
    try:
        got = dict(results.get(timeout=DEADLINE) for _ in range(2))
    finally:
        for process in ranks:
            process.join(DEADLINE)
            if process.is_alive():
                process.kill()
    assert [p.exitcode for p in ranks] == [0, 0]
    for name, expected in agent.state_dict().items():
        np.testing.assert_allclose(got[0][name], expected.numpy(), rtol=1e-4, atol=1e-6)
        np.testing.assert_array_equal(got[0][name], got[1][name])


def test_torchrun_runs_the_same_script(tmp_path):
    """The README's torchrun line, on one machine (2 processes, gloo)."""
    out = str(tmp_path / "torchrun")
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        *_demo_command(out, "--seeds", "0", "--total-steps", "1024", "--no-video")[1:],
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=DEADLINE)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("look at the logs:") == 1  # rank 0 reports
    run_dir = os.path.join(out, "seed-0")
    with open(os.path.join(run_dir, "result.json")) as f:
        result = json.load(f)
    assert result["env_steps"] == 1024 and result["num_processes"] == 2
    assert _agents_equal(run_dir)
