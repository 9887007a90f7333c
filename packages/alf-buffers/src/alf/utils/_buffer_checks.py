"""Argument checks shared by ``RingBuffer`` and ``DataBuffer``.

Every check raises ``TypeError``/``ValueError`` naming the argument and what
was received; none of them touches a buffer, so a rejected call leaves the
stored data as it was.
"""

from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
import torch

import alf.nest as nest
from alf.tensor_specs import TensorSpec

__all__ = [
    "check_positive_int",
    "check_non_negative_int",
    "check_data_spec",
    "check_env_ids",
    "check_items",
]


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_positive_int(value: Any, name: str) -> int:
    """``value`` as an ``int`` >= 1; ``TypeError``/``ValueError`` otherwise."""
    if not _is_int(value):
        raise TypeError(f"{name} must be an int; got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{name} must be >= 1; got {value}")
    return int(value)


def check_non_negative_int(value: Any, name: str) -> int:
    """``value`` as an ``int`` >= 0; ``TypeError``/``ValueError`` otherwise."""
    if not _is_int(value):
        raise TypeError(f"{name} must be an int; got {value!r} ({type(value).__name__})")
    if value < 0:
        raise ValueError(f"{name} must be >= 0; got {value}")
    return int(value)


def check_data_spec(data_spec: Any) -> List[Tuple[str, TensorSpec]]:
    """``[(path, spec), ...]`` of a nest of ``TensorSpec``.

    Raises:
        TypeError: a leaf is not a ``TensorSpec`` (the message names its path).
        ValueError: the nest has no leaf.
    """
    leaves = nest.flatten_with_path(data_spec)
    if not leaves:
        raise ValueError(f"data_spec must hold at least one TensorSpec; got {data_spec!r}")
    for path, spec in leaves:
        if not isinstance(spec, TensorSpec):
            where = f"data_spec at '{path}'" if path else "data_spec"
            raise TypeError(f"{where} must be a TensorSpec; got {type(spec).__name__}")
    return leaves


def check_env_ids(env_ids: Any, num_environments: int) -> torch.Tensor:
    """``env_ids`` as a 1-D int64 CPU tensor of distinct ids in
    ``[0, num_environments)``.

    Args:
        env_ids (Tensor | Sequence[int]): environment ids, shape ``[B]``.
        num_environments (int): number of environments of the buffer.
    Raises:
        TypeError: not integers.
        ValueError: not 1-D, an id out of range, or an id given twice.
    """
    if isinstance(env_ids, torch.Tensor):
        ids = env_ids.detach()
    elif isinstance(env_ids, (Sequence, np.ndarray)) and not isinstance(env_ids, (str, bytes)):
        try:
            ids = torch.as_tensor(np.asarray(env_ids))
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"env_ids must be integers; got {env_ids!r}") from None
    else:
        raise TypeError(
            f"env_ids must be a 1-D integer Tensor or sequence; got {type(env_ids).__name__}"
        )
    if ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool:
        raise TypeError(f"env_ids must have an integer dtype; got {ids.dtype}")
    if ids.dim() != 1:
        raise ValueError(f"env_ids must be 1-D; got shape {tuple(ids.shape)}")
    values = ids.tolist()
    if values and (min(values) < 0 or max(values) >= num_environments):
        bad = [v for v in values if not 0 <= v < num_environments]
        raise ValueError(f"env_ids must lie in [0, {num_environments}); got {bad[0]} in {values}")
    if len(set(values)) != len(values):
        seen, dups = set(), []
        for v in values:
            if v in seen:
                dups.append(v)
            seen.add(v)
        raise ValueError(
            f"env_ids must not repeat an id; got {sorted(set(dups))} twice in {values}"
        )
    return ids.to(device="cpu", dtype=torch.int64)


def check_items(
    data_spec: Any,
    specs: Sequence[Tuple[str, TensorSpec]],
    batch: Any,
    batch_size: Optional[int],
    device: torch.device,
    name: str = "batch",
) -> List[torch.Tensor]:
    """Check a nest of batched items against ``data_spec``.

    Args:
        data_spec (nested TensorSpec): the spec of one item.
        specs (list[(str, TensorSpec)]): ``check_data_spec(data_spec)``.
        batch (nested Tensor): each leaf of shape ``[B] + spec.shape`` and of
            the spec's dtype.
        batch_size (int | None): the required ``B``; ``None`` takes it from the
            first leaf (all leaves must agree).
        device (torch.device): where the returned tensors are.
        name (str): the argument name used in error messages.
    Returns:
        list[Tensor]: the leaves of ``batch`` in flattening order, detached and
        on ``device``.
    Raises:
        ValueError: a structure or shape differs from the spec (the message
            names the nest path).
        TypeError: a leaf is not a Tensor or has another dtype.
    """
    try:
        nest.assert_same_structure(data_spec, batch)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{name} does not match data_spec: {error}") from None
    flat = nest.flatten(batch)
    out = []
    for (path, spec), item in zip(specs, flat):
        where = f"{name} at '{path}'" if path else name
        if not isinstance(item, torch.Tensor):
            raise TypeError(f"{where} must be a torch.Tensor; got {type(item).__name__}")
        if item.dtype != spec.dtype:
            raise TypeError(f"{where} must have dtype {spec.dtype}; got {item.dtype}")
        if batch_size is None:
            if item.dim() == 0:
                raise ValueError(f"{where} needs a leading batch dimension; got a scalar")
            batch_size = item.shape[0]
        expected = (batch_size,) + tuple(spec.shape)
        if tuple(item.shape) != expected:
            raise ValueError(
                f"{where} must have shape {list(expected)} ([batch_size] + spec shape "
                f"{list(spec.shape)}); got {list(item.shape)}"
            )
        out.append(item.detach().to(device))
    return out
