"""Argument validators shared by alf-math and the packages built on it.

Private to the alf-utils distributions (alf-dist uses :func:`check_hinge_softness`
so that ``math_ops`` and ``dist_utils`` accept and refuse the same values); not
part of the public API.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import torch

__all__ = ["check_hinge_softness", "is_integral", "is_real"]


def is_real(value: Any) -> bool:
    """Whether ``value`` is a real number: ``int``, ``float`` or a NumPy real scalar,
    not a ``bool``."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def is_integral(value: Any) -> bool:
    """Whether ``value`` is an integer (``int`` or a NumPy integer), not a ``bool``."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_hinge_softness(hinge_softness: Any) -> float:
    """Return ``hinge_softness`` as a float after checking it.

    Accepted: a real number (``int``, ``float``, a NumPy real scalar such as
    ``np.float32(0.5)``) or a one-element real tensor, positive and finite.

    Raises:
        TypeError: ``hinge_softness`` is not a real number (a ``bool``, a string,
            a complex number, a tensor of several elements or of bool/complex dtype).
        ValueError: it is not positive, or not finite (NaN, inf).
    """
    value = hinge_softness
    if isinstance(value, torch.Tensor):
        if value.numel() != 1 or value.dtype.is_complex or value.dtype == torch.bool:
            raise TypeError(
                "hinge_softness must be a positive finite number or a one-element real "
                f"tensor; got a {value.dtype} tensor of shape {tuple(value.shape)}"
            )
        value = value.item()
    if not is_real(value):
        raise TypeError(
            f"hinge_softness must be a positive finite number; got {type(value).__name__} "
            f"{hinge_softness!r}"
        )
    value = float(value)
    if not 0.0 < value < math.inf:
        raise ValueError(f"hinge_softness must be a positive finite number; got {hinge_softness!r}")
    return value
