"""The training loop of the PPO CartPole example: ``train(config, out_dir)``.

One call trains one seed and writes, under ``out_dir``:

- ``config.json``: the ``PPOConfig`` of the run (a rerun must match it);
- ``ckpt/``: checkpoints (``alf.utils.checkpoint_utils.Checkpointer``, ALF's
  layout: ``ckpt-<iteration>`` and its side files) of the networks, the
  optimizer, the observation normalizer, the rollout buffer, the
  environments, the counters, the scheduler progress and the random
  generators. A call finding one resumes from the latest, exactly where it
  was saved; data-parallel ranks other than 0 keep theirs in
  ``ckpt-rank<r>/``;
- ``train/``: TensorBoard events (``Metrics/...`` against iterations,
  ``Metrics_vs_EnvironmentSteps/...`` against environment steps, ``ppo/...``
  losses and statistics, ``time/...``, ``speed/...``, and every
  ``detail_summary_interval`` iterations histograms and norms of the
  variables, gradients, actions and advantages);
- ``eval/``: the deterministic evaluation after training (same tags);
- ``result.json``: the figures of the run, written last: a run that has it
  is finished.

Data-parallel training (``config.num_processes > 1``): every process runs
this function as one rank of a ``torch.distributed`` process group, with
``PerProcessContext`` set. The ``num_envs`` environments are split among
the ranks; gradients are averaged through ``@data_distributed``, the
observation normalizer is updated with every rank's observations, finished
episodes are gathered, so all ranks hold the same networks and counters.
Rank 0 writes the summaries and ``result.json``.
"""

import dataclasses
import json
import math
import os
import shutil
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import gymnasium as gym
import numpy as np
import torch
import torch.distributed as dist
from ppo_agent import ActorCritic, ppo_update, spec_from_space
from ppo_config import PPOConfig
from ppo_envs import EnvGroup
from ppo_state import TrainingState, truncate_events

import alf.summary
from alf.data_structures import LossInfo, StepType
from alf.tensor_specs import BoundedTensorSpec, TensorSpec
from alf.utils import common, schedulers, summary_utils, value_ops
from alf.utils.checkpoint_utils import Checkpointer
from alf.utils.data_buffer import DataBuffer
from alf.utils.normalizers import AdaptiveNormalizer
from alf.utils.per_process_context import PerProcessContext

__all__ = [
    "check_inputs",
    "ckpt_dir",
    "config_mismatch",
    "evaluate",
    "load_policy",
    "read_config",
    "record_video",
    "train",
]

FIRST, MID, LAST = int(StepType.FIRST), int(StepType.MID), int(StepType.LAST)


# --------------------------------------------------------------------------
# Bad input: one clear line each, before anything is trained or written


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


_POSITIVE_INTS = (
    "total_steps",
    "num_envs",
    "num_epochs",
    "num_minibatches",
    "eval_episodes",
    "return_window",
    "summary_interval",
    "detail_summary_interval",
    "checkpoint_interval",
    "checkpoints_to_keep",
    "num_processes",
    "torch_threads",
)


def check_inputs(config: PPOConfig, out_dir: str) -> None:
    """Check the configuration, the environment and the output folder before
    training.

    Creates ``out_dir`` (and its parents) if missing.

    Raises:
        ValueError: one line naming the problem: an unknown or uncreatable
            environment id, an action space that is not ``Discrete``, an
            observation space that is not a 1-D float ``Box``, an output folder
            that cannot be written, or a configuration value out of range.
    """
    for name in _POSITIVE_INTS:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int; got {value!r}")
    if config.unroll_length < 2:
        raise ValueError(f"unroll_length must be >= 2; got {config.unroll_length!r}")
    if config.num_envs % config.num_processes:
        raise ValueError(
            f"num_envs ({config.num_envs}) must be a multiple of num_processes "
            f"({config.num_processes}): the processes share the environments"
        )
    for name in ("lr_schedule", "clip_schedule"):
        schedule = getattr(config, name)
        try:
            schedulers.LinearScheduler("percent", schedule)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{name} must be ((0.0, value), ...) pairs: {e}") from None
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
# Files of a run


def ckpt_dir(out_dir: str, rank: int = 0) -> str:
    """The checkpoint folder of data-parallel rank ``rank`` of a run."""
    return os.path.join(out_dir, "ckpt" if rank == 0 else f"ckpt-rank{rank}")


