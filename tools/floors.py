"""The declared lower bounds of a package's dependencies, as pins for a lower-bound run.

``nox -s lowest`` installs a package with every third-party dependency at the
lowest version its metadata admits, so that a floor such as ``numpy>=1.23.2`` is
a tested claim rather than a guess. The floors are read from the required
dependencies and the optional (non-``test``) extras of the package and of every
sibling it requires; a dependency named by several of them is pinned to the
highest of its floors, the lowest version all of them accept.

Usage::

    python tools/floors.py PACKAGE [--exclude NAME ...]     print the pins, one per line

Test extras (pytest, hypothesis, ...) are not pinned: their floors bound the
test tools, not the library.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version
from workspace import Package, WorkspaceError, discover_packages, normalize, sibling_closure

__all__ = ["FloorError", "floor_of", "floor_pins"]

#: Operators whose version is the lowest one a specifier set admits.
_LOWER_BOUND_OPERATORS = (">=", "==", "~=")


class FloorError(Exception):
    """A requirement has no usable lower bound."""


def floor_of(requirement: str) -> Version:
    """Return the lowest version ``requirement`` admits, from its ``>=``/``==``/``~=`` clauses.

    Args:
        requirement: a PEP 508 requirement string such as ``"numpy>=1.23.2,<3"``.

    Raises:
        FloorError: if the string is not a requirement, or none of its clauses
            states a lower bound (``"numpy"``, ``"numpy<3"``, ``"numpy>1.2"``) or
            the bound is a wildcard (``"numpy==1.*"``).
    """
    try:
        req = Requirement(requirement)
    except InvalidRequirement as exc:
        raise FloorError(f"{requirement!r} is not a requirement: {exc}") from exc
    bounds = []
    for spec in req.specifier:
        if spec.operator in _LOWER_BOUND_OPERATORS:
            try:
                bounds.append(Version(spec.version))
            except InvalidVersion as exc:
                raise FloorError(f"{requirement!r}: {spec} has no exact version") from exc
    if not bounds:
        raise FloorError(
            f"{requirement!r} declares no lower bound (>=, == or ~=); "
            "every dependency needs a floor that the lowest run can test"
        )
    return max(bounds)


def floor_pins(
    packages: dict[str, Package], name: str, exclude: tuple[str, ...] = ()
) -> dict[str, Version]:
    """Return ``{distribution: floor}`` for the third-party dependencies of ``name``.

    Args:
        packages: the package table (``workspace.discover_packages``).
        name: the package whose lower-bound environment is wanted.
        exclude: distribution names left unpinned (normalized or not).

    Returns:
        Normalized distribution names, sorted, mapped to the highest floor any of
        ``name`` and its required siblings declares. Siblings themselves are not
        pinned (they are installed from their folders), nor are requirements whose
        environment marker does not hold on this interpreter.

    Raises:
        WorkspaceError: if ``name`` is not a package of the table.
        FloorError: naming the package and requirement that declare no floor.
    """
    excluded = {normalize(e) for e in exclude}
    pins: dict[str, Version] = {}
    for pkg_name in [*sibling_closure(packages, name), name]:
        pkg = packages[pkg_name]
        groups = [pkg.dependencies] + [
            reqs for extra, reqs in pkg.extras.items() if extra != "test"
        ]
        for requirement in (r for group in groups for r in group):
            req = Requirement(requirement)
            dist = normalize(req.name)
            if dist in packages or dist in excluded:
                continue
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            try:
                floor = floor_of(requirement)
            except FloorError as exc:
                raise FloorError(f"{pkg.name}: {exc}") from exc
            pins[dist] = max(floor, pins.get(dist, floor))
    return dict(sorted(pins.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("package", help="the package whose floors are printed")
    parser.add_argument("--exclude", action="append", default=[], help="leave NAME unpinned")
    args = parser.parse_args(argv)
    root = Path(__file__).resolve().parent.parent
    try:
        pins = floor_pins(discover_packages(root), normalize(args.package), tuple(args.exclude))
    except (WorkspaceError, FloorError) as exc:
        print(f"floors: {exc}", file=sys.stderr)
        return 2
    for dist, version in pins.items():
        print(f"{dist}=={version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
