"""Zoo-format configs: read rl-baselines3-zoo hyperparameter YAML files completely and safely.

A file maps entry names (env ids, ``atari``, ``default``) to hyperparameters. :func:`load_zoo_config` picks the
entry for an env (its id, then ``atari`` for Atari ids, then ``default``), applies overrides, validates every key,
and returns a frozen :class:`ZooConfig` that separates what goes to the algorithm's constructor
(:attr:`ZooConfig.model_kwargs`) from what shapes the environment (``n_envs``, wrappers, normalisation, ...).

Strings that the zoo would ``eval`` are parsed by :func:`sb3_ext.common.safe_eval.safe_eval` instead.
"""

from __future__ import annotations

import collections.abc
import functools
import os
import re
import sys
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import yaml
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.noise import ActionNoise, NormalActionNoise, OrnsteinUhlenbeckActionNoise
from stable_baselines3.common.preprocessing import is_image_space, is_image_space_channels_first
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import (
    DummyVecEnv,
    SubprocVecEnv,
    VecEnv,
    VecEnvWrapper,
    VecFrameStack,
    VecNormalize,
    VecTransposeImage,
)

from sb3_ext.common.safe_eval import resolve_class, safe_eval
from sb3_ext.common.signatures import init_defaults, init_parameters, init_type_hints
from sb3_ext.common.utils import atomic_write_text
from sb3_ext.common.env_util import make_env, register_env_package
from sb3_ext.common.yaml_utils import parse_value, read_yaml, to_expression, to_yaml_value
from sb3_ext.errors import ConfigError, Sb3ExtError, UnknownEnvError, suggest
from sb3_ext.common.buffers import PrioritizedReplayBuffer
from sb3_ext.common.prioritized import PRIORITIZED_VARIANTS, PrioritizedReplay
from sb3_ext.registry import ALGOS, AlgoSpec, get_algo

__all__ = [
    "ZOO_CONFIG_DIR",
    "ZooConfig",
    "action_noise",
    "check_env_id",
    "default_config_path",
    "is_atari",
    "load_zoo_config",
    # (re-exported from sb3_ext.common.yaml_utils, their home)
    "parse_value",
    "read_yaml",
    "to_expression",
]


def _find_config_dir() -> Path:
    if "SB3_EXT_ZOO_CONFIGS" in os.environ:
        return Path(os.environ["SB3_EXT_ZOO_CONFIGS"])
    source_tree = Path(__file__).resolve().parents[1] / "zoo_configs"
    if source_tree.is_dir():
        return source_tree
    return Path(sys.prefix) / "share" / "sb3-ext" / "zoo_configs"


#: Where the shipped ``<key>.yml`` files live (``$SB3_EXT_ZOO_CONFIGS`` overrides it).
ZOO_CONFIG_DIR = _find_config_dir()

# Constructor arguments that the config never sets: the caller passes them.
_CALLER_ARGS = frozenset({"self", "env", "seed", "device", "verbose", "tensorboard_log", "_init_setup_model"})
_NOISES: dict[str, type[NormalActionNoise] | type[OrnsteinUhlenbeckActionNoise]] = {
    "normal": NormalActionNoise,
    "ornstein-uhlenbeck": OrnsteinUhlenbeckActionNoise,
}


def action_noise(noise_type: str, noise_std: float | Sequence[float] | np.ndarray, n_actions: int) -> ActionNoise:
    """
    The action noise a zoo config's ``noise_type`` / ``noise_std`` name, as rl-baselines3-zoo builds it.

    :param noise_type: ``"normal"`` or ``"ornstein-uhlenbeck"``
    :param noise_std: its standard deviation, one number or one per action dimension
    :param n_actions: the size of the ``Box`` action space
    :return: the noise, zero mean
    :raises ConfigError: for an unknown ``noise_type``
    """
    noise_class = _NOISES[str(_noise_type(noise_type, "noise_type"))]  # a str is checked and stripped, never None
    return noise_class(mean=np.zeros(n_actions), sigma=np.asarray(noise_std, dtype=np.float64) * np.ones(n_actions))


def check_env_id(env_id: str) -> gym.envs.registration.EnvSpec:
    """
    Check that gymnasium knows an environment id.

    :param env_id: e.g. ``"CartPole-v1"``
    :return: its spec
    :raises UnknownEnvError: with the nearest registered id (or the extra that installs a known package's envs)
    """
    register_env_package(env_id)
    try:
        return gym.spec(env_id)
    except gym.error.Error:
        raise UnknownEnvError(
            f"unknown environment '{env_id}'{suggest(env_id, gym.registry)} (see gymnasium.registry for the ids)"
        ) from None


def default_config_path(algo: str) -> Path:
    """
    :param algo: registry key
    :return: the algorithm's own config file (its :class:`~sb3_ext.registry.AlgoSpec`'s ``config``), else the shipped
        ``zoo_configs/<algo>.yml`` (which need not exist for a plug-in)
    """
    config = get_algo(algo).config
    return Path(config) if config is not None else ZOO_CONFIG_DIR / f"{algo}.yml"


class _WrapperChain:
    """Apply ``(wrapper_class, kwargs)`` pairs in order; picklable, so it works with ``SubprocVecEnv``."""

    def __init__(self, wrappers: tuple[tuple[type, dict[str, Any]], ...]) -> None:
        self.wrappers = wrappers

    def __call__(self, env: Any) -> Any:
        for wrapper_class, kwargs in self.wrappers:
            env = wrapper_class(env, **kwargs)
        return env


