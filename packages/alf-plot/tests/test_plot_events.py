"""The fast event reader against tensorboard's EventAccumulator on real files."""

import os
import struct
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from alf.utils import _plot_tb_events as events
from alf.utils._plot_tb_crc import masked_crc32c, masked_crc32c_many


def accumulator_scalars(run, tag):
    """Every simple-value point of ``tag``, as tensorboard's EventAccumulator gives it."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(run, size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    if tag not in acc.Tags()["scalars"]:
        return np.empty(0, np.int64), np.empty(0)
    evs = acc.Scalars(tag)
    return np.array([e.step for e in evs], np.int64), np.array([e.value for e in evs])


def read(run, tag, **kw):
    return events.read_scalar(events.list_event_files(run), tag, **kw)


def assert_same(a, b):
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])  # identical floats, same order


def test_matches_accumulator_with_other_tags_and_odd_values(tmp_path, event_writer):
    w = event_writer(tmp_path)
    rng = np.random.default_rng(0)
    steps = list(range(0, 3000, 7)) + [0, 2**40, 5, 5]  # repeats, a huge step
    for i, s in enumerate(steps):
        w.scalar("loss", s, float(rng.normal()))
        w.scalar("loss_2", s, 1.0)  # tag that contains the wanted one
        if i % 50 == 0:
            w.scalar("loss", s, float("nan"))
            w.scalar("loss", s, float("inf"))
            w.scalar("loss", s, 3.4e38)
    w.close()
    mine = read(str(tmp_path), "loss")
    assert_same(mine, accumulator_scalars(str(tmp_path), "loss"))
    assert len(mine[0]) == len(steps) + 3 * 9


def test_restart_purges_like_accumulator(tmp_path, event_writer):
    w = event_writer(tmp_path)
    w.scalars("r", range(0, 100), np.arange(100.0))
    w.restart(60)  # job restarted from step 60: points >= 60 are orphaned
    w.scalars("r", range(60, 120), -np.arange(60.0))
    w.close()
    mine = read(str(tmp_path), "r")
    assert_same(mine, accumulator_scalars(str(tmp_path), "r"))
    np.testing.assert_array_equal(mine[0], np.arange(120))
    np.testing.assert_array_equal(mine[1][60:], -np.arange(60.0))


def test_several_files_in_one_run_read_in_name_order(tmp_path, event_writer):
    for i, part in enumerate(("a", "b", "c")):
        w = event_writer(tmp_path, filename_suffix=f".{part}")
        w.scalars("r", range(i * 10, i * 10 + 10), np.arange(10.0) + i)
        if i == 1:
            w.restart(15)
        w.close()
    assert len(events.list_event_files(str(tmp_path))) == 3
    assert_same(read(str(tmp_path), "r"), accumulator_scalars(str(tmp_path), "r"))


def test_legacy_file_without_version_purges_out_of_order_steps(tmp_path):
    """No brain.Event:2 header: tensorboard drops a tag's points after a step goes back."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    path = tmp_path / "events.out.tfevents.1.legacy"
    with open(path, "wb") as f:
        rw = RecordWriter(f)
        for s in list(range(20)) + list(range(10, 30)):
            for tag in ("a", "b"):
                v = summary_pb2.Summary.Value(tag=tag, simple_value=float(s))
                ev = event_pb2.Event(step=s, wall_time=1.0, summary=summary_pb2.Summary(value=[v]))
                rw.write(ev.SerializeToString())
        rw.flush()
    for tag in ("a", "b"):
        mine = read(str(tmp_path), tag)
        assert_same(mine, accumulator_scalars(str(tmp_path), tag))
        np.testing.assert_array_equal(mine[0], np.arange(30))


@pytest.mark.parametrize(
    "header, expected_steps",
    [
        ("brain.Event:2", list(range(20)) + list(range(10, 30))),  # purges need a session log
        ("brain.Event:1", list(range(30))),  # older files: a step going back purges
        ("brain.Event:unreadable", list(range(30))),  # no number: treated as an old file
    ],
)
def test_file_version_header_selects_purge_logic_like_accumulator(tmp_path, header, expected_steps):
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    path = tmp_path / "events.out.tfevents.1.versioned"
    with open(path, "wb") as f:
        rw = RecordWriter(f)
        rw.write(event_pb2.Event(wall_time=1.0, file_version=header).SerializeToString())
        for s in list(range(20)) + list(range(10, 30)):
            v = summary_pb2.Summary.Value(tag="a", simple_value=float(s))
            ev = event_pb2.Event(step=s, wall_time=1.0, summary=summary_pb2.Summary(value=[v]))
            rw.write(ev.SerializeToString())
        rw.flush()
    mine = read(str(tmp_path), "a")
    assert_same(mine, accumulator_scalars(str(tmp_path), "a"))
    np.testing.assert_array_equal(mine[0], expected_steps)


def test_tensor_scalars_match_accumulator_tensors(tmp_path, event_writer):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    w = event_writer(tmp_path)
    w.scalars("t", range(0, 500, 5), np.linspace(-1, 1, 100), kind="tensor")
    w.close()
    acc = EventAccumulator(str(tmp_path), size_guidance={"tensors": 0})
    acc.Reload()
    evs = acc.Tensors("t")
    expected = (
        np.array([e.step for e in evs]),
        np.array([tensor_util.make_ndarray(e.tensor_proto).item() for e in evs]),
    )
    assert_same(read(str(tmp_path), "t"), expected)


def test_non_scalar_tensor_is_an_error(tmp_path, event_writer):
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.util import tensor_util

    w = event_writer(tmp_path)
    v = summary_pb2.Summary.Value(tag="h", tensor=tensor_util.make_tensor_proto([1.0, 2.0]))
    w.event(event_pb2.Event(step=1, summary=summary_pb2.Summary(value=[v])))
    w.close()
    with pytest.raises(ValueError, match="'h'.*shape \\(2,\\)"):
        read(str(tmp_path), "h")


