"""Crash consistency of ``Checkpointer.save``: a saving child process is killed
with SIGKILL, 80 times, and the directory is loaded after each kill.

Half of the kills come from the parent after a random (seeded) delay, so they
land anywhere, in the middle of a ``write`` too; the other half are the child
killing itself at a random (seeded) file operation of its saves (a write, an
fsync, a rename or an unlink), so that every step of the commit protocol is
hit. After every kill, ``load()`` must succeed (or find nothing before the
first save) and every tensor must hold the value of one save of the loaded
step (``2 * step`` or ``2 * step + 1`` for a step saved twice): a mix of two
saves would show two values. The latest step never goes backwards.
"""

import multiprocessing as mp
import os
import random
import signal
import sys
import time

import pytest
import torch

from alf.utils.checkpoint_utils import Checkpointer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import alf_train_ckpt_models as models  # noqa: E402

KILLS = 80
HIDDEN = 96  # ~0.1 MB of parameters, ~0.3 MB per save with the Adam state
MAX_TO_KEEP = 3
DEADLINE_S = 240  # watchdog for the whole test (it takes ~20-40 s)


def _plain_read(ckpt_dir, step):
    """ALF's way to read step ``step``: three plain ``torch.load`` calls."""
    base = os.path.join(ckpt_dir, f"ckpt-{step}")
    out = []
    for path in (base, base + "-optimizer", base + "-replay_buffer"):
        out.append(torch.load(path, weights_only=True))
    return out


def _leaf_values(obj, acc):
    if isinstance(obj, torch.Tensor):
        acc.update(obj.double().unique().tolist())
    elif isinstance(obj, dict):
        for v in obj.values():
            _leaf_values(v, acc)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _leaf_values(v, acc)
    return acc


def _kill(proc):
    if proc.is_alive():
        os.kill(proc.pid, signal.SIGKILL)
    proc.join(30)
    if proc.is_alive():
        pytest.fail(f"child {proc.pid} survived SIGKILL for 30 s")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs the fork start method")
def test_sigkill_during_save_never_breaks_load(tmp_path):
    ctx = mp.get_context("fork")
    rng = random.Random(20261205)
    ckpt_dir = str(tmp_path / "ckpt")
    os.makedirs(ckpt_dir)
    start = time.monotonic()
    last_step = -1
    debris_seen = 0  # kills that left temporary files or a journal behind
    for kill in range(KILLS):
        if time.monotonic() - start > DEADLINE_S:
            pytest.fail(f"watchdog: only {kill} kills in {DEADLINE_S} s")
        started = ctx.Event()
        self_kill = kill % 2 == 1
        die_at = rng.randint(1, 60) if self_kill else 0
        proc = ctx.Process(
            target=models.saver,
            args=(ckpt_dir, started, rng.randrange(2**31), die_at, HIDDEN, MAX_TO_KEEP),
            daemon=True,
        )
        proc.start()
        try:
            if not started.wait(60):
                pytest.fail(f"kill {kill}: the child did not start within 60 s")
            if self_kill:
                proc.join(60)
                if proc.is_alive():
                    pytest.fail(f"kill {kill}: the child did not kill itself within 60 s")
            else:
                time.sleep(rng.uniform(0.0, 0.08))
        finally:
            _kill(proc)
        assert proc.exitcode == -signal.SIGKILL, f"kill {kill}: exit code {proc.exitcode}"

        names = os.listdir(ckpt_dir)
        debris_seen += any(n.startswith((".ckpt-tmp-", ".ckpt-journal-")) for n in names)

        # a fresh process state: other values everywhere, then load
        alg = models.new_alg(seed=kill + 1, hidden=HIDDEN)
        models.fill(alg, -1.0)
        step = Checkpointer(ckpt_dir, alg=alg).load()
        values = _leaf_values(models.snapshot(alg), set())
        if step == -1:
            assert last_step == -1, f"kill {kill}: step {last_step} was lost"
            assert values == {-1.0}
            continue
        assert step >= last_step, f"kill {kill}: latest went back from {last_step} to {step}"
        assert len(values) == 1, f"kill {kill}: step {step} mixes values {sorted(values)}"
        (value,) = values
        assert value in (2 * step, 2 * step + 1), f"kill {kill}: step {step} holds {value}"
        last_step = step
        if not any(n == f".ckpt-journal-{step}.json" for n in names):
            # nothing pending: the files ALF reads hold the same save
            plain = _leaf_values(_plain_read(ckpt_dir, step), set())
            assert plain == {value}, f"kill {kill}: ALF's files of step {step}: {plain}"

    # a clean run cleans up: no debris, retention holds
    proc = ctx.Process(
        target=models.save_once, args=(ckpt_dir, last_step + 100, HIDDEN, MAX_TO_KEEP)
    )
    proc.start()
    proc.join(60)
    if proc.is_alive():
        _kill(proc)
        pytest.fail("the final clean save did not finish within 60 s")
    assert proc.exitcode == 0
    names = sorted(os.listdir(ckpt_dir))
    assert not [n for n in names if n.startswith(".")], names
    steps = sorted(int(n[5:]) for n in names if n[5:].isdigit())
    assert len(steps) <= MAX_TO_KEEP and steps[-1] == last_step + 100, names
    for s in steps:
        assert os.path.exists(os.path.join(ckpt_dir, f"ckpt-{s}-optimizer"))
        assert os.path.exists(os.path.join(ckpt_dir, f"ckpt-{s}-replay_buffer"))
    print(f"{KILLS} kills, {debris_seen} left debris, last step {last_step}")
