"""Where a training step gets its part labels: mask sources by name (HUMAN_PARSING.SOURCE).

A source is built from the config as :class:`PartLabels`: either a ``loader`` (image path ->
labels uint8 [H, W] at the image's resolution, run in the data loader and transformed with
the image) or an online parser, made by ``make_parser()`` when the training step is built (a
module: normalised images [B, 3, H, W] -> labels int64 [B, H, W], run on every batch). A new
source is one function registered from anywhere::

    from mbf.parsing import MASK_SOURCES, PartLabels

    @MASK_SOURCES.register("my_parser")
    def build_my_parser(cfg):
        return PartLabels(make_parser=lambda: MyParser(...))

then ``HUMAN_PARSING.SOURCE my_parser``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from torch import nn

from ..errors import ConfigError, DatasetError
from ..registry import Registry
from .cache import ParseCache
from .masks import FolderMasks
from .parser import HumanParser

MASK_SOURCES = Registry("mask source", key="HUMAN_PARSING.SOURCE")


@dataclass
class PartLabels:
    loader: Callable[[str], np.ndarray] | None = None
    make_parser: Callable[[], nn.Module] | None = None

    def __post_init__(self):
        if (self.loader is None) == (self.make_parser is None):
            raise ValueError("PartLabels needs exactly one of loader and make_parser")


def build_mask_dir(cfg) -> Path:
    """HUMAN_PARSING.MASK_DIR as a path: absolute as given, relative under DATASETS.ROOT_DIR."""
    folder = Path(cfg.HUMAN_PARSING.MASK_DIR)
    return folder if folder.is_absolute() else Path(cfg.DATASETS.ROOT_DIR) / folder




@MASK_SOURCES.register("hrnet")
def build_online_hrnet(cfg) -> PartLabels:
    """The reference's way: the HRNet teacher parses every training batch."""
    return PartLabels(make_parser=lambda: HumanParser.from_config(cfg))


@MASK_SOURCES.register("files")
def build_label_files(cfg) -> PartLabels:
    """Label PNGs under HUMAN_PARSING.MASK_DIR (see :class:`~mbf.parsing.masks.FolderMasks`)."""
    if not cfg.HUMAN_PARSING.MASK_DIR:
        raise ConfigError("HUMAN_PARSING.SOURCE is 'files' but HUMAN_PARSING.MASK_DIR is empty")
    folder = build_mask_dir(cfg)
    if not folder.is_dir():
        where = "" if Path(cfg.HUMAN_PARSING.MASK_DIR).is_absolute() else " (relative to DATASETS.ROOT_DIR)"
        raise DatasetError(f"HUMAN_PARSING.MASK_DIR not found: {folder}{where}")
    return PartLabels(loader=FolderMasks(str(folder)))


@MASK_SOURCES.register("cache")
def build_parse_cache(cfg) -> PartLabels:
    """The parse cache of this parser (``mbf parse``), checked to exist."""
    return PartLabels(loader=ParseCache.from_config(cfg).loader())


def build_part_labels(cfg) -> PartLabels:
    """The source HUMAN_PARSING.SOURCE names (case-insensitive)."""
    return MASK_SOURCES.get(str(cfg.HUMAN_PARSING.SOURCE).lower())(cfg)


def build_mask_loader(cfg):
    """The configured source's per-image loader, or None when it parses online (no parser is
    built here)."""
    return build_part_labels(cfg).loader
