"""Descriptors for folders of images, stored as .npz, and search in them (``mbf extract`` / ``mbf search``).

An index file holds ``feats`` [N, D] float32 (L2-normalised when TEST.FEAT_NORM is 'yes'),
``paths`` (the images), and what is needed to embed a query the same way: ``config_file``,
``weights`` and ``opts`` (the KEY VALUE overrides used at extraction).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from .data import IMAGE_EXTENSIONS, build_test_transform, read_image
from .data.loaders import num_workers
from .data.datasets import NAME_PATTERN
from .errors import DatasetError, InputError

log = logging.getLogger(__name__)


def list_images(folder: str | os.PathLike) -> list[str]:
    """Every image under ``folder`` (recursively), sorted."""
    root = Path(folder)
    if not root.is_dir():
        raise DatasetError(f"image folder not found: {root}")
    paths = sorted(str(p) for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not paths:
        raise DatasetError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under {root}")
    return paths


def camera_of(path: str, num_cameras: int) -> int:
    """0-based camera encoded in a re-ID file name (``..._c3...``), 0 when there is none or it is out of range.

    Models with camera embeddings (SIE) need one; images from elsewhere get the first camera's.
    """
    match = NAME_PATTERN.match(Path(path).name)
    cam = int(match.group(2)) - 1 if match else 0
    return cam if 0 <= cam < max(num_cameras, 1) else 0


class _Images(Dataset):
    def __init__(self, paths: list[str], transform, num_cameras: int):
        self.paths, self.transform, self.num_cameras = paths, transform, num_cameras

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(read_image(self.paths[i])), camera_of(self.paths[i], self.num_cameras)


@dataclass
class Embedder:
    """A trained model plus the test transform; ``embed(paths)`` -> descriptors [N, D]."""

    cfg: object
    model: torch.nn.Module
    device: torch.device

    @classmethod
    def load(cls, cfg, weights: str) -> "Embedder":
        from .engine.runtime import resolve_device
        from .modeling import build_model_from_checkpoint

        device = resolve_device(cfg.MODEL.DEVICE, cfg.MODEL.DEVICE_ID)
        model = build_model_from_checkpoint(cfg, weights).to(device).eval()
        return cls(cfg, model, device)

    @torch.no_grad()
    def embed(self, paths: list[str], progress: bool = False) -> np.ndarray:
        cameras = getattr(getattr(self.model, "backbone", None), "num_cameras", 0)
        images = _Images(paths, build_test_transform(self.cfg), cameras)
        loader = DataLoader(images, batch_size=self.cfg.TEST.IMS_PER_BATCH,
                            num_workers=num_workers(self.cfg))
        feats = []
        for img, cam in tqdm(loader, desc="extract", disable=not progress, dynamic_ncols=True):
            cam = cam.to(self.device) if cameras else None
            feats.append(self.model(img.to(self.device), cam_label=cam).float().cpu())
        out = torch.cat(feats)
        if str(self.cfg.TEST.FEAT_NORM).lower() == "yes":
            out = torch.nn.functional.normalize(out, dim=1)
        return out.numpy()


def save_index(path: str | os.PathLike, feats: np.ndarray, paths: list[str], config_file: str, weights: str,
               opts: list[str]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, feats=feats.astype(np.float32), paths=np.array(paths), config_file=np.array(config_file),
             weights=np.array(weights), opts=np.array(opts, dtype=str))
    os.replace(tmp, path)
    return path


@dataclass
class Index:
    feats: np.ndarray
    paths: list
    config_file: str
    weights: str
    opts: list

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Index":
        path = Path(path)
        if not path.is_file():
            raise InputError(f"gallery index not found: {path} (make one with `mbf extract`)")
        try:
            with np.load(path, allow_pickle=False) as data:
                return cls(data["feats"], [str(p) for p in data["paths"]], str(data["config_file"]),
                           str(data["weights"]), [str(o) for o in data["opts"]])
        except (KeyError, ValueError, OSError) as exc:
            raise InputError(f"{path} is not an index written by `mbf extract`: {exc}") from None

    def search(self, query: np.ndarray, topk: int) -> list[tuple[str, float]]:
        """Gallery paths with squared Euclidean distances, nearest first."""
        q = torch.from_numpy(np.asarray(query, dtype=np.float32).reshape(1, -1))
        if q.shape[1] != self.feats.shape[1]:
            raise InputError(f"query descriptor has {q.shape[1]} dims, the index {self.feats.shape[1]}")
        from .evaluation import euclidean_distance

        dist = euclidean_distance(q, torch.from_numpy(self.feats))[0]
        k = min(topk, len(self.paths))
        values, order = torch.topk(dist, k, largest=False, sorted=True)
        return [(self.paths[i], float(v)) for v, i in zip(values.tolist(), order.tolist())]
