"""Post-processing of parser label maps, on a whole batch at once (docs/METHOD.md, section 3).

In order, per image: (1) when the foreground (class > 0) has more than one connected
component, drop the components under ``MIN_FOREGROUND`` pixels; (2) merge the 10 parser
classes into the 5 part labels; (3) drop every same-label component under ``MIN_PART``
pixels; (4) keep only the ``KEEP_PER_LABEL`` largest components of each label (equal sizes:
the component met first in row-major order wins). Components are 8-connected.

How the batch is done in two labelling calls instead of loops over images and labels:
the images are stacked vertically with one background row between them, so no component
crosses from one image into the next; step 1 labels the foreground once, and step 3 labels
the merged integer map once (``skimage.measure.label`` joins equal neighbouring values, so
this finds the components of every label at once). Component ids come out in row-major
order of their first pixel, so the ids of image i form one contiguous range, and within one
(image, label) they are in the order a per-image, per-label labelling gives. Sizes and labels
of all components come from ``np.bincount``; step 4 is one sort and reuses the components
of step 3 (removing whole components never changes the other components). Images are
independent, so the batch is also split over a few threads (the labelling and the NumPy
kernels release the GIL).

:func:`postprocess_reference` is the plain per-image, per-label loop (tests, benchmark).
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from skimage.measure import label as label_components

from ..errors import InputError
from .labels import MERGE

MIN_FOREGROUND = 100  # step 1: smallest foreground component kept (when there are several)
MIN_PART = 80  # step 3: smallest part component kept
KEEP_PER_LABEL = 2  # step 4: components kept per label and image


def _stack(maps: np.ndarray) -> np.ndarray:
    """[B,H,W] -> [B*(H+1), W] uint8 with a background row under every image."""
    b, h, w = maps.shape
    stacked = np.zeros((b, h + 1, w), dtype=np.uint8)
    stacked[:, :h] = maps
    return stacked.reshape(b * (h + 1), w)


def _components(stacked: np.ndarray, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """8-connected components of equal non-zero value (or of True, for a boolean map) in a
    stacked batch. Returns ``ids`` (0 = background, 1..N in row-major order) and ``last`` [B]:
    the largest id of images 0..i, so image i owns ids last[i-1]+1 .. last[i]."""
    ids = label_components(stacked, background=0, connectivity=2)
    last = np.maximum.accumulate(ids.reshape(batch, -1).max(axis=1))
    return ids, last


def _owners(last: np.ndarray) -> np.ndarray:
    """Image index of every component id 1..N."""
    return np.searchsorted(last, np.arange(1, int(last[-1]) + 1), side="left")


def _drop_small_foreground(stacked: np.ndarray, batch: int) -> None:
    """Step 1, in place: small foreground components, in images that have more than one."""
    ids, last = _components(stacked > 0, batch)
    num = int(last[-1])
    if num == 0:
        return
    owner = _owners(last)
    per_image = np.bincount(owner, minlength=batch)
    sizes = np.bincount(ids.ravel(), minlength=num + 1)
    drop = np.zeros(num + 1, dtype=bool)
    drop[1:] = (sizes[1:] < MIN_FOREGROUND) & (per_image[owner] > 1)
    if drop.any():
        stacked[drop[ids]] = 0


def _drop_small_and_extra_parts(stacked: np.ndarray, batch: int) -> None:
    """Steps 3 and 4, in place, on merged part labels."""
    ids, last = _components(stacked, batch)
    num = int(last[-1])
    if num == 0:
        return
    flat = ids.ravel()
    sizes = np.bincount(flat, minlength=num + 1)
    # every pixel of a component has the same label: the mean label is the label
    value = np.rint(np.bincount(flat, weights=stacked.ravel(), minlength=num + 1)[1:] / np.maximum(sizes[1:], 1))
    comp = np.arange(1, num + 1)
    big = sizes[1:] >= MIN_PART
    # step 4 among the survivors of step 3: rank inside each (image, label), largest first
    kept = comp[big]
    group = _owners(last)[big] * 256 + value[big].astype(np.int64)
    order = np.lexsort((kept, -sizes[kept], group))
    group_sorted = group[order]
    starts = np.flatnonzero(np.r_[True, group_sorted[1:] != group_sorted[:-1]])
    rank = np.arange(order.size) - np.repeat(starts, np.diff(np.r_[starts, order.size]))
    keep = np.zeros(num + 1, dtype=bool)
    keep[kept[order[rank < KEEP_PER_LABEL]]] = True
    keep[0] = True
    if not keep.all():
        stacked[~keep[ids]] = 0


def _postprocess_batch(array: np.ndarray) -> np.ndarray:
    b, h, w = array.shape
    stacked = _stack(array)
    _drop_small_foreground(stacked, b)
    stacked = MERGE[stacked]
    _drop_small_and_extra_parts(stacked, b)
    return stacked.reshape(b, h + 1, w)[:, :h]


_POOL: tuple[int, ThreadPoolExecutor] | None = None  # (owning process id, pool)


def _pool() -> ThreadPoolExecutor:
    """One thread pool per process (a forked data-loader worker gets its own: threads do not
    survive a fork)."""
    global _POOL
    if _POOL is None or _POOL[0] != os.getpid():
        _POOL = (os.getpid(), ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="mbf-postprocess"))
    return _POOL[1]


def postprocess(maps, workers: int | None = None):
    """Part labels (0..4, uint8) from 10-class parser maps [B,H,W].

    NumPy in, NumPy out; torch in, torch out (on the input's device). ``workers``: threads
    that share the batch (images are independent, and the labelling and NumPy kernels release
    the GIL); default torch.get_num_threads().
    """
    tensor = maps if isinstance(maps, torch.Tensor) else None
    array = maps.detach().cpu().numpy() if tensor is not None else np.asarray(maps)
    if array.ndim != 3:
        raise InputError(f"postprocess expects label maps [B,H,W], got shape {tuple(array.shape)}")
    if array.size and (array.min() < 0 or array.max() >= len(MERGE)):
        raise InputError(f"postprocess expects parser classes 0..{len(MERGE) - 1}, got {array.min()}..{array.max()}")
    out = np.zeros(array.shape, dtype=np.uint8)
    if array.size:
        chunks = max(1, min(int(workers or torch.get_num_threads()), array.shape[0]))
        bounds = np.linspace(0, array.shape[0], chunks + 1).astype(int)
        parts = [slice(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]
        results = map(_postprocess_batch, [array[p] for p in parts]) if chunks == 1 else \
            _pool().map(_postprocess_batch, [array[p] for p in parts])
        for part, result in zip(parts, results):
            out[part] = result
    if tensor is not None:
        return torch.from_numpy(out).to(tensor.device)
    return out


def postprocess_reference(maps: np.ndarray) -> np.ndarray:
    """The four steps image by image and label by label (the reference's loops, for checks)."""
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
