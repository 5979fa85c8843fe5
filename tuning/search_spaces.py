"""Search spaces for every registry key, in trial-friendly coordinates, and the converter back to zoo hyperparameters.

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

import importlib.metadata
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any


from sb3_ext.common.safe_eval import safe_eval
from sb3_ext.common.yaml_utils import read_yaml, to_expression
from sb3_ext.errors import ConfigError, suggest

if TYPE_CHECKING:
    import optuna

__all__ = [
    "ENTRY_POINT_GROUP",
    "NET_ARCHS",
    "SEARCH_SPACES",
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
_KINDS = ("float", "int", "categorical")


@dataclass(frozen=True)
class Param:
    """
    One searched (or fixed) parameter.

    :param kind: ``"float"``, ``"int"`` or ``"categorical"`` (ignored when ``fixed`` is set)
    :param low: lower bound (float/int)
    :param high: upper bound (float/int), > low
    :param log: sample on a log scale (float/int, low > 0)
    :param choices: the values of a categorical
    :param fixed: a value used as it is, without searching
    """

    kind: str = "float"
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = field(default_factory=tuple)
    fixed: Any = None

    def check(self, name: str) -> None:
        """:raises ConfigError: when the definition is inconsistent, naming the parameter"""
        if self.fixed is not None:
            return
        if self.kind not in _KINDS:
            raise ConfigError(f"{name}: unknown type '{self.kind}' (use float, int or categorical)")
        if self.kind == "categorical":
            if not self.choices:
                raise ConfigError(f"{name}: a categorical needs a non-empty 'choices' list")
            return
        if self.low is None or self.high is None:
            raise ConfigError(f"{name}: a {self.kind} needs 'low' and 'high'")
        if self.low >= self.high:
            raise ConfigError(f"{name}: low must be < high, got low={self.low}, high={self.high}")
        if self.log and self.low <= 0:
            raise ConfigError(f"{name}: a log-scale range needs low > 0, got low={self.low}")

    def to_dict(self) -> dict[str, Any]:
        """:return: the definition in the format of a ``--search-space`` YAML file (what :meth:`from_dict` reads)"""
        if self.fixed is not None:
            return {"value": self.fixed}
        if self.kind == "categorical":
            return {"type": "categorical", "choices": list(self.choices)}
        return {"type": self.kind, "low": self.low, "high": self.high, "log": self.log}

    @classmethod
    def from_dict(cls, name: str, spec: Any, where: str = "search space:") -> Param:
        """
        :param name: the parameter's name, for errors
        :param spec: a definition in the format of a ``--search-space`` YAML file (a mapping, or a fixed value)
        :param where: what to name in errors before the parameter (a file, a package)
        :return: the parameter
        :raises ConfigError: naming ``where`` and the parameter when the definition is malformed
        """
        return _param_from_yaml(name, spec, where)

    def suggest(self, trial: optuna.Trial, name: str) -> Any:
        """
        :param trial: the trial
        :param name: parameter name
        :return: the sampled (or fixed) value
        """
        if self.fixed is not None:
            return self.fixed
        if self.kind == "categorical":
            return trial.suggest_categorical(name, list(self.choices))
        assert self.low is not None and self.high is not None  # checked
        if self.kind == "int":
            return trial.suggest_int(name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(name, float(self.low), float(self.high), log=self.log)


def _f(low: float, high: float, log: bool = False) -> Param:
    return Param("float", low, high, log)


def _i(low: int, high: int) -> Param:
    return Param("int", low, high)


def _c(*choices: Any) -> Param:
    return Param("categorical", choices=choices)


_ON_POLICY = {
    "learning_rate": _f(1e-5, 3e-3, log=True),
    "one_minus_gamma": _f(1e-4, 0.1, log=True),
    "n_steps_pow": _i(3, 11),
    "one_minus_gae_lambda": _f(1e-3, 0.2, log=True),
    "net_arch": _c("tiny", "small", "medium"),
    "activation_fn": _c("tanh", "relu"),
}
_PPO = {
    **_ON_POLICY,
    "batch_size_pow": _i(3, 9),
    "n_epochs": _c(1, 5, 10, 20),
    "clip_range": _c(0.1, 0.2, 0.3),
    "ent_coef": _f(1e-8, 0.1, log=True),
    "max_grad_norm": _f(0.3, 5.0, log=True),
}
_Q_VALUE = {
    "learning_rate": _f(1e-5, 1e-2, log=True),
    "one_minus_gamma": _f(1e-4, 0.1, log=True),
    "batch_size_pow": _i(4, 8),
    "buffer_size": _c(10_000, 50_000, 100_000),
    "learning_starts": _c(0, 1000, 5000),
    "exploration_fraction": _f(0.0, 0.5),
    "exploration_final_eps": _f(0.0, 0.2),
    "target_update_interval": _c(1, 100, 1000, 5000),
    "train_freq": _c(1, 4, 8, 16),
    "gradient_steps": _c(-1, 1),
    "net_arch": _c("tiny", "small", "medium"),
}
_ACTOR_CRITIC = {
    "learning_rate": _f(1e-5, 1e-2, log=True),
    "one_minus_gamma": _f(1e-4, 0.1, log=True),
    "batch_size_pow": _i(5, 9),
    "buffer_size": _c(10_000, 100_000, 1_000_000),
    "learning_starts": _c(0, 1000, 10_000),
    "train_freq": _c(1, 4, 8, 16, 32),
    "tau": _c(0.001, 0.005, 0.01, 0.02, 0.05),
    "net_arch": _c("small", "medium", "big"),
}
_NOISE = {"noise_type": _c("normal", "ornstein-uhlenbeck", "none"), "noise_std": _f(0.0, 1.0)}

#: The default search space of every registry key.
SEARCH_SPACES: dict[str, dict[str, Param]] = {
    "a2c": {
        **_ON_POLICY,
        "ent_coef": _f(1e-8, 0.1, log=True),
        "max_grad_norm": _f(0.3, 5.0, log=True),
        "vf_coef": _f(0.2, 1.0),
        "normalize_advantage": _c(False, True),
    },
    "ppo": _PPO,
    "ppo_lstm": {**_PPO, "policy_kwargs.lstm_hidden_size": _c(16, 32, 64, 128)},
    "trpo": {
        **_ON_POLICY,
        "batch_size_pow": _i(3, 9),
        "n_critic_updates": _c(5, 10, 20),
        "target_kl": _c(0.1, 0.05, 0.03, 0.02, 0.01),
    },
    "dqn": _Q_VALUE,
    "qrdqn": {**_Q_VALUE, "policy_kwargs.n_quantiles": _c(10, 25, 50)},
    "d3qn": {**_Q_VALUE, "n_steps": _c(1, 3, 5), "per_alpha": _f(0.2, 1.0), "per_beta": _f(0.2, 0.8)},
    # (noisy layers explore: no epsilon to tune)
    "rainbow": {
        **{k: v for k, v in _Q_VALUE.items() if not k.startswith("exploration_")},
        "n_steps": _c(1, 3, 5),
        "n_atoms": _c(21, 51),
        "per_alpha": _f(0.2, 1.0),
        "per_beta": _f(0.2, 0.8),
    },
    "sac": _ACTOR_CRITIC,
    "tqc": {**_ACTOR_CRITIC, "top_quantiles_to_drop_per_net": _i(0, 5), "policy_kwargs.n_quantiles": _c(10, 25, 50)},
    "td3": {**_ACTOR_CRITIC, **_NOISE},
    "ddpg": {**_ACTOR_CRITIC, **_NOISE},
    "crossq": {
        **{k: v for k, v in _ACTOR_CRITIC.items() if k != "tau"},
        "policy_delay": _c(1, 3),
    },
    "reinforce": {
        "learning_rate": _f(1e-4, 1e-2, log=True),
        "one_minus_gamma": _f(1e-4, 0.1, log=True),
        "n_episodes": _c(1, 2, 4, 8, 16),
        "baseline": _c("none", "mean", "value"),
        "normalize_advantage": _c(False, True),
        "ent_coef": _f(1e-8, 0.1, log=True),
        "max_grad_norm": _f(0.3, 5.0, log=True),
        "net_arch": _c("tiny", "small", "medium"),
        "activation_fn": _c("tanh", "relu"),
    },
    "ars": {
        "learning_rate": _f(1e-3, 0.1, log=True),
        "n_delta": _c(4, 8, 16, 32),
        "n_top_ratio": _f(0.1, 1.0),
        "delta_std": _f(0.01, 0.3, log=True),
    },
    "qlearning": {
        "learning_rate": _f(0.01, 1.0, log=True),
        "one_minus_gamma": _f(1e-3, 0.2, log=True),
        "exploration_fraction": _f(0.05, 0.8),
        "exploration_final_eps": _f(0.0, 0.2),
        "update_rule": _c("q_learning", "sarsa", "expected_sarsa", "double_q"),
    },
}


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


def _param_from_yaml(name: str, spec: Any, where: str) -> Param:
    if not isinstance(spec, dict):
        return Param(fixed=spec)
    unknown = set(spec) - {"type", "low", "high", "log", "choices", "value"}
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(
            f"{where} {name}: unknown field '{key}'{suggest(key, ['type', 'low', 'high', 'log', 'choices', 'value'])}"
        )
    if "value" in spec:
        return Param(fixed=spec["value"])
    kind = spec.get("type", "categorical" if "choices" in spec else "float")
    try:
        low = float(spec["low"]) if "low" in spec else None
        high = float(spec["high"]) if "high" in spec else None
    except (TypeError, ValueError):
        raise ConfigError(
            f"{where} {name}: low and high must be numbers, got {spec.get('low')!r}, {spec.get('high')!r}"
        ) from None
    choices = spec.get("choices", ())
    if not isinstance(choices, (list, tuple)):
        raise ConfigError(f"{where} {name}: choices must be a list, got {choices!r}")
    param = Param(str(kind), low, high, bool(spec.get("log", False)), tuple(choices))
    try:
        param.check(name)
    except ConfigError as exc:
        raise ConfigError(f"{where} {exc}") from None
    return param


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
        space[str(name)] = _param_from_yaml(str(name), spec, where)
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


def register_search_space(key: str, space: Mapping[str, Any], *, where: str | None = None) -> dict[str, Param]:
    """
    Make ``space`` the default search space of algorithm ``key`` (what ``python -m tuning --algo KEY`` searches).

    :param key: registry key of the algorithm (registered already, or by an entry point)
    :param space: the space, in the format of a ``--search-space`` YAML file (``extend`` is not used)
    :param where: who gives it, for errors (default: the key)
    :return: the parsed space
    :raises ConfigError: for a malformed space, or a parameter that sets no argument of the algorithm's constructor
    """
    from sb3_ext.config import ENV_KEYS, constructor_types
    from sb3_ext.registry import get_algo

    where = where or f"search space of '{key}'"
    parsed = parse_search_space({**space, "extend": False}, key, f"{where}:", base={})
    arguments = set(constructor_types(get_algo(key).cls)) | set(ENV_KEYS)
    for name in parsed:
        if _target_argument(name) not in arguments:
            raise ConfigError(
                f"{where}: parameter '{name}' sets '{_target_argument(name)}', which {key}'s constructor does not take"
                f"{suggest(_target_argument(name), arguments)}"
            )
    SEARCH_SPACES[key] = parsed
    return parsed


def _registered_space(key: str) -> dict[str, Param] | None:
    if key not in SEARCH_SPACES:
        for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if entry_point.name != key or entry_point.name in _loaded_entry_points:
                continue
            _loaded_entry_points.add(entry_point.name)
            package = entry_point.dist.name if entry_point.dist is not None else entry_point.value.split(":")[0]
            register_search_space(key, entry_point.load(), where=f"package {package}, search space '{key}'")
    return SEARCH_SPACES.get(key)


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
