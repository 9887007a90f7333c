"""Shared fixtures: the device matrix and a deterministic hypothesis profile."""

import pytest
import torch
from hypothesis import HealthCheck, settings

settings.register_profile(
    "alf",
    derandomize=True,
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("alf")

# This suite forks worker processes (the kill tests, multiprocess buffers,
# DDP). A child forked from a process whose OpenMP thread pool has started
# can hang in its first parallel region (GNU libgomp is not fork-safe), which
# showed up as rare hangs of forked kill-test workers: the test process keeps
# torch on one thread, so it never starts that pool.
torch.set_num_threads(1)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request):
    """Each test taking ``device`` runs on the CPU and, where available, CUDA."""
    torch.manual_seed(0)
    return torch.device(request.param)
