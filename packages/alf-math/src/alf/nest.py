"""Nested structures ("nests") of tuples, lists, dicts and namedtuples.

A *nest* is either a leaf (anything that is not one of the containers below,
including ``None`` and tensors) or a container whose elements are nests:

* ``list`` and plain ``tuple``: elements in order;
* namedtuples (any ``tuple`` subclass with ``_fields``): fields in declaration
  order;
* ``dict`` (and subclasses): values in sorted key order, so two dicts with the
  same keys flatten the same way whatever their insertion order.

Every function that walks several nests checks that they share a structure and,
when they do not, raises ``ValueError``/``TypeError`` naming the path (e.g.
``"obs.image"``, ``"actions.1"``) where they first differ.

Fields of a nest can be addressed by a dotted path ``"A.B.C"``: a namedtuple
field or dict key name, or a list/tuple index.
"""

import collections.abc
import copy
import re
from typing import Any, Callable, List, Optional, Sequence, Tuple

__all__ = [
    "is_namedtuple",
    "is_unnamedtuple",
    "is_nested",
    "flatten",
    "flatten_with_path",
    "flatten_up_to",
    "pack_sequence_as",
    "assert_same_type",
    "assert_same_structure",
    "is_same_structure",
    "map_structure",
    "map_structure_with_path",
    "py_map_structure_with_path",
    "map_structure_up_to",
    "get_field",
    "set_field",
    "transform_nest",
    "find_field",
    "extract_fields_from_nest",
    "extract_any_leaf_from_nest",
    "get_nest_size",
    "get_nest_batch_size",
    "get_nest_shape",
    "prune_nest_like",
]


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


def _children(nest: Any) -> List[Tuple[Any, Any]]:
    """``[(key, child), ...]`` of a container nest, in flattening order."""
    if isinstance(nest, collections.abc.Mapping):
        return [(k, nest[k]) for k in _sorted_keys(nest)]
    if is_namedtuple(nest):
        return list(zip(nest._fields, nest))
    return list(enumerate(nest))


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
        return type(template)(*values)
    if isinstance(template, tuple):
        return tuple(values) if type(template) is tuple else type(template)(values)
    return list(values) if type(template) is list else type(template)(values)


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _where(path: str) -> str:
    return f"at '{path}'" if path else "at the top level"


def flatten(nest: Any) -> List[Any]:
    """The leaves of ``nest`` as a flat list, in the order described in the
    module docstring."""
    if not is_nested(nest):
        return [nest]
    leaves = []
    stack = [nest]
    while stack:
        node = stack.pop()
        if is_nested(node):
            stack.extend(child for _, child in reversed(_children(node)))
        else:
            leaves.append(node)
    return leaves


def flatten_with_path(nest: Any) -> List[Tuple[str, Any]]:
    """``[(path, leaf), ...]`` where ``path`` is the dotted path of the leaf
    (``""`` for a nest that is itself a leaf)."""
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


def assert_same_structure(nest1: Any, nest2: Any, check_types: bool = False) -> None:
    """Raise ``ValueError`` (or ``TypeError`` for different container types
    when ``check_types``) naming the path where the two nests first differ.

    Lists and tuples count as the same structure unless ``check_types``.
    """
    error = _structure_mismatch(nest1, nest2, check_types)
    if error is not None:
        raise error


def is_same_structure(nest1: Any, nest2: Any, check_types: bool = False) -> bool:
    """Whether the two nests share a structure (see ``assert_same_structure``)."""
    return _structure_mismatch(nest1, nest2, check_types) is None


class _TooFewLeaves(Exception):
    """``pack_sequence_as``: ``flat_seq`` ran out before the nest's leaves."""


_END = object()


