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

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request):
    """Each test taking ``device`` runs on the CPU and, where available, CUDA."""
    torch.manual_seed(0)
    return torch.device(request.param)
