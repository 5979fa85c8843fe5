"""Fixtures of the tuning tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

# A narrow PPO search space whose trials take about a second on CartPole-v1.
FAST_SPACE = """
extend: false
learning_rate: {type: float, low: 1.0e-4, high: 3.0e-3, log: true}
one_minus_gamma: {type: float, low: 0.001, high: 0.1, log: true}
n_steps_pow: 5
batch_size_pow: 6
n_epochs: 2
net_arch: tiny
"""


@pytest.fixture
def fast_space(tmp_path: Path) -> Callable[[str], str]:
    """Write the fast search space (plus extra YAML lines) and return its path."""

    def write(extra: str = "") -> str:
        path = tmp_path / "space.yml"
        path.write_text(FAST_SPACE + extra)
        return str(path)

    return write


def _check_retried_once(trials: list[Any], killed_trial: int, n_complete: int) -> None:
    """The killed worker's trial failed by heartbeat and was retried once with its parameters; ``n_complete`` done."""
    by_number = {t.number: t for t in trials}
    assert by_number[killed_trial].state == TrialState.FAIL
    assert "fail_reason" not in by_number[killed_trial].user_attrs  # failed by heartbeat, not by the objective
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == killed_trial]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    assert retries[0].params == by_number[killed_trial].params
    assert sum(t.state == TrialState.COMPLETE for t in trials) == n_complete
    assert not [t for t in trials if t.state in (TrialState.WAITING, TrialState.RUNNING)]


@pytest.fixture
def check_retried_once() -> Callable[[list[Any], int, int], None]:
    """Checks of a study in which one worker was killed during a trial (see :func:`_check_retried_once`)."""
    return _check_retried_once


def _running_trial(storage: str, study_name: str, pid: int | None = None, timeout: float = 120) -> FrozenTrial:
    """
    Wait for a worker to be inside a trial.

    :param storage: the study's storage URL
    :param study_name: its name (it may not be created yet)
    :param pid: the process whose worker runs the trial (None: any worker)
    :param timeout: seconds to wait
    :return: the RUNNING trial, with its ``worker`` user attribute (``<host>:<pid>``)
    """
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            running = optuna.load_study(study_name=study_name, storage=storage).get_trials(states=(TrialState.RUNNING,))
        except KeyError:
            running = []
        for trial in running:
            worker = trial.user_attrs.get("worker", "")
            if worker and (pid is None or worker.endswith(f":{pid}")):
                return trial
        time.sleep(0.1)
    raise AssertionError(f"no worker{'' if pid is None else f' of process {pid}'} started a trial within {timeout}s")


@pytest.fixture
def running_trial() -> Callable[..., FrozenTrial]:
    """Waits for a worker's RUNNING trial (see :func:`_running_trial`)."""
    return _running_trial
