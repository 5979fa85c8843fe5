"""What the registry knows of one algorithm, in one place: :class:`AlgoSpec`.

An algorithm is added with one :class:`AlgoSpec`: its class and spaces, its zoo config, its search space, the cases
the conformance tests run on it, and its paper (the README's table is checked against the registry). Configs, the
CLIs, tuning and the tests read everything about an algorithm from its spec, and know no algorithm by name.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm

from sb3_ext.common.search_space import Param
from sb3_ext.errors import IncompatibleEnvError, Sb3ExtError

__all__ = ["ALL_ACTIONS", "SB3_OBS", "SB3_OBS_NO_DICT", "SB3_RANGES", "AlgoSpec", "Conformance", "Range"]

SpaceTypes = tuple[type[spaces.Space], ...]

ALL_ACTIONS: SpaceTypes = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)
# What SB3's policies (flatten/CNN extractors, and the combined extractor for Dict) take as observations.
SB3_OBS: SpaceTypes = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary, spaces.Dict)
SB3_OBS_NO_DICT: SpaceTypes = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)


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
class Conformance:
    """
    How the conformance tests (SB3's own tests, run on every registered algorithm: save/load, predict, callbacks,
    devices, spaces, VecNormalize...) train an algorithm briefly.

    :param env_id: a cheap gymnasium env it learns on (for the tests of its own policies and hooks)
    :param kwargs: cheap constructor arguments (small networks, small buffers)
    :param budget: steps of a brief training run
    :param exact_steps: whether ``learn(n)`` with one env ends at ``num_timesteps == n`` (False: it may end past it,
        by design, e.g. REINFORCE finishing its episodes)
    :param vec_normalize: ``VecNormalize`` arguments it trains with in the VecNormalize test
    :param policy: its policy for flat observations
    :param image_policy: its policy for image observations, or None when it takes none
    :param dict_policy: its policy for ``Dict`` observations, or None when it takes none
    :param network_policy: whether its policy is a network of SB3's policy classes (a features extractor, train and
        evaluation modes); False for a table
    """

    env_id: str
    kwargs: Mapping[str, Any] = field(default_factory=dict, hash=False)
    budget: int = 256
    exact_steps: bool = True
    vec_normalize: Mapping[str, Any] = field(default_factory=dict, hash=False)
    policy: str = "MlpPolicy"
    image_policy: str | None = "CnnPolicy"
    dict_policy: str | None = "MultiInputPolicy"
    network_policy: bool = True


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
    :param search_space: its default search space for tuning (parameter name -> :class:`~sb3_ext.common.search_space.Param`
        or a definition in the format of a ``--search-space`` YAML file), or None when it has none
    :param conformance: how the conformance tests train it, or None to leave it out of them
    :param summary: what the README's table says of it after the class (its parts, its options)
    :raises Sb3ExtError: when ``cls`` is not a Stable-Baselines3 ``BaseAlgorithm``, or a search-space definition is
        malformed
    """

    key: str
    cls: type[BaseAlgorithm]
    on_policy: bool
    action_spaces: SpaceTypes
    observation_spaces: SpaceTypes = SB3_OBS
    paper: str = ""
    config: str | Path | None = None
    ranges: Mapping[str, Range] = field(default_factory=dict, hash=False)
    search_space: Mapping[str, Param] | None = field(default=None, hash=False)
    conformance: Conformance | None = None
    summary: str = ""

    def __post_init__(self) -> None:
        if not (isinstance(self.cls, type) and issubclass(self.cls, BaseAlgorithm)):
            raise Sb3ExtError(
                f"AlgoSpec '{self.key}': {self.cls!r} is not a stable_baselines3 BaseAlgorithm subclass (the algorithm class)"
            )
        if self.search_space is not None:
            where = f"search space of '{self.key}':"
            space = {
                str(name): param if isinstance(param, Param) else Param.from_dict(str(name), param, where)
                for name, param in self.search_space.items()
            }
            object.__setattr__(self, "search_space", types.MappingProxyType(space))

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
