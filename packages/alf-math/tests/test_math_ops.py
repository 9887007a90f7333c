"""Tests for alf.utils.math_ops.

The transforms and soft bounds are checked by one contract test over a
registry: each entry carries the formula written out here (NumPy for values,
plain torch for autograd gradients) independently of the library code.
"""

import dataclasses
import decimal
from typing import Callable, Optional

import numpy as np
import pytest
import scipy.special
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alf.utils import math_ops

fixture_ok = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
# the registry contract runs ~200 parametrized property tests: fewer examples each
contract = settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])


# ---------------------------------------------------------------------------
# Independent formulas


def np_softplus(u, s):
    return s * np.logaddexp(0.0, u / s)


def torch_softplus_naive(u, s):
    return s * torch.log1p(torch.exp(u / s))


@dataclasses.dataclass
class Entry:
    name: str
    fn: Callable  # library: tensor -> tensor
    ref: Callable  # NumPy float64 formula
    ref_torch: Callable  # torch formula (autograd oracle), valid for |x| <= grad_range
    inverse: Optional[Callable] = None  # library inverse (or a closed form in the test)
    low: Optional[float] = None
    high: Optional[float] = None
    center: Optional[float] = None  # f(2c - x) = 2f(c) - f(x)
    grad_range: float = 1e8
    inverse_range: float = 1e8  # |x| range where the round trip is exact
    strict: bool = True  # strictly increasing in float64 (not saturated)


def _transform_entries():
    entries = []
    for alpha in (1.0, 20.0):
        t = math_ops.Log1pTransform(alpha)
        entries.append(
            Entry(
                f"Log1pTransform(alpha={alpha})",
                t.transform,
                lambda x, a=alpha: a * np.sign(x) * np.log1p(np.abs(x)),
                lambda x, a=alpha: a * torch.sign(x) * torch.log(1 + x.abs()),
                inverse=t.inverse_transform,
                center=0.0,
            )
        )
    t = math_ops.Sqrt1pTransform()
    entries.append(
        Entry(
            "Sqrt1pTransform",
            t.transform,
            lambda x: np.sign(x) * (np.sqrt(np.abs(x) + 1) - 1),
            lambda x: torch.sign(x) * (torch.sqrt(x.abs() + 1) - 1),
            inverse=t.inverse_transform,
            center=0.0,
        )
    )
    for eps in (1e-3, 0.1):
        t = math_ops.SqrtLinearTransform(eps)
        entries.append(
            Entry(
                f"SqrtLinearTransform(eps={eps})",
                t.transform,
                lambda x, e=eps: np.sign(x) * (np.sqrt(np.abs(x) + 1) - 1) + e * x,
                lambda x, e=eps: torch.sign(x) * (torch.sqrt(x.abs() + 1) - 1) + e * x,
                inverse=t.inverse_transform,
                center=0.0,
            )
        )
    return entries


