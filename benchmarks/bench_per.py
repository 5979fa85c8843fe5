"""Cost of prioritized replay: sample + priority update of a batch, next to SB3's uniform ``ReplayBuffer.sample``.

Both buffers are full, at each capacity, of CartPole-shaped transitions; the prioritized one has random priorities.
Each round times ``--calls`` calls of each, alternately; the medians over rounds are compared. Targets (the issue):
prioritized <= 2x uniform at 10^6, and the prioritized cost grows <= 1.5x from 10^4 to 10^6.

    python benchmarks/bench_per.py [--capacities 10000 100000 1000000] [--batch-size 256] [--calls 2000] [--rounds 5]
                                   [--smoke] [--no-record]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import TypeVar

import gymnasium as gym
import numpy as np
import torch as th
from _common import interleaved, report
from stable_baselines3.common.buffers import ReplayBuffer

from sb3_ext.common.buffers import PrioritizedReplayBuffer

BufferT = TypeVar("BufferT", bound=ReplayBuffer)


def filled(cls: type[BufferT], capacity: int, rng: np.random.Generator) -> BufferT:
    """A full buffer of random CartPole-shaped transitions (written straight into the storage: add() would take long)."""
    env = gym.make("CartPole-v1")
    buffer = cls(capacity, env.observation_space, env.action_space, device="cpu")
    buffer.observations[:] = rng.normal(size=buffer.observations.shape)
    buffer.next_observations[:] = rng.normal(size=buffer.next_observations.shape)
    buffer.actions[:] = rng.integers(0, 2, size=buffer.actions.shape)
    buffer.rewards[:] = 1.0
    buffer.dones[:] = rng.random(buffer.dones.shape) < 0.02
    buffer.full = True
    if isinstance(buffer, PrioritizedReplayBuffer):
        for start in range(0, capacity, 65_536):
            positions = np.arange(start, min(start + 65_536, capacity))
            buffer.update_priorities(positions, rng.exponential(size=len(positions)))  # (one env: index = position)
    return buffer


def per_call_seconds(fn: Callable[[], None], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capacities", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--calls", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="tiny run to check the script (implies --no-record)")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.capacities, args.calls, args.rounds, args.no_record = [1_000, 10_000], 50, 2, True
    th.set_num_threads(1)
    rng = np.random.default_rng(0)
    np.random.seed(0)

    results = {}
    for capacity in args.capacities:
        uniform = filled(ReplayBuffer, capacity, rng)
        prioritized = filled(PrioritizedReplayBuffer, capacity, rng)
        td_errors = rng.normal(size=args.batch_size)

        def uniform_sample(buffer: ReplayBuffer = uniform) -> None:
            buffer.sample(args.batch_size)

        def prioritized_sample_and_update(buffer: PrioritizedReplayBuffer = prioritized, td: np.ndarray = td_errors) -> None:
            batch = buffer.sample(args.batch_size)
            buffer.update_priorities(batch.indices, td)

        per_call_seconds(uniform_sample, 100)  # warm-up
        per_call_seconds(prioritized_sample_and_update, 100)
        times = interleaved(
            {
                "uniform": lambda: per_call_seconds(uniform_sample, args.calls),
                "prioritized": lambda: per_call_seconds(prioritized_sample_and_update, args.calls),
            },
            args.rounds,
        )
        uniform_us = statistics.median(times["uniform"]) * 1e6
        prioritized_us = statistics.median(times["prioritized"]) * 1e6
        results[capacity] = {"uniform_us": uniform_us, "prioritized_us": prioritized_us, "ratio": prioritized_us / uniform_us}
        print(f"capacity {capacity}: uniform {uniform_us:.0f} us, prioritized {prioritized_us:.0f} us", flush=True)
        del uniform, prioritized

    smallest, largest = min(results), max(results)
    growth = results[largest]["prioritized_us"] / results[smallest]["prioritized_us"]
    uniform_growth = results[largest]["uniform_us"] / results[smallest]["uniform_us"]
    figures = "; ".join(
        f"{c:.0e}: {r['prioritized_us']:.0f} vs {r['uniform_us']:.0f} us ({r['ratio']:.2f}x)" for c, r in results.items()
    )
    report(
        f"PER sample + update vs uniform sample (batch {args.batch_size})",
        {
            "batch_size": args.batch_size,
            "calls": args.calls,
            "rounds": args.rounds,
            "per_capacity": {str(c): r for c, r in results.items()},
            "prioritized_growth": growth,
            "uniform_growth": uniform_growth,
        },
        f"prioritized vs uniform: {figures}; growth {smallest:.0e} to {largest:.0e}: prioritized {growth:.2f}x, "
        f"uniform {uniform_growth:.2f}x (targets <= 2x at 1e6, growth <= 1.5x)",
        record=not args.no_record,
    )


if __name__ == "__main__":
    main()
