"""Tests for alf.utils.action_quantizer against NumPy bin computations."""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alf.tensor_specs import BoundedTensorSpec, TensorSpec
from alf.utils.action_quantizer import ActionQuantizer

fixture_ok = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])

LB = np.array([-2.0, 0.0, -1.0])
UB = np.array([2.0, 10.0, 3.0])
SPEC = BoundedTensorSpec((3,), torch.float32, minimum=LB, maximum=UB)


def np_log(x):
    return np.sign(x) * np.log1p(np.abs(x))


def np_reps(method, mode, bins):
    """The documented bin representatives, per dimension: [bins, 3]."""
    lb, ub = (np_log(LB), np_log(UB)) if method == "log" else (LB, UB)
    if mode == "center":
        size = (ub - lb) / bins
        reps = np.linspace(lb + size / 2, ub - size / 2, bins)
    else:
        reps = np.linspace(lb, ub, bins)
    return np.sign(reps) * np.expm1(np.abs(reps)) if method == "log" else reps


CASES = [(m, r, b) for m in ("uniform", "log") for r in ("center", "boundary") for b in (2, 7)]
CASES += [("uniform", "center", 1)]


@pytest.mark.parametrize("method, mode, bins", CASES)
def test_ind_to_action_gives_documented_representatives(device, method, mode, bins):
    q = ActionQuantizer(SPEC, method, bins, mode)
    assert q.action_bins == bins
    ind = torch.arange(bins, device=device).unsqueeze(1).expand(bins, 3)
    actions = q.ind_to_action(ind)
    assert actions.dtype == torch.float32 and actions.shape == (bins, 3)
    np.testing.assert_allclose(
        actions.cpu().numpy(), np_reps(method, mode, bins), rtol=1e-6, atol=1e-6
    )
    assert torch.equal(q.action_to_ind(actions), ind)


@pytest.mark.parametrize("method, mode, bins", CASES)
@fixture_ok
@given(u=st.lists(st.floats(0, 1), min_size=3, max_size=3))
def test_action_to_ind_picks_the_bin(device, method, mode, bins, u):
    action = LB + np.array(u) * (UB - LB)
    q = ActionQuantizer(SPEC, method, bins, mode)
    ind = q.action_to_ind(torch.tensor(action, dtype=torch.float32, device=device)[None])
    assert ind.dtype == torch.int64
    reps = np_reps(method, mode, bins)
    to_space = np_log if method == "log" else (lambda v: v)
    for d in range(3):
        chosen = int(ind[0, d])
        z, zr = to_space(np.float64(np.float32(action[d]))), to_space(reps[:, d])
        if mode == "center":
            # nearest representative in the sampling space (slow reference)
            dist = np.abs(zr - z)
            assert dist[chosen] <= dist.min() + 1e-5
        else:
            # ALF's floor bin: the last representative at or below the action
            below = [i for i in range(bins) if zr[i] <= z + 1e-6]
            assert chosen == max(below)


def test_out_of_range_actions_map_to_edge_bins(device):
    q = ActionQuantizer(SPEC, "uniform", 5)
    ind = q.action_to_ind(torch.tensor([[-100.0, -1.0, -9.0], [100.0, 11.0, 9.0]], device=device))
    assert ind.tolist() == [[0, 0, 0], [4, 4, 4]]


def test_batch_dims_and_scalar_spec(device):
    spec = BoundedTensorSpec((), torch.float64, minimum=-1.0, maximum=1.0)
    q = ActionQuantizer(spec, action_bins=4, rep_mode="boundary")
    a = torch.linspace(-1, 1, 12, dtype=torch.float64, device=device).reshape(3, 4)
    ind = q.action_to_ind(a)
    # boundary mode takes the floor bin (ALF), e.g. -1 + 10/11 * 2 = 0.818 -> 2
    expected = np.floor((np.linspace(-1, 1, 12).reshape(3, 4) + 1) / 2 * 3 + 1e-9)
    np.testing.assert_array_equal(ind.cpu().numpy(), expected)
    assert ind[2, 2].item() == 2 and ind[2, 3].item() == 3
    assert q.ind_to_action(ind).dtype == torch.float64


def test_constructor_errors():
    with pytest.raises(TypeError, match="action_spec"):
        ActionQuantizer(TensorSpec((2,)))
    with pytest.raises(TypeError, match="action_spec"):
        ActionQuantizer(BoundedTensorSpec((2,), torch.int64, 0, 3))
    with pytest.raises(ValueError, match="sampling_method"):
        ActionQuantizer(SPEC, sampling_method="sqrt")
    with pytest.raises(ValueError, match="rep_mode"):
        ActionQuantizer(SPEC, rep_mode="edge")
    with pytest.raises(ValueError, match="action_bins"):
        ActionQuantizer(SPEC, action_bins=0)
    with pytest.raises(ValueError, match="action_bins"):
        ActionQuantizer(SPEC, action_bins=1, rep_mode="boundary")
    with pytest.raises(ValueError, match="finite"):
        ActionQuantizer(BoundedTensorSpec((1,), minimum=-np.inf, maximum=1.0))


def test_method_errors():
    q = ActionQuantizer(SPEC, action_bins=3)
    with pytest.raises(ValueError, match="action"):
        q.action_to_ind(torch.zeros(4, 2))
    with pytest.raises(TypeError, match="action_ind"):
        q.ind_to_action(torch.zeros(3))
    with pytest.raises(ValueError, match="action_ind"):
        q.ind_to_action(torch.tensor([0, 1, 3]))
    with pytest.raises(ValueError, match="action_ind"):
        q.ind_to_action(torch.tensor([0, -1, 2]))


def test_nan_action_is_refused(device):
    # NaN has no nearest bin: it used to come out as int64's minimum
    q = ActionQuantizer(SPEC, action_bins=5)
    action = torch.tensor([[0.0, 1.0, 2.0], [0.5, float("nan"), 1.0]], device=device)
    with pytest.raises(ValueError, match=r"action must not contain NaN; got 1 NaN .*\(1, 1\)"):
        q.action_to_ind(action)


def test_non_tensor_arguments_are_refused():
    q = ActionQuantizer(SPEC, action_bins=5)
    with pytest.raises(TypeError, match="action must be a torch.Tensor; got list"):
        q.action_to_ind([0.0, 1.0, 2.0])
    with pytest.raises(TypeError, match="action_ind must be a torch.Tensor; got ndarray"):
        q.ind_to_action(np.array([0, 1, 2]))
