"""tools/check_deps.py on small fake repositories, one rule per test."""

from __future__ import annotations

import check_deps
import pytest

MATH_OPS = """
    import numpy as np
    import torch

    __all__ = ["add"]


    def add(a, b):
        return torch.as_tensor(np.add(a, b))
"""


def problems(repo, *names):
    found, _ = check_deps.check(repo.root, list(names))
    return found


@pytest.fixture
def math_pkg(repo):
    return repo.package(
        "alf-math",
        ["torch>=2.3", "numpy>=1.22"],
        modules={"alf/utils/math_ops.py": MATH_OPS},
        tests={"test_math_ops.py": "import numpy\nimport pytest\nimport hypothesis\n"},
    )


def test_clean_repository_passes(repo, math_pkg):
    repo.package(
        "alf-dist",
        ["alf-math>=0.1,<0.2", "torch>=2.3"],
        modules={
            "alf/utils/dist_utils.py": """
                import torch
                from alf.utils import math_ops
                from . import _dist_helpers
            """,
            "alf/utils/_dist_helpers.py": "import math\n",
        },
        tests={"conftest.py": "import pytest\n", "test_x.py": "import conftest\nimport scipy\n"},
        extras={"test": ["pytest", "scipy"]},
    )
    assert problems(repo) == []
    assert check_deps.main(["--root", str(repo.root)]) == 0


def test_undeclared_module_level_import(repo, math_pkg):
    repo.package(
        "alf-buffers",
        ["alf-math>=0.1,<0.2"],
        modules={"alf/utils/data_buffer.py": "import numpy\nfrom alf.utils.math_ops import add\n"},
    )
    [line] = problems(repo, "alf-buffers")
    assert "alf-buffers: src/alf/utils/data_buffer.py:1: imports numpy (module level)" in line


def test_transitive_sibling_must_be_declared(repo, math_pkg):
    repo.package(
        "alf-dist",
        ["alf-math>=0.1,<0.2"],
        modules={"alf/utils/d.py": "from alf.utils import math_ops\n"},
    )
    repo.package(
        "alf-losses",
        ["alf-dist>=0.1,<0.2"],
        modules={"alf/utils/losses.py": "import alf.utils.d\nimport alf.utils.math_ops\n"},
    )
    [line] = problems(repo, "alf-losses")
    assert "imports alf.utils.math_ops" in line and "declare alf-math" in line


def test_lazy_import_may_come_from_an_extra_but_not_the_test_extra(repo):
    repo.package(
        "alf-math",
        ["numpy"],
        modules={
            "alf/summary.py": """
                import numpy

                def writer():
                    import tensorboard
                    return tensorboard

                try:
                    import yaml
                except ImportError:
                    yaml = None
            """
        },
        extras={"tensorboard": ["tensorboard>=2.10"], "test": ["pyyaml"]},
    )
    [line] = problems(repo)
    assert "imports yaml (guarded); declare pyyaml in [project].dependencies or a non-test" in line


def test_module_level_import_of_an_extra_is_not_enough(repo):
    repo.package(
        "alf-math",
        ["numpy"],
        modules={"alf/s.py": "import numpy\nimport tensorboard\n"},
        extras={"tensorboard": ["tensorboard"]},
    )
    [line] = problems(repo)
    assert "imports tensorboard (module level)" in line


def test_import_names_map_to_distribution_names(repo):
    repo.package(
        "alf-plot",
        ["pyyaml", "protobuf", "pillow"],
        modules={
            "alf/utils/p.py": "import yaml\nfrom google.protobuf import message\nfrom PIL import Image\n"
        },
    )
    assert problems(repo) == []


def test_unused_declared_dependency_and_allow_list(repo):
    repo.package("alf-plot", ["numpy", "scipy"], modules={"alf/utils/p.py": "import numpy\n"})
    [line] = problems(repo)
    assert "declares scipy but src/ never imports it" in line
    repo.package(
        "alf-plot",
        ["numpy", "scipy"],
        modules={"alf/utils/p.py": "import numpy\n"},
        extra_toml='\n[tool.alf-check-deps]\nallow-unused = ["scipy"]\n',
    )
    assert problems(repo) == []


def test_test_imports_need_dependencies_or_test_extra(repo, math_pkg):
    repo.package(
        "alf-plot",
        ["numpy"],
        modules={"alf/utils/p.py": "import numpy\n"},
        py_typed="alf/utils",
        tests={
            "test_p.py": "import scipy\nimport hypothesis\ntry:\n    import torch\nexcept ImportError:\n    torch = None\n"
        },
    )
    [line] = problems(repo, "alf-plot")
    assert "tests/test_p.py:1: test imports scipy; declare scipy" in line
    assert "a 'test' extra" in line


def test_module_nobody_ships(repo, math_pkg):
    repo.package(
        "alf-dist",
        ["alf-math>=0.1,<0.2"],
        modules={
            "alf/utils/d.py": "from alf.utils import common\nfrom alf.utils import math_ops\n"
        },
    )
    [line] = problems(repo, "alf-dist")
    assert "imports alf.utils.common, which no package in packages/ ships" in line


