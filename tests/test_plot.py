"""``sb3-ext plot``: evaluation curves of run folders, aggregated over seeds per (algorithm, env)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from matplotlib.collections import PolyCollection

from sb3_ext.cli import main
from sb3_ext.errors import ConfigError
from sb3_ext.plotting import CSV_COLUMNS, RunEvaluations, aggregate_runs, evaluation_figure, find_run_dirs, load_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two seeds of PPO on CartPole-v1 and one on MountainCar-v0, 2048 steps each, evaluated every 512 steps."""
    logs = tmp_path_factory.mktemp("plot") / "logs"
    # MountainCar first: the first run in a process pays for imports before its first episode, which would put the
    # wall-time axes of the two CartPole seeds apart.
    for env_id, seed in [("MountainCar-v0", 0), ("CartPole-v1", 0), ("CartPole-v1", 1)]:
        argv = ["train", "--algo", "ppo", "--env", env_id, "-n", "2048", "--eval-freq", "512", "--eval-episodes", "2"]
        assert main([*argv, "--seed", str(seed), "--log-folder", str(logs), "--no-progress-bar"]) == 0
    return {
        "seed0": logs / "ppo" / "CartPole-v1_1",
        "seed1": logs / "ppo" / "CartPole-v1_2",
        "other_env": logs / "ppo" / "MountainCar-v0_1",
    }


def _mean_returns(run: Path) -> np.ndarray:
    with np.load(run / "evaluations.npz") as data:
        return np.asarray(data["results"]).mean(axis=1)


