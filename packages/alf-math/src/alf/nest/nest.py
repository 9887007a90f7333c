"""Nested structures ("nests") of tuples, lists, dicts and namedtuples.

A *nest* is either a leaf (anything that is not one of the containers below,
including ``None`` and tensors) or a container whose elements are nests:

* ``list`` and plain ``tuple``: elements in order;
* namedtuples (any ``tuple`` subclass with ``_fields``): fields in the
  alphabetical order of their names, as ALF documents (not the declaration
  order): ``flatten(Pair(b=1, a=2)) == [2, 1]``;
* ``dict`` (and subclasses): values in sorted key order, so two dicts with the
  same keys flatten the same way whatever their insertion order.

``flatten``, ``pack_sequence_as``, every ``map_structure*`` and every other
function here walk the fields in that same order, so flat lists exchanged
with ALF code line up.

Every function that walks several nests checks that they share a structure and,
when they do not, raises ``ValueError``/``TypeError`` naming the path (e.g.
``"obs.image"``, ``"actions.1"``) where they first differ.

Fields of a nest can be addressed by a dotted path ``"A.B.C"``: a namedtuple
field or dict key name, or a list/tuple index.

ALF ships a C++ implementation of the hot functions and keeps the Python ones
under ``py_*`` names; here both names are the same Python function.
"""

import collections.abc
import copy
import re
import weakref
from typing import Any, Callable, Dict, ForwardRef, List, Optional, Sequence, Tuple, Union

import torch

from alf.tensor_specs import TensorSpec

__all__ = [
    "Nest",
    "NestedTensor",
    "NestedTensorSpec",
    "NestedDistribution",
    "is_namedtuple",
    "is_unnamedtuple",
    "is_nested",
    "flatten",
    "py_flatten",
    "flatten_with_path",
    "flatten_up_to",
    "py_flatten_up_to",
    "pack_sequence_as",
    "py_pack_sequence_as",
    "assert_same_type",
    "assert_same_length",
    "assert_same_structure",
    "py_assert_same_structure",
    "assert_same_structure_up_to",
    "py_assert_same_structure_up_to",
    "is_same_structure",
    "map_structure",
    "py_map_structure",
    "map_structure_with_path",
    "py_map_structure_with_path",
    "map_structure_up_to",
    "py_map_structure_up_to",
    "map_structure_without_check",
    "fast_map_structure",
    "fast_map_structure_flatten",
    "get_field",
    "set_field",
    "transform_nest",
    "transform_nests",
    "find_field",
    "extract_fields_from_nest",
    "extract_any_leaf_from_nest",
    "get_nest_size",
    "get_nest_batch_size",
    "get_nest_shape",
    "prune_nest_like",
    "py_prune_nest_like",
    "nest_top_level",
    "transpose",
    "batch_nested_tensor",
    "unbatch_nested_tensor",
    "sum_nest",
]

def _alias(name: str, leaf: Any) -> Any:
    """``leaf`` or a list, tuple or dict of ``name`` (recursively); the
    forward references name this module, so ``typing.get_type_hints``
    resolves them from anywhere."""
    ref = ForwardRef(name, module=__name__)
    return Union[leaf, List[ref], Tuple[ref, ...], Dict[Any, ref]]  # type: ignore[valid-type]


#: Any nest (see the module docstring); leaves of any type.
Nest = _alias("Nest", Any)
#: A nest whose leaves are ``torch.Tensor``.
NestedTensor = _alias("NestedTensor", torch.Tensor)
#: A nest whose leaves are ``TensorSpec`` (or ``BoundedTensorSpec``).
NestedTensorSpec = _alias("NestedTensorSpec", TensorSpec)
#: A nest whose leaves are ``torch.distributions.Distribution``.
NestedDistribution = _alias("NestedDistribution", torch.distributions.Distribution)


def is_namedtuple(value: Any) -> bool:
    """Whether ``value`` is a namedtuple instance (or class)."""
    cls = value if isinstance(value, type) else type(value)
    return issubclass(cls, tuple) and hasattr(cls, "_fields")


def is_unnamedtuple(value: Any) -> bool:
    """Whether ``value`` is a tuple that is not a namedtuple."""
    return isinstance(value, tuple) and not is_namedtuple(value)


