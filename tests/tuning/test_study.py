from __future__ import annotations

import argparse
import csv
import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import optuna
import pytest
from gymnasium import spaces
from optuna.trial import TrialState

from sb3_ext import load_zoo_config
from sb3_ext.cli import main as sb3_ext_main
from tuning import StudyOptions, TuningTask, load_search_space, optimize
from tuning.cli import main


def cli(tmp_path: Path, space: str, *extra: str) -> list[str]:
    return [
        *("--algo", "ppo", "--env", "CartPole-v1", "--n-timesteps", "1024", "--n-evaluations", "2", "--eval-episodes", "2"),
        *("--output-folder", str(tmp_path / "out"), "--search-space", space, "--no-progress-bar", *extra),
    ]


def run_cli(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


@pytest.mark.slow
def test_cli_study_writes_every_output_resumes_and_reruns(
    tmp_path: Path, fast_space: Callable[[str], str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(cli(tmp_path, fast_space(), "--n-trials", "4")) == 0
    out = tmp_path / "out" / "ppo-CartPole-v1"
    expected = {"study.db", "best.yml", "trials.csv", "report.md"}
    expected |= {"optimization_history.png", "param_importances.png", "intermediate_values.png"}
    assert expected <= {p.name for p in out.iterdir()}
    with (out / "trials.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 4
    report = (out / "report.md").read_text()
    assert "## Best trial" in report and "![param_importances.png]" in report

    # best.yml loads unchanged in load_zoo_config, `sb3_ext train --config` and rl-baselines3-zoo.
    cfg = load_zoo_config("ppo", "CartPole-v1", out / "best.yml")
    assert cfg.model_kwargs["n_steps"] == 32 and cfg.model_kwargs["n_epochs"] == 2
    train_args = ["train", "--algo", "ppo", "--env", "CartPole-v1", "--config", str(out / "best.yml"), "-n", "300"]
    assert sb3_ext_main([*train_args, "--eval-freq", "0", "--log-folder", str(tmp_path / "logs"), "--seed", "0"]) == 0
    from rl_zoo3.exp_manager import ExperimentManager

    manager = ExperimentManager(
        argparse.Namespace(), "ppo", "CartPole-v1", str(tmp_path / "zoo"), config=str(out / "best.yml")
    )
    hyperparams, _ = manager.read_hyperparameters()
    zoo_kwargs = manager._preprocess_hyperparams(hyperparams)[0]
    assert zoo_kwargs["policy_kwargs"] == cfg.model_kwargs["policy_kwargs"]

    # Same study name: resumed.
    assert run_cli(cli(tmp_path, fast_space(), "--n-trials", "4")) == 0
    study = optuna.load_study(study_name="ppo-CartPole-v1", storage=f"sqlite:///{out / 'study.db'}")
    assert len(study.trials) == 8
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials)

    # Any trial re-runs exactly.
    best = study.best_trial.number
    capsys.readouterr()
    assert run_cli(cli(tmp_path, fast_space(), "--rerun-trial", str(best))) == 0
    assert "identical" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize("storage", ["sqlite", "journal"])
def test_two_workers_finish_exactly_the_total(tmp_path: Path, fast_space: Callable[[str], str], storage: str) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}" if storage == "sqlite" else str(tmp_path / "w.log")
    assert (
        run_cli(cli(tmp_path, fast_space(), "--n-trials", "6", "--n-workers", "2", "--storage", url, "--pruner", "none")) == 0
    )
    stored = url if storage == "sqlite" else optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(url))
    trials = optuna.load_study(study_name="ppo-CartPole-v1", storage=stored).trials
    assert [t.number for t in trials] == list(range(6))
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert len({t.user_attrs["worker"] for t in trials}) == 2  # both processes ran trials


class NanReward(gym.Env):
    observation_space = spaces.Box(-1, 1, (1,))
    action_space = spaces.Discrete(2)

    def __init__(self, level: float = 1.0) -> None:
        self.level, self.t = level, 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, dtype=np.float32), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self.t += 1
        return np.zeros(1, dtype=np.float32), float(self.level), self.t >= 10, False, {}


gym.register("sb3ext-test/Level-v0", entry_point=NanReward)


