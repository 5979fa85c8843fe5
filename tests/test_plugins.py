"""Third-party algorithms and search spaces: sb3_ext.register_algo, tuning.register_search_space and the entry points."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from gymnasium import spaces
from stable_baselines3 import PPO

from sb3_ext import AlgoSpec, Sb3ExtError, get_algo, load_zoo_config, register_algo
from sb3_ext import registry as registry_module
from sb3_ext.config import constructor_defaults
from sb3_ext.errors import ConfigError, UnknownAlgorithmError
from tuning import search_spaces as search_spaces_module
from tuning.search_spaces import get_search_space, register_search_space

ACME = '''
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.type_aliases import Schedule

from sb3_ext import AlgoSpec


class AuxPPO(PPO):
    """PPO with an extra coefficient that may be a schedule (a stand-in for a third-party algorithm)."""

    def __init__(
        self,
        policy,
        env,
        learning_rate: float | Schedule = 3e-4,
        n_steps: int = 2048,
        batch_size: int = 64,
        aux_coef: float | Schedule = 0.1,
        tensorboard_log: str | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        self.aux_coef = aux_coef
        super().__init__(
            policy, env, learning_rate=learning_rate, n_steps=n_steps, batch_size=batch_size, seed=seed, device=device,
            tensorboard_log=tensorboard_log, verbose=verbose, _init_setup_model=_init_setup_model,
        )


SPEC = AlgoSpec("aux_ppo", AuxPPO, True, (spaces.Box, spaces.Discrete))
SPACE = {
    "learning_rate": {"type": "float", "low": 1.0e-4, "high": 1.0e-3, "log": True},
    "aux_coef": {"type": "float", "low": 0.0, "high": 1.0},
}
'''


@pytest.fixture
def acme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A third-party package on sys.path, declaring its algorithm and search space as entry points."""
    site = tmp_path / "site"
    (site / "acme_rl-0.1.dist-info").mkdir(parents=True)
    (site / "acme_rl.py").write_text(ACME)
    (site / "acme_rl-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-rl\nVersion: 0.1\n")
    (site / "acme_rl-0.1.dist-info" / "entry_points.txt").write_text(
        "[sb3_ext.algorithms]\naux_ppo = acme_rl:SPEC\n\n[sb3_ext.search_spaces]\naux_ppo = acme_rl:SPACE\n"
    )
    monkeypatch.syspath_prepend(str(site))
    # The registries as they are now, restored after the test (plug-ins register into them)
    monkeypatch.setattr(registry_module, "ALGOS", dict(registry_module.ALGOS))
    monkeypatch.setattr(registry_module, "_loaded_entry_points", set())
    monkeypatch.setattr(search_spaces_module, "_checked", set())
    monkeypatch.setattr(search_spaces_module, "_loaded_entry_points", set())
    return site


