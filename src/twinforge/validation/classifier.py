"""Classifier two-sample test: the CaloChallenge 2022 protocol, with named budgets.

A fully connected network learns to tell reference (label 1) from generated (label 0) showers.
If it cannot (AUC 0.5), the generated showers are indistinguishable at this budget.

Protocol (CaloChallenge ``code/evaluate.py``, arXiv 2410.21611; its names in brackets):

* inputs, after every voxel below the readout threshold is set to zero in both samples (the
  suite does that): low level ``[log10(E_inc / MeV), voxels / E_inc]``
  (``prepare_low_data_for_classifier``), or its ``normed`` variant ``[log10 E_inc,
  voxels / E_layer, log10(E_layer / MeV + 1e-8)]``; high level the challenge's features of
  :meth:`~twinforge.validation.observables.Observables.high_level_matrix` (362 for dataset 2,
  ``prepare_high_data_for_classifier``);
* the same number of showers of each class (the larger sample is subsampled, seeded), each
  class split 60/20/20 into train / selection [``test``] / held-out [``val``];
* network [``DNN(num_layer=2, num_hidden=2048)``]: an input layer to 2048, two 2048 x 2048
  layers (three hidden layers in all), LeakyReLU, no dropout, one logit; binary cross-entropy
  with logits, Adam (lr 2e-4), batches of 1000, shuffled every epoch;
* after every epoch the accuracy on the selection split is measured and the best epoch kept
  (the first of equal ones; training stops early only at selection accuracy 1);
* an isotonic regression (``y_min=1e-6, y_max=1-1e-6``, clipped) fitted on the selection split's
  probabilities calibrates the held-out probabilities, on which AUC, accuracy and
  JSD = ``(ln 2 - BCE) / ln 2`` are reported.

Budgets (:data:`BUDGETS`), recorded with every result:

* ``challenge``: 50 epochs, no early stopping: the figure for tables;
* ``converged``: for small samples, where 50 epochs are a few dozen optimiser steps: at least 50
  epochs and at least 2000 optimiser steps (the step rule never asks for more than 6000 steps;
  50 epochs of a large sample may take more);
* ``quick``: 5 epochs, patience 3, for tests and the demo only: **not comparable** with any
  published or tabled figure.

Setting ``epochs`` or ``patience`` explicitly, or another network, learning rate, batch size or
split, makes a run "custom" (not comparable) whatever the budget. Every result says whether it
converged: not when its best epoch falls in the last 10 % of the epochs run.

Differences from the challenge's code: float32 by default (``dtype: float64`` is the challenge's
choice; docs/validation.md compares both), seeded splits and shuffles instead of NumPy's global
state, and the device chosen by ``device`` (``auto``: a CUDA GPU when there is one). With a fixed
``seed``, the same device and the same number of torch threads, results are reproducible.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from numpy.typing import NDArray
from pydantic import Field, PositiveInt, model_validator
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score

from twinforge.config import StrictModel
from twinforge.validation.metrics import jsd_from_probabilities

__all__ = [
    "BUDGETS",
    "Budget",
    "BudgetPlan",
    "ClassifierConfig",
    "ClassifierResult",
    "build_network",
    "classifier_scores",
    "low_level_features",
    "min_showers_for_classifier",
    "plan_budget",
    "resolve_device",
    "train_classifier",
]

log = logging.getLogger(__name__)

MIN_PER_SPLIT = 50
"""Showers of each class needed in the smallest of the train, selection and held-out splits."""

MIN_PER_CLASS_IN_BIN = 20
"""Held-out showers of each class needed to report a per-energy-bin AUC."""

_EVAL_BATCH = 4096
_LOG_FLOOR = 1e-8  # MeV, added before log10 of layer energies (CaloChallenge convention)

Budget = Literal["challenge", "converged", "quick"]

BUDGETS: dict[str, str] = {
    "challenge": "CaloChallenge 2022: 50 epochs, no early stopping, best epoch kept",
    "converged": "at least 50 epochs and 2000 optimiser steps (the step rule asks for at most "
    "6000), best epoch kept",
    "quick": "QUICK: 5 epochs, patience 3, for tests and the demo; NOT COMPARABLE with any "
    "published or tabled figure",
}
"""The named budgets and what each means (also written into metrics.json and the report)."""

_CHALLENGE_EPOCHS = 50
_CONVERGED_MIN_STEPS = 2000
_QUICK_EPOCHS, _QUICK_PATIENCE = 5, 3
_LATE_FRACTION = 0.1  # best epoch in the last 10 % of the run: "not converged"


class ClassifierConfig(StrictModel):
    """Network, budget and hardware of the classifier that tells generated from reference.

    The defaults are the CaloChallenge network, optimiser and 50-epoch budget. On 2 CPU cores one
    low-level step (batch 1000, 6481 inputs) takes about 1.3 s, so a challenge-budget classifier
    on 10k vs 10k showers takes about 13 minutes; on a GPU seconds.
    """

    budget: Budget = Field("challenge", description="named budget (see BUDGETS)")
    epochs: PositiveInt | None = Field(
        None, description="override the budget's epochs (makes the run custom: not comparable)"
    )
    patience: int | None = Field(
        None,
        ge=0,
        description="stop after this many epochs without better selection accuracy (0: never; "
        "None: the budget's). Setting it makes the run custom: not comparable",
    )
    hidden: list[PositiveInt] = Field(
        default_factory=lambda: [2048, 2048, 2048],
        description="hidden layer widths (CaloChallenge: input -> 2048, then 2 x 2048 x 2048)",
    )
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout after each hidden layer")
    lr: float = Field(2e-4, gt=0.0, description="Adam learning rate")
    batch_size: PositiveInt = 1000
    val_fraction: float = Field(
        0.2, gt=0.0, lt=1.0, description="share of each class for epoch selection + calibration"
    )
    test_fraction: float = Field(
        0.2, gt=0.0, lt=1.0, description="share of each class held out for AUC and JSD"
    )
    low_level_input: Literal["voxels", "normed"] = Field(
        "voxels",
        description="low-level input: voxels / E_inc (challenge 'cls-low') or voxels / E_layer "
        "with log10 layer energies ('cls-low-normed')",
    )
    seed: int = Field(0, ge=0)
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="auto: a CUDA GPU when torch sees one, else the CPU"
    )
    dtype: Literal["float32", "float64"] = Field(
        "float32", description="network precision (the challenge's code uses float64)"
    )
    threads: PositiveInt | None = Field(
        None,
        description="torch intra-op threads while training on the CPU (None: torch's current "
        "setting)",
    )

    @model_validator(mode="after")
    def _fractions(self) -> ClassifierConfig:
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ValueError(
                f"val_fraction + test_fraction = {self.val_fraction + self.test_fraction} "
                "leaves nothing to train on; keep the sum below 1"
            )
        return self


@dataclass(frozen=True)
class BudgetPlan:
    """Epochs and early stopping of one training run, resolved from a config and a size."""

    budget: str
    epochs: int
    patience: int
    comparable: bool
    description: str


def plan_budget(config: ClassifierConfig, n_train: int) -> BudgetPlan:
    """Resolve ``config``'s budget for ``n_train`` training showers (both classes together).

    ``custom`` when ``epochs`` or ``patience`` is set explicitly, or the network, optimiser or
    split differ from the challenge's; ``comparable`` is True for uncustomised ``challenge``
    and ``converged`` budgets only.
    """
    steps_per_epoch = max(1, math.ceil(n_train / config.batch_size))
    if config.budget == "challenge":
        epochs, patience = _CHALLENGE_EPOCHS, 0
    elif config.budget == "converged":
        # 2000 steps (never more than 2000 + one epoch, far below the cap of 6000),
        # and never fewer than the challenge's 50 epochs
        by_steps = math.ceil(_CONVERGED_MIN_STEPS / steps_per_epoch)
        epochs, patience = max(_CHALLENGE_EPOCHS, by_steps), 0
    else:
        epochs, patience = _QUICK_EPOCHS, _QUICK_PATIENCE
    changed = [
        key
        for key in ("hidden", "dropout", "lr", "batch_size", "val_fraction", "test_fraction")
        if getattr(config, key)
        != ClassifierConfig.model_fields[key].get_default(call_default_factory=True)
    ]
    if config.epochs is not None and config.epochs != epochs:
        changed.append("epochs")
    if config.patience is not None and config.patience != patience:
        changed.append("patience")
    custom = bool(changed)
    epochs = config.epochs if config.epochs is not None else epochs
    patience = config.patience if config.patience is not None else patience
    name = f"{config.budget} (custom)" if custom else config.budget
    comparable = config.budget != "quick" and not custom
    description = BUDGETS[config.budget]
    if custom:
        description = (
            f"CUSTOM: {epochs} epochs, patience {patience}, {' '.join(changed)} changed from the "
            f"{config.budget} budget's protocol; NOT COMPARABLE"
        )
    return BudgetPlan(name, epochs, patience, comparable, description)


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
    budget: str = "custom"
    comparable: bool = False
    epochs_planned: int = 0
    steps: int = 0
    seed: int = 0
    device: str = "cpu"
    seconds: float = 0.0

    @property
    def converged(self) -> bool:
        """False when the best epoch falls in the last 10 % of the epochs run (more epochs
        would likely have helped); a run stopped at selection accuracy 1 has converged."""
        if self.history and self.history[-1]["val_accuracy"] >= 1.0:
            return True
        return self.best_epoch <= math.floor((1.0 - _LATE_FRACTION) * self.epochs_run)

    def summary(self) -> dict[str, float | int | str | bool]:
        """The JSON entry of one classifier seed."""
        return {
            "auc": self.auc,
            "jsd": self.jsd,
            "accuracy": self.accuracy,
            "n_train": self.n_train,
            "n_test": self.n_test,
            "best_epoch": self.best_epoch,
            "epochs_run": self.epochs_run,
            "epochs_planned": self.epochs_planned,
            "budget": self.budget,
            "comparable": self.comparable,
            "steps": self.steps,
            "converged": self.converged,
            "seed": self.seed,
            "device": self.device,
            "seconds": self.seconds,
        }


def low_level_features(
    showers: NDArray[np.floating],
    energy: NDArray[np.floating],
    layer_energy: NDArray[np.floating] | None = None,
    layer_of_voxel: NDArray[np.int64] | None = None,
) -> NDArray[np.float32]:
    """CaloChallenge low-level input, float32, without float64 temporaries of the whole array.

    ``showers`` (N, V) MeV (threshold already applied), ``energy`` (N,) MeV. Without
    ``layer_energy``: ``[log10(E_inc / MeV), voxels / E_inc]``, shape (N, V + 1). With
    ``layer_energy`` (N, L) MeV and ``layer_of_voxel`` (V,) (the "normed" variant):
    ``[log10 E_inc, voxels / (E_layer + 1e-16), log10(E_layer / MeV + 1e-8)]``, (N, V + 1 + L).
    """
    e = np.asarray(energy, dtype=np.float64).reshape(-1)
    n, v = showers.shape
    n_extra = 0 if layer_energy is None else layer_energy.shape[1]
    out = np.empty((n, v + 1 + n_extra), dtype=np.float32)
    out[:, 0] = np.log10(e)
    if layer_energy is None:
        np.multiply(showers, (1.0 / e)[:, None].astype(np.float32), out=out[:, 1 : v + 1])
        return out
    if layer_of_voxel is None:
        raise ValueError("the normed low-level input needs layer_of_voxel")
    for lo in range(0, n, 2048):  # chunks: the (chunk, V) layer-energy map stays small
        denom = layer_energy[lo : lo + 2048][:, layer_of_voxel] + 1e-16
        out[lo : lo + 2048, 1 : v + 1] = showers[lo : lo + 2048] / denom
    out[:, v + 1 :] = np.log10(layer_energy + _LOG_FLOOR)
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
    # ties at 0.5 count as generated, as the challenge's np.round does
    accuracy = 0.5 * (float(np.mean(prob_ref > 0.5)) + float(np.mean(prob_gen <= 0.5)))
    return auc, jsd, accuracy


def resolve_device(device: str) -> torch.device:
    """``auto``: the first CUDA GPU when torch sees one, else the CPU.

    Raises:
        ValueError: ``cuda`` asked for and torch sees no CUDA GPU.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("classifier device 'cuda' asked for, but torch sees no CUDA GPU")
    return torch.device(device)


