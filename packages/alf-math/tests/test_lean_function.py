"""lean_function: same values and gradients as the plain function, and less
memory kept for backward (counted deterministically as the bytes of the
tensors autograd saves, through saved_tensors_hooks)."""

import copy

import pytest
import torch
from torch import nn

from alf.utils.lean_function import lean_function


def myfunc(x, w, b, scale=1.0):
    return torch.sigmoid(scale * (x @ w) + b)


def _leaves(device):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, generator=g).to(device).requires_grad_()
    w = torch.randn(3, 5, generator=g).to(device).requires_grad_()
    b = torch.randn(5, generator=g).to(device).requires_grad_()
    return x, w, b


def test_function_with_keyword_arguments_autograd_grad(device):
    x, w, b = _leaves(device)
    lean = lean_function(myfunc)
    assert lean.__name__ == "myfunc"
    for kwargs in ({}, {"scale": 2.5}, {"b": b, "scale": 0.5}):
        args = (x, w) if "b" in kwargs else (x, w, b)
        y_plain, y_lean = myfunc(*args, **kwargs), lean(*args, **kwargs)
        assert y_lean.grad_fn is not None
        torch.testing.assert_close(y_lean, y_plain, rtol=0, atol=0)
        cot = torch.linspace(-1, 1, y_plain.numel(), device=device).view_as(y_plain)
        g_plain = torch.autograd.grad(y_plain, (x, w, b), cot)
        g_lean = torch.autograd.grad(y_lean, (x, w, b), cot)
        for a, c in zip(g_lean, g_plain):
            torch.testing.assert_close(a, c)


def test_function_backward_and_partial_requires_grad(device):
    x, w, b = _leaves(device)
    x = x.detach()  # a constant input
    lean = lean_function(myfunc)
    myfunc(x, w, b, scale=3.0).pow(2).sum().backward()
    expected = (w.grad.clone(), b.grad.clone())
    w.grad = b.grad = None
    lean(x, w, b=b, scale=3.0).pow(2).sum().backward()
    torch.testing.assert_close(w.grad, expected[0])
    torch.testing.assert_close(b.grad, expected[1])
    assert x.grad is None


def test_nested_inputs_and_outputs(device):
    x, w, b = _leaves(device)

    def func(pair, extra=None, *, bias):
        h = pair[0] @ pair[1] + bias["b"]
        return {"h": torch.tanh(h), "argmax": h.argmax(-1), "none": None, "n": extra}

    lean = lean_function(func)
    out_plain = func((x, w), extra=7, bias={"b": b})
    out_lean = lean((x, w), extra=7, bias={"b": b})
    assert out_lean["none"] is None and out_lean["n"] == 7
    assert torch.equal(out_lean["argmax"], out_plain["argmax"])
    assert not out_lean["argmax"].requires_grad
    torch.testing.assert_close(out_lean["h"], out_plain["h"], rtol=0, atol=0)
    g_plain = torch.autograd.grad(out_plain["h"].sum(), (x, w, b))
    g_lean = torch.autograd.grad(out_lean["h"].sum(), (x, w, b))
    for a, c in zip(g_lean, g_plain):
        torch.testing.assert_close(a, c)


def test_unused_output_gets_no_gradient(device):
    x, w, _ = _leaves(device)
    lean = lean_function(lambda x, w: (x @ w, (x * 2).sum()))
    first, _ = lean(x, w)
    (gx,) = torch.autograd.grad(first.sum(), (x,))
    torch.testing.assert_close(gx, w.sum(1).expand(4, 3))


def _mlp(depth, width, device, activation=nn.ReLU):
    torch.manual_seed(0)
    layers = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), activation()]
    return nn.Sequential(*layers).to(device)


def test_module_values_gradients_and_attributes(device):
    net = _mlp(4, 8, device)
    lean = lean_function(net)
    assert isinstance(lean, nn.Sequential) and lean is not net
    assert lean[0] is net[0] and len(lean) == len(net)
    assert lean.state_dict().keys() == net.state_dict().keys()
    x = torch.randn(5, 8, device=device, requires_grad=True)
    y_plain, y_lean = net(x), lean(x)
    torch.testing.assert_close(y_lean, y_plain, rtol=0, atol=0)
    params = list(net.parameters())
    g_plain = torch.autograd.grad(y_plain.square().sum(), [x] + params)
    g_lean = torch.autograd.grad(y_lean.square().sum(), [x] + params)
    for a, c in zip(g_lean, g_plain):
        torch.testing.assert_close(a, c)
    # .backward() accumulates into the shared parameters
    lean(x).sum().backward()
    for p, g in zip(params, torch.autograd.grad(net(x).sum(), params)):
        torch.testing.assert_close(p.grad, g)


class _Scaled(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)
        self.tag = "scaled"

    def forward(self, x, scale=1.0, state=()):
        return self.fc(x) * scale, state

    def describe(self):
        return self.tag


def test_module_keyword_arguments_methods_and_deepcopy(device):
    module = _Scaled().to(device)
    lean = lean_function(module)
    assert lean.describe() == "scaled" and lean.fc is module.fc
    x = torch.randn(4, 3, device=device)
    out, state = lean(x, scale=3.0)
    assert state == ()
    torch.testing.assert_close(out, module(x, scale=3.0)[0], rtol=0, atol=0)
    (gw,) = torch.autograd.grad(out.sum(), (module.fc.weight,))
    torch.testing.assert_close(gw, 3.0 * x.sum(0).expand(2, 3))
    # a deep copy computes with (and differentiates) its own parameters
    clone = copy.deepcopy(lean)
    with torch.no_grad():
        clone.fc.weight.mul_(2)
    y, _ = clone(x)
    torch.testing.assert_close(y, x @ clone.fc.weight.T + clone.fc.bias)
    (gc,) = torch.autograd.grad(y.sum(), (clone.fc.weight,))
    torch.testing.assert_close(gc, x.sum(0).expand(2, 3))


def test_without_grad_calls_function_directly(device):
    x, w, b = _leaves(device)
    lean = lean_function(myfunc)
    with torch.no_grad():
        y = lean(x, w, b)
    assert y.grad_fn is None
    y = lean(x.detach(), w.detach(), b.detach())
    assert y.grad_fn is None


def test_not_callable():
    with pytest.raises(TypeError, match="func must be callable; got int"):
        lean_function(3)


# ---- memory -------------------------------------------------------------------
def saved_bytes(fn):
    """Bytes of the distinct storages autograd saves for backward while
    ``fn()`` runs (``fn`` builds the graph): the memory kept alive between
    forward and backward besides parameters the caller holds anyway."""
    storages = {}

    def pack(t):
        s = t.untyped_storage()
        storages[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return out, sum(storages.values())


def _lean_blocks(net, layers_per_block):
    """The layers of ``net`` (shared) grouped into lean blocks."""
    layers = list(net)
    step = 2 * layers_per_block
    return nn.Sequential(
        *[lean_function(nn.Sequential(*layers[i : i + step])) for i in range(0, len(layers), step)]
    )


def test_saved_memory_of_deep_mlp(device):
    depth, width, batch, per_block = 16, 64, 256, 4
    net = _mlp(depth, width, device, activation=nn.Tanh)
    lean = _lean_blocks(net, per_block)
    x = torch.randn(batch, width, device=device, requires_grad=True)
    y_plain, plain = saved_bytes(lambda: net(x))
    y_lean, lean_bytes = saved_bytes(lambda: lean(x))
    param_bytes = sum(p.numel() * p.element_size() for p in net.parameters())
    activation_bytes = batch * width * 4
    n_blocks = depth // per_block
    # lean blocks keep exactly their inputs (x and one activation per later
    # block) and the parameters
    assert lean_bytes == x.numel() * 4 + (n_blocks - 1) * activation_bytes + param_bytes
    # the plain network keeps at least x and every tanh output (tanh's backward
    # needs it; torch 2.13 also keeps the weight matrices, not counted here)
    assert plain >= x.numel() * 4 + depth * activation_bytes
    assert lean_bytes * 2 < plain
    torch.testing.assert_close(y_lean, y_plain, rtol=0, atol=0)
    params = list(net.parameters())
    for a, c in zip(
        torch.autograd.grad(y_lean.sum(), [x] + params),
        torch.autograd.grad(y_plain.sum(), [x] + params),
    ):
        torch.testing.assert_close(a, c)


def test_cuda_peak_memory(device):
    if device.type != "cuda":
        pytest.skip("peak allocator memory is measured on CUDA only")
    depth, width, batch = 32, 256, 4096
    net = _mlp(depth, width, device, activation=nn.Tanh)
    x = torch.randn(batch, width, device=device, requires_grad=True)

    def peak(model):
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        model(x).sum().backward()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base

    plain_peak = peak(net)
    lean_peak = peak(_lean_blocks(net, 4))
    assert lean_peak * 2 < plain_peak


# ---- autocast -----------------------------------------------------------------
def _autocast_grads(fn, x, w, b, backward_autocast):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = fn(x, w, b)
    cot = torch.linspace(-1, 1, y.numel()).view_as(y).to(y.dtype)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=backward_autocast):
        return y, torch.autograd.grad(y, (x, w, b), cot)


@pytest.mark.parametrize("backward_autocast", [False, True])
def test_recomputation_under_the_forward_autocast_settings(backward_autocast):
    # forward under bfloat16 autocast (x @ w in bfloat16): the recomputation
    # must be the same computation, whether or not autocast is on around
    # backward
    x, w, b = _leaves("cpu")
    y_plain, g_plain = _autocast_grads(myfunc, x, w, b, backward_autocast)
    y_lean, g_lean = _autocast_grads(lean_function(myfunc), x, w, b, backward_autocast)
    assert y_lean.dtype == y_plain.dtype
    torch.testing.assert_close(y_lean, y_plain, rtol=0, atol=0)
    for a, c in zip(g_lean, g_plain):
        torch.testing.assert_close(a, c, rtol=0, atol=0)


def test_recomputation_without_autocast_when_backward_is_under_autocast():
    x, w, b = _leaves("cpu")
    y_plain, y_lean = myfunc(x, w, b), lean_function(myfunc)(x, w, b)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        g_plain = torch.autograd.grad(y_plain.sum(), (x, w, b))
        g_lean = torch.autograd.grad(y_lean.sum(), (x, w, b))
    for a, c in zip(g_lean, g_plain):
        torch.testing.assert_close(a, c, rtol=0, atol=0)


# ---- higher-order gradients ---------------------------------------------------
def _penalty_grads(fn, x, w, b, params):
    """Gradient of ``sum(y) + |dy/dx|^2`` (a gradient penalty) w.r.t. ``params``."""
    y = fn(x, w, b)
    (gx,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    return torch.autograd.grad(y.sum() + gx.square().sum(), params)


def test_gradient_of_a_gradient(device):
    # the gradients of create_graph=True used to be constants: the penalty
    # term silently contributed nothing
    x, w, b = _leaves(device)
    g_plain = _penalty_grads(myfunc, x, w, b, (x, w, b))
    g_lean = _penalty_grads(lean_function(myfunc), x, w, b, (x, w, b))
    for a, c in zip(g_lean, g_plain):
        torch.testing.assert_close(a, c)


def test_gradient_of_a_gradient_with_a_tensor_given_twice(device):
    x, w, b = _leaves(device)
    x = x[:, :1].expand(4, 5).contiguous()  # as wide as b

    def func(u, v):
        return torch.tanh(u * v + b)

    results = []
    for fn in (func, lean_function(func)):
        y = fn(x, x)
        (gx,) = torch.autograd.grad(y.sum(), x, create_graph=True)
        results.append((gx, *torch.autograd.grad(gx.square().sum(), (x, b))))
    for a, c in zip(*results):
        torch.testing.assert_close(a, c)


def test_gradient_of_a_gradient_of_a_module(device):
    net = _mlp(2, 3, device, activation=nn.Tanh)
    x = torch.randn(4, 3, device=device, requires_grad=True)
    params = [x, *net.parameters()]
    results = []
    for model in (net, lean_function(net)):
        y = model(x)
        (gx,) = torch.autograd.grad(y.sum(), x, create_graph=True)
        results.append(torch.autograd.grad(gx.square().sum(), params))
    for a, c in zip(*results):
        torch.testing.assert_close(a, c)
