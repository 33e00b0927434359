"""The pruning callback reports the validation loss of each epoch and stops a bad trial."""

from __future__ import annotations

from dataclasses import dataclass, field

import optuna
import pytest
import torch

from twinforge.tune import PruningCallback


@dataclass
class FakeTrial:
    """Records reports; says "prune" once a loss above ``limit`` was reported."""

    limit: float
    reports: list[tuple[int, float]] = field(default_factory=list)

    def report(self, value: float, step: int) -> None:
        self.reports.append((step, value))

    def should_prune(self) -> bool:
        return bool(self.reports) and self.reports[-1][1] > self.limit


@dataclass
class FakeTrainer:
    current_epoch: int
    callback_metrics: dict[str, torch.Tensor]
    sanity_checking: bool = False


def test_reports_every_epoch_and_prunes_a_bad_trial() -> None:
    trial = FakeTrial(limit=1.0)
    callback = PruningCallback(trial)
    callback.on_validation_end(FakeTrainer(0, {"val/loss": torch.tensor(0.5)}), None)
    assert trial.reports == [(0, 0.5)]  # good: goes on
    with pytest.raises(optuna.TrialPruned, match="pruned after epoch 1: val/loss 2"):
        callback.on_validation_end(FakeTrainer(1, {"val/loss": torch.tensor(2.0)}), None)
    assert trial.reports == [(0, 0.5), (1, 2.0)]


def test_ignores_sanity_checks_and_missing_losses() -> None:
    trial = FakeTrial(limit=0.0)
    callback = PruningCallback(trial)
    callback.on_validation_end(FakeTrainer(0, {"val/loss": torch.tensor(5.0)}, True), None)
    callback.on_validation_end(FakeTrainer(0, {"train/loss": torch.tensor(5.0)}), None)
    assert trial.reports == []


def test_with_a_real_trial_and_the_median_rule() -> None:
    study = optuna.create_study(
        pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=1)
    )
    first = study.ask()
    for epoch, loss in enumerate([1.0, 0.5, 0.4]):
        PruningCallback(first).on_validation_end(
            FakeTrainer(epoch, {"val/loss": torch.tensor(loss)}), None
        )
    study.tell(first, 0.4)
    second = study.ask()
    callback = PruningCallback(second)
    callback.on_validation_end(FakeTrainer(0, {"val/loss": torch.tensor(9.0)}), None)  # warm-up
    with pytest.raises(optuna.TrialPruned):
        callback.on_validation_end(FakeTrainer(1, {"val/loss": torch.tensor(8.0)}), None)
