"""Parity with rl-baselines3-zoo: every entry of the zoo's own hyperparameter files gives the same model kwargs,
budget, n_envs, normalisation, wrappers, callbacks and action noise as the zoo's ExperimentManager.

No env is built on either side (configs are read without making the env), so entries of envs whose packages are
not installed here (MuJoCo, Atari, PyBullet, panda-gym, ...) are covered too: their ids are registered as stubs
for the zoo, which looks each id up in gymnasium's registry, and wrapper modules that are not installed (CarRacing's
``ae``, ``minigrid``) are stand-in modules with classes of the same names.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import yaml

rl_zoo3 = pytest.importorskip("rl_zoo3")
from rl_zoo3.exp_manager import ExperimentManager  # noqa: E402
from rl_zoo3.utils import ALGOS as ZOO_ALGOS  # noqa: E402
from stable_baselines3.common.callbacks import BaseCallback  # noqa: E402
from stable_baselines3.common.noise import ActionNoise  # noqa: E402
from stable_baselines3.common.vec_env import VecEnvWrapper  # noqa: E402

from sb3_ext import Sb3ExtError, load_zoo_config  # noqa: E402
from sb3_ext.common import safe_eval  # noqa: E402
from sb3_ext.errors import UnsafeExpressionError  # noqa: E402
from sb3_ext.registry import ALGOS  # noqa: E402

ZOO_DIR = Path(rl_zoo3.__file__).parent / "hyperparams"
#: The zoo's file of the HER wrapper, which its header says is no longer used (HER is SB3's HerReplayBuffer now)
UNUSED_FILES = {"her.yml"}
# Envs a 'default' entry can be checked on (the first one the file has no entry for); an Atari id for 'atari'.
FALLBACK_ENVS = ["CartPole-v1", "Acrobot-v1", "MountainCar-v0", "FrozenLake-v1", "Pendulum-v1", "MountainCarContinuous-v0"]
ATARI_ID = "BreakoutNoFrameskip-v4"
#: The action space the zoo and we build action noise for (no env is made)
NOISE_SPACE = gym.spaces.Box(-1.0, 1.0, (3,))


def _cases() -> Iterator[Any]:
    for algo in sorted(ALGOS):
        path = ZOO_DIR / f"{algo}.yml"
        if not path.is_file():
            continue
        data = yaml.safe_load(path.read_text())
        for entry in data:
            if entry == "default":
                env_id = next(e for e in FALLBACK_ENVS if e not in data)
            else:
                env_id = ATARI_ID if entry == "atari" else entry
            yield pytest.param(algo, entry, env_id, id=f"{algo}-{entry}")


CASES = list(_cases())


def _class_paths(entry: dict[str, Any]) -> list[tuple[str, str]]:
    """``(dotted path, key)`` of the classes the entry's wrappers and callbacks name."""
    found = []
    for key in ("env_wrapper", "vec_env_wrapper", "callback"):
        specs = entry.get(key) or []
        for spec in specs if isinstance(specs, list) else [specs]:
            found += [(name, key) for name in (list(spec) if isinstance(spec, dict) else [spec]) if isinstance(name, str)]
    return found


@pytest.fixture
def stand_ins(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Register an id gymnasium does not know (for the zoo), and stand in for wrapper modules that are not installed."""

    def install(env_id: str, entry: dict[str, Any]) -> list[str]:
        if env_id not in gym.registry:
            entry_point = "ale_py.env:AtariEnv" if env_id == ATARI_ID else "sb3_ext_stub:NotInstalledEnv"
            monkeypatch.setitem(gym.registry, env_id, gym.envs.registration.EnvSpec(env_id, entry_point=entry_point))
        untrusted = []
        for path, key in _class_paths(entry):
            module_name, _, class_name = path.rpartition(".")
            top = module_name.split(".")[0]
            if top not in safe_eval.TRUSTED_MODULES:
                untrusted.append(top)
            if importlib.util.find_spec(top) is not None:
                continue
            base = {"callback": BaseCallback, "vec_env_wrapper": VecEnvWrapper}.get(key, gym.Wrapper)
            parts = module_name.split(".")
            for i in range(1, len(parts) + 1):
                name = ".".join(parts[:i])
                if name not in sys.modules:
                    monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
            monkeypatch.setattr(sys.modules[module_name], class_name, type(class_name, (base,), {}), raising=False)
        return untrusted

    return install


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


def test_cases_cover_every_file_and_entry() -> None:
    files = {path.name for path in ZOO_DIR.glob("*.yml")} - UNUSED_FILES
    assert files == {f"{algo}.yml" for algo in ZOO_ALGOS} and set(ZOO_ALGOS) <= set(ALGOS)
    assert len(CASES) == sum(len(yaml.safe_load((ZOO_DIR / name).read_text())) for name in files)


@pytest.mark.parametrize(("algo", "entry", "env_id"), CASES)
def test_parity_with_zoo(
    algo: str,
    entry: str,
    env_id: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    stand_ins: Any,
) -> None:
    config = ZOO_DIR / f"{algo}.yml"
    untrusted = stand_ins(env_id, yaml.safe_load(config.read_text())[entry])
    if untrusted:  # classes outside the trusted packages are refused until the user trusts their package
        with pytest.raises(UnsafeExpressionError, match=rf"refused \"{untrusted[0]}\."):
            load_zoo_config(algo, env_id, config)
        monkeypatch.setattr(safe_eval, "TRUSTED_MODULES", safe_eval.TRUSTED_MODULES | set(untrusted))
    manager = ExperimentManager(argparse.Namespace(), algo, env_id, str(tmp_path), config=str(config), verbose=0)
    try:
        hyperparams, saved = manager.read_hyperparameters()
        hyperparams, env_wrapper, callbacks, vec_env_wrapper = manager._preprocess_hyperparams(hyperparams)
        zoo_kwargs = manager._preprocess_action_noise(hyperparams, saved, types.SimpleNamespace(action_space=NOISE_SPACE))
        # The zoo only finds a bad policy name when the model is built.
        policy = zoo_kwargs["policy"]
        if isinstance(policy, str) and policy not in ALGOS[algo].cls.policy_aliases:
            raise ValueError(f"Policy {policy} unknown")
    except (ValueError, AssertionError, KeyError, ImportError) as zoo_error:
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
    noise = cfg.make_action_noise(NOISE_SPACE)
    assert _same(noise, zoo_kwargs.pop("action_noise")) if noise is not None else "action_noise" not in zoo_kwargs
    assert cfg.model_kwargs.keys() == zoo_kwargs.keys()
    for key, value in zoo_kwargs.items():
        assert _same(cfg.model_kwargs[key], value), f"{key}: ours {cfg.model_kwargs[key]!r} vs zoo {value!r}"
