"""Tests of alf.tensor_specs."""

import pickle

import numpy as np
import pytest
import torch

from alf.tensor_specs import BoundedTensorSpec, TensorSpec, torch_dtype_from, torch_dtype_to_str


def test_shape_dtype_and_factories():
    spec = TensorSpec((2, 3), torch.int32)
    assert spec.shape == torch.Size([2, 3]) and spec.dtype == torch.int32
    assert spec.ndim == 2 and spec.numel == 6
    z = spec.zeros(outer_dims=(4, 5))
    assert z.shape == (4, 5, 2, 3) and z.dtype == torch.int32 and not z.any()
    assert spec.ones(7).sum() == 7 * 6
    assert torch.equal(spec.constant(3), torch.full((2, 3), 3, dtype=torch.int32))
    np_zeros = spec.numpy_zeros((1,))
    assert np_zeros.shape == (1, 2, 3) and np_zeros.dtype == np.int32
    assert TensorSpec(()).randn((10,)).shape == (10,)
    assert spec.is_discrete() and not spec.is_continuous() and not spec.is_bounded()


def test_randn_of_unsigned_dtype_does_not_wrap():
    # rounded normal samples: negatives cannot wrap around to 255 (a float -> uint8
    # cast of a negative value is undefined behaviour in torch)
    torch.manual_seed(0)
    s = TensorSpec((2000,), torch.uint8).randn()
    assert s.dtype == torch.uint8 and int(s.max()) <= 10
    # P(round(z) <= 0) = P(z < 0.5) = 0.69 for a standard normal z; sd of the count ~ 21
    assert abs(int((s == 0).sum()) - 0.6915 * 2000) < 150


def test_dtype_conversions():
    assert TensorSpec((1,), np.float64).dtype == torch.float64
    assert TensorSpec((1,), "uint8").dtype == torch.uint8
    assert TensorSpec((1,), np.dtype("int64")).numpy_dtype == np.int64
    assert torch_dtype_from("torch.bool") == torch.bool
    with pytest.raises(TypeError, match="dtype must be a torch or numpy dtype"):
        TensorSpec((1,), "not-a-dtype")


def test_from_tensor_and_array():
    t = torch.zeros(8, 3, 4, dtype=torch.float16)
    assert TensorSpec.from_tensor(t, from_dim=1) == TensorSpec((3, 4), torch.float16)
    assert TensorSpec.from_array(np.zeros((2, 5), np.int64)) == TensorSpec((2, 5), torch.int64)
    assert TensorSpec.from_array(1.5) == TensorSpec((), torch.float64)
    with pytest.raises(TypeError, match="tensor must be a torch.Tensor"):
        TensorSpec.from_tensor(np.zeros(3))


def test_equality_hash_and_pickle():
    a = BoundedTensorSpec((2,), torch.float32, minimum=[-1, 0], maximum=1)
    b = BoundedTensorSpec((2,), torch.float32, minimum=np.array([-1.0, 0.0]), maximum=[1, 1])
    assert a == b and hash(a) != hash(TensorSpec((2,)))
    assert a != TensorSpec((2,))
    restored = pickle.loads(pickle.dumps(a))
    assert restored == a and isinstance(restored, BoundedTensorSpec)
    assert pickle.loads(pickle.dumps(TensorSpec((3,), torch.uint8))) == TensorSpec(
        (3,), torch.uint8
    )


def test_equal_bounded_specs_hash_alike():
    # equal specs must hash alike (dict keys, sets), however their bounds are written
    pairs = [
        (
            BoundedTensorSpec((3,), minimum=0, maximum=1),
            BoundedTensorSpec((3,), minimum=[0, 0, 0], maximum=[1.0] * 3),
        ),
        (
            BoundedTensorSpec((2, 2), minimum=[[-1], [-1]], maximum=2),
            BoundedTensorSpec((2, 2), minimum=-1, maximum=[2, 2]),
        ),
        (
            BoundedTensorSpec((), minimum=-0.0, maximum=0.0),
            BoundedTensorSpec((), minimum=0.0, maximum=-0.0),
        ),
        (
            BoundedTensorSpec((2,), torch.int64, minimum=[3, 3], maximum=9),
            BoundedTensorSpec((2,), torch.int64, 3, 9),
        ),
    ]
    for a, b in pairs:
        assert a == b and hash(a) == hash(b), (a, b)
        assert len({a, b}) == 1 and {a: 1}[b] == 1


