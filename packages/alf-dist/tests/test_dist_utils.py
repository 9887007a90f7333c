"""Functions of alf.utils.dist_utils: specs and params round trips, entropy,
sampling, modes, default entropy targets and the OU process."""

import inspect
import math
import pickle

import numpy as np
import pytest
import torch
import torch.distributions as td
from scipy import integrate, stats

from alf.tensor_specs import BoundedTensorSpec, TensorSpec
from alf.utils import dist_utils as du
from alf.utils.distributions import NormalITS, TruncatedDistribution, TruncatedNormal

F64 = torch.float64
B = 4


def _nested_distributions():
    g = torch.Generator().manual_seed(0)

    def r(*shape):
        return torch.randn(*shape, generator=g, dtype=F64)

    return {
        "normal": td.Normal(r(B), r(B).exp()),
        "squashed": (
            td.TransformedDistribution(
                du.DiagMultivariateNormal(r(B, 2), r(B, 2).exp()),
                [du.StableTanh(), du.AffineTransform(1.0, 2.0)],
            ),
            td.Categorical(probs=torch.softmax(r(B, 3), -1)),
            td.Categorical(logits=r(B, 5)),
        ),
        "tensor": r(B, 3),
        "truncated": td.Independent(TruncatedNormal(r(B, 2), r(B, 2).exp(), -1.0, 1.0), 1),
        "truncated_its": TruncatedDistribution(r(B), r(B).exp(), -2.0, 1.0, its=NormalITS),
        "beta": du.DiagMultivariateBeta(r(B, 2).exp(), r(B, 2).exp()),
        "gumbel": du.OneHotCategoricalGumbelSoftmax(hard_sample=False, tau=0.7, logits=r(B, 3)),
        "straight": du.OneHotCategoricalStraightThrough(probs=torch.softmax(r(B, 3), -1)),
        "softclip": td.TransformedDistribution(
            td.Normal(r(B), r(B).exp()), [du.SoftclipTF(-1.0, 2.0), du.Softclip(-0.5, 1.5)]
        ),
        "cauchy": du.DiagMultivariateCauchy(r(B, 2), r(B, 2).exp()),
        "affine": du.AffineTransformedDistribution(du.StableCauchy(r(B), r(B).exp()), 1.0, -2.0),
        "softsign": td.TransformedDistribution(
            td.Normal(r(B), r(B).exp()),
            [du.Softsign(), du.Softlower(-0.5), du.Softupper(3.0, 0.5), du.ExpTransform()],
        ),
    }


def test_nested_params_round_trip_gives_equal_log_prob():
    dists = _nested_distributions()
    params = du.distributions_to_params(dists)
    assert set(params["normal"]) == {"loc", "scale"}
    assert set(params["squashed"][1]) == {"probs"} and set(params["squashed"][2]) == {"logits"}
    assert params["tensor"] is dists["tensor"]
    spec = du.extract_spec(dists)
    param_spec = du.to_distribution_param_spec(spec)
    assert param_spec["normal"] == {"loc": TensorSpec((), F64), "scale": TensorSpec((), F64)}
    assert param_spec["tensor"] == TensorSpec((3,), F64)
    rebuilt = du.params_to_distributions(params, spec)
    torch.manual_seed(1)
    samples = du.sample_action_distribution({k: v for k, v in dists.items() if k != "tensor"})
    for key, dist in dists.items():
        if key == "tensor":
            assert rebuilt[key] is dist
            continue
        pairs = (
            zip(dist, rebuilt[key], samples[key])
            if key == "squashed"
            else [(dist, rebuilt[key], samples[key])]
        )
        for original, copy, x in pairs:
            assert type(copy) is type(original)
            np.testing.assert_allclose(
                copy.log_prob(x).detach().numpy(), original.log_prob(x).detach().numpy(), rtol=1e-10
            )
    # transforms are rebuilt fresh (no shared cache) and the spec pickles
    assert rebuilt["squashed"][0].transforms[0] is not dists["squashed"][0].transforms[0]
    pickle.loads(pickle.dumps(spec))


