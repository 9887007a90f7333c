"""Bad input is refused with a message naming the argument, before anything
stored changes."""

import os
import sys

import pytest
import torch

from alf.tensor_specs import TensorSpec
from alf.utils.data_buffer import DataBuffer, RingBuffer, atomic

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from alf_buffers_checks import assert_unchanged, snapshot  # noqa: E402

SPEC = {"obs": {"image": TensorSpec((2, 2), torch.uint8)}, "reward": TensorSpec(())}


def good_batch(b, device="cpu"):
    return {
        "obs": {"image": torch.ones(b, 2, 2, dtype=torch.uint8, device=device)},
        "reward": torch.full((b,), 7.0, device=device),
    }


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"num_environments": 0}, ValueError, "num_environments must be >= 1; got 0"),
        ({"num_environments": 2, "max_length": 0}, ValueError, "max_length must be >= 1; got 0"),
        ({"num_environments": 2, "max_length": -3}, ValueError, "max_length must be >= 1; got -3"),
        ({"num_environments": 2.0}, TypeError, "num_environments must be an int"),
        ({"num_environments": True}, TypeError, "num_environments must be an int"),
    ],
)
def test_ring_buffer_constructor(kwargs, error, match):
    with pytest.raises(error, match=match):
        RingBuffer(SPEC, **kwargs)


def test_data_spec_leaves_must_be_specs():
    with pytest.raises(TypeError, match="data_spec at 'obs.image' must be a TensorSpec"):
        RingBuffer({"obs": {"image": "uint8"}}, 1)
    with pytest.raises(ValueError, match="at least one TensorSpec"):
        RingBuffer({}, 1)


@pytest.mark.parametrize("capacity", [0, -1])
def test_data_buffer_capacity(capacity):
    with pytest.raises(ValueError, match=f"capacity must be >= 1; got {capacity}"):
        DataBuffer(SPEC, capacity)


@pytest.fixture
def filled(device):
    rb = RingBuffer(SPEC, 3, max_length=2, device=device)
    rb.enqueue(good_batch(3, device))
    return rb


@pytest.mark.parametrize(
    "env_ids, error, match",
    [
        ([0, 3], ValueError, r"env_ids must lie in \[0, 3\); got 3"),
        ([-1], ValueError, r"env_ids must lie in \[0, 3\); got -1"),
        ([1, 1], ValueError, r"must not repeat an id; got \[1\]"),
        ([[0, 1]], ValueError, "env_ids must be 1-D"),
        ([0.0, 1.0], TypeError, "env_ids must have an integer dtype"),
        ("01", TypeError, "env_ids must be a 1-D integer Tensor or sequence"),
    ],
)
def test_env_ids(filled, env_ids, error, match):
    before = snapshot(filled)
    b = len(env_ids) if isinstance(env_ids, list) else 2
    with pytest.raises(error, match=match):
        filled.enqueue(good_batch(b), env_ids=env_ids)
    with pytest.raises(error, match=match):
        filled.dequeue(env_ids=env_ids)
    with pytest.raises(error, match=match):
        filled.clear(env_ids=env_ids)
    with pytest.raises(error, match=match):
        filled.remove_up_to(1, env_ids=env_ids)
    assert_unchanged(filled, before)


def test_env_ids_as_tensor(filled, device):
    before = snapshot(filled)
    with pytest.raises(ValueError, match="must not repeat"):
        filled.enqueue(good_batch(2), env_ids=torch.tensor([2, 2], device=device))
    assert_unchanged(filled, before)


