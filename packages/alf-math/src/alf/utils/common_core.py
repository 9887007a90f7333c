"""Generic helpers that the reference documents in ``alf.utils.common``.

They do not depend on anything ALF-specific (environments, configs, the
trainer), so they live here, in the lowest package, where every other
distribution can use them; ``alf.utils.common`` (alf-train-utils)
re-exports them under their documented names.
"""

import copy
import logging
import os
import sys
import traceback
import types
import weakref
from typing import Any, Callable, Iterable, List, Optional, Tuple

import numpy as np
import torch
import torch.distributions as td
import torch.nn as nn

from alf import nest
from alf.tensor_specs import TensorSpec
from alf.utils.spec_utils import zeros_from_spec

__all__ = [
    "abs_path",
    "add_method",
    "as_list",
    "call_stack",
    "cast_transformer",
    "check_numerics",
    "detach",
    "expand_dims_as",
    "flattened_size",
    "get_all_parameters",
    "get_initial_policy_state",
    "image_scale_transformer",
    "info",
    "info_once",
    "reset_state_if_necessary",
    "tuplify2d",
    "warning",
    "warning_once",
]

_logger = logging.getLogger("alf")


# --------------------------------------------------------------------------
# Small conversions


def as_list(x: Any) -> list:
    """``None -> []``, ``list -> x``, ``tuple -> list(x)``, anything else
    ``-> [x]``."""
    if x is None:
        return []
    if isinstance(x, list):
        return x
    if isinstance(x, tuple):
        return list(x)
    return [x]


def tuplify2d(x: Any) -> Tuple[Any, Any]:
    """``x`` if it is a tuple of length 2, ``(x, x)`` if it is not a tuple.

    Raises:
        ValueError: ``x`` is a tuple whose length is not 2.
    """
    if isinstance(x, tuple):
        if len(x) != 2:
            raise ValueError(f"x must be a tuple of length 2 or a non-tuple; got {x!r}")
        return x
    return (x, x)


def abs_path(path: str) -> str:
    """The absolute path of ``path`` with ``~`` expanded."""
    return os.path.abspath(os.path.expanduser(path))


def add_method(cls: type) -> Callable[[Callable], Callable]:
    """Decorator adding the decorated function to ``cls`` as a method of the
    same name; returns the function unchanged."""

    def decorator(func: Callable) -> Callable:
        setattr(cls, func.__name__, func)
        return func

    return decorator


def call_stack() -> List[str]:
    """The current call stack as a list of strings (outermost first,
    excluding this function), one ``"file:line in function"`` per frame."""
    frames = traceback.extract_stack()[:-1]
    return [f"{f.filename}:{f.lineno} in {f.name}" for f in frames]


# --------------------------------------------------------------------------
# Tensors and nests


def expand_dims_as(x: torch.Tensor, y: torch.Tensor, end: bool = True) -> torch.Tensor:
    """Add size-1 dims to ``x`` until it has ``y.ndim`` dims, so that it
    broadcasts against ``y``.

    Args:
        x (Tensor): source, shape ``S`` with ``len(S) <= y.ndim``.
        y (Tensor): target; only its ``ndim`` is used.
        end (bool): add the dims at the end (``S + (1,) * k``) if True, else
            at the beginning (``(1,) * k + S``).

    Returns:
        A view of ``x`` with ``y.ndim`` dims.

    Raises:
        ValueError: ``x`` has more dims than ``y``.
    """
    k = y.ndim - x.ndim
    if k < 0:
        raise ValueError(
            f"x must not have more dims than y; got x.shape={tuple(x.shape)}, "
            f"y.shape={tuple(y.shape)}"
        )
    if end:
        return x.reshape(*x.shape, *([1] * k))
    return x.reshape(*([1] * k), *x.shape)


def reset_state_if_necessary(state: Any, initial_state: Any, reset_mask: Any) -> Any:
    """Replace the rows of ``state`` where ``reset_mask`` is True by the rows
    of ``initial_state``.

    Args:
        state (nested Tensor): current states, each ``[B, ...]``.
        initial_state (nested Tensor): initial states, same structure/shapes.
        reset_mask (Tensor | nested Tensor): bool ``[B]``, or a nest of those
            with the structure of ``state``.

    Returns:
        nested Tensor: ``where(reset_mask, initial_state, state)`` per leaf.

    Raises:
        ValueError: the nests differ in structure (the message names where).
    """
    nest.assert_same_structure(state, initial_state)
    if isinstance(reset_mask, torch.Tensor):
        masks = nest.map_structure(lambda _: reset_mask, state)
    else:
        nest.assert_same_structure(state, reset_mask)
        masks = reset_mask

    def reset(s, i, m):
        return torch.where(expand_dims_as(m.to(torch.bool), s), i, s)

    return nest.map_structure(reset, state, initial_state, masks)


def get_initial_policy_state(batch_size: int, policy_state_spec: Any) -> Any:
    """Zero initial policy states: one ``[batch_size, *spec.shape]`` tensor
    of ``spec.dtype`` per spec in ``policy_state_spec`` (a nest)."""
    return zeros_from_spec(policy_state_spec, batch_size)


def flattened_size(spec: TensorSpec) -> np.int64:
    """Number of elements of one item of ``spec`` (``np.prod(spec.shape)``)."""
    return np.prod(tuple(spec.shape), dtype=np.int64)


def check_numerics(nested: Any) -> None:
    """Check that every tensor in ``nested`` is finite.

    Non-tensor leaves are ignored.

    Raises:
        AssertionError: a tensor holds NaN or Inf (the message names its path).
    """
    for path, leaf in nest.flatten_with_path(nested):
        if isinstance(leaf, torch.Tensor) and not bool(torch.isfinite(leaf).all()):
            where = f"'{path}'" if path else "the tensor"
            raise AssertionError(f"check_numerics: {where} holds NaN or Inf")


def cast_transformer(observation: Any, dtype: torch.dtype = torch.float32) -> Any:
    """Cast every tensor of the ``observation`` nest to ``dtype`` (other
    leaves unchanged)."""

    def cast(x):
        return x.to(dtype) if isinstance(x, torch.Tensor) else x

    return nest.map_structure(cast, observation)


def image_scale_transformer(
    observation: Any, fields: Optional[Iterable[str]] = None, min: float = -1.0, max: float = 1.0
) -> Any:
    """Scale uint8 images linearly from ``[0, 255]`` to ``[min, max]``
    (float32): ``x / 255 * (max - min) + min``.

    Args:
        observation (Tensor | nested Tensor): the observation.
        fields (list[str] | None): dotted paths (``"A.B.C"``) of the images in
            a nested ``observation``; None means ``observation`` itself is the
            image.
        min (float): value that 0 maps to.
        max (float): value that 255 maps to.

    Returns:
        ``observation`` with the selected images scaled.

    Raises:
        ValueError: a selected field names nothing or is not a uint8 tensor.
    """

    def scale(path):
        def f(image):
            if not isinstance(image, torch.Tensor) or image.dtype != torch.uint8:
                got = image.dtype if isinstance(image, torch.Tensor) else type(image).__name__
                raise ValueError(
                    f"image at '{path or 'observation'}' must be a uint8 tensor; got {got}"
                )
            return image.to(torch.float32) * ((max - min) / 255.0) + min

        return f

    if fields is None:
        return scale("")(observation)
    # transform_nest copies the containers it changes, so a bad field leaves
    # the caller's observation as it was.
    for field in fields:
        observation = nest.transform_nest(observation, field, scale(field))
    return observation


def _detach_object(obj: Any, memo: dict) -> Any:
    """A shallow copy of a distribution/transform with every tensor attribute
    detached (recursively through base distributions and transforms)."""
    if id(obj) in memo:
        return memo[id(obj)]
    new = copy.copy(obj)
    memo[id(obj)] = new
    for name, value in vars(obj).items():
        if isinstance(value, weakref.ref):
            # a transform's cached inverse points at the original; rebuild lazily
            setattr(new, name, None)
        elif name == "_cached_x_y":
            setattr(new, name, (None, None))
        else:
            setattr(new, name, _detach_value(value, memo))
    return new


def _detach_value(value: Any, memo: dict) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, (td.Distribution, td.Transform)):
        return _detach_object(value, memo)
    if isinstance(value, (list, tuple)) and any(
        isinstance(v, (torch.Tensor, td.Distribution, td.Transform)) for v in value
    ):
        items = [_detach_value(v, memo) for v in value]
        return type(value)(items) if isinstance(value, list) else tuple(items)
    return value


def detach(nests: Any) -> Any:
    """Detach the tensors and ``torch.distributions`` objects of a nest.

    A distribution is shallow-copied with every tensor it holds (parameters,
    cached properties, those of base distributions and transforms) detached;
    the original is unchanged. Other leaves are returned as they are.

    Args:
        nests (nested Tensor | Distribution): what to detach.

    Returns:
        nest of the same structure, cut from the autograd graph.
    """
    return nest.map_structure(lambda x: _detach_value(x, {}), nests)


_OPAQUE = (
    type,
    types.ModuleType,
    types.FunctionType,
    types.MethodType,
    types.BuiltinFunctionType,
)


def get_all_parameters(obj: Any) -> List[Tuple[str, nn.Parameter]]:
    """All parameters reachable from ``obj`` through tuples, lists, dicts,
    sets, ``nn.Module`` children and object attributes, each once.

    Args:
        obj (object): where to search.

    Returns:
        list of ``(path, parameter)``; ``path`` is dotted (``"net.fc.weight"``,
        ``"layers.0.bias"``) and names the first route found.
    """
    found: List[Tuple[str, nn.Parameter]] = []
    seen_params = set()
    visited = set()

    def visit(x, path):
        if isinstance(x, nn.Parameter):
            if id(x) not in seen_params:
                seen_params.add(id(x))
                found.append((path, x))
            return
        if isinstance(x, (torch.Tensor, str, bytes, int, float, bool, type(None))):
            return
        if id(x) in visited:
            return
        visited.add(id(x))
        prefix = f"{path}." if path else ""
        if isinstance(x, nn.Module):
            for name, p in x.named_parameters(recurse=False):
                visit(p, prefix + name)
            for name, child in x.named_children():
                visit(child, prefix + name)
            children = {
                k: v
                for k, v in vars(x).items()
                if k not in ("_parameters", "_buffers", "_modules") and not k.startswith("__")
            }
        elif isinstance(x, dict):
            children = x
        elif isinstance(x, (list, tuple, set, frozenset)):
            children = dict(enumerate(x))
        elif hasattr(x, "__dict__") and not isinstance(x, _OPAQUE):
            children = vars(x)
        else:
            return
        for key, child in children.items():
            visit(child, f"{prefix}{key}")

    visit(obj, "")
    return found


# --------------------------------------------------------------------------
# Logging


def info(msg: str, *args: Any) -> None:
    """Log ``msg % args`` at INFO level (logger ``"alf"``)."""
    _logger.info(msg, *args, stacklevel=2)


def warning(msg: str, *args: Any) -> None:
    """Log ``msg % args`` at WARNING level (logger ``"alf"``)."""
    _logger.warning(msg, *args, stacklevel=2)


_logged_once: set = set()


def _log_once(level: int, msg: str, args: Tuple[Any, ...]) -> None:
    caller = sys._getframe(2)
    site = (caller.f_code.co_filename, caller.f_lineno)
    if site in _logged_once:
        return
    _logged_once.add(site)
    _logger.log(level, msg, *args, stacklevel=3)


def info_once(msg: str, *args: Any) -> None:
    """Log ``msg % args`` at INFO level only the first time this call site
    (file and line) runs."""
    _log_once(logging.INFO, msg, args)


def warning_once(msg: str, *args: Any) -> None:
    """Log ``msg % args`` at WARNING level only the first time this call
    site (file and line) runs."""
    _log_once(logging.WARNING, msg, args)
