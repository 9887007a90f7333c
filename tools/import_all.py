"""Import each named module from an installed distribution and report where it came from.

Usage (run by ``nox -s isolated`` inside the wheel's fresh venv)::

    python tools/import_all.py alf.nest alf.utils.math_ops ...

Fails if a module cannot be imported, if ``alf`` or ``alf.utils`` resolves to a
regular package instead of a PEP 420 namespace, or if a module is loaded from
outside the environment's site-packages (the source tree leaking in).
"""

from __future__ import annotations

import importlib
import sys
import sysconfig
import traceback
from pathlib import Path

__all__ = ["main"]


def main(argv: list[str]) -> int:
    if not argv:
        print("import_all: no module names given", file=sys.stderr)
        return 1
    site = {Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib")}
    failures = []
    for name in argv:
        try:
            module = importlib.import_module(name)
        except Exception:  # report every broken module, not only the first
            failures.append(f"{name}: import failed\n{traceback.format_exc()}")
            continue
        origin = getattr(module, "__file__", None)
        if origin is None:
            failures.append(f"{name}: has no __file__ (namespace?), expected a module file")
        elif not any(Path(origin).resolve().is_relative_to(s) for s in site):
            failures.append(f"{name}: loaded from {origin}, outside this venv's site-packages")
    for ns in ("alf", "alf.utils"):
        if ns in sys.modules and getattr(sys.modules[ns], "__file__", None) is not None:
            failures.append(f"{ns}: is a regular package ({sys.modules[ns].__file__}), not PEP 420")
    for line in failures:
        print(f"import_all: {line}", file=sys.stderr)
    if failures:
        return 1
    print(f"import_all: imported {len(argv)} module(s) from site-packages")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
