"""REINFORCE's registry entry: everything the registry, configs, tuning and the conformance tests know of it."""

from __future__ import annotations

from sb3_ext.common.algo_spec import ALL_ACTIONS, SB3_RANGES, AlgoSpec, Conformance
from sb3_ext.common.search_space import categorical, float_range
from sb3_ext.reinforce.reinforce import REINFORCE

__all__ = ["SPEC"]

SPEC = AlgoSpec(
    "reinforce",
    REINFORCE,
    on_policy=True,
    action_spaces=ALL_ACTIONS,
    paper="https://link.springer.com/article/10.1007/BF00992696",
    ranges=SB3_RANGES,
    search_space={
        "learning_rate": float_range(1e-4, 1e-2, log=True),
        "one_minus_gamma": float_range(1e-4, 0.1, log=True),
        "n_episodes": categorical(1, 2, 4, 8, 16),
        "baseline": categorical("none", "mean", "value"),
        "normalize_advantage": categorical(False, True),
        "ent_coef": float_range(1e-8, 0.1, log=True),
        "max_grad_norm": float_range(0.3, 5.0, log=True),
        "net_arch": categorical("tiny", "small", "medium"),
        "activation_fn": categorical("tanh", "relu"),
    },
    # (by design its batches are whole episodes: learn(n) ends past n, at the end of the batch it is in)
    conformance=Conformance("CartPole-v1", dict(n_episodes=2, policy_kwargs=dict(net_arch=[16])), exact_steps=False),
    summary="baselines `none`, `mean`, `value`",
)
