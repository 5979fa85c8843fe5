"""Learning-curve plots: one training run's, and the evaluation curves of several runs aggregated over seeds."""

from __future__ import annotations

import dataclasses
import json
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from stable_baselines3.common.monitor import Monitor, get_monitor_files

from sb3_ext.common.utils import atomic_save, atomic_write_text
from sb3_ext.errors import ConfigError
from sb3_ext.runs import read_run_info

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = [
    "CSV_COLUMNS",
    "X_AXES",
    "RunEvaluations",
    "aggregate_runs",
    "evaluation_figure",
    "find_run_dirs",
    "load_run",
    "plot_learning_curve",
    "plot_runs",
]

#: The x axes of :func:`plot_runs`: environment steps, or wall time in seconds since the run started
X_AXES = ("steps", "time")
XAxis = Literal["steps", "time"]
_X_LABELS = {"steps": "environment steps", "time": "wall time (s)"}
#: The columns of :func:`aggregate_runs`'s table and of the CSV that :func:`plot_runs` writes
CSV_COLUMNS = ("algo", "env", "x", "mean", "std", "n_runs")


def plot_learning_curve(run_dir: str | Path, out_path: str | Path | None = None, title: str = "", window: int = 20) -> Path:
    """
    Plot a run's learning curve: training episode returns from the ``Monitor`` CSV files (raw and a moving average)
    and, where ``evaluations.npz`` exists, the periodic evaluations (mean with a +-1 std band).

    :param run_dir: the run folder (holding ``*.monitor.csv`` and/or ``evaluations.npz``)
    :param out_path: where to write the PNG (default: ``run_dir/learning_curve.png``)
    :param title: plot title
    :param window: episodes in the moving average of training returns
    :return: the path of the PNG
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from stable_baselines3.common.results_plotter import load_results, ts2xy

    run_dir = Path(run_dir)
    out = Path(out_path) if out_path is not None else run_dir / "learning_curve.png"
    fig, ax = plt.subplots(figsize=(8, 4.5))
    if get_monitor_files(str(run_dir)):
        x, y = ts2xy(load_results(str(run_dir)), "timesteps")
        if len(x) > 0:
            ax.plot(x, y, color="tab:blue", alpha=0.25, linewidth=0.8, label="training episodes")
            if len(y) >= window:
                smooth = np.convolve(y, np.ones(window) / window, mode="valid")
                ax.plot(x[window - 1 :], smooth, color="tab:blue", label=f"training, mean of {window}")
    evaluations = run_dir / "evaluations.npz"
    if evaluations.is_file():
        data = np.load(evaluations)
        if len(data["timesteps"]) > 0:
            mean, std = data["results"].mean(axis=1), data["results"].std(axis=1)
            ax.plot(data["timesteps"], mean, "o-", color="tab:orange", label="evaluation mean")
            ax.fill_between(data["timesteps"], mean - std, mean + std, color="tab:orange", alpha=0.2)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episode return")
    ax.set_title(title or run_dir.name)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best")
    fig.tight_layout()
    atomic_save(lambda path: fig.savefig(path, dpi=100), out)
    plt.close(fig)
    return out


@dataclasses.dataclass(frozen=True)
class RunEvaluations:
    """
    The periodic evaluations of one run folder.

    :param run_dir: the run folder
    :param algo: the algorithm's key (from ``run.yml``)
    :param env_id: the environment id (from ``run.yml``)
    :param timesteps: the env steps of each evaluation, increasing
    :param returns: the mean return over the episodes of each evaluation
    :param wall_times: the seconds since the run started at which it reached each of ``timesteps`` (None: not read)
    """

    run_dir: Path
    algo: str
    env_id: str
    timesteps: np.ndarray
    returns: np.ndarray
    wall_times: np.ndarray | None = None


def _read_evaluations(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    path = run_dir / "evaluations.npz"
    no_evaluations = f"{run_dir} has no evaluations (no evaluations.npz or an empty one; train with --eval-freq > 0)"
    if not path.is_file():
        raise ConfigError(no_evaluations)
    try:
        with np.load(path) as data:
            timesteps, results = np.asarray(data["timesteps"], dtype=np.int64), np.asarray(data["results"], dtype=float)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise ConfigError(f"{path}: not an EvalCallback file with timesteps and results ({exc})") from exc
    if len(timesteps) == 0:
        raise ConfigError(no_evaluations)
    if results.ndim != 2 or results.shape[0] != len(timesteps) or results.shape[1] == 0:
        raise ConfigError(f"{path}: results of shape {results.shape} for {len(timesteps)} evaluations")
    order = np.argsort(timesteps, kind="stable")
    return timesteps[order], results.mean(axis=1)[order]


def _continuous(t: np.ndarray) -> np.ndarray:
    """A monitor file's episode end times, where a ``Monitor`` appending after a resume restarts from 0, made to go on
    from the last time before the restart (the time the run was stopped is left out)."""
    out = t.astype(float)
    for i in np.flatnonzero(np.diff(t) < 0) + 1:
        out[i:] = t[i:] + out[i - 1]
    return out


def _wall_times(run_dir: Path, timesteps: np.ndarray) -> np.ndarray:
    """The seconds since the run started at which it reached each of ``timesteps`` (see :func:`load_run`)."""
    import pandas as pd

    files = sorted(run_dir.glob(f"*{Monitor.EXT}"))
    if not files:
        raise ConfigError(f"{run_dir} has no monitor files (*.{Monitor.EXT}), which --x time needs")
    starts, steps, times = [], [], []
    for file in files:
        try:
            with file.open() as handle:
                header = json.loads(handle.readline().lstrip("#"))
                episodes = pd.read_csv(handle, index_col=None)
            start, lengths, ends = float(header["t_start"]), episodes["l"].to_numpy(), episodes["t"].to_numpy()
        except (ValueError, KeyError, TypeError, pd.errors.ParserError) as exc:
            raise ConfigError(f"{file}: not a Monitor file with t_start and columns l, t ({exc})") from exc
        starts.append(start)
        steps.append(len(files) * np.cumsum(lengths))  # the envs step together: n_envs times this env's steps
        times.append(start + _continuous(ends))
    order = np.argsort(np.concatenate(times), kind="stable")
    at_time = np.concatenate(times)[order] - min(starts)
    at_step = np.maximum.accumulate(np.concatenate(steps)[order]) if len(order) else np.zeros(0)
    if len(order) == 0 or at_step[-1] == 0:
        raise ConfigError(f"{run_dir}: its monitor files hold no finished episode, so its evaluations have no wall time")
    at_step, at_time = np.concatenate([[0], at_step]), np.concatenate([[0.0], at_time])
    inside = np.interp(timesteps, at_step, at_time)
    beyond = at_time[-1] * timesteps / at_step[-1]  # after the last finished episode: at the run's mean pace
    return np.where(timesteps <= at_step[-1], inside, beyond)


def _is_run_dir(path: Path) -> bool:
    """Whether ``path`` is a run folder: one holding the ``run.yml`` that ``train`` writes first (and load_run reads)."""
    return (path / "run.yml").is_file()


def _run_dirs_under(folder: Path) -> list[Path]:
    """The run folders strictly below ``folder``, sorted; a run folder's own subfolders are not searched, nor are links
    to folders that are not run folders (a link back up would be searched forever)."""
    try:
        children = sorted(folder.iterdir())
    except OSError as exc:
        raise ConfigError(f"cannot search {folder} for run folders ({exc.strerror or exc})") from exc
    found = []
    for child in children:
        if child.is_dir() and _is_run_dir(child):
            found.append(child)
        elif child.is_dir() and not child.is_symlink():
            found.extend(_run_dirs_under(child))
    return found


def find_run_dirs(paths: Sequence[str | Path]) -> list[Path]:
    """
    Expand folders of runs into their run folders, as rl_zoo3's plot scripts take a log folder: a path that is a
    run folder (one that holds a ``run.yml``, as ``train`` writes) is kept, and a folder that is not one is replaced
    by the run folders found under it, at any depth (``logs/`` gives ``logs/<algo>/<env>_<n>/``), sorted by path.
    A path that is not a folder is kept as given, for :func:`load_run` to report.

    :param paths: run folders and folders of runs, in any mix
    :return: the run folders, in the order of ``paths`` (each folder of runs expanded in place)
    :raises ConfigError: on a folder that is neither a run folder nor holds one
    """
    run_dirs: list[Path] = []
    for path in map(Path, paths):
        if not path.is_dir() or _is_run_dir(path):
            run_dirs.append(path)
            continue
        found = _run_dirs_under(path)
        if not found:
            raise ConfigError(
                f"{path} is not a run folder and holds no run folder (no run.yml in it or below it; "
                f"train writes them in logs/<algo>/<env>_<n>/)"
            )
        run_dirs.extend(found)
    return run_dirs


def load_run(run_dir: str | Path, wall_time: bool = False) -> RunEvaluations:
    """
    Read a run folder that ``train`` wrote: algorithm and env from ``run.yml``, the evaluations from
    ``evaluations.npz`` (EvalCallback's file) and, with ``wall_time``, when the run reached each evaluation's step.

    There is no clock in ``evaluations.npz``: the wall time comes from the ``Monitor`` files, one per env, which log
    each training episode's length and end time. The envs of a ``VecEnv`` step together, so when one env ends an
    episode the run has taken ``n_envs`` times that env's steps so far; the points of all envs, interpolated
    linearly from step 0 at the time the first env was made (so building the model counts), give the time of each
    evaluation step, and a step after the last finished episode gets the run's mean pace. The evaluations' own time
    is included (the training episode during which an evaluation ran ends later). Lengths are steps as ``Monitor``
    counts them: a wrapper above it that skips frames (``AtariWrapper`` on a ``NoFrameskip`` id) makes them frames.

    :param run_dir: the run folder
    :param wall_time: read the wall times too (needs the monitor files)
    :return: the run's evaluations
    :raises ConfigError: when it is not a run folder, has no evaluations, or (with ``wall_time``) no monitor file
        with a finished episode
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir} is not a run folder (no such folder; train writes them in logs/<algo>/<env>_<n>/)")
    info = read_run_info(run_dir)
    algo, env_id = str(info["algo"]), str(info["env_id"])
    timesteps, returns = _read_evaluations(run_dir)
    wall_times = _wall_times(run_dir, timesteps) if wall_time else None
    return RunEvaluations(run_dir, algo, env_id, timesteps, returns, wall_times)