def test_bounded_sample_within_bounds_float_and_int():
    torch.manual_seed(0)
    spec = BoundedTensorSpec(
        (3,), torch.float32, minimum=[-2.0, 0.0, 5.0], maximum=[-1.0, 1e-3, 6.0]
    )
    s = spec.sample((2000,))
    lo, hi = torch.tensor(spec.minimum), torch.tensor(spec.maximum)
    assert s.shape == (2000, 3) and ((s >= lo) & (s <= hi)).all()
    ispec = BoundedTensorSpec((), torch.int64, minimum=0, maximum=4)
    counts = torch.bincount(ispec.sample((5000,)), minlength=5)
    assert counts.numel() == 5
    # each of the 5 values has probability 1/5: 1000 expected, sd ~28
    assert (counts - 1000).abs().max() < 150


def test_bool_sample_within_bounds():
    torch.manual_seed(0)
    fixed = BoundedTensorSpec(
        (3,), torch.bool, minimum=[True, False, False], maximum=[True, False, True]
    )
    s = fixed.sample((1000,))
    assert s.dtype == torch.bool and s.shape == (1000, 3)
    assert s[:, 0].all() and not s[:, 1].any()
    # the free element takes both values: P(all 1000 equal) = 2 ** -999
    assert 0 < int(s[:, 2].sum()) < 1000


def test_bounded_from_unbounded_spec_uses_dtype_range():
    b = BoundedTensorSpec.from_spec(TensorSpec((2,), torch.uint8))
    assert int(b.minimum) == 0 and int(b.maximum) == 255
    f = BoundedTensorSpec.from_spec(TensorSpec((), torch.float32))
    assert np.isfinite(f.sample((100,)).numpy()).all()


def test_bounds_are_read_only():
    spec = BoundedTensorSpec((2,), minimum=0.0, maximum=1.0)
    with pytest.raises(ValueError):
        spec.minimum[...] = 5


def test_bounds_are_copied_from_the_caller():
    lo = np.zeros(3, dtype=np.float32)  # same dtype as the spec: no conversion copy
    hi = np.array([1, 2, 3], dtype=np.int64)
    spec = BoundedTensorSpec((3,), torch.float32, minimum=lo, maximum=hi)
    ispec = BoundedTensorSpec((3,), torch.int64, minimum=0, maximum=hi)
    assert lo.flags.writeable and hi.flags.writeable  # the caller's arrays stay writable
    lo[0], hi[0] = 5.0, 0  # ... and changing them later does not change the specs
    assert spec.minimum.tolist() == [0.0, 0.0, 0.0] and ispec.maximum.tolist() == [1, 2, 3]


def test_bool_bounds_per_element():
    for minimum in ([False, True], np.array([False, True]), [0, 1]):
        spec = BoundedTensorSpec((2,), torch.bool, minimum=minimum, maximum=[True, True])
        assert spec.minimum.tolist() == [False, True] and spec.maximum.tolist() == [True, True]
    spec = BoundedTensorSpec((2,), torch.bool, minimum=False, maximum=[False, True])
    assert spec.maximum.tolist() == [False, True]
    assert BoundedTensorSpec((), torch.bool).minimum.tolist() is False  # default 0 .. 1


def test_bad_bounds_are_rejected():
    with pytest.raises(ValueError, match="minimum must be <= maximum"):
        BoundedTensorSpec((2,), minimum=[0, 2], maximum=1)
    with pytest.raises(ValueError, match="minimum of shape \\(3,\\) cannot be broadcast"):
        BoundedTensorSpec((2,), minimum=[0, 0, 0], maximum=1)
    with pytest.raises(ValueError, match="non-negative"):
        TensorSpec((-1, 2))
    with pytest.raises(TypeError, match="shape must be a sequence of ints"):
        TensorSpec("ab")
    # Not truncated to (2, 3) nor read as (1,).
    for shape in [(2.5, 3), True, (True, 2)]:
        with pytest.raises(TypeError, match="shape must be a sequence of ints"):
            TensorSpec(shape)
    with pytest.raises(TypeError, match="outer_dims must be a sequence of ints"):
        TensorSpec((2,)).zeros(outer_dims=(4.0,))


