"""Check built wheels against the namespace rules of the monorepo.

Usage::

    python tools/check_wheels.py dist/*.whl

Each wheel must

* not contain ``alf/__init__.py`` or ``alf/utils/__init__.py`` (PEP 420 namespaces),
* ship the PEP 561 marker ``alf/py.typed``,
* hold nothing outside ``alf/`` and its ``.dist-info`` folder.

Across the wheels given together, no file path other than ``alf/py.typed`` may be
shipped by two distributions (installing both would overwrite one with the other),
and no wheel may ship a file inside a regular subpackage of the namespace (a
folder such as ``alf/nest/`` whose ``__init__.py`` another wheel ships): Python
would never find it there, unless that ``__init__.py`` extends its ``__path__``
with ``pkgutil.extend_path`` (as ``alf/summary/__init__.py`` does).

Exit status 0 when every wheel passes, 1 otherwise, with one line per problem.
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workspace import NAMESPACE_INIT_FILES, regular_package_problems  # noqa: E402

__all__ = [
    "check_wheels",
    "main",
    "regular_packages",
    "shipped_modules",
    "wheel_files",
    "wheel_problems",
]

SHARED_FILES = frozenset({"alf/py.typed"})


def wheel_files(wheel: Path) -> list[str]:
    """Return the archive paths of ``wheel`` that are not in its ``.dist-info`` folder."""
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    return sorted(n for n in names if not n.split("/", 1)[0].endswith(".dist-info"))


def shipped_modules(wheel: Path) -> list[str]:
    """Return the dotted names of the Python modules ``wheel`` ships (``alf.utils.math_ops``)."""
    modules = []
    for name in wheel_files(wheel):
        if name.endswith(".py"):
            parts = name[: -len(".py")].split("/")
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules.append(".".join(parts))
    return sorted(modules)


def regular_packages(wheel: Path) -> dict[str, bool]:
    """Return the folders of ``wheel`` that hold an ``__init__.py`` (regular
    packages such as ``alf/nest``; the shared namespaces left out), each mapped to
    whether that ``__init__.py`` extends its ``__path__`` (``pkgutil.extend_path``)."""
    namespaces = {init.rsplit("/", 1)[0] for init in NAMESPACE_INIT_FILES}
    found = {}
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            if name.endswith("/__init__.py") and not name.split("/", 1)[0].endswith(".dist-info"):
                folder = name.rsplit("/", 1)[0]
                if folder not in namespaces:
                    code = zf.read(name).decode("utf-8", errors="replace")
                    found[folder] = "extend_path" in code
    return found


def wheel_problems(wheel: Path) -> list[str]:
    """Return the rule violations of one wheel as human-readable lines (empty if none)."""
    files = wheel_files(wheel)
    problems = [
        f"{wheel.name}: ships {init}, which turns the shared namespace into a regular package"
        for init in NAMESPACE_INIT_FILES
        if init in files
    ]
    if "alf/py.typed" not in files:
        problems.append(f"{wheel.name}: does not ship the PEP 561 marker alf/py.typed")
    stray = [f for f in files if not f.startswith("alf/")]
    if stray:
        problems.append(f"{wheel.name}: ships files outside alf/: {', '.join(stray[:10])}")
    if not any(f.endswith(".py") for f in files):
        problems.append(f"{wheel.name}: ships no Python module")
    return problems


def check_wheels(wheels: list[Path]) -> list[str]:
    """Check each wheel and the overlap between them; return the problems found."""
    problems: list[str] = []
    owners: dict[str, str] = {}
    regular: dict[str, tuple[str, bool]] = {}
    for wheel in wheels:
        problems.extend(wheel_problems(wheel))
        for name in wheel_files(wheel):
            if name in SHARED_FILES or name.endswith("/"):
                continue
            if name in owners:
                problems.append(f"{wheel.name}: {name} is also shipped by {owners[name]}")
            else:
                owners[name] = wheel.name
        for folder, extends in regular_packages(wheel).items():
            regular.setdefault(folder, (wheel.name, extends))
    return problems + regular_package_problems(owners, regular)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wheels", nargs="+", type=Path, help="wheel files to check")
    args = parser.parse_args(argv)
    missing = [str(w) for w in args.wheels if not w.is_file()]
    if missing:
        print(f"check_wheels: no such wheel: {', '.join(missing)}", file=sys.stderr)
        return 1
    problems = check_wheels(args.wheels)
    for line in problems:
        print(f"check_wheels: {line}", file=sys.stderr)
    if problems:
        return 1
    print(f"check_wheels: {len(args.wheels)} wheel(s) follow the namespace rules")
    return 0


if __name__ == "__main__":
    sys.exit(main())
