"""Image inputs of the retrieval tools: folders of files, crops handed over by other programs.

A crop is a path, a PIL image or a uint8 array H x W x 3 (RGB, or BGR with ``bgr=True`` as
OpenCV gives it). Float arrays are refused: they are usually already normalised, and
normalising them a second time would silently give other descriptors; so are arrays with no
pixels (0 x 5).

A video frame with boxes (:func:`frame_array`, :func:`pixel_boxes`, :func:`frame_crops`), as
trackers hand them over: the frame is a uint8 array H x W x 3 (RGB, or BGR with ``bgr=True``),
H x W or H x W x 1 (grey: the one channel is used for R, G and B) or H x W x 4 (the fourth
channel, alpha, is dropped); boxes are an N x 4+ array of x1, y1, x2, y2 in pixels (further
columns, e.g. score and class, are ignored). Each box is rounded to whole pixels (x1, y1 the
first row and column inside, x2, y2 one past the last; halves to even, as NumPy rounds) and
clipped to the frame, so a box reaching out of the frame gives the part inside. A box with a
NaN or infinite coordinate, an inverted box (x2 < x1 or y2 < y1) and a box with no pixel
inside the frame after rounding and clipping are errors naming the box.
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
        if item.shape[0] == 0 or item.shape[1] == 0:
            raise InputError(f"image array of shape {item.shape} has no pixels")
        return Image.fromarray(np.ascontiguousarray(item[..., ::-1] if bgr else item))
    raise InputError(f"cannot embed a {type(item).__name__}: pass paths, PIL images or uint8 arrays")


def frame_array(frame) -> np.ndarray:
    """``frame`` checked as a video frame (module docstring): a uint8 array H x W, H x W x 1,
    H x W x 3 or H x W x 4 with at least one pixel, returned as it is; InputError otherwise."""
    if isinstance(frame, torch.Tensor):
        frame = frame.detach().cpu().numpy()
    if not isinstance(frame, np.ndarray):
        raise InputError(f"the frame must be a uint8 NumPy array H x W x 3, got a {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise InputError(f"the frame must be a uint8 array (0..255) H x W x 3, got a {frame.dtype} array of shape "
                         f"{frame.shape}: convert it to uint8 pixels first")
    if not (frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] in (1, 3, 4))):
        raise InputError(f"the frame must be H x W x 3 (colour), H x W or H x W x 1 (grey) or H x W x 4 (alpha "
                         f"dropped), got shape {frame.shape}")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise InputError(f"the frame of shape {frame.shape} has no pixels")
    return frame


def _box_text(box: np.ndarray) -> str:
    return "[" + ", ".join(f"{v:g}" for v in box) + "]"


def pixel_boxes(boxes, height: int, width: int) -> np.ndarray:
    """Boxes (N x 4+, x1 y1 x2 y2 first) as int64 pixel boxes [N, 4], rounded and clipped to a
    ``height`` x ``width`` frame (module docstring). An empty array (shape (0,) or (0, K)) gives
    [0, 4]; a box that is not finite, inverted or has no pixel inside the frame is an
    InputError naming its index and coordinates (the first such box, and how many there are)."""
    try:
        arr = np.asarray(boxes, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"boxes must be a numeric N x 4 array (x1, y1, x2, y2, ...): {exc}") from None
    if arr.size == 0 and arr.ndim <= 2 and (arr.ndim < 2 or arr.shape[0] == 0):
        return np.empty((0, 4), np.int64)
    if arr.ndim != 2 or arr.shape[1] < 4:
        raise InputError(f"boxes must be an N x 4 array (x1, y1, x2, y2; more columns are ignored), "
                         f"got shape {arr.shape}")
    xyxy = arr[:, :4]

    def refuse(bad: np.ndarray, what: str) -> None:
        index = np.flatnonzero(bad)
        if len(index):
            i = int(index[0])
            more = f" ({len(index) - 1} more boxes like it)" if len(index) > 1 else ""
            raise InputError(f"box {i} of {len(arr)} {_box_text(xyxy[i])} {what}{more}")

    refuse(~np.isfinite(xyxy).all(axis=1), "has a NaN or infinite coordinate")
    refuse((xyxy[:, 2] < xyxy[:, 0]) | (xyxy[:, 3] < xyxy[:, 1]), "is inverted (x2 < x1 or y2 < y1)")
    pixels = np.rint(xyxy)
    pixels[:, 0::2] = np.clip(pixels[:, 0::2], 0, width)
    pixels[:, 1::2] = np.clip(pixels[:, 1::2], 0, height)
    pixels = pixels.astype(np.int64)
    refuse((pixels[:, 2] <= pixels[:, 0]) | (pixels[:, 3] <= pixels[:, 1]),
           f"has no pixel inside the {width} x {height} frame after rounding and clipping")
    return pixels


def frame_crops(frame: np.ndarray, boxes: np.ndarray) -> list[np.ndarray]:
    """Views of ``frame`` (checked by :func:`frame_array`) inside ``boxes`` (from :func:`pixel_boxes`),
    each H x W x 3: a grey frame's channel repeated, an alpha channel dropped; colour order kept."""
    crops = []
    for x1, y1, x2, y2 in boxes.tolist():
        crop = frame[y1:y2, x1:x2]
        if crop.ndim == 2:
            crop = crop[..., None]
        crops.append(np.repeat(crop, 3, axis=2) if crop.shape[2] == 1 else crop[..., :3])
    return crops


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
