"""SB3's DQN with prioritized experience replay."""

from __future__ import annotations

from typing import ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import DQN
from stable_baselines3.common.type_aliases import MaybeCallback

from sb3_ext.common.prioritized import PrioritizedReplay

__all__ = ["PrioritizedDQN"]

SelfPrioritizedDQN = TypeVar("SelfPrioritizedDQN", bound="PrioritizedDQN")


class PrioritizedDQN(PrioritizedReplay, DQN):
    """
    Prioritized experience replay (Schaul et al. 2016, https://arxiv.org/abs/1511.05952: proportional or rank-based)
    or loss-adjusted prioritization (LAP, Fujimoto et al. 2020, https://arxiv.org/abs/2007.06049) for DQN (Mnih et al.
    2013, https://arxiv.org/abs/1312.5602).

    ``stable_baselines3.DQN`` with a :class:`~sb3_ext.common.buffers.PrioritizedReplayBuffer` (the default
    ``replay_buffer_class``; :class:`~sb3_ext.common.buffers.DictPrioritizedReplayBuffer` for ``Dict`` observations),
    and nothing else: no double Q-learning and no dueling network (:class:`~sb3_ext.D3QN` has both). Its ``train`` is
    DQN's, except that:

    - each sample's Huber loss is weighted by its importance-sampling weight (with LAP there are no weights: the loss
      is DQN's unweighted Huber loss);
    - the sampled transitions' new priorities are their absolute TD errors ``|Q(s, a) - y|``, from the forward pass of
      the loss;
    - ``beta`` is annealed linearly from the buffer's initial value to 1 over training.

    Its parameters are those of ``stable_baselines3.DQN`` (same names, defaults, policies and saved files), except that
    ``replay_buffer_class`` must be a prioritized buffer (another one is refused with a ``ValueError``: use ``DQN``
    for uniform replay). Prioritized replay's own arguments go in ``replay_buffer_kwargs``, with
    :class:`~sb3_ext.common.buffers.PrioritizedReplayBuffer`'s defaults: ``alpha``, ``beta`` (its initial value), ``eps``
    and ``prioritization`` (``"proportional"``, ``"rank"`` or ``"lap"``), e.g.
    ``replay_buffer_kwargs=dict(alpha=0.6, beta=0.4, prioritization="lap")``; ``n_steps`` and ``gamma`` are the
    algorithm's, passed to the buffer.

    Logs DQN's values and ``train/td_error`` (mean absolute TD error of the round's batches), ``train/beta``,
    ``train/mean_priority`` (mean ``p ** alpha`` over the buffer) and ``train/max_priority``.

    Action spaces other than ``Discrete`` are refused at construction with a ``ValueError`` naming the space
    (``DQN`` fails an ``assert``).

    :param policy: the policy: ``"MlpPolicy"``, ``"CnnPolicy"``, ``"MultiInputPolicy"`` or a policy class, as for DQN
    :param env: the environment (Discrete actions), its gymnasium id, or None when loading
    :param args: DQN's other arguments, in its order
    :param kwargs: DQN's other arguments by name (the parameters of ``stable_baselines3.DQN``)
    """

    upstream: ClassVar[type] = DQN
    action_space_types = (spaces.Discrete,)

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        """
        DQN's ``train``, with prioritized batches, the Huber loss weighted by the importance-sampling weights, and
        priority updates from the TD errors.

        :param gradient_steps: number of gradient steps
        :param batch_size: minibatch size
        """
        # Switch to train mode (this affects batch norm / dropout)
        self.policy.set_training_mode(True)
        # Update learning rate according to schedule
        self._update_learning_rate(self.policy.optimizer)
        self._start_prioritized_round()

        losses = []
        for _ in range(gradient_steps):
            # Sample replay buffer, by priority (with importance-sampling weights)
            replay_data, weights = self._prioritized_sample(batch_size)
            # For n-step replay, discount factor is gamma**n_steps (when no early termination)
            discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma

            with th.no_grad():
                # Compute the next Q-values using the target network
                next_q_values = self.q_net_target(replay_data.next_observations)
                # Follow greedy policy: use the one with the highest value
                next_q_values, _ = next_q_values.max(dim=1)
                # Avoid potential broadcast issue
                next_q_values = next_q_values.reshape(-1, 1)
                # 1-step TD target
                target_q_values = replay_data.rewards + (1 - replay_data.dones) * discounts * next_q_values

            # Get current Q-values estimates
            current_q_values = self.q_net(replay_data.observations)

            # Retrieve the q-values for the actions from the replay buffer
            current_q_values = th.gather(current_q_values, dim=1, index=replay_data.actions.long())

            # Compute Huber loss (less sensitive to outliers), each sample's weighted by its importance-sampling weight
            loss = self._sample_loss(current_q_values, target_q_values, weights, loss="huber")
            losses.append(loss.item())
            # New priorities: the TD errors, from the same forward pass
            self._update_priorities(replay_data, current_q_values.detach() - target_q_values)

            # Optimize the policy
            self.policy.optimizer.zero_grad()
            loss.backward()
            # Clip gradient norm
            th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()

        # Increase update counter
        self._n_updates += gradient_steps

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", np.mean(losses))
        self._record_prioritized_logs("td_error")

    def learn(
        self: SelfPrioritizedDQN,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "PrioritizedDQN",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfPrioritizedDQN:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )
