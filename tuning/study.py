"""Studies: samplers, pruners, storages, workers and the outputs of a tuning run.

A run adds its ``n_trials`` to the study as queued (WAITING) trials, then its workers claim queued trials one at a
time (an atomic state change in the storage), so several workers, processes or machines finish exactly the queued
total with no trial lost or run twice. With an RDB storage every running trial sends heartbeats: a trial whose
worker died is marked FAIL by the next worker that looks and queued again (same parameters and seeds), and workers
wait for such trials before they stop.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import os
import shutil
import socket
import threading
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import TrialState

from sb3_ext.config import check_env_id, load_zoo_config
from sb3_ext.errors import ConfigError, Sb3ExtError, suggest
from sb3_ext.registry import get_algo
from tuning.objective import OBJECTIVES, TuningTask, evaluate_trial
from tuning.report import write_report
from tuning.search_spaces import Param, get_search_space, load_search_space

__all__ = ["PRUNERS", "SAMPLERS", "default_storage", "make_pruner", "make_sampler", "make_storage", "optimize", "rerun_trial"]

SAMPLERS = ("tpe", "random", "cmaes", "gp", "qmc")
PRUNERS = ("median", "halving", "hyperband", "none")
_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
# Heartbeats and their retry callback are marked experimental by Optuna; they are what we use on purpose.
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def make_sampler(name: str, seed: int | None = None, n_startup_trials: int = 5) -> optuna.samplers.BaseSampler:
    """
    :param name: ``tpe`` (multivariate), ``random``, ``cmaes``, ``gp`` or ``qmc``
    :param seed: sampler seed
    :param n_startup_trials: random trials before the model-based samplers start
    :return: the sampler
    :raises ConfigError: for an unknown name, or a sampler whose optional dependency is missing
    """
    if name not in SAMPLERS:
        raise ConfigError(f"unknown sampler '{name}'{suggest(name, SAMPLERS)} (valid: {', '.join(SAMPLERS)})")
    needs = {"cmaes": "cmaes", "gp": "scipy"}
    if name in needs and importlib.util.find_spec(needs[name]) is None:
        raise ConfigError(f"the '{name}' sampler needs the '{needs[name]}' package: pip install {needs[name]}")
    if name == "tpe":
        return optuna.samplers.TPESampler(n_startup_trials=n_startup_trials, multivariate=True, seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(n_startup_trials=n_startup_trials, seed=seed)
    if name == "gp":
        return optuna.samplers.GPSampler(n_startup_trials=n_startup_trials, seed=seed)
    return optuna.samplers.QMCSampler(seed=seed)


def make_pruner(name: str, n_evaluations: int = 5, n_startup_trials: int = 5) -> optuna.pruners.BasePruner:
    """
    :param name: ``median``, ``halving``, ``hyperband`` or ``none``
    :param n_evaluations: evaluations per trial (the pruners' resource)
    :param n_startup_trials: trials the median pruner waits for before pruning
    :return: the pruner
    :raises ConfigError: for an unknown name
    """
    if name not in PRUNERS:
        raise ConfigError(f"unknown pruner '{name}'{suggest(name, PRUNERS)} (valid: {', '.join(PRUNERS)})")
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=n_startup_trials, n_warmup_steps=n_evaluations // 3)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=n_evaluations)
    return optuna.pruners.NopPruner()


def make_storage(url: str, heartbeat_interval: int = 10) -> optuna.storages.BaseStorage:
    """
    Open a storage: a SQLAlchemy URL (``sqlite:///...``, ``postgresql://...``, ``mysql://...``; heartbeats on) or the
    path of a journal file (``.log`` / ``.journal``).

    :param url: the URL or path
    :param heartbeat_interval: seconds between heartbeats of a running trial (RDB storages)
    :return: the storage
    :raises ConfigError: when it cannot be opened
    """
    try:
        if "://" not in url:
            if not url.endswith((".log", ".journal")):
                raise ConfigError(
                    f"storage '{url}' is neither a SQLAlchemy URL (sqlite:///tune.db, postgresql://user@host/db) "
                    "nor a journal file path ending in .log or .journal"
                )
            return JournalStorage(JournalFileBackend(url))
        return optuna.storages.RDBStorage(
            url,
            engine_kwargs={"pool_pre_ping": True} if not url.startswith("sqlite") else None,
            heartbeat_interval=heartbeat_interval,
            grace_period=2 * heartbeat_interval,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3),
        )
    except Sb3ExtError:
        raise
    except Exception as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"cannot open storage '{url}': {first_line}") from None


def default_storage(output_folder: str | Path, study_name: str) -> str:
    """
    :param output_folder: the run's output folder
    :param study_name: the study
    :return: the URL of the SQLite file a study uses when no storage is given
    """
    return f"sqlite:///{(Path(output_folder) / study_name / 'study.db').resolve()}"


def _retried_numbers(trials: list[optuna.trial.FrozenTrial]) -> set[int]:
    return {t.system_attrs["failed_trial"] for t in trials if "failed_trial" in t.system_attrs}


def _claim(study: optuna.Study, storage: optuna.storages.BaseStorage) -> int | None:
    """Claim one queued trial: its WAITING -> RUNNING change succeeds in one worker only."""
    study_id = storage.get_study_id_from_name(study.study_name)
    for frozen in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, frozen.number)
        try:
            if storage.set_trial_state_values(trial_id, state=TrialState.RUNNING):
                return trial_id
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
    return None


class _Heartbeat:
    """Records a running trial's heartbeat every interval, in a daemon thread."""

    def __init__(self, storage: optuna.storages.BaseStorage, trial_id: int) -> None:
        self.interval = storage.get_heartbeat_interval() if isinstance(storage, optuna.storages.RDBStorage) else None
        self.storage, self.trial_id = storage, trial_id
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def __enter__(self) -> _Heartbeat:
        if self.interval:
            assert isinstance(self.storage, optuna.storages.RDBStorage)
            self.storage.record_heartbeat(self.trial_id)
            self.thread = threading.Thread(target=self._beat, daemon=True)
            self.thread.start()
        return self

    def _beat(self) -> None:
        assert isinstance(self.storage, optuna.storages.RDBStorage)
        while not self.stop.wait(self.interval):
            self.storage.record_heartbeat(self.trial_id)

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join()


def _run_one(task: TuningTask, study: optuna.Study, storage: optuna.storages.BaseStorage, trial_id: int) -> None:
    trial = optuna.Trial(study, trial_id)
    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
    seed_number = int(storage.get_trial(trial_id).system_attrs.get("failed_trial", trial.number))
    with _Heartbeat(storage, trial_id):
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


def _work(task: TuningTask, study: optuna.Study, storage: optuna.storages.BaseStorage, on_trial: Any = None) -> None:
    """Run queued trials until none is queued (nor, with heartbeats, running elsewhere and possibly stale)."""
    heartbeat = isinstance(storage, optuna.storages.RDBStorage) and storage.get_heartbeat_interval()
    while True:
        optuna.storages.fail_stale_trials(study)  # queues again the trials of dead workers
        trial_id = _claim(study, storage)
        if trial_id is None:
            if heartbeat and study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                time.sleep(min(1.0, float(heartbeat)))
                continue
            return
        _run_one(task, study, storage, trial_id)
        if on_trial is not None:
            on_trial()


def _worker_main(
    task: TuningTask, storage_url: str, study_name: str, sampler: str, pruner: str, seed: int, startup: int, hb: int
) -> None:
    import torch as th

    th.set_num_threads(1)
    storage = make_storage(storage_url, hb)
    study = optuna.load_study(
        study_name=study_name,
        storage=storage,
        sampler=make_sampler(sampler, seed, startup),
        pruner=make_pruner(pruner, task.n_evaluations, startup),
    )
    try:
        _work(task, study, storage)
    except KeyboardInterrupt:
        pass


def _count_finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=_FINISHED))


