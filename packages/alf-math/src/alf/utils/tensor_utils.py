"""Collection of tensor utility functions: norms and clipping of nests of
tensors, reverse cumulative ops, tensor extension, image coordinate helpers,
covariance and explained variance.

Shape legend: ``B`` batch, ``C`` channels, ``H``/``W`` image height/width,
``D`` embedding size.
"""

import math
import numbers
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from alf import nest

__all__ = [
    "BatchSquash",
    "append_coordinate",
    "clip_by_global_norm",
    "clip_by_norms",
    "cov",
    "explained_variance",
    "global_norm",
    "reverse_cumprod",
    "reverse_cumsum",
    "scale_gradient",
    "spatial_broadcast",
    "tensor_extend",
    "tensor_extend_new_dim",
    "tensor_extend_zero",
    "tensor_prepend",
    "tensor_prepend_zero",
    "to_tensor",
]

Scalar = Union[float, torch.Tensor]


class BatchSquash:
    """Flatten the ``batch_dims`` leading dimensions of a tensor into one and
    restore them afterwards (for networks that accept a single batch dim).

    ``flatten`` caches the leading shape; ``unflatten`` uses that cache, so
    each ``flatten`` must precede the matching ``unflatten``.

    Args:
        batch_dims (int): number of leading batch dimensions (``>= 0``).

    Raises:
        ValueError: ``batch_dims`` is negative.
    """

    def __init__(self, batch_dims: int):
        if not isinstance(batch_dims, (int, np.integer)) or batch_dims < 0:
            raise ValueError(f"batch_dims must be a non-negative int; got {batch_dims!r}")
        self._batch_dims = int(batch_dims)
        self._batch_shape: Optional[torch.Size] = None

    def flatten(self, tensor: torch.Tensor) -> torch.Tensor:
        """``[b1, ..., bk, *rest]`` -> ``[b1 * ... * bk, *rest]`` (``k = batch_dims``).

        Raises:
            ValueError: ``tensor`` has fewer than ``batch_dims`` dimensions.
        """
        if tensor.ndim < self._batch_dims:
            raise ValueError(
                f"tensor must have at least batch_dims={self._batch_dims} dims; got "
                f"shape {tuple(tensor.shape)}"
            )
        self._batch_shape = tensor.shape[: self._batch_dims]
        if self._batch_dims == 1:
            return tensor
        return tensor.reshape(-1, *tensor.shape[self._batch_dims :])

    def unflatten(self, tensor: torch.Tensor) -> torch.Tensor:
        """``[N, *rest]`` -> ``[*cached_batch_shape, *rest]``.

        Raises:
            RuntimeError: ``flatten`` was never called.
            ValueError: ``tensor.shape[0]`` does not match the cached batch shape.
        """
        if self._batch_shape is None:
            raise RuntimeError("BatchSquash.unflatten called before flatten")
        expected = int(np.prod(self._batch_shape, dtype=np.int64))
        if tensor.ndim == 0 or tensor.shape[0] != expected:
            raise ValueError(
                f"tensor must have shape[0] == {expected} (batch shape "
                f"{tuple(self._batch_shape)}); got shape {tuple(tensor.shape)}"
            )
        if self._batch_dims == 1:
            return tensor
        return tensor.reshape(*self._batch_shape, *tensor.shape[1:])


def append_coordinate(im: torch.Tensor) -> torch.Tensor:
    """Append two coordinate channels to a channel-first image batch.

    Channel ``C`` holds the y coordinate (varying along ``H``) and channel
    ``C + 1`` the x coordinate (varying along ``W``), as ALF (so CoordConv
    models trained with ALF keep working). The coordinates are evenly spaced
    from -1 with ALF's ``arange`` spacing: along a dim of size ``L``,
    ``-1 + 2 i / L`` for ``i = 0 .. L - 1`` (the last is ``1 - 2 / L``).

    Args:
        im (Tensor): shape ``[B, C, H, W]``, any real dtype.

    Returns:
        Tensor of shape ``[B, C + 2, H, W]``: ``im.dtype`` for a floating
        image, torch's default float dtype for an integer or bool image
        (which cannot hold -1).

    Raises:
        ValueError: ``im`` is not rank 4.
    """
    if im.ndim != 4:
        raise ValueError(f"im must have shape [B, C, H, W]; got {tuple(im.shape)}")
    b, _, h, w = im.shape
    dtype = im.dtype if im.dtype.is_floating_point else torch.get_default_dtype()
    # -1 + 2 i / L from integer i: exactly L values (an arange with the
    # float step 2 / L can give L + 1 through rounding)
    ys = torch.arange(h, dtype=dtype, device=im.device).mul_(2.0 / h).sub_(1.0)
    xs = torch.arange(w, dtype=dtype, device=im.device).mul_(2.0 / w).sub_(1.0)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    coords = torch.stack([grid_y, grid_x]).unsqueeze(0).expand(b, 2, h, w)
    return torch.cat([im.to(dtype), coords], dim=1)


def spatial_broadcast(z: torch.Tensor, im_shape: Sequence[int]) -> torch.Tensor:
    """Broadcast an embedding over an image's spatial grid.

    Args:
        z (Tensor): shape ``[..., D]``.
        im_shape (tuple[int]): an image shape whose last two entries are
            ``H`` and ``W``.

    Returns:
        Tensor of shape ``[..., D, H, W]`` (an expanded view of ``z``).

    Raises:
        ValueError: ``im_shape`` has fewer than two entries or ``z`` is a scalar.
    """
    if len(im_shape) < 2:
        raise ValueError(f"im_shape must end with (H, W); got {tuple(im_shape)}")
    if z.ndim == 0:
        raise ValueError("z must have shape [..., D]; got a scalar tensor")
    h, w = int(im_shape[-2]), int(im_shape[-1])
    return z[..., None, None].expand(*z.shape, h, w)


# --------------------------------------------------------------------------
# Norms and clipping


def _leaf_error(leaf: Any) -> Optional[str]:
    if not isinstance(leaf, torch.Tensor):
        return f"must hold tensors or None; got {type(leaf).__name__}"
    if not (leaf.dtype.is_floating_point or leaf.dtype.is_complex):
        return f"must hold floating tensors; got {leaf.dtype}"
    return None


def _tensor_leaves(tensors: Any, name: str) -> List[torch.Tensor]:
    """The non-None leaves of ``tensors``, checked to be floating tensors
    (``TypeError`` naming the path of the first bad leaf)."""
    leaves = [leaf for leaf in nest.flatten(tensors) if leaf is not None]
    if any(_leaf_error(leaf) for leaf in leaves):
        for path, leaf in nest.flatten_with_path(tensors):
            error = None if leaf is None else _leaf_error(leaf)
            if error:
                where = f" at '{path}'" if path else ""
                raise TypeError(f"{name} {error}{where}")
    return leaves


def _check_clip_norm(clip_norm: Scalar) -> None:
    """``clip_norm`` must be a positive scalar. A CUDA tensor's value is not
    read (that would synchronize the device); its shape is still checked."""
    if isinstance(clip_norm, torch.Tensor):
        if clip_norm.numel() != 1:
            raise ValueError(f"clip_norm must be a scalar; got shape {tuple(clip_norm.shape)}")
        if clip_norm.device.type != "cpu":
            return
        value = float(clip_norm)
    elif isinstance(clip_norm, numbers.Real):
        value = float(clip_norm)
    else:
        raise TypeError(f"clip_norm must be a float or a Tensor; got {type(clip_norm).__name__}")
    if not value > 0:
        raise ValueError(f"clip_norm must be > 0; got {value}")


def _check_in_place(leaves: List[torch.Tensor]) -> None:
    if torch.is_grad_enabled() and any(t.is_leaf and t.requires_grad for t in leaves):
        raise ValueError(
            "in_place=True cannot modify leaf tensors that require grad; use "
            "in_place=False or run under torch.no_grad()"
        )


def _groups(leaves: List[torch.Tensor]) -> List[Tuple[List[int], List[torch.Tensor]]]:
    """``[(indices, tensors), ...]``: the leaves grouped by device and dtype
    (each group is one fused foreach kernel)."""
    groups: Dict[Tuple[torch.device, torch.dtype], List[int]] = {}
    for i, t in enumerate(leaves):
        groups.setdefault((t.device, t.dtype), []).append(i)
    return [(idx, [leaves[i] for i in idx]) for idx in groups.values()]


