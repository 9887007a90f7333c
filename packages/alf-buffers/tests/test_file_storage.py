"""File-backed storage (``storage_dir``): same behaviour as in memory, the
folder reopened gives back every completed write, also after SIGKILL.

The on-disk format is read back independently with NumPy (header slots,
CRC, raw leaf files); the kill tests run a writing child (fork), kill it at
a random moment and reopen the folder, with a watchdog on every wait."""

import collections
import copy
import json
import multiprocessing
import os
import pickle
import random
import signal
import sys
import tempfile
import time
import zlib

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from alf.tensor_specs import TensorSpec
from alf.utils.data_buffer import DataBuffer, RingBuffer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import alf_buffers_file_workers as workers  # noqa: E402
from alf_buffers_checks import assert_unchanged, snapshot  # noqa: E402

HAS_FORK = "fork" in multiprocessing.get_all_start_methods()
needs_fork = pytest.mark.skipif(not HAS_FORK, reason="the fork start method is unavailable")
DEADLINE_S = 120
SPEC = {"x": TensorSpec((2,), torch.float32), "id": TensorSpec((), torch.int64)}


def stored(db):
    """The stored items of a DataBuffer, earliest first (``get_all()`` returns
    ALF's layout: every slot, in storage order)."""
    return db.get_batch_by_indices(torch.arange(int(db.current_size)))


def items_for(ids):
    ids_t = torch.tensor(ids, dtype=torch.int64)
    return {"x": torch.stack([ids_t.float(), -ids_t.float()], dim=1), "id": ids_t}


def read_header(folder):
    """(positions, sizes) of the newest slot whose CRC matches, read with
    NumPy from header.bin (independent of the buffer's code)."""
    words = np.fromfile(os.path.join(folder, "header.bin"), dtype=np.int64)
    n = int(words[2])
    slot_words = 2 + 2 * n
    best = None
    for k in range(2):
        slot = words[4 + k * slot_words : 4 + (k + 1) * slot_words]
        seq, crc, pos, size = int(slot[0]), int(slot[1]), slot[2 : 2 + n], slot[2 + n :]
        expected = zlib.crc32(
            size.tobytes(), zlib.crc32(pos.tobytes(), zlib.crc32(slot[:1].tobytes()))
        )
        if crc == expected and (best is None or seq > best[0]):
            best = (seq, pos.tolist(), size.tolist())
    assert best is not None, "no valid header slot"
    return best[1], best[2]


def read_leaf(folder, path):
    """The raw array of the leaf at nest path ``path``, per meta.json."""
    with open(os.path.join(folder, "meta.json")) as f:
        meta = json.load(f)
    (entry,) = [e for e in meta["leaves"] if e["path"] == path]
    data = np.fromfile(os.path.join(folder, entry["file"]), dtype=np.dtype(entry["dtype"]))
    return data.reshape([meta["num_environments"], meta["max_length"]] + entry["shape"])


# ---- same behaviour as in memory -------------------------------------------


def test_data_buffer_round_trip_and_reopen(tmp_path):
    folder = tmp_path / "replay"
    db = DataBuffer(SPEC, capacity=5, storage_dir=folder)
    assert db.storage_dir == str(folder) and os.path.isdir(folder)
    assert "storage_dir=" in repr(db)
    assert DataBuffer(SPEC, capacity=5).storage_dir is None
    db.add_batch(items_for(range(3)))
    db.add_batch(items_for(range(3, 7)))  # wraps: keeps 2..6
    assert stored(db)["id"].tolist() == [2, 3, 4, 5, 6]
    del db
    reopened = DataBuffer(SPEC, capacity=5, storage_dir=folder)
    assert int(reopened.current_pos) == 7 and int(reopened.current_size) == 5
    assert reopened.is_full()
    got = stored(reopened)
    assert got["id"].tolist() == [2, 3, 4, 5, 6]
    assert got["x"].tolist() == [[float(i), -float(i)] for i in range(2, 7)]
    by_index = reopened.get_batch_by_indices(torch.tensor([4, 0]))
    assert by_index["id"].tolist() == [6, 2]
    sample = reopened.get_batch(64)["id"]
    assert set(sample.tolist()) <= {2, 3, 4, 5, 6}
    # a batch larger than the capacity keeps its newest items
    reopened.add_batch(items_for(range(100, 112)))
    assert stored(DataBuffer(SPEC, 5, storage_dir=folder))["id"].tolist() == list(range(107, 112))