def test_distribution_spec_builds_other_batch_sizes():
    dist = td.TransformedDistribution(
        du.DiagMultivariateNormal(torch.zeros(B, 2), torch.ones(B, 2)), [du.StableTanh()]
    )
    spec = du.DistributionSpec.from_distribution(dist, from_dim=1)
    # ALF's nested layout for a transformed distribution
    assert spec.input_params_spec == {
        "params_": {"loc": TensorSpec((2,)), "scale": TensorSpec((2,))},
        "transforms_params_": [{}],
    }
    new = spec.build_distribution(
        {"params_": {"loc": torch.zeros(7, 2), "scale": torch.ones(7, 2)}, "transforms_params_": [{}]}
    )
    assert new.batch_shape == (7,) and new.event_shape == (2,)
    with pytest.raises(ValueError, match="input_params"):
        spec.build_distribution({"params_": {"loc": torch.zeros(7, 2)}, "transforms_params_": [{}]})
    with pytest.raises(TypeError, match="builder"):
        du.DistributionSpec(3, {})


def test_conversion_errors_name_the_argument():
    dists = {"a": td.Normal(torch.zeros(2), torch.ones(2)), "b": torch.ones(2)}
    spec = du.extract_spec(dists)
    with pytest.raises(ValueError, match="nests"):
        du.params_to_distributions({"a": {"loc": torch.zeros(2), "scale": torch.ones(2)}}, spec)
    with pytest.raises(ValueError, match="nest_spec"):
        du.params_to_distributions([torch.ones(1)], [3])
    with pytest.raises(ValueError, match="nests"):
        du.extract_spec({"a": 3})
    with pytest.raises(ValueError, match="nests"):
        du.distributions_to_params([1.5])
    with pytest.raises(ValueError, match="nests"):
        du.to_distribution_param_spec({"a": 1})
    with pytest.raises(ValueError, match="dist"):
        du.extract_distribution_parameters(td.Gamma(torch.ones(1), torch.ones(1)))


def test_compute_entropy_and_log_probability():
    scales = [torch.tensor([0.5, 2.0], dtype=F64), torch.tensor([1.0, 3.0], dtype=F64)]
    dists = (
        td.Normal(torch.zeros(2, dtype=F64), scales[0]),
        [td.Normal(torch.ones(2, dtype=F64), scales[1])],
    )
    expected = sum(stats.norm(scale=s.numpy()).entropy() for s in scales)
    np.testing.assert_allclose(du.compute_entropy(dists).numpy(), expected)
    actions = (torch.tensor([0.1, -0.2], dtype=F64), [torch.tensor([2.0, 0.0], dtype=F64)])
    lp = stats.norm(0, scales[0].numpy()).logpdf(actions[0].numpy()) + stats.norm(
        1, scales[1].numpy()
    ).logpdf(actions[1][0].numpy())
    np.testing.assert_allclose(du.compute_log_probability(dists, actions).numpy(), lp)
    with pytest.raises(ValueError, match="actions"):
        du.compute_log_probability(dists, (actions[0],))
    with pytest.raises(ValueError, match="distributions"):
        du.compute_entropy([torch.ones(1)])


def test_estimated_entropy_reparameterized_value_and_gradient():
    scale = torch.tensor([0.5, 2.0], requires_grad=True)
    dist = td.Normal(torch.zeros(2), scale)
    torch.manual_seed(0)
    entropy, for_grad = du.estimated_entropy(dist, num_samples=20000)
    np.testing.assert_allclose(
        entropy.detach().numpy(), stats.norm(scale=[0.5, 2.0]).entropy(), atol=0.02
    )
    for_grad.sum().backward()
    # d/ds 0.5 log(2 pi e s^2) = 1 / s
    np.testing.assert_allclose(scale.grad.numpy(), [2.0, 0.5], rtol=0.03)


def test_estimated_entropy_surrogate_gradient_for_discrete():
    logits = torch.tensor([[0.5, -1.0, 0.2], [2.0, 0.0, 0.0]], requires_grad=True)
    torch.manual_seed(0)
    entropy, for_grad = du.estimated_entropy(td.Categorical(logits=logits), num_samples=40000)
    for_grad.sum().backward()
    p = torch.softmax(logits.detach(), -1)
    exact_entropy = -(p * p.log()).sum(-1)
    # d H / d logits_j = -p_j (log p_j + H)
    exact_grad = -p * (p.log() + exact_entropy.unsqueeze(-1))
    np.testing.assert_allclose(entropy.detach().numpy(), exact_entropy.numpy(), atol=0.02)
    np.testing.assert_allclose(logits.grad.numpy(), exact_grad.numpy(), atol=0.03)


