"""Tests of alf.nest against hand-written expectations and a recursive oracle."""

import collections
from collections import OrderedDict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alf import nest

Point = collections.namedtuple("Point", ["x", "y"])
Outer = collections.namedtuple("Outer", ["obs", "action"])
# declared out of alphabetical order: ALF flattens it as (a, m, z)
Rev = collections.namedtuple("Rev", ["z", "a", "m"])


def _oracle_flatten(value):
    """Independent recursive flattening (dict keys and namedtuple fields sorted)."""
    if isinstance(value, dict):
        return [leaf for k in sorted(value) for leaf in _oracle_flatten(value[k])]
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return [leaf for f in sorted(value._fields) for leaf in _oracle_flatten(getattr(value, f))]
    if isinstance(value, (list, tuple)):
        return [leaf for v in value for leaf in _oracle_flatten(v)]
    return [value]


leaves = st.one_of(st.integers(), st.none(), st.text(max_size=3))
nests = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(st.sampled_from("abcd"), children, max_size=3),
        st.tuples(children, children).map(lambda t: Point(*t)),
        st.tuples(children, children, children).map(lambda t: Rev(*t)),
    ),
    max_leaves=12,
)


@given(nests)
def test_flatten_matches_recursive_oracle(value):
    assert nest.flatten(value) == _oracle_flatten(value)


@given(nests)
def test_pack_sequence_as_inverts_flatten(value):
    flat = nest.flatten(value)
    rebuilt = nest.pack_sequence_as(value, flat)
    assert rebuilt == value
    assert type(rebuilt) is type(value)


@given(nests)
def test_map_structure_applies_to_every_leaf(value):
    mapped = nest.map_structure(lambda x: f"seen:{x!r}", value)
    assert nest.flatten(mapped) == [f"seen:{x!r}" for x in _oracle_flatten(value)]
    nest.assert_same_structure(mapped, value)


def test_dict_order_independent_of_insertion():
    a = {"b": 1, "a": 2}
    b = {"a": 3, "b": 4}
    assert nest.flatten(a) == [2, 1]
    assert nest.map_structure(lambda x, y: x + y, a, b) == {"b": 5, "a": 5}
    # the result keeps the first nest's key order
    assert list(nest.map_structure(lambda x: x, a)) == ["b", "a"]


def test_ordered_dict_and_namedtuple_types_are_kept():
    value = OrderedDict([("z", Point(1, 2)), ("a", [3])])
    out = nest.map_structure(lambda x: x * 10, value)
    assert isinstance(out, OrderedDict) and list(out) == ["z", "a"]
    assert out["z"] == Point(10, 20)


def test_defaultdict_keeps_its_type_and_factory():
    value = collections.defaultdict(list, {"b": 1, "a": Point(2, 3)})
    out = nest.map_structure(lambda x: x * 10, value)
    assert type(out) is collections.defaultdict and out.default_factory is list
    assert dict(out) == {"b": 10, "a": Point(20, 30)} and list(out) == ["b", "a"]
    changed = nest.transform_nest(value, "a.y", lambda y: -y)
    assert type(changed) is collections.defaultdict and changed.default_factory is list
    assert dict(changed) == {"b": 1, "a": Point(2, -3)}
    assert value["a"] == Point(2, 3)  # the input is not modified
    assert nest.set_field(value, "b", 7)["b"] == 7 and value["b"] == 1


def test_assert_same_structure_names_the_path():
    with pytest.raises(ValueError, match=r"at 'obs\.y'"):
        nest.assert_same_structure(
            Outer(obs=Point(1, [2, 3]), action=4), Outer(obs=Point(1, [2]), action=4)
        )
    with pytest.raises(ValueError, match=r"at 'a': keys"):
        nest.assert_same_structure({"a": {"x": 1}}, {"a": {"y": 1}})
    with pytest.raises(ValueError, match="at the top level"):
        nest.assert_same_structure([1, 2], 3)


def test_check_types_distinguishes_list_and_tuple():
    nest.assert_same_structure([1, 2], (1, 2))
    with pytest.raises(TypeError, match="list vs tuple"):
        nest.assert_same_structure([1, 2], (1, 2), check_types=True)
    assert not nest.is_same_structure([1], [1, 2])


