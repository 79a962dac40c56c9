"""Config -> data: the datasets a run reads, their transforms, samplers and loaders.

The only module of :mod:`mbf.data` that reads the config; the readers, transforms and loaders
below it take plain arguments. The embedded synthetic set (``synthetic_occ``) is generated
here on first use (by the main process; the others wait).
"""
from __future__ import annotations

from pathlib import Path

from ..config import switch_or_auto
from ..distributed import DistInfo, barrier
from ..errors import ConfigError
from ..synthetic import DATASET_DIR_NAME, ensure_dataset
from .datasets import build_dataset, build_test_set, get_reader
from .loaders import capped_workers, test_loader, train_loader, train_sampler
from .transforms import eval_transform, train_transform

SYNTHETIC = "synthetic_occ"
COLOR_JITTER_DATASETS = ("occ_reid",)  # where the reference trains with colour jitter


# ------------------------------------------------------------------ datasets
def dataset_options(cfg, name: str) -> dict:
    """The reader's keyword options that the config sets (``DatasetReader.config_keys``)."""
    return {keyword: cfg.DATASETS[key] for keyword, key in get_reader(name).config_keys.items()}


def _ensure_synthetic(cfg, name: str, dist: DistInfo) -> None:
    """Generate the synthetic set on first use (only the main process; the others wait).

    A set whose files differ from its manifest is refused, never regenerated here (see ``ensure_dataset``).
    """
    if name == SYNTHETIC:
        if dist.is_main:
            ensure_dataset(Path(cfg.DATASETS.ROOT_DIR) / DATASET_DIR_NAME, seed=cfg.DATASETS.SYNTHETIC_SEED)
        barrier(dist)


def load_dataset(cfg, verbose: bool = True, dist: DistInfo | None = None):
    """The training dataset (``DATASETS.NAMES``: train, query and gallery)."""
    name = cfg.DATASETS.NAMES
    _ensure_synthetic(cfg, name, dist or DistInfo())
    return build_dataset(name, cfg.DATASETS.ROOT_DIR, verbose=verbose, **dataset_options(cfg, name))


def evaluation_set_names(cfg) -> list[str]:
    """``DATASETS.TEST_NAMES``, or the training dataset when it is empty (duplicates dropped)."""
    names = [str(name) for name in cfg.DATASETS.TEST_NAMES] or [cfg.DATASETS.NAMES]
    return list(dict.fromkeys(names))


def load_test_set(cfg, name: str, verbose: bool = True):
    """Query and gallery of dataset ``name`` (its training folder need not exist)."""
    _ensure_synthetic(cfg, name, DistInfo())
    return build_test_set(name, cfg.DATASETS.ROOT_DIR, verbose=verbose, **dataset_options(cfg, name))


# ------------------------------------------------------------------ transforms
def _size(value, key: str) -> list[int]:
    size = [int(v) for v in value]
    if len(size) != 2 or min(size) <= 0:
        raise ConfigError(f"{key} must be [height, width] with positive values, got {list(value)}")
    return size


def use_color_jitter(cfg) -> bool:
    """INPUT.COLOR_JITTER: a switch, or 'auto' (on for the datasets the reference jitters)."""
    setting = switch_or_auto(cfg.INPUT.COLOR_JITTER, "INPUT.COLOR_JITTER")
    return cfg.DATASETS.NAMES in COLOR_JITTER_DATASETS if setting is None else setting


def build_train_transform(cfg):
    """The training transform of INPUT.* (see :func:`mbf.data.transforms.train_transform`)."""
    jitter = tuple(cfg.INPUT.COLOR_JITTER_STRENGTH) if use_color_jitter(cfg) else None
    return train_transform(_size(cfg.INPUT.SIZE_TRAIN, "INPUT.SIZE_TRAIN"), cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD,
                           flip_prob=cfg.INPUT.PROB, padding=cfg.INPUT.PADDING, color_jitter=jitter)


def build_test_transform(cfg):
    """``transform(pil_image)`` -> normalised float image [3,H,W] at INPUT.SIZE_TEST."""
    return eval_transform(_size(cfg.INPUT.SIZE_TEST, "INPUT.SIZE_TEST"), cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD)


# ------------------------------------------------------------------ loaders
def build_num_workers(cfg, quiet: bool = False) -> int:
    """DATALOADER.NUM_WORKERS capped at the CPUs available (see :func:`capped_workers`)."""
    return capped_workers(cfg.DATALOADER.NUM_WORKERS, quiet)


def build_train_sampler(cfg, items: list, rank: int = 0, world_size: int = 1):
    """The sampler of DATALOADER.SAMPLER over ``items`` (SOLVER.IMS_PER_BATCH, DATALOADER.NUM_INSTANCE, SOLVER.SEED)."""
    return train_sampler(str(cfg.DATALOADER.SAMPLER), items, cfg.SOLVER.IMS_PER_BATCH, cfg.DATALOADER.NUM_INSTANCE,
                         cfg.SOLVER.SEED, rank, world_size)


def build_train_loader(cfg, dataset, mask_loader=None, rank: int = 0, world_size: int = 1):
    """Training batches of ``SOLVER.IMS_PER_BATCH / world_size`` images for this process."""
    return train_loader(dataset.train, build_train_transform(cfg), build_train_sampler(cfg, dataset.train, rank, world_size),
                        cfg.SOLVER.IMS_PER_BATCH // world_size, build_num_workers(cfg), mask_loader)


def build_test_loader(cfg, items: list):
    """Test-transformed images of ``items`` in order, TEST.IMS_PER_BATCH at a time."""
    return test_loader(items, build_test_transform(cfg), cfg.TEST.IMS_PER_BATCH, build_num_workers(cfg))