def test_two_seeds_are_one_curve_with_a_band(runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "plots" / "cartpole.png"  # a folder that does not exist yet
    assert main(["plot", str(runs["seed0"]), str(runs["seed1"]), "--output", str(out)]) == 0
    assert sorted(p.name for p in out.parent.iterdir()) == ["cartpole.csv", "cartpole.png"]  # no temporary file left
    assert out.read_bytes().startswith(b"\x89PNG")

    table = pd.read_csv(out.with_suffix(".csv"))
    assert tuple(table.columns) == CSV_COLUMNS
    assert set(zip(table["algo"], table["env"], strict=True)) == {("ppo", "CartPole-v1")}
    assert list(table["x"]) == [512, 1024, 1536, 2048]
    assert list(table["n_runs"]) == [2] * 4
    per_run = np.stack([_mean_returns(runs["seed0"]), _mean_returns(runs["seed1"])])
    np.testing.assert_allclose(table["mean"], np.mean(per_run, axis=0), rtol=1e-12)
    np.testing.assert_allclose(table["std"], np.std(per_run, axis=0), rtol=1e-12, atol=1e-12)

    fig = evaluation_figure(aggregate_runs([load_run(runs["seed0"]), load_run(runs["seed1"])]))
    (ax,) = fig.axes
    (line,) = ax.get_lines()
    np.testing.assert_allclose(line.get_ydata(), table["mean"])
    (band,) = [c for c in ax.collections if isinstance(c, PolyCollection)]
    y = band.get_paths()[0].vertices[:, 1]
    assert y.min() == pytest.approx((table["mean"] - table["std"]).min())
    assert y.max() == pytest.approx((table["mean"] + table["std"]).max())
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["ppo (2 runs)"]
    assert ax.get_title() == "CartPole-v1" and ax.get_xlabel() == "environment steps"


def test_wall_time_axis(runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "time.png"
    assert main(["plot", str(runs["seed0"]), str(runs["seed1"]), "--output", str(out), "--x", "time"]) == 0
    assert out.stat().st_size > 0
    table = pd.read_csv(tmp_path / "time.csv")
    assert set(table["n_runs"]) == {2} and set(table["env"]) == {"CartPole-v1"}

    loaded = [load_run(runs[key], wall_time=True) for key in ("seed0", "seed1")]
    for run in loaded:
        assert run.wall_times is not None
        assert np.all(np.diff(run.wall_times) > 0) and 0 < run.wall_times[0] and run.wall_times[-1] < 600
    times = [run.wall_times for run in loaded if run.wall_times is not None]
    low, high = max(t[0] for t in times), min(t[-1] for t in times)
    grid = np.unique(np.concatenate(times))
    grid = grid[(grid >= low) & (grid <= high)]
    np.testing.assert_allclose(table["x"], grid)
    values = np.stack([np.interp(grid, t, run.returns) for t, run in zip(times, loaded, strict=True)])
    np.testing.assert_allclose(table["mean"], values.mean(axis=0))
    np.testing.assert_allclose(table["std"], values.std(axis=0), atol=1e-9)
    assert evaluation_figure(table, "time").axes[0].get_xlabel() == "wall time (s)"


def test_second_env_is_a_second_panel(runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "both.png"
    assert main(["plot", *(str(runs[key]) for key in ("seed0", "other_env", "seed1")), "--output", str(out)]) == 0
    table = pd.read_csv(tmp_path / "both.csv")
    assert table.groupby("env")["n_runs"].first().to_dict() == {"CartPole-v1": 2, "MountainCar-v0": 1}
    fig = evaluation_figure(table)
    assert [ax.get_title() for ax in fig.axes] == ["CartPole-v1", "MountainCar-v0"]
    assert [len(ax.get_lines()) for ax in fig.axes] == [1, 1]


def _copy_without_evaluations(run: Path, tmp_path: Path, empty: bool) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    (copy / "evaluations.npz").unlink()
    if empty:
        np.savez(copy / "evaluations.npz", timesteps=np.zeros(0), results=np.zeros((0, 2)), ep_lengths=np.zeros((0, 2)))
    return copy


@pytest.mark.parametrize("bad", ["not_a_run_folder", "missing_folder", "no_evaluations", "empty_evaluations", "csv_output"])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(
    bad: str, runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folders, out = [runs["seed0"]], tmp_path / "out" / "curves.png"
    if bad == "not_a_run_folder":
        folders.append(tmp_path)
    elif bad == "missing_folder":
        folders.append(tmp_path / "nothing")
    elif bad in ("no_evaluations", "empty_evaluations"):
        folders.append(_copy_without_evaluations(runs["seed1"], tmp_path, empty=bad == "empty_evaluations"))
    else:
        out = out.with_suffix(".csv")
    capsys.readouterr()
    assert main(["plot", *map(str, folders), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sb3-ext: error: ") and err.count("\n") == 1
    expected = {"no_evaluations": "has no evaluations", "empty_evaluations": "has no evaluations", "csv_output": ".png"}
    assert expected.get(bad, "is not a run folder") in err
    assert not out.parent.exists()


def _fake_run(folder: Path, timesteps: list[int], monitors: dict[str, str], algo: str = "ppo", seed: int = 0) -> Path:
    folder.mkdir(parents=True)
    (folder / "run.yml").write_text(yaml.safe_dump({"algo": algo, "env_id": "CartPole-v1", "seed": seed, "n_timesteps": 20}))
    results = np.arange(2 * len(timesteps), dtype=float).reshape(-1, 2) * (1 + seed)
    np.savez(folder / "evaluations.npz", timesteps=np.array(timesteps), results=results, ep_lengths=np.ones_like(results))
    for name, text in monitors.items():
        (folder / name).write_text(text)
    return folder


def _monitor(t_start: float, episodes: list[tuple[int, float]]) -> str:
    header = "#" + json.dumps({"t_start": t_start, "env_id": "CartPole-v1"}) + "\nr,l,t\n"
    return header + "".join(f"1.0,{length},{t}\n" for length, t in episodes)


def _fake_logs(logs: Path) -> list[Path]:
    """A log folder as train writes it, two algorithms x two seeds, with folders that hold no run beside them."""
    runs = [
        _fake_run(logs / algo / f"CartPole-v1_{n}", [4, 8], {}, algo=algo, seed=n) for algo in ("dqn", "ppo") for n in (1, 2)
    ]
    (runs[0] / "checkpoints" / "4").mkdir(parents=True)  # a run folder's subfolders are not searched
    (logs / "tensorboard" / "PPO_1").mkdir(parents=True)  # no run there: left out
    return runs


def test_a_log_folder_stands_for_its_run_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logs = tmp_path / "logs"
    runs = _fake_logs(logs)
    assert find_run_dirs([logs]) == runs  # sorted: dqn's seeds, then ppo's
    assert find_run_dirs([runs[3], logs / "dqn", tmp_path / "nothing"]) == [runs[3], *runs[:2], tmp_path / "nothing"]

    assert main(["plot", str(logs), "--output", str(tmp_path / "from_logs.png")]) == 0
    assert "Evaluation curves of 4 run folders" in capsys.readouterr().out
    assert main(["plot", *map(str, reversed(runs)), "--output", str(tmp_path / "listed.png")]) == 0
    from_logs = (tmp_path / "from_logs.csv").read_text()
    assert from_logs == (tmp_path / "listed.csv").read_text()
    table = pd.read_csv(tmp_path / "from_logs.csv")
    assert table.groupby("algo")["n_runs"].first().to_dict() == {"dqn": 2, "ppo": 2}


@pytest.mark.parametrize("bad", ["empty_folder", "folder_without_runs"])
def test_a_folder_with_no_run_exits_2_with_one_line_and_writes_nothing(
    bad: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _fake_run(tmp_path / "logs" / "ppo" / "CartPole-v1_1", [4, 8], {})
    folder = tmp_path / "no_runs"
    folder.mkdir()
    if bad == "folder_without_runs":  # folders and files, an evaluations.npz, but no run.yml anywhere
        shutil.copytree(run.parent, folder / "ppo")
        (folder / "ppo" / "CartPole-v1_1" / "run.yml").unlink()
        (folder / "notes.txt").write_text("not a run")
    out = tmp_path / "out" / "curves.png"
    capsys.readouterr()
    assert main(["plot", str(run), str(folder), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"sb3-ext: error: {folder} is not a run folder and holds no run folder (no run.yml in it")
    assert err.count("\n") == 1
    assert not out.parent.exists()
    with pytest.raises(ConfigError, match="holds no run folder"):
        find_run_dirs([folder])


def test_wall_times_from_the_monitor_files(tmp_path: Path) -> None:
    # Two envs stepping together: when env 0 ends an episode after 2 of its steps, the run has taken 4.
    # Env 0 then restarts its clock (a Monitor appending after a resume), which goes on from its last time.
    monitors = {
        "0.monitor.csv": _monitor(100.0, [(2, 1.0), (3, 2.5), (2, 0.5)]),  # run steps 4, 10, 14 at 1.0, 2.5, 3.0 s
        "1.monitor.csv": _monitor(100.5, [(4, 1.5)]),  # run step 8 at 2.0 s (its clock started 0.5 s later)
    }
    run = load_run(_fake_run(tmp_path / "run", [4, 8, 9, 12, 28], monitors), wall_time=True)
    assert run.wall_times is not None
    # Interpolated between the points, and at the run's mean pace (3.0 s for 14 steps) after the last one.
    np.testing.assert_allclose(run.wall_times, [1.0, 2.0, 2.25, 2.75, 6.0])
    np.testing.assert_allclose(run.returns, [0.5, 2.5, 4.5, 6.5, 8.5])
    assert load_run(run.run_dir).wall_times is None

    no_episode = _fake_run(tmp_path / "short", [4], {"0.monitor.csv": _monitor(100.0, [])})
    with pytest.raises(ConfigError, match="no finished episode"):
        load_run(no_episode, wall_time=True)
    (no_episode / "0.monitor.csv").unlink()
    with pytest.raises(ConfigError, match="no monitor files"):
        load_run(no_episode, wall_time=True)


def _run(name: str, timesteps: list[int], returns: list[float], wall_times: list[float] | None = None) -> RunEvaluations:
    times = None if wall_times is None else np.array(wall_times)
    return RunEvaluations(Path(name), "ppo", "CartPole-v1", np.array(timesteps), np.array(returns), times)


def test_aggregation_on_shared_steps_and_on_a_time_grid() -> None:
    # Different budgets: the steps both runs have.
    short, long = _run("a", [10, 20], [1.0, 2.0], [1.0, 2.0]), _run("b", [10, 20, 30], [3.0, 6.0, 9.0], [1.5, 2.5, 3.5])
    table = aggregate_runs([short, long])
    assert list(table["x"]) == [10, 20] and list(table["mean"]) == [2.0, 4.0] and list(table["std"]) == [1.0, 2.0]
    # In time: both curves interpolated at each evaluation time in [1.5, 2.0], the interval both cover.
    table = aggregate_runs([short, long], x="time")
    assert list(table["x"]) == [1.5, 2.0]
    np.testing.assert_allclose(table["mean"], [(1.5 + 3.0) / 2, (2.0 + 4.5) / 2])
    assert list(table["n_runs"]) == [2, 2]

    with pytest.raises(ConfigError, match="share no evaluation step"):
        aggregate_runs([short, _run("c", [15, 25], [0.0, 0.0])])
    with pytest.raises(ConfigError, match="no evaluation time in common"):
        aggregate_runs([short, _run("c", [15], [0.0], [5.0])], x="time")
