"""Callbacks that connect SB3 training to Optuna trials."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from stable_baselines3.common.callbacks import EvalCallback

if TYPE_CHECKING:
    import optuna
    from stable_baselines3.common.vec_env import VecEnv

__all__ = ["TrialEvalCallback"]


class TrialEvalCallback(EvalCallback):
    """
    Periodic deterministic evaluation that reports each mean return to an Optuna trial and stops training when the
    pruner says so (as rl-baselines3-zoo's callback of the same name).

    :param eval_env: the evaluation environment
    :param trial: the trial to report to, or None to only evaluate (other seeds of a multi-seed trial)
    :param n_eval_episodes: episodes per evaluation
    :param eval_freq: evaluate every this many calls (env steps of each env)
    :param deterministic: take greedy actions
    """

    def __init__(
        self,
        eval_env: VecEnv,
        trial: optuna.Trial | None,
        n_eval_episodes: int = 5,
        eval_freq: int = 10_000,
        deterministic: bool = True,
    ) -> None:
        super().__init__(
            eval_env, n_eval_episodes=n_eval_episodes, eval_freq=eval_freq, deterministic=deterministic, verbose=0
        )
        self.trial = trial
        self.evaluations: list[float] = []
        self.is_pruned = False

    def _on_step(self) -> bool:
        if self.eval_freq > 0 and self.n_calls % self.eval_freq == 0:
            super()._on_step()
            value = float(self.last_mean_reward)
            self.evaluations.append(value)
            if not np.isfinite(value):
                raise FloatingPointError(f"evaluation {len(self.evaluations)} returned {value}")
            if self.trial is not None:
                self.trial.report(value, step=len(self.evaluations))
                if self.trial.should_prune():
                    self.is_pruned = True
                    return False
        return True
