"""Argument checks shared by ``RingBuffer`` and ``DataBuffer``.

Every check raises ``TypeError``/``ValueError`` naming the argument and what
was received; none of them touches a buffer, so a rejected call leaves the
stored data as it was.

``ItemChecker`` is the per-call check of a batch: it reads the spec once, at
construction, and then checks a batch with plain attribute comparisons; only a
batch it cannot take that way (another container type, or a bad leaf) goes
through ``check_items``, which accepts it or raises the detailed error.
"""

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

import alf.nest as nest
from alf.tensor_specs import TensorSpec

__all__ = [
    "check_int",
    "check_timeout",
    "is_integer_dtype",
    "check_data_spec",
    "check_env_ids",
    "check_items",
    "ItemChecker",
    "state_problems",
]


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_int(value: Any, name: str, minimum: int) -> int:
    """``value`` as an ``int`` >= ``minimum``; ``TypeError``/``ValueError``
    naming ``name`` and the received value otherwise."""
    if not _is_int(value):
        raise TypeError(f"{name} must be an int; got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")
    return int(value)


def check_timeout(timeout: Any) -> Optional[float]:
    """``timeout`` as ``None`` or a float >= 0 (seconds); ``TypeError`` for
    anything but a real number, ``ValueError`` for a negative or NaN one."""
    if timeout is None:
        return None
    if isinstance(timeout, (bool, np.bool_)) or not isinstance(
        timeout, (int, float, np.integer, np.floating)
    ):
        raise TypeError(
            f"timeout must be None or a number of seconds; got {timeout!r} ({type(timeout).__name__})"
        )
    value = float(timeout)
    if not value >= 0:
        raise ValueError(f"timeout must be >= 0 seconds (or None: no limit); got {timeout!r}")
    return value


def is_integer_dtype(dtype: torch.dtype) -> bool:
    """Whether ``dtype`` is an integer dtype (not floating, complex or bool)."""
    return not (dtype.is_floating_point or dtype.is_complex or dtype == torch.bool)


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


def check_env_ids(env_ids: Any, num_environments: int, read_only: bool = False) -> torch.Tensor:
    """``env_ids`` as a 1-D int64 CPU tensor of distinct ids in
    ``[0, num_environments)``.

    Args:
        env_ids (Tensor | Sequence[int]): environment ids, shape ``[B]``
            (``B`` may be 0).
        num_environments (int): number of environments of the buffer.
        read_only (bool): ids of a query that changes nothing: they may have
            any shape (kept) and repeat.
    Raises:
        TypeError: not integers.
        ValueError: not 1-D, an id out of range, or an id given twice.
    """
    if isinstance(env_ids, torch.Tensor):
        ids = env_ids  # integer tensors carry no gradient
    elif isinstance(env_ids, Sequence) and not isinstance(env_ids, (str, bytes)) and not env_ids:
        # no id: NumPy would make the empty sequence float64
        return torch.zeros(0, dtype=torch.int64)
    elif isinstance(env_ids, (Sequence, np.ndarray)) and not isinstance(env_ids, (str, bytes)):
        try:
            ids = torch.as_tensor(np.asarray(env_ids))
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"env_ids must be integers; got {env_ids!r}") from None
    else:
        raise TypeError(
            f"env_ids must be a 1-D integer Tensor or sequence; got {type(env_ids).__name__}"
        )
    if not is_integer_dtype(ids.dtype):
        raise TypeError(f"env_ids must have an integer dtype; got {ids.dtype}")
    if ids.dim() != 1 and not read_only:
        raise ValueError(f"env_ids must be 1-D; got shape {tuple(ids.shape)}")
    values = ids.reshape(-1).tolist()
    distinct = set(values)
    if values and (min(distinct) < 0 or max(distinct) >= num_environments):
        bad = [v for v in values if not 0 <= v < num_environments]
        raise ValueError(f"env_ids must lie in [0, {num_environments}); got {bad[0]} in {values}")
    if len(distinct) != len(values) and not read_only:
        seen, dups = set(), []
        for v in values:
            if v in seen:
                dups.append(v)
            seen.add(v)
        raise ValueError(
            f"env_ids must not repeat an id; got {sorted(set(dups))} twice in {values}"
        )
    if ids.dtype != torch.int64 or ids.device.type != "cpu":
        ids = ids.to(device="cpu", dtype=torch.int64)
    return ids


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
        TypeError: a leaf is not a dense Tensor or has another dtype.
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
        if item.layout != torch.strided or item.is_nested:
            # a sparse or nested leaf could not be copied into the storage
            kind = "nested" if item.is_nested else item.layout
            raise TypeError(f"{where} must be a dense (strided) tensor; got a {kind} tensor")
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