def test_files_hold_the_items_and_header(tmp_path):
    """The format: header slots with a CRC, leaves as raw C-order arrays."""
    rb = RingBuffer(SPEC, 3, max_length=4, storage_dir=tmp_path)
    for step in range(6):
        rb.enqueue(items_for([10 * step, 10 * step + 1, 10 * step + 2]))
    rb.dequeue(env_ids=[1], n=3)
    rb.flush()
    pos, size = read_header(tmp_path)
    assert pos == [6, 6, 6] and size == [4, 1, 4]
    ids = read_leaf(tmp_path, "id")
    # slot of position p is p % 4: positions 2..5 hold steps 2..5
    for p in range(2, 6):
        assert ids[:, p % 4].tolist() == [10 * p, 10 * p + 1, 10 * p + 2]
    assert read_leaf(tmp_path, "x")[2, 5 % 4].tolist() == [52.0, -52.0]


def test_clear_and_remove_up_to_are_committed(tmp_path):
    rb = RingBuffer(SPEC, 2, max_length=3, storage_dir=tmp_path)
    for step in range(4):
        rb.enqueue(items_for([step, 100 + step]))
    rb.remove_up_to(2, env_ids=[0])
    assert read_header(tmp_path) == ([4, 4], [1, 3])
    rb.clear(env_ids=[1])
    assert read_header(tmp_path) == ([4, 0], [1, 0])
    again = RingBuffer(SPEC, 2, max_length=3, storage_dir=tmp_path)
    assert again.dequeue(env_ids=[0])["id"].tolist() == [[3]]


class DequeModel:
    """Per environment the ids held, oldest first, and the position."""

    def __init__(self, num_envs, max_length):
        self.rings = [collections.deque(maxlen=max_length) for _ in range(num_envs)]
        self.pos = [0] * num_envs


env_subsets = st.one_of(
    st.none(),
    st.permutations(range(3)).flatmap(lambda p: st.integers(1, 3).map(lambda k: list(p[:k]))),
)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("enqueue"), env_subsets, st.just(0)),
        st.tuples(st.just("dequeue"), env_subsets, st.integers(1, 3)),
        st.tuples(st.just("remove_up_to"), env_subsets, st.integers(0, 3)),
        st.tuples(st.just("clear"), env_subsets, st.just(0)),
        st.tuples(st.just("reopen"), st.none(), st.just(0)),
    ),
    min_size=1,
    max_size=30,
)


@given(ops=operations, max_length=st.integers(1, 3))
def test_file_backed_ring_matches_model_across_reopens(ops, max_length):
    """Random operations, with the folder reopened now and then: the buffer
    always holds what a deque model says."""
    with tempfile.TemporaryDirectory() as folder:
        rb = RingBuffer(SPEC, 3, max_length=max_length, storage_dir=folder)
        model = DequeModel(3, max_length)
        next_id = 0
        for op, env_ids, arg in ops:
            envs = [0, 1, 2] if env_ids is None else env_ids
            if op == "enqueue":
                ids = list(range(next_id, next_id + len(envs)))
                next_id += len(envs)
                rb.enqueue(items_for(ids), env_ids)
                for e, i in zip(envs, ids):
                    model.rings[e].append(i)
                    model.pos[e] += 1
            elif op == "dequeue":
                if all(len(model.rings[e]) >= arg for e in envs):
                    want = [[model.rings[e].popleft() for _ in range(arg)] for e in envs]
                    assert rb.dequeue(env_ids, n=arg)["id"].tolist() == want
                else:
                    with pytest.raises(AssertionError):
                        rb.dequeue(env_ids, n=arg)
            elif op == "remove_up_to":
                rb.remove_up_to(arg, env_ids)
                for e in envs:
                    for _ in range(min(arg, len(model.rings[e]))):
                        model.rings[e].popleft()
            elif op == "clear":
                rb.clear(env_ids)
                for e in envs:
                    model.rings[e].clear()
                    model.pos[e] = 0
            else:
                del rb
                rb = RingBuffer(SPEC, 3, max_length=max_length, storage_dir=folder)
            assert rb.get_current_position().tolist() == model.pos
            assert read_header(folder) == (model.pos, [len(r) for r in model.rings])
        for e in range(3):
            ring = list(model.rings[e])
            if ring:
                got = rb.dequeue(env_ids=[e], n=len(ring))
                assert got["id"].tolist() == [ring]
                assert got["x"][0, :, 1].tolist() == [-float(i) for i in ring]


