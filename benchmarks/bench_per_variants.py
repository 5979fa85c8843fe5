"""The prioritized variants against their upstream classes, in the same run: training throughput, and learning with
uniform, proportional, LAP and rank-based replay on the upstream zoo's hyperparameters.

Parts (``--parts``, all by default); every training run is single-threaded, ``--workers`` processes take them in turn
(the same results as one by one), and each finished run is kept in ``benchmarks/.runs/`` (:func:`_common.run_jobs`):
the same command, given again for the same code, runs only the rest, so long parts span several sittings.

- ``throughput``: each variant (proportional) and its upstream class with identical hyperparameters (the upstream zoo's
  entry: Pendulum-v1 for the continuous ones, CartPole-v1 for DQN and QR-DQN), trained alternately for
  ``--throughput-steps`` steps after ``learning_starts``, ``--throughput-rounds`` times; target: each variant >= 0.85x.
- ``pendulum`` (SAC and TD3, 20k steps, 5 seeds), ``lunarlander`` (SAC and TD3 on LunarLanderContinuous-v3, 100k steps,
  3 seeds), ``hopper`` (TD3 on Hopper-v5 with the zoo's Hopper-v4 entry, 100k steps, 3 seeds), ``qrdqn`` (QR-DQN on
  LunarLander-v3, 100k steps, 3 seeds): uniform (the upstream class), proportional, LAP and rank-based replay, the
  upstream zoo's hyperparameters and the same seeds; an evaluation curve (``--eval-episodes`` deterministic episodes
  every ``--eval-freq`` steps) and a final evaluation on fresh seeds. Reported: per-seed finals, medians, and the IQM
  with its 95% stratified-bootstrap confidence interval (``rliable``); one plot of the curves per env
  (``benchmarks/plots/<env>.png``). Targets: for TD3, the better of PER and LAP at or above uniform's median on at least
  two of the three continuous envs; QR-DQN with PER at or above QR-DQN on LunarLander-v3.

    python benchmarks/bench_per_variants.py [--parts throughput pendulum lunarlander hopper qrdqn] [--workers 2]
                                            [--prioritizations uniform proportional lap rank] [--smoke] [--no-record]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from _common import anchor_config, eval_callback, evaluate, evaluations, interleaved, report, run_jobs, timed

from sb3_ext.common.env_util import make_env
from sb3_ext.config import ZooConfig, load_zoo_config

PLOTS = Path(__file__).resolve().parent / "plots"
#: Seeds of the final evaluations: none of them is a training seed or an evaluation seed of the curves
FRESH_EVAL_SEED = 30_000
#: part -> (env id, the upstream zoo's entry it trains with, algorithms, steps, seeds)
LEARNING: dict[str, tuple[str, str, tuple[str, ...], int, tuple[int, ...]]] = {
    "pendulum": ("Pendulum-v1", "Pendulum-v1", ("sac", "td3"), 20_000, (0, 1, 2, 3, 4)),
    "lunarlander": ("LunarLanderContinuous-v3", "LunarLanderContinuous-v3", ("sac", "td3"), 100_000, (0, 1, 2)),
    "hopper": ("Hopper-v5", "Hopper-v4", ("td3",), 100_000, (0, 1, 2)),
    "qrdqn": ("LunarLander-v3", "LunarLander-v3", ("qrdqn",), 100_000, (0, 1, 2)),
}
THROUGHPUT: dict[str, str] = {
    "dqn": "CartPole-v1",
    "qrdqn": "CartPole-v1",
    "sac": "Pendulum-v1",
    "td3": "Pendulum-v1",
    "ddpg": "Pendulum-v1",
    "tqc": "Pendulum-v1",
    "crossq": "Pendulum-v1",
}


def config(algo: str, prioritization: str, env_id: str, entry: str) -> ZooConfig:
    """
    :return: the upstream zoo's entry ``entry`` of ``algo`` for ``env_id``: the upstream class for ``"uniform"``, else
        its prioritized variant (``<algo>_per``) with that prioritization and PER's defaults
    """
    upstream = anchor_config(algo, entry)
    if prioritization == "uniform":
        cfg = upstream
    else:
        hyperparams = {**upstream.hyperparams, "replay_buffer_kwargs": f"dict(prioritization='{prioritization}')"}
        cfg = load_zoo_config(f"{algo}_per", entry, upstream.source, hyperparams=hyperparams)
    return dataclasses.replace(cfg, env_id=env_id)


def learning_run(
    algo: str, prioritization: str, env_id: str, entry: str, seed: int, steps: int, eval_freq: int, eval_episodes: int
) -> dict[str, Any]:
    """Train one run; :return: its evaluation curve and its final evaluation on fresh seeds."""
    th.set_num_threads(1)
    cfg = config(algo, prioritization, env_id, entry)
    model = cfg.make_model(cfg.make_env(seed=seed), seed=seed)
    eval_env = make_env(env_id)
    eval_env.reset(seed=10_000 + seed)
    callback = eval_callback(eval_env, max(eval_freq // model.n_envs, 1), eval_episodes)
    model.learn(steps, callback=callback)
    final_env = make_env(env_id)
    final_env.reset(seed=FRESH_EVAL_SEED + seed)
    final = evaluate(model, final_env, eval_episodes)
    print(env_id, algo, prioritization, seed, final, flush=True)
    return {"curve": evaluations(callback), "final": final}


def iqm_with_ci(finals: dict[str, list[float]]) -> dict[str, tuple[float, float, float]]:
    """:return: name -> (IQM, lower, upper) of its finals, a 95% stratified-bootstrap interval (rliable)"""
    from rliable import library as rly
    from rliable import metrics

    scores = {name: np.asarray(values, dtype=float).reshape(-1, 1) for name, values in finals.items()}
    points, intervals = rly.get_interval_estimates(
        scores, lambda x: np.array([metrics.aggregate_iqm(x)]), reps=5000, random_state=np.random.RandomState(0)
    )
    return {name: (float(points[name][0]), float(intervals[name][0, 0]), float(intervals[name][1, 0])) for name in scores}


def plot_curves(env_id: str, runs: dict[tuple[str, str], list[dict[str, Any]]]) -> Path:
    """One panel per algorithm: each prioritization's mean evaluation curve over seeds, with a band of one std."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    algos = sorted({algo for algo, _ in runs})
    fig, axes = plt.subplots(1, len(algos), figsize=(5 * len(algos), 3.5), squeeze=False)
    for ax, algo in zip(axes[0], algos, strict=True):
        for (name, prioritization), seeds in runs.items():
            if name != algo:
                continue
            steps = np.array([t for t, _ in seeds[0]["curve"]])
            values = np.array([[v for _, v in run["curve"]] for run in seeds])
            ax.plot(steps, values.mean(axis=0), label=prioritization)
            ax.fill_between(
                steps, values.mean(axis=0) - values.std(axis=0), values.mean(axis=0) + values.std(axis=0), alpha=0.2
            )
        ax.set(title=f"{algo} on {env_id}", xlabel="env steps", ylabel="mean evaluation return")
        ax.legend()
    PLOTS.mkdir(exist_ok=True)
    path = PLOTS / f"{env_id.replace('/', '-')}.png"
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def part_learning(part: str, args: argparse.Namespace) -> None:
    env_id, entry, algos, steps, seeds = LEARNING[part]
    steps, seeds = (args.steps or steps), (tuple(args.seeds) if args.seeds else seeds)
    prioritizations = args.prioritizations
    keys = [(algo, p) for algo in algos for p in prioritizations]
    jobs = [
        dict(
            algo=algo,
            prioritization=p,
            env_id=env_id,
            entry=entry,
            seed=seed,
            steps=steps,
            eval_freq=args.eval_freq or steps // 10,
            eval_episodes=args.eval_episodes,
        )
        for algo, p in keys
        for seed in seeds
    ]
    results = iter(run_jobs(learning_run, jobs, args.workers, store=not args.no_record))
    runs = {key: [next(results) for _ in seeds] for key in keys}
    finals = {f"{algo}/{p}": [run["final"] for run in runs[(algo, p)]] for algo, p in keys}
    iqm = iqm_with_ci(finals)
    plot = plot_curves(env_id, runs)
    lines = []
    for name, values in finals.items():
        point, low, high = iqm[name]
        lines.append(
            f"{name} median {statistics.median(values):.1f} IQM {point:.1f} [{low:.1f}, {high:.1f}] "
            f"({[round(v, 1) for v in values]})"
        )
    targets = []
    for algo in algos:
        uniform = statistics.median(finals[f"{algo}/uniform"]) if f"{algo}/uniform" in finals else None
        prioritized = [statistics.median(finals[f"{algo}/{p}"]) for p in ("proportional", "lap") if f"{algo}/{p}" in finals]
        if uniform is not None and prioritized:
            targets.append(f"{algo}: best of PER/LAP >= uniform: {'yes' if max(prioritized) >= uniform else 'NO'}")
    report(
        f"Prioritized replay vs uniform ({env_id}, upstream zoo hyperparameters, {steps} steps, {len(seeds)} seeds)",
        {"env": env_id, "finals": finals, "iqm_ci95": iqm, "plot": str(plot.relative_to(PLOTS.parent.parent))},
        f"finals on fresh seeds ({args.eval_episodes} episodes; IQM with 95% bootstrap CI, rliable): {'; '.join(lines)}; "
        + "; ".join(targets),
        record=not args.no_record,
    )


def part_throughput(args: argparse.Namespace) -> None:
    th.set_num_threads(1)
    ratios: dict[str, float] = {}
    fps: dict[str, dict[str, float]] = {}
    for algo, env_id in THROUGHPUT.items():
        if algo not in args.algos:
            continue
        builders = {
            "upstream": config(algo, "uniform", env_id, env_id),
            "variant": config(algo, "proportional", env_id, env_id),
        }

        def run(cfg: ZooConfig) -> Any:
            def once() -> float:
                model = cfg.make_model(cfg.make_env(seed=0), seed=0)
                model.learn(model.learning_starts)  # (collection only: the timed part is learning)
                seconds = timed(lambda: model.learn(args.throughput_steps, reset_num_timesteps=False))
                return args.throughput_steps / seconds

            return once

        measured = interleaved({name: run(cfg) for name, cfg in builders.items()}, args.throughput_rounds)
        fps[algo] = {name: statistics.median(values) for name, values in measured.items()}
        ratios[algo] = fps[algo]["variant"] / fps[algo]["upstream"]
        print(algo, fps[algo], round(ratios[algo], 3), flush=True)
    report(
        "Prioritized variants vs upstream training throughput (upstream zoo hyperparameters, proportional)",
        {"fps": fps, "ratios": ratios},
        "; ".join(
            f"{algo}_per {fps[algo]['variant']:.0f} vs {algo} {fps[algo]['upstream']:.0f} steps/s ({ratio:.2f})"
            for algo, ratio in ratios.items()
        )
        + f"; every variant >= 0.85x: {'yes' if all(r >= 0.85 for r in ratios.values()) else 'NO'}",
        record=not args.no_record,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parts = ["throughput", *LEARNING]
    parser.add_argument("--parts", nargs="+", choices=parts, default=parts)
    parser.add_argument("--algos", nargs="+", default=list(THROUGHPUT), help="throughput part: the upstream keys")
    parser.add_argument("--prioritizations", nargs="+", default=["uniform", "proportional", "lap", "rank"])
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="override each learning part's seeds")
    parser.add_argument("--steps", type=int, default=None, help="override each learning part's budget")
    parser.add_argument("--eval-freq", type=int, default=None, help="steps between evaluations (default: budget / 10)")
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--throughput-steps", type=int, default=3_000)
    parser.add_argument("--throughput-rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1, help="processes for the training runs")
    parser.add_argument("--smoke", action="store_true", help="tiny budgets to check the script (implies --no-record)")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.seeds, args.steps, args.eval_episodes, args.no_record = [0, 1], 600, 2, True
        args.throughput_steps, args.throughput_rounds = 300, 1
    for part in args.parts:
        if part == "throughput":
            part_throughput(args)
        else:
            part_learning(part, args)


if __name__ == "__main__":
    main()
