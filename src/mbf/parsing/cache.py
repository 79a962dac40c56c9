"""The parse cache: the parser's labels for every training image, computed once.

Layout: ``CACHE_DIR/<checkpoint hash>/`` holds ``parser.json`` (checkpoint path and hash,
parser input size) and one PNG of labels 0..4 per training image, at the image's own
resolution, at the image's path relative to DATASETS.ROOT_DIR. The hash of the checkpoint's
bytes names the folder, so labels of another parser are never read by mistake. Building is
resumable: images whose PNG exists are skipped, and every PNG is written atomically.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from ..errors import DatasetError
from .masks import read_label_png
from .parser import HumanParser, checkpoint_digest

log = logging.getLogger(__name__)

MANIFEST = "parser.json"


def default_cache_dir(cfg) -> Path:
    return Path(cfg.HUMAN_PARSING.CACHE_DIR or Path(cfg.OUTPUT_DIR or ".") / "parse_cache")


class ParseCache:
    """Label PNGs of one parser checkpoint for the images under ``root``."""

    def __init__(self, cache_dir: str | os.PathLike, checkpoint_id: str, root: str | os.PathLike):
        self.base = Path(cache_dir)
        self.checkpoint_id = checkpoint_id
        self.folder = self.base / checkpoint_id
        self.root = Path(root).resolve()

    @classmethod
    def from_config(cls, cfg) -> "ParseCache":
        from ..errors import CheckpointError

        model_file = cfg.HUMAN_PARSING.MODEL_FILE
        if not model_file or not Path(model_file).is_file():
            raise CheckpointError(f"parser checkpoint not found: {model_file!r} (HUMAN_PARSING.MODEL_FILE); the parse "
                                  "cache is named after it")
        return cls(default_cache_dir(cfg), checkpoint_digest(model_file), cfg.DATASETS.ROOT_DIR)

    def path_for(self, image_path: str) -> Path:
        image = Path(image_path).resolve()
        try:
            rel = image.relative_to(self.root)
        except ValueError:
            rel = Path(*image.parts[1:])  # outside the root: keep the absolute layout
        return self.folder / rel.with_suffix(".png")

    def check(self) -> None:
        """Raise a DatasetError saying how to build or rebuild the cache when it is not usable."""
        if (self.folder / MANIFEST).is_file():
            return
        others = sorted(p.name for p in self.base.glob("*") if (p / MANIFEST).is_file()) if self.base.is_dir() else []
        how = "build it with `mbf parse --config_file <your config>` (same HUMAN_PARSING.* keys)"
        if others:
            raise DatasetError(
                f"parse cache {self.base} was built with another parser checkpoint ({', '.join(others)}; this "
                f"HUMAN_PARSING.MODEL_FILE is {self.checkpoint_id}); {how}"
            )
        raise DatasetError(f"no parse cache for this parser in {self.base}; {how}")

    def loader(self):
        self.check()
        return _CacheLoader(self)

    def write(self, image_path: str, labels: np.ndarray) -> None:
        target = self.path_for(image_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        Image.fromarray(labels.astype(np.uint8)).save(tmp, format="PNG")
        os.replace(tmp, target)

    def write_manifest(self, model_file: str, input_size) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        info = {"checkpoint": str(model_file), "checkpoint_id": self.checkpoint_id, "input_size": list(input_size)}
        (self.folder / MANIFEST).write_text(json.dumps(info, indent=1) + "\n")


class _CacheLoader:
    def __init__(self, cache: ParseCache):
        self.cache = cache

    def __call__(self, image_path: str) -> np.ndarray:
        path = self.cache.path_for(image_path)
        if not path.is_file():
            raise DatasetError(f"parse cache has no labels for {image_path} ({path}); run `mbf parse` again to "
                               "complete it (it resumes)")
        return read_label_png(path, image_path)


def parse_images(parser: HumanParser, cache: ParseCache, paths: list[str], mean, std, batch_size: int,
                 device: torch.device, progress: bool = True) -> int:
    """Parse every image of ``paths`` that has no labels yet; returns how many were parsed."""
    from ..data import read_image

    todo = [p for p in paths if not cache.path_for(p).is_file()]
    if len(todo) < len(paths):
        log.info("parse cache: %d of %d images already done", len(paths) - len(todo), len(paths))
    mean_t = torch.tensor(mean, device=device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, device=device).view(1, 3, 1, 1)
    bar = tqdm(total=len(todo), desc="parse", disable=not progress, dynamic_ncols=True)
    by_size: dict[tuple, list] = {}
    for path in todo:
        img = np.asarray(read_image(path))
        by_size.setdefault(img.shape, []).append((path, img))
        group = by_size[img.shape]
        if len(group) == batch_size:
            _parse_group(parser, cache, group, mean_t, std_t, device)
            bar.update(len(group))
            group.clear()
    for group in by_size.values():
        if group:
            _parse_group(parser, cache, group, mean_t, std_t, device)
            bar.update(len(group))
    bar.close()
    return len(todo)


def _parse_group(parser, cache, group, mean_t, std_t, device) -> None:
    batch = torch.from_numpy(np.stack([img for _, img in group])).to(device)
    batch = (batch.permute(0, 3, 1, 2).float() / 255 - mean_t) / std_t
    labels = parser(batch).cpu().numpy()
    for (path, _), lab in zip(group, labels):
        cache.write(path, lab)
