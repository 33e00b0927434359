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
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, PositiveFloat, PositiveInt, field_validator, model_validator

from twinforge import __version__
from twinforge._json import finite_or_none
from twinforge.config import StrictModel
from twinforge.detector.readout import Readout
from twinforge.errors import ConfigError, Stopped, TwinforgeError
from twinforge.models.base import DataFacts, Surrogate, model_class
from twinforge.models.transforms import ShowerTransform
from twinforge.showers.file import ShowerFile
from twinforge.training.data import SPLITS, ShowerStream, fit_transform
from twinforge.training.distributed import DistributedPlan, DistributedSpec

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
    family: str = Field(
        "vae", description="a registered family (entry points 'twinforge.families')"
    )
    config: dict[str, Any] = Field(
        default_factory=dict, description="the family's options (its Config; defaults omitted)"
    )

    @model_validator(mode="after")
    def _known_options(self) -> ModelSpec:
        """Unknown families and unknown or invalid options are errors when the YAML loads."""
        model_class(self.family).validate_options(self.config)
        return self


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

    fractions: Literal["logit", "softmax"] = Field(
        "logit",
        description="kind 'layers': the voxel fractions as logit, or as log(f + eps) inverted "
        "by a softmax over each layer (half the passes over the output: fast models); softmax "
        "needs a readout threshold above eps times the largest layer energy",
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
    init_from: str | None = Field(
        None,
        description="a model directory (same family, same conditions; may be trained on "
        "another readout) whose weights start this one (twinforge.training.adapt)",
    )

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
    callbacks: Sequence[Any] = (),
    tracker: Any | None = None,
    distributed: DistributedSpec | None = None,
) -> Path:
    """Train, write the model directory, register it (when ``catalog`` is given); return it.

    ``callbacks`` are extra Lightning callbacks (e.g. a tuning study's pruner); ``tracker`` an
    open experiment-tracking run (:mod:`twinforge.tracking`) that receives the parameters,
    per-epoch metrics and the model directory. ``distributed`` says how many processes train
    and on what (:mod:`twinforge.training.distributed`; default: one process, the GPU when
    torch sees one); under DDP only the first process writes and registers the model.
    """
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping
    from lightning.pytorch.loggers import CSVLogger
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    for name in ("lightning.pytorch", "lightning.fabric"):  # hardware banners, tips
        logging.getLogger(name).setLevel(logging.WARNING)

    from twinforge.training.cost import CostCallback, CostMeter, read_parts, total_cost
    from twinforge.training.module import StreamPosition, SurrogateModule, checkpointing

    out = config.output_path()
    if out.exists() and not overwrite:
        raise TwinforgeError(f"{out}: already exists (--overwrite replaces it)")
    if catalog is not None and (known := catalog.find(config.name, "models")) is not None:
        # refused before hours of training, not after: catalogue records are not replaced
        raise TwinforgeError(
            f"model {config.name!r} is already in the catalogue ({known.global_id}); give this "
            "run another name"
        )
    started = dt.datetime.now(dt.UTC)
    L.seed_everything(config.seed, workers=True, verbose=False)  # before the weights are drawn
    files = [Path(f) for f in config.data.files]
    binning, n_voxels, pdgs, scale = _inspect(files)
    threshold = _threshold(files[0])
    for option, why, needed in [
        ("dequantize", "the noise must lie below it", config.transform.dequantize),
        ("fractions", "softmax fractions need it", config.transform.fractions == "softmax"),
    ]:
        if needed and not threshold > 0:
            raise ConfigError(
                f"transform.{option}: {files[0]} records no readout threshold (provenance "
                f"detector_config.readout.threshold), and {why}"
            )
    klass = model_class(config.model.family)
    options = klass.validate_options(config.model.config)
    kind = _transform_kind(config, klass.required_transform(options))
    try:
        transform = ShowerTransform(
            n_voxels,
            kind=kind,
            eps=config.transform.eps,
            scale=scale if config.transform.scale == "auto" else float(config.transform.scale),
            threshold=threshold,
            dequantize=config.transform.dequantize,
            noise_edge=config.transform.noise_edge,
            fractions=config.transform.fractions,
            pdgs=pdgs,
            layer_offsets=_layer_offsets(binning) if kind == "layers" else None,
        )
    except ValueError as exc:
        raise ConfigError(f"transform: {exc}") from None
    options = klass.complete_config(options, data_facts(transform, binning))
    model = klass(options, transform.n_features, transform.n_conditions)
    transfer = None
    if config.init_from is not None:  # before the (long) fit of the transform: fail early
        from twinforge.training.adapt import initialise_from

        transfer = initialise_from(model, transform, binning, config.init_from).summary()
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
    checkpoint, save_last = checkpointing(ckpt_dir)  # both, and early stopping, after validation
    plan = (distributed or DistributedSpec()).resolve(batch_size=config.optim.batch_size)
    log.info("training with %s", plan.describe())
    loggers: list[Any] = [CSVLogger(ckpt_dir, name="", version="log")]  # metrics.csv
    cost = CostMeter(ckpt_dir, _hardware(plan))  # every part of a resumed run: cost.json
    if tracker is not None:
        tracker.log_params(config.model_dump(mode="json"))
        if (forward := tracker.lightning_logger()) is not None:  # per-epoch metrics
            loggers.append(forward)
    trainer = L.Trainer(
        max_steps=config.optim.max_steps,
        max_epochs=config.optim.max_epochs,
        max_time=(
            dt.timedelta(minutes=config.optim.max_minutes) if config.optim.max_minutes else None
        ),
        # adversarial models clip inside their manual optimisation (SurrogateModule)
        gradient_clip_val=None if module.adversarial else config.optim.gradient_clip,
        callbacks=[
            *callbacks,
            CostCallback(cost),
            StreamPosition(stream["train"]),  # a resumed run sees the uninterrupted one's batches
            checkpoint,
            save_last,  # after it: every validation, and at SIGTERM or Ctrl-C (at that step)
            EarlyStopping(
                "val/loss",
                patience=config.optim.patience,
                check_on_train_epoch_end=False,
                strict=False,
            ),
        ],
        logger=loggers,
        enable_progress_bar=not quiet,
        enable_model_summary=False,
        deterministic=True,
        num_sanity_val_steps=0,
        **plan.trainer_kwargs(partial_backward=module.adversarial),  # devices, strategy...
    )
    last = ckpt_dir / "last.ckpt"
    resume = last if last.exists() else None
    if resume:
        log.info("resuming from %s", resume)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*exists and is not empty.*")  # resume
        # DDP: validation is not divided (the same val/loss everywhere); train/* is rank 0's
        warnings.filterwarnings("ignore", message=".*sync_dist=True.*")
        try:
            trainer.fit(module, stream["train"], stream["val"], ckpt_path=resume, weights_only=True)
        except SIGTERMException:
            raise Stopped(
                f"SIGTERM at step {trainer.global_step}; its checkpoint is in {ckpt_dir}: "
                "run the same command again to resume"
            ) from None
        except SystemExit:
            if trainer.interrupted:  # Lightning exits with 1 on Ctrl-C: it is an interrupt
                raise KeyboardInterrupt from None
            raise
    if not trainer.is_global_zero:  # DDP: the first process writes and registers the model
        return out
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
        "transfer": transfer,
        "split": {"val_fraction": config.data.val_fraction, "rule": "hash(index) < fraction"},
        "best_val_loss": finite_or_none(float(best_score)) if best_score is not None else None,
        "epochs": trainer.current_epoch,
        "history": _history(history),  # per-epoch train/val losses
        "steps": trainer.global_step,
        "cost": total_cost(read_parts(ckpt_dir)),  # every part, resumed runs included
        "started": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "lightning": L.__version__,
        "twinforge": __version__,
    }
    if tracker is not None and (link := tracker.link()) is not None:
        provenance["mlflow"] = link
    surrogate = Surrogate(model, transform, binning, provenance)
    surrogate.save(out, overwrite=overwrite)
    if tracker is not None:
        tracker.log_metrics({f"final/{k}": v for k, v in metrics.items()})
        tracker.log_artifact(out, "model")
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


