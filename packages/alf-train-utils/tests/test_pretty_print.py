"""pretty_print: namedtuple layout, round trips, colours."""

import io
import pprint
import re
from collections import namedtuple
from typing import NamedTuple

from hypothesis import given
from hypothesis import strategies as st

from alf.utils import pretty_print
from alf.utils.pretty_print import PrettyPrinter, pformat_pycolor

LossInfo = namedtuple("LossInfo", ["loss", "extra"])
Point = namedtuple("Point", ["x", "y"])
Empty = namedtuple("Empty", [])


class Typed(NamedTuple):
    a: object
    b: object = None


class _Odd:
    def __repr__(self):
        return "<odd\n    'quote\n  dedent"


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_short_namedtuple_stays_on_one_line():
    assert PrettyPrinter().pformat(Point(1, "a")) == "Point(x=1, y='a')"
    assert PrettyPrinter().pformat(Empty()) == "Empty()"
    # values are formatted as the printer formats them: sorted dict keys
    assert (
        PrettyPrinter().pformat(Point({"b": 1, "a": 2}, None))
        == "Point(x={'a': 2, 'b': 1}, y=None)"
    )


def test_long_namedtuple_one_field_per_line():
    text = PrettyPrinter(width=30).pformat(LossInfo(loss=1.0, extra={"b": 2, "a": 1}))
    assert text == "LossInfo(\n loss=1.0,\n extra={'a': 1, 'b': 2})"
    nested = {"z": LossInfo(1.0, [LossInfo(2, "s" * 30), None]), "a": (1, 2)}
    expected = (
        "{'a': (1, 2),\n"
        " 'z': LossInfo(\n"
        "       loss=1.0,\n"
        "       extra=[LossInfo(\n"
        "               loss=2,\n"
        "               extra='ssssssssssssssssssssssssssssss'),\n"
        "              None])}"
    )
    assert PrettyPrinter(width=40).pformat(nested) == expected
    # indent=4 indents fields by 4
    assert PrettyPrinter(width=20, indent=4).pformat(Point("x" * 10, "y" * 10)) == (
        "Point(\n    x='xxxxxxxxxx',\n    y='yyyyyyyyyy')"
    )


def test_depth_and_recursion():
    obj = {"a": Point(Point(1, 2), [3])}
    assert PrettyPrinter(depth=2).pformat(obj) == "{'a': Point(x=Point(...), y=[...])}"
    loop = []
    p = Point(loop, 1)
    loop.append(p)
    text = PrettyPrinter(width=20).pformat(p)
    assert "<Recursion on Point" in text
    assert PrettyPrinter().isrecursive(p)


def test_pprint_to_stream_and_direct_methods():
    stream = io.StringIO()
    PrettyPrinter(stream=stream, width=20).pprint(Typed(a="aaaaaaaaaa", b=[1, 2]))
    assert stream.getvalue() == "Typed(\n a='aaaaaaaaaa',\n b=[1, 2])\n"
    out = io.StringIO()
    printer = PrettyPrinter(width=80)
    printer.format_namedtuple(Point(1, 2), out, 0, 0, {}, 1)
    assert out.getvalue() == "Point(x=1, y=2)"
    out = io.StringIO()
    printer.format_namedtuple_items([("x", 1), ("y", [2])], out, 0, 0, {}, 1, inline=False)
    assert out.getvalue() == "\n x=1,\n y=[2]"
    out = io.StringIO()
    printer.format_namedtuple_items([("x", 1), ("y", [2])], out, 0, 0, {}, 1, inline=True)
    assert out.getvalue() == "x=1, y=[2]"


# ---- properties -----------------------------------------------------------------
_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)


def _nests(children):
    return st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        st.dictionaries(st.text(max_size=6), children, max_size=4),
        st.builds(Point, children, children),
        st.builds(LossInfo, children, children),
        st.builds(Typed, children, children),
    )


_objects = st.recursive(_leaves, _nests, max_leaves=25)
_NAMESPACE = {"Point": Point, "LossInfo": LossInfo, "Typed": Typed}


def _has_namedtuple(obj):
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return True
    if isinstance(obj, dict):
        return any(_has_namedtuple(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return any(_has_namedtuple(v) for v in obj)
    return False


@given(obj=_objects, width=st.integers(10, 100))
def test_output_evaluates_back_to_the_object(obj, width):
    text = PrettyPrinter(width=width).pformat(obj)
    assert eval(text, dict(_NAMESPACE)) == obj
    if not _has_namedtuple(obj):
        assert text == pprint.pformat(obj, width=width)  # otherwise pprint's layout


@given(obj=_objects)
def test_colours_only_add_escape_sequences(obj):
    coloured = pformat_pycolor(obj)
    assert _ANSI.sub("", coloured) == PrettyPrinter().pformat(obj)


def test_colours():
    coloured = pformat_pycolor(Point(x="s", y=[1.5, None, True]))
    assert coloured == (
        "\x1b[33mPoint\x1b[0m(\x1b[34mx\x1b[0m=\x1b[32m's'\x1b[0m, \x1b[34my\x1b[0m=["
        "\x1b[36m1.5\x1b[0m, \x1b[35mNone\x1b[0m, \x1b[35mTrue\x1b[0m])"
    )
    # text that is not Python syntax stays readable (coloured up to the problem)
    for obj in (["'unterminated", object()], [_Odd(), 1], _Odd()):
        assert _ANSI.sub("", pformat_pycolor(obj)) == PrettyPrinter().pformat(obj)
    assert sorted(pretty_print.__all__) == ["PrettyPrinter", "pformat_pycolor"]
