"""The hot-path shortcuts of RingBuffer give what the general path gives.

``env_ids=None`` takes slices when all environments sit at one slot and a flat
``index_copy_``/``index_select`` otherwise; explicit ids always take the flat
path. Batches are checked by ``ItemChecker``, which must agree with
``check_items`` (same leaves, same errors)."""

import collections
import io
import re

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import alf.nest as nest
from alf.tensor_specs import TensorSpec
from alf.utils._buffer_checks import ItemChecker, check_data_spec, check_items
from alf.utils.data_buffer import DataBuffer, RingBuffer

N_ENVS = 4
SPEC = {"x": TensorSpec((2,), torch.float32), "id": TensorSpec((), torch.int64)}


def items_for(ids, device):
    ids_t = torch.tensor(ids, dtype=torch.int64, device=device)
    return {"x": torch.stack([ids_t.float(), -ids_t.float()], dim=1), "id": ids_t}


all_envs = st.permutations(range(N_ENVS)).map(list)
subsets = st.permutations(range(N_ENVS)).flatmap(
    lambda p: st.integers(1, N_ENVS).map(lambda k: list(p[:k]))
)
operations = st.lists(
    st.one_of(
        # every environment: buffer `a` gets env_ids=None, buffer `b` the
        # same environments as an explicit permutation
        st.tuples(st.just("enqueue_all"), all_envs, st.just(0)),
        st.tuples(st.just("enqueue_all"), all_envs, st.just(0)),
        st.tuples(st.just("dequeue_all"), all_envs, st.integers(1, 4)),
        st.tuples(st.just("remove_all"), all_envs, st.integers(0, 4)),
        st.tuples(st.just("clear_all"), all_envs, st.just(0)),
        # a subset, the same call on both: makes the positions differ
        st.tuples(st.just("enqueue"), subsets, st.just(0)),
        st.tuples(st.just("dequeue"), subsets, st.integers(1, 2)),
    ),
    min_size=6,
    max_size=40,
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations, max_length=st.integers(1, 4))
def test_env_ids_none_equals_explicit_ids(device, ops, max_length):
    """None and an explicit permutation of all ids agree with each other and
    with a deque per environment, through wrap-around and unequal positions."""
    a = RingBuffer(SPEC, N_ENVS, max_length=max_length, device=device)
    b = RingBuffer(SPEC, N_ENVS, max_length=max_length, device=device)
    rings = [collections.deque(maxlen=max_length) for _ in range(N_ENVS)]
    pos = [0] * N_ENVS
    next_id = 0
    for op, envs, arg in ops:
        ids = torch.tensor(envs)
        if op in ("enqueue_all", "enqueue"):
            values = list(range(next_id, next_id + N_ENVS))
            next_id += N_ENVS
            if op == "enqueue_all":  # environment e gets values[e]
                a.enqueue(items_for(values, device))
                values = [values[e] for e in envs]
                b.enqueue(items_for(values, device), ids)
            else:
                values = [values[e] for e in envs]
                a.enqueue(items_for(values, device), ids)
                b.enqueue(items_for(values, device), ids)
            for e, v in zip(envs, values):
                rings[e].append(v)
                pos[e] += 1
        elif op in ("dequeue_all", "dequeue"):
            n = arg
            if n > max_length or any(len(rings[e]) < n for e in envs):
                with pytest.raises(AssertionError):
                    a.dequeue(None if op == "dequeue_all" else ids, n=n)
                with pytest.raises(AssertionError):
                    b.dequeue(ids, n=n)
            else:
                got_a = a.dequeue(None if op == "dequeue_all" else ids, n=n)
                got_b = b.dequeue(ids, n=n)
                want = {e: [rings[e].popleft() for _ in range(n)] for e in envs}
                order = list(range(N_ENVS)) if op == "dequeue_all" else envs
                assert got_a["id"].tolist() == [want[e] for e in order]
                assert got_b["id"].tolist() == [want[e] for e in envs]
                for got in (got_a, got_b):
                    assert got["x"].is_contiguous() and got["id"].is_contiguous()
                    assert torch.equal(got["x"][..., 0], got["id"].float())
                    assert torch.equal(got["x"][..., 1], -got["id"].float())
        elif op == "remove_all":
            a.remove_up_to(arg)
            b.remove_up_to(arg, ids)
            for ring in rings:
                for _ in range(min(arg, len(ring))):
                    ring.popleft()
        else:
            a.clear()
            b.clear(ids)
            for e in range(N_ENVS):
                rings[e].clear()
                pos[e] = 0
        for rb in (a, b):
            assert rb.get_current_position().tolist() == pos
            assert rb.get_earliest_position(None).tolist() == [
                p - len(r) for p, r in zip(pos, rings)
            ]
        assert a.has_data(None, 1) == b.has_data(torch.arange(N_ENVS).flip(0), 1) == all(rings)
        assert a.has_space(None) == all(len(r) < max_length for r in rings)


def test_one_slot_read_across_the_end_of_the_ring(device):
    """All environments at one slot, reading past the last slot wraps."""
    rb = RingBuffer(SPEC, 2, max_length=3, device=device)
    for step in range(5):  # slots hold positions 3, 4, 2
        rb.enqueue(items_for([step, 10 + step], device))
    assert rb.dequeue(n=1)["id"].tolist() == [[2], [12]]
    assert rb.dequeue(n=2)["id"].tolist() == [[3, 4], [13, 14]]  # slots 0, 1
    rb.enqueue(items_for([5, 15], device))  # slot 2
    rb.enqueue(items_for([6, 16], device))  # slot 0
    assert rb.dequeue(n=2)["id"].tolist() == [[5, 6], [15, 16]]  # slots 2, 0


def test_dequeued_items_are_copies(device):
    """What dequeue returns (slice path and flat path) is not a view of the
    storage: overwriting the ring leaves it unchanged."""
    rb = RingBuffer(SPEC, 2, max_length=2, device=device)
    rb.enqueue(items_for([1, 2], device))
    same_slot = rb.dequeue()
    rb.enqueue(items_for([3], device), [0])
    rb.enqueue(items_for([4, 5], device))
    other_slots = rb.dequeue()
    for step in range(6):
        rb.enqueue(items_for([100 + step, 200 + step], device))
    assert same_slot["id"].tolist() == [[1], [2]]
    assert other_slots["id"].tolist() == [[3], [5]]
    assert same_slot["x"].tolist() == [[[1.0, -1.0]], [[2.0, -2.0]]]


def test_grad_tracking_batch_is_stored_detached(device):
    rb = RingBuffer(SPEC, 2, max_length=3, device=device)
    x = torch.ones(2, 2, device=device, requires_grad=True)
    rb.enqueue({"x": x * 2, "id": torch.tensor([7, 8], device=device)})
    assert not any(t.requires_grad for t in rb.state_dict().values())
    out = rb.dequeue()
    assert not out["x"].requires_grad and out["x"].tolist() == [[[2.0, 2.0]], [[2.0, 2.0]]]


def test_load_state_dict_assign_keeps_buffer_consistent(device):
    """load_state_dict(assign=True) replaces the registered tensors; the
    buffer then reads and writes the new ones."""
    rb = RingBuffer(SPEC, 2, max_length=3, device=device)
    rb.enqueue(items_for([1, 2], device))
    rb.enqueue(items_for([3], device), [1])
    blob = io.BytesIO()
    torch.save(rb.state_dict(), blob)
    blob.seek(0)
    resumed = RingBuffer(SPEC, 2, max_length=3, device=device)
    resumed.load_state_dict(torch.load(blob), assign=True)
    assert resumed.get_current_position().tolist() == [1, 2]
    resumed.enqueue(items_for([4, 5], device))
    assert resumed.get_current_position().tolist() == [2, 3]
    assert resumed.state_dict()["_current_pos"].tolist() == [2, 3]
    assert resumed.dequeue(n=2)["id"].tolist() == [[1, 4], [2, 3]]
    assert resumed.dequeue([1])["id"].tolist() == [[5]]


Point = collections.namedtuple("Point", ["u", "v"])
NEST_SPEC = {
    "b": [TensorSpec((2,)), TensorSpec((), torch.int64)],
    "a": (TensorSpec((1, 2), torch.uint8), Point(TensorSpec(()), TensorSpec((3,)))),
}


def nest_batch(n, seq=list, mapping=dict):
    return mapping(
        b=seq([torch.zeros(n, 2), torch.zeros(n, dtype=torch.int64)]),
        a=(
            torch.zeros(n, 1, 2, dtype=torch.uint8),
            Point(torch.arange(float(n)), torch.ones(n, 3)),
        ),
    )


@pytest.mark.parametrize(
    "batch",
    [
        nest_batch(3),
        nest_batch(3, seq=tuple),  # a tuple for a list: accepted by alf.nest
        nest_batch(3, mapping=collections.OrderedDict),
    ],
)
@pytest.mark.parametrize("batch_size", [3, None])
def test_item_checker_returns_what_check_items_returns(batch, batch_size):
    specs = check_data_spec(NEST_SPEC)
    checker = ItemChecker(NEST_SPEC, specs)
    cpu = torch.device("cpu")
    fast = checker(batch, batch_size, cpu)
    slow = check_items(NEST_SPEC, specs, batch, batch_size, cpu)
    assert len(fast) == len(slow) == 5
    # the same leaves (not copies), in alf.nest.flatten order
    ptrs = [leaf.data_ptr() for leaf in nest.flatten(batch)]
    assert [t.data_ptr() for t in fast] == [t.data_ptr() for t in slow] == ptrs


def _bad_batches():
    wrong_dtype = nest_batch(3)
    wrong_dtype["b"][1] = torch.zeros(3)
    wrong_shape = nest_batch(3)
    wrong_shape["a"] = (wrong_shape["a"][0], Point(torch.zeros(3), torch.ones(3, 4)))
    not_tensor = nest_batch(3)
    not_tensor["b"][0] = 0.0
    missing_key = nest_batch(3)
    del missing_key["a"]
    extra_key = nest_batch(3)
    extra_key["c"] = torch.zeros(3)
    short_list = nest_batch(3)
    short_list["b"].pop()
    ragged = nest_batch(3)
    ragged["b"][0] = torch.zeros(2, 2)
    scalar = nest_batch(3)
    scalar["a"] = (torch.zeros((), dtype=torch.uint8), scalar["a"][1])
    return [
        wrong_dtype,
        wrong_shape,
        not_tensor,
        missing_key,
        extra_key,
        short_list,
        ragged,
        scalar,
    ]


@pytest.mark.parametrize("batch", _bad_batches())
@pytest.mark.parametrize("batch_size", [3, None])
def test_item_checker_raises_what_check_items_raises(batch, batch_size):
    specs = check_data_spec(NEST_SPEC)
    cpu = torch.device("cpu")
    with pytest.raises((TypeError, ValueError)) as slow:
        check_items(NEST_SPEC, specs, batch, batch_size, cpu)
    with pytest.raises(slow.type, match=f"^{re.escape(str(slow.value))}$"):
        ItemChecker(NEST_SPEC, specs)(batch, batch_size, cpu)


@pytest.mark.parametrize(
    "convert",
    [lambda m: m.double(), lambda m: m.half(), lambda m: m.to(torch.bfloat16)],
    ids=["double", "half", "to(bfloat16)"],
)
def test_dtype_conversion_keeps_spec_dtypes(device, convert):
    """A module-wide dtype conversion leaves the stored items, exactly, in
    the spec's dtypes: every write path and read path still works."""
    rb = RingBuffer(SPEC, N_ENVS, max_length=3, device=device)
    third = torch.tensor(1.0 / 3.0)  # not exact in float16/bfloat16
    rb.enqueue({"x": third.expand(N_ENVS, 2).clone(), "id": torch.arange(N_ENVS)})
    convert(rb)
    assert rb._buffer["x"].dtype == torch.float32 and rb._buffer["id"].dtype == torch.int64
    rb.enqueue(items_for([10, 11], device), torch.tensor([1, 3]))  # the flat path
    rb.enqueue(items_for([20, 21, 22, 23], device))  # unequal positions
    out = rb.dequeue(torch.tensor([1]), n=3)
    assert out["x"][0, 0].tolist() == [float(np.float32(1.0 / 3.0))] * 2  # untouched
    assert out["id"].tolist() == [[1, 10, 21]]
    db = DataBuffer(SPEC, 2, device=device)
    db.add_batch(items_for([1], device))
    convert(db)
    db.add_batch(items_for([2, 3], device))
    assert db.get_batch_by_indices(torch.arange(2))["id"].tolist() == [2, 3]


