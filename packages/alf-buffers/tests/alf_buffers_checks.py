"""Checks shared by the bad-input and checkpoint tests: that a rejected call
left a buffer's stored data and positions exactly as they were."""

import torch


def snapshot(module):
    """Copies of every entry of ``module.state_dict()``."""
    return {k: v.clone() for k, v in module.state_dict().items()}


def assert_unchanged(module, before):
    """``module.state_dict()`` equals the ``snapshot`` ``before``, entry by entry."""
    after = module.state_dict()
    assert set(after) == set(before)
    for key, value in before.items():
        assert torch.equal(after[key], value), key
