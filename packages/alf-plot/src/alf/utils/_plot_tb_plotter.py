"""``CurvesPlotter``: draw ``MeanCurve``s with their bands and save the figure."""

import math
import numbers

import numpy as np

from alf.utils._plot_tb_stats import MeanCurve

__all__ = ["CurvesPlotter", "scale_and_align_x"]

# matplotlib's "tab10" cycle.
_DEFAULT_COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
# Markers are drawn at about this many points of each curve.
_MARKERS_PER_CURVE = 10


def _pair(value, arg, finite=True):
    """``value`` as a (low, high) float pair with low < high (both finite if asked), or None."""
    if value is None:
        return None
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{arg} must be a pair (low, high) of numbers; got {value!r}") from None
    if finite and not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"{arg} must be finite; got {value!r}")
    if not low < high:
        raise ValueError(f"{arg} must have low < high; got {value!r}")
    return low, high


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_dpi(dpi):
    if not (_is_number(dpi) and math.isfinite(dpi) and dpi > 0):
        raise ValueError(f"dpi must be a positive number; got {dpi!r}")


def _per_curve(value, count, arg, kind):
    """A per-curve list from one value of ``kind`` or a list of them."""
    if value is None or isinstance(value, kind):
        return [value] * count
    value = list(value)
    if len(value) < count:
        raise ValueError(f"{arg} must give one entry per curve ({count}); got {len(value)}")
    return value[:count]


def scale_and_align_x(xs, x_range):
    """Map every curve's x linearly so that the overall x bounds become ``x_range``.

    With ``lo``/``hi`` the smallest/largest x over all curves, each x becomes
    ``x_range[0] + (x - lo) / (hi - lo) * (x_range[1] - x_range[0])``.

    Args:
        xs (list[np.ndarray]): the x steps of each curve, shapes ``[L_i]``.
        x_range (tuple[float, float]): the target bounds.

    Returns:
        list[np.ndarray]: float64 arrays of shapes ``[L_i]``.
    """
    lo = min(float(np.min(x)) for x in xs)
    hi = max(float(np.max(x)) for x in xs)
    span = hi - lo
    if span == 0:
        return [np.full(len(x), (x_range[0] + x_range[1]) / 2) for x in xs]
    scale = (x_range[1] - x_range[0]) / span
    return [x_range[0] + (np.asarray(x, dtype=np.float64) - lo) * scale for x in xs]


