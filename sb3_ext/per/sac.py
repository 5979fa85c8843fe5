"""SB3's SAC with prioritized experience replay."""

from __future__ import annotations

from typing import ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import SAC
from stable_baselines3.common.type_aliases import MaybeCallback
from stable_baselines3.common.utils import polyak_update

from sb3_ext.common.prioritized import PrioritizedReplay

__all__ = ["PrioritizedSAC"]

SelfPrioritizedSAC = TypeVar("SelfPrioritizedSAC", bound="PrioritizedSAC")


class PrioritizedSAC(PrioritizedReplay, SAC):
    """
    Prioritized experience replay (Schaul et al. 2016, https://arxiv.org/abs/1511.05952: proportional or rank-based)
    or loss-adjusted prioritization (LAP, Fujimoto et al. 2020, https://arxiv.org/abs/2007.06049) for SAC (Haarnoja et
    al. 2018, https://arxiv.org/abs/1801.01290).

    ``stable_baselines3.SAC`` with a :class:`~sb3_ext.common.buffers.PrioritizedReplayBuffer` (the default
    ``replay_buffer_class``; :class:`~sb3_ext.common.buffers.DictPrioritizedReplayBuffer` for ``Dict`` observations).
    Its ``train`` is SAC's, except that:

    - each sample's critic loss is weighted by its importance-sampling weight (the actor and entropy losses are not,
      as in Fujimoto et al.'s prioritized TD3); with LAP, there are no weights and the mean-squared loss is the Huber
      loss;
    - the sampled transitions' new priorities are the largest absolute TD error over the critics,
      ``max_k |Q_k(s, a) - y|``, from the forward pass of the critic loss;
    - ``beta`` is annealed linearly from the buffer's initial value to 1 over training.

    Its parameters are those of ``stable_baselines3.SAC`` (same names, defaults, policies and saved files), except that
    ``replay_buffer_class`` must be a prioritized buffer (another one is refused with a ``ValueError``: use ``SAC``
    for uniform replay). Prioritized replay's own arguments go in ``replay_buffer_kwargs``, with
    :class:`~sb3_ext.common.buffers.PrioritizedReplayBuffer`'s defaults: ``alpha``, ``beta`` (its initial value), ``eps``
    and ``prioritization`` (``"proportional"``, ``"rank"`` or ``"lap"``), e.g.
    ``replay_buffer_kwargs=dict(alpha=0.6, beta=0.4, prioritization="lap")``; ``n_steps`` and ``gamma`` are the
    algorithm's, passed to the buffer.

    Logs SAC's values and ``train/td_error`` (mean absolute error of the round's batches, the priorities before
    ``alpha``), ``train/beta``, ``train/mean_priority`` (mean ``p ** alpha`` over the buffer) and
    ``train/max_priority``.

    Action spaces other than ``Box`` are refused at construction with a ``ValueError`` naming the space
    (``SAC`` fails an ``assert``).

    :param policy: the policy: ``"MlpPolicy"``, ``"CnnPolicy"``, ``"MultiInputPolicy"`` or a policy class, as for SAC
    :param env: the environment (Box actions), its gymnasium id, or None when loading
    :param args: SAC's other arguments, in its order
    :param kwargs: SAC's other arguments by name (the parameters of ``stable_baselines3.SAC``)
    """

    upstream: ClassVar[type] = SAC
    action_space_types = (spaces.Box,)

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        """
        SAC's ``train``, with prioritized batches, the critic loss weighted by the importance-sampling weights, and
        priority updates from the critics' TD errors.

        :param gradient_steps: number of gradient steps
        :param batch_size: minibatch size
        """
        # Switch to train mode (this affects batch norm / dropout)
        self.policy.set_training_mode(True)
        # Update optimizers learning rate
        optimizers = [self.actor.optimizer, self.critic.optimizer]
        if self.ent_coef_optimizer is not None:
            optimizers += [self.ent_coef_optimizer]

        # Update learning rate according to lr schedule
        self._update_learning_rate(optimizers)
        self._start_prioritized_round()

        ent_coef_losses, ent_coefs = [], []
        actor_losses, critic_losses = [], []

        for gradient_step in range(gradient_steps):
            # Sample replay buffer, by priority (with importance-sampling weights)
            replay_data, weights = self._prioritized_sample(batch_size)
            # For n-step replay, discount factor is gamma**n_steps (when no early termination)
            discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma

            # We need to sample because `log_std` may have changed between two gradient steps
            if self.use_sde:
                self.actor.reset_noise()

            # Action by the current actor for the sampled state
            actions_pi, log_prob = self.actor.action_log_prob(replay_data.observations)
            log_prob = log_prob.reshape(-1, 1)

            ent_coef_loss = None
            if self.ent_coef_optimizer is not None and self.log_ent_coef is not None:
                # Important: detach the variable from the graph
                # so we don't change it with other losses
                # see https://github.com/rail-berkeley/softlearning/issues/60
                ent_coef = th.exp(self.log_ent_coef.detach())
                assert isinstance(self.target_entropy, float)
                ent_coef_loss = -(self.log_ent_coef * (log_prob + self.target_entropy).detach()).mean()
                ent_coef_losses.append(ent_coef_loss.item())
            else:
                ent_coef = self.ent_coef_tensor

            ent_coefs.append(ent_coef.item())

            # Optimize entropy coefficient, also called
            # entropy temperature or alpha in the paper
            if ent_coef_loss is not None and self.ent_coef_optimizer is not None:
                self.ent_coef_optimizer.zero_grad()
                ent_coef_loss.backward()
                self.ent_coef_optimizer.step()

            with th.no_grad():
                # Select action according to policy
                next_actions, next_log_prob = self.actor.action_log_prob(replay_data.next_observations)
                # Compute the next Q values: min over all critics targets
                next_q_values = th.cat(self.critic_target(replay_data.next_observations, next_actions), dim=1)
                next_q_values, _ = th.min(next_q_values, dim=1, keepdim=True)
                # add entropy term
                next_q_values = next_q_values - ent_coef * next_log_prob.reshape(-1, 1)
                # td error + entropy term
                target_q_values = replay_data.rewards + (1 - replay_data.dones) * discounts * next_q_values

            # Get current Q-values estimates for each critic network
            # using action from the replay buffer
            current_q_values = self.critic(replay_data.observations, replay_data.actions)

            # Compute critic loss: each sample's loss weighted by its importance-sampling weight
            critic_loss = 0.5 * sum(self._sample_loss(current_q, target_q_values, weights) for current_q in current_q_values)
            assert isinstance(critic_loss, th.Tensor)  # for type checker
            critic_losses.append(critic_loss.item())

            # New priorities: each sample's largest absolute TD error over the critics, from the same forward pass
            with th.no_grad():
                td_errors = th.cat(current_q_values, dim=1) - target_q_values
                self._update_priorities(replay_data, td_errors.abs().max(dim=1).values)

            # Optimize the critic
            self.critic.optimizer.zero_grad()
            critic_loss.backward()
            self.critic.optimizer.step()

            # Compute actor loss
            # Alternative: actor_loss = th.mean(log_prob - qf1_pi)
            # Min over all critic networks
            q_values_pi = th.cat(self.critic(replay_data.observations, actions_pi), dim=1)
            min_qf_pi, _ = th.min(q_values_pi, dim=1, keepdim=True)
            actor_loss = (ent_coef * log_prob - min_qf_pi).mean()
            actor_losses.append(actor_loss.item())

            # Optimize the actor
            self.actor.optimizer.zero_grad()
            actor_loss.backward()
            self.actor.optimizer.step()

            # Update target networks
            if gradient_step % self.target_update_interval == 0:
                polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
                # Copy running stats, see GH issue #996
                polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)

        self._n_updates += gradient_steps

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/ent_coef", np.mean(ent_coefs))
        self.logger.record("train/actor_loss", np.mean(actor_losses))
        self.logger.record("train/critic_loss", np.mean(critic_losses))
        if len(ent_coef_losses) > 0:
            self.logger.record("train/ent_coef_loss", np.mean(ent_coef_losses))
        self._record_prioritized_logs("td_error")

    def learn(
        self: SelfPrioritizedSAC,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "PrioritizedSAC",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfPrioritizedSAC:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )
