"""Post-processing of parser label maps, on a whole batch at once (METHOD.md section 3).

In order, per image: (1) when the foreground (label > 0) has more than one connected
component, drop the components under ``MIN_FOREGROUND`` pixels; (2) merge the 10 parser
classes into the 5 part labels; (3) drop every same-label component under ``MIN_PART``
pixels; (4) keep only the ``KEEP_PER_LABEL`` largest components of each label.
Components are 8-connected.

The batch is labelled in one call: the images are stacked vertically with a background row
between them, so no component can cross from one image into the next, and a component of
one label is a connected set of equal values (``skimage.measure.label`` on the integer map).
Sizes, owners and ranks of all components then come from ``np.bincount`` and one sort.
:func:`postprocess_reference` is the per-image, per-label loop it replaces (for tests and
the benchmark).
"""
from __future__ import annotations

import numpy as np
import torch
from skimage.measure import label as label_components

from ..errors import InputError
from .labels import MERGE

MIN_FOREGROUND = 100  # step 1: smallest foreground component kept (when there are several)
MIN_PART = 80  # step 3: smallest part component kept
KEEP_PER_LABEL = 2  # step 4: components kept per label


def _as_numpy(maps) -> tuple[np.ndarray, object]:
    if isinstance(maps, torch.Tensor):
        return maps.detach().cpu().numpy(), maps
    return np.asarray(maps), None


def _stack(maps: np.ndarray) -> np.ndarray:
    """[B,H,W] -> [B*(H+1), W] with a zero row after every image."""
    b, h, w = maps.shape
    stacked = np.zeros((b, h + 1, w), dtype=maps.dtype)
    stacked[:, :h] = maps
    return stacked.reshape(b * (h + 1), w)


def _components(maps: np.ndarray, binary: bool) -> tuple[np.ndarray, int]:
    """Component ids [B,H,W] (0 = background, unique across the batch) and their count."""
    b, h, w = maps.shape
    stacked = _stack((maps > 0).astype(np.uint8) if binary else maps)
    ids, num = label_components(stacked, background=0, connectivity=2, return_num=True)
    return ids.reshape(b, h + 1, w)[:, :h], num


def _drop_small_foreground(maps: np.ndarray) -> np.ndarray:
    ids, num = _components(maps, binary=True)
    if num == 0:
        return maps
    sizes = np.bincount(ids.ravel(), minlength=num + 1)
    owner = np.zeros(num + 1, dtype=np.int64)
    owner[ids.ravel()] = np.repeat(np.arange(maps.shape[0]), ids[0].size)
    per_image = np.bincount(owner[1:], minlength=maps.shape[0])
    drop = (sizes < MIN_FOREGROUND) & (per_image[owner] > 1)
    drop[0] = False
    return np.where(drop[ids], 0, maps)


def _drop_small_and_extra_parts(maps: np.ndarray) -> np.ndarray:
    # step 3: components under MIN_PART pixels
    ids, num = _components(maps, binary=False)
    sizes = np.bincount(ids.ravel(), minlength=num + 1)
    small = sizes < MIN_PART
    small[0] = False
    maps = np.where(small[ids], 0, maps)
    # step 4: beyond the KEEP_PER_LABEL largest components of each (image, label)
    ids, num = _components(maps, binary=False)
    if num == 0:
        return maps
    flat_ids = ids.ravel()
    sizes = np.bincount(flat_ids, minlength=num + 1)
    owner = np.zeros(num + 1, dtype=np.int64)
    value = np.zeros(num + 1, dtype=np.int64)
    owner[flat_ids] = np.repeat(np.arange(maps.shape[0]), ids[0].size)
    value[flat_ids] = maps.ravel()
    comp = np.arange(1, num + 1)
    # group by (image, label); inside a group largest first, ties to the earlier component
    order = np.lexsort((comp, -sizes[1:], value[1:], owner[1:]))
    group = owner[1:][order] * 256 + value[1:][order]
    starts = np.r_[0, np.flatnonzero(np.diff(group)) + 1]
    rank = np.arange(num) - np.repeat(starts, np.diff(np.r_[starts, num]))
    extra = np.zeros(num + 1, dtype=bool)
    extra[comp[order]] = rank >= KEEP_PER_LABEL
    return np.where(extra[ids], 0, maps)


def postprocess(maps):
    """Part labels (0..4) from 10-class parser maps [B,H,W] (NumPy or torch; same type back)."""
    array, tensor = _as_numpy(maps)
    if array.ndim != 3:
        raise InputError(f"postprocess expects label maps [B,H,W], got shape {tuple(array.shape)}")
    if array.size and (array.min() < 0 or array.max() >= len(MERGE)):
        raise InputError(f"postprocess expects parser classes 0..{len(MERGE) - 1}, got {array.min()}..{array.max()}")
    out = _drop_small_foreground(array.astype(np.uint8))
    out = MERGE[out]
    out = _drop_small_and_extra_parts(out)
    if tensor is not None:
        return torch.from_numpy(out).to(tensor.device)
    return out


def postprocess_reference(maps: np.ndarray) -> np.ndarray:
    """The four steps image by image and label by label (the reference's loops)."""
    out = np.array(maps, dtype=np.uint8, copy=True)
    for img in out:
        ids, num = label_components(img > 0, background=0, connectivity=2, return_num=True)
        if num > 1:
            for c in range(1, num + 1):
                if (ids == c).sum() < MIN_FOREGROUND:
                    img[ids == c] = 0
        img[:] = MERGE[img]
        for value in [v for v in np.unique(img) if v != 0]:
            ids, num = label_components(img == value, background=0, connectivity=2, return_num=True)
            for c in range(1, num + 1):
                if (ids == c).sum() < MIN_PART:
                    img[ids == c] = 0
        for value in [v for v in np.unique(img) if v != 0]:
            ids, num = label_components(img == value, background=0, connectivity=2, return_num=True)
            if num <= KEEP_PER_LABEL:
                continue
            areas = np.array([(ids == c).sum() for c in range(1, num + 1)])
            for c in np.argsort(-areas, kind="stable")[KEEP_PER_LABEL:] + 1:
                img[ids == c] = 0
    return out
