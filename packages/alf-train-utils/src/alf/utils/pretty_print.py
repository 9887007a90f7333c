"""Pretty printing that understands namedtuples, with optional terminal colours.

``pprint`` prints a namedtuple with its plain ``repr`` on one line however long
it is. :class:`PrettyPrinter` formats namedtuples (and ALF's nests of them:
``TimeStep``, ``AlgStep``, ``LossInfo``, ...) like the containers ``pprint``
knows: on one line when they fit, otherwise one ``field=value`` per line,
nested values formatted recursively::

    >>> from alf.utils.pretty_print import PrettyPrinter
    >>> print(PrettyPrinter(width=30).pformat(LossInfo(loss=1.0, extra={"a": 1, "b": 2})))
    LossInfo(
     loss=1.0,
     extra={'a': 1, 'b': 2})

:func:`pformat_pycolor` returns the same text with ANSI colour codes for a
terminal (strings, numbers, keywords, class names and field names).
"""

import io
import keyword
import pprint
import tokenize
from typing import Any, Dict, Iterable, List, Tuple

__all__ = ["PrettyPrinter", "pformat_pycolor"]


def _is_namedtuple(obj: Any) -> bool:
    """A tuple subclass with ``_fields`` (``collections.namedtuple`` and
    ``typing.NamedTuple``)."""
    return isinstance(obj, tuple) and isinstance(getattr(type(obj), "_fields", None), tuple)


class PrettyPrinter(pprint.PrettyPrinter):
    """A ``pprint.PrettyPrinter`` that also lays out namedtuples.

    The constructor arguments are ``pprint.PrettyPrinter``'s:

    Args:
        indent (int): Number of spaces to indent for each level of nesting.
        width (int): Attempted maximum number of columns in the output.
        depth (int): The maximum depth to print out nested structures (a
            namedtuple below it prints as ``Name(...)``).
        stream: The desired output stream. If omitted (or false), the standard
            output stream available at construction will be used.
        compact (bool): If true, several items will be combined in one line.
        sort_dicts (bool): If true, dict keys are sorted.

    A namedtuple that fits in the remaining width prints on one line,
    ``Name(f1=v1, f2=v2)``, its values formatted as this printer formats them
    (sorted dict keys, depth limit). Otherwise it prints as ``Name(`` followed
    by one ``field=value`` per line, indented one level deeper than the
    namedtuple, the closing parenthesis after the last value.
    """

    # Set by ``pprint.PrettyPrinter.__init__`` from ``width`` and ``indent``;
    # typeshed does not declare these private attributes.
    _width: int
    _indent_per_level: int

    def format(
        self, object: Any, context: Dict[int, int], maxlevels: int, level: int
    ) -> Tuple[str, bool, bool]:
        """The one-line representation of ``object``: ``(repr, readable,
        recursive)`` as in ``pprint.PrettyPrinter.format``; namedtuples are
        written ``Name(field=value, ...)`` with their values formatted by this
        printer."""
        if not _is_namedtuple(object):
            return super().format(object, context, maxlevels, level)
        name = type(object).__name__
        if not object:
            return f"{name}()", True, False
        if maxlevels and level >= maxlevels:
            return f"{name}(...)", False, id(object) in context
        objid = id(object)
        if objid in context:
            return f"<Recursion on {name} with id={objid}>", False, True
        context[objid] = 1
        readable, recursive = True, False
        parts = []
        for field, value in zip(type(object)._fields, object):
            text, value_readable, value_recursive = self.format(
                value, context, maxlevels, level + 1
            )
            parts.append(f"{field}={text}")
            readable = readable and value_readable
            recursive = recursive or value_recursive
        del context[objid]
        return f"{name}({', '.join(parts)})", readable, recursive

    def _format(
        self,
        object: Any,
        stream: Any,
        indent: int,
        allowance: int,
        context: Dict[int, int],
        level: int,
    ) -> None:
        if not _is_namedtuple(object):
            super()._format(object, stream, indent, allowance, context, level)
            return
        objid = id(object)
        if objid in context:
            stream.write(f"<Recursion on {type(object).__name__} with id={objid}>")
            self._recursive = True
            self._readable = False
            return
        rep = self._repr(object, context, level)
        if len(rep) <= self._width - indent - allowance or not object:
            stream.write(rep)
            return
        context[objid] = 1
        self.format_namedtuple(object, stream, indent, allowance, context, level + 1)
        del context[objid]

    def format_namedtuple(
        self,
        object: Any,
        stream: Any,
        indent: int,
        allowance: int,
        context: Dict[int, int],
        level: int,
    ) -> None:
        """Write the namedtuple ``object`` to ``stream``.

        Written on one line when that fits in ``width - indent - allowance``
        columns and none of its values needs several lines, otherwise with one
        ``field=value`` per line (see the class docstring).

        Args:
            object (namedtuple): the namedtuple to write.
            stream: a text stream (``write(str)``).
            indent (int): the column at which ``object`` starts.
            allowance (int): columns to leave free after the last line (for
                closing brackets of the enclosing containers).
            context (dict): ids of the containers being written (recursion
                detection), as in ``pprint``.
            level (int): the nesting level of the values of ``object``.
        """
        name = type(object).__name__
        stream.write(name + "(")
        items = list(zip(type(object)._fields, object))
        if items:
            one_line = io.StringIO()
            self.format_namedtuple_items(
                items, one_line, indent + len(name) + 1, allowance + 1, context, level, inline=True
            )
            text = one_line.getvalue()
            if (
                "\n" not in text
                and len(text) <= self._width - indent - len(name) - 1 - allowance - 1
            ):
                stream.write(text)
            else:
                self.format_namedtuple_items(
                    items, stream, indent, allowance + 1, context, level, inline=False
                )
        stream.write(")")

    def format_namedtuple_items(
        self,
        items: Iterable[Tuple[str, Any]],
        stream: Any,
        indent: int,
        allowance: int,
        context: Dict[int, int],
        level: int,
        inline: bool = False,
    ) -> None:
        """Write ``field=value`` items of a namedtuple to ``stream``.

        Args:
            items (iterable[(str, Any)]): the ``(field name, value)`` pairs.
            stream: a text stream (``write(str)``).
            indent (int): with ``inline``, the column at which the first item
                starts; otherwise the column of the namedtuple itself (items
                go one indentation level deeper).
            allowance (int): columns to leave free after the last item.
            context (dict): ids of the containers being written, as in
                ``pprint``.
            level (int): the nesting level of the values.
            inline (bool): if True, items are separated by ``", "`` on one
                line (a value may still take several lines when it does not
                fit); otherwise each item starts a new line.
        """
        items = list(items)
        if inline:
            separator = ", "
            column = indent
        else:
            column = indent + self._indent_per_level
            separator = ",\n" + " " * column
            stream.write("\n" + " " * column)
        last = len(items) - 1
        for i, (field, value) in enumerate(items):
            stream.write(field + "=")
            value_indent = column + len(field) + 1
            self._format(value, stream, value_indent, allowance if i == last else 1, context, level)
            if i != last:
                stream.write(separator)


# ---- colours ----------------------------------------------------------------
_RESET = "\x1b[0m"
_COLOURS = {
    "string": "\x1b[32m",  # green
    "number": "\x1b[36m",  # cyan
    "keyword": "\x1b[35m",  # magenta: True, False, None and other keywords
    "call": "\x1b[33m",  # yellow: a name followed by "(" (class or function)
    "field": "\x1b[34m",  # blue: a name followed by "=" (field / keyword argument)
}


def _token_kinds(text: str) -> List[Tuple[int, int, str]]:
    """``(start offset, end offset, kind)`` of the tokens of ``text`` to
    colour. Tokenizing stops quietly at the first error (a repr that is not
    Python syntax): the rest stays uncoloured."""
    line_starts = [0]
    for line in text.splitlines(keepends=True):
        line_starts.append(line_starts[-1] + len(line))

    def offset(pos: Tuple[int, int]) -> int:
        return line_starts[pos[0] - 1] + pos[1]

    tokens = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            tokens.append(tok)
    except (tokenize.TokenError, SyntaxError):
        pass
    spans = []
    significant = [
        t for t in tokens if t.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT)
    ]
    for i, tok in enumerate(significant):
        nxt = significant[i + 1].string if i + 1 < len(significant) else ""
        if tok.type == tokenize.STRING:
            kind = "string"
        elif tok.type == tokenize.NUMBER:
            kind = "number"
        elif tok.type == tokenize.NAME and keyword.iskeyword(tok.string):
            kind = "keyword"
        elif tok.type == tokenize.NAME and nxt == "(":
            kind = "call"
        elif tok.type == tokenize.NAME and nxt == "=":
            kind = "field"
        else:
            continue
        spans.append((offset(tok.start), offset(tok.end), kind))
    return spans


def pformat_pycolor(obj: Any) -> str:
    """Format ``obj`` with :class:`PrettyPrinter` (default settings) and
    colour it for a terminal.

    ANSI escape sequences colour string and number literals, keywords
    (``True``, ``False``, ``None``), names of called classes or functions and
    field names; removing the sequences gives back exactly
    ``PrettyPrinter().pformat(obj)``. Parts of the text that are not Python
    syntax (``<object at 0x...>`` reprs and the like) are left uncoloured from
    the first token Python cannot read.

    Args:
        obj (Any): the object to format.
    Returns:
        str: the coloured text (no trailing newline).
    """
    text = PrettyPrinter().pformat(obj)
    out = []
    position = 0
    for start, end, kind in _token_kinds(text):
        out.append(text[position:start])
        out.append(_COLOURS[kind] + text[start:end] + _RESET)
        position = end
    out.append(text[position:])
    return "".join(out)
