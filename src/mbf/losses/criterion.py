"""Every loss term of one MBF training step (METHOD.md section 6), and its config builder.

    L = reid(holistic) + reid(occluded) + reid(decoder)
      + seg(holistic) + seg(occluded) + sepa(holistic) + sepa(occluded) + mse

Terms are read by attribute from the model's train-mode outputs (``MBFOutput``); a term whose
inputs are absent is left out, so the global-only baseline (parts None, no occluded pass) gets
``reid_holistic`` alone and an MBF without the recovery branch gets no decoder/mse terms.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, InputError
from .reid import LabelSmoothingCrossEntropy, ReIDLoss
from .segmentation import DEFAULT_SEG_CLASS_WEIGHTS, DEFAULT_SEG_EPSILON, segmentation_loss
from .triplet import TripletLoss

logger = logging.getLogger(__name__)


class MBFCriterion(nn.Module):
    """``criterion(holistic, occluded, target, holistic_labels, occluded_labels)`` ->
    ``(total, terms)`` with ``terms`` a dict of named scalar tensors summing to ``total``.

    ``occluded`` and the label maps may be None (baseline). Keys, when their inputs exist:
    reid_holistic, reid_occluded, reid_decoder, seg_holistic, seg_occluded, sepa (both
    separation losses added), mse (holistic patch tokens vs recovered patch tokens).
    """

    def __init__(
        self,
        reid: ReIDLoss,
        seg_epsilon: float = DEFAULT_SEG_EPSILON,
        seg_class_weights: Sequence[float] = DEFAULT_SEG_CLASS_WEIGHTS,
    ):
        super().__init__()
        self.reid = reid
        self.seg_epsilon = float(seg_epsilon)
        self.seg_class_weights = tuple(float(w) for w in seg_class_weights)

    def _seg(self, out, labels, name: str) -> torch.Tensor | None:
        probs = getattr(out, "patch_probs", None)
        if probs is None:
            return None
        if labels is None:
            raise InputError(f"{name}: the model returned patch_probs but no refined patch labels were given")
        return segmentation_loss(probs, labels, self.seg_epsilon, self.seg_class_weights)

    def forward(self, holistic, occluded=None, target=None, holistic_labels=None, occluded_labels=None):
        if target is None:
            raise InputError("MBFCriterion needs the identity targets")
        terms: dict[str, torch.Tensor] = {}
        terms["reid_holistic"] = self.reid(holistic.scores, holistic.feats, target)
        seg_h = self._seg(holistic, holistic_labels, "seg_holistic")
        if seg_h is not None:
            terms["seg_holistic"] = seg_h

        branches = (holistic, occluded)
        sepa = [o.sepa_loss for o in branches if o is not None and getattr(o, "sepa_loss", None) is not None]

        if occluded is not None:
            terms["reid_occluded"] = self.reid(occluded.scores, occluded.feats, target)
            dec_scores = getattr(occluded, "decoder_scores", None)
            if dec_scores is not None:
                terms["reid_decoder"] = self.reid(dec_scores, occluded.decoder_feats, target, with_global=False)
            seg_o = self._seg(occluded, occluded_labels, "seg_occluded")
            if seg_o is not None:
                terms["seg_occluded"] = seg_o
            recovered = getattr(occluded, "recovered_patches", None)
            patches = getattr(holistic, "patch_feats", None)
            if recovered is not None and patches is not None:
                terms["mse"] = F.mse_loss(patches.float(), recovered.float())

        if sepa:
            terms["sepa"] = torch.stack([s.float() for s in sepa]).sum()
        total = torch.stack(list(terms.values())).sum()
        return total, terms

    def extra_repr(self) -> str:
        return f"seg_epsilon={self.seg_epsilon}, seg_class_weights={self.seg_class_weights}"


def build_criterion(cfg, num_classes: int) -> MBFCriterion:
    """The criterion the config asks for.

    Reads MODEL.IF_LABELSMOOTH ('on' -> label-smoothed CE, eps 0.1; 'off' -> plain CE),
    MODEL.METRIC_LOSS_TYPE / DATALOADER.SAMPLER (a 'softmax' sampler trains with the ID loss
    alone, as the reference does; otherwise the metric loss must be 'triplet'),
    MODEL.NO_MARGIN (soft-margin triplet) or SOLVER.MARGIN, MODEL.ID_LOSS_WEIGHT,
    MODEL.TRIPLET_LOSS_WEIGHT, MODEL.SEG_EPSILON and MODEL.SEG_CLASS_WEIGHTS.

    Deviation: with label smoothing on, the reference's decoder loss ignores its parts-only
    flag and treats the first recovered part as a global feature; here the decoder term
    always has the parts-only structure, whichever cross-entropy is used.
    """
    smooth = str(cfg.MODEL.IF_LABELSMOOTH).lower()
    if smooth not in ("on", "off"):
        raise ConfigError(f"MODEL.IF_LABELSMOOTH must be 'on' or 'off', got {cfg.MODEL.IF_LABELSMOOTH!r}")
    sampler = str(cfg.DATALOADER.SAMPLER)
    if sampler == "softmax":
        id_loss, triplet = None, None
    elif "triplet" in sampler:
        if "triplet" not in str(cfg.MODEL.METRIC_LOSS_TYPE):
            raise ConfigError(
                f"MODEL.METRIC_LOSS_TYPE must be 'triplet' with DATALOADER.SAMPLER {sampler!r}, "
                f"got {cfg.MODEL.METRIC_LOSS_TYPE!r}"
            )
        id_loss = LabelSmoothingCrossEntropy(num_classes) if smooth == "on" else None
        triplet = TripletLoss(None if cfg.MODEL.NO_MARGIN else float(cfg.SOLVER.MARGIN))
    else:
        raise ConfigError(f"DATALOADER.SAMPLER must be 'softmax' or contain 'triplet', got {sampler!r}")

    epsilon = float(cfg.MODEL.SEG_EPSILON)
    if not 0.0 <= epsilon < 1.0:
        raise ConfigError(f"MODEL.SEG_EPSILON must be in [0, 1), got {epsilon}")
    weights = [float(w) for w in cfg.MODEL.SEG_CLASS_WEIGHTS]
    if len(weights) < 2 or any(w < 0 for w in weights):
        raise ConfigError(f"MODEL.SEG_CLASS_WEIGHTS must list one non-negative weight per class, got {weights}")

    reid = ReIDLoss(
        id_loss=id_loss,
        triplet=triplet,
        id_weight=cfg.MODEL.ID_LOSS_WEIGHT,
        triplet_weight=cfg.MODEL.TRIPLET_LOSS_WEIGHT,
    )
    criterion = MBFCriterion(reid, seg_epsilon=epsilon, seg_class_weights=weights)
    logger.info(
        "losses: ID %s, triplet %s, seg eps %.3g, class weights %s",
        "label-smoothed CE" if id_loss is not None else "CE",
        "off" if triplet is None else triplet.extra_repr(),
        epsilon,
        weights,
    )
    return criterion