def test_failures_are_failures_and_the_study_goes_on(tmp_path: Path, fast_space: Callable[[str], str]) -> None:
    extra = "env_kwargs: {choices: ['dict(level=1.0)', \"dict(level=float('nan'))\"]}\nn_epochs: {choices: [1, 0]}\n"
    space = fast_space(extra)
    task = TuningTask(
        "ppo",
        "sb3ext-test/Level-v0",
        search_space=load_search_space(space, "ppo"),
        hyperparams={"n_envs": 2},
        n_timesteps=512,
        n_evaluations=2,
        eval_episodes=2,
    )
    study = optimize(
        task, StudyOptions(n_trials=8, sampler="random", pruner="none", output_folder=tmp_path / "out", verbose=0)
    )
    trials = study.trials
    assert len(trials) == 8  # one failing trial never stops the study
    reasons = {t.user_attrs["fail_reason"] for t in trials if t.state == TrialState.FAIL}
    assert any(r.startswith("ConfigError: --hyperparams n_epochs: must be >= 1, got 0") for r in reasons)
    assert any(r.startswith("FloatingPointError: NaN during training") and "found nan in rewards" in r for r in reasons)
    assert all(t.state != TrialState.PRUNED for t in trials)  # only a pruner prunes
    ok = [t for t in trials if t.state == TrialState.COMPLETE]
    assert ok and all(t.params["env_kwargs"] == "dict(level=1.0)" and t.params["n_epochs"] == 1 for t in ok)
    report = (tmp_path / "out" / "ppo-sb3ext-test/Level-v0" / "report.md").read_text()
    assert "## Failed trials" in report and "FloatingPointError" in report and "ConfigError" in report


