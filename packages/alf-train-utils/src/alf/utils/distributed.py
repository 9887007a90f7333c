"""Data-parallel methods: run chosen methods of a module under PyTorch DDP.

``@data_distributed`` marks a method of an ``nn.Module`` whose outputs take part
in training. When the module has been activated for DDP (its attribute
``_ddp_activated_rank`` holds this process's rank) and a ``torch.distributed``
process group is initialised, the call goes through a
``torch.nn.parallel.DistributedDataParallel`` wrapper made for that method (once,
then cached on the module): the module's parameters are broadcast from rank 0
when the wrapper is made, and a ``backward()`` through the outputs all-reduces
the gradients, so each process's parameters receive the average of the
gradients of all processes. Otherwise the method is called directly (one dict
look-up of extra work).

.. code-block:: python

    class Critic(nn.Module):
        @data_distributed
        def compute_loss(self, batch):
            return ((self.net(batch.x) - batch.y) ** 2).mean()

    dist.init_process_group("gloo")            # or "nccl"; torchrun sets the env vars
    critic._ddp_activated_rank = dist.get_rank()
    critic.compute_loss(my_batch).backward()   # gradients averaged over processes

Every process must call a distributed method the same number of times, in the
same order, and call ``backward()`` on its outputs (DDP's collectives block until
all processes arrive).
"""

import functools
from typing import Any, Callable, Dict, Optional, Tuple, Union

import gin
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from alf.utils._train_checks import check_int

__all__ = ["data_distributed", "data_distributed_when", "make_ddp_performer"]

_RANK_ATTR = "_ddp_activated_rank"
_PERFORMERS_ATTR = "_ddp_performer_map"


class _MethodPerformer(nn.Module):
    """An ``nn.Module`` whose ``forward`` calls ``perform`` and whose only
    submodule is ``module`` (so DDP synchronises exactly ``module``'s
    parameters and buffers)."""

    def __init__(self, module: nn.Module, perform: Callable[..., Any]):
        super().__init__()
        self._wrapped_module = module
        self._perform = perform

    def forward(self, *args, **kwargs):
        return self._perform(*args, **kwargs)


def _call_activated(
    method: Callable[..., Any],
    cond: Optional[Callable[[Any], Any]],
    module: Any,
    rank: Any,
    args: Tuple[Any, ...],
    kwargs: Dict[str, Any],
) -> Any:
    """The call of a method whose module has a ``_ddp_activated_rank``."""
    if rank is None or (isinstance(rank, int) and not isinstance(rank, bool) and rank < 0):
        return method(module, *args, **kwargs)
    if not isinstance(module, nn.Module):
        raise TypeError(
            f"data_distributed: {method.__qualname__} must be a method of a "
            f"torch.nn.Module, got self of type {type(module).__name__}"
        )
    if not _process_group_ready() or (cond is not None and not cond(module)):
        return method(module, *args, **kwargs)
    performers: Dict[Any, DistributedDataParallel] = module.__dict__.setdefault(
        _PERFORMERS_ATTR, {}
    )
    performer = performers.get(method)
    if performer is None:
        performer = make_ddp_performer(module, functools.partial(method, module), rank)
        performers[method] = performer
    return performer(*args, **kwargs)


def _process_group_ready() -> bool:
    return dist.is_available() and dist.is_initialized()


def _device_ids(module: nn.Module):
    """``[index]`` when every parameter sits on one CUDA device, else ``None``
    (CPU modules and multi-device modules take ``device_ids=None``)."""
    devices = {p.device for p in module.parameters()}
    if len(devices) == 1:
        (device,) = devices
        if device.type == "cuda":
            return [device.index if device.index is not None else torch.cuda.current_device()]
    return None


