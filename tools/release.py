"""Bump one package's version and date its CHANGELOG.

Usage::

    python tools/release.py PACKAGE {major,minor,patch} [--date YYYY-MM-DD] [--dry-run]

* ``packages/<PACKAGE>/pyproject.toml``: ``[project].version`` becomes the bumped
  version (the rest of the file is left byte for byte as it was).
* ``packages/<PACKAGE>/CHANGELOG.md``: the ``## Unreleased`` section becomes
  ``## X.Y.Z - DATE``; where there is no such section a new ``## X.Y.Z - DATE``
  section is added above the newest release, saying that it only bumps the version.
* Siblings whose requirement on PACKAGE would exclude the new version are listed,
  so that their ranges can be widened in the same change.
* The artifacts to publish are then built by ``nox -s build -- PACKAGE``: the sdist and
  the wheel in ``dist/``, checked by ``tools/check_wheels.py`` and ``twine check``.

Versions are ``MAJOR.MINOR.PATCH``. ``major`` resets minor and patch, ``minor``
resets patch. The date defaults to today (local time).
"""

from __future__ import annotations

import argparse
import datetime
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workspace import WorkspaceError, discover_packages, normalize, requirement_name  # noqa: E402

__all__ = [
    "ReleaseError",
    "bump_version",
    "date_changelog",
    "main",
    "release",
    "set_project_version",
]

_VERSION_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
_UNRELEASED_RE = re.compile(r"^##[ \t]+\[?Unreleased\]?[ \t]*$", re.MULTILINE | re.IGNORECASE)
_SECTION_RE = re.compile(r"^##[ \t]+", re.MULTILINE)


class ReleaseError(Exception):
    """The release cannot be made as asked (bad part, version or file layout)."""


def bump_version(version: str, part: str) -> str:
    """Return ``version`` with ``part`` ("major", "minor" or "patch") bumped.

    Raises:
        ReleaseError: if ``version`` is not ``MAJOR.MINOR.PATCH`` or ``part`` is unknown.
    """
    match = _VERSION_RE.match(version)
    if match is None:
        raise ReleaseError(f"version must be MAJOR.MINOR.PATCH; got {version!r}")
    major, minor, patch = (int(g) for g in match.groups())
    if part == "major":
        return f"{major + 1}.0.0"
    if part == "minor":
        return f"{major}.{minor + 1}.0"
    if part == "patch":
        return f"{major}.{minor}.{patch + 1}"
    raise ReleaseError(f"part must be one of major, minor, patch; got {part!r}")


def set_project_version(text: str, version: str) -> tuple[str, str]:
    """Replace ``version = "..."`` in the ``[project]`` table of a pyproject text.

    Returns:
        ``(new text, old version)``.

    Raises:
        ReleaseError: if the ``[project]`` table has no literal version line.
    """
    table = re.search(r"^\[project\][ \t]*$", text, re.MULTILINE)
    if table is None:
        raise ReleaseError("pyproject.toml has no [project] table")
    end = re.search(r"^\[", text[table.end() :], re.MULTILINE)
    stop = table.end() + end.start() if end else len(text)
    body = text[table.end() : stop]
    line = re.search(r"^(version[ \t]*=[ \t]*)([\"'])([^\"']*)\2", body, re.MULTILINE)
    if line is None:
        raise ReleaseError('the [project] table of pyproject.toml has no version = "..." line')
    start = table.end() + line.start(3)
    finish = table.end() + line.end(3)
    return text[:start] + version + text[finish:], line.group(3)


def date_changelog(text: str, version: str, date: str) -> str:
    """Turn the ``## Unreleased`` section of a CHANGELOG into ``## VERSION - DATE``.

    Without such a section, a new dated section is inserted above the first
    ``## `` heading (or at the end), stating that the release only bumps the version.

    Raises:
        ReleaseError: if the changelog already has a section for ``version``.
    """
    if re.search(rf"^##[ \t]+\[?{re.escape(version)}\]?\b", text, re.MULTILINE):
        raise ReleaseError(f"CHANGELOG.md already has a section for {version}")
    heading = f"## {version} - {date}"
    match = _UNRELEASED_RE.search(text)
    if match:
        return text[: match.start()] + heading + text[match.end() :]
    section = f"{heading}\n\n- Version bump only; no changes were recorded under Unreleased.\n\n"
    first = _SECTION_RE.search(text)
    if first:
        return text[: first.start()] + section + text[first.start() :]
    return text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"


def release(root: Path, package: str, part: str, date: str, dry_run: bool = False) -> list[str]:
    """Bump ``package`` under ``root``; return the lines to report.

    Raises:
        ReleaseError: if the package, its files or the version are not as expected.
    """
    try:
        packages = discover_packages(root)
    except WorkspaceError as exc:
        raise ReleaseError(str(exc)) from exc
    name = normalize(package)
    if name not in packages:
        raise ReleaseError(f"unknown package {package!r}; known: {', '.join(packages) or 'none'}")
    try:
        datetime.date.fromisoformat(date)
    except ValueError as exc:
        raise ReleaseError(f"date must be YYYY-MM-DD; got {date!r}") from exc
    pkg = packages[name]
    pyproject = pkg.path / "pyproject.toml"
    changelog = pkg.path / "CHANGELOG.md"
    if not changelog.is_file():
        raise ReleaseError(f"{changelog} does not exist")
    new_version = bump_version(pkg.version, part)
    new_pyproject, old = set_project_version(pyproject.read_text(encoding="utf-8"), new_version)
    new_changelog = date_changelog(changelog.read_text(encoding="utf-8"), new_version, date)
    lines = [f"{name}: {old} -> {new_version} ({date})"]
    lines += _dependent_warnings(packages, name, new_version)
    if not dry_run:
        pyproject.write_text(new_pyproject, encoding="utf-8")
        changelog.write_text(new_changelog, encoding="utf-8")
        lines.append(f"updated {pyproject.relative_to(root)} and {changelog.relative_to(root)}")
        lines.append(
            f"next: nox -s build -- {name} (sdist and wheel into dist/, checked and passed "
            "through twine check --strict), then upload those two files"
        )
    return lines


def _dependent_warnings(packages: dict, name: str, version: str) -> list[str]:
    try:
        from packaging.requirements import Requirement
        from packaging.version import Version
    except ImportError:
        return ["note: install 'packaging' to check the siblings' ranges on this package"]
    lines = []
    for other in packages.values():
        for req in other.dependencies:
            if requirement_name(req) == name:
                spec = Requirement(req).specifier
                if not spec.contains(Version(version), prereleases=True):
                    lines.append(
                        f"warning: {other.name} requires {req!r}, which excludes {version}; "
                        "widen it before publishing"
                    )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("package", help="package name, e.g. alf-math")
    parser.add_argument("part", choices=("major", "minor", "patch"), help="which part to bump")
    parser.add_argument(
        "--date",
        default=datetime.date.today().isoformat(),
        help="release date, YYYY-MM-DD (default: today)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print what would change, write nothing"
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=Path(__file__).resolve().parent.parent,
        help="repository root (default: the checkout holding this script)",
    )
    args = parser.parse_args(argv)
    try:
        lines = release(args.root, args.package, args.part, args.date, args.dry_run)
    except ReleaseError as exc:
        print(f"release: {exc}", file=sys.stderr)
        return 1
    for line in lines:
        print(f"release: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