def write_json_atomically(path: str, data: Dict[str, Any]) -> None:
    """Write ``data`` as JSON to ``path`` so that a kill at any moment leaves the
    previous file or the new one (a temporary file, fsync, rename)."""
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _config_dict(config: PPOConfig) -> Dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(config)))


def read_config(run_dir: str) -> Optional[PPOConfig]:
    """The ``PPOConfig`` saved in ``run_dir/config.json`` (None if absent)."""
    try:
        with open(os.path.join(run_dir, "config.json")) as f:
            saved = json.load(f)
    except (OSError, ValueError):
        return None
    fields = {f.name: f for f in dataclasses.fields(PPOConfig)}
    values = {}
    for name, value in saved.items():
        if name not in fields:
            continue
        if name in ("lr_schedule", "clip_schedule"):
            value = tuple(tuple(pair) for pair in value)
        elif name == "hidden_sizes":
            value = tuple(value)
        values[name] = value
    return PPOConfig(**values)


def config_mismatch(config: PPOConfig, run_dir: str) -> Optional[str]:
    """None when ``run_dir`` has no ``config.json`` or one equal to
    ``config``; otherwise ``"name=saved (now new), ..."`` of the fields that
    differ."""
    try:
        with open(os.path.join(run_dir, "config.json")) as f:
            saved = json.load(f)
    except (OSError, ValueError):
        return None
    now = _config_dict(config)
    diffs = [f"{k}={saved.get(k)!r} (now {v!r})" for k, v in now.items() if saved.get(k, v) != v]
    return ", ".join(diffs) or None


# --------------------------------------------------------------------------
# Evaluation, the policy of a finished run, the video


def evaluate(
    agent: ActorCritic,
    normalizer: AdaptiveNormalizer,
    config: PPOConfig,
    action_spec: BoundedTensorSpec,
    seed: int,
) -> List[float]:
    """Returns of ``config.eval_episodes`` episodes of the greedy policy
    (``agent.act`` in ``common.eval_context()``: the mode of the action
    distribution), one per environment, seeded ``seed, seed + 1, ...``.
    The normalizer is used, not updated."""
    envs = EnvGroup(config.env_id, config.eval_episodes)
    try:
        obs = envs.reset(seed=seed)
        returns = np.zeros(config.eval_episodes)
        done = np.zeros(config.eval_episodes, dtype=bool)
        offset = int(action_spec.minimum)
        with common.eval_context(), torch.no_grad():
            while not done.all():
                x = torch.from_numpy(obs)
                if config.normalize_observations:
                    x = normalizer.normalize(x, config.obs_clip)
                action, _, _ = agent.act(x)
                obs, reward, terminated, truncated = envs.step(action.numpy() + offset)
                returns += np.where(done, 0.0, reward)
                done |= terminated | truncated
    finally:
        envs.close()
    return returns.tolist()


def _build_policy(
    config: PPOConfig, observation_space: gym.Space, action_space: gym.Space
) -> Tuple[ActorCritic, AdaptiveNormalizer, TensorSpec, BoundedTensorSpec]:
    observation_spec = spec_from_space(observation_space, "observation space")
    action_spec = spec_from_space(action_space, "action space")
    agent = ActorCritic(observation_spec, action_spec, config.hidden_sizes)
    normalizer = AdaptiveNormalizer(
        observation_spec,
        speed=config.obs_normalizer_speed,
        auto_update=False,  # updated once per unroll, never by evaluation
        name="observation_normalizer",
    )
    return agent, normalizer, observation_spec, action_spec


def load_policy(run_dir: str) -> Tuple[PPOConfig, ActorCritic, AdaptiveNormalizer, int]:
    """The configuration, the trained agent and the observation normalizer
    of the latest checkpoint of ``run_dir``, and that checkpoint's iteration.

    Raises:
        FileNotFoundError: ``run_dir`` has no ``config.json`` or no checkpoint.
    """
    config = read_config(run_dir)
    if config is None:
        raise FileNotFoundError(f"{run_dir} has no config.json: not a run of this example")
    env = gym.make(config.env_id)
    try:
        agent, normalizer, _, _ = _build_policy(config, env.observation_space, env.action_space)
    finally:
        env.close()
    checkpointer = Checkpointer(ckpt_dir(run_dir), agent=agent, normalizer=normalizer)
    # the other items of the checkpoint (optimizer, rollout, ...) are not needed
    step = checkpointer.load(including_optimizer=False, strict=False)
    if step < 0:
        raise FileNotFoundError(f"{ckpt_dir(run_dir)} holds no checkpoint")
    return config, agent, normalizer, step


