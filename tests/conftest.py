"""Shared test fixtures."""

from __future__ import annotations

import os

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
