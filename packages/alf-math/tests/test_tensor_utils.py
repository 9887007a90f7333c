"""Tests for alf.utils.tensor_utils against NumPy and slow per-tensor loops."""

import collections
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alf.utils import tensor_utils as tu

fixture_ok = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])

Pair = collections.namedtuple("Pair", ["w", "b"])


def _np_norm(arrays):
    return np.sqrt(sum(float((np.asarray(a, dtype=np.float64) ** 2).sum()) for a in arrays))


def _nest(device, scale=1.0):
    g = torch.Generator().manual_seed(3)
    return {
        "layer": Pair(torch.randn(4, 3, generator=g) * scale, torch.randn(3, generator=g) * scale),
        "none": None,
        "list": [torch.randn(2, 2, 2, generator=g, dtype=torch.float64) * scale, None],
        "half": torch.randn(5, generator=g).to(torch.float16),
    }, device


def _to(nest_and_device):
    nest, device = nest_and_device

    def move(x):
        return None if x is None else x.to(device)

    return {
        "layer": Pair(move(nest["layer"].w), move(nest["layer"].b)),
        "none": None,
        "list": [move(nest["list"][0]), None],
        "half": move(nest["half"]),
    }


def _leaves(nest):
    return [nest["layer"].w, nest["layer"].b, nest["list"][0], nest["half"]]


# ---------------------------------------------------------------------------
# global_norm / clip_by_global_norm / clip_by_norms


def test_global_norm_matches_numpy(device):
    nest = _to(_nest(device))
    expected = _np_norm([t.cpu().numpy() for t in _leaves(nest)])
    got = tu.global_norm(nest)
    assert got.ndim == 0 and got.dtype == torch.float64  # promoted by the float64 leaf
    np.testing.assert_allclose(float(got), expected, rtol=1e-6)


def test_global_norm_empty_and_all_none():
    assert float(tu.global_norm([])) == 0.0
    assert float(tu.global_norm({"a": None, "b": [None]})) == 0.0


def test_global_norm_bad_leaves():
    with pytest.raises(TypeError, match="a.1"):
        tu.global_norm({"a": [torch.zeros(2), 3.0]})
    with pytest.raises(TypeError, match="floating"):
        tu.global_norm([torch.zeros(2, dtype=torch.int64)])


@pytest.mark.parametrize("in_place", [False, True])
@pytest.mark.parametrize("scale", [0.01, 100.0])
def test_clip_by_global_norm_against_loop(device, in_place, scale):
    nest = _to(_nest(device, scale))
    originals = [t.clone() for t in _leaves(nest)]
    norm = _np_norm([t.cpu().numpy() for t in originals])
    clip_norm = 2.0
    clipped, got_norm = tu.clip_by_global_norm(nest, clip_norm, in_place=in_place)
    np.testing.assert_allclose(float(got_norm), norm, rtol=1e-3)  # float16 leaf
    factor = clip_norm / max(norm, clip_norm)
    assert clipped["none"] is None and clipped["list"][1] is None
    assert isinstance(clipped["layer"], Pair)
    for orig, new in zip(originals, _leaves(clipped)):
        assert new.dtype == orig.dtype and new.device == orig.device
        expected = orig.cpu().double().numpy() * factor
        tol = 2e-3 if orig.dtype == torch.float16 else 1e-6
        np.testing.assert_allclose(new.cpu().double().numpy(), expected, rtol=tol, atol=1e-6)
    inputs_changed = any(not torch.equal(o, t) for o, t in zip(originals, _leaves(nest)))
    assert inputs_changed == (in_place and factor < 1)
    if in_place:
        assert clipped is nest


def test_clip_by_global_norm_use_norm(device):
    x = torch.ones(4, device=device)  # norm 2
    clipped, norm = tu.clip_by_global_norm([x], 1.0, use_norm=4.0)
    assert float(norm) == 4.0
    torch.testing.assert_close(clipped[0], x / 4)
    clipped, norm = tu.clip_by_global_norm([x], 1.0, use_norm=torch.tensor(0.5))
    torch.testing.assert_close(clipped[0], x)


