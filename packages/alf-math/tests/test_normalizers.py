"""Normalizers against NumPy (float64) weighted statistics.

The oracle computes the weighted mean ``m = sum_i w_i x_i`` and the weighted
variance directly as ``sum_i w_i (x_i - m)^2`` with explicit per-sample
weights (the code keeps ``m`` and ``m2`` and uses ``m2 - m^2``).
"""

import io
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import alf.summary
from alf.tensor_specs import TensorSpec
from alf.utils.normalizers import (
    AdaptiveNormalizer,
    EMNormalizer,
    Normalizer,
    ScalarAdaptiveNormalizer,
    ScalarEMNormalizer,
    ScalarWindowNormalizer,
    WindowNormalizer,
)

EPS = 1e-10


def weights(kind, n, param):
    if kind == "ema":
        raw = param * (1 - param) ** np.arange(n - 1, -1, -1, dtype=np.float64)
        return raw / raw.sum()
    if kind in ("adaptive", "equal"):
        speed = 1.0 if kind == "equal" else param
        rates = speed / (speed + np.arange(n, dtype=np.float64))
        return np.array([rates[t] * np.prod(1 - rates[t + 1 :]) for t in range(n)])
    w = np.zeros(n)
    k = min(n, param)
    w[n - k :] = 1.0 / k
    return w


def stats(samples, w):
    """Weighted mean and variance of per-update samples (outer dims already
    averaged: each sample is (mean of x, mean of x^2) over its outer dims)."""
    first = np.stack([s[0] for s in samples])
    second = np.stack([s[1] for s in samples])
    m = np.tensordot(w, first, axes=1)
    # var = sum_i w_i E_i[(x - m)^2] with E_i the mean over update i's outer dims
    var = np.tensordot(w, second - 2 * first * m + m * m, axes=1)
    return m, var


def sample(x, spec_ndim):
    x = np.asarray(x, dtype=np.float64)
    flat = x.reshape((-1,) + x.shape[x.ndim - spec_ndim :])
    return flat.mean(axis=0), (flat * flat).mean(axis=0)


def make(kind, spec, param, **kw):
    if kind == "ema":
        return EMNormalizer(spec, update_rate=param, **kw)
    if kind == "adaptive":
        return AdaptiveNormalizer(spec, speed=param, **kw)
    if kind == "window":
        return WindowNormalizer(spec, window_size=param, **kw)
    return Normalizer(spec, **kw)


def _np(t):
    return t.detach().cpu().double().numpy()


KINDS = [("ema", 0.2), ("adaptive", 3.0), ("window", 4), ("equal", None)]

rows = st.lists(
    st.lists(st.floats(-100, 100, allow_nan=False, width=32), min_size=6, max_size=6),
    min_size=1,
    max_size=10,
)


@pytest.mark.parametrize("kind,param", KINDS, ids=[k for k, _ in KINDS])
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
@given(
    data=st.lists(
        st.lists(st.floats(-1e3, 1e3, allow_nan=False, width=16), min_size=4, max_size=4),
        min_size=1,
        max_size=6,
    ),
    options=st.sampled_from(
        [(True, False, EPS), (False, False, EPS), (True, True, EPS), (True, False, 0.0)]
    ),
    clip=st.sampled_from([-1.0, 2.0]),
)
def test_scalar_statistics_read_as_floats_give_the_tensor_results(
    kind, param, dtype, data, options, clip
):
    """A one-element group on the CPU is normalized from its statistics read
    as Python floats; ``debug_summaries`` keeps the tensor path. The two agree
    to the rounding of the float64 statistics (torch may fuse ``m2 - m * m``
    into one rounding): one unit in the last place of the shift and scale in
    the computing dtype, and of the output (zero_mean, unit_std, epsilon 0,
    clipping, each dtype, a constant input giving variance 0)."""
    zero_mean, unit_std, eps = options
    fast, tensor_path = (
        make(
            kind,
            TensorSpec((), dtype),
            param,
            zero_mean=zero_mean,
            unit_std=unit_std,
            variance_epsilon=eps,
            debug_summaries=debug,
        )
        for debug in (False, True)
    )
    for row in data:
        x = torch.tensor(row, dtype=dtype).view(2, 2)
        a, b = fast.normalize(x, clip), tensor_path.normalize(x, clip)
        assert a.dtype == b.dtype == dtype
        assert torch.equal(a.isnan(), b.isnan())
        assert torch.equal(a.isinf(), b.isinf())
        finite = b.isfinite()
        a64, b64 = a[finite].double(), b[finite].double()
        mean, var = (float(v) for v in tensor_path._group_stats(0))
        scale = 1.0 if unit_std else 1.0 / max(math.sqrt(var + eps), 1e-300)
        computing = torch.float32 if dtype == torch.float16 else dtype
        tol = 4 * torch.finfo(computing).eps * (abs(mean) * scale + b64.abs())
        tol += 2 * torch.finfo(dtype).eps * b64.abs()
        assert ((a64 - b64).abs() <= tol).all(), (a, b, mean, var)


