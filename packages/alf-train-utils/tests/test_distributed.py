"""distributed: @data_distributed under real torch.distributed (gloo, two CPU
processes) against one process trained on the union of both batches; the
direct call without a process group; bad input.

The reference trainings here are plain PyTorch written out by hand (no
decorator, the layers called directly). Children are forked, join a gloo group
on a free port, and are watched: a child still running after the deadline is
killed and the test fails.
"""

import multiprocessing
import os
import sys

import gin
import numpy as np
import pytest
import torch
import torch.distributed as dist
from torch import nn

from alf.utils.distributed import data_distributed, data_distributed_when, make_ddp_performer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import alf_train_ddp_workers as W  # noqa: E402
import alf_train_proc_workers as workers  # noqa: E402

needs_gloo = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available())
    or "fork" not in multiprocessing.get_all_start_methods(),
    reason="needs torch.distributed with gloo and the fork start method",
)


def run_two_processes(case, tmp_path):
    """Run ``W.ddp_worker(case, rank, ...)`` in two forked processes; return
    both reports. Fails (after killing them) if they do not end in time."""
    ctx = multiprocessing.get_context("fork")
    port = workers.free_port()
    procs = [
        ctx.Process(target=W.ddp_worker, args=(case, rank, port, str(tmp_path)))
        for rank in range(W.WORLD_SIZE)
    ]
    try:
        for p in procs:
            p.start()
        for p in procs:
            p.join(workers.DEADLINE_S)
        hung = [p.pid for p in procs if p.exitcode is None]
    finally:
        workers.reap(procs)
    errors = [
        (tmp_path / f"rank{r}.err").read_text()
        for r in range(W.WORLD_SIZE)
        if (tmp_path / f"rank{r}.err").exists()
    ]
    assert not hung, f"DDP workers {hung} still running after {workers.DEADLINE_S} s"
    assert not errors, "\n".join(errors)
    assert [p.exitcode for p in procs] == [0] * W.WORLD_SIZE
    return [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(W.WORLD_SIZE)]