def _group_norms(group: List[torch.Tensor]) -> torch.Tensor:
    """L2 norms of a same-device, same-dtype group as one 1-D tensor (real,
    at least float32), from one fused ``torch._foreach_norm`` call.

    Half-precision tensors are reduced in float32 so that neither the sum of
    squares nor the result is rounded to 16 bits."""
    dtype = group[0].dtype
    real = dtype.to_real() if dtype.is_complex else dtype
    acc = torch.promote_types(real, torch.float32)
    if acc == real:
        norms = torch._foreach_norm(group)
    else:
        norms = torch._foreach_norm(group, 2, dtype=acc)
    return torch.stack(norms)


def _single_group(tensors: Any) -> Optional[List[torch.Tensor]]:
    """``tensors`` as a list when it is a plain list or tuple of floating
    tensors (no ``None``) of one dtype on the CPU, the usual list of
    gradients; else None. Checked with a few set comprehensions, in a
    fraction of the time of walking the nest and grouping the leaves."""
    kind = type(tensors)
    if (kind is not list and kind is not tuple) or not tensors:
        return None
    if not {type(t) for t in tensors} <= _TENSOR_TYPES:
        return None
    dtypes = {t.dtype for t in tensors}
    if len(dtypes) != 1:
        return None
    dtype = dtypes.pop()
    if not (dtype.is_floating_point or dtype.is_complex):
        return None  # the general path raises, naming the leaf
    if {t.is_cpu for t in tensors} != {True}:
        return None
    return list(tensors)


_TENSOR_TYPES = frozenset({torch.Tensor, torch.nn.Parameter})


def _global_norm_of(leaves: List[torch.Tensor]) -> torch.Tensor:
    if not leaves:
        return torch.zeros(())
    device = leaves[0].device
    partial = [
        torch.linalg.vector_norm(_group_norms(group)).to(device) for _, group in _groups(leaves)
    ]
    if len(partial) == 1:
        return partial[0]
    dtype = partial[0].dtype
    for n in partial[1:]:
        dtype = torch.promote_types(dtype, n.dtype)
    return torch.linalg.vector_norm(torch.stack([n.to(dtype) for n in partial]))


def global_norm(tensors: Any) -> torch.Tensor:
    """``sqrt(sum_t ||t||_2^2)`` over all tensors of a nest; ``None`` leaves
    are ignored.

    Args:
        tensors (nested Tensor): floating tensors (any shapes) or ``None``.

    Returns:
        0-dim Tensor (float32, or float64 if any input is float64) on the
        device of the first tensor; 0 when there is no tensor.

    Raises:
        TypeError: a leaf is neither ``None`` nor a floating tensor.
    """
    return _global_norm_of(_tensor_leaves(tensors, "tensors"))


def _mul(group: List[torch.Tensor], factors: Any, in_place: bool) -> List[torch.Tensor]:
    """``t * f`` for a same-device, same-dtype group (``factors`` is one
    0-dim tensor or a list of them), as one fused foreach kernel."""
    if in_place:
        torch._foreach_mul_(group, factors)
        return group
    if isinstance(factors, torch.Tensor) and factors.requires_grad and torch.is_grad_enabled():
        # torch's foreach_mul backward fails ("inconsistent range for
        # TensorList output") when the scalar tensor needs a gradient
        return [t * factors for t in group]
    return list(torch._foreach_mul(group, factors))


def _clip_factor(norm: torch.Tensor, clip: torch.Tensor) -> torch.Tensor:
    """``clip / max(norm, clip)``, written so that ``clip = inf`` gives 1 (no
    clipping) rather than ``inf / inf = NaN``; a NaN norm still gives NaN.
    The division never sees ``norm < clip`` (e.g. 0), whose gradient would
    be NaN."""
    unclipped = norm <= clip
    return torch.where(unclipped, torch.ones_like(norm), clip / torch.where(unclipped, clip, norm))


def _warn_nan_norm() -> None:
    """The warning of a NaN global norm, attributed to the caller of
    ``clip_by_global_norm`` (which calls the factor function that calls this)."""
    warnings.warn(
        "clip_by_global_norm: the global norm is NaN; the tensors are left unclipped",
        RuntimeWarning,
        stacklevel=4,
    )


