"""Validation: observables, metrics (separation power, classifier AUC, FPD/KPD), the suite.

Community definitions (CaloChallenge 2022, jetnet) so that numbers can be set beside the
published ones; see :mod:`twinforge.validation.suite` for the result schema and the choices made.
Heavy imports (torch, scikit-learn) happen when this package is imported, not before.
"""

from twinforge.validation.classifier import ClassifierConfig, ClassifierResult, train_classifier
from twinforge.validation.evaluate import EvaluationOutcome, evaluate, register_evaluation
from twinforge.validation.metrics import fpd, kpd, separation_power
from twinforge.validation.observables import (
    Observables,
    ValidationInputError,
    compute_observables,
    voxel_spectrum,
)
from twinforge.validation.suite import (
    DistanceConfig,
    ValidationConfig,
    ValidationResult,
    binning_difference,
    calochallenge_dataset,
    run_validation,
    validate_files,
)

__all__ = [
    "ClassifierConfig",
    "ClassifierResult",
    "DistanceConfig",
    "EvaluationOutcome",
    "Observables",
    "ValidationConfig",
    "ValidationInputError",
    "ValidationResult",
    "binning_difference",
    "calochallenge_dataset",
    "compute_observables",
    "evaluate",
    "fpd",
    "kpd",
    "register_evaluation",
    "run_validation",
    "separation_power",
    "train_classifier",
    "validate_files",
    "voxel_spectrum",
]
