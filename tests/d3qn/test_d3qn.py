from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
import yaml
from gymnasium import spaces
from stable_baselines3 import DQN
from stable_baselines3.common.buffers import NStepReplayBuffer, ReplayBuffer
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.envs import FakeImageEnv, SimpleMultiObsEnv
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import KVWriter, Logger
from stable_baselines3.common.vec_env import VecNormalize
from stable_baselines3.dqn.policies import DQNPolicy, QNetwork
from torch.nn import functional as F

from sb3_ext.common.buffers import DictPrioritizedReplayBuffer, PrioritizedReplayBuffer
from sb3_ext.config import ZOO_CONFIG_DIR, load_zoo_config
from sb3_ext.d3qn import D3QN, DuelingDQNPolicy, DuelingQNetwork
from sb3_ext.d3qn.d3qn import td_targets
from sb3_ext.registry import ALGOS, AlgoSpec

FAST: dict[str, Any] = dict(learning_starts=50, buffer_size=1_000, batch_size=16, policy_kwargs=dict(net_arch=[16]))


class Capture(KVWriter):
    """Keeps every logged dict."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, tuple[str, ...]], step: int = 0) -> None:
        self.records.append(dict(key_values))

    def close(self) -> None:
        pass


def constant(_: float) -> float:
    return 1e-3


# --- dueling policies ------------------------------------------------------------------------------------------------


def test_q_minus_v_has_zero_mean_over_actions_for_each_sample() -> None:
    policy = DuelingDQNPolicy(spaces.Box(-1, 1, (4,)), spaces.Discrete(5), constant, net_arch=[32])
    net = policy.q_net
    assert isinstance(net, DuelingQNetwork)
    obs = th.randn(64, 4) * 3
    with th.no_grad():
        value, advantage = net.streams(obs)
        q_values = net(obs)
    assert value.shape == (64, 1) and advantage.shape == (64, 5) and q_values.shape == (64, 5)
    th.testing.assert_close((q_values - value).mean(dim=1), th.zeros(64), atol=1e-5, rtol=0)
    th.testing.assert_close(q_values, value + advantage - advantage.mean(dim=1, keepdim=True))
    # The advantages' means differ between samples, so only a per-sample centring passes the checks above.
    assert (advantage.mean(dim=1) - advantage.mean()).abs().max() > 1e-3
    # The greedy action is the argmax of the advantages.
    th.testing.assert_close(policy._predict(obs), advantage.argmax(dim=1))


def test_dueling_false_is_sb3s_q_network_and_streams_can_have_layers() -> None:
    obs_space, act_space = spaces.Box(-1, 1, (4,)), spaces.Discrete(3)
    plain = DuelingDQNPolicy(obs_space, act_space, constant, net_arch=[32, 32], dueling=False)
    sb3 = DQNPolicy(obs_space, act_space, constant, net_arch=[32, 32])
    assert type(plain.q_net) is QNetwork
    assert [p.shape for p in plain.parameters()] == [p.shape for p in sb3.parameters()]
    dueling = DuelingDQNPolicy(obs_space, act_space, constant, net_arch=[32], dueling_net_arch=[8])
    shapes = {name: tuple(p.shape) for name, p in dueling.q_net.named_parameters()}
    assert shapes["value_net.0.weight"] == (8, 32) and shapes["value_net.2.weight"] == (1, 8)
    assert shapes["advantage_net.2.weight"] == (3, 8)
    assert not any(name.startswith("q_net") for name in shapes)
    # Linear streams are the rows of one layer: value first, then the advantages.
    linear = DuelingDQNPolicy(obs_space, act_space, constant, net_arch=[32])
    assert {name: tuple(p.shape) for name, p in linear.q_net.named_parameters() if "head" in name} == {
        "head.weight": (4, 32),
        "head.bias": (4,),
    }
    assert not any("combination" in key for key in linear.state_dict())


def test_dueling_policy_plugs_into_sb3_dqn(tmp_path: Path) -> None:
    model = DQN(DuelingDQNPolicy, "CartPole-v1", seed=0, **FAST).learn(300)
    assert isinstance(model.q_net, DuelingQNetwork) and isinstance(model.q_net_target, DuelingQNetwork)
    model.save(tmp_path / "dqn")
    loaded = DQN.load(tmp_path / "dqn")
    obs = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])


@pytest.mark.parametrize("action_space", [spaces.Box(-1, 1, (2,)), spaces.MultiDiscrete([2, 3])])
def test_dueling_policy_needs_discrete_actions(action_space: spaces.Space) -> None:
    with pytest.raises(ValueError, match="needs a Discrete action space"):
        DuelingDQNPolicy(spaces.Box(-1, 1, (4,)), action_space, constant)  # type: ignore[arg-type]


def test_dueling_net_arch_needs_dueling() -> None:
    with pytest.raises(ValueError, match="needs dueling=True"):
        DuelingDQNPolicy(spaces.Box(-1, 1, (4,)), spaces.Discrete(2), constant, dueling=False, dueling_net_arch=[8])


# --- targets, loss and priorities ------------------------------------------------------------------------------------


def test_td_targets_by_hand() -> None:
    rewards = th.tensor([[1.0], [0.5], [-1.0]])
    dones = th.tensor([[0.0], [1.0], [0.0]])
    discounts = th.tensor([[0.9], [0.81], [0.729]])
    next_q_target = th.tensor([[1.0, 5.0, 3.0], [2.0, 0.0, 7.0], [4.0, 4.5, -1.0]])
    next_q_online = th.tensor([[0.0, 1.0, 10.0], [9.0, 0.0, 0.0], [2.0, 1.0, 0.0]])
    # double Q: online argmax = 2, 0, 0; target values 3, 2, 4
    double = td_targets(rewards, dones, discounts, next_q_target, next_q_online)
    th.testing.assert_close(double, th.tensor([[1 + 0.9 * 3], [0.5], [-1 + 0.729 * 4]]))
    # DQN: max of the target network 5, 7, 4.5
    plain = td_targets(rewards, dones, discounts, next_q_target)
    th.testing.assert_close(plain, th.tensor([[1 + 0.9 * 5], [0.5], [-1 + 0.729 * 4.5]]))
    th.testing.assert_close(
        td_targets(rewards, dones, 0.5, next_q_target), rewards + (1 - dones) * 0.5 * th.tensor([[5.0], [7.0], [4.5]])
    )


@pytest.mark.parametrize("double_q", [True, False])
def test_train_step_loss_and_priorities_by_hand(double_q: bool) -> None:
    logger = Logger(None, [Capture()])
    model = D3QN(
        "MlpPolicy",
        "CartPole-v1",
        learning_rate=0.0,  # the networks do not move: the check below can recompute everything
        learning_starts=10_000,
        buffer_size=500,
        double_q=double_q,
        replay_buffer_kwargs=dict(alpha=1.0, beta=0.5),
        policy_kwargs=dict(net_arch=[16]),
        seed=0,
    )
    model.learn(300)
    model.set_logger(logger)
    buffer = model.replay_buffer
    assert isinstance(buffer, PrioritizedReplayBuffer)
    rng = np.random.default_rng(0)
    buffer.update_priorities(np.arange(300), rng.random(300) * 4)
    th.manual_seed(0)
    with th.no_grad():  # the target network differs from the online one, so double Q and max differ
        for param in model.q_net_target.parameters():
            param.add_(3 * th.randn_like(param))
    model._current_progress_remaining = 0.5
    beta = 0.5 + 0.5 * 0.5  # annealed halfway from 0.5 to 1

    buffer.set_beta(beta)
    np.random.seed(7)
    batch = buffer.sample(32)
    with th.no_grad():
        current = model.q_net(batch.observations).gather(1, batch.actions.long())
        next_target = model.q_net_target(batch.next_observations)
        greedy_online = model.q_net(batch.next_observations).argmax(dim=1, keepdim=True)
        double_target = batch.rewards + (1 - batch.dones) * model.gamma * next_target.gather(1, greedy_online)
        max_target = batch.rewards + (1 - batch.dones) * model.gamma * next_target.max(dim=1, keepdim=True).values
    target = double_target if double_q else max_target
    assert not th.allclose(double_target, max_target)
    td = (current - target).reshape(-1).numpy()
    loss = (batch.weights * F.smooth_l1_loss(current, target, reduction="none")).mean().item()

    np.random.seed(7)
    model.train(gradient_steps=1, batch_size=32)
    np.testing.assert_allclose(buffer.priorities().reshape(-1)[batch.indices], np.abs(td) + buffer.eps, rtol=1e-5)
    assert buffer.beta == pytest.approx(beta)
    assert logger.name_to_value["train/loss"] == pytest.approx(loss, rel=1e-5)
    assert logger.name_to_value["train/td_error"] == pytest.approx(np.abs(td).mean(), rel=1e-5)


def test_beta_anneals_to_one_and_training_logs() -> None:
    capture = Capture()
    model = D3QN("MlpPolicy", "CartPole-v1", seed=0, train_freq=1, replay_buffer_kwargs=dict(beta=0.4), **FAST)
    model.set_logger(Logger(None, [capture]))
    model.learn(1_000, log_interval=1)
    records = [r for r in capture.records if "train/beta" in r]
    assert records and {"train/loss", "train/td_error", "train/max_priority"} <= set(records[0])
    betas = [r["train/beta"] for r in records]
    assert betas == sorted(betas)
    assert 0.4 < betas[0] < 0.45 and betas[-1] > 0.99
    assert records[-1]["train/max_priority"] > 1.0  # TD errors above 1 raised it
    assert records[-1]["train/td_error"] > 0
    # The mean priority is the buffer's (p ** alpha over every stored transition), not the batch's TD error
    buffer = model.replay_buffer
    assert isinstance(buffer, PrioritizedReplayBuffer)
    model.train(gradient_steps=1, batch_size=model.batch_size)
    logged = model.logger.name_to_value
    stored = buffer.priorities()[: buffer.size()]
    assert logged["train/mean_priority"] == pytest.approx(stored.mean()) == buffer.mean_priority()
    assert logged["train/mean_priority"] != pytest.approx(logged["train/td_error"] + buffer.eps)


# --- ablations and options -------------------------------------------------------------------------------------------


def test_all_switches_off_is_sb3_dqn() -> None:
    kwargs: dict[str, Any] = dict(seed=3, learning_starts=100, buffer_size=1_000, batch_size=32, target_update_interval=50)
    ours = D3QN(
        "MlpPolicy",
        "CartPole-v1",
        double_q=False,
        replay_buffer_class=ReplayBuffer,
        policy_kwargs=dict(net_arch=[32], dueling=False),
        **kwargs,
    ).learn(800)
    dqn = DQN("MlpPolicy", "CartPole-v1", policy_kwargs=dict(net_arch=[32]), **kwargs).learn(800)
    for a, b in zip(ours.policy.parameters(), dqn.policy.parameters(), strict=True):
        assert th.equal(a, b)


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param(dict(double_q=False), id="no-double"),
        pytest.param(dict(policy_kwargs=dict(net_arch=[16], dueling=False)), id="no-dueling"),
        pytest.param(dict(replay_buffer_class=ReplayBuffer), id="uniform"),
        pytest.param(dict(n_steps=3), id="per-n-step"),
        pytest.param(dict(n_steps=3, replay_buffer_class=NStepReplayBuffer), id="uniform-n-step"),
        pytest.param(dict(policy_kwargs=dict(net_arch=[16], dueling_net_arch=[8])), id="stream-layers"),
        pytest.param(dict(train_freq=(1, "episode"), gradient_steps=-1, tau=0.5, target_update_interval=1), id="schedule"),
        pytest.param(
            dict(optimize_memory_usage=True, replay_buffer_kwargs=dict(handle_timeout_termination=False)), id="memory"
        ),
    ],
)
def test_every_switch_trains(kwargs: dict[str, Any]) -> None:
    model = D3QN("MlpPolicy", "CartPole-v1", seed=0, **{**FAST, **kwargs}).learn(400)
    assert model._n_updates > 0
    if isinstance(model.replay_buffer, PrioritizedReplayBuffer):
        assert model.replay_buffer.n_steps == model.n_steps
        assert not np.allclose(model.replay_buffer.priorities()[: model.replay_buffer.size()], 1.0)  # updated


def test_vec_envs_and_vec_normalize() -> None:
    env = VecNormalize(make_vec_env("CartPole-v1", n_envs=4, seed=0), gamma=0.99)
    model = D3QN("MlpPolicy", env, seed=0, n_steps=2, **FAST).learn(800)
    buffer = model.replay_buffer
    assert isinstance(buffer, PrioritizedReplayBuffer) and buffer.n_envs == 4
    assert (buffer.priorities()[: buffer.size()] != 1.0).any(axis=0).all()  # every env was sampled and updated


def test_image_and_dict_observations() -> None:
    image_env = FakeImageEnv(screen_height=36, screen_width=36, action_dim=3)
    model = D3QN("CnnPolicy", image_env, seed=0, learning_starts=20, buffer_size=200, batch_size=4).learn(60)
    assert isinstance(model.q_net, DuelingQNetwork) and isinstance(model.replay_buffer, PrioritizedReplayBuffer)
    assert not model.policy.noisy and model.exploration_rate == 0.05  # type: ignore[attr-defined]
    noisy = D3QN("CnnPolicy", image_env, learning_starts=20, buffer_size=200, policy_kwargs=dict(noisy=True)).learn(30)
    assert noisy.exploration_rate == 0.0  # the noisy layers explore
    model = D3QN("MultiInputPolicy", SimpleMultiObsEnv(), seed=0, **FAST)  # prioritized replay of Dict observations
    model.learn(100)
    assert isinstance(model.q_net, DuelingQNetwork) and type(model.replay_buffer) is DictPrioritizedReplayBuffer
    assert model.exploration_rate == 0.05


def test_n_steps_from_replay_buffer_kwargs_as_sb3_documents() -> None:
    model = D3QN("MlpPolicy", "CartPole-v1", replay_buffer_kwargs=dict(n_steps=3), **FAST)
    assert model.n_steps == 3 and isinstance(model.replay_buffer, PrioritizedReplayBuffer)
    assert model.replay_buffer.n_steps == 3 and model.replay_buffer.gamma == model.gamma


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (dict(n_steps=0), ValueError, "n_steps must be an integer >= 1"),
        (dict(replay_buffer_kwargs=dict(alpha=-1.0)), ValueError, "alpha must be >= 0"),
        (dict(replay_buffer_kwargs=dict(beta=1.2)), ValueError, r"beta must be in \[0, 1\]"),
        (dict(replay_buffer_kwargs=dict(eps=0.0)), ValueError, "eps must be > 0"),
        (dict(n_steps=3, replay_buffer_class=ReplayBuffer), ValueError, "needs a buffer that computes n-step returns"),
        (dict(n_steps=3, replay_buffer_kwargs=dict(n_steps=5)), ValueError, "n_steps=5 differs"),
        (dict(gamma=0.9, replay_buffer_kwargs=dict(gamma=0.99)), ValueError, "gamma=0.99 differs"),
    ],
)
def test_bad_input_fails_at_construction(kwargs: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        D3QN("MlpPolicy", "CartPole-v1", **{**FAST, **kwargs})


def test_continuous_actions_fail_at_construction() -> None:
    with pytest.raises(ValueError, match=r"^D3QN needs a Discrete action space, got Box"):
        D3QN("MlpPolicy", "Pendulum-v1")


# --- persistence ---------------------------------------------------------------------------------------------------------


def test_replay_buffer_round_trips_priorities_and_resumed_training(tmp_path: Path) -> None:
    # (save/load of the model itself, with and without an env, is checked for every algorithm in test_sb3_contract.py)
    env = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    model = D3QN("MlpPolicy", env, seed=0, n_steps=3, train_freq=1, **FAST).learn(600)
    model.save(tmp_path / "model")
    model.save_replay_buffer(tmp_path / "buffer")
    loaded = D3QN.load(tmp_path / "model", env=make_vec_env("CartPole-v1", n_envs=2, seed=1))
    loaded.load_replay_buffer(tmp_path / "buffer")

    original, restored = model.replay_buffer, loaded.replay_buffer
    assert isinstance(original, PrioritizedReplayBuffer) and isinstance(restored, PrioritizedReplayBuffer)
    np.testing.assert_array_equal(restored.priorities(), original.priorities())
    assert restored.max_priority == original.max_priority and restored.n_steps == 3
    assert loaded.double_q and loaded.beta_schedule is not None
    assert loaded.beta_schedule(0.5) == model.beta_schedule(0.5)  # type: ignore[misc]

    # Resumed training continues from the same priorities: one more step gives the same update in both.
    for algo in (model, loaded):
        algo.set_logger(Logger(None, [Capture()]))
        algo._current_progress_remaining = 0.3
        np.random.seed(11)
        th.manual_seed(11)
        algo.train(gradient_steps=2, batch_size=16)
    np.testing.assert_array_equal(restored.priorities(), original.priorities())
    for a, b in zip(model.policy.parameters(), loaded.policy.parameters(), strict=True):
        th.testing.assert_close(a, b)
    loaded.learn(200, reset_num_timesteps=False)


# --- zoo config and learning -----------------------------------------------------------------------------------------


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry entry of d3qn (added to sb3_ext/registry.py alongside this module)."""
    monkeypatch.setitem(
        ALGOS, "d3qn", AlgoSpec("d3qn", D3QN, False, (spaces.Discrete,), paper="https://arxiv.org/abs/1511.06581")
    )


