"""The algorithm registry: one entry per key, the same keys rl-baselines3-zoo uses.

Configs, the CLI and tuning look algorithms up here only, so every algorithm is treated alike. Other packages add
theirs with :func:`register_algo`, or declare them in the entry-point group ``sb3_ext.algorithms`` (entry name = key,
object = an :class:`AlgoSpec`), which :func:`get_algo` and :func:`algo_keys` load when first needed::

    [project.entry-points."sb3_ext.algorithms"]
    aux_ppo = "acme_rl:SPEC"
"""

from __future__ import annotations

import importlib.metadata
import types
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from gymnasium import spaces
from sb3_contrib import ARS, QRDQN, TQC, TRPO, CrossQ, RecurrentPPO
from stable_baselines3 import A2C, DDPG, DQN, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm

from sb3_ext.d3qn import D3QN
from sb3_ext.errors import IncompatibleEnvError, Sb3ExtError, UnknownAlgorithmError, suggest
from sb3_ext.qlearning import QLearning
from sb3_ext.rainbow import Rainbow
from sb3_ext.reinforce import REINFORCE

__all__ = ["ALGOS", "ENTRY_POINT_GROUP", "SB3_RANGES", "AlgoSpec", "Range", "algo_keys", "get_algo", "register_algo"]

#: Entry-point group of third-party algorithms: entry name = registry key, object = an :class:`AlgoSpec`
ENTRY_POINT_GROUP = "sb3_ext.algorithms"

SpaceTypes = tuple[type[spaces.Space], ...]

_ALL_ACTIONS: SpaceTypes = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)
# What SB3's policies (flatten/CNN extractors, and the combined extractor for Dict) take as observations.
_SB3_OBS: SpaceTypes = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary, spaces.Dict)
_SB3_OBS_NO_DICT: SpaceTypes = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)


class Range(NamedTuple):
    """The valid values of one numeric constructor argument, checked when a config is read."""

    #: whether a value is valid
    check: Callable[[float], bool]
    #: what a valid value is, for the message (``"in [0, 1]"``)
    valid: str


_POSITIVE, _NON_NEGATIVE, _AT_LEAST_ONE = (
    Range(lambda v: v > 0, "> 0"),
    Range(lambda v: v >= 0, ">= 0"),
    Range(lambda v: v >= 1, ">= 1"),
)
_FRACTION = Range(lambda v: 0 <= v <= 1, "in [0, 1]")

#: Ranges of the arguments Stable-Baselines3's constructors (and sb3-contrib's, and sb3-ext's, which follow them)
#: take without checking them: a config is refused with one line instead of training on nonsense
SB3_RANGES: Mapping[str, Range] = types.MappingProxyType(
    {
        "learning_rate": _POSITIVE,
        "gamma": _FRACTION,
        "gae_lambda": _FRACTION,
        "tau": _FRACTION,
        "exploration_fraction": _FRACTION,
        "exploration_initial_eps": _FRACTION,
        "exploration_final_eps": _FRACTION,
        "clip_range": _POSITIVE,
        "ent_coef": _NON_NEGATIVE,
        "vf_coef": _NON_NEGATIVE,
        "max_grad_norm": _POSITIVE,
        "batch_size": _AT_LEAST_ONE,
        "n_steps": _AT_LEAST_ONE,
        "n_epochs": _AT_LEAST_ONE,
        "buffer_size": _AT_LEAST_ONE,
        "learning_starts": _NON_NEGATIVE,
        "target_update_interval": _AT_LEAST_ONE,
        "policy_delay": _AT_LEAST_ONE,
        "gradient_steps": Range(lambda v: v >= 1 or v == -1, ">= 1, or -1"),
        "target_policy_noise": _NON_NEGATIVE,
        "target_noise_clip": _NON_NEGATIVE,
    }
)


def _names(types: SpaceTypes) -> str:
    return ", ".join(t.__name__ for t in types)


