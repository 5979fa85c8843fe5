"""Tabular Q-learning (and SARSA, Expected SARSA, double Q-learning) as an SB3 algorithm."""

from __future__ import annotations

import sys
import time
import warnings
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import LinearSchedule, safe_mean

from sb3_ext.qlearning.policies import TabularPolicy, table_shape

__all__ = ["UPDATE_RULES", "QLearning", "sequential_update"]

SelfQLearning = TypeVar("SelfQLearning", bound="QLearning")
#: States, table rows and actions to bootstrap from, and which envs terminated (None: none did)
_Bootstrap = tuple[np.ndarray, np.ndarray, np.ndarray, "np.ndarray | None"]


def _cpu_device(device: th.device | str) -> str:
    """
    The device of a numpy table: always ``"cpu"``. Any device is accepted, as SB3's algorithms accept any (and fall
    back to the CPU without CUDA), so that ``load(path, device="cuda")`` and rl_zoo3's ``--device`` work unchanged.

    :param device: the device asked for
    :return: ``"cpu"``, with one ``UserWarning`` when ``device`` is neither the CPU nor ``"auto"``
    """
    if str(device) != "auto" and th.device(device).type != "cpu":
        warnings.warn(
            f"QLearning keeps its Q-table in numpy on the CPU: device {str(device)!r} is ignored, the table stays on the CPU",
            UserWarning,
            stacklevel=3,
        )
    return "cpu"


#: The update rules :class:`QLearning` implements.
UPDATE_RULES = ("q_learning", "sarsa", "expected_sarsa", "double_q")


def sequential_update(table: np.ndarray, index: np.ndarray, targets: np.ndarray, alpha: float) -> np.ndarray:
    """
    Apply ``table[i] += alpha * (t - table[i])`` for each pair ``(i, t)`` in order, as one vectorised operation.

    Several pairs may hit the same entry (two envs in the same (state, action) in one step): the result is exactly
    that of applying them one after another, ``Q_k = (1 - alpha)^k Q + sum_j alpha (1 - alpha)^(k - 1 - j) t_j``,
    not the lost update of a fancy-indexed assignment, nor the overshoot of summing the increments.

    :param table: flat table, updated in place
    :param index: entries to update (1-D, may repeat)
    :param targets: one target per entry of ``index``
    :param alpha: step size in (0, 1]
    :return: the TD errors ``t - table[i]`` measured before the update
    """
    if len(index) == 1:  # the common single-env case, in scalars
        i = int(index[0])
        td = float(targets[0]) - float(table[i])
        table[i] += alpha * td
        return np.array([td])
    old = table[index]
    td_errors = targets - old
    if len(set(index.tolist())) == len(index):  # no entry repeats: one plain assignment is exact
        table[index] = old + alpha * td_errors
        return td_errors
    order = np.argsort(index, kind="stable")
    sorted_index, sorted_targets = index[order], targets[order]
    first = np.empty(len(index), dtype=bool)
    first[0] = True
    np.not_equal(sorted_index[1:], sorted_index[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    group = np.cumsum(first) - 1
    sizes = np.bincount(group)
    rank = np.arange(len(index)) - starts[group]
    weights = alpha * (1.0 - alpha) ** (sizes[group] - 1 - rank)
    contributions = np.zeros(len(starts))
    np.add.at(contributions, group, weights * sorted_targets)
    entries = sorted_index[starts]
    table[entries] = (1.0 - alpha) ** sizes * table[entries] + contributions
    return td_errors


class QLearning(BaseAlgorithm):
    """
    Tabular Q-learning (Watkins & Dayan 1992, https://link.springer.com/article/10.1007/BF00992698), with SARSA,
    Expected SARSA and double Q-learning (van Hasselt 2010, https://papers.nips.cc/paper/3964-double-q-learning)
    as options of the same class.

    Every step of every env updates the table with numpy indexing (no Python loop over states or envs).
    Episode ends follow gymnasium: no bootstrap after ``terminated``; after a time-limit ``truncated`` the target
    bootstraps from the true final observation (``infos[i]["terminal_observation"]``).

    :param policy: ``"TabularPolicy"`` (or the class)
    :param env: the environment (Discrete actions; Discrete, MultiDiscrete, MultiBinary or Tuple of Discrete
        observations)
    :param learning_rate: step size alpha in (0, 1], a number or an SB3 schedule of the remaining progress
    :param gamma: discount factor in [0, 1]
    :param exploration_fraction: fraction of training over which epsilon decays linearly
    :param exploration_initial_eps: epsilon at the start
    :param exploration_final_eps: epsilon at the end of the decay
    :param learning_starts: steps of acting before the table is updated
    :param initial_q_value: initial value of every entry (a high value gives optimistic initialisation)
    :param update_rule: ``"q_learning"``, ``"sarsa"``, ``"expected_sarsa"`` or ``"double_q"`` (two tables)
    :param stats_window_size: episodes averaged in ``rollout/ep_rew_mean``
    :param tensorboard_log: TensorBoard folder, or None
    :param policy_kwargs: extra arguments of the policy
    :param verbose: 0 silent, 1 training logs
    :param seed: seed of the exploration and the env
    :param device: any device: the table is a numpy array updated in place, so it stays on the CPU (``"cpu"`` and
        ``"auto"`` silently; any other device, such as ``"cuda"``, with one ``UserWarning`` saying so)
    :param _init_setup_model: whether to build the table at construction
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"TabularPolicy": TabularPolicy}
    policy: TabularPolicy
    exploration_schedule: Schedule

    def __init__(
        self,
        policy: str | type[TabularPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 0.1,
        gamma: float = 0.99,
        exploration_fraction: float = 0.5,
        exploration_initial_eps: float = 1.0,
        exploration_final_eps: float = 0.05,
        learning_starts: int = 0,
        initial_q_value: float = 0.0,
        update_rule: str = "q_learning",
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "cpu",
        _init_setup_model: bool = True,
    ) -> None:
        super().__init__(
            policy,
            env,
            learning_rate,
            policy_kwargs=policy_kwargs,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            verbose=verbose,
            device=_cpu_device(device),
            support_multi_env=True,
            seed=seed,
        )
        if self.env is not None:  # (``load`` constructs without an env, then restores the spaces from the file)
            if not isinstance(self.action_space, spaces.Discrete):
                raise ValueError(f"QLearning needs a Discrete action space, got {self.action_space}")
            table_shape(self.observation_space)  # raises with the space named
        self.gamma = gamma
        self.exploration_fraction = exploration_fraction
        self.exploration_initial_eps = exploration_initial_eps
        self.exploration_final_eps = exploration_final_eps
        self.learning_starts = learning_starts
        self.initial_q_value = initial_q_value
        self.update_rule = update_rule
        self.exploration_rate = exploration_initial_eps
        self._td_history: list[np.ndarray] = []  # TD errors since the last log dump, reduced now and then
        self._td_abs_sum, self._td_count = 0.0, 0
        self._offsets: dict[int, np.ndarray] = {}
        self._check_arguments()
        if _init_setup_model:
            self._setup_model()

    def _check_arguments(self) -> None:
        lr = self.learning_rate(1.0) if callable(self.learning_rate) else self.learning_rate
        if not 0.0 < lr <= 1.0:
            raise ValueError(f"learning_rate must be in (0, 1], got {lr}")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma}")
        for name in ("exploration_initial_eps", "exploration_final_eps", "exploration_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if self.learning_starts < 0:
            raise ValueError(f"learning_starts must be >= 0, got {self.learning_starts}")
        if self.update_rule not in UPDATE_RULES:
            raise ValueError(f"unknown update_rule '{self.update_rule}': use one of {', '.join(UPDATE_RULES)}")

    def _setup_model(self) -> None:
        self._setup_lr_schedule()
        self.set_random_seed(self.seed)
        self.policy = self.policy_class(  # type: ignore[assignment]
            self.observation_space,
            self.action_space,
            initial_q_value=self.initial_q_value,
            n_tables=2 if self.update_rule == "double_q" else 1,
            **self.policy_kwargs,
        )
        self.exploration_schedule = LinearSchedule(
            self.exploration_initial_eps, self.exploration_final_eps, self.exploration_fraction
        )

    def set_random_seed(self, seed: int | None = None) -> None:
        """
        Seed the exploration, the env and the global generators.

        :param seed: the seed (None: leave as it is, or draw one for the exploration generator)
        """
        super().set_random_seed(seed)
        if seed is not None or not hasattr(self, "_rng"):
            self._rng = np.random.default_rng(seed)
            self._uniform_block, self._uniform_pos = np.empty(0), 0

    @property
    def q_table(self) -> np.ndarray:
        """The Q-table, shape ``(n_states, n_actions)`` (for double Q-learning, the mean of the two tables)."""
        return self.policy.q_values

    def _uniforms(self, n: int) -> np.ndarray:
        """``n`` uniforms on [0, 1) from the seeded generator, drawn in blocks (one call per step costs more than a slice)."""
        if self._uniform_pos + n > len(self._uniform_block):
            self._uniform_block, self._uniform_pos = self._rng.random(max(4096, n)), 0
        self._uniform_pos += n
        return self._uniform_block[self._uniform_pos - n : self._uniform_pos]

    def _pick(self, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
        """
        ``rows[i, columns[i]]`` for each row, as one flat gather (a fraction of the cost of 2-D fancy indexing, or of
        ``max(axis=-1)`` when ``columns`` is the argmax, on the few rows of one step).

        :param rows: Q-values, shape ``(n, n_actions)``
        :param columns: one action per row
        :return: the picked values, shape ``(n,)``
        """
        n = len(rows)
        offsets = self._offsets.get(n)  # [0, n_actions, 2 n_actions, ...]: the flat index of each row's first entry
        if offsets is None:
            offsets = self._offsets[n] = np.arange(n, dtype=np.int64) * self.policy.n_actions
        return rows.reshape(-1)[columns + offsets]

    def _epsilon_greedy(self, rows: np.ndarray, eps: float) -> np.ndarray:
        actions = rows.argmax(axis=-1)
        if eps > 0.0:
            # One uniform u per env: u < eps explores, and then u / eps is uniform on [0, 1): it picks the action.
            u = self._uniforms(len(actions))
            explore = u < eps
            if np.count_nonzero(explore):  # (count_nonzero: a fraction of the cost of any() on small arrays)
                actions[explore] = (u[explore] * (self.policy.n_actions / eps)).astype(np.int64)
        return actions

    def _explore(self, states: np.ndarray, eps: float) -> np.ndarray:
        return self._epsilon_greedy(self.policy.rows(states), eps)

    def _update(
        self,
        states: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_states: np.ndarray,
        next_rows: np.ndarray,
        next_actions: np.ndarray,
        terminated: np.ndarray | None,
        alpha: float,
        eps: float,
    ) -> np.ndarray:
        """
        One update of the table for a batch of transitions (one per env).

        :param states: rows of the observations the actions were taken in
        :param actions: the actions taken
        :param rewards: the rewards received
        :param next_states: rows of the next observations (the true final observation at an episode's end)
        :param next_rows: the Q-values at ``next_states`` (of the single table; unused by double Q-learning)
        :param next_actions: the actions taken next (used by SARSA)
        :param terminated: True where the episode terminated (no bootstrap); None when no episode ended
        :param alpha: step size
        :param eps: current epsilon (used by Expected SARSA)
        :return: the TD errors
        """
        policy = self.policy
        n_states, n_actions = policy.n_states, policy.n_actions
        flat = states * n_actions
        flat += actions
        if self.update_rule == "q_learning":
            next_values = self._pick(next_rows, next_rows.argmax(axis=-1))  # the row maxima
        elif self.update_rule == "sarsa":
            next_values = self._pick(next_rows, next_actions)
        elif self.update_rule == "expected_sarsa":
            next_values = (1.0 - eps) * next_rows.max(axis=-1) + eps * next_rows.sum(axis=-1) / n_actions
        else:  # double_q: a coin picks the table to update; it picks the action, the other values it
            tables = policy.tables
            table = self._rng.integers(2, size=len(states))
            best = tables[table, next_states].argmax(axis=-1)
            next_values = tables[1 - table, next_states, best]
            flat += table * (n_states * n_actions)
        # targets = rewards + gamma * next_values, with next_values = 0 where the episode terminated
        if terminated is not None:
            next_values[terminated] = 0.0
        next_values *= self.gamma
        next_values += rewards
        return sequential_update(policy.flat_tables, flat, next_values, alpha)

    def learn(
        self: SelfQLearning,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 100,
        tb_log_name: str = "QLearning",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfQLearning:
        """
        Act epsilon-greedily and update the table after every step of every env.

        A rollout, in SB3's callback sense, is one step of the vectorised env (one transition per env), the collection
        round that precedes each update of the table: the callback's ``on_rollout_start`` comes before the step (the
        table then holds every transition so far), ``update_locals`` and ``on_step`` after it, and ``on_rollout_end``
        before the table learns from it, as in SB3's ``OffPolicyAlgorithm.collect_rollouts``. A callback that acts at
        rollout starts (the CLI's checkpoints) thus acts between any two steps, on a table that has learnt from all
        of the earlier ones.

        :param total_timesteps: env steps to train for (summed over envs)
        :param callback: callback(s): ``on_rollout_start``, ``on_step`` and ``on_rollout_end`` at every step of the
            vectorised env (``on_step`` returning False stops training at once, without ``on_rollout_end``, as SB3)
        :param log_interval: dump the logs every this many episodes (None: never)
        :param tb_log_name: TensorBoard run name
        :param reset_num_timesteps: start counting (and the schedules) from zero
        :param progress_bar: show a progress bar
        :return: the trained model
        """
        total_timesteps, callback = self._setup_learn(
            total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar
        )
        callback.on_training_start(locals(), globals())
        assert self.env is not None
        env, policy = self.env, self.policy
        n_envs = env.num_envs
        self.exploration_rate = self.exploration_schedule(self._current_progress_remaining)
        states, _ = policy.obs_to_index(self._last_obs)
        actions = self._explore(states, self.exploration_rate)

        while self.num_timesteps < total_timesteps:
            callback.on_rollout_start()
            new_obs, rewards, dones, infos = env.step(actions)
            self.num_timesteps += n_envs
            callback.update_locals(locals())
            if not callback.on_step():
                break
            eps = self.exploration_rate
            next_states, _ = policy.obs_to_index(new_obs)
            next_rows = self.policy.rows(next_states)
            next_actions = self._epsilon_greedy(next_rows, eps)
            boot: _Bootstrap = (next_states, next_rows, next_actions, None)
            ended = dones.nonzero()[0]  # (a fraction of the cost of flatnonzero on a few envs)
            if len(ended):
                boot = self._episodes_ended(ended, dones, infos, boot, eps, log_interval)
            boot_states, boot_rows, boot_actions, terminated = boot
            callback.on_rollout_end()
            if self.num_timesteps > self.learning_starts:
                alpha = self.lr_schedule(self._current_progress_remaining)
                td = self._update(states, actions, rewards, boot_states, boot_rows, boot_actions, terminated, alpha, eps)
                self._td_history.append(td)
                if len(self._td_history) >= 10_000:
                    self._reduce_td_history()
            self._last_obs = new_obs  # type: ignore[assignment]
            states, actions = next_states, next_actions
            self._update_current_progress_remaining(self.num_timesteps, total_timesteps)
            self.exploration_rate = self.exploration_schedule(self._current_progress_remaining)

        callback.on_training_end()
        return self

    def _episodes_ended(
        self,
        ended: np.ndarray,
        dones: np.ndarray,
        infos: list[dict[str, Any]],
        following: _Bootstrap,
        eps: float,
        log_interval: int | None,
    ) -> _Bootstrap:
        """
        The envs of ``ended`` ended an episode and were reset: no bootstrap after a termination; after a time-limit
        truncation, bootstrap from the true final observation, not from the first observation of the next episode.

        :param ended: indices of the envs whose episode ended
        :param dones: the step's dones
        :param infos: the step's infos
        :param following: states, table rows and actions of the observations that follow (new episodes' first ones)
        :param eps: the exploration rate
        :param log_interval: dump the logs every this many episodes
        :return: the states, rows and actions to bootstrap from, and which envs terminated
        """
        next_states, next_rows, next_actions, _ = following
        ended_list = ended.tolist()
        self._update_info_buffer([infos[i] for i in ended_list], dones[ended])  # episode stats come at the end
        truncated = [i for i in ended_list if infos[i].get("TimeLimit.truncated", False)]
        terminated = dones.copy()
        boot_states, boot_rows, boot_actions = next_states, next_rows, next_actions
        if truncated:
            terminated[truncated] = False
            final_states = np.concatenate([self.policy.obs_to_index(infos[i]["terminal_observation"])[0] for i in truncated])
            boot_states, boot_rows, boot_actions = next_states.copy(), next_rows.copy(), next_actions.copy()
            boot_states[truncated] = final_states
            boot_rows[truncated] = self.policy.rows(final_states)
            boot_actions[truncated] = self._epsilon_greedy(boot_rows[truncated], eps)
        self._log_episodes(len(ended), log_interval)
        return boot_states, boot_rows, boot_actions, terminated

    def _log_episodes(self, n_ended: int, log_interval: int | None) -> None:
        before = self._episode_num
        self._episode_num += n_ended
        if log_interval and self._episode_num // log_interval > before // log_interval:
            self.dump_logs()

    def _reduce_td_history(self) -> None:
        if self._td_history:
            errors = np.concatenate(self._td_history)
            self._td_abs_sum += float(np.abs(errors).sum())
            self._td_count += len(errors)
            self._td_history = []

    def dump_logs(self) -> None:
        """Write the training logs: returns, exploration rate, learning rate and mean absolute TD error."""
        assert self.ep_info_buffer is not None and self.ep_success_buffer is not None
        time_elapsed = max((time.time_ns() - self.start_time) / 1e9, sys.float_info.epsilon)
        self.logger.record("time/episodes", self._episode_num, exclude="tensorboard")
        if len(self.ep_info_buffer) > 0:
            self.logger.record("rollout/ep_rew_mean", safe_mean([ep["r"] for ep in self.ep_info_buffer]))
            self.logger.record("rollout/ep_len_mean", safe_mean([ep["l"] for ep in self.ep_info_buffer]))
        if len(self.ep_success_buffer) > 0:
            self.logger.record("rollout/success_rate", safe_mean(self.ep_success_buffer))
        self.logger.record("rollout/exploration_rate", self.exploration_rate)
        self.logger.record("train/learning_rate", self.lr_schedule(self._current_progress_remaining))
        self._reduce_td_history()
        if self._td_count:
            self.logger.record("train/td_error", self._td_abs_sum / self._td_count)
            self._td_abs_sum, self._td_count = 0.0, 0
        self.logger.record("time/fps", int((self.num_timesteps - self._num_timesteps_at_start) / time_elapsed))
        self.logger.record("time/time_elapsed", int(time_elapsed), exclude="tensorboard")
        self.logger.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")
        self.logger.dump(step=self.num_timesteps)

    def predict(
        self,
        observation: Any,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """
        Greedy action, or, when not deterministic, epsilon-greedy with the current exploration rate (as SB3's DQN).

        :param observation: one observation or a batch
        :param state: unused
        :param episode_start: unused
        :param deterministic: take the greedy action
        :return: the actions (an ``ndarray``: shape ``(n,)`` for a batch, ``()`` for one observation) and ``None``
        :raises ValueError: for an ``(obs, info)`` tuple (the Gym API mixed with SB3's VecEnv API, as SB3 says) or an
            observation outside the observation space
        """
        states, batch = self.policy.checked_obs_to_index(observation)
        actions = self._explore(states, 0.0 if deterministic else self.exploration_rate)
        return (actions if batch else actions.reshape(())), None

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_td_history", "_td_abs_sum", "_td_count", "_offsets"]