@dataclass(frozen=True)
class ZooConfig:
    """
    One resolved entry of a zoo-format config. Build it with :func:`load_zoo_config`.

    :param algo: registry key
    :param env_id: gymnasium id of the environment
    :param source: the YAML file it was read from
    :param entry: the entry used (the env id, ``"atari"`` or ``"default"``)
    :param hyperparams: the entry as written (after overrides): saving it gives a config that reproduces the run
    :param model_kwargs: the exact keyword arguments given to the algorithm class (``policy`` included)
    :param n_timesteps: training budget
    :param n_envs: number of parallel environments
    :param normalize: whether to wrap the env in ``VecNormalize``
    :param normalize_kwargs: keyword arguments of ``VecNormalize`` (``gamma`` follows the algorithm's, as in the zoo)
    :param frame_stack: number of frames to stack with ``VecFrameStack``, or None
    :param env_kwargs: keyword arguments of ``gym.make``
    :param monitor_kwargs: keyword arguments of ``Monitor``
    :param env_wrappers: ``(gym.Wrapper class, kwargs)`` pairs applied to each env, in order
    :param vec_env_wrappers: ``(VecEnvWrapper class, kwargs)`` pairs applied to the VecEnv, in order
    :param callbacks: ``(BaseCallback class, kwargs)`` pairs, instantiated by :meth:`make_callbacks`
    :param noise_type: action noise of off-policy algorithms, ``"normal"`` or ``"ornstein-uhlenbeck"`` (None: none),
        built by :meth:`make_action_noise` for the env's action space when the model is made
    :param noise_std: its standard deviation, one number or one per action dimension
    """

    algo: str
    env_id: str
    source: str
    entry: str
    hyperparams: dict[str, Any]
    model_kwargs: dict[str, Any]
    n_timesteps: int
    n_envs: int = 1
    normalize: bool = False
    normalize_kwargs: dict[str, Any] = field(default_factory=dict)
    frame_stack: int | None = None
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    monitor_kwargs: dict[str, Any] = field(default_factory=dict)
    env_wrappers: tuple[tuple[type, dict[str, Any]], ...] = ()
    vec_env_wrappers: tuple[tuple[type, dict[str, Any]], ...] = ()
    callbacks: tuple[tuple[type, dict[str, Any]], ...] = ()
    noise_type: str | None = None
    noise_std: float | tuple[float, ...] | None = None

    @property
    def spec(self) -> AlgoSpec:
        """The registry entry of :attr:`algo`."""
        return get_algo(self.algo)

    @property
    def env_wrapper(self) -> Callable[[gym.Env], gym.Env] | None:
        """One callable applying :attr:`env_wrappers` (what ``make_vec_env(wrapper_class=...)`` takes), or None."""
        return _WrapperChain(self.env_wrappers) if self.env_wrappers else None

    def make_env(
        self,
        n_envs: int | None = None,
        seed: int | None = None,
        *,
        eval_env: bool = False,
        monitor_dir: str | None = None,
        vec_env_cls: type[DummyVecEnv] | type[SubprocVecEnv] | None = None,
        normalize_stats: str | Path | None = None,
    ) -> VecEnv:
        """
        Build the VecEnv the config describes: ``n_envs`` copies with the env wrappers and ``Monitor``, then the
        VecEnv wrappers, ``VecNormalize``, ``VecFrameStack`` and ``VecTransposeImage`` where needed, as the zoo does.

        :param n_envs: number of envs (default: the config's)
        :param seed: seed of the first env (env i gets ``seed + i``)
        :param eval_env: for evaluation: ``VecNormalize`` neither updates its statistics nor normalises rewards
        :param monitor_dir: where ``Monitor`` writes its CSV files (None: not written)
        :param vec_env_cls: ``DummyVecEnv`` (default) or ``SubprocVecEnv``
        :param normalize_stats: a file saved by ``VecNormalize.save`` whose statistics replace fresh ones
        :return: the environment
        :raises UnknownEnvError: for an id gymnasium does not know, or an env whose packages are missing
        """
        check_env_id(self.env_id)
        try:
            env = self._make_vec_env(n_envs, seed, monitor_dir, vec_env_cls)
        except gym.error.DependencyNotInstalled as exc:
            raise UnknownEnvError(f"{self.env_id} cannot be made here: {exc}".splitlines()[0]) from None
        for wrapper_class, kwargs in self.vec_env_wrappers:
            env = wrapper_class(env, **kwargs)
        if self.normalize and normalize_stats is not None:
            env = VecNormalize.load(str(normalize_stats), env)
            if eval_env:
                env.training, env.norm_reward = False, False
        elif self.normalize:
            kwargs = dict(self.normalize_kwargs)
            if eval_env:
                kwargs.update(training=False, norm_reward=False)
            env = VecNormalize(env, **kwargs)
        if self.frame_stack is not None:
            env = VecFrameStack(env, self.frame_stack)
        if _needs_transpose(env.observation_space):
            env = VecTransposeImage(env)
        return env

    def _make_vec_env(
        self,
        n_envs: int | None,
        seed: int | None,
        monitor_dir: str | None,
        vec_env_cls: type[DummyVecEnv] | type[SubprocVecEnv] | None,
    ) -> VecEnv:
        return make_vec_env(
            functools.partial(make_env, self.env_id),
            n_envs=n_envs or self.n_envs,
            seed=seed,
            env_kwargs=self.env_kwargs,
            monitor_dir=monitor_dir,
            wrapper_class=self.env_wrapper,
            vec_env_cls=vec_env_cls or DummyVecEnv,
            monitor_kwargs=self.monitor_kwargs,
        )

    def check_env(self, env: VecEnv | gym.Env) -> None:
        """
        :param env: an environment
        :raises IncompatibleEnvError: when the algorithm does not support its spaces
        :raises ConfigError: when the config's action noise does not fit its action space
        """
        self.spec.check_spaces(env.observation_space, env.action_space, _env_id(env) or self.env_id)
        self.make_action_noise(env.action_space)

    def make_action_noise(self, action_space: spaces.Space) -> ActionNoise | None:
        """
        :param action_space: the env's action space
        :return: the action noise the config names (:attr:`noise_type`, :attr:`noise_std`) for that space, or None
        :raises ConfigError: for an action space that is not a ``Box``, or one standard deviation per action
            dimension that does not match it
        """
        if self.noise_type is None:
            return None
        if not isinstance(action_space, spaces.Box):
            raise ConfigError(
                f"{self._where('noise_type')}: action noise needs a Box action space, {self.env_id} has {action_space}"
            )
        n_actions = int(np.prod(action_space.shape))
        std = np.asarray(self.noise_std, dtype=np.float64)
        if std.ndim == 1 and std.shape[0] != n_actions:
            raise ConfigError(
                f"{self._where('noise_std')}: expected a number or a list of {n_actions} numbers, got {list(std.tolist())}"
            )
        return action_noise(self.noise_type, std, n_actions)

    def _where(self, key: str) -> str:
        return f"{self.source} [{self.entry}] {key}"

    def make_model(
        self,
        env: VecEnv | gym.Env,
        seed: int | None = None,
        *,
        device: str = "auto",
        verbose: int = 0,
        tensorboard_log: str | None = None,
        **overrides: Any,
    ) -> BaseAlgorithm:
        """
        Build the registered algorithm with every hyperparameter of the config applied (and its action noise, made
        for the env's action space).

        :param env: the environment (usually from :meth:`make_env`)
        :param seed: seed of the algorithm
        :param device: torch device
        :param verbose: verbosity of the algorithm
        :param tensorboard_log: TensorBoard folder, or None
        :param overrides: constructor arguments that replace the config's
        :return: the model, ready for ``learn(cfg.n_timesteps)``
        :raises IncompatibleEnvError: before anything is built, when the algorithm does not support the env's spaces
        :raises ConfigError: when the constructor refuses a value (its ``ValueError`` or ``AssertionError``, with the
            file, entry and, where its message names one, the key in front)
        """
        self.check_env(env)
        kwargs = {**self.model_kwargs, **overrides}
        if self.noise_type is not None and "action_noise" not in overrides:
            kwargs["action_noise"] = self.make_action_noise(env.action_space)
        try:
            return self.spec.cls(env=env, seed=seed, device=device, verbose=verbose, tensorboard_log=tensorboard_log, **kwargs)
        except (ValueError, AssertionError) as exc:
            if isinstance(exc, Sb3ExtError):
                raise
            named = [key for key in self.hyperparams if re.search(rf"\b{re.escape(str(key))}\b", str(exc))]
            where = self._where(named[0]) if named else f"{self.source} [{self.entry}]"
            raise ConfigError(f"{where}: {self.algo} refused the value: {exc}".splitlines()[0]) from exc

    def make_callbacks(self) -> list[BaseCallback]:
        """:return: fresh instances of the callbacks the config names"""
        return [callback_class(**kwargs) for callback_class, kwargs in self.callbacks]

    def to_yaml(self) -> str:
        """:return: a zoo-format YAML document with this entry under :attr:`env_id`, loadable by :func:`load_zoo_config`"""
        entry = {key: to_yaml_value(value) for key, value in sorted(self.hyperparams.items())}
        return yaml.safe_dump({self.env_id: entry}, sort_keys=False)

    def save(self, path: str | Path) -> None:
        """
        Write :meth:`to_yaml` to a file, atomically (a partial file never stays behind).

        :param path: destination
        """
        atomic_write_text(path, self.to_yaml())