def _on_shared_steps(runs: Sequence[RunEvaluations]) -> tuple[np.ndarray, np.ndarray]:
    shared = runs[0].timesteps
    for run in runs[1:]:
        shared = np.intersect1d(shared, run.timesteps)
    if len(shared) == 0:
        raise ConfigError(
            f"the runs of {runs[0].algo} on {runs[0].env_id} share no evaluation step "
            f"({', '.join(str(r.run_dir) for r in runs)}); plot them with --x time, or train them with the same --eval-freq"
        )
    values = np.stack([run.returns[np.searchsorted(run.timesteps, shared)] for run in runs])
    return shared, values


def _on_time_grid(runs: Sequence[RunEvaluations]) -> tuple[np.ndarray, np.ndarray]:
    times = [run.wall_times if run.wall_times is not None else _wall_times(run.run_dir, run.timesteps) for run in runs]
    low, high = max(t[0] for t in times), min(t[-1] for t in times)
    grid = np.unique(np.concatenate(times))
    grid = grid[(grid >= low) & (grid <= high)]
    if len(grid) == 0:
        raise ConfigError(
            f"the runs of {runs[0].algo} on {runs[0].env_id} have no evaluation time in common "
            f"({', '.join(str(r.run_dir) for r in runs)}): one ends before another's first evaluation"
        )
    return grid, np.stack([np.interp(grid, t, run.returns) for t, run in zip(times, runs, strict=True)])


