from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import NStepReplayBuffer, ReplayBuffer
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.envs import SimpleMultiObsEnv
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import Logger
from torch.nn import functional as F

from sb3_ext import D3QN, DictPrioritizedReplayBuffer, PrioritizedReplayBuffer, Rainbow, get_algo, load_zoo_config
from sb3_ext.common.torch_layers import NoisyLinear, mean_noise_std, noisy_sampling
from sb3_ext.rainbow import CategoricalQNetwork
from sb3_ext.rainbow.rainbow import project_distribution

FAST: dict[str, Any] = dict(learning_starts=50, buffer_size=2_000, batch_size=16, target_update_interval=50)
SUPPORT = th.tensor([-1.0, 0.0, 1.0])

# --- the categorical projection ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reward", "done", "discount", "expected"),
    [
        # Tz = 0.5 + 0.5 z = 0, 0.5, 1: atom 0 gets 0.2 + half of 0.5, atom 1 the other half and 0.3
        (0.5, 0.0, 0.5, [0.0, 0.2 + 0.25, 0.25 + 0.3]),
        # an n-step discount of 0.25: Tz = -0.25, 0, 0.25
        (0.0, 0.0, 0.25, [0.25 * 0.2, 0.75 * 0.2 + 0.5 + 0.75 * 0.3, 0.25 * 0.3]),
        # beyond the support: clipped to its ends
        (3.0, 0.0, 0.5, [0.0, 0.0, 1.0]),
        (-3.0, 0.0, 0.5, [1.0, 0.0, 0.0]),
        # terminal: all the mass at r = 0.25, shared between the atoms 0 and 1
        (0.25, 1.0, 0.5, [0.0, 0.75, 0.25]),
        (-1.0, 1.0, 0.5, [1.0, 0.0, 0.0]),
    ],
)
def test_projection_by_hand(reward: float, done: float, discount: float, expected: list[float]) -> None:
    next_probabilities = th.tensor([[0.2, 0.5, 0.3]])
    target = project_distribution(next_probabilities, th.tensor([[reward]]), th.tensor([[done]]), discount, SUPPORT)
    th.testing.assert_close(target, th.tensor([expected]))


def test_projection_of_a_batch_with_per_sample_discounts_conserves_mass() -> None:
    generator = th.Generator().manual_seed(0)
    support = th.linspace(-10, 10, 51)
    next_probabilities = th.softmax(th.randn(64, 51, generator=generator), dim=1)
    rewards, dones = th.randn(64, 1, generator=generator) * 5, (th.rand(64, 1, generator=generator) < 0.2).float()
    discounts = 0.99 ** th.randint(1, 4, (64, 1), generator=generator).float()
    target = project_distribution(next_probabilities, rewards, dones, discounts, support)
    th.testing.assert_close(target.sum(dim=1), th.ones(64))
    assert (target >= 0).all()
    # the mean is preserved where no target atom is clipped
    clipped = ((rewards + (1 - dones) * discounts * support).abs() > 10).any(dim=1)
    mean = rewards + (1 - dones) * discounts * (next_probabilities @ support).unsqueeze(1)
    th.testing.assert_close((target @ support)[~clipped], mean.reshape(-1)[~clipped], atol=1e-4, rtol=1e-4)
    # each row depends on its own sample only
    th.testing.assert_close(
        project_distribution(next_probabilities[:1], rewards[:1], dones[:1], discounts[:1], support), target[:1]
    )


# --- the categorical network ---------------------------------------------------------------------------------------


def rainbow(env: Any = "CartPole-v1", **kwargs: Any) -> Rainbow:
    return Rainbow("MlpPolicy", env, seed=0, **{**FAST, **kwargs})


@pytest.mark.parametrize("dueling", [True, False])
def test_probabilities_sum_to_one_and_q_is_their_mean(dueling: bool) -> None:
    model = rainbow(n_atoms=11, v_min=-5.0, v_max=5.0, policy_kwargs=dict(net_arch=[32], dueling=dueling))
    q_net = model.q_net
    assert isinstance(q_net, CategoricalQNetwork)
    th.testing.assert_close(q_net.support, th.linspace(-5.0, 5.0, 11))
    obs = th.randn(8, 4)
    for training in (False, True):
        q_net.set_training_mode(training)
        q_net.reset_noise()
        probabilities = q_net.probabilities(obs)
        assert probabilities.shape == (8, 2, 11)
        th.testing.assert_close(probabilities.sum(dim=-1), th.ones(8, 2))
        th.testing.assert_close(q_net(obs), (probabilities * q_net.support).sum(dim=-1))
        # a sample's outputs do not depend on the rest of its batch (the noise is per layer, not per sample)
        th.testing.assert_close(q_net.probabilities(obs[3:4]), probabilities[3:4])
    q_net.set_training_mode(False)


def test_dueling_logits_have_zero_mean_advantage_per_atom() -> None:
    model = rainbow(n_atoms=5, policy_kwargs=dict(net_arch=[16]))
    q_net = model.q_net
    obs = th.randn(6, 4)
    latent = q_net.shared_net(q_net.extract_features(obs, q_net.features_extractor))
    advantage = q_net.advantage_net(latent).view(6, 2, 5)
    value = q_net.value_net(latent).unsqueeze(1)  # type: ignore[misc]
    th.testing.assert_close(q_net.logits(obs), value + advantage - advantage.mean(dim=1, keepdim=True))
    th.testing.assert_close(q_net.logits(obs).mean(dim=1), value.squeeze(1) + 0 * advantage.mean(dim=1))


# --- noisy layers ----------------------------------------------------------------------------------------------------


def test_noisy_linear_factorised_noise_and_modes() -> None:
    th.manual_seed(0)
    layer = NoisyLinear(5, 3, std_init=0.5)
    assert layer.eps_in.shape == (5,) and layer.eps_out.shape == (3,)
    th.testing.assert_close(layer.weight_sigma, th.full((3, 5), 0.5 / np.sqrt(5)))
    f = lambda x: x.sign() * x.abs().sqrt()  # noqa: E731
    x = th.randn(4, 5)

    layer.train()
    noise = th.outer(layer.eps_out, layer.eps_in)  # factorised: rank one
    assert th.linalg.matrix_rank(noise) == 1
    th.testing.assert_close(
        layer(x), F.linear(x, layer.weight_mu + layer.weight_sigma * noise, layer.bias_mu + layer.bias_sigma * layer.eps_out)
    )
    before = layer(x)
    th.testing.assert_close(layer(x), before)  # the same noise until reset_noise
    th.manual_seed(1)
    layer.reset_noise()
    assert not th.allclose(layer(x), before)  # training mode changes with reset_noise
    th.manual_seed(1)
    eps = f(th.randn(5 + 3))  # f(x) = sign(x) sqrt(|x|) of standard normals, eps_in then eps_out
    th.testing.assert_close((layer.eps_in, layer.eps_out), (eps[:5], eps[5:]))

    layer.eval()  # evaluation: the mean weights, whatever the noise
    mean = F.linear(x, layer.weight_mu, layer.bias_mu)
    th.testing.assert_close(layer(x), mean)
    layer.reset_noise()
    th.testing.assert_close(layer(x), mean)
    with noisy_sampling(layer):  # acting in evaluation mode with the noise
        assert not th.allclose(layer(x), mean)
    th.testing.assert_close(layer(x), mean)


def test_noisy_exploration_in_rollouts_and_mean_weights_for_evaluation() -> None:
    model = rainbow(policy_kwargs=dict(net_arch=[32], noisy_std=2.0))
    assert model.exploration_initial_eps == 0.0 and model.exploration_final_eps == 0.0  # noisy nets explore
    obs = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    deterministic = [model.predict(obs, deterministic=True)[0] for _ in range(5)]
    assert all(np.array_equal(deterministic[0], actions) for actions in deterministic)  # the mean weights
    stochastic = [model.predict(obs, deterministic=False)[0] for _ in range(5)]
    assert any(not np.array_equal(stochastic[0], actions) for actions in stochastic)  # new noise per action choice
    with th.no_grad():
        model.q_net.set_training_mode(False)
        mean_q = model.q_net(th.as_tensor(obs))
    np.testing.assert_array_equal(deterministic[0], mean_q.argmax(dim=1).numpy())
    assert not model.q_net.training  # acting left the network in evaluation mode


def test_d3qn_takes_noisy_nets_too() -> None:
    for dueling in (True, False):
        model = D3QN("MlpPolicy", "CartPole-v1", seed=0, policy_kwargs=dict(noisy=True, dueling=dueling), **FAST)
        assert any(isinstance(m, NoisyLinear) for m in model.q_net.modules())
        assert model.exploration_initial_eps == 0.0
        model.learn(200)
        assert model.logger.name_to_value["train/noise_std"] == pytest.approx(mean_noise_std(model.q_net))
    plain = D3QN("MlpPolicy", "CartPole-v1", **FAST)
    assert not any(isinstance(m, NoisyLinear) for m in plain.q_net.modules()) and plain.exploration_initial_eps == 1.0


# --- D3QN as a special case, every switch ----------------------------------------------------------------------------


class SeededFrames(gym.Env):
    """Random 36x36 frames drawn from the env's seeded generator (SB3's FakeImageEnv samples unseeded)."""

    observation_space = spaces.Box(0, 255, (36, 36, 1), np.uint8)
    action_space = spaces.Discrete(3)

    def _frame(self) -> np.ndarray:
        return self.np_random.integers(0, 256, self.observation_space.shape, dtype=np.uint8)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.steps = 0
        return self._frame(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.steps += 1
        return self._frame(), float(action == 0), False, self.steps >= 50, {}


def _vec_env(policy: str) -> Any:
    if policy == "CnnPolicy":
        return make_vec_env(SeededFrames, n_envs=2, seed=0)
    if policy == "MultiInputPolicy":
        return make_vec_env(SimpleMultiObsEnv, n_envs=2, seed=0, env_kwargs=dict(random_start=False))
    return make_vec_env("CartPole-v1", n_envs=2, seed=0)


@pytest.mark.parametrize(
    "policy",
    ["MlpPolicy", pytest.param("CnnPolicy", marks=pytest.mark.slow), pytest.param("MultiInputPolicy", marks=pytest.mark.slow)],
)
def test_without_the_categorical_head_and_noise_it_trains_exactly_as_d3qn(policy: str) -> None:
    kwargs: dict[str, Any] = dict(
        seed=3, n_steps=1, learning_starts=100, buffer_size=1_000, batch_size=32, target_update_interval=50, train_freq=4
    )
    policy_kwargs: dict[str, Any] = dict(net_arch=[32])
    if policy == "CnnPolicy":
        policy_kwargs["features_extractor_kwargs"] = dict(features_dim=16)
    # Each built and trained in turn: SB3 seeds the global generators when a model is built, so two models built
    # before either learns draw from one stream (two DQNs built so differ as much)
    ours = Rainbow(policy, _vec_env(policy), distributional=False, policy_kwargs=dict(noisy=False, **policy_kwargs), **kwargs)
    ours.learn(1_500)
    d3qn = D3QN(policy, _vec_env(policy), policy_kwargs=policy_kwargs, **kwargs).learn(1_500)
    assert d3qn.num_timesteps == ours.num_timesteps >= 1_500 and d3qn._n_updates > 100  # (trained networks, not fresh)
    assert (ours.exploration_initial_eps, ours.exploration_final_eps) == (
        d3qn.exploration_initial_eps,
        d3qn.exploration_final_eps,
    )
    for (name, a), b in zip(ours.policy.state_dict().items(), d3qn.policy.state_dict().values(), strict=True):
        assert th.equal(a, b), name
    assert isinstance(ours.replay_buffer, PrioritizedReplayBuffer) and isinstance(d3qn.replay_buffer, PrioritizedReplayBuffer)
    np.testing.assert_array_equal(ours.replay_buffer.priorities(), d3qn.replay_buffer.priorities())
    obs = d3qn.q_net.obs_to_tensor(d3qn.observation_space.sample())[0]
    assert th.equal(ours.q_net(obs), d3qn.q_net(obs))


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param(dict(), id="all-six"),
        pytest.param(dict(distributional=False), id="no-distributional"),
        pytest.param(dict(policy_kwargs=dict(noisy=False)), id="no-noisy"),
        pytest.param(dict(policy_kwargs=dict(dueling=False)), id="no-dueling"),
        pytest.param(dict(policy_kwargs=dict(dueling_net_arch=[8])), id="stream-layers"),
        pytest.param(dict(double_q=False), id="no-double"),
        pytest.param(dict(replay_buffer_class=NStepReplayBuffer), id="uniform-n-step"),
        pytest.param(dict(replay_buffer_class=ReplayBuffer, n_steps=1), id="uniform-one-step"),
        pytest.param(dict(n_steps=1), id="per-one-step"),
        pytest.param(dict(policy_kwargs=dict(noisy=False, dueling=False), distributional=False, double_q=False), id="dqn"),
    ],
)
def test_every_switch_trains(kwargs: dict[str, Any]) -> None:
    policy_kwargs = dict(net_arch=[16], **kwargs.pop("policy_kwargs", {}))
    model = rainbow(make_vec_env("CartPole-v1", n_envs=2, seed=0), policy_kwargs=policy_kwargs, **kwargs).learn(400)
    logged = model.logger.name_to_value
    name = "train/cross_entropy" if model.distributional else "train/td_error"
    assert np.isfinite(logged["train/loss"]) and logged[name] > 0
    assert ("train/beta" in logged) is isinstance(model.replay_buffer, PrioritizedReplayBuffer)
    assert ("train/noise_std" in logged) is model.policy.noisy  # type: ignore[attr-defined]


def test_image_observations() -> None:
    class Frames(gym.Env):
        observation_space = spaces.Box(0, 255, (40, 40, 3), np.uint8)
        action_space = spaces.Discrete(3)

        def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
            super().reset(seed=seed)
            return self.observation_space.sample(), {}

        def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
            return self.observation_space.sample(), float(action == 0), False, False, {}

    model = Rainbow("CnnPolicy", Frames(), seed=0, policy_kwargs=dict(features_extractor_kwargs=dict(features_dim=32)), **FAST)
    model.learn(100)
    assert model.predict(Frames().observation_space.sample(), deterministic=True)[0].shape == ()
    # The noisy layers explore: no epsilon on top of them (the Cnn class forwards ``noisy`` as a keyword argument)
    assert model.policy.noisy and model.exploration_rate == 0.0  # type: ignore[attr-defined]
    assert (model.exploration_initial_eps, model.exploration_final_eps) == (0.0, 0.0)


