"""Implementation of the ``alf.summary`` API (see the package docstring)."""

import atexit
import contextlib
import functools
import math
import sys
import threading
import weakref
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Union

import numpy as np
import torch

from alf.summary import _summary_media as _media

__all__ = [
    "EnsureSummary",
    "create_summary_writer",
    "disable_summary",
    "embedding",
    "enable_summary",
    "enter_summary_scope",
    "get_default_writer",
    "get_global_counter",
    "histogram",
    "images",
    "increment_global_counter",
    "is_summary_enabled",
    "pop_summary_writer",
    "push_summary_writer",
    "record_if",
    "reset_global_counter",
    "scalar",
    "scope",
    "scope_name",
    "set_default_writer",
    "set_global_counter",
    "should_record_summaries",
    "should_summarize_output",
    "text",
    "video",
]

_global_counter = torch.zeros((), dtype=torch.int64)
_default_writer: Optional[Any] = None
_summary_enabled = True
_summarize_output = False
_state = threading.local()
_pending_averages: Dict[str, List[float]] = {}
# Every writer this module has been given, flushed when the interpreter exits.
_known_writers: "weakref.WeakSet[Any]" = weakref.WeakSet()


def _writer_stack() -> List[Any]:
    if not hasattr(_state, "writers"):
        _state.writers = []
    return _state.writers


def _current_writer() -> Any:
    stack = _writer_stack()
    return stack[-1] if stack else _default_writer


def _remember(writer: Any) -> None:
    if writer is not None:
        try:
            _known_writers.add(writer)
        except TypeError:  # pragma: no cover - an object without weakref support
            pass


@atexit.register
def _flush_writers_at_exit() -> None:
    """Flush every known writer at a normal interpreter exit: the event
    writer's background thread is a daemon and would otherwise lose the
    events queued since the last periodic flush."""
    for writer in list(_known_writers):
        try:
            writer.flush()
        except Exception as e:  # pragma: no cover - a broken writer at exit
            print(f"alf.summary: could not flush {writer!r} at exit: {e}", file=sys.stderr)


def _scope_stack() -> List[str]:
    if not hasattr(_state, "scopes"):
        _state.scopes = [""]
    return _state.scopes


def _record_if_stack() -> List[Callable[[], bool]]:
    if not hasattr(_state, "record_if"):
        _state.record_if = [lambda: True]
    return _state.record_if


# ---- global counter -------------------------------------------------------
def get_global_counter() -> torch.Tensor:
    """The global step counter: a 0-d int64 tensor shared by all callers
    (it is updated in place, so a reference stays current)."""
    return _global_counter


def set_global_counter(value: int) -> None:
    """Set the global step counter to ``value``."""
    _global_counter.fill_(int(value))


def reset_global_counter() -> None:
    """Set the global step counter to 0."""
    _global_counter.zero_()


def increment_global_counter() -> None:
    """Add 1 to the global step counter."""
    _global_counter.add_(1)


# ---- writer and switches --------------------------------------------------
def create_summary_writer(summary_dir: str, flush_secs: int = 10, max_queue: int = 10) -> Any:
    """A TensorBoard event-file writer for ``summary_dir`` (``~`` expanded).

    Raises:
        ImportError: tensorboard is not installed (install
            ``alf-math[tensorboard]``).
    """
    import os

    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "create_summary_writer needs tensorboard: pip install 'alf-math[tensorboard]'"
        ) from e
    writer = SummaryWriter(
        os.path.expanduser(summary_dir), flush_secs=flush_secs, max_queue=max_queue
    )
    _remember(writer)
    return writer


def _check_writer(writer: Any) -> None:
    if writer is not None and not callable(getattr(writer, "add_scalar", None)):
        raise TypeError(
            "writer must be a SummaryWriter (e.g. from create_summary_writer) or None; "
            f"got {type(writer).__name__}"
        )


def set_default_writer(writer: Optional[Any]) -> None:
    """Make ``writer`` (or ``None``: no summaries) the writer every summary
    call uses (in every thread, unless a thread pushed its own with
    ``push_summary_writer``). Pending events of the writers set here are
    flushed when the interpreter exits normally.

    Raises:
        TypeError: ``writer`` is neither None nor a summary writer.
    """
    global _default_writer
    _check_writer(writer)
    _remember(writer)
    _default_writer = writer


def get_default_writer() -> Optional[Any]:
    """The writer summaries go to in this thread (the last one pushed with
    ``push_summary_writer``, else the one of ``set_default_writer``), or None
    (summaries are then no-ops)."""
    return _current_writer()


def push_summary_writer(writer: Optional[Any]) -> None:
    """Send this thread's summaries to ``writer`` until the matching
    ``pop_summary_writer`` (e.g. an evaluator writing to its own folder).
    Pushes nest; ``None`` silences summaries in between. Other threads keep
    their writer.

    Raises:
        TypeError: ``writer`` is neither None nor a summary writer.
    """
    _check_writer(writer)
    _remember(writer)
    _writer_stack().append(writer)


def pop_summary_writer() -> Optional[Any]:
    """Undo the last ``push_summary_writer`` of this thread and return the
    writer it pushed.

    Raises:
        IndexError: this thread has no pushed writer left.
    """
    stack = _writer_stack()
    if not stack:
        raise IndexError("pop_summary_writer: no summary writer was pushed in this thread")
    return stack.pop()


def enable_summary(flag: bool = True) -> None:
    """Turn all summaries on or off."""
    global _summary_enabled
    _summary_enabled = bool(flag)


def disable_summary() -> None:
    """Turn all summaries off (same as ``enable_summary(False)``)."""
    enable_summary(False)


def should_summarize_output(flag: Optional[bool] = None) -> bool:
    """Get or set the "summarize network outputs" switch.

    Args:
        flag: when given, the new value of the switch (off at start).
    Returns:
        bool: whether outputs should be summarized now: the switch is on and
        ``should_record_summaries()`` holds.
    """
    global _summarize_output
    if flag is not None:
        _summarize_output = bool(flag)
    return _summarize_output and should_record_summaries()


def is_summary_enabled() -> bool:
    """Whether summaries are turned on (see ``enable_summary``)."""
    return _summary_enabled


@contextlib.contextmanager
def record_if(should_record: Union[bool, Callable[[], bool]]) -> Iterator[None]:
    """Within the context, summaries are written only when ``should_record``
    (a bool or a callable returning one, evaluated at each summary) is true."""
    condition = should_record if callable(should_record) else (lambda: bool(should_record))
    stack = _record_if_stack()
    stack.append(condition)
    try:
        yield
    finally:
        stack.pop()


def should_record_summaries() -> bool:
    """Whether a summary call made now would be written."""
    return _summary_enabled and _current_writer() is not None and bool(_record_if_stack()[-1]())


class EnsureSummary:
    """Write summaries that may miss their interval at the next chance.

    Some summaries are produced only at certain moments (e.g. when an episode
    ends), which may not coincide with an iteration where
    ``should_record_summaries()`` holds, so they would rarely or never be
    written. Call ``tick()`` once per iteration; the summaries written inside
    ``with ensure_summary:`` are then recorded either when
    ``should_record_summaries()`` holds or when an iteration since the last
    recorded entry wanted summaries (a missed interval).

    Example::

        ensure = alf.summary.EnsureSummary()
        for it in range(n):
            with alf.summary.record_if(lambda: it % 100 == 0):
                ensure.tick()
                if episode_ended:
                    with ensure:
                        alf.summary.scalar("episode_return", ret)
    """

    def __init__(self):
        """Create one with no missed interval."""
        self._pending = False
        self._entered: List[Any] = []

    @property
    def pending(self) -> bool:
        """Whether an interval was missed (the next entry records)."""
        return self._pending

    def tick(self) -> None:
        """Note an iteration: if summaries are recorded now, the next entry
        of the context records (unless one already did)."""
        if should_record_summaries():
            self._pending = True

    def __enter__(self) -> "EnsureSummary":
        pending = self._pending
        outer = _record_if_stack()[-1]
        context = record_if(lambda: pending or bool(outer()))
        context.__enter__()
        self._entered.append((context, should_record_summaries()))
        return self

    def __exit__(self, *exc: Any) -> None:
        context, recorded = self._entered.pop()
        context.__exit__(*exc)
        if recorded and exc[0] is None:
            self._pending = False


# ---- scopes ---------------------------------------------------------------
class scope:
    """A name scope: summary names written inside are prefixed with
    ``"outer/inner/"``. The prefix is fixed when the object is created, so a
    scope made in one place can be entered later elsewhere (e.g. passed to a
    helper that writes summaries); entering yields the full scope name.
    """

    def __init__(self, name: str):
        if not isinstance(name, str):
            raise TypeError(f"name must be a str; got {type(name).__name__}")
        outer = _scope_stack()[-1]
        self._full_name = f"{outer}{name}/" if name else outer

    def __enter__(self) -> str:
        _scope_stack().append(self._full_name)
        return self._full_name

    def __exit__(self, *exc: Any) -> None:
        _scope_stack().pop()


def scope_name() -> str:
    """The full name of the current summary scope, e.g. ``"algo/actor/"``
    (``""`` outside any scope)."""
    return _scope_stack()[-1]


def enter_summary_scope(method: Callable) -> Callable:
    """Decorate a method to run inside ``scope(self._name)``.

    The object the method belongs to must have a ``_name`` attribute (a
    str), used as the scope name; this replaces ``with
    alf.summary.scope(self._name):`` at the top of the method.

    Raises:
        TypeError: ``method`` is not callable; when the method is called,
            ``self._name`` is missing or not a str.
    """
    if not callable(method):
        raise TypeError(f"method must be callable; got {type(method).__name__}")

    @functools.wraps(method)
    def wrapped(self, *args, **kwargs):
        name = getattr(self, "_name", None)
        if not isinstance(name, str):
            raise TypeError(
                f"enter_summary_scope: {type(self).__name__}._name must be a str naming the "
                f"summary scope; got {type(name).__name__}"
            )
        with scope(name):
            return method(self, *args, **kwargs)

    return wrapped


def _full_name(name: str) -> str:
    return _scope_stack()[-1] + name


def _step(step: Optional[Union[int, torch.Tensor]]) -> int:
    return int(_global_counter if step is None else step)


def _scalar_value(data: Any) -> float:
    """``data`` (a number, or a tensor/array of one element of any dtype) as
    a float."""
    if not isinstance(data, torch.Tensor):
        data = torch.as_tensor(np.asarray(data))
    if data.numel() != 1:
        raise ValueError(f"data must hold a single value; got shape {list(data.shape)}")
    # .item() reads every dtype, bfloat16 included (numpy has no bfloat16)
    return float(data.reshape(()).item())


def _float64_values(data: Any) -> np.ndarray:
    """The values of ``data`` as a flat float64 array."""
    if isinstance(data, torch.Tensor):
        return data.detach().reshape(-1).to("cpu", torch.float64).numpy()
    return np.asarray(data, dtype=np.float64).reshape(-1)


# ---- summary writers ------------------------------------------------------
def scalar(
    name: str,
    data: Any,
    step: Optional[Union[int, torch.Tensor]] = None,
    average_over_summary_interval: bool = False,
) -> None:
    """Write a scalar.

    Args:
        name: tag, prefixed with the current scope.
        data (number | Tensor): the value: a number or a one-element
            tensor/array (any shape, any dtype).
        step: step of the value; defaults to the global counter.
        average_over_summary_interval: accumulate values given while
            summaries are not recorded and write their mean at the next
            recorded call.
    Raises:
        ValueError: ``data`` holds more than one value (when it is read, i.e.
            when the call writes or accumulates).
    """
    tag = _full_name(name)
    if average_over_summary_interval and _summary_enabled and _current_writer() is not None:
        value = _scalar_value(data)
        pending = _pending_averages.setdefault(tag, [0.0, 0])
        pending[0] += value
        pending[1] += 1
        if not _record_if_stack()[-1]():
            return
        value = pending[0] / pending[1]
        del _pending_averages[tag]
    elif not should_record_summaries():
        return
    else:
        value = _scalar_value(data)
    _current_writer().add_scalar(tag, value, global_step=_step(step))


def _check_bins(bins: Any) -> Any:
    if isinstance(bins, str):
        return bins
    if isinstance(bins, (bool, np.bool_)):
        raise TypeError("bins must be an int, a str or a sequence of bin edges; got bool")
    if isinstance(bins, (int, np.integer)):
        if bins < 1:
            raise ValueError(f"bins must be >= 1; got {bins}")
        return int(bins)
    edges = _float64_values(bins)
    if edges.size < 2 or not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
        raise ValueError(
            "bins must be an int, a str or at least 2 finite, increasing bin edges; "
            f"got {edges.tolist()}"
        )
    return edges