def test_entropy_with_fallback_and_check_numerics():
    normal = td.Normal(torch.zeros(3), torch.ones(3))
    squashed = td.TransformedDistribution(
        td.Normal(torch.zeros(3), torch.ones(3)), [du.StableTanh()]
    )
    torch.manual_seed(0)
    total, total_grad = du.entropy_with_fallback({"n": normal, "s": squashed})
    torch.manual_seed(0)  # the same sample as for total
    parts, _ = du.entropy_with_fallback({"n": normal, "s": squashed}, return_sum=False)
    np.testing.assert_allclose(parts["n"].numpy(), normal.entropy().numpy())
    assert parts["s"].shape == (3,) and total.shape == (3,) and total_grad.shape == (3,)
    np.testing.assert_allclose(total.numpy(), (parts["n"] + parts["s"]).numpy(), rtol=1e-6)
    with pytest.raises(FloatingPointError):
        du.estimated_entropy(
            td.Normal(torch.tensor([0.0]), torch.tensor([1e-45])), check_numerics=True
        )
    with pytest.raises(ValueError, match="num_samples"):
        du.estimated_entropy(normal, num_samples=0)


def _tanh_normal_entropy(loc, scale):
    """H(tanh(X)), X ~ N(loc, scale^2), by quadrature: H(X) + E[log(1 - tanh(X)^2)],
    with log(1 - tanh(x)^2) = 2 (log 2 - x - log1p(exp(-2x)))."""
    log_jac = lambda x: 2 * (math.log(2) - x - np.logaddexp(0, -2 * x))  # noqa: E731
    mean_log_jac = integrate.quad(
        lambda x: stats.norm(loc, scale).pdf(x) * log_jac(x), loc - 12 * scale, loc + 12 * scale
    )[0]
    return stats.norm(loc, scale).entropy() + mean_log_jac


def test_squashed_entropy_matches_quadrature():
    # entropy_with_fallback has no closed form for a tanh-squashed normal: it returns
    # -log p(x) of one reparameterized sample per distribution, an unbiased estimate.
    # Averaged over n = 20000 independent copies, it must agree with the entropy from
    # quadrature within 5 standard errors (the sample std of -log p over sqrt(n)).
    n = 20000
    params = [(0.0, 1.0), (0.5, 0.3), (-1.0, 2.0)]
    loc = torch.tensor([p[0] for p in params], dtype=F64).expand(n, 3)
    scale = torch.tensor([p[1] for p in params], dtype=F64).expand(n, 3)
    squashed = td.TransformedDistribution(td.Normal(loc, scale), [du.StableTanh()])
    torch.manual_seed(0)
    estimates, _ = du.entropy_with_fallback(squashed, return_sum=False)
    assert estimates.shape == (n, 3)
    mean = estimates.mean(0).numpy()
    stderr = estimates.std(0).numpy() / math.sqrt(n)
    exact = np.array([_tanh_normal_entropy(m, s) for m, s in params])
    assert (np.abs(mean - exact) < 5 * stderr).all(), (mean, exact, stderr)
    # estimated_entropy averages its own samples the same way
    torch.manual_seed(1)
    one = td.TransformedDistribution(
        td.Normal(torch.tensor(0.5, dtype=F64), 0.3), [du.StableTanh()]
    )
    value, _ = du.estimated_entropy(one, num_samples=n)
    np.testing.assert_allclose(value.item(), exact[1], atol=5 * stderr[1])


def test_sampling_with_log_prob():
    torch.manual_seed(0)
    loc = torch.zeros(3, requires_grad=True)
    dists = [
        td.Normal(loc, torch.ones(3)),
        td.TransformedDistribution(td.Normal(loc, torch.ones(3)), [du.StableTanh()]),
    ]

    def expected_log_prob(actions):
        # N(0, 1) density of the plain action plus the change of variables
        # of the squashed one: log N(atanh(a)) - log(1 - a^2)
        plain, squashed = (a.detach().double().numpy() for a in actions)
        pre = np.arctanh(squashed)
        return stats.norm.logpdf(plain) + stats.norm.logpdf(pre) - np.log1p(-(squashed**2))

    actions, log_prob = du.rsample_action_distribution(dists, return_log_prob=True)
    np.testing.assert_allclose(log_prob.detach().numpy(), expected_log_prob(actions), rtol=1e-4)
    actions[0].sum().backward()
    assert loc.grad is not None
    sampled, lp = du.sample_action_distribution(dists, return_log_prob=True)
    assert not sampled[0].requires_grad and lp.shape == (3,)
    np.testing.assert_allclose(lp.detach().numpy(), expected_log_prob(sampled), rtol=1e-4)
    with pytest.raises(ValueError, match="nested_distributions"):
        du.rsample_action_distribution(td.Categorical(logits=torch.zeros(2, 3)))


def test_epsilon_greedy_frequencies():
    probs = torch.tensor([0.2, 0.5, 0.3])
    dist = td.Categorical(probs=probs.expand(40000, 3))
    torch.manual_seed(0)
    eps = 0.3
    actions = du.epsilon_greedy_sample(dist, eps)
    freq = torch.bincount(actions, minlength=3).float() / actions.numel()
    expected = eps * probs + (1 - eps) * torch.tensor([0.0, 1.0, 0.0])
    # 4 binomial standard deviations of 40000 draws is below 0.01
    np.testing.assert_allclose(freq.numpy(), expected.numpy(), atol=0.01)
    assert (du.epsilon_greedy_sample(dist, 0.0) == 1).all()
    all_sampled = du.epsilon_greedy_sample(dist, 1.0)
    assert abs((all_sampled == 1).float().mean().item() - 0.5) < 0.01
    normal = td.Normal(torch.full((20000, 2), 3.0), torch.ones(20000, 2))
    greedy = du.epsilon_greedy_sample({"n": normal}, 0.25)["n"]
    exact = (greedy == 3.0).all(-1).float().mean().item()
    assert abs(exact - 0.75) < 0.015
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="eps"):
            du.epsilon_greedy_sample(dist, bad)


def test_modes():
    logits = torch.tensor([[0.1, 2.0, -1.0]])
    assert du.get_mode(td.Categorical(logits=logits)).tolist() == [1]
    assert du.get_mode(td.OneHotCategorical(logits=logits)).tolist() == [[0.0, 1.0, 0.0]]
    loc = torch.tensor([[0.3, -0.2]], requires_grad=True)
    squashed = td.TransformedDistribution(
        du.DiagMultivariateNormal(loc, torch.ones(1, 2)),
        [du.StableTanh(), du.AffineTransform(1.0, 2.0)],
    )
    expected = 1 + 2 * np.tanh([[0.3, -0.2]])
    np.testing.assert_allclose(du.get_mode(squashed).detach().numpy(), expected, rtol=1e-6)
    rmode = du.get_rmode(squashed)
    rmode.sum().backward()
    np.testing.assert_allclose(loc.grad.numpy(), 2 / np.cosh([[0.3, -0.2]]) ** 2, rtol=1e-5)
    np.testing.assert_allclose(
        du.get_mode(du.StableCauchy(torch.tensor([2.0]), torch.ones(1))).numpy(), [2.0]
    )
    np.testing.assert_allclose(
        du.get_mode(td.Beta(torch.tensor([3.0]), torch.tensor([2.0]))).numpy(), [2 / 3], rtol=1e-6
    )
    truncated = TruncatedNormal(torch.tensor([2.0]), torch.ones(1), -1.0, 1.0)
    np.testing.assert_allclose(du.get_rmode(truncated).numpy(), [1.0])
    st = du.OneHotCategoricalStraightThrough(logits=logits)
    assert du.get_rmode(st).tolist() == [[0.0, 1.0, 0.0]]
    with pytest.raises(NotImplementedError):
        du.get_mode(td.Gamma(torch.ones(1), torch.ones(1)))
    with pytest.raises(NotImplementedError):
        du.get_rmode(td.Categorical(logits=logits))


def test_get_base_dist():
    normal = td.Normal(torch.zeros(2, 3), torch.ones(2, 3))
    wrapped = td.TransformedDistribution(td.Independent(normal, 1), [du.StableTanh()])
    assert du.get_base_dist(wrapped) is normal
    assert du.get_base_dist(normal) is normal
    # a Categorical is returned as it is (ALF)
    cat = td.Categorical(logits=torch.zeros(3))
    assert du.get_base_dist(cat) is cat
    assert du.get_base_dist(td.Independent(cat, 0)) is cat
    with pytest.raises(NotImplementedError):
        du.get_base_dist(td.Gamma(torch.ones(3), torch.ones(3)))


