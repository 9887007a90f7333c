"""Truncated distributions and their standard ITS distributions, checked
against SciPy (truncnorm, cauchy, t with 2 dof), numerical quadrature and
finite differences."""

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import integrate, special, stats

from alf.utils import distributions as ad

FAMILIES = {
    "normal": (ad.TruncatedNormal, stats.norm),
    "cauchy": (ad.TruncatedCauchy, stats.cauchy),
    # p(x) = 1 / (2 (1 + x^2)^1.5) is Student's t(2) scaled by 1/sqrt(2)
    "t2": (ad.TruncatedT2, stats.t(2, scale=math.sqrt(0.5))),
}
T2_REF = FAMILIES["t2"][1]


class CauchyClosedForm:
    """The standard Cauchy distribution in closed forms that keep full float64
    precision in both tails (older SciPy releases lose digits of ``cdf`` below
    about -1e8, so the far-tail comparison needs a reference of its own)."""

    @staticmethod
    def cdf(x):
        # atan2(1, -x) / pi: ~ 1 / (pi |x|) for x -> -inf without cancellation
        return np.arctan2(1.0, -x) / np.pi

    @staticmethod
    def logpdf(x):
        return -np.log(np.pi) - np.log1p(x * x)

    @staticmethod
    def ppf(u):
        # -cot(pi u) below the median, cot(pi (1 - u)) above it
        return np.where(u < 0.5, -1.0 / np.tan(np.pi * u), 1.0 / np.tan(np.pi * (1.0 - u)))


def _scipy_logpdf(ref, x, loc, scale, low, high):
    """log q(x) of the truncated ``ref`` distribution, in float64."""
    zl, zu = (low - loc) / scale, (high - loc) / scale
    # mass between the standardized bounds, from the tail that keeps precision
    mass = np.where(zl + zu > 0, ref.sf(zl) - ref.sf(zu), ref.cdf(zu) - ref.cdf(zl))
    return ref.logpdf((x - loc) / scale) - np.log(scale) - np.log(mass)


def _check_rsample_gradient(cls, loc, scale, h, atol):
    """d rsample / d (loc, scale) from autograd against central differences
    with the same uniform numbers, bounds [-1, 1], float64."""

    def sample(loc, scale):
        torch.manual_seed(7)
        return cls(loc, scale, -1.0, 1.0).rsample((3,))

    loc_var = loc.clone().requires_grad_(True)
    scale_var = scale.clone().requires_grad_(True)
    x = sample(loc_var, scale_var)
    grad_loc, grad_scale = torch.autograd.grad(x.sum(), (loc_var, scale_var))
    fd_loc = (sample(loc + h, scale) - sample(loc - h, scale)).sum(0) / (2 * h)
    fd_scale = (sample(loc, scale + h) - sample(loc, scale - h)).sum(0) / (2 * h)
    np.testing.assert_allclose(grad_loc.numpy(), fd_loc.numpy(), rtol=1e-5, atol=atol)
    np.testing.assert_allclose(grad_scale.numpy(), fd_scale.numpy(), rtol=1e-5, atol=atol)


params = st.tuples(
    st.floats(-3.0, 3.0),  # loc
    st.floats(0.05, 3.0),  # scale
    st.floats(-2.0, 1.5),  # lower bound
    st.floats(0.05, 3.0),  # width
)


# ----------------------------------------------------------------------------
# standard distributions


def test_normal_its_matches_scipy_in_both_tails():
    x = torch.linspace(-37, 8, 2001, dtype=torch.float64)
    np.testing.assert_allclose(ad.NormalITS.cdf(x).numpy(), stats.norm.cdf(x.numpy()), rtol=1e-12)
    np.testing.assert_allclose(
        ad.NormalITS.log_prob(x).numpy(), stats.norm.logpdf(x.numpy()), rtol=1e-13
    )
    u = torch.cat(
        [
            torch.logspace(-300, -1, 400, dtype=torch.float64),
            torch.linspace(0.1, 1 - 1e-12, 400, dtype=torch.float64),
        ]
    )
    np.testing.assert_allclose(ad.NormalITS.icdf(u).numpy(), stats.norm.ppf(u.numpy()), rtol=1e-11)


def test_normal_icdf_float32_precise_in_lower_tail():
    u = torch.logspace(-35, -1, 200)
    z = ad.NormalITS.icdf(u)
    np.testing.assert_allclose(z.numpy(), stats.norm.ppf(u.double().numpy()), rtol=2e-6)


@pytest.mark.parametrize("its, ref", [(ad.CauchyITS, CauchyClosedForm), (ad.T2ITS, T2_REF)])
def test_heavy_tailed_its_match_reference(its, ref):
    x = torch.cat(
        [
            -torch.logspace(12, -3, 300, dtype=torch.float64),
            torch.logspace(-3, 12, 300, dtype=torch.float64),
        ]
    )
    lower = x < 0
    np.testing.assert_allclose(its.cdf(x).numpy()[lower], ref.cdf(x.numpy())[lower], rtol=1e-12)
    np.testing.assert_allclose(its.cdf(x).numpy(), ref.cdf(x.numpy()), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(its.log_prob(x).numpy(), ref.logpdf(x.numpy()), rtol=1e-12)
    u = torch.cat(
        [
            torch.logspace(-12, -1, 200, dtype=torch.float64),
            torch.linspace(0.1, 1 - 1e-9, 200, dtype=torch.float64),
        ]
    )
    np.testing.assert_allclose(its.icdf(u).numpy(), ref.ppf(u.numpy()), rtol=1e-8)


@pytest.mark.parametrize("its, power", [(ad.CauchyITS, 1.0), (ad.T2ITS, 1.5)])
def test_heavy_tailed_log_prob_does_not_overflow(its, power):
    # log p = const - power * log(1 + x^2): x^2 overflows beyond 1.8e19
    # (float32) / 1.3e154 (float64), log(1 + x^2) does not
    const = -math.log(math.pi) if its is ad.CauchyITS else -math.log(2.0)
    for dtype, big in [(torch.float32, [1e20, 1e30, 3e38]), (torch.float64, [1e160, 1e300])]:
        x = torch.tensor([-b for b in big] + [0.0, 0.5, 1.0, 2.0] + big, dtype=dtype)
        x.requires_grad_(True)
        lp = its.log_prob(x)
        xd = x.detach().double().numpy()
        big = np.abs(xd) > 1
        log1p_sq = np.log1p(np.where(big, 0.0, xd) ** 2)
        log1p_sq[big] = 2 * np.log(np.abs(xd[big])) + np.log1p(xd[big] ** -2.0)
        expected = const - power * log1p_sq
        rtol = 4 * torch.finfo(dtype).eps
        np.testing.assert_allclose(lp.detach().double().numpy(), expected, rtol=rtol)
        (grad,) = torch.autograd.grad(lp.sum(), x)
        # d/dx = -power * 2x / (1 + x^2), written without overflow
        small = np.where(big, 0.0, xd)
        expected_grad = -power * 2 * small / (1 + small**2)
        expected_grad[big] = -power * 2 / (xd[big] + 1 / xd[big])
        np.testing.assert_allclose(grad.double().numpy(), expected_grad, rtol=rtol)


def test_t2_cdf_custom_gradient():
    x = torch.tensor([-1e6, -30.0, -2.0, -0.1, 0.0, 0.7, 5.0, 1e6], dtype=torch.float64)
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(ad.t2cdf, (x,))
    (grad,) = torch.autograd.grad(ad.T2Cdf_.apply(x).sum(), x)
    np.testing.assert_allclose(grad.numpy(), T2_REF.pdf(x.detach().numpy()), rtol=1e-12)


def test_its_is_abstract():
    with pytest.raises(TypeError):
        ad.InverseTransformSampling()


# ----------------------------------------------------------------------------
# truncated distributions


@pytest.mark.parametrize("family", sorted(FAMILIES))
@settings(max_examples=15)
@given(p=params)
def test_density_integrates_to_one(family, p):
    cls, _ = FAMILIES[family]
    loc, scale, low, width = p
    high = low + width
    dist = cls(
        torch.tensor(loc, dtype=torch.float64), torch.tensor(scale, dtype=torch.float64), low, high
    )

    def density(x):
        return math.exp(dist.log_prob(torch.tensor(x, dtype=torch.float64)).item())

    peak = [min(max(loc, low), high)]
    total, _ = integrate.quad(density, low, high, points=peak, limit=200, epsabs=1e-11)
    assert abs(total - 1) < 1e-7


@pytest.mark.parametrize("family", sorted(FAMILIES))
@given(p=params, x=st.floats(0.0, 1.0))
def test_log_prob_matches_scipy(family, p, x):
    cls, ref = FAMILIES[family]
    loc, scale, low, width = p
    high = low + width
    value = low + x * width
    # float64 normal tail masses underflow beyond ~37 standard deviations
    assume(min(abs(low - loc), abs(high - loc)) / scale < 30 or low < loc < high)
    dist = cls(
        torch.tensor(loc, dtype=torch.float64), torch.tensor(scale, dtype=torch.float64), low, high
    )
    expected = _scipy_logpdf(ref, value, loc, scale, low, high)
    lp = dist.log_prob(torch.tensor(value, dtype=torch.float64)).item()
    np.testing.assert_allclose(lp, expected, rtol=1e-9, atol=1e-9)


def test_truncated_normal_log_prob_float32_matches_scipy_truncnorm():
    g = torch.Generator().manual_seed(1)
    n = 20000
    loc = torch.rand(n, generator=g) * 1.8 - 0.9
    scale = torch.rand(n, generator=g) * 0.9 + 0.1
    dist = ad.TruncatedNormal(loc, scale, -1.0, 1.0)
    x = dist.rsample()
    l64, s64 = loc.double().numpy(), scale.double().numpy()
    expected = stats.truncnorm.logpdf(
        x.double().numpy(), (-1 - l64) / s64, (1 - l64) / s64, loc=l64, scale=s64
    )
    np.testing.assert_allclose(dist.log_prob(x).numpy(), expected, rtol=1e-5, atol=2e-6)


@pytest.mark.parametrize(
    "loc, scale, low, high",
    [
        (0.3, 0.5, -1.0, 1.0),
        (-2.5, 0.7, -1.0, 1.0),  # loc below the interval
        (1.2, 2.0, 0.0, 0.5),
        (0.0, 0.05, -1.0, 1.0),  # narrow inside
    ],
)
def test_truncated_normal_ks_against_scipy(loc, scale, low, high):
    torch.manual_seed(3)
    dist = ad.TruncatedNormal(torch.full((20000,), loc), torch.full((20000,), scale), low, high)
    samples = dist.sample().double().numpy()
    a, b = (low - loc) / scale, (high - loc) / scale
    result = stats.kstest(samples, stats.truncnorm(a, b, loc=loc, scale=scale).cdf)
    assert result.pvalue > 1e-3, result


@pytest.mark.parametrize("family", ["cauchy", "t2"])
def test_heavy_tailed_truncated_ks(family):
    cls, ref = FAMILIES[family]
    loc, scale, low, high = 0.4, 0.8, -2.0, 1.5
    torch.manual_seed(4)
    samples = cls(torch.full((20000,), loc), torch.full((20000,), scale), low, high).sample()
    fl, fu = ref.cdf((low - loc) / scale), ref.cdf((high - loc) / scale)

    def cdf(x):
        return (ref.cdf((x - loc) / scale) - fl) / (fu - fl)

    assert stats.kstest(samples.double().numpy(), cdf).pvalue > 1e-3


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_samples_inside_bounds_and_finite_log_prob(family, device):
    cls, _ = FAMILIES[family]
    loc = torch.tensor([-3.0, -8.0, -1.0, 0.0, 0.99, 7.0, 6.0], device=device)
    scale = torch.tensor([0.3, 1.0, 0.3, 5.0, 1e-3, 2.0, 0.5], device=device)
    low, high = torch.tensor(-1.0, device=device), torch.tensor(1.0, device=device)
    dist = cls(loc, scale, low, high)
    x = dist.rsample((2000,))
    assert x.shape == (2000, 7)
    assert bool(((x >= -1) & (x <= 1)).all())
    assert torch.isfinite(dist.log_prob(x)).all()
    for bound in (low, high):
        assert torch.isfinite(dist.log_prob(bound.expand(7))).all()


def test_far_tail_log_prob_is_accurate_in_float32():
    # standardized bounds [6, 7] and [-7, -6]: one needs the mirrored form
    loc = torch.tensor([-6.0, 7.0])
    dist = ad.TruncatedNormal(loc, torch.ones(2), 0.0, 1.0)
    x = torch.tensor([0.0, 1.0])
    expected = _scipy_logpdf(stats.norm, x.double().numpy(), loc.double().numpy(), 1.0, 0.0, 1.0)
    np.testing.assert_allclose(dist.log_prob(x).numpy(), expected, rtol=1e-5)


def test_far_tail_float64():
    loc = torch.tensor([-30.0, 31.0], dtype=torch.float64)
    dist = ad.TruncatedNormal(loc, torch.ones(2, dtype=torch.float64), -1.0, 1.0)
    x = dist.sample((1000,))
    assert bool(((x >= -1) & (x <= 1)).all())
    # nearly all mass within a few 1/|z| of the nearer bound
    assert x[:, 0].mean() < -0.9 and x[:, 1].mean() > 0.9
    v = torch.tensor([-1.0, 1.0], dtype=torch.float64)
    expected = _scipy_logpdf(stats.norm, v.numpy(), loc.numpy(), 1.0, -1.0, 1.0)
    np.testing.assert_allclose(dist.log_prob(v).numpy(), expected, rtol=1e-9)


# ----------------------------------------------------------------------------
# far tails: the whole interval 20, 50 or 200 standard deviations from loc

FAR = [20.0, 50.0, 200.0]
DTYPES = [torch.float32, torch.float64]


def _far_params(sigmas, side, dtype, device="cpu"):
    """Three (loc, scale) pairs with the nearer of the bounds [-1, 1] at
    ``sigmas`` standard deviations from loc, on ``side`` (+1: loc above)."""
    scale = torch.tensor([0.05, 0.5, 3.0], dtype=dtype, device=device)
    return side * (1 + sigmas * scale), scale


def _truncnorm_logpdf(x, loc, scale, low, high):
    """scipy's truncated normal log density in float64 (log-space tails)."""
    loc, scale = loc.double().cpu().numpy(), scale.double().cpu().numpy()
    return stats.truncnorm.logpdf(
        x.double().cpu().numpy(), (low - loc) / scale, (high - loc) / scale, loc=loc, scale=scale
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("side", [1, -1])
@pytest.mark.parametrize("sigmas", FAR)
def test_far_tail_normal_log_prob_matches_scipy(sigmas, side, dtype, device):
    loc, scale = _far_params(sigmas, side, dtype, device)
    dist = ad.TruncatedNormal(loc, scale, -1.0, 1.0)
    # the bounds, points spread over the interval, and samples
    grid = torch.linspace(-1, 1, 101, dtype=dtype, device=device)[:, None].expand(101, 3)
    x = torch.cat([grid, dist.sample((500,))])
    lp = dist.log_prob(x)
    assert lp.dtype == dtype and bool(torch.isfinite(lp).all())
    expected = _truncnorm_logpdf(x, loc, scale, -1.0, 1.0)
    assert np.isfinite(expected).all()
    # errors relative to max(|logpdf|, 1): float32 inputs give a few ulps
    rtol = 2e-6 if dtype == torch.float32 else 1e-11
    error = np.abs(lp.double().cpu().numpy() - expected) / np.maximum(np.abs(expected), 1)
    assert error.max() < rtol


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("side", [1, -1])
@pytest.mark.parametrize("sigmas", FAR)
def test_far_tail_normal_samples_inside_and_distributed(sigmas, side, dtype, device):
    loc, scale = _far_params(sigmas, side, dtype, device)
    torch.manual_seed(5)
    n = 4000
    x = ad.TruncatedNormal(loc, scale, -1.0, 1.0).sample((n,))
    assert x.dtype == dtype and bool(((x >= -1) & (x <= 1)).all())
    for i in range(3):
        loc_i, scale_i = float(loc[i]), float(scale[i])
        ref = stats.truncnorm(
            (-1 - loc_i) / scale_i, (1 - loc_i) / scale_i, loc=loc_i, scale=scale_i
        )
        assert stats.kstest(x[:, i].double().cpu().numpy(), ref.cdf).pvalue > 1e-3


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("side", [1, -1])
@pytest.mark.parametrize("sigmas", FAR)
def test_far_tail_normal_gradients_finite(sigmas, side, dtype, device):
    loc, scale = _far_params(sigmas, side, dtype, device)
    loc.requires_grad_(True)
    scale.requires_grad_(True)
    dist = ad.TruncatedNormal(loc, scale, -1.0, 1.0)
    x = dist.rsample((200,))
    grads = torch.autograd.grad((x + dist.log_prob(x)).sum(), (loc, scale))
    assert all(bool(torch.isfinite(g).all()) for g in grads)


@pytest.mark.parametrize("side", [1, -1])
@pytest.mark.parametrize("sigmas", [7.0, 20.0, 50.0])
def test_far_tail_normal_rsample_gradient_matches_finite_differences(sigmas, side):
    loc, scale = _far_params(sigmas, side, torch.float64)
    _check_rsample_gradient(ad.TruncatedNormal, loc, scale, h=1e-7, atol=1e-8)


@pytest.mark.parametrize("side", [1, -1])
def test_far_tail_normal_log_prob_gradient_matches_finite_differences(side):
    loc, scale = _far_params(50.0, side, torch.float64)
    x = torch.tensor([[-0.99, 0.3, 0.7], [0.995, -0.2, 0.1]], dtype=torch.float64)

    def log_prob(loc, scale):
        return ad.TruncatedNormal(loc, scale, -1.0, 1.0).log_prob(x).sum()

    loc_var = loc.clone().requires_grad_(True)
    scale_var = scale.clone().requires_grad_(True)
    grad_loc, grad_scale = torch.autograd.grad(log_prob(loc_var, scale_var), (loc_var, scale_var))
    h = 1e-6
    for i in range(3):
        e = torch.zeros(3, dtype=torch.float64)
        e[i] = h
        fd_loc = (log_prob(loc + e, scale) - log_prob(loc - e, scale)) / (2 * h)
        fd_scale = (log_prob(loc, scale + e) - log_prob(loc, scale - e)) / (2 * h)
        np.testing.assert_allclose(grad_loc[i].item(), fd_loc.item(), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(grad_scale[i].item(), fd_scale.item(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("loc, scale", [(60.0, 1.0), (-1.0 - 200 * 0.02, 0.02)])
def test_far_tail_normal_density_integrates_to_one(loc, scale):
    dist = ad.TruncatedNormal(
        torch.tensor(loc, dtype=torch.float64), torch.tensor(scale, dtype=torch.float64), -1.0, 1.0
    )

    def density(x):
        return math.exp(dist.log_prob(torch.tensor(x, dtype=torch.float64)).item())

    # the mass sits within a few scale / beta of the nearer bound
    near = 1.0 if loc > 0 else -1.0
    decay = scale * scale / abs(loc - near)
    points = [near - math.copysign(k * decay, near) for k in (1, 5, 20)]
    total, _ = integrate.quad(density, -1.0, 1.0, points=points, limit=400, epsabs=1e-12)
    assert abs(total - 1) < 1e-8


def test_far_tail_mixed_with_ordinary_elements_and_infinite_bound():
    # one batch mixing far-tail and ordinary elements, and a half-infinite bound
    loc = torch.tensor([[0.0, 300.0], [-40.0, 0.5]], dtype=torch.float64, requires_grad=True)
    scale = torch.tensor([[1.0, 1.0], [2.0, 0.1]], dtype=torch.float64, requires_grad=True)
    low = torch.tensor([-1.0, -math.inf], dtype=torch.float64)
    high = torch.tensor([1.0, 2.0], dtype=torch.float64)
    dist = ad.TruncatedNormal(loc, scale, low, high)
    torch.manual_seed(2)
    x = dist.rsample((3000,))
    assert bool(((x >= low) & (x <= high)).all())
    assert bool(torch.isfinite(x).all())
    grads = torch.autograd.grad((x.sum(-1) + dist.log_prob(x)).sum(), (loc, scale))
    assert all(bool(torch.isfinite(g).all()) for g in grads)
    x = x.detach()
    loc, scale = loc.detach(), scale.detach()
    expected = _truncnorm_logpdf(x, loc, scale, low.numpy(), high.numpy())
    np.testing.assert_allclose(
        dist.log_prob(x).detach().numpy(), expected.sum(-1), rtol=1e-10, atol=1e-10
    )
    for i, j in [(0, 1), (1, 0)]:
        a = (low[j].item() - loc[i, j].item()) / scale[i, j].item()
        b = (high[j].item() - loc[i, j].item()) / scale[i, j].item()
        ref = stats.truncnorm(a, b, loc=loc[i, j].item(), scale=scale[i, j].item())
        assert stats.kstest(x[:, i, j].numpy(), ref.cdf).pvalue > 1e-3


@pytest.mark.parametrize("family", ["cauchy", "t2"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("side", [1, -1])
@pytest.mark.parametrize("sigmas", FAR)
def test_far_tail_heavy_tailed(family, sigmas, side, dtype):
    cls, ref = FAMILIES[family]
    loc, scale = _far_params(sigmas, side, dtype)
    loc.requires_grad_(True)
    scale.requires_grad_(True)
    dist = cls(loc, scale, -1.0, 1.0)
    x = dist.rsample((500,))
    assert bool(((x >= -1) & (x <= 1)).all())
    lp = dist.log_prob(x)
    grads = torch.autograd.grad((x + lp).sum(), (loc, scale))
    assert all(bool(torch.isfinite(g).all()) for g in grads)
    expected = _scipy_logpdf(
        ref,
        x.detach().double().numpy(),
        loc.detach().double().numpy(),
        scale.detach().double().numpy(),
        -1.0,
        1.0,
    )
    rtol = 1e-5 if dtype == torch.float32 else 1e-12
    error = np.abs(lp.detach().double().numpy() - expected) / np.maximum(np.abs(expected), 1)
    assert error.max() < rtol


def test_event_bounds_per_dimension():
    low = torch.tensor([-1.0, 0.0, 2.0], dtype=torch.float64)
    high = torch.tensor([1.0, 3.0, 2.5], dtype=torch.float64)
    loc = torch.tensor([[0.0, 1.0, 2.2], [0.5, -1.0, 3.0]], dtype=torch.float64)
    scale = torch.tensor([[1.0, 0.5, 0.1], [2.0, 1.0, 1.0]], dtype=torch.float64)
    dist = ad.TruncatedNormal(loc, scale, low, high)
    assert dist.batch_shape == (2,) and dist.event_shape == (3,)
    x = dist.sample((5,))
    assert x.shape == (5, 2, 3)
    assert bool(((x >= low) & (x <= high)).all())
    expected = _scipy_logpdf(
        stats.norm, x.numpy(), loc.numpy(), scale.numpy(), low.numpy(), high.numpy()
    )
    np.testing.assert_allclose(dist.log_prob(x).numpy(), expected.sum(-1), rtol=1e-10)
    np.testing.assert_allclose(dist.mode.numpy(), [[0.0, 1.0, 2.2], [0.5, 0.0, 2.5]])


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_rsample_gradient_matches_finite_differences(family):
    cls, _ = FAMILIES[family]
    loc = torch.tensor([0.2, -1.4, 0.9, 2.5], dtype=torch.float64)
    scale = torch.tensor([0.5, 0.8, 0.05, 1.5], dtype=torch.float64)
    _check_rsample_gradient(cls, loc, scale, h=1e-6, atol=1e-7)


def test_gradients_survive_a_first_call_without_grad():
    loc = torch.tensor([0.3], requires_grad=True)
    dist = ad.TruncatedNormal(loc, torch.tensor([0.5]), -1.0, 1.0)
    with torch.no_grad():
        dist.rsample()
    dist.log_prob(torch.tensor([0.0])).sum().backward()
    assert loc.grad is not None and loc.grad.abs().item() > 0


def test_mode_is_differentiable():
    loc = torch.tensor([0.3, 5.0], requires_grad=True)
    mode = ad.TruncatedT2(loc, torch.ones(2), -1.0, 1.0).mode
    mode.sum().backward()
    np.testing.assert_allclose(mode.detach().numpy(), [0.3, 1.0])
    np.testing.assert_allclose(loc.grad.numpy(), [1.0, 0.0])


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(lower_bound=1.0, upper_bound=1.0), ValueError, "lower_bound"),
        (dict(lower_bound=2.0, upper_bound=1.0), ValueError, "lower_bound"),
        (dict(lower_bound=[0.0, 0.0], upper_bound=[1.0, -1.0]), ValueError, "lower_bound"),
        (dict(scale=torch.tensor([1.0, -1.0])), ValueError, "scale"),
        (dict(scale=torch.tensor([1.0, 0.0])), ValueError, "scale"),
        (dict(lower_bound=[0.0, 0.0, 0.0], upper_bound=1.0), ValueError, "loc"),
        (dict(lower_bound=[0.0, 0.0], upper_bound=[1.0, 1.0, 1.0]), ValueError, "lower_bound"),
    ],
)
def test_bad_arguments(kwargs, exc, match):
    args = dict(loc=torch.zeros(2), scale=torch.ones(2), lower_bound=-1.0, upper_bound=1.0)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        ad.TruncatedNormal(**args)


def test_bad_its_and_out_of_support_value():
    with pytest.raises(TypeError, match="its"):
        ad.TruncatedDistribution(torch.zeros(1), torch.ones(1), -1.0, 1.0, its=object())
    dist = ad.TruncatedDistribution(torch.zeros(1), torch.ones(1), -1.0, 1.0, its=ad.NormalITS)
    with pytest.raises(ValueError):
        dist.log_prob(torch.tensor([1.5]))


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_two_backward_passes_through_one_distribution(family):
    # each log_prob / rsample builds its own graph, as torch's distributions
    # do: a second loss on the same distribution can be backpropagated
    cls, ref = FAMILIES[family]
    loc = torch.tensor([0.3, -0.4], dtype=torch.float64, requires_grad=True)
    scale = torch.tensor([0.5, 2.0], dtype=torch.float64, requires_grad=True)
    dist = cls(loc, scale, -1.0, 1.0)
    x = torch.tensor([0.2, -0.7], dtype=torch.float64)
    dist.log_prob(x).sum().backward()
    first = loc.grad.clone()
    loc.grad = None
    dist.log_prob(x).sum().backward()
    np.testing.assert_allclose(loc.grad.numpy(), first.numpy(), rtol=1e-12)
    # d log q / d loc by central differences of SciPy's density
    h = 1e-6
    lo = loc.detach().numpy()
    sc = scale.detach().numpy()
    fd = (
        _scipy_logpdf(ref, x.numpy(), lo + h, sc, -1.0, 1.0)
        - _scipy_logpdf(ref, x.numpy(), lo - h, sc, -1.0, 1.0)
    ) / (2 * h)
    np.testing.assert_allclose(loc.grad.numpy(), fd, rtol=1e-6)
    dist.rsample((2,)).sum().backward()
    assert torch.isfinite(loc.grad).all()


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_log_prob_outside_bounds_is_minus_inf_without_validation(family):
    # q(x) = 0 outside [l, u]; the bounds themselves belong to the support
    cls, ref = FAMILIES[family]
    low = torch.tensor([-1.0, 0.0], dtype=torch.float64)
    high = torch.tensor([1.0, 2.0], dtype=torch.float64)
    loc = torch.tensor([0.3, 5.0], dtype=torch.float64)
    scale = torch.tensor([0.5, 1.0], dtype=torch.float64)
    dist = cls(loc, scale, low, high, validate_args=False)
    x = torch.tensor(
        [[-1.5, 1.0], [-1.0, 0.0], [1.0, 2.0], [1.0 + 1e-9, 1.0], [0.0, 2.5]],
        dtype=torch.float64,
    )
    per_dim = _scipy_logpdf(ref, x.numpy(), loc.numpy(), scale.numpy(), low.numpy(), high.numpy())
    inside = (x.numpy() >= low.numpy()) & (x.numpy() <= high.numpy())
    expected = np.where(inside, per_dim, -np.inf).sum(-1)
    np.testing.assert_allclose(dist.log_prob(x).numpy(), expected, rtol=1e-10)
    scalar = cls(loc, scale, -1.0, 1.0, validate_args=False)
    lp = scalar.log_prob(torch.tensor([1.5, 0.5], dtype=torch.float64))
    assert lp[0].item() == -math.inf and math.isfinite(lp[1].item())


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_empty_batch(family):
    cls, _ = FAMILIES[family]
    for low, high, lp_shape in [(-1.0, 1.0, (3, 0, 2)), ([-1.0, 0.0], [1.0, 2.0], (3, 0))]:
        dist = cls(torch.zeros(0, 2), torch.ones(0, 2), low, high)
        x = dist.rsample((3,))
        assert x.shape == (3, 0, 2)
        assert dist.log_prob(x).shape == lp_shape


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_truncated_normal_in_half_precision(dtype):
    # NormalITS.icdf's tail branch (ndtri) has no float16/bfloat16 CPU kernel
    u = torch.tensor([1e-3, 0.015, 0.3, 0.9])
    np.testing.assert_allclose(
        ad.NormalITS.icdf(u.to(dtype)).double().numpy(),
        stats.norm.ppf(u.to(dtype).double().numpy()),
        rtol=4 * torch.finfo(dtype).eps,
    )
    loc = torch.tensor([0.0, 0.8, 10.0, -30.0])
    scale = torch.tensor([1.0, 0.3, 1.0, 1.0])
    torch.manual_seed(0)
    dist = ad.TruncatedNormal(loc.to(dtype), scale.to(dtype), -1.0, 1.0)
    x = dist.rsample((50,))
    assert x.dtype == dtype and bool(((x >= -1) & (x <= 1)).all())
    lp = dist.log_prob(x)
    assert lp.dtype == dtype
    xs = x.double().numpy()
    expected = _scipy_logpdf(stats.norm, xs, loc.double().numpy(), scale.double().numpy(), -1, 1)
    # log densities up to 3.4 in magnitude: a few ulps of that size
    np.testing.assert_allclose(lp.double().numpy(), expected, atol=8 * torch.finfo(dtype).eps)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_zero_uniform_draw_with_an_infinite_bound(family, monkeypatch):
    # torch.rand returns exactly 0 with probability 2^-24 (float32): with an
    # infinite lower bound, icdf(0) = -inf must not become the sample
    cls, _ = FAMILIES[family]
    # (-inf, inf) around a negative loc is sampled mirrored: icdf(1) = inf
    loc = torch.tensor([-0.5, 0.5, 1.0], requires_grad=True)
    dist = cls(loc, torch.ones(3), -math.inf, torch.tensor([math.inf, 1.0, 3.0]))
    zeros = torch.zeros
    monkeypatch.setattr(torch, "rand", lambda shape, **kwargs: zeros(shape, **kwargs))
    x = dist.rsample()
    assert bool(torch.isfinite(x).all()), x
    lp = dist.log_prob(x)
    assert bool(torch.isfinite(lp).all()), lp
    (grad,) = torch.autograd.grad(x.sum() + lp.sum(), loc)
    assert bool(torch.isfinite(grad).all()), grad


def _centered_cdf(family, z):
    """P(z) - 1/2 in float64, exact near 0 (where P(z) itself rounds)."""
    if family == "normal":
        return 0.5 * special.erf(z / math.sqrt(2))
    if family == "cauchy":
        return np.arctan(z) / math.pi
    return z / (2 * np.hypot(1.0, z))


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize(
    "loc, scale",
    [(0.3, 1e4), (0.3, 1e6), (-0.6, 1e8), (0.3, 1e30), (5.0, 1e8), (-40.0, 1e12)],
)
def test_scale_much_larger_than_the_interval(family, loc, scale):
    # [-1, 1] is a tiny standardized interval near the center of p, where
    # P(z) ~= 1/2 has lost all its digits: the density is nearly uniform
    cls, _ = FAMILIES[family]
    n = 4000
    torch.manual_seed(0)
    dist = cls(torch.full((n,), loc), torch.full((n,), scale), -1.0, 1.0)
    x = dist.rsample()
    assert bool(((x >= -1) & (x <= 1)).all())
    zl, zu = (-1 - loc) / scale, (1 - loc) / scale
    mass = _centered_cdf(family, zu) - _centered_cdf(family, zl)

    def ref_cdf(v):
        return (_centered_cdf(family, (v - loc) / scale) - _centered_cdf(family, zl)) / mass

    assert stats.kstest(x.double().numpy(), ref_cdf).pvalue > 1e-3
    v = torch.tensor([-1.0, -0.25, 0.5, 1.0])
    ref = FAMILIES[family][1]
    expected = ref.logpdf((v.double().numpy() - loc) / scale) - math.log(scale) - math.log(mass)
    # (float32 standardized bounds 2e-12 apart at 4e-11 lose a few digits)
    np.testing.assert_allclose(dist.log_prob(v.expand(n, 4).T)[:, 0].numpy(), expected, rtol=1e-5)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_scale_much_larger_than_the_interval_gradients(family):
    # autograd through the centered path against central differences with
    # the same uniform numbers (float64); the outputs hardly depend on the
    # parameters, so both steps are 1e-4 scale (scale is the natural unit)
    cls, _ = FAMILIES[family]
    loc = torch.tensor([0.3, -0.6, 0.9, 1.5], dtype=torch.float64)
    scale = torch.tensor([150.0, 300.0, 250.0, 200.0], dtype=torch.float64)

    def outputs(loc, scale):
        torch.manual_seed(7)
        dist = cls(loc, scale, -1.0, 1.0)
        assert dist._params().centered.mask.all()  # the path under test
        values = torch.tensor([-0.9, 0.1, 0.7], dtype=torch.float64).unsqueeze(-1)
        return dist.rsample((3,)), dist.log_prob(values.expand(3, 4))

    loc_var = loc.clone().requires_grad_(True)
    scale_var = scale.clone().requires_grad_(True)
    for index, out in enumerate(outputs(loc_var, scale_var)):
        grad_loc, grad_scale = torch.autograd.grad(out.sum(), (loc_var, scale_var))
        h = scale * 1e-4
        fd_loc = (outputs(loc + h, scale)[index] - outputs(loc - h, scale)[index]).sum(0) / (2 * h)
        fd_scale = (outputs(loc, scale + h)[index] - outputs(loc, scale - h)[index]).sum(0) / (
            2 * h
        )
        np.testing.assert_allclose(grad_loc.numpy(), fd_loc.numpy(), rtol=1e-6)
        np.testing.assert_allclose(grad_scale.numpy(), fd_scale.numpy(), rtol=1e-6)


# --------------------------------------------------------------------------
# KL divergence between truncated normals (closed form, registered with
# torch.distributions.kl_divergence) against quadrature


def _np_truncnorm_kl(m1, s1, l1, u1, m2, s2, l2, u2):
    """KL(P || Q) by quadrature of p (log p - log q) over P's interval, with
    SciPy's truncnorm log-densities."""
    p = stats.truncnorm((l1 - m1) / s1, (u1 - m1) / s1, loc=m1, scale=s1)
    q = stats.truncnorm((l2 - m2) / s2, (u2 - m2) / s2, loc=m2, scale=s2)
    lo, hi = p.ppf(1e-15), p.isf(1e-15)  # finite integration range
    return integrate.quad(
        lambda x: p.pdf(x) * (p.logpdf(x) - q.logpdf(x)), lo, hi, epsabs=0, epsrel=1e-11, limit=400
    )[0]


@pytest.mark.parametrize(
    "m1, s1, m2, s2, l1, u1, l2, u2",
    [
        (0.0, 1.0, 0.5, 2.0, -1.0, 2.0, -1.0, 2.0),
        (0.3, 0.5, -0.2, 0.7, -1.0, 1.0, -1.0, 1.0),
        (8.0, 1.0, 7.0, 1.5, -1.0, 1.0, -1.0, 1.0),  # P's interval in its far tail
        (-9.0, 0.5, -8.0, 0.6, -1.0, 1.0, -1.0, 1.0),  # the left tail
        (0.2, 1.3, -0.4, 0.9, -math.inf, math.inf, -math.inf, math.inf),  # untruncated
        (0.0, 1.0, 1.0, 1.0, -math.inf, 0.5, -math.inf, 0.5),  # one infinite end
        (0.1, 0.8, 0.3, 1.1, -0.5, 0.5, -1.0, 2.0),  # P's interval inside Q's
    ],
)
def test_truncated_normal_kl_matches_quadrature(m1, s1, m2, s2, l1, u1, l2, u2):
    f64 = torch.float64

    def t(x):
        return torch.tensor([x], dtype=f64)

    p = ad.TruncatedNormal(t(m1), t(s1), t(l1), t(u1))
    q = ad.TruncatedNormal(t(m2), t(s2), t(l2), t(u2))
    got = torch.distributions.kl_divergence(p, q)
    assert got.shape == ()  # summed over the event dim
    expected = _np_truncnorm_kl(m1, s1, l1, u1, m2, s2, l2, u2)
    np.testing.assert_allclose(got.item(), expected, rtol=1e-7, atol=1e-12)


def test_truncated_normal_kl_batch_events_support_and_gradient(device):
    # batch [3], event [2]: the KL is summed over the event dim; zero for
    # identical distributions; inf where P's interval leaves Q's.
    g = torch.Generator().manual_seed(3)
    loc1 = torch.randn(3, 2, generator=g, dtype=torch.float64).to(device).requires_grad_()
    scale1 = (torch.rand(3, 2, generator=g, dtype=torch.float64) + 0.5).to(device)
    loc2 = torch.randn(3, 2, generator=g, dtype=torch.float64).to(device)
    scale2 = (torch.rand(3, 2, generator=g, dtype=torch.float64) + 0.5).to(device)
    low = torch.tensor([-1.0, -2.0], dtype=torch.float64, device=device)
    high = torch.tensor([1.5, 0.5], dtype=torch.float64, device=device)
    p = ad.TruncatedNormal(loc1, scale1, low, high)
    q = ad.TruncatedNormal(loc2, scale2, low, high)
    kl = torch.distributions.kl_divergence(p, q)
    assert kl.shape == (3,)
    for b in range(3):
        expected = sum(
            _np_truncnorm_kl(
                loc1[b, e].item(), scale1[b, e].item(), low[e].item(), high[e].item(),
                loc2[b, e].item(), scale2[b, e].item(), low[e].item(), high[e].item(),
            )
            for e in range(2)
        )
        np.testing.assert_allclose(kl[b].item(), expected, rtol=1e-7)
    (grad,) = torch.autograd.grad(kl.sum(), loc1)
    assert torch.isfinite(grad).all()
    same = torch.distributions.kl_divergence(p, p)
    np.testing.assert_allclose(same.detach().cpu().numpy(), 0.0, atol=1e-12)
    wider = ad.TruncatedNormal(loc1.detach(), scale1, low - 1, high)
    assert torch.isinf(torch.distributions.kl_divergence(wider, q)).all()
    assert torch.isfinite(torch.distributions.kl_divergence(q, wider)).all()
    # float32 parameters give a float32 result
    p32 = ad.TruncatedNormal(loc2.float(), scale2.float(), low.float(), high.float())
    q32 = ad.TruncatedNormal(loc1.detach().float(), scale1.float(), low.float(), high.float())
    assert torch.distributions.kl_divergence(p32, q32).dtype == torch.float32
