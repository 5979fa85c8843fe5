"""REINFORCE on CartPole-v1: env steps to solve it, next to SB3's A2C and a tutorial REINFORCE, and throughput vs A2C.

Sample efficiency: env steps until a deterministic evaluation (``--eval-episodes`` episodes, every ``--eval-freq``
steps) reaches a mean return >= 475, median over seeds, for

- REINFORCE with each baseline (``none``, ``mean``, ``value``), from ``zoo_configs/reinforce.yml``;
- SB3's A2C from ``zoo_configs/a2c.yml`` (the zoo's CartPole-v1 entry);
- a tutorial REINFORCE: PyTorch's ``examples/reinforcement_learning/reinforce.py`` (128-unit ReLU policy with dropout,
  Adam 1e-2, gamma 0.99, returns normalised per episode, one update per episode), evaluated the same way.

A run that does not solve the task within ``--budget`` steps counts as ``inf``, and the median is over all seeds.

Throughput: env steps per second while training, REINFORCE (value baseline, the zoo's CartPole-v1 entry with
``n_envs`` changed, and the same with ``4 * n_envs`` episodes per batch) and A2C (the zoo's entry), with the same
network (SB3's default 64-64 actor and critic) and the same ``n_envs``, interleaved over ``--rounds`` rounds, median
of each. REINFORCE's steps include those it discards while envs wait for the others to finish their episodes: the
discarded fraction is reported, and the throughput of the steps it does use.

    python benchmarks/bench_reinforce.py [--seeds 5] [--budget 200000] [--eval-freq 1000] [--throughput-steps 30000]
                                         [--rounds 3] [--n-envs 8] [--methods none,mean,value,a2c,tutorial] [--no-record]

Smoke run: ``--seeds 1 --budget 20000 --throughput-steps 5000 --rounds 1 --no-record``.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from _common import eval_callback, evaluations, interleaved, report, timed
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecEnv, VecNormalize
from torch import nn
from torch.nn import functional as F

from sb3_ext.config import load_zoo_config

ENV_ID = "CartPole-v1"
THRESHOLD = 475.0


def _eval_env(n_episodes: int, seed: int) -> VecEnv:
    return make_vec_env(ENV_ID, n_envs=n_episodes, seed=10_000 + seed)


def steps_to_solve_sb3(make_model: Callable[[int], BaseAlgorithm], seed: int, args: argparse.Namespace) -> float:
    """:return: env steps until solved (``inf`` when not within the budget)"""
    model = make_model(seed)
    eval_env = _eval_env(args.eval_episodes, seed)
    normalize = model.get_vec_normalize_env()
    if normalize is not None:  # wrapped as the training env, statistics synchronised by EvalCallback, raw returns
        eval_env = VecNormalize(eval_env, training=False, norm_obs=normalize.norm_obs, norm_reward=False)
    callback = eval_callback(eval_env, args.eval_freq // model.n_envs, args.eval_episodes, stop_at=THRESHOLD)
    model.learn(args.budget, callback=callback)
    solved = [timestep for timestep, mean in evaluations(callback) if mean >= THRESHOLD]
    return float(solved[0]) if solved else math.inf


def _zoo_model(algo: str, n_envs: int | None = None, **overrides: Any) -> Callable[[int], BaseAlgorithm]:
    """:return: a function of the seed building ``algo`` from its zoo config's CartPole-v1 entry, with overrides"""

    def make(seed: int) -> BaseAlgorithm:
        cfg = load_zoo_config(algo, ENV_ID, n_envs=n_envs)
        return cfg.make_model(cfg.make_env(seed=seed), seed=seed, **overrides)

    return make


class _TutorialPolicy(nn.Module):
    """The policy of PyTorch's examples/reinforcement_learning/reinforce.py."""

    def __init__(self) -> None:
        super().__init__()
        self.affine1 = nn.Linear(4, 128)
        self.dropout = nn.Dropout(p=0.6)
        self.affine2 = nn.Linear(128, 2)

    def forward(self, x: th.Tensor) -> th.Tensor:
        return F.softmax(self.affine2(F.relu(self.dropout(self.affine1(x)))), dim=1)


def steps_to_solve_tutorial(seed: int, args: argparse.Namespace) -> float:
    """
    PyTorch's tutorial REINFORCE (one update per episode, normalised returns), evaluated as the SB3 runs are.

    :return: env steps until solved (``inf`` when not within the budget)
    """
    th.manual_seed(seed)
    env = gym.make(ENV_ID)
    policy = _TutorialPolicy()
    optimizer = th.optim.Adam(policy.parameters(), lr=1e-2)
    eps = np.finfo(np.float32).eps.item()
    eval_env = _eval_env(args.eval_episodes, seed)

    def evaluate() -> float:
        policy.eval()
        obs, episode_returns = eval_env.reset(), []
        current = np.zeros(eval_env.num_envs)
        done_once = np.zeros(eval_env.num_envs, dtype=bool)
        while not done_once.all():
            with th.no_grad():
                actions = policy(th.as_tensor(obs, dtype=th.float32)).argmax(dim=1).numpy()
            obs, rewards, dones, _ = eval_env.step(actions)
            current += rewards * ~done_once
            for i in np.flatnonzero(dones & ~done_once):
                episode_returns.append(current[i])
                done_once[i] = True
        policy.train()
        return float(np.mean(episode_returns))

    steps, next_eval, episode = 0, args.eval_freq, 0
    while steps < args.budget:
        state, _ = env.reset(seed=seed if episode == 0 else None)
        episode += 1
        log_probs, rewards = [], []
        done = False
        while not done:
            probs = policy(th.as_tensor(state, dtype=th.float32).unsqueeze(0))
            distribution = th.distributions.Categorical(probs)
            action = distribution.sample()
            log_probs.append(distribution.log_prob(action))
            state, reward, terminated, truncated, _ = env.step(action.item())
            rewards.append(float(reward))
            done = terminated or truncated
            steps += 1
            if steps >= next_eval:
                next_eval += args.eval_freq
                if evaluate() >= THRESHOLD:
                    return float(steps)
        ret = 0.0
        returns: list[float] = []
        for r in reversed(rewards):
            ret = r + 0.99 * ret
            returns.insert(0, ret)
        returns_t = th.tensor(returns)
        returns_t = (returns_t - returns_t.mean()) / (returns_t.std() + eps)
        loss = th.cat([-log_prob * ret for log_prob, ret in zip(log_probs, returns_t, strict=True)]).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return math.inf


def _fmt(steps: float) -> str:
    return "unsolved" if math.isinf(steps) else f"{steps / 1000:.0f}k"


class _CountDiscarded(BaseCallback):
    """Sum the steps REINFORCE discarded (envs waiting for the others to finish their episodes)."""

    def __init__(self) -> None:
        super().__init__()
        self.discarded = 0

    def _on_rollout_end(self) -> None:
        # (REINFORCE's EpisodeBuffer counts them; A2C's RolloutBuffer discards nothing)
        self.discarded += getattr(self.model.rollout_buffer, "discarded_steps", 0)

    def _on_step(self) -> bool:
        return True


