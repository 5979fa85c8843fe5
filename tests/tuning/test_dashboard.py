"""The README's dashboard instructions: ``optuna-dashboard sqlite:///tuning_runs/<study>/study.db`` serves a study on
loopback, and its HTTP API (the JSON the web page reads) gives the study's trials."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import optuna
import pytest

pytest.importorskip("optuna_dashboard")

STUDY = "ppo-CartPole-v1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _dashboard_command() -> str:
    beside = Path(sys.executable).parent / "optuna-dashboard"  # the virtualenv's console script, on PATH or not
    found = str(beside) if beside.is_file() else shutil.which("optuna-dashboard")
    if found is None:
        pytest.skip("the optuna-dashboard console script is not installed")
    return found


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _wait_for(proc: subprocess.Popen[str], url: str, timeout: float = 60.0) -> None:
    """Poll ``url`` until the server answers; fail with its output if it exits or does not answer in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"optuna-dashboard exited with code {proc.returncode}: {proc.communicate()[0]}")
        try:
            _get_json(url)
            return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    pytest.fail(f"optuna-dashboard did not answer at {url} within {timeout:.0f}s")


def test_dashboard_serves_the_study_of_the_readme(tmp_path: Path) -> None:
    study_db = tmp_path / "tuning_runs" / STUDY / "study.db"
    study_db.parent.mkdir(parents=True)
    study = optuna.create_study(storage=f"sqlite:///{study_db}", study_name=STUDY, direction="maximize")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)

    port = _free_port()
    # The README's command as it is written, run from the folder that holds tuning_runs/ (the URL is relative).
    command = [_dashboard_command(), f"sqlite:///tuning_runs/{STUDY}/study.db", "--port", str(port), "--host", "127.0.0.1"]
    proc = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for(proc, f"{base}/api/meta")
        with urllib.request.urlopen(f"{base}/dashboard", timeout=10) as page:  # the page the README says to open
            assert page.status == 200

        summaries = _get_json(f"{base}/api/studies")["study_summaries"]
        assert [s["study_name"] for s in summaries] == [STUDY]
        assert summaries[0]["directions"] == ["maximize"]

        detail = _get_json(f"{base}/api/studies/{summaries[0]['study_id']}")
        assert detail["name"] == STUDY
        served = sorted(detail["trials"], key=lambda t: t["number"])
        assert [t["number"] for t in served] == [t.number for t in study.trials] == [0, 1, 2]
        assert [t["state"] for t in served] == ["Complete"] * 3
        assert [t["values"] for t in served] == [[t.value] for t in study.trials]
        assert [t["params"][0]["name"] for t in served] == ["x"] * 3
        assert [float(t["params"][0]["param_external_value"]) for t in served] == [t.params["x"] for t in study.trials]
        assert [t["number"] for t in detail["best_trials"]] == [study.best_trial.number]
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
