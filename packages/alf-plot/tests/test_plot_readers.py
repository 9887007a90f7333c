"""MeanCurveReader and friends on event files written with tensorboard's writer."""

import numpy as np
import pytest
from scipy import stats

from alf.utils import plot_tb_curves as ptc

TAG = "Metrics/AverageReturn"


def test_interpolation_onto_the_common_x_range(write_run):
    # Runs over x in (1, 9), (0, 10), (0, 8): the common range is (1, 8).
    specs = [(np.arange(1, 10), 1.0), (np.arange(0, 11, 0.5), 2.0), (np.arange(0, 9), 3.0)]
    runs, raw = [], []
    for i, (xs, k) in enumerate(specs):
        ys = k * xs**2
        runs.append(write_run(f"r{i}", TAG, (xs * 10).astype(int), ys))
        raw.append(((xs * 10).astype(int).astype(float), ys))
    c = ptc.MeanCurveReader(runs, tag=TAG, name="m")()
    # The run with the most steps in [10, 80] is the second (every 5).
    np.testing.assert_array_equal(c.x, np.arange(10, 81, 5.0))
    interp = np.array([np.interp(c.x, s, y) for s, y in raw])
    np.testing.assert_allclose(c.y, interp.mean(0))
    np.testing.assert_allclose(c.max_y - c.y, interp.std(0))
    assert c.name == "m"


def test_given_x_steps(write_run):
    runs = [write_run(f"r{i}", TAG, range(0, 101, 10), np.arange(11.0) * (i + 1)) for i in range(3)]
    x = [5, 20, 33, 99]
    c = ptc.IterationsReturnReader(runs, x_steps=x, interval_mode="minmax")()
    np.testing.assert_allclose(c.x, x)
    np.testing.assert_allclose(c.y, 2 * np.array(x) / 10)
    np.testing.assert_allclose(c.min_y, np.array(x) / 10)
    np.testing.assert_allclose(c.max_y, 3 * np.array(x) / 10)
    with pytest.raises(
        ValueError, match=r"x_steps \[5, 200\] reach outside the x range \[0, 100\]"
    ):
        ptc.IterationsReturnReader(runs, x_steps=[5, 200])


def test_confidence_interval_over_runs(write_run):
    rng = np.random.default_rng(3)
    vals = rng.normal(size=(4, 30))
    runs = [write_run(f"r{i}", TAG, range(30), v) for i, v in enumerate(vals)]
    c = ptc.IterationsReturnReader(runs, interval_mode="CI_90")()
    v32 = vals.astype(np.float32).astype(np.float64)  # simple_value is float32
    lo, hi = stats.t.interval(0.9, 3, loc=v32.mean(0), scale=stats.sem(v32, axis=0))
    np.testing.assert_allclose(c.min_y, lo)
    np.testing.assert_allclose(c.max_y, hi)


def test_float_smoothing_is_tensorboards_ema_per_run(write_run):
    vals = np.random.default_rng(4).normal(size=40).astype(np.float32).astype(np.float64)
    run = write_run("r", TAG, range(0, 400, 10), vals)
    c = ptc.IterationsReturnReader(run, smoothing=0.8)()
    last, expected = 0.0, []
    for n, v in enumerate(vals, 1):
        last = 0.8 * last + 0.2 * v
        expected.append(last / (1 - 0.8**n))
    np.testing.assert_allclose(c.y, expected)


def test_int_smoothing_is_a_local_linear_fit(write_run):
    vals = np.random.default_rng(5).normal(size=60).astype(np.float32).astype(np.float64)
    run = write_run("r", TAG, range(60), vals)
    c = ptc.IterationsReturnReader(run, smoothing=7)()
    for j in range(3, 57):  # interior points: least-squares line over the window
        a, b = np.polyfit(np.arange(-3, 4), vals[j - 3 : j + 4], 1)
        assert c.y[j] == pytest.approx(b)
    # A window longer than the run is shortened to the run: a straight-line fit.
    short = ptc.IterationsReturnReader(write_run("s", TAG, range(5), vals[:5]), smoothing=51)()
    np.testing.assert_allclose(
        short.y, np.polyval(np.polyfit(np.arange(5), vals[:5], 1), np.arange(5))
    )


