"""Process-level helpers of ``alf.utils.common``: seeding, free ports,
running under a summary writer, logging metrics, docker detection."""

import contextlib
import hashlib
import logging
import os
import random
import socket
import time
from typing import Any, Callable, Iterable, List, Optional, TypeVar, Union

import numpy as np
import torch

import alf.summary
from alf.utils._train_checks import check_int, check_real
from alf.utils.common_core import abs_path

__all__ = [
    "get_unused_port",
    "is_inside_docker_container",
    "log_metrics",
    "run_under_record_context",
    "set_random_seed",
]

_logger = logging.getLogger("alf")

T = TypeVar("T")


def _default_seed() -> int:
    """A seed in ``[0, 2**32)`` from the process id and the time."""
    text = f"{os.getpid()}|{time.time_ns()}".encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=4).digest(), "little")


def set_random_seed(seed: Optional[int], warn_only: bool = False) -> int:
    """Seed ``random``, NumPy and torch (CPU and every CUDA device).

    With a given ``seed`` it also asks for deterministic computation:
    ``torch.use_deterministic_algorithms(True, warn_only=warn_only)``,
    ``torch.backends.cudnn.deterministic = True``,
    ``torch.backends.cudnn.benchmark = False`` and, unless already set,
    ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` (cuBLAS reads it when its first
    handle is made, so seed before any CUDA matrix product). With
    ``seed=None`` a seed is made from the process id and the time and the
    deterministic settings are left as they are; a run can then be repeated
    with the returned seed, except for cuDNN's nondeterminism.

    Args:
        seed (int | None): in ``[0, 2**32)``, or None.
        warn_only (bool): where an operation has no deterministic
            implementation, warn instead of raising (a seeded run only).

    Returns:
        int: the seed used.

    Raises:
        TypeError: ``seed`` is neither None nor an int.
        ValueError: ``seed`` is an int outside ``[0, 2**32)``.
    """
    if seed is None:
        seed = _default_seed()
    else:
        seed = check_int(seed, "seed", expected="an int in [0, 2**32) or None")
        if not 0 <= seed < 2**32:
            raise ValueError(f"seed must be an int in [0, 2**32) or None, got {seed}")
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=bool(warn_only))
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds every CUDA device too
    return seed


def _bindable(port: int) -> Optional[socket.socket]:
    """A TCP socket bound to ``port`` on every interface, or None if the
    port is taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("", port))
    except OSError:
        sock.close()
        return None
    return sock


def get_unused_port(start: int, end: int = 65536, n: int = 1) -> Union[int, List[int]]:
    """Find ``n`` consecutive TCP ports in ``[start, end)`` that can be bound
    now (each is really bound, then released before returning).

    Another process may of course take a port between the return and its use.

    Args:
        start (int): first port tried (1 to 65535).
        end (int): end of the range (exclusive, at most 65536).
        n (int): how many consecutive ports.

    Returns:
        int | list[int]: the port for ``n=1``, else the list of ``n`` ports.

    Raises:
        TypeError: ``start``, ``end`` or ``n`` is not an int.
        ValueError: a bad range or ``n``.
        OSError: (``socket.error``) no ``n`` consecutive free ports in the range.
    """
    start = check_int(start, "start", 1)
    end = check_int(end, "end", 1)
    n = check_int(n, "n", 1)
    if not (start < end <= 65536 and start <= 65535):
        raise ValueError(f"need 0 < start < end <= 65536; got start={start}, end={end}")
    held: List[socket.socket] = []
    try:
        for port in range(start, end):
            sock = _bindable(port)
            if sock is None:
                for s in held:
                    s.close()
                held = []
                continue
            held.append(sock)
            if len(held) == n:
                return port if n == 1 else list(range(port - n + 1, port + 1))
    finally:
        for s in held:
            s.close()
    raise OSError(f"no {n} consecutive unused port(s) in [{start}, {end})")


def run_under_record_context(
    func: Callable[[], T],
    summary_dir: str,
    summary_interval: int,
    flush_secs: int,
    summarize_first_interval: bool = True,
    summary_max_queue: int = 10,
) -> T:
    """Run ``func()`` with a TensorBoard writer for ``summary_dir`` as the
    ``alf.summary`` writer of this thread (``alf.summary.push_summary_writer``),
    recording summaries only at global counter values ``c`` with
    ``c % summary_interval == 0`` (and every ``c < summary_interval`` if
    ``summarize_first_interval``).

    The previous writer is restored (``pop_summary_writer``) and the new writer
    closed (flushed) when ``func`` returns or raises.

    Args:
        func (Callable): what to run, called without arguments.
        summary_dir (str): where the event files go (``~`` expanded).
        summary_interval (int): how often (in global-counter steps) to record.
        flush_secs (float): flush the writer every so many seconds.
        summarize_first_interval (bool): record every step of the first
            interval too.
        summary_max_queue (int): flush when more summaries are queued.

    Returns:
        What ``func`` returned.

    Raises:
        TypeError: ``summary_interval`` or ``summary_max_queue`` is not an int,
            or ``flush_secs`` not a real number.
        ValueError: a non-positive ``summary_interval``, ``flush_secs`` or
            ``summary_max_queue`` (before any file is created).
    """
    summary_interval = check_int(summary_interval, "summary_interval", 1)
    summary_max_queue = check_int(summary_max_queue, "summary_max_queue", 1)
    check_real(flush_secs, "flush_secs", 0, exclusive_minimum=True)
    if not callable(func):
        raise TypeError(f"func must be callable; got {func!r}")
    writer = alf.summary.create_summary_writer(
        abs_path(summary_dir), flush_secs=flush_secs, max_queue=summary_max_queue
    )
    counter = alf.summary.get_global_counter()
    first = bool(summarize_first_interval)

    def should_record() -> bool:
        step = int(counter)
        return (first and step < summary_interval) or step % summary_interval == 0

    # alf.summary's writer stack: scoped to this thread, restored exactly
    alf.summary.push_summary_writer(writer)
    try:
        with alf.summary.record_if(should_record):
            return func()
    finally:
        alf.summary.pop_summary_writer()
        writer.close()


def log_metrics(metrics: Iterable[Any], prefix: str = "") -> None:
    """Log ``name = result()`` of each metric at INFO level (logger
    ``"alf"``), one per line after ``prefix``.

    Args:
        metrics (list[StepMetric]): objects with a ``name`` and a ``result()``.
        prefix (str): first line of the message.
    """
    lines = [f"{m.name} = {m.result()}" for m in metrics]
    _logger.info("%s \n\t\t %s", prefix, "\n\t\t ".join(lines), stacklevel=2)


def _in_docker(dockerenv: str = "/.dockerenv", cgroup: str = "/proc/self/cgroup") -> bool:
    if os.path.exists(dockerenv):
        return True
    with contextlib.suppress(OSError):
        with open(cgroup, encoding="utf-8", errors="replace") as f:
            return any("docker" in line for line in f)
    return False


def is_inside_docker_container() -> bool:
    """Whether this process runs inside a docker container: ``/.dockerenv``
    exists or ``/proc/self/cgroup`` mentions docker."""
    return _in_docker()
