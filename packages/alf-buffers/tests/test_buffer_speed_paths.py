"""The speed shortcuts give the results of the general paths:

* the lockstep shortcut of single-process CPU buffers (all environments at
  one position: enqueue/dequeue with ``env_ids=None``), mixed with calls on
  environment subsets, ``clear``, ``remove_up_to``, checkpoints and moves;
* large in-memory storage (a huge-page mapping from 8 MiB on): zeroed, and
  copied, pickled, shared and checkpointed like any tensor.

Expected values come from a deque model."""

import collections
import copy
import io
import pickle

import torch
from hypothesis import given
from hypothesis import strategies as st

from alf.tensor_specs import TensorSpec
from alf.utils.data_buffer import DataBuffer, RingBuffer

SPEC = {"x": TensorSpec((3,), torch.float32), "id": TensorSpec((), torch.int64)}


def stored(db):
    """The stored items of a DataBuffer, earliest first (``get_all()`` returns
    ALF's layout: every slot, in storage order)."""
    return db.get_batch_by_indices(torch.arange(int(db.current_size)))


def items_for(ids):
    ids = torch.as_tensor(ids, dtype=torch.int64)
    return {"x": ids.float()[:, None] * torch.tensor([1.0, -1.0, 0.5]), "id": ids}


class Model:
    def __init__(self, num_envs, max_length):
        self.rings = [collections.deque(maxlen=max_length) for _ in range(num_envs)]
        self.pos = [0] * num_envs


steps = st.lists(
    st.one_of(
        st.tuples(st.just("enqueue_all"), st.integers(1, 3)),
        st.tuples(st.just("dequeue_all"), st.integers(1, 3)),
        st.tuples(st.just("enqueue_env"), st.integers(0, 2)),
        st.tuples(st.just("dequeue_env"), st.integers(0, 2)),
        st.tuples(st.just("remove_up_to"), st.integers(0, 2)),
        st.tuples(st.just("clear"), st.integers(0, 1)),
        st.tuples(st.just("reload"), st.booleans()),
    ),
    min_size=8,
    max_size=40,
)


@given(ops=steps, max_length=st.integers(1, 4))
def test_lockstep_shortcut_matches_model(ops, max_length):
    rb = RingBuffer(SPEC, 3, max_length=max_length)
    model = Model(3, max_length)
    next_id = 0
    for op, arg in ops:
        if op == "enqueue_all":
            for _ in range(arg):  # several steps wrap the ring
                ids = list(range(next_id, next_id + 3))
                next_id += 3
                assert rb.enqueue(items_for(ids)) is True
                for e, i in enumerate(ids):
                    model.rings[e].append(i)
                    model.pos[e] += 1
        elif op == "enqueue_env":
            rb.enqueue(items_for([next_id]), env_ids=[arg])
            model.rings[arg].append(next_id)
            model.pos[arg] += 1
            next_id += 1
        elif op in ("dequeue_all", "dequeue_env"):
            envs, n, ids = ([0, 1, 2], arg, None) if op == "dequeue_all" else ([arg], 1, [arg])
            if all(len(model.rings[e]) >= n for e in envs):
                want = [[model.rings[e].popleft() for _ in range(n)] for e in envs]
                got = rb.dequeue(ids, n=n)
                assert got["id"].tolist() == want
                assert got["x"].is_contiguous() and got["x"].shape == (len(envs), n, 3)
                assert got["x"][..., 1].tolist() == [[-float(i) for i in row] for row in want]
            else:
                try:
                    rb.dequeue(ids, n=n)
                except AssertionError:
                    pass
                else:
                    raise AssertionError("dequeue without enough data did not raise")
        elif op == "remove_up_to":
            rb.remove_up_to(arg)
            for ring in model.rings:
                for _ in range(min(arg, len(ring))):
                    ring.popleft()
        elif op == "clear":
            rb.clear(None if arg == 0 else [1])
            for e in [0, 1, 2] if arg == 0 else [1]:
                model.rings[e].clear()
                model.pos[e] = 0
        else:  # a checkpoint loaded into a fresh buffer, in place or assigned
            fresh = RingBuffer(SPEC, 3, max_length=max_length)
            fresh.load_state_dict(rb.state_dict(), assign=arg)
            rb = fresh
        assert rb.get_current_position().tolist() == model.pos
        earliest = rb.get_earliest_position(None).tolist()
        assert earliest == [p - len(r) for p, r in zip(model.pos, model.rings)]
    for e, ring in enumerate(model.rings):
        if ring:
            assert rb.dequeue([e], n=len(ring))["id"].tolist() == [list(ring)]


