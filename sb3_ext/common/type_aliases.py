"""Sample types shared by sb3-ext's buffers, in the style of ``stable_baselines3.common.type_aliases``."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch as th
from stable_baselines3.common.type_aliases import PyTorchObs

__all__ = ["EpisodeBufferSamples", "PrioritizedReplayBufferSamples"]


class EpisodeBufferSamples(NamedTuple):
    """
    Steps of complete episodes from an :class:`~sb3_ext.common.buffers.EpisodeBuffer`, for a Monte-Carlo update.

    :param observations: observations (a dict of tensors for ``Dict`` spaces), leading dimension ``n``
    :param actions: actions as the policy sampled them (before clipping to the action space), float32, shape
        ``(n, action_dim)``, as SB3's ``RolloutBufferSamples`` has them
    :param returns: discounted reward-to-go, shape ``(n,)``
    """

    observations: PyTorchObs
    actions: th.Tensor
    returns: th.Tensor


class PrioritizedReplayBufferSamples(NamedTuple):
    """
    A batch from a prioritized replay buffer: the fields of SB3's ``ReplayBufferSamples`` (in the same order, so
    code written for those keeps working), then what a prioritized update needs.

    :param observations: observations, shape ``(batch, *obs_shape)`` (a dict of them for ``Dict`` spaces)
    :param actions: actions taken, shape ``(batch, action_dim)``
    :param next_observations: observations to bootstrap from (``n_steps`` later for n-step returns)
    :param dones: 1.0 where the return must not bootstrap (termination, not a time-limit truncation), shape ``(batch, 1)``
    :param rewards: rewards (discounted n-step sums for n-step returns), shape ``(batch, 1)``
    :param discounts: discount of the bootstrap value per sample (``gamma ** k``) for n-step returns, shape
        ``(batch, 1)``; None for one-step transitions, where the algorithm's ``gamma`` applies
    :param weights: importance-sampling weights ``(N * P(i)) ** -beta / max_j (N * P(j)) ** -beta``, shape ``(batch, 1)``
    :param indices: one integer per sample, ``position * n_envs + env``, to update its priority with
        ``update_priorities(indices, priorities)``
    """

    observations: PyTorchObs
    actions: th.Tensor
    next_observations: PyTorchObs
    dones: th.Tensor
    rewards: th.Tensor
    discounts: th.Tensor | None
    weights: th.Tensor
    indices: np.ndarray
