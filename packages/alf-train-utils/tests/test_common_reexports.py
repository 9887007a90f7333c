"""alf.utils.common re-exports alf-math's generic helpers unchanged, and
names every public object by its public module."""

import pytest
import torch

import alf.utils.common_core as core
from alf.utils import common

GENERIC = [
    "abs_path",
    "add_method",
    "as_list",
    "call_stack",
    "cast_transformer",
    "check_numerics",
    "detach",
    "expand_dims_as",
    "flattened_size",
    "get_all_parameters",
    "get_initial_policy_state",
    "image_scale_transformer",
    "info",
    "info_once",
    "reset_state_if_necessary",
    "tuplify2d",
    "warning",
    "warning_once",
]


def test_generic_helpers_are_alf_math_objects():
    for name in GENERIC:
        assert getattr(common, name) is getattr(core, name), name
        assert name in common.__all__


def test_everything_listed_exists_and_names_the_public_module():
    for name in common.__all__:
        obj = getattr(common, name)
        if name in GENERIC or not callable(obj):
            continue
        assert obj.__module__ == "alf.utils.common", name


def test_check_numerics_names_the_nest_path():
    good = {"a": torch.ones(2), "b": (torch.zeros(3), 1.0)}
    common.check_numerics(good)
    with pytest.raises(AssertionError, match="'b.0'"):
        common.check_numerics({"a": torch.ones(2), "b": (torch.tensor([0.0, float("inf")]),)})


def test_a_few_generic_helpers_through_common():
    assert common.as_list(None) == [] and common.as_list((1, 2)) == [1, 2]
    assert common.tuplify2d(3) == (3, 3)
    x = torch.ones(2, 3)
    assert common.expand_dims_as(torch.ones(2), x).shape == (2, 1)