def _global_clip_factor(
    norm: torch.Tensor, clip_norm: Scalar, device: torch.device
) -> torch.Tensor:
    """``clip_by_global_norm``'s factor on ``device``, in at least float32
    whatever ``norm``'s dtype (an integer norm would truncate ``clip_norm``, a
    float16 one round it); 1 for a NaN norm (as ALF), with a warning when the
    norm is on the CPU (a CUDA norm is not read: that would synchronise the
    device)."""
    acc = torch.promote_types(norm.dtype, torch.float32)
    norm_t = norm.to(device=device, dtype=acc)
    clip = torch.as_tensor(clip_norm, dtype=acc, device=norm_t.device)
    factor = _clip_factor(norm_t, clip)
    if norm_t.device.type != "cpu":
        return torch.where(torch.isnan(norm_t), torch.ones_like(factor), factor)
    if bool(torch.isnan(norm_t)):
        _warn_nan_norm()
        return torch.ones_like(factor)
    return factor


def _cpu_clip_factor(norm: torch.Tensor, clip_norm: float) -> torch.Tensor:
    """``_global_clip_factor`` of a CPU ``norm`` (float32 or float64, from
    ``_group_norms``) and a positive Python ``clip_norm``, with fewer
    operations: ``clip / max(norm, clip)`` is exactly 1 when ``norm <= clip``;
    ``clip_norm = inf`` gives 1; a NaN norm gives 1 with the warning."""
    if math.isnan(norm.item()):
        _warn_nan_norm()
        return torch.ones((), dtype=norm.dtype)
    if math.isinf(clip_norm):
        return torch.ones((), dtype=norm.dtype)
    clip = torch.tensor(clip_norm, dtype=norm.dtype)
    return torch.div(clip, torch.maximum(norm, clip))


def _repack(tensors: Any, leaves: Sequence[Optional[torch.Tensor]]) -> Any:
    it = iter(leaves)
    return nest.map_structure(lambda x: None if x is None else next(it), tensors)


def clip_by_global_norm(
    tensors: Any,
    clip_norm: Scalar,
    use_norm: Optional[Scalar] = None,
    in_place: bool = False,
) -> Tuple[Any, torch.Tensor]:
    """Scale all tensors of a nest by one factor so that their global norm is
    at most ``clip_norm``::

        t <- t * clip_norm / max(global_norm, clip_norm)
        global_norm = sqrt(sum_t ||t||_2^2)

    Tensors are untouched when ``global_norm <= clip_norm``, and, as ALF,
    when the global norm is NaN (a ``RuntimeWarning`` is issued for a norm on
    the CPU; for a CUDA norm the warning would cost a device synchronisation,
    so none is issued). ``None`` leaves are ignored (and stay ``None``). The norms and the scaling use fused
    ``torch._foreach_*`` kernels (one per device and dtype), so clipping
    hundreds of tensors costs a few kernel launches, not hundreds.

    Args:
        tensors (nested Tensor): floating tensors or ``None``.
        clip_norm (float | Tensor): positive clipping threshold (``inf``
            clips nothing).
        use_norm (float | Tensor | None): a precomputed global norm to use
            instead of computing it.
        in_place (bool): if True, scale the input tensors themselves (e.g.
            gradients held by an optimizer). Leaf tensors that require grad
            cannot be modified in place.

    Returns:
        tuple: ``(clipped_tensors, global_norm)``: a nest with the structure of
        ``tensors`` (the input tensors when ``in_place``) and the global norm
        as a 0-dim tensor (``use_norm`` when given).

    Raises:
        TypeError: a leaf is neither ``None`` nor a floating tensor, or
            ``clip_norm`` is not a number/tensor.
        ValueError: ``clip_norm <= 0``, or ``in_place`` with a leaf tensor
            that requires grad.
    """
    single = _single_group(tensors)
    leaves = single if single is not None else _tensor_leaves(tensors, "tensors")
    _check_clip_norm(clip_norm)
    if in_place:
        _check_in_place(leaves)
    if use_norm is None:
        if single is not None:
            norm = torch.linalg.vector_norm(_group_norms(leaves))
        else:
            norm = _global_norm_of(leaves)
    else:
        norm = torch.as_tensor(use_norm)
    if not leaves:
        return tensors, norm
    if single is not None and use_norm is None and isinstance(clip_norm, (float, int)):
        # the usual call (CPU gradients, a plain clip_norm): fewest dispatches
        factor = _cpu_clip_factor(norm, clip_norm)
    else:
        factor = _global_clip_factor(norm, clip_norm, leaves[0].device)
    if single is not None:  # one group: no regrouping, no repacking
        if factor.dtype != leaves[0].dtype:
            factor = factor.to(dtype=leaves[0].dtype)
        scaled_list = _mul(leaves, factor, in_place)
        if in_place:
            return tensors, norm
        return (scaled_list if type(tensors) is list else tuple(scaled_list)), norm
    scaled: List[Optional[torch.Tensor]] = [None] * len(leaves)
    for idx, group in _groups(leaves):
        group_factor = factor.to(device=group[0].device, dtype=group[0].dtype)
        for i, t in zip(idx, _mul(group, group_factor, in_place)):
            scaled[i] = t
    if in_place:
        return tensors, norm
    return _repack(tensors, scaled), norm


