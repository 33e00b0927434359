"""One LightningModule for every family that trains on a single loss."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from twinforge.models.base import GenerativeModel

__all__ = ["SurrogateModule"]


class SurrogateModule(L.LightningModule):
    """Trains ``model`` on ``model.loss(x, c)["loss"]`` with AdamW and a cosine schedule.

    Every entry of the loss dictionary is logged per epoch as ``train/<name>`` and
    ``val/<name>``.
    """

    def __init__(
        self,
        model: GenerativeModel,
        *,
        lr: float,
        weight_decay: float,
        max_steps: int,
    ) -> None:
        super().__init__()
        self.model = model
        self.lr = lr
        self.weight_decay = weight_decay
        self.max_steps = max_steps

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        losses = self.model.loss(*batch)
        for name, value in losses.items():
            self.log(f"train/{name}", value, on_step=False, on_epoch=True, batch_size=len(batch[0]))
        return losses["loss"]

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> None:
        losses = self.model.loss(*batch)
        for name, value in losses.items():
            self.log(f"val/{name}", value, on_step=False, on_epoch=True, batch_size=len(batch[0]))

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=self.lr, weight_decay=self.weight_decay
        )
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=max(1, self.max_steps), eta_min=self.lr * 0.01
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
