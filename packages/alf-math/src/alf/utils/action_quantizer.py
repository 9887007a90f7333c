"""Action Quantizer: map continuous actions to bin indices and back."""

import numpy as np
import torch

from alf.tensor_specs import BoundedTensorSpec
from alf.utils._math_checks import is_integral
from alf.utils.math_ops import Log1pTransform

__all__ = ["ActionQuantizer"]

_SAMPLING_METHODS = ("uniform", "log")
_REP_MODES = ("center", "boundary")

# The symmetric log ``sign(x) log(1 + |x|)`` of the "log" sampling space
# (defined for every real) and its inverse.
_SYMLOG = Log1pTransform(alpha=1.0)


class ActionQuantizer:
    """Quantize each dimension of a bounded continuous action into
    ``action_bins`` bins.

    The bins split ``[lb, ub]`` evenly in a *sampling space*: the action
    itself (``"uniform"``) or its symmetric logarithm
    ``z = sign(a) log(1 + |a|)`` (``"log"``, finer bins near 0; valid for
    bounds of either sign). Each bin is represented by one value:

    * ``"center"``: ``linspace(lb + bin_size / 2, ub - bin_size / 2, bins)``
      with ``bin_size = (ub - lb) / bins``;
    * ``"boundary"``: ``linspace(lb, ub, bins)``.

    ``action_to_ind`` returns the index of the bin holding the action (in
    the sampling space): with ``"center"`` the nearest representative, with
    ``"boundary"`` the floor bin, the last representative at or below the
    action (as ALF). ``ind_to_action`` gives the representative of an index
    mapped back to action space.

    Args:
        action_spec (BoundedTensorSpec): floating spec with finite bounds.
        sampling_method (str): ``"uniform"`` or ``"log"``.
        action_bins (int): number of bins (``>= 1``; ``>= 2`` for
            ``"boundary"``).
        rep_mode (str): ``"center"`` or ``"boundary"``.

    Raises:
        TypeError: ``action_spec`` is not a floating ``BoundedTensorSpec``.
        ValueError: an unknown ``sampling_method``/``rep_mode``, too few
            ``action_bins``, or infinite bounds.
    """

    def __init__(
        self,
        action_spec: BoundedTensorSpec,
        sampling_method: str = "uniform",
        action_bins: int = 7,
        rep_mode: str = "center",
    ):
        if not isinstance(action_spec, BoundedTensorSpec) or not action_spec.is_continuous():
            raise TypeError(
                f"action_spec must be a floating BoundedTensorSpec; got {action_spec!r}"
            )
        if sampling_method not in _SAMPLING_METHODS:
            raise ValueError(
                f"sampling_method must be one of {_SAMPLING_METHODS}; got {sampling_method!r}"
            )
        if rep_mode not in _REP_MODES:
            raise ValueError(f"rep_mode must be one of {_REP_MODES}; got {rep_mode!r}")
        min_bins = 2 if rep_mode == "boundary" else 1
        if not is_integral(action_bins) or action_bins < min_bins:
            raise ValueError(
                f"action_bins must be an int >= {min_bins} for rep_mode={rep_mode!r}; "
                f"got {action_bins!r}"
            )
        shape = tuple(action_spec.shape)
        lb = np.broadcast_to(action_spec.minimum, shape).astype(np.float64)
        ub = np.broadcast_to(action_spec.maximum, shape).astype(np.float64)
        if not (np.all(np.isfinite(lb)) and np.all(np.isfinite(ub))):
            raise ValueError(f"action_spec must have finite bounds; got {action_spec!r}")
        self._action_spec = action_spec
        self._sampling_method = sampling_method
        self._rep_mode = rep_mode
        self._action_bins = int(action_bins)
        low, high = torch.as_tensor(lb), torch.as_tensor(ub)
        if sampling_method == "log":
            low, high = _SYMLOG.transform(low), _SYMLOG.transform(high)
        if rep_mode == "center":
            step = (high - low) / action_bins
            first = low + step / 2
        else:
            step = (high - low) / (action_bins - 1)
            first = low
        self._first = first
        self._step = step

    @property
    def action_bins(self) -> int:
        """Number of bins per action dimension."""
        return self._action_bins

    def _space(self, like: torch.Tensor):
        return (
            self._first.to(device=like.device, dtype=torch.float64),
            self._step.to(device=like.device, dtype=torch.float64),
        )

    def action_to_ind(self, action: torch.Tensor) -> torch.Tensor:
        """Index of the bin of each action element: the nearest
        representative (``"center"``) or the last representative at or
        below it (``"boundary"``, as ALF). A representative itself, after a
        round trip through the spec dtype, maps back to its own index.

        Actions outside the spec map to the first/last bin.

        Args:
            action (Tensor): shape ``[..., *action_spec.shape]``.

        Returns:
            int64 Tensor of the shape of ``action``, values in
            ``[0, action_bins)``.

        Raises:
            TypeError: ``action`` is not a tensor.
            ValueError: ``action``'s trailing shape differs from the spec's,
                or it contains NaN (which has no bin).
        """
        self._check_shape(action, "action")
        nan = torch.isnan(action)
        if bool(nan.any()):
            raise ValueError(
                f"action must not contain NaN; got {int(nan.sum())} NaN of {action.numel()} "
                f"elements, the first at index {tuple(nan.nonzero()[0].tolist())}"
            )
        first, step = self._space(action)
        z = action.to(torch.float64)
        if self._sampling_method == "log":
            z = _SYMLOG.transform(z)
        # A zero-width dimension (lb == ub) has every action in bin 0.
        safe_step = torch.where(step > 0, step, torch.ones_like(step))
        q = (z - first) / safe_step
        ind = torch.round(q)
        if self._rep_mode == "boundary":
            # floor, except within the rounding error of the action's dtype
            # below a representative (ind_to_action rounds it to that dtype)
            tol = 8 * torch.finfo(action.dtype if action.is_floating_point() else torch.float64).eps
            tol = tol * (z.abs() + first.abs()) / safe_step
            ind = torch.where((ind - q).abs() <= tol, ind, q.floor())
        return ind.clamp(0, self._action_bins - 1).to(torch.int64)

    def ind_to_action(self, action_ind: torch.Tensor) -> torch.Tensor:
        """The representative action of each bin index.

        Args:
            action_ind (Tensor): integer tensor of shape
                ``[..., *action_spec.shape]`` with values in ``[0, action_bins)``.

        Returns:
            Tensor of ``action_spec.dtype`` and the shape of ``action_ind``.

        Raises:
            TypeError: ``action_ind`` is not an integer tensor.
            ValueError: its trailing shape differs from the spec's or an index
                is out of range.
        """
        if not isinstance(action_ind, torch.Tensor):
            raise TypeError(f"action_ind must be a torch.Tensor; got {type(action_ind).__name__}")
        if action_ind.dtype.is_floating_point or action_ind.dtype.is_complex:
            raise TypeError(f"action_ind must be an integer tensor; got {action_ind.dtype}")
        self._check_shape(action_ind, "action_ind")
        if action_ind.numel() and (
            int(action_ind.min()) < 0 or int(action_ind.max()) >= self._action_bins
        ):
            raise ValueError(
                f"action_ind must lie in [0, {self._action_bins}); got values in "
                f"[{int(action_ind.min())}, {int(action_ind.max())}]"
            )
        first, step = self._space(action_ind)
        z = first + action_ind.to(torch.float64) * step
        if self._sampling_method == "log":
            z = _SYMLOG.inverse_transform(z)
        return z.to(self._action_spec.dtype)

    def _check_shape(self, x: torch.Tensor, name: str) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor; got {type(x).__name__}")
        shape = tuple(self._action_spec.shape)
        if tuple(x.shape[x.ndim - len(shape) :]) != shape or x.ndim < len(shape):
            raise ValueError(f"{name} must have shape [..., *{shape}]; got {tuple(x.shape)}")
