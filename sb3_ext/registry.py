"""The algorithm registry: one entry per key, the same keys rl-baselines3-zoo uses.

Configs, the CLI and tuning look algorithms up here only, so every algorithm is treated alike.
Adding one is a line in :data:`ALGOS` plus its ``zoo_configs/<key>.yml``.
"""

from __future__ import annotations

from dataclasses import dataclass

from gymnasium import spaces
from sb3_contrib import ARS, QRDQN, TQC, TRPO, CrossQ, RecurrentPPO
from stable_baselines3 import A2C, DDPG, DQN, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm

from sb3_ext.d3qn import D3QN
from sb3_ext.errors import IncompatibleEnvError, UnknownAlgorithmError, suggest
from sb3_ext.qlearning import QLearning
from sb3_ext.rainbow import Rainbow
from sb3_ext.reinforce import REINFORCE

__all__ = ["ALGOS", "AlgoSpec", "get_algo"]

SpaceTypes = tuple[type[spaces.Space], ...]

_ALL_ACTIONS: SpaceTypes = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)
# What SB3's policies (flatten/CNN extractors, and the combined extractor for Dict) take as observations.
_SB3_OBS: SpaceTypes = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary, spaces.Dict)
_SB3_OBS_NO_DICT: SpaceTypes = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)


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
    """

    key: str
    cls: type[BaseAlgorithm]
    on_policy: bool
    action_spaces: SpaceTypes
    observation_spaces: SpaceTypes = _SB3_OBS
    paper: str = ""

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
    "a2c": AlgoSpec("a2c", A2C, True, _ALL_ACTIONS, paper="https://arxiv.org/abs/1602.01783"),
    "ddpg": AlgoSpec("ddpg", DDPG, False, (spaces.Box,), paper="https://arxiv.org/abs/1509.02971"),
    "dqn": AlgoSpec("dqn", DQN, False, (spaces.Discrete,), paper="https://arxiv.org/abs/1312.5602"),
    "ppo": AlgoSpec("ppo", PPO, True, _ALL_ACTIONS, paper="https://arxiv.org/abs/1707.06347"),
    "sac": AlgoSpec("sac", SAC, False, (spaces.Box,), paper="https://arxiv.org/abs/1801.01290"),
    "td3": AlgoSpec("td3", TD3, False, (spaces.Box,), paper="https://arxiv.org/abs/1802.09477"),
    # sb3-contrib
    "ars": AlgoSpec("ars", ARS, False, (spaces.Box, spaces.Discrete), _SB3_OBS_NO_DICT, "https://arxiv.org/abs/1803.07055"),
    "crossq": AlgoSpec("crossq", CrossQ, False, (spaces.Box,), paper="https://arxiv.org/abs/1902.05605"),
    "qrdqn": AlgoSpec("qrdqn", QRDQN, False, (spaces.Discrete,), paper="https://arxiv.org/abs/1710.10044"),
    "tqc": AlgoSpec("tqc", TQC, False, (spaces.Box,), paper="https://arxiv.org/abs/2005.04269"),
    "trpo": AlgoSpec("trpo", TRPO, True, _ALL_ACTIONS, paper="https://arxiv.org/abs/1502.05477"),
    "ppo_lstm": AlgoSpec("ppo_lstm", RecurrentPPO, True, _ALL_ACTIONS, paper="https://arxiv.org/abs/1707.06347"),
    # sb3-ext
    "d3qn": AlgoSpec("d3qn", D3QN, False, (spaces.Discrete,), paper="https://arxiv.org/abs/1511.06581"),
    "qlearning": AlgoSpec(
        "qlearning",
        QLearning,
        False,
        (spaces.Discrete,),
        (spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary, spaces.Tuple),
        "https://link.springer.com/article/10.1007/BF00992698",
    ),
    "rainbow": AlgoSpec("rainbow", Rainbow, False, (spaces.Discrete,), paper="https://arxiv.org/abs/1710.02298"),
    "reinforce": AlgoSpec(
        "reinforce", REINFORCE, True, _ALL_ACTIONS, paper="https://link.springer.com/article/10.1007/BF00992696"
    ),
}


def get_algo(key: str) -> AlgoSpec:
    """
    Look an algorithm up by its registry key.

    :param key: the key, e.g. ``"ppo"``
    :return: its :class:`AlgoSpec`
    :raises UnknownAlgorithmError: listing the valid keys and suggesting the nearest one
    """
    try:
        return ALGOS[key]
    except KeyError:
        raise UnknownAlgorithmError(
            f"unknown algorithm '{key}'{suggest(key, ALGOS)} (valid: {', '.join(sorted(ALGOS))})"
        ) from None
