"""The keyword arguments a class's constructor accepts, with ``**kwargs`` followed up the class hierarchy.

A subclass that forwards ``**kwargs`` to its parent (``class AuxPPO(PPO): def __init__(self, policy, env,
aux_coef=0.0, **kwargs)``, or SB3's ``CnnPolicy`` classes) accepts its parent's arguments too, which
``inspect.signature`` alone does not show. Everything that reads a constructor's signature (configs, tuning,
the algorithms) reads it here.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["init_defaults", "init_parameters", "init_type_hints"]

_SKIPPED_KINDS = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


def _init_chain(cls: type) -> Iterator[tuple[type, inspect.Signature]]:
    """
    The constructors that a call ``cls(...)`` may reach through ``**kwargs``: the first ``__init__`` in the MRO, then,
    while the current one takes ``**kwargs``, the next ``__init__`` defined further up (``object`` excluded).
    """
    for klass in cls.__mro__:
        if klass is object:
            return
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        signature = inspect.signature(init)
        yield klass, signature
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()):
            return


def init_parameters(cls: type) -> dict[str, inspect.Parameter]:
    """
    :param cls: a class
    :return: the named arguments ``cls(...)`` accepts (``self``, ``*args`` and ``**kwargs`` left out), by name, in the
        order they are declared from the class up; an argument redeclared by a subclass is the subclass's
    """
    parameters: dict[str, inspect.Parameter] = {}
    for _, signature in _init_chain(cls):
        for name, parameter in list(signature.parameters.items())[1:]:  # (the first is self)
            if parameter.kind not in _SKIPPED_KINDS:
                parameters.setdefault(name, parameter)
    return parameters


def init_defaults(cls: type) -> dict[str, Any]:
    """
    :param cls: a class
    :return: the default value of every argument of :func:`init_parameters` that has one
    """
    return {name: p.default for name, p in init_parameters(cls).items() if p.default is not inspect.Parameter.empty}


def init_type_hints(cls: type, localns: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """
    :param cls: a class
    :param localns: names to resolve string annotations with, beyond each constructor's module
    :return: the annotation of every argument of :func:`init_parameters`, resolved where possible (``Any`` where a
        constructor's annotations cannot be resolved or an argument has none)
    """
    hints: dict[str, Any] = {}
    for klass, _ in _init_chain(cls):
        try:
            resolved = typing.get_type_hints(klass.__dict__["__init__"], localns=dict(localns or {}))
        except Exception:  # (an annotation naming what its module cannot import: left unchecked)
            resolved = {}
        for name, hint in resolved.items():
            hints.setdefault(name, hint)
    return {name: hints.get(name, Any) for name in init_parameters(cls)}
