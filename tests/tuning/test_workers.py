"""Claiming queued trials with Optuna's public storage calls (tuning.workers.claim_queued_trial)."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tuning.study import make_storage
from tuning.workers import claim_queued_trial


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_each_queued_trial_is_claimed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}" if kind == "sqlite" else str(tmp_path / "q.log")
    first, second = make_storage(url), make_storage(url)  # two workers
    study = optuna.create_study(study_name="q", storage=first)
    for x in range(3):
        study.enqueue_trial({"x": x})
    other = optuna.load_study(study_name="q", storage=second)
    listed = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))  # the three, before anyone claims

    claimed = claim_queued_trial(study, first)
    assert claimed is not None and claimed[1].number == 0 and claimed[1].system_attrs["fixed_params"] == {"x": 0}
    assert first.get_trial(claimed[0]).state == TrialState.RUNNING
    claimed = claim_queued_trial(other, second)
    assert claimed is not None and claimed[1].number == 1
    other.tell(1, 1.0)

    # A worker that listed the queue before the others claimed (trial 0) and finished (trial 1) its trials skips them.
    monkeypatch.setattr(study, "get_trials", lambda **_: listed)
    claimed = claim_queued_trial(study, first)
    assert claimed is not None and claimed[1].number == 2
    assert claim_queued_trial(other, second) is None