def clip_by_norms(tensors: Any, clip_norm: Scalar, in_place: bool = False) -> Any:
    """Scale each tensor of a nest so that its own L2 norm is at most
    ``clip_norm``: ``t <- t * clip_norm / max(||t||_2, clip_norm)``.

    ``None`` leaves are ignored (and stay ``None``).

    Args:
        tensors (nested Tensor): floating tensors or ``None``.
        clip_norm (float | Tensor): positive clipping threshold (``inf``
            clips nothing).
        in_place (bool): if True, scale the input tensors themselves. Leaf
            tensors that require grad cannot be modified in place.

    Returns:
        nest with the structure of ``tensors`` (the input tensors when
        ``in_place``).

    Raises:
        TypeError: a leaf is neither ``None`` nor a floating tensor.
        ValueError: ``clip_norm <= 0``, or ``in_place`` with a leaf tensor
            that requires grad.
    """
    leaves = _tensor_leaves(tensors, "tensors")
    _check_clip_norm(clip_norm)
    if in_place:
        _check_in_place(leaves)
    if not leaves:
        return tensors
    scaled: List[Optional[torch.Tensor]] = [None] * len(leaves)
    for idx, group in _groups(leaves):
        norms = _group_norms(group)
        clip = torch.as_tensor(clip_norm, dtype=norms.dtype, device=norms.device)
        factors = _clip_factor(norms, clip).to(group[0].dtype)
        for i, t in zip(idx, _mul(group, list(factors.unbind()), in_place)):
            scaled[i] = t
    if in_place:
        return tensors
    return _repack(tensors, scaled)


# --------------------------------------------------------------------------
# Statistics


def cov(data: torch.Tensor, rowvar: bool = False) -> torch.Tensor:
    """Unbiased sample covariance matrix (as ``numpy.cov``), or a batch of
    them for 3-D data (as ALF).

    Args:
        data (Tensor): 1-D ``[N]`` (one variable, N observations), 2-D, or a
            3-D batch ``[B, N, D]`` (``[B, D, N]`` with ``rowvar``).
        rowvar (bool): if True each row is a variable and each column an
            observation (``[D, N]``); otherwise each column is a variable
            (``[N, D]``).

    Returns:
        Tensor of shape ``[D, D]``, squeezed (a scalar for one variable), or
        ``[B, D, D]`` for 3-D data (not squeezed); ``data.dtype`` for
        floating data, torch's default float dtype for integer or bool data.

    Raises:
        ValueError: ``data`` is not 1-D, 2-D or 3-D or has fewer than 2
            observations.
    """
    if data.ndim not in (1, 2, 3):
        raise ValueError(f"data must be 1-D, 2-D or 3-D; got shape {tuple(data.shape)}")
    if not (data.dtype.is_floating_point or data.dtype.is_complex):
        data = data.to(torch.get_default_dtype())
    if data.ndim == 3:
        x = data if rowvar else data.transpose(1, 2)  # [B, D, N]
        n = x.shape[2]
        if n < 2:
            raise ValueError(f"data must hold at least 2 observations; got {n}")
        x = x - x.mean(dim=2, keepdim=True)
        return x @ x.transpose(1, 2).conj() / (n - 1)
    x = data.reshape(1, -1) if data.ndim == 1 else (data if rowvar else data.t())
    n = x.shape[1]
    if n < 2:
        raise ValueError(f"data must hold at least 2 observations; got {n}")
    x = x - x.mean(dim=1, keepdim=True)
    return (x @ x.t().conj() / (n - 1)).squeeze()


