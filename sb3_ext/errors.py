"""Errors raised by sb3-ext.

Every error carries one line that says what is wrong and what would be right, so the CLI can print it as it is.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "ConfigError",
    "IncompatibleEnvError",
    "Sb3ExtError",
    "UnknownAlgorithmError",
    "UnknownEnvError",
    "UnsafeExpressionError",
    "suggest",
]


class Sb3ExtError(Exception):
    """Base class of every error sb3-ext raises on bad input."""


class UnknownAlgorithmError(Sb3ExtError, KeyError):
    """An algorithm key that is not in the registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class UnknownEnvError(Sb3ExtError, ValueError):
    """An environment id that gymnasium does not know."""


class IncompatibleEnvError(Sb3ExtError, ValueError):
    """An algorithm asked to run on an environment whose spaces it does not support."""


class ConfigError(Sb3ExtError, ValueError):
    """A zoo-format configuration that cannot be used as it is."""


class UnsafeExpressionError(ConfigError):
    """A string in a configuration that would need more than literals and allowed classes to evaluate."""


def suggest(word: str, choices: Iterable[str]) -> str:
    """
    Return ``"; did you mean 'x'?"`` for the closest choice, or an empty string when none is close.

    :param word: the unknown word
    :param choices: the valid words
    :return: a suffix for an error message
    """
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{matches[0]}'?" if matches else ""
