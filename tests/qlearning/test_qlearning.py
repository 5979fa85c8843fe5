from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from gymnasium.wrappers import TimeLimit
from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback, EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import configure

from sb3_ext import QLearning, load_zoo_config
from sb3_ext.cli import main
from sb3_ext.qlearning.qlearning import sequential_update
from sb3_ext.runs import checkpoints
from sb3_ext.wrappers import DiscretizeObservation


class Chain(gym.Env):
    """States 0, 1, 2, ...: every action moves one state right with reward 1; terminates on reaching ``length``."""

    def __init__(self, length: int = 5, n_actions: int = 1) -> None:
        self.length = length
        self.observation_space = spaces.Discrete(length + 1)
        self.action_space = spaces.Discrete(n_actions)
        self.state = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        super().reset(seed=seed)
        self.state = 0
        return self.state, {}

    def step(self, action: int) -> tuple[int, float, bool, bool, dict[str, Any]]:
        self.state += 1
        return self.state, 1.0, self.state == self.length, False, {}


def greedy_model(env: Any, rule: str = "q_learning", **kwargs: Any) -> QLearning:
    return QLearning(
        "TabularPolicy",
        env,
        learning_rate=kwargs.pop("learning_rate", 1.0),
        gamma=kwargs.pop("gamma", 0.5),
        exploration_initial_eps=0.0,
        exploration_final_eps=0.0,
        update_rule=rule,
        seed=0,
        **kwargs,
    )


# --- learning --------------------------------------------------------------------------------------------------------


def train_from_zoo(env_id: str, seed: int = 0) -> QLearning:
    cfg = load_zoo_config("qlearning", env_id)
    model = cfg.make_model(cfg.make_env(seed=seed), seed=seed)
    assert isinstance(model, QLearning)
    return model.learn(cfg.n_timesteps)


@pytest.mark.slow
def test_learns_taxi() -> None:
    model = train_from_zoo("Taxi-v4")  # 200k steps, 8 envs
    mean, _ = evaluate_policy(model, make_vec_env("Taxi-v4", seed=123), n_eval_episodes=1000)
    assert mean >= 7.0


@pytest.mark.slow
def test_learns_frozen_lake() -> None:
    model = train_from_zoo("FrozenLake-v1")  # slippery 4x4, 300k steps, 8 envs
    mean, _ = evaluate_policy(model, make_vec_env("FrozenLake-v1", seed=123), n_eval_episodes=1000)
    assert mean >= 0.70  # reward 1 on success only: the mean return is the success rate


@pytest.mark.slow
def test_learns_cliff_walking_optimal_path() -> None:
    model = train_from_zoo("CliffWalking-v1")  # 50k steps, 4 envs
    mean, std = evaluate_policy(model, make_vec_env("CliffWalking-v1", seed=123), n_eval_episodes=3)
    assert (mean, std) == (-13.0, 0.0)


# --- update rules, hand-computed ------------------------------------------------------------------------------------


@pytest.fixture
def two_action_model() -> QLearning:
    model = greedy_model(Chain(length=3, n_actions=2), learning_rate=0.5, gamma=0.9)
    model.policy.tables[:] = np.arange(model.policy.tables.size, dtype=np.float64).reshape(model.policy.tables.shape)
    return model


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        # Q(0, 1) = 1; next state 1 has Q(1, .) = [2, 3]; target = r + 0.9 * value(1); new = 1 + 0.5 * (target - 1)
        ("q_learning", 1 + 0.5 * (2.0 + 0.9 * 3 - 1)),  # max
        ("sarsa", 1 + 0.5 * (2.0 + 0.9 * 2 - 1)),  # the next action taken: 0
        ("expected_sarsa", 1 + 0.5 * (2.0 + 0.9 * (0.8 * 3 + 0.2 * 2.5) - 1)),  # eps=0.2: 0.8 greedy + 0.2 uniform
    ],
)
def test_one_step_of_each_rule(two_action_model: QLearning, rule: str, expected: float) -> None:
    model = two_action_model
    model.update_rule = rule
    next_states = np.array([1])
    td = model._update(
        states=np.array([0]),
        actions=np.array([1]),
        rewards=np.array([2.0]),
        next_states=next_states,
        next_rows=model.policy.rows(next_states),
        next_actions=np.array([0]),
        terminated=None,
        alpha=0.5,
        eps=0.2,
    )
    assert model.policy.tables[0, 0, 1] == pytest.approx(expected)
    assert td[0] == pytest.approx((expected - 1) / 0.5)
    untouched = np.delete(model.policy.tables.reshape(-1), 1)
    np.testing.assert_array_equal(untouched, np.delete(np.arange(8.0), 1))


