"""Tests for alf.utils.common_core (generic helpers of alf.utils.common)."""

import collections
import logging
import os

import numpy as np
import pytest
import torch
import torch.distributions as td
import torch.nn as nn

from alf.tensor_specs import BoundedTensorSpec, TensorSpec
from alf.utils import common_core as cc

State = collections.namedtuple("State", ["h", "c"])


def test_as_list_and_tuplify2d():
    lst = [1, 2]
    assert cc.as_list(None) == [] and cc.as_list(lst) is lst
    assert cc.as_list((1, 2)) == [1, 2] and cc.as_list("ab") == ["ab"]
    assert cc.tuplify2d(3) == (3, 3) and cc.tuplify2d((1, 2)) == (1, 2)
    assert cc.tuplify2d([1, 2, 3]) == ([1, 2, 3], [1, 2, 3])
    with pytest.raises(ValueError, match="length 2"):
        cc.tuplify2d((1, 2, 3))


def test_abs_path_add_method_call_stack():
    assert cc.abs_path("~/x") == os.path.join(os.path.expanduser("~"), "x")
    assert os.path.isabs(cc.abs_path("rel"))

    class A:
        pass

    @cc.add_method(A)
    def twice(self, x):
        return 2 * x

    assert A().twice(4) == 8

    def inner():
        return cc.call_stack()

    stack = inner()
    assert stack[-1].endswith("in inner") and any("test_abs_path_add_method" in s for s in stack)


def test_expand_dims_as(device):
    x, y = torch.ones(2, 3, device=device), torch.ones(2, 3, 4, 5, device=device)
    assert cc.expand_dims_as(x, y).shape == (2, 3, 1, 1)
    assert cc.expand_dims_as(x, y, end=False).shape == (1, 1, 2, 3)
    assert cc.expand_dims_as(x, x).shape == (2, 3)
    with pytest.raises(ValueError, match="x must not have more dims"):
        cc.expand_dims_as(y, x)


def test_reset_state_if_necessary(device):
    state = State(h=torch.arange(6.0, device=device).reshape(3, 2), c=torch.ones(3, device=device))
    init = State(h=torch.full((3, 2), -1.0, device=device), c=torch.zeros(3, device=device))
    mask = torch.tensor([True, False, True], device=device)
    out = cc.reset_state_if_necessary(state, init, mask)
    expected_h = np.where(mask.cpu().numpy()[:, None], -1.0, state.h.cpu().numpy())
    np.testing.assert_array_equal(out.h.cpu().numpy(), expected_h)
    assert out.c.tolist() == [0.0, 1.0, 0.0]
    per_leaf = State(h=mask, c=~mask)
    out = cc.reset_state_if_necessary(state, init, per_leaf)
    assert out.c.tolist() == [1.0, 0.0, 1.0]
    with pytest.raises(ValueError, match="c"):
        cc.reset_state_if_necessary(state, {"h": init.h}, mask)


def test_get_initial_policy_state_and_flattened_size():
    spec = {
        "rnn": State(h=TensorSpec((4,)), c=TensorSpec((4,))),
        "step": TensorSpec((), torch.int64),
    }
    out = cc.get_initial_policy_state(3, spec)
    assert out["rnn"].h.shape == (3, 4) and out["step"].dtype == torch.int64
    assert not out["rnn"].c.any()
    size = cc.flattened_size(BoundedTensorSpec((2, 3, 4)))
    assert size == 24 and isinstance(size, np.int64)
    assert cc.flattened_size(TensorSpec(())) == 1


def test_check_numerics():
    cc.check_numerics({"a": torch.ones(2), "b": [None, 3, torch.zeros(())]})
    with pytest.raises(AssertionError, match="b.1"):
        cc.check_numerics({"a": torch.ones(2), "b": [None, torch.tensor([0.0, float("nan")])]})
    with pytest.raises(AssertionError):
        cc.check_numerics(torch.tensor(float("inf")))


def test_cast_and_image_scale_transformers(device):
    obs = {"img": torch.tensor([[0, 255], [51, 102]], dtype=torch.uint8, device=device), "n": 3}
    cast = cc.cast_transformer(obs, torch.float64)
    assert cast["img"].dtype == torch.float64 and cast["n"] == 3
    scaled = cc.image_scale_transformer(obs, fields=["img"])
    np.testing.assert_allclose(
        scaled["img"].cpu().numpy(), obs["img"].cpu().numpy() / 255.0 * 2 - 1, rtol=1e-6
    )
    assert scaled["n"] == 3 and obs["img"].dtype == torch.uint8
    direct = cc.image_scale_transformer(obs["img"], min=0.0, max=1.0)
    np.testing.assert_allclose(direct.cpu().numpy(), obs["img"].cpu().numpy() / 255.0, rtol=1e-6)
    with pytest.raises(ValueError, match="uint8"):
        cc.image_scale_transformer({"x": torch.zeros(2)}, fields=["x"])
    with pytest.raises(ValueError, match="nope"):
        cc.image_scale_transformer(obs, fields=["img", "nope"])
    assert obs["img"].dtype == torch.uint8  # a bad field leaves obs as it was


def test_detach_tensors_and_distributions():
    w = torch.ones(3, requires_grad=True)
    loc = w * 2
    base = td.Normal(loc, torch.ones(3))
    dist = td.TransformedDistribution(base, [td.AffineTransform(w * 1, 2.0)])
    cat = td.Categorical(logits=w * 3)
    out = cc.detach({"x": w * 5, "d": dist, "cat": cat, "other": "keep"})
    assert not out["x"].requires_grad and out["other"] == "keep"
    assert not out["d"].base_dist.loc.requires_grad
    assert not out["d"].transforms[0].loc.requires_grad
    assert not out["d"].rsample().requires_grad
    assert not out["cat"].logits.requires_grad and not out["cat"].probs.requires_grad
    # the originals keep their graph
    assert dist.base_dist.loc.requires_grad and dist.rsample().requires_grad
    # the detached distribution computes the same values
    x = torch.tensor([0.5, 1.0, 2.0])
    torch.testing.assert_close(out["d"].log_prob(x), dist.log_prob(x).detach())
    torch.testing.assert_close(out["d"].transforms[0].inv(x), dist.transforms[0].inv(x).detach())


def test_get_all_parameters():
    class Holder:
        def __init__(self):
            self.net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
            self.extra = {"p": nn.Parameter(torch.zeros(2)), "t": torch.zeros(1)}
            self.alias = self.net  # shared: reported once
            self.items = [nn.Parameter(torch.ones(1))]

    h = Holder()
    found = cc.get_all_parameters(h)
    names = [name for name, _ in found]
    assert names == [
        "net.0.weight",
        "net.0.bias",
        "net.2.weight",
        "net.2.bias",
        "extra.p",
        "items.0",
    ]
    assert found[4][1] is h.extra["p"]


def test_logging_once(caplog):
    caplog.set_level(logging.INFO, logger="alf")
    for i in range(3):
        cc.warning_once("warn %d", i)
        cc.info_once("info %d", i)
    cc.warning("plain %s", "w")
    cc.info("plain %s", "i")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["warn 0", "info 0", "plain w", "plain i"]
    assert caplog.records[0].levelno == logging.WARNING
    assert all(r.filename == "test_common_core.py" for r in caplog.records)
