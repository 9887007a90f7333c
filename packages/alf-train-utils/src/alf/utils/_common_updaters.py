"""``Periodically`` and ``TargetUpdater`` of ``alf.utils.common``."""

from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn

from alf.utils._train_checks import check_int, check_real

__all__ = ["Periodically", "TargetUpdater"]



class Periodically(nn.Module):
    """Calls ``body()`` on every ``period``-th call of the module.

    An internal counter is incremented by each call; ``body`` runs when the
    counter is divisible by ``period`` (calls ``period``, ``2 * period``,
    ...). The counter is a plain attribute, not part of ``state_dict()``, as
    in ALF.

    Args:
        body (Callable): what to run, called without arguments.
        period (int | None): a positive int; None never runs ``body``.
        name (str): name of the object.

    Raises:
        TypeError: ``body`` is not callable, or ``period`` is neither an int
            nor None.
        ValueError: ``period`` is an int < 1.
    """

    def __init__(self, body: Callable[[], Any], period: Optional[int], name: str = "periodically"):
        if not callable(body):
            raise TypeError(f"body must be callable; got {body!r}")
        if period is not None:
            period = check_int(period, "period", 1, expected="an int or None")
        super().__init__()
        self._body = body
        self._period = period
        self._name = name
        self._counter = 0

    @property
    def name(self) -> str:
        """The name given at construction."""
        return self._name

    def forward(self) -> Any:
        """Count this call; run ``body`` if the count is a multiple of
        ``period``. Returns what ``body`` returned, or None when it did not run."""
        if self._period is None:
            return None
        self._counter += 1
        if self._counter % self._period == 0:
            return self._body()
        return None


_ModelArg = Union[nn.Module, torch.Tensor, Sequence[Union[nn.Module, torch.Tensor]]]


def _tensors_of(model: Any, name: str) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
    """(parameters, buffers) of a module; ``([tensor], [])`` of a tensor."""
    if isinstance(model, nn.Module):
        return list(model.parameters()), list(model.buffers())
    if isinstance(model, torch.Tensor):
        return [model], []
    raise TypeError(f"{name} must be an nn.Module or a Parameter; got {type(model).__name__}")


def _as_list(x: Any) -> list:
    if isinstance(x, (list, tuple)):
        return list(x)
    return [x]


class TargetUpdater(nn.Module):
    """Soft-updates target models towards models every ``period`` calls.

    For each parameter ``w_s`` of a model and the corresponding ``w_t`` of
    its target (``parameters()`` order), an update does

    ``w_t = (1 - tau) * w_t + tau * w_s``;

    buffers are always copied. With ``delayed_update=True`` an update first
    copies ``recent`` to the target and then moves ``recent`` towards the
    model (``recent = (1 - tau) * recent + tau * w_s``, buffers copied), where
    ``recent`` starts as a copy of the model: with ``tau=1`` the target gets
    the model as it was ``period`` steps before; otherwise ``recent`` is an
    exponential moving average of the model with rate ``tau`` (sampled every
    ``period`` steps).

    The call counter and ``recent`` are not part of ``state_dict()`` (as in
    ALF, whose checkpoints hold no entry for them); ``recent`` moves with
    ``.to()``/``.cuda()``.

    Args:
        models (Module | list[Module] | Parameter | list[Parameter]): the
            current models or parameters.
        target_models (same): the models or parameters to update; each pairs
            with the model at the same position and has parameters (and
            buffers) of the same shapes.
        tau (float): in ``[0, 1]``; 1 is a hard update.
        period (int): update on every ``period``-th call (positive).
        init_copy (bool): copy the models to the targets at construction.
        delayed_update (bool): update the targets from the delayed copies
            described above.

    Raises:
        TypeError: a model or target is neither a Module nor a tensor,
            ``tau`` is not a real number or ``period`` not an int.
        ValueError: different numbers of models and targets, a pair whose
            parameters or buffers differ in number or shape, ``tau`` outside
            ``[0, 1]``, or a non-positive ``period``. Nothing is copied then.
    """

    def __init__(
        self,
        models: _ModelArg,
        target_models: _ModelArg,
        tau: float = 1.0,
        period: int = 1,
        init_copy: bool = True,
        delayed_update: bool = False,
    ):
        models = _as_list(models)
        target_models = _as_list(target_models)
        if len(models) != len(target_models):
            raise ValueError(
                f"models and target_models must have the same length; got {len(models)} "
                f"and {len(target_models)}"
            )
        check_real(tau, "tau", 0, 1)
        period = check_int(period, "period", 1)
        pairs = []
        for i, (m, t) in enumerate(zip(models, target_models)):
            ms, mb = _tensors_of(m, f"models[{i}]")
            ts, tb = _tensors_of(t, f"target_models[{i}]")
            for kind, a, b in (("parameters", ms, ts), ("buffers", mb, tb)):
                if len(a) != len(b):
                    raise ValueError(
                        f"models[{i}] has {len(a)} {kind} but target_models[{i}] has {len(b)}"
                    )
                for j, (x, y) in enumerate(zip(a, b)):
                    if x.shape != y.shape:
                        raise ValueError(
                            f"{kind} #{j} of models[{i}] has shape {tuple(x.shape)} but that of "
                            f"target_models[{i}] has shape {tuple(y.shape)}"
                        )
            pairs.append((ms, mb, ts, tb))
        super().__init__()
        # Plain lists: the models are not submodules of the updater, so its
        # state_dict does not duplicate theirs.
        self._models = models
        self._target_models = target_models
        self._pairs = pairs
        self._tau = float(tau)
        self._period = period
        self._delayed_update = bool(delayed_update)
        self._counter = 0
        self._recent: List[Tuple[List[str], List[str]]] = []
        if init_copy:
            with torch.no_grad():
                for ms, mb, ts, tb in pairs:
                    for s, t in zip(ms + mb, ts + tb):
                        t.copy_(s)
        if self._delayed_update:
            for i, (ms, mb, _, _) in enumerate(pairs):
                names: Tuple[List[str], List[str]] = ([], [])
                for kind, tensors, out in (("p", ms, names[0]), ("b", mb, names[1])):
                    for j, x in enumerate(tensors):
                        name = f"_recent_{i}_{kind}{j}"
                        self.register_buffer(name, x.detach().clone(), persistent=False)
                        out.append(name)
                self._recent.append(names)

    def _soft_update(
        self, sources: List[torch.Tensor], targets: List[torch.Tensor], tau: float
    ) -> None:
        for s, t in zip(sources, targets):
            if tau == 1.0:
                t.copy_(s)
            else:
                t.lerp_(s.to(t.dtype), tau)

    def _copy(self, sources: List[torch.Tensor], targets: List[torch.Tensor]) -> None:
        for s, t in zip(sources, targets):
            t.copy_(s)

    @torch.no_grad()
    def update(self) -> None:
        """Update every target now (whatever the call counter)."""
        for i, (ms, mb, ts, tb) in enumerate(self._pairs):
            if self._delayed_update:
                rp = [getattr(self, n) for n in self._recent[i][0]]
                rb = [getattr(self, n) for n in self._recent[i][1]]
                self._copy(rp + rb, ts + tb)
                self._soft_update(ms, rp, self._tau)
                self._copy(mb, rb)
            else:
                self._soft_update(ms, ts, self._tau)
                self._copy(mb, tb)

    def forward(self) -> None:
        """Count this call; update the targets (see ``update``) if the count
        is a multiple of ``period``."""
        self._counter += 1
        if self._counter % self._period == 0:
            self.update()