def test_terminated_transition_does_not_bootstrap(two_action_model: QLearning) -> None:
    model = two_action_model
    next_states = np.array([1])
    model._update(
        np.array([0]),
        np.array([1]),
        np.array([2.0]),
        next_states,
        model.policy.rows(next_states),
        np.array([0]),
        np.array([True]),
        0.5,
        0.0,
    )
    assert model.policy.tables[0, 0, 1] == pytest.approx(1 + 0.5 * (2.0 - 1))


def test_double_q_cross_update(monkeypatch: pytest.MonkeyPatch) -> None:
    model = greedy_model(Chain(length=3, n_actions=2), rule="double_q", gamma=0.9)
    tables = model.policy.tables
    assert tables.shape == (2, 4, 2)
    tables[0] = [[0, 0], [5, 1], [0, 0], [0, 0]]  # A at state 1 prefers action 0
    tables[1] = [[0, 0], [2, 7], [0, 0], [0, 0]]  # B at state 1 prefers action 1

    class Coins:  # env 0 updates A, env 1 updates B
        def integers(self, *args: Any, **kwargs: Any) -> np.ndarray:
            return np.array([0, 1])

    monkeypatch.setattr(model, "_rng", Coins())
    states, next_states = np.array([0, 0]), np.array([1, 1])
    model._update(
        states,
        np.array([0, 1]),
        np.array([1.0, 1.0]),
        next_states,
        model.policy.rows(next_states),
        np.array([0, 0]),
        None,
        1.0,
        0.0,
    )
    assert tables[0, 0, 0] == pytest.approx(1 + 0.9 * 2)  # A picks action 0 at state 1, B values it: 2
    assert tables[1, 0, 1] == pytest.approx(1 + 0.9 * 1)  # B picks action 1 at state 1, A values it: 1
    np.testing.assert_array_equal(model.q_table[0], [(2.8 + 0) / 2, (0 + 1.9) / 2])


def test_sequential_update_matches_a_loop_with_repeated_entries() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        size, n = int(rng.integers(1, 6)), int(rng.integers(1, 12))
        table = rng.normal(size=size)
        index, targets, alpha = rng.integers(size, size=n), rng.normal(size=n), float(rng.uniform(0.01, 1.0))
        expected = table.copy()
        for i, t in zip(index, targets, strict=True):
            expected[i] += alpha * (t - expected[i])
        got = table.copy()
        td = sequential_update(got, index, targets, alpha)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(td, targets - table[index])


def test_two_envs_in_the_same_state_action_update_sequentially() -> None:
    model = greedy_model(make_vec_env(Chain, n_envs=2, env_kwargs={"length": 4}, seed=0), learning_rate=0.5, gamma=0.5)
    model.learn(2)  # both envs take action 0 in state 0: two updates of the same entry in one step
    # Q = 0 -> 0.5 * (1 + 0.5 * 0) = 0.5 -> 0.5 + 0.5 * (1 - 0.5) = 0.75
    assert model.q_table[0, 0] == pytest.approx(0.75)


