"""D3QN's registry entry: everything the registry, configs, tuning and the conformance tests know of it."""

from __future__ import annotations

from gymnasium import spaces

from sb3_ext.common.algo_spec import SB3_RANGES, AlgoSpec, Conformance
from sb3_ext.common.search_space import PER, Q_VALUE, categorical
from sb3_ext.d3qn.d3qn import D3QN

__all__ = ["SPEC"]

SPEC = AlgoSpec(
    "d3qn",
    D3QN,
    on_policy=False,
    action_spaces=(spaces.Discrete,),
    paper="https://arxiv.org/abs/1511.06581",
    ranges=SB3_RANGES,
    search_space={
        **Q_VALUE,
        "n_steps": categorical(1, 3, 5),
        **PER,
    },
    conformance=Conformance(
        "CartPole-v1",
        dict(
            learning_starts=50, buffer_size=2_000, train_freq=4, target_update_interval=100, policy_kwargs=dict(net_arch=[16])
        ),
    ),
    summary="double Q, dueling policies, prioritized replay `sb3_ext.PrioritizedReplayBuffer`, n-step returns; each can be "
    "switched off",
)
