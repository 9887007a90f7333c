"""Checkpoints: state_dict holds data and positions; a resumed buffer returns
the same items in the same order."""

import io
import os
import sys

import pytest
import torch

import alf.nest as nest
from alf.tensor_specs import TensorSpec
from alf.utils.data_buffer import DataBuffer, RingBuffer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from alf_buffers_checks import assert_unchanged, snapshot  # noqa: E402

SPEC = {"obs": TensorSpec((2, 3), torch.uint8), "reward": TensorSpec((), torch.float32)}


def fill_ring(rb, device, steps):
    for step in range(steps):
        ids = torch.arange(rb.num_environments, device=device) * 100 + step
        rb.enqueue(
            {
                "obs": (ids % 256).to(torch.uint8).view(-1, 1, 1).expand(-1, 2, 3).clone(),
                "reward": ids.float(),
            }
        )


def roundtrip(module):
    blob = io.BytesIO()
    torch.save(module.state_dict(), blob)
    blob.seek(0)
    return torch.load(blob)


def test_ring_buffer_state_dict_roundtrip(device):
    rb = RingBuffer(SPEC, 3, max_length=4, device=device)
    fill_ring(rb, device, 6)
    rb.dequeue(torch.tensor([1]), n=2)
    state = roundtrip(rb)
    assert set(state) == {"_buffer0_obs", "_buffer1_reward", "_current_size", "_current_pos"}
    assert state["_current_pos"].tolist() == [6, 6, 6]
    assert state["_current_size"].tolist() == [4, 2, 4]

    resumed = RingBuffer(SPEC, 3, max_length=4, device=device)
    resumed.load_state_dict(state)
    assert torch.equal(resumed.get_current_position(), rb.get_current_position())
    # steps 0..5 through rings of 4 keep steps 2..5; environment 1 lost two more
    expected = {0: [2, 3, 4, 5], 1: [104, 105], 2: [202, 203, 204, 205]}
    for env, values in expected.items():
        ids = torch.tensor([env])
        n = int(rb.get_current_position()[env] - rb.get_earliest_position(ids)[0])
        a, b = rb.dequeue(ids, n=n), resumed.dequeue(ids, n=n)
        assert b["reward"].tolist() == [[float(v) for v in values]]
        assert b["obs"][0, :, 0, 0].tolist() == [v % 256 for v in values]
        assert torch.equal(a["obs"], b["obs"]) and torch.equal(a["reward"], b["reward"])
    assert resumed.get_earliest_position(torch.arange(3)).tolist() == [6, 6, 6]


def test_data_buffer_resumes_same_samples(device):
    db = DataBuffer(SPEC, 5, device=device)
    for start in (0, 3, 6):
        ids = torch.arange(start, start + 3, device=device)
        db.add_batch(
            {
                "obs": ids.to(torch.uint8).view(-1, 1, 1).expand(-1, 2, 3).clone(),
                "reward": ids.float(),
            }
        )
    resumed = DataBuffer(SPEC, 5, device=device)
    resumed.load_state_dict(roundtrip(db))
    assert resumed.get_batch_by_indices(torch.arange(5))["reward"].tolist() == [4.0, 5.0, 6.0, 7.0, 8.0]
    torch.manual_seed(3)
    a = db.get_batch(16)
    torch.manual_seed(3)
    b = resumed.get_batch(16)
    assert torch.equal(a["obs"], b["obs"]) and torch.equal(a["reward"], b["reward"])
    assert int(resumed.current_pos) == 9 and int(resumed.current_size) == 5


def test_load_across_devices(device):
    """A checkpoint taken on one device restores a buffer on another."""
    rb = RingBuffer(SPEC, 2, max_length=3, device="cpu")
    fill_ring(rb, "cpu", 4)
    resumed = RingBuffer(SPEC, 2, max_length=3, device=device)
    resumed.load_state_dict(rb.state_dict())
    assert resumed.dequeue(n=3)["reward"].tolist() == [[1.0, 2.0, 3.0], [101.0, 102.0, 103.0]]


