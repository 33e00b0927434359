"""One LightningModule for every family: single-loss models and adversarial ones.

Single-loss families (VAE, flows, flow matching) train on ``model.loss(x, c)["loss"]`` with
automatic optimisation.

Adversarial families (``model.adversarial = True``, the GAN) train with Lightning *manual*
optimisation. Such a model defines

- ``configure_optimizers(lr, weight_decay) -> list[Optimizer]`` (say ``[critic, generator]``);
- ``adversarial_step(x, c, optimizers, step) -> dict[str, Tensor]``, where ``optimizers`` are
  :class:`_Updater` objects, one per optimiser, whose ``step(loss)`` zeroes the gradients,
  back-propagates with ``manual_backward``, clips the gradient norm to ``gradient_clip`` with
  ``clip_gradients`` and steps the optimiser; ``step`` counts the training batches so far.

One batch is one step of ``max_steps`` for either kind: of the updates a model makes in a
batch, only the first is counted by Lightning (``trainer.global_step``), the others go through
the same precision/strategy path uncounted. A model must make at least one update per batch.
The learning-rate schedulers (cosine, as for single-loss models) step once per batch.
Validation logs every entry of ``model.loss(x, c)`` as ``val/<name>`` for both kinds, so
``val/loss`` (early stopping, checkpoints) exists for every family.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Checkpoint, ModelCheckpoint
from lightning.pytorch.trainer.states import RunningStage, TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException

from twinforge.models.base import GenerativeModel

__all__ = ["SaveLast", "StreamPosition", "SurrogateModule", "checkpointing"]

log = logging.getLogger(__name__)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


class _Updater:
    """One optimiser of an adversarial model, as handed to ``model.adversarial_step``."""

    def __init__(self, module: SurrogateModule, optimizer: Any) -> None:
        self.module = module
        self.optimizer = optimizer  # a LightningOptimizer

    def step(self, loss: torch.Tensor) -> None:
        module = self.module
        self.optimizer.zero_grad()
        module.manual_backward(loss)
        if module.gradient_clip:
            module.clip_gradients(
                self.optimizer, gradient_clip_val=module.gradient_clip,
                gradient_clip_algorithm="norm",
            )  # fmt: skip
        if not module._counted_this_batch:
            self.optimizer.step()  # counted: trainer.global_step advances once per batch
            module._counted_this_batch = True
        else:
            module.trainer.strategy.optimizer_step(self.optimizer.optimizer, _no_closure)


def _no_closure() -> None:
    return None


class SurrogateModule(L.LightningModule):
    """Trains ``model`` with AdamW and a cosine schedule (see the module docstring).

    Every entry of the loss dictionary (of ``adversarial_step`` for adversarial models) is
    logged per epoch as ``train/<name>``; every entry of ``model.loss`` as ``val/<name>``.

    Args:
        model: the network.
        lr: learning rate (adversarial models may scale it per optimiser).
        weight_decay: AdamW weight decay.
        max_steps: length of the cosine schedule, in batches.
        gradient_clip: gradient-norm clip of adversarial models (done here, as Lightning does
            not clip under manual optimisation; pass ``Trainer(gradient_clip_val=None)``).
            Single-loss models are clipped by the Trainer.
    """

    def __init__(
        self,
        model: GenerativeModel,
        *,
        lr: float,
        weight_decay: float,
        max_steps: int,
        gradient_clip: float | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.lr = lr
        self.weight_decay = weight_decay
        self.max_steps = max_steps
        self.gradient_clip = gradient_clip
        self.adversarial = model.adversarial
        if self.adversarial:
            self.automatic_optimization = False
        self._counted_this_batch = False

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> Any:
        if self.adversarial:
            return self._adversarial_training_step(batch)
        losses = self.model.loss(*batch)
        for name, value in losses.items():
            self.log(f"train/{name}", value, on_step=False, on_epoch=True, batch_size=len(batch[0]))
        return losses["loss"]

    def _adversarial_training_step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
        x, c = batch
        updaters = [_Updater(self, opt) for opt in _as_list(self.optimizers())]
        self._counted_this_batch = False
        losses = self.model.adversarial_step(x, c, updaters, self.global_step)
        if not self._counted_this_batch:
            raise RuntimeError(f"{type(self.model).__name__}.adversarial_step made no update")
        for scheduler in _as_list(self.lr_schedulers()):
            scheduler.step()
        for name, value in losses.items():
            self.log(f"train/{name}", value, on_step=False, on_epoch=True, batch_size=len(x))

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> None:
        losses = self.model.loss(*batch)
        for name, value in losses.items():
            self.log(f"val/{name}", value, on_step=False, on_epoch=True, batch_size=len(batch[0]))

    def configure_optimizers(self) -> Any:
        if self.adversarial:
            optimizers = self.model.configure_optimizers(self.lr, self.weight_decay)
            schedulers = [
                {"scheduler": self._cosine(opt), "interval": "step"} for opt in optimizers
            ]
            return optimizers, schedulers
        optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=self.lr, weight_decay=self.weight_decay
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": self._cosine(optimizer),
                                                          "interval": "step"}}  # fmt: skip

    def _cosine(self, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
        """Cosine decay over ``max_steps`` to 1% of the optimiser's initial learning rate."""
        base = float(optimizer.param_groups[0]["lr"])
        return torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=max(1, self.max_steps), eta_min=base * 0.01
        )


class StreamPosition(L.Callback):
    """Keeps a training stream's position in every checkpoint and gives it back on resume,
    before the stream is iterated: its pass count (:class:`~twinforge.training.data.
    ShowerStream`'s ``epoch``, which seeds its shuffle and noise) and, for a checkpoint that a
    resume enters inside its epoch (one written at a stop, or after the epoch's validation),
    the batches of that pass already trained on, which the stream then skips. A resumed run
    sees the batches the uninterrupted run sees, in the same order. (Lightning's own loader
    state would count the batch its fetcher prefetched.)"""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self._trainer: L.Trainer | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._trainer = trainer

    def state_dict(self) -> dict[str, int]:
        batches = 0
        trainer = self._trainer
        if trainer is not None:
            progress = trainer.fit_loop.epoch_loop.batch_progress
            # mid-epoch (a stop), or the epoch's validation (the epoch checkpoints): a resume
            # enters this epoch again and iterates the stream, which must then skip what the
            # pass trained on, all of it after a validation
            if not progress.is_last_batch or trainer.state.stage == RunningStage.VALIDATING:
                batches = int(progress.current.completed)
        return {"epoch": int(self.stream.epoch), "batches": batches}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        batches = int(state_dict.get("batches", 0))
        # mid-epoch: the pass it stopped in is run again, without the batches it trained on
        self.stream.epoch = int(state_dict["epoch"]) - (1 if batches else 0)
        self.stream.skip = batches


def checkpointing(ckpt_dir: Path) -> tuple[ModelCheckpoint, SaveLast]:
    """The checkpoints of a training run in ``ckpt_dir``: a ``ModelCheckpoint`` for
    ``best.ckpt`` (lowest ``val/loss``) and, after it, the :class:`SaveLast` that writes
    ``last.ckpt``, the one a resume starts from. (Lightning's own ``save_last`` writes it only
    when the epoch was the best so far, and with its version counter wrote ``last-v1.ckpt``
    beside a ``last.ckpt`` written at a stop: a resume after a SIGKILL lost epochs either way.)
    """
    checkpoint = ModelCheckpoint(
        dirpath=ckpt_dir, filename="best", monitor="val/loss", save_last=False,
        save_on_train_epoch_end=False, enable_version_counter=False,
    )  # fmt: skip
    return checkpoint, SaveLast(Path(ckpt_dir) / "last.ckpt")


class SaveLast(Checkpoint):
    """Writes the resumable checkpoint ``path``, atomically, after every validation of a fit
    and at a stop: SIGTERM (``timeout``, a batch system's end of wall time) or Ctrl-C, at the
    step the run stopped at, so a training run in parts loses nothing but the step in progress
    (Lightning ends the step first). A SIGTERM during validation stops the run after it. Place
    it after the ``ModelCheckpoint`` (Lightning runs checkpoint callbacks last, in their
    order): the state it saves then holds this validation's best score."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._deferred = False
        self._saved_step = -1

    def on_validation_batch_end(self, trainer: L.Trainer, *args: Any, **kwargs: Any) -> None:
        if trainer.received_sigterm and trainer.state.fn == TrainerFn.FITTING:
            trainer._signal_connector.received_sigterm = False  # finish the validation first
            self._deferred = True

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == TrainerFn.FITTING and not trainer.sanity_checking:
            self._save(trainer)
        if self._deferred:  # stops at the end of the epoch, or after the next step
            trainer._signal_connector.received_sigterm = True
            self._deferred = False

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if not isinstance(exception, SIGTERMException | KeyboardInterrupt):
            return
        if trainer.state.stage != RunningStage.TRAINING or trainer.global_step == 0:
            return  # stopped inside a validation (Ctrl-C): the last validation's checkpoint
        if trainer.global_step != self._saved_step:  # not saved after this step's validation
            self._save(trainer)
            log.info("stopped at step %d: checkpoint %s", trainer.global_step, self.path)

    def _save(self, trainer: L.Trainer) -> None:
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        trainer.save_checkpoint(tmp)  # every process (DDP), the first one writes
        if trainer.is_global_zero:
            os.replace(tmp, self.path)
        self._saved_step = trainer.global_step