def is_nested(value: Any) -> bool:
    """Whether ``value`` is a container nest (list, tuple, namedtuple or dict)."""
    return isinstance(value, (list, tuple, collections.abc.Mapping))


def _sorted_keys(mapping: collections.abc.Mapping) -> List[Any]:
    try:
        return sorted(mapping.keys())
    except TypeError:
        return sorted(mapping.keys(), key=repr)


# namedtuple class -> (field names sorted, their positions in the tuple)
_FIELD_ORDER: "weakref.WeakKeyDictionary[type, Tuple[Tuple[str, ...], Tuple[int, ...]]]" = (
    weakref.WeakKeyDictionary()
)


def _field_order(cls: Any) -> Tuple[Tuple[str, ...], Tuple[int, ...]]:
    """The fields of namedtuple class ``cls`` in alphabetical order, and the
    position of each in the tuple."""
    try:
        return _FIELD_ORDER[cls]
    except KeyError:
        pass
    fields = tuple(cls._fields)
    positions = tuple(sorted(range(len(fields)), key=fields.__getitem__))
    order = (tuple(fields[i] for i in positions), positions)
    try:
        _FIELD_ORDER[cls] = order
    except TypeError:  # a class that cannot be weakly referenced
        pass
    return order


def _children(nest: Any) -> List[Tuple[Any, Any]]:
    """``[(key, child), ...]`` of a container nest, in flattening order."""
    if isinstance(nest, collections.abc.Mapping):
        return [(k, nest[k]) for k in _sorted_keys(nest)]
    if is_namedtuple(nest):
        names, positions = _field_order(type(nest))
        return [(name, nest[i]) for name, i in zip(names, positions)]
    return list(enumerate(nest))


def _child_values(nest: Any) -> List[Any]:
    """The children of a container nest, in flattening order."""
    if isinstance(nest, collections.abc.Mapping):
        return [nest[k] for k in _sorted_keys(nest)]
    if is_namedtuple(nest):
        return [nest[i] for i in _field_order(type(nest))[1]]
    return list(nest)


def _rebuild(template: Any, values: Sequence[Any]) -> Any:
    """A container of the same type as ``template`` holding ``values``
    (in flattening order)."""
    if isinstance(template, collections.abc.Mapping):
        keys = _sorted_keys(template)
        result = dict(zip(keys, values))
        if type(template) is dict:
            # keep the caller's key order
            return {k: result[k] for k in template}
        if isinstance(template, collections.defaultdict):
            # its constructor takes the default factory first
            return type(template)(template.default_factory, ((k, result[k]) for k in template))
        if isinstance(template, collections.OrderedDict):
            return type(template)((k, result[k]) for k in template)
        make: Callable[..., Any] = type(template)  # a Mapping subclass
        try:
            return make(result)
        except TypeError:
            return result
    if is_namedtuple(template):
        positions = _field_order(type(template))[1]
        items: List[Any] = [None] * len(positions)
        for position, value in zip(positions, values):
            items[position] = value
        return type(template)(*items)
    if isinstance(template, tuple):
        return tuple(values) if type(template) is tuple else type(template)(values)
    return list(values) if type(template) is list else type(template)(values)


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _where(path: str) -> str:
    return f"at '{path}'" if path else "at the top level"


def flatten(nest: Any) -> List[Any]:
    """The leaves of ``nest`` as a flat list, in the order described in the
    module docstring (namedtuple fields and dict keys sorted)."""
    if not is_nested(nest):
        return [nest]
    leaves = []
    stack = [nest]
    while stack:
        node = stack.pop()
        if is_nested(node):
            children = _child_values(node)
            children.reverse()
            stack.extend(children)
        else:
            leaves.append(node)
    return leaves


py_flatten = flatten


def flatten_with_path(nest: Any) -> List[Tuple[str, Any]]:
    """``[(path, leaf), ...]`` in ``flatten`` order, where ``path`` is the
    dotted path of the leaf (``""`` for a nest that is itself a leaf)."""
    out = []

    def walk(node, path):
        if is_nested(node):
            for key, child in _children(node):
                walk(child, _join(path, key))
        else:
            out.append((path, node))

    walk(nest, "")
    return out


