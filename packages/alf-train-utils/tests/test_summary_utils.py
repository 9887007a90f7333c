"""alf.utils.summary_utils: every function writes real TensorBoard events,
read back with tensorboard's EventAccumulator and compared with NumPy."""

import collections
import time

import numpy as np
import pytest
import torch
import torch.distributions as td
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import alf.summary
from alf.data_structures import LossInfo
from alf.tensor_specs import BoundedTensorSpec, TensorSpec
from alf.utils import dist_utils, summary_utils
from alf.utils.summary_utils import (
    add_mean_hist_summary,
    add_mean_summary,
    add_nested_summaries,
    histogram_continuous,
    histogram_discrete,
    record_time,
    safe_mean_hist_summary,
    safe_mean_summary,
    summarize_action,
    summarize_distribution,
    summarize_distribution_gradient,
    summarize_gradients,
    summarize_loss,
    summarize_nest,
    summarize_per_category_loss,
    summarize_tensor_gradients,
    summarize_variables,
)

SIZE_GUIDANCE = {"scalars": 0, "histograms": 0, "images": 0, "tensors": 0}


class Log:
    """The event file of one test, read back with tensorboard's reader."""

    def __init__(self, path):
        self.path = path
        self.writer = alf.summary.create_summary_writer(str(path), flush_secs=1)

    def read(self):
        self.writer.flush()
        acc = EventAccumulator(str(self.path), size_guidance=SIZE_GUIDANCE)
        acc.Reload()
        return acc

    def scalars(self):
        """{tag: [values]}"""
        acc = self.read()
        return {t: [e.value for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}

    def scalar(self, tag):
        values = self.scalars()[tag]
        assert len(values) == 1, values
        return values[0]

    def histogram(self, tag):
        events = self.read().Histograms(tag)
        assert len(events) == 1
        return events[0].histogram_value


@pytest.fixture
def log(tmp_path):
    log = Log(tmp_path)
    alf.summary.set_default_writer(log.writer)
    alf.summary.reset_global_counter()
    alf.summary.enable_summary(True)
    yield log
    alf.summary.set_default_writer(None)
    alf.summary.reset_global_counter()
    log.writer.close()


class Buckets:
    """The non-empty buckets of a histogram as ``[(right edge, count)]``;
    equal when the counts are and the edges agree to 1e-6 (relative)."""

    def __init__(self, pairs):
        self.pairs = sorted((float(e), float(c)) for e, c in pairs if c > 0)

    def __eq__(self, other):
        if isinstance(other, dict):
            other = Buckets(other.items())
        return [c for _, c in self.pairs] == [c for _, c in other.pairs] and [
            e for e, _ in self.pairs
        ] == pytest.approx([e for e, _ in other.pairs], rel=1e-6, abs=1e-9)

    def __repr__(self):
        return f"Buckets({self.pairs})"


def buckets(proto):
    """The non-empty buckets of a HistogramProto."""
    return Buckets(zip(proto.bucket_limit, proto.bucket))


def np_buckets(values, edges):
    """The same from NumPy (the independent computation)."""
    counts, edges = np.histogram(values, bins=edges)
    return Buckets(zip(edges[1:], counts))


# ---- histograms -----------------------------------------------------------
def test_histogram_continuous_between_bounds(log, device):
    rng = np.random.default_rng(0)
    data = rng.normal(size=(40, 5))
    histogram_continuous(
        "h", torch.tensor(data, device=device), bucket_min=-1.0, bucket_max=1.5, bucket_count=10
    )
    proto = log.histogram("h")
    clipped = np.clip(data.ravel(), -1.0, 1.5)  # values outside land in the end buckets
    assert buckets(proto) == np_buckets(clipped, np.linspace(-1.0, 1.5, 11))
    assert proto.num == 200 and proto.min == -1.0 and proto.max == 1.5
    assert proto.sum == pytest.approx(clipped.sum())


def test_histogram_continuous_defaults(log):
    rng = np.random.default_rng(1)
    data = rng.uniform(-3, 7, size=300).astype(np.float32)
    data[5] = np.nan  # left out
    alf.summary.set_global_counter(4)
    histogram_continuous("auto", torch.tensor(data))
    histogram_continuous("const", torch.full((6,), 2.0), step=9)
    histogram_continuous("empty", torch.zeros(0))
    acc = log.read()
    event = acc.Histograms("auto")[0]
    finite = np.delete(data, 5).astype(np.float64)
    assert event.step == 4 and event.histogram_value.num == 299
    assert buckets(event.histogram_value) == np_buckets(
        finite, np.linspace(finite.min(), finite.max(), 31)
    )
    const = acc.Histograms("const")[0]
    assert const.step == 9 and buckets(const.histogram_value) == np_buckets(
        np.full(6, 2.0), np.linspace(1.5, 2.5, 31)
    )
    assert "empty" not in acc.Tags()["histograms"]


def test_histogram_continuous_bad_input(log):
    with pytest.raises(ValueError, match="bucket_count must be >= 1, got 0"):
        histogram_continuous("h", torch.ones(3), bucket_count=0)
    with pytest.raises(TypeError, match="bucket_count must be an int, got float 3.0"):
        histogram_continuous("h", torch.ones(3), bucket_count=3.0)
    with pytest.raises(ValueError, match="bucket_min must be <= bucket_max; got 2.0 > 1.0"):
        histogram_continuous("h", torch.ones(3), bucket_min=2, bucket_max=1)
    with pytest.raises(ValueError, match="bucket_max must be finite"):
        histogram_continuous("h", torch.ones(3), bucket_max=float("inf"))
    assert not log.read().Tags()["histograms"]


def test_histogram_discrete(log, device):
    rng = np.random.default_rng(2)
    data = rng.integers(-3, 7, size=(8, 25))
    histogram_discrete("d", torch.tensor(data, device=device), bucket_min=0, bucket_max=4)
    proto = log.histogram("d")
    counts = np.bincount(np.clip(data.ravel(), 0, 4), minlength=5)  # slow, independent
    assert buckets(proto) == {k + 0.5: float(c) for k, c in enumerate(counts) if c > 0}
    assert proto.num == data.size
    with pytest.raises(ValueError, match="bucket_min must be <= bucket_max; got 3 > 1"):
        histogram_discrete("d", torch.ones(3), 3, 1)
    with pytest.raises(ValueError, match="bucket_min and bucket_max must be integers"):
        histogram_discrete("d", torch.ones(3), 0.5, 3)


# ---- means ----------------------------------------------------------------
def test_mean_summaries(log, device):
    rng = np.random.default_rng(3)
    value = rng.normal(size=(6, 7)).astype(np.float32)
    mask = rng.uniform(size=(6, 7)) > 0.6
    v, m = torch.tensor(value, device=device), torch.tensor(mask, device=device)
    add_mean_summary("plain", v)
    add_mean_summary("ints", torch.tensor([1, 2, 4], device=device))
    add_mean_hist_summary("both", v)
    safe_mean_summary("masked", v, mask=m)
    safe_mean_summary("unmasked", v)
    safe_mean_summary("none_selected", v, mask=torch.zeros_like(m))
    safe_mean_hist_summary("masked_hist", v, mask=m)
    safe_mean_hist_summary("none_selected_hist", v[:0])
    scalars = log.scalars()
    assert scalars["plain"] == [pytest.approx(value.mean(), rel=1e-6)]
    assert scalars["ints"] == [pytest.approx(7 / 3)]
    assert scalars["both/mean"] == [pytest.approx(value.mean(), rel=1e-6)]
    assert scalars["masked"] == [pytest.approx(value[mask].mean(), rel=1e-6)]
    assert scalars["unmasked"] == [pytest.approx(value.mean(), rel=1e-6)]
    assert scalars["masked_hist/mean"] == [pytest.approx(value[mask].mean(), rel=1e-6)]
    assert "none_selected" not in scalars and "none_selected_hist/mean" not in scalars
    assert log.histogram("both/value").num == value.size
    hist = log.histogram("masked_hist/value")
    assert hist.num == mask.sum() and hist.sum == pytest.approx(value[mask].sum(), rel=1e-5)
    assert "none_selected_hist/value" not in log.read().Tags()["histograms"]


def test_mean_summaries_bad_mask(log):
    with pytest.raises(ValueError, match=r"mask must have the shape of value \[2, 3\]; got \[3\]"):
        safe_mean_summary("x", torch.zeros(2, 3), mask=torch.ones(3, dtype=torch.bool))
    with pytest.raises(TypeError, match="mask must be a bool Tensor or None"):
        safe_mean_hist_summary("x", torch.zeros(2), mask=[True, False])
    with pytest.raises(TypeError, match="value must be a Tensor"):
        add_mean_summary("x", "1.0")


# ---- nests ----------------------------------------------------------------
Inner = collections.namedtuple("Inner", ["c", "d"])


def test_add_nested_summaries(log):
    data = {
        "a": torch.tensor(1.5),
        "b": Inner(c=torch.tensor([1.0, 2.0, 6.0]), d=None),
        "e": [torch.tensor(4), 2.5],
    }
    add_nested_summaries("train", data)
    assert log.scalars() == {
        "train/a": [1.5],
        "train/b/c": [3.0],
        "train/e/0": [4.0],
        "train/e/1": [2.5],
    }


def test_add_nested_summaries_bad_input_writes_nothing(log):
    with pytest.raises(TypeError, match="data must be a dict or a namedtuple; got Tensor"):
        add_nested_summaries("p", torch.ones(2))
    with pytest.raises(TypeError, match="data must hold Tensors or numbers; got str at 'p/z'"):
        add_nested_summaries("p", {"a": torch.tensor(1.0), "z": "text"})
    assert log.scalars() == {}


def test_summarize_nest(log):
    rng = np.random.default_rng(4)
    vec = rng.normal(size=10).astype(np.float32)
    summarize_nest(
        "obs", {"pos": torch.tensor(vec), "n": Inner(c=torch.tensor([2.0]), d=torch.zeros(0))}
    )
    summarize_nest("single", torch.tensor(7.0))
    scalars = log.scalars()
    assert scalars == {
        "obs/n.c": [2.0],
        "obs/pos/mean": [pytest.approx(vec.mean(), rel=1e-6)],
        "single": [7.0],
    }
    assert log.histogram("obs/pos/value").num == 10
    with pytest.raises(TypeError, match="nest must hold Tensors or numbers; got object at 'x'"):
        summarize_nest("bad", {"x": object()})


# ---- variables and gradients ----------------------------------------------
def test_summarize_variables_and_gradients(log, device):
    torch.manual_seed(0)
    layer = torch.nn.Linear(3, 2).to(device)
    frozen = torch.nn.Parameter(torch.ones(4, device=device))  # no gradient
    layer(torch.randn(5, 3, device=device)).pow(2).sum().backward()
    params = list(layer.named_parameters()) + [("frozen", frozen)]
    summarize_variables(params)
    summarize_gradients(params)
    summarize_variables([("w_nohist", layer.weight)], with_histogram=False)
    summarize_gradients([("w_nohist", layer.weight)], with_histogram=False)
    scalars = log.scalars()
    for name, p in params:
        w = p.detach().cpu().numpy()
        assert scalars[f"summarize_vars/{name}_value_norm"] == [
            pytest.approx(np.sqrt((w**2).sum()), rel=1e-6)
        ]
        assert log.histogram(f"summarize_vars/{name}_value").num == w.size
    for name, p in layer.named_parameters():
        g = p.grad.cpu().numpy()
        assert scalars[f"summarize_grads/{name}_gradient_norm"] == [
            pytest.approx(np.sqrt((g**2).sum()), rel=1e-6)
        ]
        assert log.histogram(f"summarize_grads/{name}_gradient").sum == pytest.approx(
            g.sum(), rel=1e-5, abs=1e-6
        )
    assert "summarize_grads/frozen_gradient_norm" not in scalars
    hists = log.read().Tags()["histograms"]
    assert (
        "summarize_vars/w_nohist_value" not in hists
        and "summarize_grads/w_nohist_gradient" not in hists
    )
    assert "summarize_grads/w_nohist_gradient_norm" in scalars
    with pytest.raises(TypeError, match=r"name_and_params must hold \(str, Parameter\) pairs"):
        summarize_variables([layer.weight])


def _norm_stats(grad):
    """max, min, mean over samples of the per-sample L2 norm (NumPy)."""
    norms = np.sqrt((grad.reshape(grad.shape[0], -1) ** 2).sum(axis=1))
    return norms.max(), norms.min(), norms.mean()


def test_summarize_tensor_gradients(log, device):
    rng = np.random.default_rng(5)
    w = rng.normal(size=(4, 2, 3)).astype(np.float32)
    v = rng.normal(size=(4, 5)).astype(np.float32)
    x = torch.zeros(4, 2, 3, device=device, requires_grad=True)
    y = torch.zeros(4, 5, device=device, requires_grad=True)
    alf.summary.set_global_counter(3)
    with alf.summary.scope("algo"):
        out = summarize_tensor_gradients("g", {"x": x, "y": y})
    assert out["x"] is x and out["y"] is y  # clone=False: the same tensors
    alf.summary.set_global_counter(4)  # backward later, outside the scope
    loss = (x * torch.tensor(w, device=device)).sum() + (y * torch.tensor(v, device=device)).sum()
    loss.backward()
    acc = log.read()
    for key, grad in (("x", w), ("y", v)):
        for stat, want in zip(("max_norm", "min_norm", "avg_norm"), _norm_stats(grad)):
            events = acc.Scalars(f"algo/g/{key}/{stat}")
            assert [e.step for e in events] == [3]
            assert events[0].value == pytest.approx(want, rel=1e-5)


def test_summarize_tensor_gradients_clone_and_batch_dims(log):
    x = torch.zeros(2, 3, 4, requires_grad=True)
    x2 = summarize_tensor_gradients("clone", x, batch_dims=2, clone=True)
    assert x2 is not x
    w = torch.arange(24.0).reshape(2, 3, 4)
    (x2 * w).sum().backward(retain_graph=True)
    (x * 100.0).sum().backward()  # another use of x: not seen by the clone's hook
    g = w.numpy().reshape(6, 4)
    for stat, want in zip(("max_norm", "min_norm", "avg_norm"), _norm_stats(g)):
        assert log.scalar(f"clone/{stat}") == pytest.approx(want, rel=1e-6)
    with pytest.raises(ValueError, match=r"batch_dims \(3\) exceeds the rank"):
        summarize_tensor_gradients("bad", torch.zeros(2, 2), batch_dims=3)
    with pytest.raises(ValueError, match="batch_dims must be >= 0, got -1"):
        summarize_tensor_gradients("bad", torch.zeros(2, 2), batch_dims=-1)
    with pytest.raises(TypeError, match="batch_dims must be an int, got str"):
        summarize_tensor_gradients("bad", torch.zeros(2, 2), batch_dims="1")


def test_summarize_tensor_gradients_not_recording(log):
    x = torch.zeros(2, requires_grad=True)
    with alf.summary.record_if(False):
        assert summarize_tensor_gradients("quiet", x, clone=True) is x
    (x * 2).sum().backward()
    assert log.scalars() == {}


def test_summarize_distribution_gradient(log):
    rng = np.random.default_rng(6)
    loc0 = rng.normal(size=(3, 2)).astype(np.float32)
    scale0 = rng.uniform(0.5, 2.0, size=(3, 2)).astype(np.float32)
    sample = rng.normal(size=(3, 2)).astype(np.float32)
    loc = torch.tensor(loc0, requires_grad=True)
    scale = torch.tensor(scale0, requires_grad=True)
    dist = td.Independent(td.Normal(loc * 1.0, scale * 1.0), 1)
    same = summarize_distribution_gradient("plain", dist)
    assert same is dist
    cloned = summarize_distribution_gradient("cloned", dist, clone=True)
    assert cloned is not dist and isinstance(cloned, td.Independent)
    cloned.log_prob(torch.tensor(sample)).sum().backward()
    # d log N(s; m, s) / dm = (s - m) / sd^2,  / dsd = -1/sd + (s - m)^2 / sd^3
    d_loc = (sample - loc0) / scale0**2
    d_scale = -1 / scale0 + (sample - loc0) ** 2 / scale0**3
    for tag in ("plain", "cloned"):
        for key, grad in (("loc", d_loc), ("scale", d_scale)):
            for stat, want in zip(("max_norm", "min_norm", "avg_norm"), _norm_stats(grad)):
                assert log.scalar(f"{tag}/{key}/{stat}") == pytest.approx(want, rel=1e-5)


# ---- actions and distributions --------------------------------------------
def test_summarize_action(log):
    rng = np.random.default_rng(7)
    specs = {
        "discrete": BoundedTensorSpec((), torch.int64, 0, 3),
        "continuous": BoundedTensorSpec((2,), torch.float32, [-1.0, 0.0], [1.0, 5.0]),
        "image": BoundedTensorSpec((2, 2), torch.float32, 0.0, 1.0),  # rank 2: skipped
        "free": TensorSpec((1,), torch.float32),
    }
    actions = {
        "discrete": torch.tensor(rng.integers(0, 4, size=(5, 6))),
        "continuous": torch.tensor(rng.uniform(-2, 6, size=(5, 6, 2))),
        "image": torch.zeros(5, 2, 2),
        "free": torch.tensor(rng.normal(size=(30, 1))),
    }
    summarize_action(actions, specs)
    tags = sorted(log.read().Tags()["histograms"])
    # flattening order of the dict (sorted keys): continuous, discrete, free, image
    assert tags == ["action/0/0", "action/0/1", "action/1", "action/2/0"]
    c = actions["continuous"].numpy().reshape(-1, 2)
    for a, (lo, hi) in enumerate([(-1.0, 1.0), (0.0, 5.0)]):
        want = np_buckets(np.clip(c[:, a], lo, hi), np.linspace(lo, hi, 31))
        assert buckets(log.histogram(f"action/0/{a}")) == want
    d = actions["discrete"].numpy().ravel()
    assert buckets(log.histogram("action/1")) == {
        k + 0.5: float(n) for k, n in enumerate(np.bincount(d, minlength=4)) if n
    }
    f = actions["free"].numpy().ravel()
    assert buckets(log.histogram("action/2/0")) == np_buckets(f, np.linspace(f.min(), f.max(), 31))
    with pytest.raises(ValueError):
        summarize_action({"a": torch.zeros(2)}, {"b": TensorSpec(())}, name="mismatch")
    summarize_action(torch.zeros(0, dtype=torch.int64), TensorSpec((), torch.int64), name="none")
    assert not [t for t in log.read().Tags()["histograms"] if t.startswith("none")]


def test_summarize_distribution(log):
    torch.manual_seed(1)
    loc, scale = torch.randn(6, 2), torch.rand(6, 2) + 0.1
    a, b = torch.rand(6) + 0.5, torch.rand(6) + 0.5
    tensor_leaf = torch.randn(6, 3)
    dists = {
        "normal": td.Independent(td.Normal(loc, scale), 1),
        "beta": dist_utils.Beta(a, b),
        "cauchy": td.TransformedDistribution(
            dist_utils.StableCauchy(loc, scale), [td.ExpTransform()]
        ),
        "categorical": td.Categorical(logits=torch.zeros(6, 4)),  # unsupported: ignored
        "tensor": tensor_leaf,
    }
    summarize_distribution("dist", dists)
    tags = set(log.read().Tags()["histograms"])
    assert tags == {
        "dist/normal_loc/0", "dist/normal_loc/1", "dist/normal_scale/0", "dist/normal_scale/1",
        "dist/beta_loc/0", "dist/beta_scale/0",
        "dist/cauchy_loc/0", "dist/cauchy_loc/1", "dist/cauchy_scale/0", "dist/cauchy_scale/1",
        "dist/tensor/0", "dist/tensor/1", "dist/tensor/2",
    }  # fmt: skip

    def check(tag, values):
        values = np.asarray(values, np.float64)
        edges = np.linspace(values.min(), values.max(), 31)
        assert buckets(log.histogram(tag)) == np_buckets(values, edges)

    check("dist/normal_loc/1", loc[:, 1])
    check("dist/normal_scale/0", scale[:, 0])
    a64, b64 = a.double().numpy(), b.double().numpy()
    check("dist/beta_loc/0", a64 / (a64 + b64))  # Beta mean and standard deviation
    check("dist/beta_scale/0", np.sqrt(a64 * b64 / ((a64 + b64) ** 2 * (a64 + b64 + 1))))
    check("dist/cauchy_scale/1", scale[:, 1])
    check("dist/tensor/2", tensor_leaf[:, 2])


# ---- losses ---------------------------------------------------------------
Extra = collections.namedtuple("Extra", ["actor", "critic"])


def test_summarize_loss(log):
    info = LossInfo(
        loss=torch.tensor(1.25),
        extra=Extra(actor=torch.tensor([1.0, 2.0, 4.5]), critic={"td": torch.tensor(0.5)}),
    )
    summarize_loss(info)
    summarize_loss(LossInfo(loss=torch.tensor([1.0, 3.0])))  # no extra; mean of the loss
    assert log.scalars() == {"loss": [1.25, 2.0], "loss/actor": [2.5], "loss/critic/td": [0.5]}


def test_summarize_loss_bad_input(log):
    with pytest.raises(TypeError, match="loss_info.extra must be a namedtuple, a dict or empty"):
        summarize_loss(LossInfo(loss=torch.tensor(1.0), extra=torch.ones(2)))
    with pytest.raises(TypeError, match="loss_info must be a LossInfo"):
        summarize_loss(torch.tensor(1.0))
    assert log.scalars() == {}


def test_summarize_per_category_loss(log, device):
    rng = np.random.default_rng(8)
    loss = rng.uniform(size=(4, 6)).astype(np.float32)
    label = rng.integers(0, 3, size=(4, 6))
    label[label == 1] = 2  # category 1 absent
    info = LossInfo(
        loss=torch.tensor(loss, device=device), batch_label=torch.tensor(label, device=device)
    )
    summarize_per_category_loss(info, summarize_count=True)
    summarize_per_category_loss(info, label_names=["cat", "dog", "bird"])
    summarize_per_category_loss(LossInfo(loss=torch.tensor(loss)))  # no batch_label: skipped
    scalars = log.scalars()
    want = {}
    for k, name in ((0, "cat"), (2, "bird")):
        sel = [loss[i, j] for i in range(4) for j in range(6) if label[i, j] == k]  # slow loop
        want[f"per_category_loss/{k}"] = [pytest.approx(np.mean(sel), rel=1e-6)]
        want[f"per_category_count/{k}"] = [float(len(sel))]
        want[f"per_category_loss/{name}"] = [pytest.approx(np.mean(sel), rel=1e-6)]
    assert scalars == want


def test_summarize_per_category_loss_bad_input(log):
    with pytest.raises(
        ValueError, match=r"batch_label must have the shape of loss_info.loss \[4\]"
    ):
        summarize_per_category_loss(
            LossInfo(loss=torch.zeros(4), batch_label=torch.zeros(2, dtype=torch.int64))
        )
    with pytest.raises(TypeError, match="batch_label must hold integers"):
        summarize_per_category_loss(LossInfo(loss=torch.zeros(2), batch_label=torch.zeros(2)))
    with pytest.raises(ValueError, match=r"label_names has 1 names; labels \[3\] have none"):
        summarize_per_category_loss(
            LossInfo(loss=torch.zeros(2), batch_label=torch.tensor([0, 3])), label_names=["a"]
        )
    assert log.scalars() == {}


# ---- timing ---------------------------------------------------------------
def test_record_time_averages_over_the_summary_interval(log):
    recording = [False]
    timer = record_time("time/block")
    outer_start = time.perf_counter()
    with alf.summary.record_if(lambda: recording[0]):
        for sleep in (0.01, 0.03):
            with timer:
                time.sleep(sleep)
        recording[0] = True
        with alf.summary.scope("scoped"), record_time("t"):
            pass
        with timer:
            time.sleep(0.02)
    outer = time.perf_counter() - outer_start
    value = log.scalar("time/block")
    # the mean of three blocks, each at least its sleep and together within the total
    assert (0.01 + 0.03 + 0.02) / 3 <= value and value * 3 <= outer
    assert log.scalar("scoped/t") >= 0.0


def test_record_time_cuda_sync_setting(monkeypatch, device):
    monkeypatch.setenv("ALF_RECORD_TIME_SYNC", "0")
    assert record_time("a").cuda_sync is False
    monkeypatch.setenv("ALF_RECORD_TIME_SYNC", "1")
    assert record_time("a").cuda_sync is True
    monkeypatch.delenv("ALF_RECORD_TIME_SYNC")
    assert record_time("a").cuda_sync is True
    assert record_time("a", cuda_sync=False).cuda_sync is False
    x = torch.randn(64, 64, device=device)
    with record_time("matmul"):  # synchronizes around the block on CUDA
        (x @ x).sum()
    with pytest.raises(TypeError, match="tag must be a str"):
        record_time(3)


def test_nothing_is_written_or_computed_without_recording(log):
    with alf.summary.record_if(False):
        histogram_continuous("h", torch.ones(3))
        histogram_discrete("d", torch.ones(3), 0, 1)
        add_mean_summary("m", torch.ones(3))
        safe_mean_hist_summary("s", torch.ones(3))
        summarize_nest("n", {"a": torch.ones(2)})
        summarize_loss(LossInfo(loss=torch.tensor(1.0)))
        summarize_distribution("dist", td.Normal(torch.zeros(2), torch.ones(2)))
        summarize_action(torch.zeros(2), TensorSpec(()))
    acc = log.read()
    assert not acc.Tags()["scalars"] and not acc.Tags()["histograms"]
    assert summary_utils.__all__  # the module lists its API


# ---- edge cases -----------------------------------------------------------
def test_histogram_bounds_as_tensors(log):
    data = torch.tensor([-2.0, 0.1, 0.2, 0.9, 3.0])
    histogram_continuous("t", data, torch.tensor(-1.0), torch.tensor([1.0]), bucket_count=4)
    clipped = np.clip(data.numpy().astype(np.float64), -1.0, 1.0)
    assert buckets(log.histogram("t")) == np_buckets(clipped, np.linspace(-1.0, 1.0, 5))
    with pytest.raises(ValueError, match=r"bucket_max must be a single number; got shape \[2\]"):
        histogram_continuous("t", data, bucket_max=torch.tensor([1.0, 2.0]))


def test_all_nan_or_empty_data_writes_no_histogram(log):
    nan = torch.full((4,), float("nan"))
    histogram_continuous("c_nan", nan, bucket_min=0.0, bucket_max=1.0)
    histogram_discrete("d_nan", nan, 0, 3)
    histogram_discrete("d_empty", torch.zeros(0), 0, 3)
    histogram_continuous("written", torch.tensor([0.5]), 0.0, 1.0)
    assert log.read().Tags()["histograms"] == ["written"]


def test_summarize_nest_skips_none(log):
    summarize_nest("n", {"a": None, "b": torch.tensor(3.0)})
    assert log.scalars() == {"n/b": [3.0]}


def test_summarize_gradients_of_sparse_gradients(log):
    emb = torch.nn.Embedding(6, 3, sparse=True)
    emb(torch.tensor([1, 4, 1])).pow(2).sum().backward()
    assert emb.weight.grad.is_sparse
    dense = emb.weight.grad.to_dense().numpy().astype(np.float64)
    summarize_gradients([("emb", emb.weight)], with_histogram=True)
    assert log.scalar("summarize_grads/emb_gradient_norm") == pytest.approx(
        np.linalg.norm(dense), rel=1e-6
    )
    # the histogram holds the stored values: rows 1 and 4, not the zero rows
    assert log.histogram("summarize_grads/emb_gradient").num == 2 * 3


def test_summarize_tensor_gradients_leaves(log):
    x = torch.ones(2, 3, requires_grad=True)
    empty = torch.zeros(0, 3, requires_grad=True)
    out = summarize_tensor_gradients("g", {"x": x, "frozen": torch.ones(2), "empty": empty})
    (out["x"] * 2).sum().backward()
    (empty * 2).sum().backward()
    assert sorted(log.scalars()) == ["g/x/avg_norm", "g/x/max_norm", "g/x/min_norm"]
    # each sample's gradient is 2 * ones(3): norm 2 * sqrt(3)
    assert log.scalar("g/x/max_norm") == pytest.approx(2 * np.sqrt(3), rel=1e-6)
    with pytest.raises(TypeError, match="tensor must hold Tensors; got str at 'b'"):
        summarize_tensor_gradients("g", {"a": x, "b": "text"})


def test_summarize_distribution_gradient_not_recording(log):
    dist = td.Normal(torch.zeros(2, requires_grad=True), torch.ones(2))
    with alf.summary.record_if(False):
        assert summarize_distribution_gradient("quiet", dist, clone=True) is dist
        with pytest.raises(ValueError, match="batch_dims must be >= 0, got -1"):
            summarize_distribution_gradient("quiet", dist, batch_dims=-1)
    assert log.scalars() == {}


def test_summarize_distribution_ignores_unsupported_leaves(log):
    dists = {
        "gamma": td.Gamma(torch.ones(4, 2), torch.ones(4, 2)),  # no base distribution known
        "number": 3.0,
        "normal": td.Normal(torch.zeros(4, 1), torch.ones(4, 1)),
    }
    summarize_distribution("d", dists)
    assert sorted(log.read().Tags()["histograms"]) == ["d/normal_loc/0", "d/normal_scale/0"]


def test_summarize_loss_without_a_total(log):
    summarize_loss(LossInfo(loss=(), extra={"a": torch.tensor(2.0)}))
    assert log.scalars() == {"loss/a": [2.0]}