def reference_net(steps_union, steps_local=0, rank=0):
    """One process, plain PyTorch: rank 0's initial Net trained with Adam on
    the union batches of the first ``steps_union`` steps, then on ``rank``'s
    own shard for ``steps_local`` more steps."""
    model = W.Net(seed=100)
    opt = torch.optim.Adam(model.parameters(), lr=W.LR)
    for step in range(steps_union + steps_local):
        x, y = W.batch(step)
        if step >= steps_union:
            x, y = W.shard(x, rank), W.shard(y, rank)
        h = torch.tanh(model.l1(x))
        loss = ((model.l2(h) - y) ** 2).mean() + 0.01 * (h**2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.state_dict()


def assert_params_close(actual, expected):
    assert actual.keys() == expected.keys()
    for k in expected:
        torch.testing.assert_close(actual[k], expected[k], rtol=1e-5, atol=1e-6, msg=k)


@needs_gloo
def test_two_processes_equal_one_process_on_the_union(tmp_path):
    """After STEPS Adam steps with DDP over two processes (each on its half of
    the batch, different initial parameters), both processes hold the
    parameters of one process trained on the whole batches from rank 0's
    initial parameters. Also: the performer is cached per method, and bad
    ranks or method names raise ValueError with a live process group."""
    r0, r1 = run_two_processes("average", tmp_path)
    expected = reference_net(W.STEPS)
    assert_params_close(r0["params"], expected)
    assert_params_close(r1["params"], expected)
    for k in expected:  # the processes agree with each other exactly
        assert torch.equal(r0["params"][k], r1["params"][k]), k
    # the training moved the parameters: the comparison is not vacuous
    assert not torch.allclose(W.Net(seed=100).l1.weight, expected["l1.weight"], atol=1e-3)
    for r in (r0, r1):
        assert r["performers"] == ["compute"]
        assert "ddp_rank must be in [0, world_size) = [0, 2), got 2" in r["rank_high"]
        assert "got -1" in r["rank_negative"]
        assert "method 'no_such_method' is not a method" in r["missing_method"]
        assert "got 5" in r["attribute_rank_high"]


@needs_gloo
def test_data_distributed_when_condition(tmp_path):
    """cond True for the first half of the steps (synchronised), False after:
    each process then trains alone on its shard, from the common parameters."""
    reports = run_two_processes("when", tmp_path)
    half = W.STEPS // 2
    for rank, report in enumerate(reports):
        assert_params_close(report["params"], reference_net(half, W.STEPS - half, rank))
    assert not torch.allclose(reports[0]["params"]["l1.weight"], reports[1]["params"]["l1.weight"])


def reference_branchy():
    """Branchy trained by plain SGD on the union batches; head_b is used on
    even steps only."""
    model = W.Branchy(seed=200)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(W.STEPS):
        x, y = W.batch(step)
        h = torch.tanh(model.trunk(x))
        out = model.head_a(h)
        if W.branchy_use_b(step):
            out = out + model.head_b(h)
        loss = ((out - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.state_dict()


@needs_gloo
def test_find_unused_parameters_for_a_method_that_skips_a_branch(tmp_path):
    """With make_ddp_performer.find_unused_parameters = True (gin), a method
    that skips head_b on odd steps trains like one process on the union."""
    expected = reference_branchy()
    for report in run_two_processes("unused", tmp_path):
        assert "error" not in report, report["error"]
        assert_params_close(report["params"], expected)


@needs_gloo
def test_without_find_unused_parameters_the_skipped_branch_fails(tmp_path):
    """Without the flag, DDP refuses the step after the one that skipped
    head_b: the setting is what makes the previous test pass."""
    for report in run_two_processes("unused_off", tmp_path):
        assert report["error"].startswith("step 2: "), report["error"]
        assert "find_unused_parameters" in report["error"]


class Plain(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 2)

    @data_distributed
    def compute(self, x, scale=1.0):
        """Scaled output of the linear layer."""
        return self.lin(x) * scale

    @data_distributed_when(lambda m: True)
    def compute_when(self, x):
        return self.lin(x)


def test_direct_call_without_process_group():
    """Not activated, or activated without an initialised process group: the
    method is called directly (same values, same autograd graph)."""
    assert not dist.is_initialized()
    torch.manual_seed(0)
    m = Plain()
    x = torch.randn(4, 2)
    expected = (x @ m.lin.weight.T + m.lin.bias) * 3.0
    torch.testing.assert_close(m.compute(x, scale=3.0), expected)
    torch.testing.assert_close(m.compute_when(x), x @ m.lin.weight.T + m.lin.bias)
    m._ddp_activated_rank = 0  # activated, but there is no process group
    out = m.compute(x, scale=3.0)
    torch.testing.assert_close(out, expected)
    out.sum().backward()
    torch.testing.assert_close(m.lin.weight.grad, 3.0 * x.sum(0).expand(2, 2))
    assert "_ddp_performer_map" not in m.__dict__
    assert Plain.compute.__name__ == "compute"
    assert Plain.compute.__doc__ == "Scaled output of the linear layer."


def test_gin_configurable_find_unused_parameters():
    """make_ddp_performer is gin-configurable, for find_unused_parameters only
    (the two-process tests show the binding taking effect)."""
    try:
        gin.bind_parameter("make_ddp_performer.find_unused_parameters", True)
        assert gin.query_parameter("make_ddp_performer.find_unused_parameters") is True
        with pytest.raises(ValueError, match="ddp_rank"):
            gin.bind_parameter("make_ddp_performer.ddp_rank", 1)
    finally:
        gin.clear_config()


def test_bad_input():
    m = Plain()
    with pytest.raises(TypeError, match="cond"):
        data_distributed_when(3)
    with pytest.raises(TypeError, match="decorates a method"):
        data_distributed(3)
    with pytest.raises(TypeError, match="module must be a torch.nn.Module"):
        make_ddp_performer("not a module", "compute", 0)
    with pytest.raises(ValueError, match="method 'absent' is not a method"):
        make_ddp_performer(m, "absent", 0)
    with pytest.raises(TypeError, match="method must be a callable"):
        make_ddp_performer(m, 3, 0)
    with pytest.raises(TypeError, match="ddp_rank must be an int"):
        make_ddp_performer(m, "compute", 0.5)
    with pytest.raises(RuntimeError, match="init_process_group"):
        make_ddp_performer(m, "compute", 0)

    class NotAModule:
        @data_distributed
        def f(self):
            return 1

    obj = NotAModule()
    assert obj.f() == 1  # not activated: fine
    obj._ddp_activated_rank = 0
    with pytest.raises(TypeError, match="torch.nn.Module"):
        obj.f()


# ---------------------------------------------------------------- a group of one


@pytest.fixture
def group_of_one(tmp_path):
    """A real gloo process group of this process alone (world size 1)."""
    if not (dist.is_available() and dist.is_gloo_available()):
        pytest.skip("needs torch.distributed with gloo")
    assert not dist.is_initialized()
    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1
    )
    try:
        yield
    finally:
        dist.destroy_process_group()


class Skipping(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 2)
        self.use = True

    @data_distributed_when(lambda m: m.use)
    def compute(self, x):
        return self.lin(x)


def test_activated_module_in_a_group_of_one(group_of_one):
    """DDP wraps the method once per module and method, passes keywords, and
    (one process) leaves the gradients those of the plain computation."""
    torch.manual_seed(0)
    m = Plain()
    x = torch.randn(4, 2)
    m._ddp_activated_rank = 0
    out = m.compute(x, scale=2.0)
    torch.testing.assert_close(out, (x @ m.lin.weight.T + m.lin.bias) * 2.0)
    out.sum().backward()
    torch.testing.assert_close(m.lin.weight.grad, 2.0 * x.sum(0).expand(2, 2))
    torch.testing.assert_close(m.lin.bias.grad, torch.full((2,), 8.0))
    performers = m.__dict__["_ddp_performer_map"]
    assert len(performers) == 1
    (performer,) = performers.values()
    assert isinstance(performer, torch.nn.parallel.DistributedDataParallel)
    assert performer.device_ids is None  # a CPU module
    m.compute(x)
    assert list(m.__dict__["_ddp_performer_map"].values()) == [performer]  # reused
    m._ddp_activated_rank = None  # switched off again: direct calls
    torch.testing.assert_close(m.compute(x, scale=1.0), x @ m.lin.weight.T + m.lin.bias)


def test_condition_false_calls_directly_in_a_group(group_of_one):
    m = Skipping()
    m._ddp_activated_rank = 0
    m.use = False
    x = torch.ones(1, 2)
    torch.testing.assert_close(m.compute(x), x @ m.lin.weight.T + m.lin.bias)
    assert "_ddp_performer_map" not in m.__dict__
    m.use = True
    m.compute(x)
    assert len(m.__dict__["_ddp_performer_map"]) == 1


def test_make_ddp_performer_in_a_group_of_one(group_of_one):
    m = Plain()
    x = torch.ones(3, 2)
    by_name = make_ddp_performer(m, "compute_when", np.int64(0))
    torch.testing.assert_close(by_name(x), x @ m.lin.weight.T + m.lin.bias)
    by_callable = make_ddp_performer(m, lambda v: m.lin(v) * 3.0, 0)
    torch.testing.assert_close(by_callable(x), (x @ m.lin.weight.T + m.lin.bias) * 3.0)
    assert list(by_callable.module.children()) == [m]  # DDP synchronises m only
    with pytest.raises(ValueError, match=r"ddp_rank must be in \[0, world_size\) = \[0, 1\), got 1"):
        make_ddp_performer(m, "compute", 1)
    with pytest.raises(TypeError, match="ddp_rank must be an int, got bool True"):
        make_ddp_performer(m, "compute", True)


def test_object_without_dict_is_never_activated():
    class Slotted:
        __slots__ = ()

        @data_distributed
        def f(self, v):
            return v + 1

    assert Slotted().f(1) == 2
