"""tools/check_wheels.py on hand-made wheel and sdist archives."""

from __future__ import annotations

import io
import tarfile
import zipfile

import check_wheels


def make_wheel(path, files, requires=(), license_file=True):
    dist, version = path.name.split("-")[:2]
    info = f"{dist}-{version}.dist-info"
    meta = f"Metadata-Version: 2.4\nName: {dist.replace('_', '-')}\nVersion: {version}\n"
    meta += "".join(f"Requires-Dist: {r}\n" for r in requires)
    with zipfile.ZipFile(path, "w") as zf:
        for name in files:
            zf.writestr(name, "")
        zf.writestr(f"{info}/METADATA", meta)
        if license_file:
            zf.writestr(f"{info}/licenses/LICENSE", "Apache License")
    return path


def make_sdist(path, files):
    top = path.name[: -len(".tar.gz")]
    with tarfile.open(path, "w:gz") as tf:
        for name in files:
            data = io.BytesIO(b"x")
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = 1
            tf.addfile(info, data)
    return path


def test_good_wheel(tmp_path):
    wheel = make_wheel(
        tmp_path / "alf_math-0.1.0-py3-none-any.whl",
        ["alf/py.typed", "alf/nest/__init__.py", "alf/utils/math_ops.py"],
        requires=["torch>=2.3", "numpy>=1.23.2", "tensorboard>=2.10; extra == 'tensorboard'"],
    )
    assert check_wheels.wheel_problems(wheel) == []
    assert check_wheels.wheel_metadata(wheel) == ("alf-math", ["torch", "numpy"])
    assert check_wheels.shipped_modules(wheel) == ["alf.nest", "alf.utils.math_ops"]
    assert check_wheels.main([str(wheel)]) == 0


def test_namespace_init_files_fail(tmp_path):
    wheel = make_wheel(
        tmp_path / "alf_bad-0.1.0-py3-none-any.whl",
        ["alf/__init__.py", "alf/utils/__init__.py", "alf/utils/x.py", "tests/test_x.py"],
        license_file=False,
    )
    found = "\n".join(check_wheels.check_wheels([wheel]))
    assert "ships alf/__init__.py" in found
    assert "ships alf/utils/__init__.py" in found
    assert "does not carry its LICENSE" in found
    assert "no py.typed marker" in found and "alf/utils/x.py" in found
    assert "ships files outside alf/: tests/test_x.py" in found
    assert check_wheels.main([str(wheel)]) == 1


def test_two_wheels_shipping_one_file(tmp_path):
    a = make_wheel(
        tmp_path / "alf_a-0.1.0-py3-none-any.whl", ["alf/py.typed", "alf/utils/_helpers.py"]
    )
    b = make_wheel(
        tmp_path / "alf_b-0.1.0-py3-none-any.whl", ["alf/py.typed", "alf/utils/_helpers.py"]
    )
    found = check_wheels.check_wheels([a, b])
    assert found == [
        "alf_b-0.1.0-py3-none-any.whl: alf/py.typed is also shipped by alf_a-0.1.0-py3-none-any.whl",
        "alf_b-0.1.0-py3-none-any.whl: alf/utils/_helpers.py is also shipped by "
        "alf_a-0.1.0-py3-none-any.whl",
    ]


def test_markers_come_from_the_wheel_or_the_wheels_it_requires(tmp_path):
    math = make_wheel(tmp_path / "alf_math-0.1.0-py3-none-any.whl", ["alf/py.typed", "alf/m.py"])
    dist = make_wheel(
        tmp_path / "alf_dist-0.1.0-py3-none-any.whl", ["alf/utils/d.py"], requires=["alf-math>=0.1"]
    )
    losses = make_wheel(
        tmp_path / "alf_losses-0.1.0-py3-none-any.whl",
        ["alf/utils/l.py"],
        requires=["alf-dist>=0.1,<0.2"],
    )
    plot = make_wheel(
        tmp_path / "alf_plot-0.1.0-py3-none-any.whl", ["alf/utils/py.typed", "alf/utils/p.py"]
    )
    assert check_wheels.check_wheels([math, dist, losses, plot]) == []
    # Without the wheel that ships the marker, nothing vouches for alf-dist's module.
    [line] = check_wheels.check_wheels([dist])
    assert "alf_dist-0.1.0-py3-none-any.whl: no py.typed marker" in line
    # alf-plot's marker in alf/utils/ does not cover a module in alf/.
    stray = make_wheel(
        tmp_path / "alf_stray-0.1.0-py3-none-any.whl", ["alf/utils/py.typed", "alf/s.py"]
    )
    [line] = check_wheels.check_wheels([stray])
    assert "on the path of alf/s.py" in line


def test_sdists_carry_license_and_pkg_info(tmp_path):
    good = make_sdist(tmp_path / "alf_math-0.1.0.tar.gz", ["LICENSE", "PKG-INFO", "src/alf/m.py"])
    bad = make_sdist(tmp_path / "alf_dist-0.1.0.tar.gz", ["src/alf/d.py"])
    assert check_wheels.check_sdist(good) == []
    assert check_wheels.check_sdist(bad) == [
        "alf_dist-0.1.0.tar.gz: does not carry LICENSE",
        "alf_dist-0.1.0.tar.gz: does not carry PKG-INFO",
    ]
    (tmp_path / "junk.tar.gz").write_text("not a tar")
    assert "cannot be read" in check_wheels.check_sdist(tmp_path / "junk.tar.gz")[0]
    assert check_wheels.main([str(good)]) == 0
    assert check_wheels.main([str(bad)]) == 1


def test_a_regular_subpackage_belongs_to_one_wheel(tmp_path):
    math = make_wheel(
        tmp_path / "alf_math-0.1.0-py3-none-any.whl",
        ["alf/py.typed", "alf/nest/__init__.py", "alf/nest/nest.py", "alf/nest/utils.py"],
    )
    dist = make_wheel(
        tmp_path / "alf_dist-0.1.0-py3-none-any.whl",
        ["alf/utils/dist_utils.py"],
        requires=["alf-math>=0.1"],
    )
    # alf/nest/ is a regular package inside the namespace: accepted
    assert check_wheels.regular_packages(math) == {"alf/nest": False}
    assert check_wheels.check_wheels([math, dist]) == []
    intruder = make_wheel(
        tmp_path / "alf_x-0.1.0-py3-none-any.whl", ["alf/nest/extra.py"], requires=["alf-math"]
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
        zf.writestr("alf_math-0.1.0.dist-info/METADATA", "Name: alf-math\nVersion: 0.1.0\n")
        zf.writestr("alf_math-0.1.0.dist-info/licenses/LICENSE", "Apache License")
    other = make_wheel(
        tmp_path / "alf_train-0.1.0-py3-none-any.whl",
        ["alf/summary/render.py"],
        requires=["alf-math"],
    )
    assert check_wheels.regular_packages(math) == {"alf/summary": True}
    assert check_wheels.check_wheels([math, other]) == []
