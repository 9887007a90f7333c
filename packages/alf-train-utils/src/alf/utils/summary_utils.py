"""Utility functions for generating summaries.

Every function writes through ``alf.summary`` (tags under the current
``alf.summary.scope``, steps from its global counter) and does nothing, not
even computing the values, when ``alf.summary.should_record_summaries()`` is
false. Arguments are checked before anything is written.
"""

import functools
import os
import time
from typing import Any, Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.distributions as td

import alf.nest
import alf.summary
from alf.utils import dist_utils
from alf.utils._train_checks import check_int

__all__ = [
    "add_mean_hist_summary",
    "add_mean_summary",
    "add_nested_summaries",
    "histogram_continuous",
    "histogram_discrete",
    "record_time",
    "safe_mean_hist_summary",
    "safe_mean_summary",
    "summarize_action",
    "summarize_distribution",
    "summarize_distribution_gradient",
    "summarize_gradients",
    "summarize_loss",
    "summarize_nest",
    "summarize_per_category_loss",
    "summarize_tensor_gradients",
    "summarize_variables",
]


def _summary_wrapper(func: Callable) -> Callable:
    """Run ``func`` only when summaries are recorded (saves computing values
    nobody writes)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if alf.summary.should_record_summaries():
            func(*args, **kwargs)

    return wrapper


def _as_tensor(value: Any, name: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, (bool, int, float, np.number, np.ndarray, np.bool_)):
        return torch.as_tensor(np.asarray(value))
    raise TypeError(f"{name} must be a Tensor; got {type(value).__name__}")


def _floating(t: torch.Tensor) -> torch.Tensor:
    return t if t.dtype.is_floating_point and t.dtype != torch.bfloat16 else t.to(torch.float32)


def _masked(value: Any, mask: Any) -> torch.Tensor:
    """The elements of the tensor ``value`` that the bool tensor ``mask`` (of
    ``value``'s shape) selects, flattened; all of ``value`` when ``mask`` is None."""
    value = _as_tensor(value, "value")
    if mask is None:
        return value
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"mask must be a bool Tensor or None; got {type(mask).__name__}")
    if mask.shape != value.shape:
        raise ValueError(
            f"mask must have the shape of value {list(value.shape)}; got {list(mask.shape)}"
        )
    return value[mask.to(torch.bool)]


# ---- histograms -----------------------------------------------------------
def _bound(value: Any, name: str) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name} must be a single number; got shape {list(value.shape)}")
        value = value.item()
    value = float(np.asarray(value).reshape(()))
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite (or None); got {value}")
    return value


@_summary_wrapper
def histogram_continuous(
    name: str,
    data: torch.Tensor,
    bucket_min: Optional[float] = None,
    bucket_max: Optional[float] = None,
    bucket_count: int = 30,
    step: Optional[Any] = None,
) -> None:
    """Histogram for continuous data with ``bucket_count`` equal buckets.

    Values are clipped to ``[bucket_min, bucket_max]`` so that every value is
    counted (those outside fall into the first or last bucket); NaN values
    are left out. When ``bucket_min == bucket_max`` the range is widened to
    ``[bucket_min - 0.5, bucket_max + 0.5]``.

    Args:
        name (str): name for this summary.
        data (Tensor): values of any shape and real dtype; empty (or all-NaN)
            data writes nothing.
        bucket_min (float|None): lower edge of the first bucket; the smallest
            finite value of ``data`` when None.
        bucket_max (float|None): upper edge of the last bucket; the largest
            finite value of ``data`` when None.
        bucket_count (int): positive number of buckets.
        step (None|int|Tensor): step of the summary; defaults to
            ``alf.summary.get_global_counter()``.
    Raises:
        TypeError: ``bucket_count`` is not an int.
        ValueError: ``bucket_count`` is below 1, a bound is not
            finite, or ``bucket_min > bucket_max``.
    """
    bucket_count = check_int(bucket_count, "bucket_count", 1)
    lo, hi = _bound(bucket_min, "bucket_min"), _bound(bucket_max, "bucket_max")
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"bucket_min must be <= bucket_max; got {lo} > {hi}")
    values = _as_tensor(data, "data").reshape(-1).to("cpu", torch.float64)
    values = values[~torch.isnan(values)]
    finite = values[torch.isfinite(values)]
    if lo is None or hi is None:
        if finite.numel() == 0:
            return
        lo = float(finite.min()) if lo is None else lo
        hi = float(finite.max()) if hi is None else hi
        lo, hi = min(lo, hi), max(lo, hi)
    if values.numel() == 0:
        return
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, int(bucket_count) + 1)
    alf.summary.histogram(name, values.clamp(lo, hi), step=step, bins=edges)