@dataclass(frozen=True)
class AlgoSpec:
    """
    What the registry knows of one algorithm.

    :param key: registry key, as rl-baselines3-zoo spells it (``"ppo"``, ``"ppo_lstm"``, ...)
    :param cls: the algorithm class
    :param on_policy: whether it learns from fresh rollouts (True) or from a replay buffer / its own scheme (False)
    :param action_spaces: the action space types it supports
    :param observation_spaces: the observation space types it supports
    :param paper: link to the paper that introduced it
    :param config: its zoo-format config file (None: ``zoo_configs/<key>.yml`` where that exists, else the
        constructor's defaults, with the budget from the caller)
    :param ranges: valid values of numeric constructor arguments, checked when a config is read (a schedule's
        initial value is checked); arguments the constructor checks itself need none, its ``ValueError`` comes back
        with the config's file, entry and key in front
    :raises Sb3ExtError: when ``cls`` is not a Stable-Baselines3 ``BaseAlgorithm``
    """

    key: str
    cls: type[BaseAlgorithm]
    on_policy: bool
    action_spaces: SpaceTypes
    observation_spaces: SpaceTypes = _SB3_OBS
    paper: str = ""
    config: str | Path | None = None
    ranges: Mapping[str, Range] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not (isinstance(self.cls, type) and issubclass(self.cls, BaseAlgorithm)):
            raise Sb3ExtError(
                f"AlgoSpec '{self.key}': {self.cls!r} is not a stable_baselines3 BaseAlgorithm subclass (the algorithm class)"
            )

    def check_spaces(self, observation_space: spaces.Space, action_space: spaces.Space, env_id: str | None = None) -> None:
        """
        Fail early when the algorithm cannot handle an environment's spaces.

        :param observation_space: the environment's observation space
        :param action_space: the environment's action space
        :param env_id: the environment id, for the message
        :raises IncompatibleEnvError: naming the algorithm, the space and what the algorithm supports
        """
        env_name = env_id or "this environment"
        if not isinstance(action_space, self.action_spaces):
            raise IncompatibleEnvError(
                f"{self.key} cannot train on {env_name}: its action space is {action_space}, "
                f"but {self.key} supports only {_names(self.action_spaces)} action spaces"
            )
        if not isinstance(observation_space, self.observation_spaces):
            raise IncompatibleEnvError(
                f"{self.key} cannot train on {env_name}: its observation space is {observation_space}, "
                f"but {self.key} supports only {_names(self.observation_spaces)} observation spaces"
            )


ALGOS: dict[str, AlgoSpec] = {
    # Stable-Baselines3
    "a2c": AlgoSpec("a2c", A2C, True, _ALL_ACTIONS, paper="https://arxiv.org/abs/1602.01783", ranges=SB3_RANGES),
    "ddpg": AlgoSpec("ddpg", DDPG, False, (spaces.Box,), paper="https://arxiv.org/abs/1509.02971", ranges=SB3_RANGES),
    "dqn": AlgoSpec("dqn", DQN, False, (spaces.Discrete,), paper="https://arxiv.org/abs/1312.5602", ranges=SB3_RANGES),
    "ppo": AlgoSpec("ppo", PPO, True, _ALL_ACTIONS, paper="https://arxiv.org/abs/1707.06347", ranges=SB3_RANGES),
    "sac": AlgoSpec("sac", SAC, False, (spaces.Box,), paper="https://arxiv.org/abs/1801.01290", ranges=SB3_RANGES),
    "td3": AlgoSpec("td3", TD3, False, (spaces.Box,), paper="https://arxiv.org/abs/1802.09477", ranges=SB3_RANGES),
    # sb3-contrib
    "ars": AlgoSpec(
        "ars",
        ARS,
        False,
        (spaces.Box, spaces.Discrete),
        _SB3_OBS_NO_DICT,
        "https://arxiv.org/abs/1803.07055",
        ranges=SB3_RANGES,
    ),
    "crossq": AlgoSpec("crossq", CrossQ, False, (spaces.Box,), paper="https://arxiv.org/abs/1902.05605", ranges=SB3_RANGES),
    "qrdqn": AlgoSpec("qrdqn", QRDQN, False, (spaces.Discrete,), paper="https://arxiv.org/abs/1710.10044", ranges=SB3_RANGES),
    "tqc": AlgoSpec("tqc", TQC, False, (spaces.Box,), paper="https://arxiv.org/abs/2005.04269", ranges=SB3_RANGES),
    "trpo": AlgoSpec("trpo", TRPO, True, _ALL_ACTIONS, paper="https://arxiv.org/abs/1502.05477", ranges=SB3_RANGES),
    "ppo_lstm": AlgoSpec(
        "ppo_lstm", RecurrentPPO, True, _ALL_ACTIONS, paper="https://arxiv.org/abs/1707.06347", ranges=SB3_RANGES
    ),
    # sb3-ext
    "d3qn": AlgoSpec("d3qn", D3QN, False, (spaces.Discrete,), paper="https://arxiv.org/abs/1511.06581", ranges=SB3_RANGES),
    "qlearning": AlgoSpec(
        "qlearning",
        QLearning,
        False,
        (spaces.Discrete,),
        (spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary, spaces.Tuple),
        "https://link.springer.com/article/10.1007/BF00992698",
        ranges=SB3_RANGES,
    ),
    "rainbow": AlgoSpec(
        "rainbow", Rainbow, False, (spaces.Discrete,), paper="https://arxiv.org/abs/1710.02298", ranges=SB3_RANGES
    ),
    "reinforce": AlgoSpec(
        "reinforce",
        REINFORCE,
        True,
        _ALL_ACTIONS,
        paper="https://link.springer.com/article/10.1007/BF00992696",
        ranges=SB3_RANGES,
    ),
}


