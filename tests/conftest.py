"""Shared test fixtures."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import torch as th


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> None:
    # Same results on every machine, and no oversubscription of the 2 CI cores.
    th.set_num_threads(1)


@pytest.fixture(autouse=True, scope="session")
def _sb3_log_folder(tmp_path_factory: pytest.TempPathFactory) -> None:
    # SB3 makes a new empty folder in the system's temp directory at each learn() without a log folder: one folder
    # under pytest's temp directory instead (inherited by the CLI subprocesses), so runs leave nothing behind.
    os.environ.setdefault("SB3_LOGDIR", str(tmp_path_factory.mktemp("sb3_logs")))


@pytest.fixture
def kill_train(tmp_path: Path) -> Callable[[Sequence[str], Callable[[Path], bool]], Path]:
    """
    Start ``python -m sb3_ext train ARGS --log-folder <tmp>/killed`` in a process of its own, wait until its run
    folder is ``ready``, and kill it with SIGKILL there, as a crash would.

    The function takes the train arguments and ``ready(run_folder) -> bool`` (polled every 50 ms once the run folder
    exists), and returns the run folder, left as the crash left it. It fails when the run ends, or 180 s pass, first.
    """
    log_folder = tmp_path / "killed"

    def kill(args: Sequence[str], ready: Callable[[Path], bool]) -> Path:
        command = [sys.executable, "-m", "sb3_ext", "train", *args, "--log-folder", str(log_folder)]
        with open(tmp_path / "killed.stderr", "w+") as stderr:  # (a file: a full pipe would block the run)
            proc = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=stderr, env={**os.environ, "OMP_NUM_THREADS": "1"}
            )
            deadline, found = time.monotonic() + 180, None
            try:
                while found is None and time.monotonic() < deadline and proc.poll() is None:
                    runs = [run for run in log_folder.glob("*/*") if (run / "run.yml").is_file()]
                    if runs and ready(runs[0]):
                        found = runs[0]
                    else:
                        time.sleep(0.05)
            finally:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
            stderr.seek(0)
            assert found is not None, f"the run was not ready within 180 s, or ended first (exit code {proc.returncode}): " + (
                stderr.read()
            )
        return found

    return kill
