"""Mean curves with confidence bands from TensorBoard event files, and their plots.

A ``MeanCurveReader`` reads one scalar tag from several runs (TensorBoard
directories) of one method on one task, smooths each run, interpolates the runs
onto common x steps and reduces them to a ``MeanCurve`` (mean and band).  A
``MeanCurveGroupReader`` averages such curves over tasks, and a
``CurvesPlotter`` draws several methods in one figure.

Reading does not need TensorFlow nor torch: event files are parsed with
tensorboard's protos by a fast reader that returns the same points as
tensorboard's ``EventAccumulator`` with every point kept (see
``alf.utils._plot_tb_events`` for the exact rules).

Example::

    from alf.utils.plot_tb_curves import (CurvesPlotter,
                                          EnvironmentStepsReturnReader)
    sac = EnvironmentStepsReturnReader(["runs/sac/1/eval", "runs/sac/2/eval"],
                                       name="SAC", smoothing=0.6)
    ppo = EnvironmentStepsReturnReader(["runs/ppo/1/eval", "runs/ppo/2/eval"],
                                       name="PPO", interval_mode="CI_95")
    CurvesPlotter([sac(), ppo()], x_label=sac.x_label,
                  y_label=sac.y_label).plot("return.png")
"""

import numbers
import os
from typing import Any, Optional

import numpy as np

from alf.utils._plot_tb_plotter import CurvesPlotter
from alf.utils._plot_tb_stats import MeanCurve, check_interval_mode, ema_smooth

__all__ = [
    "CurvesPlotter",
    "EnvironmentStepsReturnReader",
    "EnvironmentStepsSuccessReader",
    "IterationsReturnReader",
    "IterationsSuccessReader",
    "MeanCurve",
    "MeanCurveGroupReader",
    "MeanCurveReader",
    "ema_smooth",
]

# Savitzky-Golay smoothing fits a local polynomial of this order.
_SAVGOL_POLYORDER = 1


def _is_integral(value: Any) -> bool:
    """Whether ``value`` is an int (or a NumPy integer), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_smoothing(smoothing):
    if smoothing is None:
        return
    if isinstance(smoothing, bool):
        raise TypeError(f"smoothing must be None, an int or a float; got {smoothing!r}")
    if isinstance(smoothing, (int, np.integer)):
        if smoothing < 1:
            raise ValueError(f"smoothing as an int is a window width >= 1; got {smoothing}")
    elif isinstance(smoothing, (float, np.floating)):
        if not 0 <= smoothing < 1:
            raise ValueError(f"smoothing as a float is an EMA weight in [0, 1); got {smoothing}")
    else:
        raise TypeError(
            f"smoothing must be None, an int or a float; got {type(smoothing).__name__}"
        )


def _check_x_steps(x_steps):
    """``x_steps`` as a float64 array ``[L]``: finite numbers, strictly increasing."""
    try:
        steps = np.asarray(x_steps, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"x_steps must be a list of numbers; got {x_steps!r}") from None
    if (
        steps.ndim != 1
        or len(steps) == 0
        or not np.all(np.isfinite(steps))
        or np.any(np.diff(steps) <= 0)
    ):
        raise ValueError(
            f"x_steps must be a non-empty increasing 1-D list of finite numbers; "
            f"got {steps.tolist()!r}"
        )
    return steps


def _smooth(values, smoothing):
    """Smooth one run's values (shape ``[P]``) as ``MeanCurveReader`` documents."""
    if smoothing is None:
        return values
    if isinstance(smoothing, (float, np.floating)):
        return ema_smooth(values, weight=float(smoothing))
    # An even width has no middle point: scipy then evaluates each fit half a
    # step off its point, shifting the curve; widen it by one to stay centered.
    # A window covering the whole run (any parity) is one line fit of the run.
    window = int(smoothing)
    window = min(window + (window % 2 == 0), len(values))
    if window <= _SAVGOL_POLYORDER:
        return values
    from scipy.signal import savgol_filter

    return savgol_filter(values, window, _SAVGOL_POLYORDER, mode="interp")


def _ordered_unique(steps, values):
    """Points sorted by step; of points sharing a step the last written is kept."""
    order = np.argsort(steps, kind="stable")
    steps, values = steps[order], values[order]
    last = np.append(steps[1:] != steps[:-1], True)
    return steps[last], values[last]


def _run_names(event_file):
    if isinstance(event_file, (str, os.PathLike)):
        return [os.fspath(event_file)]
    if isinstance(event_file, (list, tuple)) and event_file:
        for i, path in enumerate(event_file):
            if not isinstance(path, (str, os.PathLike)):
                raise TypeError(f"event_file[{i}] must be a path string; got {type(path).__name__}")
        return [os.fspath(p) for p in event_file]
    raise TypeError(f"event_file must be a path or a non-empty list of paths; got {event_file!r}")


class MeanCurveReader:
    """Read and compute a ``MeanCurve`` from one or multiple TB event files.
    A ``MeanCurveReader`` is suitable for one method on one task with
    multiple runs.

    Each run's points are sorted by step (of points sharing a step, the last
    written is kept), smoothed, then linearly interpolated onto the common x
    steps, and the runs are reduced by ``MeanCurve.from_curves``.  Calling the
    reader returns that ``MeanCurve``.

    Args:
        event_file (str|list[str]): a string or a list of strings where each
            should point to a valid TB dir, e.g., ending with "eval/" or
            "train/" (or to one event file).  Each is one run; the curves of
            these runs will be averaged.  It's the user's responsibility to
            ensure that it's meaningful to group these event files and show
            their mean and variance.
        x_steps (list[int]): we support merging curves that have different
            x into a ``MeanCurve``.  For example, if there are three curves
            with x in (1, 9), (0, 10) and (0, 8), then the merged
            ``MeanCurve`` will have (1, 8) as the final x range, and each
            curve's y values are interpolated onto common steps in that range:
            the steps, within the range, of the run with the most steps there
            (the first such run on a tie).  Alternatively, ``x_steps`` gives
            the steps to interpolate onto: finite, strictly increasing, and
            inside every run's x range.
        name (str): name of the mean curve.
        smoothing (int | float): if None, no smoothing is applied; if int,
            it's the window width of a Savitzky-Golay filter (local linear
            fit, ``scipy.signal.savgol_filter(y, w, 1, mode="interp")``; an
            even width ``w`` is widened to ``w + 1`` so that each point's
            window is centered on it, and the window is shortened to the
            run's length); if float in ``[0, 1)``,
            it's the smoothing weight of a running average (TensorBoard's
            debiased EMA, ``ema_smooth(y, weight=smoothing)``; higher ->
            smoother).  Each run is smoothed over its own points before
            interpolation.
        interval_mode (str): ``"std"``, ``"minmax"`` or ``"CI_X"``, a
            confidence interval where X is one of (80, 85, 90, 95, 99)
            (Student's t, see ``MeanCurve.from_curves``).
        tag (str): the scalar tag to read; the four subclasses set it.
        x_label (str): the x axis label (default ``"Steps"``).
        y_label (str): the y axis label (default: the tag).
        workers (int): worker processes for reading; None reads several
            large runs in parallel (one process per CPU), 1 reads here.
        verify_crc (bool): check the CRCs of the event records (the
            default): a damaged record is skipped with a ``RuntimeWarning``
            naming its file and byte offset, and a corrupted length field
            ends its file with a warning.  ``False`` reads a little faster
            but takes a damaged value that still parses as it is.
        progress (callable): called as ``progress(runs_done, runs_total)``
            while reading.

    Raises:
        ValueError: for a path without event files, a tag that a run lacks
            (the message lists the run's scalar tags), runs whose x ranges
            do not overlap, ``x_steps`` outside a run's range, or an unknown
            ``interval_mode``; ``TypeError`` for arguments of the wrong type.
    """

    _TAG: Optional[str] = None
    _X_LABEL = "Steps"
    _Y_LABEL: Optional[str] = None

    def __init__(
        self,
        event_file,
        x_steps=None,
        name="MeanCurveReader",
        smoothing=None,
        interval_mode="std",
        *,
        tag=None,
        x_label=None,
        y_label=None,
        workers=None,
        verify_crc=True,
        progress=None,
    ):
        from alf.utils import _plot_tb_events as events

        runs = _run_names(event_file)
        tag = tag if tag is not None else self._TAG
        if not isinstance(tag, str) or not tag:
            raise ValueError(
                f"tag must be a non-empty string (MeanCurveReader needs tag=...; its "
                f"subclasses set one); got {tag!r}"
            )
        if x_steps is not None:
            x_steps = _check_x_steps(x_steps)
        _check_smoothing(smoothing)
        check_interval_mode(interval_mode)
        if workers is not None and (not _is_integral(workers) or workers < 1):
            raise ValueError(f"workers must be None or an int >= 1; got {workers!r}")

        self._name = name
        self._tag = tag
        self._x_label = x_label if x_label is not None else self._X_LABEL
        self._y_label = y_label if y_label is not None else (self._Y_LABEL or tag)

        files = [events.list_event_files(run) for run in runs]
        raw = events.read_runs(files, tag, workers, verify_crc, progress)
        missing = [i for i, (steps, _) in enumerate(raw) if len(steps) == 0]
        if missing:
            first = missing[0]
            known = events.scalar_tags(files[first])
            shown = ", ".join(known[:20]) + (", ..." if len(known) > 20 else "")
            which = (
                "any of the runs"
                if len(missing) == len(runs)
                else f"{len(missing)} of {len(runs)} runs"
            )
            raise ValueError(
                f"tag {tag!r} not found in {which}: "
                f"{', '.join(runs[i] for i in missing[:5])}{' ...' if len(missing) > 5 else ''}"
                f" (scalar tags in {runs[first]}: {shown or 'none'})"
            )
        curves = [_ordered_unique(steps, values) for steps, values in raw]
        curves = [
            (steps.astype(np.float64), _smooth(values, smoothing)) for steps, values in curves
        ]
        x = self._common_x(runs, curves, x_steps)
        ys = [np.interp(x, steps, values) for steps, values in curves]
        self._mean_curve = MeanCurve.from_curves(x, ys, interval_mode, name)

    @staticmethod
    def _common_x(runs, curves, x_steps):
        ranges = [(s[0], s[-1]) for s, _ in curves]
        lo = max(r[0] for r in ranges)
        hi = min(r[1] for r in ranges)
        if x_steps is not None:
            for run, (a, b) in zip(runs, ranges):
                if x_steps[0] < a or x_steps[-1] > b:
                    raise ValueError(
                        f"x_steps [{x_steps[0]:g}, {x_steps[-1]:g}] reach outside the x range "
                        f"[{a:g}, {b:g}] of run {run}"
                    )
            return x_steps
        if lo > hi:
            detail = "; ".join(f"{run}: [{a:g}, {b:g}]" for run, (a, b) in zip(runs, ranges))
            raise ValueError(f"the x ranges of the runs do not overlap: {detail}")
        inside = [s[(s >= lo) & (s <= hi)] for s, _ in curves]
        return max(inside, key=len)

    def __call__(self):
        """The ``MeanCurve`` of the runs."""
        return self._mean_curve

    @property
    def name(self):
        """Name of the mean curve."""
        return self._name

    @property
    def x_label(self):
        """Label of the x axis."""
        return self._x_label

    @property
    def y_label(self):
        """Label of the y axis."""
        return self._y_label


