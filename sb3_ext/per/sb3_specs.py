"""Registry entries of prioritized variants."""

from __future__ import annotations

from sb3_ext.common.algo_spec import AlgoSpec

__all__ = ["SPECS"]

SPECS: tuple[AlgoSpec, ...] = ()
