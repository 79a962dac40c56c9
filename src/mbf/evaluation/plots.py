"""Pictures for people: ranked lists of a few queries and predicted part masks (matplotlib, Agg)."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..files import atomic_write
from ..parts import PART_NAMES

# background transparent; head, upper body, lower body, shoes
PART_COLOURS = np.array([[0, 0, 0], [230, 60, 60], [60, 120, 230], [60, 190, 90], [240, 200, 40]], dtype=np.float32)
CORRECT, WRONG = "#1a9e3a", "#d62728"

log = logging.getLogger(__name__)


def _figure(rows: int, cols: int, figsize):
    """A figure drawn by Agg, built without pyplot so a caller's interactive backend is left alone."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(rows, cols, squeeze=False)


def _thumbnail(path: str, size=(128, 64)) -> np.ndarray:
    """The image at ``path`` resized to ``size`` (H, W); a grey tile when it cannot be read."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB").resize((size[1], size[0]), Image.BILINEAR))
    except (OSError, ValueError):
        log.warning("cannot read %s for the retrieval picture; drawing a grey tile", path)
        return np.full((size[0], size[1], 3), 160, dtype=np.uint8)


def _numpy(x) -> np.ndarray:
    return np.asarray(x.detach().cpu() if hasattr(x, "detach") else x)


def save_figure(fig, path, **options) -> Path:
    """``fig`` as a PNG at ``path``, written whole or not at all (see :mod:`mbf.files`)."""
    path = Path(path)
    with atomic_write(path) as fh:
        fig.savefig(fh, format="png", dpi=100, **options)
    return path


def _save(fig, path) -> Path:
    return save_figure(fig, path, bbox_inches="tight")


def plot_retrieval(path, q_paths, g_paths, distmat, q_pids, g_pids, q_camids, g_camids, num_queries: int = 6,
                   topk: int = 10) -> Path:
    """For the first ``num_queries`` queries: the query and its ``topk`` gallery images, true
    matches framed green and wrong ones red (same identity and camera left out, as in evaluation)."""
    dist = _numpy(distmat)
    q_pids, g_pids, q_camids, g_camids = (_numpy(a).reshape(-1) for a in (q_pids, g_pids, q_camids, g_camids))
    if dist.ndim != 2 or dist.shape != (len(q_paths), len(g_paths)):
        raise InputError(f"distmat has shape {dist.shape} but there are {len(q_paths)} query and "
                         f"{len(g_paths)} gallery paths")
    if not (len(q_pids) == len(q_camids) == len(q_paths) and len(g_pids) == len(g_camids) == len(g_paths)):
        raise InputError("plot_retrieval needs one pid and camid per query and gallery path")
    if len(q_paths) == 0 or len(g_paths) == 0 or num_queries < 1 or topk < 1:
        raise InputError("plot_retrieval needs at least one query, one gallery image, num_queries >= 1 and topk >= 1")
    # the first queries that have a true match (the others are skipped by the evaluation too)
    has_match = [i for i in range(len(q_paths)) if np.any((g_pids == q_pids[i]) & (g_camids != q_camids[i]))]
    shown = (has_match or list(range(len(q_paths))))[:num_queries]
    fig, axes = _figure(len(shown), topk + 1, figsize=(1.1 * (topk + 1), 2.2 * len(shown)))
    for row, r in enumerate(shown):
        valid = ~((g_pids == q_pids[r]) & (g_camids == q_camids[r]))
        candidates = np.flatnonzero(valid)
        ranked = candidates[np.argsort(dist[r, candidates], kind="stable")[:topk]]
        axes[row, 0].imshow(_thumbnail(q_paths[r]))
        axes[row, 0].set_title(f"query {q_pids[r]}", fontsize=7)
        for c in range(topk):
            ax = axes[row, c + 1]
            if c < len(ranked):
                g = ranked[c]
                ax.imshow(_thumbnail(g_paths[g]))
                colour = CORRECT if g_pids[g] == q_pids[r] else WRONG
                for spine in ax.spines.values():
                    spine.set_edgecolor(colour)
                    spine.set_linewidth(3)
                ax.set_title(f"{c + 1}: {g_pids[g]}", fontsize=7, color=colour)
            else:
                ax.set_axis_off()
        for ax in axes[row]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle("query | top-%d gallery (green: same identity, red: other)" % topk, fontsize=9)
    return _save(fig, path)


def _to_uint8(images) -> np.ndarray:
    arr = _numpy(images)
    if arr.ndim == 4 and arr.shape[1] == 3:
        arr = arr.transpose(0, 2, 3, 1)
    if arr.dtype != np.uint8:
        arr = (np.clip(arr, 0.0, 1.0) * 255).round().astype(np.uint8)
    return arr


def plot_part_masks(path, images, part_maps, titles=None, alpha: float = 0.5) -> Path:
    """Images with their part labels overlaid (label maps [B,h,w] of 0..4, any resolution).

    ``images``: uint8 [B,H,W,3] or floats in [0, 1] [B,3,H,W] (denormalised).
    """
    imgs = _to_uint8(images)
    maps = _numpy(part_maps).astype(np.int64)
    if imgs.ndim != 4 or imgs.shape[-1] != 3 or maps.ndim != 3 or len(maps) != len(imgs) or len(imgs) == 0:
        raise InputError(f"plot_part_masks needs images [B,3,H,W] (or [B,H,W,3] uint8) and label maps [B,h,w]; "
                         f"got {tuple(_numpy(images).shape)} and {tuple(maps.shape)}")
    if maps.min() < 0 or maps.max() >= len(PART_COLOURS):
        raise InputError(f"part labels must lie in 0..{len(PART_COLOURS) - 1}, got {maps.min()}..{maps.max()}")
    b, h, w = imgs.shape[:3]
    # nearest-neighbour upsampling of the label grid to the image size
    rows = (np.arange(h) * maps.shape[1] // h)[:, None]
    cols = (np.arange(w) * maps.shape[2] // w)[None, :]
    fig, axes = _figure(1, b, figsize=(1.2 * b, 2.6))
    for i in range(b):
        labels = maps[i][rows, cols]
        colour = PART_COLOURS[labels]
        weight = np.where(labels > 0, alpha, 0.0)[..., None]
        blended = (imgs[i] * (1 - weight) + colour * weight).astype(np.uint8)
        ax = axes[0, i]
        ax.imshow(blended)
        ax.set_xticks([])
        ax.set_yticks([])
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=7)
    from matplotlib.patches import Rectangle

    handles = [Rectangle((0, 0), 1, 1, color=PART_COLOURS[k] / 255) for k in range(1, len(PART_NAMES))]
    fig.legend(handles, PART_NAMES[1:], loc="lower center", ncol=len(handles), fontsize=7, frameon=False)
    return _save(fig, path)
