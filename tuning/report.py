"""The outputs of a study: best config as zoo YAML, a CSV of all trials, plots and a short report."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optuna.trial import TrialState

from sb3_ext.common.utils import atomic_save, atomic_write_text
from sb3_ext.config import load_zoo_config

if TYPE_CHECKING:
    import optuna

    from tuning.objective import TuningTask

__all__ = ["write_report"]

_PLOTS = {
    "optimization_history.png": "plot_optimization_history",
    "param_importances.png": "plot_param_importances",
    "intermediate_values.png": "plot_intermediate_values",
}


def _plots(study: optuna.Study, out: Path) -> dict[str, str]:
    """Write each plot; return the ones that could not be drawn with the reason."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as optuna_plots

    skipped = {}
    for filename, function in _PLOTS.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # optuna marks its matplotlib plots experimental
                ax = getattr(optuna_plots, function)(study)
            fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
            fig.set_size_inches(8, 5)
            fig.tight_layout()
            atomic_save(lambda path: fig.savefig(path, dpi=100), out / filename)  # noqa: B023 (called at once)
            plt.close(fig)
        except Exception as exc:
            skipped[filename] = f"{type(exc).__name__}: {exc}".splitlines()[0]
            plt.close("all")
    return skipped


def write_report(study: optuna.Study, out: Path, task: TuningTask) -> None:
    """
    Write ``best.yml``, ``trials.csv``, the plots and ``report.md`` into ``out``.

    :param study: the study
    :param out: the output folder
    :param task: what was tuned
    """
    out.mkdir(parents=True, exist_ok=True)
    trials = study.get_trials(deepcopy=False)
    atomic_write_text(out / "trials.csv", study.trials_dataframe().to_csv(index=False))
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    lines = [f"# Study `{study.study_name}`: {task.algo} on {task.env_id}", ""]
    counts = {state.name: sum(t.state == state for t in trials) for state in TrialState}
    lines.append("Trials: " + ", ".join(f"{n} {name.lower()}" for name, n in counts.items() if n) + ".")
    lines.append("")
    if complete:
        best = study.best_trial
        cfg = load_zoo_config(
            task.algo, task.env_id, task.config, hyperparams=best.user_attrs["hyperparams"], n_timesteps=task.n_timesteps
        )
        atomic_write_text(
            out / "best.yml",
            f"# Best trial {best.number} of study '{study.study_name}' (value {best.value:.4f})\n" + cfg.to_yaml(),
        )
        lines += [
            f"## Best trial: {best.number}, value {best.value:.4f}",
            "",
            f"Per-seed values: {', '.join(f'{v:.4f}' for v in best.user_attrs.get('seed_values', []))}.",
            "Train it with `python -m sb3_ext train --algo {} --env {} --config {}`.".format(
                task.algo, task.env_id, out / "best.yml"
            ),
            "",
            "| sampled parameter | value |",
            "|---|---|",
        ]
        hyper: dict[str, Any] = best.user_attrs["hyperparams"]
        lines += [f"| {k} | {v} |" for k, v in best.user_attrs.get("params", best.params).items()]
        lines += ["", "| hyperparameter | value |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in hyper.items()]
        lines.append("")
    else:
        lines += ["No trial completed: no best configuration.", ""]
    skipped = _plots(study, out)
    lines.append("## Plots")
    lines.append("")
    for filename in _PLOTS:
        lines.append(f"- {filename}: not drawn ({skipped[filename]})" if filename in skipped else f"![{filename}]({filename})")
    lines.append("")
    failed = [t for t in trials if t.state == TrialState.FAIL]
    if failed:
        lines += ["## Failed trials", "", "| trial | reason |", "|---|---|"]
        for t in failed:
            reason = t.user_attrs.get("fail_reason", "its worker stopped sending heartbeats (killed or lost): queued again")
            lines.append(f"| {t.number} | {reason.replace('|', '/')} |")
        lines.append("")
    atomic_write_text(out / "report.md", "\n".join(lines))
