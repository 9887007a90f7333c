"""Check that every package declares exactly what it imports, and that the graph is acyclic.

Usage::

    python tools/check_deps.py [--root ROOT] [PACKAGE ...]

For each package under ``packages/`` (or only the ones named) this reads every
``.py`` file under ``src/`` and ``tests/`` with :mod:`ast` and checks that

* every module-level import of ``src/`` maps to a distribution in
  ``[project].dependencies`` (``alf.*`` modules map to the sibling package whose
  ``src/`` ships them; third-party import names map through :data:`IMPORT_TO_DIST`);
* imports that run only on demand (inside a function, under ``try: ... except
  ImportError``, or under ``if TYPE_CHECKING:``) are declared as a dependency or in
  an optional-dependency group other than ``test``;
* every import of ``tests/`` is covered by the dependencies, the ``test`` extra (or
  pytest and hypothesis where there is none) and the package itself;
* every required dependency is imported somewhere in ``src/`` (list exceptions in
  ``[tool.alf-check-deps] allow-unused = [...]`` of the package's pyproject);
* no dependency is an exact pin (``==``), none is named ``alf``, and each sibling
  requirement admits the sibling's current version;
* neither ``src/alf/__init__.py`` nor ``src/alf/utils/__init__.py`` exists and no
  two packages ship the same file (``py.typed`` markers included);
* every module is typed: a PEP 561 ``py.typed`` marker lies in one of the folders
  on its path (``alf/``, ``alf/utils/``, ...), shipped by the package itself or by
  a sibling it requires (mypy accepts a marker in any folder on a module's path;
  so uninstalling one package never untypes another);
* the release metadata is complete and truthful: ``LICENSE`` in the repository
  root and the same file in the package folder (listed in ``license-files``, so
  the wheel and sdist carry it), an SPDX ``license`` expression and no
  ``License ::`` classifier (PEP 639 replaced them by the expression; setuptools
  refuses the two together and indexes may), ``authors``, ``[project.urls]``, one ``Development Status ::``
  classifier, ``Typing :: Typed``, and ``requires-python`` plus the
  ``Programming Language :: Python :: 3.X`` classifiers naming exactly the
  CPython versions the test matrix runs the package on
  (``workspace.Package.test_pythons``); ``torch`` requirements start at
  :data:`TORCH_FLOOR` or later (the first torch built against NumPy 2);
* a regular subpackage of the namespace (a folder with an ``__init__.py``, such
  as ``alf/nest/``) belongs to the package shipping its ``__init__.py``: no
  other package ships a file inside it (Python would never find that file),
  unless the ``__init__.py`` extends its ``__path__`` with
  ``pkgutil.extend_path`` (as ``alf/summary/__init__.py`` does);
* neither the declared sibling graph nor the graph of actual imports has a cycle.

Exit status 0 when everything holds, 1 otherwise (one line per problem).
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workspace import (  # noqa: E402
    DEFAULT_TEST_REQUIREMENTS,
    NAMESPACE_INIT_FILES,
    Package,
    WorkspaceError,
    discover_packages,
    find_cycle,
    normalize,
    package_checker_parser,
    regular_package_problems,
    requirement_name,
    sibling_closure,
)

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

__all__ = [
    "IMPORT_TO_DIST",
    "LICENSES",
    "TORCH_FLOOR",
    "ImportRef",
    "check",
    "collect_imports",
    "distributions_for",
    "main",
    "module_owners",
]

#: Import names whose distribution has another name. Values are the accepted
#: distributions (any one of them satisfies the import). A dotted key wins over
#: its first component. Names not listed map to themselves (normalized).
IMPORT_TO_DIST: dict[str, tuple[str, ...]] = {
    "PIL": ("pillow",),
    "_pytest": ("pytest",),
    "absl": ("absl-py",),
    "attr": ("attrs",),
    "cv2": ("opencv-python", "opencv-python-headless", "opencv-contrib-python"),
    "dateutil": ("python-dateutil",),
    "functorch": ("torch",),
    "gin": ("gin-config",),
    "google.protobuf": ("protobuf",),
    "mpl_toolkits": ("matplotlib",),
    "pkg_resources": ("setuptools",),
    "skimage": ("scikit-image",),
    "sklearn": ("scikit-learn",),
    "stable_baselines3": ("stable-baselines3",),
    "tensorboardX": ("tensorboardx",),
    "typing_extensions": ("typing-extensions",),
    "yaml": ("pyyaml",),
}

#: The SPDX ``license`` expressions a package may declare (the LICENSE file's).
LICENSES = ("Apache-2.0",)

#: The lowest torch a package may admit: torch 2.3 is the first release built
#: against NumPy 2, and every package admits NumPy 2.
TORCH_FLOOR = "2.3"

#: The namespaces shared by all distributions: they belong to nobody.
NAMESPACES = frozenset({"alf", "alf.utils"})

REQUIRED, ON_DEMAND, GUARDED = "module level", "on demand", "guarded"

_STDLIB = frozenset(getattr(sys, "stdlib_module_names", ())) | {"__future__"}
_IMPORT_ERRORS = frozenset({"ImportError", "ModuleNotFoundError", "Exception", "BaseException"})


@dataclass(frozen=True)
class ImportRef:
    """One imported module: where it is imported and how."""

    module: str
    names: tuple[str, ...]
    file: Path
    line: int
    kind: str  # REQUIRED, ON_DEMAND or GUARDED


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    if handler.type is None:
        return True
    types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(
        (isinstance(t, ast.Name) and t.id in _IMPORT_ERRORS)
        or (isinstance(t, ast.Attribute) and t.attr in _IMPORT_ERRORS)
        for t in types
    )


def _module_name(file: Path, src: Path) -> str:
    parts = list(file.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def collect_imports(file: Path, module: str | None = None) -> list[ImportRef]:
    """Return the absolute imports of one source file.

    Args:
        file: a Python source file.
        module: its dotted module name, needed to resolve relative imports (those
            are skipped when it is None).

    Raises:
        SyntaxError: if the file does not parse.
    """
    tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
    is_package = file.name == "__init__.py"
    refs: list[ImportRef] = []

    def resolve(node: ast.ImportFrom) -> str | None:
        if node.level == 0:
            return node.module
        if module is None:
            return None
        base = module.split(".")
        drop = node.level - 1 if is_package else node.level
        if drop > len(base):
            return None
        base = base[: len(base) - drop]
        return ".".join(base + ([node.module] if node.module else []))

    def visit(node: ast.AST, kind: str) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                refs.append(ImportRef(alias.name, (), file, node.lineno, kind))
            return
        if isinstance(node, ast.ImportFrom):
            target = resolve(node)
            if target:
                names = tuple(a.name for a in node.names if a.name != "*")
                refs.append(ImportRef(target, names, file, node.lineno, kind))
            return
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            inner = kind if kind == GUARDED else ON_DEMAND
            for child in ast.iter_child_nodes(node):
                visit(child, inner)
            return
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, GUARDED)
            for child in node.orelse:
                visit(child, kind)
            return
        if isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
            guarded = any(_catches_import_error(h) for h in node.handlers)  # type: ignore[attr-defined]
            for child in node.body:  # type: ignore[attr-defined]
                visit(child, GUARDED if guarded else kind)
            for part in ("handlers", "orelse", "finalbody"):
                for child in getattr(node, part):
                    visit(child, kind)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, kind)

    visit(tree, REQUIRED)
    return refs


def module_owners(packages: dict[str, Package]) -> tuple[dict[str, str], list[str]]:
    """Map every module shipped under ``packages/*/src`` to the package shipping it.

    Returns:
        ``(owners, problems)``: dotted module name -> package name, and one line for
        each file path that two packages ship.
    """
    owners: dict[str, str] = {}
    files: dict[str, str] = {}
    problems: list[str] = []
    # folder of a regular package -> (package shipping its __init__.py, whether
    # that __init__.py extends __path__ so other distributions may add to it)
    regular: dict[str, tuple[str, bool]] = {}
    for pkg in packages.values():
        if not pkg.src.is_dir():
            continue
        for path in sorted(pkg.src.rglob("*")):
            if not path.is_file() or "__pycache__" in path.parts:
                continue
            rel = path.relative_to(pkg.src).as_posix()
            if rel in files:
                problems.append(f"{pkg.name}: src/{rel} is also shipped by {files[rel]}")
            else:
                files[rel] = pkg.name
            if path.name == "__init__.py":
                folder = rel.rsplit("/", 1)[0]
                if folder.replace("/", ".") not in NAMESPACES:
                    extends = "extend_path" in path.read_text(encoding="utf-8", errors="replace")
                    regular.setdefault(folder, (pkg.name, extends))
            if path.suffix == ".py":
                name = _module_name(path, pkg.src)
                if name not in NAMESPACES:
                    owners.setdefault(name, pkg.name)
    problems += regular_package_problems(files, regular, prefix="src/")
    return owners, problems


def _owner(module: str, owners: dict[str, str]) -> str | None:
    parts = module.split(".")
    for i in range(len(parts), 0, -1):
        owner = owners.get(".".join(parts[:i]))
        if owner:
            return owner
    return None


def distributions_for(ref: ImportRef, owners: dict[str, str]) -> list[tuple[str, tuple[str, ...]]]:
    """Return ``(what, accepted distributions)`` for each thing one import needs.

    ``what`` names the module in messages. Standard-library imports need nothing;
    an ``alf.*`` module nobody ships needs the impossible distribution ``""``.
    """
    modules = [ref.module]
    if ref.module in NAMESPACES or ref.module.split(".")[0] == "alf":
        # ``from alf.utils import math_ops`` imports the submodule alf.utils.math_ops.
        subs = [f"{ref.module}.{n}" for n in ref.names]
        known = [m for m in subs if _owner(m, owners)]
        if ref.module in NAMESPACES:
            modules = subs
        elif known:
            modules = known
    needs = []
    for module in modules:
        top = module.split(".")[0]
        if top in _STDLIB:
            continue
        if top == "alf":
            if module in NAMESPACES:
                continue
            owner = _owner(module, owners)
            needs.append((module, (owner,) if owner else ("",)))
            continue
        dotted = ".".join(module.split(".")[:2])
        dists = IMPORT_TO_DIST.get(dotted) or IMPORT_TO_DIST.get(top) or (normalize(top),)
        needs.append((module, tuple(normalize(d) for d in dists)))
    return needs


def _python_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def _pyproject(pkg: Package) -> dict:
    with (pkg.path / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)


def _spec_problems(pkg: Package, packages: dict[str, Package]) -> list[str]:
    problems = []
    for req in pkg.dependencies:
        name = requirement_name(req)
        if name == "alf":
            problems.append(f"{pkg.name}: depends on a distribution named 'alf' ({req!r})")
        if "==" in req:
            problems.append(
                f"{pkg.name}: dependency {req!r} is an exact pin; use a range (torch>=2.3)"
            )
        if name in packages:
            try:
                from packaging.requirements import Requirement
                from packaging.version import Version
            except ImportError:  # the lint session installs packaging
                continue
            spec = Requirement(req).specifier
            version = Version(packages[name].version)
            if not spec:
                problems.append(
                    f"{pkg.name}: sibling dependency {req!r} has no version range "
                    f"(write e.g. {name}>={version.major}.{version.minor},<{version.major}.{version.minor + 1})"
                )
            elif not spec.contains(version, prereleases=True):
                problems.append(
                    f"{pkg.name}: sibling dependency {req!r} excludes {name} {version}, "
                    "the version in this repository"
                )
    return problems


def _markers(pkg: Package) -> set[str]:
    """Folders (``alf``, ``alf/utils``) in which ``pkg`` ships a ``py.typed`` marker."""
    if not pkg.src.is_dir():
        return set()
    return {
        p.parent.relative_to(pkg.src).as_posix()
        for p in pkg.src.rglob("py.typed")
        if "__pycache__" not in p.parts
    }


def _layout_problems(pkg: Package, packages: dict[str, Package]) -> list[str]:
    problems = [
        f"{pkg.name}: src/{init} must not exist (PEP 420 namespace)"
        for init in NAMESPACE_INIT_FILES
        if (pkg.src / init).exists()
    ]
    markers = set(_markers(pkg))
    for sib in sibling_closure(packages, pkg.name):
        markers |= _markers(packages[sib])
    untyped = []
    for file in _python_files(pkg.src):
        folders = file.relative_to(pkg.src).parent.parts
        chain = {"/".join(folders[: i + 1]) for i in range(len(folders))}
        if not chain & markers:
            untyped.append(file.relative_to(pkg.path).as_posix())
    if untyped:
        problems.append(
            f"{pkg.name}: no py.typed marker on the path of {', '.join(untyped[:5])}"
            + (f" and {len(untyped) - 5} more" if len(untyped) > 5 else "")
            + " (ship one in a folder above them, or require a sibling that does)"
        )
    return problems


def _python_classifier_versions(classifiers: list[str]) -> set[str]:
    prefix = "Programming Language :: Python :: "
    out = set()
    for c in classifiers:
        if c.startswith(prefix):
            version = c[len(prefix) :]
            if version.count(".") == 1 and all(p.isdigit() for p in version.split(".")):
                out.add(version)
    return out


def _metadata_problems(pkg: Package, root: Path) -> list[str]:
    """License, authors, URLs, classifiers and Python versions of one package."""
    project = _pyproject(pkg).get("project", {})
    name = pkg.name
    problems = []
    root_license = root / "LICENSE"
    if not root_license.is_file():
        problems.append("the repository has no LICENSE file at its root")
    own = pkg.path / "LICENSE"
    if not own.is_file():
        problems.append(
            f"{name}: no LICENSE in the package folder (poetry-core ships only files "
            "inside it; copy the repository's LICENSE)"
        )
    elif root_license.is_file() and own.read_bytes() != root_license.read_bytes():
        problems.append(f"{name}: LICENSE differs from the repository's LICENSE")
    if "LICENSE" not in project.get("license-files", []):
        problems.append(f'{name}: [project] license-files must list "LICENSE"')
    spdx = project.get("license")
    classifiers = list(project.get("classifiers", []))
    if not isinstance(spdx, str) or spdx not in LICENSES:
        problems.append(
            f"{name}: [project] license must be an SPDX expression of {list(LICENSES)}; got {spdx!r}"
        )
    license_classifiers = [c for c in classifiers if c.startswith("License ::")]
    if license_classifiers:
        problems.append(
            f"{name}: License classifiers {license_classifiers} beside the SPDX license: "
            "PEP 639 superseded them (the License-Expression field says it)"
        )
    authors = project.get("authors")
    if not authors or not all(isinstance(a, dict) and a.get("name") for a in authors):
        problems.append(f"{name}: [project] authors must list at least one author with a name")
    urls = project.get("urls")
    if not isinstance(urls, dict) or not urls:
        problems.append(f"{name}: [project.urls] is missing or empty")
    if len([c for c in classifiers if c.startswith("Development Status ::")]) != 1:
        problems.append(f"{name}: classifiers need exactly one 'Development Status :: ...'")
    if "Typing :: Typed" not in classifiers:
        problems.append(f"{name}: classifiers lack 'Typing :: Typed'")
    tested = set(pkg.test_pythons)
    claimed = _python_classifier_versions(classifiers)
    if claimed != tested:
        problems.append(
            f"{name}: Python classifiers {sorted(claimed, key=_version_key)} differ from the "
            f"versions its tests run on {sorted(tested, key=_version_key)}"
        )
    requires = project.get("requires-python")
    try:
        from packaging.specifiers import InvalidSpecifier, SpecifierSet
    except ImportError:  # the lint session installs packaging
        return problems
    try:
        spec = SpecifierSet(requires or "")
    except InvalidSpecifier:
        spec = None
    lowest = min(tested, key=_version_key)
    major, minor = _version_key(lowest)
    below = f"{major}.{minor - 1}"
    if (
        not requires
        or spec is None
        or not all(spec.contains(v) for v in tested)
        or spec.contains(below)
    ):
        problems.append(
            f"{name}: requires-python {requires!r} must admit the tested versions "
            f"{sorted(tested, key=_version_key)} and nothing older (write '>={lowest}')"
        )
    for req in pkg.dependencies:
        if requirement_name(req) == "torch":
            problems += _torch_floor_problems(name, req)
    return problems


def _version_key(version: str) -> tuple[int, int]:
    major, minor = version.split(".")
    return int(major), int(minor)


def _torch_floor_problems(name: str, requirement: str) -> list[str]:
    try:
        from packaging.requirements import Requirement
        from packaging.version import Version
    except ImportError:  # the lint session installs packaging
        return []
    floors = [
        Version(s.version)
        for s in Requirement(requirement).specifier
        if s.operator in (">=", "~=", "==") and "*" not in s.version
    ]
    if not floors or max(floors) < Version(TORCH_FLOOR):
        return [
            f"{name}: {requirement!r} admits torch older than {TORCH_FLOOR}, built without "
            f"NumPy 2 support; write torch>={TORCH_FLOOR}"
        ]
    return []


def check(root: Path, selected: list[str] | None = None) -> tuple[list[str], int]:
    """Run every check; return ``(problems, number of packages checked)``."""
    try:
        packages = discover_packages(root)
    except WorkspaceError as exc:
        return [str(exc)], 0
    unknown = [n for n in selected or () if normalize(n) not in packages]
    if unknown:
        return [f"unknown package(s): {', '.join(unknown)}; known: {', '.join(packages)}"], 0
    chosen = [normalize(n) for n in selected] if selected else list(packages)
    owners, problems = module_owners(packages)
    if selected:
        problems = [p for p in problems if p.split(":", 1)[0] in chosen]
    import_graph: dict[str, list[str]] = {name: [] for name in packages}
    for name in packages:
        pkg = packages[name]
        extras_ok = {requirement_name(r) for k, v in pkg.extras.items() if k != "test" for r in v}
        test_reqs = pkg.extras.get("test", list(DEFAULT_TEST_REQUIREMENTS))
        test_ok = {requirement_name(r) for r in test_reqs} | {"pytest"}
        declared = pkg.dependency_names
        used: set[str] = set()
        mine: list[str] = []
        for folder, is_src in ((pkg.src, True), (pkg.tests, False)):
            local = {p.stem for p in _python_files(folder)} if not is_src else set()
            for file in _python_files(folder):
                rel = file.relative_to(pkg.path).as_posix()
                try:
                    refs = collect_imports(file, _module_name(file, pkg.src) if is_src else None)
                except SyntaxError as exc:
                    mine.append(f"{name}: {rel}:{exc.lineno}: does not parse: {exc.msg}")
                    continue
                for ref in refs:
                    if not is_src and ref.module.split(".")[0] in local:
                        continue
                    for what, dists in distributions_for(ref, owners):
                        where = f"{name}: {rel}:{ref.line}"
                        if dists == ("",):
                            mine.append(
                                f"{where}: imports {what}, which no package in packages/ ships"
                            )
                            continue
                        if name in dists:
                            continue
                        if is_src:
                            used.update(dists)
                            for d in dists:
                                if d in packages and d not in import_graph[name]:
                                    import_graph[name].append(d)
                            if declared & set(dists):
                                continue
                            if ref.kind != REQUIRED and extras_ok & set(dists):
                                continue
                            where_ok = "[project].dependencies"
                            if ref.kind != REQUIRED:
                                where_ok += " or a non-test optional-dependency group"
                            mine.append(
                                f"{where}: imports {what} ({ref.kind}); declare "
                                f"{' or '.join(dists)} in {where_ok}"
                            )
                        elif ref.kind != GUARDED and not (declared | test_ok) & set(dists):
                            extra = "the 'test' extra" if pkg.has_test_extra else "a 'test' extra"
                            mine.append(
                                f"{where}: test imports {what}; declare {' or '.join(dists)} "
                                f"in [project].dependencies or {extra}"
                            )
        allowed_unused = {
            normalize(n)
            for n in _pyproject(pkg)
            .get("tool", {})
            .get("alf-check-deps", {})
            .get("allow-unused", [])
        }
        for dep in sorted(declared - used - allowed_unused):
            mine.append(
                f"{name}: declares {dep} but src/ never imports it (remove it, or list it in "
                "[tool.alf-check-deps] allow-unused)"
            )
        mine += _spec_problems(pkg, packages) + _layout_problems(pkg, packages)
        mine += _metadata_problems(pkg, root)
        if name in chosen:
            problems += mine
    cycle = find_cycle(import_graph)
    if cycle:
        problems.append("the packages import each other in a cycle: " + " -> ".join(cycle))
    return problems, len(chosen)


def main(argv: list[str] | None = None) -> int:
    args = package_checker_parser(__doc__.split("\n\n")[0]).parse_args(argv)
    problems, count = check(args.root, args.packages)
    for line in problems:
        print(f"check_deps: {line}", file=sys.stderr)
    if problems:
        print(f"check_deps: {len(problems)} problem(s) found", file=sys.stderr)
        return 1
    print(f"check_deps: {count} package(s) declare what they import; the graph is acyclic")
    return 0


if __name__ == "__main__":
    sys.exit(main())
