"""CMC and mAP under the Market-1501 protocol, without sorting gallery rows.

Protocol: for each query, gallery items of the same identity *and* the same camera are
ignored ("junk"); the other items of its identity are its true matches; the remaining items
are ranked by distance, ties broken by gallery index (a stable sort). A query without any
true match is skipped. CMC(k) is the fraction of queries with a true match in the first k,
AP the mean over true matches of (matches so far) / (rank).

Both metrics depend only on the rank of each true match, i.e. on how many valid gallery items
lie before it. :func:`evaluate_rank` finds those counts in a few vectorised passes over each
block of rows (see :func:`_match_ranks`); :func:`evaluate_rank_reference` is the plain
argsort-and-loop version that tests and the benchmark compare it with.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InputError
from .distance import DEFAULT_CHUNK, as_float_tensor, iter_distance_blocks

log = logging.getLogger(__name__)

# distance values processed per ranking block: a few MB, so that the passes stay in cache
_CPU_BLOCK = 1 << 21
_GPU_BLOCK = 1 << 25


def _labels(x, name: str) -> np.ndarray:
    if torch.is_tensor(x):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise InputError(f"{name} must be a 1-D array of integers, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise InputError(f"{name} must hold integer labels, got dtype {arr.dtype}")
    return arr.astype(np.int64)


class _SameIdentityIndex:
    """For each query, the gallery items of its identity, split into matches and junk.

    Gallery items are grouped by identity once (a stable sort), so a block of queries gets
    its (row, column) pairs without any [queries x gallery] comparison.
    """

    def __init__(self, q_pids, g_pids, q_camids, g_camids):
        self.q_pids, self.q_cams = q_pids, q_camids
        self.g_cams = g_camids
        self.order = np.argsort(g_pids, kind="stable")  # gallery index ascending within an identity
        sorted_pids = g_pids[self.order]
        self.first = np.searchsorted(sorted_pids, q_pids, side="left")
        self.count = np.searchsorted(sorted_pids, q_pids, side="right") - self.first

    def pairs(self, rows: np.ndarray):
        """(match_rows, match_cols, junk_rows, junk_cols) for queries ``rows``; rows are 0..len-1."""
        counts = self.count[rows]
        local = np.repeat(np.arange(len(rows)), counts)
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        cols = self.order[np.repeat(self.first[rows], counts) + offsets]
        junk = self.g_cams[cols] == self.q_cams[rows][local]
        return local[~junk], cols[~junk], local[junk], cols[junk]


def _flatnonzero(mask: torch.Tensor) -> torch.Tensor:
    """Positions of the True items of a flat bool tensor (NumPy's is several times faster on the CPU)."""
    if mask.device.type == "cpu":
        return torch.from_numpy(np.flatnonzero(mask.numpy()))
    return mask.nonzero().squeeze(1)


def _match_ranks(dist: torch.Tensor, match_rows, match_cols, junk_rows, junk_cols, num_bins: int) -> torch.Tensor:
    """1-based rank of every true match among the valid items of its row.

    ``dist`` [C, G] (every row has at least one match). Returns [C, M] (M = most matches in a
    row), row r's matches in rank order in its first n_r columns, +inf after them.

    How: the matches of each row, sorted, split the row into buckets; the rank of match i is
    the number of valid items in buckets 0..i. Instead of a binary search per item, each
    row's range [nearest match, farthest match] is cut into ``num_bins`` equal bins (one
    multiply-add per item, monotone in the distance) and items are counted per bin. An item
    in a bin whose nearest match is farther than the item lies before every match of that
    bin, so its bucket is known from the bin alone; the few items left (the matches
    themselves and items at or beyond a match in the same bin) are placed exactly against
    the matches, comparing (distance, gallery index) pairs.
    """
    C, G = dist.shape
    device, dtype = dist.device, dist.dtype
    rows_ar = torch.arange(C, device=device)
    n = torch.bincount(match_rows, minlength=C)
    m_dist = dist[match_rows, match_cols]
    # lexicographic (row, distance, gallery index) order: columns are ascending within a row
    order = torch.sort(m_dist, stable=True).indices
    order = order[torch.sort(match_rows[order], stable=True).indices]
    m_rows, m_cols, m_dist = match_rows[order], match_cols[order], m_dist[order]
    slot = torch.arange(len(m_rows), device=device) - (torch.cumsum(n, 0) - n)[m_rows]
    M = int(n.max())
    m_val = torch.full((C, M), float("inf"), dtype=dtype, device=device)
    m_val[m_rows, slot] = m_dist
    m_idx = torch.full((C, M), G, dtype=torch.long, device=device)
    m_idx[m_rows, slot] = m_cols

    # per-row affine map to bins: x = (d - lo) * scale + 1, clamped to [0, num_bins + 2]
    lo = m_val[:, 0]
    lo = torch.where(torch.isfinite(lo), lo, torch.zeros((), dtype=dtype, device=device))
    width = m_val[rows_ar, n - 1] - lo
    # a floor on the width keeps scale and offset finite (degenerate rows just get coarse bins)
    narrow = torch.finfo(dtype).eps * 64 * lo.abs() + num_bins * 1e-30
    width = torch.where(torch.isfinite(width) & (width > narrow), width, narrow)
    scale = (num_bins / width).unsqueeze(1)
    offset = 1.0 - lo.unsqueeze(1) * scale
    nb = num_bins + 3
    x = torch.addcmul(offset, dist, scale)
    x.nan_to_num_(nan=0.0).clamp_(0, nb - 1)  # NaN items end up in the hard list and are reported there
    # flat bin id of every item, row r owning ids [r*nb, (r+1)*nb); int32 keeps the passes light
    keys = x.to(torch.int32).add_(torch.arange(0, C * nb, nb, dtype=torch.int32, device=device).unsqueeze(1))
    del x
    keys = keys.view(-1)
    counts = torch.bincount(keys, minlength=C * nb)

    m_keys = keys.view(C, G)[m_rows, m_cols].long()
    nearest = torch.full((C * nb,), float("inf"), dtype=dtype, device=device)  # nearest match per bin
    nearest.scatter_reduce_(0, m_keys, m_dist, "amin")
    flat_dist = dist.reshape(-1)
    hard = ~(flat_dist < nearest.index_select(0, keys))
    h_flat = _flatnonzero(hard)
    del hard
    h_dist = flat_dist[h_flat]
    if torch.isnan(h_dist).any():
        raise InputError("the distance matrix holds NaN values: check the features for NaN or inf")
    h_rows, h_cols = h_flat // G, h_flat % G
    # hard items leave their bin's count; junk items leave the hard list or their bin's count
    leave = [keys[h_flat]]
    if len(junk_rows):
        h_is_junk = torch.isin(h_flat, junk_rows * G + junk_cols)
        junk_easy = ~torch.isin(junk_rows * G + junk_cols, h_flat)
        h_rows, h_cols, h_dist = h_rows[~h_is_junk], h_cols[~h_is_junk], h_dist[~h_is_junk]
        leave.append(keys.view(C, G)[junk_rows[junk_easy], junk_cols[junk_easy]])
    counts -= torch.bincount(torch.cat(leave).long(), minlength=C * nb)
    counts = counts.view(C, nb)
    m_bins = m_keys - rows_ar[m_rows] * nb

    # matches before each bin -> the bucket of every easy item of that bin
    per_bin = torch.zeros(C, nb, dtype=torch.long, device=device)
    per_bin.index_put_((m_rows, m_bins), torch.ones_like(m_rows), accumulate=True)
    before = torch.cumsum(per_bin, 1) - per_bin
    buckets = torch.zeros(C, M + 1, dtype=torch.int64, device=device)
    buckets.scatter_add_(1, before, counts)

    # the hard items, placed exactly: matches before (distance, index) of the item
    h_dist = h_dist.unsqueeze(1)
    mv, mi = m_val[h_rows], m_idx[h_rows]
    h_bucket = ((mv < h_dist) | ((mv == h_dist) & (mi < h_cols.unsqueeze(1)))).sum(1)
    buckets.index_put_((h_rows, h_bucket), torch.ones(len(h_rows), dtype=torch.int64, device=device), accumulate=True)

    ranks = torch.cumsum(buckets, 1)[:, :M].to(torch.float64)  # items up to and including match i
    valid = torch.arange(M, device=device).unsqueeze(0) < n.unsqueeze(1)
    return ranks.masked_fill(~valid, float("inf"))


@dataclass
class _Accumulator:
    """Per-query first-match rank and AP, gathered block by block."""

    max_rank: int

    def __post_init__(self):
        self.first: list[np.ndarray] = []
        self.ap: list[np.ndarray] = []

    def add(self, ranks: torch.Tensor) -> None:
        ranks = ranks.to(torch.float64)
        hits = torch.isfinite(ranks)
        n = hits.sum(1)
        order = torch.arange(1, ranks.shape[1] + 1, dtype=torch.float64, device=ranks.device)
        precision = torch.where(hits, order / ranks, torch.zeros((), dtype=torch.float64, device=ranks.device))
        self.ap.append((precision.sum(1) / n).cpu().numpy())
        self.first.append(ranks[:, 0].cpu().numpy())

    def result(self) -> tuple[np.ndarray, float]:
        if not self.first or not sum(len(f) for f in self.first):
            raise InputError(
                "no query has a true match in the gallery (same identity, another camera): CMC/mAP are undefined"
            )
        first = np.concatenate(self.first).astype(np.int64)
        ap = np.concatenate(self.ap)
        hits_at = np.bincount(np.minimum(first, self.max_rank + 1) - 1, minlength=self.max_rank + 1)
        cmc = np.cumsum(hits_at[: self.max_rank]) / len(first)
        return cmc.astype(np.float64), float(np.mean(ap))


def _check_lengths(num_q: int, num_g: int, q_pids, g_pids, q_camids, g_camids) -> None:
    for name, arr, expected in (
        ("q_pids", q_pids, num_q), ("q_camids", q_camids, num_q),
        ("g_pids", g_pids, num_g), ("g_camids", g_camids, num_g),
    ):
        if len(arr) != expected:
            raise InputError(f"{name} has {len(arr)} entries but there are {expected} {name[0]}-side items")
    if num_q == 0:
        raise InputError("the query set is empty")
    if num_g == 0:
        raise InputError("the gallery is empty")


def _effective_max_rank(max_rank: int, num_g: int) -> int:
    if max_rank < 1:
        raise InputError(f"max_rank must be >= 1, got {max_rank}")
    if num_g < max_rank:
        log.info("gallery has only %d items: CMC is reported up to rank %d", num_g, num_g)
        return num_g
    return max_rank


def _rank_rows(dist: torch.Tensor, rows: np.ndarray, index: _SameIdentityIndex, acc: _Accumulator, row_offset: int):
    """Rank the queries ``row_offset + rows`` whose distances are ``dist`` ([len(rows) or more, G])."""
    G = dist.shape[1]
    block = max(1, (_GPU_BLOCK if dist.is_cuda else _CPU_BLOCK) // max(G, 1))
    num_bins = int(min(4096, max(16, G // 4)))
    for s in range(0, len(rows), block):
        local = rows[s : s + block]
        mr, mc, jr, jc = index.pairs(local + row_offset)
        has = np.bincount(mr, minlength=len(local)) > 0
        if not has.any():
            continue
        if not has.all():  # skip queries without a match: keep only their rows
            keep = np.flatnonzero(has)
            remap = np.cumsum(has) - 1
            sub = dist[torch.as_tensor(local[keep], device=dist.device)]
            mr, jr_keep = remap[mr], has[jr]
            jr, jc = remap[jr[jr_keep]], jc[jr_keep]
        else:
            sub = dist[local[0] : local[-1] + 1] if local[-1] - local[0] + 1 == len(local) else dist[
                torch.as_tensor(local, device=dist.device)]
        t = lambda a: torch.as_tensor(a, dtype=torch.long, device=dist.device)  # noqa: E731
        acc.add(_match_ranks(sub, t(mr), t(mc), t(jr), t(jc), num_bins))


def evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank: int = 50) -> tuple[np.ndarray, float]:
    """CMC (``max_rank`` fractions, NumPy) and mAP (float) of a [num_query, num_gallery] distance matrix.

    Accepts NumPy arrays or tensors (any device). Same numbers as
    :func:`evaluate_rank_reference` with ties broken by gallery index.
    """
    dist = as_float_tensor(distmat, "distmat")
    if dist.dim() != 2:
        raise InputError(f"distmat must be 2-D [num_query, num_gallery], got shape {tuple(dist.shape)}")
    q_pids, g_pids = _labels(q_pids, "q_pids"), _labels(g_pids, "g_pids")
    q_camids, g_camids = _labels(q_camids, "q_camids"), _labels(g_camids, "g_camids")
    num_q, num_g = dist.shape
    _check_lengths(num_q, num_g, q_pids, g_pids, q_camids, g_camids)
    max_rank = _effective_max_rank(max_rank, num_g)
    index = _SameIdentityIndex(q_pids, g_pids, q_camids, g_camids)
    acc = _Accumulator(max_rank)
    _rank_rows(dist, np.arange(num_q), index, acc, 0)
    return acc.result()


def evaluate_features(
    qf, gf, q_pids, g_pids, q_camids, g_camids, max_rank: int = 50, chunk: int = DEFAULT_CHUNK
) -> tuple[np.ndarray, float]:
    """CMC and mAP straight from descriptors, never holding more than ``chunk`` distance rows.

    Distances are computed (squared Euclidean, on the features' device) and ranked block by
    block, so a gallery of any size is evaluated in ``chunk x num_gallery`` memory.
    """
    qf, gf = as_float_tensor(qf, "qf"), as_float_tensor(gf, "gf")
    q_pids, g_pids = _labels(q_pids, "q_pids"), _labels(g_pids, "g_pids")
    q_camids, g_camids = _labels(q_camids, "q_camids"), _labels(g_camids, "g_camids")
    _check_lengths(qf.shape[0], gf.shape[0], q_pids, g_pids, q_camids, g_camids)
    max_rank = _effective_max_rank(max_rank, gf.shape[0])
    index = _SameIdentityIndex(q_pids, g_pids, q_camids, g_camids)
    acc = _Accumulator(max_rank)
    for start, block in iter_distance_blocks(qf, gf, chunk):
        _rank_rows(block, np.arange(block.shape[0]), index, acc, start)
    return acc.result()


def evaluate_rank_reference(distmat, q_pids, g_pids, q_camids, g_camids,
                            max_rank: int = 50) -> tuple[np.ndarray, float]:
    """The straightforward protocol: stable argsort of every gallery row, then a loop over queries.

    Kept as the oracle for :func:`evaluate_rank` and as the benchmark's baseline.
    """
    dist = distmat.detach().cpu().numpy() if torch.is_tensor(distmat) else np.asarray(distmat)
    q_pids, g_pids = _labels(q_pids, "q_pids"), _labels(g_pids, "g_pids")
    q_camids, g_camids = _labels(q_camids, "q_camids"), _labels(g_camids, "g_camids")
    num_q, num_g = dist.shape
    _check_lengths(num_q, num_g, q_pids, g_pids, q_camids, g_camids)
    max_rank = _effective_max_rank(max_rank, num_g)
    order = np.argsort(dist, axis=1, kind="stable")
    cmc_rows, aps = [], []
    for q in range(num_q):
        ranked = order[q]
        same_id = g_pids[ranked] == q_pids[q]
        kept = ~(same_id & (g_camids[ranked] == q_camids[q]))
        hits = same_id[kept]
        if not hits.any():
            continue
        found = np.cumsum(hits)
        cmc_rows.append(np.minimum(found, 1)[:max_rank])
        precision = found / np.arange(1, len(found) + 1)
        aps.append(float((precision * hits).sum() / hits.sum()))
    if not aps:
        raise InputError("no query has a true match in the gallery (same identity, another camera): "
                         "CMC/mAP are undefined")
    width = max_rank
    padded = np.ones((len(cmc_rows), width))
    for i, row in enumerate(cmc_rows):  # a row shorter than max_rank stays at 1 after its last item
        padded[i, : len(row)] = row
    return padded.mean(0), float(np.mean(aps))
