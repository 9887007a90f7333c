"""Benchmark: ``alf.utils.checkpoint_utils.Checkpointer`` save + load round trip.

An ALF-like algorithm (an MLP of ``--width`` square layers, ~50 MB of float32
parameters at the default width, with an Adam optimizer in its
``_optimizers`` list that holds ~100 MB of state after one step) is saved and
loaded back, as a training loop resuming would do, by

* the baseline: one ``torch.save({"model": m.state_dict(), "optimizer":
  opt.state_dict()}, path)`` then ``torch.load(path, weights_only=True)`` and
  the two ``load_state_dict`` calls (the hand-written checkpoint);
* the baseline followed by an fsync of the file (what durability costs
  without anything else);
* ``Checkpointer.save(step)`` + ``Checkpointer.load()`` with ``durable=True``
  (the default: every file and the directory fsynced, temporary names and
  renames, the structure json) and with ``durable=False`` (renames only).

Each is timed on a tmpfs (``/dev/shm``) and on a disk folder (``--disk-dir``,
by default a temporary folder beside this script), each time writing a new
step to an empty place (old files are deleted outside the timings). The figure
is the median of ``--repeats`` round trips, the contenders taking turns within
each repeat; the ratio is the median over the repeats of the round trip's time
divided by the baseline's of the same repeat and place. Usage::

    python benchmarks/bench_checkpoint.py [--width 2048] [--repeats 7] [--disk-dir DIR]
"""

import argparse
import os
import shutil
import statistics
import tempfile
import time

import torch
from torch import nn

from alf.utils.checkpoint_utils import Checkpointer


class Alg(nn.Module):
    """Three ``width x width`` layers and an Adam optimizer (ALF's ``_optimizers``)."""

    def __init__(self, width):
        super().__init__()
        self.net = nn.Sequential(*[nn.Linear(width, width) for _ in range(3)])
        self._optimizers = [torch.optim.Adam(self.parameters(), lr=1e-4)]

    def step(self):
        loss = self.net(torch.randn(4, self.net[0].in_features)).pow(2).mean()
        self._optimizers[0].zero_grad()
        loss.backward()
        self._optimizers[0].step()


def state_bytes(alg):
    n = sum(t.numel() * t.element_size() for t in alg.state_dict().values())
    for st in alg._optimizers[0].state.values():
        n += sum(t.numel() * t.element_size() for t in st.values() if torch.is_tensor(t))
    return n


def is_tmpfs(path):
    best, fstype = "", ""
    with open("/proc/mounts") as f:
        for line in f:
            _, mnt, fs = line.split()[:3]
            if os.path.abspath(path).startswith(mnt) and len(mnt) > len(best):
                best, fstype = mnt, fs
    return fstype in ("tmpfs", "ramfs")


class Raw:
    """The baseline: one file, ``torch.save`` then ``torch.load``."""

    def __init__(self, folder, alg, fsync):
        self.folder, self.alg, self.fsync, self.n = folder, alg, fsync, 0

    def save(self):
        self.n += 1
        self.path = os.path.join(self.folder, f"raw-{self.n}.pt")
        state = {"model": self.alg.state_dict(), "optimizer": self.alg._optimizers[0].state_dict()}
        torch.save(state, self.path)
        if self.fsync:
            fd = os.open(self.path, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
            fd = os.open(self.folder, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)

    def load(self):
        state = torch.load(self.path, weights_only=True)
        self.alg.load_state_dict(state["model"])
        self.alg._optimizers[0].load_state_dict(state["optimizer"])

    def clean(self):
        os.unlink(self.path)


class Ours:
    def __init__(self, folder, alg, durable):
        self.folder, self.n = folder, 0
        self.ck = Checkpointer(folder, durable=durable, alg=alg)

    def save(self):
        self.n += 1
        self.ck.save(self.n)

    def load(self):
        if self.ck.load() != self.n:
            raise RuntimeError("loaded the wrong step")

    def clean(self):
        for suffix in ("", "-optimizer", "-replay_buffer"):
            os.unlink(os.path.join(self.folder, f"ckpt-{self.n}{suffix}"))


def run_place(place, root, alg, repeats):
    folders = {}
    contenders = []
    for name, make in [
        ("raw torch.save + torch.load", lambda f: Raw(f, alg, fsync=False)),
        ("raw + fsync", lambda f: Raw(f, alg, fsync=True)),
        ("Checkpointer durable=True", lambda f: Ours(f, alg, durable=True)),
        ("Checkpointer durable=False", lambda f: Ours(f, alg, durable=False)),
    ]:
        folder = tempfile.mkdtemp(prefix="bench-ckpt-", dir=root)
        folders[name] = folder
        contenders.append((name, make(folder)))
    times = {name: ([], []) for name, _ in contenders}
    try:
        for r in range(repeats + 1):  # the first round warms up
            for name, c in contenders:
                t0 = time.perf_counter()
                c.save()
                t1 = time.perf_counter()
                c.load()
                t2 = time.perf_counter()
                c.clean()
                if r:
                    times[name][0].append(t1 - t0)
                    times[name][1].append(t2 - t1)
    finally:
        for folder in folders.values():
            shutil.rmtree(folder, ignore_errors=True)
    base_totals = [a + b for a, b in zip(*times[contenders[0][0]])]
    for name, _ in contenders:
        save = statistics.median(times[name][0])
        load = statistics.median(times[name][1])
        totals = [a + b for a, b in zip(*times[name])]
        # the ratio of each repeat (contenders ran back to back), then the median:
        # load from other processes shifts both sides of a ratio alike
        ratio = statistics.median(t / b for t, b in zip(totals, base_totals))
        print(
            f"{place:<7}{name:<30}{save * 1e3:>9.1f}{load * 1e3:>9.1f}"
            f"{statistics.median(totals) * 1e3:>10.1f}{ratio:>9.2f}x"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--tmpfs-dir", default="/dev/shm")
    parser.add_argument("--disk-dir", default=os.path.dirname(os.path.abspath(__file__)))
    args = parser.parse_args()
    torch.manual_seed(0)
    alg = Alg(args.width)
    alg.step()
    n_model = sum(t.numel() * t.element_size() for t in alg.state_dict().values())
    print(
        f"Checkpointer save+load vs torch.save+torch.load: model {n_model / 2**20:.1f} MiB, "
        f"with Adam state {state_bytes(alg) / 2**20:.1f} MiB; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, median of {args.repeats}"
    )
    print(f"{'place':<7}{'contender':<30}{'save ms':>9}{'load ms':>9}{'total ms':>10}{'ratio':>10}")
    places = []
    if os.path.isdir(args.tmpfs_dir) and is_tmpfs(args.tmpfs_dir):
        places.append(("tmpfs", args.tmpfs_dir))
    else:
        print(f"(skipping tmpfs: {args.tmpfs_dir} is not a tmpfs)")
    if is_tmpfs(args.disk_dir):
        print(f"(note: {args.disk_dir} is a tmpfs, not a disk)")
    places.append(("disk", args.disk_dir))
    for place, root in places:
        run_place(place, root, alg, args.repeats)


if __name__ == "__main__":
    main()
