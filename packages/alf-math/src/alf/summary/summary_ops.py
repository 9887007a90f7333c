"""Implementation of the ``alf.summary`` API (see the package docstring)."""

import contextlib
import threading
from typing import Any, Callable, Dict, Iterator, List, Optional, Union

import numpy as np
import torch

__all__ = [
    "create_summary_writer",
    "enable_summary",
    "get_default_writer",
    "get_global_counter",
    "histogram",
    "increment_global_counter",
    "is_summary_enabled",
    "record_if",
    "reset_global_counter",
    "scalar",
    "scope",
    "set_default_writer",
    "set_global_counter",
    "should_record_summaries",
    "text",
]

_global_counter = torch.zeros((), dtype=torch.int64)
_default_writer: Optional[Any] = None
_summary_enabled = True
_state = threading.local()
_pending_averages: Dict[str, List[float]] = {}


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
    return SummaryWriter(
        os.path.expanduser(summary_dir), flush_secs=flush_secs, max_queue=max_queue
    )


def set_default_writer(writer: Optional[Any]) -> None:
    """Make ``writer`` (or ``None``: no summaries) the writer every summary
    call uses."""
    global _default_writer
    _default_writer = writer


def get_default_writer() -> Optional[Any]:
    """The writer summaries go to, or None (summaries are then no-ops)."""
    return _default_writer


def enable_summary(flag: bool = True) -> None:
    """Turn all summaries on or off."""
    global _summary_enabled
    _summary_enabled = bool(flag)


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
    return _summary_enabled and _default_writer is not None and bool(_record_if_stack()[-1]())


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
    if average_over_summary_interval and _summary_enabled and _default_writer is not None:
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
    writer = _default_writer
    if writer is not None:  # should_record_summaries() said so, or an average completed
        writer.add_scalar(tag, value, global_step=_step(step))


def histogram(
    name: str,
    data: Any,
    step: Optional[Union[int, torch.Tensor]] = None,
    bins: Union[str, int] = "tensorflow",
) -> None:
    """Write a histogram of the values of ``data`` (any shape)."""
    if not should_record_summaries():
        return
    values = _float64_values(data)
    writer = _default_writer
    if writer is None:  # should_record_summaries() rules this out
        return
    writer.add_histogram(_full_name(name), values, global_step=_step(step), bins=bins)


def text(name: str, data: Any, step: Optional[Union[int, torch.Tensor]] = None) -> None:
    """Write text (a str, or a list of str joined by newlines)."""
    if not should_record_summaries():
        return
    if isinstance(data, (list, tuple)):
        data = "\n".join(str(d) for d in data)
    writer = _default_writer
    if writer is None:  # should_record_summaries() rules this out
        return
    writer.add_text(_full_name(name), str(data), global_step=_step(step))