def _structure_mismatch(nest1: Any, nest2: Any, check_types: bool, path: str = ""):
    """Return an error (not raised) describing the first place where the two
    nests differ, or ``None`` when they share a structure."""
    n1, n2 = is_nested(nest1), is_nested(nest2)
    if not n1 and not n2:
        return None
    if n1 != n2:
        leaf, container = (nest2, nest1) if n1 else (nest1, nest2)
        return ValueError(
            f"nests differ {_where(path)}: one is a {type(container).__name__} "
            f"and the other a leaf of type {type(leaf).__name__}"
        )
    if check_types:
        mapping1 = isinstance(nest1, collections.abc.Mapping)
        mapping2 = isinstance(nest2, collections.abc.Mapping)
        same_kind = (
            (mapping1 and mapping2)
            or (is_namedtuple(nest1) and type(nest1) is type(nest2))
            or (
                not mapping1
                and not mapping2
                and not is_namedtuple(nest1)
                and not is_namedtuple(nest2)
                and isinstance(nest1, tuple) == isinstance(nest2, tuple)
            )
        )
        if not same_kind:
            return TypeError(
                f"nests differ {_where(path)}: {type(nest1).__name__} vs {type(nest2).__name__}"
            )
    c1, c2 = _children(nest1), _children(nest2)
    keys1, keys2 = [k for k, _ in c1], [k for k, _ in c2]
    if keys1 != keys2:
        if isinstance(nest1, collections.abc.Mapping) or is_namedtuple(nest1):
            return ValueError(f"nests differ {_where(path)}: keys {keys1} vs {keys2}")
        return ValueError(f"nests differ {_where(path)}: length {len(keys1)} vs {len(keys2)}")
    for (key, child1), (_, child2) in zip(c1, c2):
        error = _structure_mismatch(child1, child2, check_types, _join(path, key))
        if error is not None:
            return error
    return None


def assert_same_type(value1: Any, value2: Any) -> None:
    """Raise ``TypeError`` unless the two values have the same type (any two
    mappings count as the same)."""
    both_maps = isinstance(value1, collections.abc.Mapping) and isinstance(
        value2, collections.abc.Mapping
    )
    if not both_maps and type(value1) is not type(value2):
        raise TypeError(f"different types: {type(value1).__name__} vs {type(value2).__name__}")


def assert_same_length(seq1: Any, seq2: Any) -> None:
    """Raise ``ValueError`` unless the two sequences (or containers) have the
    same number of elements."""
    n1, n2 = len(list(seq1)), len(list(seq2))
    if n1 != n2:
        raise ValueError(f"different lengths: {n1} vs {n2}")


def assert_same_structure(nest1: Any, nest2: Any, check_types: bool = False) -> None:
    """Raise ``ValueError`` (or ``TypeError`` for different container types
    when ``check_types``) naming the path where the two nests first differ.

    Lists and tuples count as the same structure unless ``check_types``.
    """
    error = _structure_mismatch(nest1, nest2, check_types)
    if error is not None:
        raise error


py_assert_same_structure = assert_same_structure


def is_same_structure(nest1: Any, nest2: Any, check_types: bool = False) -> bool:
    """Whether the two nests share a structure (see ``assert_same_structure``)."""
    return _structure_mismatch(nest1, nest2, check_types) is None


class _TooFewLeaves(Exception):
    """``pack_sequence_as``: ``flat_seq`` ran out before the nest's leaves."""


_END = object()


def pack_sequence_as(nest: Any, flat_seq: Sequence[Any]) -> Any:
    """A nest with the structure of ``nest`` whose leaves are ``flat_seq``
    (in ``flatten`` order: ``pack_sequence_as(nest, flatten(nest)) == nest``).

    Raises:
        ValueError: ``flat_seq`` has a different number of elements than
            ``nest`` has leaves.
    """
    flat_seq = list(flat_seq)
    if not is_nested(nest):
        if len(flat_seq) != 1:
            raise ValueError(
                f"flat_seq must have exactly 1 element for a leaf nest; got {len(flat_seq)}"
            )
        return flat_seq[0]
    leaves = iter(flat_seq)

    def build(node):
        if not is_nested(node):
            try:
                return next(leaves)
            except StopIteration:
                raise _TooFewLeaves from None
        return _rebuild(node, [build(child) for child in _child_values(node)])

    # One walk; the leaves are counted only for the error message, when
    # flat_seq runs out early or has some left over.
    try:
        result = build(nest)
    except _TooFewLeaves:
        result = _END
    if result is _END or next(leaves, _END) is not _END:
        raise ValueError(
            f"flat_seq has {len(flat_seq)} elements but nest has {len(flatten(nest))} leaves"
        )
    return result


