"""MeanCurve statistics and ema_smooth against NumPy/SciPy formulas and slow loops."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from alf.utils.plot_tb_curves import MeanCurve, ema_smooth


@pytest.fixture
def curves():
    rng = np.random.default_rng(1)
    x = np.arange(0, 50.0, 2.5)
    return x, [rng.normal(i, 1 + i, size=len(x)) for i in range(5)]


def test_std_mode(curves):
    x, ys = curves
    c = MeanCurve.from_curves(x, ys, "std", name="m")
    a = np.array(ys)
    mean, std = a.mean(0), np.sqrt(((a - a.mean(0)) ** 2).mean(0))
    np.testing.assert_allclose(c.y, mean)
    np.testing.assert_allclose(c.min_y, mean - std)
    np.testing.assert_allclose(c.max_y, mean + std)
    ays = a.mean(1)
    assert c.ay == pytest.approx(ays.mean())
    assert c.min_ay == pytest.approx(ays.mean() - ays.std())
    assert c.max_ay == pytest.approx(ays.mean() + ays.std())
    assert c.name == "m" and np.array_equal(c.x, x)


def test_minmax_mode(curves):
    x, ys = curves
    c = MeanCurve.from_curves(x, ys, "minmax")
    a = np.array(ys)
    np.testing.assert_allclose(c.min_y, a.min(0))
    np.testing.assert_allclose(c.max_y, a.max(0))
    assert c.min_ay == pytest.approx(a.mean(1).min())
    assert c.max_ay == pytest.approx(a.mean(1).max())


@pytest.mark.parametrize("level", [80, 85, 90, 95, 99])
def test_confidence_interval_modes_use_student_t(curves, level):
    x, ys = curves
    c = MeanCurve.from_curves(x, ys, f"CI_{level}")
    a = np.array(ys)
    for j in range(len(x)):
        lo, hi = stats.t.interval(
            level / 100, len(ys) - 1, loc=a[:, j].mean(), scale=stats.sem(a[:, j])
        )
        assert c.min_y[j] == pytest.approx(lo)
        assert c.max_y[j] == pytest.approx(hi)
    lo, hi = stats.t.interval(
        level / 100, len(ys) - 1, loc=a.mean(1).mean(), scale=stats.sem(a.mean(1))
    )
    assert (c.min_ay, c.max_ay) == (pytest.approx(lo), pytest.approx(hi))


def test_bad_input(curves):
    x, ys = curves
    for mode in ("CI_42", "ci_95", "var", None):
        with pytest.raises(ValueError, match="interval_mode must be one of std, minmax, CI_80"):
            MeanCurve.from_curves(x, ys, mode)
    with pytest.raises(ValueError, match="at least 2 curves"):
        MeanCurve.from_curves(x, ys[:1], "CI_95")
    with pytest.raises(ValueError, match="shape of x"):
        MeanCurve.from_curves(x, [ys[0][:-1]])
    with pytest.raises(ValueError, match="at least one curve"):
        MeanCurve.from_curves(x, [])


def test_fields_and_final_y(curves):
    assert MeanCurve()._fields == ("x", "y", "min_y", "max_y", "ay", "min_ay", "max_ay", "name")
    assert MeanCurve().y is None
    x, ys = curves
    c = MeanCurve.from_curves(x, ys)
    assert c.final_y() == pytest.approx(np.mean(ys, 0)[-1])
    assert c.final_y(N=4) == pytest.approx(np.mean(np.mean(ys, 0)[-4:]))
    for bad in (0, len(x) + 1, 1.5):
        with pytest.raises(ValueError, match="N must be an int"):
            c.final_y(bad)


def tb_ema(values, weight):
    """TensorBoard's smoothing loop (line-chart.ts), transcribed."""
    last, n, out = 0.0, 0, []
    for v in values:
        if not math.isfinite(v):
            out.append(v)
            continue
        last = last * weight + (1 - weight) * v
        n += 1
        out.append(last / (1 - weight**n))
    return np.array(out)


def adaptive_ema(values, speed):
    """Running average whose n-th incoming weight is min(1, speed / n), debiased."""
    last, keep, out = 0.0, 1.0, []
    for n, v in enumerate(values, 1):
        a = min(1.0, speed / n)
        last = (1 - a) * last + a * v
        keep *= 1 - a
        out.append(last / (1 - keep))
    return np.array(out)


finite_lists = st.lists(st.floats(-1e6, 1e6), min_size=0, max_size=60)


@given(finite_lists, st.floats(0, 0.99))
def test_ema_forward_is_tensorboards(values, weight):
    np.testing.assert_allclose(
        ema_smooth(values, weight=weight), tb_ema(values, weight), rtol=1e-9, atol=1e-6
    )


