"""k-reciprocal re-ranking (Zhong et al., CVPR 2017), exact to the widely used implementation.

The final distance between query q and gallery item g is
``(1 - lambda) * jaccard(q, g) + lambda * d(q, g) / max_k d(q, k)`` where ``d`` is the squared
Euclidean distance over query + gallery and the Jaccard distance compares the two items'
k-reciprocal neighbourhoods, encoded as sparse weight vectors V.

Numerics follow the common implementation (the one the MBF reference ships): V is stored in
float16, its query expansion is a float32 mean rounded to float16, and the Jaccard overlap is
summed in float16, one neighbour column after another. Final distances are quantised by
float16 steps of up to 5e-4, so matching that code within 1e-4 means reproducing those
roundings exactly, which :func:`re_ranking` does on the CPU (on CUDA, ``exp`` may differ in
the last bit and flip a rare float16 rounding).

:func:`re_ranking` is the memory-light version: the all-pairs distances are computed once in
square blocks of the upper triangle (each block serves its rows and, transposed, its
columns), each row keeps only its nearest neighbours (top-k, no full sort), V is sparse,
and Jaccard distances are formed for query-gallery pairs only, column by column.
:func:`re_ranking_reference` is the straightforward dense algorithm (O(N^2) memory), kept as
the tests' oracle and the benchmark's baseline.
"""
from __future__ import annotations

import logging

import numpy as np
import torch

from ..errors import InputError
from .distance import as_float_tensor, squared_norms

log = logging.getLogger(__name__)


def _check_params(k1: int, k2: int, lambda_value: float) -> None:
    if int(k1) != k1 or k1 < 1:
        raise InputError(f"re-ranking k1 must be a positive integer, got {k1}")
    if int(k2) != k2 or k2 < 1:
        raise InputError(f"re-ranking k2 must be a positive integer, got {k2}")
    if not 0.0 <= float(lambda_value) <= 1.0:
        raise InputError(f"re-ranking lambda must lie in [0, 1], got {lambda_value}")


def _features(qf, gf) -> tuple[torch.Tensor, torch.Tensor]:
    qf, gf = as_float_tensor(qf, "qf").float(), as_float_tensor(gf, "gf").float()
    if qf.dim() != 2 or gf.dim() != 2 or qf.shape[1] != gf.shape[1]:
        raise InputError(f"re-ranking needs features [N, D] of equal width; "
                         f"got {tuple(qf.shape)} and {tuple(gf.shape)}")
    if qf.shape[0] == 0 or gf.shape[0] == 0:
        raise InputError(f"re-ranking needs a non-empty query and gallery; got {qf.shape[0]} and {gf.shape[0]}")
    if not (torch.isfinite(qf).all() and torch.isfinite(gf).all()):
        raise InputError("re-ranking got features with NaN or inf values")
    return qf, gf.to(qf.device)


def _half_k(k1: int) -> int:
    return int(np.around(k1 / 2))  # round half to even, as the common implementation


# --------------------------------------------------------------------------------------------
# straightforward version
# --------------------------------------------------------------------------------------------


def _reciprocal(rank: np.ndarray, i: int, k: int) -> np.ndarray:
    """Items among i's k+1 nearest that also have i among their k+1 nearest."""
    forward = rank[i, : k + 1]
    return forward[(rank[forward, : k + 1] == i).any(axis=1)]


def re_ranking_reference(qf, gf, k1: int = 20, k2: int = 6, lambda_value: float = 0.3) -> np.ndarray:
    """Dense k-reciprocal re-ranking, [num_query, num_gallery] float32 (O(N^2) memory and time)."""
    _check_params(k1, k2, lambda_value)
    qf, gf = _features(qf, gf)
    num_q = qf.shape[0]
    feats = torch.cat([qf, gf]).cpu()
    sq = feats.pow(2).sum(dim=1, keepdim=True)
    dist = (sq + sq.t()).addmm_(feats, feats.t(), beta=1, alpha=-2).numpy()
    n = dist.shape[0]
    # column i scaled by its maximum, then transposed: row i holds d(., i) / max d(., i)
    dist = np.transpose(dist / np.max(dist, axis=0))
    rank = np.argsort(dist, axis=1, kind="stable").astype(np.int32)  # ties by index, as re_ranking
    half = _half_k(k1)

    weights = np.zeros((n, n), dtype=np.float16)
    for i in range(n):
        members = _reciprocal(rank, i, k1)
        expanded = members
        for c in members:
            candidate = _reciprocal(rank, c, half)
            if len(np.intersect1d(candidate, members)) > 2 / 3 * len(candidate):
                expanded = np.append(expanded, candidate)
        expanded = np.unique(expanded)
        w = np.exp(-dist[i, expanded])
        weights[i, expanded] = w / np.sum(w)
    if k2 != 1:
        expanded_weights = np.zeros_like(weights)
        for i in range(n):
            expanded_weights[i] = np.mean(weights[rank[i, :k2]], axis=0)
        weights = expanded_weights
    del rank

    holders = [np.flatnonzero(weights[:, j]) for j in range(n)]  # rows with a weight in column j
    jaccard = np.zeros((num_q, n), dtype=np.float16)
    for i in range(num_q):
        overlap = np.zeros(n, dtype=np.float16)
        for j in np.flatnonzero(weights[i]):
            rows = holders[j]
            overlap[rows] = overlap[rows] + np.minimum(weights[i, j], weights[rows, j])
        jaccard[i] = 1 - overlap / (2 - overlap)
    final = jaccard * (1 - lambda_value) + dist[:num_q] * lambda_value
    return np.ascontiguousarray(final[:, num_q:])


