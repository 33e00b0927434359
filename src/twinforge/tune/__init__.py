"""Hyper-parameter search (``twinforge tune``): Optuna studies over a training config whose
objective is a figure of the validation suite on a held-out reference.

:func:`load_tune_config` reads a ``kind: tune`` YAML (search space checked against the training
config), :func:`run_study` runs or continues the study (trials in-process or on the campaigns'
Dask executors, pruning on the validation loss, resumable after a kill) and writes the best
training config, ``report.html`` and ``study.json`` into the study directory.
"""

from __future__ import annotations

from twinforge.tune.config import Param, TuneConfig, check_space, load_tune_config
from twinforge.tune.objective import FIGURES, describe_objective, objective_value
from twinforge.tune.storage import resolve_storage
from twinforge.tune.study import PruningCallback, StudyOutcome, TrialOutcome, run_study

__all__ = [
    "FIGURES",
    "Param",
    "PruningCallback",
    "StudyOutcome",
    "TrialOutcome",
    "TuneConfig",
    "check_space",
    "describe_objective",
    "load_tune_config",
    "objective_value",
    "resolve_storage",
    "run_study",
]
