"""Descriptions of tensors: shape and dtype, optionally with value bounds.

A ``TensorSpec`` describes one item (no batch dimension); methods that create
tensors take ``outer_dims`` (e.g. ``(B,)`` or ``(T, B)``) that are prepended
to ``spec.shape``.
"""

import operator
from typing import Any, Callable, Optional, Sequence, Tuple, Union

import numpy as np
import torch

__all__ = [
    "TensorSpec",
    "BoundedTensorSpec",
    "torch_dtype_to_str",
    "torch_dtype_from",
]

_NUMPY_TO_TORCH = {
    np.dtype(np.bool_): torch.bool,
    np.dtype(np.uint8): torch.uint8,
    np.dtype(np.int8): torch.int8,
    np.dtype(np.int16): torch.int16,
    np.dtype(np.int32): torch.int32,
    np.dtype(np.int64): torch.int64,
    np.dtype(np.float16): torch.float16,
    np.dtype(np.float32): torch.float32,
    np.dtype(np.float64): torch.float64,
    np.dtype(np.complex64): torch.complex64,
    np.dtype(np.complex128): torch.complex128,
}
_TORCH_TO_NUMPY = {v: k for k, v in _NUMPY_TO_TORCH.items()}


def _to_numpy_dtype(dtype: torch.dtype) -> np.dtype:
    try:
        return _TORCH_TO_NUMPY[dtype]
    except KeyError:
        raise TypeError(f"{torch_dtype_to_str(dtype)} has no NumPy dtype") from None


DTypeLike = Union[torch.dtype, np.dtype, type, str]
OuterDims = Optional[Union[int, Sequence[int], torch.Size]]


def torch_dtype_from(dtype: DTypeLike) -> torch.dtype:
    """Convert a torch dtype, NumPy dtype/type or name (``"float32"``) to a
    ``torch.dtype``.

    Raises:
        TypeError: ``dtype`` is not a dtype torch supports.
    """
    if isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, str) and hasattr(torch, dtype.replace("torch.", "")):
        candidate = getattr(torch, dtype.replace("torch.", ""))
        if isinstance(candidate, torch.dtype):
            return candidate
    try:
        return _NUMPY_TO_TORCH[np.dtype(dtype)]
    except (TypeError, KeyError):
        raise TypeError(f"dtype must be a torch or numpy dtype; got {dtype!r}") from None


def torch_dtype_to_str(dtype: torch.dtype) -> str:
    """``torch.float32`` -> ``"float32"``."""
    return str(torch_dtype_from(dtype)).replace("torch.", "")


def _as_shape(shape: Any, name: str = "shape") -> torch.Size:
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (int(shape),)
    if isinstance(shape, (str, bytes, bool)):
        raise TypeError(f"{name} must be a sequence of ints; got {shape!r}")
    try:
        items = tuple(shape)
        if any(isinstance(d, bool) for d in items):
            raise TypeError
        # operator.index refuses floats (int(2.5) would silently give 2)
        dims = tuple(operator.index(d) for d in items)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of ints; got {shape!r}") from None
    if any(d < 0 for d in dims):
        raise ValueError(f"{name} must have non-negative dims; got {dims}")
    return torch.Size(dims)


def _outer(outer_dims: OuterDims) -> torch.Size:
    if outer_dims is None:
        return torch.Size(())
    return _as_shape(outer_dims, "outer_dims")


