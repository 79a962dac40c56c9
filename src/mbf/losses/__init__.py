"""Losses: batch-hard triplet, ID + triplet re-ID loss, patch segmentation loss, and the
criterion as a weighted list of named terms (``LOSS_TERMS``, open to terms registered outside)."""

from .criterion import Criterion, build_criterion, term_weight
from .reid import LabelSmoothingCrossEntropy, ReIDLoss
from .segmentation import DEFAULT_SEG_CLASS_WEIGHTS, DEFAULT_SEG_EPSILON, segmentation_loss
from .terms import LOSS_TERMS, LossInputs
from .triplet import HardMining, TripletLoss, batch_hard_mining, pairwise_euclidean

__all__ = [
    "Criterion",
    "build_criterion",
    "term_weight",
    "LOSS_TERMS",
    "LossInputs",
    "ReIDLoss",
    "LabelSmoothingCrossEntropy",
    "segmentation_loss",
    "DEFAULT_SEG_CLASS_WEIGHTS",
    "DEFAULT_SEG_EPSILON",
    "TripletLoss",
    "HardMining",
    "batch_hard_mining",
    "pairwise_euclidean",
]