@pytest.mark.slow
def test_median_pruner_prunes_the_bad_trials(tmp_path: Path, fast_space: Callable[[str], str]) -> None:
    space = fast_space("env_kwargs: {choices: ['dict(level=1.0)', 'dict(level=0.0)']}\n")
    task = TuningTask(
        "ppo",
        "sb3ext-test/Level-v0",
        search_space=load_search_space(space, "ppo"),
        hyperparams={"n_envs": 2},
        n_timesteps=768,
        n_evaluations=3,
        eval_episodes=2,
        seed=0,  # the random sampler's level sequence with this seed: 1, 0, 1, 0, 0, 0, 0, 0, 0, 1
    )
    options = StudyOptions(
        n_trials=10, sampler="random", pruner="median", n_startup_trials=2, output_folder=tmp_path / "out", verbose=0
    )
    study = optimize(task, options)
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert pruned, "the median pruner should stop some level-0 trials"
    assert all(t.params["env_kwargs"] == "dict(level=0.0)" for t in pruned)
    good = [t for t in study.trials if t.params["env_kwargs"] == "dict(level=1.0)"]
    assert good and all(t.state == TrialState.COMPLETE and t.value == 10.0 for t in good)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--algo", "ppp"], "unknown algorithm 'ppp'; did you mean 'ppo'?"),
        (["--env", "CartPol-v1"], "unknown environment 'CartPol-v1'; did you mean 'CartPole-v1'?"),
        (["--sampler", "tpx"], "unknown sampler 'tpx'; did you mean 'tpe'?"),
        (["--pruner", "medain"], "unknown pruner 'medain'; did you mean 'median'?"),
        (["--storage", "postgresql://nobody@127.0.0.1:1/none"], "cannot open storage 'postgresql://nobody@127.0.0.1:1/none'"),
        (["--storage", "study.db"], "storage 'study.db' is neither a SQLAlchemy URL"),
        (["--n-trials", "-1"], "n_trials must be >= 0, got -1"),
        (["--search-space", "BAD_SPACE"], "learning_rate: low must be < high"),
        (["--search-space", "MALFORMED_SPACE"], "malformed YAML"),
        (["--hyperparams", "gamma=3"], "--hyperparams gamma: must be in [0, 1], got 3"),
    ],
)
def test_bad_input_exits_2_and_creates_no_study(
    tmp_path: Path, fast_space: Callable[[str], str], capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    (tmp_path / "bad.yml").write_text("learning_rate: {type: float, low: 0.1, high: 0.01}\n")
    (tmp_path / "malformed.yml").write_text("learning_rate: {type: float\n")
    replacements = {"BAD_SPACE": str(tmp_path / "bad.yml"), "MALFORMED_SPACE": str(tmp_path / "malformed.yml")}
    args = [replacements.get(a, a) for a in args]
    base = cli(tmp_path, fast_space(), "--n-trials", "1")
    for flag, value in zip(args[::2], args[1::2], strict=True):  # replace or add each flag
        if flag in base:
            base[base.index(flag) + 1] = value
        else:
            base += [flag, value]
    assert run_cli(base) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_ctrl_c_marks_the_running_trial_and_keeps_the_study_usable(
    tmp_path: Path, fast_space: Callable[[str], str], running_trial: Callable[..., optuna.trial.FrozenTrial]
) -> None:
    storage = f"sqlite:///{tmp_path / 'c.db'}"
    argv = cli(
        tmp_path, fast_space(), "--n-trials", "3", "--storage", storage, "--n-timesteps", "20000", "--n-evaluations", "20"
    )
    # Ctrl-C in a terminal: the worker starts with SIGINT's default action, whatever this process inherited (a shell
    # starts background jobs with SIGINT ignored, and Python then installs no KeyboardInterrupt handler).
    proc = subprocess.Popen(
        [sys.executable, "-m", "tuning", *argv],
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    trial = running_trial(storage, "ppo-CartPole-v1", proc.pid)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    study = optuna.load_study(study_name="ppo-CartPole-v1", storage=storage)
    stopped = study.trials[trial.number]
    assert stopped.state == TrialState.FAIL and stopped.user_attrs["fail_reason"] == "interrupted (Ctrl-C)"
    assert [t.state for t in study.trials].count(TrialState.WAITING) == 2  # queued, run by the next run


@pytest.mark.slow
def test_a_killed_workers_trial_is_retried_with_sqlite(
    tmp_path: Path,
    fast_space: Callable[[str], str],
    check_retried_once: Callable[..., None],
    running_trial: Callable[..., optuna.trial.FrozenTrial],
) -> None:
    # Optuna's heartbeat thread and retry callback, in our loop of queued trials (PostgreSQL: test_postgres.py).
    storage = f"sqlite:///{tmp_path / 'k.db'}"
    argv = cli(tmp_path, fast_space(), "--n-trials", "3", "--n-workers", "2", "--storage", storage, "--pruner", "none")
    argv += ["--heartbeat-interval", "1", "--n-timesteps", "4000", "--n-evaluations", "2"]
    proc = subprocess.Popen([sys.executable, "-m", "tuning", *argv])
    killed = running_trial(storage, "ppo-CartPole-v1")
    time.sleep(0.5)  # well inside the trial
    os.kill(int(killed.user_attrs["worker"].rsplit(":", 1)[1]), signal.SIGKILL)
    assert proc.wait(timeout=300) == 0

    trials = optuna.load_study(study_name="ppo-CartPole-v1", storage=storage).trials
    check_retried_once(trials, killed.number, 3)


def test_importing_tuning_leaves_the_warning_filters_alone() -> None:
    # The third-party modules tuning imports install filters of their own: import them first.
    code = (
        "import warnings, optuna, optuna.storages.journal, stable_baselines3.common.callbacks, sb3_ext.config\n"
        "before = list(warnings.filters)\n"
        "import tuning.study\n"
        "assert warnings.filters == before, [f for f in warnings.filters if f not in before]\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_experimental_warnings_are_silenced_only_around_their_calls(tmp_path: Path, fast_space: Callable[[str], str]) -> None:
    task = TuningTask("ppo", "CartPole-v1", search_space=load_search_space(fast_space(), "ppo"), n_timesteps=512)
    options = StudyOptions(n_trials=1, sampler="qmc", pruner="none", output_folder=tmp_path / "out", verbose=0)
    # torch's optimizers import torch._dynamo on first use, and with it sympy, which adds a filter of its own.
    import torch._dynamo  # noqa: F401

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        before = list(warnings.filters)
        study = optimize(task, options)  # QMC sampler, SQLite storage with heartbeats and their retry callback
        assert warnings.filters == before
    assert [t.state for t in study.trials] == [TrialState.COMPLETE]
    assert not [w for w in caught if issubclass(w.category, optuna.exceptions.ExperimentalWarning)]
