"""Image inputs of the retrieval tools: folders of files, crops handed over by other programs.

A crop is a path, a PIL image or a uint8 array H x W x 3 (RGB, or BGR with ``bgr=True`` as
OpenCV gives it). Float arrays are refused: they are usually already normalised, and
normalising them a second time would silently give other descriptors.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ..data import IMAGE_EXTENSIONS, read_image
from ..data.datasets import NAME_PATTERN
from ..data.datasets.base import list_tree
from ..data.io import os_reason, to_rgb
from ..errors import DatasetError, InputError


def list_images(folder: str | os.PathLike) -> list[str]:
    """Every image under ``folder`` (recursively, symbolic links followed), sorted.

    A folder reached twice (a link loop) is walked once, with a warning; an image name whose link
    loops or leads nowhere is a DatasetError naming it (see :mod:`mbf.data.datasets.base`).
    """
    root = Path(folder)
    try:
        if not stat.S_ISDIR(root.stat().st_mode):
            raise DatasetError(f"image folder {root} is a file, expected a folder of images")
    except FileNotFoundError:
        raise DatasetError(f"image folder not found: {root}") from None
    except OSError as exc:
        raise DatasetError(f"cannot list the image folder {root}: {os_reason(exc)}") from None
    paths = list_tree(root, IMAGE_EXTENSIONS)
    if not paths:
        raise DatasetError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under {root}")
    return paths


def camera_from_name(path: str) -> int | None:
    """0-based camera encoded in a re-ID file name (``..._c3...``), None when the name has none."""
    match = NAME_PATTERN.match(Path(path).name)
    return int(match.group(2)) - 1 if match else None


def camera_of(path: str, num_cameras: int, unknown: int = 0) -> int:
    """The camera of a re-ID file name, ``unknown`` when there is none or it is out of range.

    Models with camera embeddings (SIE) need one; images from elsewhere get camera ``unknown``
    (by default the first camera's embedding).
    """
    cam = camera_from_name(path)
    return cam if cam is not None and 0 <= cam < max(num_cameras, 1) else unknown


def to_pil(item, bgr: bool = False) -> Image.Image:
    """A crop (path, PIL image or uint8 array H x W x 3) as an RGB PIL image."""
    if isinstance(item, (str, os.PathLike)):
        return read_image(item)
    if isinstance(item, Image.Image):
        return to_rgb(item)
    if isinstance(item, torch.Tensor):
        item = item.detach().cpu().numpy()
    if isinstance(item, np.ndarray):
        if item.dtype != np.uint8:
            raise InputError(
                f"image arrays must be uint8 H x W x 3 crops, got {item.dtype}: float arrays are refused because "
                "they are usually already normalised (use Embedder.embed_preprocessed for those)"
            )
        if item.ndim != 3 or item.shape[2] != 3:
            raise InputError(f"image arrays must be H x W x 3, got shape {item.shape}")
        return Image.fromarray(np.ascontiguousarray(item[..., ::-1] if bgr else item))
    raise InputError(f"cannot embed a {type(item).__name__}: pass paths, PIL images or uint8 arrays")


class ImageFiles(Dataset):
    """Paths -> (transformed image, camera) with cameras read from re-ID file names."""

    def __init__(self, paths: list[str], transform, num_cameras: int, unknown_camera: int = 0):
        self.paths, self.transform = paths, transform
        self.num_cameras, self.unknown_camera = num_cameras, unknown_camera

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        path = self.paths[i]
        return self.transform(read_image(path)), camera_of(path, self.num_cameras, self.unknown_camera)
