"""Models, data and the worker of the two-process DDP tests (gloo, CPU)."""

import datetime
import os
import traceback

import gin
import torch
import torch._dynamo  # noqa: F401 - DDP imports it (seconds); forked children inherit it
import torch.distributed as dist
from torch import nn

from alf.utils.distributed import data_distributed, data_distributed_when, make_ddp_performer
from alf.utils.per_process_context import PerProcessContext

WORLD_SIZE = 2
PER_RANK = 8  # samples of each process per step
STEPS = 6
LR = 0.05


def batch(step):
    """The union batch of ``step``: x (WORLD_SIZE * PER_RANK, 3) float32 and
    y (WORLD_SIZE * PER_RANK, 2) float32; rank r trains on rows
    [r * PER_RANK, (r + 1) * PER_RANK)."""
    g = torch.Generator().manual_seed(1000 + step)
    x = torch.randn(WORLD_SIZE * PER_RANK, 3, generator=g)
    y = torch.randn(WORLD_SIZE * PER_RANK, 2, generator=g)
    return x, y


def shard(t, rank):
    return t[rank * PER_RANK : (rank + 1) * PER_RANK]


class Net(nn.Module):
    """Two layers; ``compute`` returns a dict of outputs (a nest)."""

    def __init__(self, seed):
        super().__init__()
        torch.manual_seed(seed)
        self.l1 = nn.Linear(3, 16)
        self.l2 = nn.Linear(16, 2)
        self.use_ddp = True

    @data_distributed
    def compute(self, x):
        h = torch.tanh(self.l1(x))
        return {"pred": self.l2(h), "hidden": h}

    @data_distributed_when(lambda self: self.use_ddp)
    def compute_when(self, x):
        h = torch.tanh(self.l1(x))
        return {"pred": self.l2(h), "hidden": h}


class Branchy(nn.Module):
    """A trunk and two heads; ``compute`` skips head_b when ``use_b`` is False."""

    def __init__(self, seed):
        super().__init__()
        torch.manual_seed(seed)
        self.trunk = nn.Linear(3, 8)
        self.head_a = nn.Linear(8, 2)
        self.head_b = nn.Linear(8, 2)

    @data_distributed
    def compute(self, x, use_b):
        h = torch.tanh(self.trunk(x))
        out = self.head_a(h)
        if use_b:
            out = out + self.head_b(h)
        return out


def net_loss(out, y):
    return ((out["pred"] - y) ** 2).mean() + 0.01 * (out["hidden"] ** 2).mean()


def branchy_use_b(step):
    return step % 2 == 0


def _train_net(rank, method_name):
    model = Net(seed=100 + rank)  # different on each rank: DDP broadcasts rank 0's
    model._ddp_activated_rank = PerProcessContext().ddp_rank
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    for step in range(STEPS):
        if method_name == "compute_when":
            model.use_ddp = step < STEPS // 2
        x, y = batch(step)
        out = getattr(model, method_name)(shard(x, rank))
        loss = net_loss(out, shard(y, rank))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def _case_average(rank, report):
    model = _train_net(rank, "compute")
    report["params"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
    report["performers"] = sorted(f.__name__ for f in model.__dict__.get("_ddp_performer_map", {}))
    # bad input, checked with a live process group
    for label, args in [
        ("rank_high", (model, "compute", WORLD_SIZE)),
        ("rank_negative", (model, "compute", -1)),
        ("missing_method", (model, "no_such_method", rank)),
    ]:
        try:
            make_ddp_performer(*args)
            report[label] = "no error"
        except ValueError as ex:
            report[label] = str(ex)
    bad = Net(seed=0)
    bad._ddp_activated_rank = WORLD_SIZE + 3
    try:
        bad.compute(torch.zeros(1, 3))
        report["attribute_rank_high"] = "no error"
    except ValueError as ex:
        report["attribute_rank_high"] = str(ex)


def _case_when(rank, report):
    model = _train_net(rank, "compute_when")
    report["params"] = {k: v.detach().clone() for k, v in model.state_dict().items()}


def _case_unused(rank, report, find_unused):
    gin.clear_config()
    gin.bind_parameter("make_ddp_performer.find_unused_parameters", find_unused)
    model = Branchy(seed=200 + rank)
    model._ddp_activated_rank = PerProcessContext().ddp_rank
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    try:
        for step in range(STEPS):
            x, y = batch(step)
            out = model.compute(shard(x, rank), branchy_use_b(step))
            loss = ((out - shard(y, rank)) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    except RuntimeError as ex:
        report["error"] = f"step {step}: {ex}"
    report["params"] = {k: v.detach().clone() for k, v in model.state_dict().items()}


CASES = {
    "average": _case_average,
    "when": _case_when,
    "unused": lambda rank, report: _case_unused(rank, report, True),
    "unused_off": lambda rank, report: _case_unused(rank, report, False),
}


def ddp_worker(case, rank, port, out_dir):
    """Join a 2-process gloo group on 127.0.0.1:``port`` as ``rank``, run
    ``CASES[case]`` and save its report to ``out_dir/rank<rank>.pt`` (or the
    traceback to ``out_dir/rank<rank>.err``)."""
    torch.set_num_threads(1)
    try:
        dist.init_process_group(
            "gloo",
            init_method=f"tcp://127.0.0.1:{port}",
            rank=rank,
            world_size=WORLD_SIZE,
            timeout=datetime.timedelta(seconds=60),
        )
        ctx = PerProcessContext()
        ctx.set_distributed(rank, WORLD_SIZE)
        ctx.finalize()
        report = {}
        CASES[case](rank, report)
        torch.save(report, os.path.join(out_dir, f"rank{rank}.pt"))
        dist.destroy_process_group()
    except BaseException:  # noqa: B036 - reported to the parent
        with open(os.path.join(out_dir, f"rank{rank}.err"), "w") as f:
            f.write(traceback.format_exc())
        raise
