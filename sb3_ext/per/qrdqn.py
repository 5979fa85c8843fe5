"""sb3-contrib's QR-DQN with prioritized experience replay, and the per-sample quantile Huber loss."""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from sb3_contrib import QRDQN
from stable_baselines3.common.type_aliases import MaybeCallback

from sb3_ext.common.prioritized import PrioritizedReplay

__all__ = ["PrioritizedQRDQN", "per_sample_quantile_huber_loss"]

SelfPrioritizedQRDQN = TypeVar("SelfPrioritizedQRDQN", bound="PrioritizedQRDQN")


def per_sample_quantile_huber_loss(
    current_quantiles: th.Tensor,
    target_quantiles: th.Tensor,
    cum_prob: th.Tensor | None = None,
    sum_over_quantiles: bool = True,
) -> th.Tensor:
    """
    The quantile-regression (Huber) loss of each sample: ``sb3_contrib.common.utils.quantile_huber_loss``'s formula,
    summed over the quantile dimension with ``sum_over_quantiles`` as that function does, and averaged over every other
    dimension but the batch's, so that the batch mean of the result is ``quantile_huber_loss``'s value (with the same
    arguments).

    :param current_quantiles: current estimate of quantiles, ``(batch_size, n_quantiles)`` (QR-DQN) or
        ``(batch_size, n_critics, n_quantiles)`` (TQC)
    :param target_quantiles: target of quantiles, ``(batch_size, n_target_quantiles)``, ``(batch_size, 1,
        n_target_quantiles)`` or ``(batch_size, n_critics, n_target_quantiles)``
    :param cum_prob: cumulative probabilities of the quantiles (the midpoints of the QR-DQN paper), broadcastable to
        ``current_quantiles``' shape; None: the midpoints of ``n_quantiles`` equal bins
    :param sum_over_quantiles: sum over the quantile dimension (QR-DQN) instead of averaging (TQC)
    :return: the loss of each sample, shape ``(batch_size,)``
    :raises ValueError: for shapes ``quantile_huber_loss`` refuses
    """
    if current_quantiles.ndim != target_quantiles.ndim:
        raise ValueError(
            f"current_quantiles has {current_quantiles.ndim} dimensions and target_quantiles {target_quantiles.ndim}: "
            "they must have the same number"
        )
    if current_quantiles.shape[0] != target_quantiles.shape[0]:
        raise ValueError(
            f"current_quantiles' batch size ({current_quantiles.shape[0]}) differs from target_quantiles' "
            f"({target_quantiles.shape[0]})"
        )
    if current_quantiles.ndim not in (2, 3):
        raise ValueError(
            f"current_quantiles must have 2 dimensions (QR-DQN) or 3 (TQC), got shape {tuple(current_quantiles.shape)}"
        )
    if cum_prob is None:
        n_quantiles = current_quantiles.shape[-1]
        cum_prob = (th.arange(n_quantiles, device=current_quantiles.device, dtype=th.float) + 0.5) / n_quantiles
        # broadcastable to the pairwise differences, (batch, [n_critics,] n_quantiles, n_target_quantiles)
        cum_prob = cum_prob.view(*([1] * (current_quantiles.ndim - 1)), -1, 1)
    # (batch, [n_critics,] n_quantiles, n_target_quantiles), as in quantile_huber_loss
    pairwise_delta = target_quantiles.unsqueeze(-2) - current_quantiles.unsqueeze(-1)
    abs_pairwise_delta = th.abs(pairwise_delta)
    huber_loss = th.where(abs_pairwise_delta > 1, abs_pairwise_delta - 0.5, pairwise_delta**2 * 0.5)
    loss = th.abs(cum_prob - (pairwise_delta.detach() < 0).float()) * huber_loss
    if sum_over_quantiles:
        loss = loss.sum(dim=-2)
    return loss.reshape(loss.shape[0], -1).mean(dim=1)


