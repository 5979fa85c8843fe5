"""sb3-ext: algorithms Stable-Baselines3 leaves out, zoo-style configs and Optuna tuning over every algorithm."""

from sb3_ext.common.buffers import DictPrioritizedReplayBuffer, EpisodeBuffer, PrioritizedReplayBuffer
from sb3_ext.config import ZooConfig, load_zoo_config
from sb3_ext.d3qn import D3QN
from sb3_ext.qlearning import QLearning
from sb3_ext.rainbow import Rainbow
from sb3_ext.reinforce import REINFORCE
from sb3_ext.per.crossq import PrioritizedCrossQ
from sb3_ext.per.dqn import PrioritizedDQN
from sb3_ext.per.qrdqn import PrioritizedQRDQN
from sb3_ext.per.sac import PrioritizedSAC
from sb3_ext.per.td3 import PrioritizedDDPG, PrioritizedTD3
from sb3_ext.per.tqc import PrioritizedTQC
from sb3_ext.errors import ConfigError, IncompatibleEnvError, Sb3ExtError, UnknownAlgorithmError, UnknownEnvError
from sb3_ext.registry import ALGOS, AlgoSpec, Conformance, algo_keys, get_algo, register_algo

__version__ = "0.1.0"

__all__ = [
    "ALGOS",
    "D3QN",
    "REINFORCE",
    "AlgoSpec",
    "ConfigError",
    "Conformance",
    "DictPrioritizedReplayBuffer",
    "EpisodeBuffer",
    "IncompatibleEnvError",
    "PrioritizedCrossQ",
    "PrioritizedDDPG",
    "PrioritizedDQN",
    "PrioritizedQRDQN",
    "PrioritizedReplayBuffer",
    "PrioritizedSAC",
    "PrioritizedTD3",
    "PrioritizedTQC",
    "QLearning",
    "Rainbow",
    "Sb3ExtError",
    "UnknownAlgorithmError",
    "UnknownEnvError",
    "ZooConfig",
    "algo_keys",
    "get_algo",
    "load_zoo_config",
    "register_algo",
]
