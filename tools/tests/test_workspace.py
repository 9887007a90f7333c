"""tools/workspace.py: discovery, dependency order, torch propagation, cycles."""

from __future__ import annotations

import pytest
from workspace import (
    TORCH_FREE_PYTHONS,
    TORCH_PYTHONS,
    WorkspaceError,
    discover_packages,
    find_cycle,
    normalize,
    requirement_name,
    sibling_closure,
)


def test_requirement_names_are_normalized():
    assert requirement_name("Alf_Math>=0.1,<0.2") == "alf-math"
    assert requirement_name("torch>=2.1; python_version>'3.8'") == "torch"
    assert requirement_name("tensorboard[extra] >= 2") == "tensorboard"
    assert normalize("Foo.Bar__baz") == "foo-bar-baz"


def test_requirement_without_name_is_rejected():
    with pytest.raises(WorkspaceError, match="cannot read a distribution name"):
        requirement_name(">=1.0")


def test_discovery_orders_by_dependency_and_propagates_torch(repo):
    repo.package("alf-losses", ["alf-dist>=0.1,<0.2", "alf-math>=0.1,<0.2", "scipy"])
    repo.package("alf-dist", ["alf-math>=0.1,<0.2"])
    repo.package("alf-math", ["torch>=2.1", "numpy"])
    repo.package("alf-plot", ["numpy", "matplotlib"])
    packages = discover_packages(repo.root)
    order = list(packages)
    assert order.index("alf-math") < order.index("alf-dist") < order.index("alf-losses")
    assert packages["alf-dist"].siblings == ["alf-math"]
    assert packages["alf-losses"].uses_torch and packages["alf-dist"].uses_torch
    assert not packages["alf-plot"].uses_torch
    assert sibling_closure(packages, "alf-losses") == ["alf-math", "alf-dist"]
    assert sibling_closure(packages, "alf-math") == []


def test_cycle_in_declared_siblings_is_an_error(repo):
    repo.package("a-pkg", ["b-pkg>=0.1"])
    repo.package("b-pkg", ["c-pkg>=0.1"])
    repo.package("c-pkg", ["a-pkg>=0.1"])
    with pytest.raises(WorkspaceError, match="cycle: a-pkg -> b-pkg -> c-pkg -> a-pkg"):
        discover_packages(repo.root)


def test_find_cycle_on_acyclic_and_self_loop():
    assert find_cycle({"a": ["b"], "b": ["c"], "c": []}) == []
    assert find_cycle({"a": ["a"]}) == ["a", "a"]


def test_unknown_package_in_closure(repo):
    repo.package("alf-math", ["torch"])
    with pytest.raises(WorkspaceError, match="unknown package 'nope'"):
        sibling_closure(discover_packages(repo.root), "nope")


def test_unreadable_pyproject_is_reported(repo):
    path = repo.root / "packages" / "broken"
    path.mkdir(parents=True)
    (path / "pyproject.toml").write_text("[project\nname=")
    with pytest.raises(WorkspaceError, match="cannot be read"):
        discover_packages(repo.root)


def test_test_pythons_follow_torch(repo):
    repo.package("alf-math", ["torch>=2.3"])
    repo.package("alf-dist", ["alf-math>=0.1,<0.2"])
    repo.package("alf-plot", ["numpy"], py_typed="alf/utils")
    found = discover_packages(repo.root)
    assert found["alf-math"].test_pythons == found["alf-dist"].test_pythons == TORCH_PYTHONS
    assert found["alf-plot"].test_pythons == TORCH_FREE_PYTHONS
    assert TORCH_PYTHONS == ("3.11",)
    assert TORCH_FREE_PYTHONS == ("3.9", "3.10", "3.11", "3.12", "3.13")
