"""Register sb3-ext's algorithms and search spaces in rl-baselines3-zoo (rl_zoo3), in the running process.

What :func:`register` changes in rl_zoo3, and why:

- ``rl_zoo3.utils.ALGOS`` gets every registry key it lacks (sb3-ext's and plug-ins'), so ``--algo`` accepts them and
  the zoo builds and loads them. ``train.py``, ``enjoy.py``, ``exp_manager.py`` and the others bind that same dict
  (``from rl_zoo3.utils import ALGOS``), whether imported before or after, and read its keys when their script runs,
  so it is updated in place; a loaded rl_zoo3 module holding a copy of it instead gets the keys too.
- ``rl_zoo3.hyperparams_opt.HYPERPARAMS_SAMPLER`` and ``HYPERPARAMS_CONVERTER`` get a :class:`SearchSpaceSampler`
  for every key the zoo has no sampler for (``crossq`` among the zoo's own); the zoo's samplers stay as they are.
- ``ExperimentManager.objective`` is wrapped so that, while a trial runs, the sampler sees the hyperparameters the
  trial starts from (the zoo passes a sampler only the trial, ``n_actions``, ``n_envs`` and two HER flags), and
  merges sampled ``policy_kwargs`` / ``replay_buffer_kwargs`` keys into the config's instead of replacing them.
- ``rl_zoo3.exp_manager`` gets the name ``sb3_ext``: the zoo evaluates a config's keyword-arguments strings with
  ``eval`` in that module's namespace, where sb3-ext's dotted class paths (``features_extractor_class=
  sb3_ext.common.torch_layers.MinAtarCNN`` in the MinAtar entries) then resolve.

rl_zoo3 is imported by :func:`register` only: sb3-ext imports without it.
"""

from __future__ import annotations

import contextvars
import functools
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from sb3_ext.common.safe_eval import safe_eval
from sb3_ext.config import action_noise, constructor_defaults
from sb3_ext.registry import algo_keys, get_algo

if TYPE_CHECKING:
    import optuna
    from rl_zoo3.exp_manager import ExperimentManager

__all__ = ["SearchSpaceSampler", "register"]

#: The zoo's model kwargs of the trial running in this thread (set by the wrapped ``ExperimentManager.objective``)
_trial_base: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar("sb3_ext_zoo_base", default=None)
#: The wrappers :func:`register` installed as ``ExperimentManager.objective`` (so it wraps once)
_objective_wrappers: set[Callable[..., float]] = set()


def _as_dict(value: Any, key: str) -> dict[str, Any]:
    """A keyword-arguments value of the zoo's (a dict, an expression string or None) as a dict."""
    if value is None:
        return {}
    if isinstance(value, str):
        value = safe_eval(value, key)
    return dict(value)


class SearchSpaceSampler:
    """
    An rl-baselines3-zoo sampler (``HYPERPARAMS_SAMPLER[key]``) of an sb3-ext search space.

    It samples the key's search space (:func:`tuning.search_spaces.get_search_space`, looked up at each trial, so
    plug-ins' spaces count) and converts the values with :func:`tuning.search_spaces.to_hyperparams`, then into the
    objects the zoo passes its model: keyword-arguments strings become dicts merged over the config's, and
    ``noise_type`` / ``noise_std`` become the ``action_noise`` object. The trial's ``hyperparams`` user attribute holds
    the converted values in zoo-config form. :meth:`convert` is the matching ``HYPERPARAMS_CONVERTER`` (``--trial-id``).

    :param key: registry key
    """

    def __init__(self, key: str) -> None:
        self.key = key

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.key!r})"

    def __call__(self, trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict[str, Any]) -> dict[str, Any]:
        """
        The zoo's sampler signature; the base is the trial's starting hyperparameters (see :meth:`sample`).

        :param trial: the trial
        :param n_actions: the size of a Box action space (0 otherwise), for action noise
        :param n_envs: the number of envs the trial trains on
        :param additional_args: the zoo's HER flags (not used: the search spaces have no HER parameters)
        :return: the hyperparameters that override the trial's
        """
        return self.sample(trial, n_actions, n_envs, _trial_base.get() or {})

    def sample(self, trial: optuna.Trial, n_actions: int, n_envs: int, base: Mapping[str, Any]) -> dict[str, Any]:
        """
        Sample and convert one trial's hyperparameters.

        :param trial: the trial
        :param n_actions: the size of a Box action space (0 otherwise), for action noise
        :param n_envs: the number of envs the trial trains on
        :param base: the model kwargs the trial starts from, as the zoo holds them (``policy_kwargs`` as a dict, ...)
        :return: the hyperparameters that override ``base``, as objects the model's constructor takes
        :raises ConfigError: when the key has no search space
        """
        from tuning.search_spaces import get_search_space, sample_params

        params = sample_params(trial, get_search_space(self.key))
        # Without the keyword-arguments entries, the converter returns the sampled keys only; merged below as objects.
        flat = {key: value for key, value in base.items() if not key.endswith("_kwargs")}
        hyperparams = self._to_hyperparams(params, {**flat, "n_envs": n_envs})
        trial.set_user_attr("hyperparams", hyperparams)
        out: dict[str, Any] = {}
        for key, value in hyperparams.items():
            if key.endswith("_kwargs") and isinstance(value, str):
                value = {**_as_dict(base.get(key), key), **safe_eval(value, f"{self.key} sampler: {key}")}
            out[key] = value
        if "noise_type" in out or "noise_std" in out:  # as the zoo turns a config's noise_type into action_noise
            noise_type, noise_std = out.pop("noise_type", None), out.pop("noise_std", None)
            out["action_noise"] = None
            if noise_type is not None and noise_std is not None:
                out["action_noise"] = action_noise(noise_type, noise_std, n_actions)
        return out

    def convert(self, sampled_params: dict[str, Any]) -> dict[str, Any]:
        """
        The zoo's converter signature: a stored trial's parameters as zoo-config hyperparameters (which the zoo reads
        as it reads a config entry). The config entry is not known here: keyword-arguments values hold the sampled keys.

        :param sampled_params: the trial's parameters
        :return: its hyperparameters
        """
        return self._to_hyperparams(sampled_params, {})

    def _to_hyperparams(self, params: Mapping[str, Any], base: Mapping[str, Any]) -> dict[str, Any]:
        from tuning.search_spaces import to_hyperparams

        spec = get_algo(self.key)
        return to_hyperparams(params, base, spec.on_policy, constructor_defaults(spec.cls))


def _with_trial_base(objective: Callable[[ExperimentManager, optuna.Trial], float]) -> Callable[..., float]:
    """Wrap ``ExperimentManager.objective`` so that samplers see the model kwargs of the manager's trials."""

    @functools.wraps(objective)
    def wrapped(manager: ExperimentManager, trial: optuna.Trial) -> float:
        token = _trial_base.set(manager._hyperparams)
        try:
            return objective(manager, trial)
        finally:
            _trial_base.reset(token)

    return wrapped


def _share(name: str, table: dict[str, Any]) -> None:
    """Give the entries of ``table`` to every loaded rl_zoo3 module that holds a copy of it as ``name``."""
    for module_name, module in list(sys.modules.items()):
        if module_name != "rl_zoo3" and not module_name.startswith("rl_zoo3."):
            continue
        held = getattr(module, name, None)
        if isinstance(held, dict) and held is not table:
            for key, value in table.items():
                held.setdefault(key, value)


def register() -> None:
    """
    Register every registry key (plug-ins' included) in rl_zoo3 (see the module docstring); calling it again adds
    what is new. The zoo's own algorithms, samplers and converters are kept.

    :raises ImportError: when rl_zoo3 is not installed
    """
    from rl_zoo3 import exp_manager, hyperparams_opt, utils

    import sb3_ext.common.torch_layers

    for key in algo_keys():
        utils.ALGOS.setdefault(key, get_algo(key).cls)
        if key not in hyperparams_opt.HYPERPARAMS_SAMPLER:
            sampler = SearchSpaceSampler(key)
            hyperparams_opt.HYPERPARAMS_SAMPLER[key] = sampler
            hyperparams_opt.HYPERPARAMS_CONVERTER.setdefault(key, sampler.convert)
    _share("ALGOS", utils.ALGOS)
    _share("HYPERPARAMS_SAMPLER", hyperparams_opt.HYPERPARAMS_SAMPLER)
    _share("HYPERPARAMS_CONVERTER", hyperparams_opt.HYPERPARAMS_CONVERTER)
    exp_manager.sb3_ext = sb3_ext  # type: ignore[attr-defined]
    manager_cls = exp_manager.ExperimentManager
    if manager_cls.objective not in _objective_wrappers:
        wrapped = _with_trial_base(manager_cls.objective)
        _objective_wrappers.add(wrapped)
        manager_cls.objective = wrapped  # type: ignore[method-assign]
