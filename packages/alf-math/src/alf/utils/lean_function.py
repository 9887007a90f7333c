"""Trade compute for memory: run a function without keeping its intermediate
results for backward, and recompute them when gradients are needed.
"""

import contextlib
import copy
import functools
import types
from typing import Any, Callable, Iterable, Iterator, List, Sequence, Tuple

import torch
from torch import nn

import alf.nest

__all__ = ["lean_function"]


class _Outputs:
    """Carries the output structure (and its non-tensor leaves) out of the
    autograd function's forward."""

    __slots__ = ("structure", "leaves", "tensor_positions")

    def __init__(self) -> None:
        self.structure: Any = None
        self.leaves: List[Any] = []
        self.tensor_positions: List[int] = []


def _tensor_leaves(nest: Any) -> Tuple[List[Any], List[int]]:
    """The leaves of ``nest`` and the positions of the tensors among them."""
    leaves = alf.nest.flatten(nest)
    positions = [i for i, leaf in enumerate(leaves) if isinstance(leaf, torch.Tensor)]
    return leaves, positions


def _autocast_state(device_types: Iterable[str]) -> List[Tuple[str, bool, torch.dtype]]:
    """``[(device_type, enabled, dtype), ...]``: the current autocast settings
    of the given device types (those autocast knows)."""
    state = []
    for device_type in sorted(set(device_types)):
        if hasattr(torch, "get_autocast_dtype"):  # torch >= 2.4
            available = getattr(torch.amp, "is_autocast_available", None)
            if device_type in ("cpu", "cuda") if available is None else available(device_type):
                state.append(
                    (
                        device_type,
                        torch.is_autocast_enabled(device_type),
                        torch.get_autocast_dtype(device_type),
                    )
                )
        elif device_type == "cpu":
            state.append(("cpu", torch.is_autocast_cpu_enabled(), torch.get_autocast_cpu_dtype()))
        elif device_type == "cuda":
            state.append(("cuda", torch.is_autocast_enabled(), torch.get_autocast_gpu_dtype()))
    return state


@contextlib.contextmanager
def _autocast(state: Sequence[Tuple[str, bool, torch.dtype]], cache: bool) -> Iterator[None]:
    """Within the context, the autocast settings are ``state`` (of
    ``_autocast_state``)."""
    with contextlib.ExitStack() as stack:
        for device_type, enabled, dtype in state:
            stack.enter_context(
                torch.autocast(device_type, dtype=dtype, enabled=enabled, cache_enabled=cache)
            )
        yield


class _LeanFunction(torch.autograd.Function):
    """``forward(ctx, run, n_inputs, outputs, *tensors)``: ``run(*inputs)``
    evaluates the wrapped function on the tensor inputs ``tensors[:n_inputs]``;
    ``tensors[n_inputs:]`` are module parameters used by ``run``."""

    @staticmethod
    def forward(ctx, run: Callable, n_inputs: int, outputs: _Outputs, *tensors):
        ctx.run = run
        ctx.n_inputs = n_inputs
        # backward recomputes under the autocast settings of this forward, not
        # those (if any) around the backward call
        ctx.autocast = _autocast_state(["cpu", *(t.device.type for t in tensors)])
        ctx.autocast_cache = torch.is_autocast_cache_enabled()
        ctx.save_for_backward(*tensors)
        ctx.set_materialize_grads(False)
        with torch.no_grad():
            result = run(*tensors[:n_inputs])
        leaves, positions = _tensor_leaves(result)
        outputs.structure = result
        outputs.leaves = leaves
        outputs.tensor_positions = positions
        flat = tuple(leaves[i] for i in positions)
        ctx.mark_non_differentiable(
            *[t for t in flat if not (t.is_floating_point() or t.is_complex())]
        )
        return flat

    @staticmethod
    def backward(ctx, *grad_outputs):
        tensors = ctx.saved_tensors
        n_inputs = ctx.n_inputs
        # Grad mode is on here when the caller asked for create_graph=True
        # (higher-order gradients): then the recomputation starts from the
        # saved tensors themselves, so that the gradients returned are
        # differentiable functions of them (and of grad_outputs); through a
        # view each, so that a tensor given twice gets a gradient per use.
        create_graph = torch.is_grad_enabled()
        if create_graph:
            inputs = [t.view_as(t) for t in tensors[:n_inputs]]
        else:
            inputs = [
                t.detach().requires_grad_(needs)
                for t, needs in zip(tensors[:n_inputs], ctx.needs_input_grad[3 : 3 + n_inputs])
            ]
        params = tensors[n_inputs:]
        with torch.enable_grad(), _autocast(ctx.autocast, ctx.autocast_cache):
            leaves, positions = _tensor_leaves(ctx.run(*inputs))
        outs, grads = [], []
        for i, grad in zip(positions, grad_outputs):
            out = leaves[i]
            if grad is not None and out.requires_grad:
                outs.append(out)
                grads.append(grad)
        candidates = [*inputs, *params]
        targets = [x for x in candidates if x.requires_grad]
        if outs and targets:
            target_grads = iter(
                torch.autograd.grad(
                    outs, targets, grads, allow_unused=True, create_graph=create_graph
                )
            )
        else:
            target_grads = iter([None] * len(targets))
        result = [next(target_grads) if x.requires_grad else None for x in candidates]
        return (None, None, None, *result)