def _hardware(plan: DistributedPlan) -> dict[str, Any]:
    """What a training part runs on, for its cost record (:mod:`twinforge.training.cost`)."""
    hardware: dict[str, Any] = {
        "accelerator": plan.accelerator,
        "devices": plan.devices,
        "nodes": plan.num_nodes,
    }
    if plan.accelerator == "gpu":
        hardware["device_name"] = torch.cuda.get_device_name(0)
    return hardware


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


def _transform_kind(config: TrainConfig, required: str | None) -> str:
    """The transform kind: the family's required one, unless the config names another."""
    if required is None:
        return config.transform.kind
    if "kind" in config.transform.model_fields_set and config.transform.kind != required:
        raise ConfigError(
            f"the {config.model.family} model config needs transform kind {required!r}, "
            f"not {config.transform.kind!r}"
        )
    return required


def data_facts(transform: ShowerTransform, binning_xml: str) -> DataFacts:
    """What a family may take from the data: layer features, layer sizes and, for a regular
    readout whose voxels are the features, the ``(z, alpha, r)`` grid."""
    offsets = transform.layer_offsets or []
    sizes = tuple(b - a for a, b in itertools.pairwise(offsets) if b > a)
    readout = Readout.from_xml(binning_xml)
    regular = readout.is_regular and transform.n_features == readout.n_voxels
    return DataFacts(
        n_layer_features=transform.n_layer_features,
        layer_sizes=sizes,
        grid=tuple(int(n) for n in readout.grid_shape) if regular else None,  # type: ignore[arg-type]
    )


def _threshold(path: Path) -> float:
    with ShowerFile(path) as f:
        return f.threshold or 0.0
