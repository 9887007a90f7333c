"""Train PPO on CartPole-v1 for several seeds, one progress bar per seed.

    python examples/ppo_cartpole/ppo_demo.py                  # seeds 0 1 2, 100k steps each
    python examples/ppo_cartpole/ppo_demo.py --seeds 0 --total-steps 20000 --out runs/try

Each seed trains in its own process (``--jobs`` at a time) and writes
``<out>/seed-<n>/`` (TensorBoard ``train/`` and ``eval/`` events,
``result.json``); ``<out>/results.json`` gathers the seeds. A rerun leaves
finished seeds alone unless ``--restart`` is given.
"""

import argparse
import dataclasses
import json
import multiprocessing
import os
import queue as queue_module
import shutil
import sys
import time
import traceback
from typing import Any, Dict, List, Optional

from ppo_config import PPOConfig
from ppo_train import check_inputs, train
from tqdm import tqdm

__all__ = ["main", "parse_args"]


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """The command line of ``main`` (``argv`` defaults to ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(
        prog="ppo_demo.py", description="Train PPO on a discrete-action gymnasium task."
    )
    parser.add_argument("--env", default=PPOConfig.env_id, help="gymnasium id (%(default)s)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], metavar="SEED")
    parser.add_argument(
        "--total-steps", type=int, default=PPOConfig.total_steps, help="per seed (%(default)s)"
    )
    parser.add_argument("--out", default=os.path.join("runs", "demo"), help="(%(default)s)")
    parser.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="seeds trained at once, one process each (default: min(seeds, CPU cores))",
    )
    parser.add_argument(
        "--num-processes",
        type=int,
        default=1,
        help="data-parallel processes per seed (needs alf.utils.distributed)",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--resume",
        dest="restart",
        action="store_false",
        help="keep finished seeds (default)",
    )
    mode.add_argument(
        "--restart", dest="restart", action="store_true", help="train every seed from scratch"
    )
    parser.set_defaults(restart=False)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def _fail(message: str) -> int:
    print(f"ppo_demo.py: error: {message}", file=sys.stderr)
    return 2


def _run_dir(out: str, seed: int) -> str:
    return os.path.join(out, f"seed-{seed}")


def _read_result(run_dir: str) -> Optional[Dict[str, Any]]:
    try:
        with open(os.path.join(run_dir, "result.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _worker(config: PPOConfig, run_dir: str, messages: Any) -> None:
    """Train one seed in a child process, reporting through ``messages``."""
    try:
        result = train(config, run_dir, lambda info: messages.put(("progress", config.seed, info)))
        messages.put(("done", config.seed, result))
    except BaseException:
        messages.put(("error", config.seed, traceback.format_exc()))


class _Bars:
    """One tqdm bar per seed (or nothing with ``disable``)."""

    def __init__(self, seeds: List[int], total: int, disable: Optional[bool]):
        self._bars = {
            seed: tqdm(
                total=total,
                desc=f"seed {seed}",
                unit="step",
                position=i,
                leave=True,
                dynamic_ncols=True,
                # the rate shown is the worker's own (steps since its start / time)
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} "
                "[{elapsed}<{remaining}{postfix}]",
                disable=disable,
            )
            for i, seed in enumerate(seeds)
        }

    def update(self, seed: int, info: Dict[str, Any]) -> None:
        bar = self._bars[seed]
        recent = info["recent_return"]
        bar.set_postfix_str(
            f"episodes {info['episodes']}, return {recent:.1f}, "
            f"{info['steps_per_sec']:.0f} steps/s",
            refresh=False,
        )
        bar.update(info["steps"] - bar.n)

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()


def _train_seeds(
    configs: List[PPOConfig], out: str, jobs: int, bars: _Bars
) -> Dict[int, Dict[str, Any]]:
    """Train ``configs`` (one per seed), ``jobs`` at a time; returns
    ``{seed: result}`` of the seeds that finished, and prints the traceback
    of each one that failed."""
    results: Dict[int, Dict[str, Any]] = {}
    if jobs == 1:  # in this process: simpler to debug, no process start-up
        for config in configs:
            try:
                results[config.seed] = train(
                    config,
                    _run_dir(out, config.seed),
                    lambda info, s=config.seed: bars.update(s, info),
                )
            except Exception:
                print(f"seed {config.seed} failed:\n{traceback.format_exc()}", file=sys.stderr)
        return results
    # fork: children start at once with torch already imported (the parent
    # has run no torch op, so no thread pool is copied half-way); spawn
    # elsewhere, where it costs an import of torch per seed.
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    messages = context.Queue()
    pending = list(configs)
    running: Dict[int, Any] = {}
    try:
        while pending or running:
            while pending and len(running) < jobs:
                config = pending.pop(0)
                process = context.Process(
                    target=_worker,
                    args=(config, _run_dir(out, config.seed), messages),
                    name=f"ppo-seed-{config.seed}",
                )
                process.start()
                running[config.seed] = process
            try:
                kind, seed, payload = messages.get(timeout=1.0)
            except queue_module.Empty:
                for seed, process in list(running.items()):
                    if process.exitcode not in (None, 0):  # killed before reporting
                        print(f"seed {seed}: process exited with {process.exitcode}")
                        del running[seed]
                continue
            if kind == "progress":
                bars.update(seed, payload)
                continue
            running.pop(seed).join()
            if kind == "done":
                results[seed] = payload
            else:
                print(f"seed {seed} failed:\n{payload}", file=sys.stderr)
    finally:
        for process in running.values():
            process.terminate()
            process.join()
    return results


def main(argv: Optional[List[str]] = None) -> int:
    """Check the arguments, train the seeds, print where the artifacts are.

    Returns:
        0 when every seed trained, 1 when one failed, 2 on bad input.
    """
    args = parse_args(argv)
    if args.num_processes != 1:
        # LEAD: plug alf.utils.distributed here (spawn num_processes ranks per
        # seed with gloo, average gradients, rank 0 writes summaries/checkpoints).
        return _fail(
            f"--num-processes {args.num_processes}: data-parallel training needs "
            f"alf.utils.distributed (alf-train-utils), which is not wired in yet"
        )
    if len(set(args.seeds)) != len(args.seeds) or min(args.seeds) < 0:
        return _fail(f"--seeds must be distinct non-negative ints; got {args.seeds}")
    if args.jobs is not None and args.jobs < 1:
        return _fail(f"--jobs must be >= 1; got {args.jobs}")
    base = PPOConfig(env_id=args.env, total_steps=args.total_steps)
    try:
        check_inputs(base, args.out)
    except ValueError as e:
        return _fail(str(e))

    results: Dict[int, Dict[str, Any]] = {}
    configs = []
    for seed in args.seeds:
        run_dir = _run_dir(args.out, seed)
        config = dataclasses.replace(base, seed=seed)
        finished = _read_result(run_dir)
        if finished is not None and not args.restart:
            print(f"seed {seed}: already finished ({run_dir}/result.json); --restart retrains it")
            results[seed] = finished
            continue
        if os.path.isdir(run_dir):
            # LEAD: plug Checkpointer here: an unfinished run resumes from its
            # latest checkpoint instead of starting over.
            reason = "--restart" if finished is not None else "unfinished run, no checkpoint yet"
            print(f"seed {seed}: {reason}: training it from scratch")
            shutil.rmtree(run_dir)
        configs.append(config)

    jobs = args.jobs or min(len(configs), os.cpu_count() or 1) or 1
    bars = _Bars(
        [c.seed for c in configs],
        base.num_iterations * base.steps_per_iteration,
        disable=True if args.no_progress else None,
    )
    train_start = time.perf_counter()
    try:
        results.update(_train_seeds(configs, args.out, jobs, bars))
    except KeyboardInterrupt:
        bars.close()
        print("interrupted; rerun the same command to train the unfinished seeds")
        return 1
    finally:
        bars.close()
    train_seconds = time.perf_counter() - train_start
    # LEAD: plug alf-plot here: <out>/return.png, mean Metrics_vs_EnvironmentSteps/
    # AverageReturn over the seeds' train/ folders with a 95% band.
    # LEAD: plug VideoRecorder output here: print the MP4 path of each seed.

    failed = [s for s in args.seeds if s not in results]
    summary = {
        "env_id": base.env_id,
        "total_steps": base.total_steps,
        "seeds": [results[s] for s in args.seeds if s in results],
        "failed_seeds": failed,
        "train_seconds": round(train_seconds, 2),
        "jobs": jobs,
    }
    summary_path = os.path.join(args.out, "results.json")
    tmp = summary_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, summary_path)

    print(
        f"\n{'seed':>4}  {'steps to ' + str(int(base.target_return)):>14}  "
        f"{'last-' + str(base.return_window) + ' return':>15}  {'eval return':>11}  {'train s':>7}"
    )
    for seed in args.seeds:
        r = results.get(seed)
        if r is None:
            print(f"{seed:>4}  failed")
            continue
        reached = "not reached" if r["steps_to_target"] is None else f"{r['steps_to_target']:,}"
        print(
            f"{seed:>4}  {reached:>14}  {r['final_recent_return']:>15.1f}  "
            f"{r['eval_mean']:>11.1f}  {r['train_seconds']:>7.1f}"
        )
    print(f"\ntraining and evaluation: {train_seconds:.1f} s wall, {jobs} seed(s) at a time")
    print(f"runs:        {os.path.join(args.out, 'seed-<n>')}/ (train/, eval/, result.json)")
    print(f"summary:     {summary_path}")
    print(f"TensorBoard: tensorboard --logdir {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
