"""The ``alf-plot`` command: mean TensorBoard curves with bands, one per method.

Example::

    alf-plot -o return.png --reader env_steps_return \\
        --method SAC 'runs/sac/*/eval' --method PPO 'runs/ppo/*/eval' \\
        --smoothing 0.6 --interval-mode CI_95

Errors (missing event files or tag, non-overlapping runs, bad options, a
figure too large to draw) print one ``alf-plot: error: ...`` line on stderr and
exit with status 1 (2 for command-line usage errors), without a traceback;
warnings (e.g. a damaged event record, skipped) are ``alf-plot: warning:
...`` lines.
"""

import argparse
import glob
import os
import sys
import time
import warnings

__all__ = ["main", "build_parser"]

_READERS = {
    "env_steps_return": "EnvironmentStepsReturnReader",
    "env_steps_success": "EnvironmentStepsSuccessReader",
    "iterations_return": "IterationsReturnReader",
    "iterations_success": "IterationsSuccessReader",
}
_FORMATS = (".png", ".pdf", ".svg")
# matplotlib's Agg renderer (also used for the layout of PDF and SVG figures)
# refuses a side of 2**23 pixels or more.
_MAX_PIXELS = 2**23


class _UserError(Exception):
    """A problem with the command's input, reported as one line."""


def build_parser():
    """The command's ``argparse.ArgumentParser``."""
    from alf.utils._plot_tb_stats import INTERVAL_MODES

    p = argparse.ArgumentParser(
        prog="alf-plot",
        description=(
            "Plot the mean curve and band of one scalar TensorBoard tag for each method, "
            "over the runs given for that method, into a PNG, PDF or SVG file."
        ),
        epilog=(
            "Each run is a directory holding event files (e.g. 'train/' or 'eval/' of an "
            "ALF root dir) or one event file; globs are expanded by the command, so quote "
            "them.  Runs of a method are smoothed, interpolated onto common x steps (their "
            "overlapping x range, or --x-steps) and averaged."
        ),
    )
    src = p.add_argument_group("input")
    src.add_argument(
        "-m",
        "--method",
        nargs="+",
        action="append",
        required=True,
        metavar=("NAME", "RUN"),
        help="a method's name (its legend entry) followed by its run directories or "
        "globs; repeat for each method",
    )
    what = src.add_mutually_exclusive_group(required=True)
    what.add_argument("-t", "--tag", help="the scalar tag to read")
    what.add_argument(
        "-r",
        "--reader",
        choices=sorted(_READERS),
        help="a predefined reader: env_steps_* read Metrics_vs_EnvironmentSteps/..., "
        "iterations_* read Metrics/...; *_return the AverageReturn, *_success "
        "AverageEnvInfo/success",
    )
    src.add_argument(
        "--x-steps",
        metavar="STEPS",
        help="x steps to interpolate onto: 'START:STOP:NUM' (NUM evenly spaced steps, "
        "STOP included) or a comma-separated list; default: the runs' common steps",
    )
    src.add_argument(
        "-s",
        "--smoothing",
        metavar="S",
        help="an integer is a Savitzky-Golay window width (points); a number with a "
        "decimal point in [0, 1) is an EMA weight (higher is smoother); default none",
    )
    src.add_argument(
        "-i",
        "--interval-mode",
        default="std",
        choices=INTERVAL_MODES,
        help="the band: std (mean +/- std), minmax, or CI_X, a Student's t confidence "
        "interval of the mean (default: std)",
    )
    src.add_argument(
        "-j",
        "--workers",
        type=int,
        metavar="N",
        help="reading processes (default: one per CPU for large inputs)",
    )
    src.add_argument(
        "--verify-crc",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="check the checksums of the event records (default): a damaged record is "
        "skipped with a warning; --no-verify-crc reads a little faster but takes a "
        "damaged value that still parses as it is",
    )

    out = p.add_argument_group("output")
    out.add_argument("-o", "--output", required=True, help="the figure file; .png, .pdf or .svg")
    out.add_argument(
        "--figsize",
        nargs=2,
        type=float,
        default=(6.0, 4.0),
        metavar=("W", "H"),
        help="figure size in inches (default: 6 4)",
    )
    out.add_argument(
        "--dpi",
        type=int,
        default=100,
        help="dots per inch; a PNG is W*dpi x H*dpi pixels (default: 100)",
    )
    out.add_argument("--title", help="the figure title")
    out.add_argument("--x-label", help="x axis label (default: the reader's)")
    out.add_argument("--y-label", help="y axis label (default: the reader's, or the tag)")
    out.add_argument(
        "--y-clipping",
        nargs=2,
        type=float,
        metavar=("LOW", "HIGH"),
        help="clip the curves and bands to this range",
    )
    out.add_argument(
        "--y-range",
        nargs=2,
        type=float,
        metavar=("LOW", "HIGH"),
        help="y axis limits (default: automatic)",
    )
    out.add_argument("--x-ticks", metavar="T1,T2,...", help="comma-separated x ticks")
    out.add_argument(
        "--x-scaled-and-aligned",
        action="store_true",
        help="map all curves' x linearly so the overall x bounds become --x-range",
    )
    out.add_argument(
        "--x-range",
        nargs=2,
        type=float,
        metavar=("LOW", "HIGH"),
        help="with --x-scaled-and-aligned, the target x bounds (default: 0 1)",
    )
    out.add_argument(
        "--linestyle",
        default="solid",
        help="line style: solid, dashed, dashdot or dotted (default: solid)",
    )
    out.add_argument("--linewidth", type=float, default=2.0, help="line width (default: 2)")
    out.add_argument(
        "--std-alpha", type=float, default=0.2, help="opacity of the bands (default: 0.2)"
    )
    out.add_argument(
        "--colors",
        metavar="C1,C2,...",
        help="comma-separated colors, one per method (default: tab10)",
    )
    out.add_argument(
        "--markers", metavar="M1,M2,...", help="comma-separated matplotlib markers, one per method"
    )
    out.add_argument("--plot-mean-only", action="store_true", help="draw no bands")
    out.add_argument(
        "--legend-loc", default="best", help="matplotlib legend location (default: best)"
    )
    out.add_argument("--no-legend", action="store_true", help="draw no legend")
    out.add_argument("--transparent", action="store_true", help="transparent background")
    out.add_argument("-q", "--quiet", action="store_true", help="no progress line on stderr")
    return p


