"""Distribution classes of alf.utils.dist_utils against closed forms and SciPy."""

import math

import numpy as np
import pytest
import torch
import torch.distributions as td
from scipy import integrate, special, stats

from alf.utils import dist_utils as du

F64 = torch.float64


def test_affine_transformed_distribution_moments_and_entropy():
    mu, sigma = torch.tensor([0.5, -1.0], dtype=F64), torch.tensor([2.0, 0.3], dtype=F64)
    loc, scale = torch.tensor([1.0, 3.0], dtype=F64), torch.tensor([-2.0, 0.5], dtype=F64)
    dist = du.AffineTransformedDistribution(td.Normal(mu, sigma), loc, scale)
    np.testing.assert_allclose(dist.mean.numpy(), (loc + scale * mu).numpy())
    np.testing.assert_allclose(dist.variance.numpy(), (scale**2 * sigma**2).numpy())
    np.testing.assert_allclose(dist.stddev.numpy(), (scale.abs() * sigma).numpy())
    expected = stats.norm(scale=(scale.abs() * sigma).numpy()).entropy()
    np.testing.assert_allclose(dist.entropy().numpy(), expected)
    # density of y = loc + scale x is a normal with the affine moments
    y = torch.tensor([0.2, 2.9], dtype=F64)
    ref = stats.norm((loc + scale * mu).numpy(), (scale.abs() * sigma).numpy()).logpdf(y.numpy())
    np.testing.assert_allclose(dist.log_prob(y).numpy(), ref)


def test_affine_transformed_entropy_sums_over_event_dims():
    base = du.DiagMultivariateNormal(torch.zeros(3, 2, dtype=F64), torch.ones(3, 2, dtype=F64))
    scale = torch.tensor([2.0, 0.25], dtype=F64)
    dist = du.AffineTransformedDistribution(base, 0.0, scale)
    expected = sum(stats.norm(scale=s).entropy() for s in scale.numpy())
    np.testing.assert_allclose(dist.entropy().numpy(), np.full(3, expected))
    with pytest.raises(ValueError, match="scale"):
        du.AffineTransformedDistribution(base, 0.0, torch.tensor([1.0, 0.0]))


def test_beta_keeps_passed_tensors_and_gets_their_gradients():
    a = torch.tensor([2.0, 0.5], requires_grad=True)
    b = torch.tensor([3.0, 0.7], requires_grad=True)
    dist = du.Beta(a, b)
    assert dist.concentration1 is a and dist.concentration0 is b
    seen = []
    a.register_hook(lambda g: seen.append(g))
    dist.log_prob(torch.tensor([0.3, 0.6])).sum().backward()
    assert len(seen) == 1 and torch.isfinite(seen[0]).all()
    ref = stats.beta(a.detach().numpy(), b.detach().numpy()).logpdf([0.3, 0.6])
    np.testing.assert_allclose(
        dist.log_prob(torch.tensor([0.3, 0.6])).detach().numpy(), ref, rtol=1e-5
    )


def test_beta_rsample_is_clamped_and_gradients_are_finite():
    a = torch.tensor([0.02, 0.02], requires_grad=True)
    b = torch.tensor([0.02, 5.0], requires_grad=True)
    dist = du.Beta(a, b)
    torch.manual_seed(0)
    x = dist.rsample((500,))
    eps = torch.finfo(torch.float32).eps
    assert bool(((x >= eps) & (x <= 1 - eps)).all())
    dist.log_prob(x).sum().backward()
    assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()
    custom = du.Beta(torch.tensor(0.05), torch.tensor(0.05), eps=0.01).rsample((200,))
    assert custom.min() >= 0.01 and custom.max() <= 0.99
    with pytest.raises(ValueError, match="eps"):
        du.Beta(1.0, 1.0, eps=0.7)


def test_beta_mode_and_kl():
    a = torch.tensor([3.0, 0.5, 2.0, 0.5, 1.0])
    b = torch.tensor([2.0, 3.0, 0.5, 0.8, 1.0])
    np.testing.assert_allclose(du.Beta(a, b).mode.numpy(), [2 / 3, 0.0, 1.0, 0.0, 1.0], rtol=1e-6)
    p, q = du.Beta(a, b), du.Beta(b, a)
    # closed form: ln B(a2, b2) - ln B(a1, b1) + (a1 - a2) psi(a1) + (b1 - b2) psi(b1)
    #              + (a2 - a1 + b2 - b1) psi(a1 + b1)
    a1, b1, a2, b2 = (v.double().numpy() for v in (a, b, b, a))
    closed = (
        special.betaln(a2, b2)
        - special.betaln(a1, b1)
        + (a1 - a2) * special.digamma(a1)
        + (b1 - b2) * special.digamma(b1)
        + (a2 - a1 + b2 - b1) * special.digamma(a1 + b1)
    )
    kl = td.kl_divergence(p, q)
    assert kl.shape == (5,)
    np.testing.assert_allclose(kl.numpy(), closed, rtol=1e-5, atol=1e-6)

    # and one case by numerical integration of p log(p / q) over (0, 1)
    def integrand(x):
        return stats.beta(3, 2).pdf(x) * (stats.beta(3, 2).logpdf(x) - stats.beta(2, 3).logpdf(x))

    np.testing.assert_allclose(kl[0].item(), integrate.quad(integrand, 0, 1)[0], rtol=1e-5)
    expanded = p.expand((2, 5))
    assert isinstance(expanded, du.Beta) and expanded.batch_shape == (2, 5)


def test_diag_multivariate_distributions_match_scipy():
    loc = torch.tensor([[0.0, 1.0], [2.0, -1.0]], dtype=F64)
    scale = torch.tensor([[1.0, 0.5], [2.0, 3.0]], dtype=F64)
    x = torch.tensor([[0.3, 0.2], [1.0, 4.0]], dtype=F64)
    normal = du.DiagMultivariateNormal(loc, scale)
    assert normal.event_shape == (2,) and normal.batch_shape == (2,)
    np.testing.assert_allclose(
        normal.log_prob(x).numpy(), stats.norm(loc.numpy(), scale.numpy()).logpdf(x.numpy()).sum(-1)
    )
    np.testing.assert_allclose(normal.stddev.numpy(), scale.numpy())
    cauchy = du.DiagMultivariateCauchy(loc, scale)
    assert cauchy.loc is loc and cauchy.scale is scale
    np.testing.assert_allclose(
        cauchy.log_prob(x).numpy(),
        stats.cauchy(loc.numpy(), scale.numpy()).logpdf(x.numpy()).sum(-1),
    )
    beta = du.DiagMultivariateBeta(scale, scale + 1)
    u = torch.tensor([[0.3, 0.2], [0.5, 0.9]], dtype=F64)
    np.testing.assert_allclose(
        beta.log_prob(u).numpy(),
        stats.beta(scale.numpy(), scale.numpy() + 1).logpdf(u.numpy()).sum(-1),
    )


def test_stable_cauchy_rsample_is_clipped():
    loc, scale = torch.tensor([1.0, -2.0]), torch.tensor([0.5, 3.0])
    dist = du.StableCauchy(loc, scale)
    torch.manual_seed(0)
    x = dist.rsample((20000,))
    bound = scale * math.tan(math.pi * 0.49)
    assert bool(((x - loc).abs() <= bound * (1 + 1e-5)).all())
    np.testing.assert_allclose(x.median(0).values.numpy(), loc.numpy(), atol=0.05 * 3)
    tight = dist.rsample((1000,), clipping_value=0.25)
    assert bool(((tight - loc).abs() <= scale * (1 + 1e-5)).all())
    for bad in (0.0, 0.5, -0.1, 1):
        with pytest.raises(ValueError, match="clipping_value"):
            dist.rsample(clipping_value=bad)


def test_gumbel_softmax_frequencies_and_gradients():
    probs = torch.tensor([0.6, 0.3, 0.1])
    logits = probs.log().requires_grad_(True)
    torch.manual_seed(0)
    dist = du.OneHotCategoricalGumbelSoftmax(logits=logits)
    x = dist.rsample((20000,))
    assert set(x.sum(-1).tolist()) == {1.0} and set(x.flatten().tolist()) <= {0.0, 1.0}
    # a Gumbel-max sample follows the categorical distribution exactly
    np.testing.assert_allclose(x.detach().mean(0).numpy(), probs.numpy(), atol=0.015)
    (x * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert (
        logits.grad is not None
        and torch.isfinite(logits.grad).all()
        and logits.grad.abs().sum() > 0
    )
    soft = du.OneHotCategoricalGumbelSoftmax(hard_sample=False, tau=0.5, logits=logits.detach())
    s = soft.rsample((4,))
    np.testing.assert_allclose(s.sum(-1).numpy(), 1.0, rtol=1e-6)
    assert ((s > 0) & (s < 1)).any()
    cold = du.OneHotCategoricalGumbelSoftmax(hard_sample=False, tau=1e-3, probs=probs).rsample(
        (100,)
    )
    assert (cold.max(-1).values > 0.99).float().mean() > 0.95
    with pytest.raises(ValueError, match="tau"):
        du.OneHotCategoricalGumbelSoftmax(tau=0.0, probs=probs)


@pytest.mark.parametrize(
    "cls", [du.OneHotCategoricalStraightThrough, du.OneHotCategoricalGumbelSoftmax]
)
def test_straight_through_mode(cls):
    logits = torch.tensor([[0.1, 2.0, -1.0], [3.0, 0.0, 0.5]], requires_grad=True)
    dist = cls(logits=logits)
    mode = dist.mode
    np.testing.assert_allclose(mode.detach().numpy(), [[0, 1, 0], [1, 0, 0]])
    weights = torch.tensor([1.0, 2.0, 3.0])
    (mode * weights).sum().backward()
    probs = torch.softmax(logits.detach(), -1)
    # gradient of sum(probs * w) w.r.t. logits: p * (w - sum(p w))
    expected = probs * (weights - (probs * weights).sum(-1, keepdim=True))
    np.testing.assert_allclose(logits.grad.numpy(), expected.numpy(), rtol=1e-5, atol=1e-7)
