"""Datasets of transformed images and the train / test data loaders.

Batches are dicts: ``img`` float [B,3,H,W], ``pid``/``camid``/``viewid`` int64 [B], ``path``
list[str], and for training with a mask source also ``mask`` int64 [B,H,W] (part labels
transformed together with the image). Random erasing and background augmentation are done
later on the whole batch (mbf.augmentation) because the training step needs their geometry.
"""
from __future__ import annotations

import logging
from typing import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler
from torch.utils.data.distributed import DistributedSampler
from torchvision import tv_tensors

from ..errors import ConfigError, DatasetError
from ..runtime import available_cpus
from .io import read_image
from .samplers import DistributedRandomIdentitySampler, RandomIdentitySampler

MaskLoader = Callable[[str], np.ndarray]

log = logging.getLogger(__name__)
_capped: set = set()  # (requested, available) pairs already reported


class ImageSet(Dataset):
    """``(img_path, pid, camid, viewid)`` items as transformed sample dicts.

    With ``mask_loader`` the image's part-label map (labels at the image's resolution) goes
    through the same transform and comes back as ``mask``.
    """

    def __init__(self, items: list, transform, mask_loader: MaskLoader | None = None):
        self.items = list(items)
        self.transform = transform
        self.mask_loader = mask_loader

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        path, pid, camid, viewid = self.items[index]  # an Item, or any 4-tuple in that order
        img = read_image(path)
        sample = {"pid": pid, "camid": camid, "viewid": viewid, "path": path}
        if self.mask_loader is None:
            sample["img"] = self.transform(img)
            return sample
        labels = np.asarray(self.mask_loader(path))
        if labels.shape != (img.height, img.width):
            where = getattr(self.mask_loader, "path_for", None)
            source = f" ({where(path)})" if where else ""
            raise DatasetError(
                f"part-label mask{source} of {path} is {labels.shape[1] if labels.ndim > 1 else '?'}x{labels.shape[0]} "
                f"(width x height); the image is {img.width}x{img.height}"
            )
        img, mask = self.transform(img, tv_tensors.Mask(torch.from_numpy(labels.astype(np.int64))))
        sample["img"] = img
        sample["mask"] = mask.as_subclass(torch.Tensor)
        return sample


def capped_workers(requested: int, quiet: bool = False) -> int:
    """``requested`` data-loader worker processes, capped at the CPUs available: more worker
    processes than CPUs only contend (the seed configs ask for 16). The cap is logged once per
    process (not when ``quiet``: the value is a default the user never set)."""
    requested = max(int(requested), 0)
    cpus = available_cpus()
    if requested <= cpus:
        return requested
    if not quiet and (requested, cpus) not in _capped:
        _capped.add((requested, cpus))
        log.info("DATALOADER.NUM_WORKERS %d capped at the %d CPUs available", requested, cpus)
    return cpus


def train_sampler(kind: str, items: list, batch_size: int, num_instances: int, seed: int, rank: int = 0,
                  world_size: int = 1):
    """The sampler of ``kind`` (DATALOADER.SAMPLER): identity-balanced for any 'triplet' kind
    (``num_instances`` images per identity), shuffling for 'softmax'; its order is a function of
    (seed, epoch)."""
    if "triplet" in kind:
        pids = [item[1] for item in items]  # Item.pid
        if world_size > 1:
            return DistributedRandomIdentitySampler(pids, batch_size, num_instances, rank, world_size, seed=seed)
        return RandomIdentitySampler(pids, batch_size, num_instances, seed=seed)
    if kind == "softmax":
        if world_size > 1:
            return DistributedSampler(items, num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=True)
        return _EpochRandomSampler(items, seed)
    raise ConfigError(
        f"DATALOADER.SAMPLER must be 'softmax' or contain 'triplet' (e.g. 'softmax_triplet'), got {kind!r}"
    )


class _EpochRandomSampler(RandomSampler):
    """A shuffling sampler whose order is a function of (seed, epoch)."""

    def __init__(self, items, seed: int):
        super().__init__(items, generator=torch.Generator())
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.generator.manual_seed(self.seed * 1_000_003 + epoch)


def train_loader(items: list, transform, sampler, batch_size: int, workers: int = 0,
                 mask_loader: MaskLoader | None = None) -> DataLoader:
    """Training batches of ``batch_size`` images (this process's share of the global batch)."""
    return DataLoader(ImageSet(items, transform, mask_loader), batch_size=batch_size, sampler=sampler, drop_last=True,
                      num_workers=workers, pin_memory=torch.cuda.is_available())


def test_loader(items: list, transform, batch_size: int, workers: int = 0) -> DataLoader:
    """Test-transformed images in the given order (query first, then gallery)."""
    return DataLoader(ImageSet(items, transform), batch_size=batch_size, shuffle=False, num_workers=workers,
                      pin_memory=torch.cuda.is_available())