@pytest.mark.parametrize("fraction", [0.8, 0.5, 1.0])
def test_default_max_entropy_of_narrow_ranges_stays_below_the_uniform_entropy(fraction):
    # widths 0.5 and 0.25: the uniform entropy log(0.5) + log(0.25) < 0 is the
    # largest possible; fraction * H would exceed it, H / fraction does not.
    narrow = BoundedTensorSpec((2,), minimum=[0.0, -0.25], maximum=[0.5, 0.0])
    h = math.log(0.5) + math.log(0.25)
    got = du.calc_default_max_entropy(narrow, fraction)
    np.testing.assert_allclose(got, h / fraction)
    assert got <= h


def test_default_entropy_targets_against_formulas():
    cont = BoundedTensorSpec((2,), minimum=[-1.0, 0.0], maximum=[1.0, 4.0])
    np.testing.assert_allclose(
        du.calc_default_target_entropy(cont, 0.1), math.log(0.2) + math.log(0.4)
    )
    np.testing.assert_allclose(
        du.calc_default_max_entropy(cont, 0.5), 0.5 * (math.log(2) + math.log(4))
    )
    np.testing.assert_allclose(du.calc_uniform_log_prob(cont), -(math.log(2) + math.log(4)))
    disc = BoundedTensorSpec((), dtype=torch.int64, minimum=0, maximum=4)
    p = 0.1
    # peak 1 - p, the other 4 values share p
    probs = np.array([1 - p] + [p / 4] * 4)
    np.testing.assert_allclose(
        du.calc_default_target_entropy(disc, p), -(probs * np.log(probs)).sum()
    )
    np.testing.assert_allclose(du.calc_default_max_entropy(disc), 0.8 * math.log(5))
    np.testing.assert_allclose(du.calc_uniform_log_prob(disc), -math.log(5))
    single = BoundedTensorSpec((2,), dtype=torch.int32, minimum=3, maximum=3)
    assert du.calc_default_target_entropy(single) == 0.0
    # quantized: h - log(bin width), clipped to [0, log(num_bins)]
    per_dim = [-1 - math.log(2 / 7), -1 - math.log(4 / 7)]  # the second is < 0
    np.testing.assert_allclose(
        du.calc_default_target_entropy_quantized(cont, 7), max(per_dim[0], 0) + max(per_dim[1], 0)
    )
    np.testing.assert_allclose(
        du.calc_default_target_entropy_quantized(cont, 3, ent_per_action_dim=5.0), 2 * math.log(3)
    )
    with pytest.raises(ValueError, match="spec"):
        du.calc_default_target_entropy(TensorSpec((2,)))
    with pytest.raises(ValueError, match="min_prob"):
        du.calc_default_target_entropy(cont, 1.5)
    with pytest.raises(ValueError, match="fraction"):
        du.calc_default_max_entropy(cont, 0.0)
    with pytest.raises(ValueError, match="num_bins"):
        du.calc_default_target_entropy_quantized(cont, 1)
    with pytest.raises(ValueError, match="spec"):
        du.calc_default_target_entropy_quantized(disc, 5)


def test_ou_process_statistics(device):
    damping, stddev = 0.2, 0.5
    process = du.OUProcess(torch.zeros(20000, device=device), damping=damping, stddev=stddev)
    samples = torch.stack([process() for _ in range(60)])
    assert samples.device.type == device.type
    x = samples[30:].cpu().double()
    stationary_var = stddev**2 / (1 - (1 - damping) ** 2)
    np.testing.assert_allclose(x.var().item(), stationary_var, rtol=0.03)
    lag1 = (x[1:] * x[:-1]).mean().item() / x.var().item()
    np.testing.assert_allclose(lag1, 1 - damping, atol=0.02)
    value = process()
    value.add_(100.0)  # the returned value is a copy
    assert process().abs().max() < 50
    with pytest.raises(ValueError, match="damping"):
        du.OUProcess(torch.zeros(2), damping=1.5)
    with pytest.raises(ValueError, match="stddev"):
        du.OUProcess(torch.zeros(2), stddev=-1.0)
    with pytest.raises(TypeError, match="initial_value"):
        du.OUProcess([0.0])


@pytest.mark.parametrize("multivariate", [False, True])
def test_beta_spec_has_the_batch_shape_of_both_concentrations(multivariate):
    # du.Beta keeps the tensors passed in; its parameters for a spec are
    # nevertheless batch_shape (+ event_shape) each, like td.Beta's
    c1 = torch.tensor([[0.5, 2.0], [3.0, 1.5], [1.0, 4.0]], dtype=F64)
    c0 = torch.tensor(2.0, dtype=F64) if not multivariate else torch.tensor([2.0, 0.7], dtype=F64)
    cls = du.DiagMultivariateBeta if multivariate else du.Beta
    dist = cls(c1, c0)
    spec = du.DistributionSpec.from_distribution(dist, from_dim=1)
    assert spec.input_params_spec == {
        "concentration1": TensorSpec((2,), F64),
        "concentration0": TensorSpec((2,), F64),
    }
    params = du.distributions_to_params(dist)
    assert params["concentration0"].shape == (3, 2)
    # rows of a replay buffer: pick entries 2, 0, 2, 1 of the batch
    rows = torch.tensor([2, 0, 2, 1])
    rebuilt = spec.build_distribution({k: v[rows] for k, v in params.items()})
    x = torch.tensor([[0.3, 0.6], [0.2, 0.9], [0.5, 0.5], [0.7, 0.1]], dtype=F64)
    expected = stats.beta(
        c1.numpy()[rows.numpy()], np.broadcast_to(c0.numpy(), (3, 2))[rows.numpy()]
    ).logpdf(x.numpy())
    if multivariate:
        expected = expected.sum(-1)
    np.testing.assert_allclose(rebuilt.log_prob(x).numpy(), expected, rtol=1e-10)


def test_truncated_distributions_are_reexported_as_in_alf():
    # ALF's projection networks use dist_utils.TruncatedNormal as a default
    from alf.utils import distributions

    assert du.TruncatedNormal is distributions.TruncatedNormal
    assert du.TruncatedCauchy is distributions.TruncatedCauchy
    assert du.TruncatedT2 is distributions.TruncatedT2
    assert du.TruncatedDistribution is distributions.TruncatedDistribution
    for name in ("TruncatedNormal", "TruncatedCauchy", "TruncatedT2", "TruncatedDistribution"):
        assert name in du.__all__


def test_diag_multivariate_normal_accepts_a_zero_scale():
    # validation off (ALF): a zero-initialised network's scale builds
    loc = torch.tensor([[0.5, -1.0]])
    dist = du.DiagMultivariateNormal(loc, torch.zeros(1, 2))
    assert torch.equal(dist.mean, loc) and torch.equal(dist.stddev, torch.zeros(1, 2))
    assert dist.batch_shape == (1,) and dist.event_shape == (2,)
    assert torch.equal(du.get_mode(dist), loc)
    # the same scale is refused by torch's validated Normal
    with pytest.raises(ValueError):
        td.Normal(loc, torch.zeros(1, 2), validate_args=True)
    # positive scales still give the diagonal normal's log-probability
    x = torch.tensor([[0.0, 0.0]], dtype=torch.float64)
    d = du.DiagMultivariateNormal(torch.zeros(1, 2, dtype=torch.float64), torch.full((1, 2), 2.0, dtype=torch.float64))
    expected = 2 * (-math.log(2.0) - 0.5 * math.log(2 * math.pi))
    np.testing.assert_allclose(d.log_prob(x).numpy(), [expected])