py_pack_sequence_as = pack_sequence_as


def _map_leaves(func: Callable, node: Any) -> Any:
    """``map_structure(func, node)`` in one walk (leaves in flattening order)."""
    if not is_nested(node):
        return func(node)
    return _rebuild(node, [_map_leaves(func, child) for child in _child_values(node)])


def map_structure(func: Callable, *nests: Any) -> Any:
    """Apply ``func`` to the corresponding leaves of ``nests``.

    Returns a nest with the structure of ``nests[0]`` whose leaves are
    ``func(leaf_0, leaf_1, ...)``; ``func`` is called on the leaves in
    ``flatten`` order.

    Raises:
        ValueError: no nest was given or the nests differ in structure (the
            message names the path where they differ).
    """
    if not nests:
        raise ValueError("map_structure needs at least one nest")
    for other in nests[1:]:
        assert_same_structure(nests[0], other)
    return map_structure_without_check(func, *nests)


py_map_structure = map_structure


def map_structure_without_check(func: Callable, *nests: Any) -> Any:
    """``map_structure`` without checking that the nests share a structure:
    each nest is flattened and ``func`` applied to the ``i``-th leaves, the
    results packed like ``nests[0]``.

    Raises:
        ValueError: no nest was given, or the nests have different numbers
            of leaves.
    """
    if not nests:
        raise ValueError("map_structure_without_check needs at least one nest")
    if len(nests) == 1:
        return _map_leaves(func, nests[0])
    flats = [flatten(n) for n in nests]
    return fast_map_structure_flatten(func, nests[0], *flats)


def fast_map_structure(func: Callable, *structure: Any) -> Any:
    """ALF's name for ``map_structure_without_check``: ``map_structure``
    without the structure check (for nests known to agree)."""
    return map_structure_without_check(func, *structure)


def fast_map_structure_flatten(func: Callable, structure: Any, *flat_structure: Sequence) -> Any:
    """``pack_sequence_as(structure, [func(*xs) for xs in zip(*flat_structure)])``:
    ``func`` applied to already flattened nests, the results packed like
    ``structure``.

    Raises:
        ValueError: no flat list was given, or the flat lists differ in length
            (or from the number of leaves of ``structure``).
    """
    if not flat_structure:
        raise ValueError("fast_map_structure_flatten needs at least one flat list")
    lengths = [len(f) for f in flat_structure]
    if len(set(lengths)) != 1:
        raise ValueError(f"flat_structure lists must have the same length; got {lengths}")
    return pack_sequence_as(structure, [func(*xs) for xs in zip(*flat_structure)])


def map_structure_with_path(func: Callable, *nests: Any) -> Any:
    """Like ``map_structure`` but calls ``func(path, *leaves)`` where ``path``
    is the dotted path of the leaves."""
    if not nests:
        raise ValueError("map_structure_with_path needs at least one nest")
    for other in nests[1:]:
        assert_same_structure(nests[0], other)
    paths = [p for p, _ in flatten_with_path(nests[0])]
    flats = [flatten(n) for n in nests]
    return pack_sequence_as(nests[0], [func(p, *xs) for p, *xs in zip(paths, *flats)])


py_map_structure_with_path = map_structure_with_path


