"""Dueling double DQN with prioritized experience replay and n-step returns."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, ReplayBufferSamples, Schedule
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.dqn import DQN

from sb3_ext.common.prioritized import PrioritizedReplay
from sb3_ext.common.torch_layers import mean_noise_std, noisy_sampling, reset_noise
from sb3_ext.d3qn.policies import CnnPolicy, DuelingDQNPolicy, MlpPolicy, MultiInputPolicy

__all__ = ["D3QN", "td_targets"]

SelfD3QN = TypeVar("SelfD3QN", bound="D3QN")


def td_targets(
    rewards: th.Tensor,
    dones: th.Tensor,
    discounts: th.Tensor | float,
    next_q_target: th.Tensor,
    next_q_online: th.Tensor | None = None,
) -> th.Tensor:
    """
    Q-learning targets ``r + (1 - done) * discount * Q_target(s', a*)``.

    Double Q-learning (van Hasselt et al. 2016, https://arxiv.org/abs/1509.06461) picks ``a*`` with the online network,
    ``a* = argmax_a Q_online(s', a)``, and values it with the target network; without ``next_q_online`` the target
    network does both, ``max_a Q_target(s', a)``, as in DQN.

    :param rewards: rewards (n-step discounted sums for n-step returns), shape ``(batch, 1)``
    :param dones: 1.0 where the return must not bootstrap, shape ``(batch, 1)``
    :param discounts: discount of the bootstrap value, a number or one per sample, shape ``(batch, 1)``
    :param next_q_target: target network's Q-values of the next observations, shape ``(batch, n_actions)``
    :param next_q_online: online network's Q-values of the next observations (double Q-learning), or None
    :return: the targets, shape ``(batch, 1)``
    """
    if next_q_online is None:
        next_q = next_q_target.max(dim=1, keepdim=True).values
    else:
        next_q = th.gather(next_q_target, dim=1, index=next_q_online.argmax(dim=1, keepdim=True))
    return rewards + (1 - dones) * discounts * next_q


class D3QN(PrioritizedReplay, DQN):
    """
    Dueling double DQN with prioritized experience replay: Wang et al. 2016 (dueling, https://arxiv.org/abs/1511.06581),
    van Hasselt et al. 2016 (double Q-learning, https://arxiv.org/abs/1509.06461) and Schaul et al. 2016 (prioritized
    replay, https://arxiv.org/abs/1511.05952), with n-step returns.

    SB3's DQN with three additions, each of which can be switched off (all three off is DQN):

    - ``double_q``: the online network picks the next action, the target network values it;
    - the dueling policies (``policy_kwargs=dict(dueling=False)`` for SB3's Q-network);
    - :class:`~sb3_ext.common.buffers.PrioritizedReplayBuffer` (the default ``replay_buffer_class``): the Huber loss is
      weighted by the importance-sampling weights, the new priorities are ``|TD error| + eps`` from the same forward
      pass, and ``beta`` is annealed linearly from the buffer's initial value to 1 over training
      (:class:`~sb3_ext.common.prioritized.PrioritizedReplay`, the mechanics every prioritized algorithm shares; its
      ``prioritization`` can be ``"proportional"``, ``"rank"`` or ``"lap"``). Any SB3 buffer gives uniform replay
      (``ReplayBuffer``; ``NStepReplayBuffer`` for n-step returns).

    Noisy networks (Fortunato et al. 2018, https://arxiv.org/abs/1706.10295) are a policy option,
    ``policy_kwargs=dict(noisy=True)``; epsilon then defaults to 0. :class:`~sb3_ext.Rainbow` adds the categorical
    head, and is this class with ``distributional=False``.

    Action spaces other than ``Discrete`` are refused at construction with a ``ValueError`` naming the space (by design:
    SB3's DQN fails an assert there).

    ``n_steps`` returns work with the prioritized buffer and with ``NStepReplayBuffer``; ``n_steps`` and ``gamma`` are
    passed to the buffer. ``Dict`` observations get :class:`~sb3_ext.common.buffers.DictPrioritizedReplayBuffer`.

    Logs ``train/loss``, ``train/td_error`` (mean absolute TD error of the round's batches), for prioritized replay
    ``train/mean_priority`` (mean priority ``p ** alpha`` over the buffer's transitions), ``train/beta`` and
    ``train/max_priority``, and with noisy layers ``train/noise_std`` (mean ``|sigma|``).

    :param policy: ``"MlpPolicy"``, ``"CnnPolicy"``, ``"MultiInputPolicy"`` (dueling by default) or a policy class
    :param env: the environment (Discrete actions), or its gymnasium id
    :param learning_rate: learning rate, a number or a schedule of the remaining progress
    :param buffer_size: size of the replay buffer
    :param learning_starts: steps of acting before learning starts
    :param batch_size: minibatch size
    :param tau: soft update coefficient of the target network (1: hard update)
    :param gamma: discount factor
    :param train_freq: train every ``train_freq`` steps, or a ``(frequency, "step" | "episode")`` tuple
    :param gradient_steps: gradient steps per training round (-1: as many as env steps in the rollout)
    :param replay_buffer_class: replay buffer class (None: ``PrioritizedReplayBuffer``; ``DictPrioritizedReplayBuffer``
        for ``Dict`` observations)
    :param replay_buffer_kwargs: keyword arguments of the buffer, e.g.
        ``dict(alpha=0.6, beta=0.4, eps=1e-6, prioritization="proportional")``
    :param optimize_memory_usage: memory-efficient buffer variant (SB3's), with one-step returns only
    :param n_steps: length of the returns, >= 1
    :param double_q: double Q-learning targets (False: DQN's max over the target network)
    :param target_update_interval: env steps between target network updates
    :param exploration_fraction: fraction of training over which epsilon decreases
    :param exploration_initial_eps: initial epsilon (None: 1.0, or 0.0 with noisy layers, which explore by themselves)
    :param exploration_final_eps: final epsilon (None: 0.05, or 0.0 with noisy layers)
    :param max_grad_norm: gradient clipping norm
    :param stats_window_size: episodes averaged in the rollout logs
    :param tensorboard_log: TensorBoard folder, or None
    :param policy_kwargs: keyword arguments of the policy, e.g. ``dict(net_arch=[256, 256], dueling=True)``
    :param verbose: 0 silent, 1 info, 2 debug
    :param seed: random seed
    :param device: torch device
    :param _init_setup_model: whether to build the networks and the buffer at construction
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MlpPolicy,
        "CnnPolicy": CnnPolicy,
        "MultiInputPolicy": MultiInputPolicy,
    }
    uniform_replay_allowed = True  # (any SB3 buffer: uniform replay, the ablation of prioritization)
    action_space_types = (spaces.Discrete,)

    def __init__(
        self,
        policy: str | type[DuelingDQNPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 1e-4,
        buffer_size: int = 1_000_000,
        learning_starts: int = 100,
        batch_size: int = 32,
        tau: float = 1.0,
        gamma: float = 0.99,
        train_freq: int | tuple[int, str] = 4,
        gradient_steps: int = 1,
        replay_buffer_class: type[ReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        optimize_memory_usage: bool = False,
        n_steps: int = 1,
        double_q: bool = True,
        target_update_interval: int = 10000,
        exploration_fraction: float = 0.1,
        exploration_initial_eps: float | None = None,
        exploration_final_eps: float | None = None,
        max_grad_norm: float = 10,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,
            buffer_size=buffer_size,
            learning_starts=learning_starts,
            batch_size=batch_size,
            tau=tau,
            gamma=gamma,
            train_freq=train_freq,
            gradient_steps=gradient_steps,
            replay_buffer_class=replay_buffer_class,
            replay_buffer_kwargs=replay_buffer_kwargs,
            optimize_memory_usage=optimize_memory_usage,
            n_steps=n_steps,
            target_update_interval=target_update_interval,
            exploration_fraction=exploration_fraction,
            exploration_initial_eps=exploration_initial_eps,  # (None: resolved in _setup_model)
            exploration_final_eps=exploration_final_eps,
            max_grad_norm=max_grad_norm,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            seed=seed,
            device=device,
            _init_setup_model=False,
        )
        if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
            raise ValueError(f"n_steps must be an integer >= 1, got {n_steps!r}")
        self.double_q = double_q
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        super()._setup_model()
        # Noisy layers explore by themselves: epsilon then defaults to 0. Whether there are any is read from the policy
        # built (its class's defaults, and keyword arguments its subclasses forward, are resolved there).
        if self.exploration_initial_eps is None or self.exploration_final_eps is None:
            noisy = bool(getattr(self.policy, "noisy", False))
            if self.exploration_initial_eps is None:
                self.exploration_initial_eps = 0.0 if noisy else 1.0
            if self.exploration_final_eps is None:
                self.exploration_final_eps = 0.0 if noisy else 0.05
            self.exploration_schedule = LinearSchedule(
                self.exploration_initial_eps, self.exploration_final_eps, self.exploration_fraction
            )

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        """
        ``gradient_steps`` gradient steps on batches from the replay buffer: the loss of :meth:`_loss` (weighted by the
        importance-sampling weights with prioritized replay, whose priorities it updates), new noise in the noisy
        layers (if any) of the online and target networks for every batch. One loop for D3QN and Rainbow.

        :param gradient_steps: number of gradient steps
        :param batch_size: minibatch size
        """
        # Switch to train mode (this affects batch norm / dropout)
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        self._start_prioritized_round()

        noisy = getattr(self.policy, "noisy", False)
        losses = []
        for _ in range(gradient_steps):
            replay_data, weights = self._prioritized_sample(batch_size)
            if noisy:
                # New noise for every training batch, online and target networks alike; the target network stays in
                # evaluation mode (BatchNorm), so its noise is switched on explicitly.
                reset_noise(self.q_net)
                reset_noise(self.q_net_target)
                with noisy_sampling(self.q_net_target):
                    loss, sample_errors = self._loss(replay_data, weights)
            else:
                loss, sample_errors = self._loss(replay_data, weights)
            self._update_priorities(replay_data, sample_errors)  # (from the same forward pass)
            losses.append(loss.item())

            self.policy.optimizer.zero_grad()
            loss.backward()
            th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()

        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", np.mean(losses))
        self._record_prioritized_logs(self._error_name())
        noise_std = mean_noise_std(self.q_net) if noisy else None
        if noise_std is not None:
            self.logger.record("train/noise_std", noise_std)

    def _error_name(self) -> str:
        """Name of the per-sample errors :meth:`_loss` returns, logged as their mean absolute value."""
        return "td_error"

    def _loss(self, replay_data: ReplayBufferSamples, weights: th.Tensor | None) -> tuple[th.Tensor, np.ndarray]:
        """
        The loss of one batch and the per-sample errors that become the new priorities: the Huber loss of the TD errors
        (weighted by ``weights`` with prioritized replay), double Q-learning targets with ``double_q``.

        :param replay_data: the batch
        :param weights: importance-sampling weights, shape ``(batch, 1)``, or None for uniform replay
        :return: the loss and the TD errors, shape ``(batch,)``
        """
        # n-step buffers give the discount of each bootstrap value (gamma ** steps); one-step ones give None
        discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma
        with th.no_grad():
            next_q_target = self.q_net_target(replay_data.next_observations)
            next_q_online = self.q_net(replay_data.next_observations) if self.double_q else None
            target_q_values = td_targets(replay_data.rewards, replay_data.dones, discounts, next_q_target, next_q_online)

        current_q_values = th.gather(self.q_net(replay_data.observations), dim=1, index=replay_data.actions.long())
        td_error = (current_q_values - target_q_values).detach().cpu().numpy().reshape(-1)
        return self._sample_loss(current_q_values, target_q_values, weights, loss="huber"), td_error

    def learn(
        self: SelfD3QN,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "D3QN",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfD3QN:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )
