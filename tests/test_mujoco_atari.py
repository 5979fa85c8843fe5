"""MuJoCo and Atari out of the box (pip extras mujoco and atari, both in the test extra): the shipped zoo entries
build and train, the Atari one with its wrapper and frame stack."""

from __future__ import annotations

import pytest
from stable_baselines3.common.torch_layers import NatureCNN

from sb3_ext import load_zoo_config

pytest.importorskip("mujoco")
pytest.importorskip("ale_py")

pytestmark = pytest.mark.slow  # (MuJoCo and Atari training runs)


def test_sac_trains_on_mujoco_from_its_zoo_entry() -> None:
    cfg = load_zoo_config("sac", "HalfCheetah-v4", n_timesteps=300, hyperparams={"learning_starts": 100})
    assert cfg.entry == "HalfCheetah-v4"
    env = cfg.make_env(seed=0)
    model = cfg.make_model(env, seed=0, buffer_size=1000).learn(cfg.n_timesteps)
    assert model.num_timesteps == 300 and model._n_updates >= 150  # type: ignore[attr-defined]
    action, _ = model.predict(env.reset(), deterministic=True)
    assert action.shape == (1, 6)


@pytest.mark.parametrize("algo", ["d3qn", "rainbow"])
def test_cnn_policy_trains_on_atari_from_the_atari_entry(algo: str) -> None:
    cfg = load_zoo_config(algo, "BreakoutNoFrameskip-v4", n_timesteps=300, hyperparams={"learning_starts": 100})
    assert cfg.entry == "atari" and cfg.frame_stack == 4
    env = cfg.make_env(seed=0)
    assert env.observation_space.shape == (4, 84, 84)  # AtariWrapper's 84x84 frames, 4 stacked, channels first
    model = cfg.make_model(env, seed=0, buffer_size=1000).learn(cfg.n_timesteps)
    assert isinstance(model.policy.q_net.features_extractor, NatureCNN)  # type: ignore[attr-defined]
    assert model.num_timesteps == 300 and model._n_updates > 0  # type: ignore[attr-defined]
    action, _ = model.predict(env.reset(), deterministic=True)
    assert action.shape == (1,) and 0 <= int(action[0]) < env.action_space.n  # type: ignore[attr-defined]
