"""The loss terms of a training step, by name (``MODEL.LOSS_TERMS``), each with its weight
(``MODEL.LOSS_WEIGHTS.<NAME>``, 1.0 for every term of the reference).

A term is built from the config as a callable ``term(inputs) -> scalar or None`` over the
step's :class:`LossInputs`; None means its inputs are absent (the global baseline has no parts
and no occluded pass, an MBF without recovery no decoder), and the term is left out. A new
term is one function registered from anywhere::

    from mbf.losses import LOSS_TERMS

    @LOSS_TERMS.register("feat_l2")
    def build_feat_l2(cfg, num_classes):
        return lambda inputs: inputs.holistic.feats[0].pow(2).mean()

then ``MODEL.LOSS_TERMS "[..., 'feat_l2']"`` and, if not 1.0, ``MODEL.LOSS_WEIGHTS.FEAT_L2 0.1``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import torch
import torch.nn.functional as F

from ..config import switch
from ..errors import ConfigError, InputError
from ..registry import Registry
from .reid import LabelSmoothingCrossEntropy, ReIDLoss
from .segmentation import segmentation_loss
from .triplet import TripletLoss, describe_margin

LOSS_TERMS = Registry("loss term", key="MODEL.LOSS_TERMS")

Term = Callable[["LossInputs"], "torch.Tensor | None"]


@dataclass
class LossInputs:
    """What a training step hands its criterion: the model's train-mode outputs for the holistic
    and (MBF) the occluded pass, the identity targets and the refined patch labels of both."""

    holistic: Any
    occluded: Any = None
    target: torch.Tensor | None = None
    holistic_labels: torch.Tensor | None = None
    occluded_labels: torch.Tensor | None = None


@dataclass(frozen=True)
class ReIDSettings:
    """The re-ID loss a config asks for, checked: ID loss, triplet loss and their weights."""

    triplet: bool  # False: the plain ID loss alone (a 'softmax' sampler)
    label_smooth: bool  # label-smoothed cross-entropy as the ID loss (with the triplet loss only)
    margin: float | None  # the triplet hinge margin; None: soft margin
    id_weight: float = 1.0
    triplet_weight: float = 1.0

    def loss(self, num_classes: int) -> ReIDLoss:
        """A new :class:`ReIDLoss` of these settings for ``num_classes`` identities."""
        if not self.triplet:
            return ReIDLoss(id_weight=self.id_weight, triplet_weight=self.triplet_weight)
        id_loss = LabelSmoothingCrossEntropy(num_classes) if self.label_smooth else None
        return ReIDLoss(id_loss=id_loss, triplet=TripletLoss(self.margin), id_weight=self.id_weight,
                        triplet_weight=self.triplet_weight)

    def describe(self) -> str:
        triplet = describe_margin(self.margin) if self.triplet else "off"
        return f"ID {'label-smoothed CE' if self.label_smooth else 'CE'}, triplet {triplet}"


class SegSettings(NamedTuple):
    """MODEL.SEG_EPSILON and MODEL.SEG_CLASS_WEIGHTS, checked."""

    epsilon: float
    class_weights: list[float]


def build_reid_settings(cfg) -> ReIDSettings:
    """MODEL.IF_LABELSMOOTH, DATALOADER.SAMPLER / MODEL.METRIC_LOSS_TYPE, MODEL.NO_MARGIN /
    SOLVER.MARGIN, MODEL.ID_LOSS_WEIGHT and MODEL.TRIPLET_LOSS_WEIGHT. A 'softmax' sampler
    trains with the plain ID loss alone, as the reference does."""
    smooth = switch(cfg.MODEL.IF_LABELSMOOTH, "MODEL.IF_LABELSMOOTH")
    sampler = str(cfg.DATALOADER.SAMPLER)
    if sampler != "softmax" and "triplet" not in sampler:
        raise ConfigError(f"DATALOADER.SAMPLER must be 'softmax' or contain 'triplet', got {sampler!r}")
    triplet = sampler != "softmax"
    if triplet and "triplet" not in str(cfg.MODEL.METRIC_LOSS_TYPE):
        raise ConfigError(
            f"MODEL.METRIC_LOSS_TYPE must be 'triplet' with DATALOADER.SAMPLER {sampler!r}, "
            f"got {cfg.MODEL.METRIC_LOSS_TYPE!r}"
        )
    return ReIDSettings(triplet, smooth and triplet, None if cfg.MODEL.NO_MARGIN else float(cfg.SOLVER.MARGIN),
                        float(cfg.MODEL.ID_LOSS_WEIGHT), float(cfg.MODEL.TRIPLET_LOSS_WEIGHT))


def build_reid_loss(cfg, num_classes: int) -> ReIDLoss:
    """The ID (+ triplet) loss of :func:`build_reid_settings`."""
    return build_reid_settings(cfg).loss(num_classes)


def build_seg_settings(cfg) -> SegSettings:
    """MODEL.SEG_EPSILON and MODEL.SEG_CLASS_WEIGHTS, checked."""
    epsilon = float(cfg.MODEL.SEG_EPSILON)
    if not 0.0 <= epsilon < 1.0:
        raise ConfigError(f"MODEL.SEG_EPSILON must be in [0, 1), got {epsilon}")
    weights = [float(w) for w in cfg.MODEL.SEG_CLASS_WEIGHTS]
    if len(weights) < 2 or any(w < 0 for w in weights):
        raise ConfigError(f"MODEL.SEG_CLASS_WEIGHTS must list one non-negative weight per class, got {weights}")
    return SegSettings(epsilon, weights)


# ------------------------------------------------------------------ the reference's terms
def _reid(branch: str) -> Callable:
    def build_reid_term(cfg, num_classes: int) -> Term:
        loss = build_reid_loss(cfg, num_classes)

        def term(inputs: LossInputs):
            out = getattr(inputs, branch)
            return None if out is None else loss(out.scores, out.feats, inputs.target)

        return term

    return build_reid_term


LOSS_TERMS.register("reid_holistic", _reid("holistic"))
LOSS_TERMS.register("reid_occluded", _reid("occluded"))


@LOSS_TERMS.register("reid_decoder")
def build_reid_decoder(cfg, num_classes: int) -> Term:
    """ID + triplet over the K recovered part features alone (no global feature)."""
    loss = build_reid_loss(cfg, num_classes)

    def term(inputs: LossInputs):
        scores = getattr(inputs.occluded, "decoder_scores", None)
        if scores is None:
            return None
        return loss(scores, inputs.occluded.decoder_feats, inputs.target, with_global=False)

    return term


def _seg(branch: str) -> Callable:
    def build_seg_term(cfg, num_classes: int) -> Term:
        epsilon, weights = build_seg_settings(cfg)

        def term(inputs: LossInputs):
            probs = getattr(getattr(inputs, branch), "patch_probs", None)
            if probs is None:
                return None
            labels = getattr(inputs, f"{branch}_labels")
            if labels is None:
                raise InputError(f"seg_{branch}: the model returned patch_probs but no refined patch labels were given")
            return segmentation_loss(probs, labels, epsilon, weights)

        return term

    return build_seg_term


LOSS_TERMS.register("seg_holistic", _seg("holistic"))
LOSS_TERMS.register("seg_occluded", _seg("occluded"))


@LOSS_TERMS.register("mse")
def build_mse(cfg, num_classes: int) -> Term:
    """Holistic patch tokens against the patches the decoder recovered from the occluded image."""

    def term(inputs: LossInputs):
        recovered = getattr(inputs.occluded, "recovered_patches", None)
        patches = getattr(inputs.holistic, "patch_feats", None)
        if recovered is None or patches is None:
            return None
        return F.mse_loss(patches.float(), recovered.float())

    return term


@LOSS_TERMS.register("sepa")
def build_sepa(cfg, num_classes: int) -> Term:
    """The separation losses of both passes, added."""

    def term(inputs: LossInputs):
        losses = [o.sepa_loss for o in (inputs.holistic, inputs.occluded)
                  if o is not None and getattr(o, "sepa_loss", None) is not None]
        return torch.stack([s.float() for s in losses]).sum() if losses else None

    return term