class CurvesPlotter:
    """Plot several ``MeanCurve``s in a figure. The curve colors will form a
    cycle over 10 default colors. The user should make sure that the
    ``MeanCurve``s to plot are meaningful to be compared in one figure.

    For each ``MeanCurve``, its ``y`` field will be plotted as the mean, its
    ``min_y`` and ``max_y`` will be plotted by a shaded area around ``y``, and
    its ``x`` determines the x-axis range.

    Args:
        mean_curves (MeanCurve|list[MeanCurve]): each ``MeanCurve`` should
            correspond to a different method.
        y_clipping (tuple[float]): the y values (mean and band) will be
            clipped to this range if not None. Because of smoothing in
            ``MeanCurveReader`` and/or std region, the input y values might be
            out of this range.
        x_range (tuple[float]): ``(min_x, max_x)`` for showing on the figure.
            If None, then ``(0, 1)`` will be used. Only used when
            ``x_scaled_and_aligned==True``.
        y_range (tuple[float]): ``(min_y, max_y)`` for showing on the figure.
            If None, then it will be decided according to the y values. This
            range won't change y data; it's only used for the y limits.
        x_ticks (list[float]): x ticks shown along x axis.
        x_label (str): shown besides x-axis.
        y_label (str): shown besides y-axis.
        x_scaled_and_aligned (bool): if True, the x axes of all curves are
            scaled and aligned so that the lowest and highest x over all
            curves map to ``x_range``, each curve's x scaled proportionally
            (no y interpolation).  E.g. curves with x in (0, 100), (20, 80)
            and (100, 200) and ``x_range=(0, 1)`` are drawn over (0, 0.5),
            (0.1, 0.4) and (0.5, 1).  If False, x is plotted as it is.
        figsize (tuple[int]): ``(width, height)`` of the figure in inches.
        dpi (int): dots per inch of the figure on screen (``plot`` saves with
            its own ``dpi``).
        linestyle (str|list[str]): the line style: '-' (solid), '--'
            (dashed), '-.' (dashdot) or ':' (dotted); one for all curves or
            one per curve.
        linewidth (int): the thickness of lines to plot. Default: 2.
        std_alpha (float): the transparency of the shaded area around a curve.
        colors (list[str]): one matplotlib color per curve; None cycles over
            the 10 default colors.
        markers (str|list[str]): one matplotlib marker for all curves or one
            per curve (None: no marker); markers are drawn at about 10 points
            of each curve.
        bg_color (str): the background color of the figure.
        grid_color (str): color of the dashed grid lines.
        plot_mean_only (bool): whether only plot the mean curve without
            shaded regions.
        legend_kwargs (dict): kwargs for ``Axes.legend`` (a legend entry per
            curve, labelled by its ``name``). If None, no legend is plotted.
        title (str): title of the figure.

    Raises:
        ValueError: for a curve whose ``y``/``min_y``/``max_y`` shape differs
            from its 1-D ``x``, a non-finite ``x_range``/``y_range`` (one side
            of ``y_clipping`` may be infinite), or an option that is not a
            number where one is expected; ``TypeError`` for a non-``MeanCurve``.
    """

    def __init__(
        self,
        mean_curves,
        y_clipping=None,
        x_range=None,
        y_range=None,
        x_ticks=None,
        x_label=None,
        y_label=None,
        x_scaled_and_aligned=False,
        figsize=(4, 4),
        dpi=100,
        linestyle="-",
        linewidth=2,
        std_alpha=0.2,
        colors=None,
        markers=None,
        bg_color="white",
        grid_color="#e6e5e3",
        plot_mean_only=False,
        legend_kwargs={"loc": "best"},  # noqa: B006 (documented default; never mutated)
        title=None,
    ):
        if isinstance(mean_curves, MeanCurve):
            mean_curves = [mean_curves]
        mean_curves = list(mean_curves)
        if not mean_curves:
            raise ValueError("mean_curves must hold at least one MeanCurve; got none")
        for i, curve in enumerate(mean_curves):
            if not isinstance(curve, MeanCurve):
                raise TypeError(f"mean_curves[{i}] must be a MeanCurve; got {type(curve).__name__}")
            if curve.x is None or curve.y is None or len(curve.x) == 0:
                raise ValueError(f"mean_curves[{i}] ({curve.name!r}) has no x/y data")
            x_shape = np.shape(curve.x)
            for field in ("y", "min_y", "max_y"):
                value = getattr(curve, field)
                if len(x_shape) != 1 or (value is not None and np.shape(value) != x_shape):
                    raise ValueError(
                        f"mean_curves[{i}] ({curve.name!r}): {field} has shape "
                        f"{np.shape(value)}, x {x_shape}; both must be the same 1-D shape"
                    )
        count = len(mean_curves)
        self._curves = mean_curves
        # One side of y_clipping may be infinite (clipping on the other side only).
        self._y_clipping = _pair(y_clipping, "y_clipping", finite=False)
        self._x_range = _pair(x_range, "x_range") or (0.0, 1.0)
        self._y_range = _pair(y_range, "y_range")
        try:
            self._x_ticks = None if x_ticks is None else [float(t) for t in x_ticks]
        except (TypeError, ValueError):
            raise ValueError(f"x_ticks must be a list of numbers; got {x_ticks!r}") from None
        self._x_label = x_label
        self._y_label = y_label
        self._x_scaled_and_aligned = bool(x_scaled_and_aligned)
        try:
            width, height = (float(v) for v in figsize)
        except (TypeError, ValueError):
            raise ValueError(
                f"figsize must be (width, height) in inches; got {figsize!r}"
            ) from None
        if width <= 0 or height <= 0:
            raise ValueError(f"figsize must be (width, height) > 0; got {figsize!r}")
        self._figsize = (width, height)
        _check_dpi(dpi)
        self._dpi = dpi
        self._linestyles = _per_curve(linestyle, count, "linestyle", str)
        if not (_is_number(linewidth) and linewidth >= 0):
            raise ValueError(f"linewidth must be a number >= 0; got {linewidth!r}")
        self._linewidth = linewidth
        if not (_is_number(std_alpha) and 0 <= std_alpha <= 1):
            raise ValueError(f"std_alpha must be a number in [0, 1]; got {std_alpha!r}")
        self._std_alpha = std_alpha
        if colors is None:
            self._colors = [_DEFAULT_COLORS[i % len(_DEFAULT_COLORS)] for i in range(count)]
        else:
            self._colors = _per_curve(colors, count, "colors", str)
        self._markers = _per_curve(markers, count, "markers", str)
        self._bg_color = bg_color
        self._grid_color = grid_color
        self._plot_mean_only = bool(plot_mean_only)
        if legend_kwargs is not None and not isinstance(legend_kwargs, dict):
            raise TypeError(
                f"legend_kwargs must be a dict or None; got {type(legend_kwargs).__name__}"
            )
        self._legend_kwargs = None if legend_kwargs is None else dict(legend_kwargs)
        self._title = title

    def _draw(self, fig):
        ax = fig.add_subplot(1, 1, 1)
        ax.set_facecolor(self._bg_color)
        xs = [np.asarray(c.x, dtype=np.float64) for c in self._curves]
        if self._x_scaled_and_aligned:
            xs = scale_and_align_x(xs, self._x_range)
        for i, (curve, x) in enumerate(zip(self._curves, xs)):
            y = np.asarray(curve.y, dtype=np.float64)
            low = np.asarray(curve.min_y if curve.min_y is not None else y, dtype=np.float64)
            high = np.asarray(curve.max_y if curve.max_y is not None else y, dtype=np.float64)
            if self._y_clipping is not None:
                y, low, high = (np.clip(v, *self._y_clipping) for v in (y, low, high))
            ax.plot(
                x,
                y,
                color=self._colors[i],
                linestyle=self._linestyles[i],
                linewidth=self._linewidth,
                marker=self._markers[i],
                markevery=max(1, len(x) // _MARKERS_PER_CURVE),
                label=curve.name,
            )
            if not self._plot_mean_only:
                ax.fill_between(
                    x, low, high, color=self._colors[i], alpha=self._std_alpha, linewidth=0
                )
        if self._x_scaled_and_aligned:
            ax.set_xlim(*self._x_range)
        if self._y_range is not None:
            ax.set_ylim(*self._y_range)
        if self._x_ticks is not None:
            ax.set_xticks(self._x_ticks)
        if self._x_label:
            ax.set_xlabel(self._x_label)
        if self._y_label:
            ax.set_ylabel(self._y_label)
        if self._title:
            ax.set_title(self._title)
        ax.grid(True, linestyle="--", color=self._grid_color)
        ax.set_axisbelow(True)
        if self._legend_kwargs is not None:
            ax.legend(**self._legend_kwargs)
        fig.tight_layout()

    def plot(self, output_path, dpi=200, transparent=False, close_fig=True):
        """Plot curves and save the figure to disk.

        The saved image is ``figsize[0] * dpi`` by ``figsize[1] * dpi`` pixels
        (vector formats: ``figsize`` inches); the format follows the file
        extension (png, pdf, svg, ...).

        Args:
            output_path (str): the output file path.
            dpi (int): dpi for the figure. A higher value results in higher
                resolution.
            transparent (bool): If True, then the figure has a transparent
                background.
            close_fig (bool): whether to close/release this figure after
                plotting. If False, the user has to close it manually
                (``matplotlib.pyplot.close(figure)``).

        Returns:
            matplotlib.figure.Figure: the figure.
        """
        _check_dpi(dpi)
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=self._figsize, dpi=self._dpi, facecolor=self._bg_color)
        try:
            self._draw(fig)
            fig.savefig(output_path, dpi=dpi, transparent=transparent)
        finally:
            if close_fig:
                plt.close(fig)
        return fig
