"""Summarize a nox run for CI: one line per package, one for lint, and a closing count.

Usage (called by ``.ci/run`` after ``nox -s tests isolated lowest lint examples``)::

    python tools/ci_summary.py REPORT.json RESULTS_DIR

``REPORT.json`` is nox's session report (the noxfile writes it when ALF_NOX_REPORT
names a path); ``RESULTS_DIR`` holds one JUnit XML file per pytest run, named after
the session. The closing line reads ``ci: N passed, N failed, N skipped``, where a
session that failed without a failing test (an install error, no tests collected)
counts as one failure. Exit status 0 when every session succeeded or was skipped.
"""

from __future__ import annotations

import json
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

__all__ = ["junit_counts", "main", "summarize"]


def _results_name(session_name: str) -> str:
    # Same rule as noxfile.results_name.
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", session_name)


def junit_counts(path: Path) -> tuple[int, int, int]:
    """Return ``(passed, failed, skipped)`` from a JUnit XML file (failed includes errors)."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    total = failed = skipped = 0
    for suite in suites:
        total += int(suite.get("tests", 0))
        failed += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skipped += int(suite.get("skipped", 0))
    return total - failed - skipped, failed, skipped


def summarize(report: dict, results: Path) -> tuple[list[str], tuple[int, int, int], bool]:
    """Return the summary lines, the ``(passed, failed, skipped)`` totals and overall success."""
    per_package: dict[str, list[str]] = {}
    other: list[str] = []
    passed = failed = skipped = 0
    ok = True
    for entry in report.get("sessions", []):
        name, result = (entry.get("signatures") or [entry["name"]])[0], entry["result"]
        args = entry.get("args") or {}
        junit = results / f"{_results_name(name)}.xml"
        counts = junit_counts(junit) if junit.is_file() and result != "skipped" else None
        if counts:
            passed += counts[0]
            failed += counts[1]
            skipped += counts[2]
        if result not in ("success", "skipped"):
            ok = False
            if not counts or counts[1] == 0:
                failed += 1
        label = name.split("(")[0]
        if args.get("torch"):
            label += f"[{args['torch']}]"
        shown = {"success": "passed", "aborted": "failed"}.get(result, result)
        text = f"{label} {shown}"
        if counts:
            text += f" ({counts[0]} passed, {counts[1]} failed, {counts[2]} skipped)"
        if result != "success" and entry.get("reason"):
            text += f": {entry['reason']}"
        if args.get("package"):
            per_package.setdefault(args["package"], []).append(text)
        else:
            other.append(text)
    width = max((len(p) for p in per_package), default=0)
    lines = [f"{pkg:<{width}}  " + "; ".join(items) for pkg, items in per_package.items()]
    lines += other
    return lines, (passed, failed, skipped), ok


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    report_path, results = Path(argv[0]), Path(argv[1])
    if not report_path.is_file():
        print(
            f"ci: nox wrote no session report ({report_path}); see the log above", file=sys.stderr
        )
        return 1
    report = json.loads(report_path.read_text(encoding="utf-8"))
    lines, (passed, failed, skipped), ok = summarize(report, results)
    print("ci: ---- summary ----")
    for line in lines:
        print(f"ci: {line}")
    print(f"ci: {passed} passed, {failed} failed, {skipped} skipped")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
