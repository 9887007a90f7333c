"""Utilities over nests of tensors (ALF's ``alf.nest.utils``).

* Combiners, callables that turn a nest of tensors into one tensor and that
  ALF's networks take as ``preprocessing_combiner``: ``NestConcat`` (with an
  optional mask), ``NestSum``, ``NestMultiply`` and ``NestOuterProduct``.
  Called on a nest of ``TensorSpec`` instead of tensors, a combiner returns
  the ``TensorSpec`` of its result.
* ``stack_nests``, ``get_outer_rank``, ``convert_device``, ``grad``,
  ``zeros_like``, ``make_nested_module`` and ``get_nested_field``.

Tensors are batched: dimension 0 of every leaf is the batch dimension ``B``
and the combiners never combine along it.
"""

import abc
from typing import Any, Callable, List, Optional, Sequence

import torch
from torch import nn

from alf.nest.nest import (
    flatten,
    flatten_up_to,
    flatten_with_path,
    get_field,
    is_namedtuple,
    is_nested,
    map_structure,
    map_structure_with_path,
    map_structure_without_check,
    pack_sequence_as,
)
from alf.tensor_specs import TensorSpec

__all__ = [
    "NestCombiner",
    "NestConcat",
    "NestSum",
    "NestMultiply",
    "NestOuterProduct",
    "stack_nests",
    "get_outer_rank",
    "convert_device",
    "grad",
    "zeros_like",
    "make_nested_module",
    "get_nested_field",
]


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


class NestCombiner(abc.ABC):
    """Base class of the combiners: ``combiner(nested)`` combines the leaves
    of ``nested`` (in ``alf.nest.flatten`` order) into one tensor.

    A nest of ``TensorSpec`` (each the spec of one item, without the batch
    dimension) gives the ``TensorSpec`` of the combined item: the combiner is
    run on zeros with a batch of 1.

    Args:
        name (str): name of the combiner.
    """

    def __init__(self, name: str):
        self._name = name

    @property
    def name(self) -> str:
        """The name given at construction."""
        return self._name

    @abc.abstractmethod
    def _combine_flat(self, tensors: List[torch.Tensor]) -> torch.Tensor:
        """Combine the flat list of batched tensors."""

    def _select(self, nested: Any) -> List[Any]:
        """The leaves to combine."""
        return flatten(nested)

    def __call__(self, nested: Any) -> Any:
        """Combine the leaves of ``nested``.

        Args:
            nested (nested Tensor | nested TensorSpec): tensors of shape
                ``[B, ...]`` (or specs of one item).

        Returns:
            Tensor | TensorSpec: the combined tensor ``[B, ...]`` (or its spec).

        Raises:
            ValueError: ``nested`` has no leaf to combine.
            TypeError: the leaves mix tensors and specs, or are neither.
        """
        leaves = self._select(nested)
        if not leaves:
            raise ValueError(f"{self._name}: nested must hold at least one tensor; got none")
        specs = [isinstance(x, TensorSpec) for x in leaves]
        if all(specs):
            result = self._combine_flat([spec.zeros(outer_dims=(1,)) for spec in leaves])
            return TensorSpec.from_tensor(result, from_dim=1)
        if any(specs) or not all(isinstance(x, torch.Tensor) for x in leaves):
            kinds = sorted({type(x).__name__ for x in leaves})
            raise TypeError(
                f"{self._name}: nested must hold only tensors or only TensorSpecs; got {kinds}"
            )
        return self._combine_flat(leaves)


class NestConcat(NestCombiner):
    """Concatenate the selected tensors of a nest along a dimension.

    The batch dimension does not count: ``dim=0`` is the first dimension
    after it (dimension 1 of the tensors); a negative ``dim`` counts from the
    end. The selected tensors must agree on every other dimension.

    Args:
        nest_mask (nest | None): a nest of bools with the structure of the
            nests the combiner will be called on (or a shallower one: a
            ``True``/``False`` then selects the whole sub-nest); the leaves
            where it is true are concatenated in flattening order. ``None``
            selects every leaf.
        dim (int): the dimension to concatenate along (batch dim excluded).
        name (str): name of the combiner.
    """

    def __init__(self, nest_mask: Any = None, dim: int = -1, name: str = "NestConcat"):
        super().__init__(name)
        if isinstance(dim, bool) or not isinstance(dim, int):
            raise TypeError(f"dim must be an int; got {dim!r}")
        self._nest_mask = nest_mask
        self._dim = dim if dim < 0 else dim + 1

    def _select(self, nested: Any) -> List[Any]:
        if self._nest_mask is None:
            return flatten(nested)
        parts = flatten_up_to(self._nest_mask, nested)
        selected = []
        for keep, part in zip(flatten(self._nest_mask), parts):
            if keep:
                selected.extend(flatten(part))
        return selected

    def _combine_flat(self, tensors: List[torch.Tensor]) -> torch.Tensor:
        return torch.cat(tensors, dim=self._dim)


class NestSum(NestCombiner):
    """Add the tensors of a nest (element-wise, broadcasting as ``+``).

    Args:
        average (bool): divide the sum by the number of tensors.
        activation (Callable | None): applied to the result (identity if None).
        name (str): name of the combiner.
    """

    def __init__(
        self,
        average: bool = False,
        activation: Optional[Callable] = None,
        name: str = "NestSum",
    ):
        super().__init__(name)
        self._average = average
        self._activation = activation or _identity

    def _combine_flat(self, tensors: List[torch.Tensor]) -> torch.Tensor:
        total = tensors[0]
        for t in tensors[1:]:
            total = total + t
        if self._average:
            total = total * (1.0 / len(tensors))
        return self._activation(total)


class NestMultiply(NestCombiner):
    """Multiply the tensors of a nest element-wise (broadcasting as ``*``).

    Args:
        activation (Callable | None): applied to the result (identity if None).
        name (str): name of the combiner.
    """

    def __init__(self, activation: Optional[Callable] = None, name: str = "NestMultiply"):
        super().__init__(name)
        self._activation = activation or _identity

    def _combine_flat(self, tensors: List[torch.Tensor]) -> torch.Tensor:
        product = tensors[0]
        for t in tensors[1:]:
            product = product * t
        return self._activation(product)


class NestOuterProduct(NestCombiner):
    """The outer product of the tensors of a nest, per sample, flattened.

    Each tensor is flattened to ``[B, n_i]``; with ``padding`` a 1 is
    appended to each (``[B, n_i + 1]``) so that the product also holds every
    lower-order product, the original entries included (the last entry is
    1). The result is ``[B, prod_i m_i]`` with ``m_i = n_i (+ 1)``, entry
    ``(j_1, ..., j_k)`` in row-major order being ``x_1[j_1] * ... * x_k[j_k]``.

    Args:
        activation (Callable | None): applied to the result (identity if None).
        padding (bool): append a 1 to each vector before the product.
        name (str): name of the combiner.
    """

    def __init__(
        self,
        activation: Optional[Callable] = None,
        padding: bool = True,
        name: str = "NestOuterProduct",
    ):
        super().__init__(name)
        self._activation = activation or _identity
        self._padding = padding

    def _combine_flat(self, tensors: List[torch.Tensor]) -> torch.Tensor:
        batch = tensors[0].shape[0]
        vectors = []
        for t in tensors:
            if t.dim() == 0 or t.shape[0] != batch:
                raise ValueError(
                    f"{self._name}: every tensor must have the batch size {batch}; "
                    f"got shape {list(t.shape)}"
                )
            v = t.reshape(batch, -1)
            if self._padding:
                v = torch.cat([v, v.new_ones(batch, 1)], dim=1)
            vectors.append(v)
        product = vectors[0]
        for v in vectors[1:]:
            product = (product.unsqueeze(2) * v.unsqueeze(1)).reshape(batch, -1)
        return self._activation(product)


def stack_nests(nests: Sequence[Any], dim: int = 0) -> Any:
    """Stack the corresponding tensors of several nests.

    Args:
        nests (list[nested Tensor]): nests of the same structure whose
            corresponding tensors have the same shape.
        dim (int): where the new dimension goes (``torch.stack``'s ``dim``).

    Returns:
        nested Tensor: the structure of ``nests[0]``; each leaf has shape
        ``[len(nests)] + shape`` for ``dim=0``.

    Raises:
        ValueError: ``nests`` is empty or the nests differ in structure.
    """
    nests = list(nests)
    if not nests:
        raise ValueError("nests must hold at least one nest; got none")
    if len(nests) == 1:
        return map_structure(lambda t: t.unsqueeze(dim), nests[0])
    return map_structure(lambda *ts: torch.stack(ts, dim), *nests)


def get_outer_rank(tensors: Any, specs: Any) -> int:
    """The number of outer (batch) dimensions of ``tensors`` with respect to
    ``specs``: ``t.dim() - len(spec.shape)``, which every leaf must share.

    Args:
        tensors (nested Tensor): tensors of shape ``outer_dims + spec.shape``.
        specs (nested TensorSpec): their specs (same structure).

    Raises:
        ValueError: the structures differ, a tensor's trailing dims are not
            its spec's shape, or the leaves disagree on the outer rank (the
            message names the path).
    """
    ranks: list = []

    def rank(path, tensor, spec):
        shape = tuple(tensor.shape)
        spec_shape = tuple(spec.shape)
        outer = len(shape) - len(spec_shape)
        where = f"at '{path}'" if path else "at the top level"
        if outer < 0 or shape[outer:] != spec_shape:
            raise ValueError(
                f"tensors must have shape outer_dims + {list(spec_shape)} {where}; "
                f"got {list(shape)}"
            )
        if ranks and outer != ranks[0][1]:
            raise ValueError(
                f"tensors must share the outer rank: {ranks[0][1]} at '{ranks[0][0]}' but "
                f"{outer} {where}"
            )
        ranks.append((path, outer))

    map_structure_with_path(rank, tensors, specs)
    if not ranks:
        raise ValueError("tensors must hold at least one tensor; got none")
    return ranks[0][1]


def _default_device() -> torch.device:
    get = getattr(torch, "get_default_device", None)  # torch >= 2.3
    return get() if get is not None else torch.empty(()).device


def convert_device(nests: Any, device: Any = None) -> Any:
    """Move the tensors of ``nests`` to ``device``; tensors already there are
    returned as they are, other leaves are left alone.

    Args:
        nests (nested Tensor): the tensors.
        device (str | torch.device | None): e.g. ``"cpu"``, ``"cuda"``;
            ``None`` is torch's default device.

    Returns:
        nested Tensor: the same structure, tensors on ``device``.
    """
    target = _default_device() if device is None else torch.device(device)

    def move(x):
        if not isinstance(x, torch.Tensor):
            return x
        here = x.device
        same = here.type == target.type and (target.index is None or here.index == target.index)
        return x if same else x.to(target)

    return map_structure_without_check(move, nests)


def grad(nested: Any, objective: torch.Tensor, retain_graph: bool = False) -> Any:
    """The gradients of ``objective`` with respect to each tensor of ``nested``.

    Args:
        nested (nested Tensor): tensors that require grad.
        objective (Tensor): a scalar.
        retain_graph (bool): keep the graph for another backward pass.

    Returns:
        nested Tensor: the structure of ``nested``, each leaf the gradient of
        the same shape (zeros for a tensor ``objective`` does not depend on).
    """
    leaves = flatten(nested)
    grads = torch.autograd.grad(objective, leaves, retain_graph=retain_graph, allow_unused=True)
    filled = [torch.zeros_like(x) if g is None else g for x, g in zip(leaves, grads)]
    return pack_sequence_as(nested, filled)


def zeros_like(nested: Any) -> Any:
    """``torch.zeros_like`` of every tensor of ``nested`` (same structure)."""
    return map_structure_without_check(torch.zeros_like, nested)


def make_nested_module(nested: Any, ignore_non_module: bool = False) -> nn.Module:
    """Turn a nest of modules into one module that registers them all:
    lists and tuples become ``nn.ModuleList``, dicts and namedtuples
    ``nn.ModuleDict`` (keyed by field name), a module stays itself.

    Args:
        nested (nest of nn.Module): the modules.
        ignore_non_module (bool): store ``None`` for leaves that are not
            modules instead of raising.

    Raises:
        TypeError: a leaf is not a module and ``ignore_non_module`` is False
            (the message names its path).
    """

    def convert(node, path):
        if isinstance(node, nn.Module):
            return node
        if is_namedtuple(node):
            return nn.ModuleDict(
                {name: convert(getattr(node, name), _join(path, name)) for name in node._fields}
            )
        if isinstance(node, dict):
            return nn.ModuleDict({k: convert(v, _join(path, k)) for k, v in node.items()})
        if isinstance(node, (list, tuple)):
            return nn.ModuleList([convert(v, _join(path, i)) for i, v in enumerate(node)])
        if ignore_non_module:
            return None
        where = f" at '{path}'" if path else ""
        raise TypeError(f"nested must hold nn.Module leaves; got {type(node).__name__}{where}")

    if not (is_nested(nested) or isinstance(nested, nn.Module)) and ignore_non_module:
        raise TypeError(f"nested must be a module or a nest of modules; got {type(nested).__name__}")
    # check every leaf first, so a bad one raises before any module is built
    if not ignore_non_module:
        for path, leaf in flatten_with_path(nested):
            if not isinstance(leaf, nn.Module):
                where = f" at '{path}'" if path else ""
                raise TypeError(
                    f"nested must hold nn.Module leaves; got {type(leaf).__name__}{where}"
                )
    return convert(nested, "")


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def get_nested_field(nested: Any, field: Any) -> Any:
    """The sub-nests of ``nested`` at the paths in ``field``.

    Args:
        nested (nest): the nest to read.
        field (nest of str): dotted paths ``"A.B.C"`` (see
            ``alf.nest.get_field``), in any nest.

    Returns:
        nest: the structure of ``field``, each path replaced by the sub-nest
        of ``nested`` it names.

    Raises:
        ValueError: a path names no field of ``nested``.
    """
    return map_structure(lambda f: get_field(nested, f), field)
