"""Value ops with more than one torch thread: blocks below torch's parallel
grain (no op enters an intra-op parallel region, see ``_losses_scan``), and
the same results as a float64 NumPy loop over many blocks, in both layouts."""

import numpy as np
import pytest
import torch

from alf.data_structures import StepType
from alf.utils import value_ops
from alf.utils._losses_scan import column_blocks, row_blocks

LAST = int(StepType.LAST)
GRAIN = 32768  # at::internal::GRAIN_SIZE


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def data(T, B, seed):
    g = torch.Generator().manual_seed(seed)
    ends = torch.rand(T, B, generator=g) < 0.02
    st = torch.full((T, B), int(StepType.MID), dtype=torch.int32)
    st[ends] = LAST
    d = torch.where(ends, 0.0, 0.97)
    return torch.randn(T, B, generator=g), torch.randn(T, B, generator=g), st, d


def numpy_gae(r, v, st, d, lam):
    r, v, d = (x.double().numpy() for x in (r, v, d))
    keep = (st.numpy() != LAST).astype(np.float64)
    adv = np.zeros_like(v)
    for t in range(v.shape[0] - 2, -1, -1):
        delta = r[t + 1] + d[t + 1] * v[t + 1] - v[t]
        adv[t] = keep[t] * (delta + lam * d[t + 1] * adv[t + 1])
    return adv[:-1]


def numpy_return(r, v, st, d):
    r, v, d = (x.double().numpy() for x in (r, v, d))
    keep = (st.numpy() != LAST).astype(np.float64)
    ret = np.zeros_like(v)
    ret[-1] = v[-1]
    for t in range(v.shape[0] - 2, -1, -1):
        ret[t] = keep[t] * (r[t + 1] + d[t + 1] * ret[t + 1]) + (1 - keep[t]) * v[t]
    return ret[:-1]


def test_blocks_stay_below_the_parallel_grain(two_threads):
    for T, B in [(1000, 64), (4096, 1024), (50, 1927), (10, 1)]:
        for rows in row_blocks(T - 1, torch.Size([B])):
            # values take one row more than the block
            assert (rows.stop - rows.start + 1) * B < GRAIN
        cols = list(column_blocks(T - 1, torch.Size([B])))
        assert cols[0].start == 0 and cols[-1].stop == B
        assert all((c.stop - c.start) * T < GRAIN for c in cols)
    torch.set_num_threads(1)  # one thread: large blocks, fewer op launches
    assert max(r.stop - r.start for r in row_blocks(999, torch.Size([64]))) == 999


@pytest.mark.parametrize("time_major", [True, False])
def test_many_blocks_match_the_loop(two_threads, time_major):
    r, v, st, d = data(700, 96, seed=3)  # 6+ row blocks; 48 column blocks
    expected_adv = numpy_gae(r, v, st, d, 0.9)
    expected_ret = numpy_return(r, v, st, d)
    if not time_major:
        r, v, st, d = (x.T.contiguous() for x in (r, v, st, d))
    adv = value_ops.generalized_advantage_estimation(r, v, st, d, 0.9, time_major=time_major)
    ret = value_ops.discounted_return(r, v, st, d, time_major=time_major)
    if not time_major:
        adv, ret = adv.T, ret.T
    np.testing.assert_allclose(adv.numpy(), expected_adv, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ret.numpy(), expected_ret, rtol=1e-5, atol=1e-5)
