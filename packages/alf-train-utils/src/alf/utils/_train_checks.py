"""Argument checks shared by the modules of alf-train-utils (private).

One rule for numeric arguments across the package: a bool, or anything that is
not an integer (``operator.index`` refuses it) where an int is expected, or not
a real number where a number is, is a ``TypeError``; NaN, or a value out of
range, is a ``ValueError``. The messages name the argument and what was
received, and they are raised before the caller changes any state.
"""

import math
import numbers
import operator
import os
from typing import Any, Optional

__all__ = ["check_int", "check_real", "check_path"]


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


def check_real(
    value: Any,
    name: str,
    minimum: Optional[float] = None,
    maximum: Optional[float] = None,
    *,
    exclusive_minimum: bool = False,
    finite: bool = True,
) -> float:
    """``value`` as a float.

    Real numbers are ``numbers.Real`` instances (``int``, ``float``, NumPy
    integers and floats); ``bool`` is refused.

    Args:
        value: the argument.
        name: its name, for the messages.
        minimum, maximum: the range allowed (None: no bound).
        exclusive_minimum: ``minimum`` itself is refused (``> minimum``).
        finite: refuse infinities (NaN is always refused).
    Returns:
        ``value`` as a ``float``.
    Raises:
        TypeError: ``"<name> must be a real number, got <type> <value>"``.
        ValueError: NaN, an infinity when ``finite``, or a value out of range.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    result = float(value)
    if math.isnan(result) or (finite and math.isinf(result)):
        raise ValueError(f"{name} must be {'finite' if finite else 'a number'}, got {result}")
    if minimum is not None:
        if exclusive_minimum and not result > minimum:
            raise ValueError(f"{name} must be > {minimum}, got {value!r}")
        if not result >= minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    if maximum is not None and not result <= maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value!r}")
    return result


def check_path(value: Any, name: str, nonempty: bool = False) -> str:
    """``value`` (a ``str`` or ``os.PathLike``) as a ``str``.

    Args:
        value: the argument.
        name: its name, for the messages.
        nonempty: refuse ``""``.
    Raises:
        TypeError: ``"<name> must be a str or os.PathLike, got <type>"``, or a
            path-like object giving bytes.
        ValueError: ``"<name> must be a non-empty path"`` (with ``nonempty``).
    """
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str or os.PathLike, got {type(value).__name__}")
    path = os.fspath(value)
    if not isinstance(path, str):
        raise TypeError(f"{name} must be a text path, got the bytes path {path!r}")
    if nonempty and not path:
        raise ValueError(f"{name} must be a non-empty path, got {value!r}")
    return path