def _soft_entries():
    entries = []
    low, high = -1.5, 2.0
    for s in (0.3, 1.0, 4.0):
        entries.append(
            Entry(
                f"softlower(low={low}, s={s})",
                lambda x, s=s: math_ops.softlower(x, low, s),
                lambda x, s=s: np_softplus(x - low, s) + low,
                lambda x, s=s: torch_softplus_naive(x - low, s) + low,
                # closed-form inverse: x = low + s log(expm1((y - low) / s))
                inverse=lambda y, s=s: low + s * torch.log(torch.expm1((y - low) / s)),
                low=low,
                grad_range=50 * s,
                inverse_range=20 * s,
                strict=False,
            )
        )
        entries.append(
            Entry(
                f"softupper(high={high}, s={s})",
                lambda x, s=s: math_ops.softupper(x, high, s),
                lambda x, s=s: high - np_softplus(high - x, s),
                lambda x, s=s: high - torch_softplus_naive(high - x, s),
                inverse=lambda y, s=s: high - s * torch.log(torch.expm1((high - y) / s)),
                high=high,
                grad_range=50 * s,
                inverse_range=20 * s,
                strict=False,
            )
        )
        entries.append(
            Entry(
                f"softclip(low={low}, high={high}, s={s})",
                lambda x, s=s: math_ops.softclip(x, low, high, s),
                lambda x, s=s: x + np_softplus(low - x, s) - np_softplus(x - high, s),
                lambda x, s=s: (
                    x + torch_softplus_naive(low - x, s) - torch_softplus_naive(x - high, s)
                ),
                low=low,
                high=high,
                center=(low + high) / 2,
                grad_range=50 * s,
                strict=False,
            )
        )

        def tf_ref(x, s=s):
            lower = np_softplus(x - low, s) + low
            clipped = high - np_softplus(high - lower, s)
            floor = high - np_softplus(high - low, s)
            return (clipped - high) / (high - floor) * (high - low) + high

        def tf_ref_torch(x, s=s):
            lower = torch_softplus_naive(x - low, s) + low
            clipped = high - torch_softplus_naive(high - lower, s)
            floor = high - np_softplus(high - low, s)
            return (clipped - high) / (high - floor) * (high - low) + high

        entries.append(
            Entry(
                f"softclip_tf(low={low}, high={high}, s={s})",
                lambda x, s=s: math_ops.softclip_tf(x, low, high, s),
                tf_ref,
                tf_ref_torch,
                low=low,
                high=high,
                grad_range=50 * s,
                strict=False,
            )
        )
    for name, fn in (
        ("softsign", math_ops.softsign),
        ("softsign_", lambda x: math_ops.softsign_(x.clone())),
    ):
        entries.append(
            Entry(
                name,
                fn,
                lambda x: x / (1 + np.abs(x)),
                lambda x: x / (1 + x.abs()),
                inverse=lambda y: y / (1 - y.abs()),
                low=-1.0,
                high=1.0,
                center=0.0,
                inverse_range=1e6,
                strict=False,
            )
        )
    return entries


REGISTRY = _transform_entries() + _soft_entries()
IDS = [e.name for e in REGISTRY]

# magnitudes 1e-8 .. 1e8 with both signs
magnitudes = st.builds(
    lambda sign, e: sign * 10.0**e,
    st.sampled_from([-1.0, 1.0]),
    st.floats(min_value=-8, max_value=8),
)
value_lists = st.lists(magnitudes, min_size=1, max_size=32)


def _rel_close(actual, expected, rtol, atol=0.0):
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@contract
@given(values=value_lists)
def test_contract_values_bounds_symmetry(entry, dtype, device, values):
    x64 = np.array(values, dtype=np.float64)
    x = torch.tensor(x64, dtype=dtype, device=device)
    y = entry.fn(x)
    assert y.dtype == dtype and y.shape == x.shape
    assert torch.isfinite(y).all(), f"{entry.name} gives NaN/Inf at {values}"
    expected = entry.ref(x.cpu().double().numpy())
    # the reference formulas themselves lose ~eps * |x| to cancellation
    ref_error = 4 * np.finfo(np.float64).eps * np.abs(x64).max()
    if dtype == torch.float64:
        _rel_close(y.cpu(), expected, rtol=1e-9, atol=1e-9 + ref_error)
    else:
        _rel_close(y.cpu(), expected, rtol=2e-6, atol=2e-6 + ref_error)
    y_np = y.cpu().double().numpy()
    if entry.low is not None:
        assert (y_np >= entry.low).all()
    if entry.high is not None:
        assert (y_np <= entry.high).all()
    if entry.center is not None:
        c = entry.center
        mirrored = entry.fn(2 * c - x).cpu().double().numpy()
        f_c = entry.fn(torch.tensor([c], dtype=dtype, device=device)).cpu().double().numpy()
        tol = 1e-9 if dtype == torch.float64 else 1e-5
        _rel_close(mirrored, 2 * f_c - y_np, rtol=tol, atol=tol)


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@contract
@given(values=value_lists)
def test_contract_monotone(entry, dtype, device, values):
    x = torch.tensor(sorted(set(values)), dtype=dtype, device=device).unique()
    y = entry.fn(x)
    # non-decreasing up to the rounding of the O(1 + |y|) intermediate terms
    scale = 1 + torch.maximum(y[1:].abs(), y[:-1].abs())
    if entry.low is not None:
        scale = scale + abs(entry.low)
    if entry.high is not None:
        scale = scale + abs(entry.high)
    tol = 8 * torch.finfo(dtype).eps * scale
    assert (torch.diff(y) >= -tol).all(), f"{entry.name} decreases on {x.tolist()}"