def flatten_up_to(shallow_nest: Any, nest: Any) -> List[Any]:
    """Flatten ``nest`` only as deep as ``shallow_nest``: each leaf of
    ``shallow_nest`` yields the (possibly nested) sub-tree of ``nest`` at the
    same place, in ``flatten(shallow_nest)`` order.

    Raises:
        ValueError: ``nest`` lacks part of the structure of ``shallow_nest``
            (the message names the path).
    """
    out = []

    def walk(shallow, deep, path):
        if not is_nested(shallow):
            out.append(deep)
            return
        if not is_nested(deep):
            raise ValueError(
                f"nest is a leaf {_where(path)} where shallow_nest has a {type(shallow).__name__}"
            )
        c_shallow, c_deep = _children(shallow), _children(deep)
        k_shallow, k_deep = [k for k, _ in c_shallow], [k for k, _ in c_deep]
        if k_shallow != k_deep:
            raise ValueError(f"nests differ {_where(path)}: keys {k_shallow} vs {k_deep}")
        for (key, s), (_, d) in zip(c_shallow, c_deep):
            walk(s, d, _join(path, key))

    walk(shallow_nest, nest, "")
    return out


py_flatten_up_to = flatten_up_to


def assert_same_structure_up_to(shallow_nest: Any, deep_nest: Any) -> None:
    """Raise ``ValueError`` naming the path unless ``deep_nest`` has the
    structure of ``shallow_nest`` down to the leaves of ``shallow_nest``
    (below them ``deep_nest`` may hold anything)."""
    flatten_up_to(shallow_nest, deep_nest)


py_assert_same_structure_up_to = assert_same_structure_up_to


def map_structure_up_to(shallow_nest: Any, func: Callable, *nests: Any) -> Any:
    """Apply ``func`` to the sub-trees of ``nests`` found at the leaves of
    ``shallow_nest``; the result has the structure of ``shallow_nest``."""
    if not nests:
        raise ValueError("map_structure_up_to needs at least one nest")
    flats = [flatten_up_to(shallow_nest, n) for n in nests]
    return pack_sequence_as(shallow_nest, [func(*xs) for xs in zip(*flats)])


py_map_structure_up_to = map_structure_up_to


def _split_field(field: Optional[str]) -> List[str]:
    """The names along ``field``; ``""`` and None (ALF's "whole nest") give none."""
    if field is None:
        return []
    if not isinstance(field, str):
        raise TypeError(f"field must be a str like 'A.B.C' or None; got {type(field).__name__}")
    return field.split(".") if field else []


# a list/tuple index in a field path: optional minus sign, ASCII digits
_INDEX = re.compile(r"-?[0-9]+")


def _child(node: Any, name: str, path: str) -> Any:
    if isinstance(node, collections.abc.Mapping):
        if name in node:
            return node[name]
    elif is_namedtuple(node):
        if name in node._fields:
            return getattr(node, name)
    elif isinstance(node, (list, tuple)):
        if _INDEX.fullmatch(name) and -len(node) <= int(name) < len(node):
            return node[int(name)]
    raise ValueError(f"field '{_join(path, name)}' names no field of the nest")


def get_field(nest: Any, field: Optional[str]) -> Any:
    """The sub-nest of ``nest`` at the dotted path ``field`` (``""`` or None
    returns ``nest``).

    Raises:
        ValueError: ``field`` names no field (the message names the path).
    """
    node, path = nest, ""
    for name in _split_field(field):
        node = _child(node, name, path)
        path = _join(path, name)
    return node


def set_field(nest: Any, field: Optional[str], new_value: Any) -> Any:
    """A copy of ``nest`` with the sub-nest at ``field`` replaced by
    ``new_value`` (containers on the path are copied, others are shared;
    ``""`` or None replaces the whole nest).

    Raises:
        ValueError: ``field`` names no field (the message names the path).
    """
    return transform_nest(nest, field, lambda _: new_value)


def _transform(nests: Sequence[Any], field: Optional[str], func: Callable) -> Any:
    """``nests[0]`` with the node at ``field`` replaced by ``func(*nodes)``,
    ``nodes`` being the nodes of all ``nests`` at ``field``."""
    names = _split_field(field)

    def replace(nodes, depth, path):
        if depth == len(names):
            return func(*nodes)
        name = names[depth]
        olds = [_child(node, name, path) for node in nodes]
        new = replace(olds, depth + 1, _join(path, name))
        node = nodes[0]
        if isinstance(node, collections.abc.Mapping):
            # copy.copy keeps the type and its extra state (a defaultdict's
            # factory, which type(node)(node) would take node for)
            mutable = isinstance(node, collections.abc.MutableMapping)
            copied = copy.copy(node) if mutable else dict(node)
            copied[name] = new
            return copied
        if is_namedtuple(node):
            return node._replace(**{name: new})
        items = list(node)
        items[int(name)] = new
        return _rebuild(node, items)

    # ``replace`` looks up the whole path in every nest before it calls
    # ``func`` or copies a container, so a bad path raises before anything is
    # built.
    return replace(list(nests), 0, "")


