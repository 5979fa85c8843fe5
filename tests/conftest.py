"""Shared test fixtures."""

from __future__ import annotations

import pytest
import torch as th


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> None:
    # Same results on every machine, and no oversubscription of the 2 CI cores.
    th.set_num_threads(1)