def explained_variance(
    ypred: torch.Tensor,
    y: torch.Tensor,
    valid_mask: Optional[torch.Tensor] = None,
    dim: Optional[int] = None,
) -> torch.Tensor:
    """Fraction of the variance of ``y`` that ``ypred`` explains:
    ``1 - Var[y - ypred] / Var[y]``.

    ``1`` is a perfect prediction, ``0`` is no better than predicting the
    mean, below 0 is worse. Variances are population variances over the
    valid entries; the values at invalid entries are never read (they may be
    NaN or infinite). Where ``Var[y] == 0`` the result is 0. Half-precision
    inputs are reduced in float32 (their sums of squares overflow float16).

    Args:
        ypred (Tensor): prediction, same shape as ``y``.
        y (Tensor): target.
        valid_mask (Tensor | None): same shape as ``y``; entries where it is
            False/0 are ignored.
        dim (int | None): dimension to reduce; ``None`` reduces all.

    Returns:
        Tensor: a scalar when ``dim`` is None, else ``y`` with ``dim`` reduced.

    Raises:
        ValueError: shapes of ``ypred``/``valid_mask`` differ from ``y``.
    """
    if ypred.shape != y.shape:
        raise ValueError(
            f"ypred must have the shape of y {tuple(y.shape)}; got {tuple(ypred.shape)}"
        )
    if valid_mask is not None and valid_mask.shape != y.shape:
        raise ValueError(
            f"valid_mask must have the shape of y {tuple(y.shape)}; got {tuple(valid_mask.shape)}"
        )
    half = y.dtype if y.dtype in (torch.float16, torch.bfloat16) else None
    if half is not None:
        ypred, y = ypred.float(), y.float()
    if dim is None:
        ypred, y = ypred.reshape(-1), y.reshape(-1)
        valid_mask = None if valid_mask is None else valid_mask.reshape(-1)
        dim = 0
    if valid_mask is None:
        weight = torch.ones_like(y)
    else:
        weight = valid_mask.to(y.dtype)
    count = weight.sum(dim=dim, keepdim=True).clamp_min(1)

    def var(x):
        if valid_mask is not None:
            x = torch.where(weight != 0, x, torch.zeros_like(x))
        mean = (x * weight).sum(dim=dim, keepdim=True) / count
        return (((x - mean) ** 2) * weight).sum(dim=dim, keepdim=True) / count

    var_y = var(y)
    ratio = var(y - ypred) / torch.where(var_y > 0, var_y, torch.ones_like(var_y))
    ev = torch.where(var_y > 0, 1 - ratio, torch.zeros_like(var_y)).squeeze(dim)
    return ev if half is None else ev.to(half)


# --------------------------------------------------------------------------
# Cumulative ops, gradient scaling, extension


def reverse_cumsum(x: torch.Tensor, dim: int) -> torch.Tensor:
    """``out[i] = sum_{j >= i} x[j]`` along ``dim``; same shape as ``x``."""
    return torch.flip(torch.cumsum(torch.flip(x, [dim]), dim), [dim])


def reverse_cumprod(x: torch.Tensor, dim: int) -> torch.Tensor:
    """``out[i] = prod_{j >= i} x[j]`` along ``dim``; same shape as ``x``."""
    return torch.flip(torch.cumprod(torch.flip(x, [dim]), dim), [dim])


def scale_gradient(tensor: torch.Tensor, scale: Scalar, clone_input: bool = True) -> torch.Tensor:
    """Multiply the gradient flowing back through ``tensor`` by ``scale``
    (the forward value is unchanged).

    Args:
        tensor (Tensor): a tensor that requires grad.
        scale (float | Tensor): factor applied to the gradient of ``tensor``.
        clone_input (bool): if True, scale only the gradient through a clone
            of ``tensor`` (other uses of ``tensor`` are unaffected); if False,
            register the hook on ``tensor`` itself (every use is scaled).

    Returns:
        The (cloned) tensor carrying the scaling hook. A clone made with grad
        mode off (``torch.no_grad()``) carries no gradient, hence no hook.

    Raises:
        ValueError: ``tensor`` does not require grad.
    """
    if not tensor.requires_grad:
        raise ValueError("tensor must require grad to scale its gradient; got requires_grad=False")
    output = tensor.clone() if clone_input else tensor
    if output.requires_grad:
        output.register_hook(lambda grad: grad * scale)
    return output


