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
from typing import Any

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def timed(fn: Callable[[], Any]) -> float:
    """:return: wall seconds of one call of ``fn``"""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


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
