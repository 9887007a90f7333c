"""The CPU shortcuts of the averagers and normalizers (the 0-d step count and
mass read and written through cached NumPy views, float rates, a mass of
exactly 1 not divided by) keep their results exact across copies,
checkpoints and buffer replacement. Expected values: a float64 NumPy loop of
the adaptive rates ``speed / (speed + k - 1)``."""

import copy
import io
import pickle
import warnings

import numpy as np
import pytest
import torch

from alf.tensor_specs import TensorSpec
from alf.utils.averager import AdaptiveAverager, EMAverager, ScalarAdaptiveAverager
from alf.utils.normalizers import AdaptiveNormalizer, ScalarAdaptiveNormalizer


def adaptive_mean(samples, speed):
    """Float64 adaptive average of a list of [D] arrays."""
    avg = np.zeros_like(np.asarray(samples[0], dtype=np.float64))
    for k, x in enumerate(samples, start=1):
        rate = speed / (speed + k - 1)
        avg = avg + rate * (np.asarray(x, dtype=np.float64) - avg)
    return avg


def test_adaptive_average_through_copies_and_loads():
    gen = torch.Generator().manual_seed(0)
    data = [torch.randn(5, 3, generator=gen, dtype=torch.float64) for _ in range(12)]
    means = [d.mean(0).numpy() for d in data]
    a = AdaptiveAverager(TensorSpec((3,), torch.float64), speed=3.0)
    for d in data[:4]:
        a.update(d)
    # copies made after the views were cached must update their own state
    clones = [copy.deepcopy(a), pickle.loads(pickle.dumps(a))]
    loaded = AdaptiveAverager(TensorSpec((3,), torch.float64), speed=3.0)
    loaded.load_state_dict(a.state_dict())
    assigned = AdaptiveAverager(TensorSpec((3,), torch.float64), speed=3.0)
    assigned.update(data[0])  # caches views of tensors about to be replaced
    assigned.load_state_dict({k: v.clone() for k, v in a.state_dict().items()}, assign=True)
    blob = io.BytesIO()
    torch.save(a.state_dict(), blob)
    blob.seek(0)
    saved = AdaptiveAverager(TensorSpec((3,), torch.float64), speed=3.0)
    saved.load_state_dict(torch.load(blob))
    for avg in [a, *clones, loaded, assigned, saved]:
        for d in data[4:]:
            avg.update(d)
        np.testing.assert_allclose(avg.get().numpy(), adaptive_mean(means, 3.0), rtol=1e-13)
        assert avg._total_steps.item() == 3.0 + 12
        assert avg._mass.item() == 1.0
    # the original is unchanged by its copies' updates (and vice versa)
    assert a._total_steps.item() == 15.0


def test_get_returns_a_copy_when_the_mass_is_one():
    a = ScalarAdaptiveAverager(speed=2.0, dtype=torch.float32)
    a.update(torch.tensor([1.0, 3.0]))
    got = a.get()
    got.add_(100.0)  # the caller's tensor, not the averager's state
    assert a.get().item() == 2.0
    # second rate 2 / (2 + 1): 2 + 2/3 * (5 - 2) = 4
    assert a.average(torch.tensor(5.0)).item() == 4.0


def test_em_mass_and_moved_buffers():
    a = EMAverager(TensorSpec(()), update_rate=0.25)
    for x in (1.0, 2.0, 3.0):
        a.update(torch.tensor(x))
    mass = 1 - 0.75**3
    assert abs(a._mass.item() - mass) < 1e-15
    expected = (0.25 * 0.75**2 * 1 + 0.25 * 0.75 * 2 + 0.25 * 3) / mass
    assert abs(a.get().item() - expected) < 1e-6
    a.share_memory()  # new storages: the cached views must follow
    a.update(torch.tensor(4.0))
    assert abs(a._mass.item() - (1 - 0.75**4)) < 1e-15


def test_normalizers_after_copy_and_load():
    gen = torch.Generator().manual_seed(1)
    batches = [torch.randn(16, 4, generator=gen) * 2 + 1e3 for _ in range(6)]
    n = AdaptiveNormalizer(TensorSpec((4,)), speed=4.0)
    for b in batches[:3]:
        n.normalize(b)
    twin = copy.deepcopy(n)
    for b in batches[3:]:
        out, out_twin = n.normalize(b, clip_value=5.0), twin.normalize(b, clip_value=5.0)
        assert torch.equal(out, out_twin)
    # float64 reference of the last output
    x = np.stack([b.double().numpy() for b in batches])  # [6, 16, 4]
    m = adaptive_mean([xi.mean(0) for xi in x], 4.0)
    m2 = adaptive_mean([(xi * xi).mean(0) for xi in x], 4.0)
    ref = np.clip((x[-1] - m) / np.sqrt(m2 - m * m + 1e-10), -5, 5)
    np.testing.assert_allclose(out.numpy(), ref, atol=2e-4)
    s = ScalarAdaptiveNormalizer(speed=4.0)
    for b in batches:
        out = s.normalize(b)
    flat = [xi.reshape(-1) for xi in x]
    m = adaptive_mean([f.mean() for f in flat], 4.0)
    m2 = adaptive_mean([(f * f).mean() for f in flat], 4.0)
    np.testing.assert_allclose(out.numpy(), (x[-1] - m) / np.sqrt(m2 - m * m + 1e-10), atol=2e-4)


# ---- clip_by_global_norm: a plain list of one dtype skips the nest walk ----


def _loop_clip(tensors, clip_norm):
    """Float64 reference: global norm and clipped values, per tensor."""
    arrays = [t.detach().double().numpy() for t in tensors]
    norm = np.sqrt(sum((a * a).sum() for a in arrays))
    factor = clip_norm / max(norm, clip_norm)
    return [a * factor for a in arrays], norm


def test_clip_by_global_norm_list_and_tuple_paths():
    from alf.utils.tensor_utils import clip_by_global_norm

    gen = torch.Generator().manual_seed(2)
    tensors = [torch.randn(s, generator=gen) * 3 for s in [(4, 3), (3,), (), (2, 2, 2)]]
    expected, expected_norm = _loop_clip(tensors, 1.0)
    for container in (list, tuple):
        got, norm = clip_by_global_norm(container(tensors), 1.0)
        assert type(got) is container and len(got) == len(tensors)
        assert abs(norm.item() - expected_norm) < 1e-5 * expected_norm
        for g, e, t in zip(got, expected, tensors):
            assert g.shape == t.shape and g.dtype == t.dtype
            np.testing.assert_allclose(g.numpy(), e, rtol=1e-5, atol=1e-7)
    # parameters (with grad) out of place keep the graph; in place, the inputs
    # gradients through the norm too (foreach_mul's backward fails for a
    # scalar tensor that needs a gradient): against a per-tensor loop
    params = [torch.nn.Parameter(t.clone()) for t in tensors]
    got, _ = clip_by_global_norm(params, 1.0)
    sum((g * g.detach()).sum() for g in got).backward()
    ref = [t.clone().requires_grad_() for t in tensors]
    norm = torch.sqrt(sum((r * r).sum() for r in ref))
    scaled = [r * (1.0 / torch.clamp(norm, min=1.0)) for r in ref]
    sum((x * x.detach()).sum() for x in scaled).backward()
    for p, r in zip(params, ref):
        torch.testing.assert_close(p.grad, r.grad, rtol=1e-5, atol=1e-6)
    work = [t.clone() for t in tensors]
    same, _ = clip_by_global_norm(work, 1.0, in_place=True)
    assert same is work
    for w, e in zip(work, expected):
        np.testing.assert_allclose(w.numpy(), e, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64, torch.complex64])
@pytest.mark.parametrize("clip_norm", [0.5, 3, 1e30, float("inf")])
@pytest.mark.parametrize("content", ["random", "zeros", "nan"])
def test_clip_by_global_norm_list_path_equals_the_general_path(dtype, clip_norm, content):
    """A list takes the list path (its factor from fewer operations); the
    same tensors in a dict take the general path: same values, same norm,
    same warning for a NaN norm."""
    from alf.utils.tensor_utils import clip_by_global_norm

    gen = torch.Generator().manual_seed(3)
    tensors = [(torch.randn(s, generator=gen) * 3).to(dtype) for s in [(5, 4), (4,), (3, 3)]]
    if content == "zeros":
        tensors = [torch.zeros_like(t) for t in tensors]
    elif content == "nan":
        tensors[1][2] = float("nan")
    with warnings.catch_warnings(record=True) as listed:
        warnings.simplefilter("always")
        got, norm = clip_by_global_norm(list(tensors), clip_norm)
    with warnings.catch_warnings(record=True) as general:
        warnings.simplefilter("always")
        ref, ref_norm = clip_by_global_norm(dict(enumerate(tensors)), clip_norm)
    assert [str(w.message) for w in listed] == [str(w.message) for w in general]
    assert (content == "nan") == bool(listed)
    torch.testing.assert_close(norm, ref_norm, rtol=0, atol=0, equal_nan=True)
    for i, g in enumerate(got):
        assert g.dtype == dtype
        torch.testing.assert_close(g, ref[i], rtol=0, atol=0, equal_nan=True)


def test_clip_by_global_norm_lists_that_take_the_general_path():
    from alf.utils.tensor_utils import clip_by_global_norm

    mixed = [torch.ones(2), torch.ones(2, dtype=torch.float64) * 2, None]
    got, norm = clip_by_global_norm(mixed, 1.0)
    assert got[2] is None and got[1].dtype == torch.float64
    assert abs(norm.item() - np.sqrt(2 + 8)) < 1e-6
    np.testing.assert_allclose(got[0].numpy(), np.ones(2) / np.sqrt(10), rtol=1e-6)
    try:
        clip_by_global_norm([torch.ones(2), torch.ones(2, dtype=torch.int64)], 1.0)
    except TypeError as error:
        assert "int64" in str(error) and "'1'" in str(error)
    else:
        raise AssertionError("an integer tensor was accepted")
    try:
        clip_by_global_norm([torch.ones(2, dtype=torch.int64)] * 2, 1.0)
    except TypeError as error:
        assert "int64" in str(error)
    else:
        raise AssertionError("integer tensors were accepted")
    assert clip_by_global_norm([], 1.0)[1].item() == 0.0
