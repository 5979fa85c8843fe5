"""
The prioritized variants of SB3's DQN, SAC, TD3 and DDPG (``sb3_ext.per``).

The drift tests train each variant and its upstream class on the same batches with every importance-sampling weight 1:
they must end with the same parameters, since a variant's ``train`` is a copy of its upstream class's with prioritized
replay added. They were checked on stable-baselines3 :data:`SB3_CHECKED`; when one fails after an upgrade, SB3's
``train`` changed, and the variant's copy must follow it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from copy import deepcopy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import stable_baselines3
import torch as th
from stable_baselines3 import DDPG, DQN, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.type_aliases import ReplayBufferSamples

from sb3_ext import ConfigError, get_algo, load_zoo_config
from sb3_ext.common.buffers import PrioritizedReplayBuffer
from sb3_ext.common.type_aliases import PrioritizedReplayBufferSamples
from sb3_ext.per.dqn import PrioritizedDQN
from sb3_ext.per.sac import PrioritizedSAC
from sb3_ext.per.td3 import PrioritizedDDPG, PrioritizedTD3

#: The stable-baselines3 version whose ``train`` methods the variants' were checked against (drift tests)
SB3_CHECKED = "2.9.2"


@dataclass(frozen=True)
class Variant:
    """A prioritized variant, its upstream class and cheap arguments for both."""

    key: str
    cls: type[OffPolicyAlgorithm]
    upstream: type[OffPolicyAlgorithm]
    env_id: str
    kwargs: dict[str, Any] = field(default_factory=dict, hash=False)

    def __str__(self) -> str:
        return self.key

    def make(self, cls: type[OffPolicyAlgorithm] | None = None, **overrides: Any) -> OffPolicyAlgorithm:
        return (cls or self.cls)("MlpPolicy", self.env_id, **deepcopy({**self.kwargs, **overrides}))  # (SB3 edits them)


_SMALL: dict[str, Any] = dict(batch_size=32, policy_kwargs=dict(net_arch=[16]))
_FAST: dict[str, Any] = dict(learning_starts=50, buffer_size=1_000, **_SMALL)
VARIANTS = [
    Variant("dqn_per", PrioritizedDQN, DQN, "CartPole-v1", dict(_FAST, train_freq=4, target_update_interval=100)),
    Variant("sac_per", PrioritizedSAC, SAC, "Pendulum-v1", _FAST),
    Variant("td3_per", PrioritizedTD3, TD3, "Pendulum-v1", _FAST),
    Variant("ddpg_per", PrioritizedDDPG, DDPG, "Pendulum-v1", _FAST),
]


def quiet_logger(model: BaseAlgorithm) -> Logger:
    """Give a model that has not learned yet a logger (``train`` records to it) that writes nothing."""
    logger = Logger(folder=None, output_formats=[])
    model.set_logger(logger)
    return logger


def fill(models: list[OffPolicyAlgorithm], n: int = 200, seed: int = 0) -> None:
    """Add the same ``n`` random transitions to every model's replay buffer."""
    space, action_space = models[0].observation_space, models[0].action_space
    space.seed(seed)
    action_space.seed(seed)
    rng = np.random.default_rng(seed)
    for _ in range(n):
        obs, next_obs = space.sample()[None], space.sample()[None]
        action = np.asarray(action_space.sample(), dtype=np.float32).reshape(1, -1)
        if isinstance(action_space, gym.spaces.Box):  # (stored scaled to [-1, 1], as the algorithms store them)
            action = np.clip(action / action_space.high, -1, 1)
        reward, done = rng.normal(size=1).astype(np.float32), rng.random(1) < 0.05
        for model in models:
            assert model.replay_buffer is not None
            model.replay_buffer.add(obs, next_obs, action, reward, done, [{}])


def serve(model: OffPolicyAlgorithm, batches: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``model.replay_buffer.sample`` return ``batches``, one per call, in order."""
    served: Iterator[Any] = iter(batches)
    monkeypatch.setattr(model.replay_buffer, "sample", lambda batch_size, env=None: next(served))


def parameters(model: BaseAlgorithm) -> dict[str, th.Tensor]:
    """Every learned tensor: the policy's state dict, and SAC's entropy coefficient."""
    tensors = {name: value.detach().clone() for name, value in model.policy.state_dict().items()}
    log_ent_coef = getattr(model, "log_ent_coef", None)
    if isinstance(log_ent_coef, th.Tensor):
        tensors["log_ent_coef"] = log_ent_coef.detach().clone()
    return tensors


# --- train is the upstream's, with prioritization ---------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_train_with_unit_weights_is_the_upstream_train(variant: Variant, monkeypatch: pytest.MonkeyPatch) -> None:
    upstream = variant.make(variant.upstream, seed=0)
    model = variant.make(seed=0, replay_buffer_kwargs=dict(alpha=0.0))  # (uniform sampling: every weight is 1)
    assert isinstance(model.replay_buffer, PrioritizedReplayBuffer) and not isinstance(
        upstream.replay_buffer, PrioritizedReplayBuffer
    )
    before = parameters(upstream)
    assert before.keys() == parameters(model).keys()
    for name, value in parameters(model).items():
        assert th.equal(value, before[name]), f"{variant.cls.__name__} and {variant.upstream.__name__} start apart: {name}"

    fill([upstream, model])
    rng = np.random.default_rng(1)
    indices = [rng.integers(0, 200, size=32) for _ in range(5)]
    assert upstream.replay_buffer is not None
    batches = [upstream.replay_buffer._get_samples(inds) for inds in indices]
    assert all(type(batch) is ReplayBufferSamples for batch in batches)
    serve(upstream, batches, monkeypatch)
    serve(
        model,
        [
            PrioritizedReplayBufferSamples(*batch, weights=th.ones(32, 1), indices=inds)
            for batch, inds in zip(batches, indices, strict=True)
        ],
        monkeypatch,
    )
    updated: list[np.ndarray] = []
    update_priorities = model.replay_buffer.update_priorities

    def record_update(inds: np.ndarray, priorities: np.ndarray) -> None:
        updated.append(inds)
        update_priorities(inds, priorities)

    monkeypatch.setattr(model.replay_buffer, "update_priorities", record_update)
    for trained in (upstream, model):
        quiet_logger(trained)
        th.manual_seed(0)  # (SAC samples actions, TD3 target noise)
        trained.train(gradient_steps=5, batch_size=32)

    expected = parameters(upstream)
    assert any(not th.equal(value, before[name]) for name, value in expected.items())  # (it trained)
    installed = f"stable-baselines3 {stable_baselines3.__version__}"
    for name, value in parameters(model).items():
        try:
            th.testing.assert_close(value, expected[name], rtol=1e-5, atol=1e-6)
        except AssertionError as error:
            raise AssertionError(
                f"{variant.cls.__name__}.train drifted from {variant.upstream.__name__}.train at {name} ({installed}; "
                f"checked on {SB3_CHECKED}): SB3's train changed, port the change to {variant.cls.__module__}\n{error}"
            ) from None
    assert model._n_updates == upstream._n_updates
    # ... and the variant updated the priorities of what it sampled
    assert [list(inds) for inds in updated] == [list(inds) for inds in indices]


def _huber(diff: th.Tensor) -> th.Tensor:
    """The Huber loss of each element (``smooth_l1`` with ``beta=1``), written out."""
    return th.where(diff.abs() < 1, 0.5 * diff**2, diff.abs() - 0.5)


def _by_hand(model: OffPolicyAlgorithm, batch: PrioritizedReplayBufferSamples, lap: bool) -> tuple[float, th.Tensor]:
    """
    A batch's loss and per-sample errors, written out from the papers (random draws in the order ``train`` makes them).

    :return: the critic loss (DQN: the loss), each sample's critics' TD errors, shape ``(batch, n_critics)``
    """
    weights = th.ones_like(batch.weights) if lap else batch.weights
    with th.no_grad():
        if isinstance(model, DQN):
            next_q = model.q_net_target(batch.next_observations).max(dim=1, keepdim=True).values
            target = batch.rewards + (1 - batch.dones) * model.gamma * next_q
            diff = model.q_net(batch.observations).gather(1, batch.actions.long()) - target
            return float((weights * _huber(diff)).mean()), diff  # (DQN's loss is Huber's, LAP or not)
        if isinstance(model, SAC):
            model.actor.action_log_prob(batch.observations)  # (the actor's actions for its own loss come first)
            next_actions, next_log_prob = model.actor.action_log_prob(batch.next_observations)
            assert model.log_ent_coef is not None  # (ent_coef="auto", the default)
            ent_coef = th.exp(model.log_ent_coef)
            next_q = th.cat(model.critic_target(batch.next_observations, next_actions), dim=1).min(dim=1, keepdim=True).values
            next_q = next_q - ent_coef * next_log_prob.reshape(-1, 1)
            factor = 0.5
        else:
            assert isinstance(model, TD3)  # (and DDPG)
            noise = batch.actions.clone().normal_(0, model.target_policy_noise)
            noise = noise.clamp(-model.target_noise_clip, model.target_noise_clip)
            next_actions = (model.actor_target(batch.next_observations) + noise).clamp(-1, 1)
            next_q = th.cat(model.critic_target(batch.next_observations, next_actions), dim=1).min(dim=1, keepdim=True).values
            factor = 1.0
        target = batch.rewards + (1 - batch.dones) * model.gamma * next_q
        diff = th.cat(model.critic(batch.observations, batch.actions), dim=1) - target  # (batch, n_critics)
        per_critic = _huber(diff).mean(dim=0) if lap else (weights * diff**2).mean(dim=0)
    return factor * float(per_critic.sum()), diff


@pytest.mark.parametrize("prioritization", ["proportional", "lap"])
@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_weighted_loss_and_priorities_by_hand(variant: Variant, prioritization: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Proportional: each sample's loss weighted by its importance-sampling weight; LAP: no weights, and Huber's loss in
    # place of the mean-squared one. Priorities: the largest absolute TD error over the critics (+ eps, or at least 1).
    model = variant.make(seed=0, replay_buffer_kwargs=dict(prioritization=prioritization, alpha=0.7))
    buffer = model.replay_buffer
    assert isinstance(buffer, PrioritizedReplayBuffer)
    fill([model])
    indices = np.random.default_rng(1).choice(200, size=32, replace=False)  # (distinct: one priority update each)
    weights = th.linspace(0.1, 1.0, 32).reshape(-1, 1)
    batch = PrioritizedReplayBufferSamples(*buffer._get_samples(indices), weights=weights, indices=indices)

    th.manual_seed(3)
    expected_loss, diff = _by_hand(model, batch, lap=prioritization == "lap")
    th.manual_seed(3)
    upstream_loss, _ = _by_hand(model, batch._replace(weights=th.ones_like(weights)), lap=False)
    if not (isinstance(model, DQN) and prioritization == "lap"):  # (DQN's loss is Huber's already: LAP leaves it)
        assert abs(upstream_loss - expected_loss) > 1e-3 * abs(expected_loss)  # (so the check below tells them apart)
    serve(model, [batch], monkeypatch)
    logger = quiet_logger(model)
    th.manual_seed(3)
    model.train(gradient_steps=1, batch_size=32)

    logged = logger.name_to_value["train/loss" if isinstance(model, DQN) else "train/critic_loss"]
    assert logged == pytest.approx(expected_loss, rel=1e-5)
    errors = diff.abs().max(dim=1).values.double().numpy()
    if prioritization == "lap":
        priorities = np.maximum(errors, 1.0) ** 0.7
    else:
        priorities = (errors + buffer.eps) ** 0.7
    np.testing.assert_allclose(buffer.priorities().reshape(-1)[indices], priorities, rtol=1e-5)
    assert logger.name_to_value["train/td_error"] == pytest.approx(errors.mean(), rel=1e-5)
    assert logger.name_to_value["train/max_priority"] == pytest.approx(
        max(1.0, errors.max() + (prioritization != "lap") * buffer.eps)
    )
    assert {"train/beta", "train/mean_priority"} <= set(logger.name_to_value)


# --- prioritized sampling -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_training_makes_priorities_that_sampling_follows(variant: Variant) -> None:
    model = variant.make(seed=0).learn(300)
    buffer = model.replay_buffer
    assert isinstance(buffer, PrioritizedReplayBuffer)
    stored = buffer.priorities()[: buffer.size()].reshape(-1)
    assert len(np.unique(stored)) > 10  # (new transitions enter at the largest priority: updated ones differ)
    assert model.logger.name_to_value["train/beta"] == buffer.beta and 0.9 < buffer.beta <= 1  # (from 0.4 to 1)

    # One transition with a high error, one with a low one, the others in between: sampled in proportion to p ** alpha
    everything = np.arange(buffer.size())
    buffer.update_priorities(everything, np.ones(len(everything)))
    buffer.update_priorities(np.array([7, 8]), np.array([50.0, 0.01]))
    np.random.seed(0)
    counts = np.bincount(np.concatenate([buffer.sample(32).indices for _ in range(100)]), minlength=buffer.size())
    share = (50.0 + buffer.eps) ** buffer.alpha / buffer.priorities().sum()
    assert counts[7] == pytest.approx(3200 * share, rel=0.25)  # (~320 of 3200 samples)
    assert counts[7] > 5 * np.median(counts) and counts[8] < np.median(counts)


# --- saving ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_save_and_load_keep_weights_and_priorities(variant: Variant, tmp_path: Path) -> None:
    model = variant.make(seed=0, replay_buffer_kwargs=dict(alpha=0.5, prioritization="lap")).learn(200)
    obs = np.stack([model.observation_space.sample() for _ in range(10)])
    expected, _ = model.predict(obs, deterministic=True)
    model.save(tmp_path / "model.zip")
    model.save_replay_buffer(tmp_path / "buffer.pkl")

    loaded = variant.cls.load(tmp_path / "model.zip", env=gym.make(variant.env_id))
    assert type(loaded) is variant.cls
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], expected)
    for name, value in parameters(model).items():
        assert th.equal(parameters(loaded)[name], value), name
    assert loaded.replay_buffer_kwargs == model.replay_buffer_kwargs
    assert isinstance(loaded.replay_buffer, PrioritizedReplayBuffer) and loaded.replay_buffer.size() == 0

    loaded.load_replay_buffer(tmp_path / "buffer.pkl")
    buffer, original = loaded.replay_buffer, model.replay_buffer
    assert isinstance(buffer, PrioritizedReplayBuffer) and isinstance(original, PrioritizedReplayBuffer)
    assert (buffer.alpha, buffer.prioritization, buffer.max_priority) == (0.5, "lap", original.max_priority)
    np.testing.assert_array_equal(buffer.priorities(), original.priorities())
    assert len(np.unique(buffer.priorities()[: buffer.size()])) > 1
    loaded.learn(100, reset_num_timesteps=False)  # (it goes on learning with them)


# --- what is refused --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_a_buffer_that_does_not_prioritize_is_refused(variant: Variant) -> None:
    with pytest.raises(ValueError, match=r"replay_buffer_class must be a PrioritizedReplayBuffer .* not ReplayBuffer"):
        variant.make(replay_buffer_class=ReplayBuffer)
    assert variant.make(replay_buffer_class=PrioritizedReplayBuffer).replay_buffer_class is PrioritizedReplayBuffer


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(alpha=-1), r"alpha must be >= 0"),
        (dict(beta=2), r"beta must be in \[0, 1\]"),
        (dict(prioritization="x"), r"unknown prioritization 'x'"),
        (dict(eps=0), r"eps must be > 0"),
    ],
)
@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_bad_prioritized_replay_arguments_are_refused_at_construction(
    variant: Variant, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        variant.make(replay_buffer_kwargs=kwargs)


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_unsupported_action_spaces_are_refused_with_a_value_error(variant: Variant) -> None:
    # SAC, TD3 and DDPG on Discrete actions, DQN on Box ones: refused at construction as SB3 refuses them, but with a
    # ValueError naming the space (as every sb3-ext algorithm) where SB3's constructors fail an assert
    other_env, supported, space = (
        ("Pendulum-v1", "Discrete", "Box") if variant.env_id == "CartPole-v1" else ("CartPole-v1", "Box", "Discrete")
    )
    with pytest.raises(ValueError, match=rf"^{variant.cls.__name__} needs a {supported} action space, got {space}"):
        variant.cls("MlpPolicy", other_env)
    with pytest.raises(AssertionError, match=rf"only supports .*{supported}.* but {space}"):
        variant.upstream("MlpPolicy", other_env)


# --- prioritized buffers for algorithms that do not prioritize -----------------------------------------------------


def test_sb3s_sac_warns_once_that_it_samples_a_prioritized_buffer_uniformly() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kwargs = dict(learning_starts=10, **deepcopy(_SMALL))
        SAC("MlpPolicy", "Pendulum-v1", replay_buffer_class=PrioritizedReplayBuffer, **kwargs).learn(300)
        PrioritizedSAC("MlpPolicy", "Pendulum-v1", **deepcopy(kwargs)).learn(300)  # (it updates priorities: no warning)
    uniform = [str(w.message) for w in caught if "without a priority update" in str(w.message)]
    assert len(uniform) == 1
    assert "SAC does not update priorities" in uniform[0] and "use sb3_ext.PrioritizedSAC instead" in uniform[0]


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_a_config_giving_the_upstream_a_prioritized_buffer_names_the_variant(variant: Variant) -> None:
    upstream_key = variant.key.removesuffix("_per")
    assert get_algo(variant.key).cls is variant.cls
    hyperparams = {"replay_buffer_class": "sb3_ext.PrioritizedReplayBuffer"}
    with pytest.raises(ConfigError, match=rf"{upstream_key} never updates priorities.* use '{variant.key}'"):
        load_zoo_config(upstream_key, variant.env_id, hyperparams=hyperparams)
    assert load_zoo_config(variant.key, variant.env_id, hyperparams=hyperparams).algo == variant.key


@pytest.mark.parametrize("prioritization", ["proportional", "rank", "lap"])
@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_every_prioritization_of_the_buffer_trains(variant: Variant, prioritization: str) -> None:
    model = variant.make(seed=0, replay_buffer_kwargs=dict(prioritization=prioritization)).learn(150)
    assert isinstance(model.replay_buffer, PrioritizedReplayBuffer)
    assert model.replay_buffer.prioritization == prioritization
    assert np.isfinite(model.logger.name_to_value["train/td_error"])


# --- LAP -------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_lap_priorities_are_at_least_one(variant: Variant) -> None:
    model = variant.make(seed=0, replay_buffer_kwargs=dict(prioritization="lap")).learn(300)
    buffer = model.replay_buffer
    assert isinstance(buffer, PrioritizedReplayBuffer)
    stored = buffer.priorities()[: buffer.size()]
    assert stored.min() >= 1.0 and stored.max() > 1.0
    assert model.logger.name_to_value["train/td_error"] > 0


# --- learning -------------------------------------------------------------------------------------------------------


def _evaluate(model: BaseAlgorithm, env_id: str) -> float:
    env = gym.make(env_id)
    env.reset(seed=123)
    mean_reward, _ = evaluate_policy(model, env, n_eval_episodes=10, deterministic=True, warn=False)
    assert isinstance(mean_reward, float)
    return mean_reward


@pytest.mark.slow
def test_dqn_per_learns_cartpole() -> None:
    """
    The zoo's CartPole-v1 entry with a smaller network ([64, 64]), a linearly decaying learning rate and 3-step returns
    reaches a deterministic evaluation mean >= 150 (a random policy: ~22) in 20,000 steps (seed 1).

    Checked here: seeds 0, 1 and 2 evaluate at 218, 451 and 266 (~30 s each on 2 busy cores). With the zoo's constant
    learning rate and one-step returns (same network), evaluations at 12,000 to 20,000 steps jumped between 25 and 365
    from seed to seed and budget to budget.
    """
    hyperparams = {"policy_kwargs": "dict(net_arch=[64, 64])", "learning_rate": "lin_0.0023", "n_steps": 3}
    cfg = load_zoo_config("dqn_per", "CartPole-v1", hyperparams=hyperparams)
    model = cfg.make_model(cfg.make_env(seed=1), seed=1).learn(20_000)
    assert isinstance(model, PrioritizedDQN)
    assert _evaluate(model, "CartPole-v1") >= 150


# SAC, TD3 and DDPG on Pendulum-v1: a random policy's mean is about -1200, a good one's about -150. Each reaches a
# deterministic evaluation mean >= -400 in a few thousand steps with small networks and a learning rate of 1e-3.
# Checked here (seeds 0, 1, 2): SAC in 5,000 steps -132, -132, -131; TD3 in 8,000 steps -145, -143, -212; DDPG in
# 8,000 steps -138, -136, -139 (25 to 40 s each on 2 busy cores; at 6,000 steps some seeds of TD3 and DDPG were still
# near -500).
PENDULUM = [
    pytest.param(PrioritizedSAC, 5_000, {}, id="sac_per"),
    pytest.param(PrioritizedTD3, 8_000, dict(gamma=0.98), id="td3_per"),
    pytest.param(PrioritizedDDPG, 8_000, dict(gamma=0.98), id="ddpg_per"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("cls", "steps", "kwargs"), PENDULUM)
def test_continuous_variants_learn_pendulum(
    cls: type[PrioritizedSAC | PrioritizedTD3], steps: int, kwargs: dict[str, Any]
) -> None:
    if cls is not PrioritizedSAC:
        kwargs = dict(kwargs, action_noise=NormalActionNoise(np.zeros(1), 0.1 * np.ones(1)))
    model = cls(
        "MlpPolicy",
        "Pendulum-v1",
        learning_rate=1e-3,
        learning_starts=200,
        batch_size=64,
        policy_kwargs=dict(net_arch=[64, 64]),
        seed=0,
        **kwargs,
    ).learn(steps)
    assert _evaluate(model, "Pendulum-v1") >= -400