@_summary_wrapper
def histogram_discrete(
    name: str,
    data: torch.Tensor,
    bucket_min: int,
    bucket_max: int,
    step: Optional[Any] = None,
) -> None:
    """Histogram for discrete data: one bucket per integer of
    ``[bucket_min, bucket_max]`` (``bucket_max - bucket_min + 1`` buckets,
    bucket ``k`` spanning ``[k - 0.5, k + 0.5)``); values outside are
    clipped into the first or last bucket.

    Args:
        name (str): name for this summary.
        data (Tensor): integers of any shape; empty data writes nothing.
        bucket_min (int): the smallest bucket.
        bucket_max (int): the largest bucket.
        step (None|int|Tensor): step of the summary; defaults to
            ``alf.summary.get_global_counter()``.
    Raises:
        ValueError: a bound is not an integer, or ``bucket_min > bucket_max``.
    """
    lo, hi = _bound(bucket_min, "bucket_min"), _bound(bucket_max, "bucket_max")
    if lo is None or hi is None or lo != int(lo) or hi != int(hi):
        raise ValueError(
            f"bucket_min and bucket_max must be integers; got {bucket_min!r}, {bucket_max!r}"
        )
    if lo > hi:
        raise ValueError(f"bucket_min must be <= bucket_max; got {int(lo)} > {int(hi)}")
    values = _as_tensor(data, "data").reshape(-1).to("cpu", torch.float64)
    values = values[~torch.isnan(values)]
    if values.numel() == 0:
        return
    edges = np.arange(int(lo), int(hi) + 2, dtype=np.float64) - 0.5
    alf.summary.histogram(name, values.clamp(lo, hi), step=step, bins=edges)


# ---- means ----------------------------------------------------------------
@_summary_wrapper
def add_mean_summary(name: str, value: torch.Tensor) -> None:
    """Generate mean summary of value: the scalar ``name`` holds
    ``value.mean()`` (integers and bools averaged as float32).

    Args:
        name (str): name of the summary.
        value (Tensor): tensor to be summarized, any shape.
    """
    alf.summary.scalar(name, _floating(_as_tensor(value, "value")).mean())


@_summary_wrapper
def add_mean_hist_summary(name: str, value: torch.Tensor) -> None:
    """Generate mean and histogram summary of value: the histogram
    ``name/value`` and the scalar ``name/mean``.

    Args:
        name (str): name of the summary.
        value (Tensor): tensor to be summarized, any shape.
    """
    value = _as_tensor(value, "value")
    alf.summary.histogram(name + "/value", value)
    add_mean_summary(name + "/mean", value)


@_summary_wrapper
def safe_mean_summary(name: str, value: torch.Tensor, mask: Optional[torch.Tensor] = None) -> None:
    """Generate mean summary of value (see ``add_mean_summary``), skipped
    when no element is selected.

    Args:
        name (str): name of the summary.
        value (Tensor): tensor to be summarized.
        mask (bool Tensor): optional mask, the shape of ``value``, selecting
            the elements to average.
    Raises:
        ValueError: ``mask`` has another shape than ``value``.
    """
    value = _masked(value, mask)
    if value.numel() > 0:
        add_mean_summary(name, value)


@_summary_wrapper
def safe_mean_hist_summary(
    name: str, value: torch.Tensor, mask: Optional[torch.Tensor] = None
) -> None:
    """Generate mean and histogram summary of value (see
    ``add_mean_hist_summary``), skipped when no element is selected.

    Args:
        name (str): name of the summary.
        value (Tensor): tensor to be summarized.
        mask (bool Tensor): optional mask, the shape of ``value``, selecting
            the elements to use.
    Raises:
        ValueError: ``mask`` has another shape than ``value``.
    """
    value = _masked(value, mask)
    if value.numel() > 0:
        add_mean_hist_summary(name, value)


