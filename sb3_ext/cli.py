"""Command line: ``python -m sb3_ext train|evaluate|enjoy|plot`` (also installed as ``sb3-ext``).

Bad input exits with code 2 and one line on stderr, and leaves no run folder (nor video folder) behind.
Ctrl-C during training saves the model reached so far and exits with code 130.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, cast

import numpy as np
import yaml

from sb3_ext.common.cli_utils import OneLineErrorParser, exit_process, key_value, run_command
from sb3_ext.common.utils import atomic_save, atomic_write_text
from sb3_ext.config import ZooConfig, is_atari, load_zoo_config
from sb3_ext.errors import ConfigError
from sb3_ext.registry import algo_keys, get_algo

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

__all__ = ["main", "run"]

PROG = "sb3-ext"


def _build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog=PROG, description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineErrorParser)

    train = sub.add_parser("train", help="train an algorithm from its zoo config, with periodic evaluation")
    train.add_argument("--algo", help=f"registry key: {', '.join(algo_keys())}")
    train.add_argument("--env", help="gymnasium environment id, e.g. CartPole-v1")
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
    train.add_argument("--save-freq", type=int, default=0, help="checkpoint every this many env steps (0: never)")
    train.add_argument("--keep-checkpoints", type=int, help="keep only the newest K checkpoints (default: all)")
    train.add_argument(
        "--resume", metavar="RUN_FOLDER", help="continue a run from its newest checkpoint to its budget, in its folder"
    )
    train.add_argument("-i", "--trained-agent", metavar="MODEL_ZIP", help="continue training this model (new run folder)")
    train.add_argument("--vec-env", choices=["dummy", "subproc"], default="dummy", help="VecEnv class (default: dummy)")
    train.add_argument("--tensorboard-log", metavar="DIR", help="TensorBoard log folder (default: none)")
    train.set_defaults(func=_train)

    evaluate = sub.add_parser("evaluate", help="evaluate a trained model and print its mean +- std return")
    _add_model_arguments(evaluate)
    evaluate.add_argument("--episodes", type=int, default=10, help="evaluation episodes (default: 10)")
    evaluate.add_argument("--stochastic", action="store_true", help="sample actions instead of taking the greedy one")
    evaluate.set_defaults(func=_evaluate)

    enjoy = sub.add_parser("enjoy", help="watch a trained model play, or record mp4 videos of it")
    _add_model_arguments(enjoy)
    enjoy.add_argument("--episodes", type=int, help="episodes to play (default: 1 when recording, else 5)")
    enjoy.add_argument("--record-video", metavar="DIR", help="write one mp4 per episode to DIR (created) instead of a window")
    actions = enjoy.add_mutually_exclusive_group()
    actions.add_argument(
        "--stochastic", dest="stochastic", action="store_const", const=True, help="sample actions (default for Atari)"
    )
    actions.add_argument(
        "--deterministic", dest="stochastic", action="store_const", const=False, help="take the greedy action (default)"
    )
    enjoy.set_defaults(func=_enjoy)

    plot = sub.add_parser("plot", help="evaluation curves of run folders: mean +- std over seeds, one panel per env")
    plot.add_argument(
        "run_folders",
        nargs="+",
        metavar="RUN_FOLDER",
        help="run folders of train (logs/<algo>/<env>_<n>), or folders holding them at any depth (logs/)",
    )
    plot.add_argument("--output", required=True, help="the PNG to write; the aggregated curves go beside it as CSV")
    plot.add_argument("--x", choices=["steps", "time"], default="steps", help="env steps or wall time (default: steps)")
    plot.set_defaults(func=_plot)
    return parser


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments that pick a trained model and its evaluation env (what :func:`_resolve_model` reads)."""
    parser.add_argument("--model", required=True, help="path to model.zip (its run folder gives algo, env and config)")
    parser.add_argument("--algo", help="registry key, when the model is not in a run folder")
    parser.add_argument("--env", help="environment id, when the model is not in a run folder")
    parser.add_argument("--seed", type=int, default=0, help="seed of the evaluation env (default: 0)")
    parser.add_argument("--device", default="auto", help="torch device (default: auto)")


def _check_positive(name: str, value: int | None, minimum: int = 1) -> None:
    if value is not None and value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")


def _env_slug(env_id: str) -> str:
    """:return: ``env_id`` as one file name: a namespaced id such as ``MinAtar/Breakout-v1`` as rl_zoo3 names it"""
    return env_id.replace(":", "-").replace("/", "-")