def record_video(run_dir: str, path: str, seed: int) -> Dict[str, Any]:
    """Write to ``path`` an MP4 (``VideoRecorder``) of one episode of the
    greedy policy of ``run_dir``'s latest checkpoint, in an environment
    reset with ``seed`` (the first evaluation episode when ``seed`` is the
    evaluation seed).

    Returns:
        ``{"path", "return", "frames", "iteration"}``.
    """
    # pygame (CartPole's renderer) draws off-screen; no display needed.
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    from alf.utils.video_recorder import VideoRecorder  # needs alf-train-utils[video]

    config, agent, normalizer, iteration = load_policy(run_dir)
    env = gym.make(config.env_id, render_mode="rgb_array")
    offset = int(spec_from_space(env.action_space, "action space").minimum)
    total = 0.0
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    try:
        obs, _ = env.reset(seed=seed)
        with VideoRecorder(env, path=path, last_step_repeats=25) as recorder:
            recorder.capture_frame()
            done = False
            with common.eval_context(), torch.no_grad():
                while not done:
                    x = torch.from_numpy(obs)[None]
                    if config.normalize_observations:
                        x = normalizer.normalize(x, config.obs_clip)
                    action, _, _ = agent.act(x)
                    obs, reward, terminated, truncated, _ = env.step(action.item() + offset)
                    total += float(reward)
                    done = terminated or truncated
                    recorder.capture_frame(is_last_step=done)
            frames = recorder.frames_written
    finally:
        env.close()
    return {"path": path, "return": total, "frames": frames, "iteration": iteration}


# --------------------------------------------------------------------------
# Data-parallel helpers (identity in a single process)


def _gather_envs(x: torch.Tensor, dim: int, world: int) -> torch.Tensor:
    """``x`` of every rank, concatenated along the environment dim ``dim``."""
    if world == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(world)]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts, dim)


def _gather_list(items: list, world: int) -> list:
    """The lists of every rank, concatenated in rank order."""
    if world == 1:
        return items
    lists: List[Any] = [None] * world
    dist.all_gather_object(lists, items)
    return [x for part in lists for x in part]


def _all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    """``x`` summed over the ranks (a copy)."""
    x = x.clone()
    dist.all_reduce(x)
    return x


def _common_latest_step(checkpointer: Checkpointer, world: int) -> int:
    """The latest checkpoint step every rank has (-1 if none)."""
    steps = set(checkpointer.checkpointed_steps())
    for other in _gather_list([sorted(steps)], world):
        steps &= set(other)
    return max(steps) if steps else -1


# --------------------------------------------------------------------------
# Training


