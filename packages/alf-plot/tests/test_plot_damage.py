"""Damaged event files: real files written by tensorboard's writer, with bits
flipped on disk.

The records are located by a TFRecord walk written here (8-byte length,
4-byte CRC, payload, 4-byte CRC); the expected points are those
tensorboard's EventAccumulator reads from the file before it is damaged,
minus the damaged ones.
"""

import os
import struct
import warnings

import numpy as np
import pytest

from alf.utils import _plot_tb_events as events
from alf.utils._plot_cli import main
from alf.utils.plot_tb_curves import MeanCurveReader

TAG = "Metrics/AverageReturn"


def records(data):
    """(record start, payload length) of each complete record."""
    out, pos = [], 0
    while pos + 16 <= len(data):
        (length,) = struct.unpack_from("<Q", data, pos)
        if pos + 16 + length > len(data):
            break
        out.append((pos, length))
        pos += 16 + length
    return out


def accumulator_points(run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(run, size_guidance={"scalars": 0})
    acc.Reload()
    evs = acc.Scalars(TAG)
    return np.array([e.step for e in evs], np.int64), np.array([e.value for e in evs])


@pytest.fixture
def run(write_run):
    """A run of 40 points of TAG (value 25.0 + step); returns (dir, file,
    expected points). Record 0 is the version header, record k + 1 step k."""
    d = write_run("run", TAG, range(40), 25.0 + np.arange(40.0))
    path = events.list_event_files(d)[0]
    return d, path, accumulator_points(d)


def flip(path, offset, mask):
    data = bytearray(open(path, "rb").read())
    data[offset] ^= mask
    with open(path, "wb") as f:
        f.write(bytes(data))


def read_with_warnings(d, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        points = events.read_scalar(events.list_event_files(d), TAG, **kw)
    return points, [str(c.message) for c in caught if c.category is RuntimeWarning]


def test_flipped_exponent_bit_is_skipped_with_a_warning(run):
    """One bit of the float exponent of step 10's value turns 35.0 into a
    huge number; the CRC check drops that point and names the file and the
    record's byte offset."""
    d, path, (steps, values) = run
    start, length = records(open(path, "rb").read())[11]
    value_msb = start + 12 + length - 1  # the float is the payload's last 4 bytes
    flip(path, value_msb, 0x20)
    (got_steps, got_values), caught = read_with_warnings(d)
    keep = steps != 10
    np.testing.assert_array_equal(got_steps, steps[keep])
    np.testing.assert_array_equal(got_values, values[keep])
    assert caught == [
        f"{path}: 1 damaged record(s) skipped (CRC mismatch) at byte offset(s) {start}"
    ]
    # without the check, the damaged value is read as it is
    (raw_steps, raw_values), caught = read_with_warnings(d, verify_crc=False)
    assert caught == []
    np.testing.assert_array_equal(raw_steps, steps)
    assert raw_values[10] != values[10] and abs(raw_values[10]) > 1e20


def test_damaged_records_anywhere_are_each_skipped(run):
    """Damage in a payload, in a payload CRC and in a length CRC (the length
    itself intact): those three records are skipped, the rest is read."""
    d, path, (steps, values) = run
    recs = records(open(path, "rb").read())
    (a, _), (b, lb), (c, _) = recs[3], recs[20], recs[33]
    flip(path, a + 14, 0x01)  # a payload byte of step 2
    flip(path, b + 12 + lb, 0x80)  # the payload CRC of step 19
    flip(path, c + 9, 0x04)  # the length CRC of step 32
    (got_steps, got_values), caught = read_with_warnings(d)
    keep = ~np.isin(steps, [2, 19, 32])
    np.testing.assert_array_equal(got_steps, steps[keep])
    np.testing.assert_array_equal(got_values, values[keep])
    assert caught == [
        f"{path}: 3 damaged record(s) skipped (CRC mismatch) at byte offset(s) {a}, {b}, {c}"
    ]


@pytest.mark.parametrize("verify_crc", [True, False])
def test_corrupted_length_that_ends_the_file_warns(run, verify_crc):
    """A flipped high bit of step 25's length field points past the end of
    the file: the points before it are read and the early end is a warning
    (before, the rest of the file was dropped silently)."""
    d, path, (steps, values) = run
    size = os.path.getsize(path)
    start, _ = records(open(path, "rb").read())[26]
    flip(path, start + 5, 0x10)  # length += 2**44
    (got_steps, got_values), caught = read_with_warnings(d, verify_crc=verify_crc)
    np.testing.assert_array_equal(got_steps, steps[:25])
    np.testing.assert_array_equal(got_values, values[:25])
    assert caught == [
        f"{path}: the length field of the record at byte offset {start} is corrupted (CRC "
        f"mismatch); the remaining {size - start} bytes of the file are not read"
    ]


def test_corrupted_length_inside_the_file_ends_it_with_a_warning(run):
    """A length made 2 bytes longer still fits in the file: the records after
    it cannot be found; with CRCs checked the file ends there with the
    warning, without a single wrong point."""
    d, path, (steps, values) = run
    size = os.path.getsize(path)
    start, _ = records(open(path, "rb").read())[16]
    flip(path, start, 0x02)
    (got_steps, got_values), caught = read_with_warnings(d)
    np.testing.assert_array_equal(got_steps, steps[:15])
    np.testing.assert_array_equal(got_values, values[:15])
    assert caught == [
        f"{path}: the length field of the record at byte offset {start} is corrupted (CRC "
        f"mismatch); the remaining {size - start} bytes of the file are not read"
    ]


@pytest.mark.parametrize("verify_crc", [True, False])
def test_record_cut_short_is_quiet(run, verify_crc):
    """A run still being written (its last record incomplete) is not damage."""
    d, path, (steps, values) = run
    size = os.path.getsize(path)
    for cut in (3, 14, 20):  # inside the payload, the header CRC, the length
        with open(path, "r+b") as f:
            f.truncate(size - cut)
        (got_steps, _), caught = read_with_warnings(d, verify_crc=verify_crc)
        assert caught == []
        np.testing.assert_array_equal(got_steps, steps[:39])
        size -= cut


def test_mean_curve_reader_and_workers_report_damage(write_run):
    """MeanCurveReader checks CRCs by default, also when reading in worker
    processes; verify_crc=False takes the damaged value."""
    runs = [write_run(f"r{i}", TAG, range(20), np.full(20, 25.0)) for i in range(2)]
    path = events.list_event_files(runs[1])[0]
    start, length = records(open(path, "rb").read())[6]
    flip(path, start + 12 + length - 1, 0x20)
    for workers in (1, 2):
        with pytest.warns(RuntimeWarning, match=f"{path}: 1 damaged record.* offset.s. {start}"):
            curve = MeanCurveReader(runs, tag=TAG, workers=workers)()
        np.testing.assert_array_equal(curve.y, np.full(20, 25.0))  # step 5 interpolated
    damaged = MeanCurveReader(runs, tag=TAG, verify_crc=False)()
    assert damaged.y[5] > 1e20


def test_command_warns_and_has_no_verify_crc_option(write_run, tmp_path, capsys):
    d = write_run("run", TAG, range(20), np.full(20, 25.0))
    other = write_run("other", TAG, range(20), np.full(20, 25.0))
    path = events.list_event_files(d)[0]
    start, length = records(open(path, "rb").read())[6]
    flip(path, start + 12 + length - 1, 0x20)
    out = tmp_path / "o.png"
    assert main(["-o", str(out), "-t", TAG, "-m", "M", d, other, "-q"]) == 0
    err = capsys.readouterr().err
    assert err == (
        f"alf-plot: warning: {path}: 1 damaged record(s) skipped (CRC mismatch) at byte "
        f"offset(s) {start}\n"
    )
    assert main(["-o", str(out), "-t", TAG, "-m", "M", d, other, "-q", "--no-verify-crc"]) == 0
    assert capsys.readouterr().err == ""
    assert main(["-o", str(out), "-t", TAG, "-m", "M", d, other, "-q", "--verify-crc"]) == 0
    assert "1 damaged record(s) skipped" in capsys.readouterr().err
