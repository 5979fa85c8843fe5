"""Long runs: atomic checkpoints, resuming after SIGKILL, continuing a trained agent, VecEnv and TensorBoard options."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from stable_baselines3 import DQN

from sb3_ext.cli import main
from sb3_ext.runs import CHECKPOINTS, checkpoints

# DQN on CartPole-v1 with small, quick settings (a few seconds per thousand steps)
QUICK = ["learning_starts=200", "train_freq=64", "gradient_steps=16", "buffer_size=100000"]


def _train(tmp_path: Path, *extra: str, steps: int = 2048) -> Path:
    args = ["train", "--algo", "dqn", "--env", "CartPole-v1", "-n", str(steps), "--seed", "0"]
    args += ["--log-folder", str(tmp_path / "logs"), "--hyperparams", *QUICK, *extra]
    assert main(args) == 0
    (run_dir,) = (tmp_path / "logs" / "dqn").iterdir()
    return run_dir


def test_checkpoints_hold_model_buffer_and_keep_the_newest(tmp_path: Path) -> None:
    run_dir = _train(tmp_path, "--save-freq", "500", "--keep-checkpoints", "2", "--eval-freq", "0")
    found = checkpoints(run_dir)
    # at the first rollout start (every train_freq=64 steps) after each 500 steps, and at the end; the newest 2 kept
    assert [c.steps for c in found] == [1536, 2048]
    assert sorted(p.name for p in (run_dir / CHECKPOINTS).iterdir()) == ["1536", "2048"]  # nothing half-written left
    newest = found[-1]
    model = DQN.load(newest.file())
    assert model.num_timesteps == 2048
    with open(newest.file("replay_buffer_", "pkl"), "rb") as f:
        assert pickle.load(f).size() == 2048  # every transition, the last one included


def test_resume_after_sigkill_goes_on_to_the_budget(tmp_path: Path) -> None:
    budget = 6144  # (a multiple of train_freq: DQN's rollouts of 64 steps end there)
    command = [sys.executable, "-m", "sb3_ext", "train", "--algo", "dqn", "--env", "CartPole-v1", "-n", str(budget)]
    command += ["--seed", "0", "--save-freq", "1000", "--eval-freq", "500", "--eval-episodes", "2"]
    command += ["--log-folder", str(tmp_path / "logs"), "--hyperparams", *QUICK]
    proc = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    deadline, run_dir = time.time() + 180, None
    try:
        while time.time() < deadline and proc.poll() is None:
            runs = list((tmp_path / "logs" / "dqn").glob("CartPole-v1_*"))
            if runs and len(checkpoints(runs[0])) >= 2:
                run_dir = runs[0]
                break
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert run_dir is not None, "no second checkpoint before the run ended"
    checkpoint = checkpoints(run_dir)[-1]
    assert checkpoint.steps < budget
    with open(checkpoint.file("replay_buffer_", "pkl"), "rb") as f:
        saved = pickle.load(f)

    assert main(["train", "--resume", str(run_dir)]) == 0

    assert DQN.load(run_dir / "model.zip").num_timesteps == budget
    final = checkpoints(run_dir)[-1]
    assert final.steps == budget
    with open(final.file("replay_buffer_", "pkl"), "rb") as f:
        resumed = pickle.load(f)
    n = saved.size()  # what the checkpoint held is what the resumed run started from (no wrap: buffer is large)
    np.testing.assert_array_equal(resumed.observations[:n], saved.observations[:n])
    np.testing.assert_array_equal(resumed.actions[:n], saved.actions[:n])
    assert resumed.size() == budget
    with np.load(run_dir / "evaluations.npz") as data:
        timesteps = list(data["timesteps"])
    assert timesteps == list(range(500, budget + 1, 500))  # strictly increasing, none twice, none missing
    lengths = [int(line.split(",")[1]) for line in (run_dir / "0.monitor.csv").read_text().splitlines()[2:]]
    assert sum(lengths) <= budget  # no episode counted twice


def test_resume_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def fails(args: list[str], message: str) -> None:
        assert main(args) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err

    (tmp_path / "empty").mkdir()
    fails(["train", "--resume", str(tmp_path / "empty")], "is not a run folder (no run.yml")
    run_dir = _train(tmp_path, "--eval-freq", "0", steps=300)
    before = sorted(p.name for p in run_dir.iterdir())
    fails(["train", "--resume", str(run_dir)], "has no checkpoint in")
    fails(
        ["train", "--resume", str(run_dir), "--algo", "dqn"],
        "--resume continues the run as run.yml records it: drop --algo",
    )
    fails(["train", "--env", "CartPole-v1"], "the following arguments are required: --algo (or --resume RUN_FOLDER)")
    fails(["train", "--algo", "dqn", "--env", "CartPole-v1", "--keep-checkpoints", "0"], "--keep-checkpoints must be >= 1")
    assert sorted(p.name for p in run_dir.iterdir()) == before  # nothing written


def test_trained_agent_continues_in_a_new_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = _train(tmp_path, "--eval-freq", "0", "--save-freq", "1024", steps=1024)
    trained = DQN.load(first / "model.zip")
    second = _train(tmp_path / "b", "--eval-freq", "0", "-i", str(checkpoints(first)[-1].file()), steps=256)
    model = DQN.load(second / "model.zip")
    assert model.num_timesteps == 256  # a new budget, as rl-baselines3-zoo's -i
    # it started from the trained weights (200 steps of training change them little; a fresh net is far off)
    fresh = DQN("MlpPolicy", "CartPole-v1", seed=0, policy_kwargs=dict(net_arch=[256, 256]))
    obs = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    q = {
        name: m.q_net(m.q_net.obs_to_tensor(obs)[0]).detach().numpy()
        for name, m in (("t", trained), ("m", model), ("f", fresh))
    }
    assert np.abs(q["m"] - q["t"]).mean() < np.abs(q["f"] - q["t"]).mean()

    assert (
        main(
            [
                "train",
                "--algo",
                "ppo",
                "--env",
                "CartPole-v1",
                "-i",
                str(first / "model.zip"),
                "--log-folder",
                str(tmp_path / "c"),
            ]
        )
        == 2
    )
    assert "--trained-agent" in capsys.readouterr().err
    assert not (tmp_path / "c" / "ppo").exists() or not list((tmp_path / "c" / "ppo").iterdir())


def test_subproc_vec_env_and_tensorboard(tmp_path: Path) -> None:
    tb = tmp_path / "tb"
    args = ["train", "--algo", "ppo", "--env", "CartPole-v1", "-n", "256", "--n-envs", "2", "--vec-env", "subproc"]
    args += ["--tensorboard-log", str(tb), "--eval-freq", "0", "--seed", "0", "--log-folder", str(tmp_path / "logs")]
    args += ["--hyperparams", "n_steps=64", "batch_size=64"]
    assert main(args) == 0
    assert list((tb / "PPO_1").glob("events.out.tfevents.*"))
