"""Evaluation: distances, CMC/mAP, k-reciprocal re-ranking, the evaluator and pictures."""
from .distance import euclidean_distance, iter_distance_blocks
from .evaluator import EvalResult, Evaluator
from .plots import plot_part_masks, plot_retrieval
from .rank import evaluate_features, evaluate_rank, evaluate_rank_reference
from .rerank import re_ranking, re_ranking_reference

__all__ = [
    "EvalResult", "Evaluator", "euclidean_distance", "evaluate_features", "evaluate_rank", "evaluate_rank_reference",
    "iter_distance_blocks", "plot_part_masks", "plot_retrieval", "re_ranking", "re_ranking_reference",
]
