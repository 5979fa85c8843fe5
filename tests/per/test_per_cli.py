"""The command line trains every prioritized variant from its zoo config (the config's entry, with small overrides)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sb3_ext import get_algo
from sb3_ext.cli import main
from sb3_ext.common.buffers import PrioritizedReplayBuffer


@pytest.mark.slow
@pytest.mark.parametrize("key", ["dqn_per", "sac_per", "td3_per", "ddpg_per", "qrdqn_per", "tqc_per", "crossq_per"])
def test_cli_trains_every_prioritized_key_from_its_zoo_config(tmp_path: Path, key: str) -> None:
    env_id = "CartPole-v1" if key in ("dqn_per", "qrdqn_per") else "Pendulum-v1"
    small = ["buffer_size=1000", "learning_starts=100", "policy_kwargs=dict(net_arch=[16])"]
    args = ["train", "--algo", key, "--env", env_id, "-n", "300", "--seed", "0", "--hyperparams", *small]
    assert main([*args, "--log-folder", str(tmp_path / "logs"), "--no-progress-bar", "--eval-freq", "0"]) == 0
    run = tmp_path / "logs" / key / f"{env_id}_1"
    model = get_algo(key).cls.load(run / "model.zip")
    # (at least the budget: the zoo's CartPole entries collect 256 steps per round)
    assert model.num_timesteps >= 300 and issubclass(model.replay_buffer_class, PrioritizedReplayBuffer)
