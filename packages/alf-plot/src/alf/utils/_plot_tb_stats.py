"""Statistics of a set of curves: ``MeanCurve``, interval modes, and EMA smoothing.

Shapes: ``L`` is the number of x steps, ``R`` the number of runs (curves).
"""

import math
import numbers
from collections import namedtuple
from collections.abc import Iterable

import numpy as np

__all__ = ["MeanCurve", "ema_smooth", "interval", "check_interval_mode"]

_CI_LEVELS = (80, 85, 90, 95, 99)
INTERVAL_MODES = ("std", "minmax") + tuple(f"CI_{c}" for c in _CI_LEVELS)


def check_interval_mode(interval_mode):
    """Raise ``ValueError`` unless ``interval_mode`` is one of ``INTERVAL_MODES``."""
    if not isinstance(interval_mode, str) or interval_mode not in INTERVAL_MODES:
        raise ValueError(
            f"interval_mode must be one of {', '.join(INTERVAL_MODES)}; got {interval_mode!r}"
        )


def interval(values, interval_mode):
    """Mean of ``values`` over axis 0 and the band around it.

    * ``"std"``: mean -/+ the standard deviation across runs (``ddof=0``).
    * ``"minmax"``: the smallest and largest value across runs.
    * ``"CI_X"``: the X% confidence interval of the mean from Student's t,
      ``mean -/+ t_{(1+X/100)/2, R-1} * s / sqrt(R)`` with ``s`` the sample
      standard deviation (``ddof=1``); needs ``R >= 2``.

    Args:
        values (np.ndarray): float array of shape ``[R, ...]``.
        interval_mode (str): one of ``INTERVAL_MODES``.

    Returns:
        tuple[np.ndarray, np.ndarray, np.ndarray]: ``mean``, ``low``, ``high``,
        each of shape ``values.shape[1:]``.
    """
    check_interval_mode(interval_mode)
    values = np.asarray(values, dtype=np.float64)
    # Statistics of values / scale, scaled back: the sums and squares inside
    # mean and std neither overflow nor underflow at extreme magnitudes.
    scale = _scale(values, axis=0)
    unit = values / scale
    scale = scale[0]
    mean = unit.mean(axis=0) * scale
    if interval_mode == "std":
        std = unit.std(axis=0) * scale
        return mean, mean - std, mean + std
    if interval_mode == "minmax":
        return mean, values.min(axis=0), values.max(axis=0)
    runs = values.shape[0]
    if runs < 2:
        raise ValueError(
            f"interval_mode={interval_mode!r} needs at least 2 curves to estimate a "
            f"confidence interval; got {runs}"
        )
    from scipy import stats

    level = int(interval_mode[3:]) / 100.0
    t = stats.t.ppf(0.5 + level / 2, runs - 1)
    half = t * unit.std(axis=0, ddof=1) / math.sqrt(runs) * scale
    return mean, mean - half, mean + half


def _scale(values, axis):
    """Largest finite magnitude of ``values`` along ``axis`` (kept, size 1); 1 if none or 0."""
    magnitude = np.where(np.isfinite(values), np.abs(values), 0.0).max(axis=axis, keepdims=True)
    return np.where(magnitude > 0, magnitude, 1.0)


def _mean(values, axis):
    """``values.mean(axis)`` without overflow of the sum at extreme magnitudes."""
    scale = _scale(values, axis)
    return (values / scale).mean(axis=axis) * np.squeeze(scale, axis=axis)


def _float_array(value, arg):
    """``value`` as a float64 array; a ValueError naming ``arg`` if it is not numeric."""
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{arg} must hold numbers; got {value!r}") from None


class MeanCurve(
    namedtuple(
        "MeanCurve",
        ["x", "y", "min_y", "max_y", "ay", "min_ay", "max_ay", "name"],
        defaults=(None, None, None, None, None, None, None, None),
    )
):
    """The mean of several runs' curves and a band around it.

    Fields:
        x (np.ndarray): float64, shape ``[L]``, the common x steps.
        y (np.ndarray): float64, shape ``[L]``, the mean curve over runs.
        min_y, max_y (np.ndarray): float64, shape ``[L]``, the band around
            ``y`` (see the interval modes of ``from_curves``).
        ay (float): mean over runs of each run's average y (the mean of its
            curve over the ``L`` steps); a one-number summary of a method.
        min_ay, max_ay (float): the band around ``ay``, same interval mode.
        name (str): the curve's name (shown in legends).
    """

    __slots__ = ()

    def final_y(self, N=1):
        """Average of the last ``N`` points of the mean curve ``y``.

        Args:
            N (int): how many final points to average, ``1 <= N <= L``.

        Returns:
            float: ``mean(y[-N:])``.
        """
        size = 0 if self.y is None else len(self.y)
        if isinstance(N, bool) or not isinstance(N, (int, np.integer)) or not 1 <= N <= size:
            raise ValueError(f"N must be an int in [1, {size}] (the curve length); got {N!r}")
        return float(np.mean(self.y[-N:]))

    @classmethod
    def from_curves(cls, x, ys, interval_mode="std", name="MeanCurve"):
        """Compute various curve statistics from a set of individual curves
        ``ys`` and a common ``x``, and create a class instance.

        Args:
            x (np.array): x steps, shape ``[L]``.
            ys (list[np.array]): ``R >= 1`` curves, each of shape ``[L]``.
            interval_mode (str): how ``min_y``/``max_y`` (and
                ``min_ay``/``max_ay``) are computed: ``"std"`` (mean -/+ std
                across runs), ``"minmax"`` (min and max across runs) or
                ``"CI_X"`` with X in (80, 85, 90, 95, 99): the X% confidence
                interval of the mean from Student's t (needs ``R >= 2``).
            name (str): the curve's name.

        Returns:
            MeanCurve: the statistics.

        Raises:
            ValueError: for an unknown ``interval_mode``, no curves, curves
                whose length differs from ``x``, or non-numeric entries;
                ``TypeError`` if ``ys`` is not a list of curves.
        """
        check_interval_mode(interval_mode)
        x = _float_array(x, "x")
        if x.ndim != 1 or len(x) == 0:
            raise ValueError(f"x must be a non-empty 1-D array; got shape {x.shape}")
        if isinstance(ys, (str, bytes)) or not isinstance(ys, Iterable):
            raise TypeError(f"ys must be a list of curves (arrays); got {ys!r}")
        ys = [_float_array(y, f"ys[{i}]") for i, y in enumerate(ys)]
        if not ys:
            raise ValueError("ys must hold at least one curve; got none")
        shapes = {y.shape for y in ys}
        if shapes != {x.shape}:
            raise ValueError(
                f"every curve in ys must have the shape of x {x.shape}; got shapes {sorted(shapes)}"
            )
        stacked = np.stack(ys)
        y, min_y, max_y = interval(stacked, interval_mode)
        ay, min_ay, max_ay = interval(_mean(stacked, axis=1), interval_mode)
        return cls(x, y, min_y, max_y, float(ay), float(min_ay), float(max_ay), name)