def train(
    config: PPOConfig,
    out_dir: str,
    progress: Optional[Callable[[Dict[str, Any]], None]] = None,
) -> Optional[Dict[str, Any]]:
    """Train one seed of PPO as ``config`` says, writing under ``out_dir``;
    resume from the latest checkpoint there if there is one.

    Args:
        config: the run's hyperparameters (``config.seed`` included).
        out_dir: folder of this run (created if missing).
        progress: called after every iteration with a dict: ``steps``,
            ``total_steps``, ``episodes``, ``recent_return`` (mean of the last
            ``return_window`` episode returns, NaN before the first episode
            ends), ``steps_per_sec`` (of this session), ``resumed_from``
            (the iteration this session started at, 0 for a fresh run).

    Returns:
        On rank 0, the figures also written to ``out_dir/result.json``:
        ``seed``, ``env_id``, ``env_steps``, ``episodes``,
        ``final_recent_return``, ``steps_to_target`` (environment steps at
        the end of the first iteration where the recent return over a full
        window reached ``config.target_return``, or None), ``eval_returns``,
        ``eval_mean``, ``train_seconds`` (wall, all sessions),
        ``train_cpu_seconds`` (this process's CPU time, less sensitive to
        other load), ``eval_seconds``, ``resumed_from``. None on other ranks.

    Raises:
        ValueError: bad input (see ``check_inputs``), or a
            ``config.num_processes`` other than ``PerProcessContext``'s, before
            training starts.
    """
    check_inputs(config, out_dir)
    context = PerProcessContext()
    rank, world = max(context.ddp_rank, 0), context.num_processes
    if world != config.num_processes:
        raise ValueError(
            f"num_processes is {config.num_processes} but PerProcessContext says this "
            f"process is one of {world}"
        )
    if world > 1 and not dist.is_initialized():
        raise ValueError("num_processes > 1 needs an initialised torch.distributed process group")
    torch.set_num_threads(config.torch_threads)
    common.set_random_seed(config.seed)
    for name, value in (("percent", 0.0), ("iterations", 0), ("env_steps", 0)):
        schedulers.update_progress(name, value)
    alf.summary.reset_global_counter()
    lr_of = schedulers.LinearScheduler("percent", config.lr_schedule)
    clip_of = schedulers.LinearScheduler("percent", config.clip_schedule)

    num_envs = config.num_envs // world  # this rank's share
    envs = EnvGroup(config.env_id, num_envs, first_index=rank * num_envs)
    agent, normalizer, observation_spec, action_spec = _build_policy(
        config, envs.single_observation_space, envs.single_action_space
    )  # the same initial parameters on every rank (same seed)
    if world > 1:
        agent._ddp_activated_rank = rank  # the update runs under DDP
        if rank > 0:  # each rank samples its own actions
            torch.manual_seed(config.seed + 100_003 * rank)
    optimizer = torch.optim.Adam(
        agent.parameters(),
        lr=lr_of(),
        eps=config.adam_eps,
        fused=True,  # one kernel per step instead of one per parameter
    )
    # One buffer item = one step of this rank's environments; the ring keeps
    # the unroll_length + 1 latest steps: the last step of the previous unroll
    # (whose action starts this one) and the steps of this unroll.
    unroll = config.unroll_length
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
    in_time_order = torch.arange(unroll + 1)
    all_reduce = _all_reduce_sum if world > 1 else None
    action_offset = int(action_spec.minimum)
    state = TrainingState(config.return_window, num_envs)
    checkpointer = Checkpointer(
        ckpt_dir(out_dir, rank),
        agent=agent,
        optimizer=optimizer,
        normalizer=normalizer,
        rollout=rollout,
        envs=envs,
        state=state,
        max_to_keep=config.checkpoints_to_keep,
    )
    latest = _common_latest_step(checkpointer, world)
    resumed = latest >= 0
    if not resumed and checkpointer.checkpointed_steps():
        # a data-parallel rank's checkpoints of an attempt the others do not
        # share (rank 0's were removed): start this rank's folder afresh
        shutil.rmtree(checkpointer.ckpt_dir)
        os.makedirs(checkpointer.ckpt_dir)
    if resumed:
        checkpointer.load(latest)  # every item, the environments replayed
        alf.summary.set_global_counter(state.iteration)
        if not envs.replay_exact:
            common.warning(
                "%s: replaying the environments did not reproduce the checkpointed "
                "observations (an environment that is not deterministic given its seed "
                "and actions); training continues from the replayed state",
                out_dir,
            )
    resumed_from = state.iteration
    if rank == 0 and not resumed:
        write_json_atomically(os.path.join(out_dir, "config.json"), _config_dict(config))

    writer = None
    if rank == 0:
        train_dir = os.path.join(out_dir, "train")
        if resumed:  # drop what the interrupted session wrote after its checkpoint
            truncate_events(train_dir, state.iteration, state.env_steps)
        writer = alf.summary.create_summary_writer(train_dir, flush_secs=5)
        alf.summary.set_default_writer(writer)

    def observe(obs, step_type, reward, discount) -> None:
        """Act on one step of this rank's environments and store it; the
        environment actions go to ``state.next_action``."""
        raw = torch.from_numpy(obs)
        x = normalizer.normalize(raw, config.obs_clip) if config.normalize_observations else raw
        action, log_prob, value = agent.act(x)  # rollout mode: sampled
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
        state.next_action = action.numpy() + action_offset

    def run_unroll() -> List[Tuple[float, int]]:
        """``unroll`` steps of this rank's environments; returns the
        (return, length) of the episodes that ended, in order."""
        finished = []
        for _ in range(unroll):
            prev_last = envs.pending_reset
            obs, reward, terminated, truncated = envs.step(state.next_action)
            last = terminated | truncated
            step_type = np.where(prev_last, FIRST, np.where(last, LAST, MID))
            state.episode_return[prev_last] = 0.0
            state.episode_length[prev_last] = 0
            state.episode_return += reward
            state.episode_length += ~prev_last
            for i in np.flatnonzero(last):
                finished.append((float(state.episode_return[i]), int(state.episode_length[i])))
            observe(
                obs,
                step_type.astype(np.int32),
                reward.astype(np.float32),
                (~terminated).astype(np.float32),
            )
        return finished

    def save() -> None:
        if writer is not None:
            writer.flush()  # every summary up to the checkpoint is on disk
        state.train_seconds = seconds_before + (time.perf_counter() - session_start)
        state.train_cpu_seconds = cpu_before + (time.process_time() - session_cpu_start)
        checkpointer.save(state.iteration)

    # Summaries: scalars every summary_interval iterations, histograms and
    # norms every detail_summary_interval (steps: the global counter, which
    # counts iterations and starts each at 1).
    counter = alf.summary.get_global_counter()
    scalars_due = lambda: int(counter) % config.summary_interval == 0  # noqa: E731
    details_due = lambda: int(counter) % config.detail_summary_interval == 0  # noqa: E731
    # Checkpoints resume only at multiples of checkpoint_interval (or at the
    # end), so the count of this Periodically stays aligned with iterations.
    save_periodically = common.Periodically(save, config.checkpoint_interval, name="checkpoint")

    num_iterations = config.num_iterations
    total_steps = num_iterations * config.steps_per_iteration
    seconds_before, cpu_before = state.train_seconds, state.train_cpu_seconds
    steps_before = state.env_steps
    session_start, session_cpu_start = time.perf_counter(), time.process_time()
    try:
        if not resumed:
            obs = envs.reset(seed=config.seed)
            with common.rollout_context(), torch.no_grad():
                normalizer.update(_gather_envs(torch.from_numpy(obs), 0, world))
                observe(
                    obs,
                    np.full(num_envs, FIRST, np.int32),
                    np.zeros(num_envs, np.float32),
                    np.ones(num_envs, np.float32),
                )
        for iteration in range(state.iteration, num_iterations):
            schedulers.update_progress("percent", iteration / num_iterations)
            schedulers.update_progress("iterations", iteration)
            schedulers.update_progress("env_steps", state.env_steps)
            lr, clip_ratio = lr_of(), clip_of()
            for group in optimizer.param_groups:
                group["lr"] = lr
            alf.summary.increment_global_counter()
            with alf.summary.record_if(scalars_due):
                with common.rollout_context(), torch.no_grad():
                    with summary_utils.record_time("time/unroll"):
                        finished = _gather_list(run_unroll(), world)
                state.env_steps += config.steps_per_iteration
                state.episodes += len(finished)
                for episode_return, episode_length in finished:
                    state.recent_returns.append(episode_return)
                    state.recent_lengths.append(episode_length)

                exp = rollout.get_batch_by_indices(in_time_order)  # [unroll + 1, num_envs]
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
                with common.replay_context(), summary_utils.record_time("time/update"):
                    stats = ppo_update(agent, optimizer, batch, clip_ratio, config, all_reduce)
                # The statistics change once per unroll (one batched update):
                # the stored observations and log-probabilities stay
                # consistent, and acting costs a normalize() per step only.
                with torch.no_grad():
                    normalizer.update(_gather_envs(exp["raw_observation"][1:], 1, world))

                state.iteration = iteration + 1
                recent = float(np.mean(state.recent_returns)) if state.recent_returns else math.nan
                if (
                    state.steps_to_target is None
                    and len(state.recent_returns) == config.return_window
                    and recent >= config.target_return
                ):
                    state.steps_to_target = state.env_steps
                elapsed = time.perf_counter() - session_start
                rate = (state.env_steps - steps_before) / max(elapsed, 1e-9)
                _write_train_summaries(state, stats, lr, clip_ratio, rate)
                with alf.summary.record_if(details_due):
                    _write_detail_summaries(agent, exp, batch, action_spec, action_offset)
            if state.iteration == num_iterations:
                save()  # the last checkpoint: the finished networks
            else:
                save_periodically()
            if progress is not None:
                progress(
                    {
                        "steps": state.env_steps,
                        "total_steps": total_steps,
                        "episodes": state.episodes,
                        "recent_return": recent,
                        "steps_per_sec": rate,
                        "resumed_from": resumed_from,
                    }
                )
        train_seconds = seconds_before + (time.perf_counter() - session_start)
        train_cpu_seconds = cpu_before + (time.process_time() - session_cpu_start)
    finally:
        envs.close()
        if writer is not None:
            writer.close()
            alf.summary.set_default_writer(None)
    if rank != 0:
        return None

    eval_start = time.perf_counter()
    eval_seed = config.seed + 1_000_000
    eval_returns = evaluate(agent, normalizer, config, action_spec, seed=eval_seed)
    eval_dir = os.path.join(out_dir, "eval")
    shutil.rmtree(eval_dir, ignore_errors=True)  # an interrupted evaluation's events
    eval_writer = alf.summary.create_summary_writer(eval_dir)
    alf.summary.set_default_writer(eval_writer)
    try:
        eval_mean = float(np.mean(eval_returns))
        alf.summary.scalar("Metrics/AverageReturn", eval_mean)
        alf.summary.scalar(
            "Metrics_vs_EnvironmentSteps/AverageReturn", eval_mean, step=state.env_steps
        )
    finally:
        eval_writer.close()
        alf.summary.set_default_writer(None)
    result = {
        "seed": config.seed,
        "env_id": config.env_id,
        "env_steps": state.env_steps,
        "episodes": state.episodes,
        "final_recent_return": (
            float(np.mean(state.recent_returns)) if state.recent_returns else None
        ),
        "steps_to_target": state.steps_to_target,
        "eval_seed": eval_seed,
        "eval_returns": eval_returns,
        "eval_mean": eval_mean,
        "train_seconds": round(train_seconds, 2),
        "train_cpu_seconds": round(train_cpu_seconds, 2),
        "eval_seconds": round(time.perf_counter() - eval_start, 2),
        "resumed_from": resumed_from,
        "num_processes": world,
    }
    write_json_atomically(os.path.join(out_dir, "result.json"), result)
    return result