@given(finite_lists, st.floats(0, 0.99))
def test_ema_both_averages_forward_and_backward(values, weight):
    expected = (tb_ema(values, weight) + tb_ema(values[::-1], weight)[::-1]) / 2
    np.testing.assert_allclose(
        ema_smooth(values, weight, mode="both"), expected, rtol=1e-9, atol=1e-6
    )


@given(finite_lists, st.floats(0.1, 100))
def test_ema_adaptive(values, speed):
    got = ema_smooth(values, speed=speed, adaptive=True)
    np.testing.assert_allclose(got, adaptive_ema(values, speed), rtol=1e-9, atol=1e-6)


def test_ema_properties():
    # speed 1: the n-th incoming weight is 1/n, i.e. the running mean.
    v = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0])
    np.testing.assert_allclose(
        ema_smooth(v, speed=1, adaptive=True), np.cumsum(v) / np.arange(1, 7)
    )
    np.testing.assert_allclose(ema_smooth([2.0] * 5, weight=0.9), [2.0] * 5)
    out = ema_smooth([1.0, float("nan"), 3.0, float("inf")], weight=0.5)
    assert math.isnan(out[1]) and out[3] == math.inf
    assert out[2] == pytest.approx(tb_ema([1.0, 3.0], 0.5)[1])
    for kw, msg in (
        ({"weight": 1.0}, "weight"),
        ({"speed": 0}, "speed"),
        ({"mode": "back"}, "mode"),
    ):
        with pytest.raises(ValueError, match=msg):
            ema_smooth(v, **kw)


def test_ema_accepts_numpy_scalars():
    v = [3.0, 1.0, 4.0, 1.0, 5.0]
    w = np.float32(0.7)
    np.testing.assert_allclose(ema_smooth(v, weight=w), tb_ema(v, float(w)), rtol=1e-12)
    np.testing.assert_allclose(
        ema_smooth(v, speed=np.int64(2), adaptive=True), adaptive_ema(v, 2.0), rtol=1e-12
    )
    for bad in (True, "0.5", None):
        with pytest.raises(ValueError, match="weight must be a float in \\[0, 1\\)"):
            ema_smooth(v, weight=bad)


def test_from_curves_names_bad_x_and_ys():
    for ys in (5, None, "ab"):
        with pytest.raises(TypeError, match="ys must be a list of curves"):
            MeanCurve.from_curves([0, 1], ys)
    with pytest.raises(ValueError, match=r"ys\[1\] must hold numbers"):
        MeanCurve.from_curves([0, 1], [[1, 2], ["a", "b"]])
    with pytest.raises(ValueError, match="x must hold numbers"):
        MeanCurve.from_curves(["a"], [[1.0]])


@pytest.mark.parametrize("a", [1e-200, 1e-310, 1e200, 1e307])
def test_statistics_at_extreme_magnitudes(a):
    # Closed forms for the runs a * [1, 1] and a * [3, 3] (and -a * [1, 1]).
    x = [0.0, 1.0]
    ys = [[a, a], [3 * a, 3 * a]]
    c = MeanCurve.from_curves(x, ys, "std")
    np.testing.assert_allclose(c.y, [2 * a, 2 * a], rtol=1e-12)
    np.testing.assert_allclose(c.min_y, [a, a], rtol=1e-12)
    np.testing.assert_allclose(c.max_y, [3 * a, 3 * a], rtol=1e-12)
    assert (c.ay, c.min_ay, c.max_ay) == (
        pytest.approx(2 * a, rel=1e-12),
        pytest.approx(a, rel=1e-12),
        pytest.approx(3 * a, rel=1e-12),
    )
    c = MeanCurve.from_curves(x, [[a, a], [-a, -a]], "CI_95")
    half = stats.t.ppf(0.975, 1) * a  # t * s / sqrt(2) with s = sqrt(2) * a
    np.testing.assert_allclose(c.max_y, [half, half], rtol=1e-12)
    np.testing.assert_allclose(c.min_y, [-half, -half], rtol=1e-12)
    assert c.max_ay == pytest.approx(half, rel=1e-12)
    c = MeanCurve.from_curves(x, [[6 * a, 6 * a], [6 * a, 6 * a]], "minmax")
    np.testing.assert_allclose(c.y, [6 * a, 6 * a], rtol=1e-12)
    assert c.ay == pytest.approx(6 * a, rel=1e-12)


def test_public_names_report_the_plot_tb_curves_module():
    import inspect
    import pickle

    from alf.utils import plot_tb_curves

    for name in plot_tb_curves.__all__:
        obj = getattr(plot_tb_curves, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__module__ == "alf.utils.plot_tb_curves", name
    curve = plot_tb_curves.MeanCurve(x=[1.0], y=[2.0], name="a")
    data = pickle.dumps(curve)
    assert b"_plot_tb_" not in data
    assert pickle.loads(data) == curve