def test_namespace_init_files_and_py_typed(repo):
    repo.package(
        "alf-math",
        ["numpy"],
        modules={"alf/__init__.py": "", "alf/utils/__init__.py": "", "alf/x.py": "import numpy\n"},
        py_typed=None,
    )
    found = problems(repo)
    assert any("src/alf/__init__.py must not exist" in p for p in found)
    assert any("src/alf/utils/__init__.py must not exist" in p for p in found)
    assert any("no py.typed marker on the path of" in p and "src/alf/x.py" in p for p in found)


def test_py_typed_from_a_required_sibling_or_a_deeper_folder(repo, math_pkg):
    # alf-dist ships no marker: alf-math's alf/py.typed covers it (it requires alf-math).
    repo.package(
        "alf-dist",
        ["alf-math>=0.1,<0.2"],
        modules={"alf/utils/d.py": "import alf.utils.math_ops\n"},
    )
    # alf-plot requires no sibling: its own marker in alf/utils/ covers alf/utils/p.py.
    repo.package(
        "alf-plot", ["numpy"], modules={"alf/utils/p.py": "import numpy\n"}, py_typed="alf/utils"
    )
    assert problems(repo) == []
    # ... but not a module above that folder, and not another package's marker it does not require.
    repo.package(
        "alf-plot",
        ["numpy"],
        modules={"alf/utils/p.py": "import numpy\n", "alf/q.py": "import numpy\n"},
        py_typed="alf/utils",
    )
    [line] = problems(repo, "alf-plot")
    assert "alf-plot: no py.typed marker on the path of src/alf/q.py" in line


def test_one_marker_shipped_by_two_packages(repo, math_pkg):
    repo.package("alf-plot", ["numpy"], modules={"alf/utils/p.py": "import numpy\n"})
    [line] = problems(repo, "alf-plot")
    assert "alf-plot: src/alf/py.typed is also shipped by alf-math" in line


def test_complete_metadata_is_required(repo):
    repo.package("alf-plot", ["numpy"], modules={"alf/p.py": "import numpy\n"}, metadata=False)
    found = "\n".join(problems(repo))
    for expected in (
        "alf-plot: no LICENSE in the package folder",
        'license-files must list "LICENSE"',
        "license must be an SPDX expression of ['Apache-2.0']; got None",
        "authors must list at least one author",
        "[project.urls] is missing or empty",
        "exactly one 'Development Status :: ...'",
        "classifiers lack 'Typing :: Typed'",
        "Python classifiers [] differ from the versions its tests run on "
        "['3.9', '3.10', '3.11', '3.12', '3.13']",
        "requires-python None must admit the tested versions",
    ):
        assert expected in found
    (repo.root / "LICENSE").unlink()
    assert "the repository has no LICENSE file at its root" in "\n".join(problems(repo))


def edit_pyproject(path, old, new):
    pyproject = path / "pyproject.toml"
    text = pyproject.read_text()
    assert old in text
    pyproject.write_text(text.replace(old, new))


def test_metadata_must_be_truthful(repo, math_pkg):
    assert problems(repo) == []
    (math_pkg / "LICENSE").write_text("MIT License\n")
    edit_pyproject(
        math_pkg,
        '"Programming Language :: Python :: 3.11"',
        '"Programming Language :: Python :: 3.12"',
    )
    edit_pyproject(math_pkg, 'requires-python = ">=3.11"', 'requires-python = ">=3.9"')
    edit_pyproject(
        math_pkg,
        '"Typing :: Typed"',
        '"Typing :: Typed", "License :: OSI Approved :: Apache Software License"',
    )
    edit_pyproject(math_pkg, 'license = "Apache-2.0"', 'license = "MIT"')
    edit_pyproject(math_pkg, '"torch>=2.3"', '"torch>=2.1"')
    found = "\n".join(problems(repo))
    assert "alf-math: LICENSE differs from the repository's LICENSE" in found
    assert "Python classifiers ['3.12'] differ from the versions its tests run on ['3.11']" in found
    assert (
        "requires-python '>=3.9' must admit the tested versions ['3.11'] and nothing older" in found
    )
    assert "license must be an SPDX expression of ['Apache-2.0']; got 'MIT'" in found
    assert "License classifiers ['License :: OSI Approved :: Apache Software License']" in found
    assert "'torch>=2.1' admits torch older than 2.3" in found


def test_torch_free_package_claims_every_tested_python(repo, math_pkg):
    # A package requiring a torch package is tested on 3.11 only, whatever it imports itself.
    path = repo.package(
        "alf-dist",
        ["alf-math>=0.1,<0.2"],
        modules={"alf/utils/d.py": "import alf.utils.math_ops\n"},
    )
    assert problems(repo, "alf-dist") == []
    edit_pyproject(path, 'requires-python = ">=3.11"', 'requires-python = ">=3.11,<3.11"')
    [line] = problems(repo, "alf-dist")
    assert "requires-python '>=3.11,<3.11' must admit the tested versions" in line