def pack_sequence_as(nest: Any, flat_seq: Sequence[Any]) -> Any:
    """A nest with the structure of ``nest`` whose leaves are ``flat_seq``.

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
        return _rebuild(node, [build(child) for _, child in _children(node)])

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


def _map_leaves(func: Callable, node: Any) -> Any:
    """``map_structure(func, node)`` in one walk (leaves in flattening order)."""
    if not is_nested(node):
        return func(node)
    return _rebuild(node, [_map_leaves(func, child) for _, child in _children(node)])


def map_structure(func: Callable, *nests: Any) -> Any:
    """Apply ``func`` to the corresponding leaves of ``nests``.

    Returns a nest with the structure of ``nests[0]`` whose leaves are
    ``func(leaf_0, leaf_1, ...)``.

    Raises:
        ValueError: no nest was given or the nests differ in structure (the
            message names the path where they differ).
    """
    if not nests:
        raise ValueError("map_structure needs at least one nest")
    for other in nests[1:]:
        assert_same_structure(nests[0], other)
    if len(nests) == 1:
        return _map_leaves(func, nests[0])
    flats = [flatten(n) for n in nests]
    return pack_sequence_as(nests[0], [func(*xs) for xs in zip(*flats)])


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
    same place.

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


def map_structure_up_to(shallow_nest: Any, func: Callable, *nests: Any) -> Any:
    """Apply ``func`` to the sub-trees of ``nests`` found at the leaves of
    ``shallow_nest``; the result has the structure of ``shallow_nest``."""
    if not nests:
        raise ValueError("map_structure_up_to needs at least one nest")
    flats = [flatten_up_to(shallow_nest, n) for n in nests]
    return pack_sequence_as(shallow_nest, [func(*xs) for xs in zip(*flats)])


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


def transform_nest(nest: Any, field: Optional[str], func: Callable) -> Any:
    """A copy of ``nest`` with the sub-nest ``x`` at ``field`` replaced by
    ``func(x)`` (``""`` or None: ``func(nest)``, as in ALF).

    Raises:
        ValueError: ``field`` names no field (the message names the path).
    """
    names = _split_field(field)

    def replace(node, depth, path):
        if depth == len(names):
            return func(node)
        name = names[depth]
        old = _child(node, name, path)
        new = replace(old, depth + 1, _join(path, name))
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

    # ``replace`` looks up the whole path before it calls ``func`` or copies
    # a container, so a bad path raises before anything is built.
    return replace(nest, 0, "")


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
    """``[(field_or_index, value), ...]`` of the top level of a container nest.

    Raises:
        TypeError: ``nest`` is a leaf.
    """
    if not is_nested(nest):
        raise TypeError(f"nest must be a container nest; got {type(nest).__name__}")
    return _children(nest)


def extract_any_leaf_from_nest(nest: Any) -> Any:
    """The first leaf of ``nest`` that is not ``None``, or ``None`` if there
    is none."""
    for leaf in flatten(nest):
        if leaf is not None:
            return leaf
    return None


def get_nest_size(nest: Any, dim: int) -> int:
    """The size of dimension ``dim`` shared by every tensor leaf of ``nest``.

    Raises:
        ValueError: ``nest`` has no tensor leaf, a tensor leaf has no
            dimension ``dim``, or the leaves disagree.
    """
    sizes = set()
    for path, leaf in flatten_with_path(nest):
        if not hasattr(leaf, "shape"):
            continue
        shape = tuple(leaf.shape)
        if not -len(shape) <= dim < len(shape):
            where = f"leaf at '{path}'" if path else "nest"
            raise ValueError(f"{where} has no dim {dim}; got shape {list(shape)}")
        sizes.add(shape[dim])
    if len(sizes) != 1:
        raise ValueError(f"nest leaves must share the size of dim {dim}; got sizes {sorted(sizes)}")
    return sizes.pop()


def get_nest_batch_size(nest: Any) -> int:
    """The batch size (dimension 0) shared by every tensor leaf of ``nest``."""
    return get_nest_size(nest, 0)


def get_nest_shape(nest: Any) -> Any:
    """A nest of the shapes of the leaves of ``nest``."""
    return map_structure(lambda leaf: leaf.shape, nest)


def prune_nest_like(nest: Any, slim_nest: Any, value_to_match: Any = None) -> Any:
    """Keep only the part of ``nest`` whose structure ``slim_nest`` has.

    Dict keys and namedtuple fields absent from ``slim_nest`` are dropped (a
    namedtuple keeps its type with ``value_to_match`` in the dropped fields);
    a leaf of ``slim_nest`` equal to ``value_to_match`` takes that value.
    """

    def prune(full, slim, path):
        if not is_nested(slim):
            if slim is value_to_match or (
                value_to_match is not None and _equal_leaf(slim, value_to_match)
            ):
                return value_to_match
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
        if len(full) != len(slim):
            raise ValueError(f"nests differ {_where(path)}: length {len(full)} vs {len(slim)}")
        pruned = [prune(f, s, _join(path, i)) for i, (f, s) in enumerate(zip(full, slim))]
        return _rebuild(slim, pruned)

    return prune(nest, slim_nest, "")


def _mapping_get(mapping: collections.abc.Mapping, key: Any, path: str) -> Any:
    if key not in mapping:
        raise ValueError(f"field '{_join(path, key)}' names no field of the nest")
    return mapping[key]


def _equal_leaf(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:
        return False
