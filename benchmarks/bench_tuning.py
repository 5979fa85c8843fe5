"""Tuning benchmarks, each side by side in one run (PPO on CartPole-v1):

1. pruning's saving: total env steps spent and best value found with the ``median`` pruner vs ``none``, same sampler
   seed and trial budget;
2. parallel speed-up: trials per hour with 2 workers vs 1 on this machine (trials of equal cost);
3. against rl-baselines3-zoo's ``--optimize`` on the same algo, env, budget, sampler and pruner: best value and wall time.

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
from _common import report

from tuning import Param, StudyOptions, TuningTask, optimize

ALGO, ENV_ID = "ppo", "CartPole-v1"


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


def against_zoo(tmp: Path, trials: int, n_timesteps: int) -> dict[str, Any]:
    task = dict(n_timesteps=n_timesteps, n_evaluations=5, seed=0)
    ours, t_ours = _run(tmp, "zoo-compare", task, n_trials=trials, sampler="tpe", pruner="median")
    storage = tmp / "zoo.db"
    command = [
        *(sys.executable, "-m", "rl_zoo3.train", "--algo", ALGO, "--env", ENV_ID, "-optimize", "--n-trials", str(trials)),
        *("--n-timesteps", str(n_timesteps), "--sampler", "tpe", "--pruner", "median", "--n-evaluations", "5"),
        *("--seed", "0", "--log-folder", str(tmp / "zoo"), "--storage", f"sqlite:///{storage}", "--study-name", "zoo"),
        *("--n-jobs", "1", "--no-optim-plots", "--eval-episodes", "5"),
    ]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True)
    t_zoo = time.perf_counter() - start
    zoo = optuna.load_study(study_name="zoo", storage=f"sqlite:///{storage}")
    return {
        "ours": {"best": ours.best_value, "seconds": t_ours},
        "zoo": {"best": zoo.best_value, "seconds": t_zoo},
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
            report(
                f"tuning vs rl-baselines3-zoo --optimize ({args.trials} trials x {args.n_timesteps} steps, tpe + median)",
                r,
                f"best {r['ours']['best']:.1f} vs zoo {r['zoo']['best']:.1f}; wall {r['ours']['seconds']:.0f}s vs "
                f"{r['zoo']['seconds']:.0f}s (ratio {r['time_ratio_ours_over_zoo']:.2f})",
                record=not args.no_record,
            )


if __name__ == "__main__":
    main()