class TensorSpec:
    """Shape and dtype of a tensor (without batch dimensions).

    Args:
        shape (Sequence[int] | int): the shape of one item.
        dtype (torch.dtype | numpy dtype | str): its dtype (default float32).
    """

    __slots__ = ("_shape", "_dtype")

    def __init__(self, shape: Union[int, Sequence[int]], dtype: DTypeLike = torch.float32):
        self._shape = _as_shape(shape)
        self._dtype = torch_dtype_from(dtype)

    @classmethod
    def from_spec(cls, spec: "TensorSpec") -> "TensorSpec":
        """A ``TensorSpec`` with the shape and dtype of ``spec``."""
        if not isinstance(spec, TensorSpec):
            raise TypeError(f"spec must be a TensorSpec; got {type(spec).__name__}")
        return TensorSpec(spec.shape, spec.dtype)

    @classmethod
    def from_tensor(cls, tensor: torch.Tensor, from_dim: int = 0) -> "TensorSpec":
        """The spec of ``tensor.shape[from_dim:]`` and ``tensor.dtype``."""
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"tensor must be a torch.Tensor; got {type(tensor).__name__}")
        return cls(tensor.shape[from_dim:], tensor.dtype)

    @classmethod
    def from_array(cls, array: Any, from_dim: int = 0) -> "TensorSpec":
        """The spec of a NumPy array (or scalar) from dimension ``from_dim``."""
        array = np.asarray(array)
        return cls(array.shape[from_dim:], array.dtype)

    @property
    def shape(self) -> torch.Size:
        """Shape of one item (no outer dims)."""
        return self._shape

    @property
    def dtype(self) -> torch.dtype:
        """The torch dtype."""
        return self._dtype

    @property
    def ndim(self) -> int:
        """Number of dims of one item."""
        return len(self._shape)

    @property
    def numel(self) -> int:
        """Number of elements of one item."""
        return int(np.prod(self._shape, dtype=np.int64))

    @property
    def dtype_str(self) -> str:
        """The dtype's name without ``torch.``, e.g. ``"float32"``."""
        return torch_dtype_to_str(self._dtype)

    @property
    def numpy_dtype(self) -> np.dtype:
        """The NumPy dtype matching ``dtype``.

        Raises:
            TypeError: ``dtype`` has no NumPy counterpart (e.g. bfloat16).
        """
        return _to_numpy_dtype(self._dtype)

    def is_bounded(self) -> bool:
        """Whether the spec has bounds (``BoundedTensorSpec``)."""
        return False

    def replace(self, shape: Any = None, dtype: Optional[DTypeLike] = None) -> "TensorSpec":
        """A ``TensorSpec`` like this one with ``shape`` and/or ``dtype``
        replaced (``None`` keeps the current one)."""
        return TensorSpec(
            self._shape if shape is None else shape, self._dtype if dtype is None else dtype
        )

    def is_discrete(self) -> bool:
        """Whether the dtype is an integer or bool type."""
        return not (self._dtype.is_floating_point or self._dtype.is_complex)

    def is_continuous(self) -> bool:
        """Whether the dtype is a floating point type."""
        return self._dtype.is_floating_point

    def __repr__(self) -> str:
        return f"TensorSpec(shape={tuple(self._shape)}, dtype={self._dtype})"

    def __eq__(self, other: Any) -> bool:
        return (
            type(self) is type(other)
            and self._shape == other._shape
            and self._dtype == other._dtype
        )

    def __ne__(self, other: Any) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(self._shape), self._dtype))

    def __reduce__(self):
        return TensorSpec, (tuple(self._shape), self._dtype)

    # ---- tensor factories -------------------------------------------------
    def constant(self, value: Any, outer_dims: OuterDims = None) -> torch.Tensor:
        """A tensor of shape ``outer_dims + shape`` filled with ``value``."""
        return torch.full(_outer(outer_dims) + self._shape, value, dtype=self._dtype)

    def zeros(self, outer_dims: OuterDims = None) -> torch.Tensor:
        """Zeros of shape ``outer_dims + shape`` and dtype ``dtype``."""
        return torch.zeros(_outer(outer_dims) + self._shape, dtype=self._dtype)

    def ones(self, outer_dims: OuterDims = None) -> torch.Tensor:
        """Ones of shape ``outer_dims + shape`` and dtype ``dtype``."""
        return torch.ones(_outer(outer_dims) + self._shape, dtype=self._dtype)

    def randn(self, outer_dims: OuterDims = None) -> torch.Tensor:
        """Standard normal samples (floating and complex dtypes) or rounded
        normal samples clipped to the dtype's range (integer dtypes, e.g. no
        negatives for uint8) of shape ``outer_dims + shape``."""
        shape = _outer(outer_dims) + self._shape
        if self._dtype.is_floating_point or self._dtype.is_complex:
            return torch.randn(shape, dtype=self._dtype)
        if self._dtype == torch.bool:
            return torch.randn(shape) > 0
        info = torch.iinfo(self._dtype)
        return torch.randn(shape).round().clamp(info.min, info.max).to(self._dtype)

    def numpy_constant(self, value: Any, outer_dims: OuterDims = None) -> np.ndarray:
        """A NumPy array of shape ``outer_dims + shape`` and dtype
        ``numpy_dtype`` filled with ``value``."""
        return np.full(tuple(_outer(outer_dims) + self._shape), value, dtype=self.numpy_dtype)

    def numpy_zeros(self, outer_dims: OuterDims = None) -> np.ndarray:
        """NumPy zeros of shape ``outer_dims + shape`` and dtype ``numpy_dtype``."""
        return self.numpy_constant(0, outer_dims)

    def rand(self, outer_dims: OuterDims = None) -> torch.Tensor:
        """Uniform samples in ``[0, 1)`` of shape ``outer_dims + shape`` and
        dtype ``dtype`` (torch's global RNG).

        Raises:
            TypeError: ``dtype`` is not a floating point type.
        """
        if not self._dtype.is_floating_point:
            raise TypeError(
                f"rand needs a floating point spec; got dtype {torch_dtype_to_str(self._dtype)}"
            )
        return torch.rand(_outer(outer_dims) + self._shape, dtype=self._dtype)

    def sample(self, outer_dims: OuterDims = None) -> torch.Tensor:
        """Random values: standard normal for an unbounded spec."""
        return self.randn(outer_dims)

    def numpy_sample(self, outer_dims: OuterDims = None) -> np.ndarray:
        """``sample`` as a NumPy array of dtype ``numpy_dtype``, drawn from
        NumPy's global RNG (``np.random.seed``): standard normal values for
        floating dtypes, rounded ones clipped to the dtype's range for
        integers, ``value > 0`` for bool.

        Raises:
            TypeError: ``dtype`` has no NumPy counterpart (e.g. bfloat16).
        """
        np_dtype = self.numpy_dtype
        shape = tuple(_outer(outer_dims) + self._shape)
        if np_dtype.kind == "c":
            parts = np.random.standard_normal(shape + (2,))
            return (parts[..., 0] + 1j * parts[..., 1]).astype(np_dtype)
        values = np.asarray(np.random.standard_normal(shape))
        if np_dtype.kind == "f":
            return values.astype(np_dtype)
        if np_dtype.kind == "b":
            return values > 0
        info = np.iinfo(np_dtype)
        return np.clip(np.round(values), info.min, info.max).astype(np_dtype)