@pytest.mark.parametrize("kind,param", KINDS, ids=[k for k, _ in KINDS])
@given(data=rows, probe=st.floats(-100, 100, width=32))
def test_scalar_statistics_match_numpy(kind, param, data, probe):
    norm = make(kind, TensorSpec((), torch.float64), param, auto_update=False)
    samples = []
    for row in data:
        norm.update(torch.tensor(row, dtype=torch.float64).view(3, 2))  # outer [T, B]
        samples.append(sample(row, 0))
    m, var = stats(samples, weights(kind, len(samples), param))
    got = norm.normalize(torch.tensor([probe], dtype=torch.float64))
    want = (probe - m) / np.sqrt(var + EPS)
    # var = m2 - m^2 loses digits when var << m^2: compare in units of 1/std
    tol = 1e-7 * (1 + abs(probe) + abs(m)) / np.sqrt(var + EPS) + 1e-7 * abs(want)
    assert abs(_np(got)[0] - want) <= tol


@pytest.mark.parametrize("kind,param", KINDS, ids=[k for k, _ in KINDS])
def test_nested_auto_update_matches_numpy(device, kind, param):
    rng = np.random.default_rng(1)
    spec = {"x": TensorSpec((3,)), "y": (TensorSpec((2, 2), torch.float64), TensorSpec(()))}
    norm = make(kind, spec, param).to(device)
    samples = {"x": [], "y0": [], "y1": []}
    for step in range(6):
        x = rng.normal(3.0, 2.0, size=(5, 4, 3)).astype(np.float32)
        y0 = rng.normal(-1.0, 0.5, size=(7, 2, 2))  # other outer dims than x
        # float32 like x but with other outer dims: the per-leaf path
        y1 = (rng.normal(size=(3, 7)) * (step + 1)).astype(np.float32)
        out = norm.normalize(
            {
                "x": torch.tensor(x, device=device),
                "y": (torch.tensor(y0, device=device), torch.tensor(y1, device=device)),
            }
        )
        samples["x"].append(sample(x, 1))
        samples["y0"].append(sample(y0, 2))
        samples["y1"].append(sample(y1, 0))
        w = weights(kind, step + 1, param)
        for key, value, got, rtol in (
            ("x", x, out["x"], 2e-4),
            ("y0", y0, out["y"][0], 1e-9),
            ("y1", y1, out["y"][1], 2e-4),
        ):
            m, var = stats(samples[key], w)
            want = (value - m) / np.sqrt(var + EPS)
            assert got.shape == value.shape
            np.testing.assert_allclose(_np(got), want, rtol=rtol, atol=rtol)
    assert out["x"].dtype == torch.float32 and out["y"][0].dtype == torch.float64