def test_item_disagreeing_with_spec_names_path(filled):
    before = snapshot(filled)
    bad_shape = good_batch(3)
    bad_shape["obs"]["image"] = torch.ones(3, 2, 3, dtype=torch.uint8)
    with pytest.raises(ValueError, match=r"batch at 'obs.image' must have shape \[3, 2, 2\]"):
        filled.enqueue(bad_shape)
    bad_dtype = good_batch(3)
    bad_dtype["reward"] = torch.ones(3, dtype=torch.float64)
    with pytest.raises(TypeError, match="batch at 'reward' must have dtype torch.float32"):
        filled.enqueue(bad_dtype)
    wrong_batch = good_batch(2)  # 3 environments, 2 items
    with pytest.raises(ValueError, match=r"batch at 'obs.image' must have shape \[3, 2, 2\]"):
        filled.enqueue(wrong_batch)
    with pytest.raises(ValueError, match="batch does not match data_spec"):
        filled.enqueue({"obs": torch.ones(3, 2, 2, dtype=torch.uint8), "reward": torch.ones(3)})
    not_tensor = good_batch(3)
    not_tensor["reward"] = [1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="batch does not match data_spec"):
        filled.enqueue(not_tensor)
    not_tensor["reward"] = 1.0
    with pytest.raises(TypeError, match="batch at 'reward' must be a torch.Tensor"):
        filled.enqueue(not_tensor)
    assert_unchanged(filled, before)


def test_dequeue_more_than_present(filled):
    before = snapshot(filled)
    with pytest.raises(AssertionError, match="not enough data to dequeue n=2"):
        filled.dequeue(n=2)
    # more than max_length is never present: the documented AssertionError when
    # not blocking, a ValueError for a blocking call that could never return
    with pytest.raises(
        AssertionError, match="not enough data to dequeue n=3: n must be <= max_length=2"
    ):
        filled.dequeue(n=3)
    with pytest.raises(ValueError, match="n must be <= max_length=2"):
        filled.dequeue(n=3, blocking=True)
    with pytest.raises(ValueError, match="n must be >= 1; got 0"):
        filled.dequeue(n=0)
    with pytest.raises(ValueError, match="n must be >= 0; got -1"):
        filled.remove_up_to(-1)
    assert_unchanged(filled, before)


def test_data_buffer_bad_batches_and_indices(device):
    db = DataBuffer(SPEC, 4, device=device)
    db.add_batch(good_batch(3, device))
    before = snapshot(db)
    ragged = good_batch(3)
    ragged["reward"] = torch.ones(2)
    with pytest.raises(ValueError, match=r"batch at 'reward' must have shape \[3\]"):
        db.add_batch(ragged)
    scalar = {"obs": {"image": torch.ones(2, 2, dtype=torch.uint8)}, "reward": torch.ones(())}
    with pytest.raises(ValueError, match="batch at 'obs.image' must have shape"):
        db.add_batch(scalar)
    with pytest.raises(ValueError, match=r"indices must lie in \[0, current_size=3\)"):
        db.get_batch_by_indices(torch.tensor([0, 3]))
    with pytest.raises(ValueError, match=r"indices must lie in \[0, current_size=3\)"):
        db.get_batch_by_indices(torch.tensor([-1]))
    with pytest.raises(TypeError, match="indices must have an integer dtype"):
        db.get_batch_by_indices(torch.tensor([0.0]))
    with pytest.raises(TypeError, match="indices must be a torch.Tensor"):
        db.get_batch_by_indices([0])
    with pytest.raises(ValueError, match="indices must be 1-D"):
        db.get_batch_by_indices(torch.zeros(1, 1, dtype=torch.int64))
    with pytest.raises(ValueError, match="batch_size must be >= 0"):
        db.get_batch(-1)
    assert_unchanged(db, before)


def test_atomic_needs_lock():
    class NoLock:
        @atomic
        def f(self):
            return 1

    class WithoutLock:
        _lock = None

        @atomic
        def f(self):
            return 2

    with pytest.raises(TypeError, match="needs self._lock"):
        NoLock().f()
    assert WithoutLock().f() == 2


def sparse_reward(b):
    return torch.full((b,), 5.0).to_sparse()


