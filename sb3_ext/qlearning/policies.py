"""Tabular policy: a Q-table held as a torch buffer, so SB3's save/load and get/set_parameters work unchanged."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy

__all__ = ["TabularPolicy", "check_not_gym_reset_tuple", "table_shape"]


def check_not_gym_reset_tuple(observation: Any) -> None:
    """
    Refuse an ``(obs, info)`` tuple with the message SB3's ``BasePolicy.predict`` gives: it comes from mixing the Gym
    API (``obs, info = env.reset()``) with SB3's VecEnv API (``obs = vec_env.reset()``).

    :param observation: what was given to ``predict``
    :raises ValueError: for a pair whose second item is a dict
    """
    if isinstance(observation, tuple) and len(observation) == 2 and isinstance(observation[1], dict):
        raise ValueError(
            "You have passed a tuple to the predict() function instead of a Numpy array or a Dict. "
            "You are probably mixing Gym API with SB3 VecEnv API: `obs, info = env.reset()` (Gym) "
            "vs `obs = vec_env.reset()` (SB3 VecEnv). "
            "See related issue https://github.com/DLR-RM/stable-baselines3/issues/1694 "
            "and documentation for more information: "
            "https://stable-baselines3.readthedocs.io/en/master/guide/vec_envs.html#vecenv-api-vs-gym-api"
        )


def table_shape(observation_space: spaces.Space) -> np.ndarray:
    """
    The size of each discrete component of an observation space that a table can index.

    :param observation_space: ``Discrete``, ``MultiDiscrete``, ``MultiBinary`` or ``Tuple`` of ``Discrete``
    :return: the sizes, e.g. ``[32, 11, 2]`` for Blackjack-v1 (a ``MultiBinary(n)`` space has ``n`` components of 2)
    :raises ValueError: for any other space (a ``Box`` gets a pointer to :class:`~sb3_ext.wrappers.DiscretizeObservation`)
    """
    if isinstance(observation_space, spaces.Discrete):
        return np.array([observation_space.n], dtype=np.int64)
    if isinstance(observation_space, spaces.MultiDiscrete) and observation_space.nvec.ndim == 1:
        return observation_space.nvec.astype(np.int64)
    if isinstance(observation_space, spaces.MultiBinary):
        return np.full(int(np.prod(observation_space.shape)), 2, dtype=np.int64)
    if isinstance(observation_space, spaces.Tuple) and all(isinstance(s, spaces.Discrete) for s in observation_space.spaces):
        return np.array([s.n for s in observation_space.spaces], dtype=np.int64)  # type: ignore[attr-defined]
    hint = (
        "; wrap the env in sb3_ext.wrappers.DiscretizeObservation(env, bins=...) to learn it tabularly"
        if isinstance(observation_space, spaces.Box)
        else ""
    )
    raise ValueError(
        f"a Q-table cannot index observation space {observation_space}: "
        f"supported are Discrete, MultiDiscrete, MultiBinary and Tuple of Discrete{hint}"
    )


class TabularPolicy(BasePolicy):
    """
    Greedy policy over a Q-table of shape ``(n_states, n_actions)`` (two tables for double Q-learning).

    Observations of a ``MultiDiscrete``, ``MultiBinary`` or ``Tuple`` of ``Discrete`` space are mapped to one row
    index (row-major over the components; a ``MultiBinary(n)`` observation is ``n`` binary components). The tables
    are torch buffers in the ``state_dict``; :attr:`tables` is a numpy view of the same memory that the algorithm
    updates in place.

    :param observation_space: ``Discrete``, ``MultiDiscrete``, ``MultiBinary`` or ``Tuple`` of ``Discrete``
    :param action_space: ``Discrete``
    :param initial_q_value: value every entry starts at (a high value gives optimistic initialisation)
    :param n_tables: 1, or 2 for double Q-learning (actions are then greedy with respect to their sum)
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        initial_q_value: float = 0.0,
        n_tables: int = 1,
    ) -> None:
        super().__init__(observation_space, action_space)
        if not isinstance(action_space, spaces.Discrete):
            raise ValueError(f"a Q-table needs a Discrete action space, got {action_space}")
        if n_tables not in (1, 2):
            raise ValueError(f"n_tables must be 1 or 2, got {n_tables}")
        self.initial_q_value = float(initial_q_value)
        self.n_tables = n_tables
        self.dims = table_shape(observation_space)
        self._starts = self._component_starts(observation_space)
        self._rows_are_observations = isinstance(observation_space, spaces.Discrete) and observation_space.start == 0
        self.n_states = int(np.prod(self.dims))
        self.n_actions = int(action_space.n)
        self.register_buffer(
            "q_tables", th.full((n_tables, self.n_states, self.n_actions), self.initial_q_value, dtype=th.float64)
        )
        self._share_tables()

    @staticmethod
    def _component_starts(observation_space: spaces.Space) -> np.ndarray:
        if isinstance(observation_space, spaces.Discrete):
            return np.array([observation_space.start], dtype=np.int64)
        if isinstance(observation_space, spaces.MultiDiscrete):
            return np.asarray(observation_space.start, dtype=np.int64).reshape(-1)
        if isinstance(observation_space, spaces.MultiBinary):
            return np.zeros(int(np.prod(observation_space.shape)), dtype=np.int64)
        return np.array([s.start for s in observation_space.spaces], dtype=np.int64)  # type: ignore[attr-defined]

    def _share_tables(self) -> None:
        """Numpy views of the tables buffer (same memory): :attr:`tables`, and :attr:`flat_tables` for flat indexing."""
        self.tables: np.ndarray = self.get_buffer("q_tables").numpy()
        self.flat_tables: np.ndarray = self.tables.reshape(-1)
        self._first_table: np.ndarray = self.tables[0]

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._share_tables()

    def _apply(self, fn: Any, recurse: bool = True) -> TabularPolicy:
        # The table is updated through a numpy view: it stays on the CPU whatever device is asked for.
        return self

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return dict(
            observation_space=self.observation_space,
            action_space=self.action_space,
            initial_q_value=self.initial_q_value,
            n_tables=self.n_tables,
        )

    @property
    def q_values(self) -> np.ndarray:
        """Q-values used for acting: the table, or the mean of both tables for double Q-learning."""
        return self.tables[0] if self.n_tables == 1 else self.tables.mean(axis=0)

    def obs_to_index(self, observation: Any) -> tuple[np.ndarray, bool]:
        """
        Map observations to table rows.

        :param observation: one observation or a batch (as a VecEnv returns them; a tuple of arrays for ``Tuple`` spaces)
        :return: the row indices (1-D) and whether the input was a batch
        """
        if self._rows_are_observations and isinstance(observation, np.ndarray) and observation.ndim == 1:
            return observation, True  # a VecEnv batch of a Discrete space starting at 0: already row indices
        if isinstance(self.observation_space, spaces.Discrete):
            obs = np.asarray(observation, dtype=np.int64)
            batch = obs.ndim > 0
            return obs.reshape(-1) - self._starts[0], batch
        if isinstance(self.observation_space, spaces.Tuple):
            parts = [np.asarray(o, dtype=np.int64) for o in observation]
            batch = parts[0].ndim > 0
            obs = np.stack([p.reshape(-1) for p in parts], axis=-1)
        else:  # MultiDiscrete, MultiBinary
            obs = np.asarray(observation, dtype=np.int64)
            batch = obs.ndim > len(self.observation_space.shape)  # type: ignore[arg-type]
            obs = obs.reshape(-1, len(self.dims))
        return np.ravel_multi_index(tuple((obs - self._starts).T), tuple(self.dims)), batch

    def checked_obs_to_index(self, observation: Any) -> tuple[np.ndarray, bool]:
        """
        :meth:`obs_to_index` for observations from outside a training loop (``predict``): refuses an ``(obs, info)``
        tuple with SB3's message and observations outside the observation space with one clear line.

        :param observation: one observation or a batch
        :return: the row indices (1-D) and whether the input was a batch
        :raises ValueError: for an ``(obs, info)`` tuple or an observation the space does not contain
        """
        check_not_gym_reset_tuple(observation)
        try:
            states, batch = self.obs_to_index(observation)
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"observation {observation!r} does not belong to the observation space {self.observation_space}: {error}"
            ) from None
        if states.size and not (0 <= states.min() and states.max() < self.n_states):
            raise ValueError(f"observation {observation!r} does not belong to the observation space {self.observation_space}")
        return states, batch

    def rows(self, states: np.ndarray) -> np.ndarray:
        """
        :param states: table rows
        :return: the Q-values used for acting at these rows (summed over both tables for double Q-learning)
        """
        # (``take`` costs a third of fancy indexing for the few rows of one step)
        return self._first_table.take(states, axis=0) if self.n_tables == 1 else self.tables[:, states].sum(axis=0)

    def greedy(self, states: np.ndarray) -> np.ndarray:
        """
        :param states: table rows
        :return: the greedy action of each row (the first one on ties)
        """
        return self.rows(states).argmax(axis=-1)

    def predict(
        self,
        observation: Any,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """
        Greedy actions from the table (a tabular policy acts greedily; exploration belongs to the algorithm).

        :param observation: one observation or a batch
        :param state: unused (no recurrent state)
        :param episode_start: unused
        :param deterministic: unused: the greedy action is deterministic
        :return: the actions (an ``ndarray``: shape ``(n,)`` for a batch, ``()`` for one observation) and ``None``
        """
        states, batch = self.checked_obs_to_index(observation)
        actions = self.greedy(states)
        return (actions if batch else actions.reshape(())), None

    def _predict(self, observation: Any, deterministic: bool = False) -> th.Tensor:
        obs = observation.cpu().numpy() if isinstance(observation, th.Tensor) else observation
        return th.as_tensor(self.predict(obs)[0])

    def forward(self, observation: Any, deterministic: bool = False) -> th.Tensor:
        return self._predict(observation, deterministic)
