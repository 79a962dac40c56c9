"""Collects descriptors batch by batch and reports CMC / mAP the way the reference evaluator does.

Query descriptors come first, then the gallery's (``num_query`` tells where they split).
With ``feat_norm`` the descriptors are L2-normalised; distances are squared Euclidean, or
k-reciprocal re-ranked ones with ``rerank``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import torch

from ..config import switch
from ..errors import InputError
from .distance import DEFAULT_CHUNK, euclidean_distance
from .rank import evaluate_rank
from .rerank import re_ranking

log = logging.getLogger(__name__)


@dataclass
class EvalResult:
    """Metrics plus what produced them (for pictures and saved results)."""

    cmc: np.ndarray  # CMC at ranks 1..max_rank, fractions
    mAP: float
    distmat: torch.Tensor  # [num_query, num_gallery] on the CPU
    q_pids: np.ndarray
    g_pids: np.ndarray
    q_camids: np.ndarray
    g_camids: np.ndarray
    q_paths: list[str] = field(default_factory=list)
    g_paths: list[str] = field(default_factory=list)

    def rank(self, r: int) -> float:
        """CMC at rank r (a gallery shorter than r has found all it can by its last rank)."""
        return float(self.cmc[min(r, len(self.cmc)) - 1])

    def summary(self) -> dict:
        return {"rank1": self.rank(1), "rank5": self.rank(5), "rank10": self.rank(10), "mAP": float(self.mAP)}


def _labels(x, name: str) -> np.ndarray:
    if torch.is_tensor(x):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.ndim > 1:
        arr = arr.reshape(-1)
    return arr


class Evaluator:
    """``reset()``, ``update(feats, pids, camids, paths)`` per batch, then ``compute()``.

    ``num_query``: how many of the collected items (the first ones) are queries.
    ``k1``, ``k2``, ``lambda_value``: k-reciprocal re-ranking parameters (used with ``rerank``).
    ``chunk``: queries per block of the distance matrix (bounds its working memory).
    ``device``: where distances and re-ranking run (None: where the first batch lives).
    """

    def __init__(self, num_query: int, feat_norm: bool = True, rerank: bool = False, k1: int = 20, k2: int = 6,
                 lambda_value: float = 0.3, max_rank: int = 50, chunk: int = DEFAULT_CHUNK,
                 device: str | torch.device | None = None):
        self.feat_norm = bool(feat_norm)
        self.rerank = bool(rerank)
        self.k1, self.k2, self.lambda_value = int(k1), int(k2), float(lambda_value)
        self.max_rank = int(max_rank)
        self.chunk = int(chunk)
        self.device = torch.device(device) if device is not None else None
        self.reset(num_query)

    @classmethod
    def from_config(cls, cfg, num_query: int) -> "Evaluator":
        """TEST.FEAT_NORM, TEST.RE_RANKING(_K1/_K2/_LAMBDA), TEST.DIST_CHUNK; the GPU when MODEL.DEVICE is cuda."""
        t = cfg.TEST
        device = None
        if str(cfg.MODEL.DEVICE) == "cuda" and torch.cuda.is_available():
            first_id = str(cfg.MODEL.DEVICE_ID).split(",")[0].strip()
            device = torch.device("cuda", int(first_id) if first_id.isdigit() else 0)
        return cls(num_query, feat_norm=switch(t.FEAT_NORM, "TEST.FEAT_NORM"),
                   rerank=switch(t.RE_RANKING, "TEST.RE_RANKING"), k1=t.RE_RANKING_K1, k2=t.RE_RANKING_K2,
                   lambda_value=t.RE_RANKING_LAMBDA, chunk=t.DIST_CHUNK, device=device)

    def reset(self, num_query: int | None = None) -> None:
        """Forget the collected items; ``num_query``: how many of the next ones are queries (the
        same evaluator, with its settings, then serves another test set)."""
        if num_query is not None:
            if int(num_query) < 0:
                raise InputError(f"num_query must be >= 0, got {num_query}")
            self.num_query = int(num_query)
        self._feats: list[torch.Tensor] = []
        self._pids: list[np.ndarray] = []
        self._camids: list[np.ndarray] = []
        self._paths: list[str] = []

    def __len__(self) -> int:
        return len(self._paths)

    def update(self, feats, pids, camids, paths=None) -> None:
        """Add one batch: descriptors [B, D] (any device), B identities, B cameras, optional B image paths."""
        feats = torch.as_tensor(feats).detach()
        pids, camids = _labels(pids, "pids"), _labels(camids, "camids")
        if feats.dim() != 2 or not (feats.shape[0] == len(pids) == len(camids)):
            raise InputError(f"update() needs features [N, D] with N pids and N camids; got features "
                             f"{tuple(feats.shape)}, {len(pids)} pids, {len(camids)} camids")
        if self._feats and feats.shape[1] != self._feats[0].shape[1]:
            raise InputError(f"update() got {feats.shape[1]}-d features after {self._feats[0].shape[1]}-d ones")
        if paths is None:
            paths = [f"item #{len(self._paths) + i}" for i in range(len(pids))]
        paths = [str(p) for p in paths]
        if len(paths) != len(pids):
            raise InputError(f"update() got {len(paths)} paths for {len(pids)} features")
        self._feats.append(feats)
        self._pids.append(pids)
        self._camids.append(camids)
        self._paths.extend(paths)

    def compute(self) -> EvalResult:
        total = len(self._paths)
        nq = self.num_query
        if nq == 0:
            raise InputError("the query set is empty: nothing to evaluate")
        if total <= nq:
            raise InputError(f"the gallery is empty: {total} items were collected for {nq} queries")
        device = self.device or self._feats[0].device
        feats = torch.cat([f.to(device) for f in self._feats]).float()
        pids, camids = np.concatenate(self._pids), np.concatenate(self._camids)
        bad = (~torch.isfinite(feats)).any(dim=1).nonzero().flatten().tolist()
        if bad:
            names = ", ".join(self._paths[i] for i in bad[:5]) + (", ..." if len(bad) > 5 else "")
            raise InputError(f"{len(bad)} descriptors contain NaN or inf: {names}")
        if self.feat_norm:
            feats = torch.nn.functional.normalize(feats, dim=1, p=2)
        qf, gf = feats[:nq], feats[nq:]
        if self.rerank:
            log.info("k-reciprocal re-ranking (k1=%d, k2=%d, lambda=%.2f)", self.k1, self.k2, self.lambda_value)
            distmat = re_ranking(qf, gf, self.k1, self.k2, self.lambda_value)
        else:
            distmat = euclidean_distance(qf, gf, chunk=self.chunk)
        cmc, mAP = evaluate_rank(distmat, pids[:nq], pids[nq:], camids[:nq], camids[nq:], self.max_rank)
        return EvalResult(cmc, mAP, distmat.cpu(), pids[:nq], pids[nq:], camids[:nq], camids[nq:],
                          self._paths[:nq], self._paths[nq:])
