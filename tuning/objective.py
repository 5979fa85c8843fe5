"""The objective: the zoo config for (algo, env) is the base, sampled parameters override it, the model trains with
periodic deterministic evaluation, and the trial's value is the mean evaluation return over its seeds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from stable_baselines3.common.callbacks import CallbackList
from stable_baselines3.common.vec_env import VecCheckNan

from sb3_ext.config import constructor_defaults, load_zoo_config
from tuning.callbacks import TrialEvalCallback
from tuning.search_spaces import Param, sample_params, to_hyperparams

__all__ = ["OBJECTIVES", "TuningTask", "evaluate_trial", "trial_seed"]

#: How a trial's evaluations become its value: the last evaluation, or the best one.
OBJECTIVES = ("last", "best")


@dataclass(frozen=True)
class TuningTask:
    """
    Everything a worker needs to run trials (picklable, so worker processes get a copy).

    :param algo: registry key
    :param env_id: gymnasium id
    :param config: zoo-format YAML (None: ``zoo_configs/<algo>.yml``)
    :param search_space: parameter name -> definition
    :param hyperparams: fixed overrides applied to every trial
    :param n_timesteps: training budget per seed (None: the config's)
    :param n_evaluations: evaluations during training (each one reported for pruning)
    :param eval_episodes: episodes per evaluation
    :param n_seeds: seeds per trial; the value is the mean over seeds
    :param objective: ``"last"`` or ``"best"`` evaluation of each seed
    :param seed: study seed: trial seeds derive from it and the trial number
    :param device: torch device
    """

    algo: str
    env_id: str
    config: str | None
    search_space: Mapping[str, Param]
    hyperparams: Mapping[str, Any] = field(default_factory=dict)
    n_timesteps: int | None = None
    n_evaluations: int = 5
    eval_episodes: int = 5
    n_seeds: int = 1
    objective: str = "last"
    seed: int = 0
    device: str = "cpu"


def trial_seed(study_seed: int, trial_number: int, index: int) -> int:
    """
    The seed of one run of a trial: a function of the study seed, the trial number and the seed index only, so any trial
    can be re-run exactly.

    :param study_seed: the study's seed
    :param trial_number: the trial's number (for a retried trial, the number of the trial it retries)
    :param index: which of the trial's seeds
    :return: a seed in [0, 2**31)
    """
    return int(np.random.SeedSequence([study_seed, trial_number, index]).generate_state(1)[0] % 2**31)


def evaluate_trial(task: TuningTask, trial: optuna.Trial | optuna.trial.FixedTrial, seed_number: int) -> float:
    """
    Sample the trial's parameters, train one model per seed and return the mean of their evaluations.

    Only the first seed reports to the pruner (so every trial's intermediate values mean the same); the per-seed
    values and all evaluations are stored as user attributes.

    :param task: what to tune
    :param trial: the trial (a ``FixedTrial`` re-runs stored parameters)
    :param seed_number: the trial number seeds derive from
    :return: the objective value
    :raises optuna.TrialPruned: when the pruner stops the trial
    :raises FloatingPointError: when an evaluation is NaN or infinite
    """
    params = sample_params(trial, task.search_space)  # type: ignore[arg-type]
    base = load_zoo_config(task.algo, task.env_id, task.config, hyperparams=task.hyperparams, n_timesteps=task.n_timesteps)
    defaults = constructor_defaults(base.spec.cls)
    hyperparams = {**task.hyperparams, **to_hyperparams(params, base.hyperparams, base.spec.on_policy, defaults)}
    trial.set_user_attr("params", params)  # fixed ones included: what a re-run needs
    trial.set_user_attr("hyperparams", hyperparams)
    values: list[float] = []
    curves: list[list[float]] = []
    steps = 0
    for index in range(task.n_seeds):
        seed = trial_seed(task.seed, seed_number, index)
        cfg = load_zoo_config(task.algo, task.env_id, task.config, hyperparams=hyperparams, n_timesteps=task.n_timesteps)
        env = VecCheckNan(cfg.make_env(seed=seed), raise_exception=True)
        eval_env = VecCheckNan(cfg.make_env(n_envs=1, seed=seed + 1, eval_env=True), raise_exception=True)
        try:
            model = cfg.make_model(env, seed=seed, device=task.device)
            eval_freq = max(cfg.n_timesteps // (task.n_evaluations * cfg.n_envs), 1)
            reporter = TrialEvalCallback(eval_env, trial if index == 0 else None, task.eval_episodes, eval_freq)  # type: ignore[arg-type]
            model.learn(cfg.n_timesteps, callback=CallbackList([reporter, *cfg.make_callbacks()]))
        except ValueError as exc:  # NaN in the env (VecCheckNan) or in the network (torch distributions)
            if "nan" in str(exc).lower():
                raise FloatingPointError(f"NaN during training (seed {seed}): {exc}") from exc
            raise
        finally:
            env.close()
            eval_env.close()
        steps += model.num_timesteps
        trial.set_user_attr("env_steps", steps)
        if reporter.is_pruned:
            raise optuna.TrialPruned(f"pruned after evaluation {len(reporter.evaluations)}")
        if not reporter.evaluations:
            raise RuntimeError(f"no evaluation happened in {cfg.n_timesteps} steps")
        curves.append(reporter.evaluations)
        values.append(reporter.evaluations[-1] if task.objective == "last" else max(reporter.evaluations))
    trial.set_user_attr("seed_values", values)
    trial.set_user_attr("evaluations", curves)
    return float(np.mean(values))
