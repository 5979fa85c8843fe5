"""The objective: the zoo config for (algo, env) is the base, sampled parameters override it, the model trains with
periodic deterministic evaluation, and the trial's value is the mean evaluation return over its seeds."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import optuna
from stable_baselines3.common.callbacks import CallbackList
from stable_baselines3.common.vec_env import VecCheckNan

from sb3_ext.config import constructor_defaults, load_zoo_config
from sb3_ext.errors import ConfigError
from sb3_ext.registry import get_algo
from tuning.callbacks import TrialEvalCallback
from tuning.search_spaces import Param, get_search_space, sample_params, to_hyperparams

__all__ = ["OBJECTIVES", "TuningTask", "check_at_least", "evaluate_trial", "trial_seed"]

#: How a trial's evaluations become its value: the last evaluation, or the best one.
OBJECTIVES = ("last", "best")


def check_at_least(name: str, value: int, low: int) -> None:
    """
    :param name: the setting, as the error names it
    :param value: its value
    :param low: the smallest valid value
    :raises ConfigError: ``"<name> must be >= <low>, got <value>"`` when ``value < low``
    """
    if value < low:
        raise ConfigError(f"{name} must be >= {low}, got {value}")


@dataclass(frozen=True)
class TuningTask:
    """
    What is tuned: everything a worker needs to run trials, checked when built.

    :meth:`to_dict` and :meth:`from_dict` are its one serialisation: worker processes receive it that way, and the
    study stores it that way (``study.user_attrs["task"]``, which :func:`tuning.study.rerun_trial` reads back).

    :param algo: registry key
    :param env_id: gymnasium id
    :param config: zoo-format YAML (None: ``zoo_configs/<algo>.yml``)
    :param search_space: parameter name -> definition (empty: the algorithm's default,
        :func:`~tuning.search_spaces.get_search_space`)
    :param hyperparams: fixed overrides applied to every trial
    :param n_timesteps: training budget per seed (None: the config's)
    :param n_evaluations: evaluations during training (each one reported for pruning)
    :param eval_episodes: episodes per evaluation
    :param n_seeds: seeds per trial; the value is the mean over seeds
    :param objective: ``"last"`` or ``"best"`` evaluation of each seed
    :param seed: study seed: the sampler's seed, and trial seeds derive from it and the trial number
    :param device: torch device
    :raises Sb3ExtError: for an unknown algorithm, a value out of range, an unknown objective or a malformed parameter
    """

    algo: str
    env_id: str
    config: str | None = None
    search_space: Mapping[str, Param] = field(default_factory=dict)
    hyperparams: Mapping[str, Any] = field(default_factory=dict)
    n_timesteps: int | None = None
    n_evaluations: int = 5
    eval_episodes: int = 5
    n_seeds: int = 1
    objective: str = "last"
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        get_algo(self.algo)  # first: an unknown algorithm is named as such, not as one without a search space
        check_at_least("n_evaluations", self.n_evaluations, 1)
        check_at_least("eval_episodes", self.eval_episodes, 1)
        check_at_least("n_seeds", self.n_seeds, 1)
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"unknown objective '{self.objective}' (valid: {', '.join(OBJECTIVES)})")
        space = dict(self.search_space) or get_search_space(self.algo)
        for name, param in space.items():
            param.check(name)
        object.__setattr__(self, "search_space", space)
        object.__setattr__(self, "hyperparams", dict(self.hyperparams))
        if self.config is not None:
            object.__setattr__(self, "config", os.fspath(self.config))

    def to_dict(self) -> dict[str, Any]:
        """
        :return: the task as plain data, the search space in the format of a ``--search-space`` file (JSON-ready when
            the hyperparameters are): what :meth:`from_dict` reads
        """
        data = asdict(self)
        data["search_space"] = {name: param.to_dict() for name, param in self.search_space.items()}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TuningTask:
        """
        :param data: what :meth:`to_dict` returned, possibly through JSON
        :return: the task
        :raises Sb3ExtError: as the constructor
        """
        space = {name: Param.from_dict(name, spec) for name, spec in data.get("search_space", {}).items()}
        return cls(**{**data, "search_space": space})


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
