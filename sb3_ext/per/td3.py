"""SB3's TD3 and DDPG with prioritized experience replay."""

from __future__ import annotations

from typing import ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import DDPG, TD3
from stable_baselines3.common.type_aliases import MaybeCallback
from stable_baselines3.common.utils import polyak_update

from sb3_ext.common.prioritized import PrioritizedReplay

__all__ = ["PrioritizedDDPG", "PrioritizedTD3"]

SelfPrioritizedTD3 = TypeVar("SelfPrioritizedTD3", bound="PrioritizedTD3")
SelfPrioritizedDDPG = TypeVar("SelfPrioritizedDDPG", bound="PrioritizedDDPG")


class PrioritizedTD3(PrioritizedReplay, TD3):
    """
    Prioritized experience replay (Schaul et al. 2016, https://arxiv.org/abs/1511.05952: proportional or rank-based)
    or loss-adjusted prioritization (LAP, Fujimoto et al. 2020, https://arxiv.org/abs/2007.06049) for TD3 (Fujimoto et
    al. 2018, https://arxiv.org/abs/1802.09477): the PER-TD3 and LAP-TD3 of Fujimoto et al. 2020.

    ``stable_baselines3.TD3`` with a :class:`~sb3_ext.common.buffers.PrioritizedReplayBuffer` (the default
    ``replay_buffer_class``; :class:`~sb3_ext.common.buffers.DictPrioritizedReplayBuffer` for ``Dict`` observations).
    Its ``train`` is TD3's, except that:

    - each sample's critic loss is weighted by its importance-sampling weight (the actor loss is not, as in Fujimoto
      et al. 2020); with LAP, there are no weights and the mean-squared loss is the Huber loss;
    - the sampled transitions' new priorities are the largest absolute TD error over the critics,
      ``max_k |Q_k(s, a) - y|``, from the forward pass of the critic loss;
    - ``beta`` is annealed linearly from the buffer's initial value to 1 over training.

    Its parameters are those of ``stable_baselines3.TD3`` (same names, defaults, policies and saved files), except that
    ``replay_buffer_class`` must be a prioritized buffer (another one is refused with a ``ValueError``: use ``TD3``
    for uniform replay). Prioritized replay's own arguments go in ``replay_buffer_kwargs``, with
    :class:`~sb3_ext.common.buffers.PrioritizedReplayBuffer`'s defaults: ``alpha``, ``beta`` (its initial value), ``eps``
    and ``prioritization`` (``"proportional"``, ``"rank"`` or ``"lap"``), e.g.
    ``replay_buffer_kwargs=dict(alpha=0.6, beta=0.4, prioritization="lap")``; ``n_steps`` and ``gamma`` are the
    algorithm's, passed to the buffer.

    Logs TD3's values and ``train/td_error`` (mean absolute error of the round's batches, the priorities before
    ``alpha``), ``train/beta``, ``train/mean_priority`` (mean ``p ** alpha`` over the buffer) and
    ``train/max_priority``.

    Action spaces other than ``Box`` are refused at construction with a ``ValueError`` naming the space
    (``TD3`` fails an ``assert``).

    :param policy: the policy: ``"MlpPolicy"``, ``"CnnPolicy"``, ``"MultiInputPolicy"`` or a policy class, as for TD3
    :param env: the environment (Box actions), its gymnasium id, or None when loading
    :param args: TD3's other arguments, in its order
    :param kwargs: TD3's other arguments by name (the parameters of ``stable_baselines3.TD3``)
    """

    upstream: ClassVar[type] = TD3
    action_space_types = (spaces.Box,)

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        """
        TD3's ``train``, with prioritized batches, the critic loss weighted by the importance-sampling weights, and
        priority updates from the critics' TD errors.

        :param gradient_steps: number of gradient steps
        :param batch_size: minibatch size
        """
        # Switch to train mode (this affects batch norm / dropout)
        self.policy.set_training_mode(True)

        # Update learning rate according to lr schedule
        self._update_learning_rate([self.actor.optimizer, self.critic.optimizer])
        self._start_prioritized_round()

        actor_losses, critic_losses = [], []
        for _ in range(gradient_steps):
            self._n_updates += 1
            # Sample replay buffer, by priority (with importance-sampling weights)
            replay_data, weights = self._prioritized_sample(batch_size)
            # For n-step replay, discount factor is gamma**n_steps (when no early termination)
            discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma

            with th.no_grad():
                # Select action according to policy and add clipped noise
                noise = replay_data.actions.clone().data.normal_(0, self.target_policy_noise)
                noise = noise.clamp(-self.target_noise_clip, self.target_noise_clip)
                next_actions = (self.actor_target(replay_data.next_observations) + noise).clamp(-1, 1)

                # Compute the next Q-values: min over all critics targets
                next_q_values = th.cat(self.critic_target(replay_data.next_observations, next_actions), dim=1)
                next_q_values, _ = th.min(next_q_values, dim=1, keepdim=True)
                target_q_values = replay_data.rewards + (1 - replay_data.dones) * discounts * next_q_values

            # Get current Q-values estimates for each critic network
            current_q_values = self.critic(replay_data.observations, replay_data.actions)

            # Compute critic loss: each sample's loss weighted by its importance-sampling weight
            critic_loss = sum(self._sample_loss(current_q, target_q_values, weights) for current_q in current_q_values)
            assert isinstance(critic_loss, th.Tensor)
            critic_losses.append(critic_loss.item())

            # New priorities: each sample's largest absolute TD error over the critics (DDPG: its one critic), from the
            # same forward pass
            with th.no_grad():
                td_errors = th.cat(current_q_values, dim=1) - target_q_values
                self._update_priorities(replay_data, td_errors.abs().max(dim=1).values)

            # Optimize the critics
            self.critic.optimizer.zero_grad()
            critic_loss.backward()
            self.critic.optimizer.step()

            # Delayed policy updates
            if self._n_updates % self.policy_delay == 0:
                # Compute actor loss
                actor_loss = -self.critic.q1_forward(replay_data.observations, self.actor(replay_data.observations)).mean()
                actor_losses.append(actor_loss.item())

                # Optimize the actor
                self.actor.optimizer.zero_grad()
                actor_loss.backward()
                self.actor.optimizer.step()

                polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
                polyak_update(self.actor.parameters(), self.actor_target.parameters(), self.tau)
                # Copy running stats, see GH issue #996
                polyak_update(self.critic_batch_norm_stats, self.critic_batch_norm_stats_target, 1.0)
                polyak_update(self.actor_batch_norm_stats, self.actor_batch_norm_stats_target, 1.0)

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        if len(actor_losses) > 0:
            self.logger.record("train/actor_loss", np.mean(actor_losses))
        self.logger.record("train/critic_loss", np.mean(critic_losses))
        self._record_prioritized_logs("td_error")

    def learn(
        self: SelfPrioritizedTD3,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "PrioritizedTD3",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfPrioritizedTD3:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )


class PrioritizedDDPG(PrioritizedTD3, DDPG):
    """
    Prioritized experience replay (Schaul et al. 2016, https://arxiv.org/abs/1511.05952: proportional or rank-based)
    or loss-adjusted prioritization (LAP, Fujimoto et al. 2020, https://arxiv.org/abs/2007.06049) for DDPG (Lillicrap
    et al. 2015, https://arxiv.org/abs/1509.02971).

    As SB3's ``DDPG`` is its ``TD3`` with one critic, no delay and no target smoothing (``DDPG``'s constructor sets
    them), this is :class:`PrioritizedTD3` with ``DDPG``'s constructor: ``stable_baselines3.DDPG`` with a
    :class:`~sb3_ext.common.buffers.PrioritizedReplayBuffer` (the default ``replay_buffer_class``;
    :class:`~sb3_ext.common.buffers.DictPrioritizedReplayBuffer` for ``Dict`` observations). Its ``train`` is TD3's
    (so DDPG's), except that:

    - each sample's critic loss is weighted by its importance-sampling weight (the actor loss is not); with LAP, there
      are no weights and the mean-squared loss is the Huber loss;
    - the sampled transitions' new priorities are the critic's absolute TD errors ``|Q(s, a) - y|``, from the forward
      pass of the critic loss;
    - ``beta`` is annealed linearly from the buffer's initial value to 1 over training.

    Its parameters are those of ``stable_baselines3.DDPG`` (same names, defaults, policies and saved files), except
    that ``replay_buffer_class`` must be a prioritized buffer (another one is refused with a ``ValueError``: use
    ``DDPG`` for uniform replay). Prioritized replay's own arguments go in ``replay_buffer_kwargs``, with
    :class:`~sb3_ext.common.buffers.PrioritizedReplayBuffer`'s defaults: ``alpha``, ``beta`` (its initial value), ``eps``
    and ``prioritization`` (``"proportional"``, ``"rank"`` or ``"lap"``), e.g.
    ``replay_buffer_kwargs=dict(alpha=0.6, beta=0.4, prioritization="lap")``; ``n_steps`` and ``gamma`` are the
    algorithm's, passed to the buffer.

    Logs DDPG's values and ``train/td_error`` (mean absolute error of the round's batches, the priorities before
    ``alpha``), ``train/beta``, ``train/mean_priority`` (mean ``p ** alpha`` over the buffer) and
    ``train/max_priority``.

    Action spaces other than ``Box`` are refused at construction with a ``ValueError`` naming the space
    (``DDPG`` fails an ``assert``).

    :param policy: the policy: ``"MlpPolicy"``, ``"CnnPolicy"``, ``"MultiInputPolicy"`` or a policy class, as for DDPG
    :param env: the environment (Box actions), its gymnasium id, or None when loading
    :param args: DDPG's other arguments, in its order
    :param kwargs: DDPG's other arguments by name (the parameters of ``stable_baselines3.DDPG``)
    """

    upstream: ClassVar[type] = DDPG

    def learn(
        self: SelfPrioritizedDDPG,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "PrioritizedDDPG",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfPrioritizedDDPG:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )
