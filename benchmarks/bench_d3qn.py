"""D3QN against SB3's DQN, in the same run: training throughput, sample efficiency on CartPole-v1, final evaluations
on harder envs, and an ablation of D3QN's parts.

Parts (``--parts``, all by default):

- ``throughput``: D3QN (double + dueling + PER) and DQN with identical hyperparameters, the zoo's DQN CartPole-v1
  config, trained alternately for ``--throughput-steps`` steps, ``--throughput-rounds`` times; target ratio >= 0.8.
- ``cartpole``: per seed, DQN with ``zoo_configs/dqn.yml`` and D3QN with the same shared hyperparameters (DQN's) and
  its own switches from ``zoo_configs/d3qn.yml`` (double Q, dueling, PER's alpha and beta, 3-step returns), for
  ``--steps`` steps, a deterministic evaluation of ``--eval-episodes`` episodes every ``--eval-freq`` steps; the area
  under the curve (mean of all evaluations) and the mean of the last 4 evaluations, per seed and as medians. Targets:
  D3QN's median area >= 1.3x DQN's, D3QN's median last-4 mean >= 475.
- ``final``: mean deterministic return (``--eval-episodes`` episodes) after each algorithm's zoo budget on
  ``--final-envs`` (LunarLander-v3 only when Box2D is installed; DQN's LunarLander config comes from rl_zoo3). Finished
  runs are kept in ``benchmarks/.runs/`` and reused by the same command for the same code (:func:`_common.run_jobs`).
- ``ablation``: CartPole-v1 with the zoo's DQN hyperparameters: DQN, then each of double Q, dueling, PER, 3-step
  returns alone, then all four; the same two figures.

    python benchmarks/bench_d3qn.py [--parts throughput cartpole final ablation] [--seeds 0 1 2 3 4] [--workers N]
                                    [--smoke] [--no-record] ...
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from _common import anchor_config, eval_callback, evaluate, evaluations, interleaved, report, run_jobs, timed
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.buffers import NStepReplayBuffer, ReplayBuffer

from sb3_ext.config import ZooConfig, load_zoo_config
from sb3_ext.d3qn import D3QN

ABLATIONS: dict[str, dict[str, Any]] = {
    "DQN": dict(double_q=False, dueling=False, per=False, n_steps=1),
    "+double": dict(double_q=True, dueling=False, per=False, n_steps=1),
    "+dueling": dict(double_q=False, dueling=True, per=False, n_steps=1),
    "+PER": dict(double_q=False, dueling=False, per=True, n_steps=1),
    "+3-step": dict(double_q=False, dueling=False, per=False, n_steps=3),
    "all": dict(double_q=True, dueling=True, per=True, n_steps=3),
}


def ablation_model(cfg: ZooConfig, variant: dict[str, Any], seed: int) -> BaseAlgorithm:
    kwargs = dict(cfg.model_kwargs)
    kwargs["policy_kwargs"] = {**kwargs.get("policy_kwargs", {}), "dueling": variant["dueling"]}
    per = variant["per"]
    kwargs["replay_buffer_class"] = None if per else (NStepReplayBuffer if variant["n_steps"] > 1 else ReplayBuffer)
    return D3QN(env=cfg.make_env(seed=seed), seed=seed, double_q=variant["double_q"], n_steps=variant["n_steps"], **kwargs)


def curve(model: BaseAlgorithm, env_id: str, steps: int, args: argparse.Namespace, seed: int) -> list[float]:
    """:return: the learning curve of ``model``"""
    env = gym.make(env_id)
    env.reset(seed=10_000 + seed)
    callback = eval_callback(env, args.eval_freq // model.n_envs, args.eval_episodes)
    model.learn(steps, callback=callback)
    return [mean for _, mean in evaluations(callback)]


def summarise(curves: dict[int, list[float]]) -> dict[str, Any]:
    area = {seed: float(np.mean(c)) for seed, c in curves.items()}
    last4 = {seed: float(np.mean(c[-4:])) for seed, c in curves.items()}
    return {
        "curves": curves,
        "area": area,
        "last4": last4,
        "median_area": statistics.median(area.values()),
        "median_last4": statistics.median(last4.values()),
    }


def part_throughput(args: argparse.Namespace) -> None:
    cfg = load_zoo_config("dqn", "CartPole-v1")
    builders: dict[str, Callable[[], BaseAlgorithm]] = {
        "d3qn": lambda: D3QN(env=cfg.make_env(seed=0), seed=0, **cfg.model_kwargs),
        "dqn": lambda: cfg.make_model(cfg.make_env(seed=0), seed=0),
    }

    def learning_time(build: Callable[[], BaseAlgorithm]) -> Callable[[], float]:
        def run() -> float:
            model = build()  # not timed: only training is
            return timed(lambda: model.learn(args.throughput_steps))

        return run

    times = interleaved({name: learning_time(build) for name, build in builders.items()}, args.throughput_rounds)
    d3qn_sps = args.throughput_steps / statistics.median(times["d3qn"])
    dqn_sps = args.throughput_steps / statistics.median(times["dqn"])
    ratio = d3qn_sps / dqn_sps
    report(
        "D3QN vs DQN training throughput (CartPole-v1, zoo DQN hyperparameters)",
        {
            "steps": args.throughput_steps,
            "rounds": args.throughput_rounds,
            "d3qn_steps_per_s": d3qn_sps,
            "dqn_steps_per_s": dqn_sps,
            "ratio": ratio,
        },
        f"D3QN {d3qn_sps:.0f} steps/s, DQN {dqn_sps:.0f} steps/s, ratio {ratio:.2f} (target >= 0.8)",
        record=not args.no_record,
    )


def part_cartpole(args: argparse.Namespace) -> None:
    dqn = load_zoo_config("dqn", "CartPole-v1")
    # The shared hyperparameters are DQN's, identical in both; only D3QN's own switches (double Q, dueling, PER with
    # its alpha and beta, 3-step returns: d3qn.yml's) differ
    configs = {"d3qn": load_zoo_config("d3qn", "CartPole-v1", hyperparams=dqn.hyperparams), "dqn": dqn}
    shared = set(configs["d3qn"].model_kwargs) & set(dqn.model_kwargs)
    differing = [key for key in shared if repr(configs["d3qn"].model_kwargs[key]) != repr(dqn.model_kwargs[key])]
    assert not differing, f"shared hyperparameters differ: {differing}"
    curves: dict[str, dict[int, list[float]]] = {name: {} for name in configs}
    for seed in args.seeds:
        for name, cfg in configs.items():
            model = cfg.make_model(cfg.make_env(seed=seed), seed=seed)
            curves[name][seed] = curve(model, "CartPole-v1", args.steps, args, seed)
            print(name, seed, [round(v) for v in curves[name][seed]], flush=True)
    ours, theirs = summarise(curves["d3qn"]), summarise(curves["dqn"])
    ratio = ours["median_area"] / theirs["median_area"]
    per_seed = ", ".join(
        f"s{s}: {ours['area'][s]:.0f}/{ours['last4'][s]:.0f} vs {theirs['area'][s]:.0f}/{theirs['last4'][s]:.0f}"
        for s in args.seeds
    )
    report(
        f"D3QN vs DQN sample efficiency (CartPole-v1, DQN's zoo hyperparameters for both, D3QN's switches on, "
        f"{args.steps} steps, {len(args.seeds)} seeds)",
        {
            "steps": args.steps,
            "eval_freq": args.eval_freq,
            "eval_episodes": args.eval_episodes,
            "seeds": args.seeds,
            "d3qn": ours,
            "dqn": theirs,
            "area_ratio": ratio,
        },
        f"median area D3QN {ours['median_area']:.0f} vs DQN {theirs['median_area']:.0f} (ratio {ratio:.2f}, target >= 1.3); "
        f"median last-4 mean D3QN {ours['median_last4']:.0f} vs DQN {theirs['median_last4']:.0f} (target >= 475); "
        f"per seed area/last-4: {per_seed}",
        record=not args.no_record,
    )


def final_return(env_id: str, name: str, seed: int, steps: int | None, eval_episodes: int) -> float:
    """Train ``name`` (d3qn or dqn) with its zoo config on ``env_id`` and return its final deterministic evaluation."""
    th.set_num_threads(1)
    cfg = load_zoo_config("d3qn", env_id) if name == "d3qn" else anchor_config("dqn", env_id)
    steps = steps or cfg.n_timesteps
    model = cfg.make_model(cfg.make_env(seed=seed), seed=seed).learn(steps)
    eval_env = gym.make(env_id)
    eval_env.reset(seed=10_000 + seed)
    value = evaluate(model, eval_env, eval_episodes)
    print(env_id, name, seed, steps, value, flush=True)
    return value


def part_final(args: argparse.Namespace) -> None:
    for env_id in args.final_envs:
        try:
            gym.make(env_id).close()
        except Exception as exc:  # Box2D missing for LunarLander
            print(f"skipping {env_id}: {exc}")
            continue
        jobs = [
            dict(env_id=env_id, name=name, seed=seed, steps=args.final_steps, eval_episodes=args.eval_episodes)
            for seed in args.final_seeds
            for name in ("d3qn", "dqn")
        ]
        values = run_jobs(final_return, jobs, args.workers, store=not args.no_record)
        finals: dict[str, dict[int, float]] = {"d3qn": {}, "dqn": {}}
        for job, value in zip(jobs, values, strict=True):
            finals[job["name"]][job["seed"]] = value
        medians = {name: statistics.median(values.values()) for name, values in finals.items()}
        report(
            f"D3QN vs DQN final evaluation ({env_id}, zoo configs and budgets, {len(args.final_seeds)} seeds)",
            {"env": env_id, "seeds": args.final_seeds, "finals": finals, "medians": medians},
            f"median final return D3QN {medians['d3qn']:.1f} vs DQN {medians['dqn']:.1f}; per seed D3QN "
            f"{[round(v, 1) for v in finals['d3qn'].values()]}, DQN {[round(v, 1) for v in finals['dqn'].values()]}",
            record=not args.no_record,
        )


def part_ablation(args: argparse.Namespace) -> None:
    cfg = load_zoo_config("dqn", "CartPole-v1")
    results: dict[str, dict[str, Any]] = {}
    for name, variant in ABLATIONS.items():
        curves = {}
        for seed in args.ablation_seeds:
            curves[seed] = curve(ablation_model(cfg, variant, seed), "CartPole-v1", args.steps, args, seed)
            print(name, seed, [round(v) for v in curves[seed]], flush=True)
        results[name] = summarise(curves)
    table = "; ".join(f"{name} {r['median_area']:.0f}/{r['median_last4']:.0f}" for name, r in results.items())
    report(
        f"D3QN ablation (CartPole-v1, zoo DQN hyperparameters, {args.steps} steps, {len(args.ablation_seeds)} seeds)",
        {"steps": args.steps, "seeds": args.ablation_seeds, "variants": results},
        f"median area / median last-4 mean: {table}",
        record=not args.no_record,
    )


PARTS = {"throughput": part_throughput, "cartpole": part_cartpole, "final": part_final, "ablation": part_ablation}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", choices=list(PARTS), default=list(PARTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--steps", type=int, default=50_000, help="CartPole budget (cartpole and ablation parts)")
    parser.add_argument("--eval-freq", type=int, default=2_500)
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--throughput-steps", type=int, default=20_000)
    parser.add_argument("--throughput-rounds", type=int, default=3)
    parser.add_argument("--final-envs", nargs="+", default=["Acrobot-v1", "LunarLander-v3"])
    parser.add_argument("--final-seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--final-steps", type=int, default=None, help="override the zoo budgets (smoke runs)")
    parser.add_argument("--ablation-seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--workers", type=int, default=1, help="processes for the final part's runs")
    parser.add_argument("--smoke", action="store_true", help="tiny budgets to check the script (implies --no-record)")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.seeds, args.final_seeds, args.ablation_seeds = [0], [0], [0]
        args.steps, args.eval_freq, args.eval_episodes = 2_000, 1_000, 2
        args.throughput_steps, args.throughput_rounds, args.final_steps, args.no_record = 2_000, 1, 1_000, True
    th.set_num_threads(1)
    for part in args.parts:
        PARTS[part](args)


if __name__ == "__main__":
    main()
