"""Write demo TensorBoard runs for the README figure (tensorboard's writer, no torch).

Three made-up methods x 5 seeds of ``Metrics_vs_EnvironmentSteps/AverageReturn``
(noisy saturating learning curves, logged every 5,000 environment steps, seeds
stopping at slightly different steps), laid out like ALF root dirs::

    python docs/make_demo_runs.py /tmp/demo_runs
    # -> /tmp/demo_runs/<method>/seed<k>/eval/events.out.tfevents...
"""

import os
import sys

import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter

TAG = "Metrics_vs_EnvironmentSteps/AverageReturn"
METHODS = {"SAC": (900.0, 2.0e5), "PPO": (700.0, 4.0e5), "DDPG": (800.0, 3.0e5)}


def main(root):
    rng = np.random.default_rng(2026)
    for method, (final, scale) in METHODS.items():
        for seed in range(5):
            logdir = os.path.join(root, method, f"seed{seed}", "eval")
            os.makedirs(logdir, exist_ok=True)
            writer = EventFileWriter(logdir)
            last = int(1_000_000 + rng.integers(0, 50) * 5000)
            for step in range(0, last + 1, 5000):
                mean = final * (1 - np.exp(-step / scale)) * rng.uniform(0.9, 1.1)
                value = summary_pb2.Summary.Value(tag=TAG, simple_value=mean + rng.normal(0, 60))
                writer.add_event(
                    event_pb2.Event(
                        step=step,
                        wall_time=1.7e9 + step / 1000,
                        summary=summary_pb2.Summary(value=[value]),
                    )
                )
            writer.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "demo_runs")
