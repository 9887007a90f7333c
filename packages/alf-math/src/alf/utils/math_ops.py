"""Various math ops: n-ary reductions, soft bounds, invertible value
transforms and small activation helpers.

Every function works element-wise on tensors of any shape and dtype-follows
its input (float32 in, float32 out) unless its docstring says otherwise.
"""

import abc
import math
from typing import Any, Iterable, Union

import torch
import torch.nn.functional as F

from alf import nest
from alf.utils._math_checks import check_hinge_softness, is_real

__all__ = [
    "InvertibleTransform",
    "Log1pTransform",
    "Softsign",
    "Softsign_",
    "Sqrt1pTransform",
    "SqrtLinearTransform",
    "add_ignore_empty",
    "add_n",
    "argmin",
    "binary_neg_entropy",
    "clipped_exp",
    "identity",
    "max_n",
    "min_n",
    "mul_n",
    "normalize_min_max",
    "shuffle",
    "softclip",
    "softclip_tf",
    "softlower",
    "softsign",
    "softsign_",
    "softupper",
    "square",
    "sum_to_leftmost",
    "swish",
    "weighted_reduce_mean",
]

Bound = Union[float, torch.Tensor]


def identity(x: Any) -> Any:
    """Return ``x`` unchanged (an identity activation usable as a placeholder)."""
    return x


def clipped_exp(
    value: torch.Tensor, clip_value_min: float = -20, clip_value_max: float = 2
) -> torch.Tensor:
    """``exp(clamp(value, clip_value_min, clip_value_max))``.

    Args:
        value (Tensor): input of any shape (floating dtype).
        clip_value_min (float): the minimum value to clip by.
        clip_value_max (float): the maximum value to clip by.

    Returns:
        Tensor of the shape and dtype of ``value``.

    Raises:
        ValueError: ``clip_value_min > clip_value_max``.
    """
    if clip_value_min > clip_value_max:
        raise ValueError(
            f"clip_value_min must be <= clip_value_max; got clip_value_min="
            f"{clip_value_min}, clip_value_max={clip_value_max}"
        )
    return torch.exp(torch.clamp(value, clip_value_min, clip_value_max))


def _reduce_n(inputs: Iterable[torch.Tensor], op, name: str) -> torch.Tensor:
    iterator = iter(inputs)
    try:
        result = next(iterator)
    except StopIteration:
        raise ValueError(f"{name}: inputs must contain at least one tensor; got none") from None
    for x in iterator:
        result = op(result, x)
    return result


def add_n(inputs: Iterable[torch.Tensor]) -> torch.Tensor:
    """Element-wise sum of the tensors in ``inputs`` (shapes broadcast).

    Raises:
        ValueError: ``inputs`` is empty.
    """
    return _reduce_n(inputs, torch.add, "add_n")


def mul_n(inputs: Iterable[torch.Tensor]) -> torch.Tensor:
    """Element-wise product of the tensors in ``inputs`` (shapes broadcast).

    Raises:
        ValueError: ``inputs`` is empty.
    """
    return _reduce_n(inputs, torch.mul, "mul_n")


def max_n(inputs: Iterable[torch.Tensor]) -> torch.Tensor:
    """Element-wise maximum of the tensors in ``inputs`` (shapes broadcast).

    Raises:
        ValueError: ``inputs`` is empty.
    """
    return _reduce_n(inputs, torch.maximum, "max_n")


def min_n(inputs: Iterable[torch.Tensor]) -> torch.Tensor:
    """Element-wise minimum of the tensors in ``inputs`` (shapes broadcast).

    Raises:
        ValueError: ``inputs`` is empty.
    """
    return _reduce_n(inputs, torch.minimum, "min_n")


def add_ignore_empty(x: Any, y: Any) -> Any:
    """``x + y`` where ``None`` or ``()`` stands for zero.

    Args:
        x (Tensor | None | ()): first operand.
        y (Tensor | None | ()): second operand.

    Returns:
        ``x + y``; the other operand when one is empty; ``x`` when both are
        (as ALF: ``add_ignore_empty(None, ())`` is ``None``).
    """

    def empty(v):
        return v is None or (isinstance(v, tuple) and len(v) == 0)

    if empty(y):
        return x
    if empty(x):
        return y
    return x + y


def square(x: torch.Tensor) -> torch.Tensor:
    """``x * x`` element-wise."""
    return x * x