def build_network(n_in: int, config: ClassifierConfig) -> torch.nn.Sequential:
    """The classifier network for ``n_in`` inputs: ``config.hidden`` linear layers with
    LeakyReLU and dropout, one logit out."""
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
    return torch.cat(out).double().cpu().numpy()


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
        config: network, budget and device; defaults to :class:`ClassifierConfig`.
        progress: called with a one-line message after every epoch.
        name: used in log and progress messages.

    Raises:
        ValueError: fewer showers of a class than :func:`min_showers_for_classifier` needs,
            feature counts differ (the suite checks both before calling), or ``device: cuda``
            without a GPU.
    """
    config = config or ClassifierConfig()
    if reference.ndim != 2 or generated.ndim != 2 or reference.shape[1] != generated.shape[1]:
        raise ValueError(f"feature shapes differ: {reference.shape} vs {generated.shape}")
    need = min_showers_for_classifier(config)
    n = min(len(reference), len(generated))
    if n < need:
        raise ValueError(f"{name} needs at least {need} showers of each sample, got {n}")
    device = resolve_device(config.device)
    dtype = torch.float64 if config.dtype == "float64" else torch.float32
    rng = np.random.default_rng([config.seed, 5])
    # equal class sizes: subsample the larger sample (seeded)
    keep_ref = np.sort(rng.permutation(len(reference))[:n])
    keep_gen = np.sort(rng.permutation(len(generated))[:n])
    splits_ref = _split(n, config, rng)
    splits_gen = _split(n, config, rng)

    def gather(part: int) -> tuple[torch.Tensor, torch.Tensor]:
        xr = reference[keep_ref[splits_ref[part]]]
        xg = generated[keep_gen[splits_gen[part]]]
        x = torch.from_numpy(np.concatenate([xr, xg])).to(device=device, dtype=dtype)
        y = torch.cat([torch.ones(len(xr)), torch.zeros(len(xg))]).to(device=device, dtype=dtype)
        return x, y

    data = {"train": gather(0), "val": gather(1), "test": gather(2)}
    threads = torch.get_num_threads()
    if config.threads is not None and device.type == "cpu":
        torch.set_num_threads(config.threads)
    try:
        result = _fit(data, len(splits_ref[2]), config, progress, name, device, dtype)
    finally:
        torch.set_num_threads(threads)
    result.test_index_ref = keep_ref[splits_ref[2]]
    result.test_index_gen = keep_gen[splits_gen[2]]
    return result


def _fit(
    data: dict[str, tuple[torch.Tensor, torch.Tensor]],
    n_test_ref: int,
    config: ClassifierConfig,
    progress: Callable[[str], None] | None,
    name: str,
    device: torch.device,
    dtype: torch.dtype,
) -> ClassifierResult:
    """Training loop, epoch selection, calibration and scores (see :func:`train_classifier`)."""
    start = time.perf_counter()
    x_train, y_train = data["train"]
    x_val, y_val = data["val"]
    x_test, _ = data["test"]
    plan = plan_budget(config, len(x_train))
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(config.seed)
        model = build_network(x_train.shape[1], config).to(device=device, dtype=dtype)
        optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
        loss_fn = torch.nn.BCEWithLogitsLoss()
        shuffle = torch.Generator().manual_seed(config.seed)
        best_acc, best_epoch, best_state = -math.inf, 0, None
        history: list[dict[str, float]] = []
        epochs_run = steps = 0
        y_val_np = y_val.cpu().numpy().astype(bool)
        for epoch in range(1, plan.epochs + 1):
            model.train()
            perm = torch.randperm(len(x_train), generator=shuffle).to(device)
            total = torch.zeros((), device=device, dtype=dtype)
            for i in range(0, len(perm), config.batch_size):
                idx = perm[i : i + config.batch_size]
                optimiser.zero_grad(set_to_none=True)
                loss = loss_fn(model(x_train[idx]).reshape(-1), y_train[idx])
                loss.backward()
                optimiser.step()
                total += loss.detach() * len(idx)
                steps += 1
            epochs_run = epoch
            p_val = _predict(model, x_val)
            acc = 0.5 * (
                float(np.mean(p_val[y_val_np] > 0.5)) + float(np.mean(p_val[~y_val_np] <= 0.5))
            )
            train_loss = float(total) / len(perm)
            history.append({"epoch": epoch, "train_loss": train_loss, "val_accuracy": acc})
            message = (
                f"{name}: epoch {epoch}/{plan.epochs}, train loss {train_loss:.4f}, "
                f"selection accuracy {acc:.4f}"
            )
            log.debug(message)
            if progress is not None:
                progress(message)
            if acc > best_acc:
                best_acc, best_epoch = acc, epoch
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if acc >= 1.0 or (plan.patience and epoch - best_epoch >= plan.patience):
                break
        assert best_state is not None
        model.load_state_dict(best_state)
        p_val = _predict(model, x_val)
        p_test = _predict(model, x_test)

    calibrator = IsotonicRegression(out_of_bounds="clip", y_min=1e-6, y_max=1.0 - 1e-6)
    calibrator.fit(p_val, y_val.cpu().numpy())
    p_cal = np.asarray(calibrator.predict(p_test), dtype=np.float64)
    prob_ref, prob_gen = p_cal[:n_test_ref], p_cal[n_test_ref:]
    auc, jsd, accuracy = classifier_scores(prob_ref, prob_gen)
    result = ClassifierResult(
        auc=auc,
        jsd=jsd,
        accuracy=accuracy,
        n_train=len(x_train),
        n_test=len(x_test),
        best_epoch=best_epoch,
        epochs_run=epochs_run,
        test_index_ref=np.empty(0, dtype=np.int64),
        test_index_gen=np.empty(0, dtype=np.int64),
        test_prob_ref=prob_ref,
        test_prob_gen=prob_gen,
        history=history,
        budget=plan.budget,
        comparable=plan.comparable,
        epochs_planned=plan.epochs,
        steps=steps,
        seed=config.seed,
        device=str(device),
        seconds=time.perf_counter() - start,
    )
    log.debug(
        "%s: AUC %.4f, JSD %.4f (best epoch %d of %d, %s budget, %.1f s)",
        name, auc, jsd, best_epoch, epochs_run, plan.budget, result.seconds,
    )  # fmt: skip
    return result