@pytest.mark.parametrize("cls", [Rainbow, D3QN])
def test_dict_observations_get_prioritized_replay(cls: type[D3QN]) -> None:
    model = cls("MultiInputPolicy", SimpleMultiObsEnv(random_start=False), seed=0, n_steps=3, **FAST).learn(200)
    assert isinstance(model.replay_buffer, DictPrioritizedReplayBuffer)
    assert model.logger.name_to_value["train/max_priority"] > 1.0  # priorities were updated
    noisy = cls is Rainbow  # (Rainbow's policies are noisy by default, D3QN's are not)
    assert model.policy.noisy is noisy  # type: ignore[attr-defined]
    assert model.exploration_rate == (0.0 if noisy else 0.05)
    if cls is D3QN:
        return
    assert model.q_net.probabilities(model.q_net.obs_to_tensor(model.env.reset())[0]).shape[1:] == (4, 51)  # type: ignore[union-attr, arg-type]


# --- bad input, registry, persistence --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(n_atoms=1), "n_atoms must be an integer >= 2"),
        (dict(v_min=1.0, v_max=1.0), "v_min must be < v_max"),
        (dict(v_min=5.0, v_max=-5.0), "v_min must be < v_max"),
        (dict(policy_kwargs=dict(noisy_std=0.0)), "noisy_std must be > 0"),
        (dict(policy_kwargs=dict(noisy_std=-1.0)), "noisy_std must be > 0"),
        (dict(policy_kwargs=dict(n_atoms=11)), "policy_kwargs n_atoms=11 differs from Rainbow's n_atoms=51"),
    ],
)
def test_bad_values_fail_at_construction(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Rainbow("MlpPolicy", "CartPole-v1", **kwargs)


def test_continuous_actions_fail_at_construction() -> None:
    with pytest.raises(ValueError, match=r"^Rainbow needs a Discrete action space, got Box"):
        Rainbow("MlpPolicy", "Pendulum-v1")


def test_registered_with_a_zoo_config() -> None:
    spec = get_algo("rainbow")
    assert spec.cls is Rainbow and spec.action_spaces == (spaces.Discrete,)
    cfg = load_zoo_config("rainbow", "CartPole-v1")
    model = cfg.make_model(cfg.make_env(seed=0), seed=0, learning_starts=0, buffer_size=500)
    assert isinstance(model, Rainbow) and (model.v_min, model.v_max, model.n_steps) == (0.0, 100.0, 3)
    model.learn(100)


def test_save_load_without_env_round_trips_predictions_and_priorities(tmp_path: Path) -> None:
    model = rainbow(make_vec_env("CartPole-v1", n_envs=2, seed=0), n_atoms=21, policy_kwargs=dict(net_arch=[16])).learn(400)
    model.save(tmp_path / "model")
    model.save_replay_buffer(tmp_path / "buffer")
    loaded = Rainbow.load(tmp_path / "model")
    loaded.load_replay_buffer(tmp_path / "buffer")
    assert isinstance(loaded.q_net, CategoricalQNetwork) and loaded.q_net.n_atoms == 21 and loaded.n_atoms == 21
    obs = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])
    with th.no_grad():
        th.testing.assert_close(loaded.q_net.probabilities(th.as_tensor(obs)), model.q_net.probabilities(th.as_tensor(obs)))
    assert isinstance(loaded.replay_buffer, PrioritizedReplayBuffer) and isinstance(
        model.replay_buffer, PrioritizedReplayBuffer
    )
    np.testing.assert_array_equal(loaded.replay_buffer.priorities(), model.replay_buffer.priorities())
    loaded.set_env(make_vec_env("CartPole-v1", n_envs=2, seed=1))
    loaded.set_logger(Logger(None, []))
    loaded.learn(200, reset_num_timesteps=False)


# --- learning --------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_learns_cartpole() -> None:
    """The zoo config reaches a deterministic evaluation mean >= 475 within a budget of 30,000 steps (seed 0)."""
    budget = 30_000
    cfg = load_zoo_config("rainbow", "CartPole-v1")
    model = cfg.make_model(cfg.make_env(seed=0), seed=0).learn(budget)
    eval_env = gym.make("CartPole-v1")
    eval_env.reset(seed=123)
    mean_reward, _ = evaluate_policy(model, eval_env, n_eval_episodes=10, deterministic=True, warn=False)
    assert mean_reward >= 475
