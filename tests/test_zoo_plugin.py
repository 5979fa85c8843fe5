"""``python -m sb3_ext.zoo``: rl-baselines3-zoo's own train/enjoy scripts with sb3-ext's algorithms and search spaces."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

pytest.importorskip("rl_zoo3")

from optuna.trial import FixedTrial
from rl_zoo3 import exp_manager, hyperparams_opt, utils
from stable_baselines3 import PPO
from stable_baselines3.common.noise import NormalActionNoise

from sb3_ext import D3QN, Rainbow
from sb3_ext.common.torch_layers import MinAtarCNN
from sb3_ext.config import default_config_path
from sb3_ext.zoo import SearchSpaceSampler, main, register
from sb3_ext.zoo.cli import INSTALL
from tuning.search_spaces import NET_ARCHS, get_search_space


def zoo(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m sb3_ext.zoo ARGS`` in ``cwd``, with one OpenMP thread."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "sb3_ext.zoo", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def first_values(key: str, **values: Any) -> dict[str, Any]:
    """A value for every parameter of ``key``'s search space (the lowest, or the first choice), ``values`` over them."""
    params = {
        name: param.fixed if param.fixed is not None else param.choices[0] if param.kind == "categorical" else param.low
        for name, param in get_search_space(key).items()
    }
    return {**params, **values}


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The log folder of a short D3QN run through the zoo's train script (no evaluations)."""
    cwd = tmp_path_factory.mktemp("zoo")
    args = ["train", "--algo", "d3qn", "--env", "CartPole-v1", "-n", "1500", "-f", str(cwd / "logs")]
    result = zoo(cwd, *args, "--eval-freq", "-1", "--seed", "0")
    assert result.returncode == 0, result.stderr[-3000:]
    return cwd / "logs"


@pytest.fixture
def registered() -> Iterator[None]:
    """:func:`register` in this process, undone afterwards (other tests compare the zoo's own tables with ours)."""
    tables: list[dict[str, Any]] = [utils.ALGOS, hyperparams_opt.HYPERPARAMS_SAMPLER, hyperparams_opt.HYPERPARAMS_CONVERTER]
    saved = [dict(table) for table in tables]
    objective = exp_manager.ExperimentManager.objective
    register()
    yield
    for table, entries in zip(tables, saved, strict=True):
        table.clear()
        table.update(entries)
    exp_manager.ExperimentManager.objective = objective  # type: ignore[method-assign]


@pytest.mark.slow
def test_train_writes_the_zoo_run_folder_from_our_config(logs: Path) -> None:
    run = logs / "d3qn" / "CartPole-v1_1"
    model = D3QN.load(run / "CartPole-v1.zip")
    assert model.num_timesteps >= 1500
    assert model.n_steps == 3  # zoo_configs/d3qn.yml's CartPole-v1 entry
    assert {"config.yml", "args.yml"} <= {p.name for p in (run / "CartPole-v1").iterdir()}
    config = dict(yaml.unsafe_load((run / "CartPole-v1" / "config.yml").read_text()))  # the zoo writes an OrderedDict
    assert config["replay_buffer_kwargs"] == "dict(alpha=0.6, beta=0.4)" and config["learning_rate"] == "lin_0.0023"
    args = yaml.unsafe_load((run / "CartPole-v1" / "args.yml").read_text())
    assert args["algo"] == "d3qn" and Path(args["conf_file"]) == default_config_path("d3qn")


@pytest.mark.slow
def test_enjoy_plays_the_trained_model(logs: Path) -> None:
    pytest.importorskip("requests", reason="rl_zoo3's enjoy imports requests, which rl_zoo3 does not declare")
    result = zoo(logs.parent, "enjoy", "--algo", "d3qn", "--env", "CartPole-v1", "-f", str(logs), "-n", "50", "--no-render")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Loading {logs / 'd3qn' / 'CartPole-v1_1' / 'CartPole-v1.zip'}" in result.stdout


@pytest.mark.slow
def test_optimize_samples_our_search_space_over_the_config(tmp_path: Path) -> None:
    args = ["train", "--algo", "d3qn", "--env", "CartPole-v1", "-n", "600", "-f", str(tmp_path / "logs"), "--seed", "0"]
    args += ["--optimize", "--n-trials", "2", "--n-jobs", "1", "--eval-episodes", "2", "--n-evaluations", "1"]
    args += ["--sampler", "random", "--pruner", "none", "--no-optim-plots", "--optimization-log-path", str(tmp_path / "t")]
    result = zoo(tmp_path, *args, "-params", "policy_kwargs:dict(dueling=False)")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "    per_alpha: " in result.stdout and "    n_steps: " in result.stdout  # the zoo prints the best trial's
    [report] = (tmp_path / "logs" / "d3qn").glob("report_CartPole-v1_2-trials-600-random-none_*.csv")
    with report.open() as f:
        rows = list(csv.DictReader(f))
    assert [row["state"] for row in rows] == ["COMPLETE", "COMPLETE"]
    assert {f"params_{name}" for name in get_search_space("d3qn")} <= set(rows[0])
    for row in rows:
        model = D3QN.load(tmp_path / "t" / f"trial_{row['number']}" / "best_model.zip")
        # The sampled keys are merged into the config's keyword arguments (dueling=False from -params stays).
        assert model.policy_kwargs == {"dueling": False, "net_arch": NET_ARCHS[row["params_net_arch"]]}
        assert model.replay_buffer_kwargs["alpha"] == pytest.approx(float(row["params_per_alpha"]))
        assert model.n_steps == int(row["params_n_steps"])
        assert model.batch_size == 2 ** int(row["params_batch_size_pow"])


