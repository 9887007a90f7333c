"""The README's torchrun script: under ``torchrun`` itself, and with the
environment variables torchrun sets given to two forked processes by hand
(``init_process_group``'s ``env://`` path)."""

import multiprocessing
import os
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import alf_train_proc_workers as workers  # noqa: E402
import alf_train_torchrun_script as script  # noqa: E402

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "alf_train_torchrun_script.py")
needs_gloo = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()),
    reason="needs torch.distributed with gloo",
)


def check_reports(out_dir, world_size):
    reports = [torch.load(out_dir / f"rank{r}.pt", weights_only=True) for r in range(world_size)]
    assert [r["world_size"] for r in reports] == [world_size] * world_size
    assert sorted(r["local_rank"] for r in reports) == list(range(world_size))
    for k, v in reports[0]["params"].items():
        for other in reports[1:]:
            assert torch.equal(other["params"][k], v), k  # every process holds the same model
    for r in reports:
        assert r["losses"][-1] < 0.5 * r["losses"][0]


def _run_as_torchrun_worker(rank, port, out_dir, steps):
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE="2",
        LOCAL_WORLD_SIZE="2",
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    sys.argv = ["alf_train_torchrun_script.py", "--out", out_dir, "--steps", str(steps)]
    torch.set_num_threads(1)
    script.main()


@needs_gloo
@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_script_with_torchrun_environment(tmp_path):
    ctx = multiprocessing.get_context("fork")
    port = workers.free_port()
    procs = [
        ctx.Process(target=_run_as_torchrun_worker, args=(rank, port, str(tmp_path), 20))
        for rank in range(2)
    ]
    try:
        for p in procs:
            p.start()
        for p in procs:
            p.join(workers.DEADLINE_S)
        assert all(p.exitcode is not None for p in procs), "workers hung"
    finally:
        workers.reap(procs)
    assert [p.exitcode for p in procs] == [0, 0]
    check_reports(tmp_path, 2)


@pytest.mark.slow
@needs_gloo
def test_torchrun_standalone_two_processes(tmp_path):
    """``torchrun --standalone --nproc_per_node=2`` (as ``python -m
    torch.distributed.run``): starts three interpreters, ~10 s on 2 cores."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        SCRIPT,
        "--out",
        str(tmp_path),
        "--steps",
        "20",
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 processes, loss" in done.stdout
    check_reports(tmp_path, 2)