def _env_id(env: VecEnv | gym.Env) -> str | None:
    """The gymnasium id of an env (of the first env of a VecEnv), where it has one."""
    try:
        spec = env.get_attr("spec", [0])[0] if isinstance(env, VecEnv) else env.spec
    except AttributeError:
        return None
    return getattr(spec, "id", None)


def _needs_transpose(space: spaces.Space) -> bool:
    subspaces = space.spaces.values() if isinstance(space, spaces.Dict) else [space]
    return any(is_image_space(s) and not is_image_space_channels_first(s) for s in subspaces)  # type: ignore[arg-type]


def _read_config(path: Path) -> dict[str, Any]:
    data = read_yaml(path)
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ConfigError(f"{path}: expected a mapping of env ids (or 'default'/'atari') to hyperparameter mappings")
    return data


def is_atari(env_id: str) -> bool:
    """
    :param env_id: an id gymnasium knows
    :return: whether it is an Atari game of ale-py (its ``atari`` config entry, stochastic actions in ``enjoy``)
    """
    return "AtariEnv" in str(gym.spec(env_id).entry_point)


def constructor_defaults(cls: type) -> dict[str, Any]:
    """
    :param cls: an algorithm class
    :return: its constructor's default values, by argument name (arguments without a default are left out), those its
        parents take through ``**kwargs`` included
    """
    return init_defaults(cls)


