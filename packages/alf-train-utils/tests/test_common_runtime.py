"""Seeding, free ports, the summary record context, metric logging and
docker detection of alf.utils.common."""

import logging
import os
import random
import socket

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import alf.summary
from alf.utils._common_runtime import _in_docker
from alf.utils.common import (
    get_unused_port,
    is_inside_docker_container,
    log_metrics,
    run_under_record_context,
    set_random_seed,
)

# --------------------------------------------------------------------------
# set_random_seed


@pytest.fixture
def restore_determinism():
    saved = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
        os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    )
    yield
    torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[2:4]
    if saved[4] is None:
        os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
    else:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = saved[4]
    torch.manual_seed(0)


def draws():
    return random.random(), float(np.random.rand()), torch.rand(3).tolist()


def test_set_random_seed_seeds_all_generators(restore_determinism):
    random.seed(1234)
    np.random.seed(1234)
    torch.manual_seed(1234)
    want = draws()
    torch.use_deterministic_algorithms(False)
    assert set_random_seed(1234) == 1234
    assert draws() == want
    assert torch.are_deterministic_algorithms_enabled()
    assert not torch.is_deterministic_algorithms_warn_only_enabled()
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] in (":4096:8", ":16:8")
    set_random_seed(np.int64(7), warn_only=True)
    assert torch.is_deterministic_algorithms_warn_only_enabled()


def test_set_random_seed_none_picks_a_reusable_seed(restore_determinism):
    torch.use_deterministic_algorithms(False)
    seed = set_random_seed(None)
    assert isinstance(seed, int) and 0 <= seed < 2**32
    first = draws()
    assert not torch.are_deterministic_algorithms_enabled()  # left as it was
    assert set_random_seed(seed) == seed
    assert draws() == first


@pytest.mark.parametrize(
    "bad, error",
    [(-1, ValueError), (2**32, ValueError), (1.5, TypeError), ("3", TypeError), (True, TypeError)],
)
def test_set_random_seed_bad_seed(bad, error, restore_determinism):
    torch.use_deterministic_algorithms(False)
    with pytest.raises(error, match=r"seed must be an int in \[0, 2\*\*32\) or None, got"):
        set_random_seed(bad)
    assert not torch.are_deterministic_algorithms_enabled()


# --------------------------------------------------------------------------
# get_unused_port


def listening_socket(port=0):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("", port))
    sock.listen(1)
    return sock


def test_get_unused_port_really_binds():
    port = get_unused_port(20000, 40000)
    assert isinstance(port, int) and 20000 <= port < 40000
    listening_socket(port).close()  # we can bind it ourselves
    ports = get_unused_port(30000, 40000, n=3)
    assert len(ports) == 3 and ports == list(range(ports[0], ports[0] + 3))
    for p in ports:
        listening_socket(p).close()


def test_get_unused_port_skips_taken_ports():
    taken = listening_socket()  # a port the kernel chose, now in use
    try:
        p = taken.getsockname()[1]
        with pytest.raises(OSError, match="no 1 consecutive"):
            get_unused_port(p, p + 1)
        got = get_unused_port(p, min(p + 200, 65536))
        assert got != p and got > p
        if p + 3 <= 65536:
            # a run of 2 cannot include the taken port
            run = get_unused_port(max(1024, p - 1), min(p + 200, 65536), n=2)
            assert p not in run
    finally:
        taken.close()


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(start=0), ValueError, "start must be >= 1, got 0"),
        (dict(start=100, end=100), ValueError, "need 0 < start < end <= 65536"),
        (dict(start=10, end=70000), ValueError, "need 0 < start < end <= 65536"),
        (dict(start=10, n=0), ValueError, "n must be >= 1, got 0"),
        (dict(start=10.0), TypeError, "start must be an int, got float"),
        (dict(start=10, end=True), TypeError, "end must be an int, got bool"),
    ],
)
def test_get_unused_port_bad_range(kwargs, error, match):
    with pytest.raises(error, match=match):
        get_unused_port(**kwargs)


