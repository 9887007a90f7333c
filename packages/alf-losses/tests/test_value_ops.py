"""alf.utils.value_ops against per-step float64 loops written here."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import alf.summary
from alf.data_structures import StepType
from alf.utils import value_ops

FIRST, MID, LAST = int(StepType.FIRST), int(StepType.MID), int(StepType.LAST)


# --------------------------------------------------------------------------
# Oracles: the reference algorithms, one step at a time, in float64, on
# time-major [T, B] (or [T, B, Q]) NumPy arrays.


def _expand(x, v):
    return x.reshape(x.shape + (1,) * (v.ndim - x.ndim))


def ref_discounted_return(r, v, step_types, d):
    r, d = _expand(r, v).astype(np.float64), _expand(d, v).astype(np.float64)
    last = _expand(step_types == LAST, v)
    v = v.astype(np.float64)
    ret = np.zeros_like(v)
    ret[-1] = v[-1]
    for t in range(v.shape[0] - 2, -1, -1):
        ret[t] = np.where(last[t], v[t], r[t + 1] + d[t + 1] * ret[t + 1])
    return ret[:-1]


def ref_gae(r, v, step_types, d, td_lambda):
    r, d = _expand(r, v).astype(np.float64), _expand(d, v).astype(np.float64)
    last = _expand(step_types == LAST, v)
    v = v.astype(np.float64)
    adv = np.zeros_like(v)
    for t in range(v.shape[0] - 2, -1, -1):
        delta = r[t + 1] + d[t + 1] * v[t + 1] - v[t]
        adv[t] = np.where(last[t], 0.0, delta + td_lambda * d[t + 1] * adv[t + 1])
    return adv[:-1]


def ref_one_step(r, v, step_types, d):
    r, d = _expand(r, v).astype(np.float64), _expand(d, v).astype(np.float64)
    last = _expand(step_types == LAST, v)
    v = v.astype(np.float64)
    out = np.zeros_like(v[:-1])
    for t in range(v.shape[0] - 1):
        out[t] = np.where(last[t], d[t] * v[t], r[t + 1] + d[t + 1] * v[t + 1])
    return out


def episodes(rng, T, B, end_prob, gamma, time_limit_prob=0.5):
    """Random ALF-style trajectories: LAST with probability ``end_prob``,
    FIRST right after a LAST; discount 0 at terminal LAST steps, 1 at
    time-limit LAST steps, ``gamma`` elsewhere."""
    ends = rng.random_sample((T, B)) < end_prob
    step_types = np.full((T, B), MID, np.int32)
    step_types[0] = FIRST
    step_types[1:][ends[:-1]] = FIRST
    step_types[ends] = LAST
    discounts = np.full((T, B), gamma, np.float32)
    time_limit = rng.random_sample((T, B)) < time_limit_prob
    discounts[ends & ~time_limit] = 0.0
    discounts[ends & time_limit] = 1.0
    rewards = rng.standard_normal((T, B)).astype(np.float32)
    return rewards, step_types, discounts


def _close(actual, expected, rtol=1e-5):
    actual = actual.detach().cpu().double().numpy()
    scale = max(1.0, np.abs(expected).max(initial=0.0))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=1e-6 * scale)


def _to(x, device, time_major):
    t = torch.as_tensor(x, device=device)
    return t if time_major or t.ndim == 1 else t.transpose(0, 1).contiguous()


# --------------------------------------------------------------------------
# Named semantic cases, worked by hand


def test_discounted_return_terminal_and_time_limit(device):
    # Episode 1: steps 0-2, terminal at 2 (discount 0). Episode 2: steps 3-4,
    # time limit at 4 (discount 1). Step 5 starts episode 3.
    step_types = torch.tensor([FIRST, MID, LAST, FIRST, LAST, FIRST], device=device)
    discounts = torch.tensor([1.0, 0.9, 0.0, 1.0, 1.0, 1.0], device=device)
    rewards = torch.tensor([0.0, 1.0, 2.0, 9.0, 3.0, 9.0], device=device)
    values = torch.tensor([10.0, 20.0, 30.0, 40.0, 50.0, 60.0], device=device)
    ret = value_ops.discounted_return(rewards, values, step_types, discounts)
    expected = [
        1.0 + 0.9 * (2.0 + 0.0 * 30.0),  # r1 + d1 * Q1
        2.0 + 0.0 * 30.0,  # terminal: the value of the LAST step is not used
        30.0,  # LAST: return is the value
        3.0 + 1.0 * 50.0,  # time limit: bootstraps from the LAST step's value
        50.0,  # LAST
    ]
    np.testing.assert_allclose(ret.cpu().numpy(), expected, rtol=1e-6)


def test_gae_terminal_and_time_limit(device):
    step_types = torch.tensor([FIRST, MID, LAST, FIRST, LAST, FIRST], device=device)
    discounts = torch.tensor([1.0, 0.5, 0.0, 1.0, 1.0, 1.0], device=device)
    rewards = torch.tensor([0.0, 1.0, 2.0, 9.0, 3.0, 9.0], device=device)
    values = torch.tensor([10.0, 20.0, 30.0, 40.0, 50.0, 60.0], device=device)
    lam = 0.5
    adv = value_ops.generalized_advantage_estimation(rewards, values, step_types, discounts, lam)
    delta1 = 2.0 + 0.0 * 30.0 - 20.0  # terminal transition 1 -> 2
    delta0 = 1.0 + 0.5 * 20.0 - 10.0
    expected = [
        delta0 + lam * 0.5 * delta1,
        delta1,
        0.0,  # LAST: no advantage across the episode boundary
        3.0 + 1.0 * 50.0 - 40.0,  # time limit: bootstraps, then stops
        0.0,
    ]
    np.testing.assert_allclose(adv.cpu().numpy(), expected, rtol=1e-6)


def test_one_step_discounted_return_by_hand(device):
    step_types = torch.tensor([FIRST, LAST, FIRST, MID], device=device)
    discounts = torch.tensor([1.0, 0.0, 1.0, 0.9], device=device)
    rewards = torch.tensor([0.0, 1.0, 2.0, 3.0], device=device)
    values = torch.tensor([10.0, 20.0, 30.0, 40.0], device=device)
    ret = value_ops.one_step_discounted_return(rewards, values, step_types, discounts)
    expected = [1.0 + 0.0 * 20.0, 0.0 * 20.0, 3.0 + 0.9 * 40.0]
    np.testing.assert_allclose(ret.cpu().numpy(), expected, rtol=1e-6)


# --------------------------------------------------------------------------
# Property tests against the loops


@st.composite
def trajectories(draw):
    T = draw(st.integers(2, 300))
    B = draw(st.integers(1, 5))
    quantiles = draw(st.sampled_from([None, 3]))
    single = draw(st.booleans()) and quantiles is None
    end_prob = draw(st.sampled_from([0.0, 0.02, 0.3, 1.0]))
    gamma = draw(st.sampled_from([0.0, 0.5, 0.99, 1.0]))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.RandomState(seed)
    rewards, step_types, discounts = episodes(rng, T, B, end_prob, gamma)
    if draw(st.booleans()):  # arbitrary discounts, not just {0, gamma, 1}
        discounts = rng.random_sample((T, B)).astype(np.float32)
    vshape = (T, B) if quantiles is None else (T, B, quantiles)
    values = (3 * rng.standard_normal(vshape)).astype(np.float32)
    if single:
        rewards, step_types, discounts, values = (
            x[:, 0] for x in (rewards, step_types, discounts, values)
        )
    return rewards, values, step_types, discounts


lambdas = st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0))


@given(data=trajectories(), td_lambda=lambdas, time_major=st.booleans())
def test_gae_matches_loop(data, td_lambda, time_major):
    r, v, s, d = data
    expected = ref_gae(r, v, s, d, td_lambda)
    args = [_to(x, "cpu", time_major) for x in (r, v, s, d)]
    adv = value_ops.generalized_advantage_estimation(*args, td_lambda, time_major=time_major)
    assert adv.dtype == torch.float32
    if not time_major and r.ndim == 2:
        adv = adv.transpose(0, 1)
    _close(adv, expected)


@given(data=trajectories(), time_major=st.booleans())
def test_discounted_return_matches_loop(data, time_major):
    r, v, s, d = data
    expected = ref_discounted_return(r, v, s, d)
    args = [_to(x, "cpu", time_major) for x in (r, v, s, d)]
    ret = value_ops.discounted_return(*args, time_major=time_major)
    if not time_major and r.ndim == 2:
        ret = ret.transpose(0, 1)
    _close(ret, expected)


@given(data=trajectories())
def test_one_step_discounted_return_matches_loop(data):
    r, v, s, d = data
    expected = ref_one_step(r, v, s, d)
    ret = value_ops.one_step_discounted_return(*(torch.as_tensor(x) for x in (r, v, s, d)))
    _close(ret, expected)


@pytest.mark.parametrize("end_prob", [0.0, 0.01])
@pytest.mark.parametrize("time_major", [True, False])
def test_value_ops_on_device_and_in_blocks(device, end_prob, time_major):
    # Large enough to be solved in several time blocks (time major) or
    # batch blocks (batch major).
    rng = np.random.RandomState(1)
    T, B = 700, 900
    r, s, d = episodes(rng, T, B, end_prob, 0.99)
    v = rng.standard_normal((T, B)).astype(np.float32)
    args = [_to(x, device, time_major) for x in (r, v, s, d)]

    def check(out, expected):
        _close(out if time_major else out.transpose(0, 1), expected)

    check(
        value_ops.generalized_advantage_estimation(*args, 0.95, time_major=time_major),
        ref_gae(r, v, s, d, 0.95),
    )
    check(
        value_ops.discounted_return(*args, time_major=time_major),
        ref_discounted_return(r, v, s, d),
    )
    if time_major:
        _close(value_ops.one_step_discounted_return(*args), ref_one_step(r, v, s, d))


@pytest.mark.parametrize("time_major", [True, False])
@pytest.mark.parametrize("quantiles", [False, True])
def test_reward_dims_broadcast_over_step_types_and_discounts(device, time_major, quantiles):
    # ALF: rewards and values [T, B, k] (multi-dim rewards; values may add
    # quantiles [T, B, k, Q]) while step types and discounts stay [T, B]
    # and apply to every reward dim.
    rng = np.random.RandomState(7)
    T, B, k, Q = 9, 4, 3, 2
    _, s, d = episodes(rng, T, B, 0.2, 0.9)
    r = rng.standard_normal((T, B, k)).astype(np.float32)
    v = rng.standard_normal((T, B, k, Q) if quantiles else (T, B, k)).astype(np.float32)
    args = [_to(x, device, time_major) for x in (r, v, s, d)]

    def check(out, expected):
        out = out if time_major else out.transpose(0, 1)
        assert out.shape == expected.shape
        _close(out, expected)

    check(
        value_ops.generalized_advantage_estimation(*args, 0.8, time_major=time_major),
        ref_gae(r, v, s, d, 0.8),
    )
    check(value_ops.discounted_return(*args, time_major=time_major), ref_discounted_return(r, v, s, d))
    if time_major:
        check(value_ops.one_step_discounted_return(*args), ref_one_step(r, v, s, d))
    # one trajectory: step types and discounts [T], rewards and values [T, k]
    one = [torch.as_tensor(x[:, 0], device=device) for x in (r, v, s, d)]
    out = value_ops.discounted_return(*one)
    expected = ref_discounted_return(r[:, :1], v[:, :1], s[:, :1], d[:, :1])[:, 0]
    assert out.shape == expected.shape
    _close(out, expected)
    # per reward dim, the same as k separate calls with [T, B] rewards
    for j in range(k):
        sep = [_to(x, device, time_major) for x in (r[:, :, j], v[:, :, j], s, d)]
        joint = value_ops.generalized_advantage_estimation(*args, 0.8, time_major=time_major)
        torch.testing.assert_close(
            joint[:, :, j],
            value_ops.generalized_advantage_estimation(*sep, 0.8, time_major=time_major),
        )


@pytest.mark.parametrize("fn", ["gae", "return"])
def test_long_episode_gamma_lambda_one_is_float64_accurate(fn):
    # One 4096-step episode, gamma * lambda = 1: float32 results must be
    # within 1e-5 (relative) of the float64 computation.
    rng = np.random.RandomState(2)
    T, B = 4096, 3
    r = (rng.standard_normal((T, B)) + 0.1).astype(np.float32)
    v = (100 * rng.standard_normal((T, B))).astype(np.float32)
    s = np.full((T, B), MID, np.int32)
    d = np.ones((T, B), np.float32)
    args = [torch.as_tensor(x) for x in (r, v, s, d)]
    if fn == "gae":
        out, expected = (
            value_ops.generalized_advantage_estimation(*args, 1.0),
            ref_gae(r, v, s, d, 1.0),
        )
    else:
        out, expected = value_ops.discounted_return(*args), ref_discounted_return(r, v, s, d)
    np.testing.assert_allclose(out.double().numpy(), expected, rtol=1e-5, atol=1e-9)


def test_underflowing_discount_products_stay_exact():
    # a[t] = 1e-30: products of a few steps underflow to 0 in float32 and
    # of a dozen in float64; the recurrence must still be exact, not NaN.
    T, B = 2000, 2
    rng = np.random.RandomState(3)
    r = rng.standard_normal((T, B)).astype(np.float32)
    v = rng.standard_normal((T, B)).astype(np.float32)
    s = np.full((T, B), MID, np.int32)
    d = np.full((T, B), 1e-30, np.float32)
    args = [torch.as_tensor(x) for x in (r, v, s, d)]
    out = value_ops.discounted_return(*args)
    assert torch.isfinite(out).all()
    _close(out, ref_discounted_return(r, v, s, d))


def test_float64_inputs_keep_float64_and_are_not_modified():
    rng = np.random.RandomState(4)
    r, s, d = episodes(rng, 50, 3, 0.1, 0.9)
    v = rng.standard_normal((50, 3))
    args = [
        torch.as_tensor(x).double() if x.dtype != np.int32 else torch.as_tensor(x)
        for x in (r, v, s, d)
    ]
    copies = [x.clone() for x in args]
    adv = value_ops.generalized_advantage_estimation(*args, 0.7)
    ret = value_ops.discounted_return(*args)
    assert adv.dtype == ret.dtype == torch.float64
    for x, c in zip(args, copies):
        assert torch.equal(x, c)
    np.testing.assert_allclose(adv.numpy(), ref_gae(r, v, s, d, 0.7), rtol=1e-12, atol=1e-12)


def test_results_are_detached():
    v = torch.randn(5, 2, requires_grad=True)
    r, d = torch.randn(5, 2), torch.ones(5, 2)
    s = torch.ones(5, 2, dtype=torch.int32)
    for out in (
        value_ops.discounted_return(r, v, s, d),
        value_ops.generalized_advantage_estimation(r, v, s, d),
        value_ops.one_step_discounted_return(r, v, s, d),
    ):
        assert not out.requires_grad


# --------------------------------------------------------------------------
# Bad input


def _args(T=5, B=2):
    return (
        torch.randn(T, B),
        torch.randn(T, B),
        torch.ones(T, B, dtype=torch.int32),
        torch.ones(T, B),
    )


@pytest.mark.parametrize(
    "fn",
    [
        value_ops.discounted_return,
        value_ops.generalized_advantage_estimation,
        value_ops.one_step_discounted_return,
    ],
)
def test_bad_shapes_and_lengths(fn):
    r, v, s, d = _args()
    with pytest.raises(ValueError, match="sequence length"):
        fn(*_args(T=1))
    with pytest.raises(ValueError, match="discounts"):
        fn(r, v, s, d[:, :1])
    with pytest.raises(ValueError, match="step_types"):
        fn(r, v, s[:4], d)
    with pytest.raises(ValueError, match="values"):
        fn(r, v[:4], s, d)
    with pytest.raises(ValueError, match="rewards"):
        fn(r[..., None, None], v, s, d)
    with pytest.raises(TypeError, match="values"):
        fn(r, v.numpy(), s, d)


@pytest.mark.parametrize("td_lambda", [-0.1, 1.5, float("nan"), "0.5"])
def test_td_lambda_outside_unit_interval(td_lambda):
    with pytest.raises(ValueError, match="td_lambda"):
        value_ops.generalized_advantage_estimation(*_args(), td_lambda=td_lambda)


# --------------------------------------------------------------------------
# action_importance_ratio


def _policies(device, shift):
    """Nested (categorical, 2-d diagonal normal) policies, batch 6; ``shift``
    moves the target policy away from the rollout one."""
    g = torch.Generator().manual_seed(5)
    logits = torch.randn(6, 4, generator=g)
    loc, scale = torch.randn(6, 2, generator=g), torch.rand(6, 2, generator=g) + 0.5
    action = (torch.randint(0, 4, (6,), generator=g), torch.randn(6, 2, generator=g))

    def make(s):
        return (
            torch.distributions.Categorical(logits=(logits + s * torch.arange(4.0)).to(device)),
            torch.distributions.Independent(
                torch.distributions.Normal((loc + s).to(device), scale.to(device)), 1
            ),
        )

    numpy_log_prob = {}
    for s in (0.0, shift):
        lg = (logits + s * torch.arange(4.0)).double().numpy()
        log_softmax = lg - np.log(np.exp(lg).sum(-1, keepdims=True))
        lp = log_softmax[np.arange(6), action[0].numpy()]
        x, m, sd = action[1].double().numpy(), (loc + s).double().numpy(), scale.double().numpy()
        lp = lp + (-0.5 * ((x - m) / sd) ** 2 - np.log(sd) - 0.5 * np.log(2 * np.pi)).sum(-1)
        numpy_log_prob[s] = lp
    action = tuple(a.to(device) for a in action)
    return make(shift), make(0.0), action, numpy_log_prob[shift], numpy_log_prob[0.0]


@pytest.mark.parametrize("mode", ["double_sided", "capping"])
@pytest.mark.parametrize("log_prob_clipping", [0.0, 4.0])
def test_action_importance_ratio(device, mode, log_prob_clipping):
    target, rollout, action, lp, lp_rollout = _policies(device, 0.4)
    ratio, clipped = value_ops.action_importance_ratio(
        target,
        rollout,
        action,
        mode,
        alf.summary.scope("ratio"),
        importance_ratio_clipping=0.2,
        log_prob_clipping=log_prob_clipping,
        check_numerics=True,
        debug_summaries=False,
    )
    if log_prob_clipping > 0:
        assert (lp < -log_prob_clipping).any() and (lp > -log_prob_clipping).any()
        # only the current policy's log-probability is clipped (ALF)
        assert (lp_rollout < -log_prob_clipping).any()
        lp = np.clip(lp, -log_prob_clipping, log_prob_clipping)
    expected = np.exp(lp - lp_rollout)
    expected_clipped = (
        np.clip(expected, 0.8, 1.2) if mode == "double_sided" else np.minimum(expected, 1.2)
    )
    np.testing.assert_allclose(ratio.cpu().numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(clipped.cpu().numpy(), expected_clipped, rtol=1e-5)
    assert (expected != expected_clipped).any()  # the clipping is exercised


def test_log_prob_clipping_leaves_the_rollout_log_prob(device):
    # A ratio of 2e5: log pi = -2 (inside the clipping range), log mu =
    # -2 - log(2e5) = -14.2 (outside): the ratio stays 2e5 (clipping log mu
    # as well would give exp(-2 + 10)).
    action = torch.zeros(3, device=device)
    target = torch.distributions.Independent(
        torch.distributions.Normal(torch.zeros(3, 1, device=device), torch.ones(3, 1, device=device)),
        1,
    )
    log_pi = -0.5 * np.log(2 * np.pi)
    rollout_log_prob = torch.full((3,), log_pi - np.log(2e5), device=device)
    ratio, _ = value_ops.action_importance_ratio(
        target, None, action[:, None], "capping", alf.summary.scope("r"), 0.2,
        log_prob_clipping=10.0, check_numerics=False, debug_summaries=False,
        rollout_log_prob=rollout_log_prob,
    )
    np.testing.assert_allclose(ratio.cpu().numpy(), np.full(3, 2e5), rtol=1e-4)


def test_action_importance_ratio_with_rollout_log_prob_and_gradient(device):
    target, _, action, lp, _ = _policies(device, 0.4)
    rollout_log_prob = torch.full((6,), -3.0, device=device, requires_grad=True)
    loc = target[1].base_dist.loc.requires_grad_()
    ratio, _ = value_ops.action_importance_ratio(
        target,
        None,
        action,
        "capping",
        alf.summary.scope("r"),
        0.5,
        0.0,
        False,
        False,
        rollout_log_prob=rollout_log_prob,
    )
    np.testing.assert_allclose(ratio.detach().cpu().numpy(), np.exp(lp + 3.0), rtol=1e-5)
    ratio.sum().backward()
    assert loc.grad is not None and rollout_log_prob.grad is None  # rollout side detached


def test_action_importance_ratio_sums_a_nested_rollout_log_prob(device):
    target, _, action, lp, _ = _policies(device, 0.4)
    # One log-prob per action of the nest: they are summed.
    rollout_log_prob = (
        torch.full((6,), -1.0, device=device),
        torch.full((6,), -2.5, device=device),
    )
    ratio, _ = value_ops.action_importance_ratio(
        target,
        None,
        action,
        "capping",
        alf.summary.scope("r"),
        0.5,
        0.0,
        False,
        False,
        rollout_log_prob=rollout_log_prob,
    )
    np.testing.assert_allclose(ratio.cpu().numpy(), np.exp(lp + 3.5), rtol=1e-5)


def test_action_importance_ratio_summaries_numerics_and_mode():
    target, rollout, action, _, _ = _policies("cpu", 0.4)
    written = []

    class Writer:
        def add_scalar(self, tag, value, global_step):
            written.append(tag)

        def add_histogram(self, tag, values, global_step, bins):
            written.append(tag)

    with alf.summary.scope("ppo"):
        scope = alf.summary.scope("loss")
    alf.summary.set_default_writer(Writer())
    try:
        value_ops.action_importance_ratio(
            target, rollout, action, "double_sided", scope, 0.2, 0.0, False, True
        )
    finally:
        alf.summary.set_default_writer(None)
    assert "ppo/loss/clip_fraction" in written
    assert "ppo/loss/importance_ratio_clipped/mean" in written
    with pytest.raises(ValueError, match="clipping_mode"):
        value_ops.action_importance_ratio(
            target, rollout, action, "one_sided", scope, 0.2, 0.0, False, False
        )
    bad_rollout_log_prob = torch.full((6,), float("inf"))
    with pytest.raises(ValueError, match="rollout_log_prob"):
        value_ops.action_importance_ratio(
            target, rollout, action, "capping", scope, 0.2, 0.0, True, False, bad_rollout_log_prob
        )


@pytest.mark.parametrize("bad", [{"importance_ratio_clipping": -0.2}, {"log_prob_clipping": -1.0}])
def test_action_importance_ratio_rejects_negative_clipping(bad):
    # A negative epsilon would make 'double_sided' clamp every ratio to
    # 1 - epsilon > 1 + epsilon.
    target, rollout, action, _, _ = _policies("cpu", 0.4)
    kwargs = {"importance_ratio_clipping": 0.2, "log_prob_clipping": 0.0, **bad}
    with pytest.raises(ValueError, match=f"{next(iter(bad))} must be .*got -"):
        value_ops.action_importance_ratio(
            target,
            rollout,
            action,
            "double_sided",
            alf.summary.scope("r"),
            **kwargs,
            check_numerics=False,
            debug_summaries=False,
        )


# --------------------------------------------------------------------------
# The recurrence solver itself, on each of its methods


@given(
    n=st.one_of(st.integers(1, 40), st.integers(41, 3000)),
    columns=st.sampled_from([1, 2, 7, 64]),
    zero_prob=st.sampled_from([0.0, 0.01, 0.5]),
    seed=st.integers(0, 10000),
)
def test_solver_matches_loop(n, columns, zero_prob, seed):
    from alf.utils import _losses_scan

    rng = np.random.RandomState(seed)
    a = rng.uniform(0, 1.2, (n, columns)) * (rng.random_sample((n, columns)) >= zero_prob)
    b = rng.standard_normal((n, columns))
    expected = np.zeros((n + 1, columns))
    for t in range(n - 1, -1, -1):
        expected[t] = a[t] * expected[t + 1] + b[t]
    x = torch.tensor(b)
    _losses_scan.solve_backward_recurrence_(
        torch.tensor(a), x, torch.empty(_losses_scan.scratch_size(x.shape), dtype=torch.float64)
    )
    scale = np.abs(expected).max()
    np.testing.assert_allclose(x.numpy(), expected[:-1], rtol=1e-10, atol=1e-12 * scale)