def _check_slice(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.ndim == 0 or y.shape != x.shape[1:]:
        raise ValueError(
            f"y must have shape x.shape[1:] = {tuple(x.shape[1:])}; got {tuple(y.shape)} "
            f"(x has shape {tuple(x.shape)})"
        )


def _check_not_scalar(x: torch.Tensor) -> None:
    if x.ndim == 0:
        raise ValueError(f"x must have at least one dimension; got shape {tuple(x.shape)}")


def tensor_extend(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Append the slice ``y`` to ``x`` along dim 0.

    Args:
        x (Tensor): shape ``[N, ...]``.
        y (Tensor): shape ``x.shape[1:]``.

    Returns:
        Tensor of shape ``[N + 1, ...]``.

    Raises:
        ValueError: ``y.shape != x.shape[1:]``.
    """
    _check_slice(x, y)
    return torch.cat([x, y.unsqueeze(0).to(x.dtype)])


def tensor_prepend(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Prepend the slice ``y`` to ``x`` along dim 0.

    Args:
        x (Tensor): shape ``[N, ...]``.
        y (Tensor): shape ``x.shape[1:]``.

    Returns:
        Tensor of shape ``[N + 1, ...]``.

    Raises:
        ValueError: ``y.shape != x.shape[1:]``.
    """
    _check_slice(x, y)
    return torch.cat([y.unsqueeze(0).to(x.dtype), x])


def tensor_extend_zero(x: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Append a slice of zeros to ``x`` along ``dim``.

    Args:
        x (Tensor): at least 1-D.
        dim (int): in ``[-x.ndim, x.ndim - 1]``.

    Returns:
        Tensor of shape ``(*x.shape[:dim], x.shape[dim] + 1, *x.shape[dim+1:])``.

    Raises:
        ValueError: ``x`` is a scalar or ``dim`` is out of range.
    """
    _check_not_scalar(x)
    if not -x.ndim <= dim < x.ndim:
        raise ValueError(f"dim must be in [{-x.ndim}, {x.ndim - 1}]; got {dim}")
    shape = list(x.shape)
    shape[dim] = 1
    return torch.cat([x, x.new_zeros(shape)], dim=dim)


def tensor_prepend_zero(x: torch.Tensor) -> torch.Tensor:
    """Prepend a slice of zeros to ``x`` along dim 0.

    Returns:
        Tensor of shape ``(x.shape[0] + 1, *x.shape[1:])``.

    Raises:
        ValueError: ``x`` is a scalar.
    """
    _check_not_scalar(x)
    return torch.cat([x.new_zeros((1, *x.shape[1:])), x])


def tensor_extend_new_dim(x: torch.Tensor, dim: int, n: int) -> torch.Tensor:
    """Insert a new dimension of size ``n`` at ``dim``, replicating ``x``.

    Args:
        x (Tensor): any tensor.
        dim (int): position of the new dimension, in ``[-x.ndim, x.ndim]``;
            a negative ``dim`` follows the documented formula with Python
            slicing, i.e. the new dim goes before ``x``'s dim ``dim``
            (position ``x.ndim + dim``; ``-1`` inserts before the last dim,
            unlike ``unsqueeze(-1)``).
        n (int): number of replicas (``>= 0``).

    Returns:
        Tensor of shape ``(*x.shape[:dim], n, *x.shape[dim:])`` (an expanded
        view of ``x``: clone it before writing into it).

    Raises:
        ValueError: ``n < 0`` or ``dim`` out of range.
    """
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative int; got {n!r}")
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"dim must be an int; got {type(dim).__name__}")
    if not -x.ndim <= dim <= x.ndim:
        raise ValueError(f"dim must be in [{-x.ndim}, {x.ndim}]; got {dim}")
    dim = int(dim) + x.ndim if dim < 0 else int(dim)
    return x.unsqueeze(dim).expand(*x.shape[:dim], int(n), *x.shape[dim:])


def to_tensor(data: Any, dtype: Optional[torch.dtype] = None) -> torch.Tensor:
    """Convert array-like data (list, tuple, ndarray, scalar, tensor) to a
    tensor; non-tensor data goes to torch's default device, and Python
    floats become torch's default float dtype.

    Args:
        data (array like): the data.
        dtype (torch.dtype | None): dtype of the result; inferred if None.

    Returns:
        Tensor (shares memory with ``data`` when possible; an ndarray with
        negative strides, e.g. from ``np.flip``, is copied).
    """
    if isinstance(data, torch.Tensor):
        return data if dtype is None else data.to(dtype)
    if isinstance(data, np.ndarray) and any(stride < 0 for stride in data.strides):
        data = data.copy()  # torch cannot view memory with negative strides
    return torch.as_tensor(data, dtype=dtype)