def _parse_smoothing(text):
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise _UserError(f"--smoothing must be an int or a float; got {text!r}") from None


def _parse_x_steps(text):
    import numpy as np

    if text is None:
        return None
    try:
        if ":" in text:
            start, stop, num = text.split(":")
            return np.linspace(float(start), float(stop), int(num))
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise _UserError(
            f"--x-steps must be START:STOP:NUM or a comma-separated list; got {text!r}"
        ) from None


def _split(text):
    """A comma-separated option as a list of stripped items (None stays None)."""
    return None if text is None else [v.strip() for v in text.split(",")]


def _expand(method, patterns):
    runs = []
    for pattern in patterns:
        if glob.has_magic(pattern):
            matches = sorted(glob.glob(pattern))
            if not matches:
                raise _UserError(f"method {method!r}: {pattern!r} matches nothing")
            runs.extend(matches)
        else:
            runs.append(pattern)
    return runs


class _Progress:
    """A progress line on stderr: rewritten in place on a terminal, else a line per second."""

    def __init__(self, enabled):
        self._enabled = enabled
        self._tty = sys.stderr.isatty()
        self._last = 0.0
        self._shown = False

    def __call__(self, method, done, total):
        if not self._enabled:
            return
        now = time.monotonic()
        if done < total and now - self._last < (0.1 if self._tty else 1.0):
            return
        self._last = now
        line = f"alf-plot: reading {method}: {done}/{total} runs"
        if self._tty:
            sys.stderr.write("\r" + line + "\x1b[K")
            self._shown = True
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def close(self):
        if self._shown:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self._shown = False


