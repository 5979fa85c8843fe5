"""
The prioritized variants of sb3-contrib's QR-DQN, TQC and CrossQ: with unit weights their ``train`` is the upstream's,
the per-sample quantile loss averages to sb3-contrib's, they prioritize by error, learn, save and load, and refuse
what does not prioritize.
"""

from __future__ import annotations

from copy import deepcopy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import sb3_contrib
import torch as th
import yaml
from sb3_contrib import QRDQN, TQC, CrossQ
from sb3_contrib.common.utils import quantile_huber_loss
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.callbacks import EvalCallback, StopTrainingOnRewardThreshold
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.type_aliases import ReplayBufferSamples

from sb3_ext.common.buffers import PrioritizedReplayBuffer
from sb3_ext.common.type_aliases import PrioritizedReplayBufferSamples
from sb3_ext.config import ZOO_CONFIG_DIR, load_zoo_config
from sb3_ext.errors import ConfigError
from sb3_ext.per.crossq import PrioritizedCrossQ
from sb3_ext.per.qrdqn import PrioritizedQRDQN, per_sample_quantile_huber_loss
from sb3_ext.per.tqc import PrioritizedTQC
from sb3_ext.registry import get_algo

#: The sb3-contrib version whose ``train`` methods the variants copy, and the drift tests were checked on
CHECKED_ON_SB3_CONTRIB = "2.9.2"


@dataclass(frozen=True)
class Variant:
    """A prioritized variant, its upstream class, a cheap env and cheap hyperparameters."""

    key: str
    upstream_key: str
    cls: type[BaseAlgorithm]
    upstream: type[BaseAlgorithm]
    env_id: str
    kwargs: dict[str, Any] = field(default_factory=dict, hash=False)
    error_name: str = "quantile_loss"

    def __str__(self) -> str:
        return self.key

    def make(self, cls: type[BaseAlgorithm] | None = None, **overrides: Any) -> BaseAlgorithm:
        return (cls or self.cls)(
            "MlpPolicy", self.env_id, **deepcopy({**self.kwargs, **overrides})
        )  # (SB3 edits policy_kwargs)


VARIANTS = [
    Variant(
        "qrdqn_per", "qrdqn", PrioritizedQRDQN, QRDQN, "CartPole-v1", dict(policy_kwargs=dict(net_arch=[16], n_quantiles=5))
    ),
    Variant(
        "tqc_per",
        "tqc",
        PrioritizedTQC,
        TQC,
        "Pendulum-v1",
        dict(policy_kwargs=dict(net_arch=[16], n_quantiles=5, n_critics=2)),
    ),
    Variant(
        "crossq_per",
        "crossq",
        PrioritizedCrossQ,
        CrossQ,
        "Pendulum-v1",
        dict(policy_delay=2, policy_kwargs=dict(net_arch=[16])),
        error_name="td_error",
    ),
]


def collected(variant: Variant, steps: int, cls: type[BaseAlgorithm] | None = None, **overrides: Any) -> BaseAlgorithm:
    """:return: a model that has stored ``steps`` transitions without training (learning starts later)"""
    model = variant.make(cls, **{"seed": 0, "buffer_size": 1_000, "learning_starts": 10_000, **overrides})
    return model.learn(steps)


def parameters(model: BaseAlgorithm) -> dict[str, th.Tensor]:
    """:return: every learned tensor: the policy's state dict (networks, targets, batch-norm statistics), the entropy
    coefficient's logarithm where it is learned"""
    params = {name: value.detach().clone() for name, value in model.policy.state_dict().items()}
    log_ent_coef = getattr(model, "log_ent_coef", None)
    if log_ent_coef is not None:
        params["log_ent_coef"] = log_ent_coef.detach().clone()
    return params


def stored_priorities(buffer: PrioritizedReplayBuffer) -> np.ndarray:
    """:return: ``p ** alpha`` of the stored transitions (one env)"""
    return buffer.priorities()[: buffer.size(), 0]


# --- drift from the upstream train -----------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_train_with_unit_weights_is_the_upstream_train(
    variant: Variant, optimizer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (Adam, the default, hides a loss scaled by a constant; SGD shows it)
    policy_kwargs = dict(variant.kwargs["policy_kwargs"])
    if optimizer == "sgd":
        policy_kwargs.update(optimizer_class=th.optim.SGD, optimizer_kwargs={})
    same = dict(seed=0, buffer_size=1_000, learning_starts=10_000, policy_kwargs=policy_kwargs)
    upstream = variant.make(variant.upstream, **same)
    ours = variant.make(**same, replay_buffer_kwargs=dict(alpha=0.0))
    initial = parameters(upstream)
    for name, value in parameters(ours).items():
        assert th.equal(value, initial[name]), f"{name} differs at construction"
    upstream.learn(200)  # (collection only, for the loggers and our buffer's transitions)
    ours.learn(200)
    buffer = ours.prioritized_buffer
    assert buffer is not None

    # The same 5 batches for both: SB3's samples for the upstream, the same tensors with unit weights and the indices of
    # stored transitions for ours
    drawn = [buffer.sample(32) for _ in range(5)]
    for_upstream = [ReplayBufferSamples(*batch[:6]) for batch in drawn]
    for_ours = [PrioritizedReplayBufferSamples(*batch[:6], weights=th.ones(32, 1), indices=batch.indices) for batch in drawn]
    for model, batches in ((upstream, for_upstream), (ours, for_ours)):
        fed = iter(batches)
        monkeypatch.setattr(model.replay_buffer, "sample", lambda batch_size, env=None, fed=fed: next(fed))
        th.manual_seed(7)  # (the same draws of actions and noise in both)
        model.train(gradient_steps=5, batch_size=32)

    trained = parameters(upstream)
    assert any(not th.equal(trained[name], initial[name]) for name in initial), "training changed nothing"
    for name, value in parameters(ours).items():
        th.testing.assert_close(
            value,
            trained[name],
            rtol=1e-5,
            atol=1e-6,
            msg=lambda text, name=name: (
                f"{variant.cls.__name__}'s {name} drifted from {variant.upstream.__name__}'s after the same batches with "
                f"unit weights: sb3-contrib's train changed (the copy in sb3_ext/per/ was checked on sb3-contrib "
                f"{CHECKED_ON_SB3_CONTRIB}, {sb3_contrib.__version__} is installed); copy it again. {text}"
            ),
        )


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_weights_scale_the_critic_loss_and_not_the_actor_loss(variant: Variant, monkeypatch: pytest.MonkeyPatch) -> None:
    model = collected(variant, 200)
    buffer = model.prioritized_buffer
    assert buffer is not None
    batch = buffer.sample(32)
    unweighted = batch._replace(weights=th.zeros(32, 1))  # every sample weighs 0 in the critic loss
    monkeypatch.setattr(buffer, "sample", lambda batch_size, env=None: unweighted)
    critic = model.critic if hasattr(model, "critic") else model.quantile_net  # type: ignore[attr-defined]
    actor = getattr(model, "actor", None)
    critic_before = [p.detach().clone() for p in critic.parameters()]
    actor_before = [p.detach().clone() for p in actor.parameters()] if actor is not None else []
    model.train(gradient_steps=2, batch_size=32)  # (CrossQ's policy_delay=2: one actor update)
    assert all(th.equal(p, q) for p, q in zip(critic.parameters(), critic_before, strict=True)), "the critic learned"
    if actor is not None:
        assert any(not th.equal(p, q) for p, q in zip(actor.parameters(), actor_before, strict=True)), "the actor did not"
    # the priorities were updated all the same, from the samples' errors
    assert not np.all(buffer.priorities().reshape(-1)[batch.indices] == 1.0)