def _event_file(tmp_path):
    return events.list_event_files(str(tmp_path))[0]


def test_truncated_trailing_record_is_ignored(tmp_path, event_writer):
    w = event_writer(tmp_path)
    w.scalars("r", range(50), np.arange(50.0))
    w.close()
    path = _event_file(tmp_path)
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size - 7)  # a run still being written
    mine = read(str(tmp_path), "r")
    assert_same(mine, accumulator_scalars(str(tmp_path), "r"))
    assert len(mine[0]) == 49


def intact_record(payload):
    """A TFRecord holding ``payload`` with both CRCs right (tensorboard's own CRC)."""
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c as tb_crc

    header = struct.pack("<Q", len(payload))
    return header + struct.pack("<I", tb_crc(header)) + payload + struct.pack("<I", tb_crc(payload))


def test_garbage_record_warns_and_stops(tmp_path, event_writer):
    w = event_writer(tmp_path)
    w.scalars("r", range(10), np.arange(10.0))
    w.close()
    path = _event_file(tmp_path)
    with open(path, "ab") as f:
        # intact on disk, contains the tag, does not parse as an Event
        f.write(intact_record(b"\xff" * 8 + b"r"))
    for verify_crc in (True, False):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            steps, _ = read(str(tmp_path), "r", verify_crc=verify_crc)
        assert len(steps) == 10
        assert any("not an Event" in str(c.message) for c in caught)


def test_list_event_files_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        events.list_event_files(str(tmp_path / "missing"))
    (tmp_path / "run" / "eval").mkdir(parents=True)
    (tmp_path / "run" / "eval" / "events.out.tfevents.1.x").write_bytes(b"")
    with pytest.raises(
        ValueError, match="no TensorBoard event files.*subdirectories with event files: eval"
    ):
        events.list_event_files(str(tmp_path / "run"))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="not a TensorBoard event file"):
        events.list_event_files(str(tmp_path / "notes.txt"))
    assert events.list_event_files(str(tmp_path / "run" / "eval" / "events.out.tfevents.1.x"))


def test_read_runs_in_worker_processes_matches_serial(write_run):
    runs = [
        [
            events.list_event_files(
                write_run(f"r{i}", "x", range(0, 100 * (i + 1), 3), np.arange(34.0 * (i + 1)))
            )[0]
        ]
        for i in range(3)
    ]
    seen = []
    pooled = events.read_runs(runs, "x", workers=2, progress=lambda d, t: seen.append((d, t)))
    serial = events.read_runs(runs, "x", workers=1)
    for a, b in zip(pooled, serial):
        assert_same(a, b)
    assert seen[-1] == (3, 3) and len(seen) == 3


def test_scalar_tags_lists_simple_and_tensor_scalars(tmp_path, event_writer):
    w = event_writer(tmp_path)
    w.scalar("b", 1, 1.0)
    w.scalar("a", 1, 1.0, kind="tensor")
    w.close()
    assert events.scalar_tags(events.list_event_files(str(tmp_path))) == ["a", "b"]


@given(st.lists(st.binary(min_size=0, max_size=700), min_size=1, max_size=12))
def test_masked_crc32c_many_matches_tensorboard(chunks):
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c as tb_crc

    data = b"".join(chunks)
    lengths = np.array([len(c) for c in chunks], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    buf = np.frombuffer(data + b"\0", dtype=np.uint8)
    got = masked_crc32c_many(buf, offsets, lengths)
    expected = [tb_crc(c) for c in chunks]
    assert got.tolist() == expected
    assert [masked_crc32c(c) for c in chunks] == expected


@given(
    st.lists(
        st.tuples(st.integers(-(2**63), 2**63 - 1), st.floats(width=32, allow_nan=False)),
        min_size=1,
        max_size=30,
    ),
    st.floats(min_value=0, max_value=2e9),
)
def test_canonical_decoder_matches_protobuf(points, wall_time):
    """Every step (negative, 0, 10-byte varints) and float decodes as protobuf does."""
    from tensorboard.compat.proto import event_pb2, summary_pb2

    tag = "Metrics/AverageReturn"
    payloads = []
    for step, value in points:
        v = summary_pb2.Summary.Value(tag=tag, simple_value=value)
        ev = event_pb2.Event(step=step, wall_time=wall_time, summary=summary_pb2.Summary(value=[v]))
        payloads.append(ev.SerializeToString())
    lengths = np.array([len(p) for p in payloads], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    buf = np.frombuffer(b"".join(payloads), dtype=np.uint8)
    ok, steps, values = events._decode_canonical(buf, offsets, lengths, tag.encode())
    assert ok.all()
    parsed = [event_pb2.Event.FromString(p) for p in payloads]
    assert steps.tolist() == [e.step for e in parsed]
    assert values.tolist() == [e.summary.value[0].simple_value for e in parsed]


def test_worker_process_warnings_reach_the_caller(tmp_path, write_run):
    good = write_run("good", "r", range(10), np.arange(10.0))
    bad = write_run("bad", "r", range(10), np.arange(10.0))
    path = events.list_event_files(bad)[0]
    with open(path, "ab") as f:
        f.write(intact_record(b"\xff" * 8 + b"r"))  # contains the tag, not an Event
    runs = [events.list_event_files(good), events.list_event_files(bad)]
    for workers in (1, 2):
        with pytest.warns(RuntimeWarning, match=f"{path}: record at byte .* not an Event"):
            got = events.read_runs(runs, "r", workers=workers)
        assert [len(s) for s, _ in got] == [10, 10]