def _run(args):
    from alf.utils import plot_tb_curves as ptc

    ext = os.path.splitext(args.output)[1].lower()
    if ext not in _FORMATS:
        raise _UserError(f"--output must end in {', '.join(_FORMATS)}; got {args.output!r}")
    out_dir = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(out_dir):
        raise _UserError(f"--output: directory {out_dir!r} does not exist")
    width, height = (size * args.dpi for size in args.figsize)
    if max(width, height) >= _MAX_PIXELS:
        raise _UserError(
            f"the figure would be {width:.0f} x {height:.0f} pixels (--figsize "
            f"{args.figsize[0]:g} {args.figsize[1]:g} at --dpi {args.dpi}); each side must be "
            f"below {_MAX_PIXELS} pixels"
        )
    methods = []
    for entry in args.method:
        if len(entry) < 2:
            raise _UserError(f"--method {entry[0]!r}: give the method name, then its runs")
        methods.append((entry[0], _expand(entry[0], entry[1:])))
    smoothing = _parse_smoothing(args.smoothing)
    x_steps = _parse_x_steps(args.x_steps)
    reader_cls = getattr(ptc, _READERS[args.reader]) if args.reader else ptc.MeanCurveReader
    progress = _Progress(not args.quiet)
    readers = []
    try:
        for name, runs in methods:
            try:
                readers.append(
                    reader_cls(
                        runs,
                        x_steps=x_steps,
                        name=name,
                        smoothing=smoothing,
                        interval_mode=args.interval_mode,
                        tag=args.tag,
                        workers=args.workers,
                        verify_crc=args.verify_crc,
                        progress=lambda d, t, name=name: progress(name, d, t),
                    )
                )
            except (ValueError, TypeError) as e:
                raise _UserError(f"method {name!r}: {e}") from None
    finally:
        progress.close()
    try:
        x_ticks = None if args.x_ticks is None else [float(v) for v in _split(args.x_ticks)]
    except ValueError:
        raise _UserError(
            f"--x-ticks must be comma-separated numbers; got {args.x_ticks!r}"
        ) from None
    try:
        plotter = ptc.CurvesPlotter(
            [r() for r in readers],
            y_clipping=args.y_clipping,
            x_range=args.x_range,
            y_range=args.y_range,
            x_ticks=x_ticks,
            x_label=args.x_label if args.x_label is not None else readers[0].x_label,
            y_label=args.y_label if args.y_label is not None else readers[0].y_label,
            x_scaled_and_aligned=args.x_scaled_and_aligned,
            figsize=tuple(args.figsize),
            dpi=args.dpi,
            linestyle=args.linestyle,
            linewidth=args.linewidth,
            std_alpha=args.std_alpha,
            colors=_split(args.colors),
            markers=_split(args.markers),
            plot_mean_only=args.plot_mean_only,
            legend_kwargs=None if args.no_legend else {"loc": args.legend_loc},
            title=args.title,
        )
        plotter.plot(args.output, dpi=args.dpi, transparent=args.transparent)
    except (ValueError, TypeError) as e:
        raise _UserError(str(e)) from None
    except MemoryError:
        raise _UserError(
            f"out of memory drawing a {width:.0f} x {height:.0f} pixel figure; "
            "lower --figsize or --dpi"
        ) from None
    if not args.quiet:
        sys.stderr.write(f"alf-plot: wrote {args.output}\n")


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """Print a warning (e.g. an unparsable event record) as one ``alf-plot: warning:`` line."""
    sys.stderr.write(f"alf-plot: warning: {message}\n")
    sys.stderr.flush()


def main(argv=None):
    """Run the command; returns the exit status (0 on success)."""
    import matplotlib

    matplotlib.use("Agg")
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            _run(args)
    except _UserError as e:
        sys.stderr.write(f"alf-plot: error: {e}\n")
        return 1
    except OSError as e:
        sys.stderr.write(f"alf-plot: error: {e.strerror or e}: {e.filename or ''}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("alf-plot: interrupted\n")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
