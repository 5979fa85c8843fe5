"""
An algorithm added with one registration, its ``AlgoSpec``, gets everything: config loading, CLI training, tuning with
its search space, the SB3 conformance tests, and a failing test while the README's table lacks its row.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sb3_ext import load_zoo_config
from sb3_ext import registry as registry_module
from tuning import search_spaces as search_spaces_module

REPO = Path(__file__).parents[1]

# The whole of a new algorithm: its class and its one registration (an entry point of its package)
TINY = '''
from gymnasium import spaces
from stable_baselines3 import DQN

from sb3_ext import AlgoSpec, Conformance


class TinyDQN(DQN):
    """DQN with one more argument, every other one forwarded to DQN (a stand-in for a new algorithm)."""

    def __init__(self, policy, env, tiny_coef: float = 0.5, **kwargs) -> None:
        self.tiny_coef = tiny_coef
        super().__init__(policy, env, **kwargs)


SPEC = AlgoSpec(
    "tiny_dqn",
    TinyDQN,
    on_policy=False,
    action_spaces=(spaces.Discrete,),
    paper="https://example.org/tiny",
    search_space={
        "learning_rate": {"type": "float", "low": 1.0e-4, "high": 1.0e-3, "log": True},
        "tiny_coef": {"type": "float", "low": 0.0, "high": 1.0},
        "train_freq": {"choices": [1, 4]},
    },
    conformance=Conformance(
        "CartPole-v1",
        dict(learning_starts=50, buffer_size=2_000, target_update_interval=100, policy_kwargs=dict(net_arch=[16])),
    ),
)
'''


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The new algorithm's package on sys.path (and on PYTHONPATH for subprocesses), declaring its one entry point."""
    site = tmp_path / "site"
    (site / "tiny_rl-0.1.dist-info").mkdir(parents=True)
    (site / "tiny_rl.py").write_text(TINY)
    (site / "tiny_rl-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: tiny-rl\nVersion: 0.1\n")
    (site / "tiny_rl-0.1.dist-info" / "entry_points.txt").write_text("[sb3_ext.algorithms]\ntiny_dqn = tiny_rl:SPEC\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setattr(registry_module, "ALGOS", dict(registry_module.ALGOS))
    monkeypatch.setattr(registry_module, "_loaded_entry_points", set())
    monkeypatch.setattr(search_spaces_module, "_checked", set())
    return site


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_one_registration_gives_config_cli_tuning_conformance_and_a_readme_check(tiny: Path, tmp_path: Path) -> None:
    # Config loading (no zoo file: the constructor's defaults, DQN's through **kwargs), with the budget from the caller
    cfg = load_zoo_config("tiny_dqn", "CartPole-v1", n_timesteps=300, hyperparams={"tiny_coef": 0.25, "buffer_size": 500})
    model = cfg.make_model(cfg.make_env(seed=0), seed=0)
    assert type(model).__name__ == "TinyDQN" and (model.tiny_coef, model.buffer_size) == (0.25, 500)

    # CLI training
    train = ["sb3_ext", "train", "--algo", "tiny_dqn", "--env", "CartPole-v1", "-n", "300", "--seed", "0"]
    proc = _run([*train, "--eval-freq", "150", "--eval-episodes", "2", "--log-folder", "logs", "--no-progress-bar"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "logs" / "tiny_dqn" / "CartPole-v1_1" / "model.zip").is_file()

    # Tuning with its own search space
    tune = ["tuning", "--algo", "tiny_dqn", "--env", "CartPole-v1", "--n-trials", "2", "--n-timesteps", "300"]
    tune += ["--n-evaluations", "1", "--eval-episodes", "2", "--no-progress-bar", "--output-folder", "tuned"]
    proc = _run([*tune, "--study-name", "tiny"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    best = yaml.safe_load((tmp_path / "tuned" / "tiny" / "best.yml").read_text())["CartPole-v1"]
    assert 0.0 <= best["tiny_coef"] <= 1.0 and best["train_freq"] in (1, 4)

    # The conformance tests run on it, and pass
    proc = _run(["pytest", "-q", "-p", "no:cacheprovider", "tests/test_sb3_contract.py", "-k", "tiny_dqn"], REPO)
    assert proc.returncode == 0, proc.stdout[-3000:]
    passed = int(proc.stdout.strip().splitlines()[-1].split(" passed")[0].split()[-1])
    assert passed >= 20, proc.stdout[-500:]

    # The README's table has no row for it: the table test fails, naming it
    proc = _run(["pytest", "-q", "-p", "no:cacheprovider", "tests/test_registry.py", "-k", "readme"], REPO)
    assert proc.returncode == 1 and "tiny_dqn" in proc.stdout, proc.stdout[-3000:]
