"""Pictures for people: ranked lists of a few queries and predicted part masks."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..parsing.labels import PART_NAMES

# background transparent; head, upper body, lower body, shoes
PART_COLOURS = np.array([[0, 0, 0], [230, 60, 60], [60, 120, 230], [60, 190, 90], [240, 200, 40]], dtype=np.float32)
CORRECT, WRONG = "#1a9e3a", "#d62728"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _thumbnail(path: str, size=(128, 64)) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        return np.asarray(img.convert("RGB").resize((size[1], size[0])))


def _save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def plot_retrieval(path, q_paths, g_paths, distmat, q_pids, g_pids, q_camids, g_camids, num_queries: int = 6,
                   topk: int = 10) -> Path:
    """For the first ``num_queries`` queries: the query and its ``topk`` gallery images, true
    matches framed green and wrong ones red (same identity and camera left out, as in evaluation)."""
    plt = _pyplot()
    dist = np.asarray(distmat.cpu() if hasattr(distmat, "cpu") else distmat)
    q_pids, g_pids, q_camids, g_camids = map(np.asarray, (q_pids, g_pids, q_camids, g_camids))
    rows = min(num_queries, len(q_paths))
    fig, axes = plt.subplots(rows, topk + 1, figsize=(1.1 * (topk + 1), 2.2 * rows), squeeze=False)
    for r in range(rows):
        valid = ~((g_pids == q_pids[r]) & (g_camids == q_camids[r]))
        candidates = np.flatnonzero(valid)
        ranked = candidates[np.argsort(dist[r, candidates], kind="stable")[:topk]]
        axes[r, 0].imshow(_thumbnail(q_paths[r]))
        axes[r, 0].set_title(f"query {q_pids[r]}", fontsize=7)
        for c in range(topk):
            ax = axes[r, c + 1]
            if c < len(ranked):
                g = ranked[c]
                ax.imshow(_thumbnail(g_paths[g]))
                colour = CORRECT if g_pids[g] == q_pids[r] else WRONG
                for spine in ax.spines.values():
                    spine.set_edgecolor(colour)
                    spine.set_linewidth(3)
                ax.set_title(f"{c + 1}: {g_pids[g]}", fontsize=7, color=colour)
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle("query | top-%d gallery (green: same identity, red: other)" % topk, fontsize=9)
    return _save(fig, path)


def _to_uint8(images) -> np.ndarray:
    arr = np.asarray(images.detach().cpu() if hasattr(images, "detach") else images)
    if arr.ndim == 4 and arr.shape[1] == 3:
        arr = arr.transpose(0, 2, 3, 1)
    if arr.dtype != np.uint8:
        arr = (np.clip(arr, 0.0, 1.0) * 255).round().astype(np.uint8)
    return arr


def plot_part_masks(path, images, part_maps, titles=None, alpha: float = 0.5) -> Path:
    """Images with their part labels overlaid (label maps [B,h,w] of 0..4, any resolution).

    ``images``: uint8 [B,H,W,3] or floats in [0, 1] [B,3,H,W] (denormalised).
    """
    plt = _pyplot()
    imgs = _to_uint8(images)
    maps = np.asarray(part_maps.detach().cpu() if hasattr(part_maps, "detach") else part_maps).astype(np.int64)
    b, h, w = imgs.shape[:3]
    # nearest-neighbour upsampling of the label grid to the image size
    rows = (np.arange(h) * maps.shape[1] // h)[:, None]
    cols = (np.arange(w) * maps.shape[2] // w)[None, :]
    fig, axes = plt.subplots(1, b, figsize=(1.2 * b, 2.6), squeeze=False)
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
    handles = [plt.Rectangle((0, 0), 1, 1, color=PART_COLOURS[k] / 255) for k in range(1, len(PART_NAMES))]
    fig.legend(handles, PART_NAMES[1:], loc="lower center", ncol=len(handles), fontsize=7, frameon=False)
    return _save(fig, path)
