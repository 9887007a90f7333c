"""Default entropy targets and bounds derived from an action spec.

All functions take a ``BoundedTensorSpec``; each element of ``spec.shape``
is one action dimension with bounds ``[m, M]`` (``minimum``/``maximum``
broadcast to the shape). Results are Python floats (nats).
"""

import math

import numpy as np

from alf.tensor_specs import BoundedTensorSpec

__all__ = [
    "calc_default_max_entropy",
    "calc_default_target_entropy",
    "calc_default_target_entropy_quantized",
    "calc_uniform_log_prob",
]


def _bounds(spec, name: str = "spec"):
    """``(minimum, maximum)`` broadcast to ``spec.shape`` as float64 arrays."""
    if not isinstance(spec, BoundedTensorSpec):
        raise ValueError(f"{name} must be a BoundedTensorSpec; got {spec!r}")
    shape = tuple(spec.shape)
    low = np.broadcast_to(np.asarray(spec.minimum, dtype=np.float64), shape)
    high = np.broadcast_to(np.asarray(spec.maximum, dtype=np.float64), shape)
    return low, high


def _check_fraction(value, name: str, low_open: bool, high_closed: bool) -> float:
    ok = isinstance(value, (int, float)) and (value > 0 if low_open else value >= 0)
    ok = ok and (value <= 1 if high_closed else value < 1)
    if not ok:
        interval = ("(" if low_open else "[") + "0, 1" + ("]" if high_closed else ")")
        raise ValueError(f"{name} must be in {interval}; got {value!r}")
    return float(value)


def calc_default_target_entropy(spec: BoundedTensorSpec, min_prob: float = 0.1) -> float:
    """Calculate default target entropy.

    Continuous spec: the probability is supposed to concentrate uniformly on
    an interval of width ``min_prob * (M - m)``, giving
    ``sum log(min_prob * (M - m))``. Discrete spec with ``N = M - m + 1``
    values per dimension: the peak has probability ``1 - min_prob`` and the
    other ``N - 1`` values share ``min_prob`` uniformly, giving
    ``sum [min_prob (log(N - 1) - log(min_prob)) - (1 - min_prob) log(1 - min_prob)]``
    (0 for a dimension with a single value).

    Args:
        spec (BoundedTensorSpec): action spec.
        min_prob (float): in ``(0, 1)``.
    Returns:
        float: target entropy.
    Raises:
        ValueError: ``spec`` is not bounded or ``min_prob`` not in ``(0, 1)``.
    """
    low, high = _bounds(spec)
    p = _check_fraction(min_prob, "min_prob", low_open=True, high_closed=False)
    if spec.is_continuous():
        return float(np.sum(np.log(p * (high - low))))
    n = high - low + 1
    per_dim = p * (np.log(np.maximum(n - 1, 1)) - math.log(p)) - (1 - p) * math.log(1 - p)
    return float(np.sum(np.where(n > 1, per_dim, 0.0)))


def calc_default_max_entropy(spec: BoundedTensorSpec, fraction: float = 0.8) -> float:
    """Calc default max entropy: ``fraction`` of the entropy ``H`` of the
    uniform distribution over the spec, ``H = sum log(M - m)`` (continuous)
    or ``sum log(M - m + 1)`` (discrete): ``H * fraction`` when ``H >= 0``.
    A continuous spec narrower than 1 can have ``H < 0``, where
    ``H * fraction`` would exceed ``H``, the largest entropy possible; there
    the result is ``H / fraction`` (below ``H`` by the same ratio).

    Args:
        spec (BoundedTensorSpec): action spec.
        fraction (float): in ``(0, 1]``.
    Returns:
        float: a default max entropy for adjusting the entropy weight.
    Raises:
        ValueError: ``spec`` is not bounded or ``fraction`` not in ``(0, 1]``.
    """
    low, high = _bounds(spec)
    fraction = _check_fraction(fraction, "fraction", low_open=True, high_closed=True)
    width = high - low if spec.is_continuous() else high - low + 1
    max_ent = float(np.sum(np.log(width)))
    return max_ent * fraction if max_ent >= 0 else max_ent / fraction


def calc_default_target_entropy_quantized(
    spec: BoundedTensorSpec, num_bins: int, ent_per_action_dim: float = -1.0
) -> float:
    """Calc default target entropy for quantized continuous action.

    A continuous density with differential entropy ``h`` quantized into bins
    of width ``d = (M - m) / num_bins`` has discrete entropy about
    ``h - log(d)``. Per action dimension ``h = ent_per_action_dim``; the
    result is clipped to the range of a discrete entropy,
    ``[0, log(num_bins)]``, and summed over dimensions.

    Args:
        spec (BoundedTensorSpec): continuous action spec.
        num_bins (int): number of quantization bins (``>= 2``) representing
            the continuous action.
        ent_per_action_dim (float): desired entropy per action dimension for
            the non-quantized continuous action (-1.0 as suggested by SAC).
    Returns:
        float: target entropy for the quantized representation.
    Raises:
        ValueError: ``spec`` is not a continuous bounded spec or
            ``num_bins < 2``.
    """
    low, high = _bounds(spec)
    if not spec.is_continuous():
        raise ValueError(f"spec must be continuous; got {spec!r}")
    if not isinstance(num_bins, (int, np.integer)) or num_bins < 2:
        raise ValueError(f"num_bins must be an int >= 2; got {num_bins!r}")
    per_dim = ent_per_action_dim - np.log((high - low) / num_bins)
    return float(np.sum(np.clip(per_dim, 0.0, math.log(num_bins))))


def calc_uniform_log_prob(spec: BoundedTensorSpec) -> float:
    """Given an action spec, calculate the uniform log prob:
    ``-sum log(M - m)`` (continuous) or ``-sum log(M - m + 1)`` (discrete).

    Args:
        spec (BoundedTensorSpec): action spec (must be bounded).
    Returns:
        float: the log probability of any action under the uniform
        distribution over the spec.
    Raises:
        ValueError: ``spec`` is not a ``BoundedTensorSpec``.
    """
    low, high = _bounds(spec)
    width = high - low if spec.is_continuous() else high - low + 1
    return -float(np.sum(np.log(width)))
