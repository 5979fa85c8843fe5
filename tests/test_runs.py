"""Long runs: atomic checkpoints, resuming after SIGKILL, continuing a trained agent, VecEnv and TensorBoard options."""

from __future__ import annotations

import pickle
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from stable_baselines3 import DQN
from stable_baselines3.common.vec_env import SubprocVecEnv

import sb3_ext.runs
from sb3_ext.cli import main
from sb3_ext.runs import CHECKPOINTS, checkpoints

#: The conftest's ``kill_train``: train args and ``ready(run_folder)`` -> the run folder, killed with SIGKILL when ready
KillTrain = Callable[[Sequence[str], Callable[[Path], bool]], Path]

# DQN on CartPole-v1 with small, quick settings (a few seconds per thousand steps)
QUICK = ["learning_starts=200", "train_freq=64", "gradient_steps=16", "buffer_size=100000"]


def _monitor_steps(run_dir: Path) -> int:
    """:return: the env steps of the episodes the run's monitor files logged (all envs)"""
    rows = [line for path in run_dir.glob("*.monitor.csv") for line in path.read_text().splitlines()[2:]]
    return sum(int(row.split(",")[1]) for row in rows if row.count(",") >= 2)  # (a line half-written by the killed run)


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


@pytest.mark.slow
def test_resume_after_sigkill_goes_on_to_the_budget(kill_train: KillTrain) -> None:
    budget = 6144  # (a multiple of train_freq: DQN's rollouts of 64 steps end there)
    args = ["--algo", "dqn", "--env", "CartPole-v1", "-n", str(budget), "--seed", "0", "--save-freq", "1000"]
    args += ["--eval-freq", "500", "--eval-episodes", "2", "--hyperparams", *QUICK]
    run_dir = kill_train(args, lambda run: len(checkpoints(run)) >= 2)
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
    assert _monitor_steps(run_dir) <= budget  # no episode counted twice


@pytest.mark.slow
def test_a_run_killed_between_checkpoints_resumes_to_where_a_fresh_run_ends(tmp_path: Path, kill_train: KillTrain) -> None:
    # SB3's learn() ends after the rollout that reaches the budget: here rollouts of train_freq=64 steps in each of
    # 2 envs, so a fresh run of 5000 steps ends at 5120 (40 rollouts of 128), and so must a resumed one.
    budget, options = 5000, ["--n-envs", "2", "--save-freq", "1000", "--eval-freq", "0"]
    args = ["--algo", "dqn", "--env", "CartPole-v1", "-n", str(budget), "--seed", "0", *options, "--hyperparams", *QUICK]

    def between_checkpoints(run: Path) -> bool:  # 300 steps past the newest checkpoint
        found = checkpoints(run)
        return bool(found) and _monitor_steps(run) > found[-1].steps + 300

    run_dir = kill_train(args, between_checkpoints)
    killed_at = checkpoints(run_dir)[-1].steps
    assert killed_at < budget and not (run_dir / "model.zip").exists()
    fresh = _train(tmp_path / "fresh", *options, steps=budget)  # the same run, not killed
    fresh_end = DQN.load(fresh / "model.zip").num_timesteps
    assert fresh_end == 5120

    assert main(["train", "--resume", str(run_dir)]) == 0

    assert DQN.load(run_dir / "model.zip").num_timesteps == fresh_end
    assert [c.steps for c in checkpoints(run_dir)] == [c.steps for c in checkpoints(fresh)]  # the same grid
    assert _monitor_steps(run_dir) <= fresh_end


@pytest.mark.slow
def test_resume_keeps_the_runs_vec_env(kill_train: KillTrain, monkeypatch: pytest.MonkeyPatch) -> None:
    args = ["--algo", "dqn", "--env", "CartPole-v1", "-n", "4000", "--n-envs", "2", "--vec-env", "subproc"]
    args += ["--seed", "0", "--save-freq", "500", "--eval-freq", "0", "--hyperparams", *QUICK]
    run_dir = kill_train(args, lambda run: bool(checkpoints(run)))
    envs: list[Any] = []
    resume_run = sb3_ext.runs.resume_run

    def resume_and_record_the_env(*args: Any, **kwargs: Any) -> Any:
        resumed = resume_run(*args, **kwargs)
        envs.append(resumed[0].get_env())
        return resumed

    monkeypatch.setattr(sb3_ext.runs, "resume_run", resume_and_record_the_env)
    assert main(["train", "--resume", str(run_dir)]) == 0
    (env,) = envs
    try:
        assert isinstance(env, SubprocVecEnv) and env.num_envs == 2  # as run.yml records it: --vec-env subproc
    finally:
        env.close()
    assert DQN.load(run_dir / "model.zip").num_timesteps == 4096  # (rollouts of 2 x 64 steps)


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


@pytest.mark.slow
def test_subproc_vec_env_and_tensorboard(tmp_path: Path) -> None:
    tb = tmp_path / "tb"
    args = ["train", "--algo", "ppo", "--env", "CartPole-v1", "-n", "256", "--n-envs", "2", "--vec-env", "subproc"]
    args += ["--tensorboard-log", str(tb), "--eval-freq", "0", "--seed", "0", "--log-folder", str(tmp_path / "logs")]
    args += ["--hyperparams", "n_steps=64", "batch_size=64"]
    assert main(args) == 0
    assert list((tb / "PPO_1").glob("events.out.tfevents.*"))
