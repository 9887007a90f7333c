"""The precompiled packer agrees with alf.nest.pack_sequence_as."""

import collections

import pytest

import alf.nest as nest
from alf.utils._buffer_pack import compile_packer

Pair = collections.namedtuple("Pair", ["b", "a"])


class Box(list):
    """A list subclass: rebuilt through alf.nest."""


@pytest.mark.parametrize(
    "template",
    [
        "leaf",
        {"z": 1, "a": 2, "m": {"y": 3, "b": 4}},
        [1, (2, 3), Pair(b=4, a={"k": 5})],
        (Pair(b=[1], a=2),),
        {"box": Box([1, 2]), "x": 3},
    ],
)
def test_packer_matches_pack_sequence_as(template):
    flat = [f"v{i}" for i in range(len(nest.flatten(template)))]
    packed = compile_packer(template)(flat)
    expected = nest.pack_sequence_as(template, flat)
    assert packed == expected
    assert type(packed) is type(expected)
    assert nest.flatten(packed) == flat
