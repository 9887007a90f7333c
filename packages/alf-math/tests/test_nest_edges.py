"""alf.nest on inputs the main tests leave out: unsortable keys, Mapping types that
cannot be built from a dict, empty argument lists, mismatched shallow structures,
pruning errors and list transforms. Expected values are written out by hand."""

import collections
import types

import pytest

from alf import nest


class FrozenMap(collections.abc.Mapping):
    """A read-only Mapping whose constructor takes no dict (so rebuilding falls back)."""

    def __init__(self, **items):
        self._items = dict(items)

    def __getitem__(self, key):
        return self._items[key]

    def __iter__(self):
        return iter(self._items)

    def __len__(self):
        return len(self._items)


def test_keys_of_mixed_types_are_ordered_by_repr():
    # 1 and "a" do not compare: keys sort by repr ("'a'" < "1")
    assert nest.flatten({1: "one", "a": "A"}) == ["A", "one"]
    assert nest.pack_sequence_as({1: 0, "a": 0}, ["x", "y"]) == {1: "y", "a": "x"}


def test_mapping_that_cannot_be_rebuilt_becomes_a_dict():
    m = FrozenMap(b=2, a=1)
    out = nest.map_structure(lambda x: x * 10, m)
    assert type(out) is dict and out == {"a": 10, "b": 20}


def test_pack_sequence_as_a_leaf_needs_one_element():
    assert nest.pack_sequence_as(5, ["x"]) == "x"
    with pytest.raises(ValueError, match="flat_seq must have exactly 1 element"):
        nest.pack_sequence_as(5, ["x", "y"])


@pytest.mark.parametrize(
    "call, what",
    [
        (lambda: nest.map_structure(lambda: 0), "map_structure needs at least one nest"),
        (
            lambda: nest.map_structure_with_path(lambda p: 0),
            "map_structure_with_path needs at least one nest",
        ),
        (
            lambda: nest.map_structure_up_to({"a": 0}, lambda: 0),
            "map_structure_up_to needs at least one nest",
        ),
    ],
)
def test_mapping_functions_need_a_nest(call, what):
    with pytest.raises(ValueError, match=what):
        call()


def test_flatten_up_to_reports_differing_keys_with_their_path():
    with pytest.raises(ValueError, match=r"at 'x'.*keys \['a'\] vs \['b'\]"):
        nest.flatten_up_to({"x": {"a": 0}}, {"x": {"b": [1, 2]}})
    assert nest.flatten_up_to({"x": {"a": 0}}, {"x": {"a": [1, 2]}}) == [[1, 2]]


def test_transform_nest_in_lists_and_tuples():
    assert nest.transform_nest([1, [2, 3]], "1.0", lambda x: x + 40) == [1, [42, 3]]
    assert nest.transform_nest((1, 2), "1", str) == (1, "2")


def test_extract_any_leaf_of_an_all_none_nest_is_none():
    assert nest.extract_any_leaf_from_nest({"a": None, "b": [None]}) is None
    assert nest.extract_any_leaf_from_nest({"a": None, "b": [None, 7]}) == 7


Pair = collections.namedtuple("Pair", ["x", "y"])


def test_prune_nest_like_errors_name_the_path():
    with pytest.raises(ValueError, match="nest is not a dict at 'a'"):
        nest.prune_nest_like({"a": [1]}, {"a": {"k": 0}})
    with pytest.raises(ValueError, match="nest is not a namedtuple at 'a'"):
        nest.prune_nest_like({"a": (1, 2)}, {"a": Pair(0, 0)})
    with pytest.raises(ValueError, match="length 3 vs 2"):
        nest.prune_nest_like([1, 2, 3], [0, 0])
    with pytest.raises(ValueError, match="field 'a.z' names no field"):
        nest.prune_nest_like({"a": {"k": 1}}, {"a": {"z": 0}})


def test_prune_nest_like_fills_fields_missing_from_the_slim_namedtuple():
    Slim = collections.namedtuple("Slim", ["x"])
    assert nest.prune_nest_like(Pair(1, 2), Slim(0), value_to_match=-1) == Pair(1, -1)
    assert nest.prune_nest_like([1, {"a": 2, "b": 3}], [0, {"b": 0}]) == [1, {"b": 3}]


def test_mapping_proxy_is_a_nest():
    proxy = types.MappingProxyType({"b": 2, "a": 1})
    assert nest.flatten(proxy) == [1, 2]
