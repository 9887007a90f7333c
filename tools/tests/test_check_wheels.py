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


def test_a_regular_subpackage_belongs_to_one_wheel(tmp_path):
    math = make_wheel(
        tmp_path / "alf_math-0.1.0-py3-none-any.whl",
        ["alf/py.typed", "alf/nest/__init__.py", "alf/nest/nest.py", "alf/nest/utils.py"],
    )
    dist = make_wheel(
        tmp_path / "alf_dist-0.1.0-py3-none-any.whl", ["alf/py.typed", "alf/utils/dist_utils.py"]
    )
    # alf/nest/ is a regular package inside the namespace: accepted
    assert check_wheels.regular_packages(math) == {"alf/nest": False}
    assert check_wheels.check_wheels([math, dist]) == []
    intruder = make_wheel(
        tmp_path / "alf_x-0.1.0-py3-none-any.whl", ["alf/py.typed", "alf/nest/extra.py"]
    )
    [line] = check_wheels.check_wheels([math, dist, intruder])
    assert line.startswith(
        "alf_x-0.1.0-py3-none-any.whl: alf/nest/extra.py lies inside alf.nest, a regular "
        "package of alf_math-0.1.0-py3-none-any.whl"
    )
    assert check_wheels.main([str(math), str(intruder)]) == 1


def test_a_package_extending_its_path_admits_other_wheels(tmp_path):
    math = tmp_path / "alf_math-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(math, "w") as zf:
        zf.writestr("alf/py.typed", "")
        zf.writestr(
            "alf/summary/__init__.py",
            "import pkgutil\n__path__ = pkgutil.extend_path(__path__, __name__)\n",
        )
        zf.writestr("alf_math-0.1.0.dist-info/METADATA", "")
    other = make_wheel(
        tmp_path / "alf_train-0.1.0-py3-none-any.whl", ["alf/py.typed", "alf/summary/render.py"]
    )
    assert check_wheels.regular_packages(math) == {"alf/summary": True}
    assert check_wheels.check_wheels([math, other]) == []
