"""Runner convention for benchmarks: each script measures our code and its SB3 anchor side by side in one run,
prints one JSON object, and records its row (with the command that produced it) in benchmarks/RESULTS.md, which holds
one current row per benchmark: a new measurement replaces the row of the same benchmark (history is in git)."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import gymnasium as gym
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.callbacks import EvalCallback
    from stable_baselines3.common.vec_env import VecEnv

    from sb3_ext.config import ZooConfig

T = TypeVar("T")

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
ROOT = RESULTS.parent.parent
_HEADER = [
    "# Benchmark results",
    "",
    "Each benchmark in this folder measures sb3-ext and its SB3 anchor side by side in one run, prints JSON and records",
    "its row here: one current row per benchmark, the one that holds for the code (a new run replaces the row of the same",
    "benchmark; earlier rows are in git's history). Run them from the repository root with the project's virtual",
    "environment (`.venv/bin/python benchmarks/<script>.py`).",
    "",
    "| date | benchmark | result | command |",
    "|---|---|---|---|",
]


def _command() -> str:
    """The command line that ran this benchmark, with the script's path relative to the repository root."""
    script = Path(sys.argv[0]).resolve()
    path = script.relative_to(ROOT).as_posix() if script.is_relative_to(ROOT) else script.name
    return " ".join(["python", path, *sys.argv[1:]])


def record_row(name: str, summary: str, command: str) -> None:
    """
    Put the row of benchmark ``name`` in RESULTS.md: in place of its current row, or at the end of the table.

    :param name: benchmark name (the table's second column)
    :param summary: the figures
    :param command: the command that produced them
    """
    row = f"| {time.strftime('%Y-%m-%d')} | {name} | {summary} | `{command}` |"
    lines = RESULTS.read_text().splitlines() if RESULTS.exists() else list(_HEADER)
    same = [i for i, line in enumerate(lines) if line.startswith("| ") and line.split(" | ")[1:2] == [name]]
    if same:
        lines[same[0]] = row
        lines = [line for i, line in enumerate(lines) if i not in same[1:]]
    else:
        lines.append(row)
    RESULTS.write_text("\n".join(lines) + "\n")


#: What a benchmark's figures depend on: a stored run is reused only while none of these has changed
CODE_PATHS = ("sb3_ext", "zoo_configs", "benchmarks/*.py", "pyproject.toml", "constraints.txt")
#: Where :func:`run_jobs` keeps the finished runs of each script (``<script>.jsonl``), ignored by git
RUNS_DIR = RESULTS.parent / ".runs"


def code_version() -> str:
    """
    :return: the last commit that changed :data:`CODE_PATHS`, with a hash of their uncommitted changes when there are
        any (``"unknown"`` outside a git checkout)
    """

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout

    try:
        commit = git("log", "-1", "--format=%H", "--", *CODE_PATHS).strip()
        diff = git("diff", "HEAD", "--", *CODE_PATHS) + git("ls-files", "--others", "--exclude-standard", "--", *CODE_PATHS)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}+{hashlib.sha1(diff.encode()).hexdigest()[:12]}" if diff else commit


def _job_key(job: dict[str, Any]) -> str:
    return json.dumps(job, sort_keys=True)


def run_jobs(fn: Callable[..., T], jobs: Sequence[dict[str, Any]], workers: int, store: bool = True) -> list[T]:
    """
    Run independent single-threaded jobs ``fn(**job)`` on ``workers`` processes (each result is the same as run alone).

    With ``store``, each finished job's result is appended to ``benchmarks/.runs/<script>.jsonl`` as soon as it is
    known, with :func:`code_version`, and jobs already stored for the same code version are not run again: a long
    benchmark that is interrupted, or spread over several sessions, goes on from where it stopped when given the same
    command again.

    :param fn: a module-level function (processes are spawned), returning JSON-serialisable results
    :param jobs: its keyword arguments, one dict per job
    :param workers: processes
    :param store: keep and reuse finished runs
    :return: the results, in the order of ``jobs``
    """
    version = code_version() if store else "unknown"
    keep, path = version != "unknown", RUNS_DIR / f"{Path(sys.argv[0]).stem}.jsonl"
    done: dict[str, Any] = {}
    if keep and path.is_file():
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            if entry["version"] == version and entry["fn"] == fn.__name__:
                done[_job_key(entry["job"])] = entry["result"]
    todo = [job for job in jobs if _job_key(job) not in done]
    if len(todo) < len(jobs):
        print(f"{len(jobs) - len(todo)} of {len(jobs)} runs already done for this code ({path}), {len(todo)} to go")
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(fn, **job): job for job in todo}
        for future in as_completed(futures):
            job, result = futures[future], future.result()
            done[_job_key(job)] = result
            if keep:
                path.parent.mkdir(exist_ok=True)
                with path.open("a") as f:
                    f.write(json.dumps({"version": version, "fn": fn.__name__, "job": job, "result": result}) + "\n")
    return [done[_job_key(job)] for job in jobs]


