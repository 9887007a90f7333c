"""The environments of the PPO example: ``EnvGroup``, a few gymnasium
environments stepped in this process, whose state can be checkpointed.

Time steps follow ALF's convention (``alf.data_structures.StepType``): an
environment whose episode ended is reset on the *next* step (gymnasium's
``NEXT_STEP`` autoreset), so each one yields ``FIRST, MID, ..., LAST, FIRST,
...``; the step after ``LAST`` has reward 0 and ignores the action.

A gymnasium environment cannot hand out its internal state, but it is fully
determined by how its current episode began (the seed of ``reset`` or the
state of its random generator just before) and the actions taken since.
``EnvGroup.state_dict()`` stores exactly that, and ``load_state_dict()``
resets and replays, so a run resumed from a checkpoint continues the very
episodes that were in flight.
"""

import copy
from typing import Any, Dict, List, Optional, Tuple

import gymnasium as gym
import numpy as np
import torch

__all__ = ["EnvGroup"]


def _plain(value: Any) -> Any:
    """A random generator state with NumPy arrays and scalars turned into
    lists and Python numbers (what ``torch.load(weights_only=True)`` reads)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _restore_arrays(value: Any, like: Any) -> Any:
    """``value`` (from ``_plain``) with lists turned back into arrays where
    the generator's current state ``like`` holds arrays."""
    if isinstance(like, dict) and isinstance(value, dict):
        return {k: _restore_arrays(v, like.get(k)) for k, v in value.items()}
    if isinstance(like, np.ndarray):
        return np.asarray(value, dtype=like.dtype)
    return value


class EnvGroup:
    """``num_envs`` copies of a gymnasium environment stepped one after the
    other in this process, with ALF's time-step convention (see the module
    docstring).

    Args:
        env_id: a registered gymnasium id.
        num_envs: number of environments.
        first_index: global index of the first environment; environment ``i``
            is seeded ``seed + first_index + i`` by ``reset(seed)`` (a
            data-parallel rank runs a slice of the environments).
        render_mode: passed to ``gymnasium.make``.
    """

    def __init__(
        self, env_id: str, num_envs: int, first_index: int = 0, render_mode: Optional[str] = None
    ):
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive int; got {num_envs!r}")
        self.envs = [gym.make(env_id, render_mode=render_mode) for _ in range(num_envs)]
        self.num_envs = num_envs
        self.first_index = first_index
        self.single_observation_space = self.envs[0].observation_space
        self.single_action_space = self.envs[0].action_space
        # how each current episode began: {"seed": s} or {"rng": generator state}
        self._starts: List[Optional[Dict[str, Any]]] = [None] * num_envs
        self._actions: List[List[int]] = [[] for _ in range(num_envs)]
        self._pending_reset = np.zeros(num_envs, dtype=bool)
        self._observation: Optional[np.ndarray] = None
        self.replay_exact: Optional[bool] = None

    @property
    def pending_reset(self) -> np.ndarray:
        """bool ``[num_envs]``: whose episode ended on the last step (they
        reset on the next ``step``); a copy."""
        return self._pending_reset.copy()

    def _reset_one(self, i: int, seed: Optional[int] = None) -> np.ndarray:
        env = self.envs[i]
        if seed is None:
            start = {"rng": _plain(env.unwrapped.np_random.bit_generator.state)}
        else:
            start = {"seed": int(seed)}
        obs, _ = env.reset(seed=seed)
        self._starts[i] = start
        self._actions[i] = []
        return obs

    def reset(self, seed: int) -> np.ndarray:
        """Reset every environment (``i`` with ``seed + first_index + i``).

        Returns:
            observations ``[num_envs, D]`` (the space's dtype).
        """
        obs = [self._reset_one(i, seed + self.first_index + i) for i in range(self.num_envs)]
        self._pending_reset[:] = False
        self._observation = np.stack(obs)
        return self._observation

    def step(self, actions: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Step every environment with ``actions`` ``[num_envs]``; an
        environment whose episode ended on the previous step is reset instead
        (reward 0, not terminated, not truncated, action ignored).

        Returns:
            ``(observation [num_envs, D], reward float64 [num_envs],
            terminated bool [num_envs], truncated bool [num_envs])``.
        """
        n = self.num_envs
        obs = [None] * n
        reward = np.zeros(n, dtype=np.float64)
        terminated = np.zeros(n, dtype=bool)
        truncated = np.zeros(n, dtype=bool)
        for i, env in enumerate(self.envs):
            if self._pending_reset[i]:
                obs[i] = self._reset_one(i)
                self._pending_reset[i] = False
                continue
            action = actions[i].item()
            obs[i], reward[i], terminated[i], truncated[i], _ = env.step(action)
            self._actions[i].append(action)
            self._pending_reset[i] = terminated[i] or truncated[i]
        self._observation = np.stack(obs)
        return self._observation, reward, terminated, truncated

    def close(self) -> None:
        """Close every environment."""
        for env in self.envs:
            env.close()

    def state_dict(self) -> Dict[str, Any]:
        """How each current episode began, the actions since (int64, all
        environments concatenated, with their ``lengths``), which environments
        reset on the next step, and the latest observations (to check a
        replay). Before the first ``reset`` the starts are None and the
        observations zeros."""
        observation = self._observation
        if observation is None:
            space = self.single_observation_space
            observation = np.zeros((self.num_envs, *space.shape), space.dtype)
        return {
            "starts": copy.deepcopy(self._starts),
            "actions": torch.tensor([a for acts in self._actions for a in acts], dtype=torch.int64),
            "lengths": torch.tensor([len(acts) for acts in self._actions], dtype=torch.int64),
            "pending_reset": torch.from_numpy(self._pending_reset.copy()),
            "observation": torch.from_numpy(observation.copy()),
        }

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Bring every environment back to the state of ``state_dict()`` by
        resetting it as its episode began and replaying its actions.

        Sets ``replay_exact``: whether the replayed observations equal the
        saved ones (False for an environment that is not deterministic given
        its seed and actions; the run then continues from the replayed state).

        Raises:
            ValueError: ``state`` is for another number of environments.
        """
        starts, lengths = state["starts"], state["lengths"].tolist()
        if len(starts) != self.num_envs or len(lengths) != self.num_envs:
            raise ValueError(
                f"state holds {len(starts)} environments; this EnvGroup has {self.num_envs}"
            )
        actions = state["actions"].tolist()
        offsets = np.concatenate([[0], np.cumsum(lengths)]).tolist()
        obs = []
        for i, env in enumerate(self.envs):
            start = starts[i]
            if "seed" in start:
                o, _ = env.reset(seed=start["seed"])
            else:
                generator = env.unwrapped.np_random.bit_generator
                generator.state = _restore_arrays(start["rng"], generator.state)
                o, _ = env.reset()
            episode = actions[offsets[i] : offsets[i + 1]]
            for a in episode:
                o, *_ = env.step(a)
            self._starts[i] = copy.deepcopy(start)
            self._actions[i] = list(episode)
            obs.append(o)
        self._pending_reset = state["pending_reset"].numpy().copy()
        self._observation = np.stack(obs)
        self.replay_exact = bool(np.array_equal(self._observation, state["observation"].numpy()))