def transform_nest(nest: Any, field: Optional[str], func: Callable) -> Any:
    """A copy of ``nest`` with the sub-nest ``x`` at ``field`` replaced by
    ``func(x)`` (``""`` or None: ``func(nest)``, as in ALF).

    Raises:
        ValueError: ``field`` names no field (the message names the path).
    """
    return _transform([nest], field, func)


def transform_nests(nests: Sequence[Any], field: Optional[str], func: Callable) -> Any:
    """A copy of ``nests[0]`` with the sub-nest at ``field`` replaced by
    ``func(x_0, x_1, ...)``, where ``x_i`` is the sub-nest of ``nests[i]`` at
    ``field`` (``""`` or None: ``func(*nests)``).

    Containers on the path are copied from ``nests[0]``; the other nests only
    need to have ``field``.

    Args:
        nests (list[nest]): one or more nests.
        field (str | None): a dotted path ``"A.B.C"``.
        func (Callable): takes ``len(nests)`` sub-nests, returns the new one.

    Raises:
        ValueError: ``nests`` is empty, or ``field`` names no field of one of
            them (the message names the path).
        TypeError: ``nests`` is not a list or tuple.
    """
    if not isinstance(nests, (list, tuple)):
        raise TypeError(f"nests must be a list or tuple of nests; got {type(nests).__name__}")
    if not nests:
        raise ValueError("nests must hold at least one nest; got an empty sequence")
    return _transform(nests, field, func)


def find_field(nest: Any, name: str, ignore_empty: bool = True) -> List[Any]:
    """All values of fields (namedtuple fields or dict keys) called ``name``
    anywhere in ``nest``, outermost first. Empty values (``None`` and empty
    tuples) are skipped when ``ignore_empty``. A matching field is not
    searched further."""
    found = []

    def walk(node):
        if not is_nested(node):
            return
        searchable = isinstance(node, collections.abc.Mapping) or is_namedtuple(node)
        for key, child in _children(node):
            if searchable and key == name:
                # not child == (): an array or tensor compares elementwise
                empty = child is None or (isinstance(child, tuple) and len(child) == 0)
                if not (ignore_empty and empty):
                    found.append(child)
            else:
                walk(child)

    walk(nest)
    return found


def extract_fields_from_nest(nest: Any) -> List[Tuple[Any, Any]]:
    """``[(field_or_index, value), ...]`` of the top level of a container nest,
    in flattening order (namedtuple fields and dict keys sorted, as ALF).

    Raises:
        TypeError: ``nest`` is a leaf.
    """
    if not is_nested(nest):
        raise TypeError(f"nest must be a container nest; got {type(nest).__name__}")
    return _children(nest)


def extract_any_leaf_from_nest(nest: Any) -> Any:
    """The first leaf of ``nest`` (in flattening order) that is not ``None``,
    or ``None`` if there is none."""
    if not is_nested(nest):
        return nest
    for child in _child_values(nest):
        leaf = extract_any_leaf_from_nest(child)
        if leaf is not None:
            return leaf
    return None


def _first_shaped_leaf(nest: Any, ndim_above: int = -1) -> Tuple[str, Any]:
    """``(path, leaf)`` of the first leaf with a ``shape`` of more than
    ``ndim_above`` dims, or ``("", None)``."""
    for path, leaf in flatten_with_path(nest):
        shape = getattr(leaf, "shape", None)
        if shape is not None and len(shape) > ndim_above:
            return path, leaf
    return "", None


