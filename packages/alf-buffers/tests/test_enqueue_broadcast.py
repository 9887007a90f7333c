"""RingBuffer.enqueue stores a batch that broadcasts to [B] + spec.shape, as
ALF's assignment does (ALF's replay buffer enqueues [B, 1] into a spec of
[20])."""

import pytest
import torch

from alf.tensor_specs import TensorSpec
from alf.utils.data_buffer import RingBuffer

SPEC = {"obs": TensorSpec((20,), torch.float32), "id": TensorSpec((), torch.int64)}


def test_enqueue_broadcasts_leaves_to_the_spec_shape(device):
    rb = RingBuffer(SPEC, num_environments=3, max_length=4, device=device)
    # [B, 1] into [20]: each environment's value repeated along the 20 entries
    obs = torch.tensor([[1.0], [2.0], [3.0]], device=device)
    assert rb.enqueue({"obs": obs, "id": torch.tensor([7, 8, 9], device=device)})
    # a leaf without the batch dim goes to every environment (env_ids subset)
    rb.enqueue(
        {"obs": torch.arange(20.0, device=device), "id": torch.tensor([5], device=device)},
        env_ids=torch.tensor([0, 2]),
    )
    out = rb.dequeue(torch.tensor([0, 2]), n=2)
    expected_first = torch.tensor([1.0, 3.0], device=device)[:, None].expand(2, 20)
    torch.testing.assert_close(out["obs"][:, 0], expected_first)
    torch.testing.assert_close(out["obs"][:, 1], torch.arange(20.0, device=device).expand(2, 20))
    assert out["id"].tolist() == [[7, 5], [9, 5]]
    # the stored rows are independent copies, not views of the input
    obs.fill_(-1.0)
    out = rb.dequeue(torch.tensor([1]), n=1)
    torch.testing.assert_close(out["obs"][0, 0], torch.full((20,), 2.0, device=device))


def test_enqueue_refuses_what_does_not_broadcast(device):
    rb = RingBuffer(SPEC, num_environments=2, max_length=3, device=device)
    before = rb.get_current_position().clone()
    with pytest.raises(ValueError, match="obs"):
        rb.enqueue({"obs": torch.zeros(2, 3, device=device), "id": torch.zeros(2, dtype=torch.int64)})
    with pytest.raises(ValueError):
        rb.enqueue({"obs": torch.zeros(3, 20, device=device), "id": torch.zeros(3, dtype=torch.int64)})
    assert torch.equal(rb.get_current_position(), before)
