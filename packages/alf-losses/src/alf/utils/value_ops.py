"""Various functions related to calculating values: discounted returns,
generalized advantage estimation and importance ratios.

Shape legend: ``T`` steps per trajectory, ``B`` trajectories, ``Q`` quantiles
of a value distribution, ``R`` trailing reward dims (multi-dimensional
rewards: rewards and values ``[T, B, *R]`` while step types and discounts stay
``[T, B]`` and apply to every reward dim, as in ALF). Inputs are time major (``[T, B]``) unless
``time_major=False`` says they are ``[B, T]``; ``[T]`` (a single trajectory)
is accepted too.

Episode boundaries follow ALF's ``TimeStep`` conventions: ``rewards[t]`` and
``discounts[t]`` are received on arriving at step ``t``; ``discounts[t]`` is 0
after a terminal step and 1 otherwise (including time limits). When
``step_types[t] == StepType.LAST`` the next step ``t + 1`` starts a new
episode, so nothing computed for step ``t`` looks beyond it.

``discounted_return`` and ``generalized_advantage_estimation`` are backward
linear recurrences ``x[t] = a[t] x[t + 1] + b[t]``; they are solved in float64
with ``O(log T)`` vectorized tensor ops (see ``_losses_scan``) rather than one
Python step per time step, and the result is cast to the dtype of ``values``.
"""

from typing import Any, Optional, Tuple

import torch

import alf.summary
from alf import nest
from alf.data_structures import StepType
from alf.utils import dist_utils, math_ops
from alf.utils._losses_scan import (
    column_blocks,
    row_blocks,
    scratch_size,
    solve_backward_recurrence_,
    workspace,
)
from alf.utils._math_checks import is_real

__all__ = [
    "action_importance_ratio",
    "discounted_return",
    "generalized_advantage_estimation",
    "one_step_discounted_return",
]

_LAST = int(StepType.LAST)
_CLIPPING_MODES = ("double_sided", "capping")


# --------------------------------------------------------------------------
# Argument checks


def _check_inputs(
    rewards: Any, values: Any, step_types: Any, discounts: Any, time_major: bool
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Validate the four sequences and return them time major, each with a
    batch dim: step types and discounts ``[T, B]`` followed by singleton dims
    up to the rank of the rewards ``[T, B, *R]`` (``R`` the trailing reward
    dims, often none), values ``[T, B, *R]`` or ``[T, B, *R, Q]``."""
    for name, x in (
        ("rewards", rewards),
        ("values", values),
        ("step_types", step_types),
        ("discounts", discounts),
    ):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor; got {type(x).__name__}")
    layout = "[T, B]" if time_major else "[B, T]"
    if step_types.ndim not in (1, 2):
        raise ValueError(
            f"step_types must have shape {layout} or [T]; got {tuple(step_types.shape)}"
        )
    if discounts.shape != step_types.shape:
        raise ValueError(
            f"discounts must have the shape of step_types {tuple(step_types.shape)}; "
            f"got {tuple(discounts.shape)}"
        )
    if rewards.shape[: step_types.ndim] != step_types.shape:
        raise ValueError(
            f"rewards must have the shape of step_types {tuple(step_types.shape)}, optionally "
            f"followed by reward dims; got {tuple(rewards.shape)}"
        )
    if values.shape[: rewards.ndim] != rewards.shape or values.ndim > rewards.ndim + 1:
        raise ValueError(
            f"values must have the shape of rewards {tuple(rewards.shape)}, optionally "
            f"followed by n_quantiles; got {tuple(values.shape)}"
        )
    if not values.is_floating_point():
        raise TypeError(f"values must be a floating point tensor; got {values.dtype}")
    if step_types.ndim == 1:
        rewards, values, step_types, discounts = (
            x.unsqueeze(1) for x in (rewards, values, step_types, discounts)
        )
    elif not time_major:
        rewards, values, step_types, discounts = (
            x.transpose(0, 1) for x in (rewards, values, step_types, discounts)
        )
    if rewards.shape[0] < 2:
        raise ValueError(
            f"the sequence length (time dim of rewards, values, step_types and discounts) "
            f"must be at least 2; got {rewards.shape[0]}"
        )
    extra = rewards.ndim - step_types.ndim
    if extra:
        # broadcast over the reward dims as ALF does (views, no copies)
        step_types = step_types.reshape(*step_types.shape, *(1,) * extra)
        discounts = discounts.reshape(*discounts.shape, *(1,) * extra)
    return rewards, values, step_types, discounts


def _restore_layout(
    result: torch.Tensor, step_types: torch.Tensor, time_major: bool
) -> torch.Tensor:
    """Undo the layout change of ``_check_inputs`` on a ``[T-1, B, ...]`` result."""
    if step_types.ndim == 1:
        return result.squeeze(1)
    if not time_major:
        return result.transpose(0, 1)
    return result


# --------------------------------------------------------------------------
# Returns and advantages


def discounted_return(
    rewards: torch.Tensor,
    values: torch.Tensor,
    step_types: torch.Tensor,
    discounts: torch.Tensor,
    time_major: bool = True,
) -> torch.Tensor:
    """Computes discounted return for the first T-1 steps.

    The difference from ``tf_agents.utils.value_ops`` is that the accumulated
    discounted reward is replaced by the value at ``is_last`` steps:

    .. math::

        Q_t = \\sum_{t'=t}^T \\gamma^{t'-t} r_{t'} + \\gamma^{T-t+1} final\\_value.

    As a recursion (``d`` the discounts, ``v`` the values):
    ``Q[T-1] = v[T-1]``; for ``t < T-1``, ``Q[t] = v[t]`` if
    ``step_types[t] == LAST``, else ``Q[t] = r[t+1] + d[t+1] * Q[t+1]``.

    Args:
        rewards (Tensor): ``[T, B]`` (or ``[T]``), float, or ``[T, B, *R]``
            (``[T, *R]``) for multi-dimensional rewards.
        values (Tensor): the shape of ``rewards``, or that followed by ``Q``
            (``[T, B, Q]``, ``[T, Q]``, ``[T, B, *R, Q]``) for quantiles of
            value distributions.
        step_types (Tensor): ``[T, B]`` (or ``[T]``), int, ``StepType`` values.
        discounts (Tensor): ``[T, B]`` (or ``[T]``), float.
        time_major (bool): False means the tensors are ``[B, T, ...]``.

    Returns:
        The returns, detached, dtype of ``values``: ``[T-1, B]`` (or
        ``[T-1]``, ``[T-1, B, *R, Q]``: the shape of ``values`` with ``T-1``
        steps); ``[B, T-1, ...]`` when ``time_major`` is False.

    Raises:
        TypeError: an input is not a tensor, or ``values`` is not floating.
        ValueError: shapes disagree or ``T < 2``.
    """
    r, v, st, d = _check_inputs(rewards, values, step_types, discounts, time_major)
    with torch.no_grad():
        result = _scan_by_blocks(_return_coefficients, r, v, st, d, None, v[-1].to(torch.float64))
    return _restore_layout(result, step_types, time_major)


def generalized_advantage_estimation(
    rewards: torch.Tensor,
    values: torch.Tensor,
    step_types: torch.Tensor,
    discounts: torch.Tensor,
    td_lambda: float = 1.0,
    time_major: bool = True,
) -> torch.Tensor:
    """Computes generalized advantage estimation (GAE) for the first T-1 steps.

    Schulman et al., "High-Dimensional Continuous Control Using Generalized
    Advantage Estimation", https://arxiv.org/abs/1506.02438.

    The difference from ``tf_agents.utils.value_ops`` is that the accumulated
    TD error is reset to 0 at ``is_last`` steps. As a recursion
    (``d`` the discounts, ``v`` the values, ``A[T-1] = 0``)::

        delta[t] = r[t+1] + d[t+1] * v[t+1] - v[t]
        A[t] = 0                                         if step_types[t] == LAST
        A[t] = delta[t] + td_lambda * d[t+1] * A[t+1]    otherwise

    Args:
        rewards (Tensor): ``[T, B]`` (or ``[T]``), float, or ``[T, B, *R]``
            (``[T, *R]``) for multi-dimensional rewards.
        values (Tensor): the shape of ``rewards``, or that followed by ``Q``
            for quantiles (rewards, discounts and step types apply to every
            quantile).
        step_types (Tensor): ``[T, B]`` (or ``[T]``), int, ``StepType`` values.
        discounts (Tensor): ``[T, B]`` (or ``[T]``), float.
        td_lambda (float): in ``[0, 1]``; trades bias for variance.
        time_major (bool): False means the tensors are ``[B, T]``.

    Returns:
        The advantages, detached, dtype of ``values``: the shape of
        ``values`` with ``T-1`` steps (``[T-1, B]``, ``[T-1]``,
        ``[T-1, B, *R, Q]``); ``[B, T-1, ...]`` when ``time_major`` is False.

    Raises:
        TypeError: an input is not a tensor, or ``values`` is not floating.
        ValueError: shapes disagree, ``T < 2`` or ``td_lambda`` is outside
            ``[0, 1]``.
    """
    if not is_real(td_lambda) or not 0.0 <= float(td_lambda) <= 1.0:
        raise ValueError(f"td_lambda must be a number in [0, 1]; got {td_lambda!r}")
    r, v, st, d = _check_inputs(rewards, values, step_types, discounts, time_major)
    with torch.no_grad():
        result = _scan_by_blocks(_advantage_coefficients, r, v, st, d, float(td_lambda), None)
    return _restore_layout(result, step_types, time_major)


def one_step_discounted_return(
    rewards: torch.Tensor,
    values: torch.Tensor,
    step_types: torch.Tensor,
    discounts: torch.Tensor,
) -> torch.Tensor:
    """Calculate the one step discounted return for the first T-1 steps.

    ``return[t] = r[t+1] + d[t+1] * v[t+1]`` if step ``t`` is not the last
    step of its episode; otherwise ``return[t] = d[t] * v[t]``.

    Args:
        rewards (Tensor): ``[T, B]`` (or ``[T]``), time major, float, or
            ``[T, B, *R]`` for multi-dimensional rewards.
        values (Tensor): the shape of ``rewards``, or that followed by ``Q``
            for quantiles of value distributions.
        step_types (Tensor): ``[T, B]`` (or ``[T]``), int.
        discounts (Tensor): ``[T, B]`` (or ``[T]``), float.

    Returns:
        The returns, detached: ``[T-1, B]`` (or ``[T-1]``, ``[T-1, B, Q]``).

    Raises:
        TypeError: an input is not a tensor, or ``values`` is not floating.
        ValueError: shapes disagree or ``T < 2``.
    """
    r, v, st, d = _check_inputs(rewards, values, step_types, discounts, True)
    with torch.no_grad():
        if v.ndim > r.ndim:
            r, st, d = r.unsqueeze(-1), st.unsqueeze(-1), d.unsqueeze(-1)
        discounted = d * v
        result = torch.where(st[:-1] == _LAST, discounted[:-1], r[1:] + discounted[1:])
    return _restore_layout(result.to(values.dtype), step_types, True)


def _not_last(st, keep):
    """Write ``keep = 0. where st == LAST else 1.`` (float64) for integer step
    types, as ``min(1, |st - LAST|)``: cheaper than a comparison and two
    masked fills, and exact for integers."""
    keep.copy_(st).sub_(_LAST).abs_().clamp_(max=1.0)


def _return_coefficients(r, v, st, d, keep, a, b, v64, _):
    """Write ``a``, ``b`` of the discounted return recurrence for one block.

    ``r, v, st, d`` hold ``T' + 1`` steps; ``keep``, ``a``, ``b`` are
    ``T'``-step float64 buffers and ``v64`` a ``T' + 1``-step one. (Every op
    has operands of one dtype: mixed-dtype ops would allocate converted
    copies behind the scenes.)
    """
    _not_last(st[:-1], keep)
    a.copy_(d[1:]).mul_(keep)
    b.copy_(r[1:].expand_as(b))
    v64[:-1].copy_(v[:-1])
    # keep = 1: r[t+1]; keep = 0: v[t] (lerp is exact at both ends).
    torch.lerp(v64[:-1], b, keep, out=b)


def _advantage_coefficients(r, v, st, d, keep, a, b, v64, td_lambda):
    """Write ``a``, ``b`` of the GAE recurrence for one block (see above)."""
    _not_last(st[:-1], keep)
    a.copy_(d[1:])
    v64.copy_(v)
    b.copy_(r[1:].expand_as(b))
    b.addcmul_(a, v64[1:]).sub_(v64[:-1]).mul_(keep)
    if td_lambda != 1.0:
        a.mul_(td_lambda)
    a.mul_(keep)


def _scan_by_blocks(coefficients, r, v, st, d, arg, final) -> torch.Tensor:
    """Solve a value recurrence ``x[t] = a[t] x[t+1] + b[t]``, ``x[T-1] = final``,
    a block of the inputs at a time, in float64.

    ``coefficients`` fills float64 ``a``, ``b`` for a block (see
    ``_advantage_coefficients``). Blocks follow the memory layout of ``v``:
    time blocks, solved last to first with the solution carried over, when
    time is the outer dim; batch blocks otherwise. Each block is then a
    compact, cache-sized piece of memory, and its buffers come from a
    reusable workspace.

    Args:
        r, v, st, d: time major ``[T, B]`` (``v``: ``[T, B]`` or ``[T, B, Q]``).
        arg: passed to ``coefficients``.
        final (Tensor|None): ``x[T-1]``, ``[B]`` or ``[B, Q]``; None for 0.

    Returns:
        ``[T-1, B]`` (or ``[T-1, B, Q]``), dtype and memory layout of ``v``.
    """
    if v.ndim > r.ndim:
        r, st, d = r.unsqueeze(-1), st.unsqueeze(-1), d.unsqueeze(-1)
    n = v.shape[0] - 1
    rest = v.shape[1:]
    time_outer = rest[0] == 1 or v.stride(0) >= v.stride(1)
    if time_outer:
        out = torch.empty((n, *rest), dtype=v.dtype, device=v.device)
        blocks = [(rows, slice(None)) for rows in row_blocks(n, rest)]
    else:
        # batch major like v (allocated so: no copy of an uninitialized buffer)
        out = torch.empty((rest[0], n, *rest[1:]), dtype=v.dtype, device=v.device)
        out = out.transpose(0, 1)
        blocks = [(slice(0, n), cols) for cols in column_blocks(n, rest)]
    # Buffer sizes of the largest (first) block: per step, ``ce`` elements
    # of coefficients ``a`` and ``ve`` of values.
    rows, cols = blocks[0]
    height = rows.stop - rows.start
    ce, ve = r[0, cols].numel(), v[0, cols].numel()
    flat = workspace(
        2 * height * ce + (2 * height + 1) * ve + scratch_size(torch.Size([height, ve])),
        torch.float64,
        v.device,
    )
    carry = final
    for rows, cols in blocks:
        height = rows.stop - rows.start
        cshape, vshape = (height, *r[0, cols].shape), (height, *v[0, cols].shape)
        ce, ve = r[0, cols].numel(), v[0, cols].numel()
        a = flat[: height * ce].view(cshape)
        b = flat[height * ce : height * (ce + ve)].view(vshape)
        v64 = flat[height * (ce + ve) : height * (ce + 2 * ve) + ve].view(height + 1, *vshape[1:])
        keep = flat[height * (ce + 2 * ve) + ve : height * (2 * ce + 2 * ve) + ve].view(cshape)
        scratch = flat[height * (2 * ce + 2 * ve) + ve :]
        steps = slice(rows.start, rows.stop + 1)
        coefficients(
            r[steps, cols], v[steps, cols], st[steps, cols], d[steps, cols], keep, a, b, v64, arg
        )
        if carry is not None:
            b[-1].addcmul_(a[-1], carry if time_outer else carry[cols])
        solve_backward_recurrence_(a.expand_as(b), b, scratch)
        out[rows, cols].copy_(b)
        if time_outer:
            carry = b[0].clone()
    return out


# --------------------------------------------------------------------------
# Importance ratio


def _add_mean_hist_summary(name: str, value: torch.Tensor) -> None:
    alf.summary.histogram(name + "/value", value)
    alf.summary.scalar(name + "/mean", value.mean())


def action_importance_ratio(
    action_distribution: Any,
    rollout_action_distribution: Any,
    action: Any,
    clipping_mode: str,
    scope: Any,
    importance_ratio_clipping: float,
    log_prob_clipping: float,
    check_numerics: bool,
    debug_summaries: bool,
    rollout_log_prob: Optional[torch.Tensor] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Ratio for importance sampling, used in PPO loss and vtrace loss.

    ``importance_ratio = exp(log pi(action) - log mu(action))`` where ``pi``
    is ``action_distribution`` and ``mu`` is ``rollout_action_distribution``
    (the log-probabilities are summed over the nest of actions and over each
    action's event dims; ``log mu`` is detached).

    Caller has to save ``alf.summary.scope()`` and pass ``scope`` to this
    function.

    Args:
        action_distribution (nested td.Distribution): distribution over actions
            under the target policy, batch shape ``[B]`` (or ``[T, B]``).
        rollout_action_distribution (nested td.Distribution): distribution over
            actions from the behavior policy, used to sample actions for the
            rollout; not used when ``rollout_log_prob`` is given.
        action (nested Tensor): the (possibly batched) actions taken during
            rollout, same nest structure as the distributions.
        clipping_mode (str): ``'double_sided'`` clips the ratio into
            ``[1 - importance_ratio_clipping, 1 + importance_ratio_clipping]``
            (PPO); ``'capping'`` takes
            ``min(1 + importance_ratio_clipping, importance_ratio)`` (V-trace,
            where c_bar or rho_bar = 1 + importance_ratio_clipping).
        scope (alf.summary.scope): entered to write the summaries.
        importance_ratio_clipping (float): epsilon of the clipped surrogate PPO
            objective.
        log_prob_clipping (float): if > 0, the log-probability of ``action``
            under the current policy (``action_distribution``) is clipped to
            ``[-log_prob_clipping, log_prob_clipping]`` to prevent inf / NaN;
            the rollout log-probability is used as it is (as ALF).
        check_numerics (bool): raise if a log-probability or the ratio is not
            finite (for debugging).
        debug_summaries (bool): write summaries (clip fraction, mean and
            histogram of the log-probabilities and ratios).
        rollout_log_prob (Tensor): log-probability of ``action`` under the
            rollout policy, batch shape; computed from
            ``rollout_action_distribution`` when None.

    Returns:
        ``(importance_ratio, importance_ratio_clipped)``, two tensors of the
        batch shape.

    Raises:
        ValueError: unknown ``clipping_mode``; ``importance_ratio_clipping`` or
            ``log_prob_clipping`` negative or NaN; with ``check_numerics``, a
            non-finite log-probability or ratio.
    """
    if clipping_mode not in _CLIPPING_MODES:
        raise ValueError(f"clipping_mode must be one of {_CLIPPING_MODES}; got {clipping_mode!r}")
    for name, value in (
        ("importance_ratio_clipping", importance_ratio_clipping),
        ("log_prob_clipping", log_prob_clipping),
    ):
        if not is_real(value) or not float(value) >= 0:
            raise ValueError(f"{name} must be a number >= 0; got {value!r}")
    if rollout_log_prob is None:
        rollout_log_prob = dist_utils.compute_log_probability(rollout_action_distribution, action)
    else:
        rollout_log_prob = math_ops.add_n(nest.flatten(rollout_log_prob))
    rollout_log_prob = rollout_log_prob.detach()
    action_log_prob = dist_utils.compute_log_probability(action_distribution, action)
    if log_prob_clipping > 0.0:
        action_log_prob = action_log_prob.clamp(-log_prob_clipping, log_prob_clipping)
    if check_numerics:
        _check_finite("action_log_prob", action_log_prob)
        _check_finite("rollout_log_prob", rollout_log_prob)

    importance_ratio = (action_log_prob - rollout_log_prob).exp()
    if check_numerics:
        _check_finite("importance_ratio", importance_ratio)

    if clipping_mode == "double_sided":
        importance_ratio_clipped = importance_ratio.clamp(
            1 - importance_ratio_clipping, 1 + importance_ratio_clipping
        )
    else:
        importance_ratio_clipped = importance_ratio.clamp(max=1 + importance_ratio_clipping)

    if debug_summaries and alf.summary.should_record_summaries():
        with scope:
            if importance_ratio_clipping > 0.0:
                clipped = (importance_ratio - 1.0).abs() > importance_ratio_clipping
                alf.summary.scalar("clip_fraction", clipped.float().mean())
            _add_mean_hist_summary("action_log_prob", action_log_prob)
            _add_mean_hist_summary("action_log_prob_sample", rollout_log_prob)
            _add_mean_hist_summary("importance_ratio", importance_ratio)
            _add_mean_hist_summary("importance_ratio_clipped", importance_ratio_clipped)

    return importance_ratio, importance_ratio_clipped


def _check_finite(name: str, x: torch.Tensor) -> None:
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} has non-finite values (check_numerics=True): {x}")