# --- episode ends ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("max_steps", "expected_q1"), [(2, 1 + 0.5 * 102), (None, 1.0)])
def test_truncation_bootstraps_from_the_final_observation(max_steps: int | None, expected_q1: float) -> None:
    # Chain of length 2: the step 1 -> 2 terminates; with a 2-step time limit it is a truncation instead.
    env = TimeLimit(Chain(length=100 if max_steps else 2), max_episode_steps=max_steps) if max_steps else Chain(length=2)
    model = greedy_model(env)
    model.policy.tables[0, :, 0] = 100 + np.arange(model.policy.n_states)  # Q(s) = 100 + s
    model.learn(2)
    assert model.q_table[0, 0] == pytest.approx(1 + 0.5 * 101)
    # Truncated: bootstrap from the true final state 2 (Q = 102), not from the reset state 0 nor as terminal.
    assert model.q_table[1, 0] == pytest.approx(expected_q1)


# --- SB3 integration ------------------------------------------------------------------------------------------------


def test_exploration_continues_after_load(tmp_path: Path) -> None:
    # (save/load itself, with and without an env, is checked for every algorithm in tests/test_sb3_contract.py)
    model = QLearning("TabularPolicy", "FrozenLake-v1", learning_rate=0.1, seed=3).learn(3000)
    model.save(tmp_path / "frozen")
    loaded = QLearning.load(tmp_path / "frozen", env=make_vec_env("FrozenLake-v1", seed=0))
    np.testing.assert_array_equal(loaded.q_table, model.q_table)
    assert loaded.num_timesteps == 3000

    seen: list[float] = []

    class Record(BaseCallback):
        def _on_step(self) -> bool:
            seen.append(self.model.exploration_rate)
            return True

    loaded.learn(1000, reset_num_timesteps=False, callback=Record())
    assert loaded.num_timesteps == 4000
    # The exploration schedule continues from progress 1 - 3000/4000, it does not restart at its initial value.
    assert seen[0] == pytest.approx(loaded.exploration_schedule(1 - 3000 / 4000))
    assert seen[0] < loaded.exploration_initial_eps


@pytest.mark.slow
def test_readme_example_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    block = readme.split("### Tabular Q-learning")[1].split("```python")[1].split("```")[0]
    assert 'QLearning.load("taxi")' in block  # load without an env, as SB3's docs do
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    exec(block, namespace)
    loaded = namespace["model"]
    assert isinstance(loaded, QLearning) and loaded.num_timesteps == 200_000
    mean, _ = evaluate_policy(loaded, make_vec_env("Taxi-v4", seed=1), n_eval_episodes=20)
    assert mean >= 7.0  # near Taxi's optimum (about 8); a random policy gets about -770


def table_warnings(caught: list[warnings.WarningMessage]) -> list[warnings.WarningMessage]:
    """:return: the warnings, among ``caught``, that the table stays on the CPU"""
    return [w for w in caught if issubclass(w.category, UserWarning) and "the table stays on the CPU" in str(w.message)]


@pytest.mark.parametrize("device", ["cpu", "auto", th.device("cpu"), "cpu:0"])
def test_device_cpu_or_auto(device: Any) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = QLearning("TabularPolicy", "FrozenLake-v1", device=device)
    assert not table_warnings(caught)
    assert model.device == th.device("cpu") and model.policy.device == th.device("cpu")


@pytest.mark.parametrize("device", ["cuda", "cuda:0", "mps", th.device("meta")])
def test_other_devices_warn_once_and_the_table_stays_on_the_cpu(device: Any) -> None:
    # As SB3's algorithms accept any device (and fall back to the CPU without CUDA): rl_zoo3 passes --device to all
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = QLearning("TabularPolicy", "FrozenLake-v1", initial_q_value=1.0, seed=0, device=device)
    (warning,) = table_warnings(caught)
    assert f"device '{device}' is ignored" in str(warning.message)
    assert model.device == th.device("cpu") and model.policy.device == th.device("cpu")
    model.learn(500)
    assert (model.q_table < 1.0).any()  # it learns: optimistic values come down


@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_load_on_cuda_warns_once_and_the_table_stays_on_the_cpu(device: str, tmp_path: Path) -> None:
    # (SB3's own test_save_load loads every model with "cuda"; its load_from_zip_file maps the file's tensors to the
    # device, falling back to the CPU without CUDA, so only CUDA is checked here: "mps" fails there for every algorithm)
    model = QLearning("TabularPolicy", "FrozenLake-v1", initial_q_value=1.0, seed=0).learn(500)
    model.save(tmp_path / "model.zip")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = QLearning.load(tmp_path / "model.zip", env=make_vec_env("FrozenLake-v1", seed=1), device=device)
    assert len(table_warnings(caught)) == 1
    assert loaded.device == th.device("cpu") and loaded.policy.device == th.device("cpu")
    np.testing.assert_array_equal(loaded.q_table, model.q_table)
    obs = np.arange(16)
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])
    loaded.learn(500, reset_num_timesteps=False)
    assert loaded.num_timesteps == 1000
    assert not np.array_equal(loaded.q_table, model.q_table)  # the loaded table learns in place


def test_multi_binary_observations_index_rows_row_major() -> None:
    class Bits(gym.Env):
        # The reward is 1 for action 1 in state (1, 0, 1) only
        observation_space = spaces.MultiBinary(3)
        action_space = spaces.Discrete(2)

        def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
            super().reset(seed=seed)
            self.obs = self.np_random.integers(2, size=3).astype(np.int8)
            return self.obs, {}

        def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
            reward = float(action == 1 and self.obs.tolist() == [1, 0, 1])
            return self.obs, reward, True, False, {}

    model = QLearning(
        "TabularPolicy", make_vec_env(Bits, n_envs=4, seed=0), learning_rate=1.0, exploration_fraction=1.0, seed=0
    )
    assert model.q_table.shape == (8, 2)
    model.learn(2000)
    np.testing.assert_array_equal(model.q_table[5], [0.0, 1.0])  # row 5 = 0b101
    assert np.count_nonzero(model.q_table) == 1
    assert model.predict(np.array([1, 0, 1], dtype=np.int8), deterministic=True)[0] == 1
    np.testing.assert_array_equal(model.predict(np.array([[1, 0, 1], [0, 0, 0]]), deterministic=True)[0], [1, 0])


@pytest.mark.parametrize(
    ("env_id", "observation", "space"),
    [("FrozenLake-v1", 16, "Discrete"), ("FrozenLake-v1", -1, "Discrete"), ("Blackjack-v1", (40, 1, 0), "Tuple")],
)
def test_observations_outside_the_space_get_one_clear_line(env_id: str, observation: Any, space: str) -> None:
    model = QLearning("TabularPolicy", env_id)
    for predict in (model.predict, model.policy.predict):
        with pytest.raises(ValueError, match=rf"observation .* does not belong to the observation space {space}"):
            predict(observation)


def test_same_seed_same_table() -> None:
    tables = [QLearning("TabularPolicy", make_vec_env("Taxi-v4", n_envs=4), seed=7).learn(20_000).q_table for _ in range(2)]
    np.testing.assert_array_equal(tables[0], tables[1])
    other = QLearning("TabularPolicy", make_vec_env("Taxi-v4", n_envs=4), seed=8).learn(20_000).q_table
    assert not np.array_equal(tables[0], other)


def test_callbacks_logger_tensorboard_progress_bar(tmp_path: Path) -> None:
    model = QLearning(
        "TabularPolicy", make_vec_env("FrozenLake-v1", n_envs=2, seed=0), seed=0, tensorboard_log=str(tmp_path / "tb")
    )
    model.set_logger(configure(str(tmp_path / "log"), ["csv", "tensorboard"]))
    eval_cb = EvalCallback(
        make_vec_env("FrozenLake-v1", seed=1), eval_freq=500, n_eval_episodes=3, log_path=str(tmp_path / "eval")
    )
    ckpt = CheckpointCallback(save_freq=1000, save_path=str(tmp_path / "ckpt"))
    model.learn(4000, callback=[eval_cb, ckpt], log_interval=20, progress_bar=True)
    assert len(np.load(tmp_path / "eval" / "evaluations.npz")["timesteps"]) == 4
    assert len(list((tmp_path / "ckpt").glob("*.zip"))) == 2
    header = (tmp_path / "log" / "progress.csv").read_text().splitlines()[0].split(",")
    assert {"rollout/ep_rew_mean", "rollout/exploration_rate", "train/td_error", "train/learning_rate"} <= set(header)
    assert list((tmp_path / "log").glob("events.out.tfevents.*"))


class RecordEvents(BaseCallback):
    """Records each rollout start, step and rollout end with the model's step count; ``on_step`` False at ``stop_at``."""

    def __init__(self, stop_at: int | None = None) -> None:
        super().__init__()
        self.stop_at = stop_at
        self.events: list[tuple[str, int]] = []

    def _on_rollout_start(self) -> None:
        self.events.append(("start", self.model.num_timesteps))

    def _on_step(self) -> bool:
        self.events.append(("step", self.model.num_timesteps))
        return self.model.num_timesteps != self.stop_at

    def _on_rollout_end(self) -> None:
        self.events.append(("end", self.model.num_timesteps))

    def count(self, kind: str) -> int:
        return sum(1 for event, _ in self.events if event == kind)


def test_a_rollout_is_one_step_of_the_vectorised_env() -> None:
    model = QLearning("TabularPolicy", make_vec_env("FrozenLake-v1", n_envs=2, seed=0), seed=0)
    record = RecordEvents()
    model.learn(6, callback=record)
    # As SB3's collect_rollouts: on_rollout_start, the step's on_step, on_rollout_end (then the table's update)
    assert record.events == [
        *[("start", 0), ("step", 2), ("end", 2)],
        *[("start", 2), ("step", 4), ("end", 4)],
        *[("start", 4), ("step", 6), ("end", 6)],
    ]

    record = RecordEvents()
    model.learn(1000, callback=record)
    assert record.count("start") == record.count("step") == record.count("end") == 500

    record = RecordEvents(stop_at=4)  # on_step False stops at once, without on_rollout_end (as SB3)
    model.learn(1000, callback=record)
    assert record.events == [("start", 0), ("step", 2), ("end", 2), ("start", 2), ("step", 4)]
    assert model.num_timesteps == 4


def test_cli_save_freq_writes_a_checkpoint_every_save_freq_steps(tmp_path: Path) -> None:
    # The CLI's checkpoints are saved at rollout starts: they need QLearning's on_rollout_start to come every step
    args = ["train", "--algo", "qlearning", "--env", "FrozenLake-v1", "-n", "3000", "--save-freq", "1000", "--seed", "0"]
    assert main([*args, "--eval-freq", "0", "--log-folder", str(tmp_path / "logs"), "--no-progress-bar"]) == 0
    (run_dir,) = (tmp_path / "logs" / "qlearning").iterdir()
    found = checkpoints(run_dir)
    assert [c.steps for c in found] == [1000, 2000, 3000]  # (8 envs: 1000 and 2000 are multiples of 8)
    assert [QLearning.load(c.file()).num_timesteps for c in found] == [1000, 2000, 3000]


def test_set_env_and_tuple_observations() -> None:
    model = QLearning("TabularPolicy", "Blackjack-v1", seed=0).learn(2000)
    assert model.q_table.shape == (32 * 11 * 2, 2)
    action, _ = model.predict((14, 10, 0), deterministic=True)
    assert action in (0, 1) and np.ndim(action) == 0
    model.set_env(make_vec_env("Blackjack-v1", seed=1))
    model.learn(600)
    mean, _ = evaluate_policy(model, make_vec_env("Blackjack-v1", seed=2), n_eval_episodes=20)
    assert -1.0 <= mean <= 1.0