@pytest.mark.usefixtures("registered")
@pytest.mark.parametrize("entry", sorted(yaml.safe_load((ZOO_CONFIG_DIR / "d3qn.yml").read_text())))
def test_zoo_config_entries_build_and_train(entry: str) -> None:
    env_id = {"default": "CartPole-v1", "atari": "BreakoutNoFrameskip-v4"}.get(entry, entry)
    cfg = load_zoo_config("d3qn", env_id)
    model = cfg.make_model(cfg.make_env(seed=0), seed=0, learning_starts=0, buffer_size=500)
    assert isinstance(model, D3QN)
    model.learn(100)


@pytest.mark.slow
@pytest.mark.usefixtures("registered")
def test_learns_cartpole() -> None:
    """The zoo config reaches a deterministic evaluation mean >= 475 within a budget of 30,000 steps (seed 0).

    Checked here: at this budget seeds 0, 1 and 3 evaluate at 500 +- 0 and seed 2 at 472 (~36 s each on 2 cores).
    """
    budget = 30_000
    cfg = load_zoo_config("d3qn", "CartPole-v1")
    model = cfg.make_model(cfg.make_env(seed=0), seed=0).learn(budget)
    eval_env = gym.make("CartPole-v1")
    eval_env.reset(seed=123)
    mean_reward, _ = evaluate_policy(model, eval_env, n_eval_episodes=10, deterministic=True, warn=False)
    assert mean_reward >= 475
