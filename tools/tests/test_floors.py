"""tools/floors.py: the lowest versions a package's metadata admits, as pins."""

from __future__ import annotations

import pytest
from floors import FloorError, floor_of, floor_pins, main
from packaging.version import Version
from workspace import WorkspaceError, discover_packages


@pytest.mark.parametrize(
    "requirement, floor",
    [
        ("numpy>=1.23.2", "1.23.2"),
        ("numpy>=1.23.2,<3", "1.23.2"),
        ("scipy ~= 1.9", "1.9"),
        ("protobuf==3.19.6", "3.19.6"),
        ("numpy>=1.22,>=1.23.2", "1.23.2"),  # the tighter of two floors
        ("tensorboard[extra]>=2.10; python_version >= '3'", "2.10"),
    ],
)
def test_floor_is_the_lowest_admitted_version(requirement, floor):
    assert floor_of(requirement) == Version(floor)


@pytest.mark.parametrize("requirement", ["numpy", "numpy<3", "numpy>1.2", "numpy!=1.0"])
def test_requirement_without_floor_is_rejected(requirement):
    with pytest.raises(FloorError, match="declares no lower bound"):
        floor_of(requirement)


def test_wildcard_and_garbage_are_rejected():
    with pytest.raises(FloorError, match="no exact version"):
        floor_of("numpy==1.*")
    with pytest.raises(FloorError, match="is not a requirement"):
        floor_of(">=1.0")


def test_pins_cover_siblings_and_extras_take_highest_floor_skip_test_extra(repo):
    repo.package("alf-math", ["torch>=2.1", "numpy>=1.22"], extras={"tb": ["tensorboard>=2.10"]})
    repo.package(
        "alf-losses",
        ["alf-math>=0.1,<0.2", "numpy>=1.23.2", "scipy>=1.9.2"],
        extras={"test": ["pytest>=7", "hypothesis>=6"]},
    )
    packages = discover_packages(repo.root)
    pins = floor_pins(packages, "alf-losses", exclude=("Torch",))
    assert pins == {
        "numpy": Version("1.23.2"),  # the higher of 1.22 (alf-math) and 1.23.2
        "scipy": Version("1.9.2"),
        "tensorboard": Version("2.10"),  # a non-test extra of a sibling
    }
    assert floor_pins(packages, "alf-math") == {
        "numpy": Version("1.22"),
        "tensorboard": Version("2.10"),
        "torch": Version("2.1"),
    }


def test_marker_that_does_not_apply_is_skipped(repo):
    repo.package("alf-plot", ["numpy>=1.23.2", "tomli>=1; python_version < '3.0'"])
    assert floor_pins(discover_packages(repo.root), "alf-plot") == {"numpy": Version("1.23.2")}


def test_missing_floor_names_the_package(repo):
    repo.package("alf-plot", ["numpy>=1.23.2", "matplotlib"])
    with pytest.raises(FloorError, match=r"alf-plot: 'matplotlib' declares no lower bound"):
        floor_pins(discover_packages(repo.root), "alf-plot")


def test_unknown_package_is_an_error(repo):
    repo.package("alf-plot", ["numpy>=1.23.2"])
    with pytest.raises(WorkspaceError, match="unknown package 'alf-nope'"):
        floor_pins(discover_packages(repo.root), "alf-nope")


def test_command_prints_pins_of_this_repository(capsys):
    assert main(["alf-losses", "--exclude", "torch"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = [line.split("==")[0] for line in lines]
    assert "numpy" in names and "scipy" in names and "torch" not in names
    assert all(Version(line.split("==")[1]) for line in lines)
    assert main(["alf-nope"]) == 2
    assert "unknown package" in capsys.readouterr().err