@pytest.mark.parametrize("in_place", [False, True])
def test_clip_by_global_norm_with_nan_norm_leaves_tensors(device, in_place):
    # ALF: a NaN global norm leaves the tensors as they are (and warns), rather
    # than multiplying every tensor by NaN.
    x = torch.tensor([1.0, float("nan"), 3.0], device=device)
    y = torch.full((2, 2), 7.0, device=device)
    before = [x.clone(), y.clone()]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clipped, norm = tu.clip_by_global_norm([x, y], 1.0, in_place=in_place)
        clipped2, _ = tu.clip_by_global_norm([y], 1.0, use_norm=float("nan"))
    assert torch.isnan(norm)
    for got, want in zip(clipped, before):
        torch.testing.assert_close(got, want, equal_nan=True)
    torch.testing.assert_close(clipped2[0], before[1])
    if device.type == "cpu":
        assert sum("NaN" in str(w.message) for w in caught) == 2


@pytest.mark.parametrize(
    "use_norm", [5, np.int64(5), torch.tensor(5), torch.tensor(5.0, dtype=torch.float16)]
)
@pytest.mark.parametrize("clip_norm", [0.5, 1e-6])
def test_clip_by_global_norm_use_norm_of_other_dtypes(device, use_norm, clip_norm):
    # the factor clip_norm / max(use_norm, clip_norm) is not computed in use_norm's
    # dtype (an integer norm truncated 0.5 to 0, float16 rounds 1e-6)
    x = torch.ones(4, device=device)
    clipped, norm = tu.clip_by_global_norm([x], clip_norm, use_norm=use_norm)
    assert float(norm) == 5.0
    torch.testing.assert_close(clipped[0], x * (clip_norm / 5.0), rtol=1e-6, atol=0)


@pytest.mark.parametrize("clip_norm", [float("inf"), torch.tensor(float("inf"))])
def test_infinite_clip_norm_clips_nothing(device, clip_norm):
    # the limit of t * c / max(||t||, c) for c -> inf is t (inf / inf gave NaN)
    x = torch.tensor([3.0, -4.0], device=device)
    clipped, norm = tu.clip_by_global_norm({"x": x, "y": [x * 1e6]}, clip_norm)
    assert float(norm) == pytest.approx(5.0 * np.sqrt(1 + 1e12))
    assert torch.equal(clipped["x"], x) and torch.equal(clipped["y"][0], x * 1e6)
    clipped = tu.clip_by_norms([x, x * 1e30], clip_norm)
    assert torch.equal(clipped[0], x) and torch.equal(clipped[1], x * 1e30)
    # and the gradient through a zero tensor stays finite, as for a finite clip_norm
    for c in (clip_norm, 1.0):
        z = torch.zeros(3, device=device, requires_grad=True)
        (
            tu.clip_by_global_norm([z * 1], c)[0][0].sum() + tu.clip_by_norms([z * 1], c)[0].sum()
        ).backward()
        assert torch.equal(z.grad, torch.full((3,), 2.0, device=device))


def test_clip_by_global_norm_gradient(device):
    x = torch.tensor([3.0, 4.0], device=device, requires_grad=True)
    (y,), norm = tu.clip_by_global_norm([x], 1.0)
    y.sum().backward()
    # y = x / ||x||  ->  dy/dx = (I - x x^T / ||x||^2) / ||x||
    xd = x.detach().double().cpu()
    jac = (torch.eye(2, dtype=torch.float64) - torch.outer(xd, xd) / 25) / 5
    torch.testing.assert_close(x.grad.double().cpu(), jac.sum(0), rtol=1e-6, atol=1e-7)


def test_clip_by_global_norm_many_tensors_matches_loop(device):
    g = torch.Generator().manual_seed(0)
    tensors = [
        torch.randn(int(n), generator=g).to(device)
        for n in torch.randint(1, 50, (200,), generator=g)
    ]
    clipped, norm = tu.clip_by_global_norm(tensors, 1.0)
    slow = torch.sqrt(sum((t.double() ** 2).sum() for t in tensors))
    torch.testing.assert_close(norm.double(), slow, rtol=1e-6, atol=0)
    for t, c in zip(tensors, clipped):
        torch.testing.assert_close(c, t * (1.0 / float(slow)), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("fn", ["global", "norms"])
def test_clip_bad_clip_norm_and_in_place(fn):
    def call(tensors, clip_norm, **kw):
        if fn == "global":
            return tu.clip_by_global_norm(tensors, clip_norm, **kw)
        return tu.clip_by_norms(tensors, clip_norm, **kw)

    x = torch.ones(3)
    for bad in (0.0, -1.0, torch.tensor(-2.0)):
        with pytest.raises(ValueError, match="clip_norm"):
            call([x], bad)
    with pytest.raises(ValueError, match="clip_norm"):
        call([x], torch.ones(2))
    with pytest.raises(TypeError, match="clip_norm"):
        call([x], "1")
    leaf = torch.ones(3, requires_grad=True)
    with pytest.raises(ValueError, match="in_place"):
        call([leaf], 0.1, in_place=True)
    assert torch.equal(leaf.detach(), torch.ones(3))  # nothing changed
    with torch.no_grad():
        call([leaf], 0.1, in_place=True)
    assert float(leaf.detach().norm()) == pytest.approx(0.1, rel=1e-5)


@pytest.mark.parametrize("in_place", [False, True])
def test_clip_by_norms_against_loop(device, in_place):
    nest = _to(_nest(device, 3.0))
    originals = [t.clone() for t in _leaves(nest)]
    clip_norm = 2.5
    clipped = tu.clip_by_norms(nest, clip_norm, in_place=in_place)
    assert clipped["none"] is None
    for orig, new in zip(originals, _leaves(clipped)):
        a = orig.cpu().double().numpy()
        n = np.sqrt((a**2).sum())
        expected = a * clip_norm / max(n, clip_norm)
        tol = 2e-3 if orig.dtype == torch.float16 else 1e-6
        np.testing.assert_allclose(new.cpu().double().numpy(), expected, rtol=tol, atol=1e-6)
    small = torch.full((2,), 0.1, device=device)
    assert torch.equal(tu.clip_by_norms([small], 1.0)[0], small)


# ---------------------------------------------------------------------------
# BatchSquash, images


def test_batch_squash_round_trip(device):
    x = torch.arange(2 * 3 * 4 * 5, device=device).reshape(2, 3, 4, 5)
    for k in (0, 1, 2, 3):
        bs = tu.BatchSquash(k)
        flat = bs.flatten(x)
        assert flat.shape == (int(np.prod(x.shape[:k])), *x.shape[k:])
        assert torch.equal(bs.unflatten(flat), x)
        out = bs.unflatten(flat[..., :1])
        assert out.shape == (*x.shape[:-1], 1)


def test_batch_squash_errors():
    with pytest.raises(ValueError, match="batch_dims"):
        tu.BatchSquash(-1)
    bs = tu.BatchSquash(2)
    with pytest.raises(RuntimeError, match="flatten"):
        bs.unflatten(torch.zeros(6, 2))
    with pytest.raises(ValueError, match="batch_dims"):
        bs.flatten(torch.zeros(3))
    bs.flatten(torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="shape"):
        bs.unflatten(torch.zeros(5, 4))


def test_append_coordinate(device):
    im = torch.randn(2, 3, 4, 5, device=device)
    out = tu.append_coordinate(im)
    assert out.shape == (2, 5, 4, 5)
    assert torch.equal(out[:, :3], im)
    # ALF's layout: y channel first, then x; spacing 2 / L from -1
    yy, xx = np.meshgrid([-1.0, -0.5, 0.0, 0.5], [-1.0, -0.6, -0.2, 0.2, 0.6], indexing="ij")
    for b in range(2):
        np.testing.assert_allclose(out[b, 3].cpu().numpy(), yy, atol=1e-6)
        np.testing.assert_allclose(out[b, 4].cpu().numpy(), xx, atol=1e-6)
    # sizes where an arange with the float step 2 / L would overshoot
    for size in (3, 7, 49, 100):
        out = tu.append_coordinate(torch.zeros(1, 1, size, 2, device=device))
        np.testing.assert_allclose(
            out[0, 1, :, 0].cpu().numpy(), -1 + 2 * np.arange(size) / size, atol=1e-6
        )
    with pytest.raises(ValueError, match="im"):
        tu.append_coordinate(torch.zeros(3, 4, 5))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int64, torch.bool])