def test_discretized_box_observations() -> None:
    env = make_vec_env("MountainCar-v0", n_envs=2, seed=0, wrapper_class=DiscretizeObservation, wrapper_kwargs={"bins": 8})
    model = QLearning("TabularPolicy", env, seed=0).learn(1000)
    assert model.q_table.shape == (64, 3)
    assert np.count_nonzero(model.q_table) > 0


# --- bad input ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"learning_rate": 0.0}, r"learning_rate must be in \(0, 1\], got 0.0"),
        ({"learning_rate": 1.5}, r"learning_rate must be in \(0, 1\], got 1.5"),
        ({"gamma": 1.01}, r"gamma must be in \[0, 1\], got 1.01"),
        ({"gamma": -0.5}, r"gamma must be in \[0, 1\], got -0.5"),
        ({"exploration_initial_eps": 1.2}, r"exploration_initial_eps must be in \[0, 1\], got 1.2"),
        ({"exploration_final_eps": -0.1}, r"exploration_final_eps must be in \[0, 1\], got -0.1"),
        ({"exploration_fraction": 2.0}, r"exploration_fraction must be in \[0, 1\], got 2.0"),
        ({"learning_starts": -1}, r"learning_starts must be >= 0, got -1"),
        (
            {"update_rule": "td_lambda"},
            r"unknown update_rule 'td_lambda': use one of q_learning, sarsa, expected_sarsa, double_q",
        ),
    ],
)
def test_bad_values(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        QLearning("TabularPolicy", "FrozenLake-v1", **kwargs)


def test_unsupported_spaces() -> None:
    with pytest.raises(
        ValueError, match=r"cannot index observation space Box.*wrap the env in sb3_ext.wrappers.DiscretizeObservation"
    ):
        QLearning("TabularPolicy", "CartPole-v1")
    with pytest.raises(ValueError, match=r"QLearning needs a Discrete action space, got Box"):
        QLearning("TabularPolicy", DiscretizeObservation(gym.make("Pendulum-v1"), bins=5))
    with pytest.raises(
        ValueError, match=r"cannot index observation space Dict.*supported are Discrete, MultiDiscrete, MultiBinary and Tuple"
    ):
        QLearning("TabularPolicy", make_vec_env(lambda: _DictEnv()))
    with pytest.raises(ValueError, match=r"dimensions \[1, 3\] are unbounded.*pass low=\.\.\. and high=\.\.\."):
        DiscretizeObservation(gym.make("CartPole-v1"))
    with pytest.raises(ValueError, match=r"bins must be >= 1"):
        DiscretizeObservation(gym.make("MountainCar-v0"), bins=[0, 3])


def test_discretize_observation_bins() -> None:
    env = DiscretizeObservation(gym.make("MountainCar-v0"), bins=[4, 2])
    assert env.observation_space == spaces.MultiDiscrete([4, 2])
    low, high = env.low, env.high
    np.testing.assert_array_equal(env.observation(low), [0, 0])
    np.testing.assert_array_equal(env.observation(high), [3, 1])
    np.testing.assert_array_equal(env.observation(low - 10), [0, 0])
    np.testing.assert_array_equal(env.observation((low + high) / 2 + 1e-9), [2, 1])


class _DictEnv(gym.Env):
    observation_space = spaces.Dict({"a": spaces.Discrete(2)})
    action_space = spaces.Discrete(2)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, int], dict[str, Any]]:
        return {"a": 0}, {}

    def step(self, action: int) -> tuple[dict[str, int], float, bool, bool, dict[str, Any]]:
        return {"a": 0}, 0.0, True, False, {}
