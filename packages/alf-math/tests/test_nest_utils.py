"""Tests of alf.nest.utils against NumPy and hand computations."""

import collections

import numpy as np
import pytest
import torch
from torch import nn

import alf.nest
from alf.nest.utils import (
    NestCombiner,
    NestConcat,
    NestMultiply,
    NestOuterProduct,
    NestSum,
    convert_device,
    get_nested_field,
    get_outer_rank,
    grad,
    make_nested_module,
    stack_nests,
    zeros_like,
)
from alf.tensor_specs import BoundedTensorSpec, TensorSpec

# declared out of alphabetical order: flattened as (a, m, z)
Rev = collections.namedtuple("Rev", ["z", "a", "m"])


def _randn(*shape, device):
    return torch.randn(*shape, device=device)


def test_alf_nest_utils_is_reachable_from_alf_nest():
    assert alf.nest.utils.NestConcat is NestConcat
    assert issubclass(NestConcat, NestCombiner) and NestConcat().name == "NestConcat"


def test_nest_concat_in_flattening_order(device):
    x = Rev(
        z=_randn(4, 2, device=device),
        a=_randn(4, 3, device=device),
        m=[_randn(4, 1, device=device)],
    )
    out = NestConcat()(x)
    expected = np.concatenate([x.a.cpu().numpy(), x.m[0].cpu().numpy(), x.z.cpu().numpy()], axis=1)
    np.testing.assert_array_equal(out.cpu().numpy(), expected)
    # dim=0 is the first dimension after the batch dimension
    y = {"p": _randn(4, 2, 5, device=device), "q": _randn(4, 3, 5, device=device)}
    out0 = NestConcat(dim=0)(y)
    assert out0.shape == (4, 5, 5)
    np.testing.assert_array_equal(
        out0.cpu().numpy(), np.concatenate([y["p"].cpu().numpy(), y["q"].cpu().numpy()], axis=1)
    )


def test_nest_concat_with_a_mask(device):
    x = {
        "a": _randn(2, 3, device=device),
        "b": _randn(2, 4, device=device),
        "c": [_randn(2, 1, device=device), _randn(2, 2, device=device)],
    }
    mask = {"a": True, "b": False, "c": [False, True]}
    out = NestConcat(nest_mask=mask)(x)
    expected = np.concatenate([x["a"].cpu().numpy(), x["c"][1].cpu().numpy()], axis=1)
    np.testing.assert_array_equal(out.cpu().numpy(), expected)
    # a shallower mask selects whole sub-nests
    out = NestConcat(nest_mask={"a": False, "b": True, "c": True})(x)
    parts = [x["b"], x["c"][0], x["c"][1]]
    np.testing.assert_array_equal(
        out.cpu().numpy(), np.concatenate([p.cpu().numpy() for p in parts], axis=1)
    )
    with pytest.raises(ValueError, match="keys"):
        NestConcat(nest_mask={"a": True})(x)
    with pytest.raises(ValueError, match="at least one tensor"):
        NestConcat(nest_mask={"a": False, "b": False, "c": False})(x)


def test_combiners_on_specs_give_the_spec_of_the_result():
    specs = {"a": TensorSpec((3,)), "b": BoundedTensorSpec((2,), minimum=0, maximum=1)}
    assert NestConcat()(specs) == TensorSpec((5,))
    assert NestConcat(nest_mask={"a": False, "b": True})(specs) == TensorSpec((2,))
    images = [TensorSpec((2, 8, 8), torch.uint8), TensorSpec((3, 8, 8), torch.uint8)]
    assert NestConcat(dim=0)(images) == TensorSpec((5, 8, 8), torch.uint8)
    same = [TensorSpec((4,)), TensorSpec((4,)), TensorSpec((1,))]
    assert NestSum()(same) == TensorSpec((4,))
    assert NestMultiply()(same) == TensorSpec((4,))
    assert NestOuterProduct()([TensorSpec((2,)), TensorSpec((3,))]) == TensorSpec((12,))
    assert NestOuterProduct(padding=False)([TensorSpec((2,)), TensorSpec((3,))]) == TensorSpec((6,))
    with pytest.raises(TypeError, match="only tensors or only TensorSpecs"):
        NestSum()([TensorSpec((2,)), torch.zeros(1, 2)])


def test_nest_sum_and_multiply(device):
    xs = [_randn(3, 4, device=device) for _ in range(3)]
    n = [x.cpu().numpy() for x in xs]
    np.testing.assert_allclose(NestSum()(xs).cpu().numpy(), n[0] + n[1] + n[2], rtol=1e-6)
    np.testing.assert_allclose(
        NestSum(average=True)(xs).cpu().numpy(), (n[0] + n[1] + n[2]) / 3, rtol=1e-5
    )
    np.testing.assert_allclose(
        NestSum(activation=torch.relu)(xs).cpu().numpy(),
        np.maximum(n[0] + n[1] + n[2], 0),
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        NestMultiply()({"p": xs[0], "q": xs[1]}).cpu().numpy(), n[0] * n[1], rtol=1e-6
    )
    np.testing.assert_allclose(
        NestMultiply(activation=torch.tanh)(xs).cpu().numpy(),
        np.tanh(n[0] * n[1] * n[2]),
        rtol=1e-5,
    )


def test_nest_outer_product(device):
    x = _randn(2, 3, device=device)
    y = _randn(2, 2, device=device)
    z = _randn(2, 2, device=device)
    out = NestOuterProduct(padding=False)([x, y, z])
    expected = np.stack(
        [
            np.einsum(
                "i,j,k->ijk", x[b].cpu().numpy(), y[b].cpu().numpy(), z[b].cpu().numpy()
            ).ravel()
            for b in range(2)
        ]
    )
    np.testing.assert_allclose(out.cpu().numpy(), expected, rtol=1e-5)
    padded = NestOuterProduct()([x, y])
    assert padded.shape == (2, 12)
    px = np.concatenate([x.cpu().numpy(), np.ones((2, 1))], axis=1)
    py = np.concatenate([y.cpu().numpy(), np.ones((2, 1))], axis=1)
    np.testing.assert_allclose(
        padded.cpu().numpy(), np.einsum("bi,bj->bij", px, py).reshape(2, -1), rtol=1e-6
    )
    # the padded product holds the inputs themselves
    np.testing.assert_allclose(padded.reshape(2, 4, 3)[:, :3, 2].cpu().numpy(), x.cpu().numpy())
    with pytest.raises(ValueError, match="batch size 2"):
        NestOuterProduct()([x, _randn(3, 2, device=device)])


def test_stack_nests(device):
    nests = [
        {"a": torch.full((2,), float(i), device=device), "b": Rev(i, i + 1, i + 2)}
        for i in range(3)
    ]
    nests = [alf.nest.map_structure(lambda v: torch.as_tensor(v, device=device), n) for n in nests]
    out = stack_nests(nests)
    assert out["a"].shape == (3, 2) and out["a"][:, 0].tolist() == [0.0, 1.0, 2.0]
    assert out["b"].m.tolist() == [2, 3, 4]
    out1 = stack_nests([{"a": n["a"]} for n in nests], dim=1)
    assert out1["a"].shape == (2, 3) and out1["a"][0].tolist() == [0.0, 1.0, 2.0]
    single = stack_nests(nests[:1])
    assert single["a"].shape == (1, 2)
    with pytest.raises(ValueError, match="at least one nest"):
        stack_nests([])


def test_get_outer_rank():
    specs = {"a": TensorSpec((3,)), "b": TensorSpec(())}
    assert get_outer_rank({"a": torch.zeros(5, 3), "b": torch.zeros(5)}, specs) == 1
    assert get_outer_rank({"a": torch.zeros(2, 5, 3), "b": torch.zeros(2, 5)}, specs) == 2
    assert get_outer_rank(torch.zeros(3), TensorSpec((3,))) == 0
    with pytest.raises(ValueError, match=r"outer rank: 1 at 'a' but 2 at 'b'"):
        get_outer_rank({"a": torch.zeros(5, 3), "b": torch.zeros(5, 5)}, specs)
    with pytest.raises(ValueError, match=r"outer_dims \+ \[3\] at 'a'; got \[5, 4\]"):
        get_outer_rank({"a": torch.zeros(5, 4), "b": torch.zeros(5)}, specs)


def test_convert_device(device):
    value = {"a": torch.zeros(2), "b": [torch.ones(1, device=device), 3]}
    out = convert_device(value, device)
    assert out["a"].device.type == device.type and out["b"][1] == 3
    assert out["b"][0] is value["b"][0]  # already there: not copied
    back = convert_device(out, "cpu")
    assert back["a"].device.type == "cpu" and back["b"][0].device.type == "cpu"
    default = convert_device(value)
    assert default["a"].device == torch.empty(()).device


def test_grad():
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    b = torch.tensor(3.0, requires_grad=True)
    unused = torch.zeros(2, requires_grad=True)
    params = {"w": w, "b": [b], "u": unused}
    objective = (w * w).sum() * b
    grads = grad(params, objective, retain_graph=True)
    # d/dw = 2 w b, d/db = sum(w^2)
    assert grads["w"].tolist() == [6.0, 12.0] and grads["b"][0].item() == 5.0
    assert grads["u"].tolist() == [0.0, 0.0]
    again = grad([w], objective)  # the graph was retained
    assert again[0].tolist() == [6.0, 12.0]


def test_zeros_like():
    value = Rev(torch.ones(2, dtype=torch.int64), torch.ones(3), [torch.ones((), dtype=torch.bool)])
    out = zeros_like(value)
    assert out.z.dtype == torch.int64 and out.z.tolist() == [0, 0]
    assert out.a.tolist() == [0.0] * 3 and out.m[0].item() is False


def test_make_nested_module():
    lin = nn.Linear(2, 3)
    module = make_nested_module(
        {
            "a": lin,
            "b": [nn.Linear(3, 1), nn.ReLU()],
            "c": Rev(nn.Tanh(), nn.Identity(), nn.Linear(1, 1)),
        }
    )
    assert isinstance(module, nn.ModuleDict) and isinstance(module["b"], nn.ModuleList)
    assert module["a"] is lin and isinstance(module["c"], nn.ModuleDict)
    n_params = sum(p.numel() for p in module.parameters())
    assert n_params == (2 * 3 + 3) + (3 + 1) + (1 + 1)
    assert make_nested_module(lin) is lin
    with pytest.raises(TypeError, match="nested must hold nn.Module leaves; got int at 'b.1'"):
        make_nested_module({"a": lin, "b": [lin, 3]})
    lenient = make_nested_module([lin, "x"], ignore_non_module=True)
    assert lenient[0] is lin and lenient[1] is None and len(lenient) == 2


def test_get_nested_field():
    value = {"obs": Rev(z=1, a={"k": 2}, m=[3, 4]), "r": 5}
    assert get_nested_field(value, "obs.a.k") == 2
    assert get_nested_field(value, {"x": "r", "y": ["obs.m.1", "obs.z"]}) == {"x": 5, "y": [4, 1]}
    with pytest.raises(ValueError, match="field 'obs.q' names no field"):
        get_nested_field(value, ["r", "obs.q"])