@pytest.mark.parametrize(
    "other, match",
    [
        (dict(num_environments=3, max_length=8), r"_buffer0_obs must have shape \[3, 4, 2, 3\]"),
        (dict(num_environments=2, max_length=4), r"_buffer0_obs must have shape \[3, 4, 2, 3\]"),
        (
            dict(num_environments=3, max_length=4, spec={**SPEC, "obs": TensorSpec((2, 3))}),
            "dtype torch.uint8; the checkpoint has shape .* dtype torch.float32",
        ),
        (
            dict(num_environments=3, max_length=4, spec={"o": SPEC["obs"], "r": SPEC["reward"]}),
            r"the checkpoint lacks \['_buffer0_obs', '_buffer1_reward'\]",
        ),
    ],
    ids=["longer rings", "fewer environments", "another dtype", "another spec"],
)
@pytest.mark.parametrize("strict", [True, False])
def test_load_of_another_buffer_is_refused_and_changes_nothing(device, other, match, strict):
    """A checkpoint of a buffer with another shape, dtype or spec is refused
    as a whole: not even the positions are taken over."""
    other = dict(other)
    source = RingBuffer(other.pop("spec", SPEC), device=device, **other)
    for _ in range(5):
        source.enqueue(
            nest.map_structure(
                lambda s: torch.ones((source.num_environments,) + tuple(s.shape), dtype=s.dtype),
                source._data_spec,
            )
        )
    rb = RingBuffer(SPEC, 3, max_length=4, device=device)
    fill_ring(rb, device, 2)
    before = snapshot(rb)
    with pytest.raises(RuntimeError, match=match):
        rb.load_state_dict(source.state_dict(), strict=strict)
    assert_unchanged(rb, before)
    assert rb.get_current_position().tolist() == [2, 2, 2]
    assert rb.dequeue(n=2)["reward"].tolist() == [[0.0, 1.0], [100.0, 101.0], [200.0, 201.0]]


@pytest.mark.parametrize(
    "size, pos",
    [([5, 0, 0], [6, 0, 0]), ([-1, 0, 0], [0, 0, 0]), ([3, 0, 0], [2, 0, 0])],
    ids=["more than max_length", "negative", "more than written"],
)
def test_load_of_inconsistent_positions_is_refused(device, size, pos):
    rb = RingBuffer(SPEC, 3, max_length=4, device=device)
    fill_ring(rb, device, 1)
    state = snapshot(rb)
    state["_current_size"] = torch.tensor(size)
    state["_current_pos"] = torch.tensor(pos)
    before = snapshot(rb)
    with pytest.raises(RuntimeError, match=r"0 <= size <= min\(pos, max_length=4\)"):
        rb.load_state_dict(state)
    assert_unchanged(rb, before)


def test_data_buffer_load_of_another_capacity_changes_nothing(device):
    small = DataBuffer(SPEC, 3, device=device)
    small.add_batch({"obs": torch.ones(3, 2, 3, dtype=torch.uint8), "reward": torch.ones(3)})
    db = DataBuffer(SPEC, 5, device=device)
    db.add_batch(
        {"obs": torch.zeros(2, 2, 3, dtype=torch.uint8), "reward": torch.tensor([4.0, 5.0])}
    )
    with pytest.raises(RuntimeError, match=r"must have shape \[1, 5, 2, 3\]"):
        db.load_state_dict(small.state_dict())
    assert int(db.current_size) == 2 and int(db.current_pos) == 2
    assert db.get_batch_by_indices(torch.arange(2))["reward"].tolist() == [4.0, 5.0]



@pytest.mark.parametrize("allow_multiprocess", [False, True])
def test_checkpoint_without_the_buffer_leaves_it_unchanged(allow_multiprocess):
    """load_state_dict(strict=False) of an enclosing module whose checkpoint
    lacks the buffer's entries keeps what the buffer holds."""
    outer = torch.nn.Module()
    outer.rb = RingBuffer(SPEC, 2, max_length=3, allow_multiprocess=allow_multiprocess)
    fill_ring(outer.rb, "cpu", 2)
    before = snapshot(outer.rb)
    result = outer.load_state_dict({}, strict=False)
    assert len(result.missing_keys) == 4
    assert_unchanged(outer.rb, before)
