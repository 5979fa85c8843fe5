"""VecEnv variants."""

from __future__ import annotations

import numpy as np
from stable_baselines3.common.vec_env import DummyVecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn
from stable_baselines3.common.vec_env.util import dict_to_obs

__all__ = ["LightDummyVecEnv"]


class LightDummyVecEnv(DummyVecEnv):
    """
    SB3's :class:`~stable_baselines3.common.vec_env.DummyVecEnv` without the deep copies of the observation buffer and
    of the info dicts at every step.

    For cheap environments (tabular ones step in a few microseconds) those deep copies cost as much as the step itself.
    Observations are still returned as fresh arrays (``ndarray.copy``), and each step returns new info dicts (a shallow
    copy of what the env returned), so keys added to them later never reach the env; only mutable *values* an env keeps
    and changes in place between steps would be shared, which gymnasium's own environments never do.
    Use it exactly like ``DummyVecEnv``, e.g.
    ``make_vec_env("Taxi-v4", n_envs=8, vec_env_cls=LightDummyVecEnv)``.
    """

    def step_wait(self) -> VecEnvStepReturn:
        for env_idx in range(self.num_envs):
            obs, self.buf_rews[env_idx], terminated, truncated, info = self.envs[env_idx].step(self.actions[env_idx])
            info = dict(info)
            done = terminated or truncated
            self.buf_dones[env_idx] = done
            info["TimeLimit.truncated"] = truncated and not terminated
            if done:
                info["terminal_observation"] = obs
                obs, self.reset_infos[env_idx] = self.envs[env_idx].reset()
            self.buf_infos[env_idx] = info
            self._save_obs(env_idx, obs)
        return self._obs_from_buf(), np.copy(self.buf_rews), np.copy(self.buf_dones), list(self.buf_infos)

    def _obs_from_buf(self) -> VecEnvObs:
        return dict_to_obs(self.observation_space, {key: array.copy() for key, array in self.buf_obs.items()})
