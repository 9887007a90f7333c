"""tools/check_install.py on hand-made site-packages folders."""

from __future__ import annotations

import check_install


def install(site, name, files, version="0.1.0"):
    """Lay out what an installer leaves: the files and a .dist-info with METADATA and RECORD."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.4\nName: {name}\nVersion: {version}\n")
    for rel in files:
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text("")
    record = [f"{rel},," for rel in files] + [f"{info.name}/METADATA,,", f"{info.name}/RECORD,,"]
    (info / "RECORD").write_text("\n".join(record) + "\n")


def test_installed_finds_only_known_packages(tmp_path):
    install(tmp_path, "alf-math", ["alf/py.typed", "alf/nest.py"])
    install(tmp_path, "numpy", ["numpy/__init__.py"])
    found = check_install.installed(["alf-math", "alf_dist"], path=[str(tmp_path)])
    assert sorted(found) == ["alf-math"]


def test_records_and_markers(tmp_path):
    install(tmp_path, "alf-math", ["alf/py.typed", "alf/utils/math_ops.py"])
    install(tmp_path, "alf-dist", ["alf/utils/dist_utils.py"])
    install(tmp_path, "alf-plot", ["alf/utils/py.typed", "alf/utils/plot_tb_curves.py"])
    found = check_install.installed(["alf-math", "alf-dist", "alf-plot"], path=[str(tmp_path)])
    for name, dist in found.items():
        assert check_install.record_problems(name, dist) == []
        assert check_install.untyped_modules(dist) == []
    # Uninstalling alf-math takes alf/py.typed: alf-dist's module is no longer typed, while
    # alf-plot's own marker in alf/utils/ still covers alf-dist's module's folder too.
    (tmp_path / "alf" / "py.typed").unlink()
    assert check_install.record_problems("alf-math", found["alf-math"]) == [
        "alf-math: 1 file(s) of its RECORD are gone: alf/py.typed"
    ]
    assert check_install.untyped_modules(found["alf-dist"]) == []
    (tmp_path / "alf" / "utils" / "py.typed").unlink()
    assert check_install.untyped_modules(found["alf-dist"]) == ["alf/utils/dist_utils.py"]


def test_main_reports_unexpected_and_missing_packages(tmp_path, capsys):
    install(tmp_path, "alf-math", ["alf/py.typed", "alf/m.py"])
    install(tmp_path, "alf-plot", ["alf/utils/py.typed", "alf/utils/p.py"])
    # --path: only this folder (the test environment may hold the real packages)
    known = ["--path", str(tmp_path), "--known", "alf-math", "alf-plot", "alf-dist"]
    assert check_install.main([*known, "--expect", "alf-math", "alf-plot"]) == 0
    assert "exactly alf-math, alf-plot installed" in capsys.readouterr().out
    assert check_install.main([*known, "--expect", "alf-math", "alf-dist"]) == 1
    err = capsys.readouterr().err
    assert "alf-plot: installed, but not required by what was asked for" in err
    assert "alf-dist: expected, but not installed" in err
