"""Tabular Q-learning throughput on Taxi-v4, side by side with its anchors, in one run.

1. ``n_envs = 1``: ``QLearning`` training vs random actions through the same SB3 VecEnv stack (DummyVecEnv + Monitor).
   Target: ratio >= 0.5 of a random agent (an action drawn with ``action_space.sample()`` at each step). The rate of
   replaying pre-drawn actions (no agent at all) is reported too.
2. ``n_envs = 8``: ``QLearning`` vs two tutorial-style learners (one Python update per step, no VecEnv): a torch-tensor
   Q-table and a numpy Q-table, at the same step budget and hyperparameters, and the greedy return of each over
   evaluation episodes. Targets: >= 2x the torch learner, >= 1x the numpy learner, greedy returns within 0.2.
   Ours runs on two stacks: ``ours_8_dummy``, SB3's ``make_vec_env`` (DummyVecEnv + a Monitor per env), and
   ``ours_8_light``, ``LightDummyVecEnv(..., monitor=True)`` (the same episode statistics, kept by the VecEnv).

    python benchmarks/bench_qlearning.py [--steps 200000] [--eval-episodes 1000] [--no-record]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from _common import interleaved, report, timed
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import DummyVecEnv

from sb3_ext import QLearning
from sb3_ext.common.vec_env import LightDummyVecEnv

ENV_ID = "Taxi-v4"
HP = dict(learning_rate=0.5, gamma=0.99, exploration_initial_eps=1.0, exploration_final_eps=0.01, exploration_fraction=0.2)


def tutorial_learner(steps: int, seed: int, use_torch: bool) -> tuple[Callable[[int], int], float]:
    """The loop tutorials write: one env, one update per step. Returns the greedy policy and the seconds the loop took
    (making the env and the table is not timed, as it is not for the others)."""
    env = gym.make(ENV_ID)
    rng = np.random.default_rng(seed)
    n_s, n_a = env.observation_space.n, env.action_space.n  # type: ignore[attr-defined]
    eps_schedule = LinearSchedule(HP["exploration_initial_eps"], HP["exploration_final_eps"], HP["exploration_fraction"])
    alpha, gamma = HP["learning_rate"], HP["gamma"]
    state, _ = env.reset(seed=seed)
    # The same loop on a torch tensor or a numpy array, as the two kinds of tutorial write it.
    q: Any = th.zeros((n_s, n_a)) if use_torch else np.zeros((n_s, n_a))
    argmax, vmax = (th.argmax, th.max) if use_torch else (np.argmax, np.max)
    start = time.perf_counter()
    for t in range(steps):
        eps = eps_schedule(1.0 - t / steps)
        action = int(rng.integers(n_a)) if rng.random() < eps else int(argmax(q[state]))
        next_state, reward, terminated, truncated, _ = env.step(action)
        target = reward + (0.0 if terminated else gamma * vmax(q[next_state]))
        q[state, action] += alpha * (target - q[state, action])
        state = next_state if not (terminated or truncated) else env.reset()[0]
    seconds = time.perf_counter() - start
    table = q.numpy() if use_torch else q
    return (lambda s: int(np.argmax(table[s]))), seconds


def greedy_return(policy: Callable[[int], int], episodes: int, seed: int) -> float:
    env = gym.make(ENV_ID)
    total = 0.0
    for episode in range(episodes):
        state, _ = env.reset(seed=seed + episode)
        done = False
        while not done:
            state, reward, terminated, truncated, _ = env.step(policy(state))
            total += float(reward)
            done = terminated or truncated
    return total / episodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--eval-episodes", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3, help="timed repetitions (the median is reported)")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    th.set_num_threads(1)
    steps = args.steps

    # Every run returns the seconds of its stepping (and learning) only: making envs and models is not timed.
    # 1. n_envs = 1, through SB3's DummyVecEnv + Monitor.
    def random_agent() -> float:
        env = make_vec_env(ENV_ID, n_envs=1, seed=0)
        env.action_space.seed(0)
        env.reset()

        def loop() -> None:
            for _ in range(steps):
                env.step(np.array([env.action_space.sample()]))

        return timed(loop)

    def pre_drawn_actions() -> float:
        env = make_vec_env(ENV_ID, n_envs=1, seed=0)
        env.reset()
        actions = np.random.default_rng(0).integers(6, size=(steps, 1))

        def loop() -> None:
            for t in range(steps):
                env.step(actions[t])

        return timed(loop)

    def ours_one_env() -> float:
        model = QLearning("TabularPolicy", make_vec_env(ENV_ID, n_envs=1, seed=0), seed=0, **HP)
        return timed(lambda: model.learn(steps))

    t_random = statistics.median(random_agent() for _ in range(args.rounds))
    t_pre_drawn = statistics.median(pre_drawn_actions() for _ in range(args.rounds))
    t_ours1 = statistics.median(ours_one_env() for _ in range(args.rounds))

    # 2. n_envs = 8 against the tutorial learners.
    models: dict[str, QLearning] = {}
    tables: dict[str, Callable[[int], int]] = {}

    def ours(light: bool) -> Callable[[], float]:
        def run() -> float:
            if light:  # episode statistics kept by the VecEnv instead of a Monitor wrapper per env
                env: DummyVecEnv = LightDummyVecEnv([lambda: gym.make(ENV_ID)] * 8, monitor=True)
            else:
                env = make_vec_env(ENV_ID, n_envs=8, seed=0)
            model = models["light" if light else "dummy"] = QLearning("TabularPolicy", env, seed=0, **HP)
            return timed(lambda: model.learn(steps))

        return run

    def tutorial(use_torch: bool) -> Callable[[], float]:
        def run() -> float:
            tables["torch" if use_torch else "numpy"], seconds = tutorial_learner(steps, 0, use_torch)
            return seconds

        return run

    runs = {
        "ours_8_dummy": ours(False),
        "ours_8_light": ours(True),
        "tutorial_torch": tutorial(True),
        "tutorial_numpy": tutorial(False),
    }
    times = interleaved(runs, args.rounds)
    sps = {name: steps / statistics.median(t) for name, t in times.items()}
    sps["random_agent_1"], sps["pre_drawn_actions_1"], sps["ours_1"] = steps / t_random, steps / t_pre_drawn, steps / t_ours1

    quality = {
        "ours_8_dummy": evaluate_policy(models["dummy"], make_vec_env(ENV_ID, seed=10_000), args.eval_episodes)[0],
        "ours_8_light": evaluate_policy(models["light"], make_vec_env(ENV_ID, seed=10_000), args.eval_episodes)[0],
        "tutorial_torch": greedy_return(tables["torch"], args.eval_episodes, 10_000),
        "tutorial_numpy": greedy_return(tables["numpy"], args.eval_episodes, 10_000),
    }
    ratios = {
        "ours_1 / random_agent_1 (target >= 0.5)": sps["ours_1"] / sps["random_agent_1"],
        "ours_1 / pre_drawn_actions_1": sps["ours_1"] / sps["pre_drawn_actions_1"],
        "ours_8_dummy / tutorial_torch (target >= 2)": sps["ours_8_dummy"] / sps["tutorial_torch"],
        "ours_8_dummy / tutorial_numpy (target >= 1)": sps["ours_8_dummy"] / sps["tutorial_numpy"],
        "ours_8_light / tutorial_torch (target >= 2)": sps["ours_8_light"] / sps["tutorial_torch"],
        "ours_8_light / tutorial_numpy (target >= 1)": sps["ours_8_light"] / sps["tutorial_numpy"],
    }
    summary = (
        "steps/s: "
        + ", ".join(f"{k} {v:.0f}" for k, v in sps.items())
        + "; ratios: "
        + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items())
        + "; greedy return: "
        + ", ".join(f"{k} {v:.2f}" for k, v in quality.items())
    )
    report(
        f"QLearning throughput on {ENV_ID} ({steps} steps)",
        {"steps": steps, "steps_per_s": sps, "ratios": ratios, "greedy_return": quality},
        summary,
        record=not args.no_record,
    )


if __name__ == "__main__":
    main()
