"""What sb3-ext's command lines share: one-line argument errors, ``key=value`` overrides, error-to-exit-code mapping
and the process exit after Ctrl-C."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from sb3_ext.common.yaml_utils import parse_value
from sb3_ext.errors import Sb3ExtError

__all__ = ["OneLineErrorParser", "exit_process", "key_value", "run_command"]


class OneLineErrorParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def key_value(text: str) -> tuple[str, Any]:
    """
    Parse a ``key=value`` override (the value as YAML reads it).

    :param text: the argument
    :return: the key and the value
    :raises argparse.ArgumentTypeError: without ``=`` or key
    """
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected key=value, got '{text}'")
    return key.strip(), parse_value(value)


def run_command(prog: str, command: Callable[[], int], interrupted: str = "interrupted") -> int:
    """
    Run a command and map its outcome to an exit code: its own code, 2 with one line on stderr for bad input
    (:class:`~sb3_ext.errors.Sb3ExtError`), 130 after Ctrl-C.

    :param prog: the program name that starts the error lines
    :param command: the command
    :param interrupted: the message printed after Ctrl-C
    :return: the exit code
    """
    try:
        return int(command())
    except Sb3ExtError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: {interrupted}", file=sys.stderr)
        return 130


def exit_process(code: int) -> NoReturn:
    """
    End the process with ``code``, as the command-line entry points do.

    After Ctrl-C (code 130) the commands have saved what they save and printed their message; the process then ends
    with ``os._exit`` once stdout and stderr are flushed. A regular interpreter exit after a KeyboardInterrupt that was
    handled was seen to end now and then as "killed by SIGINT" (-2) instead of 130, under load.

    :param code: the exit code
    """
    if code == 130:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
