"""Shared fixtures: a deterministic hypothesis profile and an event-file writer.

Event files are written with tensorboard's own ``EventFileWriter`` (no torch,
no TensorFlow), so the reader is tested on real files.
"""

import matplotlib
import pytest
from hypothesis import HealthCheck, settings

matplotlib.use("Agg")

settings.register_profile(
    "alf",
    derandomize=True,
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile("alf")


class EventWriter:
    """Writes events to one new event file in ``logdir`` (tensorboard's writer)."""

    def __init__(self, logdir, filename_suffix=""):
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self._writer = EventFileWriter(str(logdir), filename_suffix=filename_suffix)
        self.path = self._writer.get_logdir()

    def scalar(self, tag, step, value, kind="simple", wall_time=1.7e9):
        """One scalar: ``kind`` "simple" (simple_value) or "tensor" (float32 tensor)."""
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.util import tensor_util

        if kind == "simple":
            v = summary_pb2.Summary.Value(tag=tag, simple_value=value)
        else:
            v = summary_pb2.Summary.Value(
                tag=tag, tensor=tensor_util.make_tensor_proto(value, dtype="float32")
            )
            v.metadata.plugin_data.plugin_name = "scalars"
        self.event(
            event_pb2.Event(step=step, wall_time=wall_time, summary=summary_pb2.Summary(value=[v]))
        )

    def scalars(self, tag, steps, values, kind="simple"):
        for s, v in zip(steps, values):
            self.scalar(tag, int(s), float(v), kind)

    def restart(self, step):
        """A SessionLog.START event (a job restarted from ``step``)."""
        from tensorboard.compat.proto import event_pb2

        self.event(
            event_pb2.Event(
                step=step,
                wall_time=1.7e9,
                session_log=event_pb2.SessionLog(status=event_pb2.SessionLog.START),
            )
        )

    def event(self, event):
        self._writer.add_event(event)

    def close(self):
        self._writer.close()


@pytest.fixture
def event_writer():
    """``event_writer(logdir)`` opens an ``EventWriter``; all are closed at teardown."""
    writers = []

    def make(logdir, filename_suffix=""):
        w = EventWriter(logdir, filename_suffix)
        writers.append(w)
        return w

    yield make
    for w in writers:
        w.close()


@pytest.fixture
def write_run(tmp_path, event_writer):
    """``write_run(name, tag, steps, values)`` writes a one-file run, returns its dir."""

    def make(name, tag, steps, values, kind="simple"):
        d = tmp_path / name
        d.mkdir(parents=True)
        w = event_writer(d)
        w.scalars(tag, steps, values, kind)
        w.close()
        return str(d)

    return make
