"""Studies: samplers, pruners, storages, the options of a run, and its outputs.

A run adds its ``n_trials`` to the study as queued (WAITING) trials, then its workers run queued trials only
(:mod:`tuning.workers`), so several workers, processes or machines finish exactly the queued total with no trial lost
or run twice. With an RDB storage every running trial sends heartbeats: a trial whose worker died is marked FAIL by the
next worker that looks and queued again (same parameters and seeds), and workers wait for such trials before they stop.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import optuna
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import TrialState

from sb3_ext.config import check_env_id, load_zoo_config
from sb3_ext.errors import ConfigError, Sb3ExtError, suggest
from tuning.objective import TuningTask, check_at_least, evaluate_trial
from tuning.report import write_report
from tuning.workers import quiet_experimental, run_queued_trials

__all__ = [
    "PRUNERS",
    "SAMPLERS",
    "StudyOptions",
    "default_storage",
    "make_pruner",
    "make_sampler",
    "make_storage",
    "optimize",
    "rerun_trial",
]

#: Builds a sampler from its seed and the number of random trials before it models.
SamplerFactory = Callable[[int | None, int], optuna.samplers.BaseSampler]
#: Builds a pruner from the evaluations per trial (its resource) and the trials it waits for before pruning.
PrunerFactory = Callable[[int, int], optuna.pruners.BasePruner]
_T = TypeVar("_T")
_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def _requires(package: str, factory: SamplerFactory) -> SamplerFactory:
    """``factory``, after a check that the optional ``package`` it needs is installed."""

    def checked(seed: int | None, n_startup_trials: int) -> optuna.samplers.BaseSampler:
        if importlib.util.find_spec(package) is None:
            raise ModuleNotFoundError(f"No module named '{package}'", name=package)
        return factory(seed, n_startup_trials)

    return checked


#: Sampler name -> factory (``tpe`` is multivariate).
SAMPLERS: dict[str, SamplerFactory] = {
    "tpe": lambda seed, startup: optuna.samplers.TPESampler(n_startup_trials=startup, multivariate=True, seed=seed),
    "random": lambda seed, _: optuna.samplers.RandomSampler(seed=seed),
    "cmaes": _requires("cmaes", lambda seed, startup: optuna.samplers.CmaEsSampler(n_startup_trials=startup, seed=seed)),
    "gp": _requires("scipy", lambda seed, startup: optuna.samplers.GPSampler(n_startup_trials=startup, seed=seed)),
    "qmc": lambda seed, _: optuna.samplers.QMCSampler(seed=seed),
}
#: Pruner name -> factory.
PRUNERS: dict[str, PrunerFactory] = {
    "median": lambda n_evaluations, startup: optuna.pruners.MedianPruner(
        n_startup_trials=startup, n_warmup_steps=n_evaluations // 3
    ),
    "halving": lambda _, __: optuna.pruners.SuccessiveHalvingPruner(),
    "hyperband": lambda n_evaluations, _: optuna.pruners.HyperbandPruner(min_resource=1, max_resource=n_evaluations),
    "none": lambda _, __: optuna.pruners.NopPruner(),
}


def _lookup(kind: str, name: str, table: Mapping[str, _T]) -> _T:
    """:raises ConfigError: for a name not in ``table``, with the nearest one and the valid ones"""
    if name not in table:
        raise ConfigError(f"unknown {kind} '{name}'{suggest(name, table)} (valid: {', '.join(table)})")
    return table[name]


def make_sampler(name: str, seed: int | None = None, n_startup_trials: int = 5) -> optuna.samplers.BaseSampler:
    """
    :param name: a key of :data:`SAMPLERS`: ``tpe`` (multivariate), ``random``, ``cmaes``, ``gp`` or ``qmc``
    :param seed: sampler seed
    :param n_startup_trials: random trials before the model-based samplers start
    :return: the sampler
    :raises ConfigError: for an unknown name, or a sampler whose optional dependency is missing
    """
    factory = _lookup("sampler", name, SAMPLERS)
    try:
        with quiet_experimental():  # QMCSampler is marked experimental
            return factory(seed, n_startup_trials)
    except ModuleNotFoundError as exc:
        raise ConfigError(f"the '{name}' sampler needs the '{exc.name}' package: pip install {exc.name}") from None


def make_pruner(name: str, n_evaluations: int = 5, n_startup_trials: int = 5) -> optuna.pruners.BasePruner:
    """
    :param name: a key of :data:`PRUNERS`: ``median``, ``halving``, ``hyperband`` or ``none``
    :param n_evaluations: evaluations per trial (the pruners' resource)
    :param n_startup_trials: trials the median pruner waits for before pruning
    :return: the pruner
    :raises ConfigError: for an unknown name
    """
    return _lookup("pruner", name, PRUNERS)(n_evaluations, n_startup_trials)


def make_storage(url: str, heartbeat_interval: int = 10) -> optuna.storages.BaseStorage:
    """
    Open a storage: a SQLAlchemy URL (``sqlite:///...``, ``postgresql://...``, ``mysql://...``; heartbeats on) or the
    path of a journal file (``.log`` / ``.journal``; Optuna has no heartbeats for those).

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
        with quiet_experimental():  # heartbeats and their retry callback are marked experimental
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


@dataclass(frozen=True)
class StudyOptions:
    """
    How a study runs (what it tunes is the :class:`~tuning.objective.TuningTask`; the sampler's seed is the task's).

    :param n_trials: trials this run adds to the study
    :param sampler: a key of :data:`SAMPLERS`
    :param pruner: a key of :data:`PRUNERS`
    :param n_startup_trials: trials before the sampler models and the median pruner prunes
    :param storage: SQLAlchemy URL or journal file (None: SQLite in the output folder)
    :param study_name: name of the study; an existing one is resumed (None: ``<algo>-<env_id>``)
    :param n_workers: worker processes on this machine (each uses one torch thread)
    :param max_total_trials: cap on the trials of the whole study, across runs, workers and machines
    :param output_folder: outputs go to ``output_folder/<study_name>/``
    :param heartbeat_interval: seconds between heartbeats of a running trial (RDB storages)
    :param progress_bar: show a progress bar over this run's trials
    :param verbose: 0 silent, 1 a summary line per run
    :raises ConfigError: for a value out of range or an unknown sampler or pruner
    """

    n_trials: int = 10
    sampler: str = "tpe"
    pruner: str = "median"
    n_startup_trials: int = 5
    storage: str | None = None
    study_name: str | None = None
    n_workers: int = 1
    max_total_trials: int | None = None
    output_folder: str | Path = "tuning_runs"
    heartbeat_interval: int = 10
    progress_bar: bool = False
    verbose: int = 1

    def __post_init__(self) -> None:
        check_at_least("n_trials", self.n_trials, 0)
        check_at_least("n_startup_trials", self.n_startup_trials, 0)
        check_at_least("n_workers", self.n_workers, 1)
        check_at_least("heartbeat_interval", self.heartbeat_interval, 1)
        if self.max_total_trials is not None:
            check_at_least("max_total_trials", self.max_total_trials, 1)
        _lookup("sampler", self.sampler, SAMPLERS)
        _lookup("pruner", self.pruner, PRUNERS)

    def name_for(self, task: TuningTask) -> str:
        """
        :param task: what the study tunes
        :return: the study's name: ``study_name``, else ``<algo>-<env_id>``
        """
        return self.study_name or f"{task.algo}-{task.env_id}"


def optimize(task: TuningTask, options: StudyOptions | None = None) -> optuna.Study:
    """
    Tune an algorithm's hyperparameters on an environment with Optuna: queue this run's trials in the study (created,
    or resumed), run them, then write the outputs into ``options.output_folder/<study name>/``.

    :param task: what is tuned
    :param options: how the study runs (default: ``StudyOptions()``)
    :return: the study
    :raises Sb3ExtError: for bad input, before any study is created
    """
    options = options or StudyOptions()
    # What the task and options name must exist before anything is created.
    check_env_id(task.env_id)
    sampler = make_sampler(options.sampler, task.seed, options.n_startup_trials)
    pruner = make_pruner(options.pruner, task.n_evaluations, options.n_startup_trials)
    load_zoo_config(task.algo, task.env_id, task.config, hyperparams=task.hyperparams, n_timesteps=task.n_timesteps)
    study_name = options.name_for(task)
    out = Path(options.output_folder) / study_name
    storage_url = options.storage or default_storage(options.output_folder, study_name)
    study, storage = _open_study(task, options, storage_url, sampler, pruner, out)
    n_new = _queue_trials(study, options.n_trials, options.max_total_trials)
    progress = _Progress(study, n_new, options.progress_bar)
    try:
        if options.n_workers == 1:
            with _one_torch_thread():
                run_queued_trials(task, study, storage, on_trial=progress.step)
        else:
            _run_processes(task, options, storage_url, study_name, progress)
    finally:
        progress.close()
    write_report(study, out, task)
    if options.verbose:
        print(_summary(study, out))
    return study


def _open_study(
    task: TuningTask,
    options: StudyOptions,
    storage_url: str,
    sampler: optuna.samplers.BaseSampler,
    pruner: optuna.pruners.BasePruner,
    out: Path,
) -> tuple[optuna.Study, optuna.storages.BaseStorage]:
    """
    Create or resume the study and store the task in it; when that fails, remove the folders it created.

    :return: the study and the storage it was opened on
    """
    created = next((p for p in reversed([out, *out.parents]) if not p.exists()), None)  # the top folder we create
    try:
        out.mkdir(parents=True, exist_ok=True)
        storage = make_storage(storage_url, options.heartbeat_interval)
        study = optuna.create_study(
            study_name=options.name_for(task),
            storage=storage,
            sampler=sampler,
            pruner=pruner,
            direction="maximize",
            load_if_exists=True,
        )
        previous = study.user_attrs.get("task")
        if previous is not None and (previous["algo"], previous["env_id"]) != (task.algo, task.env_id):
            raise ConfigError(
                f"study '{study.study_name}' tunes {previous['algo']} on {previous['env_id']}, not {task.algo} on "
                f"{task.env_id}: choose another --study-name"
            )
    except BaseException:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise
    study.set_user_attr("task", task.to_dict())
    return study, storage


def _retried_numbers(trials: list[optuna.trial.FrozenTrial]) -> set[int]:
    return {t.system_attrs["failed_trial"] for t in trials if "failed_trial" in t.system_attrs}


def _queue_trials(study: optuna.Study, n_trials: int, max_total_trials: int | None) -> int:
    """Queue ``n_trials`` trials, fewer when the study would pass ``max_total_trials`` (retries not counted)."""
    trials = study.get_trials(deepcopy=False)
    existing = len(trials) - len(_retried_numbers(trials))
    n_new = n_trials if max_total_trials is None else max(0, min(n_trials, max_total_trials - existing))
    for _ in range(n_new):
        study.enqueue_trial({}, skip_if_exists=False)
    return n_new


def _count_finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=_FINISHED))


class _Progress:
    """A progress bar over this run's queued trials (no bar when off or when nothing was queued)."""

    def __init__(self, study: optuna.Study, total: int, show: bool) -> None:
        self.study, self.total, self.finished_before = study, total, _count_finished(study)
        self.bar = None
        if show and total > 0:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=f"{study.study_name} trials", unit="trial")

    def step(self) -> None:
        """One trial of this process finished."""
        if self.bar is not None:
            self.bar.update(1)

    def refresh(self) -> None:
        """Count the trials finished since the run started (by worker processes)."""
        if self.bar is not None:
            self.bar.n = min(self.total, _count_finished(self.study) - self.finished_before)
            self.bar.refresh()

    def close(self) -> None:
        """Show the final count and close the bar."""
        if self.bar is not None:
            self.bar.n = min(self.total, _count_finished(self.study) - self.finished_before)
            self.bar.close()


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Torch on one thread inside the block (trials are small; workers run in parallel instead)."""
    import torch as th

    threads = th.get_num_threads()
    th.set_num_threads(1)
    try:
        yield
    finally:
        th.set_num_threads(threads)


def _run_processes(task: TuningTask, options: StudyOptions, storage_url: str, study_name: str, progress: _Progress) -> None:
    """Run the queued trials in ``options.n_workers`` spawned processes, and wait for them."""
    ctx = multiprocessing.get_context("spawn")
    data = task.to_dict()
    workers = [
        ctx.Process(target=_worker_main, args=(data, options, storage_url, study_name, task.seed + 1 + i))
        for i in range(options.n_workers)
    ]
    for worker in workers:
        worker.start()
    try:
        while any(w.is_alive() for w in workers):
            time.sleep(0.5)
            progress.refresh()
    finally:
        for worker in workers:
            worker.join()


def _worker_main(task_data: dict[str, Any], options: StudyOptions, storage_url: str, study_name: str, seed: int) -> None:
    """A worker process: open the study and run queued trials (its sampler seeded with ``seed``)."""
    import torch as th

    th.set_num_threads(1)
    task = TuningTask.from_dict(task_data)
    storage = make_storage(storage_url, options.heartbeat_interval)
    study = optuna.load_study(
        study_name=study_name,
        storage=storage,
        sampler=make_sampler(options.sampler, seed, options.n_startup_trials),
        pruner=make_pruner(options.pruner, task.n_evaluations, options.n_startup_trials),
    )
    try:
        run_queued_trials(task, study, storage)
    except KeyboardInterrupt:
        pass


def _summary(study: optuna.Study, out: Path) -> str:
    """The line a verbose run prints: trials by state, the best value, where the outputs are."""
    trials = study.get_trials(deepcopy=False)
    states = [t.state for t in trials]
    counts = ", ".join(f"{s.name.lower()} {states.count(s)}" for s in (*_FINISHED, TrialState.WAITING) if states.count(s))
    best = f"; best value {study.best_value:.2f} (trial {study.best_trial.number})" if TrialState.COMPLETE in states else ""
    return f"Study '{study.study_name}': {counts}{best}; outputs in {out}"


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
    # Studies written before the task was stored whole kept part of it under "settings".
    stored = {**study.user_attrs.get("settings", {}), **study.user_attrs["task"]}
    params = frozen.user_attrs.get("params", frozen.params)  # fixed ones included
    task = TuningTask.from_dict({**stored, "search_space": {name: {"value": value} for name, value in params.items()}})
    fixed = optuna.trial.FixedTrial(dict(frozen.params), number=trial_number)  # searched values, as sampled
    with _one_torch_thread():
        evaluate_trial(task, fixed, int(frozen.system_attrs.get("failed_trial", trial_number)))
    return list(frozen.user_attrs["seed_values"]), list(fixed.user_attrs["seed_values"])