@gin.configurable(allowlist=["find_unused_parameters"])
def make_ddp_performer(
    module: nn.Module,
    method: Union[Callable[..., Any], str],
    ddp_rank: int,
    find_unused_parameters: bool = False,
) -> DistributedDataParallel:
    """Create a DDP-wrapped performer of ``method``.

    The result is a ``DistributedDataParallel`` whose ``forward(*args,
    **kwargs)`` returns ``method(*args, **kwargs)`` and whose gradient hooks
    cover the parameters of ``module``. Used by the ``@data_distributed``
    decorators; configurable with gin, e.g.
    ``gin.bind_parameter("make_ddp_performer.find_unused_parameters", True)``
    (``make_ddp_performer.find_unused_parameters = True`` in a gin file), the
    counterpart of ALF's ``alf.config('make_ddp_performer',
    find_unused_parameters=True)``.

    Args:
        module: the ``nn.Module`` whose parameters the method uses.
        method: a callable computing the outputs (for a method of ``module``,
            bound to it, e.g. ``functools.partial(Cls.method, module)``), or the
            name of a method of ``module``.
        ddp_rank: the rank of this process in the default process group, in
            ``[0, world_size)``. The DDP device is the CUDA device holding
            ``module``'s parameters (``device_ids=None`` for a CPU module).
        find_unused_parameters: let DDP skip the parameters that did not
            contribute to the outputs of a call (a method that skips a branch
            of the network on some calls, as PPG does). Costs a traversal of
            the autograd graph on each call, so it is off by default.

    Returns:
        the ``torch.nn.parallel.DistributedDataParallel`` performer.

    Raises:
        TypeError: ``module`` is not an ``nn.Module``, ``method`` is neither a
            callable nor a string, or ``ddp_rank`` is not an int.
        ValueError: ``method`` names no method of ``module``, or ``ddp_rank``
            is outside ``[0, world_size)``.
        RuntimeError: no ``torch.distributed`` process group is initialised.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    if isinstance(method, str):
        bound = getattr(module, method, None)
        if bound is None or not callable(bound):
            raise ValueError(
                f"method {method!r} is not a method of the module ({type(module).__name__} "
                "has no callable attribute of that name)"
            )
        fn: Callable[..., Any] = bound
    elif callable(method):
        fn = method
    else:
        raise TypeError(
            f"method must be a callable or the name of a method of module, got "
            f"{type(method).__name__}"
        )
    ddp_rank = check_int(ddp_rank, "ddp_rank")
    if not _process_group_ready():
        raise RuntimeError(
            "make_ddp_performer needs an initialised torch.distributed process group "
            "(call torch.distributed.init_process_group first)"
        )
    world_size = dist.get_world_size()
    if not 0 <= ddp_rank < world_size:
        raise ValueError(f"ddp_rank must be in [0, world_size) = [0, {world_size}), got {ddp_rank}")
    return DistributedDataParallel(
        _MethodPerformer(module, fn),
        device_ids=_device_ids(module),
        find_unused_parameters=bool(find_unused_parameters),
    )


def data_distributed_when(
    cond: Optional[Callable[[nn.Module], bool]] = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``@data_distributed`` with an extra condition.

    ``cond(module)`` is evaluated at every call of an activated module; when it
    returns False, DDP is not used for that call and the original method runs.

    Args:
        cond: a callable taking the module (the method's ``self``) and returning
            a bool, or None for no condition.

    Returns:
        a decorator for methods of ``nn.Module`` subclasses.

    Raises:
        TypeError: ``cond`` is neither None nor callable.
    """
    if cond is not None and not callable(cond):
        raise TypeError(f"cond must be a callable or None, got {type(cond).__name__}")

    def decorator(method: Callable[..., Any]) -> Callable[..., Any]:
        if not callable(method):
            raise TypeError(f"data_distributed decorates a method, got {type(method).__name__}")

        key = _RANK_ATTR  # a closure variable: read faster than a global

        @functools.wraps(method)
        def wrapped(self, *args, **kwargs):
            try:
                rank = self.__dict__.get(key, -1)
            except AttributeError:  # an object without __dict__: never activated
                rank = -1
            if rank == -1:  # not activated: the direct call, nothing else
                return method(self, *args, **kwargs)
            return _call_activated(method, cond, self, rank, args, kwargs)

        return wrapped

    return decorator


def data_distributed(method: Callable[..., Any]) -> Callable[..., Any]:
    """Make a method of an ``nn.Module`` data distributed via DDP.

    The outputs (tensors, or nests of tensors) of the wrapped method get DDP's
    gradient synchronization hooks. When they are used in ``backward()``, the
    gradients of the module's parameters are averaged over all processes of the
    default process group: each process is held at that ``backward()`` until
    every process has finished its backward pass.

    .. code-block:: python

        class A(nn.Module):
            @data_distributed
            def compute_something(self, input):
                return self._network1(input), self._network2(input)

    The method is data distributed when

    1. processes of one initialised ``torch.distributed`` process group each
       make an ``A`` and call ``compute_something()``, and
    2. each instance has ``self._ddp_activated_rank`` set to its process's rank.

    Otherwise ``compute_something()`` is called directly.

    Args:
        method: the method to wrap (its first argument is the module).

    Returns:
        the wrapped method.

    Raises:
        TypeError: ``method`` is not callable; at call time, an activated
            ``self`` that is not an ``nn.Module``.
    """
    return data_distributed_when(None)(method)
