"""The worker loop: run the study's queued trials until none is left, in as many processes or machines as wanted.

Optuna's own mechanisms where they give our guarantees, ours where they do not:

- **Claiming a queued trial** is Optuna's ``Study._pop_waiting_trial_id`` (an atomic WAITING -> RUNNING change: one
  worker wins each trial), the first half of ``Study.ask``. ``Study.ask`` itself, and so ``Study.optimize``, is not
  used: when no trial is queued it creates a new one (``study.py``, ``ask``: ``if trial_id is None: trial_id =
  self._storage.create_new_trial(...)``), so workers racing for the last queued trial would run more than the queued
  total. ``MaxTrialsCallback`` does not close that gap: it calls ``study.stop()`` after a trial *finished*
  (``_callbacks.py``), and ``_optimize_sequential`` checks the stop flag only before its next ``ask``, by which time
  every other worker may have created a trial of its own. Running only queued trials makes the total exact.
- **Heartbeats** are Optuna's: ``get_heartbeat_thread`` (the thread ``Study.optimize`` runs around each trial,
  ``storages/_heartbeat.py``), ``fail_stale_trials`` and the storage's ``RetryHeartbeatStaleTrialCallback``, which
  queues a dead worker's trial again with its parameters (and ``failed_trial`` in its system attributes, from which
  the retry takes its seeds).
- **Waiting for trials running elsewhere** before stopping is ours: ``Study.optimize`` fails stale trials only before
  it starts a trial of its own (``_optimize.py``, ``_run_trial``), so when the last live worker stopped first, a dead
  worker's trial would stay RUNNING, or its retry queued, with nobody to run it.
- A **journal storage** has no heartbeats in this Optuna (``class JournalStorage(BaseStorage)``, no
  ``BaseHeartbeat``: ``is_heartbeat_enabled`` is false and ``get_heartbeat_thread`` a null thread). Its workers
  claim and finish queued trials exactly, but a killed worker's trial stays RUNNING: use an RDB storage where workers
  may die.
"""

from __future__ import annotations

import os
import socket
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import optuna
from optuna.storages._heartbeat import BaseHeartbeat, get_heartbeat_thread
from optuna.trial import TrialState

from tuning.objective import TuningTask, evaluate_trial

__all__ = ["quiet_experimental", "run_queued_trials"]


@contextmanager
def quiet_experimental() -> Iterator[None]:
    """
    Silence Optuna's ``ExperimentalWarning`` inside the block only: heartbeats, their retry callback and some samplers
    are marked experimental, and are what we use on purpose. The process-wide warning filters are left as they are.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def _run_one(task: TuningTask, study: optuna.Study, trial_id: int) -> None:
    """Run one claimed trial, with heartbeats where the storage records them, and tell the study how it ended."""
    trial = optuna.Trial(study, trial_id)
    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
    # A retry (queued by RetryHeartbeatStaleTrialCallback) keeps the seeds of the trial it retries.
    seed_number = int(study._storage.get_trial(trial_id).system_attrs.get("failed_trial", trial.number))
    with get_heartbeat_thread(trial_id, study._storage):
        try:
            value = evaluate_trial(task, trial, seed_number)
        except optuna.TrialPruned:
            study.tell(trial, state=TrialState.PRUNED)
        except KeyboardInterrupt:
            trial.set_user_attr("fail_reason", "interrupted (Ctrl-C)")
            study.tell(trial, state=TrialState.FAIL)
            raise
        except Exception as exc:
            trial.set_user_attr("fail_reason", f"{type(exc).__name__}: {exc}".splitlines()[0][:500])
            study.tell(trial, state=TrialState.FAIL)
        else:
            study.tell(trial, value)


def run_queued_trials(task: TuningTask, study: optuna.Study, on_trial: Callable[[], None] | None = None) -> None:
    """
    Run the study's queued trials one at a time until none is queued, nor (with heartbeats) running elsewhere: such a
    trial may belong to a dead worker, and is then failed and queued again by the next look.

    :param task: what is tuned
    :param study: the study, on the storage its trials were queued in
    :param on_trial: called after each trial this worker finished
    """
    storage = study._storage
    heartbeat = storage.get_heartbeat_interval() if isinstance(storage, BaseHeartbeat) else None
    while True:
        with quiet_experimental():
            optuna.storages.fail_stale_trials(study)  # fails dead workers' trials; the storage's callback queues them
        trial_id = study._pop_waiting_trial_id()
        if trial_id is None:
            if heartbeat and study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                time.sleep(min(1.0, float(heartbeat)))
                continue
            return
        _run_one(task, study, trial_id)
        if on_trial is not None:
            on_trial()
