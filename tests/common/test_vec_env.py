from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from sb3_ext.common.vec_env import LightDummyVecEnv


class DictObs(gym.Env):
    """Dict observations, a 3-step time limit and an episode that terminates on action 1."""

    observation_space = spaces.Dict({"pos": spaces.Discrete(5), "vec": spaces.Box(-1, 1, (2,))})
    action_space = spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict]:
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def _obs(self) -> dict[str, Any]:
        return {"pos": self.t, "vec": np.full(2, self.t / 10, dtype=np.float32)}

    def step(self, action: int) -> tuple[dict[str, Any], float, bool, bool, dict]:
        self.action_type = type(action)
        self.t += 1
        return self._obs(), float(self.t), action == 1, self.t >= 3, {"t": self.t}


def _same_steps(env_id: str | type[gym.Env], n_envs: int, actions: list[np.ndarray], light: VecEnv | None = None) -> None:
    """LightDummyVecEnv (by default made by make_vec_env) returns what DummyVecEnv + Monitor returns, step by step,
    for the same seeds and actions."""
    if light is None:
        light = make_vec_env(env_id, n_envs=n_envs, seed=3, vec_env_cls=LightDummyVecEnv)
    light.seed(3)
    venvs = [make_vec_env(env_id, n_envs=n_envs, seed=3, vec_env_cls=DummyVecEnv), light]
    np.testing.assert_equal(venvs[0].reset(), venvs[1].reset())
    for action in actions:
        (obs_a, rew_a, done_a, info_a), (obs_b, rew_b, done_b, info_b) = (v.step(action) for v in venvs)
        np.testing.assert_equal(obs_a, obs_b)
        np.testing.assert_array_equal(rew_a, rew_b)
        np.testing.assert_array_equal(done_a, done_b)
        assert rew_b.dtype == rew_a.dtype and done_b.dtype == done_a.dtype
        for a, b in zip(info_a, info_b, strict=True):
            assert a.keys() == b.keys()
            a, b = dict(a), dict(b)  # Monitor's episode record holds a wall-clock time: compare return and length only
            if "episode" in a:
                a["episode"], b["episode"] = ({"r": x["episode"]["r"], "l": x["episode"]["l"]} for x in (a, b))
            np.testing.assert_equal(a, b)


def test_taxi_steps_match_dummy_vec_env() -> None:
    rng = np.random.default_rng(0)
    _same_steps("Taxi-v4", 4, [rng.integers(6, size=4) for _ in range(400)])  # time limits and terminations included


def test_built_in_monitor_matches_monitor_wrappers() -> None:
    rng = np.random.default_rng(1)
    light = LightDummyVecEnv([lambda: gym.make("Taxi-v4")] * 4, monitor=True)
    # 400 steps: the 200-step time limit ends every episode at least once, and infos must have the same keys
    _same_steps("Taxi-v4", 4, [rng.integers(6, size=4) for _ in range(400)], light)
    light.reset()  # a reset starts every env's episode again: its statistics too
    for _ in range(199):
        _, _, dones, infos = light.step(np.zeros(4, dtype=np.int64))  # action 0 (south) never ends an episode
        assert not dones.any()
    _, _, dones, infos = light.step(np.zeros(4, dtype=np.int64))
    assert dones.all() and [info["episode"]["l"] for info in infos] == [200] * 4
    assert [info["episode"]["r"] for info in infos] == [-200.0] * 4


def test_without_monitor_no_episode_statistics() -> None:
    light = LightDummyVecEnv([lambda: gym.make("Taxi-v4")])
    light.reset()
    infos = [light.step(np.zeros(1, dtype=np.int64))[3][0] for _ in range(200)]
    assert infos[-1]["TimeLimit.truncated"] and not any("episode" in info for info in infos)


def test_dict_observations_and_python_int_actions_match_dummy_vec_env() -> None:
    _same_steps(DictObs, 2, [np.array([0, 0]), np.array([0, 1]), np.array([0, 0]), np.array([1, 0])])


def test_box_actions_match_dummy_vec_env() -> None:
    rng = np.random.default_rng(0)
    _same_steps("Pendulum-v1", 2, [rng.uniform(-2, 2, size=(2, 1)).astype(np.float32) for _ in range(210)])


def test_returned_arrays_and_infos_are_fresh() -> None:
    venv = make_vec_env("Taxi-v4", n_envs=2, seed=0, vec_env_cls=LightDummyVecEnv)
    first = venv.reset()
    obs, rewards, _, infos = venv.step(np.array([0, 1]))
    obs[:] = -1
    rewards[:] = 99
    infos[0]["added"] = True
    obs2, rewards2, _, infos2 = venv.step(np.array([0, 1]))
    assert (obs2 >= 0).all() and (rewards2 != 99).all() and "added" not in infos2[0]
    assert first is not obs


def test_discrete_actions_reach_the_envs_as_python_ints() -> None:
    venv = LightDummyVecEnv([DictObs, DictObs])
    venv.reset()
    venv.step(np.array([0, 1]))
    assert venv.get_attr("action_type") == [int, int]