def aggregate_runs(runs: Sequence[RunEvaluations], x: XAxis = "steps") -> pd.DataFrame:
    """
    Aggregate evaluation curves over the runs (seeds) of each (algorithm, env): at each x, the mean and the
    standard deviation (numpy's, ``ddof=0``) over the runs of each run's mean evaluation return.

    With ``x="steps"`` the runs of a group are aggregated on the evaluation steps they all share, with no
    interpolation (runs of different budgets: the shorter one's steps). With ``x="time"`` their evaluations come at
    different times: each run's curve is interpolated linearly at every evaluation time of the group's runs that lies
    in the interval all of them cover (no extrapolation).

    :param runs: the runs, in any order
    :param x: ``"steps"`` (x in env steps) or ``"time"`` (x in seconds since the run started)
    :return: one row per group and x, columns ``algo``, ``env``, ``x``, ``mean``, ``std``, ``n_runs``, sorted by env,
        algorithm and x
    :raises ConfigError: when the runs of a group have no step (or time) in common
    """
    import pandas as pd

    if x not in X_AXES:
        raise ConfigError(f"x must be one of {', '.join(X_AXES)}, got '{x}'")
    groups: dict[tuple[str, str], list[RunEvaluations]] = {}
    for run in runs:
        groups.setdefault((run.env_id, run.algo), []).append(run)
    frames = []
    for (env_id, algo), group in sorted(groups.items()):
        xs, values = _on_shared_steps(group) if x == "steps" else _on_time_grid(group)
        frame = {"algo": algo, "env": env_id, "x": xs, "mean": values.mean(axis=0), "std": values.std(axis=0)}
        frames.append(pd.DataFrame({**frame, "n_runs": len(group)}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(CSV_COLUMNS))


def evaluation_figure(table: pd.DataFrame, x: XAxis = "steps") -> Figure:
    """
    Draw aggregated evaluation curves (a table of :func:`aggregate_runs`): one panel per env, in each one line per
    algorithm (its mean) with a band of one standard deviation; an algorithm has the same colour in every panel.

    :param table: the aggregated curves
    :param x: the x axis of the table, for the axis label
    :return: the figure (with an Agg canvas; not registered with pyplot, so nothing needs closing)
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    envs, algos = sorted(table["env"].unique()), sorted(table["algo"].unique())
    colors = {algo: f"C{i % 10}" for i, algo in enumerate(algos)}
    n_cols = max(min(len(envs), 3), 1)
    n_rows = max(-(-len(envs) // n_cols), 1)
    fig = Figure(figsize=(5.5 * n_cols, 4.0 * n_rows))
    FigureCanvasAgg(fig)
    axes = fig.subplots(n_rows, n_cols, squeeze=False).ravel()
    for ax, env_id in zip(axes, envs, strict=False):  # more axes than envs in a last row
        for algo, curve in table[table["env"] == env_id].groupby("algo", sort=True):
            xs, mean, std = (curve[key].to_numpy(dtype=float) for key in ("x", "mean", "std"))
            n_runs = int(curve["n_runs"].iloc[0])
            label = f"{algo} ({n_runs} run{'s' if n_runs > 1 else ''})"
            ax.plot(xs, mean, "o-", markersize=3, color=colors[str(algo)], label=label)
            ax.fill_between(xs, mean - std, mean + std, color=colors[str(algo)], alpha=0.2, linewidth=0)
        ax.set_title(env_id)
        ax.set_xlabel(_X_LABELS[x])
        ax.set_ylabel("evaluation return")
        ax.grid(alpha=0.3)
        ax.legend(loc="best")
    for ax in axes[len(envs) :]:
        fig.delaxes(ax)
    fig.tight_layout()
    return fig


def plot_runs(run_dirs: Sequence[str | Path], out_path: str | Path, x: XAxis = "steps") -> tuple[Path, Path]:
    """
    Plot the evaluation curves of run folders, aggregated over the seeds of each (algorithm, env) as
    :func:`aggregate_runs` says, one panel per env (:func:`evaluation_figure`), and write the aggregated values as a
    CSV beside the PNG (same stem). Every folder is read before anything is written, so bad input writes nothing.

    :param run_dirs: run folders that ``train`` wrote (a folder given twice counts once)
    :param out_path: the PNG to write
    :param x: ``"steps"`` or ``"time"`` (wall time in seconds, from the monitor files: see :func:`load_run`)
    :return: the paths of the PNG and the CSV
    :raises ConfigError: on an output that is not a ``.png``, a folder that is not a run folder or has no
        evaluations, or runs of a group with nothing in common
    """
    out = Path(out_path)
    if out.suffix.lower() != ".png":
        raise ConfigError(f"the output must be a .png file (the CSV goes beside it), got '{out}'")
    if x not in X_AXES:
        raise ConfigError(f"x must be one of {', '.join(X_AXES)}, got '{x}'")
    if not run_dirs:
        raise ConfigError("no run folder to plot")
    unique: dict[Path, Path] = {}
    for path in map(Path, run_dirs):
        unique.setdefault(path.resolve(), path)  # the first spelling of each folder
    runs = [load_run(path, wall_time=x == "time") for path in unique.values()]
    table = aggregate_runs(runs, x)
    fig = evaluation_figure(table, x)
    csv = out.with_suffix(".csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(csv, table.to_csv(index=False))
    atomic_save(lambda path: fig.savefig(path, dpi=100), out)
    return out, csv
