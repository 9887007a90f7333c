"""What a checkpoint of the PPO example holds beside the networks:
``TrainingState`` (counters, episode statistics, random generator states,
scheduler progress) and ``truncate_events`` (TensorBoard events written after
the checkpoint a run resumes from are dropped, so resumed curves have no
duplicates).
"""

import collections
import glob
import os
import random
import struct
from typing import Any, Dict, List

import numpy as np
import torch
from tensorboard.compat.proto import event_pb2

from alf.utils import schedulers

__all__ = ["TrainingState", "truncate_events"]

ENV_STEPS_PREFIX = "Metrics_vs_EnvironmentSteps/"


def _python_rng_state() -> Dict[str, Any]:
    version, internal, gauss = random.getstate()
    return {
        "version": version,
        "internal": torch.tensor(internal, dtype=torch.int64),
        "gauss": gauss,
    }


def _set_python_rng_state(state: Dict[str, Any]) -> None:
    internal = tuple(int(v) for v in state["internal"].tolist())
    random.setstate((state["version"], internal, state["gauss"]))


def _numpy_rng_state() -> Dict[str, Any]:
    name, key, pos, has_gauss, gauss = np.random.get_state()
    return {
        "name": name,
        "key": torch.from_numpy(key.astype(np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "gauss": float(gauss),
    }


def _set_numpy_rng_state(state: Dict[str, Any]) -> None:
    key = state["key"].numpy().astype(np.uint32)
    np.random.set_state((state["name"], key, state["pos"], state["has_gauss"], state["gauss"]))


class TrainingState:
    """The counters of a run and this process's random generators, as one
    checkpoint item (``state_dict``/``load_state_dict``).

    Attributes:
        iteration (int): updates done.
        env_steps (int): environment steps taken (all processes together).
        episodes (int): episodes finished (all processes together).
        steps_to_target (int | None): ``env_steps`` when the recent return
            first reached the target.
        recent_returns, recent_lengths (deque): the last ``return_window``
            finished episodes.
        episode_return (float64 ``[E]``), episode_length (int64 ``[E]``): of
            the episodes in flight in this process's ``E`` environments.
        next_action (int64 ``[E]``): the environment actions chosen for the
            next step.
        train_seconds, train_cpu_seconds (float): spent training so far, over
            every session of the run.

    ``state_dict()`` also captures the states of torch's, NumPy's and
    Python's global random generators and the progress of
    ``alf.utils.schedulers`` (``"percent"``, ``"iterations"``,
    ``"env_steps"``, ``"global_counter"``); ``load_state_dict()`` restores
    them.
    """

    def __init__(self, return_window: int, num_envs: int):
        self.iteration = 0
        self.env_steps = 0
        self.episodes = 0
        self.steps_to_target = None
        self.recent_returns: collections.deque = collections.deque(maxlen=return_window)
        self.recent_lengths: collections.deque = collections.deque(maxlen=return_window)
        self.episode_return = np.zeros(num_envs)
        self.episode_length = np.zeros(num_envs, dtype=np.int64)
        self.next_action = np.zeros(num_envs, dtype=np.int64)
        self.train_seconds = 0.0
        self.train_cpu_seconds = 0.0

    def state_dict(self) -> Dict[str, Any]:
        """The counters and the random generators' current states."""
        return {
            "iteration": self.iteration,
            "env_steps": self.env_steps,
            "episodes": self.episodes,
            "steps_to_target": -1 if self.steps_to_target is None else self.steps_to_target,
            "recent_returns": torch.tensor(list(self.recent_returns), dtype=torch.float64),
            "recent_lengths": torch.tensor(list(self.recent_lengths), dtype=torch.int64),
            "episode_return": torch.from_numpy(self.episode_return.copy()),
            "episode_length": torch.from_numpy(self.episode_length.copy()),
            "next_action": torch.from_numpy(self.next_action.copy()),
            "train_seconds": self.train_seconds,
            "train_cpu_seconds": self.train_cpu_seconds,
            "progress": schedulers.get_all_progresses(),
            "rng_torch": torch.get_rng_state(),
            "rng_numpy": _numpy_rng_state(),
            "rng_python": _python_rng_state(),
        }

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore the counters, the scheduler progress (and with it
        ``alf.summary``'s global counter) and the random generators."""
        self.iteration = int(state["iteration"])
        self.env_steps = int(state["env_steps"])
        self.episodes = int(state["episodes"])
        target = int(state["steps_to_target"])
        self.steps_to_target = None if target < 0 else target
        self.recent_returns.clear()
        self.recent_returns.extend(state["recent_returns"].tolist())
        self.recent_lengths.clear()
        self.recent_lengths.extend(state["recent_lengths"].tolist())
        self.episode_return = state["episode_return"].numpy().copy()
        self.episode_length = state["episode_length"].numpy().copy()
        self.next_action = state["next_action"].numpy().copy()
        self.train_seconds = float(state["train_seconds"])
        self.train_cpu_seconds = float(state["train_cpu_seconds"])
        schedulers.update_all_progresses(state["progress"])
        torch.set_rng_state(state["rng_torch"])
        _set_numpy_rng_state(state["rng_numpy"])
        _set_python_rng_state(state["rng_python"])


def _records(data: bytes):
    """(offset, payload) of each complete TFRecord in ``data`` (the framing:
    u64 length, u32 CRC, payload, u32 CRC; CRCs are not checked)."""
    offset = 0
    while offset + 12 <= len(data):
        (length,) = struct.unpack_from("<Q", data, offset)
        end = offset + 12 + length + 4
        if end > len(data):
            return
        yield offset, data[offset + 12 : offset + 12 + length]
        offset = end


def _after_checkpoint(event: event_pb2.Event, global_step: int, env_steps: int) -> bool:
    """Whether ``event`` was written after the checkpoint: a summary of a
    later iteration (tags ``Metrics_vs_EnvironmentSteps/...`` are stepped
    by environment steps, the others by the global counter)."""
    if not event.HasField("summary") or not event.summary.value:
        return False
    tag = event.summary.value[0].tag
    limit = env_steps if tag.startswith(ENV_STEPS_PREFIX) else global_step
    return event.step > limit


def truncate_events(folder: str, global_step: int, env_steps: int) -> List[str]:
    """Cut the event files of ``folder`` at the first summary written after
    the checkpoint (``global_step``, ``env_steps``), and the cut-off last
    record a killed writer may have left.

    A run writes its summaries in iteration order and flushes them before
    each checkpoint, so everything after the cut belongs to iterations that
    the resumed run computes again. Files are only truncated (one
    ``os.truncate`` each), never rewritten.

    Returns:
        the paths of the files that were cut.
    """
    cut = []
    for path in sorted(glob.glob(os.path.join(folder, "events.out.tfevents.*"))):
        with open(path, "rb") as f:
            data = f.read()
        keep = 0
        for offset, payload in _records(data):
            event = event_pb2.Event()
            try:
                event.ParseFromString(payload)
            except Exception:  # a damaged record: cut there
                break
            if _after_checkpoint(event, global_step, env_steps):
                break
            keep = offset + 12 + len(payload) + 4
        if keep < len(data):
            os.truncate(path, keep)
            cut.append(path)
    return cut
