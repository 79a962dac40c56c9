"""The parse cache: the parser's part labels for every training image, computed once.

Layout: ``CACHE_DIR/<key>/`` holds ``parser.json`` (the checkpoint file, its content hash and
the parsing settings) and one PNG of labels 0..4 per training image, at the image's own
resolution, at the image's path relative to DATASETS.ROOT_DIR. The key is the checkpoint's
content hash plus a short hash of the settings that change the labels (parser input size, the
normalisation the parser sees: HUMAN_PARSING.PIXEL_MEAN / PIXEL_STD, or INPUT's), so labels of
another parser are never read by mistake, and a cache of another parser is reported with the way to build the right one. Building is
resumable: images whose PNG exists are skipped, and every PNG is written atomically.

Training reads the PNG of each image and transforms it together with the image
(tv_tensors.Mask: nearest resize, flip, pad, crop), so no parser runs during training.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..data.io import read_image
from ..errors import CheckpointError, DatasetError
from ..files import FolderLock, atomic_write, remove_stale_temporaries, write_json
from .masks import read_label_png
from .parser import HumanParser, build_parser_normalisation, checkpoint_digest

log = logging.getLogger(__name__)

MANIFEST = "parser.json"


@dataclass(frozen=True)
class ParserSettings:
    """Everything that decides the stored labels besides the images."""

    checkpoint_id: str  # content hash of the parser checkpoint
    input_size: tuple  # (height, width) the parser sees
    pixel_mean: tuple
    pixel_std: tuple

    @property
    def key(self) -> str:
        rest = json.dumps([list(self.input_size), list(self.pixel_mean), list(self.pixel_std)])
        return f"{self.checkpoint_id}-{hashlib.sha256(rest.encode()).hexdigest()[:8]}"

    def describe(self) -> str:
        h, w = self.input_size
        return (f"checkpoint hash {self.checkpoint_id}, parser input {w}x{h}, mean {list(self.pixel_mean)}, "
                f"std {list(self.pixel_std)}")

    @classmethod
    def from_config(cls, cfg) -> "ParserSettings":
        model_file = cfg.HUMAN_PARSING.MODEL_FILE
        if not model_file or not Path(model_file).is_file():
            raise CheckpointError(f"parser checkpoint not found: {model_file!r} (HUMAN_PARSING.MODEL_FILE); the parse "
                                  "cache is keyed by it")
        width, height = (int(v) for v in cfg.HUMAN_PARSING.IMAGE_SIZE)
        mean, std = build_parser_normalisation(cfg)  # what the parser sees, whatever the training images use
        return cls(checkpoint_digest(model_file), (height, width), mean, std)


def build_cache_dir(cfg) -> Path:
    """HUMAN_PARSING.CACHE_DIR, or OUTPUT_DIR/parse_cache when it is empty."""
    return Path(cfg.HUMAN_PARSING.CACHE_DIR or Path(cfg.OUTPUT_DIR or ".") / "parse_cache")


class ParseCache:
    """Label PNGs of one parser (checkpoint and settings) for the images under ``root``."""

    def __init__(self, cache_dir: str | os.PathLike, settings: ParserSettings, root: str | os.PathLike,
                 model_file: str = ""):
        self.base = Path(cache_dir)
        self.settings = settings
        self.folder = self.base / settings.key
        self.root = Path(root).resolve()
        self.model_file = str(model_file)  # the checkpoint's path, for the manifest and messages

    @classmethod
    def from_config(cls, cfg) -> "ParseCache":
        return cls(build_cache_dir(cfg), ParserSettings.from_config(cfg), cfg.DATASETS.ROOT_DIR,
                   cfg.HUMAN_PARSING.MODEL_FILE)

    def path_for(self, image_path: str) -> Path:
        image = Path(image_path).resolve()
        try:
            rel = image.relative_to(self.root)
        except ValueError:
            rel = Path(*image.parts[1:])  # outside the root: keep the absolute layout
        return self.folder / rel.with_suffix(".png")

    def _others(self) -> list[dict]:
        found = []
        for manifest in sorted(self.base.glob(f"*/{MANIFEST}")) if self.base.is_dir() else []:
            try:
                found.append(json.loads(manifest.read_text()) | {"folder": str(manifest.parent)})
            except (OSError, ValueError):
                continue
        return found

    def check(self) -> None:
        """Raise a DatasetError that says how to build the cache when none fits this parser."""
        if (self.folder / MANIFEST).is_file():
            return
        how = ("build this parser's cache with `mbf parse --config_file <your training config>` (same "
               "HUMAN_PARSING.* and INPUT.PIXEL_MEAN / PIXEL_STD as training); it is written beside any other cache")
        others = self._others()
        if not others:
            raise DatasetError(f"no parse cache in {self.base} for this parser ({self.settings.describe()}); {how}")
        same_checkpoint = any(o.get("checkpoint_id") == self.settings.checkpoint_id for o in others)
        what = "this parser checkpoint but other settings" if same_checkpoint else "another parser checkpoint"
        listed = "; ".join(f"{o['folder']} from {o.get('checkpoint', '?')} ({_describe(o)})" for o in others)
        raise DatasetError(
            f"parse cache {self.base} was built with {what}: {listed}. This run's parser is "
            f"HUMAN_PARSING.MODEL_FILE {self.model_file or '?'} ({self.settings.describe()}); {how}"
        )

    def loader(self) -> "CacheMasks":
        self.check()
        return CacheMasks(self)

    def write(self, image_path: str, labels: np.ndarray) -> None:
        # many small files that can be parsed again: whole or absent, without a disk flush each
        with atomic_write(self.path_for(image_path), fsync=False) as fh:
            Image.fromarray(np.asarray(labels, dtype=np.uint8)).save(fh, format="PNG")

    def write_manifest(self) -> None:
        write_json(self.folder / MANIFEST, {"checkpoint": self.model_file} | asdict(self.settings), indent=1)

    def lock(self) -> FolderLock:
        """This parser's cache folder, for one writer at a time (``mbf parse``)."""
        return FolderLock.for_folder(self.folder, f"parse cache {self.folder}",
                                     "wait for that `mbf parse` to end; it fills the same cache")

    def remove_temporaries(self) -> int:
        """Delete the half-written labels of a killed ``mbf parse`` (call with :meth:`lock` held)."""
        folders = [self.folder, *(p for p in self.folder.rglob("*") if p.is_dir())] if self.folder.is_dir() else []
        return sum(len(remove_stale_temporaries(folder)) for folder in folders)


