"""``twinforge train``: the training config and the run that turns shower files into a model.

The run fits the transform on the training split (streaming), trains with Lightning (seeded,
early stopping on the validation loss, cosine learning-rate schedule, gradient clipping,
checkpoints every epoch), keeps the weights of the best validation epoch, and writes a model
directory (safetensors + JSON) that it registers in the catalogue. Killed and started again
with the same config, it resumes from its last checkpoint.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import itertools
import json
import logging
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, PositiveFloat, PositiveInt, field_validator, model_validator

from twinforge import __version__
from twinforge._json import finite_or_none
from twinforge.config import StrictModel
from twinforge.detector.readout import Readout
from twinforge.errors import ConfigError, TwinforgeError
from twinforge.models.base import Surrogate, model_class
from twinforge.models.transforms import ShowerTransform
from twinforge.showers.file import ShowerFile
from twinforge.training.data import SPLITS, ShowerStream, fit_transform

__all__ = ["TrainConfig", "run_training"]

log = logging.getLogger(__name__)


class DataSpec(StrictModel):
    files: list[str] = Field(description="shower files (same binning)")
    val_fraction: float = Field(0.1, gt=0.0, lt=0.5)
    chunk_events: PositiveInt = 8192
    cache_gb: float = Field(
        4.0, ge=0.0, description="keep a split's features in memory when they fit (0: stream)"
    )

    @field_validator("files")
    @classmethod
    def _some(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one shower file is needed")
        return value


class ModelSpec(StrictModel):
    family: str = "vae"
    config: dict[str, Any] = Field(default_factory=dict)


class TransformSpec(StrictModel):
    kind: Literal["log", "logit", "layers"] = Field(
        "log", description="feature transform; the flow family always uses 'layers'"
    )
    eps: PositiveFloat = 1e-6
    scale: float | Literal["auto"] = Field(
        "auto", description="voxels are divided by scale * E_inc; auto: the mean E_vis/E_inc"
    )
    dequantize: bool = Field(
        False,
        description="fill empty voxels with uniform noise below the readout threshold on the "
        "way in (the threshold removes it on the way out); helps flows and flow matching",
    )
    noise_edge: float = Field(
        1.0,
        gt=0.0,
        le=1.0,
        description="with dequantize: the noise is uniform in [0, noise_edge * threshold) MeV",
    )

    @model_validator(mode="after")
    def _edge_needs_noise(self) -> TransformSpec:
        if self.noise_edge != 1.0 and not self.dequantize:
            raise ValueError("noise_edge is the edge of the dequantisation noise: set dequantize")
        return self


class OptimSpec(StrictModel):
    lr: PositiveFloat = 1e-3
    weight_decay: float = Field(0.0, ge=0.0)
    batch_size: PositiveInt = 256
    max_steps: PositiveInt = 2000
    max_epochs: PositiveInt = 1000
    max_minutes: PositiveFloat | None = Field(
        None, description="wall-clock budget of the fit; stops after the running epoch"
    )
    gradient_clip: PositiveFloat | None = 1.0
    patience: PositiveInt = Field(20, description="epochs without validation improvement")


class TrainConfig(StrictModel):
    """A training run (``kind: train``)."""

    kind: Literal["train"] = "train"
    name: str = Field(description="model name (catalogue)")
    data: DataSpec
    model: ModelSpec = Field(default_factory=ModelSpec)
    transform: TransformSpec = Field(default_factory=TransformSpec)
    optim: OptimSpec = Field(default_factory=OptimSpec)
    seed: int = Field(0, ge=0)
    output: str = Field("models/{name}", description="model directory to write")

    def output_path(self) -> Path:
        return Path(self.output.format(name=self.name))

    def digest(self) -> str:
        """Hash of everything that changes the result (resume only with the same digest)."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_training(
    config: TrainConfig,
    *,
    catalog: Any | None = None,
    quiet: bool = False,
    overwrite: bool = False,
) -> Path:
    """Train, write the model directory, register it (when ``catalog`` is given); return it."""
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    for name in ("lightning.pytorch", "lightning.fabric"):  # hardware banners, tips
        logging.getLogger(name).setLevel(logging.WARNING)

    from twinforge.training.module import SurrogateModule

    out = config.output_path()
    if out.exists() and not overwrite:
        raise TwinforgeError(f"{out}: already exists (--overwrite replaces it)")
    started = dt.datetime.now(dt.UTC)
    L.seed_everything(config.seed, workers=True, verbose=False)  # before the weights are drawn
    files = [Path(f) for f in config.data.files]
    binning, n_voxels, pdgs, scale = _inspect(files)
    threshold = _threshold(files[0])
    if config.transform.dequantize and not threshold > 0:
        raise ConfigError(
            f"transform.dequantize: {files[0]} records no readout threshold (provenance "
            "detector_config.readout.threshold), and the noise must lie below it"
        )
    try:
        klass = model_class(config.model.family)
        kind = _transform_kind(config)
        transform = ShowerTransform(
            n_voxels,
            kind=kind,
            eps=config.transform.eps,
            scale=scale if config.transform.scale == "auto" else float(config.transform.scale),
            threshold=threshold,
            dequantize=config.transform.dequantize,
            noise_edge=config.transform.noise_edge,
            pdgs=pdgs,
            layer_offsets=_layer_offsets(binning) if kind == "layers" else None,
        )
        model_config = _with_grid(klass, _model_config(config, transform), binning, transform)
        model = klass(model_config, transform.n_features, transform.n_conditions)
    except ValueError as exc:
        raise ConfigError(f"model config: {exc}") from None
    fit_transform(transform, files, val_fraction=config.data.val_fraction, seed=config.seed)

    options = {
        "val_fraction": config.data.val_fraction,
        "batch_size": config.optim.batch_size,
        "chunk_events": config.data.chunk_events,
        "seed": config.seed,
        "cache_bytes": int(config.data.cache_gb * 2**30),
    }
    stream = {split: ShowerStream(files, transform, split=split, **options) for split in SPLITS}
    module = SurrogateModule(
        model, lr=config.optim.lr, weight_decay=config.optim.weight_decay,
        max_steps=config.optim.max_steps, gradient_clip=config.optim.gradient_clip,
    )  # fmt: skip
    ckpt_dir = out.with_name(out.name + ".checkpoints") / config.digest()
    # both act after validation, so every checkpoint holds a complete epoch with its val/loss
    checkpoint = ModelCheckpoint(
        dirpath=ckpt_dir, filename="best", monitor="val/loss", save_last=True,
        save_on_train_epoch_end=False,
    )  # fmt: skip
    trainer = L.Trainer(
        max_steps=config.optim.max_steps,
        max_epochs=config.optim.max_epochs,
        max_time=(
            dt.timedelta(minutes=config.optim.max_minutes) if config.optim.max_minutes else None
        ),
        # adversarial models clip inside their manual optimisation (SurrogateModule)
        gradient_clip_val=None if module.adversarial else config.optim.gradient_clip,
        callbacks=[
            checkpoint,
            EarlyStopping(
                "val/loss",
                patience=config.optim.patience,
                check_on_train_epoch_end=False,
                strict=False,
            ),
        ],
        logger=CSVLogger(ckpt_dir, name="", version="log"),  # per-epoch losses: metrics.csv
        enable_progress_bar=not quiet,
        enable_model_summary=False,
        deterministic=True,
        accelerator="cpu",
        num_sanity_val_steps=0,
    )
    last = ckpt_dir / "last.ckpt"
    resume = last if last.exists() else None
    if resume:
        log.info("resuming from %s", resume)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*exists and is not empty.*")  # resume
        trainer.fit(module, stream["train"], stream["val"], ckpt_path=resume, weights_only=True)
    history = ckpt_dir / "log" / "metrics.csv"
    best = checkpoint.best_model_path
    if best and Path(best).exists():  # the weights of the best validation epoch
        state = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
        model.load_state_dict({k.removeprefix("model."): v for k, v in state.items()})
    else:
        log.warning("no validation epoch completed; keeping the final weights")
    metrics = {k: finite_or_none(float(v)) for k, v in trainer.callback_metrics.items()}
    best_score = checkpoint.best_model_score
    provenance = {
        "training_files": [str(f.resolve()) for f in files],
        "train_config": config.model_dump(mode="json"),
        "split": {"val_fraction": config.data.val_fraction, "rule": "hash(index) < fraction"},
        "best_val_loss": finite_or_none(float(best_score)) if best_score is not None else None,
        "epochs": trainer.current_epoch,
        "history": _history(history),  # per-epoch train/val losses
        "steps": trainer.global_step,
        "started": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "lightning": L.__version__,
        "twinforge": __version__,
    }
    surrogate = Surrogate(model, transform, binning, provenance)
    surrogate.save(out, overwrite=overwrite)
    if catalog is not None:
        record = catalog.add_model(
            config.name, architecture=config.model.family, path=out, provenance=provenance
        )
        dataset = catalog.dataset_of(files)  # the catalogued dataset the files make up
        catalog.add_training_run(
            model_id=record.global_id,
            dataset_id=dataset.global_id if dataset is not None else None,
            hyperparameters=config.model_dump(mode="json"),
            metrics=metrics,
            started_at=started,
            finished_at=dt.datetime.now(dt.UTC),
            provenance={"checkpoints": str(ckpt_dir), "loss_history": str(history)},
        )
    return out


def _history(path: Path) -> list[dict[str, float | None]]:
    """Lightning's metrics.csv as one dict per epoch (train and val rows merged)."""
    if not path.exists():
        return []
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    epochs: dict[int, dict[str, float | None]] = {}
    for row in rows:
        if not row.get("epoch"):
            continue
        entry = epochs.setdefault(int(float(row["epoch"])), {})
        for key, text in row.items():
            if text in ("", None) or key == "epoch":
                continue
            entry[key] = finite_or_none(float(text))
    return [{"epoch": e, **values} for e, values in sorted(epochs.items())]


def _inspect(files: list[Path]) -> tuple[str, int, list[int], float]:
    """Binning XML, V, particle ids and mean visible fraction of the training files."""
    binning, n_voxels, pdgs, fractions = "", 0, set(), []
    for path in files:
        with ShowerFile(path) as f:
            if f.readout is None:
                raise TwinforgeError(f"{path}: no binning in the file; write it with twinforge")
            xml = f.readout.to_xml()
            if binning and xml != binning:
                raise TwinforgeError(f"{path}: binning differs from {files[0]}")
            binning, n_voxels = xml, f.n_voxels
            cond, showers = f.read(0, min(f.n_events, 2000))
            pdgs |= {int(p) for p in np.unique(cond.pdg)}
            fractions.append(float(np.mean(showers.sum(axis=1) / cond.energy)))
    return binning, n_voxels, sorted(pdgs), float(np.mean(fractions)) or 1.0


def _layer_offsets(binning_xml: str) -> list[int]:
    return [int(o) for o in Readout.from_xml(binning_xml).offsets]


def _transform_kind(config: TrainConfig) -> str:
    """The transform kind: ``layers`` for the flow family (it models the layer split)."""
    if config.model.family != "flow":
        return config.transform.kind
    if "kind" in config.transform.model_fields_set and config.transform.kind != "layers":
        raise ValueError(
            f"the flow family needs transform kind 'layers', not {config.transform.kind!r}"
        )
    return "layers"


def _model_config(config: TrainConfig, transform: ShowerTransform) -> dict[str, Any]:
    """The model config, with ``n_layers`` filled in from the transform for the families that
    model the layer energies separately (flow; flow matching with ``energy_network``)."""
    model_config = dict(config.model.config)
    two_stage = config.model.family == "flow-matching" and model_config.get("energy_network")
    if two_stage and transform.kind != "layers":
        raise ValueError("flow-matching with energy_network needs transform kind 'layers'")
    if config.model.family == "flow" or two_stage:
        given = model_config.setdefault("n_layers", transform.n_layer_features)
        if given != transform.n_layer_features:
            raise ValueError(
                f"n_layers={given}, but the readout has {transform.n_layer_features} layers "
                "with voxels (leave n_layers out)"
            )
    if config.model.family == "flow" and model_config.get("shape_layerwise"):
        sizes = sorted(
            {b - a for a, b in itertools.pairwise(transform.layer_offsets or []) if b > a}
        )
        if len(sizes) > 1:
            raise ValueError(
                f"shape_layerwise needs layers of equal voxel count; this readout has {sizes}"
            )
    return model_config


def _with_grid(
    klass: type, model_config: dict[str, Any], binning: str, transform: ShowerTransform
) -> dict[str, Any]:
    """Fill ``grid`` (z, alpha, r) of a regular readout into the config of families that use
    it (``uses_grid``, the GAN) when the user did not set it; else the family falls back to a
    1-D sequence."""
    if not getattr(klass, "uses_grid", False) or model_config.get("grid") is not None:
        return model_config
    readout = Readout.from_xml(binning)
    if not readout.is_regular or transform.n_features != readout.n_voxels:
        return model_config
    return {**model_config, "grid": list(readout.grid_shape)}


def _threshold(path: Path) -> float:
    with ShowerFile(path) as f:
        return f.threshold or 0.0