class EnvironmentStepsReturnReader(MeanCurveReader):
    """Create a mean curve reader that reads AverageReturn values against
    environment steps (tag ``Metrics_vs_EnvironmentSteps/AverageReturn``).
    Arguments as ``MeanCurveReader``."""

    _TAG = "Metrics_vs_EnvironmentSteps/AverageReturn"
    _X_LABEL = "Environment Steps"
    _Y_LABEL = "Average Episodic Return"


class EnvironmentStepsSuccessReader(MeanCurveReader):
    """Create a mean curve reader that reads Success rates against environment
    steps (tag ``Metrics_vs_EnvironmentSteps/AverageEnvInfo/success``).
    Arguments as ``MeanCurveReader``."""

    _TAG = "Metrics_vs_EnvironmentSteps/AverageEnvInfo/success"
    _X_LABEL = "Environment Steps"
    _Y_LABEL = "Success Rate"


class IterationsReturnReader(MeanCurveReader):
    """Create a mean curve reader that reads AverageReturn values against
    training iterations (tag ``Metrics/AverageReturn``).
    Arguments as ``MeanCurveReader``."""

    _TAG = "Metrics/AverageReturn"
    _X_LABEL = "Training Iterations"
    _Y_LABEL = "Average Episodic Return"


class IterationsSuccessReader(MeanCurveReader):
    """Create a mean curve reader that reads Success rates against training
    iterations (tag ``Metrics/AverageEnvInfo/success``).
    Arguments as ``MeanCurveReader``."""

    _TAG = "Metrics/AverageEnvInfo/success"
    _X_LABEL = "Training Iterations"
    _Y_LABEL = "Success Rate"


