"""Rainbow's registry entry: everything the registry, configs, tuning and the conformance tests know of it."""

from __future__ import annotations

from gymnasium import spaces

from sb3_ext.common.algo_spec import SB3_RANGES, AlgoSpec, Conformance
from sb3_ext.common.search_space import PER, Q_VALUE, categorical
from sb3_ext.rainbow.rainbow import Rainbow

__all__ = ["SPEC"]

SPEC = AlgoSpec(
    "rainbow",
    Rainbow,
    on_policy=False,
    action_spaces=(spaces.Discrete,),
    paper="https://arxiv.org/abs/1710.02298",
    ranges=SB3_RANGES,
    search_space={
        # (noisy layers explore: no epsilon to tune)
        **{name: param for name, param in Q_VALUE.items() if not name.startswith("exploration_")},
        "n_steps": categorical(1, 3, 5),
        "n_atoms": categorical(21, 51),
        **PER,
    },
    conformance=Conformance(
        "CartPole-v1",
        dict(
            n_atoms=11,
            learning_starts=50,
            buffer_size=2_000,
            train_freq=4,
            target_update_interval=100,
            policy_kwargs=dict(net_arch=[16]),
        ),
    ),
    summary="categorical head, noisy nets, dueling, double Q, prioritized n-step replay; D3QN with `distributional=False`",
)
