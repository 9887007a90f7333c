"""Schedulers: values that change with the training progress.

A scheduler is a callable without arguments returning the value for the
current training progress. The progress lives in a per-process registry
that the trainer updates (``update_progress``); there are four progress
types:

* ``"percent"``: the fraction of training completed, in ``[0, 1]``;
* ``"iterations"``: the number of training iterations done;
* ``"env_steps"``: the number of environment steps taken;
* ``"global_counter"``: the value of ``alf.summary.get_global_counter()``.

Example::

    from alf.utils import schedulers

    lr = schedulers.LinearScheduler("percent", [(0, 1e-3), (0.5, 1e-4), (1.0, 1e-5)])
    schedulers.update_progress("percent", 0.25)
    lr()            # 5.5e-4

The scheduler classes are gin-configurable (``StepScheduler.schedule = ...``),
picklable (their state is their arguments) and have a ``repr`` that reads as
the call that made them.
"""

import bisect
import math
import numbers
from typing import Any, Callable, Dict, Sequence, Tuple, Union

import gin
import torch

import alf.summary
from alf.utils._train_checks import check_real

__all__ = [
    "ConstantScheduler",
    "CyclicalScheduler",
    "ExponentialScheduler",
    "LinearScheduler",
    "PROGRESS_TYPES",
    "Scheduler",
    "StepScheduler",
    "as_scheduler",
    "disallow_scheduler",
    "get_all_progresses",
    "get_progress",
    "update_all_progresses",
    "update_progress",
]

Number = Union[int, float]

#: The progress types a scheduler can follow, in the order they are listed in
#: error messages.
PROGRESS_TYPES: Tuple[str, ...] = ("percent", "iterations", "env_steps", "global_counter")

# "global_counter" is not stored here: it is read from (and written to) the
# global counter of ``alf.summary``, so that the two never disagree.
_progress: Dict[str, Number] = {"percent": 0.0, "iterations": 0, "env_steps": 0}
_scheduler_allowed = True


# --------------------------------------------------------------------------
# The progress registry


def _check_progress_type(progress_type: Any, name: str = "progress_type") -> str:
    if not isinstance(progress_type, str) or progress_type not in PROGRESS_TYPES:
        valid = ", ".join(repr(t) for t in PROGRESS_TYPES)
        raise ValueError(f"{name} must be one of {valid}; got {progress_type!r}")
    return progress_type


def _check_progress_value(progress_type: str, value: Any) -> Number:
    """``value`` as a Python int/float; ints stay ints."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(
                f"value for progress {progress_type!r} must be a scalar; "
                f"got a tensor of shape {tuple(value.shape)}"
            )
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"value for progress {progress_type!r} must be a real number; "
            f"got {type(value).__name__}"
        )
    if isinstance(value, numbers.Integral):
        value = int(value)
    else:
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"value for progress {progress_type!r} must be finite; got {value}")
    if progress_type == "global_counter" and not isinstance(value, int):
        if not value.is_integer():
            raise ValueError(f"value for progress 'global_counter' must be an integer; got {value}")
        value = int(value)
    return value


def update_progress(progress_type: str, value: Number) -> None:
    """Set the current progress of one type.

    Args:
        progress_type (str): one of ``"percent"``, ``"iterations"``,
            ``"env_steps"``, ``"global_counter"``. Setting
            ``"global_counter"`` sets ``alf.summary``'s global counter.
        value (int | float | 0-d Tensor): the progress; a finite real number
            (an integer for ``"global_counter"``).

    Raises:
        ValueError: unknown ``progress_type`` (the message lists the valid
            ones), or a non-finite ``value``.
        TypeError: ``value`` is not a real number.
    """
    _check_progress_type(progress_type)
    value = _check_progress_value(progress_type, value)
    if progress_type == "global_counter":
        alf.summary.set_global_counter(int(value))
    else:
        _progress[progress_type] = value


def update_all_progresses(progresses: Dict[str, Number]) -> None:
    """Set several progresses at once, e.g. in a child process from the
    ``get_all_progresses()`` of its parent.

    Every entry is checked before any is set, so bad input changes nothing.

    Args:
        progresses (dict[str, Number]): ``{progress_type: value}`` for any
            subset of the progress types.

    Raises:
        TypeError: ``progresses`` is not a dict, or a value is not a real number.
        ValueError: an unknown progress type or a non-finite value.
    """
    if not isinstance(progresses, dict):
        raise TypeError(f"progresses must be a dict; got {type(progresses).__name__}")
    checked = {}
    for progress_type, value in progresses.items():
        _check_progress_type(progress_type, "progresses key")
        checked[progress_type] = _check_progress_value(progress_type, value)
    for progress_type, value in checked.items():
        update_progress(progress_type, value)


def get_progress(progress_type: str) -> Number:
    """The current progress of type ``progress_type`` (for
    ``"global_counter"``, ``int(alf.summary.get_global_counter())``).

    Raises:
        ValueError: unknown ``progress_type`` (the message lists the valid ones).
    """
    _check_progress_type(progress_type)
    if progress_type == "global_counter":
        return int(alf.summary.get_global_counter())
    return _progress[progress_type]


def get_all_progresses() -> Dict[str, Number]:
    """A new dict ``{progress_type: value}`` holding every progress type
    (changing it does not change the registry)."""
    return {t: get_progress(t) for t in PROGRESS_TYPES}


def disallow_scheduler() -> None:
    """Forbid schedulers in this process: from now on ``Scheduler.progress()``
    (hence calling any progress-based scheduler) raises ``RuntimeError``.

    Meant for processes (e.g. environment workers) whose progress registry is
    not kept up to date, where a scheduled value would silently be wrong.
    ``ConstantScheduler`` keeps working.
    """
    global _scheduler_allowed
    _scheduler_allowed = False


# --------------------------------------------------------------------------
# Argument checks


def _check_real(value: Any, name: str) -> Any:
    """``value`` itself (ints stay ints, for the ``repr``), once checked finite."""
    check_real(value, name)
    return value


def _check_positive(value: Any, name: str) -> Number:
    check_real(value, name, 0, exclusive_minimum=True)
    return value


def _check_schedule(schedule: Any, name: str = "schedule") -> Tuple[Tuple[Number, ...], tuple]:
    """Split a schedule ``[(progress, value), ...]`` into its progresses and
    values; the progresses must be finite and non-decreasing."""
    if isinstance(schedule, (str, bytes)) or not isinstance(schedule, Sequence):
        raise TypeError(
            f"{name} must be a list of (progress, value) pairs; got {type(schedule).__name__}"
        )
    if len(schedule) == 0:
        raise ValueError(f"{name} must hold at least one (progress, value) pair; got []")
    progresses, values = [], []
    for i, pair in enumerate(schedule):
        if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise ValueError(f"{name}[{i}] must be a (progress, value) pair; got {pair!r}")
        progresses.append(_check_real(pair[0], f"{name}[{i}][0] (a progress)"))
        values.append(pair[1])
    for i in range(1, len(progresses)):
        if progresses[i] < progresses[i - 1]:
            raise ValueError(
                f"{name} must be sorted by progress (non-decreasing); "
                f"{name}[{i}][0]={progresses[i]!r} < {name}[{i - 1}][0]={progresses[i - 1]!r}"
            )
    return tuple(progresses), tuple(values)


def _format_schedule(progresses: Sequence[Number], values: Sequence[Any]) -> str:
    return "[" + ", ".join(f"({p!r}, {v!r})" for p, v in zip(progresses, values)) + "]"


# --------------------------------------------------------------------------
# Schedulers


class Scheduler:
    """Base class of the progress-based schedulers.

    A subclass implements ``__call__()`` using ``self.progress()``, the
    current progress of the type chosen at construction.

    Args:
        progress_type (str): one of ``"percent"``, ``"iterations"``,
            ``"env_steps"``, ``"global_counter"``.

    Raises:
        ValueError: unknown ``progress_type`` (the message lists the valid ones).
    """

    def __init__(self, progress_type: str):
        self._progress_type = _check_progress_type(progress_type)

    @property
    def progress_type(self) -> str:
        """The progress type this scheduler follows."""
        return self._progress_type

    def progress(self) -> Number:
        """The current progress of this scheduler's type.

        Raises:
            RuntimeError: ``disallow_scheduler()`` was called in this process.
        """
        if not _scheduler_allowed:
            raise RuntimeError(
                "schedulers are disallowed in this process (disallow_scheduler() was called): "
                "its training progress is not tracked"
            )
        return get_progress(self._progress_type)

    def __call__(self) -> Any:
        """The value for the current progress."""
        raise NotImplementedError(f"{type(self).__name__} must implement __call__")


@gin.configurable(module="alf.utils.schedulers")
class ConstantScheduler:
    """A scheduler that always returns ``value`` (whatever the progress,
    and even after ``disallow_scheduler()``).

    Args:
        value (Any): the value returned.
    """

    def __init__(self, value: Any):
        self._value = value

    def __call__(self) -> Any:
        """Returns ``value``."""
        return self._value

    def __repr__(self) -> str:
        return f"ConstantScheduler({self._value!r})"


@gin.configurable(module="alf.utils.schedulers")
class StepScheduler(Scheduler):
    """A piecewise-constant value, with an optional linear warm-up.

    With ``schedule = [(p_0, v_0), ..., (p_{n-1}, v_{n-1})]`` (``p``
    non-decreasing) and current progress ``x``:

    * ``x < start``: 0;
    * ``start <= x < start + warm_up_period``:
      ``v_0 * (x - start) / warm_up_period``;
    * otherwise ``v_i`` for the smallest ``i`` with ``p_i > x``, or
      ``v_{n-1}`` when ``x >= p_{n-1}``.

    So ``p_i`` is where the region of ``v_i`` ends.

    Args:
        progress_type (str): one of ``"percent"``, ``"iterations"``,
            ``"env_steps"``, ``"global_counter"``.
        schedule (list[tuple]): ``(progress, value)`` pairs sorted by progress.
        warm_up_period (Number): length (``>= 0``) of the linear ramp from 0
            to ``v_0`` that starts at ``start``.
        start (Number): before it the value is 0 (see ``warm_up_period``).

    Raises:
        ValueError: bad ``progress_type``, an empty or unsorted ``schedule``,
            a negative ``warm_up_period``.
        TypeError: ``schedule`` is not a list of pairs.
    """

    def __init__(
        self,
        progress_type: str,
        schedule: Sequence[Tuple[Number, Any]],
        warm_up_period: Number = 0,
        start: Number = 0,
    ):
        _check_real(warm_up_period, "warm_up_period")
        if warm_up_period < 0:
            raise ValueError(f"warm_up_period must be >= 0; got {warm_up_period!r}")
        _check_real(start, "start")
        progresses, values = _check_schedule(schedule)
        if warm_up_period > 0:
            _check_real(values[0], "schedule[0][1] (the value warmed up to)")
        super().__init__(progress_type)
        self._progresses = progresses
        self._values = values
        self._warm_up_period = warm_up_period
        self._start = start

    def __call__(self) -> Any:
        """The value for the current progress (see the class docstring)."""
        x = self.progress()
        if x < self._start:
            return 0
        if x < self._start + self._warm_up_period:
            return self._values[0] * (x - self._start) / self._warm_up_period
        i = bisect.bisect_right(self._progresses, x)
        return self._values[min(i, len(self._values) - 1)]

    def __repr__(self) -> str:
        extra = ""
        if self._warm_up_period != 0:
            extra += f", warm_up_period={self._warm_up_period!r}"
        if self._start != 0:
            extra += f", start={self._start!r}"
        return (
            f"StepScheduler({self._progress_type!r}, "
            f"{_format_schedule(self._progresses, self._values)}{extra})"
        )


@gin.configurable(module="alf.utils.schedulers")
class LinearScheduler(Scheduler):
    """A piecewise-linear value.

    With ``schedule = [(p_0, v_0), ..., (p_{n-1}, v_{n-1})]``, ``p_0 = 0``
    and ``p`` non-decreasing, the value at progress ``x`` with
    ``p_{i-1} <= x < p_i`` is the linear interpolation between ``v_{i-1}``
    and ``v_i``; for ``x >= p_{n-1}`` it is ``v_{n-1}`` (and ``v_0`` for
    ``x < 0``). This is ``numpy.interp(x, p, v)`` where the progresses are
    distinct; where two are equal the value jumps, and the later pair holds
    at the jump.

    Args:
        progress_type (str): one of ``"percent"``, ``"iterations"``,
            ``"env_steps"``, ``"global_counter"``.
        schedule (list[tuple]): ``(progress, value)`` pairs, progress
            starting at 0 and non-decreasing, values real numbers.

    Raises:
        ValueError: bad ``progress_type``, an empty or unsorted ``schedule``,
            ``schedule[0][0] != 0``.
        TypeError: ``schedule`` is not a list of pairs of numbers.
    """

    def __init__(self, progress_type: str, schedule: Sequence[Tuple[Number, Number]]):
        progresses, values = _check_schedule(schedule)
        if progresses[0] != 0:
            raise ValueError(
                f"schedule[0][0] (the first progress) must be 0; got {progresses[0]!r}"
            )
        for i, v in enumerate(values):
            _check_real(v, f"schedule[{i}][1] (a value)")
        super().__init__(progress_type)
        self._progresses = progresses
        self._values = values

    def __call__(self) -> float:
        """The value for the current progress (see the class docstring)."""
        x = self.progress()
        i = bisect.bisect_right(self._progresses, x)
        if i == len(self._progresses):
            return self._values[-1]
        if i == 0:
            return self._values[0]
        p0, p1 = self._progresses[i - 1], self._progresses[i]
        w = (x - p0) / (p1 - p0)  # p0 <= x < p1, so p0 < p1
        return (1 - w) * self._values[i - 1] + w * self._values[i]

    def __repr__(self) -> str:
        return (
            f"LinearScheduler({self._progress_type!r}, "
            f"{_format_schedule(self._progresses, self._values)})"
        )


@gin.configurable(module="alf.utils.schedulers")
class ExponentialScheduler(Scheduler):
    """An exponentially decaying value:
    ``initial_value * decay_rate ** (progress / decay_time)``.

    Args:
        progress_type (str): one of ``"percent"``, ``"iterations"``,
            ``"env_steps"``, ``"global_counter"``.
        initial_value (float): the value at progress 0.
        decay_rate (float): the factor (``> 0``) applied every ``decay_time``.
        decay_time (float): the progress (``> 0``) over which the value is
            multiplied by ``decay_rate``.

    Raises:
        ValueError: bad ``progress_type``, ``decay_rate <= 0`` or
            ``decay_time <= 0``.
        TypeError: a non-numeric argument.
    """

    def __init__(
        self, progress_type: str, initial_value: float, decay_rate: float, decay_time: float
    ):
        _check_real(initial_value, "initial_value")
        _check_positive(decay_rate, "decay_rate")
        _check_positive(decay_time, "decay_time")
        super().__init__(progress_type)
        self._initial_value = initial_value
        self._decay_rate = decay_rate
        self._decay_time = decay_time

    def __call__(self) -> float:
        """The value for the current progress (see the class docstring)."""
        return self._initial_value * self._decay_rate ** (self.progress() / self._decay_time)

    def __repr__(self) -> str:
        return (
            f"ExponentialScheduler({self._progress_type!r}, initial_value={self._initial_value!r}, "
            f"decay_rate={self._decay_rate!r}, decay_time={self._decay_time!r})"
        )


_SWITCH_MODES = ("step", "linear")


@gin.configurable(module="alf.utils.schedulers")
class CyclicalScheduler(Scheduler):
    """A value cycling between ``base_lr`` and ``bound_lr`` (Smith,
    *Cyclical Learning Rates for Training Neural Networks*, 2017).

    A cycle lasts ``2 * half_cycle_size``. With ``h = half_cycle_size`` and
    ``r = (x mod 2h) / h`` the position in the cycle (in ``[0, 2)``) at
    progress ``x``, the value is ``base_lr + (bound_lr - base_lr) * f`` with

    * ``switch_mode="step"``: ``f = 0`` for ``r < 1``, ``f = 1`` for ``r >= 1``
      (exactly ``base_lr`` for the first half of each cycle, exactly
      ``bound_lr`` for the second: with ``h = 1`` on iterations, a value for
      even and one for odd iterations);
    * ``switch_mode="linear"``: ``f = 1 - |r - 1|`` (the triangle: from
      ``base_lr`` up to ``bound_lr`` at mid-cycle and back).

    ``bound_lr`` may be larger or smaller than ``base_lr``.

    Args:
        progress_type (str): one of ``"percent"``, ``"iterations"``,
            ``"env_steps"``, ``"global_counter"``.
        base_lr (float): the value at the start of each cycle.
        bound_lr (float): the value at the other bound.
        half_cycle_size (int | float): length (``> 0``) of half a cycle, in
            units of the progress type.
        switch_mode (str): ``"step"`` or ``"linear"``.

    Raises:
        ValueError: bad ``progress_type``, ``half_cycle_size <= 0`` or an
            unknown ``switch_mode``.
        TypeError: a non-numeric ``base_lr``/``bound_lr``/``half_cycle_size``.
    """

    def __init__(
        self,
        progress_type: str,
        base_lr: float,
        bound_lr: float,
        half_cycle_size: Number,
        switch_mode: str = "step",
    ):
        _check_real(base_lr, "base_lr")
        _check_real(bound_lr, "bound_lr")
        _check_positive(half_cycle_size, "half_cycle_size")
        if switch_mode not in _SWITCH_MODES:
            raise ValueError(f"switch_mode must be 'step' or 'linear'; got {switch_mode!r}")
        super().__init__(progress_type)
        self._base_lr = base_lr
        self._bound_lr = bound_lr
        self._half_cycle_size = half_cycle_size
        self._switch_mode = switch_mode

    def __call__(self) -> float:
        """The value for the current progress (see the class docstring)."""
        x = self.progress()
        h = self._half_cycle_size
        # The position in the cycle in units of h, in [0, 2). Integer
        # arithmetic where both are ints keeps step switching exact.
        if isinstance(x, int) and isinstance(h, int):
            q, rem = divmod(x % (2 * h), h)
            r = q + rem / h
        else:
            r = math.fmod(x, 2 * h)
            if r < 0:
                r += 2 * h
            r = r / h
        if self._switch_mode == "step":
            # the bounds themselves, exactly (no rounding of base + diff)
            return self._bound_lr if r >= 1 else self._base_lr
        f = 1.0 - abs(r - 1.0)
        return self._base_lr + (self._bound_lr - self._base_lr) * f

    def __repr__(self) -> str:
        return (
            f"CyclicalScheduler({self._progress_type!r}, base_lr={self._base_lr!r}, "
            f"bound_lr={self._bound_lr!r}, half_cycle_size={self._half_cycle_size!r}, "
            f"switch_mode={self._switch_mode!r})"
        )


def as_scheduler(value_or_scheduler: Union[Any, Callable[[], Any]]) -> Callable[[], Any]:
    """``value_or_scheduler`` itself if it is callable (a scheduler),
    otherwise ``ConstantScheduler(value_or_scheduler)``."""
    if callable(value_or_scheduler):
        return value_or_scheduler
    return ConstantScheduler(value_or_scheduler)
