"""Check built wheels and sdists against the packaging rules of the monorepo.

Usage::

    python tools/check_wheels.py dist/*.whl [dist/*.tar.gz]

Each wheel must

* not contain ``alf/__init__.py`` or ``alf/utils/__init__.py`` (PEP 420 namespaces),
* hold nothing outside ``alf/`` and its ``.dist-info`` folder, and some Python module,
* carry the license file (``.dist-info/licenses/LICENSE``),
* have every module typed: a ``py.typed`` marker in a folder on the module's path
  (``alf/``, ``alf/utils/``, ...), shipped by the wheel itself or by a wheel given
  together that it requires (``Requires-Dist``, transitively); a requirement whose
  wheel is not given cannot vouch for anything.

Across the wheels given together, no file path is shipped by two distributions
(installing both would let uninstalling one remove the other's file), and no
wheel may ship a file inside a regular subpackage of the namespace (a folder
such as ``alf/nest/`` whose ``__init__.py`` another wheel ships): Python would
never find it there, unless that ``__init__.py`` extends its ``__path__`` with
``pkgutil.extend_path`` (as ``alf/summary/__init__.py`` does). Each sdist
(``.tar.gz``) must carry ``LICENSE`` and ``PKG-INFO`` at its top level.

Exit status 0 when every archive passes, 1 otherwise, with one line per problem.
"""

from __future__ import annotations

import argparse
import email.parser
import re
import sys
import tarfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workspace import NAMESPACE_INIT_FILES, normalize, regular_package_problems  # noqa: E402

__all__ = [
    "check_sdist",
    "check_wheels",
    "main",
    "regular_packages",
    "shipped_modules",
    "wheel_files",
    "wheel_metadata",
    "wheel_problems",
]

_REQ_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


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


def wheel_metadata(wheel: Path) -> tuple[str, list[str]]:
    """Return ``(normalized name, normalized names of the unconditional requirements)``
    read from the wheel's ``.dist-info/METADATA`` (requirements with a marker, such as
    extras, are left out)."""
    with zipfile.ZipFile(wheel) as zf:
        meta = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        text = zf.read(meta[0]).decode("utf-8") if meta else ""
    msg = email.parser.Parser().parsestr(text, headersonly=True)
    name = normalize(msg.get("Name") or wheel.name.split("-")[0])
    requires = []
    for req in msg.get_all("Requires-Dist") or []:
        match = _REQ_NAME.match(req)
        if match and ";" not in req:
            requires.append(normalize(match.group(1)))
    return name, requires


def _dist_info_files(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as zf:
        return [n for n in zf.namelist() if n.split("/", 1)[0].endswith(".dist-info")]


def wheel_problems(wheel: Path) -> list[str]:
    """Return the rule violations of one wheel taken alone (empty if none).

    The typing markers are checked by :func:`check_wheels`, which sees the wheels
    a wheel requires.
    """
    files = wheel_files(wheel)
    problems = [
        f"{wheel.name}: ships {init}, which turns the shared namespace into a regular package"
        for init in NAMESPACE_INIT_FILES
        if init in files
    ]
    if not any(n.endswith(".dist-info/licenses/LICENSE") for n in _dist_info_files(wheel)):
        problems.append(f"{wheel.name}: does not carry its LICENSE (.dist-info/licenses/LICENSE)")
    stray = [f for f in files if not f.startswith("alf/")]
    if stray:
        problems.append(f"{wheel.name}: ships files outside alf/: {', '.join(stray[:10])}")
    if not any(f.endswith(".py") for f in files):
        problems.append(f"{wheel.name}: ships no Python module")
    return problems


def _marker_folders(files: list[str]) -> set[str]:
    return {f.rpartition("/")[0] for f in files if f == "py.typed" or f.endswith("/py.typed")}


def _untyped_modules(files: list[str], markers: set[str]) -> list[str]:
    untyped = []
    for name in files:
        if name.endswith(".py"):
            parts = name.split("/")[:-1]
            if not {"/".join(parts[: i + 1]) for i in range(len(parts))} & markers:
                untyped.append(name)
    return untyped


def check_wheels(wheels: list[Path]) -> list[str]:
    """Check each wheel, its typing markers and the overlap between them; return the problems."""
    problems: list[str] = []
    owners: dict[str, str] = {}
    regular: dict[str, tuple[str, bool]] = {}
    info: dict[str, tuple[Path, list[str], list[str]]] = {}
    for wheel in wheels:
        problems.extend(wheel_problems(wheel))
        files = wheel_files(wheel)
        name, requires = wheel_metadata(wheel)
        info[name] = (wheel, files, requires)
        for file in files:
            if file.endswith("/"):
                continue
            if file in owners:
                problems.append(f"{wheel.name}: {file} is also shipped by {owners[file]}")
            else:
                owners[file] = wheel.name
        for folder, extends in regular_packages(wheel).items():
            regular.setdefault(folder, (wheel.name, extends))
    for name, (wheel, files, _) in info.items():
        markers = _marker_folders(files)
        todo, seen = list(info[name][2]), set()
        while todo:
            dep = todo.pop()
            if dep in seen or dep not in info:
                continue
            seen.add(dep)
            markers |= _marker_folders(info[dep][1])
            todo.extend(info[dep][2])
        untyped = _untyped_modules(files, markers)
        if untyped:
            problems.append(
                f"{wheel.name}: no py.typed marker (its own or a required wheel's given "
                f"together) on the path of {', '.join(untyped[:5])}"
            )
    return problems + regular_package_problems(owners, regular)


def check_sdist(sdist: Path) -> list[str]:
    """Return the problems of one sdist: it must carry LICENSE and PKG-INFO at its top."""
    try:
        with tarfile.open(sdist) as tf:
            names = tf.getnames()
    except (OSError, tarfile.TarError) as exc:
        return [f"{sdist.name}: cannot be read as a tar archive ({exc})"]
    tops = {n.split("/", 1)[1] for n in names if "/" in n}
    return [f"{sdist.name}: does not carry {f}" for f in ("LICENSE", "PKG-INFO") if f not in tops]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("archives", nargs="+", type=Path, help="wheels and sdists to check")
    args = parser.parse_args(argv)
    missing = [str(w) for w in args.archives if not w.is_file()]
    if missing:
        print(f"check_wheels: no such file: {', '.join(missing)}", file=sys.stderr)
        return 1
    wheels = [a for a in args.archives if a.suffix == ".whl"]
    problems = check_wheels(wheels)
    for sdist in args.archives:
        if sdist.suffix != ".whl":
            problems += check_sdist(sdist)
    for line in problems:
        print(f"check_wheels: {line}", file=sys.stderr)
    if problems:
        return 1
    print(f"check_wheels: {len(args.archives)} archive(s) follow the packaging rules")
    return 0


if __name__ == "__main__":
    sys.exit(main())