# --- the per-sample quantile Huber loss ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current_shape", "target_shape"),
    [((16, 7), (16, 7)), ((16, 3, 5), (16, 1, 11)), ((16, 3, 5), (16, 3, 5))],
    ids=["qrdqn", "tqc", "per-critic-targets"],
)
@pytest.mark.parametrize("sum_over_quantiles", [True, False])
@pytest.mark.parametrize("dtype", [th.float32, th.float64])
def test_per_sample_quantile_loss_averages_to_sb3_contribs(
    current_shape: tuple[int, ...], target_shape: tuple[int, ...], sum_over_quantiles: bool, dtype: th.dtype
) -> None:
    generator = th.Generator().manual_seed(0)
    current = (th.randn(current_shape, generator=generator) * 2).to(dtype)
    target = (th.randn(target_shape, generator=generator) * 2).to(dtype)
    per_sample = per_sample_quantile_huber_loss(current, target, sum_over_quantiles=sum_over_quantiles)
    assert per_sample.shape == (16,)
    expected = quantile_huber_loss(current, target, sum_over_quantiles=sum_over_quantiles)
    tolerance = 1e-12 if dtype is th.float64 else 1e-6  # (the same sum in another order: rounding only)
    th.testing.assert_close(per_sample.mean(), expected, rtol=tolerance, atol=0)
    # each sample's value is sb3-contrib's loss of that sample alone
    alone = th.stack(
        [quantile_huber_loss(current[i : i + 1], target[i : i + 1], sum_over_quantiles=sum_over_quantiles) for i in range(16)]
    )
    th.testing.assert_close(per_sample, alone, rtol=tolerance, atol=0)
    assert per_sample.std() > 0


def test_per_sample_quantile_loss_gradient_is_sb3_contribs() -> None:
    current = th.randn(8, 3, 5, generator=th.Generator().manual_seed(1), requires_grad=True)
    target = th.randn(8, 1, 9, generator=th.Generator().manual_seed(2))
    (ours,) = th.autograd.grad(per_sample_quantile_huber_loss(current, target, sum_over_quantiles=False).mean(), current)
    (theirs,) = th.autograd.grad(quantile_huber_loss(current, target, sum_over_quantiles=False), current)
    th.testing.assert_close(ours, theirs)


@pytest.mark.parametrize(
    ("current_shape", "target_shape", "match"),
    [((4, 5), (4, 1, 5), "dimensions"), ((4, 5), (3, 5), "batch size"), ((4, 2, 3, 5), (4, 1, 1, 5), "2 dimensions")],
)
def test_per_sample_quantile_loss_refuses_what_sb3_contrib_refuses(
    current_shape: tuple[int, ...], target_shape: tuple[int, ...], match: str
) -> None:
    current, target = th.zeros(current_shape), th.zeros(target_shape)
    with pytest.raises(ValueError):
        quantile_huber_loss(current, target)
    with pytest.raises(ValueError, match=match):
        per_sample_quantile_huber_loss(current, target)


