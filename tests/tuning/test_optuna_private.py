"""
The private Optuna names tuning uses, with what it relies on, so that an Optuna release that changes one fails here
with a clear message rather than inside a study. ``pyproject.toml`` bounds Optuna below its next major version for them.

- ``optuna.storages._heartbeat.get_heartbeat_thread(trial_id, storage)`` (tuning/workers.py): a context manager that
  records the trial's heartbeat while inside it, on a storage with heartbeats, and does nothing on one without.
"""

from __future__ import annotations

import importlib
import inspect
import threading
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from tuning.workers import quiet_experimental


def private(module: str, name: str) -> Any:
    """The private ``module.name``, or a test failure that says which Optuna lacks it and what depends on it."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        pytest.fail(
            f"optuna {optuna.__version__} has no {module}.{name}, which tuning/workers.py uses (no public counterpart): "
            "adapt tuning/workers.py, then the upper bound on optuna in pyproject.toml"
        )


def test_get_heartbeat_thread_signature() -> None:
    get_heartbeat_thread = private("optuna.storages._heartbeat", "get_heartbeat_thread")
    params = list(inspect.signature(get_heartbeat_thread).parameters)
    assert params == ["trial_id", "storage"], (
        f"optuna {optuna.__version__}: get_heartbeat_thread{inspect.signature(get_heartbeat_thread)} no longer takes "
        "(trial_id, storage) as tuning/workers.py calls it"
    )


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_get_heartbeat_thread_keeps_a_trial_alive_only_inside_it(tmp_path: Path) -> None:
    get_heartbeat_thread = private("optuna.storages._heartbeat", "get_heartbeat_thread")
    grace = 3  # SQLite's clock has whole seconds: heartbeats 1 s apart may read up to 2 s apart
    with quiet_experimental():
        storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'h.db'}", heartbeat_interval=1, grace_period=grace)
    study = optuna.create_study(storage=storage)
    trial = study.ask()  # RUNNING
    trial_id = storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(study.study_name), 0)

    def state_after(seconds: float) -> TrialState:
        time.sleep(seconds)
        with quiet_experimental():
            optuna.storages.fail_stale_trials(study)
        return study.trials[trial.number].state

    with get_heartbeat_thread(trial_id, storage):
        inside = state_after(grace + 1)
    outside = state_after(grace + 2)
    message = f"optuna {optuna.__version__}: get_heartbeat_thread no longer records heartbeats while inside it"
    assert (inside, outside) == (TrialState.RUNNING, TrialState.FAIL), message


def test_get_heartbeat_thread_does_nothing_without_heartbeats(tmp_path: Path) -> None:
    get_heartbeat_thread = private("optuna.storages._heartbeat", "get_heartbeat_thread")
    storages = [
        optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'n.db'}"),  # heartbeat_interval None
        optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(tmp_path / "n.log"))),
    ]
    for storage in storages:
        study = optuna.create_study(storage=storage)
        study.ask()
        trial_id = storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(study.study_name), 0)
        threads = threading.active_count()
        with get_heartbeat_thread(trial_id, storage):
            assert threading.active_count() == threads, f"{type(storage).__name__}: a heartbeat thread was started"
        assert study.trials[0].state == TrialState.RUNNING