def test_each_change_of_the_positions_ends_the_shortcut():
    """After every kind of change on a subset of environments, a call on
    all of them sees the positions as they are (named cases of the
    property above)."""
    changes = [
        lambda rb: rb.enqueue(items_for([100]), env_ids=[1]),
        lambda rb: rb.dequeue(env_ids=[2]),
        lambda rb: rb.remove_up_to(1, env_ids=[0]),
        lambda rb: rb.clear(env_ids=[2]),
    ]
    for change in changes:
        rb = RingBuffer(SPEC, 3, max_length=4)
        rb.enqueue(items_for([0, 1, 2]))
        rb.enqueue(items_for([3, 4, 5]))
        change(rb)
        before = rb.get_current_position().tolist()
        rb.enqueue(items_for([6, 7, 8]))
        assert rb.get_current_position().tolist() == [p + 1 for p in before]
        sizes = (rb.get_current_position() - rb.get_earliest_position(None)).tolist()
        for e, size in enumerate(sizes):  # the newest item of each: this step's
            assert rb.dequeue([e], n=size)["id"][0, -1].item() == 6 + e


def test_shortcut_writes_into_the_current_storage():
    """After the storage tensors are replaced (load_state_dict(assign=True),
    share_memory()), enqueue writes into the new ones, not stale views."""
    rb = RingBuffer(SPEC, 2, max_length=3)
    rb.enqueue(items_for([1, 2]))
    state = {k: v.clone() for k, v in rb.state_dict().items()}
    rb.load_state_dict(state, assign=True)
    rb.enqueue(items_for([3, 4]))
    assert rb.state_dict()["_buffer1_x"].data_ptr() == state["_buffer1_x"].data_ptr()
    assert state["_buffer0_id"][:, :2].tolist() == [[1, 3], [2, 4]]
    rb.share_memory()
    rb.enqueue(items_for([5, 6]))
    assert rb.dequeue(n=3)["id"].tolist() == [[1, 3, 5], [2, 4, 6]]


def test_data_buffer_add_batch_then_enqueue():
    db = DataBuffer(SPEC, capacity=4)
    db.add_batch(items_for([1, 2, 3]))
    db.enqueue(items_for([4]))
    db.enqueue(items_for([5]))  # overwrites 1
    assert stored(db)["id"].tolist() == [2, 3, 4, 5]
    assert db.dequeue(n=2)["id"].tolist() == [[2, 3]]
    db.add_batch(items_for([6]))
    assert stored(db)["id"].tolist() == [4, 5, 6]


def test_large_storage_behaves_like_a_tensor():
    """A 12 MiB storage (above the huge-page threshold): zeroed, and copies,
    pickles and checkpoints are independent of the original."""
    spec = TensorSpec((64,), torch.float32)
    db = DataBuffer(spec, capacity=50_000)
    assert db._rings[0].is_contiguous()
    assert not db._rings[0].any()
    db.add_batch(torch.arange(10.0)[:, None].expand(10, 64))
    clone = copy.deepcopy(db)
    unpickled = pickle.loads(pickle.dumps(db))
    blob = io.BytesIO()
    torch.save(db.state_dict(), blob)
    blob.seek(0)
    loaded = DataBuffer(spec, capacity=50_000)
    loaded.load_state_dict(torch.load(blob))
    db.add_batch(torch.full((5, 64), -1.0))
    for other in (clone, unpickled, loaded):
        assert stored(other)[:, 0].tolist() == [float(i) for i in range(10)]
    assert stored(db)[:, 0].tolist() == [float(i) for i in range(10)] + [-1.0] * 5
    shared = RingBuffer(spec, 4, max_length=20_000, allow_multiprocess=True)
    assert shared._buffer.is_shared()
    shared.enqueue(torch.ones(4, 64))
    assert shared.dequeue().sum().item() == 4 * 64