class PrioritizedQRDQN(PrioritizedReplay, QRDQN):
    """
    QR-DQN (Dabney et al. 2017, https://arxiv.org/abs/1710.10044) with prioritized experience replay (Schaul et al.
    2016, https://arxiv.org/abs/1511.05952) or loss-adjusted prioritization (LAP, Fujimoto et al. 2020,
    https://arxiv.org/abs/2007.06049).

    ``sb3_contrib.QRDQN`` (its constructor, hyperparameters, policies and saved files) with a prioritized buffer; its
    ``train`` is QRDQN's but for:

    - the batches come from a :class:`~sb3_ext.common.buffers.PrioritizedReplayBuffer` (``DictPrioritizedReplayBuffer``
      for ``Dict`` observations), with ``beta`` annealed linearly from its initial value to 1 over training;
    - the loss is the mean over the batch of each sample's quantile Huber loss
      (:func:`per_sample_quantile_huber_loss`, summed over quantiles as QRDQN does) weighted by its importance-sampling
      weight; with LAP it is left unweighted, as the quantile Huber loss already is a Huber-type loss;
    - the new priorities are those per-sample losses, from the same forward pass.

    With ``alpha=0`` (uniform sampling, unit weights) it trains as QRDQN does.

    Every constructor argument is QRDQN's (the parameters of ``sb3_contrib.QRDQN``). Prioritized replay's own
    arguments go in ``replay_buffer_kwargs``: ``alpha``, ``beta``, ``eps`` and ``prioritization``
    (``"proportional"``, ``"rank"`` or ``"lap"``), e.g. ``replay_buffer_kwargs=dict(alpha=0.6, beta=0.4)``; their
    defaults are PrioritizedReplayBuffer's. A ``replay_buffer_class`` that does not prioritize is refused with a
    ``ValueError`` (for uniform replay use QRDQN).

    Logs QRDQN's values, ``train/quantile_loss`` (the mean per-sample quantile loss of the round's batches), and
    ``train/beta``, ``train/mean_priority`` and ``train/max_priority``.

    Action spaces other than ``Discrete`` are refused at construction with a ``ValueError`` naming the space (QRDQN
    fails an ``assert``).

    :param policy: the policy: ``"MlpPolicy"``, ``"CnnPolicy"``, ``"MultiInputPolicy"`` or a policy class, as for QRDQN
    :param env: the environment (Discrete actions), its gymnasium id, or None when loading
    :param args: QRDQN's other arguments, in its order
    :param kwargs: QRDQN's other arguments by name (the parameters of ``sb3_contrib.QRDQN``)
    """

    upstream = QRDQN
    action_space_types = (spaces.Discrete,)

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        """
        QRDQN's ``train`` with prioritized batches, the per-sample losses weighted by their importance-sampling
        weights, and priority updates.

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
            # Sample replay buffer (by priority, with importance-sampling weights)
            replay_data, weights = self._prioritized_sample(batch_size)
            # For n-step replay, discount factor is gamma**n_steps (when no early termination)
            discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma

            with th.no_grad():
                # Compute the quantiles of next observation
                next_quantiles = self.quantile_net_target(replay_data.next_observations)
                # Compute the greedy actions which maximize the next Q values
                next_greedy_actions = next_quantiles.mean(dim=1, keepdim=True).argmax(dim=2, keepdim=True)
                # Make "n_quantiles" copies of actions, and reshape to (batch_size, n_quantiles, 1)
                next_greedy_actions = next_greedy_actions.expand(batch_size, self.n_quantiles, 1)
                # Follow greedy policy: use the one with the highest Q values
                next_quantiles = next_quantiles.gather(dim=2, index=next_greedy_actions).squeeze(dim=2)
                # 1-step TD target
                target_quantiles = replay_data.rewards + (1 - replay_data.dones) * discounts * next_quantiles

            # Get current quantile estimates
            current_quantiles = self.quantile_net(replay_data.observations)

            # Make "n_quantiles" copies of actions, and reshape to (batch_size, n_quantiles, 1).
            actions = replay_data.actions[..., None].long().expand(batch_size, self.n_quantiles, 1)
            # Retrieve the quantiles for the actions from the replay buffer
            current_quantiles = th.gather(current_quantiles, dim=2, index=actions).squeeze(dim=2)

            # Quantile Huber loss of each sample, summing over a quantile dimension as in the paper, weighted by the
            # importance-sampling weights (unweighted for uniform replay and LAP)
            sample_losses = per_sample_quantile_huber_loss(current_quantiles, target_quantiles, sum_over_quantiles=True)
            loss = (weights.reshape(-1) * sample_losses).mean() if weights is not None else sample_losses.mean()
            self._update_priorities(replay_data, sample_losses)  # (from the same forward pass)
            losses.append(loss.item())

            # Optimize the policy
            self.policy.optimizer.zero_grad()
            loss.backward()
            # Clip gradient norm
            if self.max_grad_norm is not None:
                th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()

        # Increase update counter
        self._n_updates += gradient_steps

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", np.mean(losses))
        self._record_prioritized_logs("quantile_loss")

    def learn(
        self: SelfPrioritizedQRDQN,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "PrioritizedQRDQN",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfPrioritizedQRDQN:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )
