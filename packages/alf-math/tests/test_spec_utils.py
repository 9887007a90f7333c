"""Tests for alf.utils.spec_utils."""

import collections
import fractions

import numpy as np
import pytest
import torch

from alf.tensor_specs import BoundedTensorSpec, TensorSpec
from alf.utils import spec_utils

Obs = collections.namedtuple("Obs", ["image", "vec"])


class FakeDistributionSpec:
    """Duck-typed stand-in for alf-dist's DistributionSpec."""

    def __init__(self):
        self.input_params_spec = {"loc": TensorSpec((2,)), "scale": TensorSpec((2,))}

    def build_distribution(self, params):
        return ("dist", params)


def test_zeros_from_spec_nested():
    spec = Obs(
        image=TensorSpec((3, 4), torch.uint8), vec=[BoundedTensorSpec((2,), torch.int64, 0, 5)]
    )
    out = spec_utils.zeros_from_spec(spec, 6)
    assert isinstance(out, Obs)
    assert out.image.shape == (6, 3, 4) and out.image.dtype == torch.uint8
    assert out.vec[0].shape == (6, 2) and out.vec[0].dtype == torch.int64
    assert not out.image.any()
    shaped = spec_utils.zeros_from_spec(spec, (2, 3))
    assert shaped.image.shape == (2, 3, 3, 4)
    assert spec_utils.zeros_from_spec(spec, [5]).vec[0].shape == (5, 2)


def test_zeros_from_spec_distribution_spec():
    out = spec_utils.zeros_from_spec({"d": FakeDistributionSpec(), "x": TensorSpec(())}, 4)
    tag, params = out["d"]
    assert tag == "dist"
    assert params["loc"].shape == (4, 2) and not params["scale"].any()
    assert out["x"].shape == (4,)


def test_zeros_from_spec_errors():
    with pytest.raises(TypeError, match="a.1"):
        spec_utils.zeros_from_spec({"a": [TensorSpec(()), 3]}, 2)
    with pytest.raises(ValueError, match="batch_size"):
        spec_utils.zeros_from_spec(TensorSpec(()), -1)
    with pytest.raises(TypeError, match="batch_size"):
        spec_utils.zeros_from_spec(TensorSpec(()), 2.0)


def test_is_same_spec():
    a = {"x": TensorSpec((2,)), "y": [BoundedTensorSpec((), minimum=-1.0, maximum=1.0)]}
    b = {"x": TensorSpec((2,)), "y": [BoundedTensorSpec((), minimum=-1.0, maximum=1.0)]}
    assert spec_utils.is_same_spec(a, b)
    assert not spec_utils.is_same_spec(a, {"x": TensorSpec((2,))})
    assert not spec_utils.is_same_spec(a, {"x": TensorSpec((3,)), "y": b["y"]})
    assert not spec_utils.is_same_spec(a, {"x": TensorSpec((2,), torch.float64), "y": b["y"]})
    assert not spec_utils.is_same_spec(
        a, {"x": TensorSpec((2,)), "y": [BoundedTensorSpec((), minimum=-1.0, maximum=2.0)]}
    )
    assert not spec_utils.is_same_spec(TensorSpec(()), BoundedTensorSpec(()))


SPEC = BoundedTensorSpec((3,), torch.float32, minimum=[-1.0, 0.0, 2.0], maximum=[1.0, 10.0, 2.5])


def test_spec_means_and_magnitudes():
    means, mags = spec_utils.spec_means_and_magnitudes(SPEC)
    np.testing.assert_allclose(means.numpy(), [0.0, 5.0, 2.25])
    np.testing.assert_allclose(mags.numpy(), [1.0, 5.0, 0.25])
    assert means.dtype == torch.float32
    m, g = spec_utils.spec_means_and_magnitudes(BoundedTensorSpec((2,), torch.int32, 0, 3))
    assert m.dtype == torch.float32 and m.tolist() == [1.5, 1.5] and g.tolist() == [1.5, 1.5]
    with pytest.raises(TypeError, match="BoundedTensorSpec"):
        spec_utils.spec_means_and_magnitudes(TensorSpec((3,)))


def test_spec_means_and_magnitudes_full_float64_range(device):
    # max - min overflows float64 for bounds near its range (e.g. from_spec)
    big = np.finfo(np.float64).max
    lo, hi = [-big, -big, 1.0], [big, big / 3, big]
    spec = BoundedTensorSpec((3,), torch.float64, minimum=lo, maximum=hi)
    exact = [
        (fractions.Fraction(b) + s * fractions.Fraction(a)) / 2
        for a, b in zip(lo, hi)
        for s in (1, -1)
    ]
    means, mags = spec_utils.spec_means_and_magnitudes(spec)
    np.testing.assert_allclose(means.numpy(), [float(v) for v in exact[0::2]], rtol=1e-15)
    np.testing.assert_allclose(mags.numpy(), [float(v) for v in exact[1::2]], rtol=1e-15)
    scaled = spec_utils.scale_to_spec(
        torch.tensor([-1.0, 1.0, 0.0], dtype=torch.float64, device=device), spec
    )
    np.testing.assert_allclose(scaled.cpu().numpy(), [-big, big / 3, float(exact[4])], rtol=1e-15)
    full = BoundedTensorSpec.from_spec(TensorSpec((2,), torch.float64))
    assert np.isfinite(spec_utils.spec_means_and_magnitudes(full)[1].numpy()).all()


def test_scale_to_spec(device):
    x = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0], [0.0, 0.5, -0.5]], device=device)
    out = spec_utils.scale_to_spec(x, SPEC)
    lo, hi = np.array([-1.0, 0.0, 2.0]), np.array([1.0, 10.0, 2.5])
    expected = (hi + lo) / 2 + (hi - lo) / 2 * x.cpu().numpy()
    np.testing.assert_allclose(out.cpu().numpy(), expected, rtol=1e-6)
    assert out.device == x.device


def test_clip_to_spec(device):
    x = torch.tensor([[-5.0, 5.0, 9.0], [0.5, -3.0, 2.2]], device=device)
    out = spec_utils.clip_to_spec(x, SPEC)
    expected = np.clip(x.cpu().numpy(), [-1.0, 0.0, 2.0], [1.0, 10.0, 2.5])
    np.testing.assert_array_equal(out.cpu().numpy(), expected)
    ints = torch.tensor([-3, 1, 9], device=device)
    out = spec_utils.clip_to_spec(ints, BoundedTensorSpec((), torch.int64, 0, 4))
    assert out.tolist() == [0, 1, 4] and out.dtype == torch.int64
    with pytest.raises(TypeError, match="spec"):
        spec_utils.clip_to_spec(x, TensorSpec((3,)))