@pytest.mark.parametrize(
    "dtype, minimum, maximum, name, message",
    [
        (torch.int64, 0.5, 3, "minimum", "0.5"),  # not silently truncated to 0
        (torch.int32, 0, [2, 3.7], "maximum", "3.7"),
        (torch.uint8, -1, 255, "minimum", "-1"),  # not wrapped to 255, no OverflowError
        (torch.uint8, 0, 256, "maximum", "256"),
        (torch.int8, [-129, 0], 5, "minimum", "-129"),
        (torch.bool, 0, 2, "maximum", "2"),  # not read as True
        (torch.float32, float("nan"), 1.0, "minimum", "nan"),  # min <= max cannot hold
        (torch.float64, 0.0, [1.0, float("nan")], "maximum", "nan"),
        (torch.int64, 0, float("nan"), "maximum", "nan"),
    ],
)
def test_bounds_not_representable_in_dtype_are_rejected(dtype, minimum, maximum, name, message):
    with pytest.raises(ValueError, match=f"{name}.*{message}"):
        BoundedTensorSpec((2,), dtype, minimum=minimum, maximum=maximum)


def test_non_numeric_bounds_are_rejected():
    with pytest.raises(TypeError, match="minimum must be numeric"):
        BoundedTensorSpec((2,), torch.float32, minimum="low", maximum=1.0)
    with pytest.raises(TypeError, match="maximum must be numeric"):
        BoundedTensorSpec((2,), torch.int64, minimum=0, maximum=[1, "x"])


@pytest.mark.parametrize(
    "np_type",
    [np.bool_, np.uint8, np.int8, np.int16, np.int32, np.int64]
    + [np.float16, np.float32, np.float64, np.complex64, np.complex128],
)
def test_torch_dtype_to_str_uses_the_numpy_name(np_type):
    name = np.dtype(np_type).name  # e.g. "float32", "bool"
    torch_dtype = getattr(torch, name)
    assert torch_dtype_to_str(torch_dtype) == name
    assert torch_dtype_to_str(np_type) == name  # any dtype torch_dtype_from accepts
    assert torch_dtype_to_str(name) == name
    assert torch_dtype_from(torch_dtype_to_str(torch_dtype)) == torch_dtype


def test_bfloat16_specs():
    # bfloat16 has no NumPy dtype: bounds are kept as float32 holding bfloat16 values
    torch.manual_seed(0)
    spec = BoundedTensorSpec((2,), torch.bfloat16, minimum=-1, maximum=[1.0, 0.1])
    assert spec.minimum.tolist() == -1.0
    assert spec.maximum.tolist() == [1.0, torch.tensor(0.1).to(torch.bfloat16).item()]
    s = spec.sample((500,))
    assert s.dtype == torch.bfloat16 and s.shape == (500, 2)
    lo, hi = torch.tensor([-1.0, -1.0]), torch.tensor(spec.maximum)
    assert ((s.float() >= lo) & (s.float() <= hi)).all()
    assert spec == BoundedTensorSpec((2,), torch.bfloat16, -1, [1, 0.1000001])  # same bfloat16
    assert spec.zeros((3,)).dtype == torch.bfloat16
    with pytest.raises(TypeError, match="bfloat16 has no NumPy dtype"):
        _ = TensorSpec((2,), torch.bfloat16).numpy_dtype
    with pytest.raises(TypeError, match="bfloat16 has no NumPy dtype"):
        spec.numpy_zeros()


def test_torch_dtype_to_str_without_numpy_counterpart_and_bad_input():
    assert torch_dtype_to_str(torch.bfloat16) == "bfloat16"
    with pytest.raises(TypeError, match="dtype must be a torch or numpy dtype"):
        torch_dtype_to_str("not-a-dtype")


# ---- ALF compatibility: replace, numpy_sample, rand, dtype_str, exact int64 sampling ----


def test_integer_sample_is_exact_beyond_2_to_the_53():
    torch.manual_seed(0)
    np.random.seed(0)
    top = 2**63 - 2
    spec = BoundedTensorSpec((), torch.int64, minimum=top, maximum=top)
    assert spec.sample((5,)).tolist() == [top] * 5
    assert spec.numpy_sample((5,)).tolist() == [top] * 5
    # four consecutive integers float64 cannot tell apart: each must come up
    base = 2**53
    spec = BoundedTensorSpec((), torch.int64, minimum=base, maximum=base + 3)
    for draw in (spec.sample((4000,)).tolist(), spec.numpy_sample((4000,)).tolist()):
        counts = {v: draw.count(v) for v in set(draw)}
        assert set(counts) == {base, base + 1, base + 2, base + 3}
        # binomial(4000, 1/4): sd ~ 27
        assert all(abs(c - 1000) < 150 for c in counts.values())
    full = BoundedTensorSpec((3,), torch.int64, minimum=-(2**63), maximum=2**63 - 1)
    values = full.sample((2000,)).flatten().tolist()
    # sign bits of uniform int64: about half negative
    assert abs(sum(v < 0 for v in values) - 3000) < 200
    assert len(set(values)) == 6000