def test_map_structure_rejects_different_structures_with_path():
    with pytest.raises(ValueError, match=r"at 'action'"):
        nest.map_structure(lambda a, b: a, Outer(1, (2,)), Outer(1, (2, 3)))


def test_map_structure_with_path():
    value = {"a": [1, 2], "b": Point(3, 4)}
    out = nest.map_structure_with_path(lambda path, x: f"{path}={x}", value)
    assert out == {"a": ["a.0=1", "a.1=2"], "b": Point("b.x=3", "b.y=4")}


def test_flatten_up_to_and_map_structure_up_to():
    shallow = {"a": None, "b": (None, None)}
    deep = {"a": [1, 2], "b": ({"c": 3}, 4)}
    assert nest.flatten_up_to(shallow, deep) == [[1, 2], {"c": 3}, 4]
    sizes = nest.map_structure_up_to(shallow, lambda x: len(nest.flatten(x)), deep)
    assert sizes == {"a": 2, "b": (1, 1)}
    with pytest.raises(ValueError, match="at 'b.0'"):
        nest.flatten_up_to({"b": ((None,), None)}, {"b": (5, 4)})


def test_pack_sequence_as_rejects_wrong_length():
    with pytest.raises(ValueError, match="flat_seq has 1 elements but nest has 2 leaves"):
        nest.pack_sequence_as([0, 0], [1])
    with pytest.raises(ValueError, match="flat_seq has 3 elements but nest has 2 leaves"):
        nest.pack_sequence_as({"a": (0,), "b": 0}, [1, 2, 3])
    with pytest.raises(ValueError, match="flat_seq has 0 elements but nest has 1 leaves"):
        nest.pack_sequence_as([[], (0,)], [])


@given(nests)
def test_map_structure_calls_func_in_flattening_order(value):
    calls = []
    nest.map_structure(lambda x: calls.append(x), value)
    assert calls == _oracle_flatten(value)


def test_get_field_and_set_field():
    value = Outer(obs={"image": [10, 11], "state": 5}, action=Point(1, 2))
    assert nest.get_field(value, "obs.image.1") == 11
    assert nest.get_field(value, "action.y") == 2
    assert nest.get_field(value, "") is value
    updated = nest.set_field(value, "obs.state", 99)
    assert updated.obs["state"] == 99 and value.obs["state"] == 5
    assert updated.action is value.action  # untouched branches are shared
    doubled = nest.transform_nest(value, "action", lambda p: Point(p.x * 2, p.y * 2))
    assert doubled.action == Point(2, 4)


def test_field_none_is_the_whole_nest():
    # ALF: transform_nest(nest, None, func) applies func to the whole nest
    value = {"a": [1, 2]}
    assert nest.get_field(value, None) is value
    assert nest.set_field(value, None, 5) == 5
    assert nest.transform_nest(value, None, lambda v: ("whole", v)) == ("whole", value)
    with pytest.raises(TypeError, match="field must be a str like 'A.B.C' or None; got list"):
        nest.transform_nest(value, ["a"], lambda v: v)


def test_path_naming_no_field_raises_before_any_change():
    value = {"a": {"b": 1}}
    with pytest.raises(ValueError, match="field 'a.c' names no field"):
        nest.get_field(value, "a.c")
    with pytest.raises(ValueError, match="field 'a.b.x' names no field"):
        nest.set_field(value, "a.b.x", 2)
    calls = []
    with pytest.raises(ValueError, match="field 'a.c' names no field"):
        nest.transform_nest(value, "a.c", calls.append)
    assert value == {"a": {"b": 1}} and calls == []
    with pytest.raises(TypeError, match="field must be a str"):
        nest.get_field(value, 3)


def test_find_field_and_extract_fields():
    value = {"x": Point(x=1, y={"x": 2}), "z": ()}
    assert nest.find_field(value, "x") == [Point(x=1, y={"x": 2})]
    assert nest.find_field({"a": {"t": ()}, "b": {"t": 3}}, "t") == [3]
    assert nest.find_field({"a": {"t": ()}}, "t", ignore_empty=False) == [()]
    assert nest.extract_fields_from_nest(Point(1, 2)) == [("x", 1), ("y", 2)]
    assert nest.extract_any_leaf_from_nest([None, (None, 7)]) == 7
    with pytest.raises(TypeError, match="nest must be a container"):
        nest.extract_fields_from_nest(3)