def _write_train_summaries(
    state: TrainingState, stats: Dict[str, float], lr: float, clip_ratio: float, rate: float
) -> None:
    """The scalars of one iteration (rank 0; nothing when not recording)."""
    if not alf.summary.should_record_summaries():
        return
    with alf.summary.scope("ppo"):
        # ppo/loss and ppo/loss/{policy_loss, value_loss, entropy}
        summary_utils.summarize_loss(
            LossInfo(
                loss=torch.tensor(stats["loss"]),
                extra={k: torch.tensor(stats[k]) for k in ("policy_loss", "value_loss", "entropy")},
            )
        )
        for name in ("approx_kl", "clip_fraction", "grad_norm"):
            alf.summary.scalar(name, stats[name])
        alf.summary.scalar("learning_rate", lr)
        alf.summary.scalar("clip_ratio", clip_ratio)
    alf.summary.scalar("Metrics/EnvironmentSteps", state.env_steps)
    alf.summary.scalar("Metrics/NumberOfEpisodes", state.episodes)
    alf.summary.scalar("speed/env_steps_per_sec", rate)
    if state.recent_returns:
        average_return = float(np.mean(state.recent_returns))
        average_length = float(np.mean(state.recent_lengths))
        alf.summary.scalar("Metrics/AverageReturn", average_return)
        alf.summary.scalar("Metrics/AverageEpisodeLength", average_length)
        alf.summary.scalar(
            "Metrics_vs_EnvironmentSteps/AverageReturn", average_return, step=state.env_steps
        )
        alf.summary.scalar(
            "Metrics_vs_EnvironmentSteps/AverageEpisodeLength",
            average_length,
            step=state.env_steps,
        )


def _write_detail_summaries(
    agent: ActorCritic,
    exp: Dict[str, torch.Tensor],
    batch: Dict[str, torch.Tensor],
    action_spec: BoundedTensorSpec,
    action_offset: int,
) -> None:
    """Histograms and norms (rank 0, every ``detail_summary_interval``)."""
    if not alf.summary.should_record_summaries():
        return
    params = list(agent.named_parameters())
    summary_utils.summarize_variables(params)  # summarize_vars/<name>_value(_norm)
    summary_utils.summarize_gradients(params)  # summarize_grads/<name>_gradient(_norm)
    # rollout/action/0: the environment actions of the unroll
    summary_utils.summarize_action(exp["action"][1:] + action_offset, action_spec, "rollout/action")
    summary_utils.add_mean_hist_summary("ppo/advantage", batch["advantage"])
    summary_utils.add_mean_hist_summary("ppo/value", batch["value"])