def constructor_types(cls: type) -> dict[str, Any]:
    """
    :param cls: an algorithm class
    :return: the annotations of the arguments a config may set (those its parents take through ``**kwargs``
        included), resolved where possible (unknown ones are simply not checked)
    """
    from stable_baselines3.common.vec_env import VecEnv as _VecEnv

    hints = init_type_hints(cls, localns={"VecEnv": _VecEnv, "GymEnv": Any})
    return {name: hint for name, hint in hints.items() if name not in _CALLER_ARGS}


def _admits(annotation: Any, accepts: Callable[[Any], bool]) -> bool:
    """Whether ``accepts`` holds for the annotation, or for one member of it when it is a union."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_admits(arg, accepts) for arg in typing.get_args(annotation))
    return accepts(annotation)


def _is_schedule(annotation: Any) -> bool:
    if annotation is collections.abc.Callable or annotation is typing.Callable:
        return True
    return typing.get_origin(annotation) is collections.abc.Callable and typing.get_args(annotation) in ((), ([float], float))


def _is(kind: type) -> Callable[[Any], bool]:
    return lambda annotation: annotation is kind or typing.get_origin(annotation) is kind


def admits_schedule(annotation: Any) -> bool:
    """
    :param annotation: a constructor argument's annotation
    :return: whether it admits an SB3 ``Schedule`` (``Callable[[float], float]``, or a bare ``Callable``), alone or
        in a union: such an argument takes ``lin_<x>`` strings in a config
    """
    return _admits(annotation, _is_schedule)


def _convert(value: Any, annotation: Any, where: str) -> Any:
    """
    Read a constructor argument as the zoo writes it, by its annotation: ``lin_<x>`` for a schedule, a ``dict(...)``
    expression for a mapping (evaluated safely), a dotted path for a class, a list for a tuple.
    """
    if value is None:
        return None
    if admits_schedule(annotation):
        return _schedule(value, where)
    if isinstance(value, str) and _admits(annotation, _is(dict)) and not _admits(annotation, _is(str)):
        return safe_eval(value, where)
    if isinstance(value, str) and _admits(annotation, _is(type)) and ("." in value or not _admits(annotation, _is(str))):
        return resolve_class(value, where)
    if isinstance(value, list) and _admits(annotation, _is(tuple)) and not _admits(annotation, _is(list)):
        return tuple(value)
    return value


def _coerce(value: Any, annotation: Any) -> tuple[bool, Any]:  # noqa: C901
    """Check a value against a constructor annotation; integral floats become ints and numeric strings numbers."""
    if annotation is Any:
        return True, value
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        for arg in sorted(args, key=lambda a: a is float):  # try exact types before float
            ok, coerced = _coerce(value, arg)
            if ok:
                return True, coerced
        return False, value
    if annotation is type(None):
        return value is None, value
    if annotation is bool:
        return isinstance(value, bool), value
    if annotation in (int, float):
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                return False, value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False, value
        if annotation is int:
            return (float(value).is_integer(), int(value)) if isinstance(value, float) else (True, value)
        return True, value
    if annotation is str:
        return isinstance(value, str), value
    if origin is dict or annotation is dict:
        return isinstance(value, dict), value
    if origin is tuple or annotation is tuple:
        return isinstance(value, tuple), value
    if origin is type or annotation is type:
        return isinstance(value, type), value
    if origin is Callable or annotation is Callable:
        return callable(value), value
    return True, value


def _describe(annotation: Any) -> str:
    text = str(annotation).replace("typing.", "").replace("collections.abc.", "")
    return text.replace("<class '", "").replace("'>", "")


def _wrapper_list(value: Any, where: str, base: type | None) -> tuple[tuple[type, dict[str, Any]], ...]:
    """Read the zoo's wrapper/callback forms: a dotted path, a list of them, or ``{path: kwargs}`` items."""
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    result = []
    for item in items:
        kwargs: Any = {}
        if isinstance(item, dict):
            if len(item) != 1:
                raise ConfigError(
                    f"{where}: each item must be a dotted path or a one-key mapping {{path: kwargs}}, got {item}"
                )
            item, kwargs = next(iter(item.items()))
            kwargs = kwargs or {}
            if not isinstance(kwargs, dict):
                raise ConfigError(f"{where}: the arguments of '{item}' must be a mapping, got {kwargs!r}")
        cls = resolve_class(item, where)
        if base is not None and not issubclass(cls, base):
            raise ConfigError(f"{where}: '{item}' is not a {base.__name__} subclass")
        result.append((cls, kwargs))
    return tuple(result)