def test_find_field_skips_none_and_compares_no_leaf_with_tuples():
    import numpy as np
    import torch

    value = {"a": {"t": None}, "b": Outer(obs=np.array([1, 2]), action=None), "c": {"t": 4}}
    assert nest.find_field(value, "t") == [4]
    assert nest.find_field(value, "t", ignore_empty=False) == [None, 4]
    assert nest.find_field(value, "action") == []
    (found,) = nest.find_field(value, "obs")  # an array leaf: no elementwise ``== ()``
    assert found is value["b"].obs
    (found,) = nest.find_field({"x": {"obs": torch.zeros(0)}}, "obs")
    assert found.shape == (0,)


def test_prune_nest_like():
    full = {"a": 1, "b": Point(2, 3), "c": [4, 5]}
    slim = {"b": Point(0, None), "c": [0, 0]}
    assert nest.prune_nest_like(full, slim) == {"b": Point(2, None), "c": [4, 5]}


def test_nest_batch_size_reads_one_leaf():
    import torch

    value = {"a": torch.zeros(3, 2), "b": [torch.ones(3)]}
    assert nest.get_nest_batch_size(value) == 3
    # ALF reads the first leaf (in flattening order) and nothing else
    assert nest.get_nest_batch_size({"a": torch.zeros(3), "b": torch.zeros(4)}) == 3


def test_is_predicates():
    assert nest.is_namedtuple(Point(1, 2)) and nest.is_namedtuple(Point)
    assert not nest.is_namedtuple((1, 2))
    assert nest.is_unnamedtuple((1, 2)) and not nest.is_unnamedtuple(Point(1, 2))
    assert nest.is_nested({}) and nest.is_nested([]) and not nest.is_nested(None)


def _oracle_paths(value, prefix=""):
    """Independent recursive ``[(dotted path, leaf), ...]`` (dict keys sorted)."""

    def join(key):
        return f"{prefix}.{key}" if prefix else str(key)

    if isinstance(value, dict):
        items = [(k, value[k]) for k in sorted(value)]
    elif isinstance(value, tuple) and hasattr(value, "_fields"):
        items = [(f, getattr(value, f)) for f in sorted(value._fields)]
    elif isinstance(value, (list, tuple)):
        items = list(enumerate(value))
    else:
        return [(prefix, value)]
    return [pair for key, child in items for pair in _oracle_paths(child, join(key))]


@given(nests)
def test_flatten_with_path_matches_recursive_oracle(value):
    assert nest.flatten_with_path(value) == _oracle_paths(value)


def test_flatten_with_path_of_a_mixed_nest():
    value = Outer(obs={"b": [1, (2,)], "a": None}, action=3)
    # namedtuple fields in alphabetical order, as ALF: "action" before "obs"
    assert nest.flatten_with_path(value) == [
        ("action", 3),
        ("obs.a", None),
        ("obs.b.0", 1),
        ("obs.b.1.0", 2),
    ]
    assert nest.flatten_with_path(7) == [("", 7)]


@given(nests)
def test_py_map_structure_with_path_passes_the_oracle_paths(value):
    paths = nest.py_map_structure_with_path(lambda path, x: f"path:{path}", value)
    assert nest.flatten(paths) == [f"path:{p}" for p, _ in _oracle_paths(value)]
    nest.assert_same_structure(paths, value, check_types=True)


def test_py_map_structure_with_path_of_several_nests():
    a = {"x": [1, 2], "y": Point(3, 4)}
    b = {"x": [10, 20], "y": Point(30, 40)}
    out = nest.py_map_structure_with_path(lambda path, u, v: f"{path}:{u + v}", a, b)
    assert out == {"x": ["x.0:11", "x.1:22"], "y": Point("y.x:33", "y.y:44")}
    with pytest.raises(ValueError, match=r"at 'x': length"):
        nest.py_map_structure_with_path(lambda path, u, v: u, a, {"x": [1], "y": Point(3, 4)})


def test_assert_same_type():
    nest.assert_same_type([1], [2, 3])
    nest.assert_same_type(Point(1, 2), Point(3, 4))
    nest.assert_same_type({"a": 1}, OrderedDict(b=2))  # any two mappings
    with pytest.raises(TypeError, match="different types: list vs tuple"):
        nest.assert_same_type([1], (1,))
    with pytest.raises(TypeError, match="different types: Point vs tuple"):
        nest.assert_same_type(Point(1, 2), (1, 2))
    with pytest.raises(TypeError, match="different types: int vs float"):
        nest.assert_same_type(1, 1.0)


