"""The training loop of the PPO CartPole example: ``train(config, out_dir)``.

One call trains one seed in this process and writes, under ``out_dir``:

- ``train/``: TensorBoard events (``Metrics/...`` against iterations,
  ``Metrics_vs_EnvironmentSteps/...`` against environment steps, ``ppo/...``
  losses and statistics, ``speed/...``), the tags ALF writes;
- ``eval/``: the deterministic evaluation after training (same tags);
- ``result.json``: the figures of the run (written last: a run that has it
  is finished).

Time steps follow ALF's convention (``alf.data_structures.StepType``): the
vector environment resets an environment on the step *after* its episode
ends (gymnasium's ``NEXT_STEP`` autoreset), so every environment produces
``FIRST, MID, ..., MID, LAST, FIRST, ...`` where the ``LAST`` step carries the
final observation (its value bootstraps a time-limit truncation) and the
action chosen at a ``LAST`` step is ignored by the environment (it is kept out
of the loss).
"""

import collections
import json
import math
import os
import random
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional

import gymnasium as gym
import numpy as np
import torch
from ppo_agent import ActorCritic, greedy_action, ppo_update, spec_from_space
from ppo_config import PPOConfig, piecewise_linear

import alf.summary
from alf.data_structures import StepType
from alf.tensor_specs import BoundedTensorSpec, TensorSpec
from alf.utils import dist_utils, value_ops
from alf.utils.data_buffer import DataBuffer
from alf.utils.normalizers import AdaptiveNormalizer

__all__ = ["check_inputs", "evaluate", "make_vector_env", "train"]

FIRST, MID, LAST = int(StepType.FIRST), int(StepType.MID), int(StepType.LAST)


# --------------------------------------------------------------------------
# Bad input: one clear line each, before anything is trained or written


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def check_inputs(config: PPOConfig, out_dir: str) -> None:
    """Check the environment and the output folder before training.

    Creates ``out_dir`` (and its parents) if missing.

    Raises:
        ValueError: one line naming the problem: an unknown or uncreatable
            environment id, an action space that is not ``Discrete``, an
            observation space that is not a 1-D float ``Box``, an output folder
            that cannot be written, or a configuration value out of range.
    """
    for name in ("total_steps", "num_envs", "num_epochs", "num_minibatches", "eval_episodes"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int; got {value!r}")
    if config.unroll_length < 2:
        raise ValueError(f"unroll_length must be >= 2; got {config.unroll_length!r}")
    for name in ("lr_schedule", "clip_schedule"):
        schedule = getattr(config, name)
        if not schedule or schedule[0][0] != 0.0:
            raise ValueError(f"{name} must be ((0.0, value), ...) pairs; got {schedule!r}")
    try:
        env = gym.make(config.env_id)
    except gym.error.Error as e:
        raise ValueError(f"unknown environment id {config.env_id!r}: {_first_line(e)}") from None
    except Exception as e:  # a registered id whose constructor fails (missing extra, ...)
        raise ValueError(f"cannot create environment {config.env_id!r}: {_first_line(e)}") from None
    try:
        action_space, observation_space = env.action_space, env.observation_space
    finally:
        env.close()
    if not isinstance(action_space, gym.spaces.Discrete):
        raise ValueError(
            f"environment {config.env_id!r} has action space {action_space}; "
            f"this PPO example needs a Discrete one"
        )
    if (
        not isinstance(observation_space, gym.spaces.Box)
        or len(observation_space.shape) != 1
        or not np.issubdtype(observation_space.dtype, np.floating)
    ):
        raise ValueError(
            f"environment {config.env_id!r} has observation space {observation_space}; "
            f"this PPO example needs a 1-D float Box"
        )
    try:
        os.makedirs(out_dir, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as e:
        raise ValueError(
            f"output folder {out_dir!r} is not writable: {e.strerror or _first_line(e)}"
        ) from None


# --------------------------------------------------------------------------
# Environments and evaluation


def make_vector_env(env_id: str, num_envs: int) -> gym.vector.VectorEnv:
    """``num_envs`` copies of ``env_id`` stepped in this process, reset on the
    step after an episode ends (ALF's ``LAST`` then ``FIRST``)."""
    return gym.make_vec(
        env_id,
        num_envs=num_envs,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP},
    )


def evaluate(
    agent: ActorCritic,
    normalizer: AdaptiveNormalizer,
    config: PPOConfig,
    action_spec: BoundedTensorSpec,
    seed: int,
) -> List[float]:
    """Returns of ``config.eval_episodes`` episodes of the greedy policy (the
    mode of the action distribution), one per environment of a vector env
    seeded ``seed, seed + 1, ...``. The normalizer is used, not updated."""
    env = make_vector_env(config.env_id, config.eval_episodes)
    try:
        obs, _ = env.reset(seed=seed)
        returns = np.zeros(config.eval_episodes)
        done = np.zeros(config.eval_episodes, dtype=bool)
        offset = int(action_spec.minimum)
        with torch.no_grad():
            while not done.all():
                x = torch.from_numpy(obs)
                if config.normalize_observations:
                    x = normalizer.normalize(x, config.obs_clip)
                obs, reward, terminated, truncated, _ = env.step(greedy_action(agent, x) + offset)
                returns += np.where(done, 0.0, reward)
                done |= terminated | truncated
    finally:
        env.close()
    return returns.tolist()


# --------------------------------------------------------------------------
# Training


def _write_json_atomically(path: str, data: Dict[str, Any]) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _seed_everything(seed: int) -> None:
    # LEAD: plug alf.utils.common.set_random_seed(seed) here
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train(
    config: PPOConfig,
    out_dir: str,
    progress: Optional[Callable[[Dict[str, Any]], None]] = None,
) -> Dict[str, Any]:
    """Train one seed of PPO as ``config`` says, writing under ``out_dir``.

    Args:
        config: the run's hyperparameters (``config.seed`` included).
        out_dir: folder of this run (created if missing).
        progress: called after every iteration with a dict: ``steps``,
            ``total_steps``, ``episodes``, ``recent_return`` (mean of the last
            ``return_window`` episode returns, NaN before the first episode
            ends), ``steps_per_sec``.

    Returns:
        The figures also written to ``out_dir/result.json``: ``seed``,
        ``env_steps``, ``episodes``, ``final_recent_return``,
        ``steps_to_target`` (environment steps at the end of the first
        iteration where the recent return over a full window reached
        ``config.target_return``, or None), ``eval_returns``, ``eval_mean``,
        ``train_seconds`` (wall), ``train_cpu_seconds`` (this process's CPU
        time, less sensitive to other load on the machine), ``eval_seconds``.

    Raises:
        ValueError: bad input (see ``check_inputs``), before training starts.
    """
    check_inputs(config, out_dir)
    torch.set_num_threads(config.torch_threads)
    _seed_everything(config.seed)

    env = make_vector_env(config.env_id, config.num_envs)
    observation_spec = spec_from_space(env.single_observation_space, "observation space")
    action_spec = spec_from_space(env.single_action_space, "action space")
    agent = ActorCritic(observation_spec, action_spec, config.hidden_sizes)
    optimizer = torch.optim.Adam(
        agent.parameters(),
        lr=piecewise_linear(config.lr_schedule, 0.0),
        eps=config.adam_eps,
        fused=True,  # one kernel per step instead of one per parameter
    )
    normalizer = AdaptiveNormalizer(
        observation_spec,
        speed=config.obs_normalizer_speed,
        auto_update=False,  # updated once per unroll, never by evaluation
        name="observation_normalizer",
    )
    # One buffer item = one step of all environments; the ring keeps the
    # unroll_length + 1 latest steps: the last step of the previous unroll
    # (whose action starts this one) and the steps of this unroll.
    num_envs, unroll = config.num_envs, config.unroll_length
    rollout_spec = {
        "raw_observation": TensorSpec((num_envs, *observation_spec.shape), observation_spec.dtype),
        "observation": TensorSpec((num_envs, *observation_spec.shape), observation_spec.dtype),
        "step_type": TensorSpec((num_envs,), torch.int32),
        "reward": TensorSpec((num_envs,)),
        "discount": TensorSpec((num_envs,)),
        "action": TensorSpec((num_envs,), torch.int64),
        "log_prob": TensorSpec((num_envs,)),
        "value": TensorSpec((num_envs,)),
    }
    rollout = DataBuffer(rollout_spec, capacity=unroll + 1, name="rollout")
    action_offset = int(action_spec.minimum)

    # LEAD: plug alf.utils.checkpoint_utils.Checkpointer here: a Checkpointer on
    # out_dir/ckpt holding agent, optimizer, normalizer and a small state
    # object (iteration, env_steps, episodes, steps_to_target, recent_returns/
    # lengths, random/numpy/torch RNG states). When has_checkpoint(): load(),
    # set the global counter to the saved iteration and start the loop below
    # there (range(saved_iteration, num_iterations)). The environments then
    # reset as at a start (episodes in flight are lost), so the rollout ring
    # need not be saved: the initial observe() and the next unroll refill it.

    # LEAD: plug alf.utils.summary_utils here (e.g. summarize_variables /
    # summarize_gradients / add_mean_hist_summary inside the update).
    writer = alf.summary.create_summary_writer(os.path.join(out_dir, "train"), flush_secs=5)
    alf.summary.set_default_writer(writer)
    alf.summary.reset_global_counter()

    recent_returns: collections.deque = collections.deque(maxlen=config.return_window)
    recent_lengths: collections.deque = collections.deque(maxlen=config.return_window)
    env_steps = episodes = 0
    steps_to_target = None
    start = time.perf_counter()
    start_cpu = time.process_time()

    def observe(obs, step_type, reward, discount) -> np.ndarray:
        """Act on one step of every environment and store it; returns the
        environment actions ``[num_envs]``."""
        raw = torch.from_numpy(obs)
        x = normalizer.normalize(raw, config.obs_clip) if config.normalize_observations else raw
        dist, value = agent(x)
        action, log_prob = dist_utils.sample_action_distribution(dist, return_log_prob=True)
        rollout.add_batch(
            {
                "raw_observation": raw[None],
                "observation": x[None],
                "step_type": torch.from_numpy(step_type)[None],
                "reward": torch.from_numpy(reward)[None],
                "discount": torch.from_numpy(discount)[None],
                "action": action[None],
                "log_prob": log_prob[None],
                "value": value[None],
            }
        )
        return action.numpy() + action_offset

    try:
        obs, _ = env.reset(seed=config.seed)
        prev_last = np.zeros(num_envs, dtype=bool)
        episode_return = np.zeros(num_envs)
        episode_length = np.zeros(num_envs, dtype=np.int64)
        with torch.no_grad():
            normalizer.update(torch.from_numpy(obs))
            action = observe(
                obs,
                np.full(num_envs, FIRST, np.int32),
                np.zeros(num_envs, np.float32),
                np.ones(num_envs, np.float32),
            )
        # LEAD: plug alf.utils.common.Periodically (summaries, checkpoints)
        # and the execution modes (common.exe_mode_name) here.
        num_iterations = config.num_iterations
        for iteration in range(num_iterations):
            fraction = iteration / num_iterations
            # LEAD: plug alf.utils.schedulers (update_progress + LinearScheduler) here
            lr = piecewise_linear(config.lr_schedule, fraction)
            clip_ratio = piecewise_linear(config.clip_schedule, fraction)
            for group in optimizer.param_groups:
                group["lr"] = lr

            with torch.no_grad():
                for _ in range(unroll):
                    obs, reward, terminated, truncated, _ = env.step(action)
                    last = terminated | truncated
                    step_type = np.where(prev_last, FIRST, np.where(last, LAST, MID))
                    episode_return[prev_last] = 0.0
                    episode_length[prev_last] = 0
                    episode_return += reward
                    episode_length += ~prev_last
                    if last.any():
                        for i in np.flatnonzero(last):
                            recent_returns.append(float(episode_return[i]))
                            recent_lengths.append(int(episode_length[i]))
                        episodes += int(last.sum())
                    action = observe(
                        obs,
                        step_type.astype(np.int32),
                        reward.astype(np.float32),
                        (~terminated).astype(np.float32),
                    )
                    prev_last = last
            env_steps += num_envs * unroll

            exp = rollout.get_all()  # each [unroll + 1, num_envs, ...]
            advantage = value_ops.generalized_advantage_estimation(
                exp["reward"],
                exp["value"],
                exp["step_type"],
                exp["discount"] * config.gamma,
                td_lambda=config.gae_lambda,
            )  # [unroll, num_envs]
            valid = (exp["step_type"][:-1] != LAST).reshape(-1)
            batch = {
                "observation": exp["observation"][:-1].reshape(-1, *observation_spec.shape),
                "action": exp["action"][:-1].reshape(-1),
                "log_prob": exp["log_prob"][:-1].reshape(-1),
                "value": exp["value"][:-1].reshape(-1),
                "advantage": advantage.reshape(-1),
                "return": (advantage + exp["value"][:-1]).reshape(-1),
            }
            batch = {k: v[valid] for k, v in batch.items()}
            stats = ppo_update(agent, optimizer, batch, clip_ratio, config)
            # The statistics change once per unroll (one batched update): the
            # stored observations and log-probabilities stay consistent, and
            # acting costs a normalize() per step, not an update() as well.
            normalizer.update(exp["raw_observation"][1:])

            recent_return = float(np.mean(recent_returns)) if recent_returns else math.nan
            if (
                steps_to_target is None
                and len(recent_returns) == config.return_window
                and recent_return >= config.target_return
            ):
                steps_to_target = env_steps
            alf.summary.increment_global_counter()
            elapsed = time.perf_counter() - start
            with alf.summary.record_if(iteration % config.summary_interval == 0):
                _write_train_summaries(
                    stats,
                    lr,
                    clip_ratio,
                    recent_returns,
                    recent_lengths,
                    env_steps,
                    episodes,
                    env_steps / elapsed,
                )
            # LEAD: plug Checkpointer.save(global_step) here (every N iterations).
            if progress is not None:
                progress(
                    {
                        "steps": env_steps,
                        "total_steps": num_iterations * config.steps_per_iteration,
                        "episodes": episodes,
                        "recent_return": recent_return,
                        "steps_per_sec": env_steps / elapsed,
                    }
                )
        train_seconds = time.perf_counter() - start
        train_cpu_seconds = time.process_time() - start_cpu
    finally:
        env.close()
        writer.close()
        alf.summary.set_default_writer(None)

    eval_start = time.perf_counter()
    eval_returns = evaluate(agent, normalizer, config, action_spec, seed=config.seed + 1_000_000)
    # LEAD: plug alf.utils.video_recorder.VideoRecorder here (one greedy episode to MP4).
    eval_writer = alf.summary.create_summary_writer(os.path.join(out_dir, "eval"))
    alf.summary.set_default_writer(eval_writer)
    try:
        eval_mean = float(np.mean(eval_returns))
        alf.summary.scalar("Metrics/AverageReturn", eval_mean)
        alf.summary.scalar("Metrics_vs_EnvironmentSteps/AverageReturn", eval_mean, step=env_steps)
    finally:
        eval_writer.close()
        alf.summary.set_default_writer(None)
    # LEAD: plug the final Checkpointer.save here, before result.json marks the run finished.
    result = {
        "seed": config.seed,
        "env_id": config.env_id,
        "env_steps": env_steps,
        "episodes": episodes,
        "final_recent_return": float(np.mean(recent_returns)) if recent_returns else None,
        "steps_to_target": steps_to_target,
        "eval_returns": eval_returns,
        "eval_mean": eval_mean,
        "train_seconds": round(train_seconds, 2),
        "train_cpu_seconds": round(train_cpu_seconds, 2),
        "eval_seconds": round(time.perf_counter() - eval_start, 2),
    }
    _write_json_atomically(os.path.join(out_dir, "result.json"), result)
    return result


def _write_train_summaries(
    stats: Dict[str, float],
    lr: float,
    clip_ratio: float,
    recent_returns: collections.deque,
    recent_lengths: collections.deque,
    env_steps: int,
    episodes: int,
    steps_per_sec: float,
) -> None:
    if not alf.summary.should_record_summaries():
        return
    with alf.summary.scope("ppo"):
        for name, value in stats.items():
            alf.summary.scalar(name, value)
        alf.summary.scalar("learning_rate", lr)
        alf.summary.scalar("clip_ratio", clip_ratio)
    alf.summary.scalar("Metrics/EnvironmentSteps", env_steps)
    alf.summary.scalar("Metrics/NumberOfEpisodes", episodes)
    alf.summary.scalar("speed/env_steps_per_sec", steps_per_sec)
    if recent_returns:
        average_return = float(np.mean(recent_returns))
        average_length = float(np.mean(recent_lengths))
        alf.summary.scalar("Metrics/AverageReturn", average_return)
        alf.summary.scalar("Metrics/AverageEpisodeLength", average_length)
        alf.summary.scalar(
            "Metrics_vs_EnvironmentSteps/AverageReturn", average_return, step=env_steps
        )
        alf.summary.scalar(
            "Metrics_vs_EnvironmentSteps/AverageEpisodeLength", average_length, step=env_steps
        )
