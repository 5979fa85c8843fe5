"""Rainbow: categorical, noisy, dueling double DQN with prioritized n-step replay."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, ReplayBufferSamples, Schedule

from sb3_ext.d3qn import D3QN
from sb3_ext.rainbow.policies import CategoricalQNetwork, CnnPolicy, MlpPolicy, MultiInputPolicy, RainbowPolicy, _check_support

__all__ = ["Rainbow", "project_distribution"]

SelfRainbow = TypeVar("SelfRainbow", bound="Rainbow")


def project_distribution(
    next_probabilities: th.Tensor,
    rewards: th.Tensor,
    dones: th.Tensor,
    discounts: th.Tensor | float,
    support: th.Tensor,
) -> th.Tensor:
    """
    The categorical n-step target (Bellemare et al. 2017, Algorithm 1): the distribution of ``r + discount * Z(s')``,
    projected onto the support. Each atom ``z_j`` of the next distribution moves to ``Tz_j = r + (1 - done) * discount *
    z_j``, clipped to ``[v_min, v_max]``, and its probability is shared between the two atoms around it in proportion
    to their closeness; in Dopamine's notation, for all atoms at once::

        m_i = sum_j clip(1 - |Tz_j - z_i| / dz, 0, 1) * p_j        (dz: the spacing of the atoms)

    It is computed as in Algorithm 1, with ``b_j = (Tz_j - v_min) / dz``: ``p_j (1 - (b_j - floor(b_j)))`` goes to atom
    ``floor(b_j)`` and ``p_j (b_j - floor(b_j))`` to atom ``floor(b_j) + 1`` (all to ``floor(b_j)`` when ``b_j`` is an
    atom), two scatters of ``(batch, n_atoms)`` values. A terminal transition (``done``) puts all its mass at ``r``
    (split between the atoms around it); a target beyond either end of the support goes to that end.

    :param next_probabilities: the next distribution ``p_j`` (at the action the target picks), shape ``(batch, n_atoms)``
    :param rewards: rewards (n-step discounted sums for n-step returns), shape ``(batch, 1)``
    :param dones: 1.0 where the return must not bootstrap, shape ``(batch, 1)``
    :param discounts: discount of the bootstrap, a number or one per sample, shape ``(batch, 1)``
    :param support: the atoms ``z``, evenly spaced and increasing, shape ``(n_atoms,)``
    :return: the projected target distribution ``m``, shape ``(batch, n_atoms)``; each row sums to 1
    """
    n_atoms = len(support)
    v_min, v_max = float(support[0]), float(support[-1])
    delta = (v_max - v_min) / (n_atoms - 1)
    target_atoms = (rewards + (1.0 - dones) * discounts * support.unsqueeze(0)).clamp(v_min, v_max)  # (batch, j)
    position = (target_atoms - v_min) / delta  # b_j, in [0, n_atoms - 1]
    lower = position.floor().clamp(max=n_atoms - 1)
    upper_share = (position - lower) * next_probabilities
    projected = th.zeros_like(next_probabilities)
    projected.scatter_add_(1, lower.long(), next_probabilities - upper_share)
    projected.scatter_add_(1, (lower + 1).clamp(max=n_atoms - 1).long(), upper_share)
    return projected


class Rainbow(D3QN):
    """
    Rainbow (Hessel et al. 2018, https://arxiv.org/abs/1710.02298): DQN with six parts, each of which can be switched
    off, on SB3's DQN structure (it is :class:`~sb3_ext.D3QN` with a categorical head):

    - categorical return distributions (``distributional``; Bellemare et al. 2017, https://arxiv.org/abs/1707.06887):
      ``n_atoms`` atoms from ``v_min`` to ``v_max``; the loss is the cross-entropy between the projected n-step target
      distribution (:func:`project_distribution`) and the predicted one, weighted by the importance-sampling weights;
      the new priorities are the per-sample losses (Hessel et al.);
    - double Q-learning (``double_q``): the online network's expected Q-values pick the next action, the target
      network's distribution at that action is the target;
    - dueling streams (``policy_kwargs=dict(dueling=...)``), per atom: ``V + A - mean over actions of A``;
    - noisy networks (``policy_kwargs=dict(noisy=..., noisy_std=0.5)``; Fortunato et al. 2018,
      https://arxiv.org/abs/1706.10295) in the value and advantage streams, on by default: new noise for every training
      batch (online and target networks) and every action chosen in rollouts; ``deterministic=True`` (evaluation) uses
      the mean weights. With noisy layers epsilon defaults to 0;
    - prioritized replay (:class:`~sb3_ext.PrioritizedReplayBuffer`, the default buffer; all envs of a VecEnv,
      time-limit truncations) and n-step returns (``n_steps``, 3 by default).

    ``Rainbow(distributional=False, policy_kwargs=dict(noisy=False))`` trains exactly as D3QN with the same
    hyperparameters and seed: there is one train loop for both. ``model.q_net(obs)`` gives the expected Q-values, so
    ``predict`` and ``evaluate_policy`` work as for DQN; ``model.q_net.probabilities(obs)`` gives the distributions,
    ``model.q_net.support`` the atoms and ``model.q_net.reset_noise()`` new noise.

    Logs ``train/loss``, ``train/cross_entropy`` (mean per-sample loss; ``train/td_error`` with
    ``distributional=False``), ``train/mean_priority`` (over the buffer, as D3QN), ``train/beta``,
    ``train/max_priority`` and ``train/noise_std`` (mean ``|sigma|`` of the noisy layers).

    :param policy: ``"MlpPolicy"``, ``"CnnPolicy"``, ``"MultiInputPolicy"`` or a policy class
    :param env: the environment (Discrete actions), or its gymnasium id
    :param learning_rate: learning rate, a number or a schedule of the remaining progress
    :param buffer_size: size of the replay buffer
    :param learning_starts: steps of acting before learning starts
    :param batch_size: minibatch size
    :param tau: soft update coefficient of the target network (1: hard update)
    :param gamma: discount factor
    :param train_freq: train every ``train_freq`` steps, or a ``(frequency, "step" | "episode")`` tuple
    :param gradient_steps: gradient steps per training round (-1: as many as env steps in the rollout)
    :param replay_buffer_class: replay buffer class (None: ``PrioritizedReplayBuffer``)
    :param replay_buffer_kwargs: keyword arguments of the buffer, e.g. ``dict(alpha=0.5, beta=0.4)``, and its
        ``prioritization`` (``"proportional"``, ``"rank"`` or ``"lap"``; with LAP the cross-entropy is not weighted)
    :param optimize_memory_usage: memory-efficient buffer variant (SB3's), with one-step returns only
    :param n_steps: length of the returns, >= 1
    :param double_q: double Q-learning (False: the target network picks the next action too)
    :param distributional: categorical return distributions (False: expected Q-values and the Huber loss, as D3QN)
    :param n_atoms: number of atoms of the distributions, >= 2
    :param v_min: smallest atom
    :param v_max: largest atom, > ``v_min``
    :param target_update_interval: env steps between target network updates
    :param exploration_fraction: fraction of training over which epsilon decreases
    :param exploration_initial_eps: initial epsilon (None: 0.0 with noisy layers, else 1.0)
    :param exploration_final_eps: final epsilon (None: 0.0 with noisy layers, else 0.05)
    :param max_grad_norm: gradient clipping norm
    :param stats_window_size: episodes averaged in the rollout logs
    :param tensorboard_log: TensorBoard folder, or None
    :param policy_kwargs: keyword arguments of the policy, e.g. ``dict(net_arch=[256], noisy=True, noisy_std=0.5)``
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
    q_net: CategoricalQNetwork  # (a DuelingQNetwork with distributional=False)
    q_net_target: CategoricalQNetwork

    def __init__(
        self,
        policy: str | type[RainbowPolicy],
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
        n_steps: int = 3,
        double_q: bool = True,
        distributional: bool = True,
        n_atoms: int = 51,
        v_min: float = -10.0,
        v_max: float = 10.0,
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
        _check_support(n_atoms, v_min, v_max)
        # The head is the policy's: it gets the algorithm's settings (and refuses others given to it directly)
        policy_kwargs = dict(policy_kwargs or {})
        for key, value in (("distributional", distributional), ("n_atoms", n_atoms), ("v_min", v_min), ("v_max", v_max)):
            if policy_kwargs.setdefault(key, value) != value:
                raise ValueError(
                    f"policy_kwargs {key}={policy_kwargs[key]} differs from Rainbow's {key}={value}: set {key} on Rainbow only"
                )
        self.distributional, self.n_atoms, self.v_min, self.v_max = distributional, n_atoms, float(v_min), float(v_max)
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
            double_q=double_q,
            target_update_interval=target_update_interval,
            exploration_fraction=exploration_fraction,
            exploration_initial_eps=exploration_initial_eps,
            exploration_final_eps=exploration_final_eps,
            max_grad_norm=max_grad_norm,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            seed=seed,
            device=device,
            _init_setup_model=_init_setup_model,
        )

    def _error_name(self) -> str:
        return "cross_entropy" if self.distributional else super()._error_name()

    def _loss(self, replay_data: ReplayBufferSamples, weights: th.Tensor | None) -> tuple[th.Tensor, np.ndarray]:
        """
        The categorical loss of one batch (D3QN's with ``distributional=False``): the cross-entropy between the
        projected target distribution and the predicted distribution at the action taken, per sample.

        :param replay_data: the batch
        :param weights: importance-sampling weights, shape ``(batch, 1)``, or None for uniform replay
        :return: the (weighted) mean loss and the per-sample losses, shape ``(batch,)``, the new priorities
        """
        if not self.distributional:
            return super()._loss(replay_data, weights)
        discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma
        rows = th.arange(len(replay_data.actions), device=self.device)
        support = self.q_net_target.support
        with th.no_grad():
            next_probabilities = self.q_net_target.probabilities(replay_data.next_observations)  # (batch, actions, atoms)
            if self.double_q:  # the online network picks the next action, by its expected Q-values
                next_actions = self.q_net(replay_data.next_observations).argmax(dim=1)
            else:
                next_actions = (next_probabilities @ support).argmax(dim=1)
            target = project_distribution(
                next_probabilities[rows, next_actions], replay_data.rewards, replay_data.dones, discounts, support
            )
        log_probabilities = self.q_net.log_probabilities(replay_data.observations)[
            rows, replay_data.actions.long().reshape(-1)
        ]
        cross_entropy = -(target * log_probabilities).sum(dim=1)
        loss = cross_entropy.mean() if weights is None else (weights.reshape(-1) * cross_entropy).mean()
        return loss, cross_entropy.detach().cpu().numpy()

    def learn(
        self: SelfRainbow,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "Rainbow",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfRainbow:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )
