"""Periodically and TargetUpdater, checked against hand computations and
NumPy loops written from the documented update rules."""

import numpy as np
import pytest
import torch
import torch.nn as nn
from hypothesis import given
from hypothesis import strategies as st

from alf.utils.common import Periodically, TargetUpdater

# --------------------------------------------------------------------------
# Periodically


def test_periodically_runs_body_on_multiples_of_period():
    calls = []
    p = Periodically(lambda: calls.append(len(calls)) or "ran", period=3, name="every3")
    assert isinstance(p, nn.Module) and p.name == "every3"
    results = [p() for _ in range(10)]
    assert calls == [0, 1, 2]  # body ran 3 times: at calls 3, 6, 9
    assert results == [None, None, "ran"] * 3 + [None]
    assert Periodically(lambda: 1, period=1)() == 1


def test_periodically_none_period_never_runs_and_bad_input():
    calls = []
    p = Periodically(lambda: calls.append(1), period=None)
    for _ in range(5):
        p()
    assert calls == []
    with pytest.raises(TypeError, match="body must be callable"):
        Periodically(3, period=2)
    for bad in (0, -2):
        with pytest.raises(ValueError, match=f"period must be >= 1, got {bad}"):
            Periodically(lambda: None, period=bad)
    for bad in (1.5, True, "2"):
        with pytest.raises(TypeError, match="period must be an int or None, got"):
            Periodically(lambda: None, period=bad)


# --------------------------------------------------------------------------
# TargetUpdater: hand computations


def test_soft_update_of_parameters_by_hand(device):
    ws = nn.Parameter(torch.tensor([1.0, 2.0], device=device))
    wt = nn.Parameter(torch.tensor([0.0, 0.0], device=device))
    upd = TargetUpdater(ws, wt, tau=0.5, period=2, init_copy=False)
    upd()  # call 1: nothing
    assert wt.tolist() == [0.0, 0.0]
    upd()  # call 2: wt = 0.5 * 0 + 0.5 * [1, 2]
    assert wt.tolist() == [0.5, 1.0]
    with torch.no_grad():
        ws.copy_(torch.tensor([3.0, -2.0]))
    upd()  # call 3: nothing
    assert wt.tolist() == [0.5, 1.0]
    upd()  # call 4: wt = 0.5 * [0.5, 1] + 0.5 * [3, -2] = [1.75, -0.5]
    assert wt.tolist() == [1.75, -0.5]
    assert wt.requires_grad and wt.is_leaf


def test_hard_update_copies_and_init_copy(device):
    src = nn.Linear(3, 2).to(device)
    tgt = nn.Linear(3, 2).to(device)
    TargetUpdater(src, tgt)  # init_copy=True
    for a, b in zip(src.parameters(), tgt.parameters()):
        assert torch.equal(a, b) and a.data_ptr() != b.data_ptr()
    upd = TargetUpdater(src, tgt, init_copy=False)
    with torch.no_grad():
        src.weight.add_(1.0)
    assert not torch.equal(src.weight, tgt.weight)
    upd()
    assert torch.equal(src.weight, tgt.weight) and torch.equal(src.bias, tgt.bias)


def test_buffers_are_copied_parameters_soft_updated_several_pairs(device):
    torch.manual_seed(3)
    models = [nn.BatchNorm1d(3).to(device), nn.Linear(2, 2).to(device)]
    targets = [nn.BatchNorm1d(3).to(device), nn.Linear(2, 2).to(device)]
    upd = TargetUpdater(models, targets, tau=0.25)
    # move the models: parameters and batch-norm statistics
    models[0].train()(torch.randn(8, 3, device=device))
    with torch.no_grad():
        for p in list(models[0].parameters()) + list(models[1].parameters()):
            p.add_(torch.randn_like(p))
    before = [[p.detach().cpu().numpy().copy() for p in t.parameters()] for t in targets]
    upd()
    for m, t, old in zip(models, targets, before):
        for p_m, p_t, p_old in zip(m.parameters(), t.parameters(), old):
            want = 0.75 * p_old + 0.25 * p_m.detach().cpu().numpy()
            np.testing.assert_allclose(p_t.detach().cpu().numpy(), want, rtol=1e-6, atol=1e-7)
        for b_m, b_t in zip(m.buffers(), t.buffers()):
            assert torch.equal(b_m, b_t)  # running stats and num_batches_tracked copied
    assert int(targets[0].num_batches_tracked) == 1
    assert upd.state_dict() == {}  # as in ALF: no checkpoint entries of its own


@given(
    tau=st.floats(0.05, 1.0),
    period=st.integers(1, 4),
    delayed=st.booleans(),
    steps=st.lists(st.floats(-3, 3), min_size=1, max_size=12),
)
def test_matches_numpy_loop(tau, period, delayed, steps):
    """The model takes the value ``steps[k]`` before call ``k + 1``; a NumPy
    loop written from the documented rules gives the target after each call."""
    ws = nn.Parameter(torch.tensor([0.5], dtype=torch.float64))
    wt = nn.Parameter(torch.tensor([0.0], dtype=torch.float64))
    upd = TargetUpdater([ws], [wt], tau=tau, period=period, delayed_update=delayed)
    target, recent = 0.5, 0.5  # init_copy; recent starts as the model
    for k, value in enumerate(steps):
        with torch.no_grad():
            ws.fill_(value)
        upd()
        if (k + 1) % period == 0:
            if delayed:
                target = recent
                recent = (1 - tau) * recent + tau * value
            else:
                target = (1 - tau) * target + tau * value
        assert wt.item() == pytest.approx(target, rel=1e-12, abs=1e-12)


def test_delayed_hard_update_gives_the_model_of_period_steps_before(device):
    ws = nn.Parameter(torch.zeros(2, device=device))
    wt = nn.Parameter(torch.full((2,), -1.0, device=device))
    upd = TargetUpdater(ws, wt, tau=1.0, period=2, delayed_update=True)
    assert wt.tolist() == [0.0, 0.0]  # init_copy
    history = {0: 0.0}
    for call in range(1, 9):
        with torch.no_grad():
            ws.fill_(float(call))
        history[call] = float(call)
        upd()
        if call % 2 == 0 and call >= 4:
            assert wt.tolist() == [history[call - 2]] * 2
    # the delayed copies live on the device of the model
    assert all(b.device == ws.device for b in upd.buffers())


def test_update_now_and_bad_input_changes_nothing():
    src, tgt = nn.Linear(2, 3), nn.Linear(2, 3)
    saved = [p.detach().clone() for p in tgt.parameters()]
    bad = [
        (dict(models=[src, src], target_models=[tgt]), ValueError, "same length"),
        (dict(models=src, target_models=nn.Linear(3, 2)), ValueError, "shape"),
        (dict(models=src, target_models=nn.Linear(2, 3, bias=False)), ValueError, "parameters"),
        (dict(models=src, target_models=nn.BatchNorm1d(3)), ValueError, "parameters|shape"),
        (dict(models=src, target_models=tgt, tau=1.5), ValueError, "tau"),
        (dict(models=src, target_models=tgt, tau=-0.1), ValueError, "tau"),
        (dict(models=src, target_models=tgt, period=0), ValueError, "period must be >= 1, got 0"),
        (dict(models=src, target_models=tgt, period=2.0), TypeError, "period must be an int, got"),
        (dict(models=src, target_models="net"), TypeError, "target_models"),
        (dict(models=[3], target_models=[tgt]), TypeError, r"models\[0\]"),
    ]
    for kwargs, error, match in bad:
        with pytest.raises(error, match=match):
            TargetUpdater(**kwargs)
    for p, old in zip(tgt.parameters(), saved):
        assert torch.equal(p, old)
    upd = TargetUpdater(src, tgt, tau=0.5, period=100, init_copy=False)
    upd.update()  # immediately, whatever the counter
    for p_s, p_t, old in zip(src.parameters(), tgt.parameters(), saved):
        torch.testing.assert_close(p_t, 0.5 * old + 0.5 * p_s)