# --------------------------------------------------------------------------------------------
# blocked, sparse version
# --------------------------------------------------------------------------------------------


def _round_half(x: torch.Tensor) -> torch.Tensor:
    """Round float32 values to float16 precision and keep them as float32 (NumPy's half arithmetic)."""
    return x.half().float()


def _exp_neg(x: torch.Tensor) -> torch.Tensor:
    """exp(-x) in float32; on the CPU through NumPy, whose exp the common implementation uses."""
    if x.device.type == "cpu":
        return torch.from_numpy(np.exp(-x.numpy()))
    return torch.exp(-x)


def _segment_sums(x: torch.Tensor, starts: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """float32 sums of x[start : start + length] with NumPy's pairwise summation order.

    NumPy adds runs of up to 128 items with eight interleaved partial sums (fewer than 8: one
    running sum) and splits longer runs in two at a multiple of 8; the float32 result depends
    on that order, and V is rounded to float16 right after, so it is reproduced here.
    """
    out = torch.zeros(len(starts), dtype=x.dtype, device=x.device)
    if len(starts) == 0:
        return out
    long_run = lengths > 128
    if long_run.any():
        ls, ll = starts[long_run], lengths[long_run]
        left = ll // 2 - (ll // 2) % 8
        out[long_run] = _segment_sums(x, ls, left) + _segment_sums(x, ls + left, ll - left)
    short = ~long_run
    ss, sl = starts[short], lengths[short]
    last = len(x) - 1

    def at(offset):
        return x[torch.clamp(ss + offset, max=last)]

    # runs shorter than 8: one running sum from zero
    run = torch.zeros(len(ss), dtype=x.dtype, device=x.device)
    for t in range(7):
        run = torch.where(t < sl, run + at(t), run)
    # runs of 8..128: eight partial sums over whole groups of 8, combined as a tree, then the tail
    lanes = torch.stack([at(j) for j in range(8)], dim=1)
    groups = sl // 8
    for g in range(1, 16):
        more = (g < groups).unsqueeze(1)
        nxt = torch.stack([at(8 * g + j) for j in range(8)], dim=1)
        lanes = torch.where(more, lanes + nxt, lanes)
    tree = (((lanes[:, 0] + lanes[:, 1]) + (lanes[:, 2] + lanes[:, 3]))
            + ((lanes[:, 4] + lanes[:, 5]) + (lanes[:, 6] + lanes[:, 7])))
    tail_start = groups * 8
    for t in range(7):
        tree = torch.where(t < sl - tail_start, tree + x[torch.clamp(ss + tail_start + t, max=last)], tree)
    out[short] = torch.where(sl < 8, run, tree)
    return out


class _Neighbours:
    """Each row's nearest items (by squared Euclidean distance) and its largest distance.

    One pass over the upper triangle of the [N, N] distance matrix in square blocks: a block
    serves its rows and, transposed, its columns' rows. Only top-k candidates are kept.
    """

    def __init__(self, feats: torch.Tensor, k: int, block: int, num_query: int):
        n, device = feats.shape[0], feats.device
        # a few spare candidates, so ties created by the scaling below are ordered like a full sort
        k_out, k = min(k, n), min(k + 4, n)
        sq = squared_norms(feats)
        best_d = torch.full((n, k), float("inf"), device=device)
        best_i = torch.zeros((n, k), dtype=torch.long, device=device)
        row_max = torch.full((n,), float("-inf"), device=device)
        # raw query-gallery distances, kept for the final mix
        self.query_gallery = torch.empty(num_query, n - num_query, device=device)

        def merge(rows: slice, dist: torch.Tensor, col0: int) -> None:
            kk = min(k, dist.shape[1])
            vals, idx = torch.topk(dist, kk, dim=1, largest=False, sorted=False)
            cand_d = torch.cat([best_d[rows], vals], dim=1)
            cand_i = torch.cat([best_i[rows], idx + col0], dim=1)
            keep = torch.topk(cand_d, k, dim=1, largest=False, sorted=False).indices
            best_d[rows] = cand_d.gather(1, keep)
            best_i[rows] = cand_i.gather(1, keep)
            row_max[rows] = torch.maximum(row_max[rows], dist.amax(dim=1))

        def keep_query_gallery(r0: int, r1: int, c0: int, c1: int, dist: torch.Tensor) -> None:
            # rows r0:r1 x columns c0:c1 of the full matrix; copy the query x gallery part
            q1, g0 = min(r1, num_query), max(c0, num_query)
            if r0 < q1 and g0 < c1:
                self.query_gallery[r0:q1, g0 - num_query : c1 - num_query] = dist[: q1 - r0, g0 - c0 :]

        # block edges; a last block of fewer than 16 items joins the one before it, because BLAS
        # rounds products with a side that small differently from the all-pairs product
        edges = list(range(0, n, block))
        if len(edges) > 1 and n - edges[-1] < 16:
            edges.pop()
        edges.append(n)
        side = max(b - a for a, b in zip(edges, edges[1:]))
        buffer = torch.empty(side, side, device=device)
        for bi, (r0, r1) in enumerate(zip(edges, edges[1:])):
            for c0, c1 in zip(edges[bi:], edges[bi + 1:]):
                dist = buffer[: r1 - r0, : c1 - c0]
                torch.add(sq[r0:r1, None], sq[None, c0:c1], out=dist)
                dist.addmm_(feats[r0:r1], feats[c0:c1].t(), beta=1, alpha=-2)
                merge(slice(r0, r1), dist, c0)
                keep_query_gallery(r0, r1, c0, c1, dist)
                if c0 != r0:
                    dist_t = dist.t().contiguous()
                    merge(slice(c0, c1), dist_t, r0)
                    keep_query_gallery(c0, c1, r0, r1, dist_t)
        # The common implementation ranks by the distance divided by the row's maximum (a
        # division that can make two neighbouring distances equal); equal values by index.
        by_index = torch.argsort(best_i, dim=1)
        best_d, best_i = best_d.gather(1, by_index), best_i.gather(1, by_index)
        by_dist = torch.sort(best_d / row_max[:, None], dim=1, stable=True).indices[:, :k_out]
        self.dist = best_d.gather(1, by_dist)
        self.index = best_i.gather(1, by_dist)
        self.row_max = row_max


def _reciprocal_mask(rank: torch.Tensor, k: int, chunk: int) -> torch.Tensor:
    """mask[i, a]: i is among the k nearest of its a-th nearest item rank[i, a] (a < k)."""
    n = rank.shape[0]
    out = torch.empty(n, k, dtype=torch.bool, device=rank.device)
    for s in range(0, n, chunk):
        fwd = rank[s : s + chunk, :k]
        rows = torch.arange(s, s + fwd.shape[0], device=rank.device)
        out[s : s + chunk] = (rank[fwd, :k] == rows[:, None, None]).any(dim=-1)
    return out


def _sparse_rows(dense: torch.Tensor):
    """Non-zero entries of a [C, N] block, row-major: (rows, cols, values)."""
    rows, cols = dense.nonzero(as_tuple=True)
    return rows, cols, dense[rows, cols]


class _CSR:
    """A sparse [N, N] matrix kept as row pointers, column indices and values (float16 values as float32)."""

    def __init__(self, n: int, rows: torch.Tensor, cols: torch.Tensor, vals: torch.Tensor):
        counts = torch.bincount(rows, minlength=n)
        self.ptr = torch.zeros(n + 1, dtype=torch.long, device=rows.device)
        self.ptr[1:] = torch.cumsum(counts, 0)
        self.cols, self.vals, self.n = cols, vals, n

    def gather_rows(self, which: torch.Tensor):
        """Entries of rows ``which`` (any shape, flattened): (position in ``which``, cols, vals)."""
        which = which.reshape(-1)
        start, count = self.ptr[which], self.ptr[which + 1] - self.ptr[which]
        owner = torch.repeat_interleave(torch.arange(len(which), device=which.device), count)
        offset = torch.arange(int(count.sum()), device=which.device) - torch.repeat_interleave(
            torch.cumsum(count, 0) - count, count)
        pos = start[owner] + offset
        return owner, self.cols[pos], self.vals[pos]


def _pair_distances(feats: torch.Tensor, sq: torch.Tensor, a: torch.Tensor, b: torch.Tensor,
                    rows_per_tile: int = 64, min_side: int = 16) -> torch.Tensor:
    """Squared distances of the pairs (a[i], b[i]); ``a`` ascending (grouped by row).

    Computed as small matrix products (a tile of rows x the columns they need) rather than
    dot products: BLAS then rounds them like the all-pairs product the common implementation
    uses (a dot product, or a product with a side below ~16, rounds differently in the last
    bit, which can flip a float16 weight). Tiles are padded to ``min_side`` rows and columns.
    """
    out = torch.empty(len(a), dtype=feats.dtype, device=feats.device)
    n = feats.shape[0]
    pad = torch.arange(min(min_side, n), device=feats.device)
    tile_rows = torch.unique(a)
    for t in range(0, len(tile_rows), rows_per_tile):
        rows = tile_rows[t : t + rows_per_tile]
        sel = (a >= rows[0]) & (a <= rows[-1])
        pa, pb = a[sel], b[sel]
        cols = torch.unique(pb)
        rows_p = torch.unique(torch.cat([rows, pad])) if len(rows) < min_side else rows
        cols_p = torch.unique(torch.cat([cols, pad])) if len(cols) < min_side else cols
        tile = (sq[rows_p, None] + sq[None, cols_p]).addmm_(
            feats.index_select(0, rows_p), feats.index_select(0, cols_p).t(), beta=1, alpha=-2)
        out[sel] = tile[torch.searchsorted(rows_p, pa), torch.searchsorted(cols_p, pb)]
    return out


def _encode(feats: torch.Tensor, nb: _Neighbours, k1: int, chunk: int) -> _CSR:
    """V: for each row, softmax-like weights exp(-d) over its expanded k-reciprocal set, in float16."""
    n, device = feats.shape[0], feats.device
    rank = nb.index
    kf, kh = min(k1 + 1, n), min(_half_k(k1) + 1, n)
    forward_ok = _reciprocal_mask(rank, kf, chunk)
    half_ok = _reciprocal_mask(rank, kh, chunk)
    half_size = half_ok.sum(dim=1).double()
    sq = squared_norms(feats)
    all_rows, all_cols, all_vals = [], [], []
    for s in range(0, n, chunk):
        fwd, ok = rank[s : s + chunk, :kf], forward_ok[s : s + chunk]
        c = fwd.shape[0]
        local = torch.arange(c, device=device)
        members = torch.zeros(c, n, dtype=torch.bool, device=device)
        members[local[:, None].expand_as(fwd)[ok], fwd[ok]] = True
        # candidates' own (half-size) reciprocal sets, and how much of each lies in ours
        cand, cand_ok = rank[fwd, :kh], half_ok[fwd]  # [c, kf, kh]
        inside = members.gather(1, cand.reshape(c, -1)).view_as(cand) & cand_ok
        accept = ok & (inside.sum(dim=-1).double() > (2.0 / 3.0) * half_size[fwd])
        grow = cand_ok & accept[..., None]
        members[local[:, None, None].expand_as(cand)[grow], cand[grow]] = True
        rows, cols = members.nonzero(as_tuple=True)
        # distances to the set: stored for the k nearest, recomputed for the rest
        known = torch.full((c, n), float("nan"), device=device)
        known.scatter_(1, rank[s : s + c], nb.dist[s : s + c])
        d = known[rows, cols]
        missing = torch.isnan(d)
        if missing.any():
            d[missing] = _pair_distances(feats, sq, rows[missing] + s, cols[missing])
        w = _exp_neg(d / nb.row_max[rows + s])
        counts = torch.bincount(rows, minlength=c)
        total = _segment_sums(w, torch.cumsum(counts, 0) - counts, counts)
        all_rows.append(rows + s)
        all_cols.append(cols)
        all_vals.append(_round_half(w / total[rows]))
    return _CSR(n, torch.cat(all_rows), torch.cat(all_cols), torch.cat(all_vals))


def _query_expand(v: _CSR, rank: torch.Tensor, k2: int, chunk: int) -> _CSR:
    """Row i becomes the mean of the V rows of its k2 nearest items (float32 sum in neighbour order, float16)."""
    n, device = v.n, rank.device
    all_rows, all_cols, all_vals = [], [], []
    for s in range(0, n, chunk):
        nbrs = rank[s : s + chunk, :k2]
        c = nbrs.shape[0]
        acc = torch.zeros(c, n, device=device)
        for t in range(nbrs.shape[1]):  # one neighbour at a time keeps NumPy's summation order
            owner, cols, vals = v.gather_rows(nbrs[:, t])
            acc.index_put_((owner, cols), vals, accumulate=True)
        rows, cols, vals = _sparse_rows(acc)
        all_rows.append(rows + s)
        all_cols.append(cols)
        all_vals.append(_round_half(vals / nbrs.shape[1]))
    return _CSR(n, torch.cat(all_rows), torch.cat(all_cols), torch.cat(all_vals))


def _by_column(v: _CSR, first_row: int, end_row: int):
    """Entries of rows [first_row, end_row) of V grouped by column, rows ascending within a column.

    Returns (column pointers [N + 1], rows - first_row, values as float16).
    """
    device = v.cols.device
    rows = torch.repeat_interleave(torch.arange(v.n, device=device), v.ptr[1:] - v.ptr[:-1])
    lo, hi = int(v.ptr[first_row]), int(v.ptr[end_row])  # CSR rows are contiguous
    rows, cols, vals = rows[lo:hi], v.cols[lo:hi], v.vals[lo:hi]
    order = torch.argsort(cols * v.n + rows)
    ptr = torch.zeros(v.n + 1, dtype=torch.long, device=device)
    ptr[1:] = torch.cumsum(torch.bincount(cols, minlength=v.n), 0)
    return ptr, rows[order] - first_row, vals[order].half()


def _jaccard(v: _CSR, num_query: int) -> torch.Tensor:
    """Jaccard distances 1 - s / (2 - s), s = sum_k min(V[q, k], V[g, k]), for query x gallery, float16.

    The common implementation adds the overlap in float16, column k after column k
    (ascending) for every pair; float16 rounding makes that order matter. Going over the
    columns in ascending order, each column updates the [its queries x its gallery items]
    block of the overlap at once, which is exactly that order for every pair.
    """
    n_g = v.n - num_query
    q_ptr, q_rows, q_vals = _by_column(v, 0, num_query)
    g_ptr, g_rows, g_vals = _by_column(v, num_query, v.n)
    shared = (((q_ptr[1:] - q_ptr[:-1]) > 0) & ((g_ptr[1:] - g_ptr[:-1]) > 0)).nonzero().flatten().tolist()
    q_ptr, g_ptr = q_ptr.tolist(), g_ptr.tolist()
    overlap = torch.zeros(num_query * n_g, dtype=torch.float16, device=v.cols.device)
    for k in shared:
        qs, qe, gs, ge = q_ptr[k], q_ptr[k + 1], g_ptr[k], g_ptr[k + 1]
        pairs = (q_rows[qs:qe, None] * n_g + g_rows[None, gs:ge]).view(-1)
        step = torch.minimum(q_vals[qs:qe, None], g_vals[None, gs:ge]).view(-1)
        overlap.index_put_((pairs,), overlap.index_select(0, pairs) + step)  # float16 add, as NumPy's
    overlap = overlap.view(num_query, n_g)
    return 1 - overlap / (2 - overlap)


def re_ranking(
    qf, gf, k1: int = 20, k2: int = 6, lambda_value: float = 0.3, block: int = 2048, chunk: int = 512
) -> torch.Tensor:
    """k-reciprocal re-ranked distances [num_query, num_gallery] (float32, on the features' device).

    ``block``: side of the square distance blocks; ``chunk``: rows per step of the sparse
    stages. Memory is O(N * k + num_query * num_gallery + block^2 + chunk * N).
    """
    _check_params(k1, k2, lambda_value)
    qf, gf = _features(qf, gf)
    num_q = qf.shape[0]
    feats = torch.cat([qf, gf])
    n = feats.shape[0]
    nb = _Neighbours(feats, max(k1 + 1, k2), block, num_q)
    v = _encode(feats, nb, k1, chunk)
    if k2 != 1:
        v = _query_expand(v, nb.index, min(k2, n), chunk)
    mix = torch.tensor(1.0 - lambda_value, dtype=torch.float16, device=feats.device)  # NumPy casts it to float16
    lam = torch.tensor(lambda_value, dtype=torch.float32, device=feats.device)
    original = (nb.query_gallery / nb.row_max[:num_q, None]) * lam
    original += (_jaccard(v, num_q) * mix).float()
    return original