def test_append_coordinate_integer_image(device, dtype):
    # -1 cannot be stored in an integer image: the result is floating point
    im = torch.randint(0, 2, (2, 1, 3, 4), device=device).to(dtype)
    out = tu.append_coordinate(im)
    assert out.shape == (2, 3, 3, 4) and out.dtype == torch.get_default_dtype()
    np.testing.assert_array_equal(out[:, :1].cpu().numpy(), im.cpu().numpy())
    yy, xx = np.meshgrid(-1 + 2 * np.arange(3) / 3, -1 + 2 * np.arange(4) / 4, indexing="ij")
    for b in range(2):
        np.testing.assert_allclose(out[b, 1].cpu().numpy(), yy, atol=1e-6)
        np.testing.assert_allclose(out[b, 2].cpu().numpy(), xx, atol=1e-6)


def test_spatial_broadcast(device):
    z = torch.randn(2, 3, 6, device=device)
    out = tu.spatial_broadcast(z, (7, 4, 5))
    assert out.shape == (2, 3, 6, 4, 5)
    assert torch.equal(out[..., 2, 3], z)
    with pytest.raises(ValueError, match="im_shape"):
        tu.spatial_broadcast(z, (4,))


# ---------------------------------------------------------------------------
# statistics


@pytest.mark.parametrize(
    "shape, rowvar",
    [
        ((10,), False),
        ((10,), True),
        ((12, 3), False),
        ((12, 3), True),
        ((3, 12), False),
        ((3, 12), True),
        ((8, 1), False),
        ((1, 8), True),
    ],
)
def test_cov_matches_numpy(device, shape, rowvar):
    data = np.random.default_rng(4).normal(size=shape)
    got = tu.cov(torch.tensor(data, device=device), rowvar=rowvar)
    np.testing.assert_allclose(got.cpu().numpy(), np.cov(data, rowvar=rowvar), rtol=1e-10)


@pytest.mark.parametrize("rowvar", [False, True])
def test_cov_integer_data(device, rowvar):
    data = np.random.default_rng(8).integers(-5, 6, size=(7, 3))
    got = tu.cov(torch.tensor(data, device=device), rowvar=rowvar)
    assert got.dtype == torch.get_default_dtype()
    np.testing.assert_allclose(got.cpu().numpy(), np.cov(data, rowvar=rowvar), rtol=1e-6)
    flags = np.array([True, False, False, True, True])
    np.testing.assert_allclose(float(tu.cov(torch.tensor(flags))), np.cov(flags), rtol=1e-6)


@pytest.mark.parametrize("rowvar", [False, True])
def test_cov_batched_3d(device, rowvar):
    # [B, N, D] (or [B, D, N] with rowvar): one covariance per batch entry
    data = np.random.default_rng(9).normal(size=(4, 6, 3))
    got = tu.cov(torch.tensor(data, device=device), rowvar=rowvar)
    want = np.stack([np.cov(d, rowvar=rowvar) for d in data])
    np.testing.assert_allclose(got.cpu().numpy(), want, rtol=1e-10)