def swish(x: torch.Tensor) -> torch.Tensor:
    """Swish activation ``x * sigmoid(x)`` (arXiv:1710.05941)."""
    return x * torch.sigmoid(x)


def argmin(x: torch.Tensor) -> torch.Tensor:
    """Deterministic row-wise argmin: the column of the *first* minimum.

    Unlike ``torch.argmin``, whose choice among equal minima is unspecified,
    the lowest column index wins.

    Args:
        x (Tensor): shape ``[B, N]`` with ``N >= 1``.

    Returns:
        int64 Tensor of shape ``[B]``.

    Raises:
        ValueError: ``x`` is not rank 2 or has no columns.
    """
    if x.ndim != 2 or x.shape[1] == 0:
        raise ValueError(f"x must be a rank-2 tensor with >= 1 column; got shape {tuple(x.shape)}")
    n = x.shape[1]
    is_min = x == x.min(dim=1, keepdim=True).values
    columns = torch.arange(n, device=x.device).expand_as(x)
    # Rows whose minimum is NaN match nowhere: fall back to the first NaN.
    is_min = is_min | (torch.isnan(x) & ~is_min.any(dim=1, keepdim=True))
    return torch.where(is_min, columns, torch.full_like(columns, n)).min(dim=1).values


def shuffle(values: Any) -> Any:
    """Shuffle every tensor of a nest along dimension 0 by one random order.

    Args:
        values (nested Tensor): tensors sharing ``shape[0] = B``.

    Returns:
        nest of the same structure; each tensor is ``t[perm]`` for one random
        permutation ``perm`` of ``range(B)`` (drawn from torch's global RNG).

    Raises:
        ValueError: the tensors disagree on ``shape[0]`` or ``values`` holds
            no tensor.
    """
    tensors = [(path, t) for path, t in nest.flatten_with_path(values) if t is not None]
    if not tensors:
        raise ValueError("values must hold at least one tensor; got none")
    sizes = {path: (t.shape[0] if len(t.shape) > 0 else None) for path, t in tensors}
    batch_size = sizes[tensors[0][0]]
    if batch_size is None or any(s != batch_size for s in sizes.values()):
        raise ValueError(f"values must share shape[0]; got {sizes}")
    perm = torch.randperm(batch_size, device=tensors[0][1].device)
    return nest.map_structure(lambda t: t[perm], values)


def binary_neg_entropy(p: torch.Tensor) -> torch.Tensor:
    """Negative entropy ``p log p + (1 - p) log(1 - p)`` of a binary outcome.

    ``0 log 0`` counts as 0, so ``p`` in ``{0, 1}`` gives 0.

    Args:
        p (Tensor): probability of one outcome, values in ``[0, 1]``.

    Returns:
        Tensor with the shape of ``p``.
    """
    q = 1 - p
    return torch.xlogy(p, p) + torch.xlogy(q, q)


def normalize_min_max(x: torch.Tensor) -> torch.Tensor:
    """Rescale each sample ``x[i]`` linearly so its minimum is 0 and its
    maximum 1 (MuZero, Appendix G).

    A constant sample (max == min) becomes all zeros. A sample whose range
    ``max - min`` exceeds the dtype's largest value is halved first (exact at
    such magnitudes), so it stays finite.

    Args:
        x (Tensor): a batch ``[B, ...]`` of samples (floating dtype); ``B`` and
            the sample size may be 0.

    Returns:
        Tensor of the shape of ``x``.

    Raises:
        ValueError: ``x`` is a scalar.
    """
    if x.ndim == 0:
        raise ValueError("x must have a batch dimension; got a scalar tensor")
    flat = x.reshape(x.shape[0], math.prod(x.shape[1:]))
    if flat.shape[1] == 0:
        return x.clone()
    lo = flat.min(dim=1, keepdim=True).values
    hi = flat.max(dim=1, keepdim=True).values
    wide = torch.isinf(hi - lo) & torch.isfinite(lo) & torch.isfinite(hi)
    half = torch.where(wide, torch.full_like(lo, 0.5), torch.ones_like(lo))
    flat, lo, hi = flat * half, lo * half, hi * half
    span = hi - lo
    safe = torch.where(span > 0, span, torch.ones_like(span))
    return ((flat - lo) / safe).reshape(x.shape)


