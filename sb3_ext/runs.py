"""Run folders that survive a crash: atomic checkpoints, and resuming a run from its newest one.

A checkpoint is a folder ``<run>/checkpoints/<steps>/`` holding what SB3's ``CheckpointCallback`` saves: the model,
the replay buffer of an off-policy algorithm (a prioritized buffer with its priorities) and the ``VecNormalize``
statistics. It is written under a hidden temporary name and renamed into place in one step, so a crash (even
SIGKILL) while writing leaves the previous checkpoint complete and usable. :func:`resume_run` continues a run from
its newest checkpoint to the budget in its ``run.yml``, in the same folder: the monitor files and
``evaluations.npz`` are cut back to the checkpoint's step and go on from there, so no timestep appears twice.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback, EvalCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from sb3_ext.common.utils import atomic_save, atomic_write_text
from sb3_ext.common.yaml_utils import read_yaml
from sb3_ext.config import ZooConfig, load_zoo_config
from sb3_ext.errors import ConfigError
from sb3_ext.registry import get_algo

__all__ = [
    "CHECKPOINTS",
    "VEC_ENV_CLASSES",
    "AtomicCheckpointCallback",
    "Checkpoint",
    "atomic_eval_callback",
    "checkpoints",
    "continue_callbacks",
    "read_run_info",
    "resume_run",
]

#: The checkpoints' folder inside a run folder
CHECKPOINTS = "checkpoints"
_PREFIX = "checkpoint"
#: The VecEnv classes by the names ``train --vec-env`` takes (and writes in ``run.yml``)
VEC_ENV_CLASSES: dict[str, type[DummyVecEnv] | type[SubprocVecEnv]] = {"dummy": DummyVecEnv, "subproc": SubprocVecEnv}


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """
    One complete checkpoint of a run.

    :param path: its folder
    :param steps: the model's ``num_timesteps`` when it was saved
    """

    path: Path
    steps: int

    def file(self, kind: str = "", extension: str = "zip") -> Path:
        """
        :param kind: ``""`` for the model, ``"replay_buffer_"`` or ``"vecnormalize_"`` (CheckpointCallback's names)
        :param extension: ``zip`` for the model, ``pkl`` for the others
        :return: the path of that file (it may not exist: no replay buffer on-policy, no statistics without
            normalisation)
        """
        return self.path / f"{_PREFIX}_{kind}{self.steps}_steps.{extension}"


def checkpoints(run_dir: str | Path) -> list[Checkpoint]:
    """
    :param run_dir: a run folder
    :return: its complete checkpoints, oldest first (hidden, half-written ones are left out)
    """
    folder = Path(run_dir) / CHECKPOINTS
    found = (
        [Checkpoint(p, int(p.name)) for p in folder.glob("*") if p.is_dir() and p.name.isdigit()] if folder.is_dir() else []
    )
    return sorted(found, key=lambda c: c.steps)


class AtomicCheckpointCallback(CheckpointCallback):
    """
    SB3's ``CheckpointCallback`` (model, replay buffer, ``VecNormalize`` statistics), each checkpoint written into a
    hidden folder that is then renamed to ``<save_path>/<steps>/`` in one step; the newest ``keep`` are kept.

    By design it saves at the start of the first rollout after every ``save_freq`` env steps (and when training ends),
    not inside a step as SB3's does: there the replay buffer lacks the step's transition and the model is between a
    rollout and its gradient steps, so a run resumed from it would lose both. At a rollout's start the model has done
    its gradient steps and the buffer holds every transition: resuming continues exactly where it stood.

    :param save_freq: env steps between checkpoints (all envs together)
    :param save_path: the checkpoints' folder, ``<run>/checkpoints``
    :param keep: how many checkpoints to keep, the newest (None: all)
    :param verbose: 2 prints each checkpoint saved
    """

    def __init__(self, save_freq: int, save_path: str | Path, keep: int | None = None, verbose: int = 0) -> None:
        if keep is not None and keep < 1:
            raise ConfigError(f"--keep-checkpoints must be >= 1 (how many to keep), got {keep}")
        # (save_freq=1: the base class's saving, called by this class's triggers, always saves)
        super().__init__(
            1, str(save_path), name_prefix=_PREFIX, save_replay_buffer=True, save_vecnormalize=True, verbose=verbose
        )
        self.every, self.folder, self.keep = save_freq, Path(save_path), keep
        self.next_save = save_freq

    def _init_callback(self) -> None:
        super()._init_callback()
        self.next_save = (self.model.num_timesteps // self.every + 1) * self.every  # (a resumed run goes on)

    def _on_step(self) -> bool:
        return True

    def _on_rollout_start(self) -> None:
        if self.model.num_timesteps >= self.next_save:
            self.save()
            self.next_save = (self.model.num_timesteps // self.every + 1) * self.every

    def _on_training_end(self) -> None:
        if not (self.folder / str(self.model.num_timesteps)).is_dir():
            self.save()

    def save(self) -> Checkpoint:
        """:return: a new checkpoint of the model now, written atomically (older ones beyond ``keep`` are removed)"""
        self.num_timesteps = self.model.num_timesteps
        final = self.folder / str(self.num_timesteps)
        tmp = self.folder / f".{final.name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        self.save_path = str(tmp)  # SB3 writes its files into the hidden folder ...
        try:
            super()._on_step()
        finally:
            self.save_path = str(self.folder)
        shutil.rmtree(final, ignore_errors=True)  # (one of the same step, from before a resume)
        os.replace(tmp, final)  # ... which becomes the checkpoint in one step
        if self.keep is not None:
            for old in checkpoints(self.folder.parent)[: -self.keep]:
                shutil.rmtree(old.path, ignore_errors=True)
        return Checkpoint(final, self.num_timesteps)


class _PublishEvaluations(BaseCallback):
    """Called by EvalCallback after each evaluation: its temporary ``.npz`` replaces ``evaluations.npz`` in one step."""

    def __init__(self, tmp: Path, final: Path) -> None:
        super().__init__()
        self.tmp, self.final = tmp, final

    def _on_step(self) -> bool:
        if self.tmp.is_file():
            os.replace(self.tmp, self.final)
        return True


def atomic_eval_callback(eval_env: Any, run_dir: Path, **kwargs: Any) -> EvalCallback:
    """
    SB3's ``EvalCallback`` whose ``evaluations.npz`` in ``run_dir`` is replaced atomically after each evaluation
    (written to a hidden file first), so a crash never leaves a half-written one.

    :param eval_env: the evaluation env
    :param run_dir: the run folder
    :param kwargs: ``EvalCallback``'s other arguments (not ``log_path`` nor ``callback_after_eval``)
    :return: the callback
    """
    tmp = run_dir / ".evaluations.tmp"
    callback = EvalCallback(
        eval_env, callback_after_eval=_PublishEvaluations(Path(f"{tmp}.npz"), run_dir / "evaluations.npz"), **kwargs
    )
    callback.log_path = str(tmp)  # np.savez adds .npz
    return callback


def read_run_info(run_dir: str | Path) -> dict[str, Any]:
    """
    :param run_dir: a run folder
    :return: its ``run.yml``
    :raises ConfigError: when it is not a run folder, or its ``run.yml`` is malformed
    """
    path = Path(run_dir) / "run.yml"
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not a run folder (no run.yml; train writes one in logs/<algo>/<env>_<n>/)")
    info = read_yaml(path, "run")
    if not isinstance(info, dict) or not {"algo", "env_id", "seed", "n_timesteps"} <= set(info):
        raise ConfigError(f"{path}: not a run.yml written by train (expected algo, env_id, seed and n_timesteps)")
    return info


def _vec_env_cls(name: str | None, where: Path) -> type[DummyVecEnv] | type[SubprocVecEnv]:
    """:return: the VecEnv class a ``run.yml`` names (``DummyVecEnv`` where it names none: runs from before the option)"""
    if name is None:
        return DummyVecEnv
    if name not in VEC_ENV_CLASSES:
        raise ConfigError(f"{where}: vec_env must be one of {', '.join(VEC_ENV_CLASSES)}, got {name!r}")
    return VEC_ENV_CLASSES[name]


def _cut_monitor_files(run_dir: Path, steps_per_env: int) -> None:
    """Drop the episodes each ``Monitor`` file logged after the checkpoint (its env's steps beyond ``steps_per_env``)."""
    for path in run_dir.glob("*.monitor.csv"):
        header, columns, *rows = path.read_text().splitlines(keepends=True)
        lengths = np.cumsum([int(row.split(",")[1]) for row in rows]) if rows else np.zeros(0)
        kept = rows[: int(np.searchsorted(lengths, steps_per_env, side="right"))]
        atomic_write_text(path, "".join([header, columns, *kept]))


def _restore_evaluations(callback: EvalCallback, run_dir: Path, steps: int) -> None:
    """Give ``callback`` the run's evaluations up to ``steps`` (and write them back), so it goes on from there."""
    path = run_dir / "evaluations.npz"
    if not path.is_file():
        return
    with np.load(path) as data:
        keep = data["timesteps"] <= steps
        timesteps, results, lengths = data["timesteps"][keep], data["results"][keep], data["ep_lengths"][keep]
    callback.evaluations_timesteps = [int(t) for t in timesteps]
    callback.evaluations_results = [list(r) for r in results]
    callback.evaluations_length = [list(n) for n in lengths]
    if len(results):
        callback.best_mean_reward = float(np.max(np.mean(results, axis=1)))
    atomic_save(lambda tmp: np.savez(tmp, timesteps=timesteps, results=results, ep_lengths=lengths), path)


def resume_run(
    run_dir: str | Path, device: str = "auto", vec_env_cls: type[DummyVecEnv] | type[SubprocVecEnv] | None = None
) -> tuple[BaseAlgorithm, ZooConfig, dict[str, Any], Checkpoint]:
    """
    Load a run's newest checkpoint to continue it in its folder: the model with its env (``VecNormalize`` statistics
    included), the replay buffer of an off-policy algorithm, the monitor files and ``evaluations.npz`` cut back to
    the checkpoint's step. The caller trains the rest of the budget with ``reset_num_timesteps=False``, with the
    callbacks that :func:`continue_callbacks` sets up.

    :param run_dir: the run folder
    :param device: torch device
    :param vec_env_cls: the VecEnv class to continue on (default: the run's own, ``vec_env`` in its ``run.yml``)
    :return: the model, the run's config, its ``run.yml`` and the checkpoint
    :raises ConfigError: when it is not a run folder, its ``run.yml`` names an unknown ``vec_env``, or it has no
        checkpoint
    """
    run_dir = Path(run_dir)
    info = read_run_info(run_dir)
    if vec_env_cls is None:
        vec_env_cls = _vec_env_cls(info.get("vec_env"), run_dir / "run.yml")
    found = checkpoints(run_dir)
    if not found:
        raise ConfigError(f"{run_dir} has no checkpoint in {run_dir / CHECKPOINTS} (train with --save-freq to write them)")
    checkpoint = found[-1]
    config = run_dir / "config.yml"
    cfg = load_zoo_config(info["algo"], info["env_id"], config if config.is_file() else None, n_timesteps=info["n_timesteps"])
    _cut_monitor_files(run_dir, checkpoint.steps // cfg.n_envs)
    cfg_appending = dataclasses.replace(cfg, monitor_kwargs={**cfg.monitor_kwargs, "override_existing": False})
    stats = checkpoint.file("vecnormalize_", "pkl")
    env = cfg_appending.make_env(
        seed=int(info["seed"]) + checkpoint.steps,  # new episodes, not the first ones again
        monitor_dir=str(run_dir),
        vec_env_cls=vec_env_cls,
        normalize_stats=stats if stats.is_file() else None,
    )
    model = get_algo(cfg.algo).cls.load(str(checkpoint.file()), env=env, device=device)
    model._last_obs = None  # the env is a new one: learn() resets it (new episodes)
    buffer = checkpoint.file("replay_buffer_", "pkl")
    if isinstance(model, OffPolicyAlgorithm) and buffer.is_file():
        model.load_replay_buffer(str(buffer))
    return model, cfg, info, checkpoint


def continue_callbacks(callbacks: list[BaseCallback], run_dir: Path, checkpoint: Checkpoint, n_envs: int) -> None:
    """
    Set up a resumed run's callbacks: their step counts continue from the checkpoint (evaluations and checkpoints stay
    on the same grid of steps), and the evaluation callback gets the evaluations made up to it.

    :param callbacks: the callbacks of the run
    :param run_dir: the run folder
    :param checkpoint: the checkpoint the run resumes from
    :param n_envs: the number of envs (steps per callback call)
    """
    for callback in callbacks:
        callback.n_calls = checkpoint.steps // n_envs  # (checkpoints go on by the model's steps themselves)
        if isinstance(callback, EvalCallback):
            _restore_evaluations(callback, run_dir, checkpoint.steps)
