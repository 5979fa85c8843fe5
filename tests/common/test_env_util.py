from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces

from sb3_ext.common import env_util
from sb3_ext.common.env_util import make_env, register_env_package
from sb3_ext.common.torch_layers import MinAtarCNN
from sb3_ext.config import check_env_id
from sb3_ext.errors import UnknownEnvError


def test_minatar_ids_are_registered_on_request() -> None:
    env = make_env("MinAtar/Breakout-v1")
    obs, _ = env.reset(seed=0)
    assert env.observation_space == spaces.Box(0, 1, (10, 10, 4), bool) and obs.shape == (10, 10, 4)
    assert env.action_space == spaces.Discrete(3)  # v1: the minimal action set
    assert check_env_id("MinAtar/Seaquest-v0").id == "MinAtar/Seaquest-v0"


def test_a_missing_package_is_named_with_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(env_util.ENV_PACKAGES, "Nowhere", ("nowhere", "nowhere_pkg.envs", "register"))
    with pytest.raises(UnknownEnvError, match=r"'Nowhere/Game-v0' needs the nowhere_pkg package: pip install .*\[nowhere\]"):
        check_env_id("Nowhere/Game-v0")
    register_env_package("CartPole-v1")  # ids of other packages are gymnasium's business
    with pytest.raises(UnknownEnvError, match="unknown environment 'MinAtar/Breakout-v9'; did you mean"):
        check_env_id("MinAtar/Breakout-v9")


def test_minatar_cnn() -> None:
    space = spaces.Box(0, 1, (10, 10, 6), bool)
    extractor = MinAtarCNN(space, features_dim=32)
    obs = th.as_tensor(np.stack([space.sample() for _ in range(5)]))
    features = extractor(obs)
    assert features.shape == (5, 32) and (features >= 0).all()
    with pytest.raises(ValueError, match=r"needs \(height, width, channels\) observations, got shape \(4,\)"):
        MinAtarCNN(spaces.Box(0, 1, (4,)))


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["rainbow", "dqn"])
def test_cli_trains_on_minatar_by_id(algo: str, tmp_path: Path) -> None:
    # A fresh process: the id is registered by the config, not by an earlier import
    command = [sys.executable, "-m", "sb3_ext", "train", "--algo", algo, "--env", "MinAtar/Breakout-v1", "-n", "600"]
    command += ["--hyperparams", "learning_starts=100", "buffer_size=1000", "--eval-freq", "300", "--eval-episodes", "2"]
    command += ["--log-folder", str(tmp_path), "--no-progress-bar", "--seed", "0"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / algo / "MinAtar-Breakout-v1_1"  # (a namespaced id makes one folder, as in rl_zoo3)
    assert (run / "model.zip").exists(), sorted(p.name for p in tmp_path.rglob("*"))
    assert gym.spec("CartPole-v1")  # (gymnasium still works in this process)
