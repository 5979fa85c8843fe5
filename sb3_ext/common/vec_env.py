"""VecEnv variants."""

from __future__ import annotations

import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import DummyVecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn
from stable_baselines3.common.vec_env.util import dict_to_obs

__all__ = ["LightDummyVecEnv"]


class LightDummyVecEnv(DummyVecEnv):
    """
    SB3's :class:`~stable_baselines3.common.vec_env.DummyVecEnv` without the deep copies of the observation buffer and
    of the info dicts at every step, and optionally with the episode statistics of SB3's ``Monitor`` kept by the VecEnv
    itself.

    For cheap environments (tabular ones step in a few microseconds) those deep copies cost as much as the step itself.
    Observations are still returned as fresh arrays (``ndarray.copy``), and each step returns new info dicts (a shallow
    copy of what the env returned), so keys added to them later never reach the env; only mutable *values* an env keeps
    and changes in place between steps would be shared, which gymnasium's own environments never do.
    Actions of a ``Discrete`` space reach the envs as Python ints (``DummyVecEnv`` passes numpy integers), which tabular
    envs look up in their transition dicts faster. Use it exactly like ``DummyVecEnv``, e.g.
    ``make_vec_env("Taxi-v4", n_envs=8, vec_env_cls=LightDummyVecEnv)``.

    With ``monitor=True`` the envs need no ``Monitor`` wrapper: at the end of each episode the info of its last step
    gets ``info["episode"] = {"r": return, "l": length, "t": seconds since creation}``, exactly as ``Monitor`` writes it
    (so ``rollout/ep_rew_mean`` is logged), for a fraction of the cost of one more wrapper call per step, e.g.
    ``LightDummyVecEnv([lambda: gym.make("Taxi-v4")] * 8, monitor=True)``. It writes no file: wrap the envs in
    ``Monitor`` (and leave ``monitor=False``) to get a monitor CSV.

    :param env_fns: functions that each create one environment
    :param monitor: record each episode's return, length and time in the info of its last step
    """

    def __init__(self, env_fns: list[Callable[[], gym.Env]], monitor: bool = False) -> None:
        super().__init__(env_fns)
        # Discrete actions are passed on as Python ints: tabular envs index dicts with them, faster than with numpy ints.
        self._int_actions = isinstance(self.action_space, spaces.Discrete)
        # Observations that are not dicts are written straight into their one buffer.
        self._obs_buffer = next(iter(self.buf_obs.values())) if self.keys == [None] else None
        self.monitor = monitor
        self._t_start = time.time()
        # Return (summed as Monitor sums it: floats in step order, from 0) and length of each env's current episode.
        self._episode_returns = [0.0] * self.num_envs
        self._episode_lengths = [0] * self.num_envs

    def reset(self) -> VecEnvObs:
        self._episode_returns = [0.0] * self.num_envs
        self._episode_lengths = [0] * self.num_envs
        return super().reset()

    def step_wait(self) -> VecEnvStepReturn:
        actions = self.actions
        if self._int_actions and isinstance(actions, np.ndarray) and actions.ndim == 1:
            actions = actions.tolist()
        rewards, dones, infos, obs_buffer = self.buf_rews, self.buf_dones, self.buf_infos, self._obs_buffer
        monitor, returns, lengths = self.monitor, self._episode_returns, self._episode_lengths
        for env_idx, env in enumerate(self.envs):
            obs, reward, terminated, truncated, info = env.step(actions[env_idx])
            rewards[env_idx] = reward
            info = dict(info)
            info["TimeLimit.truncated"] = truncated and not terminated
            done = terminated or truncated
            dones[env_idx] = done
            if monitor:
                returns[env_idx] += float(reward)
                lengths[env_idx] += 1
            if done:
                if monitor:
                    info["episode"] = {
                        "r": round(returns[env_idx], 6),
                        "l": lengths[env_idx],
                        "t": round(time.time() - self._t_start, 6),
                    }
                    returns[env_idx], lengths[env_idx] = 0.0, 0
                info["terminal_observation"] = obs
                obs, self.reset_infos[env_idx] = env.reset()
            infos[env_idx] = info
            if obs_buffer is None:
                self._save_obs(env_idx, obs)
            else:
                obs_buffer[env_idx] = obs
        return self._obs_from_buf(), rewards.copy(), dones.copy(), list(infos)

    def _obs_from_buf(self) -> VecEnvObs:
        if self._obs_buffer is not None:
            return self._obs_buffer.copy()
        return dict_to_obs(self.observation_space, {key: array.copy() for key, array in self.buf_obs.items()})
