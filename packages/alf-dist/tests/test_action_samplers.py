"""Action samplers: empirical frequencies and Dirichlet moments against the
expected values (seeded; tolerances are about 4 standard errors)."""

import numpy as np
import pytest
import torch

from alf.tensor_specs import TensorSpec
from alf.utils.action_samplers import (
    CategoricalSeedSampler,
    EpsilonGreedySampler,
    MultinomialSampler,
)

PROBS = torch.tensor([0.1, 0.6, 0.25, 0.05])
N = 20000
N_SEED = 6000  # the seed sampler inverts Gamma cdfs by bisection: fewer draws


def _frequencies(actions, k=4):
    return (torch.bincount(actions.cpu(), minlength=k).double() / actions.numel()).numpy()


def test_multinomial_sampler_frequencies(device):
    torch.manual_seed(0)
    actions = MultinomialSampler()(PROBS.to(device).expand(N, 4))
    assert actions.shape == (N,) and actions.dtype == torch.int64
    np.testing.assert_allclose(_frequencies(actions), PROBS.numpy(), atol=0.015)


def test_epsilon_greedy_sampler_frequencies(device):
    torch.manual_seed(0)
    eps = 0.2
    actions = EpsilonGreedySampler(eps)(PROBS.to(device).expand(N, 4))
    expected = eps * PROBS.numpy() + (1 - eps) * np.eye(4)[1]
    np.testing.assert_allclose(_frequencies(actions), expected, atol=0.015)
    assert (EpsilonGreedySampler(0.0)(PROBS.expand(10, 4)) == 1).all()


def test_categorical_seed_sampler_is_dirichlet(device):
    torch.manual_seed(0)
    c = 2.0
    sampler = CategoricalSeedSampler(4, concentration=c)
    assert sampler.state_spec == TensorSpec((4,)) and sampler.input_tensor_spec == TensorSpec((4,))
    probs = PROBS.to(device).expand(N_SEED, 4)
    actions, state = sampler(probs, torch.zeros(N_SEED, 4, device=device))
    assert (state > 0).all() and (state < 1).all()
    tilde = sampler.dirichlet_probs(probs, state).cpu().double()
    np.testing.assert_allclose(tilde.sum(-1).numpy(), 1.0, rtol=1e-6)
    p = PROBS.double().numpy()
    # Dir(c p): mean p, variance p (1 - p) / (c + 1)
    np.testing.assert_allclose(tilde.mean(0).numpy(), p, atol=0.015)
    np.testing.assert_allclose(tilde.var(0).numpy(), p * (1 - p) / (c + 1), rtol=0.1)
    np.testing.assert_allclose(_frequencies(actions), p, atol=0.025)


@pytest.mark.parametrize("concentration", [0.05, 50.0])
def test_categorical_seed_sampler_temporal_consistency(concentration):
    torch.manual_seed(0)
    probs = PROBS.expand(N_SEED, 4)
    p2 = float((PROBS**2).sum())
    kept = CategoricalSeedSampler(4, new_noise_prob=0.0, concentration=concentration)
    first, state = kept(probs, torch.zeros(N_SEED, 4))
    second, state2 = kept(probs, state)
    assert torch.equal(state, state2)
    agreement = (first == second).float().mean().item()
    # with the noise kept, P(same action) = E[sum_i tilde_p_i^2]
    # = sum_i p_i (c p_i + 1) / (c + 1) for Dir(c p)
    expected = float((PROBS * (concentration * PROBS + 1)).sum()) / (concentration + 1)
    assert abs(agreement - expected) < 0.025
    fresh = CategoricalSeedSampler(4, new_noise_prob=1.0, concentration=concentration)
    a, s = fresh(probs, torch.zeros(N_SEED, 4))
    b, s2 = fresh(probs, s)
    assert not torch.equal(s, s2)
    # fresh noise each step: independent actions, P(same) = sum_i p_i^2
    assert abs((a == b).float().mean().item() - p2) < 0.025


def test_seed_sampler_handles_zero_probabilities():
    probs = torch.tensor([[0.0, 1.0, 0.0], [0.5, 0.0, 0.5]]).repeat(500, 1)
    sampler = CategoricalSeedSampler(3, concentration=0.5)
    actions, _ = sampler(probs, torch.zeros(1000, 3))
    assert (actions[0::2] == 1).all()
    assert (actions[1::2] != 1).all()


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: CategoricalSeedSampler(0), "num_classes"),
        (lambda: CategoricalSeedSampler(3, new_noise_prob=1.5), "new_noise_prob"),
        (lambda: CategoricalSeedSampler(3, concentration=0), "concentration"),
        (lambda: EpsilonGreedySampler(-0.1), "epsilon_greedy"),
    ],
)
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_inputs():
    with pytest.raises(ValueError, match="input"):
        MultinomialSampler()(torch.ones(4))
    with pytest.raises(ValueError, match="input"):
        EpsilonGreedySampler()(torch.ones(2, 3, 4))
    with pytest.raises(ValueError, match="state"):
        CategoricalSeedSampler(3)(torch.ones(2, 3) / 3, torch.zeros(2, 4))
    # checked before sampling, naming the argument and what was received
    with pytest.raises(TypeError, match="input must have a floating dtype; got torch.int64"):
        MultinomialSampler()(torch.ones(2, 3, dtype=torch.int64))
    with pytest.raises(TypeError, match="input must have a floating dtype"):
        EpsilonGreedySampler(0.5)(torch.ones(2, 3, dtype=torch.int64))
    with pytest.raises(TypeError, match="input must have a floating dtype"):
        CategoricalSeedSampler(3)(torch.ones(2, 3, dtype=torch.int64), torch.zeros(2, 3))
    with pytest.raises(TypeError, match="state must be a floating Tensor; got list"):
        CategoricalSeedSampler(3)(torch.ones(2, 3) / 3, [[0.0] * 3] * 2)
    with pytest.raises(TypeError, match="state must have a floating dtype; got torch.int64"):
        CategoricalSeedSampler(3)(torch.ones(2, 3) / 3, torch.zeros(2, 3, dtype=torch.int64))
