"""Command line: ``python -m tuning`` (also installed as ``sb3-ext-tune``).

Bad input exits with code 2 and one line on stderr, before any study is created.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from sb3_ext.common.cli_utils import OneLineErrorParser, exit_process, key_value, run_command
from sb3_ext.errors import Sb3ExtError
from sb3_ext.registry import algo_keys

if TYPE_CHECKING:
    from tuning.objective import TuningTask
    from tuning.study import StudyOptions

__all__ = ["main", "run"]

PROG = "python -m tuning"


def _build_parser() -> argparse.ArgumentParser:
    from tuning.study import PRUNERS, SAMPLERS

    p = OneLineErrorParser(prog=PROG, description="Tune the hyperparameters of any registered algorithm with Optuna.")
    p.add_argument("--algo", required=True, help=f"registry key: {', '.join(algo_keys())}")
    p.add_argument("--env", required=True, help="gymnasium environment id")
    p.add_argument("--config", help="zoo-format YAML whose entry is the base (default: zoo_configs/<algo>.yml)")
    p.add_argument("--n-trials", type=int, default=10, help="trials this run adds to the study (default: 10)")
    p.add_argument("--n-timesteps", type=int, help="training budget per trial and seed (default: the config's)")
    p.add_argument("--n-evaluations", type=int, default=5, help="evaluations per training run, reported for pruning")
    p.add_argument("--eval-episodes", type=int, default=5, help="episodes per evaluation (default: 5)")
    p.add_argument("--n-seeds", type=int, default=1, help="seeds per trial; the value is their mean (default: 1)")
    p.add_argument("--objective", choices=["last", "best"], default="last", help="last or best evaluation (default: last)")
    p.add_argument("--sampler", default="tpe", help=f"{', '.join(SAMPLERS)} (default: tpe)")
    p.add_argument("--pruner", default="median", help=f"{', '.join(PRUNERS)} (default: median)")
    p.add_argument("--n-startup-trials", type=int, default=5, help="random trials before the sampler models (default: 5)")
    p.add_argument("--storage", help="SQLAlchemy URL or journal file (default: SQLite in the output folder)")
    p.add_argument("--study-name", help="an existing study is resumed (default: <algo>-<env>)")
    p.add_argument("--n-workers", type=int, default=1, help="worker processes on this machine (default: 1)")
    p.add_argument("--max-total-trials", type=int, help="cap on the trials of the whole study, across workers and runs")
    p.add_argument("--output-folder", default="tuning_runs", help="outputs go to OUTPUT_FOLDER/<study-name>/")
    p.add_argument("--seed", type=int, default=0, help="study seed (default: 0)")
    p.add_argument("--search-space", help="YAML file replacing or narrowing the search space")
    p.add_argument("--hyperparams", nargs="+", type=key_value, default=[], metavar="KEY=VALUE", help="fixed overrides")
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    p.add_argument("--heartbeat-interval", type=int, default=10, help="seconds between heartbeats (RDB storages)")
    p.add_argument("--rerun-trial", type=int, metavar="N", help="re-run trial N of the study and compare its values")
    p.add_argument("--progress-bar", action=argparse.BooleanOptionalAction, default=None, help="default: on a terminal")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run the command line.

    :param argv: arguments (default: ``sys.argv[1:]``)
    :return: exit code: 0 on success, 1 when a re-run does not reproduce, 2 on bad input, 130 when interrupted
    """
    args = _build_parser().parse_args(argv)
    return run_command(
        PROG, lambda: _tune(args), interrupted="interrupted; the running trial is marked FAIL and the study stays usable"
    )


def _tune(args: argparse.Namespace) -> int:
    import optuna

    from tuning.study import optimize

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.rerun_trial is not None:
        return _rerun(args)
    optimize(_task(args), _options(args))
    return 0


def _task(args: argparse.Namespace) -> TuningTask:
    """What the command line tunes."""
    from tuning.objective import TuningTask
    from tuning.search_spaces import load_search_space

    return TuningTask(
        algo=args.algo,
        env_id=args.env,
        config=args.config,
        search_space=load_search_space(args.search_space, args.algo) if args.search_space else {},
        hyperparams=dict(args.hyperparams),
        n_timesteps=args.n_timesteps,
        n_evaluations=args.n_evaluations,
        eval_episodes=args.eval_episodes,
        n_seeds=args.n_seeds,
        objective=args.objective,
        seed=args.seed,
        device=args.device,
    )


def _options(args: argparse.Namespace) -> StudyOptions:
    """How the command line's study runs."""
    from tuning.study import StudyOptions

    return StudyOptions(
        n_trials=args.n_trials,
        sampler=args.sampler,
        pruner=args.pruner,
        n_startup_trials=args.n_startup_trials,
        storage=args.storage,
        study_name=args.study_name,
        n_workers=args.n_workers,
        max_total_trials=args.max_total_trials,
        output_folder=args.output_folder,
        heartbeat_interval=args.heartbeat_interval,
        progress_bar=sys.stderr.isatty() if args.progress_bar is None else args.progress_bar,
    )


def _rerun(args: argparse.Namespace) -> int:
    """``--rerun-trial N``: re-run trial N of the study; exit code 1 when its values differ from the stored ones."""
    from tuning.study import default_storage, rerun_trial

    study_name = args.study_name or f"{args.algo}-{args.env}"
    storage = args.storage or default_storage(args.output_folder, study_name)
    if storage.startswith("sqlite:///") and not Path(storage.removeprefix("sqlite:///")).is_file():
        raise Sb3ExtError(f"no study database at {storage.removeprefix('sqlite:///')}: pass --storage")
    stored, again = rerun_trial(study_name, args.rerun_trial, storage)
    same = stored == again
    print(f"Trial {args.rerun_trial}: stored {stored}, re-run {again}: {'identical' if same else 'DIFFERENT'}")
    return 0 if same else 1


def run() -> NoReturn:
    """Console-script entry point: :func:`main` on ``sys.argv``, then :func:`sb3_ext.common.cli_utils.exit_process`."""
    exit_process(main())
