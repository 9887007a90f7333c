"""The package table of the monorepo, read from ``packages/*/pyproject.toml``.

Shared by ``noxfile.py``, ``tools/check_deps.py``, ``tools/check_wheels.py`` and
``tools/release.py`` so that every tool sees the same packages, the same sibling
graph and the same test requirements. Standard library only (Python >= 3.9;
``tomli`` is used where ``tomllib`` is missing).
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

__all__ = [
    "DEFAULT_TEST_REQUIREMENTS",
    "NAMESPACE_INIT_FILES",
    "TORCH_FREE_PYTHONS",
    "TORCH_PYTHONS",
    "Package",
    "WorkspaceError",
    "discover_packages",
    "find_cycle",
    "normalize",
    "package_checker_parser",
    "regular_package_problems",
    "requirement_name",
    "sibling_closure",
    "topological_order",
]

#: What a package's test environment gets when it declares no ``test`` extra.
DEFAULT_TEST_REQUIREMENTS = ("pytest", "hypothesis")

#: Files that would turn the shared PEP 420 namespaces into regular packages.
NAMESPACE_INIT_FILES = ("alf/__init__.py", "alf/utils/__init__.py")

#: The CPython versions the ``tests`` sessions run a package on, and therefore the
#: versions its ``requires-python`` and classifiers may claim. torch packages: the
#: one CPython the local torch CPU wheel is built for (cp311). Torch-free packages:
#: every CPython from 3.9 to 3.13 (the CI machine has each as a pyenv interpreter).
TORCH_PYTHONS = ("3.11",)
TORCH_FREE_PYTHONS = ("3.9", "3.10", "3.11", "3.12", "3.13")

_NAME_RE = re.compile(r"^\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)")


class WorkspaceError(Exception):
    """A package's metadata cannot be read or is inconsistent with the table."""


def normalize(name: str) -> str:
    """Return the PEP 503 normalized form of a distribution name (``Alf_Math`` -> ``alf-math``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    """Return the normalized distribution name of a PEP 508 requirement string.

    Raises:
        WorkspaceError: if ``requirement`` does not start with a distribution name.
    """
    match = _NAME_RE.match(requirement)
    if match is None:
        raise WorkspaceError(f"cannot read a distribution name from requirement {requirement!r}")
    return normalize(match.group(1))


@dataclass
class Package:
    """One distribution under ``packages/<dir>/``.

    Attributes:
        name: normalized distribution name (``alf-math``).
        path: the package folder.
        version: ``[project].version``.
        dependencies: ``[project].dependencies`` as written.
        extras: ``[project.optional-dependencies]`` as written.
        siblings: normalized names of the required dependencies that are packages of
            this repository.
        uses_torch: whether torch is among the required dependencies of this package
            or of any sibling it requires, directly or transitively (filled in by
            :func:`discover_packages`).
    """

    name: str
    path: Path
    version: str
    dependencies: list[str]
    extras: dict[str, list[str]]
    siblings: list[str] = field(default_factory=list)
    uses_torch: bool = False

    @property
    def src(self) -> Path:
        """The ``src`` folder holding the ``alf`` namespace of this package."""
        return self.path / "src"

    @property
    def tests(self) -> Path:
        """The folder holding this package's tests."""
        return self.path / "tests"

    @property
    def dependency_names(self) -> set[str]:
        """Normalized names of the required dependencies."""
        return {requirement_name(r) for r in self.dependencies}

    @property
    def has_test_extra(self) -> bool:
        """Whether the package declares a ``test`` optional-dependency group."""
        return "test" in self.extras

    @property
    def test_pythons(self) -> tuple[str, ...]:
        """The CPython versions (``"3.11"``) the test matrix runs this package on."""
        return TORCH_PYTHONS if self.uses_torch else TORCH_FREE_PYTHONS

    @property
    def wheel_prefix(self) -> str:
        """The distribution name as it starts a wheel file name (``alf_math-``)."""
        return self.name.replace("-", "_") + "-"


