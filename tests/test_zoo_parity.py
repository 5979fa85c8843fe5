"""Parity with rl-baselines3-zoo: every entry of the zoo's own hyperparameter files whose env is available here
gives the same model kwargs, budget, n_envs, normalisation and wrappers as the zoo's ExperimentManager."""

from __future__ import annotations

import argparse
import importlib.util
import inspect
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import yaml

rl_zoo3 = pytest.importorskip("rl_zoo3")
from rl_zoo3.exp_manager import ExperimentManager  # noqa: E402
from stable_baselines3.common.noise import ActionNoise  # noqa: E402

from sb3_ext import Sb3ExtError, load_zoo_config  # noqa: E402
from sb3_ext.registry import ALGOS  # noqa: E402

ZOO_DIR = Path(rl_zoo3.__file__).parent / "hyperparams"
# Envs a 'default' entry can be checked on (the first one the file has no entry for).
FALLBACK_ENVS = ["CartPole-v1", "Acrobot-v1", "MountainCar-v0", "FrozenLake-v1", "Pendulum-v1", "MountainCarContinuous-v0"]


def _available(env_id: str) -> bool:
    try:
        gym.make(env_id).close()
    except Exception:
        return False
    return True


def _cases() -> Iterator[Any]:
    for algo in sorted(ALGOS):
        path = ZOO_DIR / f"{algo}.yml"
        if not path.is_file():
            continue
        data = yaml.safe_load(path.read_text())
        for entry in data:
            if entry == "atari":
                continue  # Atari ids need ale-py, not installed here
            if entry == "default":
                env_id = next(e for e in FALLBACK_ENVS if e not in data)
            else:
                env_id = entry
            if not _available(env_id):
                continue
            missing = _missing_modules(data[entry])
            marks = [pytest.mark.skip(reason=f"needs {', '.join(missing)}, not installed")] if missing else []
            yield pytest.param(algo, entry, env_id, id=f"{algo}-{entry}", marks=marks)


def _missing_modules(entry: dict[str, Any]) -> list[str]:
    """Top-level modules named by the entry's wrappers and callbacks that cannot be imported (e.g. CarRacing's 'ae')."""
    names: list[str] = []
    for key in ("env_wrapper", "callback"):
        specs = entry.get(key) or []
        for spec in specs if isinstance(specs, list) else [specs]:
            names += list(spec) if isinstance(spec, dict) else [spec]
    modules = {name.split(".")[0] for name in names if isinstance(name, str) and "." in name}
    return sorted(m for m in modules if importlib.util.find_spec(m) is None)


CASES = list(_cases())


def _same(ours: Any, zoo: Any) -> bool:
    if isinstance(ours, ActionNoise) or isinstance(zoo, ActionNoise):
        return type(ours) is type(zoo) and np.allclose(ours._mu, zoo._mu) and np.allclose(ours._sigma, zoo._sigma)
    if isinstance(ours, type) or isinstance(zoo, type):
        return ours is zoo
    if callable(ours) or callable(zoo):  # schedules: compare by value
        at = (1.0, 0.5, 0.0)
        ours_v = [ours(p) if callable(ours) else ours for p in at]
        zoo_v = [zoo(p) if callable(zoo) else zoo for p in at]
        return np.allclose(ours_v, zoo_v)
    if isinstance(ours, dict) and isinstance(zoo, dict):
        return ours.keys() == zoo.keys() and all(_same(ours[k], zoo[k]) for k in ours)
    if isinstance(ours, (list, tuple)) and isinstance(zoo, (list, tuple)):
        return type(ours) is type(zoo) and len(ours) == len(zoo) and all(_same(a, b) for a, b in zip(ours, zoo, strict=True))
    return type(ours) is type(zoo) and ours == zoo


def _zoo_wrappers(wrap: Any) -> list[tuple[type, dict[str, Any]]]:
    if wrap is None:
        return []
    nonlocals = inspect.getclosurevars(wrap).nonlocals
    return list(zip(nonlocals["wrapper_classes"], nonlocals["wrapper_kwargs"], strict=True))


def test_cases_cover_the_main_files() -> None:
    files = {c.values[0] for c in CASES}
    assert {"dqn", "a2c", "ppo", "sac"} <= files
    assert len(CASES) >= 40


@pytest.mark.parametrize(("algo", "entry", "env_id"), CASES)
def test_parity_with_zoo(algo: str, entry: str, env_id: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = ZOO_DIR / f"{algo}.yml"
    manager = ExperimentManager(argparse.Namespace(), algo, env_id, str(tmp_path), config=str(config), verbose=0)
    try:
        hyperparams, saved = manager.read_hyperparameters()
        hyperparams, env_wrapper, callbacks, vec_env_wrapper = manager._preprocess_hyperparams(hyperparams)
        probe = SimpleNamespace(action_space=gym.make(env_id).action_space)
        zoo_kwargs = manager._preprocess_action_noise(hyperparams, saved, probe)
        # The zoo only finds a bad policy name when the model is built.
        policy = zoo_kwargs["policy"]
        if isinstance(policy, str) and policy not in ALGOS[algo].cls.policy_aliases:
            raise ValueError(f"Policy {policy} unknown")
    except (ValueError, AssertionError, KeyError) as zoo_error:
        # The zoo refuses this entry: so must we, with our own clear error.
        with pytest.raises(Sb3ExtError):
            load_zoo_config(algo, env_id, config)
        assert str(zoo_error)
        return
    capsys.readouterr()

    cfg = load_zoo_config(algo, env_id, config)
    assert cfg.entry == entry
    assert cfg.n_timesteps == manager.n_timesteps
    assert cfg.n_envs == manager.n_envs
    assert cfg.normalize == bool(manager.normalize)
    assert cfg.normalize_kwargs == manager.normalize_kwargs
    assert cfg.frame_stack == manager.frame_stack
    assert cfg.env_kwargs == manager.env_kwargs
    assert cfg.monitor_kwargs == manager.monitor_kwargs
    assert list(cfg.env_wrappers) == _zoo_wrappers(env_wrapper)
    assert list(cfg.vec_env_wrappers) == _zoo_wrappers(vec_env_wrapper)
    assert [type(c) for c in cfg.make_callbacks()] == [type(c) for c in callbacks]
    assert cfg.model_kwargs.keys() == zoo_kwargs.keys()
    for key, value in zoo_kwargs.items():
        assert _same(cfg.model_kwargs[key], value), f"{key}: ours {cfg.model_kwargs[key]!r} vs zoo {value!r}"
