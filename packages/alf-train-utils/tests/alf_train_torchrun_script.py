"""Data-parallel training with ``@data_distributed``, launched by ``torchrun``.

The script of the README's "Data-parallel training" section (run by
``test_torchrun.py``)::

    torchrun --standalone --nproc_per_node=2 alf_train_torchrun_script.py --out DIR

Each process trains on its own data; the gradients are averaged over all
processes, so every process ends with the same parameters (saved to
``DIR/rank<RANK>.pt`` with the first and last loss).
"""

import argparse
import os

import torch
import torch.distributed as dist
from torch import nn

from alf.utils.distributed import data_distributed
from alf.utils.per_process_context import PerProcessContext


class Regressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 32), nn.Tanh(), nn.Linear(32, 1))

    @data_distributed
    def loss(self, x, y):
        return ((self.net(x) - y) ** 2).mean()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=None)
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()

    # torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT;
    # init_process_group's default init_method "env://" reads them.
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend)
    rank, world_size = dist.get_rank(), dist.get_world_size()
    ctx = PerProcessContext()
    ctx.set_distributed(rank, world_size)
    ctx.finalize()
    device = torch.device("cpu")
    if backend == "nccl":  # one GPU per process: the node-local rank picks it
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)

    torch.manual_seed(rank)  # different initial parameters: DDP broadcasts rank 0's
    model = Regressor().to(device)
    model._ddp_activated_rank = rank  # activate @data_distributed for this module
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    data = torch.Generator().manual_seed(1000 + rank)  # each process its own data
    losses = []
    for _ in range(args.steps):
        x = torch.randn(64, 3, generator=data).to(device)
        loss = model.loss(x, x.sum(1, keepdim=True))
        opt.zero_grad()
        loss.backward()  # gradients averaged over all processes here
        opt.step()
        losses.append(loss.item())
    if ctx.is_main_process:
        print(f"{world_size} processes, loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    if args.out:
        params = {k: v.cpu() for k, v in model.state_dict().items()}
        torch.save(
            {
                "params": params,
                "losses": losses,
                "world_size": world_size,
                "local_rank": int(os.environ["LOCAL_RANK"]),
            },
            os.path.join(args.out, f"rank{rank}.pt"),
        )
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
