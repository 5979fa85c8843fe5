"""Search spaces, in trial-friendly coordinates, and the converter back to zoo hyperparameters.

Every algorithm's default search space is part of its registry entry (``AlgoSpec.search_space``); a plug-in gives its own
there, through the entry-point group ``sb3_ext.search_spaces``, or with :func:`register_search_space`.

Parameters are sampled where search works well (log-scale rates, ``one_minus_gamma`` on a log scale, powers of two for
batch and rollout sizes, named network sizes) and :func:`to_hyperparams` turns them into the zoo-format hyperparameters
a config file holds, so a stored trial can always be turned back into a config (and exported as YAML).

Naming rules of the converter:

- ``one_minus_<key>`` gives ``<key> = 1 - value``;
- ``<key>_pow`` gives ``<key> = 2 ** value``;
- ``<kwargs>.<key>`` sets ``key`` in the keyword-arguments argument ``<kwargs>`` (``policy_kwargs.n_quantiles``);
- ``net_arch`` (``tiny``, ``small``, ``medium``, ``big``) and ``activation_fn`` (``tanh``, ``relu``, ``elu``,
  ``leaky_relu``) go into ``policy_kwargs``, by name;
- ``per_<key>`` goes into ``replay_buffer_kwargs`` (prioritized replay's ``per_alpha``, ``per_beta``);
- ``n_top_ratio`` gives ARS's ``n_top`` as a fraction of ``n_delta``;
- ``noise_type: none`` removes action noise;
- every other name is a hyperparameter as it is.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sb3_ext.common.safe_eval import safe_eval
from sb3_ext.common.search_space import Param
from sb3_ext.common.yaml_utils import read_yaml, to_expression
from sb3_ext.errors import ConfigError, suggest

if TYPE_CHECKING:
    import optuna

__all__ = [
    "ENTRY_POINT_GROUP",
    "NET_ARCHS",
    "Param",
    "get_search_space",
    "load_search_space",
    "parse_search_space",
    "register_search_space",
    "sample_params",
    "to_hyperparams",
]

NET_ARCHS: dict[str, list[int]] = {"tiny": [64], "small": [64, 64], "medium": [256, 256], "big": [400, 300]}
ACTIVATIONS: dict[str, str] = {"tanh": "nn.Tanh", "relu": "nn.ReLU", "elu": "nn.ELU", "leaky_relu": "nn.LeakyReLU"}


def sample_params(trial: optuna.Trial, space: Mapping[str, Param]) -> dict[str, Any]:
    """
    Sample every parameter of a search space.

    :param trial: the trial
    :param space: parameter name -> definition
    :return: the sampled values, in trial coordinates
    """
    return {name: param.suggest(trial, name) for name, param in space.items()}


def _kwargs(base: Any) -> dict[str, Any]:
    """A base entry's ``policy_kwargs`` / ``replay_buffer_kwargs`` (a dict or an expression string) as a dict."""
    if base is None:
        return {}
    if isinstance(base, str):
        base = safe_eval(base, "kwargs")
    return dict(base)