def sum_to_leftmost(value: torch.Tensor, dim: int) -> torch.Tensor:
    """Sum out all but the ``dim`` leftmost dimensions of ``value``.

    Args:
        value (Tensor): any tensor.
        dim (int): number of leftmost dims to keep (``>= 0``).

    Returns:
        Tensor of shape ``value.shape[:dim]`` (``value`` itself when
        ``value.ndim <= dim``).

    Raises:
        ValueError: ``dim`` is negative.
    """
    if dim < 0:
        raise ValueError(f"dim must be >= 0; got {dim}")
    if value.ndim <= dim:
        return value
    return value.sum(dim=list(range(dim, value.ndim)))


def weighted_reduce_mean(x: torch.Tensor, weight: torch.Tensor, dim: Any = ()) -> torch.Tensor:
    """Weighted mean ``sum(x * w) / sum(w)`` over ``dim``.

    A total weight of 0 is treated as 1e-10 (the result is then 0 rather
    than NaN). Half-precision inputs are summed in float32, so sums beyond
    the float16 range do not overflow.

    Args:
        x (Tensor): values (floating dtype).
        weight (Tensor): weights, broadcastable to ``x``.
        dim (int | tuple[int] | None): dimensions to reduce; ``None`` or
            ``()`` reduce all of them.

    Returns:
        Tensor: ``x`` with the dimensions in ``dim`` reduced.

    Raises:
        ValueError: ``weight`` cannot be broadcast to ``x``.
    """
    try:
        weight = torch.broadcast_to(weight, x.shape)
    except RuntimeError:
        raise ValueError(
            f"weight of shape {tuple(weight.shape)} cannot be broadcast to x of "
            f"shape {tuple(x.shape)}"
        ) from None
    acc = torch.promote_types(x.dtype, torch.float32) if x.dtype.is_floating_point else x.dtype
    weight = weight.to(acc)
    if dim is None or (isinstance(dim, (tuple, list)) and len(dim) == 0):
        dim = list(range(x.ndim))
    total = weight.sum(dim=dim).clamp_min(1e-10)
    mean = (x.to(acc) * weight).sum(dim=dim) / total
    return mean if acc == x.dtype else mean.to(x.dtype)


# --------------------------------------------------------------------------
# Soft bounds


_softness = check_hinge_softness


def _softplus(x: torch.Tensor, s: float) -> torch.Tensor:
    """``s * log(1 + exp(x / s))`` computed stably."""
    return s * F.softplus(x / s)