# --------------------------------------------------------------------------
# run_under_record_context


def scalar_steps(path, tag):
    acc = EventAccumulator(str(path), size_guidance={"scalars": 0})
    acc.Reload()
    return [e.step for e in acc.Scalars(tag)], [e.value for e in acc.Scalars(tag)]


def write_steps(n):
    def body():
        for step in range(n):
            alf.summary.set_global_counter(step)
            alf.summary.scalar("x", float(step) * 2)
        return "done"

    return body


@pytest.mark.parametrize("first", [True, False])
def test_run_under_record_context_writes_real_events(tmp_path, first):
    previous = alf.summary.get_default_writer()
    out = run_under_record_context(
        write_steps(23),
        str(tmp_path),
        summary_interval=5,
        flush_secs=30,
        summarize_first_interval=first,
    )
    assert out == "done"
    assert alf.summary.get_default_writer() is previous
    steps, values = scalar_steps(tmp_path, "x")
    want = [s for s in range(23) if s % 5 == 0 or (first and s < 5)]
    assert steps == want and values == [2.0 * s for s in want]
    alf.summary.reset_global_counter()


def test_run_under_record_context_restores_on_exception(tmp_path):
    previous = alf.summary.get_default_writer()

    def fails():
        alf.summary.scalar("y", 1.0)
        raise RuntimeError("boom")

    alf.summary.reset_global_counter()
    with pytest.raises(RuntimeError, match="boom"):
        run_under_record_context(fails, str(tmp_path / "run"), 10, flush_secs=30)
    assert alf.summary.get_default_writer() is previous
    assert scalar_steps(tmp_path / "run", "y") == ([0], [1.0])  # closed, hence flushed


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(summary_interval=0), ValueError, "summary_interval must be >= 1, got 0"),
        (dict(summary_interval=2.5), TypeError, "summary_interval must be an int, got float"),
        (dict(flush_secs=0), ValueError, "flush_secs"),
        (dict(summary_max_queue=-1), ValueError, "summary_max_queue must be >= 1, got -1"),
    ],
)
def test_run_under_record_context_bad_arguments(tmp_path, kwargs, error, match):
    args = dict(summary_interval=5, flush_secs=1) | kwargs
    with pytest.raises(error, match=match):
        run_under_record_context(lambda: None, str(tmp_path / "d"), **args)
    assert not (tmp_path / "d").exists()


def test_run_under_record_context_needs_a_callable(tmp_path):
    with pytest.raises(TypeError, match="func must be callable; got 3"):
        run_under_record_context(3, str(tmp_path / "d"), summary_interval=1, flush_secs=1)
    assert not (tmp_path / "d").exists()


# --------------------------------------------------------------------------
# log_metrics, docker


class Metric:
    def __init__(self, name, value):
        self.name, self._value = name, value

    def result(self):
        return self._value


def test_log_metrics(caplog):
    caplog.set_level(logging.INFO, logger="alf")
    log_metrics(
        [Metric("AverageReturn", 1.5), Metric("EnvSteps", torch.tensor(3))], prefix="iter 7"
    )
    (record,) = caplog.records
    assert record.levelno == logging.INFO and record.name == "alf"
    assert record.getMessage() == "iter 7 \n\t\t AverageReturn = 1.5\n\t\t EnvSteps = 3"


def test_is_inside_docker_container(tmp_path):
    assert isinstance(is_inside_docker_container(), bool)
    marker = tmp_path / ".dockerenv"
    cgroup = tmp_path / "cgroup"
    cgroup.write_text("0::/user.slice\n")
    assert not _in_docker(str(marker), str(cgroup))
    assert not _in_docker(str(marker), str(tmp_path / "missing"))
    cgroup.write_text("12:pids:/docker/0123abcd\n")
    assert _in_docker(str(marker), str(cgroup))
    marker.touch()
    assert _in_docker(str(marker), str(tmp_path / "missing"))