def test_get_nest_size_and_shape_read_one_leaf():
    import numpy as np
    import torch

    value = {"a": torch.zeros(3, 2), "b": [torch.ones(5, 2, 4)], "c": None}
    assert nest.get_nest_size(value, 1) == 2
    assert nest.get_nest_size(value, 0) == 3  # leaf "a"; "b" is not read
    assert nest.get_nest_size(value, 2) == 4  # the first leaf with a dim 2
    assert nest.get_nest_size({"a": torch.zeros(3, 2), "b": torch.ones(4, 2)}, -1) == 2
    # one shape, the first leaf's: not a nest of shapes
    shape = nest.get_nest_shape({"a": torch.zeros(3, 2), "b": Point(torch.ones(4), None)})
    assert shape == torch.Size([3, 2]) and isinstance(shape, torch.Size)
    assert nest.get_nest_shape([None, np.zeros((2, 7))]) == torch.Size([2, 7])
    with pytest.raises(ValueError, match="nest must hold a tensor leaf with a dim 0; found none"):
        nest.get_nest_size([None, 1], 0)
    with pytest.raises(ValueError, match="nest must hold a leaf with a shape"):
        nest.get_nest_shape({"a": None, "b": [1.5]})
    with pytest.raises(TypeError, match="dim must be an int; got 0.5"):
        nest.get_nest_size(value, 0.5)


def test_nest_size_accepts_zero_dim_leaves_elsewhere():
    import torch

    # ALF's batch nests often carry 0-d tensors beside [B, ...] ones
    value = {"a": torch.tensor(1.0), "b": torch.zeros(6, 2), "c": [torch.tensor(2)]}
    assert nest.get_nest_batch_size(value) == 6
    assert nest.get_nest_size(value, -1) == 2
    assert nest.get_nest_shape(value) == torch.Size([])  # the first leaf, "a"
    with pytest.raises(ValueError, match="dim -3; found none"):
        nest.get_nest_size(value, -3)


def test_malformed_index_in_a_field_path():
    value = {"a": [10, 11]}
    assert nest.get_field(value, "a.-1") == 11
    for bad in ("--1", "1-", "\u00b2", "+1", " 1"):
        with pytest.raises(ValueError, match=f"field 'a.{bad}' names no field"):
            nest.get_field(value, f"a.{bad}")


# ---- ALF compatibility: namedtuple order and the rest of ALF's alf.nest API ----


def test_namedtuples_flatten_pack_and_map_in_alphabetical_field_order():
    # ALF documents: namedtuple fields are flattened in sorted order
    value = Rev(z=1, a=[2, 3], m={"k": 4})
    assert nest.flatten(value) == [2, 3, 4, 1]
    assert nest.py_flatten(value) == [2, 3, 4, 1]
    packed = nest.pack_sequence_as(value, ["a0", "a1", "mk", "z"])
    assert packed == Rev(z="z", a=["a0", "a1"], m={"k": "mk"}) and type(packed) is Rev
    assert nest.py_pack_sequence_as(Rev(0, 0, 0), [1, 2, 3]) == Rev(z=3, a=1, m=2)
    calls = []
    out = nest.map_structure(lambda x: calls.append(x) or x * 10, value)
    assert calls == [2, 3, 4, 1] and out == Rev(z=10, a=[20, 30], m={"k": 40})
    assert nest.py_map_structure(lambda x, y: x - y, Rev(5, 6, 7), Rev(1, 1, 1)) == Rev(4, 5, 6)
    assert nest.extract_fields_from_nest(Rev(1, 2, 3)) == [("a", 2), ("m", 3), ("z", 1)]
    assert nest.flatten_up_to(Rev(None, None, None), Rev([1], (2,), 3)) == [(2,), 3, [1]]
    assert nest.py_flatten_up_to(Rev(0, 0, 0), Rev(1, 2, 3)) == [2, 3, 1]
    assert nest.map_structure_up_to(Rev(0, 0, 0), len, Rev([1], [2, 3], [])) == Rev(1, 2, 0)
    assert nest.py_map_structure_up_to(Rev(0, 0, 0), str, Rev(1, 2, 3)) == Rev("1", "2", "3")
    # the first leaf is the first in that order
    assert nest.extract_any_leaf_from_nest(Rev(z=9, a=None, m=8)) == 8