# ---- nests ----------------------------------------------------------------
def _nested_leaves(prefix: str, data: Any, out: List[Tuple[str, torch.Tensor]]) -> None:
    if isinstance(data, dict):
        items = [(str(k), data[k]) for k in data]
    elif alf.nest.is_namedtuple(data):
        items = list(zip(data._fields, data))
    elif isinstance(data, (list, tuple)):
        items = [(str(i), v) for i, v in enumerate(data)]
    else:
        items = None
    if items is not None:
        for key, child in items:
            _nested_leaves(f"{prefix}/{key}", child, out)
        return
    if data is None:
        return
    if isinstance(data, (bool, str, bytes)) or not isinstance(
        data, (torch.Tensor, int, float, np.number, np.ndarray)
    ):
        raise TypeError(
            f"data must hold Tensors or numbers; got {type(data).__name__} at {prefix!r}"
        )
    out.append((prefix, _floating(_as_tensor(data, prefix))))


@_summary_wrapper
def add_nested_summaries(prefix: str, data: Any) -> None:
    """Add summary of a nest of data.

    Each leaf at ``a.b`` becomes the scalar ``prefix/a/b``: its value when it
    has one element, otherwise its mean. Empty nests and ``None`` leaves are
    skipped.

    Args:
        prefix (str): the prefix of the names of the summaries.
        data (dict or namedtuple): data to be summarized (lists/tuples inside
            are indexed by position).
    Raises:
        TypeError: ``data`` is not a dict or namedtuple, or a leaf is not a
            Tensor or number (nothing is written then).
    """
    if not (isinstance(data, dict) or alf.nest.is_namedtuple(data)):
        raise TypeError(f"data must be a dict or a namedtuple; got {type(data).__name__}")
    leaves: List[Tuple[str, torch.Tensor]] = []
    _nested_leaves(prefix, data, leaves)
    for tag, value in leaves:
        alf.summary.scalar(tag, value if value.numel() == 1 else value.mean())


@_summary_wrapper
def summarize_nest(prefix: str, nest: Any) -> None:
    """Summarize every tensor of a nest.

    A leaf at path ``p`` (``alf.nest``'s dotted path) with one element is
    written as the scalar ``prefix/p``; a larger one as
    ``add_mean_hist_summary("prefix/p", leaf)`` (``prefix/p/value``,
    ``prefix/p/mean``); empty tensors and ``None`` are skipped. A nest that is
    a single tensor is written under ``prefix``.

    Args:
        prefix (str): the prefix of the names of the summaries.
        nest (nest): tensors (or numbers) to summarize.
    Raises:
        TypeError: a leaf is not a Tensor or number (nothing is written then).
    """
    leaves = []
    for path, leaf in alf.nest.flatten_with_path(nest):
        if leaf is None:
            continue
        if isinstance(leaf, (bool, str, bytes)) or not isinstance(
            leaf, (torch.Tensor, int, float, np.number, np.ndarray)
        ):
            raise TypeError(
                f"nest must hold Tensors or numbers; got {type(leaf).__name__} at "
                f"{path or 'the top level'!r}"
            )
        leaves.append((f"{prefix}/{path}" if path else prefix, _as_tensor(leaf, path)))
    for tag, value in leaves:
        if value.numel() == 1:
            alf.summary.scalar(tag, value)
        elif value.numel() > 1:
            add_mean_hist_summary(tag, value)


# ---- variables and gradients ----------------------------------------------
def _check_name_and_params(name_and_params: Any) -> List[Tuple[str, torch.Tensor]]:
    checked = []
    for i, item in enumerate(name_and_params):
        if (
            not isinstance(item, (tuple, list))
            or len(item) != 2
            or not isinstance(item[0], str)
            or not isinstance(item[1], torch.Tensor)
        ):
            raise TypeError(
                f"name_and_params must hold (str, Parameter) pairs; got {item!r:.80} at index {i}"
            )
        checked.append((item[0], item[1]))
    return checked


@_summary_wrapper
def summarize_variables(
    name_and_params: Sequence[Tuple[str, torch.Tensor]], with_histogram: bool = True
) -> None:
    """Add summaries for variables: for each ``(name, p)`` the scalar
    ``summarize_vars/<name>_value_norm`` (the L2 norm of ``p``) and, with
    ``with_histogram``, the histogram ``summarize_vars/<name>_value``.

    Args:
        name_and_params (list[(str, Parameter)]): e.g.
            ``list(module.named_parameters())``.
        with_histogram (bool): If True, generate histogram.
    Raises:
        TypeError: an item is not a (str, Tensor) pair.
    """
    for var_name, var in _check_name_and_params(name_and_params):
        values = var.detach()
        if with_histogram:
            alf.summary.histogram("summarize_vars/" + var_name + "_value", values)
        alf.summary.scalar("summarize_vars/" + var_name + "_value_norm", _floating(values).norm())


@_summary_wrapper
def summarize_gradients(
    name_and_params: Sequence[Tuple[str, torch.Tensor]], with_histogram: bool = True
) -> None:
    """Add summaries for gradients: for each ``(name, p)`` whose ``p.grad``
    is set, the scalar ``summarize_grads/<name>_gradient_norm`` (the L2 norm
    of ``p.grad``) and, with ``with_histogram``, the histogram
    ``summarize_grads/<name>_gradient``. Parameters without a gradient are
    skipped.

    Args:
        name_and_params (list[(str, Parameter)]): e.g.
            ``list(module.named_parameters())``.
        with_histogram (bool): If True, generate histogram.
    Raises:
        TypeError: an item is not a (str, Tensor) pair.
    """
    for var_name, var in _check_name_and_params(name_and_params):
        if var.grad is None:
            continue
        grad = var.grad.detach()
        if grad.is_sparse:
            grad = grad.coalesce().values()
        if with_histogram:
            alf.summary.histogram("summarize_grads/" + var_name + "_gradient", grad)
        alf.summary.scalar("summarize_grads/" + var_name + "_gradient_norm", _floating(grad).norm())


def summarize_tensor_gradients(
    name: str, tensor: Any, batch_dims: int = 1, clone: bool = False
) -> Any:
    """Summarize the gradient of tensor during backward.

    For each leaf at path ``p`` (tag ``name/p``, or ``name`` for a single
    tensor) that requires grad, a hook writes, when the gradient ``g``
    arrives, the scalars ``<tag>/max_norm``, ``<tag>/min_norm`` and
    ``<tag>/avg_norm``: the max, min and mean over the batch of the L2 norm
    of each sample's gradient (the first ``batch_dims`` dims index samples,
    the rest are flattened). The tags use the summary scope and the global
    step of this call, whenever backward runs. Nothing is hooked (and
    ``tensor`` is returned as is) when summaries are not recorded now.

    Args:
        name (str): name of the summary.
        tensor (nested Tensor): tensor of which the gradient is to be
            summarized; leaves that do not require grad are skipped.
        batch_dims (int): first so many dimensions are treated as batch
            dimensions.
        clone (bool): If True, tensor will first be cloned. This is useful if
            tensor is used in multiple places and you only want to summarize
            the gradient from one place. If False, the gradient will be the
            sum from all gradients backpropped to tensor.
    Returns:
        tensor or cloned tensor: the cloned tensor should be used for the
        downstream calculations.
    Raises:
        ValueError: ``batch_dims`` is negative or exceeds a leaf's rank.
        TypeError: ``batch_dims`` is not an int, or a leaf is not a Tensor.
    """
    batch_dims = check_int(batch_dims, "batch_dims", 0)
    leaves = alf.nest.flatten_with_path(tensor)
    for path, leaf in leaves:
        if not isinstance(leaf, torch.Tensor):
            raise TypeError(
                f"tensor must hold Tensors; got {type(leaf).__name__} at {path or 'the top level'!r}"
            )
        if leaf.ndim < batch_dims:
            raise ValueError(
                f"batch_dims ({batch_dims}) exceeds the rank of the tensor at "
                f"{path or 'the top level'!r} (shape {list(leaf.shape)})"
            )
    if not alf.summary.should_record_summaries():
        return tensor
    if clone:
        tensor = alf.nest.map_structure(torch.clone, tensor)
    scope = alf.summary.scope("")  # re-entered by the hooks: the current scope
    step = int(alf.summary.get_global_counter())

    def _hook(grad: torch.Tensor, tag: str) -> None:
        samples = int(np.prod(grad.shape[:batch_dims])) if batch_dims else 1
        if samples == 0:
            return
        norms = _floating(grad.detach()).reshape(samples, -1).norm(dim=1)
        with scope, alf.summary.record_if(True):
            alf.summary.scalar(tag + "/max_norm", norms.max(), step=step)
            alf.summary.scalar(tag + "/min_norm", norms.min(), step=step)
            alf.summary.scalar(tag + "/avg_norm", norms.mean(), step=step)

    for path, leaf in alf.nest.flatten_with_path(tensor):
        if leaf.requires_grad:
            leaf.register_hook(functools.partial(_hook, tag=f"{name}/{path}" if path else name))
    return tensor


def summarize_distribution_gradient(
    name: str, distribution: Any, batch_dims: int = 1, clone: bool = False
) -> Any:
    """Summarize the gradient of the parameters of distribution during
    backward (``summarize_tensor_gradients`` on the parameters of
    ``dist_utils.distributions_to_params``, tags ``name/<param path>``, e.g.
    ``name/loc``).

    Args:
        name (str): name of the summary.
        distribution (nested Distribution): distribution of which the
            gradient is to be summarized.
        batch_dims (int): first so many dimensions are treated as batch
            dimensions.
        clone (bool): If True, distribution will first be cloned (rebuilt
            from cloned parameters). This is useful if distribution is used
            in multiple places and you only want to summarize the gradient
            from one place. If False, the gradient will be the sum from all
            gradients backpropped to distribution.
    Returns:
        distribution or cloned distribution: what should be used for the
        downstream calculations.
    Raises:
        ValueError: unsupported distribution type, or a negative ``batch_dims``.
        TypeError: ``batch_dims`` is not an int.
    """
    params = dist_utils.distributions_to_params(distribution)
    if not clone:
        summarize_tensor_gradients(name, params, batch_dims, clone=False)
        return distribution
    if not alf.summary.should_record_summaries():
        check_int(batch_dims, "batch_dims", 0)
        return distribution
    spec = dist_utils.extract_spec(distribution)
    params = summarize_tensor_gradients(name, params, batch_dims, clone=True)
    return dist_utils.params_to_distributions(params, spec)


# ---- actions and distributions --------------------------------------------
def _finite_or_none(value: Any) -> Optional[float]:
    value = float(value)
    return value if np.isfinite(value) else None


@_summary_wrapper
def summarize_action(actions: Any, action_specs: Any, name: str = "action") -> None:
    """Generate histogram summaries for actions.

    Actions are matched with their specs in flattening order (leaf ``i``):
    a discrete spec gives ``histogram_discrete("name/i", action, min, max)``
    over all its elements (the smallest ``minimum`` and largest ``maximum``;
    without bounds, the data's); a continuous spec of shape ``()`` or
    ``(A,)`` gives ``histogram_continuous("name/i/a", ...)`` for each
    dimension ``a`` between its bounds (infinite or missing bounds: the
    data's). Actions whose spec rank is more than 1 are skipped.

    Args:
        actions (nested Tensor): actions to be summarized, ``[B] + spec.shape``
            (any number of outer dims).
        action_specs (nested TensorSpec): spec for the actions.
        name (str): name of the summary.
    Raises:
        ValueError: ``actions`` and ``action_specs`` differ in structure.
    """
    alf.nest.assert_same_structure(actions, action_specs)
    for i, (action, spec) in enumerate(
        zip(alf.nest.flatten(actions), alf.nest.flatten(action_specs))
    ):
        if len(spec.shape) > 1:
            continue
        bounded = spec.is_bounded()
        if action.numel() == 0:
            continue
        if spec.is_discrete():
            first = int(np.min(spec.minimum)) if bounded else int(action.min())
            last = int(np.max(spec.maximum)) if bounded else int(action.max())
            histogram_discrete(f"{name}/{i}", action, bucket_min=first, bucket_max=last)
            continue
        dim = 1 if len(spec.shape) == 0 else int(spec.shape[-1])
        flat = action.detach().reshape(-1, dim)
        if bounded:
            lows = np.broadcast_to(np.asarray(spec.minimum, np.float64), (dim,))
            highs = np.broadcast_to(np.asarray(spec.maximum, np.float64), (dim,))
        for a in range(dim):
            lo = _finite_or_none(lows[a]) if bounded else None
            hi = _finite_or_none(highs[a]) if bounded else None
            histogram_continuous(f"{name}/{i}/{a}", flat[:, a], bucket_min=lo, bucket_max=hi)