def test_zero_mean_unit_std_and_clip(device):
    data = torch.tensor([[1.0, 2.0], [3.0, 6.0]], device=device)
    probe = torch.tensor([[0.0, 10.0]], device=device)
    m = np.array([2.0, 4.0])
    var = np.array([1.0, 4.0])
    m2 = np.array([(1.0 + 9.0) / 2, (4.0 + 36.0) / 2])
    cases = {
        (True, False): (np.array([0.0, 10.0]) - m) / np.sqrt(var + EPS),
        # without zero_mean: divided by the root of the second moment (ALF)
        (False, False): np.array([0.0, 10.0]) / np.sqrt(m2 + EPS),
        (True, True): np.array([0.0, 10.0]) - m,
        (False, True): np.array([0.0, 10.0]),
    }
    for (zero_mean, unit_std), want in cases.items():
        norm = Normalizer(
            TensorSpec((2,)), auto_update=False, zero_mean=zero_mean, unit_std=unit_std
        ).to(device)
        norm.update(data)
        got = norm.normalize(probe)
        np.testing.assert_allclose(_np(got)[0], want, rtol=1e-6)
        clipped = norm.normalize(probe, clip_value=1.5)
        np.testing.assert_allclose(_np(clipped)[0], np.clip(want, -1.5, 1.5), rtol=1e-6)
        assert got.data_ptr() != probe.data_ptr()


def test_constant_input_gives_zero_not_nan():
    norm = ScalarEMNormalizer(update_rate=0.1)
    for _ in range(3):
        out = norm.normalize(torch.full((4,), 5.0))
    assert torch.isfinite(out).all() and torch.all(out.abs() < 1e-2)


@pytest.mark.parametrize("kind,param", KINDS, ids=[k for k, _ in KINDS])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_constant_feature_normalizes_to_zero(device, kind, param, dtype):
    # A feature that never changes has variance 0: (x - m) / sqrt(0 + eps)
    # with x == m is exactly 0, whatever the magnitude of m (x * s - m * s
    # in float32 gave 0.78 for 333.3 and 16 for 9876.5). The other feature
    # varies and is normalized as usual.
    gen = torch.Generator().manual_seed(1)
    for value in (333.3, 9876.5):
        norm = make(kind, TensorSpec((2,), dtype), param, auto_update=False).to(device)
        for _ in range(5):
            x = torch.stack(
                [torch.full((8,), value, dtype=torch.float64), torch.randn(8, generator=gen, dtype=torch.float64)], -1
            )
            norm.update(x.to(dtype).to(device))
        out = norm.normalize(torch.tensor([[value, 0.5]], dtype=dtype, device=device))
        # float32/16 data: exact 0; float64 data: the float64 mean is within a
        # few ulps of x, scaled by 1 / sqrt(eps)
        assert abs(out[0, 0].item()) <= (1e-6 if dtype == torch.float64 else 0.0)
        assert torch.isfinite(out).all()


def test_second_moment_scaling_without_zero_mean(device):
    # zero_mean=False: x / sqrt(m2 + eps) (ALF), so values 15 +- 0.2 stay
    # about 1, not (15 / 0.2).
    norm = Normalizer(TensorSpec(()), auto_update=False, zero_mean=False).to(device)
    data = 15 + 0.2 * torch.tensor([-1.0, 1.0, -1.0, 1.0], device=device)
    norm.update(data)
    m2 = float(np.mean(_np(data).astype(np.float64) ** 2))
    out = norm.normalize(torch.tensor([15.0], device=device))
    np.testing.assert_allclose(_np(out), [15.0 / np.sqrt(m2 + EPS)], rtol=1e-6)
    assert abs(out.item() - 1.0) < 1e-3


def test_gradient_flows_to_input_only():
    norm = ScalarWindowNormalizer(window_size=10, auto_update=False)
    norm.update(torch.tensor([1.0, 3.0]))  # m = 2, var = 1
    x = torch.tensor([0.5, 4.0], requires_grad=True)
    (g,) = torch.autograd.grad(norm.normalize(x).sum(), x)
    np.testing.assert_allclose(_np(g), np.full(2, 1 / np.sqrt(1 + EPS)), rtol=1e-6)


def test_forward_updates_in_training_mode_only_and_auto_update_flag():
    a = ScalarAdaptiveNormalizer(speed=2.0)
    b = ScalarAdaptiveNormalizer(speed=2.0)
    x = torch.tensor([1.0, 2.0, 4.0])
    assert torch.equal(a(x), b.normalize(x))
    manual = ScalarAdaptiveNormalizer(speed=2.0, auto_update=False)
    manual.normalize(x)
    assert torch.equal(manual.state_dict()["_mean_averager._average0"], torch.zeros(1))
    # forward() follows the module's training mode, not auto_update (ALF):
    # in training mode it updates even with auto_update=False ...
    out = manual(x)
    mean = manual.state_dict()["_mean_averager._average0"]
    np.testing.assert_allclose(_np(mean), [np.mean([1.0, 2.0, 4.0])])
    var = np.var([1.0, 2.0, 4.0])
    np.testing.assert_allclose(_np(out), ([1.0, 2.0, 4.0] - _np(mean)) / np.sqrt(var + EPS), rtol=1e-6)
    # ... and in eval mode it does not update, even with auto_update=True.
    a.eval()
    before = {k: v.clone() for k, v in a.state_dict().items()}
    a(torch.tensor([100.0, 200.0]))
    for k, v in a.state_dict().items():
        assert torch.equal(v, before[k]), k


@pytest.mark.parametrize("kind,param", KINDS, ids=[k for k, _ in KINDS])
def test_state_dict_round_trip(device, kind, param):
    spec = (TensorSpec((3,)), TensorSpec((), torch.float64))
    gen = torch.Generator().manual_seed(0)

    def value():
        return (
            torch.randn(4, 3, generator=gen).to(device),
            torch.randn(4, generator=gen, dtype=torch.float64).to(device),
        )

    norm = make(kind, spec, param).to(device)
    for _ in range(5):
        norm.normalize(value())
    buf = io.BytesIO()
    torch.save(norm.state_dict(), buf)
    buf.seek(0)
    fresh = make(kind, spec, param).to(device)
    fresh.load_state_dict(torch.load(buf))
    for _ in range(3):
        v = value()
        for x, y in zip(norm.normalize(v, clip_value=3.0), fresh.normalize(v, clip_value=3.0)):
            assert torch.equal(x, y)


class _RecordingWriter:
    def __init__(self):
        self.scalars = {}

    def add_scalar(self, tag, value, global_step=None):
        self.scalars[tag] = value


def test_debug_summaries():
    writer = _RecordingWriter()
    norm = Normalizer(
        {"a": TensorSpec((20,)), "b": TensorSpec(())},
        debug_summaries=True,
        max_dims_to_summarize=3,
        name="norm",
    )
    alf.summary.set_default_writer(writer)
    try:
        norm.normalize({"a": torch.ones(2, 20), "b": torch.tensor([1.0, 3.0])})
    finally:
        alf.summary.set_default_writer(None)
    assert sorted(writer.scalars) == sorted(
        [
            "norm/a.mean.0",
            "norm/a.mean.1",
            "norm/a.mean.2",
            "norm/a.std.0",
            "norm/a.std.1",
            "norm/a.std.2",
            "norm/b.mean",
            "norm/b.std",
        ]
    )
    assert writer.scalars["norm/b.mean"] == pytest.approx(2.0)
    assert writer.scalars["norm/b.std"] == pytest.approx(1.0)


# ---- bad input ----------------------------------------------------------------
def test_window_size_must_be_positive():
    with pytest.raises(ValueError, match="window_size must be >= 1; got 0"):
        WindowNormalizer(TensorSpec(()), window_size=0)
    with pytest.raises(ValueError, match="window_size"):
        ScalarWindowNormalizer(window_size=0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="variance_epsilon"):
        ScalarEMNormalizer(variance_epsilon=-1.0)
    with pytest.raises(ValueError, match="update_rate"):
        ScalarEMNormalizer(update_rate=2.0)
    with pytest.raises(ValueError, match="speed"):
        ScalarAdaptiveNormalizer(speed=-1.0)
    with pytest.raises(TypeError, match="auto_update"):
        Normalizer(TensorSpec(()), auto_update="yes")
    with pytest.raises(ValueError, match="max_dims_to_summarize"):
        Normalizer(TensorSpec(()), max_dims_to_summarize=-1)
    with pytest.raises(TypeError, match="clip_value"):
        ScalarEMNormalizer().normalize(torch.ones(2), clip_value="big")


