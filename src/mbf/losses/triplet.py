"""Batch-hard triplet loss (Hermans et al., "In Defense of the Triplet Loss").

For every anchor the farthest image of the same identity and the closest image of another
identity are mined from the Euclidean distance matrix of the batch. Unlike the reference,
mining does not assume that every identity has the same number of images: any P x K layout
(or an unbalanced batch) works, and anchors without any negative are left out of the mean.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError


def pairwise_euclidean(x: torch.Tensor, y: torch.Tensor | None = None, eps: float = 1e-12) -> torch.Tensor:
    """Euclidean distances [M, N] between the rows of ``x`` [M, D] and ``y`` [N, D].

    Uses ||x||^2 + ||y||^2 - 2 x.y with the squared distance clamped at ``eps`` before the
    square root, so identical rows give sqrt(eps) and a finite (zero) gradient.
    """
    y = x if y is None else y
    sq = x.pow(2).sum(1, keepdim=True) + y.pow(2).sum(1).unsqueeze(0) - 2.0 * (x @ y.t())
    return sq.clamp(min=eps).sqrt()


@dataclass
class HardMining:
    """Result of batch-hard mining; every field has one entry per anchor."""

    dist_ap: torch.Tensor  # distance to the hardest positive (the anchor itself counts)
    dist_an: torch.Tensor  # distance to the hardest negative (+inf when there is none)
    pos_idx: torch.Tensor  # int64 index of the hardest positive
    neg_idx: torch.Tensor  # int64 index of the hardest negative (meaningless where not has_neg)
    has_neg: torch.Tensor  # bool: the anchor has at least one image of another identity


def batch_hard_mining(dist: torch.Tensor, labels: torch.Tensor) -> HardMining:
    """Hardest positive (max distance, same label) and negative (min distance, other label)."""
    if dist.dim() != 2 or dist.shape[0] != dist.shape[1] or labels.shape != dist.shape[:1]:
        raise InputError(
            f"batch_hard_mining expects a square [N, N] distance matrix and N labels, "
            f"got {tuple(dist.shape)} and {tuple(labels.shape)}"
        )
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    dist_ap, pos_idx = dist.masked_fill(~same, float("-inf")).max(dim=1)
    dist_an, neg_idx = dist.masked_fill(same, float("inf")).min(dim=1)
    return HardMining(dist_ap, dist_an, pos_idx, neg_idx, (~same).any(dim=1))


class TripletLoss(nn.Module):
    """Batch-hard triplet loss on Euclidean distances.

    ``margin=None`` gives the soft-margin form log(1 + exp(d_ap - d_an)) (``MODEL.NO_MARGIN``);
    a number gives the hinge max(0, d_ap - d_an + margin) (``SOLVER.MARGIN``). Both are
    averaged over the anchors that have a negative in the batch.
    """

    def __init__(self, margin: float | None = None):
        super().__init__()
        self.margin = None if margin is None else float(margin)

    def forward(self, feats: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        mined = batch_hard_mining(pairwise_euclidean(feats), labels)
        # anchors without a negative get a harmless finite stand-in and weight 0
        dist_an = torch.where(mined.has_neg, mined.dist_an, mined.dist_ap.detach())
        gap = dist_an - mined.dist_ap
        if self.margin is None:
            per_anchor = F.softplus(-gap)  # == SoftMarginLoss(gap, +1) per element
        else:
            per_anchor = F.relu(self.margin - gap)  # == MarginRankingLoss(d_an, d_ap, +1)
        weight = mined.has_neg.to(per_anchor.dtype)
        return (per_anchor * weight).sum() / weight.sum().clamp(min=1.0)

    def extra_repr(self) -> str:
        return describe_margin(self.margin)


def describe_margin(margin: float | None) -> str:
    """'soft margin' or 'margin=<m>', as logs and module printouts say it."""
    return "soft margin" if margin is None else f"margin={float(margin)}"