def _per_dim(t: torch.Tensor) -> torch.Tensor:
    t = t.detach()
    return t.reshape(-1, 1) if t.ndim <= 1 else t.reshape(-1, t.shape[-1])


@_summary_wrapper
def summarize_distribution(name: str, distributions: Any) -> None:
    """Generate summary for distributions.

    For the leaf at path ``p`` (``name_ = name/p``, or ``name`` for a single
    leaf), per dimension ``a`` of its last axis:

    * Normal, StableCauchy (any Cauchy), Beta, also wrapped by Independent and
      TransformedDistribution (the base distribution is summarized):
      ``histogram_continuous("name__loc/a", ...)`` of the mean (Cauchy: loc)
      and ``"name__scale/a"`` of the standard deviation (Cauchy: scale);
    * Tensor: ``histogram_continuous("name_/a", dist[..., a])``.

    Unsupported distributions are ignored (no error reported).

    Args:
        name (str): name of the summary.
        distributions (nested td.distribution.Distribution): distributions to
            be summarized.
    """
    for path, dist in alf.nest.flatten_with_path(distributions):
        name_ = f"{name}/{path}" if path else name
        if isinstance(dist, torch.Tensor):
            values = _per_dim(dist)
            for a in range(values.shape[1]):
                histogram_continuous(f"{name_}/{a}", values[:, a])
            continue
        if not isinstance(dist, td.Distribution):
            continue
        try:
            base = dist_utils.get_base_dist(dist)
        except NotImplementedError:
            continue
        if isinstance(base, td.Cauchy):
            loc, scale = base.loc, base.scale
        elif isinstance(base, (td.Normal, td.Beta)):
            loc, scale = base.mean, base.stddev
        else:
            continue
        loc, scale = _per_dim(loc), _per_dim(scale)
        for a in range(loc.shape[1]):
            histogram_continuous(f"{name_}_loc/{a}", loc[:, a])
            histogram_continuous(f"{name_}_scale/{a}", scale[:, a])


# ---- losses ---------------------------------------------------------------
@_summary_wrapper
def summarize_loss(loss_info: Any) -> None:
    """Add summary about loss_info: the scalar ``loss`` (the mean of
    ``loss_info.loss`` when it has several elements; skipped when it is a
    tuple, e.g. ``()``), and ``add_nested_summaries("loss", loss_info.extra)``
    (``loss/<field>``...) when ``extra`` is not empty.

    Args:
        loss_info (LossInfo): ``loss_info.extra`` must be a namedtuple (or a
            dict), or empty.
    Raises:
        TypeError: ``loss_info`` has no ``loss``/``extra`` fields, or
            ``extra`` is something else than a namedtuple, dict or empty.
    """
    if not (hasattr(loss_info, "loss") and hasattr(loss_info, "extra")):
        raise TypeError(f"loss_info must be a LossInfo; got {type(loss_info).__name__}")
    extra = loss_info.extra
    has_extra = not (extra is None or (isinstance(extra, tuple) and len(extra) == 0))
    if has_extra and not (isinstance(extra, dict) or alf.nest.is_namedtuple(extra)):
        raise TypeError(
            f"loss_info.extra must be a namedtuple, a dict or empty; got {type(extra).__name__}"
        )
    leaves: List[Tuple[str, torch.Tensor]] = []
    if has_extra:
        _nested_leaves("loss", extra, leaves)
    if not isinstance(loss_info.loss, tuple):
        loss = _floating(_as_tensor(loss_info.loss, "loss_info.loss"))
        alf.summary.scalar("loss", loss if loss.numel() == 1 else loss.mean())
    for tag, value in leaves:
        alf.summary.scalar(tag, value if value.numel() == 1 else value.mean())