def test_prune_nest_like_matches_an_empty_tuple_in_slim_nest():
    from alf.tensor_specs import TensorSpec

    spec = TensorSpec((2,))
    assert nest.prune_nest_like(dict(a=1, b=2), dict(a=spec, b=()), value_to_match=()) == {
        "a": 1,
        "b": (),
    }
    assert nest.py_prune_nest_like(
        {"x": [1, 2], "y": Rev(1, 2, 3)}, {"x": (), "y": Rev((), 0, 0)}, value_to_match=()
    ) == {"x": (), "y": Rev((), 2, 3)}
    # a tensor in slim_nest is never compared with value_to_match elementwise
    import torch

    assert nest.prune_nest_like([5], [torch.zeros(0)], value_to_match=()) == [5]
    with pytest.raises(ValueError, match="nest is not a list or tuple at 'b'"):
        nest.prune_nest_like(dict(a=1, b=2), dict(a=spec, b=(0,)), value_to_match=())


def test_assert_same_length_and_structure_up_to():
    nest.assert_same_length([1, 2], (3, 4))
    nest.assert_same_length({"a": 1}, [2])
    with pytest.raises(ValueError, match="different lengths: 2 vs 1"):
        nest.assert_same_length([1, 2], [3])
    nest.assert_same_structure_up_to({"a": None, "b": (0, 0)}, {"a": [1, 2], "b": ({}, 5)})
    nest.py_assert_same_structure_up_to([0], [[1, 2]])
    with pytest.raises(ValueError, match="at 'b'"):
        nest.assert_same_structure_up_to({"a": None, "b": (0, 0)}, {"a": 1, "b": 2})
    nest.py_assert_same_structure(Rev(1, 2, 3), Rev(4, 5, 6))
    with pytest.raises(ValueError, match="at 'm'"):
        nest.py_assert_same_structure(Rev(1, 2, 3), Rev(1, 2, [3]))


def test_fast_map_structure_and_map_structure_without_check():
    a = {"x": [1, 2], "y": Rev(1, 2, 3)}
    # lists and tuples are not told apart, nor are keys checked: only leaves count
    b = [(10, 20), (30, 40, 50)]
    assert nest.map_structure_without_check(lambda u, v: u + v, a, b) == {
        "x": [11, 22],
        "y": Rev(z=51, a=32, m=43),
    }
    assert nest.fast_map_structure(lambda u: -u, a) == {"x": [-1, -2], "y": Rev(-1, -2, -3)}
    flat = nest.flatten(a)
    out = nest.fast_map_structure_flatten(lambda u, v: u * v, a, flat, [1, 2, 3, 4, 5])
    assert nest.flatten(out) == [1, 4, 6, 12, 5] and out["y"] == Rev(z=5, a=6, m=12)
    with pytest.raises(ValueError, match=r"same length; got \[5, 2\]"):
        nest.fast_map_structure_flatten(lambda u, v: u, a, flat, [1, 2])
    with pytest.raises(ValueError, match=r"same length; got \[5, 4\]"):
        nest.map_structure_without_check(lambda u, v: u, a, [1, 2, 3, 4])


def test_transform_nests():
    x = {"obs": Rev(1, 2, 3), "r": 0}
    y = {"obs": Rev(10, 20, 30), "r": 5}
    out = nest.transform_nests([x, y], "obs.a", lambda u, v: u + v)
    assert out == {"obs": Rev(1, 22, 3), "r": 0} and x["obs"].a == 2
    assert nest.transform_nests((x, y), None, lambda u, v: (u["r"], v["r"])) == (0, 5)
    assert nest.transform_nests([x], "r", lambda u: u - 1) == {"obs": Rev(1, 2, 3), "r": -1}
    calls = []
    with pytest.raises(ValueError, match="field 'obs.q' names no field"):
        nest.transform_nests([x, y], "obs.q", lambda *v: calls.append(v))
    with pytest.raises(ValueError, match="field 'r' names no field"):
        nest.transform_nests([x, {"obs": 1}], "r", lambda *v: calls.append(v))
    assert calls == []
    with pytest.raises(ValueError, match="at least one nest"):
        nest.transform_nests([], "r", lambda: 0)
    with pytest.raises(TypeError, match="nests must be a list or tuple"):
        nest.transform_nests(x, "r", lambda u: u)