def test_same_file_in_two_packages(repo, math_pkg):
    repo.package(
        "alf-dist",
        ["alf-math>=0.1,<0.2"],
        modules={"alf/utils/math_ops.py": "from alf.utils import math_ops\n"},
    )
    found = problems(repo)
    assert any("src/alf/utils/math_ops.py is also shipped by" in p for p in found)


def test_exact_pins_bad_sibling_ranges_and_alf(repo, math_pkg):
    repo.package(
        "alf-dist",
        ["alf-math>=0.2,<0.3", "torch==2.13.0", "alf"],
        modules={"alf/utils/d.py": "import torch\nimport alf.utils.math_ops\n"},
        extra_toml='\n[tool.alf-check-deps]\nallow-unused = ["alf"]\n',
    )
    found = "\n".join(problems(repo, "alf-dist"))
    assert "'torch==2.13.0' is an exact pin" in found
    assert "excludes alf-math 0.1.0" in found
    assert "depends on a distribution named 'alf'" in found


def test_import_cycle_is_reported(repo):
    repo.package("alf-a", ["alf-b"], modules={"alf/a.py": "import alf.b\n"})
    repo.package("alf-b", [], modules={"alf/b.py": "import alf.a\n"})
    found = problems(repo)
    assert any("import each other in a cycle" in p for p in found)


def test_relative_imports_resolve_within_namespace(tmp_path):
    src = tmp_path / "src" / "alf" / "utils"
    src.mkdir(parents=True)
    file = src / "d.py"
    file.write_text("from . import math_ops\nfrom ..nest import flatten\n")
    refs = check_deps.collect_imports(file, "alf.utils.d")
    assert [(r.module, r.names) for r in refs] == [
        ("alf.utils", ("math_ops",)),
        ("alf.nest", ("flatten",)),
    ]


def test_syntax_error_is_reported(repo):
    repo.package("alf-math", [], modules={"alf/x.py": "def (:\n"})
    assert any("does not parse" in p for p in problems(repo))


def test_unknown_package_argument(repo, math_pkg):
    [line] = problems(repo, "nope")
    assert "unknown package(s): nope" in line


def test_a_regular_subpackage_of_the_namespace_is_accepted(repo, math_pkg):
    # alf/nest/ is a regular package (ALF's layout) inside the alf namespace
    repo.package(
        "alf-math",
        ["torch>=2.3", "numpy>=1.22"],
        modules={
            "alf/utils/math_ops.py": MATH_OPS,
            "alf/nest/__init__.py": "from alf.nest.nest import flatten\nfrom alf.nest import utils\n",
            "alf/nest/nest.py": "def flatten(x):\n    return [x]\n",
            "alf/nest/utils.py": "import torch\nfrom alf.nest.nest import flatten\n",
        },
    )
    repo.package(
        "alf-dist",
        ["alf-math>=0.1,<0.2"],
        modules={
            "alf/utils/d.py": """
                import alf.nest
                import alf.nest.utils as nest_utils
                from alf.nest import utils
                from alf.nest.nest import flatten
                from alf.utils import math_ops
            """
        },
    )
    assert problems(repo) == []
    owners, _ = check_deps.module_owners(check_deps.discover_packages(repo.root))
    assert owners["alf.nest"] == owners["alf.nest.utils"] == "alf-math"


def test_a_regular_subpackage_admits_no_other_distribution(repo, math_pkg):
    repo.package(
        "alf-math",
        ["torch>=2.3", "numpy>=1.22"],
        modules={
            "alf/utils/math_ops.py": MATH_OPS,
            "alf/nest/__init__.py": "",
            "alf/summary/__init__.py": (
                "import pkgutil\n__path__ = pkgutil.extend_path(__path__, __name__)\n"
            ),
        },
    )
    repo.package(
        "alf-dist",
        ["alf-math>=0.1,<0.2"],
        modules={
            "alf/nest/extra.py": "from alf.utils import math_ops\n",
            "alf/nest/deep/__init__.py": "",
            # alf.summary extends its __path__: other distributions may add to it
            "alf/summary/render.py": "from alf.utils import math_ops\n",
        },
    )
    found = problems(repo, "alf-dist")
    assert len(found) == 2, found
    assert found[0].startswith(
        "alf-dist: src/alf/nest/deep/__init__.py lies inside alf.nest, a regular package of "
        "alf-math"
    )
    assert "src/alf/nest/extra.py lies inside alf.nest" in found[1]
    assert "pkgutil.extend_path" in found[1]
    assert problems(repo, "alf-math") == []
    lines = check_deps.regular_package_problems(
        {"alf/x/a.py": "p", "alf/x/b.py": "q"}, {"alf/x": ("p", False)}, prefix="src/"
    )
    assert lines == [
        "q: src/alf/x/b.py lies inside alf.x, a regular package of p (its __init__.py): "
        "Python never looks for it there; move it, or have p extend the package's __path__ "
        "(pkgutil.extend_path)"
    ]
