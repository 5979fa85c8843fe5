"""Command line: ``python -m sb3_ext.zoo train|enjoy ...``, rl-baselines3-zoo's own ``train`` and ``enjoy`` scripts with
every sb3-ext algorithm registered (:func:`sb3_ext.zoo.register`), so ``train --optimize`` tunes them too.

Every argument after the first word is the zoo's (``python -m sb3_ext.zoo train --help``). ``train`` with an algorithm
the zoo ships no ``hyperparams/<algo>.yml`` for reads its sb3-ext config (:func:`sb3_ext.config.default_config_path`,
e.g. ``zoo_configs/d3qn.yml``) unless ``--conf-file`` names one. A first word other than ``train`` or ``enjoy``, an
unknown algorithm or environment id, and rl_zoo3 missing exit with code 2 and one line on stderr; errors of the zoo's
are its own.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from sb3_ext.common.cli_utils import OneLineErrorParser, exit_process, run_command
from sb3_ext.config import check_env_id, default_config_path
from sb3_ext.errors import ConfigError
from sb3_ext.registry import get_algo
from sb3_ext.zoo.plugin import SearchSpaceSampler, register

__all__ = ["INSTALL", "PROG", "main", "run"]

PROG = "python -m sb3_ext.zoo"
#: How to install rl_zoo3 (the extra ``zoo``)
INSTALL = 'pip install -c constraints.txt -e ".[zoo]"'
_USAGE = f"usage: {PROG} {{train,enjoy}} [rl-baselines3-zoo arguments ...] (e.g. {PROG} train --help)"


def _script(command: str) -> Callable[[], None]:
    """:return: the zoo's script ``command`` (``train`` or ``enjoy``), imported"""
    if command == "train":
        from rl_zoo3.train import train

        return train
    from rl_zoo3.enjoy import enjoy

    return enjoy


def _train_argv(argv: list[str]) -> list[str]:
    """
    :param argv: the zoo's ``train`` arguments
    :return: ``argv``, with ``--conf-file`` and sb3-ext's config added for an algorithm the zoo has no config of
    :raises UnknownAlgorithmError: for an algorithm neither knows (with the nearest key)
    :raises ConfigError: for an algorithm without config file, or ``--optimize`` of one without search space
    """
    import rl_zoo3
    from rl_zoo3.hyperparams_opt import HYPERPARAMS_SAMPLER
    from rl_zoo3.utils import ALGOS

    parser = OneLineErrorParser(prog=f"{PROG} train", add_help=False)
    parser.add_argument("--algo", default="ppo")  # the zoo's default
    parser.add_argument("-conf", "--conf-file")
    parser.add_argument("-optimize", "--optimize-hyperparameters", action="store_true")
    known, _ = parser.parse_known_args(argv)
    algo = known.algo
    if algo not in ALGOS:
        get_algo(algo)  # raises, with the valid keys and the nearest one
    if known.optimize_hyperparameters and isinstance(HYPERPARAMS_SAMPLER.get(algo), SearchSpaceSampler):
        from tuning.search_spaces import get_search_space

        get_search_space(algo)  # fails now, in one line, instead of in the first trial
    if known.conf_file is not None or (Path(rl_zoo3.__file__).parent / "hyperparams" / f"{algo}.yml").is_file():
        return argv
    path = default_config_path(algo)
    if not path.is_file():
        raise ConfigError(f"no zoo-format config for '{algo}' ({path} does not exist): pass --conf-file FILE")
    return [*argv, "--conf-file", str(path)]


def _check_env(argv: list[str]) -> None:
    """
    Check the zoo's ``--env`` before the zoo runs: the ids of its package are registered (MinAtar, Atari:
    :func:`~sb3_ext.config.check_env_id`), which the zoo looks up in gymnasium's registry before it makes the env, and
    an unknown id gets one line with the nearest one. ``--gym-packages`` are imported first, as the zoo does.

    :param argv: the zoo's ``train`` or ``enjoy`` arguments
    :raises UnknownEnvError: for an unknown id, or one whose package is not installed
    """
    parser = OneLineErrorParser(prog=PROG, add_help=False)
    parser.add_argument("--env", default="CartPole-v1")  # the zoo's default
    parser.add_argument("--gym-packages", nargs="+", default=[])
    known = parser.parse_known_args(argv)[0]
    for package in known.gym_packages:
        importlib.import_module(package)
    check_env_id(known.env)


def _run_script(script: Callable[[], None], command: str, argv: list[str]) -> int:
    """Run one of the zoo's scripts on ``argv`` (they parse ``sys.argv``)."""
    saved = sys.argv
    sys.argv = [f"{PROG} {command}", *argv]
    try:
        script()
    finally:
        sys.argv = saved
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run rl-baselines3-zoo's ``train`` or ``enjoy`` with sb3-ext's algorithms registered.

    :param argv: ``train`` or ``enjoy``, then the zoo's arguments (default: ``sys.argv[1:]``)
    :return: the exit code: 0 on success, 2 on bad input or without rl_zoo3, 130 when interrupted
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["-h"], ["--help"]):
        print(_USAGE)
        return 0
    if not args or args[0] not in ("train", "enjoy"):
        got = f"'{args[0]}'" if args else "nothing"
        print(f"{PROG}: error: expected train or enjoy first, got {got} ({_USAGE})", file=sys.stderr)
        return 2
    command, rest = args[0], args[1:]
    try:
        register()
        script = _script(command)
    except ImportError as exc:
        if exc.name == "rl_zoo3":
            print(f"{PROG}: error: rl_zoo3 is not installed: {INSTALL}", file=sys.stderr)
        else:  # a package rl_zoo3 imports without declaring it (its enjoy script imports requests)
            print(f"{PROG}: error: rl_zoo3's {command} cannot be imported ({exc}): pip install {exc.name}", file=sys.stderr)
        return 2

    def command_() -> int:
        _check_env(rest)
        return _run_script(script, command, _train_argv(rest) if command == "train" else rest)

    return run_command(PROG, command_)


def run() -> NoReturn:
    """Entry point of ``python -m sb3_ext.zoo``: :func:`main` on ``sys.argv``, then :func:`exit_process`."""
    exit_process(main())