def test_unsorted_and_repeated_steps_keep_the_last_value(write_run):
    run = write_run("r", TAG, [0, 20, 10, 20, 30], [0.0, 1.0, 2.0, 3.0, 4.0])
    c = ptc.IterationsReturnReader(run)()
    np.testing.assert_array_equal(c.x, [0, 10, 20, 30])
    np.testing.assert_array_equal(c.y, [0.0, 2.0, 3.0, 4.0])


@pytest.mark.parametrize(
    "cls, tag, x_label, y_label",
    [
        (
            ptc.EnvironmentStepsReturnReader,
            "Metrics_vs_EnvironmentSteps/AverageReturn",
            "Environment Steps",
            "Average Episodic Return",
        ),
        (
            ptc.EnvironmentStepsSuccessReader,
            "Metrics_vs_EnvironmentSteps/AverageEnvInfo/success",
            "Environment Steps",
            "Success Rate",
        ),
        (
            ptc.IterationsReturnReader,
            "Metrics/AverageReturn",
            "Training Iterations",
            "Average Episodic Return",
        ),
        (
            ptc.IterationsSuccessReader,
            "Metrics/AverageEnvInfo/success",
            "Training Iterations",
            "Success Rate",
        ),
    ],
)
def test_readers_tags_and_labels(write_run, cls, tag, x_label, y_label):
    run = write_run("r", tag, range(5), np.arange(5.0))
    r = cls(run, name="n")
    assert (r.x_label, r.y_label, r.name) == (x_label, y_label, "n")
    np.testing.assert_array_equal(r().y, np.arange(5.0))


def test_base_reader_needs_a_tag(write_run):
    run = write_run("r", "my/tag", range(3), [1.0, 2.0, 3.0])
    r = ptc.MeanCurveReader(run, tag="my/tag")
    assert (r.x_label, r.y_label) == ("Steps", "my/tag")
    with pytest.raises(ValueError, match="tag must be a non-empty string"):
        ptc.MeanCurveReader(run)


def test_errors_name_what_is_missing_and_where(tmp_path, write_run):
    a = write_run("a", TAG, range(0, 10), np.zeros(10))
    b = write_run("b", "other", range(0, 10), np.zeros(10))
    c = write_run("c", TAG, range(20, 30), np.zeros(10))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match=f"no TensorBoard event files.*{empty.name}"):
        ptc.IterationsReturnReader([a, str(empty)])
    with pytest.raises(
        ValueError, match=f"'{TAG}' not found in 1 of 2 runs: {b}.*scalar tags in {b}: other"
    ):
        ptc.IterationsReturnReader([a, b])
    with pytest.raises(ValueError, match="not found in any of the runs"):
        ptc.IterationsReturnReader([b])
    with pytest.raises(ValueError, match=r"do not overlap: .*a: \[0, 9\]; .*c: \[20, 29\]"):
        ptc.IterationsReturnReader([a, c])
    with pytest.raises(ValueError, match="interval_mode must be one of"):
        ptc.IterationsReturnReader(a, interval_mode="CI_50")
    with pytest.raises(ValueError, match="smoothing as a float"):
        ptc.IterationsReturnReader(a, smoothing=1.5)
    with pytest.raises(TypeError, match="smoothing"):
        ptc.IterationsReturnReader(a, smoothing="7")
    with pytest.raises(TypeError, match="event_file"):
        ptc.IterationsReturnReader([])


