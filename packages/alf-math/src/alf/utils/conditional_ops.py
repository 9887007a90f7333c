"""Conditional operations: select rows of a nest by a mask and update only
the rows where a condition holds."""

from typing import Any, Callable

import torch

from alf import nest

__all__ = ["conditional_update", "select_from_mask"]


def _check_mask(mask: Any, name: str) -> torch.Tensor:
    if not isinstance(mask, torch.Tensor) or mask.ndim != 1:
        got = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"{name} must be a 1-D tensor; got {got}")
    return mask if mask.dtype == torch.bool else mask != 0


def _check_rows(data: Any, n: int, data_name: str, mask_name: str) -> None:
    for path, leaf in nest.flatten_with_path(data):
        if isinstance(leaf, torch.Tensor) and (leaf.ndim == 0 or leaf.shape[0] != n):
            where = f" at '{path}'" if path else ""
            raise ValueError(
                f"{data_name}{where} must have shape[0] == {mask_name}.shape[0] = {n}; "
                f"got shape {tuple(leaf.shape)}"
            )


def _check_updates(target: Any, updates: Any, k: int) -> None:
    """Each tensor of ``func``'s output must be ``[k, *target.shape[1:]]``."""
    for (path, t), u in zip(nest.flatten_with_path(target), nest.flatten(updates)):
        where = f" at '{path}'" if path else ""
        if not isinstance(u, torch.Tensor):
            raise TypeError(f"func must return tensors; got {type(u).__name__}{where}")
        expected = (k, *t.shape[1:])
        if tuple(u.shape) != expected:
            raise ValueError(
                f"func must return shape [K, *target.shape[1:]] = {expected} for the "
                f"K = {k} selected rows{where}; got {tuple(u.shape)}"
            )


def select_from_mask(data: Any, mask: torch.Tensor) -> Any:
    """Keep the rows ``data[i]`` for which ``mask[i]`` is True (or non-zero).

    Args:
        data (nested Tensor): tensors of shape ``[B, ...]``.
        mask (Tensor): 1-D, shape ``[B]``, bool or numeric.

    Returns:
        nested Tensor of the structure of ``data``; each tensor has shape
        ``[K, ...]`` with ``K`` the number of True entries.

    Raises:
        ValueError: ``mask`` is not 1-D or a tensor's ``shape[0]`` differs
            from ``mask.shape[0]`` (the message names its path).
    """
    mask = _check_mask(mask, "mask")
    _check_rows(data, mask.shape[0], "data", "mask")
    return nest.map_structure(lambda x: x[mask], data)


def conditional_update(
    target: Any, cond: torch.Tensor, func: Callable, *args: Any, **kwargs: Any
) -> Any:
    """Rows ``i`` where ``cond[i]`` is True take ``func(*args[i], **kwargs[i])``;
    the other rows keep ``target[i]``. ``target`` itself is not modified.

    ``func`` runs once, on the selected rows only (the tensors of ``args``
    and ``kwargs`` indexed by ``cond``), and is not called at all when no
    row is selected. Non-tensor leaves of ``args``/``kwargs`` are passed as
    they are. For side effects only, use ``target=()`` and a ``func`` that
    returns ``()``.

    Args:
        target (nested Tensor): tensors of shape ``[B, ...]``.
        cond (Tensor): 1-D bool (or numeric) tensor of shape ``[B]``.
        func (Callable): maps the selected ``(*args, **kwargs)`` (each tensor
            ``[K, ...]``) to a nest with the structure of ``target`` whose
            tensors are ``[K, ...]``.
        *args, **kwargs (nested Tensor): arguments of ``func``, tensors
            ``[B, ...]``.

    Returns:
        nest with the structure and shapes of ``target``; gradients flow to
        ``target`` (unselected rows) and to ``func``'s output (selected rows).

    Raises:
        ValueError: ``cond`` is not 1-D, a tensor's ``shape[0]`` differs from
            ``cond.shape[0]``, or ``func`` returned a nest of another
            structure than ``target`` or a tensor of another shape than
            ``[K, *target.shape[1:]]`` (the message names its path).
        TypeError: ``func`` returned a non-tensor leaf.
    """
    cond = _check_mask(cond, "cond")
    n = cond.shape[0]
    _check_rows(target, n, "target", "cond")
    _check_rows((args, kwargs), n, "args/kwargs", "cond")
    index = torch.nonzero(cond, as_tuple=True)[0]
    if index.numel() == 0:
        return target

    def select(x):
        return x[index] if isinstance(x, torch.Tensor) else x

    updates = func(*nest.map_structure(select, args), **nest.map_structure(select, kwargs))
    nest.assert_same_structure(target, updates)
    _check_updates(target, updates, index.numel())

    def scatter(t, u):
        return t.index_copy(0, index.to(t.device), u.to(t.dtype))

    return nest.map_structure(scatter, target, updates)
