"""Tuning benchmarks, each side by side in one run (PPO on CartPole-v1):

1. pruning's saving: total env steps spent and best value found with the ``median`` pruner vs ``none``, same sampler
   seed and trial budget;
2. parallel speed-up: trials per hour with 2 workers vs 1 on this machine (trials of equal cost);
3. against rl-baselines3-zoo's ``--optimize``: the same search run by both command lines (``python -m tuning`` and
   ``python -m rl_zoo3.train -optimize``, each in its own process, one after the other): best value, trial states and
   wall time. Held equal:

   - search space: the zoo's PPO space, read from its sampler in its order, given to ours as ``--search-space``;
   - sampler: ``TPESampler(multivariate=True, n_startup_trials=5, seed=0)`` in both;
   - pruner: ``MedianPruner(n_startup_trials=5, n_warmup_steps=n_evaluations // 3)`` in both;
   - number of trials and steps per trial (``--n-trials``, ``--n-timesteps``);
   - evaluations: 5 per trial, every ``n_timesteps / 5`` steps, of 5 deterministic episodes on one env; the last one
     is the trial's value;
   - base config: the zoo's CartPole-v1 entry, which ``zoo_configs/ppo.yml`` copies;
   - seeds: the sampler's (0); device (CPU) and one torch thread.

   While TPE samples at random (its first 5 trials) both runs draw the same parameters trial for trial
   (``same_params_trials`` counts the trials that did). Not equal, because the zoo's command line cannot set them:
   the training seeds. The zoo seeds every trial's envs with ``--seed`` and leaves the model unseeded, while ours
   seeds each trial from the study seed and its number. So values differ trial for trial, and with them what TPE
   samples after its random trials. Ours also writes its report and plots; the zoo runs with ``--no-optim-plots``.

    python benchmarks/bench_tuning.py [--trials 20] [--n-timesteps 20000] [--parts pruning,parallel,zoo] [--no-record]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna
import yaml
from _common import report

from tuning import Param, StudyOptions, TuningTask, optimize

ALGO, ENV_ID = "ppo", "CartPole-v1"
ZOO_EVAL_EPISODES = 5  # per evaluation, on both sides of the zoo part


def _run(tmp: Path, name: str, task: dict[str, Any], **options: Any) -> tuple[optuna.Study, float]:
    start = time.perf_counter()
    study = optimize(TuningTask(ALGO, ENV_ID, **task), StudyOptions(output_folder=tmp, study_name=name, verbose=0, **options))
    return study, time.perf_counter() - start


def _steps(study: optuna.Study) -> int:
    return sum(int(t.user_attrs.get("env_steps", 0)) for t in study.trials)


def pruning(tmp: Path, trials: int, n_timesteps: int) -> dict[str, Any]:
    task = dict(n_timesteps=n_timesteps, n_evaluations=5, seed=0)
    median, t_median = _run(tmp, "pruning-median", task, n_trials=trials, sampler="tpe", pruner="median")
    none, t_none = _run(tmp, "pruning-none", task, n_trials=trials, sampler="tpe", pruner="none")
    return {
        "median": {"env_steps": _steps(median), "best": median.best_value, "seconds": t_median},
        "none": {"env_steps": _steps(none), "best": none.best_value, "seconds": t_none},
        "steps_ratio_median_over_none": _steps(median) / _steps(none),
    }


def parallel(tmp: Path, trials: int, n_timesteps: int) -> dict[str, Any]:
    # Trials of equal cost (only the learning rate is searched), so the comparison measures the workers, not the luck
    # of which network sizes each run happened to sample.
    space = {"learning_rate": Param("float", 1e-4, 3e-3, log=True), "n_epochs": Param(fixed=10)}
    task = dict(n_timesteps=n_timesteps, n_evaluations=5, seed=0, search_space=space)
    common = dict(n_trials=trials, sampler="random", pruner="none")
    _, t1 = _run(tmp, "parallel-1", task, n_workers=1, **common)
    _, t2 = _run(tmp, "parallel-2", task, n_workers=2, **common)
    return {"trials_per_hour_1": trials * 3600 / t1, "trials_per_hour_2": trials * 3600 / t2, "speedup": t1 / t2}


def zoo_search_space(algo: str) -> dict[str, Param]:
    """
    rl_zoo3's search space of ``algo``: the distributions its sampler suggests, in the order it suggests them (the
    order matters: with the same seed, a sampler draws the same values for the same sequence of distributions).

    :raises ValueError: for a distribution with a step, which a :class:`Param` cannot express
    """
    from optuna.distributions import CategoricalDistribution, IntDistribution
    from rl_zoo3.hyperparams_opt import HYPERPARAMS_SAMPLER

    trial = optuna.create_study().ask()
    HYPERPARAMS_SAMPLER[algo](trial, 1, 1, {"using_her_replay_buffer": False, "her_kwargs": {}})
    space = {}
    for name, dist in trial.distributions.items():
        if isinstance(dist, CategoricalDistribution):
            space[name] = Param("categorical", choices=tuple(dist.choices))
        elif getattr(dist, "step", None) not in (None, 1):
            raise ValueError(f"rl_zoo3's {algo} parameter {name} has a step: {dist}")
        else:
            space[name] = Param("int" if isinstance(dist, IntDistribution) else "float", dist.low, dist.high, log=dist.log)
    return space


def _timed_run(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True)
    return time.perf_counter() - start


def _trial_seconds(study: optuna.Study) -> float:
    """Time spent inside trials (the rest of a run's wall time: start-up, imports, outputs)."""
    return sum((t.datetime_complete - t.datetime_start).total_seconds() for t in study.trials if t.datetime_complete)


def _states(study: optuna.Study) -> dict[str, int]:
    states = [t.state.name.lower() for t in study.trials]
    return {state: states.count(state) for state in sorted(set(states))}


def against_zoo(tmp: Path, trials: int, n_timesteps: int) -> dict[str, Any]:
    space_file = tmp / "zoo_space.yml"
    space = {"extend": False, **{name: param.to_dict() for name, param in zoo_search_space(ALGO).items()}}
    space_file.write_text(yaml.safe_dump(space, sort_keys=False))
    same = [
        *("--algo", ALGO, "--env", ENV_ID, "--n-trials", str(trials), "--n-timesteps", str(n_timesteps)),
        *("--sampler", "tpe", "--pruner", "median", "--n-startup-trials", "5", "--n-evaluations", "5"),
        *("--eval-episodes", str(ZOO_EVAL_EPISODES), "--seed", "0", "--device", "cpu"),
    ]
    ours_command = [
        *(sys.executable, "-m", "tuning", *same, "--search-space", str(space_file), "--no-progress-bar"),
        *("--storage", f"sqlite:///{tmp / 'ours.db'}", "--study-name", "ours", "--output-folder", str(tmp / "ours")),
    ]  # one worker: one torch thread
    zoo_command = [
        *(sys.executable, "-m", "rl_zoo3.train", "-optimize", *same, "--n-eval-envs", "1", "--num-threads", "1"),
        *("--n-jobs", "1", "--vec-env", "dummy", "--no-optim-plots", "--log-folder", str(tmp / "zoo")),
        *("--storage", f"sqlite:///{tmp / 'zoo.db'}", "--study-name", "zoo"),
    ]
    t_ours, t_zoo = _timed_run(ours_command), _timed_run(zoo_command)
    ours = optuna.load_study(study_name="ours", storage=f"sqlite:///{tmp / 'ours.db'}")
    zoo = optuna.load_study(study_name="zoo", storage=f"sqlite:///{tmp / 'zoo.db'}")
    pairs = list(zip(ours.trials, zoo.trials, strict=True))
    same_params = next((i for i, (a, b) in enumerate(pairs) if a.params != b.params), len(pairs))
    return {
        "ours": {"best": ours.best_value, "seconds": t_ours, "trial_seconds": _trial_seconds(ours), "states": _states(ours)},
        "zoo": {"best": zoo.best_value, "seconds": t_zoo, "trial_seconds": _trial_seconds(zoo), "states": _states(zoo)},
        "same_params_trials": same_params,
        "time_ratio_ours_over_zoo": t_ours / t_zoo,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--n-timesteps", type=int, default=20_000)
    parser.add_argument("--parallel-trials", type=int, default=8)
    parser.add_argument("--parts", default="pruning,parallel,zoo")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    parts = args.parts.split(",")
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        if "pruning" in parts:
            r = pruning(tmp, args.trials, args.n_timesteps)
            report(
                f"tuning: median pruner vs none ({ALGO} {ENV_ID}, {args.trials} trials x {args.n_timesteps} steps)",
                r,
                f"env steps median {r['median']['env_steps']} vs none {r['none']['env_steps']} "
                f"(ratio {r['steps_ratio_median_over_none']:.2f}); best {r['median']['best']:.1f} vs {r['none']['best']:.1f}; "
                f"{r['median']['seconds']:.0f}s vs {r['none']['seconds']:.0f}s",
                record=not args.no_record,
            )
        if "parallel" in parts:
            r = parallel(tmp, args.parallel_trials, args.n_timesteps)
            report(
                f"tuning: 2 workers vs 1 ({args.parallel_trials} trials x {args.n_timesteps} steps)",
                r,
                f"{r['trials_per_hour_2']:.0f} vs {r['trials_per_hour_1']:.0f} trials/h, speed-up {r['speedup']:.2f}x",
                record=not args.no_record,
            )
        if "zoo" in parts:
            r = against_zoo(tmp, args.trials, args.n_timesteps)
            states = {side: ", ".join(f"{n} {state}" for state, n in r[side]["states"].items()) for side in ("ours", "zoo")}
            report(
                f"tuning vs rl-baselines3-zoo --optimize, same search ({args.trials} trials x {args.n_timesteps} steps, "
                f"zoo's ppo space, tpe + median, {ZOO_EVAL_EPISODES} eval episodes)",
                r,
                f"best {r['ours']['best']:.1f} vs zoo {r['zoo']['best']:.1f}; wall {r['ours']['seconds']:.0f}s vs "
                f"{r['zoo']['seconds']:.0f}s (ratio {r['time_ratio_ours_over_zoo']:.2f}), inside trials "
                f"{r['ours']['trial_seconds']:.0f}s vs {r['zoo']['trial_seconds']:.0f}s; trials ours {states['ours']}, "
                f"zoo {states['zoo']}; first {r['same_params_trials']} trials sampled the same parameters",
                record=not args.no_record,
            )


if __name__ == "__main__":
    main()