def test_state_dict_between_memory_and_files(tmp_path):
    """Same keys and values as in memory; a checkpoint moves either way, and
    load_state_dict(assign=True) still writes into the files."""
    in_memory = DataBuffer(SPEC, 4)
    in_memory.add_batch(items_for(range(3)))
    in_memory.add_batch(items_for(range(3, 6)))
    on_disk = DataBuffer(SPEC, 4, storage_dir=tmp_path)
    state = in_memory.state_dict()
    assert set(on_disk.state_dict()) == set(state)
    on_disk.load_state_dict(state, assign=True)
    assert stored(on_disk)["id"].tolist() == [2, 3, 4, 5]
    assert read_header(tmp_path) == ([6], [4])
    assert stored(DataBuffer(SPEC, 4, storage_dir=tmp_path))["id"].tolist() == [2, 3, 4, 5]
    on_disk.add_batch(items_for([9]))
    back = DataBuffer(SPEC, 4)
    back.load_state_dict(on_disk.state_dict())
    assert stored(back)["id"].tolist() == [3, 4, 5, 9]
    # a bad checkpoint changes neither the buffer nor the files
    before = snapshot(on_disk)
    with pytest.raises(RuntimeError):
        on_disk.load_state_dict(DataBuffer(SPEC, 5).state_dict())
    assert_unchanged(on_disk, before)
    assert read_header(tmp_path) == ([7], [4])


def test_a_folder_of_another_layout_is_refused(tmp_path):
    RingBuffer(SPEC, 2, max_length=3, storage_dir=tmp_path).enqueue(items_for([1, 2]))
    files = {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)}
    cases = [
        (dict(num_environments=3, max_length=3, data_spec=SPEC), "num_environments=2"),
        (dict(num_environments=2, max_length=4, data_spec=SPEC), "max_length=3"),
        (
            dict(
                num_environments=2,
                max_length=3,
                data_spec={"x": TensorSpec((2,)), "y": TensorSpec(())},
            ),
            "leaves=",
        ),
        (
            dict(
                num_environments=2,
                max_length=3,
                data_spec={"x": TensorSpec((2,), torch.float64), "id": TensorSpec((), torch.int64)},
            ),
            "float64",
        ),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            RingBuffer(storage_dir=tmp_path, **kwargs)
    assert {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)} == files