def test_numpy_sample_of_bounded_specs():
    np.random.seed(1)
    spec = BoundedTensorSpec((2,), torch.int32, minimum=[-2, 10], maximum=[1, 10])
    s = spec.numpy_sample((3000,))
    assert s.shape == (3000, 2) and s.dtype == np.int32
    assert (s[:, 1] == 10).all() and set(np.unique(s[:, 0])) == {-2, -1, 0, 1}
    fspec = BoundedTensorSpec((), torch.float32, minimum=-1.0, maximum=3.0)
    f = fspec.numpy_sample(20000)
    assert f.dtype == np.float32 and f.min() >= -1.0 and f.max() <= 3.0
    # uniform on [-1, 3]: mean 1, variance 16/12
    assert abs(f.mean() - 1.0) < 0.03 and abs(f.var() - 16 / 12) < 0.05
    np.random.seed(1)
    again = spec.numpy_sample((3000,))
    np.testing.assert_array_equal(again, s)  # drawn from NumPy's seeded RNG
    b = BoundedTensorSpec((4,), torch.bool, minimum=False, maximum=True).numpy_sample(500)
    assert b.dtype == np.bool_ and 0.4 < b.mean() < 0.6
    huge = BoundedTensorSpec.from_spec(TensorSpec((3,))).numpy_sample(10)
    assert np.isfinite(huge).all()
    with pytest.raises(TypeError, match="bfloat16 has no NumPy dtype"):
        BoundedTensorSpec((1,), torch.bfloat16).numpy_sample()


def test_numpy_sample_of_unbounded_specs():
    np.random.seed(2)
    s = TensorSpec((4,), torch.float64).numpy_sample((5000,))
    assert s.shape == (5000, 4) and s.dtype == np.float64
    assert abs(s.mean()) < 0.03 and abs(s.std() - 1.0) < 0.03
    u = TensorSpec((1000,), torch.uint8).numpy_sample()
    assert u.dtype == np.uint8 and u.max() <= 10  # rounded normals, negatives clipped to 0
    assert TensorSpec((3,), torch.bool).numpy_sample(2).dtype == np.bool_


def test_rand_and_dtype_str():
    torch.manual_seed(3)
    r = TensorSpec((3,), torch.float64).rand((1000,))
    assert r.shape == (1000, 3) and r.dtype == torch.float64
    assert 0.0 <= float(r.min()) and float(r.max()) < 1.0 and abs(float(r.mean()) - 0.5) < 0.03
    assert TensorSpec((), torch.float16).rand().dtype == torch.float16
    with pytest.raises(TypeError, match="rand needs a floating point spec; got dtype int32"):
        TensorSpec((2,), torch.int32).rand()
    assert TensorSpec((2,), torch.uint8).dtype_str == "uint8"
    assert BoundedTensorSpec((), torch.bfloat16).dtype_str == "bfloat16"


def test_replace():
    spec = TensorSpec((2, 3), torch.int32)
    assert spec.replace(shape=(4,)) == TensorSpec((4,), torch.int32)
    assert spec.replace(dtype=torch.float64) == TensorSpec((2, 3), torch.float64)
    assert spec.replace() == spec and type(spec.replace()) is TensorSpec
    bounded = BoundedTensorSpec((2,), torch.float32, minimum=[-1, 0], maximum=2)
    wider = bounded.replace(maximum=5)
    assert isinstance(wider, BoundedTensorSpec)
    assert wider == BoundedTensorSpec((2,), torch.float32, minimum=[-1, 0], maximum=5)
    assert bounded.replace(dtype=torch.float64).minimum.dtype == np.float64
    assert bounded.replace(shape=(3, 2)).shape == (3, 2)  # the bounds broadcast
    assert bounded.replace(shape=(4,), minimum=0, maximum=1) == BoundedTensorSpec((4,))
    with pytest.raises(ValueError, match="cannot be broadcast to the spec shape"):
        bounded.replace(shape=(3,))
    with pytest.raises(ValueError, match="minimum must be <= maximum"):
        bounded.replace(minimum=3)
