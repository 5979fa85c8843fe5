"""Command line: ``python -m sb3_ext train|evaluate`` (also installed as ``sb3-ext``).

Bad input exits with code 2 and one line on stderr, and leaves no run folder behind.
Ctrl-C during training saves the model reached so far and exits with code 130.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import yaml

from sb3_ext.common.cli_utils import OneLineErrorParser, exit_process, key_value, run_command
from sb3_ext.common.utils import atomic_save, atomic_write_text
from sb3_ext.config import ZooConfig, load_zoo_config
from sb3_ext.errors import ConfigError
from sb3_ext.registry import algo_keys, get_algo

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.callbacks import BaseCallback

__all__ = ["main", "run"]

PROG = "sb3-ext"


def _build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog=PROG, description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineErrorParser)

    train = sub.add_parser("train", help="train an algorithm from its zoo config, with periodic evaluation")
    train.add_argument("--algo", required=True, help=f"registry key: {', '.join(algo_keys())}")
    train.add_argument("--env", required=True, help="gymnasium environment id, e.g. CartPole-v1")
    train.add_argument("--config", help="zoo-format YAML (default: zoo_configs/<algo>.yml)")
    train.add_argument("-n", "--n-timesteps", type=int, help="training budget (overrides the config's)")
    train.add_argument("--seed", type=int, help="random seed (default: drawn at random and recorded in run.yml)")
    train.add_argument("--n-envs", type=int, help="number of parallel envs (overrides the config's)")
    train.add_argument("--device", default="auto", help="torch device: auto, cpu, cuda (default: auto)")
    train.add_argument("--num-threads", type=int, default=1, help="torch CPU threads (default: 1, as the zoo)")
    train.add_argument("--log-folder", default="logs", help="runs go to LOG_FOLDER/<algo>/<env>_<n> (default: logs)")
    train.add_argument("--eval-freq", type=int, default=10_000, help="evaluate every this many env steps (0: never)")
    train.add_argument("--eval-episodes", type=int, default=5, help="episodes per evaluation (default: 5)")
    train.add_argument(
        "--hyperparams",
        nargs="+",
        type=key_value,
        default=[],
        metavar="KEY=VALUE",
        help="overrides, e.g. learning_rate=lin_1e-3",
    )
    train.add_argument(
        "--progress-bar",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar (default: on a terminal)",
    )
    train.add_argument("-v", "--verbose", type=int, default=0, help="verbosity of the algorithm (default: 0)")
    train.set_defaults(func=_train)

    evaluate = sub.add_parser("evaluate", help="evaluate a trained model and print its mean +- std return")
    evaluate.add_argument("--model", required=True, help="path to model.zip (its run folder gives algo, env and config)")
    evaluate.add_argument("--episodes", type=int, default=10, help="evaluation episodes (default: 10)")
    evaluate.add_argument("--algo", help="registry key, when the model is not in a run folder")
    evaluate.add_argument("--env", help="environment id, when the model is not in a run folder")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the evaluation env (default: 0)")
    evaluate.add_argument("--stochastic", action="store_true", help="sample actions instead of taking the greedy one")
    evaluate.add_argument("--device", default="auto", help="torch device (default: auto)")
    evaluate.set_defaults(func=_evaluate)
    return parser


def _check_positive(name: str, value: int | None, minimum: int = 1) -> None:
    if value is not None and value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")


def _new_run_dir(log_folder: Path, algo: str, env_id: str) -> Path:
    parent = log_folder / algo
    parent.mkdir(parents=True, exist_ok=True)
    prefix = f"{env_id.replace(':', '-').replace('/', '-')}_"  # one folder for a namespaced id, as rl_zoo3 names it
    taken = [int(p.name[len(prefix) :]) for p in parent.glob(f"{prefix}*") if p.name[len(prefix) :].isdigit()]
    n = max(taken, default=0) + 1
    while True:  # mkdir is atomic: two runs started together get different folders
        try:
            run_dir = parent / f"{prefix}{n}"
            run_dir.mkdir()
            return run_dir
        except FileExistsError:
            n += 1


def _save_outputs(model: Any, cfg: ZooConfig, run_dir: Path) -> None:
    from sb3_ext.plotting import plot_learning_curve

    atomic_save(lambda p: model.save(p), run_dir / "model.zip")  # SB3 keeps a non-empty suffix as it is
    vec_normalize = model.get_vec_normalize_env()
    if vec_normalize is not None:
        atomic_save(vec_normalize.save, run_dir / "vecnormalize.pkl")
    plot_learning_curve(run_dir, title=f"{cfg.algo} on {cfg.env_id}")


def _train(args: argparse.Namespace) -> int:
    import torch as th
    from stable_baselines3.common.callbacks import CallbackList

    _check_positive("--n-timesteps", args.n_timesteps)
    _check_positive("--n-envs", args.n_envs)
    _check_positive("--eval-episodes", args.eval_episodes)
    _check_positive("--eval-freq", args.eval_freq, minimum=0)
    _check_positive("--num-threads", args.num_threads)
    cfg = load_zoo_config(
        args.algo, args.env, args.config, hyperparams=dict(args.hyperparams), n_timesteps=args.n_timesteps, n_envs=args.n_envs
    )
    probe = cfg.make_env(n_envs=1)  # fails on incompatible spaces before anything is written
    try:
        cfg.check_env(probe)
    finally:
        probe.close()
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    th.set_num_threads(args.num_threads)

    run_dir = _new_run_dir(Path(args.log_folder), cfg.algo, cfg.env_id)
    try:
        model, callbacks = _set_up_run(args, cfg, run_dir, seed)
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise

    progress_bar = sys.stderr.isatty() if args.progress_bar is None else args.progress_bar
    print(f"Training {cfg.algo} on {cfg.env_id} for {cfg.n_timesteps} steps (seed {seed}); run folder: {run_dir}")
    start = time.perf_counter()
    try:
        model.learn(cfg.n_timesteps, callback=CallbackList(callbacks), progress_bar=progress_bar)
    except KeyboardInterrupt:
        _save_outputs(model, cfg, run_dir)
        print(f"Interrupted at {model.num_timesteps} steps; model saved to {run_dir / 'model.zip'}", file=sys.stderr)
        return 130
    _save_outputs(model, cfg, run_dir)
    print(
        f"Done in {time.perf_counter() - start:.1f}s: {run_dir / 'model.zip'}, "
        f"learning curve in {run_dir / 'learning_curve.png'}"
    )
    return 0


def _set_up_run(
    args: argparse.Namespace, cfg: ZooConfig, run_dir: Path, seed: int
) -> tuple[BaseAlgorithm, list[BaseCallback]]:
    """Build the env, the model and the callbacks of a run, and write its ``config.yml`` and ``run.yml``."""
    from stable_baselines3.common.callbacks import EvalCallback

    env = cfg.make_env(seed=seed, monitor_dir=str(run_dir))
    model = cfg.make_model(env, seed=seed, device=args.device, verbose=args.verbose)
    callbacks = cfg.make_callbacks()
    if args.eval_freq > 0:
        eval_env = cfg.make_env(n_envs=1, seed=seed + 10_000, eval_env=True)
        callbacks.append(
            EvalCallback(
                eval_env,
                n_eval_episodes=args.eval_episodes,
                eval_freq=max(args.eval_freq // cfg.n_envs, 1),
                log_path=str(run_dir),
                deterministic=True,
                verbose=0,
            )
        )
    cfg.save(run_dir / "config.yml")
    run_info = {
        "algo": cfg.algo,
        "env_id": cfg.env_id,
        "seed": seed,
        "n_timesteps": cfg.n_timesteps,
        "device": args.device,
        "num_threads": args.num_threads,
        "config_source": cfg.source,
        "command": " ".join(sys.orig_argv),
    }
    atomic_write_text(run_dir / "run.yml", yaml.safe_dump(run_info, sort_keys=False))
    return model, callbacks


def _evaluate(args: argparse.Namespace) -> int:
    from stable_baselines3.common.evaluation import evaluate_policy

    _check_positive("--episodes", args.episodes)
    model_path = Path(args.model)
    if not model_path.is_file():
        raise ConfigError(f"--model: no such file '{model_path}' (expected the model.zip of a run folder)")
    run_dir = model_path.parent
    run_info: dict[str, Any] = {}
    if (run_dir / "run.yml").is_file():
        run_info = yaml.safe_load((run_dir / "run.yml").read_text()) or {}
    algo, env_id = args.algo or run_info.get("algo"), args.env or run_info.get("env_id")
    if algo is None or env_id is None:
        raise ConfigError(f"--model: {run_dir} has no run.yml; pass --algo and --env")
    spec = get_algo(algo)
    config = run_dir / "config.yml" if (run_dir / "config.yml").is_file() else None
    cfg = load_zoo_config(algo, env_id, config)
    stats = run_dir / "vecnormalize.pkl"
    env = cfg.make_env(n_envs=1, seed=args.seed, eval_env=True, normalize_stats=stats if stats.is_file() else None)
    cfg.check_env(env)
    model = spec.cls.load(str(model_path), env=env, device=args.device)
    mean, std = evaluate_policy(model, env, n_eval_episodes=args.episodes, deterministic=not args.stochastic)
    print(f"{algo} on {env_id}: mean return {mean:.2f} +- {std:.2f} over {args.episodes} episodes")
    return 0


def run() -> NoReturn:
    """Console-script entry point: :func:`main` on ``sys.argv``, then :func:`exit_process`."""
    exit_process(main())


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run the command line.

    :param argv: arguments (default: ``sys.argv[1:]``)
    :return: the exit code: 0 on success, 2 on bad input, 130 when interrupted
    """
    args = _build_parser().parse_args(argv)
    return run_command(PROG, lambda: args.func(args))
