"""Averagers against NumPy computations (float64) of the same weighted means.

The oracles write each average as an explicit weighted sum over the samples
(``sum_i w_i x_i``), not as the recursion the code uses.
"""

import io
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from alf.tensor_specs import TensorSpec
from alf.utils.averager import (
    AdaptiveAverager,
    EMAverager,
    ScalarAdaptiveAverager,
    ScalarEMAverager,
    ScalarWindowAverager,
    WindowAverager,
    average_outer_dims,
)


# ---- NumPy oracles ----------------------------------------------------------
def ema_weights(n, rate):
    """Normalized weights of samples 1..n for an EMA with bias correction."""
    raw = rate * (1 - rate) ** np.arange(n - 1, -1, -1, dtype=np.float64)
    return raw / raw.sum()


def adaptive_weights(n, speed):
    """w_t = a_t * prod_{k>t} (1 - a_k) with a_k = speed / (speed + k - 1)."""
    rates = speed / (speed + np.arange(n, dtype=np.float64))
    w = np.empty(n)
    for t in range(n):
        w[t] = rates[t] * np.prod(1 - rates[t + 1 :])
    return w


def window_weights(n, window):
    w = np.zeros(n)
    k = min(n, window)
    w[n - k :] = 1.0 / k
    return w


def weighted(samples, weights):
    """samples: list of arrays (one per update, already averaged over outer dims)."""
    return np.tensordot(weights, np.stack(samples), axes=1)


def outer_mean(x, spec_ndim):
    x = np.asarray(x, dtype=np.float64)
    outer = x.ndim - spec_ndim
    return x.reshape((-1,) + x.shape[outer:]).mean(axis=0)


def _np(t):
    return t.detach().cpu().double().numpy()


# ---- weighted averages ------------------------------------------------------
batches = st.lists(
    st.lists(st.floats(-1e3, 1e3, allow_nan=False, width=32), min_size=6, max_size=6),
    min_size=1,
    max_size=12,
)


@given(data=batches, rate=st.floats(0.01, 1.0))
def test_ema_matches_explicit_weights(data, rate):
    avg = ScalarEMAverager(rate, dtype=torch.float64)
    samples = []
    for row in data:
        x = torch.tensor(row, dtype=torch.float64).view(2, 3)  # outer dims [2, 3]
        got = avg.average(x)
        samples.append(outer_mean(row, 0))
        want = weighted(samples, ema_weights(len(samples), rate))
        np.testing.assert_allclose(_np(got), want, rtol=1e-9, atol=1e-9)


@given(data=batches, speed=st.floats(0.5, 20.0))
def test_adaptive_matches_explicit_weights(data, speed):
    avg = ScalarAdaptiveAverager(speed=speed, dtype=torch.float64)
    samples = []
    for row in data:
        avg.update(torch.tensor(row, dtype=torch.float64))
        samples.append(outer_mean(row, 0))
    want = weighted(samples, adaptive_weights(len(samples), speed))
    np.testing.assert_allclose(_np(avg.get()), want, rtol=1e-9, atol=1e-9)


@given(data=batches, window=st.integers(1, 5))
def test_window_matches_mean_of_last_samples(data, window):
    avg = ScalarWindowAverager(window, dtype=torch.float64)
    samples = []
    for row in data:
        got = avg.average(torch.tensor(row, dtype=torch.float64))
        samples.append(outer_mean(row, 0))
        want = np.mean(samples[-window:])
        np.testing.assert_allclose(_np(got), want, rtol=1e-9, atol=1e-9)


def test_adaptive_speed_one_is_plain_mean_and_weights_favour_recent():
    avg = ScalarAdaptiveAverager(speed=1, dtype=torch.float64)
    values = np.arange(1.0, 11.0)
    for v in values:
        avg.update(torch.tensor(v, dtype=torch.float64))
    np.testing.assert_allclose(_np(avg.get()), values.mean(), rtol=1e-12)
    # documented shape of the weights: roughly proportional to (t/T)^(speed-1)
    w = adaptive_weights(400, 8.0)
    t = np.arange(1, 401)
    ratio = w[200:] / (t[200:] / 400.0) ** 7
    assert ratio.max() / ratio.min() < 1.1


def test_first_sample_taken_whole_and_zeros_before_update(device):
    spec = TensorSpec((2,))
    for avg in (EMAverager(spec, 0.01), AdaptiveAverager(spec), WindowAverager(spec, 4)):
        avg = avg.to(device)
        assert torch.equal(avg.get(), torch.zeros(2, device=device))
        x = torch.tensor([[1.0, -2.0], [3.0, 4.0]], device=device)
        torch.testing.assert_close(avg.average(x), torch.tensor([2.0, 1.0], device=device))


# ---- nests, dtypes, outer dims ----------------------------------------------
def _nest_spec():
    return {
        "obs": (TensorSpec((3,)), TensorSpec((2, 2), torch.float64)),
        "reward": TensorSpec(()),
    }