def histogram(
    name: str,
    data: Any,
    step: Optional[Union[int, torch.Tensor]] = None,
    bins: Any = 30,
    walltime: Optional[float] = None,
    max_bins: Optional[int] = None,
) -> None:
    """Write a histogram of the values of ``data`` (any shape, any real
    dtype).

    Args:
        name: tag, prefixed with the current scope.
        data (Tensor | array-like): the values; empty data writes nothing.
        step: step of the histogram; defaults to the global counter.
        bins (int | str | sequence): the number of equal-width bins between
            the smallest and largest value (30, as in ALF), a NumPy binning
            rule (``"auto"``, ``"fd"``, ``"tensorflow"``, ...) or the bin
            edges (values outside them are not counted).
        walltime: event time (seconds since the epoch); defaults to now.
        max_bins: merge neighbouring bins to keep at most this many.
    Raises:
        ValueError: ``data`` holds NaN or infinite values, or ``bins`` is
            not a positive count / increasing finite edges (``bins`` is
            checked even when nothing is recorded).
    """
    bins = _check_bins(bins)
    if not should_record_summaries():
        return
    tag = _full_name(name)
    values = _float64_values(data)
    if values.size == 0:
        return
    if not np.all(np.isfinite(values)):
        raise ValueError(f"data of histogram {tag!r} holds NaN or infinite values")
    # walltime/max_bins only when given: any writer with torch's
    # add_histogram(tag, values, global_step, bins) keeps working
    extra = {"walltime": walltime, "max_bins": max_bins}
    extra = {k: v for k, v in extra.items() if v is not None}
    _current_writer().add_histogram(tag, values, global_step=_step(step), bins=bins, **extra)


def text(name: str, data: Any, step: Optional[Union[int, torch.Tensor]] = None) -> None:
    """Write text (a str, or a list of str joined by newlines)."""
    if not should_record_summaries():
        return
    if isinstance(data, (list, tuple)):
        data = "\n".join(str(d) for d in data)
    _current_writer().add_text(_full_name(name), str(data), global_step=_step(step))


def _add_image_summary(
    tag: str, encoded: bytes, shape: Sequence[int], step: Any, walltime: Optional[float]
) -> None:
    """Write an image summary (PNG or GIF bytes) to the current writer."""
    from tensorboard.compat.proto.summary_pb2 import Summary

    writer = _current_writer()
    file_writer = getattr(writer, "_get_file_writer", None)
    if file_writer is None:
        raise TypeError(
            "images and video need a torch SummaryWriter (create_summary_writer); "
            f"the current writer is a {type(writer).__name__}"
        )
    height, width, channels = shape
    image = Summary.Image(
        height=height, width=width, colorspace=channels, encoded_image_string=encoded
    )
    summary = Summary(value=[Summary.Value(tag=tag, image=image)])
    file_writer().add_summary(summary, _step(step), walltime)


def images(
    name: str,
    data: Any,
    dataformats: str = "NCHW",
    step: Optional[Union[int, torch.Tensor]] = None,
    walltime: Optional[float] = None,
) -> None:
    """Write a batch of images as one PNG image summary, tiled in a grid of
    ``ceil(sqrt(N))`` columns (row-major, unused cells black).

    Args:
        name: tag, prefixed with the current scope.
        data (Tensor | array): images in layout ``dataformats`` with 1
            (gray), 3 (RGB) or 4 (RGBA) channels: floats in [0, 1] (scaled
            by 255 and rounded), or integers in [0, 255] (uint8 as is);
            values outside are clipped.
        dataformats: one of ``"NCHW"`` (default), ``"NHWC"``, ``"CHW"``,
            ``"HWC"``, ``"HW"``, ``"NHW"``.
        step: step of the summary; defaults to the global counter.
        walltime: event time (seconds since the epoch); defaults to now.
    Raises:
        ValueError: unknown ``dataformats``, a shape that does not match it,
            a channel count other than 1, 3 or 4, or no pixels.
        TypeError: non-numeric data.
    """
    if not should_record_summaries():
        return
    pixels = _media.grid(_media.images_to_nhwc(data, dataformats))
    _add_image_summary(_full_name(name), _media.encode_png(pixels), pixels.shape, step, walltime)