# --- prioritization --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_priorities_after_training_are_not_uniform_and_logged(variant: Variant) -> None:
    model = variant.make(seed=0, buffer_size=1_000, learning_starts=50, batch_size=32).learn(400)
    buffer = model.prioritized_buffer
    assert isinstance(buffer, PrioritizedReplayBuffer) and buffer.size() == 400
    priorities = stored_priorities(buffer)
    assert (priorities > 0).all()
    assert priorities.std() / priorities.mean() > 0.05, "the priorities stayed uniform"

    model.train(gradient_steps=2, batch_size=32)
    logged = model.logger.name_to_value
    assert {f"train/{variant.error_name}", "train/beta", "train/mean_priority", "train/max_priority"} <= set(logged)
    assert logged[f"train/{variant.error_name}"] > 0
    assert logged["train/mean_priority"] == pytest.approx(buffer.mean_priority())
    assert 0.4 <= logged["train/beta"] <= 1.0  # (annealed from PrioritizedReplayBuffer's 0.4 towards 1)


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_high_error_transitions_are_sampled_more_often(variant: Variant) -> None:
    model = collected(variant, 300)
    buffer = model.prioritized_buffer
    assert buffer is not None
    assert np.all(stored_priorities(buffer) == 1.0)  # (all stored at the same priority)
    high = 17
    buffer.rewards[high, 0] += 100.0  # its error is now far above every other transition's
    # Stratified sampling over 300 equal priorities draws each stored transition once: every priority is updated
    model.train(gradient_steps=1, batch_size=300)
    priorities = stored_priorities(buffer)
    assert priorities.argmax() == high
    assert priorities.std() > 0

    counts = np.zeros(300, dtype=int)
    for _ in range(100):
        np.add.at(counts, buffer.sample(64).indices, 1)
    assert counts[high] > 5 * counts.mean(), (counts[high], counts.mean())
    # and sampling follows the priorities: the most frequently drawn half has the higher priorities
    order = np.argsort(counts)
    assert priorities[order[150:]].mean() > priorities[order[:150]].mean()


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_lap_gives_priorities_of_at_least_one_and_no_weights(variant: Variant) -> None:
    model = variant.make(
        seed=0, buffer_size=1_000, learning_starts=50, batch_size=32, replay_buffer_kwargs=dict(prioritization="lap")
    ).learn(300)
    buffer = model.prioritized_buffer
    assert buffer is not None and buffer.prioritization == "lap"
    assert model._prioritized_sample(8)[1] is None  # (the loss is not weighted)
    assert (stored_priorities(buffer) >= 1.0).all()


# --- save / load -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_save_load_round_trips_weights_and_priorities(variant: Variant, tmp_path: Path) -> None:
    model = variant.make(seed=0, buffer_size=1_000, learning_starts=50, batch_size=32).learn(300)
    model.save(tmp_path / "model.zip")
    model.save_replay_buffer(tmp_path / "buffer.pkl")
    obs = np.stack([model.observation_space.sample() for _ in range(20)])
    expected, _ = model.predict(obs, deterministic=True)

    loaded = variant.cls.load(tmp_path / "model.zip", env=gym.make(variant.env_id))
    assert type(loaded) is variant.cls
    for name, value in parameters(model).items():
        assert th.equal(parameters(loaded)[name], value), name
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], expected)
    # the upstream's saved-file format: the upstream class loads it
    np.testing.assert_array_equal(variant.upstream.load(tmp_path / "model.zip").predict(obs, deterministic=True)[0], expected)

    loaded.load_replay_buffer(tmp_path / "buffer.pkl")
    original, restored = model.prioritized_buffer, loaded.prioritized_buffer
    assert original is not None and restored is not None
    assert restored.size() == original.size() == 300
    np.testing.assert_array_equal(restored.priorities(), original.priorities())
    assert restored.max_priority == original.max_priority and restored.alpha == original.alpha
    assert stored_priorities(restored).std() > 0
    loaded.learn(100, reset_num_timesteps=False)  # goes on from the restored priorities


# --- refusals --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_a_buffer_that_does_not_prioritize_is_refused(variant: Variant) -> None:
    with pytest.raises(ValueError, match=r"replay_buffer_class must be a PrioritizedReplayBuffer.*not ReplayBuffer"):
        variant.make(replay_buffer_class=ReplayBuffer)


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
@pytest.mark.parametrize(
    ("per_kwargs", "name"), [(dict(alpha=-1), "alpha"), (dict(beta=2), "beta"), (dict(prioritization="x"), "prioritization")]
)
def test_bad_per_arguments_are_refused_at_construction(variant: Variant, per_kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        variant.make(replay_buffer_kwargs=per_kwargs)


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_a_prioritized_buffer_for_the_upstream_names_the_variant(variant: Variant) -> None:
    with pytest.raises(ConfigError, match=f"use '{variant.key}', its prioritized variant"):
        load_zoo_config(
            variant.upstream_key, variant.env_id, hyperparams={"replay_buffer_class": "sb3_ext.PrioritizedReplayBuffer"}
        )


# --- registry and zoo configs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_spec_mirrors_the_upstream_spec(variant: Variant) -> None:
    spec, upstream = get_algo(variant.key), get_algo(variant.upstream_key)
    assert spec.cls is variant.cls and not spec.on_policy and spec.action_spaces == upstream.action_spaces
    assert spec.search_space is not None and upstream.search_space is not None
    assert set(spec.search_space) == {*upstream.search_space, "per_alpha", "per_beta", "per_prioritization"}


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_zoo_config_is_the_upstreams(variant: Variant) -> None:
    ours = yaml.safe_load((ZOO_CONFIG_DIR / f"{variant.key}.yml").read_text())
    theirs = yaml.safe_load((ZOO_CONFIG_DIR / f"{variant.upstream_key}.yml").read_text())
    assert ours == theirs
    for entry in ours:
        # (default: an env id without an entry of its own)
        other = "Taxi-v4" if variant.env_id == "CartPole-v1" else "BipedalWalker-v3"
        env_id = {"default": other, "atari": "BreakoutNoFrameskip-v4"}.get(entry, entry)
        config = load_zoo_config(variant.key, env_id)
        assert config.entry == entry
        assert config.hyperparams == load_zoo_config(variant.upstream_key, env_id).hyperparams


# --- learning --------------------------------------------------------------------------------------------------------

LEARNING = [
    # CartPole-v1 (a random policy scores ~22): 150 is a balancing policy; seeds 0 to 3 reach 120 to 370 after 15,000
    # steps without stopping, seed 0 stops earlier (~20 s on 2 loaded cores)
    pytest.param(
        VARIANTS[0],
        dict(
            learning_rate=0.0023,
            batch_size=64,
            buffer_size=100_000,
            learning_starts=1000,
            target_update_interval=10,
            train_freq=256,
            gradient_steps=128,
            exploration_fraction=0.16,
            exploration_final_eps=0.04,
            policy_kwargs=dict(net_arch=[64, 64], n_quantiles=10),
        ),
        20_000,
        300.0,
        150.0,
        id="qrdqn_per",
    ),
    # Pendulum-v1: a random policy scores ~-1200, a swing-up ~-150; seeds 0, 1, 2 stop at 4,000, 3,000 and 2,000 steps
    # and then evaluate at -136, -190 and -213 (~30 s on 2 loaded cores)
    pytest.param(
        VARIANTS[1],
        dict(
            learning_rate=1e-3,
            batch_size=64,
            learning_starts=500,
            gamma=0.98,
            tau=0.02,
            policy_kwargs=dict(net_arch=[64, 64], n_quantiles=10),
        ),
        5_000,
        -250.0,
        -400.0,
        id="tqc_per",
    ),
    # Pendulum-v1 as above; seeds 0 and 1 evaluate at -148 and -130 after 3,000 steps (~20 s here)
    pytest.param(
        VARIANTS[2],
        dict(batch_size=64, learning_starts=500, policy_delay=2, policy_kwargs=dict(net_arch=[64, 64])),
        4_000,
        -250.0,
        -400.0,
        id="crossq_per",
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize(("variant", "kwargs", "budget", "stop_at", "threshold"), LEARNING)
def test_learns(variant: Variant, kwargs: dict[str, Any], budget: int, stop_at: float, threshold: float) -> None:
    """Trains until an evaluation every 1,000 steps reaches ``stop_at`` (or the budget is spent), then a deterministic
    evaluation on fresh episodes must reach ``threshold``, far above a random policy's score."""
    model = variant.cls("MlpPolicy", variant.env_id, seed=0, **kwargs)
    stop = StopTrainingOnRewardThreshold(reward_threshold=stop_at)
    eval_env = Monitor(gym.make(variant.env_id))
    model.learn(budget, callback=EvalCallback(eval_env, callback_on_new_best=stop, eval_freq=1_000, n_eval_episodes=5))
    test_env = Monitor(gym.make(variant.env_id))
    test_env.reset(seed=123)
    mean_reward, _ = evaluate_policy(model, test_env, n_eval_episodes=10, deterministic=True)
    assert mean_reward >= threshold, (model.num_timesteps, mean_reward)