def test_transformed_distribution_params_in_alf_layout():
    # {"params_": base params, "transforms_params_": one dict per transform};
    # an affine transform's tensor loc/scale are parameters (e.g. batched
    # network outputs), float ones stay in the builder.
    loc, scale = torch.randn(B, 2, dtype=F64), torch.rand(B, 2, dtype=F64) + 0.5
    a_loc, a_scale = torch.randn(B, 2, dtype=F64), torch.rand(B, 2, dtype=F64) + 1.0
    dist = td.TransformedDistribution(
        du.DiagMultivariateNormal(loc, scale),
        [du.StableTanh(), du.AffineTransform(a_loc, a_scale, event_dim=1), du.AffineTransform(1.0, 2.0)],
    )
    params = du.extract_distribution_parameters(dist)
    assert set(params) == {"params_", "transforms_params_"}
    assert params["params_"]["loc"] is loc and params["params_"]["scale"] is scale
    assert len(params["transforms_params_"]) == 3
    assert params["transforms_params_"][0] == {} and params["transforms_params_"][2] == {}
    assert params["transforms_params_"][1]["loc"] is a_loc
    assert params["transforms_params_"][1]["scale"] is a_scale
    spec = du.DistributionSpec.from_distribution(dist, from_dim=1)
    # a nest built the ALF way (new values) builds the distribution they give
    new_a_loc = torch.zeros(3, 2, dtype=F64)
    built = spec.build_distribution(
        {
            "params_": {"loc": torch.zeros(3, 2, dtype=F64), "scale": torch.ones(3, 2, dtype=F64)},
            "transforms_params_": [{}, {"loc": new_a_loc, "scale": torch.ones(3, 2, dtype=F64)}, {}],
        }
    )
    x = torch.tensor([[0.3, -0.2]], dtype=F64)  # base value
    y = 1.0 + 2.0 * torch.tanh(x)  # through tanh, identity affine, 1 + 2 y
    lp = built.log_prob(y.expand(3, 2))
    # log N(x; 0, 1) - log|d/dx tanh| - log 2, summed over the 2 dims
    expected = (
        -0.5 * x**2 - 0.5 * math.log(2 * math.pi) - torch.log1p(-torch.tanh(x) ** 2) - math.log(2.0)
    ).sum()
    np.testing.assert_allclose(lp.numpy(), np.full(3, expected.item()), rtol=1e-10)
    with pytest.raises(ValueError, match="transforms_params_"):
        spec.builder(params_=params["params_"], transforms_params_=[{}])


def test_mixture_same_family_spec_and_params():
    logits = torch.randn(B, 3, dtype=F64)
    loc, scale = torch.randn(B, 3, dtype=F64), torch.rand(B, 3, dtype=F64) + 0.5
    mix = td.MixtureSameFamily(td.Categorical(logits=logits), td.Normal(loc, scale))
    params = du.distributions_to_params({"m": mix})
    torch.testing.assert_close(params["m"]["mixture"]["logits"], torch.log_softmax(logits, -1))
    assert params["m"]["components"]["loc"] is loc and params["m"]["components"]["scale"] is scale
    spec = du.extract_spec({"m": mix})
    assert du.to_distribution_param_spec(spec)["m"] == {
        "mixture": {"logits": TensorSpec((3,), F64)},
        "components": {"loc": TensorSpec((3,), F64), "scale": TensorSpec((3,), F64)},
    }
    rebuilt = du.params_to_distributions(params, spec)["m"]
    assert type(rebuilt) is td.MixtureSameFamily
    x = torch.randn(B, dtype=F64)
    # log sum_k softmax(logits)_k N(x; loc_k, scale_k), written out
    comp = -0.5 * ((x[:, None] - loc) / scale) ** 2 - torch.log(scale) - 0.5 * math.log(2 * math.pi)
    expected = torch.logsumexp(torch.log_softmax(logits, -1) + comp, -1)
    np.testing.assert_allclose(rebuilt.log_prob(x).numpy(), expected.numpy(), rtol=1e-10)
    pickle.loads(pickle.dumps(spec))


def test_public_classes_pickle_under_their_public_module():
    # The classes live in private helper modules but report the module that exports them,
    # so a pickle names the public import path (it still loads if the helpers move).
    import alf.utils.distributions as dists

    # dist_utils re-exports the truncated distributions as ALF's does: they
    # report alf.utils.distributions, where they are defined
    reexported = {"TruncatedNormal", "TruncatedCauchy", "TruncatedT2", "TruncatedDistribution"}
    for module in (du, dists):
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                home = dists if module is du and name in reexported else module
                assert obj.__module__ == home.__name__, name
    data = pickle.dumps([du.Beta, du.Softplus(0.5), dists.NormalITS, du.calc_uniform_log_prob])
    assert b"alf.utils.dist_utils" in data and b"alf.utils.distributions" in data
    assert b"_dist_" not in data
    beta, softplus, its, fn = pickle.loads(data)
    assert beta is du.Beta and its is dists.NormalITS and fn is du.calc_uniform_log_prob
    np.testing.assert_allclose(softplus(torch.zeros(1)).item(), 0.5 * math.log(2), rtol=1e-6)