class MeanCurveGroupReader:
    """Group several ``MeanCurveReader`` results: one method on multiple
    tasks, each task with multiple runs.

    To aggregate across tasks, each task may be given a performance range
    ``(y0, y1)`` that normalizes its statistics as ``(y - y0) / (y1 - y0)``
    (applied to ``y``, ``min_y``, ``max_y``, ``ay``, ``min_ay``, ``max_ay``;
    a band is re-ordered if ``y1 < y0``).  If the ranges are not provided, no
    normalization is done.  The aggregation is simply averaging the
    statistics of the individual ``MeanCurve``s, which must share the same x
    steps (give the readers the same ``x_steps``).  Calling the group reader
    returns the aggregated ``MeanCurve``.

    Args:
        mean_curve_readers (list[MeanCurveReader]): one reader per task for
            one method.  It's the user's responsibility to ensure that it's
            meaningful to group these tasks.
        task_performance_ranges (list[tuple(float)]): one ``(y0, y1)`` pair
            per reader, finite, ``y0 != y1``.  If None, no normalization.
        name (str): name of the method.
    """

    def __init__(
        self, mean_curve_readers, task_performance_ranges=None, name="MeanCurveGroupReader"
    ):
        readers = (
            list(mean_curve_readers) if isinstance(mean_curve_readers, (list, tuple)) else None
        )
        if not readers:
            raise ValueError(
                f"mean_curve_readers must be a non-empty list of MeanCurveReader; got "
                f"{mean_curve_readers!r}"
            )
        for i, reader in enumerate(readers):
            if not isinstance(reader, MeanCurveReader):
                raise TypeError(
                    f"mean_curve_readers[{i}] must be a MeanCurveReader; got {type(reader).__name__}"
                )
        ranges = None
        if task_performance_ranges is not None:
            ranges = list(task_performance_ranges)
            if len(ranges) != len(readers):
                raise ValueError(
                    f"task_performance_ranges must give one (y0, y1) per reader "
                    f"({len(readers)}); got {len(ranges)}"
                )
            for i, pair in enumerate(ranges):
                try:
                    y0, y1 = (float(v) for v in pair)
                except (TypeError, ValueError):
                    raise ValueError(
                        f"task_performance_ranges[{i}] must be a pair (y0, y1); got {pair!r}"
                    ) from None
                if not (np.isfinite(y0) and np.isfinite(y1)):
                    raise ValueError(
                        f"task_performance_ranges[{i}] must be finite numbers; got {pair!r}"
                    )
                if y0 == y1:
                    raise ValueError(
                        f"task_performance_ranges[{i}] must have y0 != y1; got {pair!r}"
                    )
                ranges[i] = (y0, y1)
        curves = [reader() for reader in readers]
        x = curves[0].x
        for reader, curve in zip(readers[1:], curves[1:]):
            if curve.x.shape != x.shape or not np.allclose(curve.x, x):
                raise ValueError(
                    f"the readers' curves must share x steps to be averaged: {readers[0].name!r} "
                    f"has {len(x)} steps in [{x[0]:g}, {x[-1]:g}], {reader.name!r} has "
                    f"{len(curve.x)} in [{curve.x[0]:g}, {curve.x[-1]:g}] (pass the same x_steps)"
                )
        if ranges is not None:
            curves = [_normalize(c, y0, y1) for c, (y0, y1) in zip(curves, ranges)]
        fields = {
            f: np.mean([getattr(c, f) for c in curves], axis=0)
            for f in ("y", "min_y", "max_y", "ay", "min_ay", "max_ay")
        }
        for f in ("ay", "min_ay", "max_ay"):
            fields[f] = float(fields[f])
        self._name = name
        self._x_label = readers[0].x_label
        self._y_label = ("Normalized " if ranges else "") + readers[0].y_label
        self._mean_curve = MeanCurve(x=x, name=name, **fields)

    def __call__(self):
        """The aggregated ``MeanCurve``."""
        return self._mean_curve

    @property
    def name(self):
        """Name of the method."""
        return self._name

    @property
    def x_label(self):
        """Label of the x axis (the first reader's)."""
        return self._x_label

    @property
    def y_label(self):
        """Label of the y axis (the first reader's, prefixed "Normalized " when
        normalizing)."""
        return self._y_label


def _normalize(curve, y0, y1):
    scale = 1.0 / (y1 - y0)
    y = (curve.y - y0) * scale
    a, b = (curve.min_y - y0) * scale, (curve.max_y - y0) * scale
    ay = (curve.ay - y0) * scale
    c, d = (curve.min_ay - y0) * scale, (curve.max_ay - y0) * scale
    return curve._replace(
        y=y,
        min_y=np.minimum(a, b),
        max_y=np.maximum(a, b),
        ay=ay,
        min_ay=min(c, d),
        max_ay=max(c, d),
    )


# Public names defined in this package's private helper modules report this module, so
# pickles, reprs and docs name the public import path, never a private file.
for _name in __all__:
    _obj = globals()[_name]
    if str(getattr(_obj, "__module__", None) or "").startswith("alf.utils._"):
        _obj.__module__ = "alf.utils.plot_tb_curves"  # not __name__: "__main__" under python -m
del _name, _obj


if __name__ == "__main__":  # python -m alf.utils.plot_tb_curves: the alf-plot command
    import sys

    from alf.utils._plot_cli import main

    sys.exit(main())
