"""Runner convention for benchmarks: each script measures our code and its SB3 anchor side by side in one run,
prints one JSON object, and appends a row (with the command that produced it) to benchmarks/RESULTS.md."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def timed(fn: Callable[[], Any]) -> float:
    """:return: wall seconds of one call of ``fn``"""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved(runs: dict[str, Callable[[], T]], rounds: int) -> dict[str, list[T]]:
    """
    Call every run once per round, in the given order on even rounds and in reverse on odd ones, so that no run
    always goes first (warm caches, turbo) when our code and its anchor are measured side by side.

    :param runs: name -> a call that measures once and returns its figure
    :param rounds: number of rounds
    :return: name -> the figures of its calls, in round order
    """
    results: dict[str, list[T]] = {name: [] for name in runs}
    order = list(runs.items())
    for i in range(rounds):
        for name, run in order if i % 2 == 0 else order[::-1]:
            results[name].append(run())
    return results


def report(name: str, result: dict[str, Any], summary: str, record: bool = True) -> None:
    """
    Print the result as JSON and append a row to RESULTS.md.

    :param name: benchmark name (the section it belongs to)
    :param result: the measured figures
    :param summary: one line with the figures and the ratio, for the table
    :param record: append to RESULTS.md (off for smoke runs)
    """
    result = {
        "benchmark": name,
        **result,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
    }
    print(json.dumps(result, indent=2))
    if not record:
        return
    command = "python " + " ".join([Path(sys.argv[0]).as_posix().split("/work/main/")[-1], *sys.argv[1:]])
    if not RESULTS.exists():
        RESULTS.write_text("# Benchmark results\n\n| date | benchmark | result | command |\n|---|---|---|---|\n")
    with RESULTS.open("a") as f:
        f.write(f"| {time.strftime('%Y-%m-%d')} | {name} | {summary} | `{command}` |\n")
