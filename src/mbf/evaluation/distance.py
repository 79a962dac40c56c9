"""Squared Euclidean distances between query and gallery descriptors, in bounded blocks.

The formula is the reference's: ``|q|^2 + |g|^2 - 2 q.g`` with the product added by one
``addmm`` (so results match it to the last bit for the same BLAS and block shape). The work
is split over blocks of queries, so only ``chunk x num_gallery`` values are produced at a time
(:func:`iter_distance_blocks`); :func:`euclidean_distance` writes those blocks into one output.
Everything runs on the device of the features (CUDA when they are there).
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from ..errors import InputError

DEFAULT_CHUNK = 4096


def as_float_tensor(x, name: str) -> torch.Tensor:
    """NumPy array or tensor -> floating tensor (half precision is promoted to float32)."""
    t = torch.as_tensor(np.ascontiguousarray(x)) if isinstance(x, np.ndarray) else torch.as_tensor(x).detach()
    if not t.is_floating_point():
        t = t.float()
    elif t.dtype in (torch.float16, torch.bfloat16):
        t = t.float()
    return t


def _check_features(qf: torch.Tensor, gf: torch.Tensor) -> None:
    if qf.dim() != 2 or gf.dim() != 2:
        raise InputError(f"features must be 2-D [N, D]; got query {tuple(qf.shape)} and gallery {tuple(gf.shape)}")
    if qf.shape[1] != gf.shape[1]:
        raise InputError(f"query features have {qf.shape[1]} dims but gallery features have {gf.shape[1]}")


def _prepare(qf, gf) -> tuple[torch.Tensor, torch.Tensor]:
    qf, gf = as_float_tensor(qf, "qf"), as_float_tensor(gf, "gf")
    _check_features(qf, gf)
    dtype = torch.promote_types(qf.dtype, gf.dtype)
    return qf.to(dtype), gf.to(device=qf.device, dtype=dtype)


def squared_norms(x: torch.Tensor, rows: int = 512) -> torch.Tensor:
    """Row-wise sum of squares, a block of rows at a time (no temporary copy of all of ``x``)."""
    out = torch.empty(x.shape[0], dtype=x.dtype, device=x.device)
    for s in range(0, x.shape[0], rows):
        torch.sum(x[s : s + rows].pow(2), dim=1, out=out[s : s + rows])
    return out


def _distance_into(out: torch.Tensor, q: torch.Tensor, g_sq: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """out = |q|^2 + |g|^2, then -2 q.g added by the matrix product itself (no extra pass)."""
    torch.add(squared_norms(q).unsqueeze(1), g_sq, out=out)
    return out.addmm_(q, gt, beta=1, alpha=-2)


def _chunk(chunk: int | None) -> int:
    if chunk is None:
        return DEFAULT_CHUNK
    if int(chunk) < 1:
        raise InputError(f"distance chunk must be a positive number of queries, got {chunk}")
    return int(chunk)


def iter_distance_blocks(qf, gf, chunk: int | None = DEFAULT_CHUNK) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield ``(start, block)`` with ``block = dist(qf[start:start+chunk], gf)``, [c, num_gallery].

    One buffer is reused for every block (copy a block to keep it), so memory stays at
    ``chunk x num_gallery`` however many queries there are.
    """
    qf, gf = _prepare(qf, gf)
    chunk = _chunk(chunk)
    g_sq = squared_norms(gf)
    gt = gf.t()
    buffer = torch.empty(min(chunk, qf.shape[0]), gf.shape[0], dtype=qf.dtype, device=qf.device)
    for start in range(0, qf.shape[0], chunk):
        q = qf[start : start + chunk]
        yield start, _distance_into(buffer[: q.shape[0]], q, g_sq, gt)


def euclidean_distance(qf, gf, chunk: int | None = DEFAULT_CHUNK) -> torch.Tensor:
    """Squared Euclidean distance matrix [num_query, num_gallery] on the features' device.

    Accepts tensors or NumPy arrays; ``chunk`` queries (None: a default) go through each
    matrix product, so the working memory beyond the output stays at one block.
    """
    qf, gf = _prepare(qf, gf)
    chunk = _chunk(chunk)
    g_sq = squared_norms(gf)
    gt = gf.t()
    out = torch.empty(qf.shape[0], gf.shape[0], dtype=qf.dtype, device=qf.device)
    for start in range(0, qf.shape[0], chunk):
        _distance_into(out[start : start + chunk], qf[start : start + chunk], g_sq, gt)
    return out
