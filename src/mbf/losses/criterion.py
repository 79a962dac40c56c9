"""The criterion: the weighted sum of the loss terms the config lists (docs/METHOD.md, section 6).

    L = reid(holistic) + seg(holistic) + reid(occluded) + reid(decoder) + seg(occluded) + mse + sepa

with every weight 1.0 as in the reference (``MODEL.LOSS_WEIGHTS``). Terms whose inputs are
absent are left out, so the global baseline gets ``reid_holistic`` alone and an MBF without
the recovery branch no decoder / mse terms.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping

import torch
from torch import nn

from ..errors import ConfigError, InputError
from .terms import LOSS_TERMS, LossInputs, Term, build_reid_settings, build_seg_settings

logger = logging.getLogger(__name__)


class Criterion(nn.Module):
    """``criterion(holistic, occluded, target, holistic_labels, occluded_labels)`` ->
    ``(total, terms)``: ``terms`` holds each present term's unweighted value by name, ``total``
    their weighted sum (in the listed order)."""

    def __init__(self, terms: list[tuple[str, float, Term]]):
        super().__init__()
        if not terms:
            raise ConfigError("MODEL.LOSS_TERMS is empty: a training step needs at least one loss term")
        self.terms = list(terms)

    def forward(self, holistic, occluded=None, target=None, holistic_labels=None, occluded_labels=None):
        if target is None:
            raise InputError("the criterion needs the identity targets")
        inputs = LossInputs(holistic, occluded, target, holistic_labels, occluded_labels)
        values: dict[str, torch.Tensor] = {}
        weighted = []
        for name, weight, term in self.terms:
            value = term(inputs)
            if value is not None:
                values[name] = value
                weighted.append(weight * value)
        if not weighted:
            raise InputError(f"none of the loss terms {[n for n, _, _ in self.terms]} applies to these outputs")
        return torch.stack(weighted).sum(), values

    def extra_repr(self) -> str:
        return ", ".join(f"{name}x{weight:g}" for name, weight, _ in self.terms)


def term_weight(weights: Mapping, name: str) -> float:
    """The weight of term ``name`` in ``weights`` (MODEL.LOSS_WEIGHTS, keys in capitals); 1.0
    for a term it has no weight for."""
    return float(weights.get(name.upper(), 1.0))


def build_criterion(cfg, num_classes: int) -> Criterion:
    """The terms of MODEL.LOSS_TERMS with their MODEL.LOSS_WEIGHTS (each term reads its own
    keys: see :mod:`mbf.losses.terms`).

    The re-ID and segmentation settings are checked (and logged) here even when no listed term
    uses them, so a wrong key fails whichever terms are listed.

    Deviation: with label smoothing on, the reference's decoder loss ignores its parts-only
    flag and treats the first recovered part as a global feature; here the decoder term
    always has the parts-only structure, whichever cross-entropy is used.
    """
    names = [str(n) for n in cfg.MODEL.LOSS_TERMS]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ConfigError(f"MODEL.LOSS_TERMS lists {', '.join(duplicated)} more than once")
    terms = [(name, term_weight(cfg.MODEL.LOSS_WEIGHTS, name), LOSS_TERMS.get(name)(cfg, num_classes))
             for name in names]
    reid, seg = build_reid_settings(cfg), build_seg_settings(cfg)
    logger.info(
        "losses: %s; %s, seg eps %.3g, class weights %s",
        ", ".join(f"{n} x{w:g}" for n, w, _ in terms),
        reid.describe(),
        seg.epsilon,
        seg.class_weights,
    )
    return Criterion(terms)
