"""Optuna hyperparameter tuning over every algorithm of the sb3-ext registry."""

from tuning.objective import TuningTask
from tuning.search_spaces import (
    Param,
    get_search_space,
    load_search_space,
    register_search_space,
    to_hyperparams,
)
from tuning.study import StudyOptions, make_pruner, make_sampler, make_storage, optimize, rerun_trial

__all__ = [
    "Param",
    "StudyOptions",
    "TuningTask",
    "get_search_space",
    "load_search_space",
    "make_pruner",
    "make_sampler",
    "make_storage",
    "optimize",
    "register_search_space",
    "rerun_trial",
    "to_hyperparams",
]