def test_mismatched_nest_names_path_and_keeps_state():
    norm = EMNormalizer({"a": TensorSpec((2,)), "b": {"c": TensorSpec(())}}, update_rate=0.5)
    norm.update({"a": torch.ones(2), "b": {"c": torch.ones(())}})
    before = {k: v.clone() for k, v in norm.state_dict().items()}
    with pytest.raises(ValueError, match="at 'b'"):
        norm.normalize({"a": torch.ones(2), "b": {"d": torch.ones(())}})
    with pytest.raises(ValueError, match=r"tensor at 'a' must have shape .*\[2\]; got \[2, 3\]"):
        norm.normalize({"a": torch.ones(2, 3), "b": {"c": torch.ones(())}})
    for k, v in norm.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_infinite_speed_is_refused():
    with pytest.raises(ValueError, match="speed must be positive and finite; got inf"):
        ScalarAdaptiveNormalizer(speed=float("inf"))


def test_leaf_without_elements():
    norm = Normalizer({"empty": TensorSpec((3, 0)), "x": TensorSpec(())})
    out = norm.normalize({"empty": torch.zeros(2, 3, 0), "x": torch.tensor([1.0, 3.0])})
    assert out["empty"].shape == (2, 3, 0)
    np.testing.assert_allclose(_np(out["x"]), np.array([-1.0, 1.0]) / np.sqrt(1 + EPS), rtol=1e-6)


# ---- precision ----------------------------------------------------------------
@pytest.mark.parametrize("kind,param", KINDS, ids=[k for k, _ in KINDS])
def test_float32_data_far_from_zero(kind, param):
    # float32 data whose mean is large against its spread (1e4 +- 1): m2 - m^2
    # of float32 moments keeps no digit of the variance (ulp(1e8) = 8)
    rng = np.random.default_rng(3)
    center = np.array([1e4, -3e5, 0.5])
    spread = np.array([1.0, 20.0, 1e-3])
    norm = make(kind, TensorSpec((3,)), param, auto_update=False)
    samples = []
    for _ in range(6):
        x = (center + spread * rng.normal(size=(8, 3))).astype(np.float32)
        norm.update(torch.tensor(x))
        samples.append(sample(x, 1))
    m, var = stats(samples, weights(kind, len(samples), param))
    probe = (center + spread * rng.normal(size=(5, 3))).astype(np.float32)
    got = norm.normalize(torch.tensor(probe))
    want = (probe - m) / np.sqrt(var + EPS)
    assert got.dtype == torch.float32
    # float32 rounding of the data itself: ulp(x) / spread
    atol = 2 * np.spacing(np.abs(center).astype(np.float32)) / spread + 1e-5
    assert np.all(np.abs(_np(got) - want) <= atol + 1e-4 * np.abs(want))


@pytest.mark.parametrize("kind,param", KINDS, ids=[k for k, _ in KINDS])
def test_float16_spec(kind, param):
    # x * x overflows float16 (max 65504) from |x| = 256 on
    rng = np.random.default_rng(4)
    norm = make(kind, TensorSpec((2,), torch.float16), param)
    samples = []
    for _ in range(5):
        x = (np.array([300.0, -2000.0]) + np.array([20.0, 300.0]) * rng.normal(size=(6, 2))).astype(
            np.float16
        )
        got = norm.normalize(torch.tensor(x))
        samples.append(sample(x, 1))
        m, var = stats(samples, weights(kind, len(samples), param))
        want = (x.astype(np.float64) - m) / np.sqrt(var + EPS)
        assert got.dtype == torch.float16
        np.testing.assert_allclose(_np(got), want, rtol=5e-3, atol=5e-3)


def test_float16_constant_input_gives_zero_not_nan():
    norm = Normalizer(TensorSpec((), torch.float16))
    out = norm.normalize(torch.full((3,), 5.0, dtype=torch.float16))
    assert out.dtype == torch.float16 and torch.equal(out, torch.zeros(3, dtype=torch.float16))