def test_damaged_folders_are_refused(tmp_path):
    good = tmp_path / "good"
    RingBuffer(SPEC, 1, max_length=2, storage_dir=good)
    # not an alf-buffers folder
    other = tmp_path / "other"
    other.mkdir()
    (other / "meta.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match="holds no alf-buffers storage"):
        RingBuffer(SPEC, 1, max_length=2, storage_dir=other)
    # a truncated leaf file
    leaf = good / "leaf0.bin"
    leaf.write_bytes(leaf.read_bytes()[:-1])
    with pytest.raises(ValueError, match="should hold"):
        RingBuffer(SPEC, 1, max_length=2, storage_dir=good)
    # both header slots damaged
    fresh = tmp_path / "fresh"
    RingBuffer(SPEC, 1, max_length=2, storage_dir=fresh)
    words = np.fromfile(fresh / "header.bin", dtype=np.int64)
    words[4 + 1] ^= 1
    words[4 + 4 + 1] ^= 1  # the CRC of both slots (2 + 2 * 1 words each)
    words.tofile(fresh / "header.bin")
    with pytest.raises(ValueError, match="no valid commit"):
        RingBuffer(SPEC, 1, max_length=2, storage_dir=fresh)


def test_one_damaged_slot_falls_back_to_the_other(tmp_path):
    rb = RingBuffer(SPEC, 1, max_length=4, storage_dir=tmp_path)
    for i in range(3):
        rb.enqueue(items_for([i]))
    words = np.fromfile(tmp_path / "header.bin", dtype=np.int64)
    seqs = [int(words[4]), int(words[4 + 4])]
    newest = 4 + 4 * seqs.index(max(seqs))
    words[newest + 2] += 1  # a torn position: the CRC no longer matches
    words.tofile(tmp_path / "header.bin")
    reopened = RingBuffer(SPEC, 1, max_length=4, storage_dir=tmp_path)
    assert reopened.get_current_position().tolist() == [2]  # the commit before
    reopened.enqueue(items_for([7]))  # overwrites the damaged slot, not the good one
    assert RingBuffer(SPEC, 1, 4, storage_dir=tmp_path).dequeue(n=3)["id"].tolist() == [[0, 1, 7]]


def test_device_pickling_and_conversions(tmp_path):
    with pytest.raises(ValueError, match="storage_dir needs device='cpu'"):
        RingBuffer(SPEC, 1, storage_dir=tmp_path / "meta", device="meta")
    assert not os.path.exists(tmp_path / "meta")
    db = DataBuffer(SPEC, 3, storage_dir=tmp_path / "db")
    db.add_batch(items_for([1, 2]))
    with pytest.raises(ValueError, match="stays on the CPU"):
        db.to("meta")
    assert stored(db)["id"].tolist() == [1, 2]
    with pytest.raises(TypeError, match="can be pickled only to start a process"):
        pickle.dumps(db)
    with pytest.raises(TypeError, match="can be pickled only to start a process"):
        copy.deepcopy(db)
    db.double()  # dtype conversions of an enclosing module leave the items
    db.share_memory()
    db.add_batch(items_for([3]))
    assert db._buffer["x"].dtype == torch.float32
    assert stored(DataBuffer(SPEC, 3, storage_dir=tmp_path / "db"))["id"].tolist() == [1, 2, 3]
    in_memory = DataBuffer(SPEC, 3)
    in_memory.flush()  # nothing to write
    assert pickle.loads(pickle.dumps(in_memory)).storage_dir is None


def test_large_storage_is_sparse_until_written(tmp_path):
    """A 256 MiB storage is created without writing 256 MiB: the files are
    sized, not filled, so capacity is not limited by the memory."""
    spec = TensorSpec((64,), torch.float32)
    db = DataBuffer(spec, capacity=1_000_000, storage_dir=tmp_path)
    assert os.path.getsize(tmp_path / "leaf0.bin") == 1_000_000 * 64 * 4
    db.add_batch(torch.ones(10, 64))
    assert db.get_batch(4).tolist() == [[1.0] * 64] * 4


# ---- processes -------------------------------------------------------------


def wait_for(value, target, child, what):
    """Poll the shared ``value`` until it reaches ``target``; fail if
    ``child`` dies or the deadline passes (the watchdog of every wait)."""
    deadline = time.monotonic() + DEADLINE_S
    while value.value < target:
        if not child.is_alive():
            pytest.fail(f"the child died (exit code {child.exitcode}) before {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {DEADLINE_S} s")
        time.sleep(0.001)


def kill(child):
    os.kill(child.pid, signal.SIGKILL)
    child.join(timeout=30)
    assert child.exitcode == -signal.SIGKILL


@needs_fork
def test_data_buffer_reopened_after_sigkill_holds_every_completed_batch(tmp_path):
    """A child appends batches (reopening the folder each round) and is
    killed at a random moment, often inside add_batch; the reopened buffer
    holds a consecutive run of intact items ending at a position between
    the items whose add_batch returned and those whose add_batch began."""
    ctx = multiprocessing.get_context("fork")
    folder = str(tmp_path / "replay")
    capacity, batch = 1000, 96  # batches wrap around the ring at shifting slots
    rng = random.Random(0)
    pos = 0
    for _ in range(6):
        started = ctx.Value("q", 0, lock=False)
        completed = ctx.Value("q", -1, lock=False)
        child = ctx.Process(
            target=workers.add_batches_forever,
            args=(folder, capacity, batch, started, completed),
            daemon=True,
        )
        child.start()
        try:
            target = pos + batch * rng.randint(1, 12)
            wait_for(completed, target, child, "progress")
            time.sleep(rng.uniform(0, 0.003))
            kill(child)
        finally:
            if child.is_alive():
                child.kill()
                child.join(timeout=10)
        begun, done = started.value, completed.value
        db = DataBuffer(workers.SPEC, capacity, storage_dir=folder)
        pos, size = int(db.current_pos), int(db.current_size)
        assert done <= pos <= max(begun, done)
        # every completed item is there, except those an unfinished write
        # was about to overwrite
        assert min(pos, capacity) - batch <= size <= min(pos, capacity)
        got = stored(db)
        assert got["id"].tolist() == list(range(pos - size, pos))
        assert torch.equal(got["payload"], workers.payload_of(got["id"]))
        del db, got


@needs_fork
def test_shared_ring_reopened_after_sigkill(tmp_path):
    """allow_multiprocess + storage_dir: a forked child enqueues into every
    environment and dequeues when full; killed at random moments, the
    folder reopened holds the steps it committed, intact."""
    ctx = multiprocessing.get_context("fork")
    folder = str(tmp_path / "ring")
    n_envs, length = 4, 8
    rng = random.Random(1)
    step = 0
    for _ in range(4):
        rb = RingBuffer(workers.SPEC, n_envs, length, allow_multiprocess=True, storage_dir=folder)
        started = ctx.Value("q", 0, lock=False)
        completed = ctx.Value("q", -1, lock=False)
        child = ctx.Process(
            target=workers.enqueue_forever, args=(rb, started, completed), daemon=True
        )
        child.start()
        try:
            target = step + rng.randint(5, 40)
            wait_for(completed, target, child, "progress")
            time.sleep(rng.uniform(0, 0.002))
            kill(child)
        finally:
            if child.is_alive():
                child.kill()
                child.join(timeout=10)
        begun, done = started.value, completed.value
        # the killed child may have held the lock: look through a new buffer
        del rb
        reopened = RingBuffer(workers.SPEC, n_envs, length, storage_dir=folder)
        positions = reopened.get_current_position().tolist()
        assert len(set(positions)) == 1
        step = positions[0]
        assert done <= step <= max(begun, done)
        earliest = reopened.get_earliest_position(None).tolist()
        n = step - earliest[0]
        assert earliest == [earliest[0]] * n_envs and n >= 1
        got = reopened.dequeue(n=n)
        expected = torch.arange(step - n, step)[None, :] * n_envs + torch.arange(n_envs)[:, None]
        assert torch.equal(got["id"], expected)
        assert torch.equal(
            got["payload"], workers.payload_of(expected.reshape(-1)).view(n_envs, n, -1)
        )
        del reopened


@pytest.mark.slow
def test_spawned_child_writes_into_the_same_files(tmp_path):
    """A file-backed shared buffer handed to a spawned child: the child maps
    the same files (not a copy), blocking enqueue and dequeue work across
    the two processes, and the folder holds the final positions."""
    ctx = multiprocessing.get_context("spawn")
    steps, n_envs = 12, 3
    rb = RingBuffer(workers.SPEC, n_envs, 4, allow_multiprocess=True, storage_dir=tmp_path)
    done = ctx.Event()
    child = ctx.Process(target=workers.enqueue_steps, args=(rb, steps, done), daemon=True)
    child.start()
    try:
        ids = []
        for _ in range(steps):
            out = rb.dequeue(n=1, blocking=True)
            ids.append(out["id"][:, 0])
            assert torch.equal(out["payload"][:, 0], workers.payload_of(out["id"][:, 0]))
        assert done.wait(DEADLINE_S)
        child.join(timeout=DEADLINE_S)
        assert child.exitcode == 0
    finally:
        rb.stop()
        if child.is_alive():
            child.kill()
            child.join(timeout=10)
    assert torch.equal(torch.stack(ids), torch.arange(steps * n_envs).view(steps, n_envs))
    assert read_header(tmp_path) == ([steps] * n_envs, [0] * n_envs)