def optimize(  # noqa: C901
    algo: str,
    env_id: str,
    n_trials: int = 10,
    *,
    config: str | Path | None = None,
    n_timesteps: int | None = None,
    n_evaluations: int = 5,
    eval_episodes: int = 5,
    n_seeds: int = 1,
    objective: str = "last",
    sampler: str = "tpe",
    pruner: str = "median",
    n_startup_trials: int = 5,
    storage: str | None = None,
    study_name: str | None = None,
    n_workers: int = 1,
    max_total_trials: int | None = None,
    output_folder: str | Path = "tuning_runs",
    seed: int = 0,
    search_space: str | Path | Mapping[str, Param] | None = None,
    hyperparams: Mapping[str, Any] | None = None,
    device: str = "cpu",
    heartbeat_interval: int = 10,
    progress_bar: bool = False,
    verbose: int = 1,
) -> optuna.Study:
    """
    Tune an algorithm's hyperparameters on an environment with Optuna.

    :param algo: registry key
    :param env_id: gymnasium id
    :param n_trials: trials this run adds to the study
    :param config: zoo-format YAML whose entry is the base (default: ``zoo_configs/<algo>.yml``)
    :param n_timesteps: training budget per trial and seed (default: the config's)
    :param n_evaluations: evaluations per training run, each reported for pruning
    :param eval_episodes: episodes per evaluation
    :param n_seeds: seeds per trial (the value is their mean; per-seed values are stored in the trial)
    :param objective: ``"last"`` or ``"best"`` evaluation
    :param sampler: ``tpe``, ``random``, ``cmaes``, ``gp`` or ``qmc``
    :param pruner: ``median``, ``halving``, ``hyperband`` or ``none``
    :param n_startup_trials: trials before the sampler models and the median pruner prunes
    :param storage: SQLAlchemy URL or journal file (default: SQLite in the output folder)
    :param study_name: name of the study; an existing one is resumed (default: ``<algo>-<env_id>``)
    :param n_workers: worker processes on this machine (each uses one torch thread)
    :param max_total_trials: cap on the trials of the whole study, across runs, workers and machines
    :param output_folder: outputs go to ``output_folder/<study_name>/``
    :param seed: study seed (sampler seed, and trial seeds with the trial number)
    :param search_space: a YAML file, or a mapping of parameters (default: the algorithm's, ``get_search_space(algo)``)
    :param hyperparams: fixed hyperparameters applied to every trial
    :param device: torch device
    :param heartbeat_interval: seconds between heartbeats of a running trial (RDB storages)
    :param progress_bar: show a progress bar over this run's trials
    :param verbose: 0 silent, 1 a summary line per run
    :return: the study
    :raises Sb3ExtError: for bad input, before any study is created
    """
    # Validate everything before anything is created.
    get_algo(algo)
    check_env_id(env_id)
    for name, value, low in (
        ("n_trials", n_trials, 0),
        ("n_evaluations", n_evaluations, 1),
        ("eval_episodes", eval_episodes, 1),
    ):
        if value < low:
            raise ConfigError(f"{name} must be >= {low}, got {value}")
    for name, value, low in (
        ("n_seeds", n_seeds, 1),
        ("n_workers", n_workers, 1),
        ("heartbeat_interval", heartbeat_interval, 1),
    ):
        if value < low:
            raise ConfigError(f"{name} must be >= {low}, got {value}")
    if max_total_trials is not None and max_total_trials < 1:
        raise ConfigError(f"max_total_trials must be >= 1, got {max_total_trials}")
    if objective not in OBJECTIVES:
        raise ConfigError(f"unknown objective '{objective}' (valid: {', '.join(OBJECTIVES)})")
    make_sampler(sampler, seed, n_startup_trials)
    make_pruner(pruner, n_evaluations, n_startup_trials)
    if search_space is None:
        space: Mapping[str, Param] = get_search_space(algo)
    elif isinstance(search_space, Mapping):
        space = search_space
        for pname, param in space.items():
            param.check(pname)
    else:
        space = load_search_space(search_space, algo)
    task = TuningTask(
        algo=algo,
        env_id=env_id,
        config=str(config) if config is not None else None,
        search_space=dict(space),
        hyperparams=dict(hyperparams or {}),
        n_timesteps=n_timesteps,
        n_evaluations=n_evaluations,
        eval_episodes=eval_episodes,
        n_seeds=n_seeds,
        objective=objective,
        seed=seed,
        device=device,
    )
    load_zoo_config(algo, env_id, config, hyperparams=task.hyperparams, n_timesteps=n_timesteps)  # the base must load
    study_name = study_name or f"{algo}-{env_id}"
    out = Path(output_folder) / study_name
    created = next((p for p in reversed([out, *out.parents]) if not p.exists()), None)  # the top folder we create
    storage_url = storage or default_storage(output_folder, study_name)
    try:
        out.mkdir(parents=True, exist_ok=True)
        opened = make_storage(storage_url, heartbeat_interval)
        study = optuna.create_study(
            study_name=study_name,
            storage=opened,
            sampler=make_sampler(sampler, seed, n_startup_trials),
            pruner=make_pruner(pruner, n_evaluations, n_startup_trials),
            direction="maximize",
            load_if_exists=True,
        )
        previous = study.user_attrs.get("task")
        if previous is not None and (previous["algo"], previous["env_id"]) != (algo, env_id):
            raise ConfigError(
                f"study '{study_name}' tunes {previous['algo']} on {previous['env_id']}, not {algo} on {env_id}: "
                "choose another --study-name"
            )
    except BaseException:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise
    if previous is None:
        study.set_user_attr("task", {"algo": algo, "env_id": env_id, "config": task.config, "seed": seed})
    study.set_user_attr("search_space", {k: _param_dict(p) for k, p in space.items()})
    study.set_user_attr("settings", _settings(task))

    trials = study.get_trials(deepcopy=False)
    existing = len(trials) - len(_retried_numbers(trials))
    n_new = n_trials if max_total_trials is None else max(0, min(n_trials, max_total_trials - existing))
    for _ in range(n_new):
        study.enqueue_trial({}, skip_if_exists=False)
    finished_before = _count_finished(study)

    bar = None
    if progress_bar and n_new > 0:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_new, desc=f"{study_name} trials", unit="trial")
    try:
        if n_workers == 1:
            import torch as th

            threads = th.get_num_threads()
            th.set_num_threads(1)
            try:
                _work(task, study, opened, on_trial=(lambda: bar.update(1)) if bar is not None else None)
            finally:
                th.set_num_threads(threads)
        else:
            ctx = multiprocessing.get_context("spawn")
            workers = [
                ctx.Process(
                    target=_worker_main,
                    args=(task, storage_url, study_name, sampler, pruner, seed + 1 + i, n_startup_trials, heartbeat_interval),
                )
                for i in range(n_workers)
            ]
            for worker in workers:
                worker.start()
            try:
                while any(w.is_alive() for w in workers):
                    time.sleep(0.5)
                    if bar is not None:
                        bar.n = min(n_new, _count_finished(study) - finished_before)
                        bar.refresh()
            finally:
                for worker in workers:
                    worker.join()
    finally:
        if bar is not None:
            bar.n = min(n_new, _count_finished(study) - finished_before)
            bar.close()
    write_report(study, out, task)
    if verbose:
        states = [t.state for t in study.get_trials(deepcopy=False)]
        counts = ", ".join(f"{s.name.lower()} {states.count(s)}" for s in (*_FINISHED, TrialState.WAITING) if states.count(s))
        best = f"; best value {study.best_value:.2f} (trial {study.best_trial.number})" if _has_complete(study) else ""
        print(f"Study '{study_name}': {counts}{best}; outputs in {out}")
    return study