@pytest.mark.parametrize("env_ids", [None, [2, 0, 1]], ids=["all envs", "explicit ids"])
def test_sparse_leaf_after_a_dense_one_changes_nothing(env_ids):
    """A full ring: the next write goes to the slot of the oldest items. A
    sparse leaf late in the nest is refused before the dense leaf before it
    is written there."""
    rb = RingBuffer(SPEC, 3, max_length=2)
    rb.enqueue(good_batch(3))
    rb.enqueue(good_batch(3))
    before = snapshot(rb)
    bad = good_batch(3)
    bad["obs"]["image"] = torch.full((3, 2, 2), 9, dtype=torch.uint8)
    bad["reward"] = sparse_reward(3)
    with pytest.raises(TypeError, match="batch at 'reward' must be a dense .*sparse_coo"):
        rb.enqueue(bad, env_ids=env_ids)
    assert_unchanged(rb, before)
    assert rb.dequeue(n=2)["obs"]["image"].eq(1).all()


def test_data_buffer_sparse_leaf_changes_nothing():
    db = DataBuffer(SPEC, 2)
    db.add_batch(good_batch(2))
    before = snapshot(db)
    bad = {
        "obs": {"image": torch.full((2, 2, 2), 9, dtype=torch.uint8)},
        "reward": sparse_reward(2),
    }
    with pytest.raises(TypeError, match="batch at 'reward' must be a dense"):
        db.add_batch(bad)
    assert_unchanged(db, before)
    assert db.get_batch_by_indices(torch.arange(int(db.current_size)))["obs"]["image"].eq(1).all()


@pytest.mark.parametrize(
    "env_ids", [[], (), torch.zeros(0, dtype=torch.int32)], ids=["list", "tuple", "tensor"]
)
def test_no_env_ids_is_a_batch_of_nothing(filled, device, env_ids):
    """An empty sequence of ids (which NumPy would make float64) selects no
    environment: nothing is stored or removed, reads are empty."""
    before = snapshot(filled)
    assert filled.enqueue(good_batch(0, device), env_ids=env_ids) is True
    out = filled.dequeue(env_ids=env_ids, n=2)
    assert out["obs"]["image"].shape == (0, 2, 2, 2) and out["reward"].shape == (0, 2)
    assert filled.has_data(env_ids, 2) and filled.has_space(env_ids)
    earliest = filled.get_earliest_position(env_ids)
    assert earliest.dtype == torch.int64 and earliest.shape == (0,)
    filled.remove_up_to(1, env_ids)
    filled.clear(env_ids)
    assert_unchanged(filled, before)


@pytest.mark.parametrize("n", [3, 2**63 - 1, 2**64, 10**30])
def test_remove_up_to_more_than_present_empties(device, n):
    """Any n beyond what is stored, even beyond int64, empties the rings and
    keeps their positions."""
    rb = RingBuffer(SPEC, 3, max_length=2, device=device)
    rb.enqueue(good_batch(3, device))
    rb.enqueue(good_batch(2, device), env_ids=[2, 0])
    rb.remove_up_to(n, env_ids=[0, 1])
    assert rb.get_current_position().tolist() == [2, 1, 2]
    assert rb.get_earliest_position(None).tolist() == [2, 1, 0]
    rb.remove_up_to(n)
    assert not rb.has_data([2], 1)
    assert rb.get_earliest_position(None).tolist() == [2, 1, 2]


@pytest.mark.parametrize("allow_multiprocess", [False, True])
@pytest.mark.parametrize(
    "timeout, error, match",
    [
        (-1, ValueError, "timeout must be >= 0 seconds"),
        (float("nan"), ValueError, "timeout must be >= 0 seconds"),
        (True, TypeError, "timeout must be None or a number of seconds"),
        ("1", TypeError, "timeout must be None or a number of seconds"),
    ],
)
def test_bad_timeout(allow_multiprocess, timeout, error, match):
    rb = RingBuffer(SPEC, 3, max_length=2, allow_multiprocess=allow_multiprocess)
    rb.enqueue(good_batch(3))
    before = snapshot(rb)
    for blocking in (False, True):
        with pytest.raises(error, match=match):
            rb.enqueue(good_batch(3), blocking=blocking, timeout=timeout)
        with pytest.raises(error, match=match):
            rb.dequeue(blocking=blocking, timeout=timeout)
    assert_unchanged(rb, before)
