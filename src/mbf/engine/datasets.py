"""Dataset loading for the engine, including the embedded synthetic default."""
from __future__ import annotations

from pathlib import Path

SYNTHETIC = "synthetic_occ"


def load_dataset(cfg, verbose: bool = True):
    """``build_dataset`` for the configured name; the synthetic set is generated on first use."""
    from ..data import build_dataset

    if cfg.DATASETS.NAMES == SYNTHETIC:
        from ..data.synthetic import ensure_dataset

        ensure_dataset(Path(cfg.DATASETS.ROOT_DIR) / "Synthetic_Occluded", seed=0)
    return build_dataset(cfg.DATASETS.NAMES, cfg.DATASETS.ROOT_DIR, verbose=verbose)