def _param_dict(param: Param) -> dict[str, Any]:
    if param.fixed is not None:
        return {"value": param.fixed}
    if param.kind == "categorical":
        return {"type": "categorical", "choices": list(param.choices)}
    return {"type": param.kind, "low": param.low, "high": param.high, "log": param.log}


def _settings(task: TuningTask) -> dict[str, Any]:
    return {
        "n_timesteps": task.n_timesteps,
        "n_evaluations": task.n_evaluations,
        "eval_episodes": task.eval_episodes,
        "n_seeds": task.n_seeds,
        "objective": task.objective,
        "hyperparams": dict(task.hyperparams),
        "device": task.device,
    }


def _has_complete(study: optuna.Study) -> bool:
    return bool(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def rerun_trial(study_name: str, trial_number: int, storage: str) -> tuple[list[float], list[float]]:
    """
    Re-run a stored trial with its parameters and seeds.

    :param study_name: the study
    :param trial_number: the trial's number
    :param storage: the study's storage URL or journal path
    :return: the stored per-seed values and the values of the re-run
    :raises ConfigError: when the study or trial does not exist or cannot be re-run
    """
    opened = make_storage(storage)
    try:
        study = optuna.load_study(study_name=study_name, storage=opened)
    except KeyError:
        raise ConfigError(f"no study '{study_name}' in {storage}") from None
    trials = study.get_trials(deepcopy=False)
    if not 0 <= trial_number < len(trials):
        raise ConfigError(f"study '{study_name}' has no trial {trial_number} (it has trials 0 to {len(trials) - 1})")
    frozen = trials[trial_number]
    if frozen.state != TrialState.COMPLETE:
        raise ConfigError(f"trial {trial_number} is {frozen.state.name}, only COMPLETE trials can be re-run")
    info, settings = study.user_attrs["task"], study.user_attrs["settings"]
    params = frozen.user_attrs.get("params", frozen.params)
    space = {name: Param(fixed=value) for name, value in params.items()}
    task = TuningTask(
        algo=info["algo"],
        env_id=info["env_id"],
        config=info["config"],
        search_space=space,
        hyperparams=settings["hyperparams"],
        n_timesteps=settings["n_timesteps"],
        n_evaluations=settings["n_evaluations"],
        eval_episodes=settings["eval_episodes"],
        n_seeds=settings["n_seeds"],
        objective=settings["objective"],
        seed=info["seed"],
        device=settings["device"],
    )
    fixed = optuna.trial.FixedTrial(dict(frozen.params), number=trial_number)  # searched values, as sampled
    import torch as th

    threads = th.get_num_threads()
    th.set_num_threads(1)
    try:
        evaluate_trial(task, fixed, int(frozen.system_attrs.get("failed_trial", trial_number)))
    finally:
        th.set_num_threads(threads)
    return list(frozen.user_attrs["seed_values"]), list(fixed.user_attrs["seed_values"])
