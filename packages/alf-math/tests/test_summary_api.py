"""alf.summary: writer stack, scopes, switches, EnsureSummary, the 30-bin
histogram default and the flush at interpreter exit (real event files)."""

import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from alf import summary

SIZE_GUIDANCE = {"scalars": 0, "histograms": 0, "images": 0, "tensors": 0}


def _read(path):
    acc = EventAccumulator(str(path), size_guidance=SIZE_GUIDANCE)
    acc.Reload()
    return acc


@pytest.fixture
def writer(tmp_path):
    w = summary.create_summary_writer(str(tmp_path / "main"), flush_secs=1)
    summary.set_default_writer(w)
    summary.reset_global_counter()
    summary.enable_summary(True)
    yield w
    summary.set_default_writer(None)
    summary.reset_global_counter()
    summary.enable_summary(True)
    w.close()


def _nonzero_buckets(proto):
    """{right edge: count} of the non-empty buckets of a HistogramProto."""
    return {
        round(limit, 9): count
        for limit, count in zip(proto.bucket_limit, proto.bucket)
        if count > 0
    }


def test_histogram_defaults_to_30_equal_bins(writer, tmp_path):
    rng = np.random.default_rng(0)
    data = rng.normal(size=1000)
    summary.histogram("h", torch.tensor(data))
    writer.flush()
    proto = _read(tmp_path / "main").Histograms("h")[0].histogram_value
    counts, edges = np.histogram(data, bins=30)  # independent: NumPy's 30 equal bins
    want = {round(e, 9): int(c) for e, c in zip(edges[1:], counts) if c > 0}
    assert _nonzero_buckets(proto) == pytest.approx(want)
    assert proto.num == 1000 and proto.min == pytest.approx(data.min())
    assert proto.sum == pytest.approx(data.sum()) and proto.sum_squares == pytest.approx(
        data @ data
    )


def test_histogram_explicit_edges_max_bins_and_empty(writer, tmp_path):
    data = torch.tensor([0.1, 0.2, 1.5, 2.5, 2.6, 2.7])
    summary.histogram("edges", data, bins=torch.tensor([0.0, 1.0, 2.0, 3.0]), walltime=123.0)
    summary.histogram("empty", torch.zeros(0))  # nothing to show: nothing written
    summary.histogram("merged", torch.arange(8.0), bins=8, max_bins=4)
    writer.flush()
    acc = _read(tmp_path / "main")
    event = acc.Histograms("edges")[0]
    assert event.wall_time == 123.0
    assert _nonzero_buckets(event.histogram_value) == {1.0: 2, 2.0: 1, 3.0: 3}
    assert "empty" not in acc.Tags()["histograms"]
    merged = acc.Histograms("merged")[0].histogram_value
    assert sum(merged.bucket) == 8 and len([c for c in merged.bucket if c]) == 4


def test_histogram_bad_input(writer):
    with pytest.raises(ValueError, match="bins must be >= 1; got 0"):
        summary.histogram("h", torch.ones(3), bins=0)
    with pytest.raises(ValueError, match="increasing bin edges"):
        summary.histogram("h", torch.ones(3), bins=[1.0, 0.0])
    with pytest.raises(ValueError, match="histogram 'nan' holds NaN or infinite"):
        summary.histogram("nan", torch.tensor([1.0, float("nan")]))


def test_push_and_pop_summary_writer(writer, tmp_path):
    other = summary.create_summary_writer(str(tmp_path / "eval"), flush_secs=1)
    try:
        summary.scalar("where", 0.0)
        summary.push_summary_writer(other)
        assert summary.get_default_writer() is other
        summary.scalar("where", 1.0)
        summary.push_summary_writer(None)  # silence in between
        assert not summary.should_record_summaries()
        summary.scalar("where", 2.0)
        assert summary.pop_summary_writer() is None
        seen_in_thread = []
        t = threading.Thread(target=lambda: seen_in_thread.append(summary.get_default_writer()))
        t.start()
        t.join(30)
        assert seen_in_thread == [writer]  # other threads keep the default writer
        assert summary.pop_summary_writer() is other
        summary.scalar("where", 3.0)
        with pytest.raises(IndexError, match="no summary writer was pushed"):
            summary.pop_summary_writer()
        with pytest.raises(TypeError, match="writer must be a SummaryWriter"):
            summary.push_summary_writer("not a writer")
        with pytest.raises(TypeError, match="writer must be a SummaryWriter"):
            summary.set_default_writer(3)
        assert summary.get_default_writer() is writer
        writer.flush()
        other.flush()
        assert [e.value for e in _read(tmp_path / "main").Scalars("where")] == [0.0, 3.0]
        assert [e.value for e in _read(tmp_path / "eval").Scalars("where")] == [1.0]
    finally:
        other.close()


def test_disable_summary_and_summarize_output(writer, tmp_path):
    assert summary.should_summarize_output() is False  # off at start
    assert summary.should_summarize_output(True) is True
    summary.disable_summary()
    assert summary.is_summary_enabled() is False
    assert summary.should_summarize_output() is False
    summary.scalar("off", 1.0)
    summary.enable_summary()
    with summary.record_if(False):
        assert summary.should_summarize_output() is False
    assert summary.should_summarize_output(False) is False
    summary.scalar("on", 1.0)
    writer.flush()
    assert _read(tmp_path / "main").Tags()["scalars"] == ["on"]


class _Algo:
    def __init__(self, name):
        self._name = name

    @summary.enter_summary_scope
    def train_step(self, x):
        """Writes a scalar inside the algorithm's scope."""
        summary.scalar("x", x)
        return summary.scope_name()


def test_scope_name_and_enter_summary_scope(writer, tmp_path):
    assert summary.scope_name() == ""
    with summary.scope("outer"):
        assert summary.scope_name() == "outer/"
        assert _Algo("algo").train_step(2.0) == "outer/algo/"
        assert summary.scope_name() == "outer/"
    assert _Algo.train_step.__doc__.startswith("Writes a scalar")
    with pytest.raises(TypeError, match=r"_Algo._name must be a str"):
        _Algo(None).train_step(1.0)
    with pytest.raises(TypeError, match="method must be callable"):
        summary.enter_summary_scope(3)
    writer.flush()
    assert [e.value for e in _read(tmp_path / "main").Scalars("outer/algo/x")] == [2.0]


def test_ensure_summary_writes_after_a_missed_interval(writer, tmp_path):
    ensure = summary.EnsureSummary()
    # Episodes end at iterations 3, 4, 9 and 12; summaries are due every 5.
    ends = {3, 4, 9, 12}
    pending = []
    with summary.record_if(lambda: int(summary.get_global_counter()) % 5 == 0):
        for it in range(15):
            summary.set_global_counter(it)
            ensure.tick()
            if it in ends:
                with ensure:
                    summary.scalar("episode", float(it))
            pending.append(ensure.pending)
    # a missed interval is pending from the due iteration to the next entry
    assert [it for it, p in enumerate(pending) if p] == [0, 1, 2, 5, 6, 7, 8, 10, 11]
    writer.flush()
    # Due at 0 (missed until 3), 5 (missed until 9), 10 (missed until 12).
    assert [e.step for e in _read(tmp_path / "main").Scalars("episode")] == [3, 9, 12]
    # with ensure, writing happens at least when writing is due anyway
    with summary.record_if(True):
        fresh = summary.EnsureSummary()
        with fresh:
            assert summary.should_record_summaries()
    assert fresh.pending is False


def test_events_reach_the_file_at_normal_exit_without_flush(tmp_path):
    script = textwrap.dedent(
        """
        import sys
        from alf import summary
        # A long flush period and a big queue: only the exit flush writes.
        w = summary.create_summary_writer(sys.argv[1], flush_secs=10000, max_queue=10000)
        summary.set_default_writer(w)
        for step in range(5):
            summary.set_global_counter(step)
            summary.scalar("value", step * 1.5)
        summary.histogram("hist", [1.0, 2.0, 3.0])
        """
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    acc = _read(tmp_path)
    assert [(e.step, e.value) for e in acc.Scalars("value")] == [(s, s * 1.5) for s in range(5)]
    assert acc.Histograms("hist")[0].histogram_value.num == 3
