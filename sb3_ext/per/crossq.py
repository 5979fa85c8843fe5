"""sb3-contrib's CrossQ with prioritized experience replay."""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from sb3_contrib import CrossQ
from stable_baselines3.common.type_aliases import MaybeCallback

from sb3_ext.common.prioritized import PrioritizedReplay

__all__ = ["PrioritizedCrossQ"]

SelfPrioritizedCrossQ = TypeVar("SelfPrioritizedCrossQ", bound="PrioritizedCrossQ")


class PrioritizedCrossQ(PrioritizedReplay, CrossQ):
    """
    CrossQ (Bhatt et al. 2024, https://arxiv.org/abs/1902.05605) with prioritized experience replay (Schaul et al.
    2016, https://arxiv.org/abs/1511.05952) or loss-adjusted prioritization (LAP, Fujimoto et al. 2020,
    https://arxiv.org/abs/2007.06049).

    ``sb3_contrib.CrossQ`` (its constructor, hyperparameters, policies and saved files) with a prioritized buffer; its
    ``train`` is CrossQ's (one batch-normalised forward pass of the critics over the current and next observations
    together, kept as it is) but for:

    - the batches come from a :class:`~sb3_ext.common.buffers.PrioritizedReplayBuffer`, with ``beta`` annealed
      linearly from its initial value to 1 over training;
    - each critic's mean-squared loss weights each sample's squared TD error by its importance-sampling weight; with
      LAP it is the Huber loss, unweighted;
    - the new priorities are each sample's largest absolute TD error over the critics, ``max_k |Q_k(s, a) - y|``,
      from the same forward pass.

    The actor and entropy-coefficient losses stay unweighted, as in Fujimoto et al.'s prioritized TD3. With
    ``alpha=0`` (uniform sampling, unit weights) it trains as CrossQ does.

    Every constructor argument is CrossQ's (the parameters of ``sb3_contrib.CrossQ``). Prioritized replay's own
    arguments go in ``replay_buffer_kwargs``: ``alpha``, ``beta``, ``eps`` and ``prioritization``
    (``"proportional"``, ``"rank"`` or ``"lap"``), e.g. ``replay_buffer_kwargs=dict(alpha=0.6, beta=0.4)``; their
    defaults are PrioritizedReplayBuffer's. A ``replay_buffer_class`` that does not prioritize is refused with a
    ``ValueError`` (for uniform replay use CrossQ).

    Logs CrossQ's values, ``train/td_error`` (the mean of the per-sample errors above over the round's batches), and
    ``train/beta``, ``train/mean_priority`` and ``train/max_priority``.

    Action spaces other than ``Box`` are refused at construction with a ``ValueError`` naming the space (CrossQ fails an
    ``assert``).

    :param policy: the policy: ``"MlpPolicy"`` or a policy class, as for CrossQ
    :param env: the environment (Box actions), its gymnasium id, or None when loading
    :param args: CrossQ's other arguments, in its order
    :param kwargs: CrossQ's other arguments by name (the parameters of ``sb3_contrib.CrossQ``)
    """

    upstream = CrossQ
    action_space_types = (spaces.Box,)

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        """
        CrossQ's ``train`` with prioritized batches, the critics' per-sample losses weighted by their
        importance-sampling weights, and priority updates.

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

        for _ in range(gradient_steps):
            self._n_updates += 1
            # Sample replay buffer (by priority, with importance-sampling weights)
            replay_data, weights = self._prioritized_sample(batch_size)
            # For n-step replay, discount factor is gamma**n_steps (when no early termination)
            discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma

            # We need to sample because `log_std` may have changed between two gradient steps
            if self.use_sde:
                self.actor.reset_noise()

            # Note: in the following lines we always need to make sure to set train/eval modes
            # of actor and critic carefully. This is because of the BatchNorm layers in the networks
            # which behave differently in train and eval modes.

            if self.log_ent_coef is not None:
                # Important: detach the variable from the graph
                # so we don't change it with other losses
                # see https://github.com/rail-berkeley/softlearning/issues/60
                ent_coef = th.exp(self.log_ent_coef.detach())
            else:
                ent_coef = self.ent_coef_tensor

            ent_coefs.append(ent_coef.item())

            with th.no_grad():
                # Select action according to policy
                # Use more precise set_training_mode to allow the use of Dropout
                self.actor.set_bn_training_mode(False)
                next_actions, next_log_prob = self.actor.action_log_prob(replay_data.next_observations)

            # Joint forward pass of obs/next_obs and actions/next_state_actions to have only one forward pass, with
            # the batch statistics of the mixture of both distributions (see sb3_contrib's CrossQ.train)
            all_obs = th.cat([replay_data.observations, replay_data.next_observations], dim=0)
            all_actions = th.cat([replay_data.actions, next_actions], dim=0)
            # Update critic BN stats
            self.critic.set_bn_training_mode(True)
            all_q_values = th.cat(self.critic(all_obs, all_actions), dim=1)
            self.critic.set_bn_training_mode(False)
            # (2 * batch_size, n_critics) -> (batch_size, n_critics), (batch_size, n_critics)
            current_q_values, next_q_values = th.split(all_q_values, batch_size, dim=0)
            # (batch_size, n_critics) -> (n_critics, batch_size, 1)
            current_q_values = current_q_values.T[..., None]

            with th.no_grad():
                # Compute the target Q value
                next_q_values, _ = th.min(next_q_values.detach(), dim=1, keepdim=True)
                # Add entropy term
                next_q_values = next_q_values - ent_coef * next_log_prob.reshape(-1, 1)
                # td error + entropy term
                target_q_values = replay_data.rewards + (1 - replay_data.dones) * discounts * next_q_values

            # Compute critic loss: each sample's squared error weighted by its importance-sampling weight (the Huber
            # loss, unweighted, with LAP)
            critic_loss = 0.5 * sum(
                self._sample_loss(current_q, target_q_values.detach(), weights, loss="mse") for current_q in current_q_values
            )
            assert isinstance(critic_loss, th.Tensor)  # for type checker
            critic_losses.append(critic_loss.item())
            # Priorities: each sample's largest absolute TD error over the critics (from the same forward pass)
            td_errors = (current_q_values.detach() - target_q_values).abs().amax(dim=0)
            self._update_priorities(replay_data, td_errors)

            # Optimize the critic
            self.critic.optimizer.zero_grad()
            critic_loss.backward()
            self.critic.optimizer.step()

            # Delayed policy updates
            if self._n_updates % self.policy_delay == 0:
                # Sample action according to policy and update actor BN stats
                self.actor.set_bn_training_mode(True)
                actions_pi, log_prob = self.actor.action_log_prob(replay_data.observations)
                log_prob = log_prob.reshape(-1, 1)
                self.actor.set_bn_training_mode(False)

                # Optimize entropy coefficient, also called entropy temperature or alpha in the paper
                if self.ent_coef_optimizer is not None:
                    ent_coef_loss = -(self.log_ent_coef * (log_prob + self.target_entropy).detach()).mean()  # type: ignore[operator]
                    ent_coef_losses.append(ent_coef_loss.item())

                    self.ent_coef_optimizer.zero_grad()
                    ent_coef_loss.backward()
                    self.ent_coef_optimizer.step()

                # Compute actor loss (unweighted)
                self.critic.set_bn_training_mode(False)
                q_values_pi = th.cat(self.critic(replay_data.observations, actions_pi), dim=1)

                min_qf_pi, _ = th.min(q_values_pi, dim=1, keepdim=True)
                actor_loss = (ent_coef * log_prob.reshape(-1, 1) - min_qf_pi).mean()
                actor_losses.append(actor_loss.item())

                # Optimize the actor
                self.actor.optimizer.zero_grad()
                actor_loss.backward()
                self.actor.optimizer.step()

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/ent_coef", np.mean(ent_coefs))
        if len(actor_losses) > 0:
            self.logger.record("train/actor_loss", np.mean(actor_losses))
        self.logger.record("train/critic_loss", np.mean(critic_losses))
        if len(ent_coef_losses) > 0:
            self.logger.record("train/ent_coef_loss", np.mean(ent_coef_losses))
        self._record_prioritized_logs("td_error")

    def learn(
        self: SelfPrioritizedCrossQ,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "PrioritizedCrossQ",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfPrioritizedCrossQ:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )
