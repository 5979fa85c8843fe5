"""QLearning's registry entry: everything the registry, configs, tuning and the conformance tests know of it."""

from __future__ import annotations

from gymnasium import spaces

from sb3_ext.common.algo_spec import SB3_RANGES, AlgoSpec, Conformance
from sb3_ext.common.search_space import categorical, float_range
from sb3_ext.qlearning.qlearning import QLearning

__all__ = ["SPEC"]

SPEC = AlgoSpec(
    "qlearning",
    QLearning,
    on_policy=False,
    action_spaces=(spaces.Discrete,),
    observation_spaces=(spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary, spaces.Tuple),
    paper="https://link.springer.com/article/10.1007/BF00992698",
    ranges=SB3_RANGES,
    search_space={
        "learning_rate": float_range(0.01, 1.0, log=True),
        "one_minus_gamma": float_range(1e-3, 0.2, log=True),
        "exploration_fraction": float_range(0.05, 0.8),
        "exploration_final_eps": float_range(0.0, 0.2),
        "update_rule": categorical("q_learning", "sarsa", "expected_sarsa", "double_q"),
    },
    conformance=Conformance(
        # (optimistic values: a short FrozenLake run rarely sees a reward, and an all-zero table would learn nothing)
        "FrozenLake-v1",
        dict(initial_q_value=1.0),
        budget=500,
        # (VecNormalize normalises Box observations only: a table's observations are left as they are)
        vec_normalize=dict(norm_obs=False),
        policy="TabularPolicy",
        image_policy=None,
        dict_policy=None,
        network_policy=False,
    ),
    summary="tabular; SARSA, Expected SARSA, double Q as `update_rule`",
)