@pytest.mark.parametrize("kind", ["ema", "adaptive", "window"])
def test_nested_specs_and_outer_dims(device, kind):
    rng = np.random.default_rng(0)
    spec = _nest_spec()
    if kind == "ema":
        avg, weights = EMAverager(spec, 0.3), lambda n: ema_weights(n, 0.3)
    elif kind == "adaptive":
        avg, weights = AdaptiveAverager(spec, speed=3.0), lambda n: adaptive_weights(n, 3.0)
    else:
        avg, weights = WindowAverager(spec, 3), lambda n: window_weights(n, 3)
    avg = avg.to(device)
    samples = {"a": [], "b": [], "r": []}
    for step in range(7):
        a = rng.normal(size=(4, 5, 3))  # outer dims [T, B]
        b = rng.normal(size=(6, 2, 2))  # other outer dims than "a"
        r = rng.normal(size=(4,)) * step
        got = avg.average(
            {
                "obs": (
                    torch.tensor(a, dtype=torch.float32, device=device),
                    torch.tensor(b, dtype=torch.float64, device=device),
                ),
                "reward": torch.tensor(r, dtype=torch.float32, device=device),
            }
        )
        samples["a"].append(outer_mean(a.astype(np.float32), 1))
        samples["b"].append(outer_mean(b, 2))
        samples["r"].append(outer_mean(r.astype(np.float32), 0))
        w = weights(step + 1)
        assert got["obs"][0].dtype == torch.float32 and got["obs"][0].shape == (3,)
        assert got["obs"][1].dtype == torch.float64 and got["obs"][1].shape == (2, 2)
        assert got["reward"].shape == ()
        np.testing.assert_allclose(
            _np(got["obs"][0]), weighted(samples["a"], w), rtol=1e-5, atol=1e-6
        )
        np.testing.assert_allclose(
            _np(got["obs"][1]), weighted(samples["b"], w), rtol=1e-10, atol=1e-12
        )
        np.testing.assert_allclose(
            _np(got["reward"]), weighted(samples["r"], w), rtol=1e-5, atol=1e-6
        )


def test_update_rate_variable_changed_in_place():
    rate = torch.tensor(0.5)
    avg = ScalarEMAverager(rate)
    avg.update(torch.tensor(2.0))  # a = 1, w = 0.5
    rate.fill_(0.25)
    avg.update(torch.tensor(6.0))  # a = 0.75 + 1.5 = 2.25, w = 0.375 + 0.25
    np.testing.assert_allclose(_np(avg.get()), 2.25 / 0.625, rtol=1e-6)


def test_integer_input_is_averaged_as_float():
    avg = ScalarWindowAverager(2)
    avg.update(torch.tensor([1, 2]))
    np.testing.assert_allclose(_np(avg.get()), 1.5)


def test_average_outer_dims():
    spec = TensorSpec((2,))
    x = torch.arange(12.0).view(2, 3, 2)
    np.testing.assert_allclose(_np(average_outer_dims(x, spec)), outer_mean(x.numpy(), 1))
    assert average_outer_dims(torch.ones(2), spec).shape == (2,)
    assert average_outer_dims(torch.ones(3, 2, dtype=torch.int64), spec).dtype == torch.float32
    with pytest.raises(ValueError, match=r"tensor must have shape .*\[2\]; got \[3, 3\]"):
        average_outer_dims(torch.ones(3, 3), spec)
    with pytest.raises(TypeError, match="spec"):
        average_outer_dims(torch.ones(2), (2,))


# ---- state ------------------------------------------------------------------
@pytest.mark.parametrize(
    "make",
    [
        lambda: EMAverager(_nest_spec(), 0.2),
        lambda: AdaptiveAverager(_nest_spec(), speed=4.0),
        lambda: WindowAverager(_nest_spec(), 3),
    ],
    ids=["ema", "adaptive", "window"],
)
def test_state_dict_round_trip(device, make):
    def value(scale):
        return {
            "obs": (
                torch.full((2, 3), scale, device=device),
                torch.full((2, 2, 2), -scale, dtype=torch.float64, device=device),
            ),
            "reward": torch.tensor([scale, 2 * scale], device=device),
        }

    avg = make().to(device)
    for s in range(5):
        avg.update(value(float(s)))
    buf = io.BytesIO()
    torch.save(avg.state_dict(), buf)
    fresh = make().to(device)
    buf.seek(0)
    fresh.load_state_dict(torch.load(buf))
    for s in (7.0, 11.0):  # same state -> same results from here on
        a, b = avg.average(value(s)), fresh.average(value(s))
        for x, y in zip(
            (a["obs"][0], a["obs"][1], a["reward"]), (b["obs"][0], b["obs"][1], b["reward"])
        ):
            assert torch.equal(x, y)


# ---- bad input ----------------------------------------------------------------
def test_window_size_must_be_positive():
    with pytest.raises(ValueError, match="window_size must be >= 1; got 0"):
        WindowAverager(TensorSpec(()), 0)
    with pytest.raises(ValueError, match="window_size"):
        ScalarWindowAverager(-3)
    with pytest.raises(TypeError, match="window_size"):
        ScalarWindowAverager(2.5)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="update_rate must be in"):
        ScalarEMAverager(0.0)
    with pytest.raises(ValueError, match="update_rate"):
        ScalarEMAverager(torch.ones(2))
    with pytest.raises(ValueError, match="speed must be positive"):
        ScalarAdaptiveAverager(speed=0)
    with pytest.raises(
        TypeError, match=r"tensor_spec must be a nest of TensorSpec; got int at 'b'"
    ):
        EMAverager({"a": TensorSpec(()), "b": 3}, 0.1)
    with pytest.raises(TypeError, match="floating dtypes"):
        EMAverager(TensorSpec((), torch.int64), 0.1)