@pytest.mark.parametrize("entry", [e for e in REGISTRY if e.strict], ids=lambda e: e.name)
def test_contract_strictly_increasing_on_grid(entry, device):
    grid = torch.logspace(-8, 8, 2001, dtype=torch.float64, device=device)
    x = torch.cat([-grid.flip(0), torch.zeros(1, dtype=grid.dtype, device=device), grid])
    assert (torch.diff(entry.fn(x)) > 0).all()


@pytest.mark.parametrize(
    "entry", [e for e in REGISTRY if e.inverse is not None], ids=lambda e: e.name
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@contract
@given(values=value_lists)
def test_contract_round_trip(entry, dtype, device, values):
    x = torch.tensor(values, dtype=dtype, device=device)
    lo = entry.low if entry.low is not None else -np.inf
    hi = entry.high if entry.high is not None else np.inf
    # where the forward map saturates (e.g. softlower far below its bound)
    # the input cannot be recovered in any precision: keep |x| in range
    x = x.clamp(-entry.inverse_range, entry.inverse_range)
    if np.isfinite(lo) and not np.isfinite(hi):
        x = x.clamp(min=lo - entry.inverse_range)
    if np.isfinite(hi) and not np.isfinite(lo):
        x = x.clamp(max=hi + entry.inverse_range)
    y = entry.fn(x)
    if entry.name.startswith("soft") and dtype == torch.float32:
        # Near a bound the inverse of a soft bound is ill-conditioned (dx/dy ~ s / (y - low)):
        # the float32 rounding of y alone moves x far, so x itself cannot come back, and
        # where y rounds onto the bound no finite x maps to it. Checked instead: (1) y
        # lies on a bound only where the exact (NumPy, float64) value is within one
        # float32 ulp of it; (2) elsewhere the inverse maps y to a point whose exact
        # image is y up to a few float32 ulps of the O(|y| + |bounds|) terms involved.
        eps32 = float(np.finfo(np.float32).eps)
        bounds = abs(entry.low or 0.0) + abs(entry.high or 0.0)
        y64 = y.cpu().double().numpy()
        on_bound = np.zeros(y64.shape, dtype=bool)
        for b in (entry.low, entry.high):
            if b is not None:
                hit = y64 == np.float32(b)
                exact = entry.ref(x.cpu().double().numpy())
                assert (np.abs(exact[hit] - b) <= eps32 * (1 + abs(b))).all()
                on_bound |= hit
        inside = torch.as_tensor(~on_bound, device=y.device)
        back = entry.inverse(y[inside])
        assert torch.isfinite(back).all()
        image = entry.ref(back.cpu().double().numpy())
        tol = 8 * eps32 * (1 + np.abs(y64[~on_bound]) + bounds)
        np.testing.assert_array_less(np.abs(image - y64[~on_bound]), tol)
        return
    back = entry.inverse(y)
    assert torch.isfinite(back).all()
    if entry.name.startswith("soft"):
        _rel_close(back.cpu(), x.cpu(), rtol=1e-6, atol=1e-6)
    else:
        rtol = 1e-12 if dtype == torch.float64 else 5e-6
        _rel_close(back.cpu(), x.cpu(), rtol=rtol, atol=0)


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
@contract
@given(values=value_lists)
def test_contract_gradient_matches_autograd_of_formula(entry, device, values):
    x = torch.tensor(values, dtype=torch.float64, device=device)
    x = x.clamp(-entry.grad_range, entry.grad_range)
    x_lib = x.clone().requires_grad_(True)
    (grad_lib,) = torch.autograd.grad(entry.fn(x_lib * 1).sum(), x_lib)
    x_ref = x.clone().requires_grad_(True)
    (grad_ref,) = torch.autograd.grad(entry.ref_torch(x_ref).sum(), x_ref)
    assert torch.isfinite(grad_lib).all()
    _rel_close(grad_lib.cpu(), grad_ref.cpu(), rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_contract_extremes_finite(entry, dtype, device):
    big = torch.finfo(dtype).max / 1e4
    x = torch.tensor([-big, -1e8, -1e-8, 0.0, 1e-8, 1e8, big], dtype=dtype, device=device)
    x.requires_grad_(True)
    y = entry.fn(x * 1)
    assert torch.isfinite(y).all()
    (grad,) = torch.autograd.grad(y.sum(), x)
    assert not torch.isnan(grad).any()


# ---------------------------------------------------------------------------
# Transform / soft-bound specifics


def test_sqrt_linear_with_zero_eps_is_sqrt1p(device):
    x = torch.logspace(-8, 8, 50, dtype=torch.float64, device=device)
    x = torch.cat([-x, x])
    a, b = math_ops.SqrtLinearTransform(0.0), math_ops.Sqrt1pTransform()
    torch.testing.assert_close(a.transform(x), b.transform(x), rtol=0, atol=0)
    torch.testing.assert_close(a.inverse_transform(x), b.inverse_transform(x), rtol=1e-15, atol=0)


def test_sqrt1p_small_x_is_precise(device):
    # x / (sqrt(|x|+1) + 1) keeps full precision where sqrt(|x|+1) - 1 cancels
    x = torch.tensor([1e-7, -3e-8], dtype=torch.float32, device=device)
    y = math_ops.Sqrt1pTransform().transform(x)
    expected = x.double().cpu().numpy() / (np.sqrt(np.abs(x.double().cpu().numpy()) + 1) + 1)
    _rel_close(y.cpu(), expected, rtol=1e-6)


def test_invertible_transform_is_abstract():
    with pytest.raises(TypeError):
        math_ops.InvertibleTransform()


@pytest.mark.parametrize(
    "make, arg",
    [
        (lambda: math_ops.Log1pTransform(0), "alpha"),
        (lambda: math_ops.Log1pTransform(-2.0), "alpha"),
        (lambda: math_ops.SqrtLinearTransform(-1e-3), "eps"),
    ],
)
def test_transform_bad_parameters(make, arg):
    with pytest.raises(ValueError, match=arg):
        make()


@pytest.mark.parametrize(
    "make, arg",
    [
        (lambda: math_ops.Log1pTransform(float("inf")), "alpha"),
        (lambda: math_ops.SqrtLinearTransform(float("inf")), "eps"),
        (lambda: math_ops.softlower(torch.zeros(2), 0.0, float("inf")), "hinge_softness"),
        (lambda: math_ops.softupper(torch.zeros(2), 0.0, float("inf")), "hinge_softness"),
        (lambda: math_ops.softclip(torch.zeros(2), 0.0, 1.0, float("inf")), "hinge_softness"),
        (lambda: math_ops.softclip_tf(torch.zeros(2), 0.0, 1.0, float("inf")), "hinge_softness"),
    ],
)
def test_infinite_parameters_are_rejected(make, arg):
    # alpha = inf or eps = inf give inf * 0 = NaN at x = 0; softness inf gives inf
    with pytest.raises(ValueError, match=f"{arg} must be .*finite.*; got inf"):
        make()


@pytest.mark.parametrize("fn", [math_ops.softclip, math_ops.softclip_tf])
def test_softclip_bad_bounds_and_softness(fn):
    x = torch.zeros(3)
    with pytest.raises(ValueError, match="low"):
        fn(x, 1.0, 1.0)
    with pytest.raises(ValueError, match="low"):
        fn(x, torch.tensor([0.0, 2.0, 0.0]), torch.tensor([1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="hinge_softness"):
        fn(x, 0.0, 1.0, hinge_softness=0.0)


def test_softlower_softupper_bad_softness():
    with pytest.raises(ValueError, match="hinge_softness"):
        math_ops.softlower(torch.zeros(2), 0.0, -1.0)
    with pytest.raises(ValueError, match="hinge_softness"):
        math_ops.softupper(torch.zeros(2), 0.0, 0)


def test_soft_bounds_with_tensor_bounds(device):
    x = torch.linspace(-50, 50, 101, device=device).unsqueeze(1).expand(101, 2)
    low = torch.tensor([-1.0, 0.0], device=device)
    high = torch.tensor([1.0, 5.0], device=device)
    y = math_ops.softclip(x, low, high)
    assert (y >= low).all() and (y <= high).all()
    torch.testing.assert_close(y[0], low, atol=1e-6, rtol=0)
    torch.testing.assert_close(y[-1], high, atol=1e-6, rtol=0)
    y_tf = math_ops.softclip_tf(x, low, high)
    torch.testing.assert_close(y_tf[0], low, atol=1e-5, rtol=0)
    torch.testing.assert_close(y_tf[-1], high, atol=1e-5, rtol=0)


def test_softupper_mirrors_softlower(device):
    x = torch.linspace(-20, 20, 81, dtype=torch.float64, device=device)
    torch.testing.assert_close(math_ops.softupper(x, 1.5, 2.0), -math_ops.softlower(-x, -1.5, 2.0))


def test_softsign_inplace_modifies_input_and_backward(device):
    leaf = torch.linspace(-5, 5, 11, dtype=torch.float64, device=device, requires_grad=True)
    h = leaf * 2
    out = math_ops.softsign_(h)
    assert out.data_ptr() == h.data_ptr()
    out.sum().backward()
    expected = 2 / (1 + (2 * leaf.detach()).abs()) ** 2
    torch.testing.assert_close(leaf.grad, expected)


def test_softsign_inplace_rejects_leaf_requiring_grad():
    leaf = torch.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError):
        math_ops.softsign_(leaf)


def test_softsign_matches_torch(device):
    x = torch.randn(100, device=device) * 10
    torch.testing.assert_close(math_ops.softsign(x), torch.nn.functional.softsign(x))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_softsign_function_values_and_gradient(device, dtype):
    # Softsign.apply (= softsign): x / (1 + |x|) and its hand-written backward
    # 1 / (1 + |x|)^2, against NumPy over 16 decades, tails included.
    mags = np.logspace(-8, 8, 33)
    x64 = np.concatenate([-mags[::-1], [0.0], mags])
    x = torch.tensor(x64, dtype=dtype, device=device, requires_grad=True)
    y = math_ops.Softsign.apply(x)
    assert y.dtype == dtype and y.shape == x.shape
    rtol = 1e-15 if dtype == torch.float64 else 1e-6
    np.testing.assert_allclose(
        y.detach().cpu().double().numpy(), x64 / (1 + np.abs(x64)), rtol=rtol
    )
    upstream = torch.linspace(-2, 2, x.numel(), dtype=dtype, device=device)
    (grad,) = torch.autograd.grad(y, x, upstream)
    expected = upstream.cpu().double().numpy() / (1 + np.abs(x64)) ** 2
    # exact even where |y| rounds to 1 (|x| = 1e8 in float32): no 1 - |y| cancellation
    np.testing.assert_allclose(grad.cpu().double().numpy(), expected, rtol=4 * rtol, atol=0)
    assert grad[-1].item() > 0 and grad[0].item() < 0


def test_softsign_gradients_pass_gradcheck():
    x = torch.tensor([-3.0, -0.5, 0.25, 2.0, 40.0], dtype=torch.float64, requires_grad=True)
    # finite differences against both backward formulas (Softsign_ needs a non-leaf input)
    assert torch.autograd.gradcheck(math_ops.Softsign.apply, (x,))
    assert torch.autograd.gradcheck(lambda v: math_ops.Softsign_.apply(v * 1.0), (x,))


def test_softsign_inplace_function_values_and_precision_trade_off(device):
    # Softsign_.apply (= softsign_) overwrites its input and keeps only the output:
    # its gradient (1 - |y|)^2 is exact for moderate x and loses precision as |y| -> 1.
    x64 = np.array([-7.0, -1.0, -0.125, 0.0, 0.5, 3.0, 1e3], dtype=np.float64)
    leaf = torch.tensor(x64, device=device, requires_grad=True)
    h = leaf * 1.0
    out = math_ops.Softsign_.apply(h)
    assert out.data_ptr() == h.data_ptr() and h._version > 0
    np.testing.assert_allclose(out.detach().cpu().numpy(), x64 / (1 + np.abs(x64)), rtol=1e-15)
    (grad,) = torch.autograd.grad(out.sum(), leaf)
    np.testing.assert_allclose(grad.cpu().numpy(), 1 / (1 + np.abs(x64)) ** 2, rtol=1e-10)
    # float32 at |x| = 1e8: y rounds to 1, so (1 - |y|)^2 is 0; Softsign keeps 1e-16.
    big = torch.tensor([1e8], device=device, requires_grad=True)
    (g_inplace,) = torch.autograd.grad(math_ops.Softsign_.apply(big * 1.0).sum(), big)
    (g_saved,) = torch.autograd.grad(math_ops.Softsign.apply(big).sum(), big)
    assert g_inplace.item() == 0.0
    np.testing.assert_allclose(g_saved.item(), 1 / (1 + 1e8) ** 2, rtol=1e-6)


# ---------------------------------------------------------------------------
# n-ary ops and reductions


@pytest.mark.parametrize(
    "fn, np_fn",
    [
        (math_ops.add_n, np.add),
        (math_ops.mul_n, np.multiply),
        (math_ops.max_n, np.maximum),
        (math_ops.min_n, np.minimum),
    ],
)
def test_n_ary_ops_broadcast(fn, np_fn, device):
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=(3, 1)), rng.normal(size=(4,)), rng.normal(size=(1, 4))]
    tensors = (torch.tensor(a, device=device) for a in arrays)  # a generator works too
    expected = np_fn(np_fn(arrays[0], arrays[1]), arrays[2])
    np.testing.assert_allclose(fn(tensors).cpu().numpy(), expected, rtol=1e-12)
    with pytest.raises(ValueError, match="inputs"):
        fn([])


def test_add_ignore_empty(device):
    a = torch.ones(2, device=device)
    assert math_ops.add_ignore_empty(None, a) is a
    assert math_ops.add_ignore_empty(a, ()) is a
    # ALF checks y first: when both are empty the result is x
    assert math_ops.add_ignore_empty(None, ()) is None
    assert math_ops.add_ignore_empty((), None) == ()
    assert math_ops.add_ignore_empty(None, None) is None
    torch.testing.assert_close(math_ops.add_ignore_empty(a, a), 2 * a)


@fixture_ok
@given(rows=st.lists(st.lists(st.integers(-2, 2), min_size=5, max_size=5), min_size=1, max_size=8))
def test_argmin_returns_first_minimum(device, rows):
    x = torch.tensor(rows, dtype=torch.float32, device=device)
    expected = np.argmin(np.array(rows), axis=1)  # NumPy: first occurrence
    got = math_ops.argmin(x)
    assert got.dtype == torch.int64
    np.testing.assert_array_equal(got.cpu().numpy(), expected)


def test_argmin_bad_rank():
    with pytest.raises(ValueError, match="rank-2"):
        math_ops.argmin(torch.zeros(3))


def test_binary_neg_entropy(device):
    p = torch.tensor([0.0, 1e-6, 0.3, 0.5, 0.9, 1.0], dtype=torch.float64, device=device)
    expected = -scipy.special.entr(p.cpu().numpy()) - scipy.special.entr(1 - p.cpu().numpy())
    np.testing.assert_allclose(math_ops.binary_neg_entropy(p).cpu().numpy(), expected, atol=1e-15)


def test_clipped_exp(device):
    x = torch.tensor([-100.0, -20.0, 0.0, 1.5, 2.0, 50.0], dtype=torch.float64, device=device)
    expected = np.exp(np.clip(x.cpu().numpy(), -20, 2))
    np.testing.assert_allclose(math_ops.clipped_exp(x).cpu().numpy(), expected)
    expected = np.exp(np.clip(x.cpu().numpy(), -1, 1))
    np.testing.assert_allclose(math_ops.clipped_exp(x, -1, 1).cpu().numpy(), expected)
    with pytest.raises(ValueError, match="clip_value_min"):
        math_ops.clipped_exp(x, 3, 2)


def test_normalize_min_max(device):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 3, 2))
    x[2] = 7.0  # a constant sample
    flat = x.reshape(4, -1)
    lo, hi = flat.min(1, keepdims=True), flat.max(1, keepdims=True)
    expected = np.where(hi > lo, (flat - lo) / np.where(hi > lo, hi - lo, 1), 0).reshape(x.shape)
    got = math_ops.normalize_min_max(torch.tensor(x, device=device)).cpu().numpy()
    np.testing.assert_allclose(got, expected, atol=1e-15)
    with pytest.raises(ValueError, match="batch"):
        math_ops.normalize_min_max(torch.tensor(1.0))


