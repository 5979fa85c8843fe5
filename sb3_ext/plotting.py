"""Learning-curve plots of a training run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from stable_baselines3.common.monitor import get_monitor_files

from sb3_ext.common.utils import atomic_save

__all__ = ["plot_learning_curve"]


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