def to_hyperparams(
    params: Mapping[str, Any],
    base: Mapping[str, Any],
    on_policy: bool = False,
    defaults: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """
    Turn sampled parameters into zoo-format hyperparameters (what a config file holds), merged over a base entry.

    :param params: values in trial coordinates (see the module docstring for the naming rules)
    :param base: the config entry being tuned (its ``n_envs`` and ``policy_kwargs`` are taken into account)
    :param on_policy: the algorithm collects rollouts of ``n_steps`` per env (minibatches are then clipped to a rollout)
    :param defaults: the algorithm's constructor defaults (:func:`sb3_ext.config.constructor_defaults`), for values
        that neither the parameters nor the base entry give (``n_steps``, ``n_delta``)
    :return: the hyperparameters to apply over ``base``
    """
    defaults = defaults or {}

    def current(key: str) -> Any:
        """The value ``key`` will have: sampled, else the base entry's, else the constructor's default."""
        return out.get(key, base.get(key, defaults.get(key)))

    out: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for name, value in params.items():
        if name != "n_top_ratio":  # needs n_delta: below
            _convert(name, value, out, nested)
    if out.get("noise_type", "") is None:
        out["noise_std"] = None
    if "n_top_ratio" in params and current("n_delta") is not None:
        out["n_top"] = max(1, math.ceil(params["n_top_ratio"] * int(current("n_delta"))))
    if "train_freq" in params and "gradient_steps" not in params and "gradient_steps" in base:
        out["gradient_steps"] = out["train_freq"]
    if on_policy and "batch_size" in out and current("n_steps") is not None:
        # On-policy minibatches cannot be larger than a rollout (n_steps * n_envs).
        out["batch_size"] = min(out["batch_size"], int(current("n_steps")) * int(base.get("n_envs", 1)))
    for key, values in nested.items():
        if values:
            out[key] = to_expression({**_kwargs(base.get(key)), **values})
    return out


def _target(name: str) -> tuple[str | None, str]:
    """
    Where a parameter goes, by the naming rules of the module docstring.

    :return: the keyword-arguments argument it goes into (``policy_kwargs``, ...) or None, and the key it sets
    """
    if name.startswith("one_minus_"):
        return None, name.removeprefix("one_minus_")
    if name.endswith("_pow"):
        return None, name.removesuffix("_pow")
    if "." in name:
        outer, inner = name.split(".", 1)
        return outer, inner
    if name in ("net_arch", "activation_fn"):
        return "policy_kwargs", name
    if name.startswith("per_"):
        return "replay_buffer_kwargs", name.removeprefix("per_")
    if name == "n_top_ratio":
        return None, "n_top"
    return None, name


def _convert(name: str, value: Any, out: dict[str, Any], nested: dict[str, dict[str, Any]]) -> None:
    """Apply the naming rules of the module docstring to one parameter."""
    if name == "noise_type" and value == "none":
        out["noise_type"], out["noise_std"] = None, None
        return
    if name.startswith("one_minus_"):
        value = 1.0 - value
    elif name.endswith("_pow"):
        value = 2 ** int(value)
    elif name == "net_arch" and isinstance(value, str):
        value = NET_ARCHS[value]
    elif name == "activation_fn":
        value = safe_eval(ACTIVATIONS[value], "activation_fn")
    outer, key = _target(name)
    if outer is None:
        out[key] = value
    else:
        nested.setdefault(outer, {})[key] = value


def load_search_space(path: str | Path, algo: str, base: Mapping[str, Param] | None = None) -> dict[str, Param]:
    """
    Read a search space from YAML: per parameter either a fixed value, or a mapping with ``type``
    (``float``/``int``/``categorical``), ``low``/``high``/``log`` or ``choices``, or ``value`` (fixed).
    Listed parameters replace the default ones; the top-level key ``extend: false`` drops the unlisted defaults.

    :param path: the YAML file
    :param algo: registry key (its default space is the base)
    :param base: the space to extend (default: the algorithm's, :func:`get_search_space`)
    :return: the search space
    :raises ConfigError: naming the file and parameter for anything malformed
    """
    path = Path(path)
    return parse_search_space(read_yaml(path, "search-space"), algo, f"{path}:", base)


def parse_search_space(data: Any, algo: str, where: str, base: Mapping[str, Param] | None = None) -> dict[str, Param]:
    """
    A search space in the format of a ``--search-space`` YAML file (see :func:`load_search_space`), already read.

    :param data: the mapping of parameter names to definitions
    :param algo: registry key (its default space is the base, when there is one)
    :param where: what to name in errors (the file, or the package)
    :param base: the space to extend (default: the algorithm's)
    :return: the search space
    :raises ConfigError: naming ``where`` and the parameter for anything malformed
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where.rstrip(':')}: expected a mapping of parameter names to definitions")
    data = dict(data)
    extend = data.pop("extend", True)
    if not isinstance(extend, bool):
        raise ConfigError(f"{where.rstrip(':')}: 'extend' must be true or false, got {extend!r}")
    if base is None:
        base = _registered_space(algo) or {}
    space = dict(base) if extend else {}
    for name, spec in data.items():
        space[str(name)] = Param.from_dict(str(name), spec, where)
    if not any(p.fixed is None for p in space.values()):
        raise ConfigError(f"{where.rstrip(':')}: nothing left to search (every parameter is fixed)")
    return space


#: Entry-point group of third-party search spaces: entry name = registry key, object = a ``--search-space`` mapping
ENTRY_POINT_GROUP = "sb3_ext.search_spaces"
_loaded_entry_points: set[str] = set()


def _target_argument(name: str) -> str:
    """The constructor argument (or config key) a search-space parameter sets, by the naming rules above."""
    outer, key = _target(name)
    return outer or key


def _check_targets(key: str, space: Mapping[str, Param], where: str) -> None:
    """:raises ConfigError: for a parameter that sets no argument of the algorithm's constructor (nor a config key)"""
    from sb3_ext.config import ENV_KEYS, constructor_types
    from sb3_ext.registry import get_algo

    arguments = set(constructor_types(get_algo(key).cls)) | set(ENV_KEYS)
    for name in space:
        if _target_argument(name) not in arguments:
            raise ConfigError(
                f"{where}: parameter '{name}' sets '{_target_argument(name)}', which {key}'s constructor does not take"
                f"{suggest(_target_argument(name), arguments)}"
            )


def register_search_space(key: str, space: Mapping[str, Any], *, where: str | None = None) -> dict[str, Param]:
    """
    Make ``space`` the default search space of algorithm ``key`` (what ``python -m tuning --algo KEY`` searches): it
    replaces the ``search_space`` of the algorithm's :class:`~sb3_ext.AlgoSpec` in the registry.

    :param key: registry key of the algorithm (registered already, or by an entry point)
    :param space: the space, in the format of a ``--search-space`` YAML file (``extend`` is not used)
    :param where: who gives it, for errors (default: the key)
    :return: the parsed space
    :raises ConfigError: for a malformed space, or a parameter that sets no argument of the algorithm's constructor
    """
    from sb3_ext.registry import get_algo, register_algo

    where = where or f"search space of '{key}'"
    parsed = parse_search_space({**space, "extend": False}, key, f"{where}:", base={})
    _check_targets(key, parsed, where)
    register_algo(dataclasses.replace(get_algo(key), search_space=parsed), replace=True)
    _checked.add(key)
    return parsed


_checked: set[str] = set()  # keys whose registered space was checked against the constructor


def _registered_space(key: str) -> dict[str, Param] | None:
    """The algorithm's search space: a plug-in's entry point for it (loaded once), else its spec's."""
    from sb3_ext.registry import get_algo

    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.name != key or entry_point.name in _loaded_entry_points:
            continue
        _loaded_entry_points.add(entry_point.name)
        package = entry_point.dist.name if entry_point.dist is not None else entry_point.value.split(":")[0]
        register_search_space(key, entry_point.load(), where=f"package {package}, search space '{key}'")
    spec = get_algo(key)
    if spec.search_space is None:
        return None
    if key not in _checked:
        _check_targets(key, spec.search_space, f"search space of '{key}' ({spec.cls.__module__}.{spec.cls.__name__})")
        _checked.add(key)
    return dict(spec.search_space)


def get_search_space(key: str) -> dict[str, Param]:
    """
    :param key: registry key
    :return: its default search space (ours, one given to :func:`register_search_space`, or a plug-in's entry point)
    :raises ConfigError: when it has none
    """
    space = _registered_space(key)
    if space is None:
        raise ConfigError(f"no search space for '{key}': pass one with --search-space (or register one for it)")
    return space
