"""The registry entries of Stable-Baselines3's and sb3-contrib's algorithms, under rl-baselines3-zoo's keys."""

from __future__ import annotations

from gymnasium import spaces
from sb3_contrib import ARS, QRDQN, TQC, TRPO, CrossQ, RecurrentPPO
from stable_baselines3 import A2C, DDPG, DQN, PPO, SAC, TD3

from sb3_ext.common.algo_spec import ALL_ACTIONS, SB3_OBS_NO_DICT, SB3_RANGES, AlgoSpec, Conformance
from sb3_ext.common.search_space import (
    ACTOR_CRITIC,
    NOISE,
    ON_POLICY,
    PPO_LIKE,
    Q_VALUE,
    categorical,
    float_range,
    int_range,
)

__all__ = ["SB3_CONTRIB_SPECS", "SB3_SPECS"]

_SMALL_NET = dict(policy_kwargs=dict(net_arch=[16]))
_BOX, _DISCRETE = (spaces.Box,), (spaces.Discrete,)

#: Stable-Baselines3's algorithms; DQN and A2C are the controls of the conformance tests (what SB3 itself passes)
SB3_SPECS = (
    AlgoSpec(
        "a2c",
        A2C,
        True,
        ALL_ACTIONS,
        paper="https://arxiv.org/abs/1602.01783",
        ranges=SB3_RANGES,
        search_space={
            **ON_POLICY,
            "ent_coef": float_range(1e-8, 0.1, log=True),
            "max_grad_norm": float_range(0.3, 5.0, log=True),
            "vf_coef": float_range(0.2, 1.0),
            "normalize_advantage": categorical(False, True),
        },
        conformance=Conformance("CartPole-v1", dict(n_steps=8, **_SMALL_NET)),
    ),
    AlgoSpec(
        "ddpg",
        DDPG,
        False,
        _BOX,
        paper="https://arxiv.org/abs/1509.02971",
        ranges=SB3_RANGES,
        search_space={**ACTOR_CRITIC, **NOISE},
    ),
    AlgoSpec(
        "dqn",
        DQN,
        False,
        _DISCRETE,
        paper="https://arxiv.org/abs/1312.5602",
        ranges=SB3_RANGES,
        search_space=Q_VALUE,
        conformance=Conformance(
            "CartPole-v1", dict(learning_starts=50, buffer_size=2_000, train_freq=4, target_update_interval=100, **_SMALL_NET)
        ),
    ),
    AlgoSpec(
        "ppo", PPO, True, ALL_ACTIONS, paper="https://arxiv.org/abs/1707.06347", ranges=SB3_RANGES, search_space=PPO_LIKE
    ),
    AlgoSpec("sac", SAC, False, _BOX, paper="https://arxiv.org/abs/1801.01290", ranges=SB3_RANGES, search_space=ACTOR_CRITIC),
    AlgoSpec(
        "td3",
        TD3,
        False,
        _BOX,
        paper="https://arxiv.org/abs/1802.09477",
        ranges=SB3_RANGES,
        search_space={**ACTOR_CRITIC, **NOISE},
    ),
)

#: sb3-contrib's algorithms
SB3_CONTRIB_SPECS = (
    AlgoSpec(
        "ars",
        ARS,
        False,
        (spaces.Box, spaces.Discrete),
        SB3_OBS_NO_DICT,
        "https://arxiv.org/abs/1803.07055",
        ranges=SB3_RANGES,
        search_space={
            "learning_rate": float_range(1e-3, 0.1, log=True),
            "n_delta": categorical(4, 8, 16, 32),
            "n_top_ratio": float_range(0.1, 1.0),
            "delta_std": float_range(0.01, 0.3, log=True),
        },
    ),
    AlgoSpec(
        "crossq",
        CrossQ,
        False,
        _BOX,
        paper="https://arxiv.org/abs/1902.05605",
        ranges=SB3_RANGES,
        search_space={
            **{name: param for name, param in ACTOR_CRITIC.items() if name != "tau"},
            "policy_delay": categorical(1, 3),
        },
    ),
    AlgoSpec(
        "qrdqn",
        QRDQN,
        False,
        _DISCRETE,
        paper="https://arxiv.org/abs/1710.10044",
        ranges=SB3_RANGES,
        search_space={**Q_VALUE, "policy_kwargs.n_quantiles": categorical(10, 25, 50)},
    ),
    AlgoSpec(
        "tqc",
        TQC,
        False,
        _BOX,
        paper="https://arxiv.org/abs/2005.04269",
        ranges=SB3_RANGES,
        search_space={
            **ACTOR_CRITIC,
            "top_quantiles_to_drop_per_net": int_range(0, 5),
            "policy_kwargs.n_quantiles": categorical(10, 25, 50),
        },
    ),
    AlgoSpec(
        "trpo",
        TRPO,
        True,
        ALL_ACTIONS,
        paper="https://arxiv.org/abs/1502.05477",
        ranges=SB3_RANGES,
        search_space={
            **ON_POLICY,
            "batch_size_pow": int_range(3, 9),
            "n_critic_updates": categorical(5, 10, 20),
            "target_kl": categorical(0.1, 0.05, 0.03, 0.02, 0.01),
        },
    ),
    AlgoSpec(
        "ppo_lstm",
        RecurrentPPO,
        True,
        ALL_ACTIONS,
        paper="https://arxiv.org/abs/1707.06347",
        ranges=SB3_RANGES,
        search_space={**PPO_LIKE, "policy_kwargs.lstm_hidden_size": categorical(16, 32, 64, 128)},
    ),
)