@pytest.mark.usefixtures("registered")
def test_register_keeps_the_zoo_algorithms_and_samplers() -> None:
    assert hyperparams_opt.HYPERPARAMS_SAMPLER["ppo"] is hyperparams_opt.sample_ppo_params
    assert hyperparams_opt.HYPERPARAMS_CONVERTER["dqn"] is hyperparams_opt.convert_offpolicy_params
    assert utils.ALGOS["ppo"] is PPO and utils.ALGOS["d3qn"] is D3QN
    for key in ("d3qn", "rainbow", "reinforce", "qlearning", "crossq"):  # crossq: the zoo has no sampler for it
        assert isinstance(hyperparams_opt.HYPERPARAMS_SAMPLER[key], SearchSpaceSampler)
    objective = exp_manager.ExperimentManager.objective
    register()  # again: nothing is wrapped twice
    assert exp_manager.ExperimentManager.objective is objective
    assert not hasattr(objective.__wrapped__, "__wrapped__")  # type: ignore[attr-defined]


def test_sampler_returns_the_objects_the_zoo_passes_its_model() -> None:
    values = first_values("d3qn", net_arch="small", per_alpha=0.5, one_minus_gamma=0.01, batch_size_pow=5)
    trial = FixedTrial(values)
    base = {"policy_kwargs": {"net_arch": [256, 256], "dueling": False}, "replay_buffer_kwargs": {"alpha": 0.6, "beta": 0.4}}
    hyperparams = SearchSpaceSampler("d3qn").sample(trial, 0, 1, base)
    assert hyperparams["policy_kwargs"] == {"net_arch": [64, 64], "dueling": False}
    per = {"alpha": 0.5, "beta": values["per_beta"], "prioritization": values["per_prioritization"]}
    assert hyperparams["replay_buffer_kwargs"] == per
    assert hyperparams["gamma"] == pytest.approx(0.99) and hyperparams["batch_size"] == 32
    assert isinstance(hyperparams["learning_rate"], float) and "one_minus_gamma" not in hyperparams
    # In zoo-config form: the trial's user attribute, and the converter of a stored trial.
    assert trial.user_attrs["hyperparams"]["policy_kwargs"] == "dict(net_arch=[64, 64])"
    assert SearchSpaceSampler("d3qn").convert(values)["replay_buffer_kwargs"] == (
        f"dict(alpha=0.5, beta={values['per_beta']}, prioritization='{values['per_prioritization']}')"
    )


def test_sampled_noise_becomes_the_action_noise_object() -> None:
    sampler = SearchSpaceSampler("td3")
    hyperparams = sampler.sample(FixedTrial(first_values("td3", noise_type="normal", noise_std=0.2)), 3, 1, {})
    assert isinstance(hyperparams["action_noise"], NormalActionNoise) and "noise_type" not in hyperparams
    assert np.allclose(hyperparams["action_noise"]._sigma, [0.2, 0.2, 0.2])
    assert sampler.sample(FixedTrial(first_values("td3", noise_type="none")), 3, 1, {})["action_noise"] is None


@pytest.mark.slow
def test_a_bad_first_word_exits_2_with_one_line(tmp_path: Path) -> None:
    result = zoo(tmp_path, "frobnicate", "--algo", "d3qn")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "expected train or enjoy first, got 'frobnicate'" in result.stderr


@pytest.mark.usefixtures("registered")
def test_an_unknown_algorithm_exits_2_with_the_nearest(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--algo", "d3qm", "--env", "CartPole-v1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown algorithm 'd3qm'" in err and "d3qn" in err


@pytest.mark.usefixtures("registered")
def test_an_unknown_env_exits_2_with_the_nearest(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--algo", "d3qn", "--env", "CartPole-v9"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown environment 'CartPole-v9'" in err and "CartPole-v1" in err


@pytest.mark.slow
def test_minatar_trains_from_our_entry(tmp_path: Path) -> None:
    # The zoo looks the id up before making it (MinAtar registers on request) and evaluates the entry's
    # policy_kwargs string, whose features extractor is sb3-ext's MinAtarCNN (a dotted path).
    pytest.importorskip("minatar")
    args = ["train", "--algo", "rainbow", "--env", "MinAtar/Breakout-v1", "-n", "200", "-f", str(tmp_path / "logs")]
    result = zoo(tmp_path, *args, "--eval-freq", "-1", "--hyperparams", "learning_starts:50", "buffer_size:1000")
    assert result.returncode == 0, result.stderr[-3000:]
    model = Rainbow.load(tmp_path / "logs" / "rainbow" / "MinAtar-Breakout-v1_1" / "MinAtar-Breakout-v1.zip")
    assert isinstance(model.q_net.features_extractor, MinAtarCNN)
    assert model.num_timesteps >= 200 and model._n_updates > 0


def test_without_rl_zoo3_it_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "rl_zoo3", None)  # importing it now fails as when it is not installed
    assert main(["train", "--algo", "d3qn"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.rstrip().endswith(INSTALL)


@pytest.mark.slow
def test_sb3_ext_imports_without_rl_zoo3() -> None:
    code = "import sys, sb3_ext, sb3_ext.cli, sb3_ext.zoo, tuning; sys.exit(any(m.startswith('rl_zoo3') for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], timeout=300).returncode == 0
