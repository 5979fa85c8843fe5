"""Making environments by id, including those of packages that register their ids only on request (MinAtar, Atari)."""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

import gymnasium as gym
from gymnasium import spaces
from stable_baselines3.common.base_class import maybe_make_env
from stable_baselines3.common.type_aliases import GymEnv

from sb3_ext.errors import UnknownEnvError

__all__ = ["ENV_PACKAGES", "UNNAMESPACED_PACKAGES", "env_with_supported_actions", "make_env", "register_env_package"]

#: gymnasium namespaces whose ids a package registers when asked: namespace -> (pip extra, module, function to call;
#: empty: importing the module registers them)
ENV_PACKAGES: dict[str, tuple[str, str, str]] = {
    "MinAtar": ("minatar", "minatar.gym", "register_envs"),
    "ALE": ("atari", "ale_py", ""),
}
#: Packages whose import registers ids without a namespace (Atari's ``BreakoutNoFrameskip-v4``): pip extra, module
UNNAMESPACED_PACKAGES: tuple[tuple[str, str], ...] = (("atari", "ale_py"),)


def register_env_package(env_id: str) -> None:
    """
    Register the ids of the package that provides ``env_id``, once: by the id's namespace (per :data:`ENV_PACKAGES`),
    if gymnasium knows no id of that namespace yet; for an id without a namespace that gymnasium does not know, by
    importing the installed packages of :data:`UNNAMESPACED_PACKAGES`. Anything else is left to gymnasium.

    :param env_id: e.g. ``"MinAtar/Breakout-v1"``, ``"BreakoutNoFrameskip-v4"``
    :raises UnknownEnvError: when the package of a namespace is not installed, with the extra that installs it
    """
    namespace = env_id.split("/", 1)[0] if "/" in env_id else None
    if namespace is None:
        if env_id not in gym.registry:
            for _, module_name in UNNAMESPACED_PACKAGES:
                if importlib.util.find_spec(module_name) is not None:
                    importlib.import_module(module_name)
        return
    if namespace not in ENV_PACKAGES or any(spec.namespace == namespace for spec in gym.registry.values()):
        return  # not a known package's, or registered already (an unknown id of it is gymnasium's to report)
    extra, module_name, function = ENV_PACKAGES[namespace]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise UnknownEnvError(
            f"'{env_id}' needs the {module_name.split('.')[0]} package: pip install -c constraints.txt -e \".[{extra}]\""
        ) from None
    if function:
        getattr(module, function)()


def make_env(env_id: str, **kwargs: Any) -> gym.Env:
    """
    ``gym.make(env_id, **kwargs)``, after :func:`register_env_package` (so it works in a subprocess worker too).

    :param env_id: gymnasium id
    :param kwargs: keyword arguments of ``gym.make``
    :return: the environment
    """
    register_env_package(env_id)
    return gym.make(env_id, **kwargs)


def env_with_supported_actions(
    algorithm: str, env: GymEnv | str | None, supported: tuple[type[spaces.Space], ...], verbose: int = 0
) -> GymEnv | None:
    """
    The environment a constructor was given (made from its id), refused when its action space is not supported: a
    ``ValueError`` naming the space where SB3's constructors fail an ``assert``.

    :param algorithm: the class's name, for the message
    :param env: the environment, its gymnasium id, or None (when loading)
    :param supported: the supported action space types
    :param verbose: verbosity of ``maybe_make_env``
    :return: the environment (None for None)
    :raises ValueError: naming the unsupported action space
    """
    if env is None:
        return None
    env = maybe_make_env(env, verbose)
    if not isinstance(env.action_space, supported):
        raise ValueError(
            f"{algorithm} needs a {' or '.join(kind.__name__ for kind in supported)} action space, got {env.action_space}"
        )
    return env
