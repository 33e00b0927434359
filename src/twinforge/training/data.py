"""Streaming training data: shower files -> transformed (features, conditions) batches.

Files are read chunk by chunk (never loaded whole); events are shuffled inside a buffer of
``chunk_events``. When a split's features fit in ``cache_bytes``, the first pass keeps them in
memory and later epochs shuffle the whole split from there, so reading and transforming (the
bulk of an epoch's time for small networks) happens once. The train/validation split is a
deterministic function of each event's position, so it is the same in every epoch and every
run, and is recorded in provenance.

Under data-parallel training (DDP, :mod:`twinforge.training.distributed`) each of the W
processes takes its slice of every global batch of the training split: the batches are drawn
exactly as in one process (same order, same ``batch_size``), and process r keeps part r of W
of each. The shards are disjoint, cover the epoch, and every process yields the same number of
batches (DDP waits for all at each step); with the gradients averaged, a step is the
one-process step on the same global batch. Every process reads and transforms the whole split
(the cache makes that a first-epoch cost, held once per process). The validation split is not
divided: every process evaluates all of it, so ``val/loss`` (early stopping, the best
checkpoint) is the same in every process and the one-process value.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.utils.data import IterableDataset

from twinforge.models.transforms import ShowerTransform, _safe_std
from twinforge.showers.file import ShowerFile

__all__ = ["ShowerStream", "fit_transform", "is_validation", "write_split"]

Split = Literal["train", "val"]
SPLITS: tuple[Split, Split] = ("train", "val")


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


def write_split(
    paths: Sequence[str | Path],
    output: str | Path,
    *,
    split: Split,
    val_fraction: float,
    chunk_events: int = 4096,
    overwrite: bool = False,
) -> int:
    """Write the events of one split of ``paths`` (the rule training uses) to ``output``.

    The validation split of a training run is the natural held-out reference for
    ``twinforge validate``. Streams chunk by chunk; atomic like every shower file. Returns the
    number of events written.
    """
    from twinforge.showers.file import ShowerWriter

    paths = [Path(p) for p in paths]
    with ShowerFile(paths[0]) as first:
        readout, provenance = first.readout, first.provenance
    if readout is None:
        raise ValueError(f"{paths[0]}: no binning in the file")
    provenance = {
        **provenance,
        "split": {"of": [str(p) for p in paths], "split": split, "val_fraction": val_fraction,
                  "rule": "hash(index) < fraction"},
    }  # fmt: skip
    with ShowerWriter(output, readout, provenance, overwrite=overwrite) as writer:
        for showers, _, cond in _chunks(paths, chunk_events, split, val_fraction):
            writer.append(cond, showers)
        return writer.n_events


def _concat(parts: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Chunks ``[(x, c), ...]`` joined into one ``(x, c)``."""
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def fit_transform(
    transform: ShowerTransform,
    paths: Sequence[str | Path],
    *,
    val_fraction: float,
    chunk_events: int = 4096,
    seed: int = 0,
) -> ShowerTransform:
    """Fit the transform's standardisation on the training split, in one streaming pass
    (``seed`` draws the dequantisation noise of a ``dequantize`` transform)."""
    rng = np.random.default_rng([seed, 1])
    total = 0
    s1 = np.zeros(transform.n_features)
    s2 = np.zeros(transform.n_features)
    low = np.full(transform.n_features, np.inf)
    high = np.full(transform.n_features, -np.inf)
    for showers, energy, _ in _chunks(
        [Path(p) for p in paths], chunk_events, "train", val_fraction
    ):
        y = transform._squash(showers, energy, rng)
        s1 += y.sum(axis=0, dtype=np.float64)
        s2 += np.einsum("ij,ij->j", y, y, dtype=np.float64)
        np.minimum(low, y.min(axis=0), out=low)
        np.maximum(high, y.max(axis=0), out=high)
        total += len(y)
    if total == 0:
        raise ValueError("no training events: the files are empty or all in the validation split")
    mean = s1 / total
    transform.mean = mean.astype(np.float32)
    transform.std = _safe_std(np.sqrt(np.maximum(s2 / total - mean**2, 0.0)))
    transform.set_range(low, high)
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
        seed: shuffling seed; epoch ``k`` uses ``(seed, k)``. With a ``dequantize`` transform
            it also draws the noise from ``(seed, split, epoch, chunk)``: fresh in every epoch
            of the training split, one draw for the validation split; cached and streamed
            epochs see the same features.
        cache_bytes: keep the split's features in memory after the first pass when they take
            at most this many bytes (0: never; the estimate is events x features x 4 bytes).
        shard: ``(rank, world_size)`` of a data-parallel run: the training split yields part
            ``rank`` of ``world_size`` of each global batch of ``batch_size`` events (see the
            module docstring). None: from ``torch.distributed`` when a process group is
            initialised (DDP), else ``(0, 1)``. The validation split is never divided.
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
        cache_bytes: int = 0,
        shard: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        if shard is not None and not 0 <= shard[0] < shard[1]:
            raise ValueError(f"shard {shard}: rank must be in [0, world_size)")
        self.shard = shard
        self.paths = [Path(p) for p in paths]
        self.transform = transform
        self.split: Split = split
        self.val_fraction = val_fraction
        self.batch_size = batch_size
        self.chunk_events = chunk_events
        self.seed = seed
        self.epoch = 0
        self.skip = 0  # batches of the next pass already trained on (a mid-epoch resume)
        self.cache_bytes = cache_bytes
        self._cached: tuple[np.ndarray, np.ndarray] | None = None
        self._cached_raw: list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None

    def _fits_cache(self) -> bool:
        if self.cache_bytes <= 0:
            return False
        events = 0
        for path in self.paths:
            with ShowerFile(path) as f:
                events += f.n_events
        return events * (self.transform.n_features + self.transform.n_conditions) * 4 <= (
            self.cache_bytes
        )

    def _noise(self, chunk: int) -> np.random.Generator:
        """Dequantisation noise of a chunk: fresh every epoch for the training split (as
        CaloFlow draws it), one draw for the validation split (comparable losses)."""
        epoch = self.epoch if self.split == "train" else 0
        return np.random.default_rng([self.seed, 2, SPLITS.index(self.split), epoch, chunk])

    def _transformed(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(x, c)`` chunk by chunk: from the cache, or read, transformed (and cached).

        The cache holds features, or, for a dequantising transform's training split, the
        showers of each chunk, transformed again with fresh noise in every epoch.
        """
        fresh = self.transform.dequantize and self.split == "train"
        if self._cached is not None:
            yield self._cached
            return
        if self._cached_raw is not None:
            yield _concat(
                [
                    (self.transform.forward(showers, energy, self._noise(j)), c)
                    for j, (showers, energy, c) in enumerate(self._cached_raw)
                ]
            )
            return
        keep = self._fits_cache()
        features: list[tuple[np.ndarray, np.ndarray]] = []
        raw: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for j, (showers, energy, cond) in enumerate(
            _chunks(self.paths, self.chunk_events, self.split, self.val_fraction)
        ):
            x = self.transform.forward(showers, energy, self._noise(j))
            c = self.transform.encode_conditions(cond)
            if keep and fresh:
                raw.append((showers, energy, c))
            elif keep:
                features.append((x, c))
            yield x, c
        if raw:  # a complete pass: later epochs come from memory
            self._cached_raw = raw
        elif features:
            self._cached = _concat(features)

    def _rank_and_world(self) -> tuple[int, int]:
        """``(rank, world_size)`` this iteration divides the training batches by."""
        if self.split != "train":
            return 0, 1
        if self.shard is not None:
            return self.shard
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        rank, world = self._rank_and_world()
        rng = np.random.default_rng([self.seed, self.epoch])
        skip = 0
        if self.split == "train":
            self.epoch += 1
            skip, self.skip = self.skip, 0
        for x, c in self._transformed():
            order = rng.permutation(len(x)) if self.split == "train" else np.arange(len(x))
            for start in range(0, len(x), self.batch_size):
                idx = order[start : start + self.batch_size]
                if self.split == "train" and len(idx) < 2 * world:
                    continue  # batch norm needs two events (in every process)
                if skip:  # trained on before the stop this run resumes from
                    skip -= 1
                    continue
                if world > 1:  # this process's part; sizes differ by at most one
                    idx = np.array_split(idx, world)[rank]
                yield torch.from_numpy(x[idx]), torch.from_numpy(c[idx])
