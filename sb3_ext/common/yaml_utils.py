"""YAML in and out: files read with the safe loader, ``key=value`` values parsed as YAML reads them, and values written
back as config files hold them (classes as expression strings that :func:`~sb3_ext.common.safe_eval.safe_eval` reads).

Shared by the configs (:mod:`sb3_ext.config`), the command lines and the search spaces of ``tuning``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch as th
import yaml
from stable_baselines3.common.utils import LinearSchedule

from sb3_ext.errors import ConfigError

__all__ = ["parse_value", "read_yaml", "to_expression", "to_yaml_value"]


def read_yaml(path: str | Path, what: str = "config") -> Any:
    """
    Read a YAML file with the safe loader.

    :param path: the file
    :param what: what the file is, for the message of a missing file (``"config"``, ``"search-space"``)
    :return: the parsed document
    :raises ConfigError: for a missing file, or malformed YAML (with line and column)
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such {what} file")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: malformed YAML{where}: {problem}") from None


def parse_value(text: str) -> Any:
    """
    Parse one ``key=value`` override as YAML would read it (``0.001``, ``lin_0.001``, ``[1, "episode"]``, ``true``).
    Strings that need evaluation (``"dict(net_arch=[64])"``) are evaluated later, safely, as config strings are.

    :param text: the value text
    :return: the value
    """
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def to_expression(value: Any) -> str:
    """
    Write a value as a config expression string that :func:`~sb3_ext.common.safe_eval.safe_eval` reads back
    (classes as dotted paths, dicts as ``dict(...)``).

    :param value: literals, lists, tuples, dicts and classes
    :return: the expression
    """
    if isinstance(value, type):
        module, name = value.__module__, value.__qualname__
        if module.startswith("torch.nn.") and getattr(th.nn, name, None) is value:
            return f"nn.{name}"  # as rl-baselines3-zoo writes them, and its eval namespace knows
        return f"{module}.{name}"
    if isinstance(value, dict):
        if all(isinstance(k, str) and k.isidentifier() for k in value):
            return "dict(" + ", ".join(f"{k}={to_expression(v)}" for k, v in value.items()) + ")"
        return "{" + ", ".join(f"{to_expression(k)}: {to_expression(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(to_expression(v) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + ", ".join(to_expression(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return repr(_plain(value))


def to_yaml_value(value: Any) -> Any:
    """
    A config value as a YAML file holds it: a value that holds a class as one expression string (:func:`to_expression`),
    tuples as lists, numpy scalars as numbers, SB3 linear schedules to zero as ``lin_<initial value>``.

    :param value: a config value
    :return: what ``yaml.safe_dump`` writes for it
    """
    if _has_class(value):
        return to_expression(value)
    if isinstance(value, dict):
        return {k: to_yaml_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_yaml_value(v) for v in value]
    return _plain(value)


def _has_class(value: Any) -> bool:
    if isinstance(value, type):
        return True
    if isinstance(value, dict):
        return any(_has_class(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_class(v) for v in value)
    return False


def _plain(value: Any) -> Any:
    """Turn numpy scalars and SB3 schedules back into what a config file holds."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, LinearSchedule) and value.end == 0.0 and value.end_fraction == 1.0:
        return f"lin_{value.start}"
    return value
