"""Collection of spec utility functions: zeros from (nested) specs, spec
comparison, and clipping/scaling values to ``BoundedTensorSpec`` bounds."""

from typing import Any, Sequence, Tuple, Union

import numpy as np
import torch

from alf import nest
from alf.tensor_specs import BoundedTensorSpec, TensorSpec, _as_shape

__all__ = [
    "clip_to_spec",
    "is_same_spec",
    "scale_to_spec",
    "spec_means_and_magnitudes",
    "zeros_from_spec",
]


def _is_distribution_spec(spec: Any) -> bool:
    """Duck-typed check for alf-dist's ``DistributionSpec`` (this package
    cannot import it): something that builds a distribution from a nest of
    parameter specs."""
    return callable(getattr(spec, "build_distribution", None)) and hasattr(
        spec, "input_params_spec"
    )


def zeros_from_spec(nested_spec: Any, batch_size: Union[int, Sequence[int]]) -> Any:
    """Create zero tensors (or distributions with zero parameters) for a
    nest of specs.

    Each ``TensorSpec`` becomes a zero tensor of shape
    ``batch_shape + spec.shape`` and dtype ``spec.dtype`` (on torch's default
    device). Each ``DistributionSpec`` (anything with ``build_distribution``
    and a nested ``input_params_spec``) becomes
    ``spec.build_distribution(zeros of its input_params_spec)``.

    Args:
        nested_spec (nested TensorSpec | DistributionSpec): the specs.
        batch_size (int | tuple | list): batch size, or batch shape, prepended
            to every spec shape.

    Returns:
        nest of Tensors / Distributions with the structure of ``nested_spec``.

    Raises:
        TypeError: a leaf is neither a ``TensorSpec`` nor a distribution spec,
            or ``batch_size`` is not an int/tuple/list.
        ValueError: ``batch_size`` holds a negative size.
    """
    outer = _as_shape(batch_size, "batch_size")

    def zeros(path, spec):
        if isinstance(spec, TensorSpec):
            return spec.zeros(outer)
        if _is_distribution_spec(spec):
            return spec.build_distribution(zeros_from_spec(spec.input_params_spec, outer))
        where = f" at '{path}'" if path else ""
        raise TypeError(
            f"nested_spec must hold TensorSpec or DistributionSpec; got "
            f"{type(spec).__name__}{where}"
        )

    return nest.map_structure_with_path(zeros, nested_spec)


def is_same_spec(spec1: Any, spec2: Any) -> bool:
    """Whether two nested specs have the same structure and equal leaves
    (same class, shape, dtype and, for bounded specs, bounds)."""
    if not nest.is_same_structure(spec1, spec2):
        return False
    return all(a == b for a, b in zip(nest.flatten(spec1), nest.flatten(spec2)))


def _check_bounded(spec: Any) -> None:
    if not isinstance(spec, BoundedTensorSpec):
        raise TypeError(f"spec must be a BoundedTensorSpec; got {type(spec).__name__}")


def _bounds(spec: BoundedTensorSpec, like: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    shape = tuple(spec.shape)
    lo = torch.as_tensor(np.broadcast_to(spec.minimum, shape).copy(), device=like.device)
    hi = torch.as_tensor(np.broadcast_to(spec.maximum, shape).copy(), device=like.device)
    return lo, hi


def clip_to_spec(value: torch.Tensor, spec: BoundedTensorSpec) -> torch.Tensor:
    """Clamp ``value`` element-wise to ``[spec.minimum, spec.maximum]``.

    Args:
        value (Tensor): shape ``[..., *spec.shape]``.
        spec (BoundedTensorSpec): the bounds.

    Returns:
        Tensor of the shape and dtype of ``value``.

    Raises:
        TypeError: ``spec`` is not a ``BoundedTensorSpec``.
    """
    _check_bounded(spec)
    lo, hi = _bounds(spec, value)
    return torch.clamp(value, lo.to(value.dtype), hi.to(value.dtype))


def spec_means_and_magnitudes(spec: BoundedTensorSpec) -> Tuple[torch.Tensor, torch.Tensor]:
    """Center ``(max + min) / 2`` and half-width ``(max - min) / 2`` of a
    bounded spec.

    Args:
        spec (BoundedTensorSpec): the spec.

    Returns:
        tuple: ``(spec_means, spec_magnitudes)``, Tensors of shape
        ``spec.shape`` on torch's default device, with ``spec.dtype`` for
        floating specs and float32 otherwise.

    Raises:
        TypeError: ``spec`` is not a ``BoundedTensorSpec``.
    """
    _check_bounded(spec)
    shape = tuple(spec.shape)
    # halved first: max - min overflows float64 for bounds near its range
    lo = np.broadcast_to(spec.minimum, shape).astype(np.float64) / 2
    hi = np.broadcast_to(spec.maximum, shape).astype(np.float64) / 2
    dtype = spec.dtype if spec.dtype.is_floating_point else torch.float32
    means = torch.as_tensor(hi + lo, dtype=dtype)
    magnitudes = torch.as_tensor(hi - lo, dtype=dtype)
    return means, magnitudes


def scale_to_spec(tensor: torch.Tensor, spec: BoundedTensorSpec) -> torch.Tensor:
    """Map values in ``[-1, 1]`` affinely onto ``[spec.minimum, spec.maximum]``:
    ``means + magnitudes * tensor``.

    Args:
        tensor (Tensor): shape ``[..., *spec.shape]`` with values in ``[-1, 1]``.
        spec (BoundedTensorSpec): target bounds.

    Returns:
        Tensor of the shape of ``tensor``.

    Raises:
        TypeError: ``spec`` is not a ``BoundedTensorSpec``.
    """
    means, magnitudes = spec_means_and_magnitudes(spec)
    means = means.to(device=tensor.device, dtype=tensor.dtype)
    magnitudes = magnitudes.to(device=tensor.device, dtype=tensor.dtype)
    return means + magnitudes * tensor
