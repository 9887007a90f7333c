"""gin_utils.inoperative_config_str against an independent model of gin's
scope resolution."""

import contextlib
import re

import gin
import pytest
from hypothesis import given
from hypothesis import strategies as st

from alf.utils import gin_utils
from alf.utils.gin_utils import inoperative_config_str

_MODULE = "alf_train_utils_tests.gin_utils"


@gin.configurable(module=_MODULE)
def gu_target(a=0, b=0, c=0):
    return a, b, c


@gin.configurable(module=_MODULE)
def gu_other(x=1.5, name="n"):
    return x, name


@pytest.fixture(autouse=True)
def clean_gin():
    gin.clear_config()
    yield
    gin.clear_config()


_BINDING_LINE = re.compile(
    r"^(?:(?P<scope>[\w/]+)/)?(?P<selector>[\w.]+)\.(?P<param>\w+) = (?P<value>.*)$"
)


def _bound(config_str):
    """``{(scope, configurable name, param): value text}`` of a config string."""
    out = {}
    for line in config_str.splitlines():
        m = _BINDING_LINE.match(line)
        if m:
            out[(m["scope"] or "", m["selector"].split(".")[-1], m["param"])] = m["value"]
    return out


def test_unused_and_overridden_bindings_are_inoperative():
    gin.parse_config(
        """
        gu_target.a = 1
        gu_target.b = 2
        gu_target.c = 3
        gu_other.x = 2.5
        """
    )
    assert gu_target(b=20) == (1, 20, 3)  # b given by the caller: its binding is unused
    text = inoperative_config_str()
    assert _bound(text) == {("", "gu_target", "b"): "2", ("", "gu_other", "x"): "2.5"}
    # gin's own section layout
    assert "# Parameters for gu_other:" in text
    assert "# Parameters for gu_target:" in text
    assert "# " + "=" * 78 in text


def test_scopes_inherit_and_shadow():
    gin.parse_config(
        """
        gu_target.a = 1
        s1/gu_target.a = 10
        gu_target.b = 2
        s2/gu_target.c = 30
        """
    )
    with gin.config_scope("s1"):
        assert gu_target() == (10, 2, 0)
    # gu_target.a (unscoped) is shadowed by s1/ in the only call; s2/ is never entered
    assert _bound(inoperative_config_str()) == {
        ("", "gu_target", "a"): "1",
        ("s2", "gu_target", "c"): "30",
    }
    assert gu_target() == (1, 2, 0)  # now the unscoped binding is used too
    assert _bound(inoperative_config_str()) == {("s2", "gu_target", "c"): "30"}


def test_everything_used_gives_no_bindings_and_output_parses_back():
    gin.parse_config("gu_target.a = 5")
    gu_target()
    assert _bound(inoperative_config_str()) == {}
    gin.clear_config()
    gin.parse_config(
        """
        gu_other.name = 'a long string value that will not fit on a line of width thirty'
        s1/gu_target.b = [1, 2, 3]
        """
    )
    text = inoperative_config_str(max_line_length=30, continuation_indent=2)
    assert "\\\n  " in text  # a value continued on the next line, indented by 2
    gin.clear_config()
    gin.parse_config(text)
    assert gin.query_parameter("gu_other.name") == (
        "a long string value that will not fit on a line of width thirty"
    )
    assert gin.query_parameter("s1/gu_target.b") == [1, 2, 3]


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"max_line_length": "80"}, TypeError),
        ({"max_line_length": True}, TypeError),
        ({"max_line_length": 0}, ValueError),
        ({"continuation_indent": -1}, ValueError),
        ({"continuation_indent": 2.0}, TypeError),
    ],
)
def test_bad_arguments(kwargs, error):
    with pytest.raises(error, match=next(iter(kwargs))):
        inoperative_config_str(**kwargs)


_SCOPES = ["", "s1", "s1/s2", "s2"]
_CALL_SCOPES = [(), ("s1",), ("s1", "s2"), ("s2",), ("s2", "s1")]


def _expected_inoperative(bindings, calls):
    """Slow model: a binding (scope S, param p) is used by a call in active
    scope A when p is not passed explicitly and S is the longest of the bound
    scopes of p that is a prefix of A."""
    used = set()
    for active, explicit in calls:
        prefixes = ["/".join(active[:n]) for n in range(len(active) + 1)]
        for p in "abc":
            if p in explicit:
                continue
            candidates = [s for s in prefixes if (s, p) in bindings]
            if candidates:
                used.add((max(candidates, key=len), p))
    return {(s, "gu_target", p): str(v) for (s, p), v in bindings.items() if (s, p) not in used}


@given(
    bindings=st.dictionaries(
        st.tuples(st.sampled_from(_SCOPES), st.sampled_from("abc")), st.integers(-5, 5), max_size=8
    ),
    calls=st.lists(
        st.tuples(st.sampled_from(_CALL_SCOPES), st.sets(st.sampled_from("abc"))), max_size=4
    ),
)
def test_matches_scope_model(bindings, calls):
    gin.clear_config()
    for (scope, param), value in bindings.items():
        gin.bind_parameter(f"{scope + '/' if scope else ''}gu_target.{param}", value)
    for active, explicit in calls:
        with contextlib.ExitStack() as stack:
            for name in active:
                stack.enter_context(gin.config_scope(name))
            gu_target(**{p: 99 for p in explicit})
    assert _bound(inoperative_config_str()) == _expected_inoperative(bindings, calls)
    assert gin_utils.__all__ == ["inoperative_config_str"]
