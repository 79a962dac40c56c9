"""Random erasing (Zhong et al.) on a whole batch, returning the erased rectangles.

Same distribution as the reference's per-image ``RandomErasing(mode='pixel', max_count=1)``:
with probability ``probability`` an image gets one rectangle of area ``U(sl, sh) * H * W``
and aspect ratio ``h / w = exp(U(log r1, log 1/r1))``, ``h = round(sqrt(area * aspect))``,
``w = round(sqrt(area / aspect))``, accepted when ``h < H`` and ``w < W``, placed uniformly,
and filled with per-pixel standard normal noise (the images are already normalised).

The reference's attempt loop exits after its first draw, so a rejected draw (too wide, mostly)
means no erasing there: at 256x128 about 11% of draws are rejected, at 384x128 about 22%, so
the reference erases with probability ~0.89 * p and ~0.78 * p. Here up to ``max_attempts``
draws are made at once and the first accepted one is used, so an image is erased with
probability ~p; the accepted rectangles follow the same (truncated) distribution either way.
``max_attempts=1`` reproduces the reference's distribution exactly. Rectangles must also be at
least one pixel high and wide.
"""
from __future__ import annotations

import math

import torch

from ..errors import InputError
from ._sampling import rand, randn


def random_erasing(
    img: torch.Tensor,
    probability: float,
    sl: float = 0.02,
    sh: float = 1.0 / 3.0,
    r1: float = 0.3,
    max_attempts: int = 100,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Erase one random rectangle per image with probability ``probability``.

    Args:
        img: float [B, C, H, W]; not modified.
        probability: chance that an image is erased.
        sl, sh: range of the erased area as a fraction of the image area (the reference's
            min_area 0.02 and max_area 1/3).
        r1: smallest aspect ratio; the largest is 1 / r1.
        max_attempts: draws per image; the first with ``0 < h < H`` and ``0 < w < W`` is used.
        generator: optional ``torch.Generator`` (any device) for reproducible draws.

    Returns:
        ``(erased, rects)``: the new batch and int64 [B, 4] rows ``(top, left, h, w)``, a row of
        -1 where the image was left untouched.
    """
    if img.dim() != 4:
        raise InputError(f"random_erasing expects images [B, C, H, W], got {tuple(img.shape)}")
    if not 0.0 <= probability <= 1.0 or not 0.0 < sl <= sh or not 0.0 < r1 <= 1.0 or max_attempts < 1:
        raise InputError(
            f"random_erasing: need 0 <= probability <= 1, 0 < sl <= sh, 0 < r1 <= 1, max_attempts >= 1; "
            f"got probability={probability}, sl={sl}, sh={sh}, r1={r1}, max_attempts={max_attempts}"
        )
    B, C, H, W = img.shape
    dev = img.device

    apply = rand((B,), generator, dev) < probability
    area = (sl + (sh - sl) * rand((B, max_attempts), generator, dev, torch.float64)) * (H * W)
    log_r = math.log(r1)
    aspect = torch.exp(log_r + (-2.0 * log_r) * rand((B, max_attempts), generator, dev, torch.float64))
    hs = torch.round(torch.sqrt(area * aspect)).long()
    ws = torch.round(torch.sqrt(area / aspect)).long()
    ok = (hs > 0) & (ws > 0) & (hs < H) & (ws < W)
    first = ok.to(torch.uint8).argmax(dim=1, keepdim=True)  # first accepted draw (0 if none)
    h = hs.gather(1, first).squeeze(1)
    w = ws.gather(1, first).squeeze(1)
    erased = apply & ok.any(dim=1)

    corner = rand((B, 2), generator, dev, torch.float64)
    top = (corner[:, 0] * (H - h + 1)).floor().long().clamp(max=H - 1)
    left = (corner[:, 1] * (W - w + 1)).floor().long().clamp(max=W - 1)

    rows = torch.arange(H, device=dev)
    cols = torch.arange(W, device=dev)
    in_rows = (rows >= top[:, None]) & (rows < (top + h)[:, None])  # [B, H]
    in_cols = (cols >= left[:, None]) & (cols < (left + w)[:, None])  # [B, W]
    region = (in_rows[:, :, None] & in_cols[:, None, :] & erased[:, None, None]).unsqueeze(1)

    noise = randn(img.shape, generator, dev, img.dtype if img.is_floating_point() else torch.float32)
    out = torch.where(region, noise.to(img.dtype), img)

    rects = torch.stack((top, left, h, w), dim=1)
    rects = torch.where(erased[:, None], rects, torch.full_like(rects, -1))
    return out, rects