@_summary_wrapper
def summarize_per_category_loss(
    loss_info: Any, summarize_count: bool = False, label_names: Optional[List[str]] = None
) -> None:
    """Add summary about each category of the unaggregated ``loss_info.loss``
    of shape ``(T, B)`` or ``(B,)``, partitioned by ``loss_info.batch_label``
    (integers, the same shape): the scalar ``per_category_loss/<label>`` is
    the mean loss of the samples of that label, and with ``summarize_count``
    the scalar ``per_category_count/<label>`` is their number in this
    ``loss_info``. Only labels present are written. ``<label>`` is
    ``label_names[label]`` or the label number. Skipped when ``batch_label``
    is absent (``()``/None).

    Args:
        loss_info (LossInfo): do per-category summarization if
            ``loss_info.batch_label`` is present, and skip otherwise.
        summarize_count (bool): whether to summarize the number of samples for
            each category as well.
        label_names (Optional[List[str]]): the names of each category to be
            used in tensorboard summary. The category number will be used if
            label_names is None.
    Raises:
        ValueError: ``batch_label`` does not have the shape of ``loss``, or a
            label has no name in ``label_names``; TypeError: non-integer labels.
    """
    labels = getattr(loss_info, "batch_label", ())
    if labels is None or (isinstance(labels, tuple) and len(labels) == 0):
        return
    labels = _as_tensor(labels, "loss_info.batch_label")
    loss = _floating(_as_tensor(loss_info.loss, "loss_info.loss"))
    if labels.dtype.is_floating_point or labels.dtype.is_complex:
        raise TypeError(f"loss_info.batch_label must hold integers; got {labels.dtype}")
    if labels.shape != loss.shape:
        raise ValueError(
            f"loss_info.batch_label must have the shape of loss_info.loss {list(loss.shape)}; "
            f"got {list(labels.shape)}"
        )
    present = [int(v) for v in torch.unique(labels.cpu())]
    if label_names is not None:
        missing = [v for v in present if not 0 <= v < len(label_names)]
        if missing:
            raise ValueError(
                f"label_names has {len(label_names)} names; labels {missing} have none"
            )
    for label in present:
        mask = labels == label
        tag = str(label_names[label]) if label_names is not None else str(label)
        alf.summary.scalar("per_category_loss/" + tag, loss[mask].mean())
        if summarize_count:
            alf.summary.scalar("per_category_count/" + tag, int(mask.sum()))


# ---- timing ---------------------------------------------------------------
class record_time:
    """A context manager for recording the time.

    It records the average time spent under the context between two
    summaries: the scalar ``tag`` (in seconds, under the summary scope of
    the exit) written with ``average_over_summary_interval=True``.

    Example::

        with record_time("time/calc"):
            long_function()
    """

    def __init__(self, tag: str, cuda_sync: Optional[bool] = None):
        """Create a context object for recording time.

        By default, record_time does ``torch.cuda.synchronize()`` before
        entering and after leaving the context (when CUDA has been
        initialized) to measure the time of queued GPU work accurately. This
        can be disabled by setting the environment variable
        ``ALF_RECORD_TIME_SYNC`` to ``0``, or with ``cuda_sync=False``.

        Args:
            tag (str): the summary tag for the time.
            cuda_sync (bool|None): whether to synchronize CUDA; None reads
                ``ALF_RECORD_TIME_SYNC`` (default on).
        Raises:
            TypeError: ``tag`` is not a str.
        """
        if not isinstance(tag, str):
            raise TypeError(f"tag must be a str; got {type(tag).__name__}")
        self._tag = tag
        if cuda_sync is None:
            cuda_sync = os.environ.get("ALF_RECORD_TIME_SYNC", "1").strip() != "0"
        self._cuda_sync = bool(cuda_sync)
        self._start: List[float] = []

    @property
    def cuda_sync(self) -> bool:
        """Whether CUDA is synchronized around the timed block."""
        return self._cuda_sync

    def _sync(self) -> None:
        if self._cuda_sync and torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize()

    def __enter__(self) -> "record_time":
        self._sync()
        self._start.append(time.perf_counter())
        return self

    def __exit__(self, *exc: Any) -> None:
        self._sync()
        elapsed = time.perf_counter() - self._start.pop()
        alf.summary.scalar(self._tag, elapsed, average_over_summary_interval=True)
