"""Re-identification loss: ID cross-entropy + batch-hard triplet over a global and K part features.

With a global feature first (the holistic and occluded branches), each kind of loss is
``0.5 * loss(global) + 0.5 * mean_k loss(part_k)``; the recovered (decoder) parts have no
global feature and take only the part half, ``0.5 * mean_k loss(part_k)``. The whole is
``id_weight * ID + triplet_weight * TRIPLET`` (``MODEL.ID_LOSS_WEIGHT``,
``MODEL.TRIPLET_LOSS_WEIGHT``). A single feature (the global-only baseline) gets the full
weight of each loss.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from .triplet import TripletLoss


class LabelSmoothingCrossEntropy(nn.Module):
    """Cross-entropy against (1 - eps) * one_hot + eps / num_classes, averaged over the batch
    (Szegedy et al.; ``MODEL.IF_LABELSMOOTH 'on'``)."""

    def __init__(self, num_classes: int, epsilon: float = 0.1):
        super().__init__()
        self.num_classes = int(num_classes)
        self.epsilon = float(epsilon)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if logits.shape[-1] != self.num_classes:
            raise InputError(f"label-smoothed CE built for {self.num_classes} classes got logits {tuple(logits.shape)}")
        log_probs = F.log_softmax(logits, dim=1)
        nll = log_probs.gather(1, target.unsqueeze(1)).squeeze(1)
        uniform = log_probs.sum(dim=1) / self.num_classes
        return -((1.0 - self.epsilon) * nll + self.epsilon * uniform).mean()

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, epsilon={self.epsilon}"


def _as_list(x) -> list[torch.Tensor]:
    return list(x) if isinstance(x, (list, tuple)) else [x]


class ReIDLoss(nn.Module):
    """ID + triplet loss over ``[global, part_1..K]`` (or parts only, ``with_global=False``).

    Args:
        id_loss: callable ``(logits, target) -> scalar``; plain cross-entropy when None.
        triplet: a :class:`TripletLoss`, or None for an ID-only loss.
        id_weight, triplet_weight: weights of the two losses.
        global_share: weight of the global term; the mean over parts gets ``1 - global_share``.
    """

    def __init__(
        self,
        id_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        triplet: TripletLoss | None = None,
        id_weight: float = 1.0,
        triplet_weight: float = 1.0,
        global_share: float = 0.5,
    ):
        super().__init__()
        self.id_loss = id_loss if id_loss is not None else F.cross_entropy
        self.triplet = triplet
        self.id_weight = float(id_weight)
        self.triplet_weight = float(triplet_weight)
        self.global_share = float(global_share)

    def _combine(self, terms: list[torch.Tensor], with_global: bool) -> torch.Tensor:
        if not terms:
            raise InputError("ReIDLoss got an empty list of scores/features")
        if not with_global:
            return (1.0 - self.global_share) * torch.stack(terms).mean()
        if len(terms) == 1:
            return terms[0]
        return self.global_share * terms[0] + (1.0 - self.global_share) * torch.stack(terms[1:]).mean()

    def forward(
        self,
        scores: Sequence[torch.Tensor] | torch.Tensor,
        feats: Sequence[torch.Tensor] | torch.Tensor,
        target: torch.Tensor,
        with_global: bool = True,
    ) -> torch.Tensor:
        """``scores``/``feats``: lists, global first unless ``with_global`` is False."""
        scores, feats = _as_list(scores), _as_list(feats)
        loss = self.id_weight * self._combine([self.id_loss(s.float(), target) for s in scores], with_global)
        if self.triplet is not None:
            if len(feats) != len(scores):
                raise InputError(f"ReIDLoss got {len(scores)} score tensors but {len(feats)} feature tensors")
            tri = self._combine([self.triplet(f.float(), target) for f in feats], with_global)
            loss = loss + self.triplet_weight * tri
        return loss

    def extra_repr(self) -> str:
        return f"id_weight={self.id_weight}, triplet_weight={self.triplet_weight}, global_share={self.global_share}"