def get_nest_shape(nest: Any) -> torch.Size:
    """The shape of one leaf of ``nest``, as ALF: the first leaf (in
    flattening order) that has a ``shape`` (a tensor or array); the other
    leaves are assumed to share it and are not read.

    Raises:
        ValueError: no leaf of ``nest`` has a shape.
    """
    _, leaf = _first_shaped_leaf(nest)
    if leaf is None:
        raise ValueError("nest must hold a leaf with a shape (a tensor or array); found none")
    shape = leaf.shape
    return shape if isinstance(shape, torch.Size) else torch.Size(shape)


def get_nest_size(nest: Any, dim: int) -> int:
    """The size of dimension ``dim`` of one leaf of ``nest``, as ALF: the
    first leaf (in flattening order) that has that dimension. Leaves without
    it (0-d tensors, ``None``, Python numbers) are skipped; the others are
    assumed to agree and are not read.

    Raises:
        ValueError: no leaf of ``nest`` has dimension ``dim``.
        TypeError: ``dim`` is not an int.
    """
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise TypeError(f"dim must be an int; got {dim!r}")
    needed = dim if dim >= 0 else -dim - 1
    _, leaf = _first_shaped_leaf(nest, needed)
    if leaf is None:
        raise ValueError(f"nest must hold a tensor leaf with a dim {dim}; found none")
    return int(leaf.shape[dim])


def get_nest_batch_size(nest: Any) -> int:
    """The batch size (the size of dimension 0) of one leaf of ``nest`` (see
    ``get_nest_size``)."""
    return get_nest_size(nest, 0)


def _is_value_to_match(slim: Any, value_to_match: Any) -> bool:
    if slim is value_to_match:
        return True
    if value_to_match is None or hasattr(slim, "__array__"):
        # tensors and arrays compare elementwise: they never match
        return False
    try:
        return type(slim) is type(value_to_match) and bool(slim == value_to_match)
    except Exception:
        return False


def prune_nest_like(nest: Any, slim_nest: Any, value_to_match: Any = None) -> Any:
    """Keep only the part of ``nest`` whose structure ``slim_nest`` has.

    Dict keys and namedtuple fields absent from ``slim_nest`` are dropped (a
    namedtuple keeps its type with ``value_to_match`` in the dropped fields).
    Where ``slim_nest`` holds ``value_to_match`` (a leaf, or a container
    equal to it such as ``()``), the result holds ``value_to_match`` whatever
    ``nest`` has there: ``prune_nest_like(dict(a=1, b=2), dict(a=spec, b=()),
    value_to_match=())`` is ``{'a': 1, 'b': ()}``.

    Raises:
        ValueError: ``nest`` lacks part of the structure of ``slim_nest``
            (the message names the path).
    """

    def prune(full, slim, path):
        if _is_value_to_match(slim, value_to_match):
            return value_to_match
        if not is_nested(slim):
            return full
        if isinstance(slim, collections.abc.Mapping):
            if not isinstance(full, collections.abc.Mapping):
                raise ValueError(f"nest is not a dict {_where(path)}")
            return {
                k: prune(_mapping_get(full, k, path), v, _join(path, k)) for k, v in slim.items()
            }
        if is_namedtuple(slim):
            if not is_namedtuple(full):
                raise ValueError(f"nest is not a namedtuple {_where(path)}")
            values = {}
            for name in full._fields:
                if name in slim._fields:
                    values[name] = prune(
                        getattr(full, name), getattr(slim, name), _join(path, name)
                    )
                else:
                    values[name] = value_to_match
            return type(full)(**values)
        if not is_nested(full) or isinstance(full, collections.abc.Mapping):
            raise ValueError(
                f"nest is not a list or tuple {_where(path)}; got {type(full).__name__}"
            )
        if len(full) != len(slim):
            raise ValueError(f"nests differ {_where(path)}: length {len(full)} vs {len(slim)}")
        pruned = [prune(f, s, _join(path, i)) for i, (f, s) in enumerate(zip(full, slim))]
        return _rebuild(slim, pruned)

    return prune(nest, slim_nest, "")


py_prune_nest_like = prune_nest_like


def _mapping_get(mapping: collections.abc.Mapping, key: Any, path: str) -> Any:
    if key not in mapping:
        raise ValueError(f"field '{_join(path, key)}' names no field of the nest")
    return mapping[key]