def _run_lean(func: Callable, params: Sequence[torch.Tensor], args: tuple, kwargs: dict) -> Any:
    """Call ``func(*args, **kwargs)`` through ``_LeanFunction``."""
    call = (args, kwargs)
    leaves, positions = _tensor_leaves(call)
    tensors = [leaves[i] for i in positions]
    if not torch.is_grad_enabled() or not any(t.requires_grad for t in [*tensors, *params]):
        return func(*args, **kwargs)

    def run(*inputs):
        new_leaves = list(leaves)
        for i, x in zip(positions, inputs):
            new_leaves[i] = x
        new_args, new_kwargs = alf.nest.pack_sequence_as(call, new_leaves)
        return func(*new_args, **new_kwargs)

    outputs = _Outputs()
    flat = _LeanFunction.apply(run, len(tensors), outputs, *tensors, *params)
    result = list(outputs.leaves)
    for i, tensor in zip(outputs.tensor_positions, flat):
        result[i] = tensor
    if not alf.nest.is_nested(outputs.structure):
        return result[0]
    return alf.nest.pack_sequence_as(outputs.structure, result)


def _lean_forward(self: nn.Module, *args: Any, **kwargs: Any) -> Any:
    """``forward`` of a module returned by ``lean_function``."""
    forward = functools.partial(type(self).forward, self)
    params = [p for p in self.parameters() if p.requires_grad]
    return _run_lean(forward, params, args, kwargs)


def lean_function(func: Callable) -> Callable:
    """Wrap ``func`` to save memory for backward.

    The returned function performs the same computation as ``func`` but keeps
    only its inputs (and, for a module, its parameters) for backward instead
    of every intermediate result; the backward pass recomputes ``func`` on the
    same inputs with gradients enabled (and the autocast settings of the
    forward call) and differentiates that. Peak memory
    for a deep network drops from all activations to those of the layer being
    differentiated, for the cost of one extra forward pass.

    Requirements on ``func`` (not checked; breaking them gives silently wrong
    gradients):

    1. Tensors that need gradients reach ``func`` through its arguments
       (positional or keyword, possibly inside tuples, lists or dicts), or, if
       ``func`` is an ``nn.Module``, through its parameters (do not pass those
       as arguments). Other captured tensors are treated as constants.
    2. It returns a tensor or a nest of tensors (non-tensor leaves such as
       ``None`` are passed through).
    3. It is deterministic: evaluating it again on the same inputs gives the
       same outputs (e.g. no dropout unless the RNG is reset by the caller).

    Compared with ``torch.utils.checkpoint``: keyword arguments are
    supported, and both ``torch.autograd.grad`` and ``.backward()`` work,
    also with ``create_graph=True`` (gradients of gradients, e.g. a gradient
    penalty; such a backward keeps the recomputed graph).
    Without grad mode, or when no input or parameter requires grad, ``func``
    is simply called.

    Examples::

        def myfunc(x, w, b, scale=1.0):
            return torch.sigmoid(scale * (x @ w) + b)

        lean_myfunc = lean_function(myfunc)
        y = lean_myfunc(x, w, b, scale=2.0)

        lean_mlp = lean_function(nn.Sequential(nn.Linear(3, 5), nn.ReLU()))
        y = lean_mlp(x)

    Args:
        func (Callable): function or module to be wrapped.
    Returns:
        Callable: the wrapped function, or for an ``nn.Module`` a shallow copy
        of it (same class, sharing parameters, buffers, submodules and hooks)
        whose ``forward`` is lean; all attributes and methods of the original
        module can be accessed in the same way through it.
    Raises:
        TypeError: ``func`` is not callable.
    """
    if isinstance(func, nn.Module):
        lean = copy.copy(func)
        lean.forward = types.MethodType(_lean_forward, lean)
        return lean
    if not callable(func):
        raise TypeError(f"func must be callable; got {type(func).__name__}")

    @functools.wraps(func)
    def lean_func(*args: Any, **kwargs: Any) -> Any:
        return _run_lean(func, (), args, kwargs)

    return lean_func