def test_load_state_dict_assign_of_strided_tensors(device):
    """assign=True given a transposed and an expanded tensor: the buffer
    holds their values in storage of its own (a write to one slot changes
    only that slot)."""
    spec = TensorSpec((), torch.int64)

    def state(data):  # the buffer takes these tensors over
        full = torch.tensor([3, 3, 3], device=device)
        return {"_buffer0": data, "_current_size": full, "_current_pos": full.clone()}

    rb = RingBuffer(spec, 3, max_length=3, device=device)
    # env e holds e, e + 3, e + 6
    rb.load_state_dict(state(torch.arange(9, device=device).view(3, 3).t()), assign=True)
    assert rb.dequeue(n=1).tolist() == [[0], [1], [2]]
    assert rb.dequeue(n=2).tolist() == [[3, 6], [4, 7], [5, 8]]
    rb = RingBuffer(spec, 3, max_length=3, device=device)
    # one row of memory for all environments
    rb.load_state_dict(state(torch.arange(3, device=device).expand(3, 3)), assign=True)
    rb.enqueue(torch.tensor([7], device=device), env_ids=[1])
    assert rb.dequeue([0, 2], n=3).tolist() == [[0, 1, 2], [0, 1, 2]]
    assert rb.dequeue([1], n=3).tolist() == [[1, 2, 7]]


def test_channels_last_conversion_keeps_buffer_working(device):
    """.to(memory_format=torch.channels_last) (of a model holding the
    buffer) leaves the 4-D storage contiguous: items written afterwards are
    stored and checkpointed."""
    rb = RingBuffer(TensorSpec((2, 3)), 2, max_length=2, device=device)
    rb.to(memory_format=torch.channels_last)
    item = torch.arange(12.0).view(2, 2, 3)
    rb.enqueue(item, env_ids=[1, 0])
    rb.enqueue(item + 100)
    state = rb.state_dict()
    assert state["_current_size"].tolist() == [2, 2]
    assert torch.equal(state["_buffer0"][1, 0].cpu(), item[0])
    assert torch.equal(rb.dequeue(n=2)[0].cpu(), torch.stack([item[1], item[0] + 100]))


# declared out of alphabetical order: alf.nest (as ALF) flattens it as (a, m, z)
Rev = collections.namedtuple("Rev", ["z", "a", "m"])
REV_SPEC = Rev(z=TensorSpec((), torch.int64), a=TensorSpec((2,)), m=[TensorSpec((), torch.int32)])


def test_namedtuple_leaves_in_alphabetical_field_order(device):
    n = 3
    batch = Rev(
        z=torch.arange(n),
        a=torch.arange(2.0 * n).reshape(n, 2),
        m=[torch.full((n,), 7, dtype=torch.int32)],
    )
    specs = check_data_spec(REV_SPEC)
    assert [path for path, _ in specs] == ["a", "m.0", "z"]
    cpu = torch.device("cpu")
    checker = ItemChecker(REV_SPEC, specs)
    fast = checker(batch, n, cpu)
    slow = check_items(REV_SPEC, specs, batch, n, cpu)
    expected = [batch.a.data_ptr(), batch.m[0].data_ptr(), batch.z.data_ptr()]
    # the compiled flattener itself (not a fallback to check_items) gives that order
    flat = []
    assert checker._flatten(batch, flat) and checker._leaves_ok(flat, n)
    assert [t.data_ptr() for t in flat] == expected
    assert [t.data_ptr() for t in fast] == [t.data_ptr() for t in slow] == expected
    # storage is laid out (and named) in that order; a round trip keeps fields apart
    rb = RingBuffer(REV_SPEC, n, max_length=2, device=device)
    names = [name for name in rb.state_dict() if name.startswith("_buffer")]
    assert names == ["_buffer0_a", "_buffer1_m_0", "_buffer2_z"]
    rb.enqueue(nest.map_structure(lambda t: t.to(device), batch))
    out = rb.dequeue()
    assert type(out) is Rev
    assert out.z[:, 0].tolist() == [0, 1, 2] and out.m[0][:, 0].tolist() == [7, 7, 7]
    assert out.a[:, 0].tolist() == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]