def _describe(manifest: dict) -> str:
    try:
        return ParserSettings(manifest["checkpoint_id"], tuple(manifest["input_size"]), tuple(manifest["pixel_mean"]),
                              tuple(manifest["pixel_std"])).describe()
    except (KeyError, TypeError, ValueError):
        return "unknown settings"


class CacheMasks:
    """Mask loader over a parse cache: ``loader(img_path) -> uint8 [H,W]``."""

    def __init__(self, cache: ParseCache):
        self.cache = cache

    def path_for(self, image_path: str) -> Path:
        return self.cache.path_for(image_path)

    def __call__(self, image_path: str) -> np.ndarray:
        path = self.cache.path_for(image_path)
        if not path.is_file():
            raise DatasetError(f"parse cache {self.cache.folder} has no labels for {image_path} ({path}); run "
                               "`mbf parse --config_file <your training config>` again to complete it (it resumes)")
        return read_label_png(path, image_path)


class _Images(Dataset):
    """Decoded images as uint8 tensors [3,H,W] (in data-loader workers when asked)."""

    def __init__(self, paths: list[str]):
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        path = self.paths[index]
        return path, torch.from_numpy(np.array(read_image(path))).permute(2, 0, 1)


def _as_list(items: list) -> list:
    return items


def parse_images(parser: HumanParser, cache: ParseCache, paths: list[str], mean, std, batch_size: int,
                 device: torch.device, progress: bool = True, num_workers: int = 0, amp: bool = False) -> int:
    """Parse every image of ``paths`` that has no labels yet and store them; returns how many.

    Images of different sizes share one network batch (see HumanParser.parse_each). ``amp``
    runs the network under float16 autocast on CUDA, as the online parser does in training.
    """
    todo = [p for p in dict.fromkeys(paths) if not cache.path_for(p).is_file()]
    if len(todo) < len(set(paths)):
        log.info("parse cache: %d of %d images already done", len(set(paths)) - len(todo), len(set(paths)))
    if not todo:
        return 0
    mean_t = torch.tensor(mean, dtype=torch.float32, device=device).view(3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32, device=device).view(3, 1, 1)
    batches = DataLoader(_Images(todo), batch_size=max(int(batch_size), 1), num_workers=num_workers,
                         collate_fn=_as_list)
    use_amp = amp and torch.device(device).type == "cuda"
    with tqdm(total=len(todo), desc="parse", disable=None if progress else True, dynamic_ncols=True) as bar:
        for items in batches:
            # as the training transform: to [0,1] float, then Normalize(mean, std)
            images = [(img.to(device).float().div(255) - mean_t) / std_t for _, img in items]
            with torch.autocast("cuda", dtype=torch.float16, enabled=use_amp):
                labels = parser.parse_each(images)
            for (path, _), lab in zip(items, labels):
                cache.write(path, lab)
            bar.update(len(items))
    return len(todo)
