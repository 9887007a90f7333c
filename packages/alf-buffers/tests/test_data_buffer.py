"""DataBuffer against a Python list of everything added."""

import collections

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alf.tensor_specs import TensorSpec
from alf.utils.data_buffer import DataBuffer

SPEC = (TensorSpec((3,), torch.float32), TensorSpec((), torch.int64))


def batch_of(ids, device):
    ids_t = torch.tensor(ids, dtype=torch.int64, device=device)
    obs = ids_t.float().unsqueeze(1) * torch.tensor([1.0, 2.0, 3.0], device=device)
    return (obs, ids_t)


def stored_ids(result):
    obs, ids = result
    assert torch.equal(obs[:, 0], ids.float()) and torch.equal(obs[:, 2], 3 * ids.float())
    return ids.tolist()


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    capacity=st.integers(1, 8),
    batch_sizes=st.lists(st.integers(0, 12), min_size=1, max_size=8),
    data=st.data(),
)
def test_add_batch_keeps_newest(device, capacity, batch_sizes, data):
    db = DataBuffer(SPEC, capacity, device=device)
    model = collections.deque(maxlen=capacity)
    next_id = written = 0
    for size in batch_sizes:
        ids = list(range(next_id, next_id + size))
        next_id += size
        db.add_batch(batch_of(ids, device))
        model.extend(ids)
        written += min(size, capacity)  # items of a batch beyond capacity are never written
        assert int(db.current_size) == len(model)
        assert int(db.current_pos) == written
        assert db.is_full() == (len(model) == capacity)
        assert stored_ids(db.get_batch_by_indices(torch.arange(int(db.current_size)))) == list(model)
        if model:
            indices = data.draw(st.lists(st.integers(0, len(model) - 1), min_size=1, max_size=6))
            got = stored_ids(db.get_batch_by_indices(torch.tensor(indices, device=device)))
            assert got == [model[i] for i in indices]
            sample = stored_ids(db.get_batch(5))
            assert len(sample) == 5 and set(sample) <= set(model)


def test_get_batch_is_uniform(device):
    """Counts of 20,000 draws over 8 stored items (after wrapping) agree with
    the uniform distribution (chi-square, 7 dof, far beyond the 0.999 quantile
    of 24.3 would mean a bias)."""
    torch.manual_seed(1)
    db = DataBuffer(SPEC, 8, device=device)
    db.add_batch(batch_of(list(range(13)), device))
    counts = collections.Counter(stored_ids(db.get_batch(20000)))
    assert set(counts) == set(range(5, 13))
    expected = 20000 / 8
    chi2 = sum((c - expected) ** 2 / expected for c in counts.values())
    assert chi2 < 24.3


def test_get_batch_partly_filled_after_removal(device):
    """A ring whose earliest item is not in slot 0 and is not full samples
    only the stored items."""
    torch.manual_seed(2)
    db = DataBuffer(SPEC, 6, device=device)
    db.add_batch(batch_of(list(range(4)), device))
    db.remove_up_to(2)  # inherited from RingBuffer: holds items 2, 3 in slots 2, 3
    assert stored_ids(db.get_batch_by_indices(torch.arange(int(db.current_size)))) == [2, 3]
    assert set(stored_ids(db.get_batch(200))) == {2, 3}
    db.add_batch(batch_of([4, 5, 6, 7], device))  # slots 4, 5, 0, 1
    assert stored_ids(db.get_batch_by_indices(torch.arange(int(db.current_size)))) == [2, 3, 4, 5, 6, 7]
    assert stored_ids(db.get_batch_by_indices(torch.tensor([0, 5, 3]))) == [2, 7, 5]


def test_empty_and_clear(device):
    db = DataBuffer(SPEC, 4, device=device)
    assert int(db.current_size) == 0 and not db.is_full()
    obs, ids = db.get_batch_by_indices(torch.arange(0))
    assert obs.shape == (0, 3) and ids.shape == (0,)
    obs, ids = db.get_all()  # ALF's layout: every slot, zeros when unwritten
    assert obs.shape == (4, 3) and ids.shape == (4,) and not ids.any()
    with pytest.raises(ValueError, match="empty"):
        db.get_batch(2)
    db.add_batch(batch_of([1, 2, 3, 4, 5], device))
    assert db.is_full()
    db.clear()
    assert int(db.current_size) == 0 and int(db.current_pos) == 0
    assert stored_ids(db.get_batch_by_indices(torch.tensor([], dtype=torch.int64))) == []


def test_get_batch_follows_torch_seed(device):
    db = DataBuffer(SPEC, 16, device=device)
    db.add_batch(batch_of(list(range(16)), device))
    torch.manual_seed(7)
    first = stored_ids(db.get_batch(10))
    torch.manual_seed(7)
    assert stored_ids(db.get_batch(10)) == first


def test_get_all_returns_the_storage_in_slot_order(device):
    """ALF's layout: [capacity] + spec.shape in storage order (slot
    pos % capacity holds the item written at position pos), views of the
    storage; unwritten slots hold zeros."""
    db = DataBuffer(SPEC, 5, device=device)
    db.add_batch(batch_of([1, 2, 3], device))
    obs, ids = db.get_all()
    assert ids.tolist() == [1, 2, 3, 0, 0]
    assert obs.shape == (5, 3) and obs[:, 1].tolist() == [2.0, 4.0, 6.0, 0.0, 0.0]
    db.add_batch(batch_of([4, 5, 6, 7], device))  # positions 3..6 -> slots 3, 4, 0, 1
    assert stored_ids(db.get_all()) == [6, 7, 3, 4, 5]
    obs, ids = db.get_all()
    db.add_batch(batch_of([8], device))  # slot 2: a view shows the write
    assert ids[2].item() == 8
