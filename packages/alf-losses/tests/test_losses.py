"""alf.utils.losses against NumPy/SciPy formulas and brute force."""

import itertools
import math

import numpy as np
import pytest
import scipy.stats
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import alf.summary
from alf.utils import losses
from alf.utils.math_ops import Log1pTransform, SqrtLinearTransform

TRANSFORMS = {"identity": None, "sqrt_linear": SqrtLinearTransform(0.001)}


def _np_transform(name, x):
    """SqrtLinearTransform(0.001) written with NumPy."""
    if name == "identity":
        return x
    return np.sign(x) * (np.sqrt(np.abs(x) + 1) - 1) + 0.001 * x


def _np_inverse(name, y):
    """Inverse of _np_transform by bisection (independent of the closed form)."""
    if name == "identity":
        return y
    lo, hi = np.full_like(y, -1e12), np.full_like(y, 1e12)
    for _ in range(200):
        mid = (lo + hi) / 2
        above = _np_transform(name, mid) > y
        hi, lo = np.where(above, mid, hi), np.where(above, lo, mid)
    return (lo + hi) / 2


def _t(x, device):
    return torch.as_tensor(x, device=device)


# --------------------------------------------------------------------------
# Element-wise losses


def test_element_wise_losses(device):
    rng = np.random.RandomState(0)
    x, y = 3 * rng.standard_normal((2, 50))
    d = x - y
    huber = np.where(np.abs(d) <= 1, 0.5 * d**2, np.abs(d) - 0.5)
    np.testing.assert_allclose(
        losses.element_wise_huber_loss(_t(x, device), _t(y, device)).cpu(), huber, rtol=1e-12
    )
    np.testing.assert_allclose(
        losses.element_wise_squared_loss(_t(x, device), _t(y, device)).cpu(), d**2, rtol=1e-12
    )
    # Broadcasting, as the reference's torch functions do.
    out = losses.element_wise_squared_loss(_t(x[:5, None], device), _t(y[None, :3], device))
    np.testing.assert_allclose(out.cpu(), (x[:5, None] - y[None, :3]) ** 2, rtol=1e-12)


@pytest.mark.parametrize("delta", [0.1, 1.0, 2.5])
def test_huber_function(device, delta):
    x = np.linspace(-5, 5, 101)
    expected = np.where(np.abs(x) <= delta, 0.5 * x**2, delta * (np.abs(x) - 0.5 * delta))
    np.testing.assert_allclose(losses.huber_function(_t(x, device), delta).cpu(), expected)


@pytest.mark.parametrize("delta", [0.0, -1.0])
def test_huber_function_needs_positive_delta(delta):
    with pytest.raises(ValueError, match="delta"):
        losses.huber_function(torch.zeros(3), delta)


def _np_quantile_huber(quantiles, target, delta):
    n = quantiles.shape[-1]
    if target.ndim == quantiles.ndim - 1:
        target = target[..., None]
    out = np.zeros(quantiles.shape[:-1])
    for idx in np.ndindex(*quantiles.shape[:-1]):
        total = 0.0
        for y in target[idx]:
            for k in range(n):
                tau = (k + 0.5) / n
                u = y - quantiles[idx][k]
                w = abs(tau - (1.0 if u < 0 else 0.0))
                if delta == 0:
                    total += w * abs(u)
                elif abs(u) < delta:
                    total += w * 0.5 * u * u / delta
                else:
                    total += w * (abs(u) - 0.5 * delta)
        out[idx] = total / (target.shape[-1] * n)
    return out


@given(
    batch=st.sampled_from([(), (3,), (2, 3)]),
    n=st.integers(1, 6),
    targets=st.sampled_from([None, 1, 4]),
    delta=st.sampled_from([0.0, 0.1, 1.0]),
    seed=st.integers(0, 1000),
)
def test_multi_quantile_huber_loss_matches_formula(batch, n, targets, delta, seed):
    rng = np.random.RandomState(seed)
    quantiles = rng.standard_normal(batch + (n,))
    target = rng.standard_normal(batch if targets is None else batch + (targets,))
    out = losses.multi_quantile_huber_loss(torch.tensor(quantiles), torch.tensor(target), delta)
    assert out.shape == batch
    np.testing.assert_allclose(out.numpy(), _np_quantile_huber(quantiles, target, delta))


def test_pinball_loss_is_minimized_at_the_empirical_quantiles():
    rng = np.random.RandomState(1)
    samples = rng.standard_normal(999)
    n = 4
    best = np.quantile(samples, (np.arange(n) + 0.5) / n, method="inverted_cdf")
    target = torch.tensor(samples)
    base = losses.multi_quantile_huber_loss(torch.tensor(best), target, 0.0)
    for k in range(n):
        for step in (-0.05, 0.05):
            moved = best.copy()
            moved[k] += step
            assert losses.multi_quantile_huber_loss(torch.tensor(moved), target, 0.0) > base


def test_multi_quantile_huber_loss_bad_input():
    with pytest.raises(ValueError, match="target"):
        losses.multi_quantile_huber_loss(torch.zeros(3, 4), torch.zeros(2))
    with pytest.raises(ValueError, match="delta"):
        losses.multi_quantile_huber_loss(torch.zeros(3, 4), torch.zeros(3), -0.1)


# --------------------------------------------------------------------------
# Scalar prediction losses


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_square_loss(device, name):
    rng = np.random.RandomState(2)
    pred, target = rng.standard_normal((2, 20)) * 5
    loss = losses.SquareLoss(TRANSFORMS[name])
    np.testing.assert_allclose(
        loss(_t(pred, device), _t(target, device)).cpu(),
        (pred - _np_transform(name, target)) ** 2,
        rtol=1e-10,
    )
    np.testing.assert_allclose(
        loss.calc_expectation(_t(pred, device)).cpu(), _np_inverse(name, pred), rtol=1e-9
    )
    bias = torch.ones(5)
    loss.initialize_bias(bias)
    assert torch.equal(bias, torch.zeros(5))


def _np_two_hot(n, y):
    """Target distribution over bins v_i = i - (n-1)//2 for transformed y."""
    lo = -((n - 1) // 2)
    y = np.clip(y, lo, n // 2)
    p = np.zeros(y.shape + (n,))
    for idx in np.ndindex(*y.shape):
        f = math.floor(y[idx])
        if f >= n // 2:
            p[idx + (n - 1,)] = 1.0
        else:
            p[idx + (f - lo,)] += 1 + f - y[idx]
            p[idx + (f - lo + 1,)] += y[idx] - f
    return p


def _np_log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def _np_split(n, name, target, inverse_after_mean=False):
    """Two-hot target over the n bins. Without a transform or with
    inverse_after_mean: split in the transformed space (_np_two_hot);
    otherwise ALF's split in the original space between the nodes
    x_i = f^-1(v_i), found by bisection: weight (t - x_lo) / (x_hi - x_lo)."""
    if name == "identity" or inverse_after_mean:
        return _np_two_hot(n, _np_transform(name, target))
    v = (np.arange(n) - (n - 1) // 2).astype(float)
    x = _np_inverse(name, v)
    t = np.clip(target, x[0], x[-1])
    p = np.zeros(t.shape + (n,))
    for idx in np.ndindex(*t.shape):
        k = min(np.searchsorted(x, t[idx], side="right") - 1, n - 2)
        w = (t[idx] - x[k]) / (x[k + 1] - x[k])
        p[idx + (k,)] += 1 - w
        p[idx + (k + 1,)] += w
    return p


def _np_entropy(p):
    return -np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0.0).sum(-1)


@given(
    n=st.integers(2, 9),
    name=st.sampled_from(list(TRANSFORMS)),
    inverse_after_mean=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_discrete_regression_loss_is_kl_divergence(n, name, inverse_after_mean, seed):
    # KL(two-hot target || softmax(logits)) = cross entropy - target entropy.
    rng = np.random.RandomState(seed)
    logits = rng.standard_normal((3, 4, n))
    # Targets inside and outside the supported range.
    target = rng.uniform(-n, n, (3, 4)) * (20 if name != "identity" else 1)
    loss = losses.DiscreteRegressionLoss(TRANSFORMS[name], inverse_after_mean)
    out = loss(torch.tensor(logits), torch.tensor(target))
    p = _np_split(n, name, target, inverse_after_mean)
    expected = -(p * _np_log_softmax(logits)).sum(-1) - _np_entropy(p)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-9, atol=1e-9)


def test_discrete_regression_loss_is_zero_at_the_target_distribution():
    # The loss is a KL divergence: 0 when the prediction is the target.
    n = 9
    target = np.array([-3.5, 0.25, 2.0, 3.9])
    logits = np.log(np.maximum(_np_two_hot(n, target), 1e-300))
    out = losses.DiscreteRegressionLoss()(torch.tensor(logits), torch.tensor(target))
    np.testing.assert_allclose(out.numpy(), 0.0, atol=1e-12)


@pytest.mark.parametrize("cls", ["DiscreteRegressionLoss", "OrderedDiscreteRegressionLoss"])
def test_discrete_regression_split_in_original_space_is_unbiased(cls):
    # ALF splits the target between f^-1(low) and f^-1(high): for the target
    # distribution the expectation sum_i p_i f^-1(v_i) is the target itself
    # (a split in the transformed space gives f^-1 of a convex combination).
    n = 21
    transform = Log1pTransform(1.0)
    target = np.array([100.0, 5.0, -37.5, 0.3])
    v = (np.arange(n) - (n - 1) // 2).astype(float)
    x = np.sign(v) * np.expm1(np.abs(v))
    k = np.searchsorted(x, target, side="right") - 1
    w = (target - x[k]) / (x[k + 1] - x[k])
    p = np.zeros((len(target), n))
    p[np.arange(len(target)), k] = 1 - w
    p[np.arange(len(target)), k + 1] = w
    loss = getattr(losses, cls)(transform)
    if cls == "DiscreteRegressionLoss":
        logits = np.log(np.maximum(p, 1e-300))
    else:
        ge = np.flip(np.cumsum(np.flip(p, -1), -1), -1)
        logits = np.log(np.maximum(ge, 1e-300)) - np.log(np.maximum(1 - ge, 1e-300))
    logits = torch.tensor(logits)
    np.testing.assert_allclose(loss.calc_expectation(logits).numpy(), target, rtol=1e-9)
    # ... and this prediction minimises the loss: its value there is 0.
    np.testing.assert_allclose(loss(logits, torch.tensor(target)).numpy(), 0.0, atol=1e-9)


@pytest.mark.parametrize("name", list(TRANSFORMS))
@pytest.mark.parametrize("inverse_after_mean", [False, True])
def test_discrete_regression_expectation(device, name, inverse_after_mean):
    rng = np.random.RandomState(3)
    n = 7
    logits = rng.standard_normal((5, n))
    loss = losses.DiscreteRegressionLoss(TRANSFORMS[name], inverse_after_mean)
    p = np.exp(_np_log_softmax(logits))
    v = np.arange(n) - (n - 1) // 2
    if inverse_after_mean:
        expected = _np_inverse(name, (p * v).sum(-1))
    else:
        expected = (p * _np_inverse(name, v.astype(float))).sum(-1)
    out = loss.calc_expectation(_t(logits, device)).cpu()
    np.testing.assert_allclose(out, expected, rtol=1e-8)


def test_discrete_regression_expectation_of_two_hot_target_is_the_target():
    n = 11
    target = np.array([-4.75, -1.0, 0.0, 0.3, 4.99])
    logits = np.log(np.maximum(_np_two_hot(n, target), 1e-300))
    loss = losses.DiscreteRegressionLoss(inverse_after_mean=True)
    np.testing.assert_allclose(loss.calc_expectation(torch.tensor(logits)).numpy(), target)


def _np_expected_two_hot_of_cauchy(x):
    """E[hat_i(clip(X, x_0, x_-1))] for a standard Cauchy X by quadrature:
    hat_i is 1 at node x_i, 0 at its neighbours, linear between."""
    import scipy.integrate

    n = len(x)
    p = np.zeros(n)
    # the tails in closed form, accurate far out (older SciPy's cauchy.cdf
    # computes 1/2 + atan(x)/pi there and loses every digit)
    p[0] += np.arctan(-1.0 / x[0]) / np.pi if x[0] < 0 else scipy.stats.cauchy.cdf(x[0])
    p[-1] += np.arctan(1.0 / x[-1]) / np.pi if x[-1] > 0 else scipy.stats.cauchy.sf(x[-1])
    for i in range(n - 1):
        a, b = x[i], x[i + 1]

        def up(y, a=a, b=b):
            return (y - a) / (b - a) * scipy.stats.cauchy.pdf(y)

        def down(y, a=a, b=b):
            return (b - y) / (b - a) * scipy.stats.cauchy.pdf(y)

        p[i + 1] += scipy.integrate.quad(up, a, b, epsabs=0, epsrel=1e-12, limit=200)[0]
        p[i] += scipy.integrate.quad(down, a, b, epsabs=0, epsrel=1e-12, limit=200)[0]
    return p


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_discrete_regression_initial_distribution_is_cauchy(name):
    n = 21
    bias = torch.zeros(n)
    losses.DiscreteRegressionLoss(TRANSFORMS[name]).initialize_bias(bias)
    p = torch.softmax(bias.double(), 0).numpy()
    x = _np_inverse(name, (np.arange(n) - (n - 1) // 2).astype(float))
    np.testing.assert_allclose(p, _np_expected_two_hot_of_cauchy(x), rtol=1e-5)


def test_discrete_regression_initial_distribution_far_tail_bins():
    # Log1pTransform(1): the outer nodes reach 5e21, where the bin
    # probabilities (~1e-44) are far below the resolution of atan near
    # pi / 2; they must stay positive (a -inf bias makes the loss NaN) and
    # accurate.
    n = 101
    transform = Log1pTransform(1.0)
    bias = torch.zeros(n, dtype=torch.float64)
    losses.DiscreteRegressionLoss(transform).initialize_bias(bias)
    v = (np.arange(n) - (n - 1) // 2).astype(float)
    x = np.sign(v) * np.expm1(np.abs(v))
    assert torch.isfinite(bias).all()
    expected = _np_expected_two_hot_of_cauchy(x)
    np.testing.assert_allclose(torch.softmax(bias, 0).numpy(), expected, rtol=1e-7)
    target = torch.tensor([float(x[-1]), 0.0], dtype=torch.float64)
    logits = bias.expand(2, n)
    assert torch.isfinite(losses.DiscreteRegressionLoss(transform)(logits, target)).all()


@pytest.mark.parametrize(
    "cls", [losses.DiscreteRegressionLoss, losses.OrderedDiscreteRegressionLoss]
)
@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_discrete_regression_nan_target_gives_nan_loss(device, cls, name):
    # A NaN target (or an infinite one, which SqrtLinearTransform maps to
    # NaN) has a NaN loss; it must not become an out-of-range bin index.
    n = 5
    logits = torch.tensor(np.random.RandomState(6).standard_normal((3, n)), device=device)
    target = torch.tensor([math.nan, 1.25, math.inf if name != "identity" else math.nan])
    out = cls(TRANSFORMS[name])(logits, target.to(device)).cpu()
    assert torch.isnan(out[[0, 2]]).all()
    q = _np_split(n, name, np.array([1.25]))
    lg = logits[1:2].cpu().numpy()
    if cls is losses.DiscreteRegressionLoss:
        expected = -(q * _np_log_softmax(lg)).sum(-1) - _np_entropy(q)
    else:
        ge = _np_ordered_target(q)
        expected = (_np_bce_with_logits(lg, ge) - _np_binary_entropy(ge)).sum(-1)
    np.testing.assert_allclose(out[1:2].numpy(), expected, rtol=1e-9)


def _np_ordered_target(p):
    """P(y >= v_i) of the two-hot target p."""
    return np.minimum(np.flip(np.cumsum(np.flip(p, -1), -1), -1), 1.0)


def _np_bce_with_logits(x, q):
    return np.maximum(x, 0) - x * q + np.log1p(np.exp(-np.abs(x)))


def _np_binary_entropy(q):
    return _np_entropy(q[..., None]) + _np_entropy(1 - q[..., None])


@given(
    n=st.integers(2, 9),
    name=st.sampled_from(list(TRANSFORMS)),
    inverse_after_mean=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_ordered_discrete_regression_loss_is_binary_kl(n, name, inverse_after_mean, seed):
    rng = np.random.RandomState(seed)
    logits = 2 * rng.standard_normal((6, n))
    target = rng.uniform(-n, n, 6) * (20 if name != "identity" else 1)
    loss = losses.OrderedDiscreteRegressionLoss(TRANSFORMS[name], inverse_after_mean)
    out = loss(torch.tensor(logits), torch.tensor(target))
    q = _np_ordered_target(_np_split(n, name, target, inverse_after_mean))
    expected = (_np_bce_with_logits(logits, q) - _np_binary_entropy(q)).sum(-1)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", list(TRANSFORMS))
@pytest.mark.parametrize("inverse_after_mean", [False, True])
def test_ordered_discrete_regression_expectation(device, name, inverse_after_mean):
    # P_i = sigmoid(logits_i) made non-increasing by a running minimum, bin
    # probabilities P_i - P_{i+1}, the first logit included (mass 1 - P_0
    # counts as the value 0).
    rng = np.random.RandomState(4)
    n = 7
    logits = 3 * rng.standard_normal((5, n))
    ge = 1 / (1 + np.exp(-logits))
    for i in range(1, n):  # running minimum, by a loop
        ge[:, i] = np.minimum(ge[:, i], ge[:, i - 1])
    p = ge - np.concatenate([ge[:, 1:], np.zeros((5, 1))], -1)
    v = (np.arange(n) - (n - 1) // 2).astype(float)
    if inverse_after_mean:
        expected = _np_inverse(name, (p * v).sum(-1))
    else:
        expected = (p * _np_inverse(name, v)).sum(-1)
    loss = losses.OrderedDiscreteRegressionLoss(TRANSFORMS[name], inverse_after_mean)
    out = loss.calc_expectation(_t(logits, device)).cpu()
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-9)


def test_ordered_discrete_regression_expectation_includes_the_first_logit():
    # All P_i = 0.5 except a larger P_3: monotone cumulative probabilities
    # cap P_3 at 0.5, and the first bin has 0.5 - 0.5 = 0; the total mass is
    # P_0 = 0.5, all of it on the last bin (value 2 for n = 5).
    logits = torch.tensor([[0.0, 0.0, 0.0, 5.0, 0.0]], dtype=torch.float64)
    out = losses.OrderedDiscreteRegressionLoss().calc_expectation(logits)
    np.testing.assert_allclose(out.numpy(), [0.5 * 2.0])
    very_negative = torch.full((1, 5), -50.0, dtype=torch.float64)
    out = losses.OrderedDiscreteRegressionLoss().calc_expectation(very_negative)
    np.testing.assert_allclose(out.numpy(), [0.0], atol=1e-20)


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_ordered_discrete_regression_initial_distribution_is_cauchy(name):
    n = 21
    bias = torch.zeros(n, dtype=torch.float64)
    losses.OrderedDiscreteRegressionLoss(TRANSFORMS[name]).initialize_bias(bias)
    x = _np_inverse(name, (np.arange(n) - (n - 1) // 2).astype(float))
    np.testing.assert_allclose(torch.sigmoid(bias).numpy(), scipy.stats.cauchy.sf(x), rtol=1e-6)


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_quantile_regression_loss(device, name):
    rng = np.random.RandomState(5)
    quantiles = rng.standard_normal((4, 5))
    target = 10 * rng.standard_normal((4, 3))
    loss = losses.QuantileRegressionLoss(TRANSFORMS[name], delta=0.5)
    out = loss(_t(quantiles, device), _t(target, device)).cpu()
    expected = _np_quantile_huber(quantiles, _np_transform(name, target), 0.5)
    np.testing.assert_allclose(out, expected, rtol=1e-9)
    for inverse_after_mean in (False, True):
        loss = losses.QuantileRegressionLoss(TRANSFORMS[name], inverse_after_mean)
        if inverse_after_mean:
            expected = _np_inverse(name, quantiles.mean(-1))
        else:
            expected = _np_inverse(name, quantiles).mean(-1)
        out = loss.calc_expectation(_t(quantiles, device)).cpu()
        np.testing.assert_allclose(out, expected, rtol=1e-8)
    bias = torch.zeros(8, dtype=torch.float64)
    loss.initialize_bias(bias)
    cauchy = scipy.stats.cauchy.ppf((np.arange(8) + 0.5) / 8)
    np.testing.assert_allclose(bias.numpy(), _np_transform(name, cauchy), rtol=1e-9)


def test_scalar_prediction_loss_is_abstract():
    with pytest.raises(TypeError):
        losses.ScalarPredictionLoss()
    with pytest.raises(TypeError, match="transform"):
        losses.SquareLoss(transform=lambda x: x)
    with pytest.raises(ValueError, match="target"):
        losses.DiscreteRegressionLoss()(torch.zeros(3, 5), torch.zeros(4))
    with pytest.raises(ValueError, match="logits"):
        losses.DiscreteRegressionLoss().calc_expectation(torch.zeros(3, 1))
    with pytest.raises(ValueError, match="delta"):
        losses.QuantileRegressionLoss(delta=-1.0)


# --------------------------------------------------------------------------
# MeanSquaredLoss


@pytest.mark.parametrize("batch_dims", [0, 1, 2, 3])
def test_mean_squared_loss(device, batch_dims):
    rng = np.random.RandomState(6)
    pred, target = rng.standard_normal((2, 2, 3, 4))
    loss = losses.MeanSquaredLoss(batch_dims=batch_dims)
    out = loss(_t(pred, device), _t(target, device)).cpu().numpy()
    sq = (pred - target) ** 2
    expected = sq.mean(axis=tuple(range(batch_dims, 3))) if batch_dims < 3 else sq
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    assert torch.equal(loss.forward(_t(pred, device), _t(target, device)).cpu(), torch.tensor(out))


def test_mean_squared_loss_bad_input():
    with pytest.raises(ValueError, match="batch_dims"):
        losses.MeanSquaredLoss(batch_dims=-1)
    with pytest.raises(ValueError, match="pred and target"):
        losses.MeanSquaredLoss()(torch.zeros(2, 3), torch.zeros(2, 4))


# --------------------------------------------------------------------------
# BipartiteMatchingLoss


def _brute_force_assignment(cost):
    n = cost.shape[0]
    return min(sum(cost[i, p[i]] for i in range(n)) for p in itertools.permutations(range(n)))


@given(
    B=st.integers(1, 4),
    N=st.integers(1, 6),
    reduction=st.sampled_from(["mean", "sum", "none"]),
    separate=st.booleans(),
    ties=st.booleans(),
    seed=st.integers(0, 10000),
)
def test_bipartite_matching_is_optimal(B, N, reduction, separate, ties, seed):
    rng = np.random.RandomState(seed)
    matching_cost = rng.standard_normal((B, N, N))
    if ties:
        matching_cost = np.round(matching_cost)
    cost = rng.standard_normal((B, N, N)) if separate else matching_cost
    loss_fn = losses.BipartiteMatchingLoss(reduction=reduction)
    loss, matching = loss_fn(torch.tensor(matching_cost), torch.tensor(cost) if separate else None)
    assert matching.dtype == torch.int64 and matching.shape == (B, N)
    matching = matching.numpy()
    for b in range(B):
        assert sorted(matching[b]) == list(range(N))  # a permutation
        chosen = matching_cost[b, np.arange(N), matching[b]].sum()
        assert chosen == pytest.approx(_brute_force_assignment(matching_cost[b]), abs=1e-9)
    per_pair = cost[np.arange(B)[:, None], np.arange(N)[None, :], matching]
    expected = {"mean": per_pair.mean(-1), "sum": per_pair.sum(-1), "none": per_pair}[reduction]
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-12)


def test_bipartite_matching_gradient_and_device(device):
    matching_cost = torch.tensor(
        [[[0.0, 5.0], [5.0, 0.0]], [[9.0, 1.0], [1.0, 9.0]]], device=device
    )
    cost = torch.arange(8.0, device=device).reshape(2, 2, 2).requires_grad_()
    loss, matching = losses.BipartiteMatchingLoss("sum").forward(matching_cost, cost)
    assert matching.device.type == device.type
    assert matching.tolist() == [[0, 1], [1, 0]]
    assert loss.tolist() == [0.0 + 3.0, 5.0 + 6.0]
    loss.sum().backward()
    assert cost.grad.tolist() == [[[1, 0], [0, 1]], [[0, 1], [1, 0]]]


def test_bipartite_matching_bad_input():
    with pytest.raises(ValueError, match="reduction"):
        losses.BipartiteMatchingLoss(reduction="max")
    loss_fn = losses.BipartiteMatchingLoss()
    with pytest.raises(ValueError, match="matching_cost_mat"):
        loss_fn(torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="cost_mat"):
        loss_fn(torch.zeros(2, 3, 3), torch.zeros(2, 2, 2))
    with pytest.raises(ValueError, match="finite"):
        loss_fn(torch.full((1, 2, 2), float("nan")))


# --------------------------------------------------------------------------
# AsymmetricSimSiamLoss


def test_simsiam_loss_with_identity_nets_is_one_minus_cosine(device):
    rng = np.random.RandomState(7)
    x, y = rng.standard_normal((2, 3, 4, 5))
    loss_fn = losses.AsymmetricSimSiamLoss(proj_net=nn.Identity(), pred_net=nn.Identity())
    out = loss_fn(_t(x, device), _t(y, device)).cpu().numpy()
    cos = (x * y).sum(-1) / np.linalg.norm(x, axis=-1) / np.linalg.norm(y, axis=-1)
    np.testing.assert_allclose(out, 1 - cos, rtol=1e-10)
    assert out.shape == (3, 4)


def test_simsiam_default_networks_and_gradients(device):
    torch.manual_seed(0)
    loss_fn = losses.AsymmetricSimSiamLoss(
        input_size=6, proj_hidden_size=16, pred_hidden_size=8, output_size=10, lr=0.1
    ).to(device)
    assert loss_fn.lr == 0.1
    pred = torch.randn(4, 3, 2, 3, device=device, requires_grad=True)
    target = torch.randn(4, 3, 2, 3, device=device, requires_grad=True)
    loss = loss_fn(pred, target)
    assert loss.shape == (4, 3)
    # Independently: 1 - cosine of the sub-networks' outputs.
    with torch.no_grad():
        p = loss_fn._pred_net(loss_fn._proj_net(pred.reshape(12, 6)))
        z = loss_fn._proj_net(target.reshape(12, 6))
    p, z = p.cpu().double().numpy(), z.cpu().double().numpy()
    cos = (p * z).sum(-1) / np.linalg.norm(p, axis=-1) / np.linalg.norm(z, axis=-1)
    np.testing.assert_allclose(loss.detach().cpu().reshape(-1), 1 - cos, rtol=1e-4, atol=1e-6)
    loss.sum().backward()
    assert pred.grad is not None and target.grad is None  # asymmetric
    linears = [m for m in loss_fn.modules() if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears] == [16, 16, 10, 8, 10]
    assert not isinstance(list(loss_fn._proj_net)[-1], nn.BatchNorm1d)


def test_simsiam_options(device):
    torch.manual_seed(1)
    loss_fn = losses.AsymmetricSimSiamLoss(
        input_size=4, output_size=6, proj_last_use_bn=True, fixed_weight_norm=True
    ).to(device)
    assert isinstance(list(loss_fn._proj_net)[-1], nn.BatchNorm1d)
    linears = [m for m in loss_fn.modules() if isinstance(m, nn.Linear)]
    norms = [m.weight.norm().item() for m in linears]
    opt = torch.optim.SGD(loss_fn.parameters(), lr=1.0)
    for _ in range(3):
        opt.zero_grad()
        loss_fn(
            torch.randn(8, 2, 4, device=device), torch.randn(8, 2, 4, device=device)
        ).mean().backward()
        opt.step()
    np.testing.assert_allclose([m.weight.norm().item() for m in linears], norms, rtol=1e-5)


def test_simsiam_accepts_alf_networks_and_writes_summaries(tmp_path):
    class AlfStyle(nn.Module):
        def forward(self, x):
            return x * 2, ()

    loss_fn = losses.AsymmetricSimSiamLoss(proj_net=AlfStyle(), pred_net=AlfStyle(), name="ssl")
    written = []

    class Writer:
        def add_scalar(self, tag, value, global_step):
            written.append(tag)

    alf.summary.set_default_writer(Writer())
    try:
        loss = loss_fn(torch.ones(2, 2, 3), torch.ones(2, 2, 3))
    finally:
        alf.summary.set_default_writer(None)
    assert torch.allclose(loss, torch.zeros(2, 2), atol=1e-6)
    assert "ssl/loss" in written


def test_simsiam_bad_input():
    with pytest.raises(ValueError, match="input_size"):
        losses.AsymmetricSimSiamLoss()
    with pytest.raises(ValueError, match="eps"):
        losses.AsymmetricSimSiamLoss(input_size=3, eps=0.0)
    loss_fn = losses.AsymmetricSimSiamLoss(proj_net=nn.Identity(), pred_net=nn.Identity())
    with pytest.raises(ValueError, match="pred and target"):
        loss_fn(torch.zeros(2, 3, 4), torch.zeros(2, 3, 5))


# --------------------------------------------------------------------------
# iqn_huber_loss


def _np_iqn_loop(value, target, next_delta_tau, tau, sum_over_quantiles, delta):
    """The IQN quantile Huber loss by explicit loops over the pairs."""
    batch = value.shape[:-1]
    out = np.zeros(batch)
    for idx in np.ndindex(*batch):
        n, m = value.shape[-1], target.shape[-1]
        per_quantile = []
        for i in range(n):
            terms = []
            for j in range(m):
                u = target[idx + (j,)] - value[idx + (i,)]
                huber = 0.5 * u * u if abs(u) <= delta else delta * (abs(u) - 0.5 * delta)
                terms.append(abs(tau[idx + (i,)] - (1.0 if u < 0 else 0.0)) * huber)
            if next_delta_tau is None:
                per_quantile.append(np.mean(terms))
            else:
                per_quantile.append(np.dot(terms, next_delta_tau[idx]))
        out[idx] = np.sum(per_quantile) if sum_over_quantiles else np.mean(per_quantile)
    return out


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("sum_over_quantiles", [False, True])
@pytest.mark.parametrize("delta", [1.0, 0.3])
def test_iqn_huber_loss_matches_loop(device, weighted, sum_over_quantiles, delta):
    rng = np.random.RandomState(11)
    value = rng.standard_normal((3, 2, 5))
    target = rng.standard_normal((3, 2, 4)) * 2
    tau = rng.uniform(0, 1, (3, 2, 5))
    w = rng.dirichlet(np.ones(4), size=(3, 2)) if weighted else None
    got = losses.iqn_huber_loss(
        _t(value, device),
        _t(target, device),
        None if w is None else _t(w, device),
        _t(tau, device),
        sum_over_quantiles=sum_over_quantiles,
        delta=delta,
    )
    expected = _np_iqn_loop(value, target, w, tau, sum_over_quantiles, delta)
    assert got.shape == (3, 2)
    np.testing.assert_allclose(got.cpu().numpy(), expected, rtol=1e-10)


def test_iqn_huber_loss_gradient_and_errors():
    # the quantile weight is a constant: d/dvalue of |tau - 1{u<0}| * u^2/2
    value = torch.tensor([[0.0]], dtype=torch.float64, requires_grad=True)
    target = torch.tensor([[0.5]], dtype=torch.float64)
    tau = torch.tensor([[0.25]], dtype=torch.float64)
    (g,) = torch.autograd.grad(losses.iqn_huber_loss(value, target, None, tau).sum(), value)
    np.testing.assert_allclose(g.numpy(), [[-0.25 * 0.5]])
    with pytest.raises(ValueError, match="delta"):
        losses.iqn_huber_loss(value, target, None, tau, delta=0.0)
    with pytest.raises(ValueError, match="target"):
        losses.iqn_huber_loss(value, target[0], None, tau)
    with pytest.raises(ValueError, match="tau"):
        losses.iqn_huber_loss(value, target, None, torch.zeros(3, 2))
    with pytest.raises(ValueError, match="next_delta_tau"):
        losses.iqn_huber_loss(value, target, torch.ones(2), tau)


def test_public_names_report_the_losses_module():
    import inspect
    import pickle

    from alf.utils import losses

    for name in losses.__all__:
        obj = getattr(losses, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__module__ == "alf.utils.losses", name
    data = pickle.dumps([losses.SquareLoss, losses.element_wise_huber_loss])
    assert b"_losses_" not in data
    assert pickle.loads(data) == [losses.SquareLoss, losses.element_wise_huber_loss]
