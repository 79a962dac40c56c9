"""Dataset loading for the engine, including the embedded synthetic default."""
from __future__ import annotations

from pathlib import Path

from .distributed import DistInfo, barrier

SYNTHETIC = "synthetic_occ"


def load_dataset(cfg, verbose: bool = True, dist: DistInfo | None = None, test_only: bool = False):
    """``build_dataset`` for the configured name; the synthetic set is generated on first use.

    ``test_only`` reads the query and gallery alone (evaluation never needs the training split).
    In a distributed run only the main process generates it; the others wait for it.
    """
    from ..data import build_dataset
    from ..data.datasets import SUBSETS, TEST_SUBSETS
    from ..data.synthetic import DATASET_DIR_NAME, ensure_dataset

    dist = dist or DistInfo()
    if cfg.DATASETS.NAMES == SYNTHETIC:
        if dist.is_main:
            ensure_dataset(Path(cfg.DATASETS.ROOT_DIR) / DATASET_DIR_NAME, seed=cfg.DATASETS.SYNTHETIC_SEED)
        barrier(dist)
    subsets = TEST_SUBSETS if test_only else SUBSETS
    return build_dataset(cfg.DATASETS.NAMES, cfg.DATASETS.ROOT_DIR, verbose=verbose, subsets=subsets)
