"""Cost of prioritized replay: sample + priority update of a batch, next to SB3's uniform ``ReplayBuffer.sample``.

At each capacity, SB3's ``ReplayBuffer`` and one ``PrioritizedReplayBuffer`` per prioritization (proportional, LAP,
rank-based) are full of the same CartPole-shaped transitions, the prioritized ones with random priorities. Each round
times ``--calls`` calls of each, one after the other, in an order that reverses every round (``interleaved``); the
medians over rounds are compared. A prioritized call is ``sample(batch)`` then ``update_priorities`` of its indices;
rank-based prioritization sorts all transitions every ``rank_sort_interval`` updates (the default: one update per 1000
transitions stored), and ``--calls`` is a multiple of it, so each round holds the same number of sorts: their cost is
in the figure, spread over the updates between two sorts.

Targets (the issue): proportional and LAP <= 1.5x uniform at 10^4 and 10^5, <= 1.3x at 10^6; rank-based <= 2x at
10^6. To tell what a ratio is made of, the same rounds time the parts of a proportional call on their own: the sum
tree's work (drawing the stratified values, the descent for 256 values and the write of 256 new priorities) and the
gather of the sampled transitions into tensors, the work uniform sampling does too.

    python benchmarks/bench_per.py [--capacities 10000 100000 1000000] [--batch-size 256] [--calls 2000] [--rounds 7]
                                   [--smoke] [--no-record]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any, TypeVar

import gymnasium as gym
import numpy as np
import torch as th
from _common import interleaved, report
from stable_baselines3.common.buffers import ReplayBuffer

from sb3_ext.common.buffers import PRIORITIZATIONS, PrioritizedReplayBuffer

BufferT = TypeVar("BufferT", bound=ReplayBuffer)

#: capacity -> the largest ratio to uniform sampling the issue accepts, per prioritization
TARGETS: dict[str, dict[int, float]] = {
    "proportional": {10_000: 1.5, 100_000: 1.5, 1_000_000: 1.3},
    "lap": {10_000: 1.5, 100_000: 1.5, 1_000_000: 1.3},
    "rank": {1_000_000: 2.0},
}


def filled(cls: type[BufferT], capacity: int, seed: int, **kwargs: Any) -> BufferT:
    """A full buffer of random CartPole-shaped transitions (written straight into the storage: add() would take long)."""
    rng = np.random.default_rng(seed)  # (the same transitions in every buffer)
    env = gym.make("CartPole-v1")
    buffer = cls(capacity, env.observation_space, env.action_space, device="cpu", **kwargs)
    buffer.observations[:] = rng.normal(size=buffer.observations.shape)
    buffer.next_observations[:] = rng.normal(size=buffer.next_observations.shape)
    buffer.actions[:] = rng.integers(0, 2, size=buffer.actions.shape)
    buffer.rewards[:] = 1.0
    buffer.dones[:] = rng.random(buffer.dones.shape) < 0.02
    buffer.full = True
    if isinstance(buffer, PrioritizedReplayBuffer):
        buffer._pending_rows = list(range(capacity))  # (what add() records: the rows enter at the largest priority)
        for start in range(0, capacity, 65_536):
            positions = np.arange(start, min(start + 65_536, capacity))
            buffer.update_priorities(positions, rng.exponential(size=len(positions)))  # (one env: index = position)
    return buffer


def per_call_seconds(fn: Callable[[], None], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def measure(capacity: int, batch_size: int, calls: int, rounds: int, seed: int) -> dict[str, Any]:
    """Median microseconds per call of uniform sampling, each prioritization and the parts of a proportional call."""
    uniform = filled(ReplayBuffer, capacity, seed)
    prioritized = {name: filled(PrioritizedReplayBuffer, capacity, seed, prioritization=name) for name in PRIORITIZATIONS}
    td_errors = np.random.default_rng(seed + 1).normal(size=batch_size)
    sort_interval = prioritized["rank"]._prioritizer.sort_interval  # type: ignore[attr-defined]
    if calls % sort_interval:
        raise ValueError(f"--calls must be a multiple of the rank sort interval at {capacity} ({sort_interval})")

    def sample_and_update(buffer: PrioritizedReplayBuffer) -> Callable[[], None]:
        def call() -> None:
            batch = buffer.sample(batch_size)
            buffer.update_priorities(batch.indices, td_errors)

        return call

    proportional = prioritized["proportional"]
    tree = proportional._prioritizer.tree  # type: ignore[attr-defined]
    new_priorities = np.abs(td_errors) ** proportional.alpha

    def tree_work() -> None:  # what the sum tree costs a proportional call: values, descent, write
        values = np.random.random(batch_size)
        values += np.arange(batch_size)
        values *= tree.total() / batch_size
        leaves, _ = tree.find(values)
        tree.update(leaves, new_priorities.copy())

    def gather() -> None:  # random transitions into tensors, as uniform sampling does
        proportional._one_step_samples(np.random.randint(0, capacity, batch_size), None)

    runs: dict[str, Callable[[], None]] = {"uniform": lambda: uniform.sample(batch_size)}
    runs.update({name: sample_and_update(buffer) for name, buffer in prioritized.items()})
    runs.update({"sum tree work": tree_work, "gather": gather})
    for run in runs.values():  # warm-up (a whole sort interval for rank)
        per_call_seconds(run, max(100, sort_interval))
    times = interleaved({name: (lambda run=run: per_call_seconds(run, calls)) for name, run in runs.items()}, rounds)
    medians = {name: statistics.median(values) * 1e6 for name, values in times.items()}
    return {
        "us": medians,
        "ratio": {name: medians[name] / medians["uniform"] for name in PRIORITIZATIONS},
        "rank_sorts_per_round": calls // sort_interval,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capacities", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--calls", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--smoke", action="store_true", help="tiny run to check the script (implies --no-record)")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.capacities, args.calls, args.rounds, args.no_record = [1_000, 10_000], 50, 2, True
    th.set_num_threads(1)
    np.random.seed(0)

    results = {}
    load = os.getloadavg()[0]
    for capacity in args.capacities:
        results[capacity] = measure(capacity, args.batch_size, args.calls, args.rounds, seed=capacity)
        us = results[capacity]["us"]
        print(f"capacity {capacity}: " + ", ".join(f"{name} {value:.0f} us" for name, value in us.items()), flush=True)

    verdicts = [
        f"{name} {capacity:.0e} {results[capacity]['ratio'][name]:.2f}x (<= {target}: "
        f"{'met' if results[capacity]['ratio'][name] <= target else 'missed'})"
        for name, targets in TARGETS.items()
        for capacity, target in targets.items()
        if capacity in results
    ]
    figures = "; ".join(
        f"{c:.0e}: uniform {r['us']['uniform']:.0f} us, "
        + ", ".join(f"{name} {r['us'][name]:.0f} us ({r['ratio'][name]:.2f}x)" for name in PRIORITIZATIONS)
        + f", of a proportional call the sum tree's work {r['us']['sum tree work']:.0f} us and the gather "
        f"{r['us']['gather']:.0f} us"
        for c, r in results.items()
    )
    report(
        f"PER sample + update vs uniform sample (batch {args.batch_size})",
        {
            "batch_size": args.batch_size,
            "calls": args.calls,
            "rounds": args.rounds,
            "per_capacity": {str(c): r for c, r in results.items()},
            "targets": [*verdicts],
            "load_average": [load, os.getloadavg()[0]],
        },
        f"{figures}; targets: {', '.join(verdicts)}; load average {load:.1f} to {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} cores",
        record=not args.no_record,
    )


if __name__ == "__main__":
    main()