def timed(fn: Callable[[], Any]) -> float:
    """:return: wall seconds of one call of ``fn``"""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def evaluate(model: BaseAlgorithm, env: gym.Env, episodes: int) -> float:
    """:return: the mean return of ``episodes`` deterministic episodes (SB3's ``evaluate_policy``)"""
    import numpy as np
    from stable_baselines3.common.evaluation import evaluate_policy

    returns, _ = evaluate_policy(
        model, env, n_eval_episodes=episodes, deterministic=True, return_episode_rewards=True, warn=False
    )
    return float(np.mean(returns))


def eval_callback(env: gym.Env | VecEnv, freq: int, episodes: int, stop_at: float | None = None) -> EvalCallback:
    """
    SB3's ``EvalCallback``: ``episodes`` deterministic episodes every ``freq`` callback steps (env steps divided by
    ``n_envs``), nothing written; :func:`evaluations` gives its results.

    :param env: the evaluation env (wrapped as the training env where that has ``VecNormalize``)
    :param freq: callback steps between evaluations
    :param episodes: episodes per evaluation
    :param stop_at: stop training after the first evaluation whose mean return reaches this (None: never)
    :return: the callback
    """
    from stable_baselines3.common.callbacks import BaseCallback, EvalCallback

    class Record(BaseCallback):  # EvalCallback keeps its results only when it writes them to a file
        def __init__(self) -> None:
            super().__init__()
            self.results: list[tuple[int, float]] = []

        def _on_step(self) -> bool:
            mean = float(self.parent.last_mean_reward)  # type: ignore[union-attr]
            self.results.append((self.num_timesteps, mean))
            return stop_at is None or mean < stop_at

    return EvalCallback(
        env, eval_freq=freq, n_eval_episodes=episodes, callback_after_eval=Record(), deterministic=True, warn=False, verbose=0
    )


def evaluations(callback: EvalCallback) -> list[tuple[int, float]]:
    """:return: ``(timestep, mean return)`` of each evaluation an :func:`eval_callback` made, in order"""
    return list(callback.callback.results)  # type: ignore[union-attr]


def anchor_config(algo: str, env_id: str) -> ZooConfig:
    """
    An algorithm's zoo config for an env: ours (``zoo_configs/``) where it has an entry for the env, else rl_zoo3's
    tuned entry (never a ``default`` entry: an anchor runs with tuned values or not at all).

    :param algo: registry key
    :param env_id: gymnasium id
    :return: the config
    """
    from sb3_ext.config import default_config_path, load_zoo_config, read_yaml

    if env_id in read_yaml(default_config_path(algo)):
        return load_zoo_config(algo, env_id)
    import rl_zoo3

    zoo_file = Path(rl_zoo3.__file__).parent / "hyperparams" / f"{algo}.yml"
    if env_id not in read_yaml(zoo_file):
        raise ValueError(f"neither zoo_configs/{algo}.yml nor rl_zoo3 has a tuned {algo} entry for {env_id}")
    return load_zoo_config(algo, env_id, zoo_file)


def interleaved(runs: dict[str, Callable[[], T]], rounds: int) -> dict[str, list[T]]:
    """
    Call every run once per round, in the given order on even rounds and in reverse on odd ones, so that no run
    always goes first (warm caches, turbo) when our code and its anchor are measured side by side.

    :param runs: name -> a call that measures once and returns its figure
    :param rounds: number of rounds
    :return: name -> the figures of its calls, in round order
    """
    results: dict[str, list[T]] = {name: [] for name in runs}
    order = list(runs.items())
    for i in range(rounds):
        for name, run in order if i % 2 == 0 else order[::-1]:
            results[name].append(run())
    return results


def report(name: str, result: dict[str, Any], summary: str, record: bool = True) -> None:
    """
    Print the result as JSON and record its row in RESULTS.md (replacing the benchmark's previous row).

    :param name: benchmark name (the section it belongs to)
    :param result: the measured figures
    :param summary: one line with the figures and the ratio, for the table
    :param record: record the row in RESULTS.md (off for smoke runs)
    """
    result = {
        "benchmark": name,
        **result,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
    }
    print(json.dumps(result, indent=2))
    if record:
        record_row(name, summary, _command())
