"""The algorithm registry: one entry per key, the same keys rl-baselines3-zoo uses.

Configs, the CLI and tuning look algorithms up here only, so every algorithm is treated alike. Other packages add
theirs with :func:`register_algo`, or declare them in the entry-point group ``sb3_ext.algorithms`` (entry name = key,
object = an :class:`AlgoSpec`), which :func:`get_algo` and :func:`algo_keys` load when first needed::

    [project.entry-points."sb3_ext.algorithms"]
    aux_ppo = "acme_rl:SPEC"
"""

from __future__ import annotations

import importlib.metadata
import warnings

from sb3_ext.common.algo_spec import SB3_RANGES, AlgoSpec, Conformance, Range
from sb3_ext.d3qn.spec import SPEC as D3QN_SPEC
from sb3_ext.errors import Sb3ExtError, UnknownAlgorithmError, suggest
from sb3_ext.per.spec import SPECS as PER_SPECS
from sb3_ext.qlearning.spec import SPEC as QLEARNING_SPEC
from sb3_ext.rainbow.spec import SPEC as RAINBOW_SPEC
from sb3_ext.reinforce.spec import SPEC as REINFORCE_SPEC
from sb3_ext.upstream import SB3_CONTRIB_SPECS, SB3_SPECS

__all__ = [
    "ALGOS",
    "ENTRY_POINT_GROUP",
    "SB3_RANGES",
    "AlgoSpec",
    "Conformance",
    "Range",
    "algo_keys",
    "get_algo",
    "register_algo",
]

#: Entry-point group of third-party algorithms: entry name = registry key, object = an :class:`AlgoSpec`
ENTRY_POINT_GROUP = "sb3_ext.algorithms"

#: Every algorithm by key: Stable-Baselines3's, sb3-contrib's, sb3-ext's (each folder's ``spec.py``, the prioritized
#: variants' in ``sb3_ext/per/``), then plug-ins'
ALGOS: dict[str, AlgoSpec] = {
    spec.key: spec
    for spec in (*SB3_SPECS, *SB3_CONTRIB_SPECS, D3QN_SPEC, QLEARNING_SPEC, RAINBOW_SPEC, REINFORCE_SPEC, *PER_SPECS)
}


def register_algo(spec: AlgoSpec, *, replace: bool = False) -> None:
    """
    Add an algorithm to the registry, so configs, both CLIs and tuning know it by ``spec.key``.

    :param spec: what the registry knows of it
    :param replace: replace an algorithm registered under the same key (otherwise that is an error)
    :raises Sb3ExtError: for a key registered already, or a ``spec`` that is not an :class:`AlgoSpec`
    """
    if not isinstance(spec, AlgoSpec):
        raise Sb3ExtError(f"register_algo takes an sb3_ext.AlgoSpec, got {type(spec).__name__}")
    current = ALGOS.get(spec.key)
    if current is not None and current != spec and not replace:
        raise Sb3ExtError(
            f"algorithm '{spec.key}' is registered already ({current.cls.__module__}.{current.cls.__name__}): "
            f"pass replace=True to replace it with {spec.cls.__module__}.{spec.cls.__name__}"
        )
    ALGOS[spec.key] = spec


_loaded_entry_points: set[str] = set()


def _load_entry_points() -> None:
    """Register the algorithms declared in :data:`ENTRY_POINT_GROUP` (once each); one that fails is reported and skipped."""
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.name in _loaded_entry_points:
            continue
        _loaded_entry_points.add(entry_point.name)
        package = entry_point.dist.name if entry_point.dist is not None else entry_point.value.split(":")[0]
        try:
            spec = entry_point.load()
            if not isinstance(spec, AlgoSpec) or spec.key != entry_point.name:
                raise Sb3ExtError(f"'{entry_point.value}' must be an sb3_ext.AlgoSpec with key '{entry_point.name}'")
            register_algo(spec)
        except Exception as exc:  # a broken plug-in leaves every other algorithm usable
            warnings.warn(f"sb3-ext: algorithm '{entry_point.name}' of package {package} is not available: {exc}")


def algo_keys() -> list[str]:
    """:return: every registry key, those of installed plug-ins included, sorted"""
    _load_entry_points()
    return sorted(ALGOS)


def get_algo(key: str) -> AlgoSpec:
    """
    Look an algorithm up by its registry key (loading plug-ins' entry points when the key is not known yet).

    :param key: the key, e.g. ``"ppo"``
    :return: its :class:`AlgoSpec`
    :raises UnknownAlgorithmError: listing the valid keys and suggesting the nearest one
    """
    if key not in ALGOS:
        _load_entry_points()
    try:
        return ALGOS[key]
    except KeyError:
        raise UnknownAlgorithmError(
            f"unknown algorithm '{key}'{suggest(key, ALGOS)} (valid: {', '.join(sorted(ALGOS))})"
        ) from None
