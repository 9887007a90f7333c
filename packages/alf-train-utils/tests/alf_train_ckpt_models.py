"""Small ALF-like algorithms for the checkpoint tests, and helpers to fill and
read every tensor of their state (parameters, buffers, optimizer states,
replay buffer, data transformer)."""

import os
import random
import signal

import torch
from torch import nn


class DuckReplayBuffer:
    """A replay buffer that is not an ``nn.Module``: ``state_dict`` and
    ``load_state_dict`` only (as alf-buffers' would be seen)."""

    def __init__(self, n=6):
        self.data = torch.zeros(n, 2)
        self.pos = torch.zeros((), dtype=torch.int64)

    def state_dict(self):
        return {"data": self.data.clone(), "pos": self.pos.clone()}

    def load_state_dict(self, state):
        if set(state) != {"data", "pos"}:
            raise KeyError(f"replay buffer state keys {sorted(state)}")
        self.data.copy_(state["data"])
        self.pos.copy_(state["pos"])


class SubAlg(nn.Module):
    """A sub-algorithm with its own optimizer list (ALF's ``_optimizers``)."""

    def __init__(self, width=4):
        super().__init__()
        self.layer = nn.Linear(width, width)
        self._optimizers = [torch.optim.SGD(self.layer.parameters(), lr=0.1, momentum=0.9)]


class Alg(nn.Module):
    """An ALF-like algorithm: a network, a sub-algorithm, a data transformer
    (a module with buffers), a duck-typed replay buffer, and an optimizer."""

    def __init__(self, width=4, hidden=8):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(width, hidden), nn.BatchNorm1d(hidden))
        self.head = nn.Linear(hidden, width)
        self.sub = SubAlg(width)
        self._data_transformer = nn.BatchNorm1d(width)
        self._replay_buffer = DuckReplayBuffer()
        params = list(self.net.parameters()) + list(self.head.parameters())
        self._optimizers = [torch.optim.Adam(params, lr=1e-3)]

    def train_step(self, seed=0):
        """One optimizer step of every optimizer, so that they hold state."""
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(5, self.head.out_features, generator=g)
        loss = self.head(self.net(self._data_transformer(x))).pow(2).mean()
        loss = loss + self.sub.layer(x).pow(2).mean()
        for opt in self._optimizers + self.sub._optimizers:
            opt.zero_grad()
        loss.backward()
        for opt in self._optimizers + self.sub._optimizers:
            opt.step()


def tensors(alg):
    """``name -> tensor`` for every tensor of ``alg``'s checkpointed state."""
    out = {}
    for k, v in alg.state_dict().items():
        out["module." + k] = v
    for i, opt in enumerate(alg._optimizers + alg.sub._optimizers):
        for pid, st in opt.state.items():
            j = [p is pid for g in opt.param_groups for p in g["params"]].index(True)
            for name, v in st.items():
                if isinstance(v, torch.Tensor):
                    out[f"opt{i}.{j}.{name}"] = v
    out["rb.data"] = alg._replay_buffer.data
    out["rb.pos"] = alg._replay_buffer.pos
    return out


def fill(alg, value):
    """Set every tensor of ``alg``'s state to ``value``."""
    with torch.no_grad():
        for t in tensors(alg).values():
            t.fill_(value)


def snapshot(alg):
    """Clones of every tensor of ``alg``'s state (see :func:`tensors`)."""
    return {k: v.detach().clone() for k, v in tensors(alg).items()}


def assert_same(a, b):
    """Two snapshots are equal, key by key."""
    if set(a) != set(b):
        raise AssertionError(f"different tensors: {sorted(set(a) ^ set(b))}")
    for k in a:
        if not torch.equal(a[k], b[k]):
            raise AssertionError(f"{k} differs: {a[k]} vs {b[k]}")


def new_alg(seed=0, hidden=8):
    """A fresh, trained (stateful optimizers) algorithm."""
    torch.manual_seed(seed)
    alg = Alg(hidden=hidden)
    alg.train_step(seed)
    return alg


# ---------------------------------------------------------------- kill test child


def _die_at(n):
    """Replace the file operations a save makes (writes, fsync, rename,
    unlink) by ones that SIGKILL this process at the ``n``-th call."""
    counter = [0]

    def wrap(fn):
        def wrapped(*args, **kwargs):
            counter[0] += 1
            if counter[0] >= n:
                os.kill(os.getpid(), signal.SIGKILL)
            return fn(*args, **kwargs)

        return wrapped

    os.replace = wrap(os.replace)
    os.fsync = wrap(os.fsync)
    os.unlink = wrap(os.unlink)
    torch.save = wrap(torch.save)


def saver(ckpt_dir, started, seed, die_at, hidden, max_to_keep):
    """Child of the kill test: resume from the latest checkpoint, then save
    steps forever; step ``s`` holds the value ``2 * s + generation`` in every
    tensor, and about one step in three is saved twice (generation 0 then 1).

    With ``die_at``, SIGKILL itself at that file operation of its saves.
    """
    from alf.utils.checkpoint_utils import Checkpointer

    torch.set_num_threads(1)  # see save_once()
    alg = new_alg(seed, hidden)
    ck = Checkpointer(ckpt_dir, alg=alg, max_to_keep=max_to_keep)
    step = max(ck.load(), 0)
    rng = random.Random(seed)
    if die_at:
        _die_at(die_at)
    started.set()
    while True:
        step += 1
        fill(alg, 2 * step)
        ck.save(step)
        if rng.random() < 0.35:
            fill(alg, 2 * step + 1)
            ck.save(step)


def save_once(ckpt_dir, step, hidden, max_to_keep):
    """Child that resumes, saves ``step`` cleanly and exits."""
    from alf.utils.checkpoint_utils import Checkpointer

    # as in saver(): the parent may have used OpenMP before forking, and an
    # OpenMP parallel region in the forked child would hang (libgomp is not
    # fork-safe); one thread keeps torch out of OpenMP
    torch.set_num_threads(1)

    alg = new_alg(0, hidden)
    ck = Checkpointer(ckpt_dir, alg=alg, max_to_keep=max_to_keep)
    ck.load()
    fill(alg, 2 * step)
    ck.save(step)