def _as_bound(bound: Bound, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(bound, dtype=like.dtype, device=like.device)


def _check_low_high(low: Bound, high: Bound) -> None:
    """``low < high`` everywhere. The values of CUDA tensors are not read
    (that would synchronize the device on every call)."""
    on_device = [b for b in (low, high) if isinstance(b, torch.Tensor) and b.device.type != "cpu"]
    if on_device:
        return
    lo = torch.as_tensor(low, dtype=torch.float64)
    hi = torch.as_tensor(high, dtype=torch.float64)
    if not bool(torch.all(lo < hi)):
        raise ValueError(
            f"low must be < high everywhere; got low={lo.tolist()}, high={hi.tolist()}"
        )


def softlower(x: torch.Tensor, low: Bound, hinge_softness: float = 1.0) -> torch.Tensor:
    """Softly lower-bound ``x`` by ``low``: ``s * softplus((x - low) / s) + low``
    with ``s = hinge_softness``.

    The result is > ``low``, increasing, and tends to ``x`` for ``x >> low``.

    Args:
        x (Tensor): input (floating dtype).
        low (float | Tensor): the lower bound, broadcastable to ``x``.
        hinge_softness (float): positive, finite; larger means a smoother transition.

    Returns:
        Tensor of the broadcast shape of ``x`` and ``low``.

    Raises:
        ValueError: ``hinge_softness`` is not positive and finite.
    """
    s = _softness(hinge_softness)
    low = _as_bound(low, x)
    return _softplus(x - low, s) + low


def softupper(x: torch.Tensor, high: Bound, hinge_softness: float = 1.0) -> torch.Tensor:
    """Softly upper-bound ``x`` by ``high``: ``high - s * softplus((high - x) / s)``
    with ``s = hinge_softness``.

    The result is < ``high``, increasing, and tends to ``x`` for ``x << high``.

    Args:
        x (Tensor): input (floating dtype).
        high (float | Tensor): the upper bound, broadcastable to ``x``.
        hinge_softness (float): positive, finite; larger means a smoother transition.

    Returns:
        Tensor of the broadcast shape of ``x`` and ``high``.

    Raises:
        ValueError: ``hinge_softness`` is not positive and finite.
    """
    s = _softness(hinge_softness)
    high = _as_bound(high, x)
    return high - _softplus(high - x, s)


def softclip_tf(
    x: torch.Tensor, low: Bound, high: Bound, hinge_softness: float = 1.0
) -> torch.Tensor:
    """Softly squash ``x`` into ``(low, high)`` the way TensorFlow
    Probability's ``SoftClip`` bijector does::

        clipped = softupper(softlower(x, low), high)
        softclip_tf(x) = (clipped - high) / (high - softupper(low, high))
                         * (high - low) + high

    ``softupper(low, high) < low``, so the rescaling by
    ``(high - low) / (high - softupper(low, high))`` restores the lower
    bound; it makes the map mildly asymmetric.

    Args:
        x (Tensor): input (floating dtype).
        low (float | Tensor): lower bound, broadcastable to ``x``.
        high (float | Tensor): upper bound, broadcastable to ``x``; ``> low``.
        hinge_softness (float): positive, finite; larger means a smoother transition.

    Returns:
        Tensor with values in ``(low, high)``, increasing in ``x``.

    Raises:
        ValueError: ``hinge_softness`` is not positive and finite, or
            ``low >= high`` somewhere (bounds given as CUDA tensors are not
            checked, to avoid a device synchronization).
    """
    s = _softness(hinge_softness)
    _check_low_high(low, high)
    low, high = _as_bound(low, x), _as_bound(high, x)
    clipped = softupper(softlower(x, low, s), high, s)
    floor = softupper(low, high, s)
    return (clipped - high) / (high - floor) * (high - low) + high


def softclip(x: torch.Tensor, low: Bound, high: Bound, hinge_softness: float = 1.0) -> torch.Tensor:
    """Softly squash ``x`` into ``(low, high)``, symmetric about the middle
    of the interval.

    With ``s = hinge_softness`` and ``sp(u) = s log(1 + exp(u / s))``::

        softclip(x) = sp(l - x) - sp(x - h) + x      (1)
                    = sp(x - l) - sp(x - h) + l      (2)
                    = sp(l - x) - sp(h - x) + h      (3)

    Form (2) is used below ``low``, form (3) above ``high`` and form (1) in
    between, so no branch subtracts two large numbers. The map is increasing,
    ``softclip(low + high - x) = low + high - softclip(x)``, and its slope is
    ``1 - sigmoid((l - x) / s) - sigmoid((x - h) / s)``.

    Args:
        x (Tensor): input (floating dtype).
        low (float | Tensor): lower bound, broadcastable to ``x``.
        high (float | Tensor): upper bound, broadcastable to ``x``; ``> low``.
        hinge_softness (float): positive, finite; larger means a smoother transition.

    Returns:
        Tensor with values in ``[low, high]`` (strictly inside up to rounding).

    Raises:
        ValueError: ``hinge_softness`` is not positive and finite, or
            ``low >= high`` somewhere (bounds given as CUDA tensors are not
            checked, to avoid a device synchronization).
    """
    s = _softness(hinge_softness)
    _check_low_high(low, high)
    low, high = _as_bound(low, x), _as_bound(high, x)
    sp_below_low = _softplus(low - x, s)
    sp_above_high = _softplus(x - high, s)
    below = _softplus(x - low, s) - sp_above_high + low
    above = sp_below_low - _softplus(high - x, s) + high
    middle = sp_below_low - sp_above_high + x
    return torch.where(x < low, below, torch.where(x > high, above, middle))


# --------------------------------------------------------------------------
# Softsign as autograd functions


class Softsign(torch.autograd.Function):
    """Softsign ``x / (1 + |x|)`` with a hand-written backward.

    Saves the input, so it uses more memory than ``Softsign_`` but its
    gradient ``1 / (1 + |x|)^2`` is exact even where ``|y|`` rounds to 1.
    """

    @staticmethod
    def forward(ctx, input: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(input)
        return input / (1 + input.abs())

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> torch.Tensor:
        (input,) = ctx.saved_tensors
        return grad_output / (1 + input.abs()).square()


class Softsign_(torch.autograd.Function):
    """In-place softsign: overwrites its input with ``x / (1 + |x|)``.

    Only the output is kept for backward, using
    ``dy/dx = 1 / (1 + |x|)^2 = (1 - |y|)^2``; this saves memory but loses
    precision where ``|y|`` is close to 1. The input must not be a leaf that
    requires grad (autograd forbids modifying those in place).
    """

    @staticmethod
    def forward(ctx, input: torch.Tensor) -> torch.Tensor:
        input.div_(input.abs().add_(1))
        ctx.mark_dirty(input)
        ctx.save_for_backward(input)
        return input

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> torch.Tensor:
        (output,) = ctx.saved_tensors
        return grad_output * (1 - output.abs()).square()


softsign = Softsign.apply
softsign_ = Softsign_.apply


# --------------------------------------------------------------------------
# Invertible value transforms


class InvertibleTransform(abc.ABC):
    """An odd, increasing, invertible element-wise map ``y = f(x)`` used to
    squash value targets (e.g. MuZero's value transform).

    Subclasses implement ``transform`` (``f``) and ``inverse_transform``
    (``f^-1``); both keep the shape and dtype of their input.
    """

    @abc.abstractmethod
    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """``f(x)``, element-wise."""

    @abc.abstractmethod
    def inverse_transform(self, y: torch.Tensor) -> torch.Tensor:
        """``f^-1(y)``, element-wise."""


class Log1pTransform(InvertibleTransform):
    """``y = alpha * sign(x) * log(1 + |x|)``; inverse
    ``x = sign(y) * expm1(|y| / alpha)``.

    Args:
        alpha (float): positive scale :math:`\\alpha`.

    Raises:
        ValueError: ``alpha`` is not positive and finite.
    """

    def __init__(self, alpha: float = 20):
        if not is_real(alpha) or not 0 < float(alpha) < math.inf:
            raise ValueError(f"alpha must be a positive finite number; got {alpha!r}")
        self._alpha = float(alpha)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return self._alpha * torch.sign(x) * torch.log1p(x.abs())

    def inverse_transform(self, y: torch.Tensor) -> torch.Tensor:
        return torch.sign(y) * torch.expm1(y.abs() / self._alpha)


class Sqrt1pTransform(InvertibleTransform):
    """MuZero's transform with epsilon = 0:
    ``y = sign(x) (sqrt(|x| + 1) - 1) = x / (sqrt(|x| + 1) + 1)``.

    The second form is used (precise for small ``x``); the inverse is
    ``x = y (|y| + 2)``.
    """

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return x / (torch.sqrt(x.abs() + 1) + 1)

    def inverse_transform(self, y: torch.Tensor) -> torch.Tensor:
        return y * (y.abs() + 2)


class SqrtLinearTransform(InvertibleTransform):
    """MuZero's transform ``y = sign(x) (sqrt(|x| + 1) - 1) + eps * x``.

    With ``t = sqrt(|x| + 1) - 1`` we have ``|y| = eps t^2 + (1 + 2 eps) t``,
    so the inverse is ``t = 2|y| / ((1 + 2 eps) + sqrt((1 + 2 eps)^2 + 4 eps |y|))``
    and ``x = sign(y) t (t + 2)``: no cancellation at any magnitude. It is
    evaluated as ``t = |y| / (c + sqrt(c) sqrt(c + |y| eps / c))`` with
    ``c = 1/2 + eps`` (``eps / c < 1``), which does not overflow where ``x``
    is representable.

    Args:
        eps (float): :math:`\\epsilon >= 0` (0 gives ``Sqrt1pTransform``).

    Raises:
        ValueError: ``eps`` is negative or infinite.
    """

    def __init__(self, eps: float = 1e-3):
        if not is_real(eps) or not 0 <= float(eps) < math.inf:
            raise ValueError(f"eps must be a non-negative finite number; got {eps!r}")
        self._eps = float(eps)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return x / (torch.sqrt(x.abs() + 1) + 1) + self._eps * x

    def inverse_transform(self, y: torch.Tensor) -> torch.Tensor:
        c = 0.5 + self._eps
        a = y.abs()
        t = a / (c + math.sqrt(c) * torch.sqrt(c + a * (self._eps / c)))
        return torch.sign(y) * t * (t + 2)