def video(
    name: str,
    data: Any,
    fps: float = 4,
    step: Optional[Union[int, torch.Tensor]] = None,
    walltime: Optional[float] = None,
) -> None:
    """Write videos as one looping animated GIF (an image summary shown in
    TensorBoard's Images tab); the N videos are tiled per frame as in
    ``images``.

    Needs Pillow (``pip install 'alf-math[video]'``).

    Args:
        name: tag, prefixed with the current scope.
        data (Tensor | array): ``[N, T, C, H, W]`` videos (as torch's
            ``add_video``), C in 1, 3 or 4 (alpha is dropped), pixel values
            as in ``images``.
        fps: frames per second (> 0; GIF stores frame durations in 1/100 s).
        step: step of the summary; defaults to the global counter.
        walltime: event time (seconds since the epoch); defaults to now.
    Raises:
        ValueError: ``fps`` is not a positive finite number, or ``data`` is
            not ``[N, T, C, H, W]`` with 1, 3 or 4 channels and no empty dim.
        ImportError: Pillow is not installed (when the call records).
    """
    if (
        isinstance(fps, bool)
        or not isinstance(fps, (int, float))
        or not (math.isfinite(fps) and fps > 0)
    ):
        raise ValueError(f"fps must be a positive finite number; got {fps!r}")
    if not should_record_summaries():
        return
    array = _media.to_numpy(data, "data")
    if array.ndim != 5:
        raise ValueError(f"data must be [N, T, C, H, W]; got shape {list(array.shape)}")
    n, t, c, h, w = array.shape
    if c not in (1, 3, 4) or 0 in (n, t, h, w):
        raise ValueError(
            "data must be [N, T, C, H, W] with C in 1, 3 or 4 and no empty dim; "
            f"got shape {list(array.shape)}"
        )
    frames = _media.to_uint8(np.transpose(array, (1, 0, 3, 4, 2)), "data")[..., : min(c, 3)]
    frames = _media.grid(frames)
    encoded = _media.encode_gif(frames, float(fps))
    _add_image_summary(_full_name(name), encoded, frames.shape[1:], step, walltime)


def embedding(
    name: str,
    data: Any,
    step: Optional[Union[int, torch.Tensor]] = None,
    metadata: Optional[Sequence[Any]] = None,
    label_img: Any = None,
    metadata_header: Optional[Sequence[Any]] = None,
) -> None:
    """Write an embedding for TensorBoard's projector.

    The files follow the layout of torch's ``add_embedding``: under the
    writer's log folder, ``<step:05d>/<tag>/tensors.tsv`` (one row per
    point), ``metadata.tsv`` and ``sprite.png`` when given, and an entry
    ``"<tag>:<step:05d>"`` in ``projector_config.pbtxt`` (entries of other
    tags and steps are kept; writing the same tag and step again replaces
    it). Every file is replaced atomically.

    Args:
        name: tag, prefixed with the current scope (``/`` is escaped as
            ``%2f`` in the folder name).
        data (Tensor | array): ``[N, D]`` points.
        step: step of the embedding; defaults to the global counter.
        metadata (list): N labels (or N rows of ``len(metadata_header)``
            values when ``metadata_header`` is given).
        label_img (Tensor | array): ``[N, C, H, W]`` images of the points,
            pixel values as in ``images``; tiled into a square sprite.
        metadata_header (list): column names of multi-column metadata.
    Raises:
        ValueError: ``data`` is not 2-D, or ``metadata``/``label_img`` do
            not hold N entries, or a metadata row does not match the header.
        TypeError: the current writer has no log folder.
    """
    if not should_record_summaries():
        return
    matrix = _media.to_numpy(data, "data")
    if matrix.ndim != 2:
        raise ValueError(f"data must be [N, D]; got shape {list(matrix.shape)}")
    n = matrix.shape[0]
    if metadata is not None:
        metadata = list(metadata)
        if len(metadata) != n:
            raise ValueError(
                f"metadata must have {n} entries (one per row of data); got {len(metadata)}"
            )
        if metadata_header:
            for i, row in enumerate(metadata):
                if len(row) != len(metadata_header):
                    raise ValueError(
                        f"metadata[{i}] must have {len(metadata_header)} values "
                        f"(len(metadata_header)); got {len(row)}"
                    )
    sprite = None
    if label_img is not None:
        sprite = _media.images_to_nhwc(label_img, "NCHW", "label_img")
        if sprite.shape[0] != n:
            raise ValueError(
                f"label_img must hold {n} images (one per row of data); got {sprite.shape[0]}"
            )
    writer = _current_writer()
    get_logdir = getattr(writer, "get_logdir", None)
    if get_logdir is None:
        raise TypeError(
            f"embedding needs a writer with a log folder (get_logdir); got {type(writer).__name__}"
        )
    _media.write_embedding(
        get_logdir(), _full_name(name), _step(step), matrix, metadata, sprite, metadata_header
    )