def test_bad_update_names_path_and_leaves_state_unchanged():
    avg = EMAverager(_nest_spec(), 0.5)
    good = {"obs": (torch.ones(3), torch.ones(2, 2, dtype=torch.float64)), "reward": torch.ones(())}
    avg.update(good)
    before = {k: v.clone() for k, v in avg.state_dict().items()}
    with pytest.raises(ValueError, match="obs"):
        avg.update({"obs": (torch.ones(3),), "reward": torch.ones(())})
    with pytest.raises(ValueError, match="'obs.1'.*\\[2, 2\\]; got \\[2, 3\\]"):
        avg.update({"obs": (torch.ones(3), torch.ones(2, 3)), "reward": torch.ones(())})
    with pytest.raises(TypeError, match="'reward' must be a torch.Tensor"):
        avg.update({"obs": good["obs"], "reward": 1.0})
    with pytest.raises(ValueError, match="empty outer dims"):
        avg.update({"obs": (torch.ones(0, 3), torch.ones(0, 2, 2)), "reward": torch.ones(0)})
    for k, v in avg.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_float16_window_mean_does_not_overflow(device):
    # 1000 samples of 100: their float16 sum (1e5) exceeds float16's 65504,
    # their mean does not
    avg = ScalarWindowAverager(1000, dtype=torch.float16).to(device)
    values = np.linspace(90.0, 110.0, 1000)
    for v in values:
        avg.update(torch.tensor(v, dtype=torch.float16, device=device))
    want = values.astype(np.float16).astype(np.float64).mean()
    got = avg.get()
    assert got.dtype == torch.float16
    np.testing.assert_allclose(_np(got), want, rtol=1e-3)


def test_infinite_speed_is_refused():
    # rate = speed / (speed + k) would be inf / inf = NaN at the first update
    with pytest.raises(ValueError, match="speed must be positive and finite; got inf"):
        ScalarAdaptiveAverager(speed=float("inf"))
    with pytest.raises(ValueError, match="speed must be positive and finite; got inf"):
        AdaptiveAverager(TensorSpec(()), speed=math.inf)


@pytest.mark.parametrize("kind", ["ema", "adaptive", "window"])
def test_leaf_without_elements(kind):
    spec = {"empty": TensorSpec((0,)), "x": TensorSpec((2,))}
    if kind == "ema":
        avg, w = EMAverager(spec, 0.5), ema_weights(2, 0.5)
    elif kind == "adaptive":
        avg, w = AdaptiveAverager(spec, speed=2.0), adaptive_weights(2, 2.0)
    else:
        avg, w = WindowAverager(spec, 3), window_weights(2, 3)
    avg.update({"empty": torch.zeros(4, 0), "x": torch.tensor([[1.0, 2.0], [3.0, 4.0]])})
    got = avg.average({"empty": torch.zeros(4, 0), "x": torch.tensor([5.0, 6.0])})
    assert got["empty"].shape == (0,)
    want = weighted([np.array([2.0, 3.0]), np.array([5.0, 6.0])], w)
    np.testing.assert_allclose(_np(got["x"]), want, rtol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["float16", "bfloat16"])
@pytest.mark.parametrize("kind", ["ema", "adaptive"])
def test_half_precision_average_keeps_moving(device, kind, dtype):
    # 3000 updates with 1.0, then 3000 with 1.3: an increment
    # rate * (x - average) below half an ulp of the average must not be lost
    n = 3000
    if kind == "ema":
        avg, w = ScalarEMAverager(1e-3, dtype=dtype), ema_weights(2 * n, 1e-3)
    else:
        avg, w = ScalarAdaptiveAverager(10.0, dtype=dtype), adaptive_weights(2 * n, 10.0)
    avg = avg.to(device)
    values = [torch.tensor(v, dtype=dtype, device=device) for v in (1.0, 1.3)]
    for step in range(2 * n):
        avg.update(values[step // n])
    samples = np.repeat([_np(v) for v in values], n)  # 1.3 as rounded to dtype
    got = avg.get()
    assert got.dtype == dtype
    # one rounding to dtype of the result: 2**-8 relative for bfloat16
    np.testing.assert_allclose(_np(got), np.dot(w, samples), rtol=2**-8)


def test_half_precision_buffers_round_trip():
    avg = WindowAverager({"h": TensorSpec((2,), torch.float16)}, 4)
    avg.update({"h": torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float16)})
    fresh = WindowAverager({"h": TensorSpec((2,), torch.float16)}, 4)
    fresh.load_state_dict(avg.state_dict())
    got = fresh.get()["h"]
    assert got.dtype == torch.float16 and got.tolist() == [2.0, 3.0]