def _new_run_dir(log_folder: Path, algo: str, env_id: str) -> Path:
    parent = log_folder / algo
    parent.mkdir(parents=True, exist_ok=True)
    prefix = f"{_env_slug(env_id)}_"
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

    for name in ("n_timesteps", "n_envs", "eval_episodes", "num_threads", "keep_checkpoints"):
        _check_positive(f"--{name.replace('_', '-')}", getattr(args, name))
    _check_positive("--eval-freq", args.eval_freq, minimum=0)
    _check_positive("--save-freq", args.save_freq, minimum=0)
    th.set_num_threads(args.num_threads)
    if args.resume is not None:
        return _resume(args)
    missing = [f"--{key}" for key in ("algo", "env") if getattr(args, key) is None]
    if missing:
        raise ConfigError(f"the following arguments are required: {', '.join(missing)} (or --resume RUN_FOLDER)")
    cfg = load_zoo_config(
        args.algo, args.env, args.config, hyperparams=dict(args.hyperparams), n_timesteps=args.n_timesteps, n_envs=args.n_envs
    )
    probe = cfg.make_env(n_envs=1)  # fails on incompatible spaces before anything is written
    try:
        cfg.check_env(probe)
    finally:
        probe.close()
    if args.trained_agent is not None and not Path(args.trained_agent).is_file():
        raise ConfigError(f"--trained-agent: no such file '{args.trained_agent}' (expected a model.zip)")
    seed = args.seed if args.seed is not None else random.randrange(2**31)

    run_dir = _new_run_dir(Path(args.log_folder), cfg.algo, cfg.env_id)
    try:
        model, callbacks = _set_up_run(args, cfg, run_dir, seed)
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    print(f"Training {cfg.algo} on {cfg.env_id} for {cfg.n_timesteps} steps (seed {seed}); run folder: {run_dir}")
    return _learn(args, model, cfg, run_dir, callbacks, cfg.n_timesteps, reset_num_timesteps=True)


#: What train records in run.yml to resume a run as it was started
_RESUMED_OPTIONS = ("eval_freq", "eval_episodes", "save_freq", "keep_checkpoints", "vec_env", "tensorboard_log")


def _resume(args: argparse.Namespace) -> int:
    from sb3_ext.runs import continue_callbacks, resume_run

    fixed = ("algo", "env", "config", "n_timesteps", "n_envs", "trained_agent", "hyperparams")
    given = [f"--{key.replace('_', '-')}" for key in fixed if getattr(args, key)]
    if given:
        raise ConfigError(f"--resume continues the run as run.yml records it: drop {', '.join(given)}")
    model, cfg, info, checkpoint = resume_run(args.resume, device=args.device)  # on the run's own --vec-env
    run_dir = Path(args.resume)
    for key in _RESUMED_OPTIONS:  # the run's own settings
        setattr(args, key, info.get(key, getattr(args, key)))
    callbacks = _callbacks(args, cfg, run_dir, int(info["seed"]))
    continue_callbacks(callbacks, run_dir, checkpoint, cfg.n_envs)
    remaining = cfg.n_timesteps - model.num_timesteps
    print(f"Resuming {cfg.algo} on {cfg.env_id} at {model.num_timesteps} of {cfg.n_timesteps} steps; run folder: {run_dir}")
    return _learn(args, model, cfg, run_dir, callbacks, remaining, reset_num_timesteps=False)


def _learn(
    args: argparse.Namespace,
    model: BaseAlgorithm,
    cfg: ZooConfig,
    run_dir: Path,
    callbacks: list[BaseCallback],
    steps: int,
    reset_num_timesteps: bool,
) -> int:
    """Train ``steps`` more steps and save the outputs (also after Ctrl-C); :return: the exit code"""
    from stable_baselines3.common.callbacks import CallbackList

    progress_bar = sys.stderr.isatty() if args.progress_bar is None else args.progress_bar
    start = time.perf_counter()
    try:
        if steps > 0:
            model.learn(
                steps, callback=CallbackList(callbacks), progress_bar=progress_bar, reset_num_timesteps=reset_num_timesteps
            )
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
    env = cfg.make_env(seed=seed, monitor_dir=str(run_dir), vec_env_cls=_vec_env_cls(args.vec_env))
    if args.trained_agent is not None:
        model = _load_trained_agent(args, cfg, env)
    else:
        model = cfg.make_model(env, seed=seed, device=args.device, verbose=args.verbose, tensorboard_log=args.tensorboard_log)
    callbacks = _callbacks(args, cfg, run_dir, seed)
    cfg.save(run_dir / "config.yml")
    run_info = {
        "algo": cfg.algo,
        "env_id": cfg.env_id,
        "seed": seed,
        "n_timesteps": cfg.n_timesteps,
        "device": args.device,
        "num_threads": args.num_threads,
        "config_source": cfg.source,
        **{key: getattr(args, key) for key in _RESUMED_OPTIONS},
        "trained_agent": args.trained_agent,
        "command": " ".join(sys.orig_argv),
    }
    atomic_write_text(run_dir / "run.yml", yaml.safe_dump(run_info, sort_keys=False))
    return model, callbacks


def _vec_env_cls(name: str) -> type[DummyVecEnv] | type[SubprocVecEnv]:
    """:return: the VecEnv class of ``--vec-env``"""
    from sb3_ext.runs import VEC_ENV_CLASSES

    return VEC_ENV_CLASSES[name]


def _callbacks(args: argparse.Namespace, cfg: ZooConfig, run_dir: Path, seed: int) -> list[BaseCallback]:
    """The config's callbacks, then the periodic evaluation and checkpoints the options ask for."""
    from sb3_ext.runs import CHECKPOINTS, AtomicCheckpointCallback, atomic_eval_callback

    callbacks = cfg.make_callbacks()
    if args.eval_freq > 0:
        callbacks.append(
            atomic_eval_callback(
                cfg.make_env(n_envs=1, seed=seed + 10_000, eval_env=True),
                run_dir,
                n_eval_episodes=args.eval_episodes,
                eval_freq=max(args.eval_freq // cfg.n_envs, 1),
                deterministic=True,
                verbose=0,
            )
        )
    if args.save_freq > 0:
        callbacks.append(AtomicCheckpointCallback(args.save_freq, run_dir / CHECKPOINTS, keep=args.keep_checkpoints))
    return callbacks


def _load_trained_agent(args: argparse.Namespace, cfg: ZooConfig, env: Any) -> BaseAlgorithm:
    """The model of ``--trained-agent`` on the run's env, with the replay buffer saved beside it (as the zoo does)."""
    from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

    path = Path(args.trained_agent)
    try:
        model = cfg.spec.cls.load(
            str(path), env=env, device=args.device, verbose=args.verbose, tensorboard_log=args.tensorboard_log
        )
    except (ValueError, KeyError, AssertionError, TypeError, AttributeError) as exc:  # not a model of this algorithm
        raise ConfigError(
            f"--trained-agent {path}: cannot continue it as {cfg.algo} on {cfg.env_id}: {exc}".splitlines()[0]
        ) from None
    buffers = [
        path.with_name("replay_buffer.pkl"),
        path.with_name(path.name.replace("checkpoint_", "checkpoint_replay_buffer_").replace(".zip", ".pkl")),
    ]
    buffer = next((b for b in buffers if b.is_file()), None)
    if isinstance(model, OffPolicyAlgorithm) and buffer is not None:
        model.load_replay_buffer(str(buffer))
    return model


def _resolve_model(args: argparse.Namespace) -> tuple[ZooConfig, Path | None]:
    """
    The config of ``--model``: algo and env from its run folder's ``run.yml`` (``--algo`` and ``--env`` override
    them, or stand in outside a run folder), hyperparameters from its ``config.yml`` (else the zoo config's).

    :param args: the parsed arguments of :func:`_add_model_arguments`
    :return: the config, and the run's ``vecnormalize.pkl`` (None when it has none)
    :raises ConfigError: for a missing model, a malformed ``run.yml``, or a model outside a run folder without
        ``--algo`` and ``--env``
    """
    model_path = Path(args.model)
    if not model_path.is_file():
        raise ConfigError(f"--model: no such file '{model_path}' (expected the model.zip of a run folder)")
    from sb3_ext.runs import read_run_info

    run_dir = model_path.parent
    run_info = read_run_info(run_dir) if (run_dir / "run.yml").is_file() else {}
    algo, env_id = args.algo or run_info.get("algo"), args.env or run_info.get("env_id")
    if algo is None or env_id is None:
        raise ConfigError(f"--model: {run_dir} has no run.yml; pass --algo and --env")
    get_algo(algo)  # an unknown key is reported as such, before the config is looked for
    config = run_dir / "config.yml" if (run_dir / "config.yml").is_file() else None
    stats = run_dir / "vecnormalize.pkl"
    return load_zoo_config(algo, env_id, config), stats if stats.is_file() else None


def _load_model(args: argparse.Namespace, cfg: ZooConfig, normalize_stats: Path | None) -> tuple[BaseAlgorithm, VecEnv]:
    """
    Build one evaluation env of ``cfg`` and load ``--model`` on it.

    :param args: the parsed arguments of :func:`_add_model_arguments`
    :param cfg: the config (from :func:`_resolve_model`)
    :param normalize_stats: ``VecNormalize`` statistics, used frozen (from :func:`_resolve_model`)
    :return: the model and its env, seeded with ``--seed``; an off-policy model gets a replay buffer of one
        transition, as rl-baselines3-zoo's ``enjoy.py`` loads them (playing needs none, and a config's buffer of Atari
        frames takes gigabytes)
    """
    from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

    env = cfg.make_env(n_envs=1, seed=args.seed, eval_env=True, normalize_stats=normalize_stats)
    cfg.check_env(env)
    kwargs: dict[str, Any] = {"buffer_size": 1} if issubclass(cfg.spec.cls, OffPolicyAlgorithm) else {}
    return cfg.spec.cls.load(str(args.model), env=env, device=args.device, **kwargs), env


def _evaluate(args: argparse.Namespace) -> int:
    from stable_baselines3.common.evaluation import evaluate_policy

    _check_positive("--episodes", args.episodes)
    cfg, normalize_stats = _resolve_model(args)
    model, env = _load_model(args, cfg, normalize_stats)
    mean, std = evaluate_policy(model, env, n_eval_episodes=args.episodes, deterministic=not args.stochastic)
    print(f"{cfg.algo} on {cfg.env_id}: mean return {mean:.2f} +- {std:.2f} over {args.episodes} episodes")
    return 0


def _has_display() -> bool:
    """:return: whether a window can open: on Linux only with an X11 or Wayland display, elsewhere always"""
    return not sys.platform.startswith("linux") or any(os.environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY"))


def _enjoy(args: argparse.Namespace) -> int:
    """
    Play ``--episodes`` episodes of ``--model`` and print their returns, rendered in a window (``render_mode="human"``)
    or recorded by gymnasium's ``RecordVideo`` (``render_mode="rgb_array"``): ``<algo>-<env>-episode-<i>.mp4`` in
    ``--record-video``, one per episode. Actions are greedy except for Atari, as in rl-baselines3-zoo's ``enjoy.py``.
    """
    from gymnasium.wrappers import RecordVideo
    from stable_baselines3.common.evaluation import evaluate_policy

    _check_positive("--episodes", args.episodes)
    video_dir = None if args.record_video is None else Path(args.record_video)
    if video_dir is not None and video_dir.exists() and not video_dir.is_dir():
        raise ConfigError(f"--record-video: '{video_dir}' is not a directory")
    cfg, normalize_stats = _resolve_model(args)
    episodes = args.episodes or (1 if video_dir is not None else 5)
    name = f"{cfg.algo}-{_env_slug(cfg.env_id)}"
    if video_dir is None:
        if not _has_display():
            raise ConfigError("no display to render to (DISPLAY is not set); pass --record-video DIR to record mp4 files")
        cfg = dataclasses.replace(cfg, env_kwargs={**cfg.env_kwargs, "render_mode": "human"})
    else:
        record = {"video_folder": str(video_dir), "episode_trigger": lambda episode: episode < episodes, "name_prefix": name}
        # First of the env wrappers, next to Monitor: an episode is a whole game, also under AtariWrapper's life losses
        cfg = dataclasses.replace(
            cfg,
            env_kwargs={**cfg.env_kwargs, "render_mode": "rgb_array"},
            env_wrappers=((RecordVideo, record), *cfg.env_wrappers),
        )
    created = video_dir is not None and not video_dir.exists()
    try:  # RecordVideo creates the folder: removed again if the model cannot be loaded on the env
        model, env = _load_model(args, cfg, normalize_stats)
    except Exception:
        if video_dir is not None and created:
            shutil.rmtree(video_dir, ignore_errors=True)
        raise
    stochastic = is_atari(cfg.env_id) if args.stochastic is None else args.stochastic
    try:
        returns, lengths = cast(
            "tuple[list[float], list[int]]",
            evaluate_policy(model, env, n_eval_episodes=episodes, deterministic=not stochastic, return_episode_rewards=True),
        )
    finally:
        env.close()  # writes the video of the last episode
    for i, (episode_return, length) in enumerate(zip(returns, lengths, strict=True), start=1):
        print(f"Episode {i}: return {episode_return:.2f}, length {length}")
    print(f"{cfg.algo} on {cfg.env_id}: mean return {np.mean(returns):.2f} +- {np.std(returns):.2f} over {episodes} episodes")
    if video_dir is not None:
        videos = [video_dir / f"{name}-episode-{i}.mp4" for i in range(episodes)]
        print(f"Videos: {', '.join(str(v) for v in videos if v.is_file())}")
    return 0


def _plot(args: argparse.Namespace) -> int:
    """Plot the evaluation curves of run folders aggregated over seeds (see :func:`sb3_ext.plotting.plot_runs`)."""
    from sb3_ext.plotting import find_run_dirs, plot_runs

    run_dirs = find_run_dirs(args.run_folders)  # a folder of runs (logs/) stands for the run folders under it
    png, csv = plot_runs(run_dirs, args.output, x=args.x)
    print(f"Evaluation curves of {len(run_dirs)} run folders in {png}, aggregated values in {csv}")
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