def test_shuffle_applies_one_permutation(device):
    a = torch.arange(10, device=device)
    nest = {"a": a, "b": (a * 10).unsqueeze(1).repeat(1, 3), "c": [a.double()]}
    out = math_ops.shuffle(nest)
    assert sorted(out["a"].tolist()) == list(range(10))
    torch.testing.assert_close(out["b"][:, 0], out["a"] * 10)
    torch.testing.assert_close(out["c"][0], out["a"].double())
    with pytest.raises(ValueError):
        math_ops.shuffle({"a": a, "b": torch.zeros(3, device=device)})


def test_sum_to_leftmost(device):
    x = torch.arange(24.0, device=device).reshape(2, 3, 4)
    np.testing.assert_allclose(
        math_ops.sum_to_leftmost(x, 1).cpu().numpy(), x.cpu().numpy().sum(axis=(1, 2))
    )
    np.testing.assert_allclose(
        math_ops.sum_to_leftmost(x, 2).cpu().numpy(), x.cpu().numpy().sum(axis=2)
    )
    assert math_ops.sum_to_leftmost(x, 3) is x
    assert math_ops.sum_to_leftmost(x, 5) is x
    with pytest.raises(ValueError, match="dim"):
        math_ops.sum_to_leftmost(x, -1)


@pytest.mark.parametrize("dim", [(), None, 0, 1, (0, 1)])
def test_weighted_reduce_mean(dim, device):
    rng = np.random.default_rng(2)
    x, w = rng.normal(size=(5, 4)), rng.uniform(size=(5, 4))
    axis = None if dim in ((), None) else dim
    expected = np.average(x, axis=axis, weights=w)
    got = math_ops.weighted_reduce_mean(
        torch.tensor(x, device=device), torch.tensor(w, device=device), dim
    )
    np.testing.assert_allclose(got.cpu().numpy(), expected, rtol=1e-12)


def test_weighted_reduce_mean_zero_weight_and_broadcast(device):
    x = torch.ones(3, 2, device=device)
    got = math_ops.weighted_reduce_mean(x, torch.zeros(3, 2, device=device), dim=0)
    torch.testing.assert_close(got, torch.zeros(2, device=device))
    got = math_ops.weighted_reduce_mean(x * 3, torch.tensor([1.0, 0.0], device=device))
    torch.testing.assert_close(got, torch.tensor(3.0, device=device))
    with pytest.raises(ValueError, match="weight"):
        math_ops.weighted_reduce_mean(x, torch.ones(4, device=device))


def test_small_activations(device):
    x = torch.linspace(-5, 5, 21, dtype=torch.float64, device=device)
    xn = x.cpu().numpy()
    np.testing.assert_allclose(math_ops.swish(x).cpu().numpy(), xn / (1 + np.exp(-xn)))
    np.testing.assert_allclose(math_ops.square(x).cpu().numpy(), xn**2)
    assert math_ops.identity(x) is x


@pytest.mark.parametrize(
    "dtype, big", [(torch.float16, 40000.0), (torch.float32, 3e38), (torch.float64, 1.5e308)]
)
def test_normalize_min_max_sample_wider_than_dtype_range(dtype, big, device):
    # hi - lo overflows the dtype, but the normalized values are well defined
    x = np.array([[-big, 0.0, big / 2, big], [1.0, 2.0, 3.0, 5.0]])
    lo, hi = x.min(1, keepdims=True), x.max(1, keepdims=True)
    expected = x / 2 / (hi / 2 - lo / 2) - lo / 2 / (hi / 2 - lo / 2)  # float64, no overflow
    got = math_ops.normalize_min_max(torch.tensor(x, dtype=dtype, device=device))
    assert got.dtype == dtype
    np.testing.assert_allclose(got.cpu().double().numpy(), expected, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("shape", [(0,), (0, 3), (0, 2, 2), (3, 0), (2, 0, 4)])
def test_normalize_min_max_empty(shape, device):
    # an empty batch, or samples without elements: nothing to normalize
    got = math_ops.normalize_min_max(torch.zeros(shape, device=device))
    assert got.shape == shape


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_weighted_reduce_mean_half_precision(dtype, device):
    # the sums exceed float16's range (65504) although the mean does not
    rng = np.random.default_rng(3)
    x = rng.uniform(1.0, 2.0, size=(100000, 2))
    w = rng.uniform(0.5, 1.0, size=(100000, 2))
    xt = torch.tensor(x, device=device).to(dtype)
    wt = torch.tensor(w, device=device).to(dtype)
    expected = np.average(xt.double().cpu().numpy(), axis=0, weights=wt.double().cpu().numpy())
    got = math_ops.weighted_reduce_mean(xt, wt, dim=0)
    assert got.dtype == dtype
    np.testing.assert_allclose(got.double().cpu().numpy(), expected, rtol=1e-2)
    # zero total weight: 0, as in float32 (1e-10 is not representable in float16)
    zero = math_ops.weighted_reduce_mean(xt[:3], torch.zeros_like(wt[:3]))
    assert zero.item() == 0


@pytest.mark.parametrize(
    "dtype, eps, ys",
    [
        (torch.float16, 1.0, [20000.0, -60000.0, 3.0]),
        (torch.float16, 2.0, [30000.0, -1.0]),
        (torch.float32, 1e-3, [3e35, -1e30]),
        (torch.float32, 1.0, [3e38, -2e38, 1e20]),
        (torch.float64, 10.0, [1e308, -1.7e308]),
    ],
)
def test_sqrt_linear_inverse_large_y(dtype, eps, ys, device):
    # 2|y| and 4 eps |y| overflow although x = f^-1(y) is in range
    y = torch.tensor(ys, dtype=dtype, device=device)

    def reference(v):  # 50-digit decimal: |y| = eps t^2 + b t, x = sign(y) t (t + 2)
        with decimal.localcontext() as ctx:
            ctx.prec = 50
            a, e = abs(decimal.Decimal(v)), decimal.Decimal(eps)
            b = 1 + 2 * e
            t = (-b + (b * b + 4 * e * a).sqrt()) / (2 * e)
            return float(t * (t + 2)) * np.sign(v)

    expected = [reference(v) for v in y.cpu().double().tolist()]
    transform = math_ops.SqrtLinearTransform(eps)
    got = transform.inverse_transform(y)
    assert got.dtype == dtype
    rtol = 4e-3 if dtype == torch.float16 else 1e-5
    np.testing.assert_allclose(got.cpu().double().numpy(), expected, rtol=rtol)
    y0 = torch.zeros(2, dtype=dtype, device=device, requires_grad=True)
    (grad,) = torch.autograd.grad(transform.inverse_transform(y0).sum(), y0)
    assert torch.isfinite(grad).all()


@pytest.mark.parametrize("fn", [math_ops.softlower, math_ops.softupper])
def test_hinge_softness_accepts_numpy_scalars_and_one_element_tensors(fn):
    x = torch.linspace(-3, 3, 7, dtype=torch.float64)
    expected = fn(x, 0.0, 0.5)
    for s in (np.float32(0.5), np.float64(0.5), torch.tensor(0.5), torch.tensor([0.5])):
        torch.testing.assert_close(fn(x, 0.0, s), expected)


@pytest.mark.parametrize(
    "value, error",
    [
        (True, TypeError),
        ("0.5", TypeError),
        (0.5j, TypeError),
        (torch.tensor([0.5, 1.0]), TypeError),
        (torch.tensor(True), TypeError),
        (float("nan"), ValueError),
        (np.float32("-inf"), ValueError),
        (torch.tensor(0.0), ValueError),
    ],
)
def test_hinge_softness_refusals(value, error):
    with pytest.raises(error, match="hinge_softness must be a positive finite number"):
        math_ops.softclip(torch.zeros(2), 0.0, 1.0, value)
