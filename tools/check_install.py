"""Check what an installation left in a venv: which packages, their files, their markers.

Usage (run by ``nox -s subset`` with the venv's own python, from a folder outside
the checkout)::

    python tools/check_install.py --known NAME... --expect NAME... [--import MODULE...]

* ``--known``: every distribution of this repository. Exactly the ``--expect`` ones
  must be installed: a sibling that the command pulled in although nobody asked
  for it fails the check, and so does a missing one.
* Each installed ``--expect`` distribution must still have every file its RECORD
  lists (uninstalling another package must not take one away), and a ``py.typed``
  marker in a folder on the path of each module it ships (``alf/py.typed`` or
  ``alf/utils/py.typed``), whoever ships that marker.
* ``--import``: these modules must import, from the venv's site-packages
  (``tools/import_all.py``'s rules).

Standard library only (the venv holds nothing else of ours). Exit status 0 when
everything holds, 1 otherwise, with one line per problem.
"""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import import_all  # noqa: E402

__all__ = ["installed", "main", "record_problems", "untyped_modules"]


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed(known: list[str], path: list[str] | None = None) -> dict[str, metadata.Distribution]:
    """The distributions among ``known`` (normalized names) installed on ``path``
    (default ``sys.path``), keyed by normalized name."""
    wanted = {_normalize(k) for k in known}
    found: dict[str, metadata.Distribution] = {}
    for dist in metadata.distributions(path=path) if path is not None else metadata.distributions():
        name = _normalize(dist.metadata["Name"] or "")
        if name in wanted:
            found.setdefault(name, dist)
    return found


def record_problems(name: str, dist: metadata.Distribution) -> list[str]:
    """Files that ``dist``'s RECORD lists but that are not on disk."""
    missing = [str(f) for f in dist.files or [] if not Path(str(dist.locate_file(f))).exists()]
    if not missing:
        return []
    return [f"{name}: {len(missing)} file(s) of its RECORD are gone: {', '.join(missing[:5])}"]


def untyped_modules(dist: metadata.Distribution) -> list[str]:
    """Modules under ``alf/`` of ``dist`` with no ``py.typed`` in a folder on their path
    (the marker may belong to any installed distribution)."""
    untyped = []
    for f in dist.files or []:
        parts = f.parts
        if not parts or parts[0] != "alf" or f.suffix != ".py":
            continue
        folders = [Path(*parts[: i + 1]) for i in range(len(parts) - 1)]
        if not any(Path(str(dist.locate_file(d / "py.typed"))).is_file() for d in folders):
            untyped.append(str(f))
    return untyped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--known", nargs="+", required=True, help="every package of the repo")
    parser.add_argument("--expect", nargs="*", default=[], help="the packages that must be here")
    parser.add_argument("--import", dest="modules", nargs="*", default=[], help="modules to import")
    parser.add_argument(
        "--path", action="append", help="look for distributions here only (default: sys.path)"
    )
    args = parser.parse_args(argv)
    expect = {_normalize(n) for n in args.expect}
    found = installed(args.known, path=args.path)
    problems = [
        f"{n}: installed, but not required by what was asked for"
        for n in sorted(set(found) - expect)
    ]
    problems += [f"{n}: expected, but not installed" for n in sorted(expect - set(found))]
    for name in sorted(expect & set(found)):
        problems += record_problems(name, found[name])
        untyped = untyped_modules(found[name])
        if untyped:
            problems.append(f"{name}: no py.typed on the path of {', '.join(untyped[:5])}")
    for line in problems:
        print(f"check_install: {line}", file=sys.stderr)
    status = 1 if problems else 0
    if args.modules and import_all.main(args.modules) != 0:
        status = 1
    if status == 0:
        print(
            f"check_install: exactly {', '.join(sorted(expect)) or 'none'} installed; "
            "RECORDs intact; every module typed"
        )
    return status


if __name__ == "__main__":
    sys.exit(main())