def _read_package(pyproject: Path) -> Package:
    try:
        with pyproject.open("rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise WorkspaceError(f"{pyproject}: cannot be read: {exc}") from exc
    project = data.get("project")
    if not isinstance(project, dict) or "name" not in project:
        raise WorkspaceError(f"{pyproject}: has no [project] table with a name")
    if "version" not in project:
        raise WorkspaceError(f"{pyproject}: [project] has no version")
    extras = project.get("optional-dependencies", {})
    return Package(
        name=normalize(project["name"]),
        path=pyproject.parent,
        version=str(project["version"]),
        dependencies=list(project.get("dependencies", [])),
        extras={normalize(k): list(v) for k, v in extras.items()},
    )


def discover_packages(root: Path) -> dict[str, Package]:
    """Read every ``packages/*/pyproject.toml`` under ``root``.

    Args:
        root: the repository root.

    Returns:
        The packages keyed by normalized name, in dependency order (a package
        after the siblings it requires; ties broken by name).

    Raises:
        WorkspaceError: if a pyproject cannot be read, two folders declare the same
            name, or the sibling graph has a cycle.
    """
    packages: dict[str, Package] = {}
    for pyproject in sorted(Path(root, "packages").glob("*/pyproject.toml")):
        pkg = _read_package(pyproject)
        if pkg.name in packages:
            raise WorkspaceError(
                f"{pyproject}: name {pkg.name!r} is already used by {packages[pkg.name].path}"
            )
        packages[pkg.name] = pkg
    for pkg in packages.values():
        pkg.siblings = sorted(n for n in pkg.dependency_names if n in packages)
    graph = {name: pkg.siblings for name, pkg in packages.items()}
    cycle = find_cycle(graph)
    if cycle:
        raise WorkspaceError("the package dependency graph has a cycle: " + " -> ".join(cycle))
    order = topological_order(graph)
    ordered = {name: packages[name] for name in order}
    for pkg in ordered.values():
        pkg.uses_torch = "torch" in pkg.dependency_names or any(
            ordered[s].uses_torch for s in pkg.siblings
        )
    return ordered


def find_cycle(graph: dict[str, list[str]]) -> list[str]:
    """Return one cycle of ``graph`` as ``[a, b, ..., a]``, or ``[]`` if it is acyclic.

    Args:
        graph: node -> nodes it points to; targets missing from the keys are leaves.
    """
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(graph, white)
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        colour[node] = grey
        stack.append(node)
        for nxt in graph.get(node, ()):
            state = colour.get(nxt, black)
            if state == grey:
                return stack[stack.index(nxt) :] + [nxt]
            if state == white:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        colour[node] = black
        return []

    for node in sorted(graph):
        if colour[node] == white:
            found = visit(node)
            if found:
                return found
    return []


def topological_order(graph: dict[str, list[str]]) -> list[str]:
    """Order the nodes of an acyclic ``graph`` so that every node follows its targets.

    Ties are broken by name, so the order is deterministic.
    """
    done: list[str] = []
    seen: set[str] = set()

    def visit(node: str) -> None:
        if node in seen:
            return
        seen.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt in graph:
                visit(nxt)
        done.append(node)

    for node in sorted(graph):
        visit(node)
    return done


def sibling_closure(packages: dict[str, Package], name: str) -> list[str]:
    """Return the siblings ``name`` requires, directly or transitively, in dependency order.

    The package itself is not included.

    Raises:
        WorkspaceError: if ``name`` is not a package of the table.
    """
    if name not in packages:
        raise WorkspaceError(f"unknown package {name!r}; known: {', '.join(packages) or 'none'}")
    needed: set[str] = set()
    todo = list(packages[name].siblings)
    while todo:
        sib = todo.pop()
        if sib not in needed:
            needed.add(sib)
            todo.extend(packages[sib].siblings)
    return [n for n in packages if n in needed]


def package_checker_parser(description: str) -> argparse.ArgumentParser:
    """The command line of a checker that runs over some or all packages:
    positional package names (default: all) and ``--root`` (default: the
    checkout holding ``tools/``)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("packages", nargs="*", help="package names (default: all)")
    parser.add_argument(
        "--root",
        type=Path,
        default=Path(__file__).resolve().parent.parent,
        help="repository root (default: the checkout holding this script)",
    )
    return parser


def regular_package_problems(
    files: dict[str, str], regular: dict[str, tuple[str, bool]], prefix: str = ""
) -> list[str]:
    """One line for each file shipped inside another distribution's regular package.

    A folder of the namespace with an ``__init__.py`` (``alf/nest``) is a regular
    package: Python looks for its modules only in the folder of the distribution
    shipping that ``__init__.py``, unless it extends its ``__path__`` with
    ``pkgutil.extend_path``.

    Args:
        files: shipped path (``alf/nest/x.py``) -> the distribution shipping it.
        regular: folder with an ``__init__.py`` (``alf/nest``) -> ``(distribution
            shipping it, whether that __init__.py calls pkgutil.extend_path)``.
        prefix: written before each path in the messages (``src/``).
    """
    problems = []
    for rel, pkg in sorted(files.items()):
        parts = rel.split("/")
        # the outermost regular package around the file that is not its own
        for i in range(1, len(parts)):
            folder = "/".join(parts[:i])
            owner, extends = regular.get(folder, (pkg, True))
            if owner != pkg and not extends:
                problems.append(
                    f"{pkg}: {prefix}{rel} lies inside {folder.replace('/', '.')}, a regular "
                    f"package of {owner} (its __init__.py): Python never looks for it there; "
                    f"move it, or have {owner} extend the package's __path__ "
                    "(pkgutil.extend_path)"
                )
                break
    return problems
