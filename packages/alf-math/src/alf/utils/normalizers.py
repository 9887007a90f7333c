r"""Normalizers: keep running first and second moments of a nest of tensors
and normalize new values by them.

Given weights :math:`w_i` (summing to 1) and samples :math:`x_i`, a
normalizer keeps

.. math::  m = \sum_i w_i x_i, \qquad m_2 = \sum_i w_i x_i^2

in two averagers (``alf.utils.averager``) and uses the variance

.. math::  \mathrm{var} = \sum_i w_i (x_i - m)^2 = m_2 - m^2 ,

which is exact for any weights (a running average of per-step variances, as
tf_agents keeps, is not: its early terms measure deviations from early
means). The subclasses differ only in the weights: exponential
(``EMNormalizer``), adaptive, favouring recent samples
(``AdaptiveNormalizer``), the last ``window_size`` samples
(``WindowNormalizer``); the base ``Normalizer`` weights all samples equally.

A value is normalized as :math:`(x - m) / \sqrt{\mathrm{var} + \epsilon}`
elementwise (:math:`x / \sqrt{m_2 + \epsilon}` with ``zero_mean=False``, as
ALF; :math:`x - m` is formed before scaling, so a feature that never changes
normalizes to exactly 0), where leaves have shape ``[B1, B2, ...] + spec.shape``; for an
update the outer dims ``[B1, B2, ...]`` are averaged first (one update adds
one sample). All leaves of one dtype are processed as one ``[N, D]`` matrix,
so ``update``/``normalize`` cost a few kernels whatever the number of leaves
and never synchronise with the device. State is in buffers (``state_dict()``
round-trips).

Precision: ``m2 - m^2`` loses about ``log10(m^2 / var)`` digits, all of
float32's for data like ``1e4 +- 1``. So the moments are kept in float64
whatever the spec dtype, and each update's second moment is formed as
``var_b + mean_b^2`` from the spread of its values around their own mean
(``var_b``), never from ``x * x`` in the data's dtype. Half-precision
(float16/bfloat16) values are processed in float32 and the results rounded
back to the spec dtype.
"""

import math
from typing import Any, List, Optional, Tuple, Union

import torch
from torch import nn

import alf.nest
import alf.summary
from alf.tensor_specs import TensorSpec
from alf.utils._math_checks import is_integral, is_real
from alf.utils.averager import (
    AdaptiveAverager,
    EMAverager,
    WindowAverager,
    _accumulation_dtype,
    _check_name,
    _check_speed,
    _check_update_rate,
    _check_window_size,
    _FlatLayout,
)

#: What a normalizer keeps its moments in (they share ``_update_means`` and ``_group_average``).
_Averager = Union[EMAverager, WindowAverager]

__all__ = [
    "AdaptiveNormalizer",
    "EMNormalizer",
    "Normalizer",
    "ScalarAdaptiveNormalizer",
    "ScalarEMNormalizer",
    "ScalarWindowNormalizer",
    "WindowNormalizer",
]


def _check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool; got {type(value).__name__}")
    return value


def _check_number(value: Any, name: str) -> float:
    if not is_real(value):
        raise TypeError(f"{name} must be a float; got {type(value).__name__}")
    return float(value)


def _cast(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``x.to(dtype)``; ``.float()``/``.double()`` parse their arguments in
    half the time of ``.to(dtype)``, which counts for ``[D]`` statistics."""
    if dtype is torch.float32:
        return x.float()
    if dtype is torch.float64:
        return x.double()
    return x.to(dtype)


def _batch_moments(x: Any) -> Tuple[torch.Tensor, torch.Tensor]:
    """float64 ``[D]`` mean and mean of squares over the outer dims of one
    group input (an ``[N, D]`` matrix or a list of per-leaf matrices)."""
    if isinstance(x, list):
        parts = [_batch_moments(m) for m in x]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    if x.requires_grad:
        x = x.detach()
    acc = _accumulation_dtype(x.dtype)
    if x.dtype != acc:  # a no-op .to() still costs a dispatch
        x = x.to(acc)
    # mean(x * x) in float32 keeps no digit of the spread of data far from 0
    # (and overflows float16 from |x| = 256): square the centred values (two
    # passes; torch.var_mean's Welford kernel is several times slower on CPU)
    mean = x.mean(dim=0)
    centred = x - mean
    var = (centred * centred).mean(dim=0).double()
    mean = mean.double()
    return mean, torch.addcmul(var, mean, mean)


class Normalizer(nn.Module):
    r"""Normalize nested tensors by the running mean and variance of the
    values seen so far.

    Given weights :math:`w_i` and samples :math:`x_i, i = 1 \cdots n`, let
    :math:`m = \sum_i w_i x_i` (first moment) and
    :math:`m_2 = \sum_i w_i x_i^2` (second moment); then
    :math:`\mathrm{var} = \sum_i w_i (x_i - m)^2 = m_2 + m^2 - 2m^2 = m_2 - m^2`,
    the same result as with :math:`w_1 = \cdots = w_n = 1/n`. (tf_agents'
    normalizer keeps a running average of the variance, which is not correct
    mathematically: its early components do not measure all current samples.)

    This base class weights every sample equally (:math:`w_i = 1/n`);
    subclasses choose other weights by overriding ``_create_averager``. The
    moments are kept in float64 (see the module docstring).

    Args:
        tensor_spec (nested TensorSpec): specs of the tensors to normalize
            (floating dtypes).
        auto_update (bool): if True, every ``normalize()`` first updates the
            statistics with its input; otherwise call ``update()``.
        zero_mean (bool): whether to subtract the mean; if False the value is
            only divided by the root of the second moment,
            :math:`\sqrt{m_2 + \epsilon}` (as ALF: the variance is taken
            around 0).
        unit_std (bool): assume a unit standard deviation: the value is only
            shifted by the mean.
        variance_epsilon (float): ``>= 0``, added to the variance before its
            square root is taken.
        debug_summaries (bool): write the mean and standard deviation as
            summaries (scope ``name``) at each ``normalize`` that records.
        max_dims_to_summarize (int): with ``debug_summaries``, at most this many
            elements of each leaf's statistics are written as scalars.
        name (str): name of this normalizer (the summary scope).
    Raises:
        TypeError: an argument has the wrong type, or ``tensor_spec`` is not a
            nest of floating ``TensorSpec``.
        ValueError: ``variance_epsilon < 0`` or ``max_dims_to_summarize < 0``.
    """

    def __init__(
        self,
        tensor_spec: Any,
        auto_update: bool = True,
        zero_mean: bool = True,
        unit_std: bool = False,
        variance_epsilon: float = 1e-10,
        debug_summaries: bool = False,
        max_dims_to_summarize: int = 10,
        name: str = "Normalizer",
    ):
        _check_bool(auto_update, "auto_update")
        _check_bool(zero_mean, "zero_mean")
        _check_bool(unit_std, "unit_std")
        _check_bool(debug_summaries, "debug_summaries")
        variance_epsilon = _check_number(variance_epsilon, "variance_epsilon")
        if not variance_epsilon >= 0:
            raise ValueError(f"variance_epsilon must be >= 0; got {variance_epsilon}")
        if not is_integral(max_dims_to_summarize):
            raise TypeError(
                f"max_dims_to_summarize must be an int; got {type(max_dims_to_summarize).__name__}"
            )
        if max_dims_to_summarize < 0:
            raise ValueError(f"max_dims_to_summarize must be >= 0; got {max_dims_to_summarize}")
        _check_name(name)
        super().__init__()
        self._name = name
        self._tensor_spec = tensor_spec
        self._layout = _FlatLayout(tensor_spec)
        self._auto_update = auto_update
        self._zero_mean = zero_mean
        self._unit_std = unit_std
        self._variance_epsilon = variance_epsilon
        self._debug_summaries = debug_summaries
        self._max_dims_to_summarize = int(max_dims_to_summarize)
        # float64 moments: m2 - m^2 cancels about log10(m^2 / var) digits
        self._mean_averager = self._create_averager().double()
        self._m2_averager = self._create_averager().double()

    def _create_averager(self) -> _Averager:
        """An averager of ``tensor_spec`` giving the weights :math:`w_i`
        (``AdaptiveAverager`` with speed 1: equal weights)."""
        return AdaptiveAverager(self._tensor_spec, speed=1.0)

    # ---- statistics --------------------------------------------------------
    def _update_from(self, inputs: List[Any]) -> None:
        self._layout.check_nonempty(inputs)
        moments = [_batch_moments(x) for x in inputs]
        averagers: Any = self._modules  # (nn.Module.__getattr__ costs a call)
        averagers["_mean_averager"]._update_means([m for m, _ in moments])
        averagers["_m2_averager"]._update_means([m2 for _, m2 in moments])

    def _group_stats(self, index: int):
        """float64 ``(mean, variance)`` of dtype group ``index``, each ``[D]``
        (with ``zero_mean=False`` the variance around 0, ``m2``)."""
        # (read at once, never modified: the averagers' buffers may be returned)
        averagers: Any = self._modules
        mean = averagers["_mean_averager"]._group_average(index, may_alias=True)
        m2 = averagers["_m2_averager"]._group_average(index, may_alias=True)
        if not self._zero_mean:
            return mean, m2
        # m2 - m^2 can come out slightly negative through rounding
        var = torch.addcmul(m2, mean, mean, value=-1.0).relu_()
        return mean, var

    def update(self, tensor: Any) -> None:
        """Update the statistics given a new tensor.

        Args:
            tensor (nested Tensor): leaves of shape ``[B1, B2, ...] +
                spec.shape``; the outer dims are averaged first (for both
                moments), so one call adds one sample.
        Raises:
            ValueError/TypeError: ``tensor`` does not follow ``tensor_spec``
                (the message names the path) or has empty outer dims; the
                statistics are left unchanged.
        """
        self._update_from(self._layout.group_inputs(self._layout.leaves(tensor)))

    def normalize(self, tensor: Any, clip_value: float = -1.0) -> Any:
        r"""Normalize a tensor with mean and variance.

        Computes :math:`(x - m) / \sqrt{\mathrm{var} + \epsilon}` (only
        :math:`x - m` with ``unit_std``; :math:`x / \sqrt{m_2 + \epsilon}`
        without ``zero_mean``), after updating the statistics with ``tensor``
        when ``auto_update``. A feature that has never changed (variance 0)
        normalizes to 0.

        Args:
            tensor (nested Tensor): each leaf can have arbitrary outer dims
                with shape ``[B1, B2, ...] + tensor_spec.shape``.
            clip_value (float): if positive, normalized values are clipped to
                ``[-clip_value, clip_value]``.
        Returns:
            nested Tensor: the normalized tensor, same shapes as ``tensor``,
            dtypes of ``tensor_spec``. Gradients flow to ``tensor`` (the
            statistics are constants).
        Raises:
            ValueError/TypeError: ``tensor`` does not follow ``tensor_spec``.
        """
        clip_value = _check_number(clip_value, "clip_value")
        leaves = self._layout.leaves(tensor)
        inputs = self._layout.group_inputs(leaves)
        if self._auto_update:
            self._update_from(inputs)
        return self._normalize_inputs(inputs, leaves, clip_value)

    def _normalize_inputs(self, inputs: List[Any], leaves: List[Any], clip_value: float) -> Any:
        """Normalized nest of the group ``inputs`` of checked ``leaves`` (no
        update)."""
        outputs = []
        stats = []
        # one-element groups may read their statistics as floats (no summaries
        # to write, exponential averagers on the CPU)
        scalars_as_floats = not self._debug_summaries and self._statistics_on_cpu()
        for index, x in enumerate(inputs):
            group = self._layout.groups[index]
            out: Any
            if scalars_as_floats and group.total == 1 and not isinstance(x, list) and x.is_cpu:
                shift_f, scale_f = self._scalar_affine(index)
                outputs.append(self._normalize_matrix(x, shift_f, scale_f, clip_value))
                continue
            mean, var = self._group_stats(index)
            stats.append((mean, var))
            shift, scale = self._affine(mean, var, _accumulation_dtype(group.dtype))
            if isinstance(x, list):  # leaves with different outer dims
                out = []
                for offset, numel, leaf in zip(group.offsets, group.numels, x):
                    part = slice(offset, offset + numel)
                    out.append(
                        self._normalize_matrix(
                            leaf,
                            None if shift is None else shift[part],
                            None if scale is None else scale[part],
                            clip_value,
                        )
                    )
            else:
                out = self._normalize_matrix(x, shift, scale, clip_value)
            outputs.append(out)
        if self._debug_summaries and alf.summary.should_record_summaries():
            self._summarize(stats)
        return self._layout.unflatten_like(outputs, leaves)

    def _statistics_on_cpu(self) -> bool:
        """Whether the moments are kept by exponential averagers on the CPU
        (whose one-element groups ``_scalar_affine`` reads)."""
        averager = self._modules["_mean_averager"]
        if not isinstance(averager, EMAverager):
            return False
        mass = averager._buffers["_mass"]
        return mass is not None and mass.is_cpu

    def _scalar_affine(self, index: int) -> Tuple[Optional[float], Optional[float]]:
        """``_affine`` of dtype group ``index``, which holds one element, as
        Python floats computed in float64 from the averagers' CPU buffers
        without a torch dispatch (a scalar normalizer's statistics cost more
        in dispatches than in arithmetic). An operation of a tensor with a
        Python float rounds the float to the tensor's dtype, as ``_affine``
        casts its tensors, so the normalized values are the same."""
        averagers: Any = self._modules
        mean = averagers["_mean_averager"]._group_scalar(index)
        m2 = averagers["_m2_averager"]._group_scalar(index)
        var = max(m2 - mean * mean, 0.0) if self._zero_mean else m2
        scale = None
        if not self._unit_std:
            # as torch.rsqrt: inf at 0 (a NaN statistic stays NaN)
            root = math.sqrt(var + self._variance_epsilon)
            scale = math.inf if root == 0.0 else 1.0 / root
        return (-mean if self._zero_mean else None), scale

    def _affine(
        self, mean: torch.Tensor, var: torch.Tensor, dtype: torch.dtype
    ) -> Tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
        """``(shift, scale)``, ``[D]`` each in ``dtype`` or None when not
        applied, such that the normalized value is ``(x + shift) * scale``;
        formed in float64 from the float64 statistics."""
        scale = None if self._unit_std else torch.rsqrt(var + self._variance_epsilon)
        shift = -mean if self._zero_mean else None
        return (
            None if shift is None else _cast(shift, dtype),
            None if scale is None else _cast(scale, dtype),
        )

    @staticmethod
    def _normalize_matrix(
        x: torch.Tensor, shift: Any, scale: Any, clip_value: float
    ) -> torch.Tensor:
        """``(x + shift) * scale`` of an ``[N, D]`` matrix (``[D]`` shift and
        scale, each possibly None), computed in ``_accumulation_dtype(x.dtype)``
        and returned in ``x.dtype``. The shift comes first: ``x * s - m * s``
        in float32 cancels to noise of the order of ``ulp(x * s)`` where the
        variance is tiny (a constant 333.3 gave 0.78)."""
        acc = _accumulation_dtype(x.dtype)
        out = x if x.dtype == acc else x.to(acc)
        if shift is not None:
            out = out + shift
        if scale is not None:
            out = out * scale if shift is None else out.mul_(scale)
        elif shift is None:
            out = out.clone()
        if clip_value > 0:
            out = out.clamp_(-clip_value, clip_value)
        return out if out.dtype == x.dtype else out.to(x.dtype)

    def _summarize(self, stats: List[Any]) -> None:
        means = self._layout.unflatten([m for m, _ in stats])
        stds = self._layout.unflatten([v.sqrt() for _, v in stats])
        n = self._max_dims_to_summarize
        with alf.summary.scope(self._name):
            for (path, mean), std in zip(alf.nest.flatten_with_path(means), alf.nest.flatten(stds)):
                prefix = f"{path}." if path else ""
                flat_mean, flat_std = mean.reshape(-1), std.reshape(-1)
                if flat_mean.numel() == 1:
                    alf.summary.scalar(f"{prefix}mean", flat_mean[0])
                    alf.summary.scalar(f"{prefix}std", flat_std[0])
                    continue
                for i in range(min(n, flat_mean.numel())):
                    alf.summary.scalar(f"{prefix}mean.{i}", flat_mean[i])
                    alf.summary.scalar(f"{prefix}std.{i}", flat_std[i])

    def forward(self, input: Any) -> Any:
        """Normalize ``input``, first updating the statistics with it when the
        module is in training mode (``self.training``, as ALF; ``auto_update``
        only concerns ``normalize()``).

        Args:
            input (nested Tensor): as for ``normalize``.
        Returns:
            nested Tensor: the normalized input (no clipping).
        """
        leaves = self._layout.leaves(input)
        inputs = self._layout.group_inputs(leaves)
        if self.training:
            self._update_from(inputs)
        return self._normalize_inputs(inputs, leaves, -1.0)


class EMNormalizer(Normalizer):
    """Exponential moving normalizer: history samples get exponentially
    decayed weights (see ``alf.utils.averager.EMAverager``).

    Args:
        tensor_spec (nested TensorSpec): specs of the tensors to normalize.
        update_rate (float): the update rate, in ``(0, 1]``.
        auto_update, zero_mean, unit_std, variance_epsilon, debug_summaries,
        name: as for ``Normalizer``.
    """

    def __init__(
        self,
        tensor_spec: Any,
        update_rate: float = 1e-3,
        auto_update: bool = True,
        zero_mean: bool = True,
        unit_std: bool = False,
        variance_epsilon: float = 1e-10,
        debug_summaries: bool = False,
        name: str = "EMNormalizer",
    ):
        _check_update_rate(update_rate)
        self._update_rate = update_rate
        super().__init__(
            tensor_spec,
            auto_update=auto_update,
            zero_mean=zero_mean,
            unit_std=unit_std,
            variance_epsilon=variance_epsilon,
            debug_summaries=debug_summaries,
            name=name,
        )

    def _create_averager(self) -> _Averager:
        return EMAverager(self._tensor_spec, self._update_rate)


class ScalarEMNormalizer(EMNormalizer):
    """``EMNormalizer`` for float32 scalars.

    Args:
        update_rate (float): the update rate.
        auto_update, variance_epsilon, zero_mean, unit_std, debug_summaries,
        name: as for ``Normalizer``.
    """

    def __init__(
        self,
        update_rate: float = 1e-3,
        auto_update: bool = True,
        variance_epsilon: float = 1e-10,
        zero_mean: bool = True,
        unit_std: bool = False,
        debug_summaries: bool = False,
        name: str = "ScalarEMNormalizer",
    ):
        super().__init__(
            TensorSpec(()),
            update_rate=update_rate,
            auto_update=auto_update,
            zero_mean=zero_mean,
            unit_std=unit_std,
            variance_epsilon=variance_epsilon,
            debug_summaries=debug_summaries,
            name=name,
        )


class AdaptiveNormalizer(Normalizer):
    """Normalizer giving higher weight to recent samples: sample ``t`` of
    ``T`` gets a weight roughly proportional to ``(t/T)**(speed-1)`` (see
    ``alf.utils.averager.AdaptiveAverager``).

    Args:
        tensor_spec (nested TensorSpec): specs of the tensors to normalize.
        speed (float): ``> 0`` and finite, speed of updating mean and variance.
        auto_update, zero_mean, unit_std, variance_epsilon, debug_summaries,
        name: as for ``Normalizer``.
    """

    def __init__(
        self,
        tensor_spec: Any,
        speed: float = 8.0,
        auto_update: bool = True,
        zero_mean: bool = True,
        unit_std: bool = False,
        variance_epsilon: float = 1e-10,
        debug_summaries: bool = False,
        name: str = "AdaptiveNormalizer",
    ):
        self._speed = _check_speed(speed)
        super().__init__(
            tensor_spec,
            auto_update=auto_update,
            zero_mean=zero_mean,
            unit_std=unit_std,
            variance_epsilon=variance_epsilon,
            debug_summaries=debug_summaries,
            name=name,
        )

    def _create_averager(self) -> _Averager:
        return AdaptiveAverager(self._tensor_spec, speed=self._speed)


class ScalarAdaptiveNormalizer(AdaptiveNormalizer):
    """``AdaptiveNormalizer`` for float32 scalars.

    Args:
        speed (float): speed of updating mean and variance.
        auto_update, zero_mean, unit_std, variance_epsilon, debug_summaries,
        name: as for ``Normalizer``.
    """

    def __init__(
        self,
        speed: float = 8.0,
        auto_update: bool = True,
        zero_mean: bool = True,
        unit_std: bool = False,
        variance_epsilon: float = 1e-10,
        debug_summaries: bool = False,
        name: str = "ScalarAdaptiveNormalizer",
    ):
        super().__init__(
            TensorSpec(()),
            speed=speed,
            auto_update=auto_update,
            zero_mean=zero_mean,
            unit_std=unit_std,
            variance_epsilon=variance_epsilon,
            debug_summaries=debug_summaries,
            name=name,
        )


class WindowNormalizer(Normalizer):
    """Normalization by the mean and variance of the last ``window_size``
    samples (equal weights; see ``alf.utils.averager.WindowAverager``).

    Args:
        tensor_spec (nested TensorSpec): specs of the tensors to normalize.
        window_size (int): ``>= 1``, the size of the recent window.
        auto_update, zero_mean, unit_std, variance_epsilon, debug_summaries,
        name: as for ``Normalizer``.
    Raises:
        ValueError: ``window_size < 1``.
    """

    def __init__(
        self,
        tensor_spec: Any,
        window_size: int = 1000,
        auto_update: bool = True,
        zero_mean: bool = True,
        unit_std: bool = False,
        variance_epsilon: float = 1e-10,
        debug_summaries: bool = False,
        name: str = "WindowNormalizer",
    ):
        self._window_size = _check_window_size(window_size)
        super().__init__(
            tensor_spec,
            auto_update=auto_update,
            zero_mean=zero_mean,
            unit_std=unit_std,
            variance_epsilon=variance_epsilon,
            debug_summaries=debug_summaries,
            name=name,
        )

    def _create_averager(self) -> _Averager:
        return WindowAverager(self._tensor_spec, self._window_size)


class ScalarWindowNormalizer(WindowNormalizer):
    """``WindowNormalizer`` for float32 scalars.

    Args:
        window_size (int): the size of the recent window.
        auto_update, zero_mean, unit_std, variance_epsilon, debug_summaries,
        name: as for ``Normalizer``.
    """

    def __init__(
        self,
        window_size: int = 1000,
        auto_update: bool = True,
        zero_mean: bool = True,
        unit_std: bool = False,
        variance_epsilon: float = 1e-10,
        debug_summaries: bool = False,
        name: str = "ScalarWindowNormalizer",
    ):
        super().__init__(
            TensorSpec(()),
            window_size=window_size,
            auto_update=auto_update,
            zero_mean=zero_mean,
            unit_std=unit_std,
            variance_epsilon=variance_epsilon,
            debug_summaries=debug_summaries,
            name=name,
        )
