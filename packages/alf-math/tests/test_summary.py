"""Tests of alf.summary writing real TensorBoard event files."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from alf import summary


@pytest.fixture
def writer(tmp_path):
    w = summary.create_summary_writer(str(tmp_path), flush_secs=1)
    summary.set_default_writer(w)
    summary.reset_global_counter()
    yield w
    summary.set_default_writer(None)
    summary.reset_global_counter()
    w.close()


def _read(path):
    acc = EventAccumulator(str(path), size_guidance={"scalars": 0, "histograms": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_scalars_scopes_and_global_counter(writer, tmp_path):
    for _ in range(3):
        with summary.scope("train"):
            with summary.scope("loss"):
                summary.scalar("value", torch.tensor(float(summary.get_global_counter()) * 2))
        summary.increment_global_counter()
    summary.scalar("explicit", 1.5, step=100)
    writer.flush()
    acc = _read(tmp_path)
    events = acc.Scalars("train/loss/value")
    assert [e.step for e in events] == [0, 1, 2]
    assert [e.value for e in events] == [0.0, 2.0, 4.0]
    assert [(e.step, e.value) for e in acc.Scalars("explicit")] == [(100, 1.5)]


def test_scope_object_can_be_reentered(writer, tmp_path):
    with summary.scope("algo"):
        saved = summary.scope("ratio")
    with saved as name:
        assert name == "algo/ratio/"
        summary.scalar("x", 1.0)
    writer.flush()
    assert len(_read(tmp_path).Scalars("algo/ratio/x")) == 1


def test_record_if_and_enable(writer, tmp_path):
    with summary.record_if(lambda: int(summary.get_global_counter()) % 2 == 0):
        for step in range(6):
            summary.set_global_counter(step)
            summary.scalar("every_other", step)
    summary.enable_summary(False)
    try:
        assert not summary.should_record_summaries()
        summary.scalar("disabled", 1.0)
    finally:
        summary.enable_summary(True)
    writer.flush()
    acc = _read(tmp_path)
    assert [e.step for e in acc.Scalars("every_other")] == [0, 2, 4]
    assert "disabled" not in acc.Tags()["scalars"]


def test_average_over_summary_interval(writer, tmp_path):
    with summary.record_if(lambda: int(summary.get_global_counter()) % 3 == 2):
        for step in range(6):
            summary.set_global_counter(step)
            summary.scalar("avg", float(step), average_over_summary_interval=True)
    writer.flush()
    events = _read(tmp_path).Scalars("avg")
    assert [(e.step, e.value) for e in events] == [(2, 1.0), (5, 4.0)]


def test_histogram_and_text(writer, tmp_path):
    data = torch.arange(100, dtype=torch.float32)
    summary.histogram("h", data)
    summary.text("t", ["line one", "line two"])
    writer.flush()
    acc = _read(tmp_path)
    hist = acc.Histograms("h")[0].histogram_value
    assert hist.num == 100 and hist.min == 0 and hist.max == 99
    assert abs(hist.sum - float(data.sum())) < 1e-6
    tensor_events = acc.Tensors("t/text_summary")
    assert b"line one\nline two" in tensor_events[0].tensor_proto.string_val[0]


def test_no_writer_is_a_no_op(tmp_path):
    summary.set_default_writer(None)
    summary.reset_global_counter()
    assert not summary.should_record_summaries()
    summary.scalar("x", 1.0)
    summary.scalar("avg", 100.0, average_over_summary_interval=True)
    summary.histogram("h", torch.ones(3))
    summary.text("t", "hello")
    # Nothing was kept for a writer set later: only what follows is written,
    # and the averaged scalar does not include the value given without one.
    w = summary.create_summary_writer(str(tmp_path), flush_secs=1)
    summary.set_default_writer(w)
    try:
        summary.scalar("avg", 3.0, average_over_summary_interval=True)
        w.flush()
    finally:
        summary.set_default_writer(None)
        w.close()
    acc = _read(tmp_path)
    assert acc.Tags()["scalars"] == ["avg"] and not acc.Tags()["histograms"]
    assert [e.value for e in acc.Scalars("avg")] == [3.0]


def test_works_without_tensorboard_installed():
    script = textwrap.dedent(
        """
        import sys
        sys.modules["tensorboard"] = None  # makes `import tensorboard` fail
        import alf.summary as summary
        import alf.nest, alf.tensor_specs, alf.data_structures
        summary.scalar("x", 1.0)
        with summary.scope("s"):
            summary.histogram("h", [1.0, 2.0])
        try:
            summary.create_summary_writer("/tmp/never")
        except ImportError as e:
            assert "alf-math[tensorboard]" in str(e), e
            print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_scope_name_must_be_str():
    with pytest.raises(TypeError, match="name must be a str"):
        summary.scope(3)


def test_default_writer_and_enable_switch_are_reported(writer):
    assert summary.get_default_writer() is writer
    assert summary.is_summary_enabled() is True
    summary.enable_summary(False)
    try:
        assert summary.is_summary_enabled() is False
        assert not summary.should_record_summaries()
    finally:
        summary.enable_summary(True)
    assert summary.is_summary_enabled() is True and summary.should_record_summaries()
    summary.enable_summary(0)  # any falsy flag turns summaries off, read back as a bool
    try:
        assert summary.is_summary_enabled() is False
    finally:
        summary.enable_summary()
    summary.set_default_writer(None)
    assert summary.get_default_writer() is None and not summary.should_record_summaries()


def test_scalar_of_one_element_tensors_of_any_dtype(writer, tmp_path):
    summary.scalar("bf16", torch.tensor(1.5, dtype=torch.bfloat16))
    summary.scalar("shape_1", torch.tensor([2.5]))
    summary.scalar("shape_1_1", np.array([[3.5]]))
    summary.scalar("avg_bf16", torch.tensor([0.5], dtype=torch.bfloat16), True)
    summary.histogram("h_bf16", torch.tensor([1.0, 2.0, 4.0], dtype=torch.bfloat16))
    writer.flush()
    acc = _read(tmp_path)
    for tag, want in (("bf16", 1.5), ("shape_1", 2.5), ("shape_1_1", 3.5), ("avg_bf16", 0.5)):
        assert [e.value for e in acc.Scalars(tag)] == [want]
    hist = acc.Histograms("h_bf16")[0].histogram_value
    assert (hist.num, hist.min, hist.max, hist.sum) == (3, 1.0, 4.0, 7.0)


def test_scalar_of_several_values_names_data(writer):
    with pytest.raises(ValueError, match=r"data must hold a single value; got shape \[2\]"):
        summary.scalar("two", torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"data must hold a single value; got shape \[3\]"):
        summary.scalar("three", [1.0, 2.0, 3.0], average_over_summary_interval=True)
