"""A precompiled ``alf.nest.pack_sequence_as`` for a fixed structure.

Sampling rebuilds the same nest structure on every call; walking the template
each time costs more than copying small batches. ``compile_packer`` walks it
once: which flat element goes where is decided by ``alf.nest`` itself (it
packs the positions ``0..n-1`` into the template), and only plain ``dict``,
``list``, ``tuple`` and namedtuple containers are rebuilt here; any other
container type is rebuilt by ``alf.nest.map_structure``.
"""

from typing import Any, Callable, Sequence

import alf.nest as nest

__all__ = ["compile_packer"]

Packer = Callable[[Sequence[Any]], Any]


def compile_packer(template: Any) -> Packer:
    """A function ``pack(flat)`` equal to
    ``alf.nest.pack_sequence_as(template, flat)`` for ``flat`` of the length
    ``len(alf.nest.flatten(template))``."""
    positions = nest.pack_sequence_as(template, list(range(len(nest.flatten(template)))))
    return _compile(positions)


def _compile(node: Any) -> Packer:
    """``node`` is a nest of flat positions."""
    if not nest.is_nested(node):
        i = node
        return lambda flat: flat[i]
    kind = type(node)
    if kind is dict:
        items = [(key, _compile(child)) for key, child in node.items()]
        return lambda flat: {key: part(flat) for key, part in items}
    if kind is list or kind is tuple or nest.is_namedtuple(node):
        parts = [_compile(child) for child in node]
        if kind is list:
            return lambda flat: [part(flat) for part in parts]
        if kind is tuple:
            return lambda flat: tuple(part(flat) for part in parts)
        return lambda flat: kind(*[part(flat) for part in parts])
    return lambda flat: nest.map_structure(lambda i: flat[i], node)
