"""Search-space parameters, and the parameter sets several algorithms share.

An algorithm's search space is part of its :class:`~sb3_ext.common.algo_spec.AlgoSpec` (``search_space``): a mapping
of parameter names to :class:`Param`, in trial-friendly coordinates that :mod:`tuning.search_spaces` turns into
hyperparameters (``one_minus_gamma``, ``batch_size_pow``, ``net_arch`` by name, ``per_alpha``...; see its docstring).
Defining one needs no Optuna; sampling one does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sb3_ext.errors import ConfigError, suggest

if TYPE_CHECKING:
    import optuna

__all__ = [
    "ACTOR_CRITIC",
    "NOISE",
    "ON_POLICY",
    "PER",
    "PPO_LIKE",
    "Q_VALUE",
    "Param",
    "categorical",
    "float_range",
    "int_range",
]

_KINDS = ("float", "int", "categorical")
_FIELDS = ("type", "low", "high", "log", "choices", "value")


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
        :param spec: a definition in the format of a ``--search-space`` YAML file: a mapping with ``type``
            (``float``/``int``/``categorical``), ``low``/``high``/``log`` or ``choices``, or ``value`` (fixed); or a
            fixed value
        :param where: what to name in errors before the parameter (a file, a package)
        :return: the parameter
        :raises ConfigError: naming ``where`` and the parameter when the definition is malformed
        """
        if not isinstance(spec, dict):
            return cls(fixed=spec)
        unknown = set(spec) - set(_FIELDS)
        if unknown:
            key = sorted(unknown)[0]
            raise ConfigError(f"{where} {name}: unknown field '{key}'{suggest(key, _FIELDS)}")
        if "value" in spec:
            return cls(fixed=spec["value"])
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
        param = cls(str(kind), low, high, bool(spec.get("log", False)), tuple(choices))
        try:
            param.check(name)
        except ConfigError as exc:
            raise ConfigError(f"{where} {exc}") from None
        return param

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


def float_range(low: float, high: float, log: bool = False) -> Param:
    """:return: a float parameter in ``[low, high]`` (on a log scale with ``log``)"""
    return Param("float", low, high, log)


def int_range(low: int, high: int) -> Param:
    """:return: an integer parameter in ``[low, high]``"""
    return Param("int", low, high)


def categorical(*choices: Any) -> Param:
    """:return: a parameter taking one of ``choices``"""
    return Param("categorical", choices=choices)


#: Policy-gradient algorithms that collect rollouts of ``n_steps`` per env (A2C, PPO, TRPO...)
ON_POLICY: dict[str, Param] = {
    "learning_rate": float_range(1e-5, 3e-3, log=True),
    "one_minus_gamma": float_range(1e-4, 0.1, log=True),
    "n_steps_pow": int_range(3, 11),
    "one_minus_gae_lambda": float_range(1e-3, 0.2, log=True),
    "net_arch": categorical("tiny", "small", "medium"),
    "activation_fn": categorical("tanh", "relu"),
}
#: ON_POLICY with minibatch epochs and a clipped objective (PPO and its variants)
PPO_LIKE: dict[str, Param] = {
    **ON_POLICY,
    "batch_size_pow": int_range(3, 9),
    "n_epochs": categorical(1, 5, 10, 20),
    "clip_range": categorical(0.1, 0.2, 0.3),
    "ent_coef": float_range(1e-8, 0.1, log=True),
    "max_grad_norm": float_range(0.3, 5.0, log=True),
}
#: Value-based algorithms with a replay buffer and epsilon-greedy exploration (DQN and its variants)
Q_VALUE: dict[str, Param] = {
    "learning_rate": float_range(1e-5, 1e-2, log=True),
    "one_minus_gamma": float_range(1e-4, 0.1, log=True),
    "batch_size_pow": int_range(4, 8),
    "buffer_size": categorical(10_000, 50_000, 100_000),
    "learning_starts": categorical(0, 1000, 5000),
    "exploration_fraction": float_range(0.0, 0.5),
    "exploration_final_eps": float_range(0.0, 0.2),
    "target_update_interval": categorical(1, 100, 1000, 5000),
    "train_freq": categorical(1, 4, 8, 16),
    "gradient_steps": categorical(-1, 1),
    "net_arch": categorical("tiny", "small", "medium"),
}
#: Off-policy actor-critic algorithms for continuous actions (SAC, TD3, DDPG...)
ACTOR_CRITIC: dict[str, Param] = {
    "learning_rate": float_range(1e-5, 1e-2, log=True),
    "one_minus_gamma": float_range(1e-4, 0.1, log=True),
    "batch_size_pow": int_range(5, 9),
    "buffer_size": categorical(10_000, 100_000, 1_000_000),
    "learning_starts": categorical(0, 1000, 10_000),
    "train_freq": categorical(1, 4, 8, 16, 32),
    "tau": categorical(0.001, 0.005, 0.01, 0.02, 0.05),
    "net_arch": categorical("small", "medium", "big"),
}
#: Action noise of deterministic actors (TD3, DDPG)
NOISE: dict[str, Param] = {
    "noise_type": categorical("normal", "ornstein-uhlenbeck", "none"),
    "noise_std": float_range(0.0, 1.0),
}
#: Prioritized replay (``per_<x>`` goes to ``replay_buffer_kwargs``): its exponents and its prioritization
PER: dict[str, Param] = {
    "per_alpha": float_range(0.2, 1.0),
    "per_beta": float_range(0.2, 0.8),
    "per_prioritization": categorical("proportional", "rank", "lap"),
}
