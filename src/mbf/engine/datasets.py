"""Dataset loading for the engine, including the embedded synthetic default."""
from __future__ import annotations

from pathlib import Path

from ..data import build_dataset, build_test_set
from ..data.datasets import get_reader
from ..synthetic import DATASET_DIR_NAME, ensure_dataset
from ..distributed import DistInfo, barrier

SYNTHETIC = "synthetic_occ"


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
    """``build_dataset`` for the configured name; the synthetic set is generated on first use.

    In a distributed run only the main process generates it; the others wait for it.
    """
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
