"""Fast reading of one scalar tag from TensorBoard event files.

What is read, and how it matches tensorboard's ``EventAccumulator``
(``size_guidance={'scalars': 0}``, i.e. every point):

* A *run* is a directory (or one event file).  Its event files are the files
  whose name contains ``tfevents`` and does not end in ``.profile-empty``
  (``io_wrapper.IsSummaryEventsFile``), read one after the other in sorted
  path order, like tensorboard's directory loader; subdirectories are not
  searched.
* Points are returned in the order they were written (not sorted by step),
  with tensorboard's purge of orphaned data: in files written with
  ``file_version`` ``brain.Event:2`` (every current writer), a
  ``SessionLog.START`` event at step ``s`` drops every point read so far
  with step ``>= s``; in older files without a version, an out-of-order step
  drops the tag's points with step ``>=`` that step.
* Values are the ``simple_value`` of ``Summary.Value`` (what PyTorch's and
  ALF's summary writers write, and what ``EventAccumulator.Scalars`` returns)
  and scalar ``tensor`` values (TensorFlow 2's writer); a tag holding both
  gives both, in file order.  Purges apply to both kinds (tensorboard does not
  purge tensors).
* A trailing record that is cut short (a run still being written) ends the
  file quietly, as in tensorboard.
* Damage: with ``verify_crc=True`` (the default) every record's two CRCs
  (of its length field and of its payload) are checked.  A record failing
  one of them is skipped with a ``RuntimeWarning`` naming the file and the
  record's byte offset, and reading goes on with the next record (tensorboard
  stops reading the file there instead).  When both fail, the length itself
  cannot be trusted, so the records after it cannot be found: reading of the
  file ends there, with a warning giving the offset and the bytes left
  unread.  A file whose framing ends before its last byte is told apart from
  a run still being written by the CRC of the last length field read: a
  corrupted one ends the file early with that warning, never silently.
  Without the checks (``verify_crc=False``), only that last length field is
  checked, and a record that does not parse as an ``Event`` ends the file
  with a warning (a damaged value that still parses is read as it is).

Speed comes from the reading itself: each file is read in one call, the
record framing (8-byte little-endian length, 4-byte CRC, payload, 4-byte CRC)
is walked with a few operations per record, and only records whose bytes can
matter are parsed with the protobuf C implementation: those containing the
tag's UTF-8 bytes, a ``brain.Event:`` version string, or a canonically
serialized ``SessionLog`` with ``status=START``.  A file with any version
below 2 (where every step matters) is parsed record by record.  Runs are read
in parallel worker processes.
"""

import os
import re
import struct
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed

import numpy as np

from alf.utils._plot_tb_crc import masked_crc32c, masked_crc32c_many

__all__ = [
    "list_event_files",
    "read_runs",
    "read_scalar",
    "scalar_tags",
]

_HEADER = struct.Struct("<Q")
_HEADER_CRC = struct.Struct("<I")
_VERSION_NEEDLE = b"brain.Event:"
# Event.session_log (field 7, length-delimited) whose first field is
# status (field 1, varint) == START (1).
# (Matches of this pattern cannot overlap, so finditer finds them all.)
_START_PATTERN = re.compile(rb"\x3a[\x80-\xff]{0,4}[\x00-\x7f]\x08\x01", re.DOTALL)
# Below this much data a process pool costs more than it saves.
_POOL_MIN_BYTES = 4 << 20


def _is_summary_events_file(name):
    base = os.path.basename(name)
    return "tfevents" in base and not base.endswith(".profile-empty")


def list_event_files(run_path):
    """Event files of one run, in the order tensorboard reads them.

    Args:
        run_path (str): a directory holding event files, or one event file.

    Returns:
        list[str]: the event file paths, sorted.

    Raises:
        ValueError: if ``run_path`` does not exist or holds no event file
            (the message lists subdirectories that do hold some).
    """
    if not isinstance(run_path, (str, os.PathLike)):
        raise TypeError(f"event_file: expected a path string, got {type(run_path).__name__}")
    run_path = os.fspath(run_path)
    if os.path.isfile(run_path):
        if not _is_summary_events_file(run_path):
            raise ValueError(
                f"event_file: {run_path!r} is a file but not a TensorBoard event file "
                "(its name has no 'tfevents')"
            )
        return [run_path]
    if not os.path.isdir(run_path):
        raise ValueError(f"event_file: {run_path!r} does not exist")
    names = sorted(os.listdir(run_path))
    files = [
        os.path.join(run_path, n)
        for n in names
        if _is_summary_events_file(n) and os.path.isfile(os.path.join(run_path, n))
    ]
    if not files:
        hint = ""
        nested = [
            n
            for n in names
            if os.path.isdir(os.path.join(run_path, n))
            and any(_is_summary_events_file(m) for m in os.listdir(os.path.join(run_path, n)))
        ]
        if nested:
            hint = f"; subdirectories with event files: {', '.join(nested)}"
        raise ValueError(
            f"event_file: no TensorBoard event files (*tfevents*) in directory {run_path!r}{hint}"
        )
    return files


def _frame(data):
    """Payload offsets and lengths (int64 arrays) of the complete records of
    ``data``, and the byte offset where the framing ended (``len(data)``
    unless a record reaches beyond the end)."""
    offsets = []
    append = offsets.append
    unpack = _HEADER.unpack_from
    size = len(data)
    pos = 0
    while pos + 16 <= size:
        end = pos + 16 + unpack(data, pos)[0]
        if end > size:
            break
        append(pos)
        pos = end
    offsets = np.array(offsets, dtype=np.int64)
    if len(offsets) == 0:
        return offsets, offsets.copy(), pos
    ends = np.append(offsets[1:], pos)
    return offsets + 12, ends - offsets - 16, pos


def _uint32_le(buf, positions):
    """Little-endian uint32 values stored at ``positions`` of ``buf``."""
    b = buf[positions[:, None] + np.arange(4)].astype(np.uint32)
    return b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16) | (b[:, 3] << 24)


def _crc_ok(data, offsets, lengths):
    """Whether the length CRC and the payload CRC of each record match (two
    bool arrays of shape ``[R]``)."""
    buf = np.frombuffer(data, dtype=np.uint8)
    header_ok = masked_crc32c_many(buf, offsets - 12, np.full_like(lengths, 8)) == _uint32_le(
        buf, offsets - 4
    )
    payload_ok = masked_crc32c_many(buf, offsets, lengths) == _uint32_le(buf, offsets + lengths)
    return header_ok, payload_ok


def _length_corrupted(data, start):
    """Whether the record header at ``start`` is complete and its length
    field fails its CRC (else: a record cut short, or nothing there)."""
    if start + 12 > len(data):
        return False
    return masked_crc32c(data[start : start + 8]) != _HEADER_CRC.unpack_from(data, start + 8)[0]


_MAX_OFFSETS_SHOWN = 10


def _warn_damage(path, message):
    warnings.warn(f"{path}: {message}", RuntimeWarning, stacklevel=4)


def _check_records(path, data, offsets, lengths, end, verify_crc):
    """The records of a file to read (payload offsets and lengths), without
    the damaged ones, warning about each kind of damage (see the module
    docstring)."""
    stop = None  # byte offset of a record whose length is corrupted
    if verify_crc and len(offsets):
        header_ok, payload_ok = _crc_ok(data, offsets, lengths)
        broken = np.flatnonzero(~header_ok & ~payload_ok)
        if len(broken):
            first = int(broken[0])
            stop = int(offsets[first]) - 12
            offsets, lengths = offsets[:first], lengths[:first]
            header_ok, payload_ok = header_ok[:first], payload_ok[:first]
        damaged = np.flatnonzero(~(header_ok & payload_ok))
        if len(damaged):
            shown = ", ".join(str(int(o) - 12) for o in offsets[damaged[:_MAX_OFFSETS_SHOWN]])
            more = ", ..." if len(damaged) > _MAX_OFFSETS_SHOWN else ""
            _warn_damage(
                path,
                f"{len(damaged)} damaged record(s) skipped (CRC mismatch) at byte "
                f"offset(s) {shown}{more}",
            )
            keep = np.ones(len(offsets), dtype=bool)
            keep[damaged] = False
            offsets, lengths = offsets[keep], lengths[keep]
    if stop is None and end < len(data) and _length_corrupted(data, end):
        stop = end
    if stop is not None:
        _warn_damage(
            path,
            f"the length field of the record at byte offset {stop} is corrupted (CRC "
            f"mismatch); the remaining {len(data) - stop} bytes of the file are not read",
        )
    return offsets, lengths


def _records_containing(positions, offsets, ends, sizes):
    """Records whose payload holds the matches at ``positions`` (of ``sizes`` bytes).

    Returns:
        tuple: the record index of each match inside a payload, and whether
        every match was inside one.
    """
    if len(positions) == 0:
        return np.empty(0, dtype=np.int64), True
    pos = np.asarray(positions, dtype=np.int64)
    idx = np.searchsorted(offsets, pos, side="right") - 1
    inside = idx >= 0
    inside[inside] &= pos[inside] + sizes[inside] <= ends[idx[inside]]
    return idx[inside], bool(inside.all())


def _find_all(data, needle, overlapping=False):
    """Start positions (int64 array) of ``needle`` in ``data``, non-overlapping unless asked."""
    if overlapping:
        found = []
        find = data.find
        p = find(needle)
        while p != -1:
            found.append(p)
            p = find(needle, p + 1)
        return np.array(found, dtype=np.int64)
    pieces = data.split(needle)
    sizes = np.fromiter(map(len, pieces), dtype=np.int64, count=len(pieces))
    return np.cumsum(sizes[:-1] + len(needle)) - len(needle)


def _varint(n):
    out = bytearray()
    while True:
        low = n & 0x7F
        n >>= 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _needle_records(data, needle, offsets, ends):
    """Sorted unique indices of the records whose payload holds ``needle``."""
    pos = _find_all(data, needle)
    idx, all_inside = _records_containing(pos, offsets, ends, np.full(len(pos), len(needle)))
    if not all_inside:
        # A match across a record boundary may hide an overlapping one inside
        # the next payload: look again, overlapping.
        pos = _find_all(data, needle, overlapping=True)
        idx, _ = _records_containing(pos, offsets, ends, np.full(len(pos), len(needle)))
    # Positions increase, so idx is sorted: drop repeats.
    return idx[np.append(True, idx[1:] != idx[:-1])] if len(idx) else idx


def _special_records(data, offsets, lengths):
    """Sorted indices of records that may be version or SessionLog.START events."""
    ends = offsets + lengths
    version = _needle_records(data, _VERSION_NEEDLE, offsets, ends)
    starts, sizes = [], []
    for m in _START_PATTERN.finditer(data):
        starts.append(m.start())
        sizes.append(m.end() - m.start())
    start, _ = _records_containing(starts, offsets, ends, np.array(sizes, dtype=np.int64))
    return np.union1d(version, start)


def _decode_canonical(buf, offsets, lengths, tag_bytes):
    """Decode records serialized as ``Event{wall_time, step, summary{value{tag, simple_value}}}``.

    That is the layout every protobuf serializer gives a one-value scalar
    event (fields in number order; ``wall_time`` and ``step`` omitted when 0):
    ``[09 <8 bytes>] [10 <varint step>] 2a <len> 0a <len> 0a <len> <tag> 15 <float32>``.
    Bytes matching it exactly can only parse to that event, so its step and
    value are read with array operations instead of a protobuf parse.

    Args:
        buf (np.ndarray): uint8, the file's bytes.
        offsets, lengths (np.ndarray): int64, shape ``[R]``, payloads to try.
        tag_bytes (bytes): the tag in UTF-8.

    Returns:
        tuple: ``ok`` (bool ``[R]``), ``steps`` (int64 ``[R]``) and ``values``
        (float64 ``[R]``), the last two meaningful where ``ok``.
    """
    value_len = 1 + len(_varint(len(tag_bytes))) + len(tag_bytes) + 1 + 4
    summary_len = 1 + len(_varint(value_len)) + value_len
    suffix = (
        b"\x2a"
        + _varint(summary_len)
        + b"\x0a"
        + _varint(value_len)
        + b"\x0a"
        + _varint(len(tag_bytes))
        + tag_bytes
        + b"\x15"
    )
    k = len(suffix)
    last = len(buf) - 1
    prefix = lengths - 4 - k
    ok = prefix >= 0
    suffix_start = offsets + prefix
    for j, byte in enumerate(suffix):
        ok &= buf[np.minimum(suffix_start + j, last)] == byte
    has_wall = (prefix >= 9) & (buf[offsets] == 0x09)
    rest_start = offsets + 9 * has_wall
    rest = prefix - 9 * has_wall
    # rest is empty (step 0) or 10 <varint> with 1 to 10 varint bytes.
    ok &= (rest == 0) | ((rest >= 2) & (rest <= 11) & (buf[rest_start] == 0x10))
    steps = np.zeros(len(offsets), dtype=np.uint64)
    for j in range(10):
        inside = j < rest - 1
        if not inside.any():
            break
        byte = buf[np.minimum(rest_start + 1 + j, last)].astype(np.uint64)
        more = (byte & 0x80) != 0
        # Continuation bit set on every varint byte but the last.
        ok &= ~inside | (more == (j < rest - 2))
        steps |= np.where(inside, (byte & 0x7F) << np.uint64(7 * j), 0).astype(np.uint64)
    # The float32 value is the last 4 bytes of the payload (which a complete
    # record's CRC follows, so they lie inside ``buf``).
    values = _uint32_le(buf, offsets + lengths - 4).view(np.float32).astype(np.float64)
    return ok, steps.view(np.int64), values


class _RunState:
    """What tensorboard's accumulator carries from one event to the next."""

    def __init__(self, tag):
        self.tag = tag
        self.file_version = None
        self.most_recent_step = -1
        self.steps = []
        self.values = []

    def add(self, steps, values):
        if len(steps):
            self.steps.append(np.asarray(steps, dtype=np.int64))
            self.values.append(np.asarray(values, dtype=np.float64))

    def purge(self, step):
        """Drop every point read so far whose step is >= ``step``."""
        if not self.steps:
            return
        steps, values = self.result()
        keep = steps < step
        self.steps, self.values = [steps[keep]], [values[keep]]

    def result(self):
        if not self.steps:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
        return np.concatenate(self.steps), np.concatenate(self.values)


def _file_version(event):
    """The version number of a ``file_version`` event (``brain.Event:2`` -> 2.0).

    The number is what follows the last ``brain.Event:``; a string without a
    number gives -1.0, which (as in tensorboard's accumulator) selects the purge
    logic of files older than version 2.
    """
    _, _, number = event.file_version.rpartition("brain.Event:")
    try:
        return float(number)
    except ValueError:
        return -1.0


def _values_of(event, tag, path):
    """(step, value) pairs of ``tag`` in a summary event."""
    pairs = []
    for value in event.summary.value:
        if value.tag != tag:
            continue
        kind = value.WhichOneof("value")
        if kind == "simple_value":
            pairs.append((event.step, value.simple_value))
        elif kind == "tensor":
            pairs.append((event.step, _tensor_scalar(value.tensor, tag, path)))
    return pairs


def _tensor_scalar(tensor, tag, path):
    from tensorboard.util import tensor_util

    array = tensor_util.make_ndarray(tensor)
    if array.size != 1 or array.dtype.kind not in "fiub":
        raise ValueError(
            f"tag {tag!r} in {path!r} holds a {array.dtype} tensor of shape "
            f"{tuple(array.shape)}, not a numeric scalar"
        )
    return float(array.reshape(()))


def _parser(path):
    """A function parsing one record's payload to an Event, None if it is not one."""
    from google.protobuf.message import DecodeError
    from tensorboard.compat.proto import event_pb2

    from_string = event_pb2.Event.FromString

    def parse(payload, offset):
        try:
            return from_string(payload)
        except DecodeError:
            warnings.warn(
                f"{path}: record at byte {offset} is not an Event; reading of this file "
                "stops there",
                RuntimeWarning,
                stacklevel=4,
            )
            return None

    return parse


def _read_file(path, state, verify_crc):
    with open(path, "rb") as f:
        data = f.read()
    offsets, lengths, end = _frame(data)
    offsets, lengths = _check_records(path, data, offsets, lengths, end, verify_crc)
    if len(offsets) == 0:
        return
    parse = _parser(path)
    tag = state.tag
    tag_bytes = tag.encode("utf-8")
    buf = np.frombuffer(data, dtype=np.uint8)
    tag_idx = _needle_records(data, tag_bytes, offsets, offsets + lengths)
    ok, steps, values = _decode_canonical(buf, offsets[tag_idx], lengths[tag_idx], tag_bytes)
    special = _special_records(data, offsets, lengths)
    # Parse, in file order, the special records and the tag records of other
    # layouts; a record that does not parse ends the file there.
    to_parse = np.union1d(special, tag_idx[~ok])
    parsed = {}
    stop = len(offsets)
    for i in to_parse.tolist():
        o = int(offsets[i])
        event = parse(data[o : o + int(lengths[i])], o - 12)
        if event is None:
            stop = i
            break
        parsed[i] = event
    versions = [
        (i, _file_version(e)) for i, e in parsed.items() if e.WhichOneof("what") == "file_version"
    ]
    current = state.file_version
    starts_v2 = (current is not None and current >= 2) or (versions and versions[0][0] == 0)
    if not (starts_v2 and all(v >= 2 for _, v in versions)):
        _apply_legacy(data, offsets[:stop], lengths[:stop], state, path, parse)
        return
    # Points: canonical records, then the parsed tag records, ordered by record.
    rec = [tag_idx[ok]]
    pt_steps = [steps[ok]]
    pt_values = [values[ok]]
    extra = [
        (i, s, v)
        for i in tag_idx[~ok].tolist()
        if i in parsed and parsed[i].WhichOneof("what") == "summary"
        for s, v in _values_of(parsed[i], tag, path)
    ]
    if extra:
        rec.append(np.array([e[0] for e in extra], dtype=np.int64))
        pt_steps.append(np.array([e[1] for e in extra], dtype=np.int64))
        pt_values.append(np.array([e[2] for e in extra], dtype=np.float64))
    rec, pt_steps, pt_values = (np.concatenate(a) for a in (rec, pt_steps, pt_values))
    order = np.argsort(rec, kind="stable")
    rec, pt_steps, pt_values = rec[order], pt_steps[order], pt_values[order]
    keep = rec < stop
    rec, pt_steps, pt_values = rec[keep], pt_steps[keep], pt_values[keep]
    # Restarts and version changes split the points where they occur.
    done = 0
    for i in sorted(parsed):
        event = parsed[i]
        what = event.WhichOneof("what")
        if what == "file_version" or (what == "session_log" and event.session_log.status == 1):
            cut = int(np.searchsorted(rec, i))
            state.add(pt_steps[done:cut], pt_values[done:cut])
            done = cut
            if what == "file_version":
                state.file_version = _file_version(event)
            else:  # SessionLog.START
                state.purge(event.step)
    state.add(pt_steps[done:], pt_values[done:])


def _apply_legacy(data, offsets, lengths, state, path, parse):
    """Every event of the file, with tensorboard's full purge logic."""
    steps, values = [], []

    def flush():
        state.add(steps, values)
        steps.clear()
        values.clear()

    for o, n in zip(offsets.tolist(), lengths.tolist()):
        event = parse(data[o : o + n], o - 12)
        if event is None:
            break
        what = event.WhichOneof("what")
        if what == "file_version":
            state.file_version = _file_version(event)
        if state.file_version is not None and state.file_version >= 2:
            if what == "session_log" and event.session_log.status == 1:
                flush()
                state.purge(event.step)
        elif event.step < state.most_recent_step and what == "summary":
            if any(v.tag == state.tag for v in event.summary.value):
                flush()
                state.purge(event.step)
        else:
            state.most_recent_step = event.step
        if what == "summary":
            for step, value in _values_of(event, state.tag, path):
                steps.append(step)
                values.append(value)
    flush()


def read_scalar(files, tag, verify_crc=True):
    """Read every point of one scalar tag from the event files of one run.

    Args:
        files (list[str]): the run's event files in reading order
            (see ``list_event_files``).
        tag (str): the summary tag.
        verify_crc (bool): check each record's CRCs (the default); a damaged
            record is skipped with a warning, a corrupted length field ends
            its file with a warning.  False is faster: a damaged value that
            still parses is then read as it is.

    Returns:
        tuple[np.ndarray, np.ndarray]: ``steps`` (int64, shape ``[P]``) and
        ``values`` (float64, shape ``[P]``) in the order written, after
        tensorboard's purge of orphaned data.
    """
    state = _RunState(tag)
    for path in files:
        _read_file(path, state, verify_crc)
    return state.result()


def scalar_tags(files):
    """Sorted tags of the scalar summaries (simple values and scalar tensors) in the files."""
    tags = set()
    for path in files:
        with open(path, "rb") as f:
            data = f.read()
        offsets, lengths, _ = _frame(data)
        parse = _parser(path)
        for o, n in zip(offsets.tolist(), lengths.tolist()):
            event = parse(data[o : o + n], o - 12)
            if event is None:
                break
            for value in event.summary.value:
                if value.WhichOneof("value") == "simple_value" or (
                    value.WhichOneof("value") == "tensor"
                    and len(value.tensor.tensor_shape.dim) == 0
                ):
                    tags.add(value.tag)
    return sorted(tags)


def _read_scalar_recording_warnings(files, tag, verify_crc):
    """``read_scalar`` in a worker process, with the warnings it raised.

    A worker's warnings would only reach the worker's stderr; they are sent
    back so that the caller re-raises them under its own warning filters.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = read_scalar(files, tag, verify_crc)
    return result, [(str(w.message), w.category) for w in caught]


def read_runs(runs, tag, workers=None, verify_crc=True, progress=None):
    """Read one tag from several runs, in parallel processes when worthwhile.

    Args:
        runs (list[list[str]]): the event files of each run.
        tag (str): the summary tag.
        workers (int | None): number of worker processes; ``None`` picks
            ``min(len(runs), os.cpu_count())`` when there are several runs and
            at least 4 MiB of event data, else reads in this process; ``1``
            always reads in this process.
        verify_crc (bool): check each record's CRCs (see ``read_scalar``).
        progress (callable | None): called as ``progress(done, total)`` after
            each run is read.

    Warnings raised while reading (a damaged record, a record that is not an
    ``Event``) reach the caller's warning filters in both modes: a worker's
    are re-raised here.

    Returns:
        list[tuple[np.ndarray, np.ndarray]]: ``(steps, values)`` of each run, as
        ``read_scalar`` returns them, in the order of ``runs``.
    """
    total = len(runs)
    if workers is None:
        size = sum(os.path.getsize(f) for files in runs for f in files)
        workers = min(total, os.cpu_count() or 1) if size >= _POOL_MIN_BYTES else 1
    results = [None] * total
    if workers <= 1 or total <= 1:
        for i, files in enumerate(runs):
            results[i] = read_scalar(files, tag, verify_crc)
            if progress is not None:
                progress(i + 1, total)
        return results
    with ProcessPoolExecutor(max_workers=min(workers, total)) as pool:
        futures = {
            pool.submit(_read_scalar_recording_warnings, files, tag, verify_crc): i
            for i, files in enumerate(runs)
        }
        for done, future in enumerate(as_completed(futures), 1):
            results[futures[future]], caught = future.result()
            for message, category in caught:
                warnings.warn(message, category, stacklevel=2)
            if progress is not None:
                progress(done, total)
    return results
