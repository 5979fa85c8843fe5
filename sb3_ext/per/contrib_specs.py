"""Registry entries of the prioritized variants of sb3-contrib's off-policy algorithms (QR-DQN, TQC, CrossQ).

Each mirrors its upstream entry (:data:`sb3_ext.upstream.SB3_CONTRIB_SPECS`): the same action spaces and search space,
plus prioritized replay's ``per_alpha``, ``per_beta`` and ``per_prioritization`` (tuning sends ``per_<x>`` into
``replay_buffer_kwargs``).
"""

from __future__ import annotations

from collections.abc import Mapping

from sb3_ext.common.algo_spec import SB3_OBS_NO_DICT, SB3_RANGES, AlgoSpec, Conformance
from sb3_ext.common.search_space import PER, Param
from sb3_ext.per.crossq import PrioritizedCrossQ
from sb3_ext.per.qrdqn import PrioritizedQRDQN
from sb3_ext.per.tqc import PrioritizedTQC
from sb3_ext.upstream import SB3_CONTRIB_SPECS

__all__ = ["SPECS"]

_PER_PAPER = "https://arxiv.org/abs/1511.05952"
_UPSTREAM = {spec.key: spec for spec in SB3_CONTRIB_SPECS}

# Cheap off-policy settings of the conformance tests
_CHEAP = dict(learning_starts=50, buffer_size=2_000)


def _search_space(upstream_key: str) -> dict[str, Param]:
    upstream: Mapping[str, Param] = _UPSTREAM[upstream_key].search_space or {}
    return {**upstream, **PER}


SPECS: tuple[AlgoSpec, ...] = (
    AlgoSpec(
        "qrdqn_per",
        PrioritizedQRDQN,
        on_policy=False,
        action_spaces=_UPSTREAM["qrdqn"].action_spaces,
        observation_spaces=_UPSTREAM["qrdqn"].observation_spaces,
        paper=_PER_PAPER,
        ranges=SB3_RANGES,
        search_space=_search_space("qrdqn"),
        conformance=Conformance(
            "CartPole-v1",
            dict(**_CHEAP, train_freq=4, target_update_interval=100, policy_kwargs=dict(net_arch=[16], n_quantiles=5)),
            image_policy="CnnPolicy",
            dict_policy="MultiInputPolicy",
        ),
        summary="sb3-contrib's QR-DQN with prioritized replay: proportional, rank-based or LAP",
    ),
    AlgoSpec(
        "tqc_per",
        PrioritizedTQC,
        on_policy=False,
        action_spaces=_UPSTREAM["tqc"].action_spaces,
        observation_spaces=_UPSTREAM["tqc"].observation_spaces,
        paper=_PER_PAPER,
        ranges=SB3_RANGES,
        search_space=_search_space("tqc"),
        conformance=Conformance(
            "Pendulum-v1",
            dict(**_CHEAP, batch_size=32, train_freq=4, policy_kwargs=dict(net_arch=[16], n_quantiles=5, n_critics=2)),
            image_policy="CnnPolicy",
            dict_policy="MultiInputPolicy",
        ),
        summary="sb3-contrib's TQC with prioritized replay: proportional, rank-based or LAP",
    ),
    AlgoSpec(
        "crossq_per",
        PrioritizedCrossQ,
        on_policy=False,
        action_spaces=_UPSTREAM["crossq"].action_spaces,
        # (CrossQ has only an MlpPolicy: no Dict observations)
        observation_spaces=SB3_OBS_NO_DICT,
        paper=_PER_PAPER,
        ranges=SB3_RANGES,
        search_space=_search_space("crossq"),
        conformance=Conformance(
            "Pendulum-v1",
            dict(**_CHEAP, batch_size=32, train_freq=4, policy_kwargs=dict(net_arch=[16])),
            image_policy=None,
            dict_policy=None,
        ),
        summary="sb3-contrib's CrossQ with prioritized replay: proportional, rank-based or LAP",
    ),
)