def _schedule(value: Any, where: str) -> Any:
    """``lin_<x>`` -> linear schedule from x to 0 (as the zoo); numbers stay numbers."""
    if isinstance(value, str):
        name, _, number = value.partition("_")
        try:
            initial = float(number)
        except ValueError:
            initial = None
        if name != "lin" or initial is None:
            raise ConfigError(f"{where}: '{value}' is not a schedule; use a number or 'lin_<initial value>' (e.g. lin_0.001)")
        return LinearSchedule(start=initial, end=0.0, end_fraction=1.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: expected a number or 'lin_<initial value>', got {value!r}")
    return float(value)


# The keys of a zoo entry that shape the environment or the run, each with its parser ``(value, where) -> parsed``;
# every other key is a constructor argument of the algorithm.


def _integer(minimum: int, optional: bool = False) -> Callable[[Any, str], int | None]:
    def parse(value: Any, where: str) -> int | None:
        if value is None and optional:
            return None
        ok, number = _coerce(value, int)
        if not ok:
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        if number < minimum:
            raise ConfigError(f"{where}: must be >= {minimum}, got {value!r}")
        return int(number)

    return parse


def _normalize(value: Any, where: str) -> dict[str, Any] | None:
    """``normalize``: true/false, or a mapping of ``VecNormalize`` arguments; :return: those arguments, or None"""
    if isinstance(value, str):
        value = safe_eval(value, where)
    if isinstance(value, bool):
        return {} if value else None
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected true/false or a mapping of VecNormalize arguments, got {value!r}")
    accepted = set(init_parameters(VecNormalize)) - {"venv"}
    for name in value:
        if name not in accepted:
            raise ConfigError(f"{where}: unknown VecNormalize argument '{name}'{suggest(name, accepted)}")
    return dict(value)


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if isinstance(value, str):
        value = safe_eval(value, where)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping, got {value!r}")
    return value


def _noise_type(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or value.strip() not in _NOISES:
        raise ConfigError(f"{where}: expected one of {', '.join(_NOISES)}, got {value!r}")
    return value.strip()


def _noise_std(value: Any, where: str) -> float | tuple[float, ...] | None:
    if value is None:
        return None
    std = np.asarray(value)
    if std.ndim > 1 or std.dtype.kind not in "if":
        raise ConfigError(f"{where}: expected a number or a list of numbers (one per action dimension), got {value!r}")
    if np.any(std < 0):
        raise ConfigError(f"{where}: must be >= 0, got {value!r}")
    return float(std) if std.ndim == 0 else tuple(float(x) for x in std)


_ENV_PARSERS: dict[str, Callable[[Any, str], Any]] = {
    "n_timesteps": _integer(1),
    "n_envs": _integer(1),
    "frame_stack": _integer(1, optional=True),
    "normalize": _normalize,
    "env_kwargs": _mapping,
    "monitor_kwargs": _mapping,
    "env_wrapper": functools.partial(_wrapper_list, base=None),
    "vec_env_wrapper": functools.partial(_wrapper_list, base=VecEnvWrapper),
    "callback": functools.partial(_wrapper_list, base=BaseCallback),
    "noise_type": _noise_type,
    "noise_std": _noise_std,
}
_ENV_DEFAULTS: dict[str, Any] = {"n_envs": 1, "normalize": False}

#: Keys that shape the environment or the run rather than the algorithm's constructor.
ENV_KEYS = frozenset(_ENV_PARSERS)


@dataclass(frozen=True)
class _Entry:
    """Where the keys of one config entry come from, for messages."""

    path: Path
    name: str
    overridden: frozenset[str]

    def where(self, key: str) -> str:
        return f"--hyperparams {key}" if key in self.overridden else f"{self.path} [{self.name}] {key}"

    def __str__(self) -> str:
        return f"{self.path} [{self.name}]"


def _build(spec: AlgoSpec, env_id: str, entry: _Entry, raw: dict[str, Any]) -> ZooConfig:
    """Check every key of an entry and split it: run and environment keys, then the constructor's arguments."""
    types_ = constructor_types(spec.cls)
    for key in raw:
        if key not in types_ and key not in ENV_KEYS:
            raise ConfigError(
                f"{entry.where(key)}: unknown key for {spec.key}{suggest(str(key), [*types_, *ENV_KEYS])} "
                f"(valid: {', '.join(sorted([*types_, *ENV_KEYS]))})"
            )
    run = _parse_env_keys({k: v for k, v in raw.items() if k in ENV_KEYS}, entry)
    model_kwargs = _parse_model_keys(spec, types_, {k: v for k, v in raw.items() if k not in ENV_KEYS}, entry)
    if run["noise_type"] is not None and "action_noise" not in types_:
        raise ConfigError(f"{entry.where('noise_type')}: {spec.key} takes no action noise (no action_noise argument)")
    normalize_kwargs = run.pop("normalize")
    if normalize_kwargs is not None and "gamma" in model_kwargs:  # as the zoo: returns normalised with the discount
        normalize_kwargs["gamma"] = model_kwargs["gamma"]
    return ZooConfig(
        algo=spec.key,
        env_id=env_id,
        source=str(entry.path),
        entry=entry.name,
        hyperparams=raw,
        model_kwargs=model_kwargs,
        normalize=normalize_kwargs is not None,
        normalize_kwargs=normalize_kwargs or {},
        env_wrappers=run.pop("env_wrapper"),
        vec_env_wrappers=run.pop("vec_env_wrapper"),
        callbacks=run.pop("callback"),
        **run,
    )


def _parse_env_keys(env_raw: dict[str, Any], entry: _Entry) -> dict[str, Any]:
    """:return: every key of :data:`ENV_KEYS`, parsed (defaults where the entry has none)"""
    if "n_timesteps" not in env_raw:
        budget = "the training budget, e.g. n_timesteps: !!float 1e5, or -n on the command line"
        raise ConfigError(f"{entry}: missing 'n_timesteps' ({budget})")
    parsed = {key: parser(env_raw.get(key, _ENV_DEFAULTS.get(key)), entry.where(key)) for key, parser in _ENV_PARSERS.items()}
    if parsed["noise_type"] is not None and parsed["noise_std"] is None:
        raise ConfigError(f"{entry}: 'noise_type' needs 'noise_std' (e.g. noise_std: 0.1)")
    if parsed["noise_std"] is not None and parsed["noise_type"] is None:
        raise ConfigError(f"{entry.where('noise_std')}: 'noise_std' needs 'noise_type' (normal or ornstein-uhlenbeck)")
    return parsed


def _parse_model_keys(spec: AlgoSpec, types_: dict[str, Any], model_raw: dict[str, Any], entry: _Entry) -> dict[str, Any]:
    """:return: the constructor's keyword arguments, read by their annotations, type-checked, the ranges checked"""
    hp = {key: _convert(value, types_[key], entry.where(key)) for key, value in model_raw.items()}
    for key, value in list(hp.items()):
        ok, hp[key] = _coerce(value, types_[key])
        if not ok:
            raise ConfigError(f"{entry.where(key)}: expected {_describe(types_[key])}, got {type(value).__name__} {value!r}")
    for key, (check, valid) in spec.ranges.items():
        value = hp.get(key)
        if callable(value):
            value = value(1.0)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not check(value):
            raise ConfigError(f"{entry.where(key)}: must be {valid}, got {model_raw.get(key, value)!r}")
    _refuse_silent_uniform_replay(spec, hp, entry)
    policy = hp.get("policy")
    if policy is None:
        raise ConfigError(f"{entry}: missing 'policy' (one of {', '.join(spec.cls.policy_aliases)})")
    if isinstance(policy, str) and policy not in spec.cls.policy_aliases:
        raise ConfigError(
            f"{entry.where('policy')}: unknown policy '{policy}' for {spec.key}{suggest(policy, spec.cls.policy_aliases)} "
            f"(valid: {', '.join(spec.cls.policy_aliases)}, or a dotted path to a policy class)"
        )
    return hp


def _refuse_silent_uniform_replay(spec: AlgoSpec, hp: dict[str, Any], entry: _Entry) -> None:
    """
    :raises ConfigError: for a prioritized buffer given to an algorithm that never updates its priorities (it would
        replay uniformly), naming the registry key of its prioritized variant where it has one
    """
    if issubclass(spec.cls, PrioritizedReplay):
        return
    for key, value in hp.items():
        if isinstance(value, type) and issubclass(value, PrioritizedReplayBuffer):
            variant = next((PRIORITIZED_VARIANTS[c] for c in spec.cls.__mro__ if c in PRIORITIZED_VARIANTS), None)
            keys = [other.key for other in ALGOS.values() if variant is not None and other.cls is variant]
            prioritizing = ", ".join(k for k, other in ALGOS.items() if issubclass(other.cls, PrioritizedReplay))
            use = f"use '{keys[0]}', its prioritized variant" if keys else f"use one that prioritizes ({prioritizing})"
            raise ConfigError(
                f"{entry.where(key)}: {spec.key} never updates priorities, so {value.__name__} would replay uniformly; "
                f"{use}, or SB3's ReplayBuffer"
            )


def load_zoo_config(
    algo: str,
    env_id: str,
    config: str | Path | None = None,
    *,
    hyperparams: Mapping[str, Any] | None = None,
    n_timesteps: int | None = None,
    n_envs: int | None = None,
) -> ZooConfig:
    """
    Read the zoo-format config of an algorithm for one environment.

    :param algo: registry key (``"ppo"``, ``"dqn"``, ...)
    :param env_id: gymnasium id; the entry is looked up by id, then ``atari`` for Atari ids, then ``default``
    :param config: a zoo-format YAML file (default: ``zoo_configs/<algo>.yml``)
    :param hyperparams: overrides applied over the entry, in the same forms the file takes
    :param n_timesteps: overrides the entry's ``n_timesteps``
    :param n_envs: overrides the entry's ``n_envs``
    :return: the resolved config
    :raises UnknownAlgorithmError: for an unknown ``algo``
    :raises UnknownEnvError: for an ``env_id`` gymnasium does not know, unless the file has an entry of that id (the
        env is not built: an entry parses even where its env's packages are missing; :meth:`ZooConfig.make_env` needs them)
    :raises ConfigError: naming the file, entry and key of anything malformed, unknown, mistyped or out of range
    """
    spec = get_algo(algo)
    path, data = _config_entries(spec, config)
    entry = _select_entry(data, env_id, path)
    raw = dict(data[entry])
    overrides = dict(hyperparams or {})
    if n_timesteps is not None:
        overrides["n_timesteps"] = n_timesteps
    if n_envs is not None:
        overrides["n_envs"] = n_envs
    raw.update(overrides)
    return _build(spec, env_id, _Entry(path, entry, frozenset(overrides)), raw)


def _config_entries(spec: AlgoSpec, config: str | Path | None) -> tuple[Path, dict[str, Any]]:
    """:return: the config file of ``spec`` (``config``, else its default) and its entries"""
    path = Path(config) if config is not None else default_config_path(spec.key)
    if config is not None or path.exists():
        return path, _read_config(path)
    # An algorithm with no zoo-format file of its own: its constructor's defaults, the budget from the caller
    aliases = list(spec.cls.policy_aliases)
    policy = "MlpPolicy" if "MlpPolicy" in aliases or not aliases else aliases[0]
    return Path(f"<{spec.key}: constructor defaults>"), {"default": {"policy": policy}}


def _select_entry(data: dict[str, Any], env_id: str, path: Path) -> str:
    """
    The entry for ``env_id``: its own (read without gymnasium knowing the id, so the entries of envs whose packages
    are missing parse too), else ``atari`` for an Atari id, else ``default`` (both need a known id).
    """
    if env_id in data:
        return env_id
    check_env_id(env_id)
    if "atari" in data and is_atari(env_id):
        return "atari"
    if "default" in data:
        return "default"
    raise ConfigError(f"{path}: no entry for '{env_id}' and no 'default' entry (entries: {', '.join(map(str, data))})")
