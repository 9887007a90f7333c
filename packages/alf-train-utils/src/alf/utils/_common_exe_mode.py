"""Execution modes of ``alf.utils.common``: whether the running code is
rolling out, replaying, evaluating, pre-training or something else.

The mode is one process-wide value (as in ALF), changed by the
``*_context`` context managers and the ``mark_*`` decorators; both nest
and restore the previous mode on exit, exceptions included.
"""

import functools
from typing import Any, Callable, List, TypeVar, cast

__all__ = [
    "EXE_MODE_EVAL",
    "EXE_MODE_OTHER",
    "EXE_MODE_PRETRAIN",
    "EXE_MODE_REPLAY",
    "EXE_MODE_ROLLOUT",
    "eval_context",
    "exe_mode_name",
    "is_eval",
    "is_pretrain",
    "is_replay",
    "is_rollout",
    "mark_eval",
    "mark_pretrain",
    "mark_replay",
    "mark_rollout",
    "pretrain_context",
    "replay_context",
    "rollout_context",
    "set_exe_mode",
]


#: Collecting experience (``unroll()`` of the root algorithm).
EXE_MODE_ROLLOUT = 0
#: Training from replayed experience (``train_from_replay_buffer()``).
EXE_MODE_REPLAY = 1
#: None of the others (the mode outside every context).
EXE_MODE_OTHER = 2
#: Evaluation, or playing a learned model.
EXE_MODE_EVAL = 3
#: Pre-training.
EXE_MODE_PRETRAIN = 4

_EXE_MODE_NAMES = ("rollout", "replay", "other", "eval", "pretrain")

_exe_mode = EXE_MODE_OTHER

F = TypeVar("F", bound=Callable[..., Any])


def set_exe_mode(mode: int) -> int:
    """Set the execution mode; functions may behave differently by mode.

    Args:
        mode (int): one of ``EXE_MODE_ROLLOUT`` (0), ``EXE_MODE_REPLAY`` (1),
            ``EXE_MODE_OTHER`` (2), ``EXE_MODE_EVAL`` (3),
            ``EXE_MODE_PRETRAIN`` (4).

    Returns:
        int: the previous mode.

    Raises:
        ValueError: ``mode`` is not one of these.
    """
    global _exe_mode
    if isinstance(mode, bool) or not isinstance(mode, int) or not 0 <= mode < len(_EXE_MODE_NAMES):
        raise ValueError(
            f"mode must be one of EXE_MODE_ROLLOUT=0, EXE_MODE_REPLAY=1, EXE_MODE_OTHER=2, "
            f"EXE_MODE_EVAL=3, EXE_MODE_PRETRAIN=4; got {mode!r}"
        )
    old = _exe_mode
    _exe_mode = int(mode)
    return old


def exe_mode_name() -> str:
    """The execution mode as a string: ``"rollout"``, ``"replay"``,
    ``"other"``, ``"eval"`` or ``"pretrain"``."""
    return _EXE_MODE_NAMES[_exe_mode]


def is_rollout() -> bool:
    """Whether the code runs in the rollout (unroll) phase, where experience
    is collected. For on-policy algorithms this is also where the training
    info for the loss is computed."""
    return _exe_mode == EXE_MODE_ROLLOUT


def is_replay() -> bool:
    """Whether the code runs in the replay phase (off-policy training: from
    sampling the replay buffer to the parameter update)."""
    return _exe_mode == EXE_MODE_REPLAY


def is_eval() -> bool:
    """Whether the code runs in evaluation, or in playing a learned model."""
    return _exe_mode == EXE_MODE_EVAL


def is_pretrain() -> bool:
    """Whether the code runs in pre-training (inside a function decorated by
    ``mark_pretrain`` or a ``pretrain_context``)."""
    return _exe_mode == EXE_MODE_PRETRAIN


class _ExeModeContext:
    """Sets ``_MODE`` on entry and restores the previous mode on exit; one
    instance may be entered several times, nested."""

    _MODE = EXE_MODE_OTHER

    def __init__(self) -> None:
        self._saved: List[int] = []

    def __enter__(self) -> "_ExeModeContext":
        self._saved.append(set_exe_mode(self._MODE))
        return self

    def __exit__(self, *exc: Any) -> None:
        set_exe_mode(self._saved.pop())


class rollout_context(_ExeModeContext):
    """A context manager: the execution mode is ``EXE_MODE_ROLLOUT`` inside,
    the previous mode again after it (also when an exception leaves it)."""

    _MODE = EXE_MODE_ROLLOUT


class replay_context(_ExeModeContext):
    """A context manager: the execution mode is ``EXE_MODE_REPLAY`` inside,
    the previous mode again after it (also when an exception leaves it)."""

    _MODE = EXE_MODE_REPLAY


class eval_context(_ExeModeContext):
    """A context manager: the execution mode is ``EXE_MODE_EVAL`` inside,
    the previous mode again after it (also when an exception leaves it)."""

    _MODE = EXE_MODE_EVAL


class pretrain_context(_ExeModeContext):
    """A context manager: the execution mode is ``EXE_MODE_PRETRAIN``
    inside, the previous mode again after it (also when an exception leaves
    it)."""

    _MODE = EXE_MODE_PRETRAIN


def _marker(mode: int, func: Callable, decorator: str) -> Callable:
    if not callable(func):
        raise TypeError(f"{decorator} decorates a callable; got {func!r}")

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        old = set_exe_mode(mode)
        try:
            return func(*args, **kwargs)
        finally:
            set_exe_mode(old)

    return wrapper


def mark_rollout(func: F) -> F:
    """Decorator: ``func`` runs in ``EXE_MODE_ROLLOUT``; the previous mode
    is restored when it returns or raises.

    Args:
        func (Callable): a function.
    """
    return cast(F, _marker(EXE_MODE_ROLLOUT, func, "mark_rollout"))


def mark_replay(func: F) -> F:
    """Decorator: ``func`` runs in ``EXE_MODE_REPLAY`` (experience replay);
    the previous mode is restored when it returns or raises.

    Args:
        func (Callable): a function.
    """
    return cast(F, _marker(EXE_MODE_REPLAY, func, "mark_replay"))


def mark_eval(func: F) -> F:
    """Decorator: ``func`` runs in ``EXE_MODE_EVAL`` (evaluation/test); the
    previous mode is restored when it returns or raises.

    Args:
        func (Callable): a function.
    """
    return cast(F, _marker(EXE_MODE_EVAL, func, "mark_eval"))


def mark_pretrain(func: F) -> F:
    """Decorator: ``func`` runs in ``EXE_MODE_PRETRAIN``; the previous mode
    is restored when it returns or raises.

    Args:
        func (Callable): a function.
    """
    return cast(F, _marker(EXE_MODE_PRETRAIN, func, "mark_pretrain"))