def throughput(args: argparse.Namespace, result: dict[str, Any]) -> dict[str, str]:
    """
    Env steps per second while training, interleaved rounds, median per model; fills ``result``.

    :return: the figures for the summary line
    """
    n = args.n_envs
    models = {
        # The zoo's CartPole-v1 entry with n_envs changed (1 episode per batch: every env runs one, the others wait).
        "reinforce": _zoo_model("reinforce", baseline="value", n_envs=n),
        # The same with 4 episodes per env per batch, so that less time is spent waiting.
        f"reinforce_{4 * n}ep": _zoo_model("reinforce", baseline="value", n_envs=n, n_episodes=4 * n),
        "a2c": _zoo_model("a2c", n_envs=n),
    }

    def measure(make: Callable[[int], BaseAlgorithm]) -> Callable[[], tuple[float, float]]:
        def run() -> tuple[float, float]:
            model, counter = make(0), _CountDiscarded()
            seconds = timed(lambda: model.learn(args.throughput_steps, callback=counter))
            return model.num_timesteps / seconds, counter.discarded / model.num_timesteps

        return run

    figures = interleaved({name: measure(make) for name, make in models.items()}, args.rounds)
    sps = {name: [rate for rate, _ in values] for name, values in figures.items()}
    discarded = {name: [wasted for _, wasted in values] for name, values in figures.items()}
    a2c = statistics.median(sps["a2c"])
    result.update(throughput_n_envs=n, a2c_steps_per_s=a2c)
    summary = {"a2c": f"{a2c:.0f}"}
    for name in models:
        if name == "a2c":
            continue
        rate, wasted = statistics.median(sps[name]), statistics.median(discarded[name])
        result.update(
            {
                f"{name}_steps_per_s": rate,
                f"{name}_ratio_to_a2c": rate / a2c,
                f"{name}_discarded_fraction": wasted,
                f"{name}_used_steps_ratio_to_a2c": rate * (1 - wasted) / a2c,
            }
        )
        summary[name] = (
            f"{rate:.0f} (x{rate / a2c:.2f} of a2c; {wasted:.0%} discarded, used steps x{rate * (1 - wasted) / a2c:.2f})"
        )
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seeds", type=int, default=5, help="seeds per method (sample efficiency)")
    parser.add_argument("--budget", type=int, default=200_000, help="step budget per run (sample efficiency)")
    parser.add_argument("--eval-freq", type=int, default=1_000, help="evaluate every this many env steps")
    parser.add_argument("--eval-episodes", type=int, default=10, help="episodes per evaluation")
    parser.add_argument("--throughput-steps", type=int, default=30_000, help="env steps per throughput run (0: skip)")
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds")
    parser.add_argument("--n-envs", type=int, default=8, help="n_envs of both algorithms in the throughput runs")
    parser.add_argument("--methods", default="none,mean,value,a2c,tutorial", help="comma-separated subset to run")
    parser.add_argument("--no-record", action="store_true", help="print only, do not append to RESULTS.md")
    args = parser.parse_args()
    th.set_num_threads(1)

    methods: dict[str, Callable[[int], float]] = {
        "none": lambda seed: steps_to_solve_sb3(_zoo_model("reinforce", baseline="none"), seed, args),
        "mean": lambda seed: steps_to_solve_sb3(_zoo_model("reinforce", baseline="mean"), seed, args),
        "value": lambda seed: steps_to_solve_sb3(_zoo_model("reinforce", baseline="value"), seed, args),
        "a2c": lambda seed: steps_to_solve_sb3(_zoo_model("a2c"), seed, args),
        "tutorial": lambda seed: steps_to_solve_tutorial(seed, args),
    }
    chosen = [m for m in args.methods.split(",") if m]
    result: dict[str, Any] = {"budget": args.budget, "eval_freq": args.eval_freq, "seeds": args.seeds}
    medians: dict[str, float] = {}
    for name in chosen:
        start = time.perf_counter()
        steps = [methods[name](seed) for seed in range(args.seeds)]
        medians[name] = statistics.median(steps)
        result[f"steps_to_solve_{name}"] = steps
        result[f"median_{name}"] = medians[name]
        print(f"{name}: {[_fmt(s) for s in steps]} ({time.perf_counter() - start:.0f} s)", flush=True)

    summary = [f"median steps to eval >= {THRESHOLD:.0f} ({args.seeds} seeds): "]
    summary.append(", ".join(f"{name} {_fmt(medians[name])}" for name in chosen))
    if "value" in medians and "tutorial" in medians:
        ratio = medians["value"] / medians["tutorial"]
        result["value_over_tutorial"] = ratio
        summary.append(f"; value/tutorial {ratio:.2f}")
    if "value" in medians and "a2c" in medians:
        ratio = medians["value"] / medians["a2c"]
        result["value_over_a2c"] = ratio
        summary.append(f"; value/a2c {ratio:.2f}")

    if args.throughput_steps > 0:
        summary.append(f"; throughput (n_envs={args.n_envs}, steps/s): ")
        summary.append(", ".join(f"{k} {v}" for k, v in throughput(args, result).items()))

    report("REINFORCE vs A2C and tutorial REINFORCE (CartPole-v1)", result, "".join(summary), record=not args.no_record)


if __name__ == "__main__":
    main()
