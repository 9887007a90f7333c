"""Argument checks shared by the modules of alf-train-utils (private).

One rule for integer arguments across the package: a bool, or anything that is
not an integer (``operator.index`` refuses it), is a ``TypeError``; a value out
of range is a ``ValueError``. Both messages name the argument and what was
received, and both are raised before the caller changes any state.
"""

import operator
from typing import Any, Optional

__all__ = ["check_int"]


def check_int(value: Any, name: str, minimum: Optional[int] = None, expected: str = "an int") -> int:
    """``value`` as a Python int.

    Integers are what ``operator.index`` takes: ``int``, NumPy integers, and
    integer tensors of one element; ``bool`` is refused.

    Args:
        value: the argument.
        name: its name, for the messages.
        minimum: the smallest value allowed (None: no bound).
        expected: what the argument must be, for the type error's message.
    Returns:
        ``value`` as an ``int``.
    Raises:
        TypeError: ``"<name> must be <expected>, got <type> <value>"``.
        ValueError: ``"<name> must be >= <minimum>, got <value>"``.
    """
    if isinstance(value, bool):
        raise TypeError(f"{name} must be {expected}, got bool {value!r}")
    try:
        result = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be {expected}, got {type(value).__name__} {value!r}") from None
    if minimum is not None and result < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {result}")
    return result