def test_group_reader_normalizes_and_averages(write_run):
    x = range(0, 50, 5)
    t1 = [write_run(f"t1_{i}", TAG, x, np.arange(10.0) * 10 + i) for i in range(2)]
    t2 = [write_run(f"t2_{i}", TAG, x, -np.arange(10.0) - 2 * i) for i in range(2)]
    r1, r2 = ptc.IterationsReturnReader(t1), ptc.IterationsReturnReader(t2)
    g = ptc.MeanCurveGroupReader([r1, r2], [(0, 100), (0, -10)], name="method")
    c1, c2 = r1(), r2()
    gc = g()
    norm1 = [(getattr(c1, f) - 0) / 100 for f in ("y", "min_y", "max_y")]
    norm2 = [(getattr(c2, f) - 0) / -10 for f in ("y", "min_y", "max_y")]
    np.testing.assert_allclose(gc.y, (norm1[0] + norm2[0]) / 2)
    # The second range is decreasing: its band flips, min stays below max.
    np.testing.assert_allclose(gc.min_y, (norm1[1] + norm2[2]) / 2)
    np.testing.assert_allclose(gc.max_y, (norm1[2] + norm2[1]) / 2)
    assert gc.ay == pytest.approx((c1.ay / 100 + c2.ay / -10) / 2)
    assert (g.name, g.x_label, g.y_label) == (
        "method",
        "Training Iterations",
        "Normalized Average Episodic Return",
    )
    plain = ptc.MeanCurveGroupReader([r1, r2])()
    np.testing.assert_allclose(plain.y, (c1.y + c2.y) / 2)
    other = ptc.IterationsReturnReader(write_run("t3", TAG, range(0, 40, 4), np.zeros(10)))
    with pytest.raises(ValueError, match="share x steps"):
        ptc.MeanCurveGroupReader([r1, other])
    with pytest.raises(ValueError, match="one \\(y0, y1\\) per reader"):
        ptc.MeanCurveGroupReader([r1, r2], [(0, 1)])
    with pytest.raises(ValueError, match="y0 != y1"):
        ptc.MeanCurveGroupReader([r1, r2], [(0, 1), (2, 2)])
    with pytest.raises(TypeError, match="MeanCurveReader"):
        ptc.MeanCurveGroupReader([c1])


@pytest.mark.parametrize("window", [2, 4, 6, 10])
def test_even_smoothing_window_stays_centered(write_run, window):
    # A local linear fit reproduces a straight line exactly: with an even
    # width, a window that is not centered would shift the line by half a step.
    steps = np.arange(0, 300, 10)
    line = 0.5 * np.arange(30.0) - 3.0
    c = ptc.IterationsReturnReader(write_run("r", TAG, steps, line), smoothing=window)()
    np.testing.assert_allclose(c.y, line, atol=1e-9)
    # Interior points of a noisy run: least-squares line over the centered
    # window of window + 1 points (an odd width).
    vals = np.random.default_rng(6).normal(size=30).astype(np.float32).astype(np.float64)
    c = ptc.IterationsReturnReader(write_run("n", TAG, steps, vals), smoothing=window)()
    half = window // 2
    for j in range(half, 30 - half):
        _, b = np.polyfit(np.arange(-half, half + 1), vals[j - half : j + half + 1], 1)
        assert c.y[j] == pytest.approx(b)


def test_window_longer_than_an_even_length_run_fits_one_line(write_run):
    vals = np.random.default_rng(8).normal(size=6).astype(np.float32).astype(np.float64)
    for window in (6, 7, 50):
        c = ptc.IterationsReturnReader(
            write_run(f"r{window}", TAG, range(6), vals), smoothing=window
        )()
        np.testing.assert_allclose(
            c.y, np.polyval(np.polyfit(np.arange(6), vals, 1), np.arange(6)), atol=1e-12
        )


def test_bad_x_steps_and_workers_are_named(write_run):
    run = write_run("r", TAG, range(10), np.arange(10.0))
    for bad in ([float("nan")], [1.0, float("nan"), 3.0], [1.0, float("inf")]):
        with pytest.raises(ValueError, match=r"x_steps must be .*finite.*got \["):
            ptc.IterationsReturnReader(run, x_steps=bad)
    with pytest.raises(ValueError, match="x_steps must be .* numbers; got \\['a'\\]"):
        ptc.IterationsReturnReader(run, x_steps=["a"])
    with pytest.raises(ValueError, match="workers must be None or an int >= 1; got True"):
        ptc.IterationsReturnReader(run, workers=True)
    c = ptc.IterationsReturnReader(run, x_steps=np.array([2, 5]), workers=np.int64(1))()
    np.testing.assert_array_equal(c.y, [2.0, 5.0])


def test_group_reader_rejects_non_finite_ranges(write_run):
    r = ptc.IterationsReturnReader(write_run("t", TAG, range(5), np.arange(5.0)))
    for pair in ((0, float("nan")), (float("-inf"), 1), (0, float("inf"))):
        with pytest.raises(ValueError, match=r"task_performance_ranges\[0\] must be finite"):
            ptc.MeanCurveGroupReader([r], [pair])