def nest_top_level(nested: Any) -> Any:
    """The top level of ``nested``: a container of the same type and keys
    whose children are all ``None`` (a leaf for the ``*_up_to`` functions);
    a leaf ``nested`` gives ``None``.

    ``nest_top_level({"a": [1, 2], "b": 3}) == {"a": None, "b": None}``.
    """
    if not is_nested(nested):
        return None
    return _rebuild(nested, [None] * len(_child_values(nested)))


def transpose(nested: Any, shallow_nest: Any = None, new_shallow_nest: Any = None) -> Any:
    """Swap the outer and inner levels of a nest of nests.

    ``nested`` is a nest with the structure ``shallow_nest`` whose leaves are
    nests with the structure ``new_shallow_nest``; the result has the
    structure ``new_shallow_nest`` whose leaves are nests with the structure
    ``shallow_nest``:
    ``transpose([dict(a=1, b=2), dict(a=3, b=4)]) == dict(a=[1, 3], b=[2, 4])``.

    Args:
        nested (nest): the nest to transpose.
        shallow_nest (nest): the outer structure (default: the top level of
            ``nested``, see ``nest_top_level``).
        new_shallow_nest (nest): the inner structure (default: the top level
            of the first inner nest).

    Raises:
        ValueError: an inner nest lacks the structure ``new_shallow_nest``,
            or ``nested`` lacks ``shallow_nest`` (the message names the path).
    """
    if shallow_nest is None:
        shallow_nest = nest_top_level(nested)
    inner = flatten_up_to(shallow_nest, nested)
    if new_shallow_nest is None:
        if not inner:
            raise ValueError(
                "nested has no inner nest to take new_shallow_nest from; pass new_shallow_nest"
            )
        new_shallow_nest = nest_top_level(inner[0])
    columns = [flatten_up_to(new_shallow_nest, x) for x in inner]
    rows = [pack_sequence_as(shallow_nest, list(parts)) for parts in zip(*columns)]
    if not columns:
        rows = [pack_sequence_as(shallow_nest, []) for _ in flatten(new_shallow_nest)]
    return pack_sequence_as(new_shallow_nest, rows)


def batch_nested_tensor(nested_tensor: Any) -> Any:
    """Add a batch dimension of size 1 in front of every tensor of the nest:
    each leaf ``x`` becomes ``x.unsqueeze(0)`` (shape ``[1, *x.shape]``).

    Raises:
        TypeError: a leaf is not a tensor (the message names its path).
    """

    def batch(path, x):
        _check_tensor(x, path, "nested_tensor")
        return x.unsqueeze(0)

    return map_structure_with_path(batch, nested_tensor)


def unbatch_nested_tensor(nested_tensor: Any) -> Any:
    """Remove the batch dimension of size 1 of every tensor of the nest: each
    leaf ``x`` of shape ``[1, ...]`` becomes ``x[0]`` (shape ``x.shape[1:]``).

    Raises:
        TypeError: a leaf is not a tensor (the message names its path).
        ValueError: a leaf's dimension 0 is not of size 1, checked for every
            leaf before any is changed.
    """

    def check(path, x):
        _check_tensor(x, path, "nested_tensor")
        if x.dim() == 0 or x.shape[0] != 1:
            where = f" at '{path}'" if path else ""
            raise ValueError(
                f"nested_tensor must have a batch dim of size 1{where}; got shape {list(x.shape)}"
            )

    for path, x in flatten_with_path(nested_tensor):
        check(path, x)
    return map_structure_without_check(lambda x: x.squeeze(0), nested_tensor)


def _check_tensor(x: Any, path: str, name: str) -> None:
    if not isinstance(x, torch.Tensor):
        where = f" at '{path}'" if path else ""
        raise TypeError(f"{name} must hold tensors; got {type(x).__name__}{where}")


def sum_nest(nested: Any) -> Any:
    """The sum of all the leaves of ``nested``: ``x_0 + x_1 + ...`` in
    flattening order (tensors broadcast as ``+`` does); ``0`` for a nest
    without leaves."""
    leaves = flatten(nested)
    if not leaves:
        return 0
    total = leaves[0]
    for leaf in leaves[1:]:
        total = total + leaf
    return total
