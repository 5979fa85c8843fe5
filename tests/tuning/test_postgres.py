"""A real PostgreSQL server (Debian's ``postgresql`` package, installed by ``.ci/run``) serves a study for 3 worker
processes; one worker killed with SIGKILL mid-trial leaves its trial FAIL by heartbeat, and the study still completes."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import optuna
import pytest

BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
pytestmark = [
    pytest.mark.skipif(
        not BIN and not shutil.which("initdb"), reason="PostgreSQL server binaries not installed (.ci/run installs them)"
    ),
    pytest.mark.slow,  # (a server and worker processes)
]


def _pg(command: str) -> str:
    return os.path.join(BIN[-1], command) if BIN else shutil.which(command) or command


def _as_server_user(args: list[str]) -> list[str]:
    # The server refuses to run as root: use the package's 'postgres' user then.
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def postgres_url() -> Iterator[str]:
    folder = Path(tempfile.mkdtemp(prefix="sb3ext-pg-"))
    data, port = folder / "data", _free_port()
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    subprocess.run(
        _as_server_user([_pg("initdb"), "-D", str(data), "--auth=trust", "-U", "postgres"]), check=True, capture_output=True
    )
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"
    start = [_pg("pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start"]
    subprocess.run(_as_server_user(start), check=True, capture_output=True)
    try:
        create = [_pg("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "optuna"]
        subprocess.run(_as_server_user(create), check=True, capture_output=True)
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/optuna"
    finally:
        subprocess.run(_as_server_user([_pg("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]), capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def test_three_workers_one_killed(
    postgres_url: str,
    tmp_path: Path,
    fast_space: Callable[[str], str],
    check_retried_once: Callable[..., None],
    running_trial: Callable[..., optuna.trial.FrozenTrial],
) -> None:
    space = fast_space("")
    optuna.storages.RDBStorage(postgres_url)  # create the schema once, as a first machine would
    argv = [
        *(sys.executable, "-m", "tuning", "--algo", "ppo", "--env", "CartPole-v1", "--study-name", "pg"),
        *("--storage", postgres_url, "--n-trials", "2", "--n-timesteps", "6000", "--n-evaluations", "3"),
        *("--eval-episodes", "2", "--pruner", "none", "--search-space", str(space), "--heartbeat-interval", "1"),
        "--no-progress-bar",
    ]
    workers = [subprocess.Popen([*argv, "--output-folder", str(tmp_path / f"w{i}")]) for i in range(3)]
    victim = workers[0]
    killed = running_trial(postgres_url, "pg", victim.pid)
    time.sleep(0.5)  # well inside the trial
    victim.send_signal(signal.SIGKILL)
    for worker in workers[1:]:
        assert worker.wait(timeout=300) == 0
    victim.wait()

    trials = optuna.load_study(study_name="pg", storage=postgres_url).trials
    # 3 runs x 2 trials: all 6 completed (the killed one through its retry), nothing left queued or running.
    check_retried_once(trials, killed.number, 6)
