"""sb3-contrib's TQC with prioritized experience replay."""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from sb3_contrib import TQC
from stable_baselines3.common.type_aliases import MaybeCallback
from stable_baselines3.common.utils import polyak_update

from sb3_ext.common.prioritized import PrioritizedReplay
from sb3_ext.per.qrdqn import per_sample_quantile_huber_loss

__all__ = ["PrioritizedTQC"]

SelfPrioritizedTQC = TypeVar("SelfPrioritizedTQC", bound="PrioritizedTQC")


class PrioritizedTQC(PrioritizedReplay, TQC):
    """
    TQC (Kuznetsov et al. 2020, https://arxiv.org/abs/2005.04269) with prioritized experience replay (Schaul et al.
    2016, https://arxiv.org/abs/1511.05952) or loss-adjusted prioritization (LAP, Fujimoto et al. 2020,
    https://arxiv.org/abs/2007.06049).

    ``sb3_contrib.TQC`` (its constructor, hyperparameters, policies and saved files) with a prioritized buffer; its
    ``train`` is TQC's but for:

    - the batches come from a :class:`~sb3_ext.common.buffers.PrioritizedReplayBuffer` (``DictPrioritizedReplayBuffer``
      for ``Dict`` observations), with ``beta`` annealed linearly from its initial value to 1 over training;
    - the critic loss is the mean over the batch of each sample's quantile Huber loss
      (:func:`~sb3_ext.per.qrdqn.per_sample_quantile_huber_loss`, averaged over critics, quantiles and target
      quantiles as TQC does) weighted by its importance-sampling weight; with LAP it is left unweighted, as the
      quantile Huber loss already is a Huber-type loss;
    - the new priorities are those per-sample critic losses, from the same forward pass.

    The actor and entropy-coefficient losses stay unweighted, as in Fujimoto et al.'s prioritized TD3. With
    ``alpha=0`` (uniform sampling, unit weights) it trains as TQC does.

    Every constructor argument is TQC's (the parameters of ``sb3_contrib.TQC``). Prioritized replay's own arguments go
    in ``replay_buffer_kwargs``: ``alpha``, ``beta``, ``eps`` and ``prioritization`` (``"proportional"``, ``"rank"``
    or ``"lap"``), e.g. ``replay_buffer_kwargs=dict(alpha=0.6, beta=0.4)``; their defaults are
    PrioritizedReplayBuffer's. A ``replay_buffer_class`` that does not prioritize (``HerReplayBuffer``...) is refused
    with a ``ValueError`` (for uniform replay use TQC).

    Logs TQC's values, ``train/quantile_loss`` (the mean per-sample critic loss of the round's batches), and
    ``train/beta``, ``train/mean_priority`` and ``train/max_priority``.

    Action spaces other than ``Box`` are refused at construction with a ``ValueError`` naming the space (TQC fails an
    ``assert``).

    :param policy: the policy: ``"MlpPolicy"``, ``"CnnPolicy"``, ``"MultiInputPolicy"`` or a policy class, as for TQC
    :param env: the environment (Box actions), its gymnasium id, or None when loading
    :param args: TQC's other arguments, in its order
    :param kwargs: TQC's other arguments by name (the parameters of ``sb3_contrib.TQC``)
    """

    upstream = TQC
    action_space_types = (spaces.Box,)

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        """
        TQC's ``train`` with prioritized batches, the per-sample critic losses weighted by their importance-sampling
        weights, and priority updates.

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
            # Sample replay buffer (by priority, with importance-sampling weights)
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
                ent_coef_loss = -(self.log_ent_coef * (log_prob + self.target_entropy).detach()).mean()  # type: ignore[operator]
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
                # Compute and cut quantiles at the next state
                # batch x nets x quantiles
                next_quantiles = self.critic_target(replay_data.next_observations, next_actions)

                # Sort and drop top k quantiles to control overestimation.
                n_target_quantiles = self.critic.quantiles_total - self.top_quantiles_to_drop_per_net * self.critic.n_critics
                next_quantiles, _ = th.sort(next_quantiles.reshape(batch_size, -1))
                next_quantiles = next_quantiles[:, :n_target_quantiles]

                # td error + entropy term
                target_quantiles = next_quantiles - ent_coef * next_log_prob.reshape(-1, 1)
                target_quantiles = replay_data.rewards + (1 - replay_data.dones) * discounts * target_quantiles
                # Make target_quantiles broadcastable to (batch_size, n_critics, n_target_quantiles).
                target_quantiles.unsqueeze_(dim=1)

            # Get current Quantile estimates using action from the replay buffer
            current_quantiles = self.critic(replay_data.observations, replay_data.actions)
            # Critic loss of each sample, not summing over the quantile dimension as in the paper, weighted by the
            # importance-sampling weights (unweighted for uniform replay and LAP)
            sample_losses = per_sample_quantile_huber_loss(current_quantiles, target_quantiles, sum_over_quantiles=False)
            critic_loss = (weights.reshape(-1) * sample_losses).mean() if weights is not None else sample_losses.mean()
            self._update_priorities(replay_data, sample_losses)  # (from the same forward pass)
            critic_losses.append(critic_loss.item())

            # Optimize the critic
            self.critic.optimizer.zero_grad()
            critic_loss.backward()
            self.critic.optimizer.step()

            # Compute actor loss (unweighted)
            qf_pi = self.critic(replay_data.observations, actions_pi).mean(dim=2).mean(dim=1, keepdim=True)
            actor_loss = (ent_coef * log_prob - qf_pi).mean()
            actor_losses.append(actor_loss.item())

            # Optimize the actor
            self.actor.optimizer.zero_grad()
            actor_loss.backward()
            self.actor.optimizer.step()

            # Update target networks
            if gradient_step % self.target_update_interval == 0:
                polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
                # Copy running stats, see https://github.com/DLR-RM/stable-baselines3/issues/996
                polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)

        self._n_updates += gradient_steps

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/ent_coef", np.mean(ent_coefs))
        self.logger.record("train/actor_loss", np.mean(actor_losses))
        self.logger.record("train/critic_loss", np.mean(critic_losses))
        if len(ent_coef_losses) > 0:
            self.logger.record("train/ent_coef_loss", np.mean(ent_coef_losses))
        self._record_prioritized_logs("quantile_loss")

    def learn(
        self: SelfPrioritizedTQC,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "PrioritizedTQC",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfPrioritizedTQC:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )
