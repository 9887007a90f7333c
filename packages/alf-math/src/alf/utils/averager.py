"""Moving averages of nested tensors: exponential, adaptive and windowed.

Each averager follows a nest of ``TensorSpec`` (``tensor_spec``). A value
given to ``update`` is a nest of the same structure whose leaves have shape
``[B1, B2, ...] + spec.shape``; the outer dims ``[B1, B2, ...]`` (any number,
possibly none) are averaged first, so one ``update`` adds one sample.

State lives in registered buffers, so ``state_dict()`` round-trips and
``.to(device)`` moves it. All leaves that share a dtype are kept in one flat
buffer: an update costs a handful of tensor kernels whatever the number of
leaves, and never synchronises with the device (no ``.item()``).

Half-precision (float16/bfloat16) leaves are accumulated in float32 buffers
and their averages returned in the spec dtype: in float16 an increment
``rate * (x - average)`` below half an ulp of the average rounds away, so an
EMA with rate 1e-3 of values near 1 would stop moving 0.5 short of them
(bfloat16: long before reaching them), and a window sum would overflow.

Shape legend: ``B1, B2, ...`` outer (batch/time) dims; ``D`` the total number
of elements of all leaves of one dtype.
"""

import math
from typing import Any, List, Sequence, Union, cast

import torch
from torch import nn

import alf.nest
from alf.tensor_specs import TensorSpec
from alf.utils._math_checks import is_integral, is_real

__all__ = [
    "AdaptiveAverager",
    "EMAverager",
    "ScalarAdaptiveAverager",
    "ScalarEMAverager",
    "ScalarWindowAverager",
    "WindowAverager",
    "average_outer_dims",
]


def _buffer(module: nn.Module, name: str) -> torch.Tensor:
    """The buffer ``module`` registered as ``name`` (registered buffers here are never None)."""
    return cast(torch.Tensor, module._buffers[name])


def _accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype values of ``dtype`` are accumulated in: float32 for
    float16/bfloat16, ``dtype`` itself otherwise."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _outer_rank(tensor: torch.Tensor, spec: TensorSpec, name: str) -> int:
    """Number of outer dims of ``tensor`` given that it ends with ``spec.shape``."""
    nd = len(spec.shape)
    if tensor.dim() < nd or tensor.shape[tensor.dim() - nd :] != spec.shape:
        raise ValueError(
            f"{name} must have shape [outer dims...] + {list(spec.shape)}; got {list(tensor.shape)}"
        )
    return tensor.dim() - nd


def average_outer_dims(tensor: torch.Tensor, spec: TensorSpec) -> torch.Tensor:
    """Average ``tensor`` over its outer dims.

    Args:
        tensor (Tensor): a single tensor of shape ``[B1, B2, ...] + spec.shape``
            (no outer dim is fine too).
        spec (TensorSpec): the spec of one item.
    Returns:
        Tensor: the mean over ``B1, B2, ...``, of shape ``spec.shape``. An
        integer or bool tensor is averaged in ``spec.dtype`` if that is a
        floating dtype, else in the default floating dtype.
    Raises:
        TypeError: ``tensor`` is not a tensor or ``spec`` not a ``TensorSpec``.
        ValueError: ``tensor`` does not end with ``spec.shape``.
    """
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"tensor must be a torch.Tensor; got {type(tensor).__name__}")
    if not isinstance(spec, TensorSpec):
        raise TypeError(f"spec must be a TensorSpec; got {type(spec).__name__}")
    outer = _outer_rank(tensor, spec, "tensor")
    if not (tensor.is_floating_point() or tensor.is_complex()):
        dtype = spec.dtype if spec.dtype.is_floating_point else torch.get_default_dtype()
        tensor = tensor.to(dtype)
    if outer == 0:
        return tensor
    return tensor.mean(dim=tuple(range(outer)))


class _Group:
    """Leaves of one dtype, laid out one after another in a flat vector."""

    __slots__ = ("dtype", "leaves", "shapes", "numels", "offsets", "total")

    def __init__(self, dtype: torch.dtype):
        self.dtype = dtype
        self.leaves: List[int] = []  # positions in the flattened nest
        self.shapes: List[torch.Size] = []
        self.numels: List[int] = []
        self.offsets: List[int] = []
        self.total = 0

    def add(self, index: int, spec: TensorSpec) -> None:
        self.leaves.append(index)
        self.shapes.append(spec.shape)
        self.numels.append(spec.numel)
        self.offsets.append(self.total)
        self.total += spec.numel


class _FlatLayout:
    """Maps a nest of tensors following ``tensor_spec`` to one ``[N, D]``
    matrix per dtype (``N`` the product of the outer dims) and back.

    Shared by the averagers and the normalizers; not part of the public API.
    """

    def __init__(self, tensor_spec: Any, arg_name: str = "tensor_spec"):
        flat = alf.nest.flatten_with_path(tensor_spec)
        groups: dict = {}
        for index, (path, spec) in enumerate(flat):
            where = f" at '{path}'" if path else ""
            if not isinstance(spec, TensorSpec):
                raise TypeError(
                    f"{arg_name} must be a nest of TensorSpec; got {type(spec).__name__}{where}"
                )
            if not spec.dtype.is_floating_point:
                raise TypeError(
                    f"{arg_name} must have floating dtypes to be averaged; got {spec.dtype}{where}"
                )
            groups.setdefault(spec.dtype, _Group(spec.dtype)).add(index, spec)
        self.spec = tensor_spec
        self.specs = [spec for _, spec in flat]
        self.paths = [path for path, _ in flat]
        self.nested = alf.nest.is_nested(tensor_spec)
        self.groups: List[_Group] = list(groups.values())

    # ---- input side ------------------------------------------------------
    def leaves(self, tensor: Any, arg_name: str = "tensor") -> List[torch.Tensor]:
        """The leaves of ``tensor`` after checking its structure and shapes."""
        if self.nested:
            alf.nest.assert_same_structure(self.spec, tensor)
            leaves = alf.nest.flatten(tensor)
        else:
            leaves = [tensor]
        for leaf, spec, path in zip(leaves, self.specs, self.paths):
            name = f"{arg_name} at '{path}'" if path else arg_name
            if not isinstance(leaf, torch.Tensor):
                raise TypeError(f"{name} must be a torch.Tensor; got {type(leaf).__name__}")
            _outer_rank(leaf, spec, name)
        return leaves

    def group_inputs(self, leaves: Sequence[torch.Tensor]) -> List[Any]:
        """For each dtype group: an ``[N, D]`` matrix when all its leaves share
        their outer dims, else a list of per-leaf ``[N_i, numel_i]`` matrices."""
        out: List[Any] = []
        for g in self.groups:
            mats = []
            outer = None
            same_outer = True
            for i, numel, shape in zip(g.leaves, g.numels, g.shapes):
                leaf = leaves[i]
                if leaf.dtype != g.dtype:
                    leaf = leaf.to(g.dtype)
                leaf_outer = leaf.shape[: leaf.dim() - len(shape)]
                if outer is None:
                    outer = leaf_outer
                elif leaf_outer != outer:
                    same_outer = False
                # not reshape(-1, numel): -1 is ambiguous for a leaf of no elements
                rows = math.prod(leaf_outer)
                if leaf.dim() != 2 or leaf.shape[1] != numel:  # else: already [N, D]
                    leaf = leaf.reshape(rows, numel)
                mats.append(leaf)
            if not same_outer:
                out.append(mats)
            elif len(mats) == 1:
                out.append(mats[0])
            else:
                out.append(torch.cat(mats, dim=1))
        return out

    def check_nonempty(self, inputs: Sequence[Any], arg_name: str = "tensor") -> None:
        """Raise ``ValueError`` if some leaf has no sample in its outer dims."""
        for g, x in zip(self.groups, inputs):
            # a group matrix holds the samples of all its leaves: check its
            # first leaf; per-leaf lists are checked leaf by leaf
            mats = x if isinstance(x, list) else [x]
            for i, m in zip(g.leaves, mats):
                if m.shape[0] == 0:
                    path = self.paths[i]
                    name = f"{arg_name} at '{path}'" if path else arg_name
                    raise ValueError(f"{name} has empty outer dims: nothing to average")

    @staticmethod
    def outer_mean(x: Any) -> torch.Tensor:
        """``[D]`` mean over the outer dims of one group input (see
        ``group_inputs``), detached, in ``_accumulation_dtype``."""
        if isinstance(x, list):
            return torch.cat([_FlatLayout.outer_mean(m) for m in x])
        return x.detach().mean(dim=0, dtype=_accumulation_dtype(x.dtype))

    def outer_means(self, tensor: Any, arg_name: str = "tensor") -> List[torch.Tensor]:
        """Per group, the ``[D]`` mean of ``tensor`` over its outer dims."""
        inputs = self.group_inputs(self.leaves(tensor, arg_name))
        self.check_nonempty(inputs, arg_name)
        return [self.outer_mean(x) for x in inputs]

    # ---- output side -----------------------------------------------------
    def unflatten(self, flats: Sequence[torch.Tensor]) -> Any:
        """Nest of ``spec.shape`` tensors from one ``[D]`` vector per group."""
        leaves: List[Any] = [None] * len(self.specs)
        for g, flat in zip(self.groups, flats):
            parts = flat.split(g.numels) if len(g.numels) > 1 else (flat,)
            for i, part, shape in zip(g.leaves, parts, g.shapes):
                leaves[i] = part.view(shape)
        return self.pack(leaves)

    def unflatten_like(self, outputs: Sequence[Any], leaves: Sequence[torch.Tensor]) -> Any:
        """Nest shaped like ``leaves`` from group outputs of ``group_inputs``
        form (``[N, D]`` matrices or per-leaf lists)."""
        result: List[Any] = [None] * len(self.specs)
        for g, out in zip(self.groups, outputs):
            parts: Sequence[Any]
            if isinstance(out, list):
                parts = out
            elif len(g.numels) > 1:
                parts = out.split(g.numels, dim=1)
            else:
                parts = (out,)
            for i, part in zip(g.leaves, parts):
                shape = leaves[i].shape
                result[i] = part if part.shape == shape else part.reshape(shape)
        return self.pack(result)

    def pack(self, leaves: List[Any]) -> Any:
        if self.nested:
            return alf.nest.pack_sequence_as(self.spec, leaves)
        return leaves[0]


def _check_update_rate(update_rate: Any) -> None:
    if isinstance(update_rate, torch.Tensor):
        if update_rate.numel() != 1 or not update_rate.is_floating_point():
            raise ValueError(
                "update_rate must be a float or a one-element floating tensor; got a "
                f"tensor of shape {list(update_rate.shape)} and dtype {update_rate.dtype}"
            )
        return
    if not is_real(update_rate):
        raise TypeError(f"update_rate must be a float; got {type(update_rate).__name__}")
    if not 0.0 < float(update_rate) <= 1.0:
        raise ValueError(f"update_rate must be in (0, 1]; got {update_rate}")


def _check_speed(speed: Any) -> float:
    if not is_real(speed):
        raise TypeError(f"speed must be a float; got {type(speed).__name__}")
    if not 0 < float(speed) < math.inf:
        raise ValueError(f"speed must be positive and finite; got {speed}")
    return float(speed)


def _check_name(name: Any) -> None:
    if not isinstance(name, str):
        raise TypeError(f"name must be a str; got {type(name).__name__}")


class EMAverager(nn.Module):
    r"""Exponential moving average of a nest of tensors.

    With update rate :math:`\alpha` and a new sample :math:`x`,

    .. math::  a_t = (1-\alpha) a_{t-1} + \alpha x, \qquad
               w_t = (1-\alpha) w_{t-1} + \alpha

    with :math:`a_0 = w_0 = 0`; ``get()`` returns the bias-corrected average
    :math:`a_t / w_t` (so the first sample gets its full value; zeros before
    any update). The sample weights :math:`\alpha(1-\alpha)^{t-i} / w_t` sum
    to 1.

    Args:
        tensor_spec (nested TensorSpec): specs of the values to average
            (floating dtypes).
        update_rate (float | Tensor): :math:`\alpha \in (0, 1]`; a one-element
            tensor is read at each update, so the caller may change it in place.
        name (str): name of this averager.
    Raises:
        TypeError: ``tensor_spec`` is not a nest of floating ``TensorSpec``.
        ValueError: ``update_rate`` is outside ``(0, 1]``.
    """

    _mass: torch.Tensor

    def __init__(
        self, tensor_spec: Any, update_rate: Union[float, torch.Tensor], name: str = "EMAverager"
    ):
        _check_update_rate(update_rate)
        _check_name(name)
        super().__init__()
        self._name = name
        self._tensor_spec = tensor_spec
        self._layout = _FlatLayout(tensor_spec)
        self._update_rate = update_rate
        self._average_names: List[str] = []
        for i, g in enumerate(self._layout.groups):
            acc = _accumulation_dtype(g.dtype)
            self.register_buffer(f"_average{i}", torch.zeros(g.total, dtype=acc))
            self._average_names.append(f"_average{i}")
        self.register_buffer("_mass", torch.zeros((), dtype=torch.float64))

    def update(self, tensor: Any) -> None:
        """Update the average.

        Args:
            tensor (nested Tensor): value for updating the average, leaves of
                shape ``[B1, B2, ...] + spec.shape``; outer dims are averaged
                first before being added to the average.
        Returns:
            None
        Raises:
            ValueError/TypeError: ``tensor`` does not follow ``tensor_spec``
                (the message names the path); nothing is updated then.
        """
        self._update_means(self._layout.outer_means(tensor))

    def _update_means(self, means: List[torch.Tensor]) -> None:
        """Add one sample given as one ``[D]`` vector per dtype group."""
        self._accumulate(means, self._update_rate)

    def _accumulate(self, means: List[torch.Tensor], rate: Union[float, torch.Tensor]) -> None:
        mass = _buffer(self, "_mass")  # (nn.Module.__getattr__ costs more)
        if isinstance(rate, torch.Tensor):
            rate64 = rate.reshape(()).to(device=mass.device, dtype=torch.float64)
            for name, m in zip(self._average_names, means):
                buf = _buffer(self, name)
                buf.lerp_(m.to(buf.dtype), rate64.to(buf.dtype))
            mass.mul_(1.0 - rate64).add_(rate64)
        else:
            rate = float(rate)
            for name, m in zip(self._average_names, means):
                buf = _buffer(self, name)
                buf.lerp_(m if m.dtype == buf.dtype else m.to(buf.dtype), rate)
            if mass.is_cpu:
                # on the CPU the 0-d mass is read and written through a NumPy
                # view: no sync, no dispatch (the same float64 rounding)
                view = self._scalar_view("_mass")
                view[()] = float(view) * (1.0 - rate) + rate
            else:
                mass.mul_(1.0 - rate).add_(rate)

    def _scalar_view(self, name: str) -> Any:
        """A NumPy view of the small CPU buffer ``name`` (read and written
        without a torch dispatch, which costs more than the update of a
        small average), cached while the buffer is the same tensor on the
        same memory (``share_memory_()`` swaps a tensor's storage in place:
        a view of the old one would write into freed memory)."""
        tensor = _buffer(self, name)
        views = self.__dict__.get("_scalar_views")
        if views is None:
            views = self.__dict__["_scalar_views"] = {}
        hit = views.get(name)
        address = tensor.data_ptr()
        if hit is None or hit[0] is not tensor or hit[1] != address:
            hit = views[name] = (tensor, address, tensor.numpy())
        return hit[2]

    def __getstate__(self):
        state = dict(super().__getstate__())
        state.pop("_scalar_views", None)  # views of this object's tensors
        return state

    def _group_average(self, index: int, may_alias: bool = False) -> torch.Tensor:
        """``[D]`` current average of dtype group ``index`` (in the buffer's
        dtype). With ``may_alias``, the result may be the buffer itself
        (when no correction is due: a mass of exactly 1, as adaptive
        averagers keep after their first update): only for callers that read
        it at once and never modify it."""
        buf = _buffer(self, self._average_names[index])
        # mass is 0 only before the first update, when buf is 0 too; the 0-d
        # float64 mass does not promote buf's dtype
        mass = _buffer(self, "_mass")  # (nn.Module.__getattr__ costs more)
        if mass.is_cpu:  # read without a sync: one kernel instead of two
            value = mass.item()
            if value == 1.0 and may_alias:
                return buf
            return buf / max(value, 1e-30)
        return buf / mass.clamp(min=1e-30)

    def _group_scalar(self, index: int) -> float:
        """``_group_average(index)`` of a dtype group holding one element in
        a CPU buffer, as a Python float (float64), read without a torch
        dispatch."""
        value = float(self._scalar_view(self._average_names[index])[0])
        mass = float(self._scalar_view("_mass"))
        return value if mass == 1.0 else value / max(mass, 1e-30)

    def get(self) -> Any:
        """Get the current average.

        Returns:
            nested Tensor: the bias-corrected average, leaves of shape
            ``spec.shape`` (zeros before the first update).
        """
        return self._layout.unflatten(
            [self._group_average(i).to(g.dtype) for i, g in enumerate(self._layout.groups)]
        )

    def average(self, tensor: Any) -> Any:
        """Combines ``self.update`` and ``self.get`` in one step.

        Args:
            tensor (nested Tensor): a value for updating the average; outer
                dims will be first averaged before being added to the average.
        Returns:
            nested Tensor: the current average.
        """
        self.update(tensor)
        return self.get()


class ScalarEMAverager(EMAverager):
    """``EMAverager`` for a scalar value.

    Args:
        update_rate (float | Tensor): update rate in ``(0, 1]``.
        dtype (torch.dtype): floating dtype of the scalar.
        name (str): name of this averager.
    """

    def __init__(
        self,
        update_rate: Union[float, torch.Tensor],
        dtype: torch.dtype = torch.float32,
        name: str = "ScalarEMAverager",
    ):
        super().__init__(TensorSpec((), dtype), update_rate, name=name)


class AdaptiveAverager(EMAverager):
    r"""Averager with an adaptive update rate that favours recent samples.

    The ``k``-th update (``k = 1, 2, ...``) uses the rate
    :math:`\alpha_k = s / (s + k - 1)` for speed :math:`s`, so the first
    sample is taken whole and sample :math:`t` of :math:`T` ends up with weight
    :math:`\alpha_t \prod_{k=t+1}^{T} (1-\alpha_k)`, roughly proportional to
    :math:`(t/T)^{s-1}`. ``speed=1`` weights every sample equally (the plain
    running mean); a larger speed forgets older samples faster.

    Args:
        tensor_spec (nested TensorSpec): specs of the values to average.
        speed (float): :math:`s > 0`, speed of updating the average.
        name (str): name of this averager.
    Raises:
        ValueError: ``speed`` is not positive and finite.
    """

    _total_steps: torch.Tensor

    def __init__(self, tensor_spec: Any, speed: float = 10.0, name: str = "AdaptiveAverager"):
        speed = _check_speed(speed)
        # The rate of the first update is speed / speed = 1; later rates come
        # from the step count kept in ``_total_steps``.
        super().__init__(tensor_spec, update_rate=1.0, name=name)
        self._speed = speed
        # speed + (number of updates so far), the denominator of the next rate
        self.register_buffer("_total_steps", torch.tensor(self._speed, dtype=torch.float64))

    def _update_means(self, means: List[torch.Tensor]) -> None:
        steps = _buffer(self, "_total_steps")
        if steps.is_cpu:
            # the rate as a Python float: read without a sync on the CPU,
            # and a float rate takes the cheaper path of _accumulate
            view = self._scalar_view("_total_steps")
            total = float(view)
            view[()] = total + 1.0
            self._accumulate(means, self._speed / total)
            return
        rate = self._speed / steps
        steps.add_(1.0)
        self._accumulate(means, rate)


class ScalarAdaptiveAverager(AdaptiveAverager):
    """``AdaptiveAverager`` for a scalar value.

    Args:
        speed (float): speed of updating the average.
        dtype (torch.dtype): floating dtype of the scalar.
        name (str): name of this averager.
    """

    def __init__(
        self,
        speed: float = 10,
        dtype: torch.dtype = torch.float32,
        name: str = "ScalarAdaptiveAverager",
    ):
        super().__init__(TensorSpec((), dtype), speed=speed, name=name)


def _check_window_size(window_size: Any) -> int:
    if not is_integral(window_size):
        raise TypeError(f"window_size must be an int; got {type(window_size).__name__}")
    if window_size < 1:
        raise ValueError(f"window_size must be >= 1; got {window_size}")
    return int(window_size)


class WindowAverager(nn.Module):
    """Average of the last ``window_size`` samples (equal weights).

    Each ``update`` adds one sample (its outer dims averaged first) to a ring
    buffer; ``get()`` is the mean of the samples in the buffer (of all of them
    while fewer than ``window_size`` were added; zeros before any update).

    Args:
        tensor_spec (nested TensorSpec): specs of the values to average.
        window_size (int): the size of the window, ``>= 1``.
        name (str): name of this averager.
    Raises:
        ValueError: ``window_size < 1``.
        TypeError: ``window_size`` is not an int or ``tensor_spec`` not a nest
            of floating ``TensorSpec``.
    """

    _current_pos: torch.Tensor
    _current_size: torch.Tensor

    def __init__(self, tensor_spec: Any, window_size: int, name: str = "WindowAverager"):
        window_size = _check_window_size(window_size)
        _check_name(name)
        super().__init__()
        self._name = name
        self._tensor_spec = tensor_spec
        self._window_size = window_size
        self._layout = _FlatLayout(tensor_spec)
        self._buffer_names: List[str] = []
        for i, g in enumerate(self._layout.groups):
            acc = _accumulation_dtype(g.dtype)
            self.register_buffer(f"_buf{i}", torch.zeros(window_size, g.total, dtype=acc))
            self._buffer_names.append(f"_buf{i}")
        self.register_buffer("_current_pos", torch.zeros((), dtype=torch.int64))
        self.register_buffer("_current_size", torch.zeros((), dtype=torch.int64))

    def update(self, tensor: Any) -> None:
        """Update the average.

        Args:
            tensor (nested Tensor): value for updating the average; outer dims
                will be averaged first before being added.
        Returns:
            None
        """
        self._update_means(self._layout.outer_means(tensor))

    def _update_means(self, means: List[torch.Tensor]) -> None:
        index = self._current_pos.view(1)
        for name, m in zip(self._buffer_names, means):
            buf = _buffer(self, name)
            buf.index_copy_(0, index, m.to(buf.dtype).unsqueeze(0))
        self._current_pos.add_(1).remainder_(self._window_size)
        self._current_size.add_(1).clamp_(max=self._window_size)

    def _group_average(self, index: int, may_alias: bool = False) -> torch.Tensor:
        """``[D]`` mean of the window of dtype group ``index`` (a new tensor,
        whatever ``may_alias``: see ``EMAverager._group_average``)."""
        buf = _buffer(self, self._buffer_names[index])
        count = self._current_size.clamp(min=1).to(buf.dtype)
        return buf.sum(dim=0) / count

    def get(self) -> Any:
        """Get the current average.

        Returns:
            nested Tensor: mean of the samples in the window, leaves of shape
            ``spec.shape``.
        """
        return self._layout.unflatten(
            [self._group_average(i).to(g.dtype) for i, g in enumerate(self._layout.groups)]
        )

    def average(self, tensor: Any) -> Any:
        """Combines ``self.update`` and ``self.get`` in one step.

        Args:
            tensor (nested Tensor): a value for updating the average; outer
                dims will be averaged first before being added.
        Returns:
            nested Tensor: the current average.
        """
        self.update(tensor)
        return self.get()


class ScalarWindowAverager(WindowAverager):
    """``WindowAverager`` for a scalar value.

    Args:
        window_size (int): the size of the window.
        dtype (torch.dtype): floating dtype of the scalar.
        name (str): name of this averager.
    """

    def __init__(
        self,
        window_size: int,
        dtype: torch.dtype = torch.float32,
        name: str = "ScalarWindowAverager",
    ):
        super().__init__(TensorSpec((), dtype), window_size, name=name)