def state_problems(
    state_dict: Dict[str, Any],
    prefix: str,
    expected: Dict[str, Tuple[Tuple[int, ...], torch.dtype]],
    max_length: int,
) -> List[str]:
    """Why the entries of a buffer in ``state_dict`` cannot be loaded.

    A buffer is loaded all at once or not at all: either none of its entries
    is in ``state_dict`` (nothing to load) or every one is there with exactly
    the buffer's shape and dtype, and the positions are consistent.

    Args:
        state_dict (dict[str, Tensor]): what ``load_state_dict`` received.
        prefix (str): the buffer's prefix in ``state_dict``.
        expected (dict[str, (tuple[int], torch.dtype)]): shape and dtype of each
            registered tensor, by name (``_current_size`` and ``_current_pos``
            among them, each ``[num_environments]`` int64).
        max_length (int): the buffer's ring length.
    Returns:
        list[str]: one message per problem (empty: it can be loaded).
    """
    present = [name for name in expected if prefix + name in state_dict]
    if not present:
        return []
    missing = [prefix + name for name in expected if name not in present]
    if missing:
        return [
            f"the checkpoint lacks {missing} (it holds "
            f"{[prefix + name for name in present]}); was it saved from a buffer "
            "with another data_spec?"
        ]
    problems = []
    for name, (shape, dtype) in expected.items():
        key = prefix + name
        value = state_dict[key]
        if not isinstance(value, torch.Tensor):
            problems.append(f"{key} must be a Tensor; got {type(value).__name__}")
        elif tuple(value.shape) != shape or value.dtype != dtype:
            layout = "[num_environments]"
            if len(shape) > 1:  # data: [num_environments, max_length] + spec.shape
                layout = f"[num_environments, max_length={max_length}] + {list(shape[2:])}"
            problems.append(
                f"{key} must have shape {list(shape)} ({layout}) and dtype {dtype}; "
                f"the checkpoint has shape {list(value.shape)} and dtype {value.dtype}"
            )
    if problems:
        return problems
    size = state_dict[prefix + "_current_size"].tolist()
    pos = state_dict[prefix + "_current_pos"].tolist()
    if any(not 0 <= s <= min(p, max_length) for s, p in zip(size, pos)):
        return [
            f"{prefix}_current_size and {prefix}_current_pos must satisfy "
            f"0 <= size <= min(pos, max_length={max_length}); got sizes {size} "
            f"and positions {pos}"
        ]
    return []


# A flattener appends the leaves of a batch to a list, in ``alf.nest.flatten``
# order, and returns False when the batch's containers are not exactly those
# of the spec (the caller then falls back to ``check_items``).
_Flattener = Callable[[Any, List[Any]], bool]


def _append_leaf(value: Any, out: List[Any]) -> bool:
    out.append(value)
    return True


def _refuse(value: Any, out: List[Any]) -> bool:
    return False


def _compile_flattener(template: Any) -> _Flattener:
    """A flattener for batches shaped like ``template``; containers other
    than plain ``dict``, ``list``, ``tuple`` and namedtuples are always
    refused (left to ``check_items``)."""
    if not nest.is_nested(template):
        return _append_leaf
    kind = type(template)
    if kind is dict:
        keys = list(template)
        # the order alf.nest flattens the values in
        keys = [keys[i] for i in nest.flatten({k: i for i, k in enumerate(keys)})]
        key_set = frozenset(keys)
        parts = [(key, _compile_flattener(template[key])) for key in keys]
        if all(part is _append_leaf for _, part in parts):

            def leaf_mapping(value, out):
                if type(value) is not dict or value.keys() != key_set:
                    return False
                out.extend([value[key] for key in keys])
                return True

            return leaf_mapping

        def mapping(value, out):
            if type(value) is not dict or value.keys() != key_set:
                return False
            return all([part(value[key], out) for key, part in parts])

        return mapping
    if kind is list or kind is tuple or nest.is_namedtuple(template):
        size = len(template)
        # the order alf.nest flattens the children in (a namedtuple's fields
        # alphabetically, as ALF)
        if nest.is_namedtuple(template):
            order = nest.flatten(template._make(range(size)))
        else:
            order = list(range(size))
        parts = [(i, _compile_flattener(template[i])) for i in order]

        def sequence(value, out):
            if type(value) is not kind or len(value) != size:
                return False
            return all([part(value[i], out) for i, part in parts])

        return sequence
    return _refuse


class ItemChecker:
    """``check_items`` for one spec, with what it needs read once.

    Calling it gives the same result as ``check_items`` (the same leaves, or
    the same error); a batch whose containers are plain ``dict``/``list``/
    ``tuple``/namedtuples exactly like the spec's and whose leaves are right
    is checked by attribute comparisons alone.

    Args:
        data_spec (nested TensorSpec): the spec of one item.
        specs (list[(str, TensorSpec)]): ``check_data_spec(data_spec)``.
    """

    def __init__(self, data_spec: Any, specs: Sequence[Tuple[str, TensorSpec]]):
        self._data_spec = data_spec
        self._specs = specs
        self._flatten = _compile_flattener(data_spec)
        self._dtypes = [spec.dtype for _, spec in specs]
        self._shapes = [tuple(spec.shape) for _, spec in specs]
        self._expected: Dict[int, List[Tuple[int, ...]]] = {}

    def __call__(
        self,
        batch: Any,
        batch_size: Optional[int],
        device: torch.device,
        name: str = "batch",
    ) -> List[torch.Tensor]:
        """See ``check_items``: the leaves of ``batch`` (each of shape
        ``[B] + spec.shape``), detached and on ``device``."""
        flat: List[Any] = []
        if self._flatten(batch, flat) and self._leaves_ok(flat, batch_size):
            out = []
            for item in flat:
                if item.requires_grad:
                    item = item.detach()
                if item.device != device:
                    item = item.to(device)
                out.append(item)
            return out
        return check_items(self._data_spec, self._specs, batch, batch_size, device, name)

    def _leaves_ok(self, flat: List[Any], batch_size: Optional[int]) -> bool:
        for item in flat:
            if not isinstance(item, torch.Tensor) or item.layout != torch.strided or item.is_nested:
                return False
        if batch_size is None:
            first = flat[0]
            if first.dim() == 0:
                return False
            batch_size = first.shape[0]
        expected = self._expected.get(batch_size)
        if expected is None:
            if len(self._expected) >= 16:  # bound the cache of batch sizes
                self._expected.clear()
            expected = [(batch_size,) + shape for shape in self._shapes]
            self._expected[batch_size] = expected
        for item, dtype, shape in zip(flat, self._dtypes, expected):
            if item.dtype != dtype or item.shape != shape:
                return False
        return True
