"""SIGKILL of producers and consumers of a shared RingBuffer at random moments.

Each trial shares a new buffer between worker processes (producers and a
consumer, or non-blocking writers that overwrite the oldest items), kills one
of them after a random (seeded) delay, and then, in this process, calls
``stop()``, waits for the survivors to report that their blocking calls were
released, takes ``state_dict()``, saves it with ``torch.save``, loads it into
a new buffer and checks, against the progress the workers kept in shared
memory:

* every item visible in the snapshot is whole (its payload all equal to its
  id) and sits at its position (id = env * ID_STRIDE + position);
* the only items missing are those the killed process was handling: the step
  a killed producer was writing (at most one per environment), or the items a
  killed consumer had removed but not yet counted (at most ``n`` per
  environment); nothing is missing in the environments of the survivors;
* the rebuilt buffer returns exactly the snapshot's items.

Every call made here after the kill runs under a watchdog: one that does not
return within ``DEADLINE_S`` fails the test (a hang), and the workers are
killed, so the suite never hangs. Workers are reused across trials (a killed
one is replaced): the buffer of each trial reaches them through a pipe
(``torch.multiprocessing`` pickling shares its memory). Most trials fork; a
few use spawn, whose workers are started together at the beginning (a
spawned process spends seconds importing torch).
"""

import io
import multiprocessing
import os
import signal
import sys
import threading
import time

import numpy as np
import pytest
import torch

from alf.tensor_specs import TensorSpec
from alf.utils._buffer_sync import robust_lock_available
from alf.utils.data_buffer import RingBuffer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import alf_buffers_workers as workers  # noqa: E402
from alf_buffers_workers import ATTEMPTED, COMMITTED, CONSUMED, HALT, ID_STRIDE  # noqa: E402

pytestmark = [
    pytest.mark.skipif(
        not robust_lock_available(),
        reason="surviving a killed lock holder needs robust process-shared mutexes (Linux)",
    ),
    pytest.mark.filterwarnings("ignore:RingBuffer. a process died:RuntimeWarning"),
]

DEADLINE_S = 60.0  # for any single call or report after a kill
SEED = 20261203
FORK_TRIALS = 48
SPAWN_TRIALS = 3
NUM_ENVS = 4


class Hang(Exception):
    """A call or a report did not come within DEADLINE_S."""


def within_deadline(what, fn, *args):
    """``fn(*args)`` run in a thread; ``Hang`` if it has not returned within
    ``DEADLINE_S`` (the thread is left behind, a daemon)."""
    result = {}

    def target():
        try:
            result["value"] = fn(*args)
        except BaseException as e:  # re-raised in the caller
            result["error"] = e

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(DEADLINE_S)
    if thread.is_alive():
        raise Hang(f"{what} did not return within {DEADLINE_S} s")
    if "error" in result:
        raise result["error"]
    return result["value"]


class Worker:
    """A worker process serving ``workers.kill_worker`` over a pipe."""

    def __init__(self, ctx):
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=workers.kill_worker, args=(child,), daemon=True)
        self.process.start()
        child.close()
        self.ready = False

    def wait_ready(self):
        if not self.ready:
            if not self.conn.poll(DEADLINE_S):
                raise Hang("a worker did not start")
            assert self.conn.recv() == "ready"
            self.ready = True

    def alive(self):
        return self.process.is_alive()

    def kill(self):
        if self.process.is_alive():
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.join(DEADLINE_S)
        self.conn.close()

    def close(self):
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.process.join(5)
        if self.process.is_alive():
            self.kill()


class Pool:
    """Idle workers of one start method, replaced when killed."""

    def __init__(self, ctx, start=0):
        self.ctx = ctx
        self.idle = [Worker(ctx) for _ in range(start)]

    def take(self, count):
        while len(self.idle) < count:
            self.idle.append(Worker(self.ctx))
        taken, self.idle = self.idle[:count], self.idle[count:]
        for w in taken:
            w.wait_ready()
        return taken

    def give_back(self, worker):
        self.idle.append(worker)

    def close(self):
        for w in self.idle:
            w.close()


def trial_plan(rng, kind=None):
    """The processes of one trial and the buffer they share: ``kind`` (drawn
    when None) is "stream" (2 blocking producers, 1 blocking consumer), "big"
    (the same with 8 MiB items), "churn" (2 non-blocking writers overwriting
    full rings) or "hold" (a producer, a process killed while holding the
    lock, and a consumer)."""
    if kind is None:
        kind = rng.choice(["stream", "stream", "stream", "big", "churn"])
    width = 1 << 20 if kind == "big" else 3  # big: 8 MiB items, 16 MiB writes
    max_length = 2 if kind == "big" else int(rng.integers(2, 9))
    if kind == "churn":  # non-blocking writers overwrite full rings
        roles = [("writer", [0, 1], {"width": width}), ("writer", [2, 3], {"width": width})]
    elif kind == "hold":
        roles = [
            ("producer", [0, 1], {"width": width}),
            ("holder", [2, 3], {"width": width}),
            ("consumer", [0, 1, 2, 3], {"n": 1}),
        ]
    else:
        n = int(rng.integers(1, max_length + 1)) if kind == "stream" else 1
        roles = [
            ("producer", [0, 1], {"width": width}),
            ("producer", [2, 3], {"width": width}),
            ("consumer", [0, 1, 2, 3], {"n": n}),
        ]
    return {
        "kind": kind,
        "width": width,
        "max_length": max_length,
        "roles": roles,
        "victim": 1 if kind == "hold" else int(rng.integers(len(roles))),
        "delay": float(rng.uniform(0, 0.05)),
    }


def wait_for(condition, what):
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            raise Hang(f"{what} did not happen within {DEADLINE_S} s")
        time.sleep(0.001)


def run_trial(pool, plan, stats):
    """One kill; returns nothing, raises ``Hang`` or ``AssertionError``."""
    spec = {
        "id": TensorSpec((), torch.int64),
        "payload": TensorSpec((plan["width"],), torch.float64),
    }
    max_length = plan["max_length"]
    rb = RingBuffer(spec, NUM_ENVS, max_length=max_length, allow_multiprocess=True)
    progress = torch.zeros(4, NUM_ENVS, dtype=torch.int64).share_memory_()
    roles = plan["roles"]
    team = pool.take(len(roles))
    victim = team[plan["victim"]]
    try:
        for worker, (role, env_ids, options) in zip(team, roles):
            worker.conn.send((role, rb, env_ids, progress, options))
        for worker in team:  # each has received the buffer
            if not worker.conn.poll(DEADLINE_S):
                raise Hang("a worker did not receive its task")
            assert worker.conn.recv() == "started"
        # kill at a random moment once every environment has seen an item
        wait_for(lambda: bool((progress[COMMITTED] > 0).all()), "the first items")
        if plan["kind"] == "hold":
            wait_for(lambda: bool(progress[HALT, 1]), "the holder taking the lock")
        else:
            time.sleep(plan["delay"])
        victim.kill()
        stats["kills"] += 1
        started = time.monotonic()
        within_deadline("stop()", rb.stop)
        stats["stop_s"] = max(stats["stop_s"], time.monotonic() - started)
        progress[HALT, 0] = 1
        survivors = [w for w in team if w is not victim]
        reports = []
        for worker in survivors:
            if not worker.conn.poll(DEADLINE_S):
                raise Hang(f"a surviving {roles[team.index(worker)][0]} was not released by stop()")
            reports.append(worker.conn.recv())
        for report in reports:
            assert report[0] in ("stopped", "halted"), report
        state = within_deadline("state_dict()", rb.state_dict)
        if plan["kind"] == "hold":  # exactly one process took the lock over
            assert rb._sync.recovered == 1
        stats["takeovers"] += rb._sync.recovered
        blob = io.BytesIO()
        torch.save(state, blob)
        blob.seek(0)
        state = torch.load(blob, weights_only=True)
        rebuilt = RingBuffer(
            spec, NUM_ENVS, max_length=max_length, allow_multiprocess=bool(stats["kills"] % 2)
        )
        within_deadline("load_state_dict()", rebuilt.load_state_dict, state)
        check_snapshot(plan, state, progress, rebuilt, stats)
    except BaseException as error:
        if isinstance(error, Hang):  # where each live worker is, in the test's output
            for w in team:
                if w.alive():
                    os.kill(w.process.pid, signal.SIGUSR1)
            time.sleep(1.0)
        for w in team:
            w.kill()
        raise
    for worker in team:
        if worker is not victim:
            pool.give_back(worker)


