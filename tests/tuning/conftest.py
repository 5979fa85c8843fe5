"""Fixtures of the tuning tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

# A narrow PPO search space whose trials take about a second on CartPole-v1.
FAST_SPACE = """
extend: false
learning_rate: {type: float, low: 1.0e-4, high: 3.0e-3, log: true}
one_minus_gamma: {type: float, low: 0.001, high: 0.1, log: true}
n_steps_pow: 5
batch_size_pow: 6
n_epochs: 2
net_arch: tiny
"""


@pytest.fixture
def fast_space(tmp_path: Path) -> Callable[[str], str]:
    """Write the fast search space (plus extra YAML lines) and return its path."""

    def write(extra: str = "") -> str:
        path = tmp_path / "space.yml"
        path.write_text(FAST_SPACE + extra)
        return str(path)

    return write
