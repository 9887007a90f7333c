"""Contract tests over a registry of every transform of alf.utils.dist_utils.

For each transform: the uncached inverse undoes the forward map, the
log|det J| equals log|f'(x)| computed by autograd, outputs lie in the
codomain, the cache returns the exact input, builders make fresh equal
transforms, and (where the reference promises it) nothing is NaN/Inf for
|x| up to 1e4.
"""

import math
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import numpy as np
import pytest
import torch
import torch.distributions as td
from hypothesis import given
from hypothesis import strategies as st

from alf.utils import dist_utils as du
from alf.utils import math_ops
from alf.utils._dist_transforms import transform_builder


@dataclass
class Case:
    name: str
    make: Callable[[], td.Transform]
    # range where the *uncached* inverse is well conditioned in float64
    roundtrip: Tuple[float, float]
    # range where autograd's float64 derivative is accurate (None: no ladj)
    jacobian: Optional[Tuple[float, float]]
    # whether |x| up to 1e4 must give finite outputs and log-dets (float32)
    extreme: bool
    # whether float32 outputs at |x| = 1e4 stay in the codomain (softplus
    # underflows to 0, outside the open interval (0, inf))
    codomain_at_extremes: bool = True

    def __repr__(self):
        return self.name


CASES = [
    Case("Abs", du.AbsTransform, (1e-3, 50.0), None, False),
    Case("Affine", lambda: du.AffineTransform(0.5, -2.0), (-1e3, 1e3), (-1e3, 1e3), True),
    Case("Exp", du.ExpTransform, (-30.0, 30.0), (-30.0, 30.0), False),
    Case(
        "Power",
        lambda: du.PowerTransform(torch.tensor(3.0, dtype=torch.float64)),
        (0.01, 100.0),
        (0.01, 100.0),
        False,
    ),
    Case("Sigmoid", du.SigmoidTransform, (-15.0, 15.0), (-15.0, 15.0), True),
    Case("Softplus", du.Softplus, (-20.0, 50.0), (-30.0, 30.0), True, False),
    Case("Softplus(0.3)", lambda: du.Softplus(0.3), (-6.0, 50.0), (-10.0, 10.0), True, False),
    Case("Softsign", du.Softsign, (-1e3, 1e3), (-1e3, 1e3), True),
    Case("StableTanh", du.StableTanh, (-5.0, 5.0), (-8.0, 8.0), True),
    Case("Softclip", lambda: du.Softclip(-1.0, 2.0, 0.5), (-6.0, 8.0), (-8.0, 10.0), True),
    Case(
        "Softclip(tensor)",
        lambda: du.Softclip(torch.tensor(-3.0), torch.tensor(0.0)),
        (-15.0, 12.0),
        (-15.0, 15.0),
        True,
    ),
    Case("SoftclipTF", lambda: du.SoftclipTF(-1.0, 2.0, 0.7), (-8.0, 10.0), (-10.0, 12.0), True),
    Case("Softlower", lambda: du.Softlower(-1.0, 0.5), (-8.0, 30.0), (-10.0, 30.0), True),
    Case("Softupper", lambda: du.Softupper(2.0, 1.0), (-30.0, 15.0), (-30.0, 15.0), True),
]

fractions = st.lists(st.floats(0.0, 1.0), min_size=1, max_size=16)


def _in_range(u, bounds, dtype=torch.float64):
    lo, hi = bounds
    return torch.tensor(u, dtype=dtype) * (hi - lo) + lo


def _uncached(t: td.Transform) -> td.Transform:
    return t.with_cache(0)


