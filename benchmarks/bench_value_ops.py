"""Benchmark alf.utils.value_ops GAE and discounted returns against peers.

Measured in the same run, on the same data (~1% episode ends):

* ``loop``: the per-step torch loop (the reference algorithm, one Python step
  per time step);
* ``SB3``: stable-baselines3's ``RolloutBuffer.compute_returns_and_advantage``
  (a NumPy loop; ``gae_lambda=1`` gives the discounted return);
* ``TorchRL``: ``vec_generalized_advantage_estimate`` for GAE and
  ``vec_td1_return_estimate`` (TD(1)) for the discounted return.

The peers use their own layouts: SB3 ``[T, B]`` float32 arrays with
``episode_starts``; TorchRL ``[B, T, 1]`` tensors with ``done``/``terminated``
flags; ALF ``[T, B]`` with ``StepType`` and per-step discounts.

Usage: python benchmarks/bench_value_ops.py [--threads N] [--quick]
Peers: pip install -c constraints.txt -r benchmarks/requirements.txt
"""

import argparse
import functools
import statistics
import time

import torch

from alf.data_structures import StepType
from alf.utils import value_ops

GAMMA, LAMBDA = 0.99, 0.95
LAST = int(StepType.LAST)


def make_data(T, B, seed=0):
    """ALF layout: rewards, values, step_types, discounts, all [T, B]."""
    g = torch.Generator().manual_seed(seed)
    ends = torch.rand(T, B, generator=g) < 0.01
    step_types = torch.full((T, B), int(StepType.MID), dtype=torch.int32)
    step_types[0] = int(StepType.FIRST)
    step_types[1:][ends[:-1]] = int(StepType.FIRST)
    step_types[ends] = LAST
    discounts = torch.full((T, B), GAMMA)
    discounts[ends] = 0.0
    rewards = torch.randn(T, B, generator=g)
    values = torch.randn(T, B, generator=g)
    return rewards, values, step_types, discounts


def loop_gae(rewards, values, step_types, discounts, td_lambda):
    """The reference algorithm: one Python step per time step."""
    is_lasts = (step_types == LAST).to(values.dtype)
    advs = torch.zeros_like(values)
    delta = rewards[1:] + discounts[1:] * values[1:] - values[:-1]
    weighted_discounts = discounts[1:] * td_lambda
    for t in reversed(range(values.shape[0] - 1)):
        advs[t] = (1 - is_lasts[t]) * (delta[t] + weighted_discounts[t] * advs[t + 1])
    return advs[:-1]


def loop_return(rewards, values, step_types, discounts):
    is_lasts = (step_types == LAST).to(values.dtype)
    rets = torch.zeros_like(values)
    rets[-1] = acc = values[-1]
    for t in reversed(range(values.shape[0] - 1)):
        acc = rewards[t + 1] + discounts[t + 1] * acc
        acc = is_lasts[t] * values[t] + (1 - is_lasts[t]) * acc
        rets[t] = acc
    return rets[:-1]


def sb3_case(data, td_lambda):
    from gymnasium import spaces
    from stable_baselines3.common.buffers import RolloutBuffer

    rewards, values, step_types, _ = data
    T, B = rewards.shape
    # T-1 transitions t -> t+1, bootstrapped from values[T-1].
    buf = RolloutBuffer(
        T - 1,
        spaces.Box(-1, 1, (1,)),
        spaces.Box(-1, 1, (1,)),
        device="cpu",
        gae_lambda=td_lambda,
        gamma=GAMMA,
        n_envs=B,
    )
    buf.rewards[:] = rewards[1:].numpy()
    buf.values[:] = values[:-1].numpy()
    buf.episode_starts[:] = (step_types[:-1] == int(StepType.FIRST)).numpy()
    last_values = values[-1].clone()
    dones = (step_types[-1] == LAST).numpy()
    return lambda: buf.compute_returns_and_advantage(last_values, dones)


def torchrl_case(data, kind):
    from torchrl.objectives.value.functional import (
        vec_generalized_advantage_estimate,
        vec_td1_return_estimate,
    )

    rewards, values, step_types, _ = data
    # [B, T-1, 1]; transition t -> t+1 is done when step t+1 is LAST.
    reward = rewards[1:].T.unsqueeze(-1).contiguous()
    value = values[:-1].T.unsqueeze(-1).contiguous()
    next_value = values[1:].T.unsqueeze(-1).contiguous()
    done = (step_types[1:] == LAST).T.unsqueeze(-1).contiguous()
    if kind == "gae":
        return lambda: vec_generalized_advantage_estimate(
            GAMMA, LAMBDA, value, next_value, reward, done, done
        )
    return lambda: vec_td1_return_estimate(GAMMA, next_value, reward, done, done)


def median_ms(fn, budget_s, min_repeats=3, max_repeats=200):
    if max_repeats > 1:
        fn()  # warm up (a single slow call is its own warm-up)
    times = []
    start = time.perf_counter()
    while len(times) < max_repeats and (
        len(times) < min_repeats or time.perf_counter() - start < budget_s
    ):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--quick", action="store_true", help="smaller time budget per cell")
    parser.add_argument("--no-peers", action="store_true", help="skip SB3 and TorchRL")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    budget = 0.2 if args.quick else 1.0
    grid = [(T, B) for T in (128, 1000, 4096) for B in (1, 64, 1024)]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; medians in ms")
    print()
    print(
        "| op | T, B | alf-losses | torch loop | SB3 | TorchRL | loop / ours | best peer / ours |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for op in ("gae", "return"):
        for T, B in grid:
            data = make_data(T, B)
            if op == "gae":
                ours = functools.partial(value_ops.generalized_advantage_estimation, *data, LAMBDA)
                loop = functools.partial(loop_gae, *data, LAMBDA)
            else:
                ours = functools.partial(value_ops.discounted_return, *data)
                loop = functools.partial(loop_return, *data)
            t_ours = median_ms(ours, budget, min_repeats=10)
            t_loop = median_ms(loop, budget)
            peers = {}
            if not args.no_peers:
                peers["SB3"] = median_ms(sb3_case(data, LAMBDA if op == "gae" else 1.0), budget)
                # TorchRL's vectorized estimators are O(T^2 B): one repeat
                # where a call takes seconds.
                slow = T * T * B > 2**26
                peers["TorchRL"] = median_ms(
                    torchrl_case(data, op),
                    budget,
                    min_repeats=1 if slow else 3,
                    max_repeats=1 if slow else 200,
                )
            best = min([t_loop, *peers.values()])
            name = "GAE" if op == "gae" else "discounted_return"
            cells = [f"{peers[k]:.3f}" if k in peers else "-" for k in ("SB3", "TorchRL")]
            print(
                f"| {name} | {T}, {B} | {t_ours:.3f} | {t_loop:.3f} | {cells[0]} | {cells[1]} "
                f"| {t_loop / t_ours:.1f}x | {best / t_ours:.2f}x |",
                flush=True,
            )


if __name__ == "__main__":
    main()
