"""Benchmark: reading one scalar tag from many TensorBoard runs (alf-plot).

Writes ``--runs`` runs of ``--points`` scalar points of one tag (simple values,
as PyTorch's and ALF's summary writers write them, after the usual
``brain.Event:2`` header) into a temporary directory, then reads every run with

* the baseline: tensorboard's ``EventAccumulator(run, size_guidance={'scalars': 0})``
  (every point kept), ``Reload()`` and ``Scalars(tag)``;
* alf-plot's reader (``alf.utils._plot_tb_events.read_runs``, which
  ``MeanCurveReader`` uses): serial in this process and with a process pool,
  with CRC checks (the default) and without them (``verify_crc=False``,
  ``--no-verify-crc``).

Each measurement is the median of ``--repeats`` runs; the values are checked to be
identical (same steps, same floats, same order) to the baseline's.  Usage::

    python benchmarks/bench_plot_read.py [--runs 20] [--points 100000] [--repeats 3]
"""

import argparse
import os
import statistics
import struct
import sys
import tempfile
import time

import numpy as np


def write_run(directory, tag, points, seed):
    """One event file: the version header, then ``points`` simple-value scalars."""
    from tensorboard.compat.proto import event_pb2

    from alf.utils._plot_tb_crc import masked_crc32c_many

    rng = np.random.default_rng(seed)
    values = np.cumsum(rng.normal(size=points)).astype(np.float32)
    payloads = [event_pb2.Event(wall_time=1.7e9, file_version="brain.Event:2").SerializeToString()]
    event = event_pb2.Event(wall_time=1.7e9)
    value = event.summary.value.add()
    value.tag = tag
    for step, v in enumerate(values.tolist()):
        event.step = step * 100
        event.wall_time = 1.7e9 + step
        value.simple_value = v
        payloads.append(event.SerializeToString())
    lengths = np.array([len(p) for p in payloads], dtype=np.int64)
    headers = b"".join(struct.pack("<Q", n) for n in lengths.tolist())
    header_buf = np.frombuffer(headers, dtype=np.uint8)
    header_crc = masked_crc32c_many(
        header_buf, np.arange(len(payloads)) * 8, np.full(len(payloads), 8)
    )
    body = b"".join(payloads)
    body_buf = np.frombuffer(body, dtype=np.uint8)
    body_crc = masked_crc32c_many(body_buf, np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    path = os.path.join(directory, f"events.out.tfevents.1700000000.bench.{seed}")
    with open(path, "wb") as f:
        for i, payload in enumerate(payloads):
            f.write(headers[8 * i : 8 * i + 8])
            f.write(struct.pack("<I", int(header_crc[i])))
            f.write(payload)
            f.write(struct.pack("<I", int(body_crc[i])))


def read_baseline(runs, tag):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = []
    for run in runs:
        acc = EventAccumulator(run, size_guidance={"scalars": 0})
        acc.Reload()
        events = acc.Scalars(tag)
        out.append(
            (
                np.array([e.step for e in events], dtype=np.int64),
                np.array([e.value for e in events], dtype=np.float64),
            )
        )
    return out


def read_alf(runs, tag, workers, verify_crc=True):
    from alf.utils._plot_tb_events import list_event_files, read_runs

    return read_runs([list_event_files(r) for r in runs], tag, workers, verify_crc)


def timed(fn, repeats):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    tag = "Metrics_vs_EnvironmentSteps/AverageReturn"
    with tempfile.TemporaryDirectory() as root:
        runs = []
        for i in range(args.runs):
            run = os.path.join(root, f"run{i}")
            os.makedirs(run)
            write_run(run, tag, args.points, seed=i)
            runs.append(run)
        size = sum(os.path.getsize(os.path.join(r, f)) for r in runs for f in os.listdir(r))
        print(
            f"{args.runs} runs x {args.points} points of one tag, {size / 2**20:.1f} MiB, "
            f"{os.cpu_count()} CPUs, median of {args.repeats}",
            flush=True,
        )
        base_t, base = timed(lambda: read_baseline(runs, tag), args.repeats)
        print(f"{'EventAccumulator (baseline)':40s} {base_t:8.2f} s", flush=True)
        cpus = os.cpu_count()
        rows = [
            ("alf-plot, 1 process (CRCs checked)", lambda: read_alf(runs, tag, 1)),
            (f"alf-plot, {cpus} processes (CRCs checked)", lambda: read_alf(runs, tag, None)),
            ("alf-plot, 1 process, no CRC", lambda: read_alf(runs, tag, 1, False)),
            (f"alf-plot, {cpus} processes, no CRC", lambda: read_alf(runs, tag, None, False)),
        ]
        ok = True
        for label, fn in rows:
            t, result = timed(fn, args.repeats)
            same = len(result) == len(base) and all(
                np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
                for a, b in zip(result, base)
            )
            ok &= same
            print(
                f"{label:40s} {t:8.2f} s   {base_t / t:6.1f}x faster   "
                f"values {'identical' if same else 'DIFFER'}",
                flush=True,
            )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
