from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.callbacks import EvalCallback

from sb3_ext.cli import main

RUN_FILES = {"model.zip", "config.yml", "run.yml", "evaluations.npz", "learning_curve.png", "0.monitor.csv"}


def run_cli(argv: list[str]) -> int:
    """The exit code of the CLI, whether argparse exits or main returns."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def train(tmp_path: Path, *extra: str) -> Path:
    code = main(["train", "--log-folder", str(tmp_path / "logs"), "--no-progress-bar", *extra])
    assert code == 0
    runs = sorted((tmp_path / "logs").glob("*/*"), key=lambda p: p.stat().st_mtime)
    return runs[-1]


@pytest.mark.slow
def test_train_learns_and_evaluate_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = train(tmp_path, "--algo", "ppo", "--env", "CartPole-v1", "-n", "20000", "--seed", "0", "--eval-freq", "5000")
    assert run == tmp_path / "logs" / "ppo" / "CartPole-v1_1"
    assert RUN_FILES <= {p.name for p in run.iterdir()}
    assert not [p for p in run.iterdir() if "tmp" in p.name]
    evaluations = np.load(run / "evaluations.npz")
    assert list(evaluations["timesteps"]) == [5000, 10000, 15000, 20000]
    # The zoo's PPO config learns CartPole quickly: the last evaluation is well above a random policy (~20).
    assert evaluations["results"][-1].mean() >= 150
    saved = yaml.safe_load((run / "config.yml").read_text())
    assert saved["CartPole-v1"]["n_timesteps"] == 20000 and saved["CartPole-v1"]["n_envs"] == 8
    assert yaml.safe_load((run / "run.yml").read_text())["seed"] == 0
    assert PPO.load(run / "model.zip").num_timesteps >= 20000  # whole rollouts of 8 envs x 32 steps
    capsys.readouterr()

    assert main(["evaluate", "--model", str(run / "model.zip"), "--episodes", "5"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ppo on CartPole-v1: mean return ")
    mean = float(out.split("mean return ")[1].split(" ")[0])
    assert mean >= 150


def test_config_reload_and_vecnormalize(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = train(
        tmp_path,
        *("--algo", "a2c", "--env", "Acrobot-v1", "-n", "600", "--seed", "1", "--eval-freq", "300", "--n-envs", "2"),
        *("--hyperparams", "learning_rate=lin_1e-3", "policy_kwargs=dict(net_arch=[16])"),
    )
    assert (run / "vecnormalize.pkl").is_file()  # zoo_configs/a2c.yml normalises Acrobot
    assert {"0.monitor.csv", "1.monitor.csv"} <= {p.name for p in run.iterdir()}
    saved = yaml.safe_load((run / "config.yml").read_text())["Acrobot-v1"]
    assert saved["learning_rate"] == "lin_1e-3" and saved["policy_kwargs"] == "dict(net_arch=[16])"
    assert A2C.load(run / "model.zip").policy_kwargs["net_arch"] == [16]
    # The saved config trains again unchanged.
    again = train(tmp_path, "--algo", "a2c", "--env", "Acrobot-v1", "--config", str(run / "config.yml"), "--seed", "1")
    assert yaml.safe_load((again / "config.yml").read_text()) == yaml.safe_load((run / "config.yml").read_text())
    capsys.readouterr()
    assert main(["evaluate", "--model", str(run / "model.zip"), "--episodes", "2"]) == 0
    assert "a2c on Acrobot-v1: mean return" in capsys.readouterr().out


@pytest.mark.slow
def test_seeded_runs_are_identical(tmp_path: Path) -> None:
    args = (
        "--algo",
        "dqn",
        "--env",
        "CartPole-v1",
        "-n",
        "3000",
        "--seed",
        "7",
        "--eval-freq",
        "1000",
        "--eval-episodes",
        "3",
    )
    extra = ("--hyperparams", "learning_starts=500", "train_freq=16", "gradient_steps=4")
    first = np.load(train(tmp_path / "a", *args, *extra) / "evaluations.npz")
    second = np.load(train(tmp_path / "b", *args, *extra) / "evaluations.npz")
    for key in ("timesteps", "results", "ep_lengths"):
        np.testing.assert_array_equal(first[key], second[key])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--algo", "ppp", "--env", "CartPole-v1"], "unknown algorithm 'ppp'; did you mean 'ppo'?"),
        (["--algo", "ppo", "--env", "CartPol-v1"], "unknown environment 'CartPol-v1'; did you mean 'CartPole-v1'?"),
        (["--algo", "dqn", "--env", "Pendulum-v1"], "dqn cannot train on Pendulum-v1: its action space is Box"),
        (["--algo", "ppo", "--env", "CartPole-v1", "--hyperparams", "gamma=1.5"], "--hyperparams gamma: must be in [0, 1]"),
        (["--algo", "ppo", "--env", "CartPole-v1", "--hyperparams", "lr=0.1"], "--hyperparams lr: unknown key for ppo"),
        (["--algo", "ppo", "--env", "CartPole-v1", "--hyperparams", "policy_kwargs=__import__('os')"], "refused"),
        (["--algo", "ppo", "--env", "CartPole-v1", "--hyperparams", "gamma"], "expected key=value, got 'gamma'"),
        (["--algo", "ppo", "--env", "CartPole-v1", "-n", "0"], "--n-timesteps must be >= 1, got 0"),
        (["--algo", "ppo", "--env", "CartPole-v1", "-n", "many"], "argument -n/--n-timesteps: invalid int value: 'many'"),
        (["--algo", "ppo", "--env", "CartPole-v1", "--config", "missing.yml"], "missing.yml: no such config file"),
        (["--env", "CartPole-v1"], "the following arguments are required: --algo"),
    ],
)
def test_bad_train_input_exits_2_with_one_line_and_no_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    logs = tmp_path / "logs"
    assert run_cli(["train", "--log-folder", str(logs), *args]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    assert not any(p.is_dir() for p in logs.glob("*/*")) if logs.exists() else True


@pytest.mark.slow
def test_bad_yaml_exits_2_from_a_real_process(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("CartPole-v1:\n  n_timesteps: [1\n")
    proc = subprocess.run(
        [sys.executable, "-m", "sb3_ext", "train", "--algo", "ppo", "--env", "CartPole-v1", "--config", str(bad)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "malformed YAML at line" in proc.stderr
    assert not (tmp_path / "logs").exists() or not any((tmp_path / "logs").glob("*/*"))


def test_bad_evaluate_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--model", str(tmp_path / "nope.zip")]) == 2
    assert "--model: no such file" in capsys.readouterr().err
    stray = tmp_path / "model.zip"
    stray.write_bytes(b"")
    assert main(["evaluate", "--model", str(stray)]) == 2
    assert "has no run.yml; pass --algo and --env" in capsys.readouterr().err


def test_ctrl_c_saves_the_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    original = EvalCallback._on_step

    def interrupt(self: EvalCallback) -> bool:
        if self.n_calls >= 1000:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(EvalCallback, "_on_step", interrupt)
    code = main(
        ["train", "--log-folder", str(tmp_path), "--algo", "a2c", "--env", "CartPole-v1", "-n", "50000", "--seed", "0"]
    )
    assert code == 130
    run = tmp_path / "a2c" / "CartPole-v1_1"
    model = A2C.load(run / "model.zip")
    assert 0 < model.num_timesteps < 50000
    assert (run / "learning_curve.png").is_file()
    assert "Interrupted at" in capsys.readouterr().err