def register_algo(spec: AlgoSpec, *, replace: bool = False) -> None:
    """
    Add an algorithm to the registry, so configs, both CLIs and tuning know it by ``spec.key``.

    :param spec: what the registry knows of it
    :param replace: replace an algorithm registered under the same key (otherwise that is an error)
    :raises Sb3ExtError: for a key registered already, or a ``spec`` that is not an :class:`AlgoSpec`
    """
    if not isinstance(spec, AlgoSpec):
        raise Sb3ExtError(f"register_algo takes an sb3_ext.AlgoSpec, got {type(spec).__name__}")
    current = ALGOS.get(spec.key)
    if current is not None and current != spec and not replace:
        raise Sb3ExtError(
            f"algorithm '{spec.key}' is registered already ({current.cls.__module__}.{current.cls.__name__}): "
            f"pass replace=True to replace it with {spec.cls.__module__}.{spec.cls.__name__}"
        )
    ALGOS[spec.key] = spec


_loaded_entry_points: set[str] = set()


def _load_entry_points() -> None:
    """Register the algorithms declared in :data:`ENTRY_POINT_GROUP` (once each); one that fails is reported and skipped."""
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.name in _loaded_entry_points:
            continue
        _loaded_entry_points.add(entry_point.name)
        package = entry_point.dist.name if entry_point.dist is not None else entry_point.value.split(":")[0]
        try:
            spec = entry_point.load()
            if not isinstance(spec, AlgoSpec) or spec.key != entry_point.name:
                raise Sb3ExtError(f"'{entry_point.value}' must be an sb3_ext.AlgoSpec with key '{entry_point.name}'")
            register_algo(spec)
        except Exception as exc:  # a broken plug-in leaves every other algorithm usable
            warnings.warn(f"sb3-ext: algorithm '{entry_point.name}' of package {package} is not available: {exc}")


def algo_keys() -> list[str]:
    """:return: every registry key, those of installed plug-ins included, sorted"""
    _load_entry_points()
    return sorted(ALGOS)


def get_algo(key: str) -> AlgoSpec:
    """
    Look an algorithm up by its registry key (loading plug-ins' entry points when the key is not known yet).

    :param key: the key, e.g. ``"ppo"``
    :return: its :class:`AlgoSpec`
    :raises UnknownAlgorithmError: listing the valid keys and suggesting the nearest one
    """
    if key not in ALGOS:
        _load_entry_points()
    try:
        return ALGOS[key]
    except KeyError:
        raise UnknownAlgorithmError(
            f"unknown algorithm '{key}'{suggest(key, ALGOS)} (valid: {', '.join(sorted(ALGOS))})"
        ) from None
