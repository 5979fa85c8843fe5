"""REINFORCE: Monte-Carlo policy gradient on complete episodes, with an optional baseline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.policies import ActorCriticCnnPolicy, ActorCriticPolicy, BasePolicy, MultiInputActorCriticPolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, PyTorchObs, Schedule
from stable_baselines3.common.utils import explained_variance, obs_as_tensor
from stable_baselines3.common.vec_env import VecEnv
from torch.nn import functional as F

from sb3_ext.errors import suggest

__all__ = ["BASELINES", "REINFORCE", "EpisodeBatch", "ReinforceLoss", "discounted_returns", "reinforce_loss"]

SelfREINFORCE = TypeVar("SelfREINFORCE", bound="REINFORCE")

#: The baselines :class:`REINFORCE` knows: none, the batch mean return, or a learned state value.
BASELINES = ("none", "mean", "value")


def discounted_returns(rewards: np.ndarray, dones: np.ndarray, bootstrap_values: np.ndarray, gamma: float) -> np.ndarray:
    """
    Discounted reward-to-go of every step, computed backwards over steps taken by ``n_envs`` envs side by side:
    ``G_t = r_t + gamma * G_{t+1}`` inside an episode and ``G_t = r_t + gamma * b_t`` at an episode's last step,
    where ``b_t`` is the bootstrap value given for that step (0 for a true end).

    Steps after an env's last ``done`` belong to an episode that has not finished: their returns are those of an
    episode cut there without bootstrap, and a caller that wants Monte-Carlo returns must not use them.

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
    returns = np.zeros_like(rewards)
    next_return = np.zeros(rewards.shape[1:], dtype=np.float64)
    for step in reversed(range(len(rewards))):
        next_return = rewards[step] + gamma * np.where(dones[step], bootstrap_values[step], next_return)
        returns[step] = next_return
    return returns.astype(np.float32)


class ReinforceLoss(NamedTuple):
    """The loss of one REINFORCE update and its parts (see :func:`reinforce_loss`)."""

    loss: th.Tensor
    policy_loss: th.Tensor
    value_loss: th.Tensor
    entropy_loss: th.Tensor
    advantages: th.Tensor
    baseline_values: th.Tensor


def reinforce_loss(
    log_prob: th.Tensor,
    entropy: th.Tensor | None,
    returns: th.Tensor,
    values: th.Tensor | None,
    baseline: str,
    normalize_advantage: bool,
    ent_coef: float,
    vf_coef: float,
) -> ReinforceLoss:
    """
    The REINFORCE loss over a batch of steps (all from complete episodes)::

        b_t = 0 ("none"), mean_t' G_t' ("mean"), or V(s_t) without gradient ("value")
        A_t = G_t - b_t, then, with normalize_advantage, A_t = (A_t - mean A) / (std A + 1e-8)
        policy_loss = -mean_t(log pi(a_t | s_t) * A_t)
        entropy_loss = -mean_t(H(pi(. | s_t)))      (mean_t(log pi(a_t | s_t)) where H has no closed form)
        value_loss = mean_t((V(s_t) - G_t) ** 2)    ("value" only; 0 and left out of the loss otherwise)
        loss = policy_loss + ent_coef * entropy_loss + vf_coef * value_loss

    ``std`` is the unbiased standard deviation; a batch of one step is not normalised. With
    ``normalize_advantage``, ``"none"`` and ``"mean"`` give the same advantages (both centre the returns).

    :param log_prob: log-probability of each step's action under the current policy, shape ``(n,)``
    :param entropy: entropy of the policy at each step, shape ``(n,)``, or None where it has no closed form
    :param returns: discounted reward-to-go of each step, shape ``(n,)``
    :param values: the value head's prediction at each step, shape ``(n,)``; needed for ``baseline="value"`` only
    :param baseline: ``"none"``, ``"mean"`` or ``"value"``
    :param normalize_advantage: normalise the advantages to zero mean and unit standard deviation over the batch
    :param ent_coef: weight of the entropy bonus
    :param vf_coef: weight of the value loss (used with ``baseline="value"`` only)
    :return: the loss and its parts
    """
    if baseline == "none":
        baseline_values = th.zeros_like(returns)
    elif baseline == "mean":
        baseline_values = returns.mean().expand_as(returns)
    elif baseline == "value":
        if values is None:
            raise ValueError("baseline='value' needs the value head's predictions (values=None was given)")
        baseline_values = values.detach()
    else:
        raise ValueError(f"unknown baseline '{baseline}'{suggest(baseline, BASELINES)} (valid: {', '.join(BASELINES)})")
    advantages = returns - baseline_values
    if normalize_advantage and advantages.numel() > 1:
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    policy_loss = -(log_prob * advantages).mean()
    entropy_loss = -entropy.mean() if entropy is not None else log_prob.mean()
    loss = policy_loss + ent_coef * entropy_loss
    if baseline == "value":
        assert values is not None  # checked above
        value_loss = F.mse_loss(values, returns)
        loss = loss + vf_coef * value_loss
    else:
        value_loss = th.zeros((), device=returns.device)
    return ReinforceLoss(loss, policy_loss, value_loss, entropy_loss, advantages, baseline_values)


@dataclass(frozen=True)
class EpisodeBatch:
    """
    The complete episodes collected for one update, flattened step by step: episode after episode of the first env,
    then those of the second, and so on.

    :param observations: observations (a dict of tensors for ``Dict`` spaces), leading dimension ``n``
    :param actions: actions as the policy sampled them (before clipping to the action space), leading dimension ``n``
    :param returns: discounted reward-to-go, shape ``(n,)``
    :param episode_lengths: length of each episode, in the order of the steps
    :param discarded_steps: env steps taken while collecting that belong to no episode of the batch
    """

    observations: PyTorchObs
    actions: th.Tensor
    returns: th.Tensor
    episode_lengths: np.ndarray
    discarded_steps: int

    @property
    def n_episodes(self) -> int:
        """Number of episodes in the batch."""
        return len(self.episode_lengths)


def _stack_kept(items: list[np.ndarray], kept: np.ndarray) -> np.ndarray:
    """Stack per-step arrays of shape ``(n_envs, ...)`` and keep the ``kept[step, env]`` entries, env after env."""
    return np.stack(items).swapaxes(0, 1)[kept.T]


class REINFORCE(OnPolicyAlgorithm):
    """
    REINFORCE (Monte-Carlo policy gradient), with an optional baseline.

    Paper: https://link.springer.com/article/10.1007/BF00992696 (Williams, 1992)
    Introduction: Sutton & Barto, Reinforcement Learning: An Introduction (2nd ed.), sections 13.3 and 13.4.

    **Batches are complete episodes.** Each update takes one gradient step on a batch of whole episodes, collected
    with the current policy. All ``n_envs`` envs start an episode at the start of a batch. After each step, the envs
    whose episode ended start another if the batch is not yet full (fewer than ``n_episodes`` finished episodes, or
    fewer than ``min_batch_steps`` steps in them, counting the episodes that ended at this step), and wait otherwise.
    Collection stops once no env is in an episode of the batch, so a batch holds at least
    ``max(n_episodes, n_envs)`` episodes and never part of one. The steps a waiting env takes meanwhile are
    discarded: they count in ``num_timesteps`` (the env did take them) and are logged as ``rollout/discarded_steps``,
    and the next batch starts all envs afresh with ``env.reset()``. With ``n_envs=1`` nothing is discarded. Whether
    an env starts an episode depends only on episodes that already ended, never on the episode itself, so keeping
    every started episode whole biases the batch towards no episode length.

    **Returns** are discounted reward-to-go within each episode, with no bootstrapping at a batch's end (there is
    none inside an episode). An episode cut by a time limit (``TimeLimit.truncated``) has not ended in the MDP: with
    ``baseline="value"`` its last return bootstraps from the value head, ``G_T = r_T + gamma * V(s_{T+1})`` with the
    final observation; with the other baselines there is no estimate of what follows, and the cut is treated as the
    episode's end.

    **Baselines.** ``"none"``: the advantage is the return. ``"mean"``: the batch's mean return is subtracted.
    ``"value"``: the policy's value head, trained by regression on the returns (loss weight ``vf_coef``), is
    subtracted (without gradient). With ``"none"`` and ``"mean"`` the value head exists (the policies are SB3's
    actor-critic policies) but is neither trained nor used. The loss is written out in :func:`reinforce_loss`.

    :param policy: The policy model to use (MlpPolicy, CnnPolicy, MultiInputPolicy)
    :param env: The environment to learn from (if registered in Gym, can be str)
    :param learning_rate: The learning rate, it can be a function of the current progress remaining (from 1 to 0)
    :param n_episodes: Minimum number of complete episodes in a batch, across all envs (>= 1)
    :param min_batch_steps: Minimum number of steps in a batch's complete episodes, across all envs (>= 0); the batch
        is full when both minimums are reached
    :param gamma: Discount factor, in [0, 1]
    :param baseline: ``"none"``, ``"mean"`` (batch mean return) or ``"value"`` (learned state value)
    :param normalize_advantage: Normalise the advantages to zero mean and unit standard deviation over each batch
        (with ``baseline="none"`` this is the "normalised returns" of tutorial REINFORCE)
    :param ent_coef: Entropy coefficient for the loss calculation (>= 0)
    :param vf_coef: Value function coefficient for the loss calculation, used with ``baseline="value"`` only (>= 0)
    :param max_grad_norm: The maximum value for the gradient clipping (> 0)
    :param use_sde: Whether to use generalized State Dependent Exploration (gSDE)
        instead of action noise exploration (default: False)
    :param sde_sample_freq: Sample a new noise matrix every n steps when using gSDE
        Default: -1 (only sample at the beginning of each batch)
    :param stats_window_size: Window size for the rollout logging, specifying the number of episodes to average
        the reported success rate, mean episode length, and mean reward over
    :param tensorboard_log: the log location for tensorboard (if None, no logging)
    :param policy_kwargs: additional arguments to be passed to the policy on creation
    :param verbose: Verbosity level: 0 for no output, 1 for info messages (such as device or wrappers used), 2 for
        debug messages
    :param seed: Seed for the pseudo random generators
    :param device: Device (cpu, cuda, ...) on which the code should be run.
        Setting it to auto, the code will be run on the GPU if possible.
    :param _init_setup_model: Whether or not to build the network at the creation of the instance
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": ActorCriticPolicy,
        "CnnPolicy": ActorCriticCnnPolicy,
        "MultiInputPolicy": MultiInputActorCriticPolicy,
    }
    _episode_batch: EpisodeBatch | None

    def __init__(
        self,
        policy: str | type[ActorCriticPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 1e-3,
        n_episodes: int = 1,
        min_batch_steps: int = 0,
        gamma: float = 0.99,
        baseline: str = "value",
        normalize_advantage: bool = False,
        ent_coef: float = 0.0,
        vf_coef: float = 0.5,
        max_grad_norm: float = 0.5,
        use_sde: bool = False,
        sde_sample_freq: int = -1,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ):
        # Fail on bad values before an env is built.
        if baseline not in BASELINES:
            raise ValueError(
                f"unknown baseline '{baseline}'{suggest(str(baseline), BASELINES)} (valid: {', '.join(BASELINES)})"
            )
        if isinstance(n_episodes, bool) or not isinstance(n_episodes, (int, np.integer)) or n_episodes < 1:
            raise ValueError(
                f"n_episodes must be an integer >= 1: a batch holds at least one complete episode, got {n_episodes!r}"
            )
        if isinstance(min_batch_steps, bool) or not isinstance(min_batch_steps, (int, np.integer)) or min_batch_steps < 0:
            raise ValueError(f"min_batch_steps must be an integer >= 0, got {min_batch_steps!r}")
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {gamma!r}")
        if ent_coef < 0:
            raise ValueError(f"ent_coef must be >= 0, got {ent_coef!r}")
        if vf_coef < 0:
            raise ValueError(f"vf_coef must be >= 0, got {vf_coef!r}")
        if not max_grad_norm > 0:
            raise ValueError(f"max_grad_norm must be > 0, got {max_grad_norm!r}")

        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,
            n_steps=0,  # no fixed-length rollouts: a batch is whole episodes (n_episodes, min_batch_steps)
            gamma=gamma,
            gae_lambda=1.0,  # Monte-Carlo returns
            ent_coef=ent_coef,
            vf_coef=vf_coef,
            max_grad_norm=max_grad_norm,
            use_sde=use_sde,
            sde_sample_freq=sde_sample_freq,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            device=device,
            seed=seed,
            _init_setup_model=False,
            supported_action_spaces=(spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary),
        )
        self.n_episodes = int(n_episodes)
        self.min_batch_steps = int(min_batch_steps)
        self.baseline = baseline
        self.normalize_advantage = normalize_advantage
        self._episode_batch = None

        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        # As OnPolicyAlgorithm._setup_model, without its fixed-size RolloutBuffer: batches are built per update.
        self._setup_lr_schedule()
        self.set_random_seed(self.seed)
        self.policy = self.policy_class(  # type: ignore[assignment]
            self.observation_space, self.action_space, self.lr_schedule, use_sde=self.use_sde, **self.policy_kwargs
        )
        self.policy = self.policy.to(self.device)
        self._maybe_recommend_cpu()
        self._episode_batch = None

    def _batch_full(self, n_episodes: int, n_steps: int) -> bool:
        return n_episodes >= self.n_episodes and n_steps >= self.min_batch_steps

    def collect_episodes(self, env: VecEnv, callback: BaseCallback) -> bool:
        """
        Collect a batch of complete episodes with the current policy (see the class docstring for the rule) and
        store it for :meth:`train`.

        :param env: The training environment
        :param callback: Callback that will be called at each step (and at the beginning and end of the collection)
        :return: True once the batch is complete, False if the callback stopped training first (no batch is stored)
        """
        assert self._last_obs is not None, "No previous observation was provided"
        self.policy.set_training_mode(False)
        self._episode_batch = None
        n_envs = env.num_envs
        if not np.all(self._last_episode_starts):
            # Some envs were left waiting in the middle of an episode whose start is not ours: start afresh.
            self._last_obs = env.reset()  # type: ignore[assignment]
            self._last_episode_starts = np.ones((n_envs,), dtype=bool)
        if self.use_sde:
            self.policy.reset_noise(n_envs)

        callback.on_rollout_start()

        observations: list[Any] = []
        actions_list: list[np.ndarray] = []
        rewards_list: list[np.ndarray] = []
        dones_list: list[np.ndarray] = []
        bootstrap_list: list[np.ndarray] = []
        kept_list: list[np.ndarray] = []
        collecting = np.ones((n_envs,), dtype=bool)  # the env's current episode belongs to the batch
        episode_steps = np.zeros((n_envs,), dtype=np.int64)
        episode_lengths: list[list[int]] = [[] for _ in range(n_envs)]
        batch_episodes, batch_steps, n_steps = 0, 0, 0

        while collecting.any():
            if self.use_sde and self.sde_sample_freq > 0 and n_steps % self.sde_sample_freq == 0:
                self.policy.reset_noise(n_envs)

            with th.no_grad():
                obs_tensor = obs_as_tensor(self._last_obs, self.device)  # type: ignore[arg-type]
                sampled = self.policy.get_distribution(obs_tensor).get_actions()
            actions = sampled.cpu().numpy().reshape((-1, *self.action_space.shape))  # type: ignore[misc]

            clipped_actions = actions
            if isinstance(self.action_space, spaces.Box):
                if self.policy.squash_output:
                    clipped_actions = self.policy.unscale_action(clipped_actions)
                else:
                    clipped_actions = np.clip(actions, self.action_space.low, self.action_space.high)

            new_obs, rewards, dones, infos = env.step(clipped_actions)
            self.num_timesteps += n_envs

            # Give access to local variables
            callback.update_locals(locals())
            if not callback.on_step():
                return False

            self._update_info_buffer(infos, dones)
            n_steps += 1

            bootstrap = np.zeros((n_envs,), dtype=np.float32)
            ended = np.flatnonzero(dones & collecting)
            if self.baseline == "value":
                for idx in ended:
                    terminal_obs = infos[idx].get("terminal_observation")
                    if terminal_obs is not None and infos[idx].get("TimeLimit.truncated", False):
                        with th.no_grad():
                            obs, _ = self.policy.obs_to_tensor(terminal_obs)
                            bootstrap[idx] = self.policy.predict_values(obs).item()

            if isinstance(self._last_obs, dict):
                observations.append({key: np.array(value) for key, value in self._last_obs.items()})
            else:
                observations.append(np.array(self._last_obs))
            actions_list.append(actions)
            rewards_list.append(np.asarray(rewards, dtype=np.float32))
            dones_list.append(np.asarray(dones, dtype=bool))
            bootstrap_list.append(bootstrap)
            kept_list.append(collecting.copy())

            episode_steps[collecting] += 1
            for idx in ended:
                episode_lengths[idx].append(int(episode_steps[idx]))
                batch_episodes += 1
                batch_steps += int(episode_steps[idx])
            episode_steps[ended] = 0
            if self._batch_full(batch_episodes, batch_steps):
                collecting[ended] = False  # envs that end an episode once the batch is full wait for the others

            self._last_obs = new_obs  # type: ignore[assignment]
            self._last_episode_starts = dones

        kept = np.stack(kept_list)
        returns = discounted_returns(np.stack(rewards_list), np.stack(dones_list), np.stack(bootstrap_list), self.gamma)
        if isinstance(observations[0], dict):
            batch_obs: Any = {key: _stack_kept([obs[key] for obs in observations], kept) for key in observations[0]}
        else:
            batch_obs = _stack_kept(observations, kept)
        self._episode_batch = EpisodeBatch(
            observations=obs_as_tensor(batch_obs, self.device),
            actions=th.as_tensor(_stack_kept(actions_list, kept), device=self.device),
            returns=th.as_tensor(returns.T[kept.T], device=self.device),
            episode_lengths=np.array([length for lengths in episode_lengths for length in lengths], dtype=np.int64),
            discarded_steps=int(kept.size - kept.sum()),
        )
        self.logger.record("rollout/episodes_per_update", batch_episodes)
        self.logger.record("rollout/steps_per_update", batch_steps)
        self.logger.record("rollout/discarded_steps", self._episode_batch.discarded_steps)

        callback.update_locals(locals())
        callback.on_rollout_end()
        return True

    def train(self) -> None:
        """
        Update the policy (and, with ``baseline="value"``, the value head) with one gradient step on the batch of
        complete episodes from :meth:`collect_episodes`.
        """
        batch = self._episode_batch
        if batch is None:
            raise RuntimeError("REINFORCE.train() needs a batch of episodes: call collect_episodes() first")
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)

        actions = batch.actions
        if isinstance(self.action_space, spaces.Discrete):
            actions = actions.long().flatten()
        values: th.Tensor | None
        if self.baseline == "value":
            values, log_prob, entropy = self.policy.evaluate_actions(batch.observations, actions)
            values = values.flatten()
        else:  # the value head plays no part: skip it
            distribution = self.policy.get_distribution(batch.observations)
            values, log_prob, entropy = None, distribution.log_prob(actions), distribution.entropy()

        losses = reinforce_loss(
            log_prob,
            entropy,
            batch.returns,
            values,
            self.baseline,
            self.normalize_advantage,
            self.ent_coef,
            self.vf_coef,
        )
        self.policy.optimizer.zero_grad()
        losses.loss.backward()
        th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
        self.policy.optimizer.step()
        self._episode_batch = None

        self._n_updates += 1
        explained_var = explained_variance(losses.baseline_values.cpu().numpy(), batch.returns.cpu().numpy())
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", losses.loss.item())
        self.logger.record("train/policy_loss", losses.policy_loss.item())
        self.logger.record("train/entropy", -losses.entropy_loss.item())
        self.logger.record("train/explained_variance", explained_var)
        if self.baseline == "value":
            self.logger.record("train/value_loss", losses.value_loss.item())
        if hasattr(self.policy, "log_std"):
            self.logger.record("train/std", th.exp(self.policy.log_std).mean().item())

    def learn(
        self: SelfREINFORCE,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1,
        tb_log_name: str = "REINFORCE",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfREINFORCE:
        """
        Train: collect a batch of complete episodes, update, repeat until ``total_timesteps`` env steps are done.
        The last batch is completed, so training may run past ``total_timesteps`` by up to one batch.

        :param total_timesteps: The total number of env steps (across envs) to train on
        :param callback: callback(s) called at every step with the state of the algorithm
        :param log_interval: The number of updates between logs
        :param tb_log_name: the name of the run for TensorBoard logging
        :param reset_num_timesteps: whether or not to reset the current timestep number (used in logging)
        :param progress_bar: Display a progress bar using tqdm and rich
        :return: the trained model
        """
        iteration = 0
        total_timesteps, callback = self._setup_learn(
            total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar
        )
        callback.on_training_start(locals(), globals())
        assert self.env is not None

        while self.num_timesteps < total_timesteps:
            if not self.collect_episodes(self.env, callback):
                break
            iteration += 1
            self._update_current_progress_remaining(self.num_timesteps, total_timesteps)
            if log_interval is not None and iteration % log_interval == 0:
                self.dump_logs(iteration)
            self.train()

        callback.on_training_end()
        return self

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_episode_batch"]
