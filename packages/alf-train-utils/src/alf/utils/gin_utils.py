"""Gin-config helpers: the "inoperative" configuration.

gin records, for every configurable called, the parameter values the call
took from the configuration or from the defaults (the *operative*
configuration, ``gin.operative_config_str()``). The *inoperative*
configuration is the complement among the bindings: parameter values that were
configured but never used, because the configurable was never called in a
matching scope, or because every call passed that argument explicitly.
Writing both lets a reader of an experiment folder see which settings of a
config file had no effect.

This module reads gin's registry and configuration tables (``gin.config``
internals, stable since gin-config 0.5).
"""

from typing import Any, Dict, List, Tuple

import gin.config as _gin_config

from alf.utils._train_checks import check_int

__all__ = ["inoperative_config_str"]

_Key = Tuple[str, str]  # (scope string, full selector), gin's key of a binding table


def _scope_parts(scope: str) -> List[str]:
    return scope.split("/") if scope else []


def _is_used(
    scope: str,
    selector: str,
    param: str,
    bindings: Dict[_Key, Dict[str, Any]],
    operative: Dict[_Key, Dict[str, Any]],
) -> bool:
    """Whether the binding ``scope/selector.param`` supplied a value to some
    recorded call.

    A call made in the active scope ``a/b`` reads the bindings of the scopes
    ``""``, ``"a"`` and ``"a/b"`` in that order, later ones overriding (gin's
    scope inheritance). The binding in ``scope`` was therefore used by a call
    recorded under scope ``S`` iff the call used ``param`` from the
    configuration or defaults (it is in the operative record of ``S``),
    ``scope`` is a prefix of ``S``, and no longer prefix of ``S`` binds
    ``param`` too (which would have overridden it).
    """
    parts = _scope_parts(scope)
    for (op_scope, op_selector), op_params in operative.items():
        if op_selector != selector or param not in op_params:
            continue
        op_parts = _scope_parts(op_scope)
        if op_parts[: len(parts)] != parts:
            continue
        shadowed = any(
            param in bindings.get(("/".join(op_parts[:n]), selector), {})
            for n in range(len(parts) + 1, len(op_parts) + 1)
        )
        if not shadowed:
            return True
    return False


def _inoperative_bindings() -> Dict[_Key, Dict[str, Any]]:
    """The bound parameter values that no recorded call used, in gin's
    ``{(scope, selector): {param: value}}`` layout."""
    with _gin_config._OPERATIVE_CONFIG_LOCK:
        operative = {key: dict(params) for key, params in _gin_config._OPERATIVE_CONFIG.items()}
    bindings = _gin_config._CONFIG
    result: Dict[_Key, Dict[str, Any]] = {}
    for (scope, selector), params in bindings.items():
        unused = {
            name: value
            for name, value in params.items()
            if not _is_used(scope, selector, name, bindings, operative)
        }
        if unused:
            result[(scope, selector)] = unused
    return result


def inoperative_config_str(max_line_length: int = 80, continuation_indent: int = 4) -> str:
    """Retrieve the "inoperative" configuration as a config string.

    The format is gin's own (``gin.operative_config_str()``'s): imports, then
    macros, then a ``# Parameters for <selector>:`` section per configurable,
    sorted by configurable name; values that cannot be written as gin literals
    are left out. The string parses back with ``gin.parse_config``. It is empty
    (or holds only gin ``import`` lines) when every binding was used.

    Args:
        max_line_length (int): A (soft) constraint on the maximum length of a
            line in the formatted string.
        continuation_indent (int): The indentation for continued lines.
    Returns:
        str: A config string capturing all parameter values configured but not
        used by the current program (override by explicit call).
    Raises:
        TypeError: an argument is not an int.
        ValueError: ``max_line_length`` is not positive, ``continuation_indent``
            is negative.
    """
    max_line_length = check_int(max_line_length, "max_line_length", 1)
    continuation_indent = check_int(continuation_indent, "continuation_indent", 0)
    return _gin_config._config_str(_inoperative_bindings(), max_line_length, continuation_indent)
