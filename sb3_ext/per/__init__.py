"""Prioritized variants of Stable-Baselines3's and sb3-contrib's off-policy algorithms.

Each is its upstream class (constructor, hyperparameters, policies, saved files) with prioritized replay
(:class:`~sb3_ext.common.prioritized.PrioritizedReplay`); its ``train`` differs from the upstream one only where
prioritization needs it.
"""

from sb3_ext.per.crossq import PrioritizedCrossQ
from sb3_ext.per.dqn import PrioritizedDQN
from sb3_ext.per.qrdqn import PrioritizedQRDQN
from sb3_ext.per.sac import PrioritizedSAC
from sb3_ext.per.td3 import PrioritizedDDPG, PrioritizedTD3
from sb3_ext.per.tqc import PrioritizedTQC

__all__ = [
    "PrioritizedCrossQ",
    "PrioritizedDDPG",
    "PrioritizedDQN",
    "PrioritizedQRDQN",
    "PrioritizedSAC",
    "PrioritizedTD3",
    "PrioritizedTQC",
]
