"""tools/check_wheels.py on hand-made wheel archives."""

from __future__ import annotations

import zipfile

import check_wheels


def make_wheel(path, files):
    with zipfile.ZipFile(path, "w") as zf:
        for name in files:
            zf.writestr(name, "")
        zf.writestr(path.name.split("-")[0] + "-0.1.0.dist-info/METADATA", "")
    return path


def test_good_wheel(tmp_path):
    wheel = make_wheel(
        tmp_path / "alf_math-0.1.0-py3-none-any.whl",
        ["alf/py.typed", "alf/nest/__init__.py", "alf/utils/math_ops.py"],
    )
    assert check_wheels.wheel_problems(wheel) == []
    assert check_wheels.shipped_modules(wheel) == ["alf.nest", "alf.utils.math_ops"]
    assert check_wheels.main([str(wheel)]) == 0


def test_namespace_init_files_fail(tmp_path):
    wheel = make_wheel(
        tmp_path / "alf_bad-0.1.0-py3-none-any.whl",
        ["alf/__init__.py", "alf/utils/__init__.py", "alf/utils/x.py", "tests/test_x.py"],
    )
    found = "\n".join(check_wheels.wheel_problems(wheel))
    assert "ships alf/__init__.py" in found
    assert "ships alf/utils/__init__.py" in found
    assert "does not ship the PEP 561 marker" in found
    assert "ships files outside alf/: tests/test_x.py" in found
    assert check_wheels.main([str(wheel)]) == 1


def test_two_wheels_shipping_one_file(tmp_path):
    a = make_wheel(
        tmp_path / "alf_a-0.1.0-py3-none-any.whl", ["alf/py.typed", "alf/utils/_helpers.py"]
    )
    b = make_wheel(
        tmp_path / "alf_b-0.1.0-py3-none-any.whl", ["alf/py.typed", "alf/utils/_helpers.py"]
    )
    [line] = check_wheels.check_wheels([a, b])
    assert "alf_b-0.1.0-py3-none-any.whl: alf/utils/_helpers.py is also shipped by alf_a" in line
