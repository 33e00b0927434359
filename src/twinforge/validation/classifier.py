"""Classifier two-sample test, following the CaloChallenge 2022 ``evaluate.py`` protocol.

A fully connected network learns to tell reference (label 1) from generated (label 0) showers.
If it cannot (AUC 0.5), the generated showers are indistinguishable at this budget.

Protocol (CaloChallenge ``code/evaluate.py``, with its variable names in brackets):

* inputs: low level ``[log10(E_inc / MeV), 100 * voxels / E_inc]`` (``prepare_low_data_for_
  classifier``; note the factor 100) or the high-level features of
  :meth:`~twinforge.validation.observables.Observables.high_level_matrix`
  (``prepare_high_data_for_classifier``);
* the same number of showers of each class (the larger sample is subsampled, seeded), each
  class split 60/20/20 into train / selection [``test``] / held-out [``val``];
* network: ``hidden`` fully connected layers with LeakyReLU and dropout, one logit output;
  binary cross-entropy with logits, Adam (lr 2e-4), batches of 1000;
* after every epoch the accuracy on the selection split is measured and the best epoch kept
  (training stops at accuracy 1, or after ``patience`` epochs without improvement: an addition
  for CPU budgets); CaloChallenge defaults to 50 epochs, this module to
  :attr:`ClassifierConfig.epochs`;
* an isotonic regression (``y_min=1e-6, y_max=1-1e-6``, clipped) fitted on the selection split's
  probabilities calibrates the held-out probabilities, on which AUC, accuracy and
  JSD = ``(ln 2 - BCE) / ln 2`` are reported.

Differences: float32 instead of float64 (speed), a seeded split instead of NumPy's global
state, early stopping. With a fixed ``seed`` and the same number of torch threads, results are
reproducible.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from pydantic import Field, PositiveInt, model_validator
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score

from twinforge.config import StrictModel
from twinforge.validation.metrics import jsd_from_probabilities

__all__ = [
    "ClassifierConfig",
    "ClassifierResult",
    "classifier_scores",
    "low_level_features",
    "min_showers_for_classifier",
    "train_classifier",
]

log = logging.getLogger(__name__)

MIN_PER_SPLIT = 50
"""Showers of each class needed in the smallest of the train, selection and held-out splits."""

MIN_PER_CLASS_IN_BIN = 20
"""Held-out showers of each class needed to report a per-energy-bin AUC."""

_EVAL_BATCH = 4096


class ClassifierConfig(StrictModel):
    """Size and budget of the classifier that tells generated from reference showers.

    The defaults keep the CaloChallenge network (two hidden layers of 2048) and optimiser but
    cap the epochs so that the whole suite runs in minutes on a few CPU cores: on 10k vs 10k
    dataset-2 showers one low-level epoch takes about 13 s on 2 cores.
    """

    hidden: list[PositiveInt] = Field(
        default_factory=lambda: [2048, 2048], description="hidden layer widths"
    )
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout after each hidden layer")
    epochs: PositiveInt = Field(5, description="maximum training epochs (CaloChallenge: 50)")
    patience: int = Field(
        3,
        ge=0,
        description="stop after this many epochs without better selection accuracy "
        "(0: never stop early)",
    )
    lr: float = Field(2e-4, gt=0.0, description="Adam learning rate")
    batch_size: PositiveInt = 1000
    val_fraction: float = Field(
        0.2, gt=0.0, lt=1.0, description="share of each class for epoch selection + calibration"
    )
    test_fraction: float = Field(
        0.2, gt=0.0, lt=1.0, description="share of each class held out for AUC and JSD"
    )
    seed: int = Field(0, ge=0)
    threads: PositiveInt | None = Field(
        None,
        description="torch intra-op threads while training (None: torch's current setting); "
        "1 is fastest for small networks or on an oversubscribed machine",
    )

    @model_validator(mode="after")
    def _fractions(self) -> ClassifierConfig:
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ValueError(
                f"val_fraction + test_fraction = {self.val_fraction + self.test_fraction} "
                "leaves nothing to train on; keep the sum below 1"
            )
        return self


def min_showers_for_classifier(config: ClassifierConfig) -> int:
    """Showers of each class needed so that every split holds :data:`MIN_PER_SPLIT` of them."""
    smallest = min(
        config.val_fraction, config.test_fraction, 1.0 - config.val_fraction - config.test_fraction
    )
    return math.ceil(MIN_PER_SPLIT / smallest - 1e-9)


@dataclass
class ClassifierResult:
    """Outcome of :func:`train_classifier`.

    ``test_index_ref`` / ``test_index_gen`` index the held-out showers in the arrays given to
    :func:`train_classifier`; ``test_prob_ref`` / ``test_prob_gen`` are their calibrated
    probabilities of being reference showers, so that scores can be restricted to any subset
    (for example an incident-energy bin) with :func:`classifier_scores`.
    """

    auc: float
    jsd: float
    accuracy: float
    n_train: int
    n_test: int
    best_epoch: int
    epochs_run: int
    test_index_ref: NDArray[np.int64]
    test_index_gen: NDArray[np.int64]
    test_prob_ref: NDArray[np.float64]
    test_prob_gen: NDArray[np.float64]
    history: list[dict[str, float]]

    def summary(self) -> dict[str, float | int]:
        """The JSON entry: auc, jsd, accuracy, n_train, n_test, best_epoch, epochs_run."""
        return {
            "auc": self.auc,
            "jsd": self.jsd,
            "accuracy": self.accuracy,
            "n_train": self.n_train,
            "n_test": self.n_test,
            "best_epoch": self.best_epoch,
            "epochs_run": self.epochs_run,
        }


def low_level_features(
    showers: NDArray[np.floating], energy: NDArray[np.floating]
) -> NDArray[np.float32]:
    """CaloChallenge low-level input (N, V + 1): ``[log10(E_inc / MeV), 100 * voxels / E_inc]``.

    ``showers`` (N, V) MeV, ``energy`` (N,) MeV; float32, built without float64 temporaries of
    the whole array.
    """
    e = np.asarray(energy, dtype=np.float64).reshape(-1)
    out = np.empty((len(e), showers.shape[1] + 1), dtype=np.float32)
    out[:, 0] = np.log10(e)
    np.multiply(showers, (100.0 / e)[:, None].astype(np.float32), out=out[:, 1:])
    return out


def classifier_scores(
    prob_ref: NDArray[np.floating], prob_gen: NDArray[np.floating]
) -> tuple[float, float, float]:
    """``(auc, jsd, accuracy)`` of calibrated probabilities of reference (label 1) and
    generated (label 0) showers. Accuracy uses the threshold 0.5 and weights both classes
    equally; JSD see :func:`~twinforge.validation.metrics.jsd_from_probabilities`."""
    prob = np.concatenate([prob_ref, prob_gen])
    label = np.concatenate([np.ones(len(prob_ref)), np.zeros(len(prob_gen))])
    if len(prob_ref) == 0 or len(prob_gen) == 0:
        return math.nan, math.nan, math.nan
    auc = float(roc_auc_score(label, prob))
    jsd = jsd_from_probabilities(prob, label)
    accuracy = 0.5 * (float(np.mean(prob_ref >= 0.5)) + float(np.mean(prob_gen < 0.5)))
    return auc, jsd, accuracy


def _build_network(n_in: int, config: ClassifierConfig) -> torch.nn.Sequential:
    layers: list[torch.nn.Module] = []
    width = n_in
    for h in config.hidden:
        layers += [
            torch.nn.Linear(width, h),
            torch.nn.LeakyReLU(),
            torch.nn.Dropout(config.dropout),
        ]
        width = h
    layers.append(torch.nn.Linear(width, 1))
    return torch.nn.Sequential(*layers)


def _split(
    n: int, config: ClassifierConfig, rng: np.random.Generator
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    perm = rng.permutation(n)
    n_val = round(n * config.val_fraction)
    n_test = round(n * config.test_fraction)
    n_train = n - n_val - n_test
    return perm[:n_train], perm[n_train : n_train + n_val], perm[n_train + n_val :]


@torch.no_grad()
def _predict(model: torch.nn.Module, x: torch.Tensor) -> NDArray[np.float64]:
    model.eval()
    out = [
        torch.sigmoid(model(x[i : i + _EVAL_BATCH])).reshape(-1)
        for i in range(0, len(x), _EVAL_BATCH)
    ]
    return torch.cat(out).double().numpy()


def train_classifier(
    reference: NDArray[np.floating],
    generated: NDArray[np.floating],
    config: ClassifierConfig | None = None,
    *,
    progress: Callable[[str], None] | None = None,
    name: str = "classifier",
) -> ClassifierResult:
    """Train the classifier on features (N_ref, F) vs (N_gen, F) and score the held-out split.

    Args:
        reference: reference features (label 1), e.g. :func:`low_level_features`.
        generated: generated features (label 0), same F.
        config: network and budget; defaults to :class:`ClassifierConfig`.
        progress: called with a one-line message after every epoch.
        name: used in log and progress messages.

    Raises:
        ValueError: fewer showers of a class than :func:`min_showers_for_classifier` needs, or
            feature counts differ (the suite checks both before calling).
    """
    config = config or ClassifierConfig()
    if reference.ndim != 2 or generated.ndim != 2 or reference.shape[1] != generated.shape[1]:
        raise ValueError(f"feature shapes differ: {reference.shape} vs {generated.shape}")
    need = min_showers_for_classifier(config)
    n = min(len(reference), len(generated))
    if n < need:
        raise ValueError(f"{name} needs at least {need} showers of each sample, got {n}")
    rng = np.random.default_rng([config.seed, 5])
    # equal class sizes: subsample the larger sample (seeded)
    keep_ref = np.sort(rng.permutation(len(reference))[:n])
    keep_gen = np.sort(rng.permutation(len(generated))[:n])
    splits_ref = _split(n, config, rng)
    splits_gen = _split(n, config, rng)

    def gather(part: int) -> tuple[torch.Tensor, torch.Tensor]:
        xr = reference[keep_ref[splits_ref[part]]]
        xg = generated[keep_gen[splits_gen[part]]]
        x = torch.from_numpy(np.concatenate([xr, xg]).astype(np.float32, copy=False))
        y = torch.cat([torch.ones(len(xr)), torch.zeros(len(xg))])
        return x, y

    x_train, y_train = gather(0)
    x_val, y_val = gather(1)
    x_test, _ = gather(2)
    n_test_ref = len(splits_ref[2])

    threads = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    try:
        return _fit(x_train, y_train, x_val, y_val, x_test, n_test_ref, config, progress, name,
                    keep_ref[splits_ref[2]], keep_gen[splits_gen[2]])  # fmt: skip
    finally:
        torch.set_num_threads(threads)


def _fit(
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_val: torch.Tensor,
    y_val: torch.Tensor,
    x_test: torch.Tensor,
    n_test_ref: int,
    config: ClassifierConfig,
    progress: Callable[[str], None] | None,
    name: str,
    test_index_ref: NDArray[np.int64],
    test_index_gen: NDArray[np.int64],
) -> ClassifierResult:
    """Training loop, epoch selection, calibration and scores (see :func:`train_classifier`)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = _build_network(x_train.shape[1], config)
        optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
        loss_fn = torch.nn.BCEWithLogitsLoss()
        shuffle = torch.Generator().manual_seed(config.seed)
        best_acc, best_epoch, best_state = -math.inf, 0, None
        history: list[dict[str, float]] = []
        epochs_run = 0
        y_val_np = y_val.numpy().astype(bool)
        for epoch in range(1, config.epochs + 1):
            model.train()
            perm = torch.randperm(len(x_train), generator=shuffle)
            total = 0.0
            for i in range(0, len(perm), config.batch_size):
                idx = perm[i : i + config.batch_size]
                optimiser.zero_grad(set_to_none=True)
                loss = loss_fn(model(x_train[idx]).reshape(-1), y_train[idx])
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * len(idx)
            epochs_run = epoch
            p_val = _predict(model, x_val)
            acc = 0.5 * (
                float(np.mean(p_val[y_val_np] >= 0.5)) + float(np.mean(p_val[~y_val_np] < 0.5))
            )
            history.append({"epoch": epoch, "train_loss": total / len(perm), "val_accuracy": acc})
            message = (
                f"{name}: epoch {epoch}/{config.epochs}, train loss {total / len(perm):.4f}, "
                f"selection accuracy {acc:.4f}"
            )
            log.info(message)
            if progress is not None:
                progress(message)
            if acc > best_acc:
                best_acc, best_epoch = acc, epoch
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if acc >= 1.0 or (config.patience and epoch - best_epoch >= config.patience):
                break
        assert best_state is not None
        model.load_state_dict(best_state)
        p_val = _predict(model, x_val)
        p_test = _predict(model, x_test)

    calibrator = IsotonicRegression(out_of_bounds="clip", y_min=1e-6, y_max=1.0 - 1e-6)
    calibrator.fit(p_val, y_val.numpy())
    p_cal = np.asarray(calibrator.predict(p_test), dtype=np.float64)
    prob_ref, prob_gen = p_cal[:n_test_ref], p_cal[n_test_ref:]
    auc, jsd, accuracy = classifier_scores(prob_ref, prob_gen)
    log.info("%s: AUC %.4f, JSD %.4f (best epoch %d of %d)", name, auc, jsd, best_epoch, epochs_run)
    return ClassifierResult(
        auc=auc,
        jsd=jsd,
        accuracy=accuracy,
        n_train=len(x_train),
        n_test=len(x_test),
        best_epoch=best_epoch,
        epochs_run=epochs_run,
        test_index_ref=test_index_ref,
        test_index_gen=test_index_gen,
        test_prob_ref=prob_ref,
        test_prob_gen=prob_gen,
        history=history,
    )
