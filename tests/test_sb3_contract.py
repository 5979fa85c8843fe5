"""
SB3's contract, checked on every registered algorithm that has a ``Conformance`` in its ``AlgoSpec`` (every sb3-ext
algorithm, plug-ins that give one, and SB3's DQN and A2C as controls): what SB3's own tests check on its algorithms
(``test_save_load.py``, ``test_predict.py``, ``test_callbacks.py``, ``test_deterministic.py``, ``test_spaces.py``,
``test_tensorboard.py``, ``test_vec_normalize.py``, ``test_train_eval_mode.py``) must hold on ours, with every policy
type each takes (flat, image and ``Dict`` observations) and every callback hook.

Where an algorithm differs from SB3 by design, its ``Conformance`` and the test say so:
- REINFORCE finishes whole episodes, so ``num_timesteps`` overshoots ``total_timesteps`` by up to one batch;
- D3QN, Rainbow and QLearning refuse action spaces other than ``Discrete`` with a ``ValueError`` (SB3's DQN asserts);
- Rainbow's 3-step returns by default refuse a buffer without n-step returns (``HerReplayBuffer``) and
  ``optimize_memory_usage`` with a ``ValueError`` (with ``n_steps=1`` both work, as for DQN);
- QLearning keeps its table on the CPU: ``device="auto"`` means the CPU, and any other device (``"cuda"``) is
  accepted with one ``UserWarning`` saying that the table stays on the CPU.
"""

from __future__ import annotations

import inspect
import os
import re
import warnings
from collections import OrderedDict
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import (
    BaseCallback,
    CheckpointCallback,
    EvalCallback,
    EveryNTimesteps,
    StopTrainingOnRewardThreshold,
)
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.preprocessing import get_flattened_obs_dim
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.utils import get_device
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecNormalize
from torch import nn

from sb3_ext import AlgoSpec, Conformance, algo_keys, get_algo

# --- The algorithms and how to train each briefly ---------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One registered algorithm with its :class:`~sb3_ext.Conformance`: a cheap env and cheap hyperparameters."""

    spec: AlgoSpec
    conformance: Conformance

    @classmethod
    def of(cls, spec: AlgoSpec) -> Case:
        assert spec.conformance is not None
        return cls(spec, spec.conformance)

    def __str__(self) -> str:
        return self.key

    @property
    def key(self) -> str:
        return self.spec.key

    @property
    def cls(self) -> type[BaseAlgorithm]:
        return self.spec.cls

    @property
    def env_id(self) -> str:
        return self.conformance.env_id

    @property
    def kwargs(self) -> dict[str, Any]:
        return deepcopy(dict(self.conformance.kwargs))

    @property
    def budget(self) -> int:
        return self.conformance.budget

    @property
    def exact_steps(self) -> bool:  # learn(n) with one env ends at num_timesteps == n
        return self.conformance.exact_steps

    @property
    def vec_normalize(self) -> dict[str, Any]:  # VecNormalize kwargs the algorithm can take
        return dict(self.conformance.vec_normalize)

    @property
    def on_cpu_only(self) -> bool:  # a table (numpy) instead of a network: on the CPU whatever the device asked for
        return not self.conformance.network_policy

    def vec_env(self, n_envs: int = 1, seed: int = 0) -> VecEnv:
        return make_vec_env(self.env_id, n_envs=n_envs, seed=seed)

    def policy(self, observation_space: spaces.Space) -> str:
        if isinstance(observation_space, spaces.Dict) and self.conformance.dict_policy is not None:
            return self.conformance.dict_policy
        return self.conformance.policy

    def make(self, env: Any = None, **overrides: Any) -> BaseAlgorithm:
        env = self.vec_env() if env is None else env
        kwargs = {**self.kwargs, **overrides}
        return self.cls(self.policy(env.observation_space), env, **kwargs)


# Every registered algorithm with a Conformance (SB3's DQN and A2C among them, as controls), plug-ins' included
CASES = [Case.of(get_algo(key)) for key in algo_keys() if get_algo(key).conformance is not None]
OURS = [case for case in CASES if case.cls.__module__.startswith("sb3_ext")]


def observations(space: spaces.Space, n: int, seed: int = 0) -> Any:
    """A batch of ``n`` observations of ``space`` (a dict of batches for a ``Dict`` space)."""
    space.seed(seed)
    samples = [space.sample() for _ in range(n)]
    if isinstance(space, spaces.Dict):
        return {key: np.stack([sample[key] for sample in samples]) for key in space.spaces}
    return np.stack(samples)


def assert_same_parameters(first: BaseAlgorithm, second: BaseAlgorithm) -> None:
    for (name, a), (_, b) in zip(first.policy.state_dict().items(), second.policy.state_dict().items(), strict=True):
        assert th.equal(a.cpu(), b.cpu()), name


# --- save / load (test_save_load.py) ----------------------------------------------------------------------------


def trained_and_saved(case: Case, path: Path) -> tuple[BaseAlgorithm, Any, np.ndarray]:
    """:return: a briefly trained model, saved at ``path``; a batch of observations; its deterministic actions there"""
    model = case.make(seed=0).learn(case.budget)
    obs = observations(model.observation_space, 20)
    expected, _ = model.predict(obs, deterministic=True)
    model.save(path)
    return model, obs, expected


@pytest.mark.parametrize("case", CASES, ids=str)
def test_save_load_without_and_with_env(case: Case, tmp_path: Path) -> None:
    model, obs, expected = trained_and_saved(case, tmp_path / "model.zip")

    loaded = case.cls.load(tmp_path / "model.zip")  # no env, as SB3's docs load
    assert type(loaded) is case.cls and loaded.get_env() is None
    assert loaded.num_timesteps == model.num_timesteps
    assert_same_parameters(model, loaded)
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], expected)
    mean, _ = evaluate_policy(loaded, case.vec_env(seed=1), n_eval_episodes=2)
    assert np.isfinite(mean)
    loaded.set_env(case.vec_env(seed=1))
    loaded.learn(case.budget, reset_num_timesteps=False)
    assert loaded.num_timesteps >= model.num_timesteps + case.budget

    with_env = case.cls.load(tmp_path / "model.zip", env=case.vec_env(n_envs=2, seed=2))  # other n_envs: load's job
    np.testing.assert_array_equal(with_env.predict(obs, deterministic=True)[0], expected)
    with_env.learn(case.budget)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_exclude_include_and_custom_objects(case: Case, tmp_path: Path) -> None:
    model = case.make(verbose=2)
    model.save(tmp_path / "model", exclude=["verbose"])
    assert case.cls.load(tmp_path / "model.zip").verbose != 2

    model.save(tmp_path / "model", exclude=["verbose"], include=["verbose"])
    loaded = case.cls.load(tmp_path / "model.zip", custom_objects=dict(learning_rate=0.01234, dummy=1.0))
    assert loaded.verbose == 2
    assert loaded.learning_rate == 0.01234
    assert not hasattr(loaded, "dummy")


@pytest.mark.parametrize("case", CASES, ids=str)
def test_get_and_set_parameters(case: Case) -> None:
    model = case.make(seed=0)
    original = deepcopy(model.get_parameters())

    invalid = {**deepcopy(original), "I_should_not_be_a_valid_object": "and_I_am_an_invalid_tensor"}
    for exact_match in (True, False):
        with pytest.raises(ValueError):
            model.set_parameters(invalid, exact_match=exact_match)
    if len(original) > 1:  # (a table has no optimizer: its only object is the policy)
        with pytest.raises(ValueError):
            model.set_parameters(dict(list(original.items())[:-1]), exact_match=True)
    missing_tensor = {name: OrderedDict(list(params.items())[:-1]) for name, params in original.items()}
    with pytest.raises(RuntimeError):  # torch's strict load_state_dict
        model.set_parameters(missing_tensor, exact_match=True)

    policy = original["policy"]
    # (floating-point tensors: integer ones, such as BatchRenorm's step counters, would round random values back)
    randomised_policy = OrderedDict(
        (name, th.rand_like(value.double()) if value.is_floating_point() else value) for name, value in policy.items()
    )
    model.set_parameters({**original, "policy": randomised_policy}, exact_match=True)
    changed = model.get_parameters()["policy"]
    floating = [name for name, value in policy.items() if value.numel() and value.is_floating_point()]
    assert floating and all(not th.allclose(changed[name].double(), policy[name].double()) for name in floating)

    other = case.make(seed=1)
    other.set_parameters(model.get_parameters(), exact_match=True)
    obs = observations(model.observation_space, 20)
    np.testing.assert_array_equal(other.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])


@pytest.mark.parametrize("case", CASES, ids=str)
def test_devices(case: Case, tmp_path: Path) -> None:
    _, obs, expected = trained_and_saved(case, tmp_path / "model.zip")
    for device in ["auto", "cpu", "cuda"]:  # (as SB3's test_save_load: without CUDA, "cuda" falls back to the CPU)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            loaded = case.cls.load(tmp_path / "model.zip", env=case.vec_env(), device=device)
        # QLearning's table is a numpy array: it stays on the CPU (by design), and says so for any other device
        on_cpu = [w for w in caught if issubclass(w.category, UserWarning) and "the table stays on the CPU" in str(w.message)]
        assert len(on_cpu) == (1 if case.on_cpu_only and device == "cuda" else 0)
        expected_device = "cpu" if case.on_cpu_only else get_device(device).type
        assert loaded.device.type == expected_device and loaded.policy.device.type == expected_device
        np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], expected)
        loaded.learn(case.budget)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_set_env(case: Case, tmp_path: Path) -> None:
    budget = case.budget

    def steps(n: int) -> int:
        # REINFORCE completes the batch it is in: by design it ends past the budget, never short of it
        return n if case.exact_steps else model.num_timesteps

    model = case.make().learn(budget)
    model.set_env(case.vec_env(seed=1), force_reset=True)
    assert model._last_obs is None
    model.learn(budget, reset_num_timesteps=True)
    assert model.num_timesteps == steps(budget) >= budget
    model.set_env(gym.make(case.env_id))  # a plain gym env is wrapped, as SB3 does
    model.learn(budget)
    with pytest.raises(AssertionError, match="number of environments"):
        model.set_env(case.vec_env(n_envs=2))

    model.set_env(model.get_env(), force_reset=False)  # type: ignore[arg-type]
    assert model._last_obs is not None
    before = model.num_timesteps
    model.learn(budget, reset_num_timesteps=False)
    assert model.num_timesteps == (before + budget if case.exact_steps else model.num_timesteps) >= before + budget

    current = model.get_env()
    model.save(tmp_path / "model.zip")
    loaded = case.cls.load(tmp_path / "model.zip", env=current, force_reset=False)
    assert loaded._last_obs is not None
    loaded.learn(budget, reset_num_timesteps=False)
    assert loaded.num_timesteps >= model.num_timesteps + budget
    other_env = make_vec_env("Acrobot-v1" if spaces.Box in case.spec.observation_spaces else "Taxi-v4")
    with pytest.raises(ValueError, match=r"(Observation|Action) spaces do not match"):
        case.cls.load(tmp_path / "model.zip", env=other_env)


# --- predict (test_predict.py) ----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=str)
def test_predict_returns_ndarrays(case: Case) -> None:
    model = case.make(seed=0)
    space, action_space = model.observation_space, model.action_space
    space.seed(0)
    for deterministic in (True, False):
        action, state = model.predict(space.sample(), deterministic=deterministic)
        assert isinstance(action, np.ndarray) and action.shape == action_space.shape and state is None
        assert action_space.contains(action.item() if action.shape == () else action)
        actions, _ = model.predict(observations(space, 5), deterministic=deterministic)
        assert isinstance(actions, np.ndarray) and actions.shape == (5, *action_space.shape)
        vec_env = case.vec_env(n_envs=3)
        actions, _ = model.predict(vec_env.reset(), deterministic=deterministic)  # type: ignore[arg-type]
        assert isinstance(actions, np.ndarray) and actions.shape == (3, *action_space.shape)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_mixing_gym_and_vec_env_api_gets_sb3s_error(case: Case) -> None:
    model = case.make()
    with pytest.raises(ValueError, match="You are probably mixing Gym API with SB3 VecEnv API"):
        model.predict(gym.make(case.env_id).reset(seed=0))  # (obs, info): the Gym API


# --- callbacks (test_callbacks.py) ------------------------------------------------------------------------------


class CountCalls(BaseCallback):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def _on_step(self) -> bool:
        self.calls += 1
        return True


@pytest.mark.parametrize("case", CASES, ids=str)
def test_callbacks(case: Case, tmp_path: Path) -> None:
    model = case.make(seed=0)
    every = CountCalls()
    evaluation = EvalCallback(
        case.vec_env(seed=5),
        eval_freq=100,
        n_eval_episodes=2,
        log_path=str(tmp_path / "eval"),
        best_model_save_path=str(tmp_path / "best"),
    )
    callbacks = [CheckpointCallback(save_freq=50, save_path=str(tmp_path / "ckpt")), EveryNTimesteps(50, every), evaluation]
    model.learn(400, callback=callbacks)
    assert len(np.load(tmp_path / "eval" / "evaluations.npz")["timesteps"]) == model.num_timesteps // 100
    assert len(list((tmp_path / "ckpt").glob("rl_model_*_steps.zip"))) == model.num_timesteps // 50
    assert every.calls == model.num_timesteps // 50
    best = case.cls.load(tmp_path / "best" / "best_model.zip")
    assert type(best) is case.cls

    # A reward threshold that the first evaluation meets stops training there
    stop = StopTrainingOnRewardThreshold(reward_threshold=-np.inf)
    model = case.make(seed=0)
    model.learn(10_000, callback=EvalCallback(case.vec_env(seed=5), callback_on_new_best=stop, eval_freq=100))
    assert model.num_timesteps == 100


class RecordHooks(BaseCallback):
    """Records every hook SB3's algorithms call, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.hooks: list[str] = []

    def _on_training_start(self) -> None:
        self.hooks.append("training_start")

    def _on_rollout_start(self) -> None:
        self.hooks.append("rollout_start")

    def _on_step(self) -> bool:
        self.hooks.append("step")
        return True

    def _on_rollout_end(self) -> None:
        self.hooks.append("rollout_end")

    def _on_training_end(self) -> None:
        self.hooks.append("training_end")


@pytest.mark.parametrize("case", CASES, ids=str)
def test_every_callback_hook_in_sb3s_order(case: Case) -> None:
    hooks = RecordHooks()
    model = case.make(seed=0).learn(case.budget, callback=hooks)
    calls = hooks.hooks
    assert calls[0] == "training_start" and calls[-1] == "training_end" and calls.count("training_start") == 1
    assert calls.count("step") == model.num_timesteps  # (one env: one call per step)
    # Every step inside a rollout, rollouts one after the other, as in SB3's collect_rollouts: [s s s][s s s]...
    inside = "".join({"rollout_start": "[", "step": "s", "rollout_end": "]"}[c] for c in calls[1:-1])
    assert re.fullmatch(r"(\[s+\])+", inside) and inside.count("[") >= 2, inside[:80]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_checkpoint_callback_writes_every_checkpoint(case: Case, tmp_path: Path) -> None:
    # SB3's CheckpointCallback saves in on_step every save_freq calls: with one env, one file per save_freq steps, named
    # by the model's step count then, up to where training ended (REINFORCE ends past its budget: its files go on)
    save_freq = case.budget // 4
    model = case.make(seed=0)
    model.learn(case.budget, callback=CheckpointCallback(save_freq=save_freq, save_path=str(tmp_path)))
    files = {
        int(p.name.removeprefix("rl_model_").removesuffix("_steps.zip")): p for p in tmp_path.glob("rl_model_*_steps.zip")
    }
    assert sorted(files) == list(range(save_freq, model.num_timesteps + 1, save_freq))
    assert len(files) >= 4
    for steps, path in files.items():
        assert case.cls.load(path).num_timesteps == steps


# --- VecNormalize (test_vec_normalize.py) -----------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=str)
def test_vec_normalize_save_load(case: Case, tmp_path: Path) -> None:
    env = VecNormalize(case.vec_env(n_envs=2, seed=0), **case.vec_normalize)
    model = case.make(env, seed=0).learn(case.budget)
    assert model.get_vec_normalize_env() is env
    model.save(tmp_path / "model.zip")
    env.save(str(tmp_path / "vecnormalize.pkl"))

    restored = VecNormalize.load(str(tmp_path / "vecnormalize.pkl"), case.vec_env(n_envs=2, seed=1))
    loaded = case.cls.load(tmp_path / "model.zip", env=restored)
    assert loaded.get_vec_normalize_env() is restored
    raw = observations(model.observation_space, 20)
    np.testing.assert_array_equal(restored.normalize_obs(raw), env.normalize_obs(raw))
    np.testing.assert_array_equal(
        loaded.predict(restored.normalize_obs(raw), deterministic=True)[0],
        model.predict(env.normalize_obs(raw), deterministic=True)[0],
    )
    loaded.learn(case.budget, reset_num_timesteps=False)


# --- seeds (test_deterministic.py) ------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=str)
def test_same_seed_same_result(case: Case) -> None:
    def train(seed: int) -> BaseAlgorithm:
        return case.make(case.vec_env(n_envs=2, seed=seed), seed=seed).learn(case.budget)

    first, again, other = train(3), train(3), train(4)
    assert_same_parameters(first, again)
    assert first.num_timesteps == again.num_timesteps
    obs = observations(first.observation_space, 20)
    np.testing.assert_array_equal(first.predict(obs, deterministic=True)[0], again.predict(obs, deterministic=True)[0])
    assert any(
        not th.equal(a, b) for a, b in zip(first.policy.state_dict().values(), other.policy.state_dict().values(), strict=True)
    )


# --- TensorBoard (test_tensorboard.py) --------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=str)
def test_tensorboard_folder(case: Case, tmp_path: Path) -> None:
    model = case.make(tensorboard_log=str(tmp_path))
    model.learn(case.budget)
    model.learn(case.budget, reset_num_timesteps=False)  # goes on in the same run
    model.learn(case.budget)  # a new run
    name = inspect.signature(case.cls.learn).parameters["tb_log_name"].default  # (a subclass may keep its parent's)
    assert sorted(os.listdir(tmp_path)) == [f"{name}_1", f"{name}_2"]
    assert list((tmp_path / f"{name}_1").glob("events.out.tfevents.*"))


# --- step counts: REINFORCE differs by design -------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=str)
def test_step_counts(case: Case) -> None:
    model = case.make()
    model.learn(case.budget)
    if case.exact_steps:
        assert model.num_timesteps == case.budget
    else:
        # REINFORCE's batches are whole episodes: it finishes the batch it is in (CartPole: at most 500 steps)
        assert case.budget <= model.num_timesteps < case.budget + 2 * 500


# --- spaces (test_spaces.py): every space each algorithm declares in the registry -------------------------------


def _space(kind: type[spaces.Space], for_actions: bool) -> spaces.Space:
    if kind is spaces.Box:  # (multi-dimensional actions, as in SB3's test_spaces.py)
        return spaces.Box(-1.0, 1.0, (2, 2) if for_actions else (3,), np.float32)
    if kind is spaces.Discrete:
        return spaces.Discrete(3 if for_actions else 4)
    if kind is spaces.MultiDiscrete:
        return spaces.MultiDiscrete([2, 3])
    if kind is spaces.MultiBinary:
        return spaces.MultiBinary(2 if for_actions else 3)
    if kind is spaces.Dict:
        return spaces.Dict({"position": spaces.Box(-1.0, 1.0, (2,), np.float32), "room": spaces.Discrete(3)})
    if kind is spaces.Tuple:
        return spaces.Tuple((spaces.Discrete(2), spaces.Discrete(3)))
    raise AssertionError(kind)


class SpacesEnv(gym.Env):
    """Random observations of any space; reward 1 for the first action component being 0; 10-step episodes."""

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space) -> None:
        self.observation_space, self.action_space = observation_space, action_space

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        self.observation_space.seed(int(self.np_random.integers(2**31)))
        self.t = 0
        return self.observation_space.sample(), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        assert self.action_space.contains(action), action
        self.t += 1
        reward = float(np.asarray(action).reshape(-1)[0] == 0)
        return self.observation_space.sample(), reward, False, self.t >= 10, {}


SPACE_CASES = [
    pytest.param(case, obs_kind, action_kind, id=f"{case.key}-{obs_kind.__name__}-{action_kind.__name__}")
    for case in CASES
    for obs_kind in case.spec.observation_spaces
    for action_kind in case.spec.action_spaces
]


@pytest.mark.parametrize(("case", "obs_kind", "action_kind"), SPACE_CASES)
def test_every_declared_space(case: Case, obs_kind: type[spaces.Space], action_kind: type[spaces.Space]) -> None:
    env = SpacesEnv(_space(obs_kind, for_actions=False), _space(action_kind, for_actions=True))
    vec_env = DummyVecEnv([lambda: env])
    model = case.cls(case.policy(env.observation_space), vec_env, seed=0, **case.kwargs)
    model.learn(100)
    assert model.num_timesteps >= 100
    obs, _ = env.reset(seed=1)
    action, _ = model.predict(obs, deterministic=True)
    assert isinstance(action, np.ndarray) and env.action_space.contains(action.item() if action.shape == () else action)
    actions, _ = model.predict(vec_env.reset(), deterministic=True)  # type: ignore[arg-type]
    assert isinstance(actions, np.ndarray) and actions.shape == (1, *env.action_space.shape)
    mean, _ = evaluate_policy(model, vec_env, n_eval_episodes=2, warn=False)
    assert 0.0 <= mean <= 10.0


class Frames(gym.Env):
    """Seeded random 36x36 frames (the smallest NatureCNN takes), 20 steps an episode, reward for the first action."""

    observation_space = spaces.Box(0, 255, (36, 36, 1), np.uint8)

    def __init__(self, action_space: spaces.Space) -> None:
        self.action_space = action_space

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.t = 0
        return self.np_random.integers(0, 256, (36, 36, 1), dtype=np.uint8), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.t += 1
        reward = float(np.asarray(action).reshape(-1)[0] == 0)
        return self.np_random.integers(0, 256, (36, 36, 1), dtype=np.uint8), reward, False, self.t >= 20, {}


@pytest.mark.parametrize("case", [case for case in CASES if case.conformance.image_policy is not None], ids=str)
def test_image_policy_trains_saves_and_loads(case: Case, tmp_path: Path) -> None:
    action_kind = spaces.Discrete if spaces.Discrete in case.spec.action_spaces else case.spec.action_spaces[0]
    env = make_vec_env(Frames, n_envs=1, seed=0, env_kwargs=dict(action_space=_space(action_kind, for_actions=True)))
    policy_kwargs = dict(case.kwargs.get("policy_kwargs", {}), features_extractor_kwargs=dict(features_dim=16))
    image_policy = case.conformance.image_policy
    assert image_policy is not None
    model = case.cls(image_policy, env, seed=0, **{**case.kwargs, "policy_kwargs": policy_kwargs}).learn(100)
    assert type(model.policy) is case.cls.policy_aliases[image_policy]
    obs = observations(env.observation_space, 5)
    expected, _ = model.predict(obs, deterministic=True)
    model.save(tmp_path / "model.zip")
    loaded = case.cls.load(tmp_path / "model.zip")
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], expected)
    mean, _ = evaluate_policy(loaded, env, n_eval_episodes=1)
    assert 0.0 <= mean <= 20.0


UNDECLARED_ACTIONS = [
    pytest.param(case, kind, id=f"{case.key}-{kind.__name__}")
    for case in OURS
    for kind in (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)
    if kind not in case.spec.action_spaces
]


@pytest.mark.parametrize(("case", "kind"), UNDECLARED_ACTIONS)
def test_undeclared_action_spaces_are_refused(case: Case, kind: type[spaces.Space]) -> None:
    # By design a ValueError naming the space (SB3's DQN fails an assert instead)
    env = DummyVecEnv([lambda: SpacesEnv(spaces.Discrete(4), _space(kind, for_actions=True))])
    with pytest.raises(ValueError, match=kind.__name__):
        case.make(env)


# --- train / eval mode (test_train_eval_mode.py) ----------------------------------------------------------------


class BatchNormExtractor(BaseFeaturesExtractor):
    """Flatten, then batch normalisation and dropout: running statistics move only in training mode."""

    def __init__(self, observation_space: gym.Space) -> None:
        super().__init__(observation_space, get_flattened_obs_dim(observation_space))
        self.batch_norm = nn.BatchNorm1d(self.features_dim)
        self.dropout = nn.Dropout(0.5)

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return self.dropout(self.batch_norm(th.flatten(observations, start_dim=1)))


@pytest.mark.parametrize("case", [case for case in CASES if case.conformance.network_policy], ids=str)
def test_collects_in_eval_mode_and_trains_in_train_mode(case: Case) -> None:
    policy_kwargs = dict(net_arch=[16], features_extractor_class=BatchNormExtractor)
    model = case.make(case.vec_env(n_envs=2), seed=1, policy_kwargs=policy_kwargs)
    # (the first of the policy's extractors: the one acting, wherever the policy keeps it)
    extractor = next(module for module in model.policy.modules() if isinstance(module, BatchNormExtractor))
    batch_norm = extractor.batch_norm
    before = batch_norm.running_mean.clone()
    _, callback = model._setup_learn(10_000, None)
    if hasattr(model, "rollout_buffer"):
        model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=8)  # type: ignore[attr-defined]
    else:
        model.collect_rollouts(model.env, callback, model.train_freq, model.replay_buffer, learning_starts=0)  # type: ignore[attr-defined]
    assert th.equal(batch_norm.running_mean, before)  # acting: eval mode
    # (two gradient steps: TD3's actor learns every policy_delay=2 steps)
    model.train() if hasattr(model, "rollout_buffer") else model.train(gradient_steps=2, batch_size=8)  # type: ignore[call-arg]
    assert not th.equal(batch_norm.running_mean, before)  # learning: train mode
    obs = observations(model.observation_space, 4)
    np.testing.assert_array_equal(  # predict is deterministic: eval mode (no dropout), whatever mode it was in
        model.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0]
    )