def check_snapshot(plan, state, progress, rebuilt, stats):
    max_length = plan["max_length"]
    victim_role, victim_envs, victim_options = plan["roles"][plan["victim"]]
    pos, size = state["_current_pos"], state["_current_size"]
    ids, payload = state["_buffer0_id"], state["_buffer1_payload"]
    for env in range(NUM_ENVS):
        p, s = int(pos[env]), int(size[env])
        assert 0 <= s <= min(p, max_length)
        window = list(range(p - s, p))
        for q in window:
            stored = int(ids[env, q % max_length])
            assert stored == env * ID_STRIDE + q, (env, q, stored)
            assert bool((payload[env, q % max_length] == float(stored)).all()), "torn item"
        # producers: the snapshot holds every step whose enqueue returned,
        # and the step being written only if its write completed
        attempted, committed = int(progress[ATTEMPTED, env]), int(progress[COMMITTED, env])
        assert committed <= p <= attempted, (env, committed, p, attempted)
        lost_write = attempted - p
        # consumers: the snapshot starts where the consumer stopped counting
        lost_read = 0
        if plan["kind"] != "churn":
            consumed = int(progress[CONSUMED, env])
            lost_read = p - s - consumed
            assert lost_read >= 0, (env, p, s, consumed)
        killed_here = env in victim_envs
        if victim_role in ("producer", "writer", "holder") and killed_here:
            assert lost_write <= 1
        else:
            assert lost_write == 0, (env, lost_write)
        if victim_role == "consumer":
            assert lost_read <= victim_options["n"], (env, lost_read)
        else:
            assert lost_read == 0, (env, lost_read)
        stats["lost_written"] += lost_write
        stats["lost_read"] += lost_read
        stats["items_kept"] += s
        # the rebuilt buffer returns exactly the snapshot's items
        env_ids = torch.tensor([env])
        assert int(rebuilt.get_current_position()[env]) == p
        if s:
            out = rebuilt.dequeue(env_ids, n=s)
            expected = env * ID_STRIDE + torch.arange(p - s, p)
            assert torch.equal(out["id"][0], expected)
            assert torch.equal(
                out["payload"][0], expected.double()[:, None].expand(-1, plan["width"])
            )
        assert not rebuilt.has_data(env_ids, 1)


def run_trials(method, trials, seed, start_workers):
    ctx = multiprocessing.get_context(method)
    rng = np.random.default_rng(seed)
    stats = {
        "kills": 0,
        "takeovers": 0,
        "lost_written": 0,
        "lost_read": 0,
        "items_kept": 0,
        "stop_s": 0.0,
    }
    pool = Pool(ctx, start_workers)
    hangs = []
    try:
        for trial in range(trials):
            plan = trial_plan(rng, "hold" if trial == 0 else None)
            try:
                run_trial(pool, plan, stats)
            except Hang as e:
                hangs.append(f"trial {trial} ({plan['kind']}, victim {plan['victim']}): {e}")
                break
    finally:
        pool.close()
    print(
        f"\n{method}: {stats['kills']} kills, {len(hangs)} hangs, {stats['takeovers']} locks "
        f"taken over from a killed holder, items lost: {stats['lost_written']} being written "
        f"by a killed producer, {stats['lost_read']} removed by a killed consumer before "
        f"counting; {stats['items_kept']} items kept; slowest stop(): {stats['stop_s']:.3f} s"
    )
    assert not hangs, hangs
    assert stats["kills"] == trials
    return stats


@pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="no fork start method"
)
def test_sigkill_at_random_moments_fork():
    """48 SIGKILLs of forked producers, consumers, writers and a lock holder
    (16 MiB writes in some trials): no call hangs, and nothing but the items
    in flight in the killed process is lost."""
    run_trials("fork", FORK_TRIALS, SEED, start_workers=0)


def test_sigkill_at_random_moments_spawn():
    """3 SIGKILLs of spawned workers, the first a lock holder (the workers are
    started together: 3 + 2 spares)."""
    run_trials("spawn", SPAWN_TRIALS, SEED + 1, start_workers=5)
