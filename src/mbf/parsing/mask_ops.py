"""Patch-level part labels and their refinement (METHOD.md section 3).

Every function works on whole batches with tensor operations, on the input's device.
Patch windows are ``kernel`` x ``kernel`` pixels taken every ``stride`` pixels, as the
ViT's overlapping patch embedding sees the image.
"""
from __future__ import annotations

import torch

from ..errors import InputError

PATCH_KERNEL = 16  # the ViT patch size: window of one patch label
ERASE_THRESHOLD = 0.7  # a window more than this much inside the erased rectangle loses its label


def _windows(x: torch.Tensor, stride: int, kernel: int) -> torch.Tensor:
    """[B,H,W] -> [B,fH,fW,kernel*kernel]."""
    b = x.shape[0]
    w = x.unfold(1, kernel, stride).unfold(2, kernel, stride)
    return w.reshape(b, w.shape[1], w.shape[2], kernel * kernel)


def patch_labels(labels: torch.Tensor, num_parts: int, stride: int, kernel: int = PATCH_KERNEL) -> torch.Tensor:
    """Most frequent label (0..num_parts) of every patch window, ties to the lowest label.

    labels: int [B,H,W] pixel part labels. Returns int64 [B,fH,fW].
    """
    if labels.dim() != 3:
        raise InputError(f"patch_labels expects pixel labels [B,H,W], got shape {tuple(labels.shape)}")
    windows = _windows(labels.long(), stride, kernel)
    counts = torch.stack([(windows == part).sum(-1) for part in range(num_parts + 1)], dim=-1)
    return counts.argmax(dim=-1)  # argmax returns the first maximum: the lowest label


def erase_patches(patch_lbl: torch.Tensor, rects: torch.Tensor, stride: int, kernel: int = PATCH_KERNEL,
                  threshold: float = ERASE_THRESHOLD, image_size: tuple[int, int] | None = None) -> torch.Tensor:
    """Zero the patches whose window lies more than ``threshold`` inside the erased rectangle.

    rects: int64 [B,4] (top, left, height, width) per image; a row of -1 means not erased.
    image_size: (H, W) of the images; by default the smallest size that has the patch grid.
    """
    b, fh, fw = patch_lbl.shape
    if image_size is None:
        image_size = ((fh - 1) * stride + kernel, (fw - 1) * stride + kernel)
    h, w = image_size
    rects = torch.as_tensor(rects, device=patch_lbl.device).long().reshape(b, 4)
    top, left, rh, rw = rects.unbind(1)
    erased = rects[:, 0] >= 0
    ys = torch.arange(h, device=patch_lbl.device)
    xs = torch.arange(w, device=patch_lbl.device)
    inside_y = (ys >= top[:, None]) & (ys < (top + rh)[:, None])  # [B,H]
    inside_x = (xs >= left[:, None]) & (xs < (left + rw)[:, None])  # [B,W]
    # window coverage is separable: (rows inside) x (columns inside) per window
    rows = inside_y.float().unfold(1, kernel, stride).sum(-1)[:, :fh]  # [B,fH]
    cols = inside_x.float().unfold(1, kernel, stride).sum(-1)[:, :fw]  # [B,fW]
    ratio = rows[:, :, None] * cols[:, None, :] / (kernel * kernel)
    covered = (ratio > threshold) & erased[:, None, None]
    return patch_lbl.masked_fill(covered, 0)


def drop_covered(patch_lbl: torch.Tensor, covered: torch.Tensor) -> torch.Tensor:
    """Zero the patches covered by background augmentation (covered: bool [B, fH*fW])."""
    return patch_lbl.masked_fill(covered.reshape(patch_lbl.shape).bool(), 0)


def keep_salient(patch_lbl: torch.Tensor, salient_idx: torch.Tensor) -> torch.Tensor:
    """Keep only the labels of the salient patches (salient_idx: int64 [B,T] flat patch indices)."""
    b = patch_lbl.shape[0]
    keep = torch.zeros(b, patch_lbl[0].numel(), dtype=torch.bool, device=patch_lbl.device)
    keep.scatter_(1, salient_idx.long(), True)
    return patch_lbl * keep.reshape(patch_lbl.shape)
