"""Gymnasium wrappers that sb3-ext's algorithms rely on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

__all__ = ["DiscretizeObservation"]


class DiscretizeObservation(gym.ObservationWrapper):
    """
    Turn a ``Box`` observation into a ``MultiDiscrete`` one by cutting each dimension into equal bins,
    so that tabular methods (:class:`~sb3_ext.QLearning`) can learn environments such as MountainCar-v0 or CartPole-v1.

    Values outside ``[low, high]`` fall into the first or last bin.

    :param env: environment with a 1-D ``Box`` observation space
    :param bins: bins per dimension (one number for all, or one per dimension), each >= 1
    :param low: lower bounds (default: the space's); needed where the space is unbounded
    :param high: upper bounds (default: the space's); needed where the space is unbounded
    """

    def __init__(
        self,
        env: gym.Env,
        bins: int | Sequence[int] = 10,
        low: float | Sequence[float] | None = None,
        high: float | Sequence[float] | None = None,
    ) -> None:
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, spaces.Box) or len(space.shape) != 1:
            raise ValueError(f"DiscretizeObservation needs a 1-D Box observation space, got {space}")
        n_dims = space.shape[0]
        self.bins = np.broadcast_to(np.asarray(bins, dtype=np.int64), (n_dims,)).copy()
        if (self.bins < 1).any():
            raise ValueError(f"bins must be >= 1 in every dimension, got {self.bins.tolist()}")
        self.low = np.broadcast_to(np.asarray(space.low if low is None else low, dtype=np.float64), (n_dims,)).copy()
        self.high = np.broadcast_to(np.asarray(space.high if high is None else high, dtype=np.float64), (n_dims,)).copy()
        unbounded = np.flatnonzero(~np.isfinite(self.low) | ~np.isfinite(self.high))
        if len(unbounded) > 0:
            raise ValueError(
                f"observation dimensions {unbounded.tolist()} are unbounded in {space}: pass low=... and high=... "
                "to DiscretizeObservation (e.g. low=[-2.4, -3, -0.21, -3], high=[2.4, 3, 0.21, 3] for CartPole-v1)"
            )
        if (self.high <= self.low).any():
            raise ValueError(f"high must be > low in every dimension, got low={self.low.tolist()}, high={self.high.tolist()}")
        self._scale = self.bins / (self.high - self.low)
        self.observation_space = spaces.MultiDiscrete(self.bins)

    def observation(self, observation: Any) -> np.ndarray:
        """
        :param observation: the ``Box`` observation
        :return: the bin index of each dimension
        """
        index = np.floor((np.asarray(observation, dtype=np.float64) - self.low) * self._scale).astype(np.int64)
        return np.clip(index, 0, self.bins - 1)
