"""Streaming training data: shower files -> transformed (features, conditions) batches.

Files are read chunk by chunk (never loaded whole); events are shuffled inside a buffer of
``chunk_events``. The train/validation split is a deterministic function of each event's
position, so it is the same in every epoch and every run, and is recorded in provenance.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.utils.data import IterableDataset

from twinforge.models.transforms import ShowerTransform
from twinforge.showers.file import ShowerFile

__all__ = ["ShowerStream", "fit_transform", "is_validation"]

Split = Literal["train", "val"]


def is_validation(global_index: np.ndarray, fraction: float) -> np.ndarray:
    """Whether events (by their index across all files) are validation events.

    A multiplicative hash of the index, so the split is spread over energies and files.
    """
    h = (np.asarray(global_index, dtype=np.uint64) * np.uint64(2654435761)) % np.uint64(2**32)
    return h.astype(np.float64) / 2**32 < fraction


def _chunks(
    paths: Sequence[Path], chunk: int, split: Split, val_fraction: float
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield ``(showers, energy, conditions)`` of one split, chunk by chunk, file by file."""
    offset = 0
    for path in paths:
        with ShowerFile(path) as f:
            for start in range(0, f.n_events, chunk):
                cond, showers = f.read(start, min(start + chunk, f.n_events))
                val = is_validation(offset + start + np.arange(len(cond)), val_fraction)
                keep = val if split == "val" else ~val
                if keep.any():
                    yield showers[keep], cond.energy[keep], cond[keep]
            offset += f.n_events


def fit_transform(
    transform: ShowerTransform,
    paths: Sequence[str | Path],
    *,
    val_fraction: float,
    chunk_events: int = 4096,
) -> ShowerTransform:
    """Fit the transform's standardisation on the training split, in one streaming pass."""
    total = 0
    s1 = np.zeros(transform.n_features)
    s2 = np.zeros(transform.n_features)
    for showers, energy, _ in _chunks(
        [Path(p) for p in paths], chunk_events, "train", val_fraction
    ):
        y = transform._squash(showers, energy)
        s1 += y.sum(axis=0)
        s2 += (y * y).sum(axis=0)
        total += len(y)
    if total == 0:
        raise ValueError("no training events: the files are empty or all in the validation split")
    mean = s1 / total
    transform.mean = mean.astype(np.float32)
    transform.std = np.sqrt(np.maximum(s2 / total - mean**2, 1e-6)).astype(np.float32)
    return transform


class ShowerStream(IterableDataset):
    """Batches ``(x (B, V), c (B, C))`` of one split, reshuffled every epoch.

    Args:
        paths: shower files (same binning).
        transform: a fitted :class:`ShowerTransform`.
        split: ``"train"`` or ``"val"``.
        val_fraction: share of events in the validation split.
        batch_size: events per batch.
        chunk_events: events read (and shuffled) at a time.
        seed: shuffling seed; epoch ``k`` uses ``(seed, k)``.
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        transform: ShowerTransform,
        *,
        split: Split,
        val_fraction: float,
        batch_size: int,
        chunk_events: int = 8192,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.paths = [Path(p) for p in paths]
        self.transform = transform
        self.split: Split = split
        self.val_fraction = val_fraction
        self.batch_size = batch_size
        self.chunk_events = chunk_events
        self.seed = seed
        self.epoch = 0

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        if self.split == "train":
            self.epoch += 1
        chunks = _chunks(self.paths, self.chunk_events, self.split, self.val_fraction)
        for showers, energy, cond in chunks:
            x = self.transform.forward(showers, energy)
            c = self.transform.encode_conditions(cond)
            order = rng.permutation(len(x)) if self.split == "train" else np.arange(len(x))
            for start in range(0, len(x), self.batch_size):
                idx = order[start : start + self.batch_size]
                if self.split == "train" and len(idx) < 2:
                    continue  # batch norm needs two events
                yield torch.from_numpy(x[idx]), torch.from_numpy(c[idx])