def test_nest_top_level_and_transpose():
    assert nest.nest_top_level({"a": [1, 2], "b": 3}) == {"a": None, "b": None}
    assert nest.nest_top_level(Rev(1, [2], 3)) == Rev(None, None, None)
    assert nest.nest_top_level([[1], 2]) == [None, None] and nest.nest_top_level(5) is None
    assert nest.transpose([dict(a=1, b=2), dict(a=3, b=4)]) == dict(a=[1, 3], b=[2, 4])
    assert nest.transpose(dict(a=[1, 2, 3], b=[4, 5, 6])) == [
        dict(a=1, b=4),
        dict(a=2, b=5),
        dict(a=3, b=6),
    ]
    value = Rev(z=Point(1, 2), a=Point(3, 4), m=Point(5, 6))
    assert nest.transpose(value) == Point(x=Rev(1, 3, 5), y=Rev(2, 4, 6))
    # explicit levels: the inner nests are split only down to new_shallow_nest
    deep = [{"a": [1, 2], "b": 3}, {"a": [4, 5], "b": 6}]
    assert nest.transpose(deep, [0, 0], {"a": 0, "b": 0}) == {"a": [[1, 2], [4, 5]], "b": [3, 6]}
    assert nest.transpose(deep, [0, 0], {"a": [0, 0], "b": 0}) == {
        "a": [[1, 4], [2, 5]],
        "b": [3, 6],
    }
    with pytest.raises(ValueError, match="keys"):
        nest.transpose([dict(a=1, b=2), dict(a=3)])
    with pytest.raises(ValueError, match="pass new_shallow_nest"):
        nest.transpose([])


def test_batch_and_unbatch_nested_tensor():
    import torch

    value = {"a": torch.arange(6.0).reshape(2, 3), "b": Rev(torch.tensor(1), torch.zeros(4), [])}
    batched = nest.batch_nested_tensor(value)
    assert batched["a"].shape == (1, 2, 3) and batched["b"].z.shape == (1,)
    assert torch.equal(batched["a"][0], value["a"]) and batched["b"].m == []
    back = nest.unbatch_nested_tensor(batched)
    assert torch.equal(back["a"], value["a"]) and back["b"].z.shape == ()
    with pytest.raises(ValueError, match=r"batch dim of size 1 at 'a'; got shape \[2, 3\]"):
        nest.unbatch_nested_tensor(value)
    with pytest.raises(TypeError, match="nested_tensor must hold tensors; got int at '1'"):
        nest.batch_nested_tensor([torch.zeros(1), 3])


def test_sum_nest():
    import torch

    value = {"b": torch.tensor([1.0, 2.0]), "a": [torch.tensor(10.0), torch.tensor([0.5, 0.25])]}
    torch.testing.assert_close(nest.sum_nest(value), torch.tensor([11.5, 12.25]))
    assert nest.sum_nest(Rev(1, 2, 3)) == 6 and nest.sum_nest([]) == 0
    assert nest.sum_nest(Rev("z", "a", "m")) == "amz"  # in flattening order


def test_type_aliases():
    import typing

    import torch

    from alf.tensor_specs import TensorSpec

    assert torch.Tensor in typing.get_args(nest.NestedTensor)
    assert TensorSpec in typing.get_args(nest.NestedTensorSpec)
    assert torch.distributions.Distribution in typing.get_args(nest.NestedDistribution)
    assert typing.Any in typing.get_args(nest.Nest)

    def f(x: nest.NestedTensor) -> nest.Nest:
        return x

    # the forward references resolve from this module too
    hints = typing.get_type_hints(f)
    assert torch.Tensor in typing.get_args(hints["x"]) and hints["return"] is not None


def test_alf_nest_is_a_regular_package_inside_the_namespace():
    import alf
    import alf.nest.nest
    import alf.nest.utils

    assert getattr(alf, "__file__", None) is None  # alf stays a namespace
    assert nest.__file__.endswith("__init__.py")
    assert nest.flatten is alf.nest.nest.flatten and nest.utils is alf.nest.utils
    assert nest.flatten.__module__ == "alf.nest.nest"
    assert set(alf.nest.nest.__all__) <= set(nest.__all__)
