"""Losses: batch-hard triplet, ID + triplet re-ID loss, patch segmentation loss, MBF criterion."""

from .criterion import MBFCriterion, build_criterion
from .reid import LabelSmoothingCrossEntropy, ReIDLoss
from .segmentation import DEFAULT_SEG_CLASS_WEIGHTS, DEFAULT_SEG_EPSILON, segmentation_loss
from .triplet import HardMining, TripletLoss, batch_hard_mining, pairwise_euclidean

__all__ = [
    "MBFCriterion",
    "build_criterion",
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