@pytest.mark.parametrize("case", CASES, ids=repr)
@given(u=fractions)
def test_inverse_undoes_forward(case, u):
    t = _uncached(case.make())
    x = _in_range(u, case.roundtrip)
    y = t(x)
    np.testing.assert_allclose(t.inv(y).numpy(), x.numpy(), rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("case", [c for c in CASES if c.jacobian], ids=repr)
@given(u=fractions)
def test_log_abs_det_jacobian_matches_autograd(case, u):
    t = _uncached(case.make())
    x = _in_range(u, case.jacobian).requires_grad_(True)
    y = t(x)
    (dydx,) = torch.autograd.grad(y.sum(), x)
    expected = torch.log(dydx.abs())
    ladj = t.log_abs_det_jacobian(x, y).detach()
    np.testing.assert_allclose(ladj.numpy(), expected.numpy(), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("case", CASES, ids=repr)
@given(u=fractions)
def test_outputs_in_codomain(case, u):
    t = _uncached(case.make())
    x = _in_range(u, case.roundtrip)
    assert bool(t.codomain.check(t(x)).all())


@pytest.mark.parametrize("case", [c for c in CASES if c.extreme], ids=repr)
def test_finite_at_extremes(case, device):
    t = case.make()
    x = torch.tensor([-1e4, -1e3, -50.0, -1.0, 0.0, 1.0, 50.0, 1e3, 1e4], device=device)
    y = t(x)
    assert torch.isfinite(y).all()
    if case.jacobian:
        assert torch.isfinite(t.log_abs_det_jacobian(x, y)).all()
    if case.codomain_at_extremes:
        assert bool(t.codomain.check(y).all())


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_cache_returns_exact_input(case):
    t = case.make()
    lo, hi = case.roundtrip
    x = torch.linspace(lo, hi, 11)
    y = t(x)
    assert t.inv(y) is x
    assert t.inv(y.clone()) is not x


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_builder_makes_fresh_equal_transform(case):
    t = case.make()
    lo, hi = case.roundtrip
    x = torch.linspace(lo, hi, 7, dtype=torch.float64)
    y = t(x)
    fresh = transform_builder(t)()
    assert fresh is not t
    assert type(fresh) is type(t)
    np.testing.assert_allclose(fresh(x.clone()).numpy(), y.numpy(), rtol=1e-12)
    assert fresh.inv(y) is not x  # its cache does not hold t's pair


def test_stable_tanh_uncached_inverse_stays_finite_at_bounds():
    t = du.StableTanh(cache_size=0)
    y = torch.tensor([-1.0, 1.0, -1.0 + 1e-7, 1.0 - 1e-7])
    x = t.inv(y)
    assert torch.isfinite(x).all()
    assert (x[:2].sign() == y[:2].sign()).all()


def test_stable_tanh_log_det_at_large_x_is_closed_form():
    x = torch.tensor([20.0, -40.0, 1e4], dtype=torch.float64)
    t = du.StableTanh()
    # log(1 - tanh(x)^2) = log(4) - 2|x| - 2 log(1 + exp(-2|x|))
    expected = math.log(4.0) - 2 * x.abs() - 2 * torch.log1p(torch.exp(-2 * x.abs()))
    np.testing.assert_allclose(t.log_abs_det_jacobian(x, t(x)).numpy(), expected.numpy())


@given(
    low=st.floats(-5.0, 5.0),
    width=st.floats(0.1, 10.0),
    softness=st.floats(0.05, 3.0),
    u=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=8),
)
def test_softclip_over_parameters(low, width, softness, u):
    high = low + width
    t = du.Softclip(low, high, softness, cache_size=0)
    x = _in_range(u, (low - 4 * softness, high + 4 * softness)).requires_grad_(True)
    y = t(x)
    assert bool(((y > low) & (y < high)).all())
    (dydx,) = torch.autograd.grad(y.sum(), x)
    np.testing.assert_allclose(
        t.log_abs_det_jacobian(x, y).detach().numpy(), torch.log(dydx).numpy(), rtol=1e-6
    )
    np.testing.assert_allclose(t.inv(y.detach()).numpy(), x.detach().numpy(), atol=1e-6)
    # independent formula: l + s log(1 + e^{(x-l)/s}) - s log(1 + e^{(x-h)/s})
    xs = x.detach().numpy()
    ref = (
        low
        + softness * np.logaddexp(0, (xs - low) / softness)
        - softness * np.logaddexp(0, (xs - high) / softness)
    )
    np.testing.assert_allclose(y.detach().numpy(), ref, rtol=1e-9, atol=1e-9)


def test_softclip_tf_matches_reference_formula():
    low, high, s = -1.0, 2.0, 0.7
    x = torch.linspace(-6, 8, 29, dtype=torch.float64)
    y = du.SoftclipTF(low, high, s)(x).numpy()
    xs = x.numpy()

    def sp(v):
        return s * np.logaddexp(0, v / s)

    clipped = -sp(high - (sp(xs - low) + low)) + high
    softupper_low = -sp(high - low) + high
    ref = (clipped - high) / (high - softupper_low) * (high - low) + high
    np.testing.assert_allclose(y, ref, rtol=1e-12)
    assert y.min() > low and y.max() < high


def test_softmax_transform_inverse_up_to_normalization():
    t = du.SoftmaxTransform(cache_size=0)
    x = torch.randn(4, 5, dtype=torch.float64)
    y = t(x)
    np.testing.assert_allclose(y.sum(-1).numpy(), 1.0)
    np.testing.assert_allclose(t(t.inv(y)).numpy(), y.numpy(), rtol=1e-12)
    assert type(du.SoftmaxTransform().get_builder()()) is du.SoftmaxTransform


def test_get_invertible_defaults_cache_and_keeps_class():
    cls = du.get_invertible(td.ExpTransform)
    t = cls()
    assert t._cache_size == 1 and isinstance(t, td.ExpTransform)
    assert type(t.with_cache(0)) is cls and t.with_cache(0)._cache_size == 0
    affine = du.AffineTransform(1.0, 2.0).with_cache(0)
    assert type(affine) is du.AffineTransform and affine._cache_size == 0
    with pytest.raises(TypeError, match="cls"):
        du.get_invertible(int)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: du.Softplus(0.0), "hinge_softness"),
        (lambda: du.Softplus(-1.0), "hinge_softness"),
        (lambda: du.Softclip(1.0, 1.0), "low must be < high"),
        (lambda: du.Softclip(2.0, 1.0), "low must be < high"),
        (lambda: du.Softclip(0.0, 1.0, hinge_softness=0), "hinge_softness"),
        (lambda: du.SoftclipTF(3.0, 1.0), "low must be < high"),
        (lambda: du.Softclip(torch.tensor([0.0, 2.0]), torch.tensor([1.0, 1.0])), "low"),
    ],
)
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_transformed_distribution_log_prob_matches_change_of_variables():
    base = td.Normal(
        torch.tensor([0.3, -0.2], dtype=torch.float64),
        torch.tensor([0.5, 2.0], dtype=torch.float64),
    )
    dist = td.TransformedDistribution(base, [du.StableTanh()])
    x = torch.tensor([0.1, -1.5], dtype=torch.float64)
    y = torch.tanh(x)
    expected = base.log_prob(x) - torch.log(1 - y * y)
    np.testing.assert_allclose(dist.log_prob(y).numpy(), expected.numpy(), rtol=1e-10)


@pytest.mark.parametrize("softness", [1.0, 0.3])
def test_softplus_inverse_gradient_is_finite_and_exact(softness):
    # x = s log(expm1(y / s)), so dx/dy = 1 / (1 - exp(-y / s))
    y = torch.tensor([1e-8, 1e-3, 1.0, 19.0, 21.0, 100.0, 1e3, 1e5], dtype=torch.float64)
    expected = 1.0 / -np.expm1(-y.numpy() / softness)
    for dtype, rtol in [(torch.float64, 1e-9), (torch.float32, 1e-4)]:
        yv = y.to(dtype, copy=True).requires_grad_(True)
        x = du.Softplus(softness, cache_size=0).inv(yv)
        (grad,) = torch.autograd.grad(x.sum(), yv)
        np.testing.assert_allclose(grad.double().numpy(), expected, rtol=rtol)
        ref = y.numpy() + softness * np.log(-np.expm1(-y.numpy() / softness))
        np.testing.assert_allclose(x.detach().double().numpy(), ref, rtol=rtol)


def test_softclip_inverse_gradient_is_finite_near_the_bounds():
    low, high = 0.0, 2.0
    t = du.Softclip(low, high, cache_size=0)
    y = torch.tensor([1e-30, 1e-12, 1e-3, 1.0, 2.0 - 1e-6], requires_grad=True)
    x = t.inv(y)
    (grad,) = torch.autograd.grad(x.sum(), y)
    # dx/dy = 1 / (dy/dx) = 1 / (sigmoid(x - l) - sigmoid(x - h)), with the
    # exact preimage computed in float64
    yd = y.detach().double().numpy()
    xd = low + np.log(np.expm1(yd - low)) - np.log(-np.expm1(yd - high))
    dydx = 1 / (1 + np.exp(-(xd - low))) - 1 / (1 + np.exp(-(xd - high)))
    np.testing.assert_allclose(grad.double().numpy(), 1 / dydx, rtol=1e-4)


# One validator (alf.utils._math_checks) decides hinge_softness for math_ops and dist_utils.
SOFTNESS_USERS = [
    lambda s: math_ops.softlower(torch.zeros(2), 0.0, s),
    lambda s: math_ops.softclip(torch.zeros(2), 0.0, 1.0, s),
    lambda s: du.Softplus(s),
    lambda s: du.Softclip(0.0, 1.0, s),
    lambda s: du.SoftclipTF(0.0, 1.0, s),
    lambda s: du.Softlower(0.0, s),
]


@pytest.mark.parametrize("use", SOFTNESS_USERS)
@pytest.mark.parametrize(
    "value", [0.5, 2, np.float32(0.5), np.float64(0.25), np.int64(3), torch.tensor(0.5)]
)
def test_hinge_softness_accepted_alike(use, value):
    use(value)


@pytest.mark.parametrize("use", SOFTNESS_USERS)
@pytest.mark.parametrize(
    "value, error",
    [
        (float("inf"), ValueError),
        (float("nan"), ValueError),
        (0.0, ValueError),
        (-1, ValueError),
        (np.float32("inf"), ValueError),
        (True, TypeError),
        ("1", TypeError),
        (1j, TypeError),
        (torch.tensor([0.5, 1.0]), TypeError),
    ],
)
def test_hinge_softness_refused_alike_when_built(use, value, error):
    # refused on construction (Softclip(0, 1, inf) used to fail only at its first call)
    with pytest.raises(error, match="hinge_softness"):
        use(value)


def test_softplus_with_numpy_softness_matches_formula():
    x = torch.linspace(-5, 5, 11, dtype=torch.float64)
    s = np.float32(0.5)
    expected = 0.5 * np.logaddexp(0, x.numpy() / 0.5)
    np.testing.assert_allclose(du.Softplus(s)(x).numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(math_ops.softlower(x, 0.0, s).numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize(
    "make",
    [
        lambda c: du.Softplus(0.5, cache_size=c),
        lambda c: du.StableTanh(cache_size=c),
        lambda c: du.AffineTransform(1.0, 2.0, cache_size=c),
        lambda c: du.ExpTransform(cache_size=c),
    ],
)
def test_with_cache_keeps_the_parameters(make):
    t = make(1)
    assert t.with_cache(1) is t
    fresh = t.with_cache(0)
    assert type(fresh) is type(t) and fresh._cache_size == 0
    x = torch.linspace(-2, 2, 9, dtype=torch.float64)
    torch.testing.assert_close(fresh(x), t(x))
    torch.testing.assert_close(fresh.inv(t(x)), x)


def test_softclip_equality_compares_bounds_by_identity():
    low, high = torch.zeros(2), torch.ones(2)
    assert du.Softclip(low, high, 0.5) == du.Softclip(low, high, 0.5)
    assert du.Softclip(low, high, 0.5) != du.Softclip(torch.zeros(2), high, 0.5)
    assert du.Softclip(low, high, 0.5) != du.Softclip(low, high, 0.25)
    assert du.Softclip(0.0, 1.0) != du.Softplus()


def test_transform_builder_rebuilds_compose_independent_and_plain_transforms():
    x = torch.linspace(-1, 1, 6, dtype=torch.float64).reshape(3, 2)
    compose = td.ComposeTransform([du.Softplus(0.5), td.AffineTransform(1.0, 3.0)])
    independent = td.IndependentTransform(du.StableTanh(), 1)
    plain = td.SigmoidTransform()
    for t in (compose, independent, plain):
        rebuilt = transform_builder(t)()
        torch.testing.assert_close(rebuilt(x), t(x))
    assert transform_builder(plain)() is plain  # nothing to rebuild
    fresh = transform_builder(compose)()
    assert fresh is not compose and fresh.parts[0] is not compose.parts[0]
    # 3 * softplus_0.5(x) + 1 and the event-summed tanh Jacobian, by hand
    expected = 1 + 3 * 0.5 * np.logaddexp(0, x.numpy() / 0.5)
    np.testing.assert_allclose(fresh(x).numpy(), expected, rtol=1e-12)
    ind = transform_builder(independent)()
    ladj = ind.log_abs_det_jacobian(x, ind(x)).numpy()
    np.testing.assert_allclose(ladj, np.log(1 - np.tanh(x.numpy()) ** 2).sum(-1), rtol=1e-10)
