"""A model built through ``load_zoo_config(...).make_model`` trains at the same speed as the same SB3 class built by hand.

Both train PPO on CartPole-v1 with the hyperparameters of ``zoo_configs/ppo.yml``, read once through
``sb3_ext.load_zoo_config`` as a user would: ours builds env and model with the config's ``make_env`` and
``make_model``, the other calls SB3's ``make_vec_env`` and ``PPO(**cfg.model_kwargs)`` itself. What is held equal: the
hyperparameters (one config), the number of envs, the seeds (0), the steps, one torch thread; the two run interleaved,
several rounds, and the ratio of median throughputs (ours / by hand) should be within noise of 1.0.

    python benchmarks/bench_zoo_config.py [--steps 20000] [--rounds 5] [--no-record]
"""

from __future__ import annotations

import argparse
import statistics

import torch as th
from _common import interleaved, report, timed
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env

from sb3_ext import load_zoo_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    th.set_num_threads(1)

    cfg = load_zoo_config("ppo", "CartPole-v1")  # zoo_configs/ppo.yml
    # make_vec_env builds the same env only while the entry has no wrappers, normalisation or frame stacking.
    assert not (cfg.env_wrappers or cfg.vec_env_wrappers or cfg.normalize or cfg.frame_stack or cfg.env_kwargs), cfg

    def ours() -> None:
        cfg.make_model(cfg.make_env(seed=0), seed=0).learn(args.steps)

    def by_hand() -> None:
        env = make_vec_env(cfg.env_id, n_envs=cfg.n_envs, seed=0)
        PPO(env=env, seed=0, **cfg.model_kwargs).learn(args.steps)

    times = interleaved({"ours": lambda: timed(ours), "by_hand": lambda: timed(by_hand)}, args.rounds)
    ours_sps = args.steps / statistics.median(times["ours"])
    hand_sps = args.steps / statistics.median(times["by_hand"])
    ratio = ours_sps / hand_sps
    report(
        "zoo config vs hand-built PPO (CartPole-v1)",
        {
            "steps": args.steps,
            "rounds": args.rounds,
            "ours_steps_per_s": ours_sps,
            "by_hand_steps_per_s": hand_sps,
            "ratio": ratio,
        },
        f"ours {ours_sps:.0f} steps/s, by hand {hand_sps:.0f} steps/s, ratio {ratio:.3f}",
        record=not args.no_record,
    )


if __name__ == "__main__":
    main()
