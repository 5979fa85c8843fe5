"""Registry entries of the prioritized variants of Stable-Baselines3's off-policy algorithms (``<key>_per``).

Each mirrors its upstream entry in :mod:`sb3_ext.upstream` (action spaces, search space) and adds prioritized replay's
search parameters, which the tuning sends into ``replay_buffer_kwargs``.
"""

from __future__ import annotations

from sb3_ext.common.algo_spec import SB3_RANGES, AlgoSpec, Conformance
from sb3_ext.common.search_space import PER
from sb3_ext.per.dqn import PrioritizedDQN
from sb3_ext.per.sac import PrioritizedSAC
from sb3_ext.per.td3 import PrioritizedDDPG, PrioritizedTD3
from sb3_ext.upstream import SB3_SPECS as _UPSTREAM_SPECS

__all__ = ["SPECS"]

_UPSTREAM = {spec.key: spec for spec in _UPSTREAM_SPECS}
_PAPER = "https://arxiv.org/abs/1511.05952"
_SMALL_NET = dict(policy_kwargs=dict(net_arch=[16]))
# (SB3's continuous algorithms: brief training on Pendulum, with a small buffer and small networks)
_CONTINUOUS = Conformance(
    "Pendulum-v1", dict(learning_starts=50, buffer_size=2_000, batch_size=32, train_freq=4, **_SMALL_NET)
)


def _variant(key: str, cls: type, upstream_name: str, conformance: Conformance) -> AlgoSpec:
    """The entry ``<key>_per`` of ``cls``, prioritized variant of the upstream entry ``key``."""
    upstream = _UPSTREAM[key]
    assert upstream.search_space is not None
    return AlgoSpec(
        f"{key}_per",
        cls,
        on_policy=False,
        action_spaces=upstream.action_spaces,
        observation_spaces=upstream.observation_spaces,
        paper=_PAPER,
        ranges=SB3_RANGES,
        search_space={**upstream.search_space, **PER},
        conformance=conformance,
        summary=f"SB3's {upstream_name} with prioritized replay: proportional, rank-based or LAP",
    )


SPECS: tuple[AlgoSpec, ...] = (
    _variant(
        "dqn",
        PrioritizedDQN,
        "DQN",
        Conformance(
            "CartPole-v1", dict(learning_starts=50, buffer_size=2_000, train_freq=4, target_update_interval=100, **_SMALL_NET)
        ),
    ),
    _variant("sac", PrioritizedSAC, "SAC", _CONTINUOUS),
    _variant("td3", PrioritizedTD3, "TD3", _CONTINUOUS),
    _variant("ddpg", PrioritizedDDPG, "DDPG", _CONTINUOUS),
)