def _ema_forward(scalars, weight, speed, adaptive):
    out = scalars.copy()
    finite = np.isfinite(scalars)
    values = scalars[finite]
    if len(values) == 0:
        return out
    n = np.arange(1, len(values) + 1, dtype=np.float64)
    if not adaptive:
        from scipy.signal import lfilter

        # last_n = weight * last_{n-1} + (1 - weight) * x_n, last_0 = 0,
        # debiased by 1 - weight**n as in TensorBoard.
        last = lfilter([1.0 - weight], [1.0, -weight], values)
        out[finite] = last / (1.0 - weight**n)
        return out
    # The incoming weight a_n = min(1, speed / n) shrinks with n; the debias
    # factor 1 - prod(1 - a_k) generalizes 1 - weight**n.
    incoming = np.minimum(1.0, speed / n)
    smoothed = np.empty_like(values)
    last = 0.0
    keep = 1.0
    for i, (a, v) in enumerate(zip(incoming.tolist(), values.tolist())):
        last = last * (1.0 - a) + a * v
        keep *= 1.0 - a
        smoothed[i] = last / (1.0 - keep)
    out[finite] = smoothed
    return out


def ema_smooth(scalars, weight=0.6, speed=64.0, adaptive=False, mode="forward"):
    """EMA smoothing, following TensorBoard's debiased exponential moving average.

    For each finite value ``x_n`` (``n = 1, 2, ...`` counting finite values
    only), ``last_n = w_n * last_{n-1} + (1 - w_n) * x_n`` with ``last_0 = 0``,
    and the smoothed value is ``last_n / (1 - prod_{k<=n} w_k)`` (the debiasing
    TensorBoard applies, so early points are not pulled toward 0).  Non-finite
    values are passed through and do not update the average.

    For adaptive EMA, the incoming weight decreases as the time increases:
    ``1 - w_n = min(1, speed / n)``.

    Args:
        scalars (list[float]): shape ``[T]``, the values, where the array
            index represents incoming time steps.
        weight (float): the weight of history, in ``[0, 1)``. The history is
            updated as ``history * weight + scalar * (1 - weight)``. Only
            useful when ``adaptive=False``.
        speed (float): positive; the adaptive incoming weight is
            ``min(1, speed / n)``. Only useful when ``adaptive=True``. A higher
            speed means a smaller average window.
        adaptive (bool): whether use adaptive weighting or not. If True, then
            later scalars will have smaller incoming weights (proportional to
            the inverse of array index).
        mode (str): ``"forward"`` | ``"both"``. For ``"forward"`` mode, the
            moving average goes from the array beginning to end. For ``"both"``
            mode, the moving average has an additional backward pass, and the
            final smoothed value is an average of forward and backward passes.

    Returns:
        np.ndarray: float64, shape ``[T]``, the smoothed values.
    """
    if isinstance(weight, bool) or not isinstance(weight, numbers.Real) or not 0 <= weight < 1:
        raise ValueError(f"weight must be a float in [0, 1); got {weight!r}")
    if isinstance(speed, bool) or not isinstance(speed, numbers.Real) or not speed > 0:
        raise ValueError(f"speed must be a positive number; got {speed!r}")
    if mode not in ("forward", "both"):
        raise ValueError(f"mode must be 'forward' or 'both'; got {mode!r}")
    values = np.asarray(scalars, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"scalars must be 1-D; got shape {values.shape}")
    forward = _ema_forward(values, float(weight), float(speed), bool(adaptive))
    if mode == "forward":
        return forward
    backward = _ema_forward(values[::-1].copy(), float(weight), float(speed), bool(adaptive))[::-1]
    return (forward + backward) / 2
