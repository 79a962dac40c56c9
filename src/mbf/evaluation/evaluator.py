"""Collects descriptors batch by batch and reports CMC / mAP the way the reference evaluator does.

Query descriptors come first, then the gallery's (``num_query`` tells where they split).
With TEST.FEAT_NORM the descriptors are L2-normalised; distances are squared Euclidean, or
k-reciprocal re-ranked ones with TEST.RE_RANKING.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import InputError
from .distance import DEFAULT_CHUNK, euclidean_distance
from .rank import evaluate_rank
from .rerank import re_ranking


@dataclass
class EvalResult:
    cmc: np.ndarray  # max_rank fractions
    mAP: float
    distmat: torch.Tensor  # [num_query, num_gallery] (CPU)
    q_pids: np.ndarray
    g_pids: np.ndarray
    q_camids: np.ndarray
    g_camids: np.ndarray
    q_paths: list = field(default_factory=list)
    g_paths: list = field(default_factory=list)

    def summary(self) -> dict:
        return {"rank1": float(self.cmc[0]), "rank5": float(self.cmc[min(4, len(self.cmc) - 1)]),
                "rank10": float(self.cmc[min(9, len(self.cmc) - 1)]), "mAP": float(self.mAP)}


def _yes(value) -> bool:
    return str(value).lower() in ("yes", "true", "on", "1")


class Evaluator:
    def __init__(self, num_query: int, feat_norm: bool = True, rerank: bool = False, k1: int = 50, k2: int = 15,
                 lambda_value: float = 0.3, max_rank: int = 50, chunk: int = DEFAULT_CHUNK):
        self.num_query = int(num_query)
        self.feat_norm = feat_norm
        self.rerank = rerank
        self.k1, self.k2, self.lambda_value = k1, k2, lambda_value
        self.max_rank = max_rank
        self.chunk = chunk
        self.reset()

    @classmethod
    def from_config(cls, cfg, num_query: int) -> "Evaluator":
        t = cfg.TEST
        return cls(num_query, feat_norm=_yes(t.FEAT_NORM), rerank=bool(t.RE_RANKING), k1=t.RE_RANKING_K1,
                   k2=t.RE_RANKING_K2, lambda_value=t.RE_RANKING_LAMBDA, chunk=t.DIST_CHUNK)

    def reset(self) -> None:
        self.feats: list[torch.Tensor] = []
        self.pids: list[np.ndarray] = []
        self.camids: list[np.ndarray] = []
        self.paths: list[str] = []

    def update(self, feats, pids, camids, paths=None) -> None:
        feats = torch.as_tensor(feats).detach()
        pids, camids = np.asarray(pids).reshape(-1), np.asarray(camids).reshape(-1)
        if feats.dim() != 2 or not (feats.shape[0] == len(pids) == len(camids)):
            raise InputError(f"update() needs features [N, D] and N pids and camids; got features "
                             f"{tuple(feats.shape)}, {len(pids)} pids, {len(camids)} camids")
        paths = list(paths) if paths is not None else [f"#{len(self.paths) + i}" for i in range(len(pids))]
        if len(paths) != len(pids):
            raise InputError(f"update() got {len(paths)} paths for {len(pids)} features")
        self.feats.append(feats)
        self.pids.append(pids)
        self.camids.append(camids)
        self.paths.extend(paths)

    def compute(self) -> EvalResult:
        if not self.feats:
            raise InputError("no features were collected: the query and gallery sets are empty")
        feats = torch.cat(self.feats).float()
        pids, camids = np.concatenate(self.pids), np.concatenate(self.camids)
        nq = self.num_query
        if nq <= 0 or nq >= len(feats):
            raise InputError(f"need at least one query and one gallery image; got {nq} queries of {len(feats)} images")
        bad = (~torch.isfinite(feats)).any(dim=1).nonzero().flatten().tolist()
        if bad:
            names = ", ".join(self.paths[i] for i in bad[:5])
            raise InputError(f"{len(bad)} descriptors contain NaN or inf, e.g. of {names}")
        if self.feat_norm:
            feats = torch.nn.functional.normalize(feats, dim=1, p=2)
        qf, gf = feats[:nq], feats[nq:]
        if self.rerank:
            distmat = re_ranking(qf, gf, self.k1, self.k2, self.lambda_value)
        else:
            distmat = euclidean_distance(qf, gf, chunk=self.chunk)
        cmc, mAP = evaluate_rank(distmat, pids[:nq], pids[nq:], camids[:nq], camids[nq:], self.max_rank)
        return EvalResult(cmc, mAP, distmat.cpu(), pids[:nq], pids[nq:], camids[:nq], camids[nq:],
                          self.paths[:nq], self.paths[nq:])
