"""tools/check_api.py on small fake repositories, one rule per test."""

from __future__ import annotations

import textwrap

import check_api
import pytest

GOOD = '''
    """A public module."""

    import torch
    from torch import nn

    __all__ = ["LIMIT", "Scaler", "scale", "nn"]

    LIMIT = 3


    def scale(x):
        """Multiply ``x`` by 2."""
        return 2 * x


    class Scaler(nn.Module):
        """Scale by a factor."""

        def forward(self, x):
            return x * 2

        @property
        def factor(self):
            """The factor, 2."""
            return 2

        def _helper(self):
            return None
'''

GOOD_TEST = "from alf.utils.good import LIMIT, Scaler, scale\n"


def problems(repo, *names):
    # Rules 1-3 only: rule 4 imports the modules (see the tests at the end).
    return check_api.check(repo.root, list(names), imports=False).problems


def one(repo, *names):
    found = problems(repo, *names)
    assert len(found) == 1, found
    return found[0]


def test_clean_repository_passes(repo, capsys):
    repo.package(
        "alf-math",
        ["torch"],
        modules={"alf/utils/good.py": GOOD, "alf/utils/_private.py": "x = 1\n"},
        tests={"test_good.py": GOOD_TEST},
    )
    report = check_api.check(repo.root)
    assert report.problems == [] and report.modules == 1 and report.names == 4
    assert check_api.main(["--root", str(repo.root)]) == 0
    out = capsys.readouterr().out
    assert out.strip() == "check_api: 1 modules, 4 public names, 0 problems"


def test_missing_all(repo):
    repo.package("alf-math", [], modules={"alf/utils/m.py": "def f():\n    pass\n"})
    assert one(repo) == "packages/alf-math/src/alf/utils/m.py:1: no __all__"


@pytest.mark.parametrize(
    "code",
    [
        "__all__ = [n for n in ['f']]\n",
        "__all__ = ['f', 3]\n",
        "NAMES = ['f']\n__all__ = NAMES\n",
        "__all__ = {'f'}\n",
    ],
)
def test_all_must_be_a_literal_list_of_strings(repo, code):
    repo.package("alf-math", [], modules={"alf/m.py": code})
    assert "__all__ is not a literal list of strings" in one(repo)


def test_tuple_all_is_accepted_and_changes_are_reported(repo):
    repo.package(
        "alf-math",
        [],
        modules={
            "alf/m.py": "__all__ = ('X',)\nX = 1\n",
            "alf/n.py": "__all__ = []\n__all__ += ['Y']\nY = 1\n",
        },
        tests={"test_x.py": "X Y\n"},
    )
    assert one(repo) == (
        "packages/alf-math/src/alf/n.py:2: __all__ is changed after its definition at line 1; "
        "keep it one literal list"
    )


def test_duplicate_names_in_all(repo):
    repo.package(
        "alf-math",
        [],
        modules={"alf/m.py": "__all__ = [\n    'X',\n    'X',\n]\nX = 1\n"},
        tests={"test_x.py": "X\n"},
    )
    assert one(repo) == "packages/alf-math/src/alf/m.py:3: __all__ lists 'X' twice"


def test_every_name_must_be_bound_at_top_level(repo):
    code = """
        import os.path
        import numpy as np
        from collections import OrderedDict as OD

        __all__ = ["np", "OD", "os", "A", "B", "C", "D", "E", "F", "G", "missing", "hinted"]

        try:
            A = 1
        except ImportError:
            B = None
        if A:
            C: int = 2
        else:
            def D():
                '''Nothing.'''
        E, (F, *G) = 1, (2, 3)
        hinted: int

        def f():
            missing = 1
            return missing
    """
    repo.package("alf-math", [], modules={"alf/m.py": code}, tests={"test_m.py": "A B C D E F G\n"})
    found = problems(repo)
    assert found == [
        "packages/alf-math/src/alf/m.py:6: __all__ lists 'missing', which is not bound at the "
        "top level",
        "packages/alf-math/src/alf/m.py:6: __all__ lists 'hinted', which is not bound at the "
        "top level",
    ]


def test_star_import_is_reported(repo):
    repo.package(
        "alf-math",
        [],
        modules={"alf/m.py": "from os.path import *\n\n__all__ = ['join']\n"},
    )
    assert one(repo) == (
        "packages/alf-math/src/alf/m.py:1: 'from os.path import *' makes the names of "
        "__all__ unverifiable"
    )


def test_package_init_may_list_its_submodules(repo):
    repo.package(
        "alf-math",
        [],
        modules={
            "alf/summary/__init__.py": "__all__ = ['ops']\n",
            "alf/summary/ops.py": "__all__ = []\n",
        },
    )
    assert check_api.check(repo.root).modules == 2
    assert problems(repo) == []


def test_missing_docstrings_of_functions_classes_and_methods(repo):
    code = '''
        __all__ = ["f", "C"]


        def f():
            return 1


        class C:
            def run(self):
                return 1

            @property
            def size(self):
                return 1

            @property
            def value(self):
                """The value."""
                return self._v

            @value.setter
            def value(self, v):
                self._v = v

            def _private(self):
                return 1

            def __len__(self):
                return 1
    '''
    repo.package("alf-math", [], modules={"alf/m.py": code}, tests={"test_m.py": "f C\n"})
    rel = "packages/alf-math/src/alf/m.py"
    assert problems(repo) == [
        f"{rel}:5: function f has no docstring",
        f"{rel}:9: class C has no docstring",
        f"{rel}:10: method C.run has no docstring and overrides no documented base method",
        f"{rel}:14: method C.size has no docstring and overrides no documented base method",
    ]


def test_overrides_inherit_documentation_of_repository_bases(repo):
    base = '''
        __all__ = ["Base"]


        class Base:
            """A base."""

            def documented(self):
                """Documented here."""

            def undocumented(self):
                return 1
    '''
    child = '''
        from alf.utils._mid import Mid

        __all__ = ["Child"]


        class Child(Mid):
            """A child."""

            def documented(self):
                return 2

            def undocumented(self):
                return 2

            def inherited_twice(self):
                return 2
    '''
    mid = '''
        import alf.base as b


        class Mid(b.Base):
            """Between."""

            def documented(self):
                return 3

            def inherited_twice(self):
                """Documented in the middle."""
    '''
    repo.package("alf-math", [], modules={"alf/base.py": base}, tests={"t.py": "Base\n"})
    repo.package(
        "alf-dist",
        ["alf-math"],
        modules={"alf/utils/child.py": child, "alf/utils/_mid.py": mid},
        tests={"t.py": "Child\n"},
    )
    rel = "packages/alf-dist/src/alf/utils/child.py"
    assert problems(repo) == [
        f"{rel}:13: method Child.undocumented has no docstring and overrides no documented "
        "base method",
        "packages/alf-math/src/alf/base.py:11: method Base.undocumented has no docstring and "
        "overrides no documented base method",
    ]


def test_overrides_of_torch_and_stdlib_bases(repo):
    code = '''
        import abc
        import torch
        import torch.distributions as td

        __all__ = ["M", "D", "F", "E", "A"]


        class M(torch.nn.Module):
            """A module."""

            def forward(self, x):
                return x

            def frobnicate(self):
                return 1


        class D(td.Normal):
            """A distribution."""

            def log_prob(self, value):
                return value

            @property
            def support(self):
                return None


        class F(torch.autograd.Function):
            """A function."""

            @staticmethod
            def backward(ctx, grad):
                return grad


        class E(KeyError):
            """An error."""

            def with_traceback(self, tb):
                return self


        class A(abc.ABC):
            """Abstract."""

            def forward(self):
                return 1
    '''
    repo.package("alf-math", ["torch"], modules={"alf/m.py": code}, tests={"t.py": "M D F E A"})
    rel = "packages/alf-math/src/alf/m.py"
    assert problems(repo) == [
        f"{rel}:15: method M.frobnicate has no docstring and overrides no documented base method",
        f"{rel}:48: method A.forward has no docstring and overrides no documented base method",
    ]


def test_reexports_are_checked_where_they_are_defined(repo):
    private = '''
        __all__ = ["helper", "Documented", "unexported"]


        def helper():
            return 1


        class Documented:
            """Fine."""


        def unexported():
            return 1
    '''
    public_a = """
        from alf.utils._impl import Documented, helper
        from alf.utils.b import shown

        __all__ = ["helper", "Documented", "shown"]
    """
    public_b = """
        from alf.utils._impl import helper as renamed

        __all__ = ["renamed", "shown"]


        def shown():
            return 1
    """
    repo.package(
        "alf-math",
        [],
        modules={
            "alf/utils/_impl.py": private,
            "alf/utils/a.py": public_a,
            "alf/utils/b.py": public_b,
        },
        tests={"test_a.py": "Documented shown renamed\n"},
    )
    assert problems(repo) == [
        "packages/alf-math/src/alf/utils/_impl.py:5: function helper has no docstring",
        "packages/alf-math/src/alf/utils/b.py:7: function shown has no docstring",
    ]
    report = check_api.check(repo.root, imports=False)
    assert report.modules == 2 and report.names == 5


def test_private_modules_are_skipped(repo):
    repo.package(
        "alf-math",
        [],
        modules={
            "alf/utils/_helpers.py": "def f():\n    pass\n",
            "alf/_internal/tools.py": "def g():\n    pass\n",
        },
    )
    report = check_api.check(repo.root)
    assert report.problems == [] and report.modules == 0


def test_syntax_error_is_reported(repo):
    repo.package("alf-math", [], modules={"alf/m.py": "def (:\n"})
    assert "packages/alf-math/src/alf/m.py:1: does not parse" in one(repo)


def test_selected_packages_only(repo, capsys):
    repo.package("alf-math", [], modules={"alf/m.py": "x = 1\n"})
    repo.package("alf-dist", [], modules={"alf/d.py": "__all__ = []\n"})
    assert problems(repo, "alf-dist") == []
    assert check_api.main(["--root", str(repo.root), "alf-dist"]) == 0
    assert check_api.main(["--root", str(repo.root), "Alf_Math"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-2:] == [
        "packages/alf-math/src/alf/m.py:1: no __all__",
        "check_api: 1 modules, 0 public names, 1 problems",
    ]


def test_unknown_package_exits_2(repo, capsys):
    repo.package("alf-math", [], modules={"alf/m.py": "__all__ = []\n"})
    assert check_api.main(["--root", str(repo.root), "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown package(s): nope; known: alf-math" in err


def test_is_public_module():
    assert check_api.is_public_module("alf.utils.math_ops")
    assert check_api.is_public_module("alf.summary")
    assert not check_api.is_public_module("alf.utils._dist_its")
    assert not check_api.is_public_module("alf._x.y")


REHOME = """
    for _name in __all__:
        _obj = globals()[_name]
        if str(getattr(_obj, "__module__", None) or "").startswith("alf.utils._"):
            _obj.__module__ = __name__
    del _name, _obj
"""


def test_public_names_must_report_a_public_module(repo):
    private = '''
        class Thing:
            """A thing."""


        def make():
            """Make a thing."""
            return Thing()
    '''
    public = """
        import json
        from collections import OrderedDict

        from alf.utils._x_impl import Thing, make
        from alf.utils.y import other

        __all__ = ["Thing", "make", "other", "OrderedDict", "json"]
    """
    repo.package(
        "alf-x",
        [],
        modules={
            "alf/utils/_x_impl.py": private,
            "alf/utils/x.py": public,
            "alf/utils/y.py": '__all__ = ["other"]\n\n\ndef other():\n    """Other."""\n',
        },
    )
    found = check_api.check(repo.root).problems
    rel = "packages/alf-x/src/alf/utils/x.py:8"
    assert found == [
        f"{rel}: Thing reports __module__ 'alf.utils._x_impl', a private module; set "
        "Thing.__module__ = 'alf.utils.x' (pickles and reprs name __module__)",
        f"{rel}: make reports __module__ 'alf.utils._x_impl', a private module; set "
        "make.__module__ = 'alf.utils.x' (pickles and reprs name __module__)",
    ]
    # Re-homed names pass; so do names of other public modules (ours or the stdlib's).
    repo.write(
        repo.root / "packages/alf-x/src/alf/utils/x.py",
        textwrap.dedent(public) + textwrap.dedent(REHOME),
    )
    assert check_api.check(repo.root).problems == []


def test_a_module_that_cannot_be_imported_is_a_problem(repo):
    repo.package(
        "alf-x",
        [],
        modules={
            "alf/utils/x.py": 'import no_such_module_here\n\n__all__ = ["no_such_module_here"]\n'
        },
    )
    [line] = check_api.check(repo.root).problems
    assert line.startswith("packages/alf-x/src/alf/utils/x.py:3: cannot import alf.utils.x")
    assert "No module named 'no_such_module_here'" in line
