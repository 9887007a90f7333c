"""tools/ci_summary.py: per-package lines and the closing count."""

from __future__ import annotations

import json

import ci_summary

JUNIT = '<testsuites><testsuite name="pytest" tests="{t}" failures="{f}" errors="0" skipped="{s}"/></testsuites>'


def entry(sig, result, args=None, reason=None):
    return {
        "name": sig.split("(")[0],
        "signatures": [sig],
        "result": result,
        "args": args or {},
        "reason": reason,
    }


def test_summary_counts_tests_and_failed_sessions(tmp_path, capsys):
    (tmp_path / "tests_alf-math-cpu_.xml").write_text(JUNIT.format(t=10, f=1, s=2))
    (tmp_path / "isolated_alf-math_.xml").write_text(JUNIT.format(t=10, f=0, s=2))
    report = {
        "sessions": [
            entry("tests(alf-math-cpu)", "failed", {"package": "alf-math", "torch": "cpu"}),
            entry(
                "tests(alf-math-cuda)",
                "skipped",
                {"package": "alf-math", "torch": "cuda"},
                "no CUDA GPU",
            ),
            entry("isolated(alf-math)", "success", {"package": "alf-math"}),
            entry(
                "tests(alf-plot-none-py3.9)",
                "failed",
                {"package": "alf-plot", "torch": "none"},
                "no tests",
            ),
            entry("lint", "success"),
        ]
    }
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    assert ci_summary.main([str(path), str(tmp_path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "ci: 15 passed, 2 failed, 4 skipped"
    assert any(
        line.startswith("ci: alf-math") and "tests[cuda] skipped: no CUDA GPU" in line
        for line in out
    )
    assert any(
        line.startswith("ci: alf-plot") and "tests[none py3.9] failed: no tests" in line
        for line in out
    )


def test_missing_report_fails(tmp_path):
    assert ci_summary.main([str(tmp_path / "none.json"), str(tmp_path)]) == 1