def _bound_array(value: Any, name: str, shape: torch.Size, dtype: torch.dtype) -> np.ndarray:
    """``value`` as a new array of the spec's NumPy dtype (for bfloat16:
    float32 holding bfloat16 values); it must be numeric, not NaN and, for
    integer and bool specs, an integer in the dtype's range (nothing is
    truncated or wrapped)."""
    np_dtype = np.dtype(np.float32) if dtype == torch.bfloat16 else _to_numpy_dtype(dtype)
    try:
        raw = np.array(value)
    except ValueError:  # ragged nested lists
        raw = np.array(None)
    if raw.dtype.kind not in "biufc":
        raise TypeError(f"{name} must be numeric; got {value!r}")
    if raw.dtype.kind in "fc" and np.isnan(raw).any():
        raise ValueError(f"{name} must not be NaN; got {value!r}")
    if np_dtype.kind in "biu":
        if np_dtype.kind == "b":
            info = (0, 1)
        else:
            iinfo = np.iinfo(np_dtype.name)  # an integer dtype here
            info = (int(iinfo.min), int(iinfo.max))
        integral = raw.dtype.kind in "biu" or bool(np.all(raw == np.round(raw)))
        if not integral or np.any(raw < info[0]) or np.any(raw > info[1]):
            raise ValueError(
                f"{name} must hold integers in [{info[0]}, {info[1]}] for dtype "
                f"{torch_dtype_to_str(dtype)}; got {value!r}"
            )
    # a copy: the spec freezes it, and must not freeze or follow the caller's array
    array = raw.astype(np_dtype)
    if dtype == torch.bfloat16:
        array = torch.from_numpy(array).to(dtype).float().numpy()
    try:
        np.broadcast_to(array, tuple(shape))
    except ValueError:
        raise ValueError(
            f"{name} of shape {array.shape} cannot be broadcast to the spec shape {tuple(shape)}"
        ) from None
    return array


