"""The worker loop: run the study's queued trials until none is left, in as many processes or machines as wanted.

Optuna's own mechanisms where they give our guarantees, ours where they do not:

- **Claiming a queued trial** is an atomic WAITING -> RUNNING change of its state in the storage
  (``BaseStorage.set_trial_state_values``: ``False`` when another worker set it RUNNING first, ``UpdateFinishedTrialError``
  when it is finished), so one worker wins each trial. It is what the private ``Study._pop_waiting_trial_id`` does,
  the first half of ``Study.ask``, made of public storage calls. ``Study.ask`` itself, and so ``Study.optimize``, is not
  used: when no trial is queued it creates a new one (``study.py``, ``ask``: ``if trial_id is None: trial_id =
  self._storage.create_new_trial(...)``), so workers racing for the last queued trial would run more than the queued
  total. ``MaxTrialsCallback`` does not close that gap: it calls ``study.stop()`` after a trial *finished*
  (``_callbacks.py``), and ``_optimize_sequential`` checks the stop flag only before its next ``ask``, by which time
  every other worker may have created a trial of its own. Running only queued trials makes the total exact.
- **Heartbeats** are Optuna's: ``get_heartbeat_thread`` (the thread ``Study.optimize`` runs around each trial,
  ``storages/_heartbeat.py``), ``fail_stale_trials`` and the storage's ``RetryHeartbeatStaleTrialCallback``, which
  queues a dead worker's trial again with its parameters (and ``failed_trial`` in its system attributes, from which
  the retry takes its seeds). ``get_heartbeat_thread`` is private and has no public counterpart: ``pyproject.toml``
  bounds Optuna below its next major version for it, and ``tests/tuning/test_optuna_private.py`` checks it.
- **Waiting for trials running elsewhere** before stopping is ours: ``Study.optimize`` fails stale trials only before
  it starts a trial of its own (``_optimize.py``, ``_run_trial``), so when the last live worker stopped first, a dead
  worker's trial would stay RUNNING, or its retry queued, with nobody to run it.
- A **journal storage** has no heartbeats in this Optuna (``class JournalStorage(BaseStorage)``, no
  ``BaseHeartbeat``: ``get_heartbeat_thread`` gives a null thread). Its workers claim and finish queued trials
  exactly, but a killed worker's trial stays RUNNING: use an RDB storage where workers may die.
"""

from __future__ import annotations

import os
import socket
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages._heartbeat import get_heartbeat_thread  # private, no public counterpart: see the module docstring
from optuna.trial import FrozenTrial, TrialState

from tuning.objective import TuningTask, evaluate_trial

__all__ = ["claim_queued_trial", "quiet_experimental", "run_queued_trials"]


@contextmanager
def quiet_experimental() -> Iterator[None]:
    """
    Silence Optuna's ``ExperimentalWarning`` inside the block only: heartbeats, their retry callback and some samplers
    are marked experimental, and are what we use on purpose. The process-wide warning filters are left as they are.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def claim_queued_trial(study: optuna.Study, storage: optuna.storages.BaseStorage) -> tuple[int, FrozenTrial] | None:
    """
    Claim one of the study's queued trials: set it RUNNING in the storage, unless another worker did first.

    :param study: the study
    :param storage: the storage the study was opened on
    :return: the claimed trial's id and its queued state (parameters, system attributes), or None when none is queued
    """
    study_id = storage.get_study_id_from_name(study.study_name)
    for queued in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, queued.number)
        try:
            if storage.set_trial_state_values(trial_id, state=TrialState.RUNNING):
                return trial_id, queued
        except UpdateFinishedTrialError:
            pass  # another worker claimed and finished it since we listed it
    return None


def _run_one(
    task: TuningTask, study: optuna.Study, storage: optuna.storages.BaseStorage, trial_id: int, queued: FrozenTrial
) -> None:
    """
    Run one claimed trial, with heartbeats where the storage records them, and tell the study how it ended. Everything
    after the claim is inside the ``try``: a worker seen in a trial (its ``worker`` attribute) that is stopped by Ctrl-C
    or an error leaves it FAIL, not RUNNING.

    :param trial_id: the claimed trial's id in ``storage``
    :param queued: the trial as it was queued
    """
    # A retry (queued by RetryHeartbeatStaleTrialCallback) keeps the seeds of the trial it retries.
    seed_number = int(queued.system_attrs.get("failed_trial", queued.number))
    with get_heartbeat_thread(trial_id, storage):
        try:
            trial = optuna.Trial(study, trial_id)
            trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
            value = evaluate_trial(task, trial, seed_number)
        except optuna.TrialPruned:
            study.tell(queued.number, state=TrialState.PRUNED)
        except KeyboardInterrupt:
            storage.set_trial_user_attr(trial_id, "fail_reason", "interrupted (Ctrl-C)")
            study.tell(queued.number, state=TrialState.FAIL)
            raise
        except Exception as exc:
            storage.set_trial_user_attr(trial_id, "fail_reason", f"{type(exc).__name__}: {exc}".splitlines()[0][:500])
            study.tell(queued.number, state=TrialState.FAIL)
        else:
            study.tell(queued.number, value)


def run_queued_trials(
    task: TuningTask,
    study: optuna.Study,
    storage: optuna.storages.BaseStorage,
    on_trial: Callable[[], None] | None = None,
) -> None:
    """
    Run the study's queued trials one at a time until none is queued, nor (with heartbeats) running elsewhere: such a
    trial may belong to a dead worker, and is then failed and queued again by the next look.

    :param task: what is tuned
    :param study: the study, on the storage its trials were queued in
    :param storage: that storage, as passed to ``optuna.create_study`` or ``optuna.load_study``
    :param on_trial: called after each trial this worker finished
    """
    heartbeat = storage.get_heartbeat_interval() if isinstance(storage, optuna.storages.RDBStorage) else None
    while True:
        with quiet_experimental():
            optuna.storages.fail_stale_trials(study)  # fails dead workers' trials; the storage's callback queues them
        claimed = claim_queued_trial(study, storage)
        if claimed is None:
            if heartbeat and study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                time.sleep(min(1.0, float(heartbeat)))
                continue
            return
        _run_one(task, study, storage, *claimed)
        if on_trial is not None:
            on_trial()
