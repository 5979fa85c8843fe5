"""Replay buffers that Stable-Baselines3 does not ship."""

from __future__ import annotations

import functools
import math
import sys
import warnings
from collections.abc import Generator
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import BaseBuffer, DictReplayBuffer, NStepReplayBuffer
from stable_baselines3.common.preprocessing import get_obs_shape
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.utils import obs_as_tensor
from stable_baselines3.common.vec_env import VecNormalize

from sb3_ext.common.rank_order import RankOrder
from sb3_ext.common.segment_tree import SumTree
from sb3_ext.common.type_aliases import EpisodeBufferSamples, PrioritizedReplayBufferSamples
from sb3_ext.errors import suggest

__all__ = ["DictPrioritizedReplayBuffer", "EpisodeBuffer", "PrioritizedReplayBuffer", "discounted_returns"]


def discounted_returns(rewards: np.ndarray, dones: np.ndarray, bootstrap_values: np.ndarray, gamma: float) -> np.ndarray:
    """
    Discounted reward-to-go of every step, computed backwards over steps taken by ``n_envs`` envs side by side:
    ``G_t = r_t + gamma * G_{t+1}`` inside an episode and ``G_t = r_t + gamma * b_t`` at an episode's last step,
    where ``b_t`` is the bootstrap value given for that step (0 for a true end).

    Steps after an env's last ``done`` belong to an episode that has not finished: their returns are those of an
    episode cut there without bootstrap, and a caller that wants Monte-Carlo returns must not use them.

    The sums are taken in float64. A return smaller in magnitude than float32's smallest normal number (about
    ``1.2e-38``, e.g. a reward discounted by ``gamma ** k`` for a small ``gamma`` and a long episode) is set to
    exactly 0, so no subnormal number is ever made and nothing underflows, even under ``np.seterr(all="raise")``.

    :param rewards: rewards, shape ``(n_steps, n_envs)``
    :param dones: whether an episode ended at that step (terminated or truncated), shape ``(n_steps, n_envs)``
    :param bootstrap_values: value added (discounted) after an episode's last step, shape ``(n_steps, n_envs)``;
        read only where ``dones`` is true
    :param gamma: discount factor
    :return: the returns, float32, shape ``(n_steps, n_envs)``
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    dones = np.asarray(dones, dtype=bool)
    bootstrap_values = np.asarray(bootstrap_values, dtype=np.float64)
    smallest_normal = float(np.finfo(np.float32).tiny)
    returns = np.zeros_like(rewards)
    next_return = np.zeros(rewards.shape[1:], dtype=np.float64)
    # With returns flushed to 0 below float32's smallest normal, a product gamma * G (or gamma * b, b a float32) can
    # underflow only for gamma < 2 ** -873. Ignoring that underflow is harmless: it means the product was rounded to
    # a float64 subnormal or 0, an absolute error under 2 ** -1074, far below float32's smallest step (2 ** -149).
    with np.errstate(under="ignore"):
        for step in reversed(range(len(rewards))):
            next_return = rewards[step] + gamma * np.where(dones[step], bootstrap_values[step], next_return)
            next_return[np.abs(next_return) < smallest_normal] = 0.0
            returns[step] = next_return
    # Every return is 0 or at least float32's smallest normal in magnitude: the cast cannot underflow. (It can
    # overflow, where a return exceeds float32's range, and then it should raise.)
    return returns.astype(np.float32)


class EpisodeBuffer(BaseBuffer):
    """
    Rollout buffer of complete episodes, for Monte-Carlo policy gradient (REINFORCE). It is modelled on SB3's
    ``RolloutBuffer`` (:meth:`reset`, :meth:`add` one step of every env, :meth:`compute_returns_and_advantage`,
    :meth:`get`), with what a batch of whole episodes needs instead of a fixed number of steps:

    - a rollout lasts until every env has finished the episodes of its batch, so the storage is not of fixed length:
      it starts at ``buffer_size`` steps per env and doubles when full (it is kept, not reallocated, across rollouts);
    - every step of every env is *kept* (it belongs to an episode of the batch) or not (the env was waiting for the
      others to finish); :meth:`get` yields the kept steps only, and :attr:`discarded_steps` counts the others;
    - an episode's last step (``dones``) bootstraps from the value given with it (``bootstrap_values``: ``V`` of the
      final observation after a time-limit truncation, 0 after a termination), and no return bootstraps anywhere else:
      the returns are Monte-Carlo (``gae_lambda`` 1).

    Observations of ``Dict`` spaces are stored key by key (one class for both, where SB3 has ``DictRolloutBuffer``).

    :param buffer_size: steps per env the storage starts with (it grows as needed)
    :param observation_space: observation space
    :param action_space: action space
    :param device: PyTorch device of the samples
    :param gae_lambda: must be 1 (Monte-Carlo returns); accepted for the signature of SB3's ``RolloutBuffer``
    :param gamma: discount factor
    :param n_envs: number of parallel environments
    """

    observations: np.ndarray | dict[str, np.ndarray]
    actions: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    bootstrap_values: np.ndarray
    kept: np.ndarray
    returns: np.ndarray
    episode_lengths: np.ndarray

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        gae_lambda: float = 1.0,
        gamma: float = 0.99,
        n_envs: int = 1,
    ) -> None:
        if gae_lambda != 1.0:
            raise ValueError(f"an EpisodeBuffer computes Monte-Carlo returns: gae_lambda must be 1, got {gae_lambda}")
        if buffer_size < 1:
            raise ValueError(f"buffer_size must be >= 1, got {buffer_size}")
        super().__init__(buffer_size, observation_space, action_space, device, n_envs=n_envs)
        self.gamma = gamma
        self.observations = self._empty_observations(buffer_size)
        self.actions = np.zeros((buffer_size, n_envs, self.action_dim), dtype=np.float32)
        self.rewards = np.zeros((buffer_size, n_envs), dtype=np.float32)
        self.dones = np.zeros((buffer_size, n_envs), dtype=bool)
        self.bootstrap_values = np.zeros((buffer_size, n_envs), dtype=np.float32)
        self.kept = np.zeros((buffer_size, n_envs), dtype=bool)
        self.reset()

    def _empty_observations(self, size: int) -> np.ndarray | dict[str, np.ndarray]:
        space, shapes = self.observation_space, get_obs_shape(self.observation_space)
        if isinstance(space, spaces.Dict) and isinstance(shapes, dict):
            return {key: np.zeros((size, self.n_envs, *shape), dtype=space[key].dtype) for key, shape in shapes.items()}
        assert isinstance(shapes, tuple)
        return np.zeros((size, self.n_envs, *shapes), dtype=space.dtype)

    def reset(self) -> None:
        """Empty the buffer for the next rollout (the storage is kept)."""
        super().reset()
        self.returns = np.zeros((0, self.n_envs), dtype=np.float32)
        self.episode_lengths = np.zeros(0, dtype=np.int64)
        self._flat: EpisodeBufferSamples | None = None

    @property
    def n_episodes(self) -> int:
        """Number of complete episodes of the batch (0 until :meth:`compute_returns_and_advantage`)."""
        return len(self.episode_lengths)

    @property
    def discarded_steps(self) -> int:
        """Env steps of the rollout that belong to no episode of the batch (envs waiting for the others)."""
        return int(self.pos * self.n_envs - np.count_nonzero(self.kept[: self.pos]))

    def _grow(self) -> None:
        """Double the storage, keeping what it holds."""
        size = 2 * self.buffer_size

        def grown(array: np.ndarray) -> np.ndarray:
            bigger = np.zeros((size, *array.shape[1:]), dtype=array.dtype)
            bigger[: self.buffer_size] = array
            return bigger

        if isinstance(self.observations, dict):
            self.observations = {key: grown(value) for key, value in self.observations.items()}
        else:
            self.observations = grown(self.observations)
        self.actions, self.rewards, self.dones = grown(self.actions), grown(self.rewards), grown(self.dones)
        self.bootstrap_values, self.kept = grown(self.bootstrap_values), grown(self.kept)
        self.buffer_size = size

    def add(
        self,
        obs: np.ndarray | dict[str, np.ndarray],
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        kept: np.ndarray,
        bootstrap_value: np.ndarray,
    ) -> None:
        """
        Store one step of every env.

        :param obs: the observations the actions were taken in, shape ``(n_envs, *obs_shape)`` (or a dict of them)
        :param action: the actions as the policy sampled them, shape ``(n_envs, *action_shape)``
        :param reward: the rewards, shape ``(n_envs,)``
        :param done: whether this step ended the env's episode (terminated, truncated, or cut), shape ``(n_envs,)``
        :param kept: whether the step belongs to an episode of the batch, shape ``(n_envs,)``
        :param bootstrap_value: value the return bootstraps from after an episode's last step (read where ``done``),
            shape ``(n_envs,)``
        """
        if self.pos == self.buffer_size:
            self._grow()
        pos, n_envs = self.pos, self.n_envs
        if isinstance(self.observations, dict):
            assert isinstance(obs, dict)
            for key, storage in self.observations.items():
                storage[pos] = np.asarray(obs[key]).reshape((n_envs, *storage.shape[2:]))
        else:
            # (a Discrete observation space gives shape (n_envs,); the storage has (n_envs, 1), as RolloutBuffer's)
            self.observations[pos] = np.asarray(obs).reshape((n_envs, *self.observations.shape[2:]))
        self.actions[pos] = np.asarray(action).reshape((n_envs, self.action_dim))
        self.rewards[pos] = reward
        self.dones[pos] = done
        self.kept[pos] = kept
        self.bootstrap_values[pos] = bootstrap_value
        self.pos += 1

    def compute_returns_and_advantage(self) -> None:
        """
        Compute the discounted reward-to-go of every step (:func:`discounted_returns`) and the lengths of the batch's
        episodes, env after env. Call it once the rollout holds only complete episodes in its kept steps.
        """
        pos = self.pos
        self.returns = discounted_returns(self.rewards[:pos], self.dones[:pos], self.bootstrap_values[:pos], self.gamma)
        # The kept steps of an env are whole episodes: their lengths are the gaps between their last steps
        env_of_end, step_of_end = np.nonzero((self.dones[:pos] & self.kept[:pos]).T)
        previous_end = np.empty_like(step_of_end)
        if len(step_of_end):
            previous_end[0] = -1
            previous_end[1:] = np.where(env_of_end[1:] == env_of_end[:-1], step_of_end[:-1], -1)
        self.episode_lengths = (step_of_end - previous_end).astype(np.int64)
        self._flat = None

    def _flatten(self) -> EpisodeBufferSamples:
        """All kept steps as tensors, env after env (episode after episode of the first env, then of the second...)."""
        if self._flat is None:
            kept = self.kept[: self.pos].T

            def flat(array: np.ndarray) -> np.ndarray:
                return array[: self.pos].swapaxes(0, 1)[kept]

            if isinstance(self.observations, dict):
                observations: Any = {key: flat(value) for key, value in self.observations.items()}
            else:
                observations = flat(self.observations)
            self._flat = EpisodeBufferSamples(
                obs_as_tensor(observations, self.device),
                self.to_torch(flat(self.actions)),
                self.to_torch(self.returns.T[kept]),
            )
        return self._flat

    def get(self, batch_size: int | None = None) -> Generator[EpisodeBufferSamples, None, None]:
        """
        The kept steps, all at once in their order (``batch_size=None``) or in shuffled minibatches.

        :param batch_size: minibatch size, or None for one batch of every kept step
        :return: a generator of samples
        """
        if self.n_episodes == 0:
            raise RuntimeError("the EpisodeBuffer holds no complete episode: collect a rollout first")
        samples = self._flatten()
        if batch_size is None:
            yield samples
            return
        indices = np.random.permutation(len(samples.returns))
        for start in range(0, len(indices), batch_size):
            yield self._get_samples(indices[start : start + batch_size])

    def _get_samples(self, batch_inds: np.ndarray, env: VecNormalize | None = None) -> EpisodeBufferSamples:  # type: ignore[override]
        samples, index = self._flatten(), th.as_tensor(batch_inds, device=self.device)
        if isinstance(samples.observations, dict):
            observations: Any = {key: value[index] for key, value in samples.observations.items()}
        else:
            observations = samples.observations[index]
        return EpisodeBufferSamples(observations, samples.actions[index], samples.returns[index])


class PrioritizedReplayBuffer(NStepReplayBuffer):
    """
    Prioritized experience replay (Schaul et al. 2016, https://arxiv.org/abs/1511.05952), proportional, rank-based or
    loss-adjusted, with optional n-step returns: SB3's ``NStepReplayBuffer`` storage and return computation, sampled by
    priority.

    Every stored transition, one per (position, env), has its own priority ``p``, so all envs of a VecEnv are sampled;
    :meth:`update_priorities` sets it from the TD error ``delta`` (or the per-sample loss, for Rainbow) after a training
    step, and new transitions enter at the largest priority given so far (:attr:`max_priority`, written in one batch
    when the buffer is next read). The ``prioritization`` decides what sampling is proportional to:

    - ``"proportional"``: ``p = |delta| + eps``, sampled with probability ``P(i) = p_i ** alpha / sum_k p_k ** alpha``.
      A batch is drawn by stratified sampling: one value uniformly in each of ``batch_size`` equal segments of the
      total, each mapped to its transition by a vectorised :class:`~sb3_ext.common.segment_tree.SumTree` search.
    - ``"rank"`` (section 3.3 of the paper): ``p = |delta|``, and the transition of rank ``r`` (1 for the largest
      priority) is sampled with probability ``P(r) = (1 / r) ** alpha / sum_k (1 / k) ** alpha``, which is insensitive
      to outliers and to the scale of the errors. A batch is drawn by stratified sampling in rank space: one value
      uniformly in each of ``batch_size`` equal-probability segments of the cumulative distribution (computed once per
      ``alpha`` over the buffer's capacity), its rank found in three steps (a binary search over every 64th sum,
      then 8 sums at a time, twice) and mapped to its transition through a
      :class:`~sb3_ext.common.rank_order.RankOrder`. Like the binary heap of the paper (and sony/nnabla-rl's
      rank-based buffer), the order is only approximately sorted: an update stores the new priority at once, re-ranks
      the top :data:`RANK_TOP` ranks (those sampled most) every time and all transitions every
      ``rank_sort_interval`` updates, where the cost of the sort
      (linear in the buffer's size, plus ``m log m`` for the ``m`` priorities changed since the last one) is spread
      over the updates. New transitions enter at the top (rank 1, the newest first) until they are re-ranked.
    - ``"lap"`` (Fujimoto et al. 2020, https://arxiv.org/abs/2007.06049, loss-adjusted prioritization):
      ``p = max(|delta|, 1)``, so ``p ** alpha = max(|delta| ** alpha, 1)``, sampled as ``"proportional"``, and every
      importance-sampling weight is 1: the algorithm takes the Huber loss instead.

    Each sample is named by one integer, ``position * n_envs + env``: :meth:`sample` returns them as ``indices``, and
    :meth:`update_priorities` takes them back (the convention of cpprb and Tianshou).

    The samples carry importance-sampling weights ``w_i = (N * P(i)) ** -beta / max_j (N * P(j)) ** -beta``, where ``N``
    is the number of stored transitions and the max runs over the batch (Schaul et al., Algorithm 1), so the largest
    weight of every batch is 1; the ``N`` and the totals cancel: ``w_i = (q_i / min_j q_j) ** -beta``, for ``q`` what
    sampling is proportional to (``p ** alpha``, or ``(1 / rank) ** alpha``). Normalising by the smallest ``q`` of the
    whole buffer instead would scale every update by ``(q_min / q_i) ** beta``: once one stored transition has a TD
    error near 0 (priority ``eps``), that shrinks the step size by orders of magnitude and stalls learning.

    Episode ends follow SB3: with ``handle_timeout_termination`` (the default), a time-limit truncation is not a
    termination (the target bootstraps from the final observation); rewards and observations are normalised at
    sampling time when a ``VecNormalize`` env is given, as in SB3's buffers.

    :param buffer_size: maximum number of transitions (over all envs)
    :param observation_space: observation space (``Dict`` spaces: :class:`DictPrioritizedReplayBuffer`)
    :param action_space: action space
    :param device: PyTorch device of the sampled tensors
    :param n_envs: number of parallel environments
    :param optimize_memory_usage: store each observation once (next observations are read from the next position);
        only with ``n_steps=1`` and ``handle_timeout_termination=False``, as in SB3's ``ReplayBuffer``
    :param handle_timeout_termination: bootstrap after time-limit truncations
        (https://github.com/DLR-RM/stable-baselines3/issues/284)
    :param n_steps: length of the returns (1: one-step transitions)
    :param gamma: discount of the n-step returns (must be the algorithm's)
    :param alpha: prioritisation exponent, >= 0 (0: uniform sampling)
    :param beta: importance-sampling exponent in [0, 1] (1: full correction); see :meth:`set_beta`
    :param eps: added to the absolute TD errors so that no priority is 0, > 0 (proportional prioritization)
    :param prioritization: ``"proportional"``, ``"rank"`` or ``"lap"``, as above (:data:`PRIORITIZATIONS`)
    :param rank_sort_interval: with ``"rank"``, priority updates between two sorts of all transitions, >= 1; None: one
        per 1000 transitions the buffer holds (``buffer_size // 1000``, at least 1), so that the sort's cost per update
        stays about the same whatever the size

    A buffer that is sampled :data:`UNIFORM_WARNING_AFTER` times without any priority update warns once: the algorithm
    using it does not prioritize (SB3's ``SAC``, ``DQN``...), so it samples uniformly; the warning names the prioritized
    variant to use.
    """

    #: whether the observations are stored key by key (:class:`DictPrioritizedReplayBuffer`)
    _dict_observations = False
    #: (defaults of buffers pickled before these attributes existed)
    prioritization = "proportional"
    _samples_without_update = 0
    _priorities_updated = False
    rank_sort_interval: int | None = None

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        n_steps: int = 1,
        gamma: float = 0.99,
        alpha: float = 0.6,
        beta: float = 0.4,
        eps: float = 1e-6,
        prioritization: str = "proportional",
        rank_sort_interval: int | None = None,
    ) -> None:
        if prioritization not in PRIORITIZATIONS:
            raise ValueError(
                f"unknown prioritization {prioritization!r}{suggest(str(prioritization), PRIORITIZATIONS)} "
                f"(valid: {', '.join(PRIORITIZATIONS)})"
            )
        if isinstance(observation_space, spaces.Dict) is not self._dict_observations:
            raise ValueError(
                "Dict observation spaces need DictPrioritizedReplayBuffer"
                if self._dict_observations is False
                else "DictPrioritizedReplayBuffer needs a Dict observation space: use PrioritizedReplayBuffer"
            )
        if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
            raise ValueError(f"n_steps must be an integer >= 1, got {n_steps!r}")
        if not alpha >= 0:
            raise ValueError(f"alpha must be >= 0 (0 samples uniformly), got {alpha}")
        _check_beta(beta)
        if not eps > 0:
            raise ValueError(f"eps must be > 0 so that no priority is 0, got {eps}")
        if rank_sort_interval is not None and (
            isinstance(rank_sort_interval, bool)
            or not isinstance(rank_sort_interval, (int, np.integer))
            or rank_sort_interval < 1
        ):
            raise ValueError(f"rank_sort_interval must be None or an integer >= 1, got {rank_sort_interval!r}")
        if optimize_memory_usage and n_steps > 1:
            raise ValueError("optimize_memory_usage=True works only with n_steps=1: n-step returns need the next observations")
        super().__init__(
            buffer_size,
            observation_space,
            action_space,
            device,
            n_envs=n_envs,
            optimize_memory_usage=False,  # NStepReplayBuffer refuses it; set below for the one-step case
            handle_timeout_termination=handle_timeout_termination,
            n_steps=n_steps,
            gamma=gamma,
        )
        if optimize_memory_usage:
            if handle_timeout_termination:  # the same refusal as SB3's ReplayBuffer
                raise ValueError(
                    "PrioritizedReplayBuffer does not support optimize_memory_usage = True "
                    "and handle_timeout_termination = True simultaneously."
                )
            self.optimize_memory_usage = True
            del self.next_observations  # next observations are read from the next position
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.eps = float(eps)
        self.prioritization = prioritization
        self.rank_sort_interval = None if rank_sort_interval is None else int(rank_sort_interval)
        self.max_priority = 1.0
        self._env_offsets = np.arange(self.n_envs)
        self._new_priorities()

    def _new_priorities(self) -> None:
        # Leaf ``pos * n_envs + env`` is the transition (pos, env).
        n_leaves = self.buffer_size * self.n_envs
        if self.prioritization == "rank":
            sort_interval = self.rank_sort_interval or max(1, n_leaves // 1000)
            self._prioritizer: _Prioritizer = _RankPrioritizer(n_leaves, sort_interval)
        else:
            self._prioritizer = _PRIORITIZERS[self.prioritization](n_leaves)
        # Rows added since the priorities were last read: they get their priority in one batched write, before any
        # read (no priority changes in between, so it is the largest priority at the time they were added).
        self._pending_rows: list[int] = []

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickle, turning the sum tree of a buffer pickled before prioritizations were objects into one."""
        if "_sum_tree" in state:
            prioritizer = _PRIORITIZERS[state.get("prioritization", "proportional")].__new__(
                _PRIORITIZERS[state.get("prioritization", "proportional")]
            )
            prioritizer.tree = state.pop("_sum_tree")
            state["_prioritizer"] = prioritizer
        self.__dict__.update(state)

    def reset(self) -> None:
        """Empty the buffer, priorities included."""
        super().reset()
        self.max_priority = 1.0
        self._new_priorities()

    def set_beta(self, beta: float) -> None:
        """
        :param beta: the importance-sampling exponent used from now on, in [0, 1]
        """
        _check_beta(beta)
        self.beta = float(beta)

    def priorities(self) -> np.ndarray:
        """
        :return: what sampling is proportional to, for every slot, shape ``(buffer_size, n_envs)``: ``p ** alpha``
            (proportional, LAP) or ``(1 / rank) ** alpha`` (rank-based, with the ranks sampling uses now); 0 where
            nothing that can be sampled is stored
        """
        self._write_pending()
        return self._prioritizer.sampling_priorities(self.alpha).reshape(self.buffer_size, self.n_envs)

    def mean_priority(self) -> float:
        """
        :return: the mean of :meth:`priorities` (what sampling is proportional to) over the transitions that can be
            sampled, from the sum tree's total (for rank-based prioritization, the mean of ``(1 / r) ** alpha`` over
            the ranks ``r = 1 .. N``, which depends on ``N`` and ``alpha`` only); 0.0 for an empty buffer
        """
        self._write_pending()
        n_rows = self.size() - (1 if self.optimize_memory_usage and self.full else 0)  # (see _write_pending)
        return self._prioritizer.sampling_total(self.alpha) / (n_rows * self.n_envs) if n_rows > 0 else 0.0

    def add(
        self,
        obs: np.ndarray,
        next_obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        """
        Store one transition per env (as SB3's ``ReplayBuffer.add``), each at the largest priority given so far.
        """
        super().add(obs, next_obs, action, reward, done, infos)
        self._pending_rows.append((self.pos - 1) % self.buffer_size)

    def _write_pending(self) -> None:
        """Give the transitions added since the last read the largest priority, in one batched write."""
        if not self._pending_rows:
            return
        rows = self._pending_rows[-self.buffer_size :]  # (older ones were overwritten since)
        self._pending_rows = []
        leaves = (np.array(rows)[:, None] * self.n_envs + self._env_offsets).reshape(-1)
        self._prioritizer.insert(leaves, self.max_priority, self.alpha)
        if self.optimize_memory_usage and self.full:
            # The observation of the transitions at ``pos`` was overwritten by the last add: they must not be sampled.
            self._prioritizer.remove(self.pos * self.n_envs + self._env_offsets)

    def sample(self, batch_size: int, env: VecNormalize | None = None) -> PrioritizedReplayBufferSamples:  # type: ignore[override]
        """
        Sample a batch by priority, with stratified sampling over ``batch_size`` equal segments of the total.

        :param batch_size: number of transitions
        :param env: ``VecNormalize`` env whose statistics normalise the observations and rewards, or None
        :return: the batch, with importance-sampling weights and the indices for :meth:`update_priorities`
        """
        if self.size() == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        if not self._priorities_updated:
            self._samples_without_update += 1
            if self._samples_without_update == UNIFORM_WARNING_AFTER:
                _warn_uniform(type(self).__name__, sys._getframe(1).f_locals.get("self"))
        self._write_pending()
        leaves, weights = self._prioritizer.sample(batch_size, self.alpha, self.beta)
        if self.n_steps == 1:
            samples = self._one_step_samples(leaves, env)
        else:
            batch_inds, env_indices = np.divmod(leaves, self.n_envs)
            samples = self._n_step_samples(batch_inds, env_indices, env)
        return PrioritizedReplayBufferSamples(
            *samples, weights=_as_tensor(weights.reshape(-1, 1), self.device), indices=leaves
        )

    def update_priorities(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        """
        Set the priorities of sampled transitions from their TD errors (for Rainbow the per-sample losses):
        ``|priorities| + eps`` (proportional), ``|priorities|`` (rank-based) or ``max(|priorities|, 1)`` (LAP).

        :param indices: the transitions, as :meth:`sample` returned them: one integer each,
            ``position * n_envs + env``
        :param priorities: their TD errors, same length
        """
        self._write_pending()
        self._priorities_updated = True
        indices = _as_int64(indices, "indices")
        if type(priorities) is not np.ndarray or priorities.dtype != np.float64 or priorities.ndim != 1:
            priorities = np.asarray(priorities, dtype=np.float64).reshape(-1)
        new = self._prioritizer.priority(np.abs(priorities), self.eps)
        if len(indices) != len(new):
            raise ValueError(f"indices and priorities must have the same length, got {len(indices)} and {len(new)}")
        if not len(new):
            return
        largest = float(np.maximum.reduce(new))
        if not math.isfinite(largest):  # the max of an array with a NaN is NaN
            raise ValueError("priorities must be finite")
        stored = self.size() * self.n_envs
        if np.maximum.reduce(indices.view(np.uint64)) >= stored:  # (negative indices are huge unsigned ones)
            raise IndexError(
                f"priority update for a transition not stored: indices are position * n_envs + env, < {stored} here"
            )
        if self.optimize_memory_usage and self.full:
            fresh = indices // self.n_envs != self.pos  # overwritten since it was sampled: keep it unsampled
            indices, new = indices[fresh], new[fresh]
        self.max_priority = max(self.max_priority, largest)
        # Checked above: positive finite priorities of stored transitions.
        self._prioritizer.update(indices, new, self.alpha)

    def _get_samples(
        self, batch_inds: np.ndarray, env: VecNormalize | None = None, env_indices: np.ndarray | None = None
    ) -> ReplayBufferSamples:
        """
        The transitions ``(batch_inds, env_indices)``, with n-step returns computed exactly as SB3's
        ``NStepReplayBuffer`` does.

        :param batch_inds: positions
        :param env: ``VecNormalize`` env to normalise observations and rewards with, or None
        :param env_indices: envs (default: uniformly random, as SB3's buffers choose them)
        :return: the samples; ``discounts`` is None for one-step transitions
        """
        if env_indices is None:
            env_indices = np.random.randint(0, self.n_envs, size=batch_inds.shape)
        if self.n_steps == 1:
            return self._one_step_samples(batch_inds * self.n_envs + env_indices, env)
        return self._n_step_samples(batch_inds, env_indices, env)

    def _one_step_samples(self, flat: np.ndarray, env: VecNormalize | None) -> ReplayBufferSamples:
        """
        SB3's ``ReplayBuffer._get_samples`` for given transitions, reading the storage as ``(buffer_size * n_envs,
        ...)``.

        :param flat: the transitions, ``position * n_envs + env``
        :param env: ``VecNormalize`` env to normalise observations and rewards with, or None
        """
        size = self.buffer_size * self.n_envs
        observations = self._observation_rows(self.observations, flat)
        if self.optimize_memory_usage:  # (the next position's observation, same env)
            next_observations = self._observation_rows(self.observations, (flat + self.n_envs) % size)
        else:
            next_observations = self._observation_rows(self.next_observations, flat)
        # Only dones that are not time-limit truncations stop bootstrapping (timeouts stay 0 without the handling).
        dones = self.dones.reshape(size).take(flat)
        dones *= 1.0 - self.timeouts.reshape(size).take(flat)
        rewards = self.rewards.reshape(size, 1).take(flat, axis=0)
        if env is not None:
            observations, next_observations = env.normalize_obs(observations), env.normalize_obs(next_observations)
            rewards = env.normalize_reward(rewards).astype(np.float32)
        device = self.device
        return ReplayBufferSamples(
            self._observation_tensor(observations),
            _as_tensor(self.actions.reshape(size, self.action_dim).take(flat, axis=0), device),
            self._observation_tensor(next_observations),
            _as_tensor(dones.reshape(-1, 1), device),
            _as_tensor(rewards, device),
        )

    def _observation_rows(self, storage: Any, flat: np.ndarray) -> Any:
        """
        The rows ``flat`` (``position * n_envs + env``) of an observation storage of shape ``(buffer_size, n_envs,
        ...)``, as one take (a dict of them in :class:`DictPrioritizedReplayBuffer`).
        """
        return _rows(storage, flat)

    def _observation_tensor(self, observations: Any) -> Any:
        """:func:`_as_tensor` of sampled observations (a dict of them in :class:`DictPrioritizedReplayBuffer`)."""
        return _as_tensor(observations, self.device)

    def _n_step_samples(
        self, batch_inds: np.ndarray, env_indices: np.ndarray, env: VecNormalize | None
    ) -> ReplayBufferSamples:
        """SB3's ``NStepReplayBuffer._get_samples`` for given envs (same arithmetic, so the same returns)."""
        # The transition at pos - 1 is the newest: a sequence must not run past it into older data, so it counts as
        # truncated there unless it is done (SB3 marks it in ``timeouts`` for the duration of the call).
        last_valid_index = (self.pos - 1) % self.buffer_size
        steps = np.arange(self.n_steps).reshape(1, -1)
        indices = (batch_inds[:, None] + steps) % self.buffer_size  # [batch, n_steps]
        envs = env_indices[:, None]

        rewards_seq = self._normalize_reward(self.rewards[indices, envs], env)
        dones_seq = self.dones[indices, envs]
        truncated_seq = np.logical_or(self.timeouts[indices, envs], (indices == last_valid_index) & (dones_seq == 0))

        # 1 until the first done or truncation (inclusive)
        done_or_truncated = np.logical_or(dones_seq, truncated_seq)
        done_idx = done_or_truncated.argmax(axis=1)
        done_idx = np.where(done_or_truncated.any(axis=1), done_idx, self.n_steps - 1)
        mask = steps <= done_idx[:, None]
        # gamma ** n, or fewer steps when the sequence ends early
        target_q_discounts = self.gamma ** mask.sum(axis=1, keepdims=True).astype(np.float32)
        discounts = self.gamma ** np.arange(self.n_steps, dtype=np.float32).reshape(1, -1)
        n_step_returns = (rewards_seq * discounts * mask).sum(axis=1, keepdims=True)

        # Next observation and done flag at the end of each sequence
        last_indices = (batch_inds + done_idx) % self.buffer_size
        next_obs = self._normalize_obs(
            self._observation_rows(self.next_observations, last_indices * self.n_envs + env_indices), env
        )
        next_dones = self.dones[last_indices, env_indices][:, None].astype(np.float32)
        next_timeouts = self.timeouts[last_indices, env_indices][:, None].astype(np.float32)
        final_dones = next_dones * (1.0 - next_timeouts)

        obs = self._normalize_obs(self._observation_rows(self.observations, batch_inds * self.n_envs + env_indices), env)
        actions = self.actions[batch_inds, env_indices]
        return ReplayBufferSamples(
            observations=self._observation_tensor(obs),
            actions=self.to_torch(actions),
            next_observations=self._observation_tensor(next_obs),
            dones=self.to_torch(final_dones),
            rewards=self.to_torch(n_step_returns),
            discounts=self.to_torch(target_q_discounts),
        )


class DictPrioritizedReplayBuffer(PrioritizedReplayBuffer, DictReplayBuffer):  # type: ignore[misc]  # (storage of one, sampling of the other)
    """
    :class:`PrioritizedReplayBuffer` for ``Dict`` observation spaces: SB3's ``DictReplayBuffer`` storage (one array per
    key), with the same priorities, n-step returns and samples (their observations are dicts of tensors).

    :param buffer_size: maximum number of transitions (over all envs)
    :param observation_space: observation space (Dict)
    :param action_space: action space
    :param device: PyTorch device of the sampled tensors
    :param n_envs: number of parallel environments
    :param optimize_memory_usage: not supported (as in SB3's ``DictReplayBuffer``)
    :param handle_timeout_termination: bootstrap after time-limit truncations
    :param n_steps: length of the returns (1: one-step transitions)
    :param gamma: discount of the n-step returns (must be the algorithm's)
    :param alpha: prioritisation exponent, >= 0 (0: uniform sampling)
    :param beta: importance-sampling exponent in [0, 1] (1: full correction)
    :param eps: added to the absolute priorities so that none is 0, > 0
    :param prioritization: ``"proportional"``, ``"rank"`` or ``"lap"``
    :param rank_sort_interval: with ``"rank"``, priority updates between two sorts of all transitions (None: one per
        1000 transitions the buffer holds)
    """

    observations: dict[str, np.ndarray]
    next_observations: dict[str, np.ndarray]
    _dict_observations = True

    def _observation_rows(self, storage: dict[str, np.ndarray], flat: np.ndarray) -> dict[str, np.ndarray]:
        return {key: _rows(value, flat) for key, value in storage.items()}

    def _observation_tensor(self, observations: dict[str, np.ndarray]) -> dict[str, th.Tensor]:
        return {key: _as_tensor(np.ascontiguousarray(value), self.device) for key, value in observations.items()}


#: The prioritizations :class:`PrioritizedReplayBuffer` implements (its ``prioritization`` argument)
PRIORITIZATIONS = ("proportional", "rank", "lap")
#: Samples without any priority update after which a :class:`PrioritizedReplayBuffer` warns that it is used uniformly
UNIFORM_WARNING_AFTER = 100
#: Ranks that rank-based prioritization re-ranks at every priority update (between two sorts of all transitions)
RANK_TOP = 256


class _Prioritizer:
    """
    What a prioritization keeps and how it samples: the priorities of a :class:`PrioritizedReplayBuffer`'s leaves
    (transitions ``position * n_envs + env``), one subclass per prioritization. The buffer checks the arguments; its
    ``alpha`` is passed to each call (it may be changed between calls).
    """

    def priority(self, errors: np.ndarray, eps: float) -> np.ndarray:
        """
        :param errors: absolute TD errors, a fresh float64 array (it may be modified and returned)
        :param eps: the buffer's ``eps``
        :return: the priorities they give
        """
        raise NotImplementedError

    def insert(self, leaves: np.ndarray, priority: float, alpha: float) -> None:
        """New transitions (distinct leaves, in the order they were added), all at one priority (the largest)."""
        raise NotImplementedError

    def remove(self, leaves: np.ndarray) -> None:
        """Make leaves unsampleable (optimize_memory_usage's overwritten observation)."""
        raise NotImplementedError

    def update(self, leaves: np.ndarray, priorities: np.ndarray, alpha: float) -> None:
        """New priorities (positive, finite) of sampleable leaves; ``priorities`` is a fresh array, it may be modified."""
        raise NotImplementedError

    def sample(self, batch_size: int, alpha: float, beta: float) -> tuple[np.ndarray, np.ndarray]:
        """:return: ``batch_size`` leaves drawn by stratified sampling, and their importance-sampling weights (float32)"""
        raise NotImplementedError

    def sampling_priorities(self, alpha: float) -> np.ndarray:
        """:return: what sampling is proportional to, for every leaf (0 for leaves that cannot be sampled)"""
        raise NotImplementedError

    def sampling_total(self, alpha: float) -> float:
        """:return: the sum of :meth:`sampling_priorities`"""
        raise NotImplementedError


def _strata(batch_size: int) -> np.ndarray:
    """:return: one value uniformly in each of ``[0, 1), [1, 2) ... [batch_size - 1, batch_size)``"""
    values = np.random.random(batch_size)
    values += _segment_starts(batch_size)
    return values


@functools.lru_cache(maxsize=8)
def _segment_starts(batch_size: int) -> np.ndarray:
    """:return: ``0, 1 ... batch_size - 1`` (read-only)"""
    starts = np.arange(batch_size)
    starts.flags.writeable = False
    return starts


def _importance_weights(sampled: np.ndarray, beta: float) -> np.ndarray:
    """
    :param sampled: what sampling is proportional to, for each sample (float64, modified)
    :param beta: importance-sampling exponent
    :return: ``w_i = (N P(i)) ** -beta / max_j (N P(j)) ** -beta = (q_i / min_j q_j) ** -beta`` over the batch, float32
    """
    sampled /= np.minimum.reduce(sampled)
    return np.power(sampled, -beta, dtype=np.float32)


class _ProportionalPrioritizer(_Prioritizer):
    """``p = |delta| + eps``; ``p ** alpha`` of every leaf in a :class:`~sb3_ext.common.segment_tree.SumTree`."""

    def __init__(self, n_leaves: int) -> None:
        self.tree = SumTree(n_leaves)

    def priority(self, errors: np.ndarray, eps: float) -> np.ndarray:
        errors += eps
        return errors

    def insert(self, leaves: np.ndarray, priority: float, alpha: float) -> None:
        self.tree.update(leaves, np.full(len(leaves), priority**alpha))

    def remove(self, leaves: np.ndarray) -> None:
        self.tree.update(leaves, np.zeros(len(leaves)))

    def update(self, leaves: np.ndarray, priorities: np.ndarray, alpha: float) -> None:
        if alpha != 1:
            priorities **= alpha
        self.tree.update(leaves, priorities)

    def sample(self, batch_size: int, alpha: float, beta: float) -> tuple[np.ndarray, np.ndarray]:
        values = _strata(batch_size)
        values *= self.tree.total() / batch_size
        leaves, sampled = self.tree.find(values)
        return leaves, self._weights(sampled, beta)

    def _weights(self, sampled: np.ndarray, beta: float) -> np.ndarray:
        return _importance_weights(sampled, beta)

    def sampling_priorities(self, alpha: float) -> np.ndarray:
        return self.tree.leaves()

    def sampling_total(self, alpha: float) -> float:
        return self.tree.total()


class _LapPrioritizer(_ProportionalPrioritizer):
    """``p = max(|delta|, 1)``, sampled as proportional, with unit weights (the algorithm takes the Huber loss)."""

    def priority(self, errors: np.ndarray, eps: float) -> np.ndarray:
        np.maximum(errors, 1.0, out=errors)
        return errors

    def _weights(self, sampled: np.ndarray, beta: float) -> np.ndarray:
        return np.ones(len(sampled), dtype=np.float32)


class _RankPrioritizer(_Prioritizer):
    """
    ``p = |delta|``; the leaf of rank ``r`` is sampled in proportion to ``(1 / r) ** alpha``, its rank kept by a
    :class:`~sb3_ext.common.rank_order.RankOrder`, re-ranked at the top every update and in full every
    ``sort_interval`` updates.
    """

    def __init__(self, n_leaves: int, sort_interval: int) -> None:
        self.order = RankOrder(n_leaves)
        self.sort_interval = sort_interval
        self._updates = 0
        self._alpha: float | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_alpha"] = None  # (the distribution is recomputed rather than pickled)
        for name in ("_blocks", "_block_starts", "_superblock_starts"):
            state.pop(name, None)
        return state

    def _distribution(self, alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """
        The cumulative sums of ``(1 / r) ** alpha`` over the ranks ``r = 1 ..`` capacity, computed once per ``alpha``
        and laid out for a search in three steps that read little memory: the sums padded with +inf to whole blocks of
        8 and superblocks of 64, in rows of a block; the sums at the blocks' starts, in rows of a superblock; the sums
        at the superblocks' starts.

        :return: these three arrays, and the last 0-based rank of positive probability (``(1 / r) ** alpha``
            underflows to 0 for a large ``alpha``)
        """
        if alpha != self._alpha:
            capacity = self.order.capacity
            terms = np.arange(1, capacity + 1, dtype=np.float64) ** -alpha
            self._last = int(np.count_nonzero(terms)) - 1
            cumulative = np.full(-(-capacity // 64) * 64, np.inf)
            np.cumsum(terms, out=cumulative[:capacity])
            self._blocks = cumulative.reshape(-1, 8)
            self._block_starts = np.ascontiguousarray(cumulative[::8]).reshape(-1, 8)
            self._superblock_starts = np.ascontiguousarray(cumulative[::64])
            self._alpha = alpha
        return self._blocks, self._block_starts, self._superblock_starts, self._last

    def priority(self, errors: np.ndarray, eps: float) -> np.ndarray:
        return errors

    def insert(self, leaves: np.ndarray, priority: float, alpha: float) -> None:
        self.order.insert(leaves, priority)

    def remove(self, leaves: np.ndarray) -> None:
        self.order.remove(leaves)

    def update(self, leaves: np.ndarray, priorities: np.ndarray, alpha: float) -> None:
        self.order.update(leaves, priorities)
        self._updates += 1
        if self._updates % self.sort_interval == 0:
            self.order.sort()
        else:
            self.order.sort_top(RANK_TOP)

    def sample(self, batch_size: int, alpha: float, beta: float) -> tuple[np.ndarray, np.ndarray]:
        blocks, block_starts, superblock_starts, last = self._distribution(alpha)
        n = len(self.order)
        if n == 0:
            raise ValueError("no transition can be sampled")
        values = _strata(batch_size)
        values *= self._total(n, blocks) / batch_size
        # The rank of a value is the number of cumulative sums <= it (searchsorted(side="right") over all of them),
        # found in three steps: the last superblock starting at or below it, the last block of that superblock
        # starting at or below it, and the sums <= it in that block.
        superblock = np.searchsorted(superblock_starts, values, side="right")
        superblock -= 1
        np.maximum(superblock, 0, out=superblock)
        block = _count_at_most(block_starts[superblock], values)
        block -= 1
        np.maximum(block, 0, out=block)
        block += superblock * 8
        ranks = _count_at_most(blocks[block], values)
        ranks += block * 8
        np.minimum(ranks, min(n - 1, last), out=ranks)  # (a value rounded up to the total)
        sampled = ranks + 1.0
        sampled **= -alpha  # (1 / r) ** alpha, as in the cumulative sums
        return self.order.leaves(ranks), _importance_weights(sampled, beta)

    @staticmethod
    def _total(n: int, blocks: np.ndarray) -> float:
        """:return: the sum of ``(1 / r) ** alpha`` over the ranks 1 .. n"""
        return float(blocks[(n - 1) // 8, (n - 1) % 8])

    def sampling_priorities(self, alpha: float) -> np.ndarray:
        ranks = self.order.ranks()
        priorities = np.zeros(len(ranks))
        ranked = ranks >= 0
        priorities[ranked] = (ranks[ranked] + 1.0) ** -alpha
        return priorities

    def sampling_total(self, alpha: float) -> float:
        n = len(self.order)
        return self._total(n, self._distribution(alpha)[0]) if n else 0.0


_PRIORITIZERS: dict[str, type[_ProportionalPrioritizer]] = {
    "proportional": _ProportionalPrioritizer,
    "lap": _LapPrioritizer,
}


def _count_at_most(rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """
    :param rows: 8 floats per value, shape ``(n, 8)``
    :param values: the values, shape ``(n,)``
    :return: how many floats of each row are ``<=`` its value (int64)
    """
    at_most = rows <= values[:, None]  # one byte (0 or 1) per float: eight bytes per row, read as one integer
    counts = at_most.view(np.uint64).reshape(-1)
    counts *= np.uint64(0x0101010101010101)  # (the sum of the eight bytes lands in the top byte)
    counts >>= np.uint64(56)
    return counts.view(np.int64)


def _rows(storage: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """The rows ``flat`` (``position * n_envs + env``) of a ``(buffer_size, n_envs, ...)`` storage, as one take."""
    return storage.reshape(storage.shape[0] * storage.shape[1], *storage.shape[2:]).take(flat, axis=0)


def _as_tensor(array: np.ndarray, device: th.device) -> th.Tensor:
    """``to_torch`` for arrays made by the sampling (fresh copies): on the CPU the tensor shares their memory."""
    tensor = th.from_numpy(array)
    return tensor if device.type == "cpu" else tensor.to(device)


def _warn_uniform(buffer_name: str, caller: Any) -> None:
    """Warn (once per buffer) that an algorithm samples a prioritized buffer without updating its priorities."""
    from sb3_ext.common.prioritized import PRIORITIZED_VARIANTS  # (that module builds on this one)

    algorithm = type(caller) if caller is not None else None
    variant = next(
        (PRIORITIZED_VARIANTS[cls] for cls in getattr(algorithm, "__mro__", ()) if cls in PRIORITIZED_VARIANTS), None
    )
    who = algorithm.__name__ if algorithm is not None else "the algorithm sampling it"
    use = (
        f"use sb3_ext.{variant.__name__} instead, which does"
        if variant is not None
        else "use an algorithm that does (sb3_ext's prioritized variants, D3QN, Rainbow)"
    )
    warnings.warn(
        f"{buffer_name} was sampled {UNIFORM_WARNING_AFTER} times without a priority update: {who} does not update "
        f"priorities, so every transition keeps the same priority and replay is uniform; {use}",
        stacklevel=3,
    )


def _check_beta(beta: float) -> None:
    if not 0 <= beta <= 1:
        raise ValueError(f"beta must be in [0, 1] (1 corrects the sampling bias fully), got {beta}")


def _as_int64(array: np.ndarray, name: str) -> np.ndarray:
    if type(array) is np.ndarray and array.dtype == np.int64 and array.ndim == 1:
        return array  # (what sample returns)
    array = np.asarray(array).reshape(-1)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{name} must be integers, got dtype {array.dtype}")
    return array.astype(np.int64, copy=False)