def run(args: list[str], site: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_a_third_party_package_is_trained_tuned_and_suggested(acme: Path, tmp_path: Path) -> None:
    train = ["sb3_ext", "train", "--algo", "aux_ppo", "--env", "CartPole-v1", "-n", "256", "--seed", "0"]
    train += ["--hyperparams", "n_steps=128", "aux_coef=lin_0.5", "--eval-freq", "128", "--eval-episodes", "2"]
    proc = run([*train, "--log-folder", "logs", "--no-progress-bar"], acme, tmp_path)
    assert proc.returncode == 0, proc.stderr
    config = yaml.safe_load((tmp_path / "logs" / "aux_ppo" / "CartPole-v1_1" / "config.yml").read_text())
    assert config["CartPole-v1"]["aux_coef"] == "lin_0.5"

    tune = ["tuning", "--algo", "aux_ppo", "--env", "CartPole-v1", "--n-trials", "2", "--n-timesteps", "256"]
    tune += ["--hyperparams", "n_steps=128", "--n-evaluations", "1", "--eval-episodes", "2", "--no-progress-bar"]
    proc = run([*tune, "--output-folder", "tuned", "--study-name", "aux"], acme, tmp_path)
    assert proc.returncode == 0, proc.stderr
    best = yaml.safe_load((tmp_path / "tuned" / "aux" / "best.yml").read_text())
    assert 0.0 <= best["CartPole-v1"]["aux_coef"] <= 1.0  # the plug-in's own search space

    proc = run(["sb3_ext", "train", "--algo", "aux_pp", "--env", "CartPole-v1"], acme, tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "unknown algorithm 'aux_pp'; did you mean 'aux_ppo'" in proc.stderr


def test_entry_points_are_found_lazily_and_schedules_come_from_annotations(acme: Path) -> None:
    spec = get_algo("aux_ppo")
    assert spec.cls.__name__ == "AuxPPO" and "aux_ppo" in registry_module.algo_keys()
    # No zoo-format file: the constructor's defaults, with the budget from the caller
    cfg = load_zoo_config("aux_ppo", "CartPole-v1", n_timesteps=256, hyperparams=dict(aux_coef="lin_0.5", n_steps=64))
    assert cfg.source == "<aux_ppo: constructor defaults>" and cfg.model_kwargs["policy"] == "MlpPolicy"
    schedule = cfg.model_kwargs["aux_coef"]
    assert callable(schedule) and schedule(1.0) == pytest.approx(0.5) and schedule(0.0) == pytest.approx(0.0)
    with pytest.raises(ConfigError, match=r"missing 'n_timesteps' .*or -n on the command line"):
        load_zoo_config("aux_ppo", "CartPole-v1")
    assert set(get_search_space("aux_ppo")) == {"learning_rate", "aux_coef"}


def test_bad_registrations_get_one_clear_error(acme: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(Sb3ExtError, match=r"AlgoSpec 'bad': .* is not a stable_baselines3 BaseAlgorithm subclass"):
        AlgoSpec("bad", dict, True, (spaces.Box,))  # type: ignore[arg-type]
    with pytest.raises(Sb3ExtError, match=r"algorithm 'ppo' is registered already \(stable_baselines3.ppo.ppo.PPO\)"):
        register_algo(AlgoSpec("ppo", get_algo("aux_ppo").cls, True, (spaces.Box,)))
    register_algo(AlgoSpec("ppo", PPO, True, (spaces.Box,)), replace=True)
    assert get_algo("ppo").action_spaces == (spaces.Box,)
    with pytest.raises(
        ConfigError,
        match=r"parameter 'aux_cof' sets 'aux_cof', which aux_ppo's constructor does not take; did you mean 'aux_coef'",
    ):
        register_search_space("aux_ppo", {"aux_cof": {"type": "float", "low": 0.0, "high": 1.0}})

    # A plug-in that fails to import is reported in one line naming its package; every other algorithm stays usable
    (acme / "acme_rl.py").write_text("raise ImportError('no module named torch_acme')\n")
    for name in [m for m in sys.modules if m == "acme_rl"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(registry_module, "ALGOS", {k: v for k, v in registry_module.ALGOS.items() if k != "aux_ppo"})
    monkeypatch.setattr(registry_module, "_loaded_entry_points", set())
    with pytest.warns(
        UserWarning, match=r"algorithm 'aux_ppo' of package acme-rl is not available: no module named torch_acme"
    ):
        with pytest.raises(UnknownAlgorithmError, match="unknown algorithm 'aux_ppo'"):
            get_algo("aux_ppo")
    assert get_algo("dqn").key == "dqn"


class ForwardingPPO(PPO):
    """The usual Python subclass: its own argument, everything else forwarded to PPO through ``**kwargs``."""

    def __init__(self, policy: Any, env: Any, aux_coef: float = 0.0, **kwargs: Any) -> None:
        self.aux_coef = aux_coef
        super().__init__(policy, env, **kwargs)


def test_a_subclass_forwarding_kwargs_takes_its_parents_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry_module, "ALGOS", dict(registry_module.ALGOS))
    monkeypatch.setattr(search_spaces_module, "_checked", set())
    register_algo(AlgoSpec("fwd_ppo", ForwardingPPO, True, (spaces.Discrete,)))
    config = tmp_path / "fwd_ppo.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "CartPole-v1": {
                    "policy": "MlpPolicy",
                    "n_timesteps": 64,
                    "n_steps": 32,
                    "batch_size": 16,
                    "aux_coef": 0.5,
                    "learning_rate": "lin_1e-3",
                }
            }
        )
    )
    cfg = load_zoo_config("fwd_ppo", "CartPole-v1", config)  # PPO's keys, through **kwargs
    model = cfg.make_model(cfg.make_env(seed=0), seed=0)
    assert isinstance(model, ForwardingPPO) and (model.n_steps, model.batch_size, model.aux_coef) == (32, 16, 0.5)
    assert model.learning_rate(1.0) == pytest.approx(1e-3)  # (a schedule, read from PPO's annotation)
    # Defaults not given come from the parent's signature (the tuning converter's on-policy rollout size)
    assert constructor_defaults(ForwardingPPO)["n_steps"] == 2048
    space = register_search_space("fwd_ppo", {"n_steps_pow": {"type": "int", "low": 4, "high": 6}, "aux_coef": [0.1]})
    assert set(space) == {"n_steps_pow", "aux_coef"}
    with pytest.raises(ConfigError, match=r"n_stepz: unknown key for fwd_ppo.*did you mean 'n_steps'"):
        load_zoo_config("fwd_ppo", "CartPole-v1", config, hyperparams={"n_stepz": 8})
