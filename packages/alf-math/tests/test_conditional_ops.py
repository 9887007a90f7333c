"""Tests for alf.utils.conditional_ops against per-row loops."""

import collections

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alf.utils.conditional_ops import conditional_update, select_from_mask

fixture_ok = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
State = collections.namedtuple("State", ["h", "c"])


@fixture_ok
@given(mask=st.lists(st.booleans(), min_size=1, max_size=12))
def test_conditional_update_matches_row_loop(device, mask):
    n = len(mask)
    cond = torch.tensor(mask, device=device)
    target = State(
        h=torch.arange(n * 2.0, device=device).reshape(n, 2), c=torch.zeros(n, device=device)
    )
    x = torch.randn(n, 2, device=device)
    calls = []

    def func(a, scale=None):
        calls.append(a.shape[0])
        return State(h=a * scale, c=scale.squeeze(1) + 1)

    scale = torch.arange(1.0, n + 1, device=device).unsqueeze(1)
    out = conditional_update(target, cond, func, x, scale=scale)
    for i in range(n):  # slow reference: row by row
        if mask[i]:
            torch.testing.assert_close(out.h[i], x[i] * scale[i])
            torch.testing.assert_close(out.c[i], scale[i, 0] + 1)
        else:
            torch.testing.assert_close(out.h[i], target.h[i])
            torch.testing.assert_close(out.c[i], target.c[i])
    # func runs once on the selected rows, never when nothing is selected
    assert calls == ([sum(mask)] if any(mask) else [])
    assert torch.equal(target.c, torch.zeros(n, device=device))  # target untouched


def test_conditional_update_gradients_and_side_effect_form(device):
    target = torch.ones(4, 2, device=device, requires_grad=True)
    x = torch.ones(4, 2, device=device, requires_grad=True)
    cond = torch.tensor([1, 0, 1, 0], device=device)  # numeric mask
    out = conditional_update(target, cond, lambda a: 3 * a, x)
    out.sum().backward()
    rows = torch.tensor([1.0, 0.0, 1.0, 0.0], device=device).unsqueeze(1).expand(4, 2)
    torch.testing.assert_close(x.grad, 3 * rows)
    torch.testing.assert_close(target.grad, 1 - rows)
    seen = []
    assert conditional_update((), cond, lambda a: seen.append(a.shape) or (), x) == ()
    assert seen == [torch.Size([2, 2])]


def test_conditional_update_errors():
    t = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="cond"):
        conditional_update(t, torch.ones(3, 1, dtype=torch.bool), lambda: t)
    with pytest.raises(ValueError, match="target"):
        conditional_update(t, torch.ones(4, dtype=torch.bool), lambda: t)
    with pytest.raises(ValueError, match="args"):
        conditional_update(t, torch.ones(3, dtype=torch.bool), lambda a: a, torch.zeros(5))
    with pytest.raises(ValueError):
        conditional_update({"a": t}, torch.ones(3, dtype=torch.bool), lambda: {"b": t})


def test_conditional_update_func_output_of_wrong_shape():
    target = {"a": torch.zeros(4, 2), "b": [torch.zeros(4)]}
    cond = torch.tensor([True, False, True, True])  # 3 rows selected
    cases = [
        (lambda: {"a": torch.ones(4, 2), "b": [torch.ones(3)]}, "a", r"\(3, 2\)", r"\(4, 2\)"),
        (lambda: {"a": torch.ones(3, 2), "b": [torch.ones(3, 1)]}, "b.0", r"\(3,\)", r"\(3, 1\)"),
        (lambda: {"a": torch.ones(3, 3), "b": [torch.ones(3)]}, "a", r"\(3, 2\)", r"\(3, 3\)"),
    ]
    for func, path, expected, got in cases:
        with pytest.raises(ValueError, match=f"func.*{expected}.*'{path}'.*{got}"):
            conditional_update(target, cond, func)
    with pytest.raises(TypeError, match="func.*float.*'a'"):
        conditional_update(target, cond, lambda: {"a": 1.0, "b": [torch.ones(3)]})
    assert not target["a"].any() and not target["b"][0].any()


def test_select_from_mask(device):
    data = {
        "a": torch.arange(5, device=device),
        "b": [torch.arange(10.0, device=device).reshape(5, 2)],
    }
    mask = torch.tensor([0, 2, 0, 1, 0], device=device)
    out = select_from_mask(data, mask)
    assert out["a"].tolist() == [1, 3]
    assert out["b"][0].tolist() == [[2.0, 3.0], [6.0, 7.0]]
    with pytest.raises(ValueError, match="b.0"):
        select_from_mask({"b": [torch.zeros(4)]}, torch.ones(5, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask"):
        select_from_mask(data, torch.ones(5, 1))
