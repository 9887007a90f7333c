"""Shared fixtures: the device matrix and a deterministic hypothesis profile."""

import pytest
import torch
from hypothesis import HealthCheck, settings

settings.register_profile(
    "alf-dist",
    derandomize=True,
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile("alf-dist")

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request):
    """Each test taking ``device`` runs on the CPU and, where available, CUDA."""
    torch.manual_seed(0)
    return torch.device(request.param)
