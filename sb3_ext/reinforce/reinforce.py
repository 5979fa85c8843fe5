"""REINFORCE: Monte-Carlo policy gradient on complete episodes, with an optional baseline."""

from __future__ import annotations

import warnings
from typing import Any, ClassVar, NamedTuple, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import explained_variance, obs_as_tensor
from stable_baselines3.common.vec_env import VecEnv
from torch.nn import functional as F

from sb3_ext.common.buffers import EpisodeBuffer, discounted_returns
from sb3_ext.errors import suggest
from sb3_ext.reinforce.policies import CnnPolicy, MlpPolicy, MultiInputPolicy

__all__ = [
    "BASELINES",
    "DEFAULT_MAX_EPISODE_STEPS",
    "REINFORCE",
    "ReinforceLoss",
    "discounted_returns",
    "reinforce_loss",
]

SelfREINFORCE = TypeVar("SelfREINFORCE", bound="REINFORCE")

#: The baselines :class:`REINFORCE` knows: none, the batch mean return, or a learned state value.
BASELINES = ("none", "mean", "value")

#: Longest episode :class:`REINFORCE` collects on an env that has no time limit of its own (see ``max_episode_steps``).
DEFAULT_MAX_EPISODE_STEPS = 10_000


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


def _check_count(name: str, value: Any, minimum: int, why: str = "") -> None:
    """Refuse anything but an integer ``>= minimum`` (a bool is no count), with the name and the value given."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}{why}, got {value!r}")


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

    **Where it differs from SB3's A2C/PPO by design.** A rollout (``collect_rollouts``, into the
    :class:`~sb3_ext.common.buffers.EpisodeBuffer` ``model.rollout_buffer``) is a batch of complete episodes, not
    ``n_steps`` steps per env: ``learn(total_timesteps)`` finishes the batch it is in, so ``num_timesteps`` overshoots
    ``total_timesteps`` by up to one batch, and ``n_steps`` is only the number of steps per env the buffer's storage
    starts with.

    **Episode length is bounded.** An episode still running after ``max_episode_steps`` steps (by default the env's
    own time limit, ``TimeLimit``'s ``max_episode_steps``, where it has one, else :data:`DEFAULT_MAX_EPISODE_STEPS`)
    is cut there as a time-limit truncation, with one warning naming the env; the env is not reset, and its next step
    starts the next episode. So a batch, and the memory it takes, stays bounded on any env.

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
    :param max_episode_steps: Longest episode collected: a longer one is cut there as a time-limit truncation
        (bootstrapped from the value head with ``baseline="value"``). None: the env's time limit where it has one,
        else :data:`DEFAULT_MAX_EPISODE_STEPS`
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
        "MlpPolicy": MlpPolicy,
        "CnnPolicy": CnnPolicy,
        "MultiInputPolicy": MultiInputPolicy,
    }
    rollout_buffer: EpisodeBuffer  # type: ignore[assignment]  # (whole episodes, not a fixed-length RolloutBuffer)

    #: Steps per env the rollout buffer's storage starts with (it grows as a batch needs).
    _BUFFER_START_STEPS = 256

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
        max_episode_steps: int | None = None,
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
        _check_count("n_episodes", n_episodes, 1, ": a batch holds at least one complete episode")
        _check_count("min_batch_steps", min_batch_steps, 0)
        if max_episode_steps is not None:
            _check_count("max_episode_steps", max_episode_steps, 1, " (or None: the env's time limit)")
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
            n_steps=self._BUFFER_START_STEPS,  # not a rollout length: a batch is whole episodes (see the docstring)
            gamma=gamma,
            gae_lambda=1.0,  # Monte-Carlo returns
            ent_coef=ent_coef,
            vf_coef=vf_coef,
            max_grad_norm=max_grad_norm,
            use_sde=use_sde,
            sde_sample_freq=sde_sample_freq,
            rollout_buffer_class=EpisodeBuffer,  # type: ignore[arg-type]
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
        self.max_episode_steps = None if max_episode_steps is None else int(max_episode_steps)
        self.baseline = baseline
        self.normalize_advantage = normalize_advantage
        self._warned_episode_cut = False

        if _init_setup_model:
            self._setup_model()

    def _batch_full(self, n_episodes: int, n_steps: int) -> bool:
        return n_episodes >= self.n_episodes and n_steps >= self.min_batch_steps

    def episode_step_limit(self, env: VecEnv) -> int:
        """
        The longest episode collected on ``env``: ``max_episode_steps``, or the env's own time limit (gymnasium's
        ``TimeLimit``, the longest over the envs), or :data:`DEFAULT_MAX_EPISODE_STEPS` where an env has none.

        :param env: the training environment
        :return: the limit, in steps
        """
        if self.max_episode_steps is not None:
            return self.max_episode_steps
        if env.has_attr("_max_episode_steps"):  # TimeLimit's attribute, found through the wrappers
            limits = [limit for limit in env.get_attr("_max_episode_steps") if isinstance(limit, (int, np.integer))]
            if len(limits) == env.num_envs:
                return int(max(limits))
        return DEFAULT_MAX_EPISODE_STEPS

    def _warn_episode_cut(self, env: VecEnv, limit: int) -> None:
        if self._warned_episode_cut:
            return
        self._warned_episode_cut = True
        spec = env.get_attr("spec", indices=0)[0]
        name = spec.id if spec is not None else env.env_method("__str__", indices=0)[0]
        warnings.warn(
            f"{name}: an episode ran {limit} steps without ending; REINFORCE cut it there as a time-limit truncation "
            f"(set max_episode_steps, or give the env a TimeLimit, to choose the length)"
        )

    def _bootstrap_values(self, ended: np.ndarray, cut: np.ndarray, new_obs: Any, infos: list[dict]) -> np.ndarray:
        """``V`` of the final observation of each episode that ended at this step by a time limit (0 elsewhere)."""
        bootstrap = np.zeros((len(cut),), dtype=np.float32)
        if self.baseline != "value":
            return bootstrap  # no estimate of what follows a cut: it ends the episode
        for idx in ended:
            if cut[idx]:  # cut by max_episode_steps: the env was not reset, its next observation is the final one
                final_obs = {key: value[idx] for key, value in new_obs.items()} if isinstance(new_obs, dict) else new_obs[idx]
            elif infos[idx].get("TimeLimit.truncated", False) and infos[idx].get("terminal_observation") is not None:
                final_obs = infos[idx]["terminal_observation"]
            else:
                continue
            with th.no_grad():
                obs, _ = self.policy.obs_to_tensor(final_obs)
                bootstrap[idx] = self.policy.predict_values(obs).item()
        return bootstrap

    def collect_rollouts(
        self,
        env: VecEnv,
        callback: BaseCallback,
        rollout_buffer: EpisodeBuffer | RolloutBuffer,
        n_rollout_steps: int,
    ) -> bool:
        """
        Collect a batch of complete episodes with the current policy (see the class docstring for the rule) and fill
        the ``EpisodeBuffer``, as SB3's ``OnPolicyAlgorithm.collect_rollouts`` fills a ``RolloutBuffer``.

        :param env: The training environment
        :param callback: Callback that will be called at each step (and at the beginning and end of the rollout)
        :param rollout_buffer: The :class:`~sb3_ext.common.buffers.EpisodeBuffer` to fill
        :param n_rollout_steps: unused: a batch is whole episodes, however many steps they take
            (``n_episodes``, ``min_batch_steps``, ``max_episode_steps``)
        :return: True once the batch is complete, False if the callback stopped training first
        """
        assert self._last_obs is not None, "No previous observation was provided"
        if not isinstance(rollout_buffer, EpisodeBuffer):
            raise TypeError(f"REINFORCE collects whole episodes into an EpisodeBuffer, got {type(rollout_buffer).__name__}")
        # Switch to eval mode (this affects batch norm / dropout)
        self.policy.set_training_mode(False)
        n_envs = env.num_envs
        if not np.all(self._last_episode_starts):
            # Some envs were left waiting in the middle of an episode whose start is not ours: start afresh.
            self._last_obs = env.reset()  # type: ignore[assignment]
            self._last_episode_starts = np.ones((n_envs,), dtype=bool)
        rollout_buffer.reset()
        # Sample new weights for the state dependent exploration
        if self.use_sde:
            self.policy.reset_noise(n_envs)
        limit = self.episode_step_limit(env)

        callback.on_rollout_start()

        collecting = np.ones((n_envs,), dtype=bool)  # the env's current episode belongs to the batch
        episode_steps = np.zeros((n_envs,), dtype=np.int64)
        batch_episodes, batch_steps, n_steps = 0, 0, 0

        while collecting.any():
            if self.use_sde and self.sde_sample_freq > 0 and n_steps % self.sde_sample_freq == 0:
                # Sample a new noise matrix
                self.policy.reset_noise(n_envs)

            with th.no_grad():
                obs_tensor = obs_as_tensor(self._last_obs, self.device)  # type: ignore[arg-type]
                sampled = self.policy.get_distribution(obs_tensor).get_actions()  # (no value head needed)
            # Reshape to the action space's shape (a multi-dimensional Box comes out flat), as BasePolicy.predict does
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

            episode_steps += collecting
            cut = collecting & (episode_steps >= limit) & ~dones  # an episode too long: cut as a time-limit truncation
            ends = dones | cut
            ended = np.flatnonzero(ends & collecting)
            if cut.any():
                self._warn_episode_cut(env, limit)
            bootstrap = self._bootstrap_values(ended, cut, new_obs, infos)
            rollout_buffer.add(self._last_obs, actions, rewards, ends, collecting, bootstrap)  # type: ignore[arg-type]

            batch_episodes += len(ended)
            batch_steps += int(episode_steps[ended].sum())
            episode_steps[ended] = 0
            if self._batch_full(batch_episodes, batch_steps):
                collecting[ended] = False  # envs that end an episode once the batch is full wait for the others

            self._last_obs = new_obs  # type: ignore[assignment]
            self._last_episode_starts = ends

        rollout_buffer.compute_returns_and_advantage()
        self.logger.record("rollout/episodes_per_update", batch_episodes)
        self.logger.record("rollout/steps_per_update", batch_steps)
        self.logger.record("rollout/discarded_steps", rollout_buffer.discarded_steps)

        callback.update_locals(locals())
        callback.on_rollout_end()
        return True

    def train(self) -> None:
        """
        Update the policy (and, with ``baseline="value"``, the value head) with one gradient step on the batch of
        complete episodes in the rollout buffer.
        """
        if self.rollout_buffer.n_episodes == 0:
            raise RuntimeError("REINFORCE.train() needs a batch of complete episodes: call collect_rollouts() first")
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)

        for batch in self.rollout_buffer.get(batch_size=None):  # one batch: every step of the episodes
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
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_warned_episode_cut"]