def test_cov_errors():
    with pytest.raises(ValueError, match="data"):
        tu.cov(torch.zeros(2, 2, 2, 2))
    with pytest.raises(ValueError, match="observations"):
        tu.cov(torch.zeros(2, 1, 3))
    with pytest.raises(ValueError, match="observations"):
        tu.cov(torch.zeros(1, 3))


def _np_explained_variance(ypred, y, mask=None, axis=None):
    if mask is None:
        mask = np.ones_like(y)
    n = np.maximum(mask.sum(axis=axis), 1)

    def var(v):
        mean = (v * mask).sum(axis=axis, keepdims=True) / np.maximum(
            mask.sum(axis=axis, keepdims=True), 1
        )
        return (((v - mean) ** 2) * mask).sum(axis=axis) / n

    vy = var(y)
    return np.where(vy > 0, 1 - var(y - ypred) / np.where(vy > 0, vy, 1), 0.0)


@pytest.mark.parametrize("dim", [None, 0, 1])
@pytest.mark.parametrize("masked", [False, True])
def test_explained_variance(device, dim, masked):
    rng = np.random.default_rng(5)
    y = rng.normal(size=(6, 4))
    ypred = y + 0.3 * rng.normal(size=(6, 4))
    mask = (rng.uniform(size=(6, 4)) > 0.3).astype(np.float64) if masked else None
    expected = _np_explained_variance(ypred, y, mask, dim)
    t = lambda a: None if a is None else torch.tensor(a, device=device)  # noqa: E731
    got = tu.explained_variance(t(ypred), t(y), t(mask), dim)
    np.testing.assert_allclose(got.cpu().numpy(), expected, rtol=1e-10)


def test_explained_variance_cases(device):
    y = torch.tensor([1.0, 2.0, 3.0, 4.0], device=device)
    assert float(tu.explained_variance(y, y)) == 1.0  # perfect prediction
    assert float(tu.explained_variance(torch.full_like(y, 2.5), y)) == pytest.approx(0.0)
    assert float(tu.explained_variance(y, torch.ones_like(y))) == 0.0  # Var[y] == 0
    with pytest.raises(ValueError, match="ypred"):
        tu.explained_variance(y[:2], y)
    with pytest.raises(ValueError, match="valid_mask"):
        tu.explained_variance(y, y, valid_mask=torch.ones(3))


@pytest.mark.parametrize("garbage", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("dim", [None, 1])
def test_explained_variance_ignores_non_finite_masked_entries(device, garbage, dim):
    # masked-out steps may hold anything (e.g. NaN values after an episode end)
    rng = np.random.default_rng(6)
    y = rng.normal(size=(3, 5))
    ypred = y + 0.5 * rng.normal(size=(3, 5))
    mask = np.ones((3, 5))
    mask[:, 1] = mask[1, 3] = 0
    expected = _np_explained_variance(ypred, y, mask, dim)
    y[:, 1], ypred[1, 3] = garbage, garbage
    t = lambda a: torch.tensor(a, device=device)  # noqa: E731
    got = tu.explained_variance(t(ypred), t(y), t(mask), dim)
    np.testing.assert_allclose(got.cpu().numpy(), expected, rtol=1e-10)


@pytest.mark.parametrize("masked", [False, True])
def test_explained_variance_float16(device, masked):
    # sums of squared deviations exceed float16's range (65504); Var[y] does not
    rng = np.random.default_rng(7)
    y = (rng.normal(size=4000) * 100).astype(np.float16)
    ypred = (y + rng.normal(size=4000) * 10).astype(np.float16)
    mask = (rng.uniform(size=4000) > 0.2).astype(np.float16) if masked else None
    f64 = lambda a: None if a is None else a.astype(np.float64)  # noqa: E731
    expected = _np_explained_variance(f64(ypred), f64(y), f64(mask), None)
    t = lambda a: None if a is None else torch.tensor(a, device=device)  # noqa: E731
    got = tu.explained_variance(t(ypred), t(y), t(mask))
    assert got.dtype == torch.float16
    np.testing.assert_allclose(got.double().cpu().numpy(), expected, rtol=1e-3)


# ---------------------------------------------------------------------------
# cumulative ops, gradient scaling, extension


@fixture_ok
@given(
    shape=st.lists(st.integers(1, 5), min_size=1, max_size=3),
    data=st.data(),
)
def test_reverse_cumsum_cumprod_against_loop(device, shape, data):
    dim = data.draw(st.integers(0, len(shape) - 1))
    x = np.random.default_rng(len(shape)).uniform(0.5, 1.5, size=shape)
    moved = np.moveaxis(x, dim, 0)
    cs = np.stack([moved[i:].sum(0) for i in range(moved.shape[0])])
    cp = np.stack([moved[i:].prod(0) for i in range(moved.shape[0])])
    xt = torch.tensor(x, device=device)
    np.testing.assert_allclose(tu.reverse_cumsum(xt, dim).cpu().numpy(), np.moveaxis(cs, 0, dim))
    np.testing.assert_allclose(tu.reverse_cumprod(xt, dim).cpu().numpy(), np.moveaxis(cp, 0, dim))


@pytest.mark.parametrize("clone_input", [True, False])
def test_scale_gradient(device, clone_input):
    x = torch.ones(3, device=device, requires_grad=True)
    h = x * 2
    scaled = tu.scale_gradient(h, 0.25, clone_input=clone_input)
    assert torch.equal(scaled.detach(), h.detach())
    (scaled.sum() + h.sum()).backward()
    # with a clone only the first branch is scaled; without, both are
    expected = 2 * 0.25 + 2 * (1.0 if clone_input else 0.25)
    torch.testing.assert_close(x.grad, torch.full((3,), expected, device=device))
    with pytest.raises(ValueError, match="requires_grad"):
        tu.scale_gradient(torch.ones(2), 0.5)


@pytest.mark.parametrize("clone_input", [True, False])
def test_scale_gradient_under_no_grad(device, clone_input):
    # e.g. a network evaluated for rollout: no gradient to scale, no error
    x = torch.tensor([1.0, -2.0], device=device, requires_grad=True)
    with torch.no_grad():
        out = tu.scale_gradient(x, 0.5, clone_input=clone_input)
    assert out.tolist() == [1.0, -2.0]
    if clone_input:
        assert not out.requires_grad  # a clone made under no_grad has no gradient
    else:  # the hook sits on x itself and scales its later gradients
        (out * 3).sum().backward()
        torch.testing.assert_close(x.grad, torch.full((2,), 1.5, device=device))


def test_tensor_extend_and_prepend(device):
    x = torch.arange(6.0, device=device).reshape(3, 2)
    y = torch.tensor([10.0, 11.0], device=device)
    np.testing.assert_array_equal(
        tu.tensor_extend(x, y).cpu().numpy(), np.concatenate([x.cpu().numpy(), [[10, 11]]])
    )
    np.testing.assert_array_equal(
        tu.tensor_prepend(x, y).cpu().numpy(), np.concatenate([[[10, 11]], x.cpu().numpy()])
    )
    for fn in (tu.tensor_extend, tu.tensor_prepend):
        with pytest.raises(ValueError, match="y must have shape"):
            fn(x, torch.zeros(3, device=device))


def test_tensor_extend_zero_and_prepend_zero(device):
    x = torch.ones(2, 3, device=device)
    e0 = tu.tensor_extend_zero(x)
    assert e0.shape == (3, 3) and e0[2].abs().sum() == 0 and torch.equal(e0[:2], x)
    e1 = tu.tensor_extend_zero(x, dim=1)
    assert e1.shape == (2, 4) and e1[:, 3].abs().sum() == 0
    p = tu.tensor_prepend_zero(x)
    assert p.shape == (3, 3) and p[0].abs().sum() == 0 and torch.equal(p[1:], x)


def test_tensor_extend_zero_and_prepend_zero_bad_input():
    with pytest.raises(ValueError, match=r"x must have at least one dimension; got shape \(\)"):
        tu.tensor_extend_zero(torch.tensor(1.0))
    with pytest.raises(ValueError, match=r"x must have at least one dimension; got shape \(\)"):
        tu.tensor_prepend_zero(torch.tensor(1.0))
    for dim in (2, -3):
        with pytest.raises(ValueError, match=rf"dim must be in \[-2, 1\]; got {dim}"):
            tu.tensor_extend_zero(torch.ones(2, 3), dim=dim)
    e = tu.tensor_extend_zero(torch.ones(2, 3), dim=-1)  # negative dims count from the end
    assert e.shape == (2, 4) and not e[:, 3].any()


def test_tensor_extend_new_dim(device):
    x = torch.arange(6.0, device=device).reshape(2, 3)
    for dim in range(3):
        out = tu.tensor_extend_new_dim(x, dim, 4)
        expected = np.repeat(np.expand_dims(x.cpu().numpy(), dim), 4, axis=dim)
        np.testing.assert_array_equal(out.cpu().numpy(), expected)
    # negative dim: the documented shape (*x.shape[:dim], n, *x.shape[dim:])
    # with Python slicing
    for dim in (-1, -2):
        out = tu.tensor_extend_new_dim(x, dim, 4)
        shape = (*x.shape[:dim], 4, *x.shape[dim:])
        expected = np.repeat(np.expand_dims(x.cpu().numpy(), x.ndim + dim), 4, axis=x.ndim + dim)
        assert out.shape == shape == expected.shape
        np.testing.assert_array_equal(out.cpu().numpy(), expected)
    assert tu.tensor_extend_new_dim(x, -1, 5).shape == (2, 5, 3)
    with pytest.raises(ValueError, match="n must"):
        tu.tensor_extend_new_dim(x, 0, -1)
    with pytest.raises(ValueError, match="dim"):
        tu.tensor_extend_new_dim(x, 3, 2)
    with pytest.raises(ValueError, match="dim"):
        tu.tensor_extend_new_dim(x, -3, 2)
    with pytest.raises(TypeError, match="dim"):
        tu.tensor_extend_new_dim(x, 1.0, 2)


def test_to_tensor():
    assert tu.to_tensor([1.0, 2.0]).dtype == torch.get_default_dtype()
    assert tu.to_tensor(np.arange(3)).dtype == torch.int64
    assert tu.to_tensor(3, dtype=torch.float64).dtype == torch.float64
    t = torch.ones(2)
    assert tu.to_tensor(t) is t
    assert tu.to_tensor(t, torch.int32).dtype == torch.int32
    np.testing.assert_array_equal(tu.to_tensor(((1, 2), (3, 4))).numpy(), [[1, 2], [3, 4]])


def test_to_tensor_negative_strides():
    # np.flip and [::-1] give arrays that torch.as_tensor cannot wrap
    a = np.arange(12.0).reshape(3, 4)
    for view in (a[::-1], a[:, ::-2], np.flip(a), np.flip(a)[1:, 1::2]):
        got = tu.to_tensor(view)
        assert got.dtype == torch.float64
        np.testing.assert_array_equal(got.numpy(), view)
        assert tu.to_tensor(view, dtype=torch.float32).dtype == torch.float32
    np.testing.assert_array_equal(tu.to_tensor(a[::-1]).numpy(), a[::-1])  # a is unchanged
    shared = tu.to_tensor(a[1:])  # forward strides still share memory
    assert shared.data_ptr() == a[1:].ctypes.data
