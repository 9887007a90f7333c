"""RingBuffer against a plain Python model: one ``collections.deque`` per
environment plus a position counter, driven by random operation sequences."""

import collections

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alf.tensor_specs import TensorSpec
from alf.utils.data_buffer import RingBuffer

N_ENVS = 4
SPEC = {"x": TensorSpec((2,), torch.float32), "id": TensorSpec((), torch.int64)}


class DequeModel:
    """What the buffer should hold: per environment the item ids in order."""

    def __init__(self, num_envs, max_length):
        self.max_length = max_length
        self.rings = [collections.deque(maxlen=max_length) for _ in range(num_envs)]
        self.pos = [0] * num_envs

    def enqueue(self, env_ids, ids):
        for e, i in zip(env_ids, ids):
            self.rings[e].append(i)  # maxlen drops the oldest
            self.pos[e] += 1

    def has_data(self, env_ids, n):
        return all(len(self.rings[e]) >= n for e in env_ids)

    def has_space(self, env_ids):
        return all(len(self.rings[e]) < self.max_length for e in env_ids)

    def dequeue(self, env_ids, n):
        return [[self.rings[e].popleft() for _ in range(n)] for e in env_ids]

    def remove_up_to(self, env_ids, n):
        for e in env_ids:
            for _ in range(min(n, len(self.rings[e]))):
                self.rings[e].popleft()

    def clear(self, env_ids):
        for e in env_ids:
            self.rings[e].clear()
            self.pos[e] = 0


def items_for(ids, device):
    ids_t = torch.tensor(ids, dtype=torch.int64, device=device)
    x = torch.stack([ids_t.float(), -ids_t.float()], dim=1)
    return {"x": x, "id": ids_t}


env_subsets = st.one_of(
    st.none(),
    st.permutations(range(N_ENVS)).flatmap(
        lambda p: st.integers(1, N_ENVS).map(lambda k: list(p[:k]))
    ),
)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("enqueue"), env_subsets, st.booleans()),
        st.tuples(st.just("dequeue"), env_subsets, st.integers(1, 4)),
        st.tuples(st.just("remove_up_to"), env_subsets, st.integers(0, 4)),
        st.tuples(st.just("clear"), env_subsets, st.just(0)),
    ),
    min_size=1,
    max_size=40,
)


def check_positions(rb, model, device):
    pos = rb.get_current_position()
    assert pos.device.type == device.type
    assert pos.tolist() == model.pos
    earliest = rb.get_earliest_position(torch.arange(N_ENVS))
    assert earliest.tolist() == [p - len(r) for p, r in zip(model.pos, model.rings)]
    for e in range(N_ENVS):
        for n in (1, 2):
            assert rb.has_data(torch.tensor([e]), n) == model.has_data([e], n)
        assert rb.has_space(torch.tensor([e])) == model.has_space([e])


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations, max_length=st.integers(1, 4))
def test_ring_buffer_matches_deque_model(device, ops, max_length):
    rb = RingBuffer(SPEC, N_ENVS, max_length=max_length, device=device)
    model = DequeModel(N_ENVS, max_length)
    next_id = 0
    for op, env_ids, arg in ops:
        envs = list(range(N_ENVS)) if env_ids is None else env_ids
        ids_arg = None if env_ids is None else torch.tensor(env_ids)
        if op == "enqueue":
            blocking = arg
            ids = list(range(next_id, next_id + len(envs)))
            next_id += len(envs)
            if blocking and not model.has_space(envs):
                # a single-process buffer cannot wait for space: refused, nothing stored
                with pytest.raises(RuntimeError):
                    rb.enqueue(items_for(ids, device), ids_arg, blocking=True)
            else:
                assert rb.enqueue(items_for(ids, device), ids_arg, blocking=blocking) is True
                model.enqueue(envs, ids)
        elif op == "dequeue":
            n = arg
            if n > max_length or not model.has_data(envs, n):
                # never enough data for n > max_length: the same AssertionError
                with pytest.raises(AssertionError):
                    rb.dequeue(ids_arg, n=n)
            else:
                got = rb.dequeue(ids_arg, n=n)
                want = model.dequeue(envs, n)
                assert got["id"].shape == (len(envs), n)
                assert got["x"].shape == (len(envs), n, 2)
                assert got["id"].tolist() == want
                assert got["x"][..., 0].tolist() == [[float(i) for i in row] for row in want]
                assert got["x"][..., 1].tolist() == [[-float(i) for i in row] for row in want]
        elif op == "remove_up_to":
            rb.remove_up_to(arg, ids_arg)
            model.remove_up_to(envs, arg)
        else:
            rb.clear(ids_arg)
            model.clear(envs)
        check_positions(rb, model, device)


def test_overwrite_keeps_latest_per_environment(device):
    """Non-blocking enqueue into a full ring overwrites its oldest item only."""
    rb = RingBuffer(TensorSpec((), torch.int64), 2, max_length=3, device=device)
    for step in range(5):
        rb.enqueue(torch.tensor([step, 100 + step], device=device))
    rb.enqueue(torch.tensor([5], device=device), env_ids=torch.tensor([0]))
    assert rb.get_current_position().tolist() == [6, 5]
    assert rb.get_earliest_position(torch.tensor([0, 1])).tolist() == [3, 2]
    out = rb.dequeue(torch.tensor([1, 0]), n=3)
    assert out.tolist() == [[102, 103, 104], [3, 4, 5]]


def test_positions_and_indices(device):
    """pos grows forever; the slot of pos is pos % max_length."""
    rb = RingBuffer(TensorSpec((), torch.int64), 1, max_length=4, device=device)
    for step in range(10):
        rb.enqueue(torch.tensor([step], device=device))
    storage = rb._buffer
    for pos in range(6, 10):
        assert int(storage[0, rb.circular(pos)]) == pos
    assert rb.circular(torch.tensor([9, 4])).tolist() == [1, 0]


def test_device_placement(device):
    rb = RingBuffer({"a": TensorSpec((3,))}, 2, max_length=2, device=device)
    assert rb.device.type == device.type
    assert rb.num_environments == 2
    assert all(t.device.type == device.type for t in rb.state_dict().values())
    rb.enqueue({"a": torch.ones(2, 3)})  # a CPU batch is moved to the buffer's device
    assert rb.dequeue()["a"].device.type == device.type


def test_check_convert_env_ids(device):
    rb = RingBuffer(TensorSpec(()), 3, device=device)
    assert rb.check_convert_env_ids(None).tolist() == [0, 1, 2]
    ids = rb.check_convert_env_ids([2, 0])
    assert ids.dtype == torch.int64 and ids.device.type == device.type
    assert ids.tolist() == [2, 0]
    all_ids = rb.check_convert_env_ids(None)
    all_ids[0] = 2  # the caller's own tensor: the buffer's ids stay 0, 1, 2
    assert rb.check_convert_env_ids(None).tolist() == [0, 1, 2]


def test_stop_and_revive_single_process():
    """After stop(), blocking calls are skipped; revive() restores them;
    non-blocking calls ignore the stop flag."""
    rb = RingBuffer(TensorSpec(()), 1, max_length=2)
    rb.stop()
    assert rb.enqueue(torch.zeros(1), blocking=True) is False
    assert rb.dequeue(blocking=True) is None
    assert rb.get_current_position().tolist() == [0]
    assert rb.enqueue(torch.zeros(1)) is True
    rb.revive()
    assert rb.enqueue(torch.ones(1), blocking=True) is True
    assert rb.dequeue(n=2, blocking=True).tolist() == [[0.0, 1.0]]


def test_earliest_position_of_sampled_ids(device):
    """get_earliest_position is a query: ids drawn with replacement, of any
    shape, give a result of their shape."""
    rb = RingBuffer(TensorSpec(()), 3, max_length=2, device=device)
    for env, steps in ((0, 3), (1, 1)):  # earliest: env 0 -> 1, env 1 -> 0, env 2 -> 0
        for _ in range(steps):
            rb.enqueue(torch.zeros(1), env_ids=[env])
    rb.dequeue([1])  # env 1 -> 1 (its current position)
    earliest = [1, 1, 0]
    ids = torch.tensor([[0, 0, 2], [1, 0, 1]])
    got = rb.get_earliest_position(ids)
    assert got.shape == (2, 3)
    assert got.tolist() == [[earliest[i] for i in row] for row in ids.tolist()]
    assert rb.get_earliest_position(torch.tensor(2)).tolist() == 0
    assert rb.get_earliest_position([1, 1]).tolist() == [1, 1]
    with pytest.raises(ValueError, match=r"env_ids must lie in \[0, 3\); got 3"):
        rb.get_earliest_position(torch.tensor([[0, 3]]))
