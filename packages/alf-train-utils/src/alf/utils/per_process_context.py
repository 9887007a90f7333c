"""The per-process runtime context: rank, number of processes, parameter queue.

``PerProcessContext()`` always returns the one instance of the current process.
A training launcher fills it once (``set_distributed``, ``set_paras_queue``) and
then calls ``finalize()``; from then on the context is read only and any code in
the process can ask which rank it is:

.. code-block:: python

    ctx = PerProcessContext()
    ctx.set_distributed(rank=1, num_processes=4)
    ctx.finalize()
    ...
    if PerProcessContext().is_main_process:
        write_summaries()

The instance lives in the memory of one process. A child started with ``fork``
starts from a copy of its parent's context (finalized or not); a child started
with ``spawn`` or ``forkserver`` starts from the defaults (not distributed, one
process). Launch code therefore sets the context inside each worker process.
"""

import threading
from typing import Any, Optional

from alf.utils._train_checks import check_int

__all__ = ["PerProcessContext"]


class PerProcessContext:
    """A singleton holding the runtime properties of the current process.

    It is used mainly in multi-process (data-parallel) training, where the rank
    of the process and the total number of processes are needed in places far
    from the launcher. Every call of ``PerProcessContext()`` returns the same
    object within a process.

    Defaults (before ``set_distributed``): ``ddp_rank == -1``,
    ``num_processes == 1``, ``is_distributed is False``,
    ``is_main_process is True`` and ``paras_queue is None``.
    """

    _instance: Optional["PerProcessContext"] = None
    _instance_lock = threading.Lock()

    def __new__(cls) -> "PerProcessContext":
        """Return the process's instance, creating it on the first call."""
        inst = cls._instance
        if inst is None:
            with cls._instance_lock:
                inst = cls._instance
                if inst is None:
                    inst = super().__new__(cls)
                    inst._read_only = False
                    inst._ddp_rank = -1
                    inst._num_processes = 1
                    inst._paras_queue = None
                    cls._instance = inst
        return inst

    def __init__(self) -> None:
        """Construct (or return) the singleton instance.

        The first construction in a process assigns the defaults; later ones
        leave the instance as it is.
        """

    def _check_writable(self, what: str) -> None:
        if self._read_only:
            raise RuntimeError(
                f"PerProcessContext.{what}: the context was finalized and is read only; "
                "set it before calling finalize()"
            )

    def finalize(self) -> None:
        """Lock the context so that it becomes read only.

        Later calls of ``set_distributed`` or ``set_paras_queue`` raise
        ``RuntimeError``; calling ``finalize`` again is harmless.
        """
        self._read_only = True

    def set_distributed(self, rank: int, num_processes: int) -> None:
        """Set the distributed properties.

        Args:
            rank (int): the ID of the process, in ``[0, num_processes)``.
            num_processes (int): the total number of processes, at least 1.

        Raises:
            TypeError: ``rank`` or ``num_processes`` is not an integer.
            ValueError: ``num_processes < 1`` or ``rank`` outside
                ``[0, num_processes)``.
            RuntimeError: the context was finalized.

        Nothing changes when an error is raised.
        """
        rank = check_int(rank, "rank")
        num_processes = check_int(num_processes, "num_processes")
        if num_processes < 1:
            raise ValueError(f"num_processes must be at least 1, got {num_processes}")
        if not 0 <= rank < num_processes:
            raise ValueError(
                f"rank must be in [0, num_processes) = [0, {num_processes}), got {rank}"
            )
        self._check_writable("set_distributed")
        self._ddp_rank = rank
        self._num_processes = num_processes

    def set_paras_queue(self, paras_queue: Any) -> None:
        """Set the parameter queue.

        The queue is used for checking the consistency of model parameters
        across the worker processes in multi-process training.

        Args:
            paras_queue: a queue with ``put`` and ``get`` methods, normally a
                ``multiprocessing`` queue created by the launcher (``None``
                clears it).

        Raises:
            TypeError: ``paras_queue`` has no ``put``/``get`` methods.
            RuntimeError: the context was finalized.
        """
        if paras_queue is not None and not (
            callable(getattr(paras_queue, "put", None))
            and callable(getattr(paras_queue, "get", None))
        ):
            raise TypeError(
                "paras_queue must be a queue with put() and get() methods "
                f"(e.g. multiprocessing.Queue), got {type(paras_queue).__name__}"
            )
        self._check_writable("set_paras_queue")
        self._paras_queue = paras_queue

    @property
    def is_distributed(self) -> bool:
        """True when ``set_distributed`` gave this process a rank."""
        return self._ddp_rank >= 0

    @property
    def ddp_rank(self) -> int:
        """The rank of this process, or -1 when not distributed."""
        return self._ddp_rank

    @property
    def num_processes(self) -> int:
        """The total number of processes (1 when not distributed)."""
        return self._num_processes

    @property
    def is_main_process(self) -> bool:
        """True for rank 0, and for a process that is not distributed.

        The main process is the one that writes summaries, checkpoints and logs.
        """
        return self._ddp_rank <= 0

    @property
    def paras_queue(self) -> Any:
        """The parameter queue given to ``set_paras_queue`` (``None`` if unset)."""
        return self._paras_queue

    @property
    def is_finalized(self) -> bool:
        """True after ``finalize()``: the context is read only."""
        return self._read_only

    def __repr__(self) -> str:
        return (
            f"PerProcessContext(ddp_rank={self._ddp_rank}, num_processes={self._num_processes}, "
            f"finalized={self._read_only})"
        )