class BoundedTensorSpec(TensorSpec):
    """A ``TensorSpec`` whose values lie in ``[minimum, maximum]``.

    Args:
        shape (Sequence[int] | int): the shape of one item.
        dtype: its dtype (default float32).
        minimum (number | array_like): lower bound, broadcastable to ``shape``.
        maximum (number | array_like): upper bound, broadcastable to ``shape``.

    The bounds are stored as read-only NumPy arrays of ``numpy_dtype``
    (float32 holding bfloat16 values for a bfloat16 spec).

    Raises:
        ValueError: a bound cannot be broadcast to ``shape``, is NaN, is not
            an integer in the dtype's range for an integer or bool spec, or
            ``minimum`` exceeds ``maximum`` somewhere.
        TypeError: a bound is not numeric, or ``dtype`` has no NumPy
            counterpart other than bfloat16.
    """

    __slots__ = ("_minimum", "_maximum")

    def __init__(
        self,
        shape: Union[int, Sequence[int]],
        dtype: DTypeLike = torch.float32,
        minimum: Any = 0,
        maximum: Any = 1,
    ):
        super().__init__(shape, dtype)
        if minimum is None or maximum is None:
            raise ValueError("minimum and maximum must both be given (got None)")
        lo = _bound_array(minimum, "minimum", self._shape, self._dtype)
        hi = _bound_array(maximum, "maximum", self._shape, self._dtype)
        bad = np.broadcast_to(lo > hi, np.broadcast_shapes(lo.shape, hi.shape))
        if np.any(bad):
            raise ValueError(
                f"minimum must be <= maximum; got minimum={minimum!r}, maximum={maximum!r}"
            )
        lo.setflags(write=False)
        hi.setflags(write=False)
        self._minimum = lo
        self._maximum = hi

    @classmethod
    def from_spec(cls, spec: TensorSpec) -> "BoundedTensorSpec":
        """A bounded copy of ``spec``; an unbounded spec gets the full range of
        its dtype."""
        if not isinstance(spec, TensorSpec):
            raise TypeError(f"spec must be a TensorSpec; got {type(spec).__name__}")
        if isinstance(spec, BoundedTensorSpec):
            return BoundedTensorSpec(spec.shape, spec.dtype, spec.minimum, spec.maximum)
        if spec.dtype.is_floating_point:
            finfo = torch.finfo(spec.dtype)
            return BoundedTensorSpec(spec.shape, spec.dtype, finfo.min, finfo.max)
        if spec.dtype == torch.bool:
            return BoundedTensorSpec(spec.shape, spec.dtype, False, True)
        iinfo = torch.iinfo(spec.dtype)
        return BoundedTensorSpec(spec.shape, spec.dtype, iinfo.min, iinfo.max)

    @property
    def minimum(self) -> np.ndarray:
        """Lower bound as a read-only NumPy array (broadcastable to ``shape``)."""
        return self._minimum

    @property
    def maximum(self) -> np.ndarray:
        """Upper bound as a read-only NumPy array (broadcastable to ``shape``)."""
        return self._maximum

    def is_bounded(self) -> bool:
        return True

    def replace(
        self,
        shape: Any = None,
        dtype: Optional[DTypeLike] = None,
        minimum: Any = None,
        maximum: Any = None,
    ) -> "BoundedTensorSpec":
        """A ``BoundedTensorSpec`` like this one with the given attributes
        replaced (``None`` keeps the current one); the kept bounds must suit
        the new shape and dtype.

        Raises:
            ValueError, TypeError: as the constructor, for the new attributes.
        """
        return BoundedTensorSpec(
            self._shape if shape is None else shape,
            self._dtype if dtype is None else dtype,
            self._minimum if minimum is None else minimum,
            self._maximum if maximum is None else maximum,
        )

    def __repr__(self) -> str:
        return (
            f"BoundedTensorSpec(shape={tuple(self._shape)}, dtype={self._dtype}, "
            f"minimum={self._minimum.tolist()}, maximum={self._maximum.tolist()})"
        )

    def __eq__(self, other: Any) -> bool:
        return (
            super().__eq__(other)
            and np.array_equal(
                np.broadcast_to(self._minimum, self._shape),
                np.broadcast_to(other._minimum, other._shape),
            )
            and np.array_equal(
                np.broadcast_to(self._maximum, self._shape),
                np.broadcast_to(other._maximum, other._shape),
            )
        )

    def __hash__(self) -> int:
        # from the broadcast bounds, as __eq__ compares them: a scalar bound and
        # its full array (or -0.0 and 0.0) are equal and must hash alike
        def key(bound: np.ndarray) -> bytes:
            full = np.broadcast_to(bound, tuple(self._shape))
            return (full + 0.0 if full.dtype.kind in "fc" else full).tobytes()

        return hash((super().__hash__(), key(self._minimum), key(self._maximum)))

    def __reduce__(self):
        return BoundedTensorSpec, (
            tuple(self._shape),
            self._dtype,
            self._minimum,
            self._maximum,
        )

    def _bounds(self, device: Any = None):
        lo = torch.as_tensor(np.broadcast_to(self._minimum, tuple(self._shape)).copy())
        hi = torch.as_tensor(np.broadcast_to(self._maximum, tuple(self._shape)).copy())
        return lo.to(device), hi.to(device)

    def sample(self, outer_dims: OuterDims = None) -> torch.Tensor:
        """Uniform samples in ``[minimum, maximum]`` (inclusive for integer
        and bool dtypes) of shape ``outer_dims + shape``."""
        shape = _outer(outer_dims) + self._shape
        if self.is_discrete():
            low, high = self._int_bounds(shape)

            def torch_bits(size):
                # 64 random bits from two 32-bit draws of torch's global RNG
                upper = torch.randint(0, 2**32, size, dtype=torch.int64).numpy()
                lower = torch.randint(0, 2**32, size, dtype=torch.int64).numpy()
                return (upper.astype(np.uint64) << np.uint64(32)) | lower.astype(np.uint64)

            values = _uniform_integers(low, high, torch_bits)
            return torch.from_numpy(values).to(self._dtype)
        lo_bound, hi_bound = self._bounds()
        lo, hi = lo_bound.to(torch.float64), hi_bound.to(torch.float64)
        span = hi - lo
        if not torch.isfinite(span).all():
            # Unbounded or huge range: sample a standard normal clipped to the bounds.
            normal = torch.randn(shape, dtype=torch.float64)
            return torch.maximum(torch.minimum(normal, hi), lo).to(self._dtype)
        values = lo + torch.rand(shape, dtype=torch.float64) * span
        return values.to(self._dtype)

    def _int_bounds(self, shape: torch.Size) -> Tuple[np.ndarray, np.ndarray]:
        """The bounds of an integer or bool spec as int64 arrays of ``shape``."""
        lo = np.broadcast_to(self._minimum.astype(np.int64), tuple(shape))
        hi = np.broadcast_to(self._maximum.astype(np.int64), tuple(shape))
        return lo, hi

    def numpy_sample(self, outer_dims: OuterDims = None) -> np.ndarray:
        """Uniform samples in ``[minimum, maximum]`` (inclusive for integer
        and bool dtypes) as a NumPy array of shape ``outer_dims + shape`` and
        dtype ``numpy_dtype``, drawn from NumPy's global RNG
        (``np.random.seed``). Integer samples are exact over the whole int64
        range; floating bounds whose span is not finite give a standard
        normal clipped to them, as ``sample``.

        Raises:
            TypeError: ``dtype`` has no NumPy counterpart (e.g. bfloat16).
        """
        np_dtype = self.numpy_dtype
        shape = _outer(outer_dims) + self._shape
        if self.is_discrete():
            low, high = self._int_bounds(shape)

            def numpy_bits(size):
                return np.asarray(np.random.randint(0, 2**64, size=size, dtype=np.uint64))

            return _uniform_integers(low, high, numpy_bits).astype(np_dtype)
        lo = np.broadcast_to(self._minimum.astype(np.float64), tuple(shape))
        hi = np.broadcast_to(self._maximum.astype(np.float64), tuple(shape))
        with np.errstate(over="ignore"):
            span = hi - lo
        if not np.isfinite(span).all():
            values = np.asarray(np.random.standard_normal(tuple(shape)))
            return np.clip(values, lo, hi).astype(np_dtype)
        values = lo + np.asarray(np.random.random_sample(tuple(shape))) * span
        # rounding to a narrower dtype may not leave [minimum, maximum]
        return np.clip(values.astype(np_dtype), self._minimum, self._maximum)


def _uniform_integers(
    low: np.ndarray, high: np.ndarray, bits: Callable[[Tuple[int, ...]], np.ndarray]
) -> np.ndarray:
    """Integers uniform in ``[low, high]`` (int64 arrays of one shape),
    computed exactly in uint64 arithmetic from 64 random bits per element
    (``bits(shape)``, a uint64 array): ``low + bits mod (high - low + 1)``.
    The modulo bias is below ``(high - low + 1) / 2**64``."""
    # 1-d while computing: 0-d arrays would decay to NumPy scalars, whose
    # (intended) uint64 wrap-around warns
    shape = tuple(low.shape)
    unsigned_low = low.astype(np.int64).reshape(-1).view(np.uint64)
    # high - low in [0, 2**64 - 1] exactly (uint64 wraps)
    span = high.astype(np.int64).reshape(-1).view(np.uint64) - unsigned_low
    count = span + np.uint64(1)  # 0 when the range is all 2**64 int64 values
    random = np.asarray(bits(shape), dtype=np.uint64).reshape(-1)
    full = count == 0
    offset = np.where(full, random, random % np.where(full, np.uint64(1), count))
    return (unsigned_low + offset).view(np.int64).reshape(shape)
