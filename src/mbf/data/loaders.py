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
from .transforms import build_test_transform, build_train_transform

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


def num_workers(cfg, quiet: bool = False) -> int:
    """DATALOADER.NUM_WORKERS, capped at the CPUs available: more worker processes than CPUs only
    contend (the seed configs ask for 16). The cap is logged once per process (not when
    ``quiet``: the value is a default the user never set)."""
    requested = max(int(cfg.DATALOADER.NUM_WORKERS), 0)
    cpus = available_cpus()
    if requested <= cpus:
        return requested
    if not quiet and (requested, cpus) not in _capped:
        _capped.add((requested, cpus))
        log.info("DATALOADER.NUM_WORKERS %d capped at the %d CPUs available", requested, cpus)
    return cpus


def build_train_sampler(cfg, items: list, rank: int = 0, world_size: int = 1):
    """The configured sampler: identity-balanced for any 'triplet' sampler, shuffling otherwise."""
    pids = [item[1] for item in items]  # Item.pid
    batch, k, seed = cfg.SOLVER.IMS_PER_BATCH, cfg.DATALOADER.NUM_INSTANCE, cfg.SOLVER.SEED
    if "triplet" in cfg.DATALOADER.SAMPLER:
        if world_size > 1:
            return DistributedRandomIdentitySampler(pids, batch, k, rank, world_size, seed=seed)
        return RandomIdentitySampler(pids, batch, k, seed=seed)
    if cfg.DATALOADER.SAMPLER == "softmax":
        if world_size > 1:
            return DistributedSampler(items, num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=True)
        return _EpochRandomSampler(items, seed)
    raise ConfigError(
        f"DATALOADER.SAMPLER must be 'softmax' or contain 'triplet' (e.g. 'softmax_triplet'), got {cfg.DATALOADER.SAMPLER!r}"
    )


class _EpochRandomSampler(RandomSampler):
    """A shuffling sampler whose order is a function of (seed, epoch)."""

    def __init__(self, items, seed: int):
        super().__init__(items, generator=torch.Generator())
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.generator.manual_seed(self.seed * 1_000_003 + epoch)


def build_train_loader(cfg, dataset, mask_loader: MaskLoader | None = None, rank: int = 0, world_size: int = 1):
    """Training batches of ``SOLVER.IMS_PER_BATCH / world_size`` images for this process."""
    train_set = ImageSet(dataset.train, build_train_transform(cfg), mask_loader)
    sampler = build_train_sampler(cfg, dataset.train, rank, world_size)
    return DataLoader(
        train_set,
        batch_size=cfg.SOLVER.IMS_PER_BATCH // world_size,
        sampler=sampler,
        drop_last=True,
        num_workers=num_workers(cfg),
        pin_memory=torch.cuda.is_available(),
    )


def build_test_loader(cfg, items: list) -> DataLoader:
    """Test-transformed images in the given order (query first, then gallery)."""
    return DataLoader(
        ImageSet(items, build_test_transform(cfg)),
        batch_size=cfg.TEST.IMS_PER_BATCH,
        shuffle=False,
        num_workers=num_workers(cfg),
        pin_memory=torch.cuda.is_available(),
    )
